//! Changing a pipeline's versions: registering one (uploaded content at once, fetched content
//! through the durable workers of [`super::registration`]), replacing its definition, deleting
//! it. Each runs the same checks: the names, then the one approval path ([`super::approval`]:
//! the policy chain bound to the version, its type handler's `validate` on the content once it is
//! there), and commits everything or nothing; content reaches the blob store only once every
//! check has passed.

use sqlx::AnyConnection;

use super::approval::{candidate, Content};
use super::pipelines::require_writable_by;
use super::{
    names, Caller, Finding, Refusal, Registry, RegistryError, Surface, VersionInfo, VersionState,
};
use crate::plugins;
use crate::store::{self, pipelines as rows};

/// What registering a version needs: its uploaded files and, for content fetched from
/// elsewhere, its source (registered by the workers of [`super::registration`]).
pub struct NewVersion {
    pub version: String,
    pub description: Option<String>,
    pub definition: serde_json::Value,
    pub files: Vec<(String, Vec<u8>)>,
    pub source: Option<super::content_sources::ContentSource>,
    /// The bytes of an uploaded `source` (`SourceLocation::Blob`, named there by digest): kept
    /// in the blob store only once every check has passed, so a refused request stores nothing.
    pub source_upload: Option<Vec<u8>>,
    /// Creates the pipeline, of this type, in the same commit if it does not exist (the GBDX
    /// surface registers names on first use); None: it must exist.
    pub create_as_type: Option<String>,
}

/// A new definition for an existing version: the definition, its description, and the
/// files it replaces.
pub struct Definition {
    /// Free JSON. When it is an object naming a `name` or `version`, they must be the version's
    /// own (invariant 2: they never change); they are kept spelled as the version spells them.
    pub definition: serde_json::Value,
    pub description: Option<String>,
    pub files: Vec<(String, Vec<u8>)>,
    /// A file whose content is the definition itself (GBDX's `task.json`), written as stored.
    pub definition_file: Option<String>,
}

/// Invariant 2 on a replaced definition: a `name` or `version` it names must be the version's
/// own (case-insensitively, as names are); both are then spelled as stored.
pub(super) fn keep_identity(
    definition: &mut serde_json::Value,
    name: &str,
    version: &str,
) -> Result<(), RegistryError> {
    let Some(fields) = definition.as_object_mut() else {
        return Ok(());
    };
    for (field, own) in [("name", name), ("version", version)] {
        let given = fields.get(field).and_then(serde_json::Value::as_str);
        if given.is_some_and(|given| names::key(given) != names::key(own)) {
            return Err(RegistryError::invalid(Finding::new(
                "name-or-version-changed",
                field,
                format!("the {field} of a version never changes (it is {own})"),
            )));
        }
        if fields.contains_key(field) {
            fields.insert(field.into(), own.into());
        }
    }
    Ok(())
}

/// How many times a registration re-checks when a concurrent one changed the version set.
const REGISTER_RETRIES: usize = 8;
/// Most files one version may hold.
pub const MAX_FILES: usize = 1000;

/// Paths are relative, `/`-separated, without `.`/`..` segments or a `.git` folder, unique;
/// at most [`MAX_FILES`].
pub(super) fn check_files(files: &[(String, Vec<u8>)]) -> Result<(), RegistryError> {
    check_paths(files.iter().map(|(path, _)| path.as_str()))
}

