//! The plugin author's kit through the real `pipewright` binary: `plugin new` and `plugin test`
//! on each template, and `sdk/README.md`'s walk-through run as written against a server, so the
//! guide stays true.
//!
//! The crates are built by real cargo into one target dir under this run's target
//! (`kit-guide`), so a second run is incremental. Every crate here has its own name: they share
//! that target dir, and a crate's artifact is found by its file name.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::cli::BIN;
use crate::harness::{Backend, TestServer};

/// The target dir of every crate these tests build.
pub fn guide_target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kit-guide")
}

pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ sits in the repository")
        .to_path_buf()
}

/// `pipewright ARGS` in `dir`, with the SDK and target dir a plugin author's shell would have.
fn pipewright(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env("PIPEWRIGHT_SDK", repository().join("sdk"))
        .env("CARGO_TARGET_DIR", guide_target_dir())
        // Where a Python pipeline's `plugin test` keeps the runtime's compiled code: one
        // compile for every test of the run, and nothing left in the user's own cache.
        .env("XDG_CACHE_HOME", guide_target_dir().join("xdg-cache"))
        .output()
        .expect("running pipewright")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// componentize-py, which builds Python plugins (the variable `pipewright plugin` itself reads);
/// None outside CI when it is not given.
pub fn componentize_py() -> Option<String> {
    crate::harness::peer_from_env("PIPEWRIGHT_COMPONENTIZE_PY", "the Python plugin tests")
}

/// `plugin new` then `plugin test` passes; a fixture that expects the wrong thing makes
/// `plugin test` fail, naming the plugin, its version and the export.
fn new_crate_passes_and_a_broken_fixture_fails(
    kind: &str,
    name: &str,
    broken_fixture: &str,
    export: &str,
) {
    new_project_passes_and_a_broken_fixture_fails("rust", kind, name, broken_fixture, export)
}

fn new_project_passes_and_a_broken_fixture_fails(
    lang: &str,
    kind: &str,
    name: &str,
    broken_fixture: &str,
    export: &str,
) {
    let parent = tempfile::tempdir().unwrap();
    let created = pipewright(
        parent.path(),
        &["plugin", "new", "--kind", kind, "--lang", lang, name],
    );
    assert!(
        created.status.success(),
        "plugin new: {}",
        text(&created.stderr)
    );
    let dir = parent.path().join(name);
    assert_eq!(
        parent.path().join(text(&created.stdout).trim()),
        parent.path().join(name),
        "plugin new prints the project's folder"
    );
    let manifest = match (lang, kind) {
        ("python", "runnable") => "pipeline.yaml",
        ("python", _) => "plugin.yaml",
        _ => "Cargo.toml",
    };
    assert!(dir.join(manifest).is_file());

    let tested = pipewright(&dir, &["plugin", "test"]);
    assert!(
        tested.status.success(),
        "the template's own fixtures pass:\n{}\n{}",
        text(&tested.stdout),
        text(&tested.stderr)
    );
    assert!(
        text(&tested.stdout).contains(&format!("{name}@0.1.0: ")),
        "{}",
        text(&tested.stdout)
    );

    std::fs::write(dir.join("fixtures/broken.json"), broken_fixture).unwrap();
    let tested = pipewright(&dir, &["plugin", "test"]);
    let stdout = text(&tested.stdout);
    assert!(
        !tested.status.success(),
        "a broken fixture fails:\n{stdout}"
    );
    let failure = stdout
        .lines()
        .find(|line| line.starts_with("FAIL"))
        .unwrap_or_else(|| panic!("no FAIL line in:\n{stdout}"));
    assert!(failure.contains(&format!("{name}@0.1.0")), "{failure}");
    assert!(failure.contains(&format!("export `{export}`")), "{failure}");
    assert!(failure.contains("fixtures/broken.json"), "{failure}");
    assert!(
        text(&tested.stderr).contains("1 of"),
        "{}",
        text(&tested.stderr)
    );
}

#[test]
fn type_handler_template_tests_itself() {
    new_crate_passes_and_a_broken_fixture_fails(
        "type-handler",
        "kit-type",
        r#"{"export": "validate", "files": {}, "expect": {"diagnostics": []}}"#,
        "validate",
    );
}

#[test]
fn policy_template_tests_itself() {
    new_crate_passes_and_a_broken_fixture_fails(
        "policy",
        "kit-policy",
        r#"{"export": "check", "candidate": {"name": "ab"}, "expect": "approve"}"#,
        "check",
    );
}

#[test]
fn runnable_template_tests_itself() {
    new_crate_passes_and_a_broken_fixture_fails(
        "runnable",
        "kit-runnable",
        r#"{"export": "run", "inputs": {"text": "a b"}, "expect": {"outputs": {"words": 3}}}"#,
        "run",
    );
}

#[test]
fn python_type_handler_template_tests_itself() {
    if componentize_py().is_none() {
        return;
    }
    new_project_passes_and_a_broken_fixture_fails(
        "python",
        "type-handler",
        "kit-py-type",
        r#"{"export": "validate", "files": {}, "expect": {"diagnostics": []}}"#,
        "validate",
    );
}

#[test]
fn python_policy_template_tests_itself() {
    if componentize_py().is_none() {
        return;
    }
    new_project_passes_and_a_broken_fixture_fails(
        "python",
        "policy",
        "kit-py-policy",
        r#"{"export": "check", "candidate": {"name": "ab"}, "expect": "approve"}"#,
        "check",
    );
}

/// A Python pipeline from `plugin new --kind runnable --lang python`: its fixtures run on the
/// Python runtime built into pipewright; `plugin push` registers it as its tag's version, and
/// it runs on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_runnable_template_tests_itself_then_pushes_and_runs() {
    if componentize_py().is_none() {
        return;
    }
    tokio::task::spawn_blocking(|| {
        new_project_passes_and_a_broken_fixture_fails(
            "python",
            "runnable",
            "kit-py-run",
            r#"{"export": "run", "inputs": {"text": "a b"}, "expect": {"outputs": {"output_0": 3}}}"#,
            "run",
        )
    })
    .await
    .unwrap();

    let server = TestServer::start(Backend::Sqlite).await;
    let token = server.token("alice").await;
    let parent = tempfile::tempdir().unwrap();
    let base = server.base.clone();
    let (pushed, built) = {
        let (dir, token) = (parent.path().to_path_buf(), token.clone());
        tokio::task::spawn_blocking(move || {
            let created = pipewright(
                &dir,
                &[
                    "plugin", "new", "--kind", "runnable", "--lang", "python", "counter",
                ],
            );
            assert!(created.status.success(), "{}", text(&created.stderr));
            let project = dir.join("counter");
            let built = pipewright(&project, &["plugin", "build"]);
            let pushed = pipewright(
                &project,
                &["plugin", "push", "--server", &base, "--token", &token],
            );
            (pushed, built)
        })
        .await
        .unwrap()
    };
    assert!(built.status.success(), "{}", text(&built.stderr));
    assert!(
        pushed.status.success(),
        "{}{}",
        text(&pushed.stdout),
        text(&pushed.stderr)
    );
    assert_eq!(text(&pushed.stdout).trim(), "alice/counter:0.1.0");
    let (status, run) = server
        .post(
            "/v4/runs",
            &token,
            serde_json::json!({"pipeline": "alice/counter:0.1.0",
                "inputs": [{"type": "string", "value": "one two three four"}]}),
        )
        .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["outputs"][0]["value"], 4, "{run}");
}

