//! Plugins written in Python: a folder holding `plugin.yaml` and `app.py` (what `pipewright
//! plugin new --lang python` writes from `sdk/templates/python/<kind>/`).
//!
//! `plugin.yaml` names the plugin, its version, the WIT world it implements and the WIT folders
//! that define it (copied into the project by `plugin new`, so a project builds on its own):
//!
//! ```yaml
//! name: name-length
//! version: 0.1.0
//! language: python
//! world: pipewright:plugin/validation-policy@0.2.0
//! wit: [wit/plugin@0.1.0, wit/plugin@0.2.0]
//! ```
//!
//! The component is built by componentize-py (`componentize-py -d WIT… -w WORLD componentize
//! app`), which imports `app` and every module beside it at build time and snapshots the
//! interpreter with them, so the component carries CPython and the project's code (about 18 MB).
//! Unit tests are the project's `test_*.py`, run by `python3 -m unittest` on the rules, which
//! the templates keep free of WIT types.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use serde::Deserialize;

/// The project file of a Python plugin.
pub const MANIFEST: &str = "plugin.yaml";
/// The module componentize-py wraps: it defines the classes the world's exports name.
pub const APP_MODULE: &str = "app";
/// Where the componentize-py to use is named; else `componentize-py` on `PATH`.
pub const COMPONENTIZE_PY_ENV: &str = "PIPEWRIGHT_COMPONENTIZE_PY";
/// The componentize-py these templates and this host are tested with.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
/// Where `plugin build` leaves the component, inside the project.
const BUILD_DIR: &str = "build";

/// `plugin.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PythonProject {
    pub name: String,
    pub version: String,
    /// Always `python`: says what the folder is to a reader who has not seen this doc.
    pub language: String,
    /// The WIT world, `package/world@version`.
    pub world: String,
    /// The WIT folders, relative to the project, oldest contract first.
    pub wit: Vec<PathBuf>,
}

impl PythonProject {
    /// The project in `dir`, or None when `dir` holds no `plugin.yaml`.
    pub fn read(dir: &Path) -> anyhow::Result<Option<PythonProject>> {
        let path = dir.join(MANIFEST);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let project: PythonProject =
            serde_norway::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if project.language != "python" {
            bail!(
                "{}: `language: {}` is not one `plugin build` knows (`python`; a Rust plugin is a crate with a Cargo.toml)",
                path.display(),
                project.language
            );
        }
        if !dir.join(format!("{APP_MODULE}.py")).is_file() {
            bail!(
                "{} has no {APP_MODULE}.py (the module whose classes implement `{}`)",
                dir.display(),
                project.world
            );
        }
        Ok(Some(project))
    }

    /// Where built artifacts and the harness's compile cache go.
    pub fn build_dir(&self, dir: &Path) -> PathBuf {
        dir.join(BUILD_DIR)
    }

    /// Builds the component; returns its path (`build/NAME.wasm`).
    pub fn build(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let build_dir = self.build_dir(dir);
        std::fs::create_dir_all(&build_dir)
            .with_context(|| format!("creating {}", build_dir.display()))?;
        let output = build_dir.join(format!("{}.wasm", self.name));
        let mut command = Command::new(componentize_py()?);
        command.current_dir(dir).arg("--quiet");
        for folder in &self.wit {
            command.arg("-d").arg(folder);
        }
        command
            .args([
                "-w",
                &self.world,
                "componentize",
                APP_MODULE,
                "-p",
                ".",
                "-o",
            ])
            .arg(&output);
        let status = command
            .status()
            .with_context(|| format!("running componentize-py in {}", dir.display()))?;
        if !status.success() {
            bail!(
                "componentize-py could not build {} (its errors are above: a Python error in \
                 {APP_MODULE}.py or a module it imports, or a class that does not match `{}`)",
                dir.display(),
                self.world
            );
        }
        Ok(output)
    }
}

/// The componentize-py to run: `$PIPEWRIGHT_COMPONENTIZE_PY`, else the one on `PATH`; a missing
/// one is named with the one command that installs it.
pub fn componentize_py() -> anyhow::Result<PathBuf> {
    let install = format!(
        "componentize-py is not installed: `pip install componentize-py=={COMPONENTIZE_PY_VERSION}` \
         (or set {COMPONENTIZE_PY_ENV} to its path)"
    );
    if let Some(named) = std::env::var_os(COMPONENTIZE_PY_ENV).filter(|v| !v.is_empty()) {
        let named = PathBuf::from(named);
        if named.is_file() {
            return Ok(named);
        }
        bail!(
            "{install}; {COMPONENTIZE_PY_ENV} names {}, which is not a file",
            named.display()
        );
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("componentize-py"))
        .find(|candidate| candidate.is_file())
        .with_context(|| install)
}

/// Runs the project's `test_*.py` with `python3 -m unittest`; a project without any passes.
pub fn unit_tests(dir: &Path, id: &str) -> anyhow::Result<()> {
    let has_tests = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .any(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with("test_") && name.ends_with(".py")
        });
    if !has_tests {
        eprintln!("{id}: no unit tests (add test_*.py)");
        return Ok(());
    }
    let status = Command::new("python3")
        .current_dir(dir)
        .args(["-m", "unittest", "discover", "-s", ".", "-p", "test_*.py"])
        // No __pycache__ left in the project by a test run.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .status()
        .context("running python3 -m unittest (is python3 installed?)")?;
    if !status.success() {
        bail!("{id}: the unit tests failed (python3 -m unittest, above)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_file_with_an_unknown_key_or_language_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.py"), "").unwrap();
        let write = |text: &str| std::fs::write(dir.path().join(MANIFEST), text).unwrap();
        write("name: a\nversion: 0.1.0\nlanguage: python\nworld: w\nwit: []\n");
        assert!(PythonProject::read(dir.path()).unwrap().is_some());
        write("name: a\nversion: 0.1.0\nlanguage: python\nworld: w\nwit: []\nwolrd: x\n");
        let error = PythonProject::read(dir.path()).unwrap_err();
        assert!(format!("{error:#}").contains("wolrd"), "{error:#}");
        write("name: a\nversion: 0.1.0\nlanguage: ruby\nworld: w\nwit: []\n");
        let error = PythonProject::read(dir.path()).unwrap_err();
        assert!(error.to_string().contains("ruby"), "{error}");
    }

    #[test]
    fn no_project_file_is_not_a_python_project() {
        let dir = tempfile::tempdir().unwrap();
        assert!(PythonProject::read(dir.path()).unwrap().is_none());
    }
}
