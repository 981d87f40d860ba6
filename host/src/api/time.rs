//! Time on the wire: the formats the emulated services use, from the store's milliseconds.
//! `2020-08-28T11:59:12.345Z` (ISO-8601, UTC) and `2020-08-28 11:59:12.345` (java.sql.Timestamp's
//! text, as Acumos sends `modifiedTimeStamp`; UTC here).

/// `2020-08-28T11:59:12.345Z`
pub fn iso_instant(ms: i64) -> String {
    let (date, time, millis) = civil(ms);
    format!("{date}T{time}.{millis:03}Z")
}

/// `2020-08-28 11:59:12.345` (java.sql.Timestamp's text, in UTC)
pub fn sql_timestamp(ms: i64) -> String {
    let (date, time, millis) = civil(ms);
    format!("{date} {time}.{millis:03}")
}

/// Splits milliseconds since the epoch into `YYYY-MM-DD`, `hh:mm:ss` and milliseconds (UTC),
/// by the days-to-civil algorithm of Howard Hinnant's date library.
fn civil(ms: i64) -> (String, String, i64) {
    let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
        millis,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_the_original_formats() {
        // 2020-08-28T11:59:12.345Z
        let ms = 1_598_615_952_345;
        assert_eq!(iso_instant(ms), "2020-08-28T11:59:12.345Z");
        assert_eq!(sql_timestamp(ms), "2020-08-28 11:59:12.345");
        assert_eq!(iso_instant(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_instant(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
