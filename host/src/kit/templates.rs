//! `pipewright plugin new`: writes a ready plugin crate from one of the templates in the
//! repository's `sdk/templates/<kind>/`, which are embedded in the binary (so `plugin new` works
//! from an installed `pipewright` too, given the SDK's folder); with `--lang python`, a Python
//! project from `sdk/templates/python/<kind>/`, with the WIT folders of the world it implements
//! (embedded too, from `wit/`) and the same fixtures as the Rust template of its kind: both
//! languages' templates behave alike, and one set of cases says how.
//!
//! A template file's text may hold placeholders, replaced as the crate is written:
//! `{{name}}` (the plugin's name, `my-type`), `{{crate_name}}` (`my_type`), `{{type_id}}` (a type
//! handler's type id: the name), `{{display_name}}` (`My Type`) and `{{sdk_path}}` (the SDK the
//! crate depends on by path). `Cargo.toml` is stored as `Cargo.toml.tmpl` so that neither cargo
//! nor an editor takes a template folder for a package.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::cli::{PluginKind, PluginLanguage};

/// The SDK folder of this source tree, for the tests. Not the default `--sdk`: a path of the
/// build machine has no place in the binary (see [`sdk_beside_executable`]).
#[cfg(test)]
const SOURCE_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk");

/// The environment variable naming the SDK folder when `--sdk` is not given.
pub const SDK_ENV: &str = "PIPEWRIGHT_SDK";

/// One embedded template file: its path in the new crate and its text.
type TemplateFile = (&'static str, &'static str);

