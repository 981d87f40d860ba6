//! Listings read a page at a time by cursor (keyset paging): a page ends at a row, and the
//! next begins strictly after that row's sort key, wherever the rows before or after it have
//! gone meanwhile. A version registered or deleted while someone pages therefore neither
//! repeats nor skips any other version (an offset would shift by one).
//!
//! A [`Cursor`] is opaque to callers: the list it was made for and the last row's sort key,
//! as base64url JSON. It grants nothing: every page is read under the caller's own read rule,
//! a cursor made for another list is refused (`invalid-cursor`), and one that names a position
//! in a list the caller may read reveals only where that list is. The caller's read check comes
//! before the cursor's, so another account's private pipeline is absent on every page.
//!
//! Lists paged so: the versions of a pipeline ([`Registry::list_versions_page`], listing order:
//! see [`crate::store::precedence`]) and the readable pipelines
//! ([`Registry::list_pipelines_page`], by namespace and name).

use std::collections::HashMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::pipelines::pipeline_info;
use super::versions::version_info;
use super::{names, Caller, Finding, PipelineInfo, Registry, RegistryError, VersionInfo};
use crate::store::pipelines::{self as rows, PipelinePosition, VersionPosition};
use crate::store::precedence::is_precedence_key;

/// Rows per page when the caller does not say.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;
/// The most rows a page may hold.
pub const MAX_PAGE_LIMIT: u32 = 1000;

/// How many rows a page holds: 1 to [`MAX_PAGE_LIMIT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageLimit(u32);

impl PageLimit {
    /// The limit a request gives as text, or the default when it gives none.
    pub fn parse(text: Option<&str>) -> Result<PageLimit, RegistryError> {
        let Some(text) = text else {
            return Ok(PageLimit(DEFAULT_PAGE_LIMIT));
        };
        match text.parse::<u32>() {
            Ok(limit) if (1..=MAX_PAGE_LIMIT).contains(&limit) => Ok(PageLimit(limit)),
            _ => Err(RegistryError::invalid(Finding::new(
                "invalid-limit",
                "limit",
                format!("limit must be a whole number from 1 to {MAX_PAGE_LIMIT}, not `{text}`"),
            ))),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        PageLimit(DEFAULT_PAGE_LIMIT)
    }
}

/// Where the next page of a list starts; opaque text to callers (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The cursor after `position` in the versions of the pipeline `pipeline_id`. Public for
    /// the benchmark, which pages from positions it chose.
    pub fn after_version(pipeline_id: &str, position: &VersionPosition) -> Cursor {
        Cursor::encode(&Position::Versions {
            pipeline: pipeline_id.to_string(),
            key: position.precedence_key.clone(),
            registered_at: position.registered_at,
            version: position.version_key.clone(),
        })
    }

    fn after_pipeline(namespace_key: Option<&str>, row: &rows::PipelineRow) -> Cursor {
        Cursor::encode(&Position::Pipelines {
            namespace: namespace_key.map(str::to_string),
            after_namespace: names::key(&row.namespace),
            after_name: names::key(&row.name),
        })
    }

    fn encode(position: &Position) -> Cursor {
        let json = serde_json::to_vec(position).expect("a position serializes");
        Cursor(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
    }

    fn decode(text: &str) -> Result<Position, RegistryError> {
        let position = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.as_bytes())
            .ok()
            .and_then(|json| serde_json::from_slice::<Position>(&json).ok())
            .filter(Position::is_sane);
        position.ok_or_else(|| invalid_cursor("is not a cursor this server gave out"))
    }
}

/// What a cursor holds: the list, and the last row's sort key in it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "list", rename_all = "snake_case")]
enum Position {
    Versions {
        pipeline: String,
        key: String,
        registered_at: i64,
        version: String,
    },
    Pipelines {
        /// The namespace the list was limited to (its key), if any.
        namespace: Option<String>,
        after_namespace: String,
        after_name: String,
    },
}

impl Position {
    /// Text a store can take as a parameter (no NUL, which PostgreSQL refuses, nothing
    /// unboundedly long), and a key of the shape keys have.
    fn is_sane(&self) -> bool {
        let text = |s: &str| s.len() <= 1024 && !s.chars().any(char::is_control);
        match self {
            Position::Versions {
                pipeline,
                key,
                version,
                ..
            } => text(pipeline) && text(version) && is_precedence_key(key),
            Position::Pipelines {
                namespace,
                after_namespace,
                after_name,
            } => namespace.as_deref().is_none_or(text) && text(after_namespace) && text(after_name),
        }
    }
}

fn invalid_cursor(why: &str) -> RegistryError {
    RegistryError::invalid(Finding::new(
        "invalid-cursor",
        "cursor",
        format!("cursor {why}: start again without one, or use the one the last page gave"),
    ))
}

/// A page of a list, and where the next one starts (None: this is the last).
#[derive(Clone, Debug)]
pub struct KeysetPage<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

