//! Python pipelines: a Mystic pipeline directory, as `pipeline container init` writes it
//! (`pipeline.yaml` with `pipeline_name`, `pipeline_graph: module:attribute`, `runtime.python`;
//! the module beside it), registered as a runnable version that runs on the Python runtime
//! ([`crate::plugins::python`]). Its files are all it adds: nothing is compiled.
//!
//! Mystic's manifest has no version and no ports, so the registry derives them:
//! - the name is `pipeline_name` without its `:tag`; the version is that tag when it is semver,
//!   else the one the push asks for (`pipewright pipeline push --version`), else the next patch
//!   after the latest ready version (`0.1.0` for the first);
//! - the inputs and outputs are the graph's, as the runtime describes it: the module is imported
//!   once at push in a fresh instance (no pipe runs), so a pipeline that does not load is
//!   refused at push with the reason, not at its first run;
//! - `runtime.python.version` is what was asked; `python.version` in the definition is the
//!   Python that runs it (the runtime's), shown on the pipeline.
//!
//! Requirements are bundled by the client under `__pypackages__/` (pure Python only); a file of
//! native code among the pushed files is refused here too, naming its package.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::{Caller, Finding, Registry, RegistryError};
use crate::plugins::python::MISSING_RUNTIME;
use crate::plugins::PluginError;

/// How long importing a pipeline's module at push may take.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the client puts a pipeline's bundled requirements (PEP 582's folder name).
pub const BUNDLED_PACKAGES: &str = "__pypackages__";

/// File endings of native code, which the runtime cannot load.
const NATIVE_CODE: &[&str] = &[".so", ".pyd", ".dylib", ".dll"];

/// A Python pipeline ready to register: its name, version and definition (the manifest with
/// `name`, `version`, `inputs`, `outputs` and `python` added).
pub struct PythonVersion {
    pub name: String,
    pub version: String,
    pub definition: Json,
}

/// What the runtime says of a graph.
#[derive(Deserialize)]
struct Described {
    inputs: Vec<Json>,
    outputs: Vec<Json>,
    python: String,
}

fn invalid(code: &str, field: &str, message: impl Into<String>) -> RegistryError {
    RegistryError::invalid(Finding::new(code, field, message))
}

/// A Mystic `pipeline_name` (`name`, `account/name`, `name:tag`) as the pipeline's name and
/// its tag when that is a semver version (the version it is pushed as).
pub fn name_and_tag(pipeline_name: &str) -> (String, Option<&str>) {
    let (name, tag) = match pipeline_name.split_once(':') {
        Some((name, tag)) => (name, Some(tag)),
        None => (pipeline_name, None),
    };
    let name = name.rsplit('/').next().unwrap_or(name).to_string();
    (name, tag.filter(|t| semver::Version::parse(t).is_ok()))
}

impl Registry {
    /// Reads the Mystic manifest `manifest` of a pushed directory (`files`), derives its name
    /// and version (see the module doc) and describes its graph.
    pub async fn python_version(
        &self,
        caller: &Caller,
        namespace: &str,
        manifest: &Json,
        files: &[(String, Vec<u8>)],
        asked_version: Option<&str>,
    ) -> Result<PythonVersion, RegistryError> {
        if !self.plugins.has_python_runtime() {
            return Err(invalid(
                "python-runtime-missing",
                "pipeline_graph",
                MISSING_RUNTIME,
            ));
        }
        let pipeline_name = manifest
            .get("pipeline_name")
            .and_then(Json::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                invalid(
                    "invalid-manifest",
                    "pipeline_name",
                    "the manifest needs `pipeline_name`",
                )
            })?;
        let (name, tag) = name_and_tag(pipeline_name);
        if let Some((path, _)) = files
            .iter()
            .find(|(path, _)| NATIVE_CODE.iter().any(|end| path.ends_with(end)))
        {
            let package = path
                .strip_prefix(&format!("{BUNDLED_PACKAGES}/"))
                .and_then(|p| p.split('/').next())
                .unwrap_or(path);
            return Err(invalid(
                "native-code",
                "runtime.python.requirements",
                format!(
                    "`{package}` has native code ({path}); the Python runtime runs pure-Python packages only"
                ),
            ));
        }
        let version = match tag {
            Some(tag) => tag.to_string(),
            None => match asked_version {
                Some(asked) => asked.to_string(),
                None => self.next_patch(caller, namespace, &name).await?,
            },
        };
        let described = self.describe_graph(manifest, files).await?;
        let requested = manifest
            .pointer("/runtime/python/version")
            .cloned()
            .unwrap_or(Json::Null);
        let mut definition = manifest.clone();
        let object = definition.as_object_mut().expect("a manifest is an object");
        object.insert("name".into(), json!(name));
        object.insert("version".into(), json!(version));
        object.insert("inputs".into(), json!(described.inputs));
        object.insert("outputs".into(), json!(described.outputs));
        object.insert(
            "python".into(),
            json!({"version": described.python, "requested": requested}),
        );
        Ok(PythonVersion {
            name,
            version,
            definition,
        })
    }

    /// The patch after the latest ready version of `namespace/name`; `0.1.0` when it has none.
    async fn next_patch(
        &self,
        caller: &Caller,
        namespace: &str,
        name: &str,
    ) -> Result<String, RegistryError> {
        let latest = match self.version(caller, namespace, name, None).await {
            Ok(latest) => latest,
            Err(RegistryError::Refused(_)) => return Ok("0.1.0".into()),
            Err(error) => return Err(error),
        };
        let mut next = semver::Version::parse(&latest.version).map_err(|_| {
            invalid(
                "invalid-version",
                "version",
                format!(
                    "the latest version, {}, is not semver: give one (`pipewright pipeline push --version`)",
                    latest.version
                ),
            )
        })?;
        next.patch += 1;
        next.pre = semver::Prerelease::EMPTY;
        next.build = semver::BuildMetadata::EMPTY;
        Ok(next.to_string())
    }

    /// Imports the pipeline in a fresh runtime instance and reads its graph's ports.
    async fn describe_graph(
        &self,
        manifest: &Json,
        files: &[(String, Vec<u8>)],
    ) -> Result<Described, RegistryError> {
        let dir = tempfile::tempdir().map_err(anyhow::Error::from)?;
        for (path, bytes) in files {
            let target = dir.path().join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(anyhow::Error::from)?;
            }
            std::fs::write(&target, bytes).map_err(anyhow::Error::from)?;
        }
        // What the runtime reads the graph's name from, as a run's files hold it.
        std::fs::write(dir.path().join("pipeline.json"), manifest.to_string())
            .map_err(anyhow::Error::from)?;
        let refused = |message: String| invalid("invalid-pipeline", "pipeline_graph", message);
        let text = match self
            .plugins
            .describe_python(dir.path(), DESCRIBE_TIMEOUT)
            .await
        {
            Ok(Ok(text)) => text,
            Ok(Err(error)) => return Err(refused(error.message)),
            Err(
                error @ (PluginError::Timeout { .. }
                | PluginError::MemoryLimit { .. }
                | PluginError::Trap { .. }),
            ) => return Err(refused(format!("loading the pipeline: {error}"))),
            Err(error) => return Err(error.into()),
        };
        serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!("the Python runtime's description is unreadable: {e}").into()
        })
    }
}