macro_rules! template {
    ($kind:literal, $($stored:literal => $written:literal),* $(,)?) => {
        &[$(($written, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk/templates/", $kind, "/", $stored)))),*]
    };
}

/// Files of one of the repository's frozen WIT folders, written to the same path in a project.
macro_rules! wit {
    ($folder:literal, $($file:literal),* $(,)?) => {
        &[$((concat!("wit/", $folder, "/", $file), include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/", $folder, "/", $file)))),*]
    };
}

const TYPE_HANDLER: &[TemplateFile] = template!("type-handler",
    "Cargo.toml.tmpl" => "Cargo.toml",
    ".gitignore" => ".gitignore",
    "src/lib.rs" => "src/lib.rs",
    "fixtures/describe.json" => "fixtures/describe.json",
    "fixtures/validate.json" => "fixtures/validate.json",
    "fixtures/scaffold.json" => "fixtures/scaffold.json",
    "fixtures/launch.json" => "fixtures/launch.json",
);

const POLICY: &[TemplateFile] = template!("policy",
    "Cargo.toml.tmpl" => "Cargo.toml",
    ".gitignore" => ".gitignore",
    "src/lib.rs" => "src/lib.rs",
    "fixtures/approve.json" => "fixtures/approve.json",
    "fixtures/refuse.json" => "fixtures/refuse.json",
);

const RUNNABLE: &[TemplateFile] = template!("runnable",
    "Cargo.toml.tmpl" => "Cargo.toml",
    ".gitignore" => ".gitignore",
    "pipeline.yaml" => "pipeline.yaml",
    "src/lib.rs" => "src/lib.rs",
    "fixtures/run.json" => "fixtures/run.json",
);

/// The first contract, which every later world includes.
const WIT_0_1_0: &[TemplateFile] = wit!(
    "plugin@0.1.0",
    "host.wit",
    "pipeline-type.wit",
    "policy.wit",
    "types.wit",
    "worlds.wit"
);

const PYTHON_TYPE_HANDLER: &[&[TemplateFile]] = &[
    template!("python/type-handler",
        "plugin.yaml" => "plugin.yaml",
        ".gitignore" => ".gitignore",
        "app.py" => "app.py",
        "rules.py" => "rules.py",
        "test_rules.py" => "test_rules.py",
    ),
    template!("type-handler",
        "fixtures/describe.json" => "fixtures/describe.json",
        "fixtures/validate.json" => "fixtures/validate.json",
        "fixtures/scaffold.json" => "fixtures/scaffold.json",
        "fixtures/launch.json" => "fixtures/launch.json",
    ),
    WIT_0_1_0,
    wit!("plugin@0.3.0", "surfaces.wit", "worlds.wit"),
];

const PYTHON_POLICY: &[&[TemplateFile]] = &[
    template!("python/policy",
        "plugin.yaml" => "plugin.yaml",
        ".gitignore" => ".gitignore",
        "app.py" => "app.py",
        "rules.py" => "rules.py",
        "test_rules.py" => "test_rules.py",
    ),
    template!("policy",
        "fixtures/approve.json" => "fixtures/approve.json",
        "fixtures/refuse.json" => "fixtures/refuse.json",
    ),
    WIT_0_1_0,
    wit!("plugin@0.2.0", "about.wit", "worlds.wit"),
];

/// A Python pipeline is a Mystic pipeline folder: no WIT, no component of its own; its
/// fixtures name the runtime's outputs (`output_0`) and Mystic's error kinds.
const PYTHON_RUNNABLE: &[&[TemplateFile]] = &[template!("python/runnable",
    "pipeline.yaml" => "pipeline.yaml",
    "new_pipeline.py" => "new_pipeline.py",
    "README.md" => "README.md",
    ".gitignore" => ".gitignore",
    "fixtures/run.json" => "fixtures/run.json",
)];

/// The files of a `lang` project of `kind`; Err for a pairing no template covers.
fn files_of(kind: PluginKind, lang: PluginLanguage) -> anyhow::Result<Vec<TemplateFile>> {
    let parts: &[&[TemplateFile]] = match (lang, kind) {
        (PluginLanguage::Rust, PluginKind::TypeHandler) => &[TYPE_HANDLER],
        (PluginLanguage::Rust, PluginKind::Policy) => &[POLICY],
        (PluginLanguage::Rust, PluginKind::Runnable) => &[RUNNABLE],
        (PluginLanguage::Python, PluginKind::TypeHandler) => PYTHON_TYPE_HANDLER,
        (PluginLanguage::Python, PluginKind::Policy) => PYTHON_POLICY,
        (PluginLanguage::Python, PluginKind::Runnable) => PYTHON_RUNNABLE,
    };
    Ok(parts.iter().flat_map(|part| part.iter().copied()).collect())
}

/// Why a plugin name is refused: it becomes the crate's name, the name it is uploaded as and,
/// for a type handler, the type id, so it keeps to what all three accept.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if name.is_empty() || name.len() > 64 {
        bail!(
            "a plugin name has 1 to 64 characters; `{name}` has {}",
            name.len()
        );
    }
    if !name.chars().all(allowed) {
        bail!("a plugin name holds lowercase letters, digits and `-` only: `{name}`");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) || name.ends_with('-') {
        bail!("a plugin name starts with a letter and does not end with `-`: `{name}`");
    }
    Ok(())
}

/// The SDK the new crate depends on: `--sdk`, else `$PIPEWRIGHT_SDK`, else the `sdk/` of the
/// checkout this binary sits in.
pub fn resolve_sdk(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    let (chosen, origin) = match (flag, std::env::var_os(SDK_ENV)) {
        (Some(path), _) => (path.to_path_buf(), "--sdk"),
        (None, Some(path)) if !path.is_empty() => (PathBuf::from(path), SDK_ENV),
        _ => match sdk_beside_executable() {
            Some(sdk) => (sdk, "the checkout of this binary"),
            None => bail!(
                "cannot find pipewright's SDK (this binary is not inside a pipewright checkout): \
                 pass `--sdk PATH` (the repository's `sdk/` folder) or set {SDK_ENV}"
            ),
        },
    };
    if !chosen.join("Cargo.toml").is_file() {
        bail!(
            "the SDK from {origin} ({}) has no Cargo.toml: pass `--sdk PATH` (the repository's `sdk/` folder)",
            chosen.display()
        );
    }
    // The crate may be built from anywhere: give cargo an absolute path.
    chosen
        .canonicalize()
        .with_context(|| format!("resolving the SDK path {}", chosen.display()))
}

/// The `sdk/` of the checkout whose build this executable is (`target/<profile>/pipewright`, as
/// `cargo build` and `cargo run` leave it): the nearest ancestor of the executable with an
/// `sdk/` holding a `Cargo.toml` and the templates. None for a binary installed elsewhere.
fn sdk_beside_executable() -> Option<PathBuf> {
    let executable = std::env::current_exe().ok()?.canonicalize().ok()?;
    executable
        .ancestors()
        .skip(1)
        .map(|dir| dir.join("sdk"))
        .find(|sdk| sdk.join("Cargo.toml").is_file() && sdk.join("templates").is_dir())
}

/// Writes the `kind` template in `lang` as project `name` into `parent/name`; returns that
/// folder. A Rust crate depends on the SDK by path: `sdk` is resolved (see [`resolve_sdk`]) only
/// for it.
pub fn write_project(
    kind: PluginKind,
    lang: PluginLanguage,
    name: &str,
    parent: &Path,
    sdk: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    let files = files_of(kind, lang)?;
    let sdk = match lang {
        PluginLanguage::Rust => resolve_sdk(sdk)?,
        PluginLanguage::Python => PathBuf::new(),
    };
    let dir = parent.join(name);
    if dir.exists() {
        let empty = dir.is_dir()
            && std::fs::read_dir(&dir)
                .with_context(|| format!("reading {}", dir.display()))?
                .next()
                .is_none();
        if !empty {
            bail!(
                "{} exists and is not empty: choose another name or --dir",
                dir.display()
            );
        }
    }
    let placeholders = Placeholders::new(name, &sdk);
    for (path, text) in files {
        let target = dir.join(path);
        if let Some(folder) = target.parent() {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
        }
        std::fs::write(&target, placeholders.fill(text))
            .with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(dir)
}

/// The values of the placeholders for one new crate.
struct Placeholders(Vec<(&'static str, String)>);

impl Placeholders {
    fn new(name: &str, sdk: &Path) -> Self {
        let display_name = name
            .split('-')
            .filter(|word| !word.is_empty())
            .map(|word| {
                let mut chars = word.chars();
                let first = chars.next().map(|c| c.to_ascii_uppercase());
                first.into_iter().chain(chars).collect::<String>()
            })
            .collect::<Vec<_>>()
            .join(" ");
        // The SDK path lands in a TOML basic string.
        let sdk_path = sdk
            .display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"");
        Placeholders(vec![
            ("{{name}}", name.to_string()),
            ("{{crate_name}}", name.replace('-', "_")),
            ("{{type_id}}", name.to_string()),
            ("{{display_name}}", display_name),
            ("{{sdk_path}}", sdk_path),
        ])
    }

    fn fill(&self, text: &str) -> String {
        self.0.iter().fold(text.to_string(), |text, (key, value)| {
            text.replace(key, value)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_digits_and_dashes() {
        for good in ["my-type", "policy2", "a"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "My-type", "my_type", "2fast", "trailing-", "a/b", "été"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_kind_is_written_with_its_placeholders_filled() {
        let sdk = Path::new(SOURCE_SDK).canonicalize().unwrap();
        for kind in [
            PluginKind::TypeHandler,
            PluginKind::Policy,
            PluginKind::Runnable,
        ] {
            let parent = tempfile::tempdir().unwrap();
            let dir = write_project(
                kind,
                PluginLanguage::Rust,
                "word-count",
                parent.path(),
                Some(&sdk),
            )
            .unwrap();
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
            assert!(manifest.contains("name = \"word-count\""), "{manifest}");
            assert!(manifest.contains("[workspace]"), "{manifest}");
            assert!(manifest.contains(&sdk.display().to_string()), "{manifest}");
            for (path, _) in files_of(kind, PluginLanguage::Rust).unwrap() {
                let text = std::fs::read_to_string(dir.join(path)).unwrap();
                assert!(!text.contains("{{"), "{kind:?} {path} keeps a placeholder");
            }
            assert!(dir.join("fixtures").read_dir().unwrap().next().is_some());
        }
    }

    #[test]
    fn a_python_project_carries_its_manifest_wit_and_fixtures() {
        for kind in [PluginKind::TypeHandler, PluginKind::Policy] {
            let parent = tempfile::tempdir().unwrap();
            // No SDK is needed (nor looked for) for a Python project.
            let dir = write_project(
                kind,
                PluginLanguage::Python,
                "word-count",
                parent.path(),
                None,
            )
            .unwrap();
            let project = super::super::python::PythonProject::read(&dir)
                .unwrap()
                .unwrap();
            assert_eq!(
                (project.name.as_str(), project.version.as_str()),
                ("word-count", "0.1.0")
            );
            for folder in &project.wit {
                assert!(
                    dir.join(folder).join("worlds.wit").is_file(),
                    "{kind:?}: {folder:?}"
                );
            }
            for (path, _) in files_of(kind, PluginLanguage::Python).unwrap() {
                let text = std::fs::read_to_string(dir.join(path)).unwrap();
                assert!(!text.contains("{{"), "{kind:?} {path} keeps a placeholder");
            }
            assert!(dir.join("fixtures").read_dir().unwrap().next().is_some());
        }
    }

    #[test]
    fn a_python_runnable_is_a_mystic_pipeline_folder_named_by_its_tag() {
        let parent = tempfile::tempdir().unwrap();
        let dir = write_project(
            PluginKind::Runnable,
            PluginLanguage::Python,
            "word-count",
            parent.path(),
            None,
        )
        .unwrap();
        let project = super::super::PluginProject::read(&dir).unwrap();
        assert_eq!(
            (
                project.name.as_str(),
                project.version.as_str(),
                project.runnable
            ),
            ("word-count", "0.1.0", true)
        );
        assert!(matches!(
            project.language,
            super::super::Language::PythonPipeline
        ));
        for (path, _) in files_of(PluginKind::Runnable, PluginLanguage::Python).unwrap() {
            let text = std::fs::read_to_string(dir.join(path)).unwrap();
            assert!(!text.contains("{{"), "{path} keeps a placeholder");
        }
    }

    #[test]
    fn an_existing_non_empty_folder_is_refused() {
        let parent = tempfile::tempdir().unwrap();
        let sdk = Path::new(SOURCE_SDK);
        std::fs::create_dir(parent.path().join("taken")).unwrap();
        // An empty folder is fine (made ahead, e.g. by `git init`-less mkdir).
        let rust = PluginLanguage::Rust;
        write_project(PluginKind::Policy, rust, "taken", parent.path(), Some(sdk)).unwrap();
        let error =
            write_project(PluginKind::Policy, rust, "taken", parent.path(), Some(sdk)).unwrap_err();
        assert!(error.to_string().contains("not empty"), "{error}");
    }

    #[test]
    fn every_file_of_a_template_folder_is_embedded() {
        fn walk(root: &Path, dir: &Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, found);
                } else {
                    let relative = path.strip_prefix(root).unwrap().to_string_lossy();
                    found.push(relative.trim_end_matches(".tmpl").replace('\\', "/"));
                }
            }
        }
        let templates = Path::new(SOURCE_SDK).join("templates");
        let cases = [
            (
                PluginKind::TypeHandler,
                PluginLanguage::Rust,
                "type-handler",
            ),
            (PluginKind::Policy, PluginLanguage::Rust, "policy"),
            (PluginKind::Runnable, PluginLanguage::Rust, "runnable"),
            (
                PluginKind::TypeHandler,
                PluginLanguage::Python,
                "python/type-handler",
            ),
            (PluginKind::Policy, PluginLanguage::Python, "python/policy"),
            (
                PluginKind::Runnable,
                PluginLanguage::Python,
                "python/runnable",
            ),
        ];
        for (kind, lang, folder) in cases {
            let root = templates.join(folder);
            let mut on_disk = Vec::new();
            walk(&root, &root, &mut on_disk);
            on_disk.sort();
            // A Python plugin also gets its kind's fixtures (unless its folder has its own) and
            // WIT, from their own folders.
            let own_fixtures = root.join("fixtures").is_dir();
            let mut embedded: Vec<String> = files_of(kind, lang)
                .unwrap()
                .iter()
                .map(|(path, _)| path.to_string())
                .filter(|path| {
                    lang == PluginLanguage::Rust
                        || !((path.starts_with("fixtures/") && !own_fixtures)
                            || path.starts_with("wit/"))
                })
                .collect();
            embedded.sort();
            assert_eq!(
                on_disk, embedded,
                "sdk/templates/{folder} and `{kind:?}`'s list differ"
            );
        }
    }

    #[test]
    fn the_display_name_is_the_name_in_words() {
        let placeholders = Placeholders::new("word-count", Path::new("/sdk"));
        assert_eq!(placeholders.fill("{{display_name}}"), "Word Count");
    }
}