/// A Python rule that breaks its own unit test stops `plugin test` before any build, naming
/// the plugin; without componentize-py, `plugin build` says in one line what to install.
#[test]
fn python_unit_tests_run_first_and_a_missing_componentize_py_is_named() {
    let parent = tempfile::tempdir().unwrap();
    let created = pipewright(
        parent.path(),
        &[
            "plugin",
            "new",
            "--kind",
            "policy",
            "--lang",
            "python",
            "py-broken",
        ],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let dir = parent.path().join("py-broken");
    let rules = std::fs::read_to_string(dir.join("rules.py")).unwrap();
    std::fs::write(
        dir.join("rules.py"),
        rules.replace("MIN_NAME_LENGTH = 4", "MIN_NAME_LENGTH = 40"),
    )
    .unwrap();
    let tested = pipewright(&dir, &["plugin", "test"]);
    assert!(!tested.status.success());
    let stderr = text(&tested.stderr);
    assert!(
        stderr.contains("py-broken@0.1.0: the unit tests failed"),
        "{stderr}"
    );
    assert!(
        !dir.join("build").exists(),
        "nothing was built after a failed unit test"
    );

    let built = Command::new(BIN)
        .current_dir(&dir)
        .args(["plugin", "build"])
        .env("PATH", "/usr/bin:/bin")
        .env_remove("PIPEWRIGHT_COMPONENTIZE_PY")
        .output()
        .unwrap();
    assert!(!built.status.success());
    let stderr = text(&built.stderr);
    assert!(
        stderr.contains("pip install componentize-py==0.25.1"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

#[test]
fn plugin_new_refuses_bad_names_and_taken_folders() {
    let parent = tempfile::tempdir().unwrap();
    let bad = pipewright(
        parent.path(),
        &["plugin", "new", "--kind", "policy", "Bad_Name"],
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("lowercase"),
        "{}",
        text(&bad.stderr)
    );

    std::fs::create_dir(parent.path().join("taken")).unwrap();
    std::fs::write(parent.path().join("taken/notes.txt"), "mine").unwrap();
    let taken = pipewright(
        parent.path(),
        &["plugin", "new", "--kind", "policy", "taken"],
    );
    assert!(!taken.status.success());
    assert!(
        text(&taken.stderr).contains("not empty"),
        "{}",
        text(&taken.stderr)
    );
}

/// The `sh` blocks of `markdown`, in order; `sh no-run` blocks (and every other language) are
/// left out.
pub fn runnable_shell_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn the_guide_keeps_its_no_run_blocks_out() {
    let blocks = runnable_shell_blocks(
        "a\n```sh no-run\nserve\n```\n```sh\none\n```\n```text\nx\n```\n```sh\ntwo\nthree\n```\n",
    );
    assert_eq!(blocks, ["one\n", "two\nthree\n"]);
}

/// A new type made live through the CLI: `sdk/README.md`'s walk-through, run as written against
/// a server whose admin account is `ops` (what its `sh no-run` blocks set up), then checked
/// from the user's side: the type is listed and a pipeline of it exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guide_makes_a_new_type_live_through_the_cli() {
    // The guide's Python half builds with componentize-py.
    if componentize_py().is_none() {
        return;
    }
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.admin_account = Some("ops".into())
    })
    .await;
    let token = server.token_in("you", Some("ops")).await;
    let guide = std::fs::read_to_string(repository().join("sdk/README.md")).unwrap();
    let blocks = runnable_shell_blocks(&guide);
    assert!(blocks.len() >= 5, "the guide lost its blocks: {blocks:?}");
    let script = std::iter::once("set -euo pipefail\n".to_string())
        .chain(
            blocks
                .iter()
                .enumerate()
                .map(|(i, block)| format!("echo '== guide block {}' >&2\n{block}", i + 1)),
        )
        .collect::<String>();

    let home = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (base, script_token, sdk) = (server.base.clone(), token.clone(), repository().join("sdk"));
    let home_dir = home.path().to_path_buf();
    // The guide builds crates for minutes: off the runtime the server is served on.
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(home_dir)
            .env("PATH", path)
            .env("PIPEWRIGHT_SERVER", base)
            .env("PIPEWRIGHT_TOKEN", script_token)
            .env("PIPEWRIGHT_SDK", sdk)
            .env("CARGO_TARGET_DIR", guide_target_dir())
            .output()
            .expect("running bash")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "the guide failed:\n--- stdout\n{}\n--- stderr\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );

    let (status, types) = server.get("/v1/types", &token).await;
    assert_eq!(status, 200, "{types}");
    let recipe = types
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "recipe")
        .unwrap_or_else(|| panic!("the new type is not listed: {types}"));
    assert_eq!(recipe["handler"], "recipe@0.1.0");
    let (status, pipeline) = server.get("/v1/pipelines/ops/pancakes", &token).await;
    assert_eq!(status, 200, "{pipeline}");
    assert_eq!(pipeline["type"], "recipe", "{pipeline}");
    // And one more pipeline of it, made here rather than by the guide.
    server
        .create_pipeline(&token, "ops", "waffles", "recipe")
        .await;

    // The Python type is live, with a version its own scaffold made.
    let checklist = types
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "checklist")
        .unwrap_or_else(|| panic!("the Python type is not listed: {types}"));
    assert_eq!(checklist["handler"], "checklist@0.1.0");
    let (status, packing) = server.get("/v1/pipelines/ops/packing:0.1.0", &token).await;
    assert_eq!(status, 200, "{packing}");
    // The Python policy is the chain in force for `ops`.
    let (status, bindings) = server.get("/v1/policy-bindings", &token).await;
    assert_eq!(status, 200, "{bindings}");
    assert!(
        bindings.to_string().contains("py-name-length"),
        "{bindings}"
    );
}