impl Registry {
    /// A page of every version of a pipeline, in any state, in listing order (the order of
    /// [`Registry::list_versions`]): the first, or the one after `cursor`.
    pub async fn list_versions_page(
        &self,
        caller: &Caller,
        namespace: &str,
        name: &str,
        limit: PageLimit,
        cursor: Option<&str>,
    ) -> Result<KeysetPage<VersionInfo>, RegistryError> {
        let mut conn = self.store().pool().acquire().await?;
        let pipeline = self
            .find_readable(&mut conn, caller, namespace, name)
            .await?;
        let after = match cursor.map(Cursor::decode).transpose()? {
            None => None,
            Some(Position::Versions {
                pipeline: id,
                key,
                registered_at,
                version,
            }) if id == pipeline.id => Some(VersionPosition {
                precedence_key: key,
                registered_at,
                version_key: version,
            }),
            Some(_) => return Err(invalid_cursor("was made for another list")),
        };
        let limit = limit.get() as usize;
        let mut found =
            rows::versions_page(&mut conn, &pipeline.id, after.as_ref(), limit as i64 + 1).await?;
        let next = (found.len() > limit).then(|| {
            found.truncate(limit);
            let last = found.last().expect("a full page has a last row");
            Cursor::after_version(&pipeline.id, &VersionPosition::of(last))
        });
        let ids: Vec<String> = found.iter().map(|row| row.id.clone()).collect();
        let mut files: HashMap<String, Vec<rows::FileRow>> = HashMap::new();
        for (version_id, file) in rows::files_of_versions(&mut conn, &ids).await? {
            files.entry(version_id).or_default().push(file);
        }
        let items = found
            .into_iter()
            .map(|row| {
                let mine = files.remove(&row.id).unwrap_or_default();
                version_info(&pipeline, row, mine)
            })
            .collect();
        Ok(KeysetPage { items, next })
    }

    /// A page of the pipelines the caller may read (of one namespace if given), by namespace
    /// and name: the first, or the one after `cursor`.
    pub async fn list_pipelines_page(
        &self,
        caller: &Caller,
        namespace: Option<&str>,
        limit: PageLimit,
        cursor: Option<&str>,
    ) -> Result<KeysetPage<PipelineInfo>, RegistryError> {
        let namespace_key = namespace.map(names::key);
        let after = match cursor.map(Cursor::decode).transpose()? {
            None => None,
            Some(Position::Pipelines {
                namespace,
                after_namespace,
                after_name,
            }) if namespace == namespace_key => Some(PipelinePosition {
                namespace_key: after_namespace,
                name_key: after_name,
            }),
            Some(_) => return Err(invalid_cursor("was made for another list")),
        };
        let mut conn = self.store().pool().acquire().await?;
        let limit = limit.get() as usize;
        let mut found = rows::readable_pipelines_page(
            &mut conn,
            &caller.user_id,
            namespace_key.as_deref(),
            after.as_ref(),
            limit as i64 + 1,
        )
        .await?;
        let next = (found.len() > limit).then(|| {
            found.truncate(limit);
            let last = found.last().expect("a full page has a last row");
            Cursor::after_pipeline(namespace_key.as_deref(), last)
        });
        Ok(KeysetPage {
            items: found.into_iter().map(pipeline_info).collect(),
            next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding_code(error: RegistryError) -> String {
        match error {
            RegistryError::Invalid(findings) => findings[0].code.clone(),
            other => panic!("not a finding: {other:?}"),
        }
    }

    #[test]
    fn limits_are_whole_numbers_from_one_to_the_maximum() {
        assert_eq!(PageLimit::parse(None).unwrap().get(), 100);
        assert_eq!(PageLimit::parse(Some("1")).unwrap().get(), 1);
        assert_eq!(PageLimit::parse(Some("1000")).unwrap().get(), 1000);
        for bad in ["0", "1001", "-1", "ten", "", "1.5", "99999999999"] {
            let error = PageLimit::parse(Some(bad)).unwrap_err();
            assert_eq!(finding_code(error), "invalid-limit", "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let position = VersionPosition {
            precedence_key: "0100".into(),
            registered_at: 7,
            version_key: "1.0.0".into(),
        };
        let cursor = Cursor::after_version("p1", &position);
        assert!(cursor
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert!(matches!(
            Cursor::decode(cursor.as_str()).unwrap(),
            Position::Versions { pipeline, key, registered_at: 7, version }
                if pipeline == "p1" && key == "0100" && version == "1.0.0"
        ));
        let forged =
            |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.as_bytes());
        for bad in [
            "".to_string(),
            "%%%".into(),
            "bm90IGpzb24".into(),
            forged(r#"{"list":"runs"}"#),
            forged(
                r#"{"list":"versions","pipeline":"p","key":"ZZ","registered_at":1,"version":"1"}"#,
            ),
            forged(
                r#"{"list":"versions","pipeline":"p\u0000","key":"01","registered_at":1,"version":"1"}"#,
            ),
        ] {
            let error = Cursor::decode(&bad).unwrap_err();
            assert_eq!(finding_code(error), "invalid-cursor", "{bad}");
        }
    }
}
