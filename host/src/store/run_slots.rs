//! Run slots (migration 0012): the per-pipeline run limit as rows, so that every server on one
//! database counts the same runs. A slot is claimed by inserting it, or by taking it over once
//! its lease lapsed; it is released by its holder.

use sqlx::AnyConnection;

/// Claims a free slot among `0..slots` for `holder` until `lease_until` (ms); which one, or
/// None when every slot is held.
pub async fn claim(
    conn: &mut AnyConnection,
    pipeline_id: &str,
    slots: i64,
    holder: &str,
    now: i64,
    lease_until: i64,
) -> sqlx::Result<Option<i64>> {
    for slot in 0..slots {
        let claimed = sqlx::query(
            "INSERT INTO run_slots (pipeline_id, slot, holder, lease_until) VALUES ($1, $2, $3, $4)
             ON CONFLICT (pipeline_id, slot) DO UPDATE SET holder = $3, lease_until = $4
             WHERE run_slots.lease_until < $5",
        )
        .bind(pipeline_id)
        .bind(slot)
        .bind(holder)
        .bind(lease_until)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if claimed == 1 {
            return Ok(Some(slot));
        }
    }
    Ok(None)
}

/// Frees the slot if `holder` still holds it.
pub async fn release(
    conn: &mut AnyConnection,
    pipeline_id: &str,
    slot: i64,
    holder: &str,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM run_slots WHERE pipeline_id = $1 AND slot = $2 AND holder = $3")
        .bind(pipeline_id)
        .bind(slot)
        .bind(holder)
        .execute(conn)
        .await
        .map(|_| ())
}