pub(super) fn check_paths<'a>(
    paths: impl ExactSizeIterator<Item = &'a str>,
) -> Result<(), RegistryError> {
    if paths.len() > MAX_FILES {
        return Err(RegistryError::invalid(Finding::new(
            "invalid-content",
            "files",
            format!("more than {MAX_FILES} files"),
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for path in paths {
        let bad_segment = path
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
        if path.is_empty()
            || path.len() > 1024
            || bad_segment
            || path.split('/').next() == Some(".git")
            || path.contains('\\')
            || path.chars().any(char::is_control)
        {
            return Err(RegistryError::invalid(Finding::new(
                "invalid-path",
                "files",
                format!("`{path}` is not a relative file path"),
            )));
        }
        if !seen.insert(path) {
            return Err(RegistryError::invalid(Finding::new(
                "invalid-path",
                "files",
                format!("`{path}` appears twice"),
            )));
        }
    }
    Ok(())
}

/// The digest of a version's content: sha256 over its sorted `path digest` lines.
pub(super) fn manifest_digest(files: &[rows::FileRow]) -> String {
    use sha2::{Digest, Sha256};
    let mut lines: Vec<String> = files
        .iter()
        .map(|f| format!("{} {}\n", f.path, f.digest))
        .collect();
    lines.sort();
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(lines.concat().as_bytes()))
    )
}

impl Registry {
    /// Registers a version with uploaded content (see the module doc).
    pub async fn register_version(
        &self,
        caller: &Caller,
        namespace: &str,
        name: &str,
        new: NewVersion,
        surface: Surface,
    ) -> Result<VersionInfo, RegistryError> {
        names::check_version(&new.version).map_err(RegistryError::invalid)?;
        require_writable_by(namespace, surface)?;
        check_files(&new.files)?;
        if let Some(source) = &new.source {
            // A URL that can never be fetched is refused now, not queued and retried.
            self.check_source(source, new.source_upload.as_deref())
                .await?;
        }
        let deferred = new.source.is_some();
        let content: Vec<plugins::File> = new
            .files
            .iter()
            .map(|(path, bytes)| plugins::File {
                path: path.clone(),
                contents: bytes.clone(),
            })
            .collect();

        for _ in 0..REGISTER_RETRIES {
            let mut conn = self.store.pool().acquire().await?;
            self.require_namespace_member(&mut conn, caller, namespace)
                .await?;
            let (pipeline, is_new) = match self.find_pipeline(&mut conn, namespace, name).await {
                Ok(pipeline) => {
                    self.require_owner(&mut conn, caller, &pipeline).await?;
                    (pipeline, false)
                }
                Err(RegistryError::Refused(Refusal::PipelineNotFound { .. }))
                    if new.create_as_type.is_some() =>
                {
                    let pipeline_type = new.create_as_type.as_deref().unwrap_or_default();
                    let planned = self
                        .plan_pipeline(&mut conn, caller, namespace, name, pipeline_type, None)
                        .await?;
                    (planned, true)
                }
                Err(error) => return Err(error),
            };
            // A deleted number registered again is judged against the versions that preceded
            // it when it was first registered (GBDX: "once a task is deleted, it can be
            // re-registered using the same version number").
            let first_registered = match is_new {
                true => None,
                false => {
                    rows::deleted_version_registered_at(
                        &mut conn,
                        &pipeline.id,
                        &names::key(&new.version),
                    )
                    .await?
                }
            };
            let candidate_key = names::key(&new.version);
            let existing: Vec<String> = rows::versions_of(&mut conn, &pipeline.id)
                .await?
                .into_iter()
                .filter(|v| {
                    first_registered.is_none_or(|at| {
                        v.registered_at < at || names::key(&v.version) == candidate_key
                    })
                })
                .map(|v| v.version)
                .collect();
            drop(conn);

            let candidate = candidate(
                &pipeline.namespace,
                &pipeline.name,
                Some(&new.version),
                &pipeline.pipeline_type,
                new.description
                    .clone()
                    .or_else(|| pipeline.description.clone()),
            );
            // Content still to be fetched is validated by the registration worker.
            let content = match deferred {
                true => Content::Later,
                false => Content::Here(content.clone()),
            };
            let approvals = self
                .approve(
                    caller,
                    surface,
                    Some(&pipeline.namespace),
                    candidate,
                    existing,
                    content,
                )
                .await?;

            let compile_note = match deferred {
                true => None,
                false => self.precompile_uploaded_component(&new).await?,
            };

            let mut files = Vec::with_capacity(new.files.len());
            for (path, bytes) in &new.files {
                let digest = self.blobs.put(bytes).await?;
                files.push(rows::FileRow {
                    path: path.clone(),
                    digest,
                    size: bytes.len() as i64,
                });
            }
            if let Some(bytes) = &new.source_upload {
                self.blobs.put(bytes).await?;
            }
            let content_digest = manifest_digest(&files);
            let approved_by = serde_json::to_string(
                &approvals
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
            .expect("a list of strings serializes");
            let definition = new.definition.to_string();
            let source = new
                .source
                .as_ref()
                .map(|s| serde_json::to_string(s).expect("a source serializes"));

            let mut tx = self.store.begin().await?;
            let claimed = if is_new {
                // First version of a new name: the pipeline is made in the same commit. If
                // someone made it meanwhile, start over (and meet its owner check).
                match rows::insert_pipeline(&mut tx, &pipeline.as_new()).await {
                    Err(e) if store::is_unique_violation(&e) => false,
                    other => other.map(|()| true)?,
                }
            } else {
                rows::bump_versions_revision(&mut tx, &pipeline.id, pipeline.versions_revision)
                    .await?
            };
            if !claimed {
                // Someone registered or deleted a version meanwhile: the policies saw a stale set.
                tx.rollback().await?;
                continue;
            }
            // A pointer's name is not a version's to take (see `super::pointers`).
            if !is_new
                && store::pointers::exists(&mut tx, &pipeline.id, &names::key(&new.version)).await?
            {
                return Err(Refusal::NameIsAPointer {
                    namespace: pipeline.namespace,
                    name: pipeline.name,
                    version: new.version,
                }
                .into());
            }
            let now = store::now_millis();
            let version_id = uuid::Uuid::new_v4().to_string();
            let row = rows::NewVersion {
                id: &version_id,
                pipeline_id: &pipeline.id,
                version: &new.version,
                version_key: &names::key(&new.version),
                state: VersionState::Registering.as_str(),
                description: new.description.as_deref(),
                definition: &definition,
                content_digest: Some(&content_digest),
                approved_by: &approved_by,
                registered_by: &caller.user_id,
                registered_at: now,
                attempts: if deferred { 0 } else { 1 },
                attempt_deadline: None,
                retry_until: deferred
                    .then(|| now + self.registration.retry_window.as_millis() as i64),
                finished_at: None,
                source: source.as_deref(),
                registration_note: compile_note.as_deref(),
            };
            match rows::insert_version(&mut tx, &row).await {
                Err(e) if store::is_unique_violation(&e) => {
                    return Err(Refusal::VersionExists {
                        namespace: pipeline.namespace,
                        name: pipeline.name,
                        version: new.version,
                    }
                    .into())
                }
                other => other?,
            }
            for file in &files {
                rows::insert_file(&mut tx, &version_id, file).await?;
            }
            rows::bump_namespace_revision(&mut tx, &names::key(&pipeline.namespace), &pipeline.id)
                .await?;
            if !deferred {
                // Uploaded content was validated above: ready in the same commit.
                rows::finish_registration(
                    &mut tx,
                    &version_id,
                    VersionState::Ready.as_str(),
                    None,
                    now,
                )
                .await?;
            }
            let registered = self
                .version_info(&mut tx, &pipeline, &names::key(&new.version))
                .await?;
            tx.commit().await?;
            self.namespace_changed();
            if deferred {
                self.registration_wakeup.notify_one();
            }
            tracing::info!(pipeline = %format!("{}/{}", pipeline.namespace, pipeline.name), version = %new.version, approved_by = %approved_by, "version registered");
            return Ok(registered);
        }
        Err(Refusal::ChangingTooFast {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
        .into())
    }

    /// A version the caller's account owns and that is not registering (the ones that may be
    /// changed or deleted).
    pub(super) async fn settled_version(
        &self,
        conn: &mut AnyConnection,
        caller: &Caller,
        namespace: &str,
        name: &str,
        version: &str,
    ) -> Result<(rows::PipelineRow, rows::VersionRow), RegistryError> {
        self.require_namespace_member(conn, caller, namespace)
            .await?;
        let pipeline = self.find_pipeline(conn, namespace, name).await?;
        self.require_owner(conn, caller, &pipeline).await?;
        let row = rows::version_by_key(conn, &pipeline.id, &names::key(version))
            .await?
            .ok_or_else(|| Refusal::VersionNotFound {
                namespace: namespace.to_string(),
                name: name.to_string(),
                version: version.to_string(),
            })?;
        if row.state == VersionState::Registering.as_str() {
            return Err(RegistryError::NotReady {
                name: pipeline.name,
                version: row.version,
                state: VersionState::Registering,
            });
        }
        Ok((pipeline, row))
    }

    /// Deletes one version; refused while it is registering. The same version may be registered
    /// again afterwards.
    pub async fn delete_version(
        &self,
        caller: &Caller,
        namespace: &str,
        name: &str,
        version: &str,
        surface: Surface,
    ) -> Result<(), RegistryError> {
        require_writable_by(namespace, surface)?;
        let mut tx = self.store.begin().await?;
        let (pipeline, row) = self
            .settled_version(&mut tx, caller, namespace, name, version)
            .await?;
        rows::delete_version(&mut tx, &row.id).await?;
        rows::remember_deleted(
            &mut tx,
            &pipeline.id,
            &names::key(&row.version),
            row.registered_at,
        )
        .await?;
        rows::bump_namespace_revision(&mut tx, &names::key(&pipeline.namespace), &pipeline.id)
            .await?;
        if !rows::bump_versions_revision(&mut tx, &pipeline.id, pipeline.versions_revision).await? {
            return Err(Refusal::ChangedMeanwhile {
                namespace: namespace.to_string(),
                name: name.to_string(),
            }
            .into());
        }
        tx.commit().await?;
        self.namespace_changed();
        tracing::info!(pipeline = %format!("{namespace}/{name}"), version, "version deleted");
        Ok(())
    }

    /// Replaces the definition of a version, and the files `files` name, keeping its name,
    /// version and state; starts no registration. The whole content is validated again by the
    /// type handler. Refused while the version registers.
    pub async fn replace_definition(
        &self,
        caller: &Caller,
        namespace: &str,
        name: &str,
        version: &str,
        replacement: Definition,
        surface: Surface,
    ) -> Result<VersionInfo, RegistryError> {
        require_writable_by(namespace, surface)?;
        let Definition {
            mut definition,
            description,
            mut files,
            definition_file,
        } = replacement;
        check_files(&files)?;
        let mut conn = self.store.pool().acquire().await?;
        let (pipeline, row) = self
            .settled_version(&mut conn, caller, namespace, name, version)
            .await?;
        keep_identity(&mut definition, &pipeline.name, &row.version)?;
        if let Some(path) = definition_file {
            files.retain(|(p, _)| *p != path);
            files.push((path, definition.to_string().into_bytes()));
        }
        let mut stored = rows::files_of(&mut conn, &row.id).await?;
        drop(conn);
        let mut content = Vec::with_capacity(stored.len() + files.len());
        for file in stored
            .iter()
            .filter(|f| !files.iter().any(|(p, _)| *p == f.path))
        {
            content.push(plugins::File {
                path: file.path.clone(),
                contents: self.blobs.get(&file.digest).await?,
            });
        }
        let mut replaced = Vec::with_capacity(files.len());
        for (path, bytes) in &files {
            content.push(plugins::File {
                path: path.clone(),
                contents: bytes.clone(),
            });
            // Stored below, once the handler accepted the content: a refusal leaves no blob.
            let row = rows::FileRow {
                path: path.clone(),
                digest: crate::blobs::digest_of(bytes),
                size: bytes.len() as i64,
            };
            stored.retain(|f| f.path != row.path);
            stored.push(row.clone());
            replaced.push(row);
        }
        let candidate = candidate(
            &pipeline.namespace,
            &pipeline.name,
            Some(&row.version),
            &pipeline.pipeline_type,
            description.clone(),
        );
        self.validate(candidate, content).await?;
        for (_, bytes) in &files {
            self.blobs.put(bytes).await?;
        }
        let mut tx = self.store.begin().await?;
        for file in &replaced {
            rows::replace_file(&mut tx, &row.id, file).await?;
        }
        rows::set_definition(
            &mut tx,
            &row.id,
            &definition.to_string(),
            description.as_deref(),
            &manifest_digest(&stored),
        )
        .await?;
        // Cached run targets hold the definition and the files: they re-read on this bump.
        rows::bump_namespace_revision(&mut tx, &names::key(&pipeline.namespace), &pipeline.id)
            .await?;
        let updated = self
            .version_info(&mut tx, &pipeline, &names::key(version))
            .await?;
        tx.commit().await?;
        self.namespace_changed();
        tracing::info!(pipeline = %format!("{namespace}/{name}"), version, "definition replaced");
        Ok(updated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(paths: &[&str]) -> Vec<(String, Vec<u8>)> {
        paths.iter().map(|p| (p.to_string(), Vec::new())).collect()
    }

    #[test]
    fn file_paths_must_be_relative_and_unique() {
        assert!(check_files(&files(&["notebook.ipynb", "data/a.csv"])).is_ok());
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "",
            "a\\b",
            "./a",
            ".git/config",
        ] {
            assert!(check_files(&files(&[bad])).is_err(), "{bad} accepted");
        }
        assert!(check_files(&files(&["a", "a"])).is_err());
    }

    #[test]
    fn manifest_digest_ignores_order() {
        let a = rows::FileRow {
            path: "a".into(),
            digest: "sha256:1".into(),
            size: 1,
        };
        let b = rows::FileRow {
            path: "b".into(),
            digest: "sha256:2".into(),
            size: 1,
        };
        assert_eq!(
            manifest_digest(&[a.clone(), b.clone()]),
            manifest_digest(&[b, a])
        );
    }

    #[test]
    fn a_replaced_definition_keeps_its_name_and_version() {
        use serde_json::json;
        let cases = [
            (
                json!({"name": "Hello", "version": "1.0.0", "x": 1}),
                Ok(json!({"name": "hello", "version": "1.0.0", "x": 1})),
            ),
            (json!({"x": 1}), Ok(json!({"x": 1}))),
            (json!({"name": "other"}), Err("name")),
            (json!({"version": "2.0.0"}), Err("version")),
            (
                json!(["not", "an", "object"]),
                Ok(json!(["not", "an", "object"])),
            ),
        ];
        for (mut given, expected) in cases {
            let result = keep_identity(&mut given, "hello", "1.0.0");
            match (result, expected) {
                (Ok(()), Ok(kept)) => assert_eq!(given, kept),
                (Err(RegistryError::Invalid(findings)), Err(field)) => {
                    assert_eq!(findings[0].code, "name-or-version-changed");
                    assert_eq!(findings[0].field.as_deref(), Some(field));
                }
                (result, expected) => panic!("{result:?} where {expected:?} was expected"),
            }
        }
    }
}
