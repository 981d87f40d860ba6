//! README.md as a new user follows it: every `sh` block after its two opening commands (but
//! those fenced `sh no-run`), in order, in one shell, on a fresh data dir, with the commands exactly as written.
//!
//! What a reader's machine has is provided the way the reader would have it:
//! - `cargo run --release -- ARGS` runs this build's `pipewright ARGS` (a release build of the
//!   server would take minutes more and test nothing else); any other `cargo` command is cargo
//!   itself, run in the repository, into the test's own target dir (`target` in the shell's
//!   folder points there, as it would in a checkout);
//! - the repository's `plugins/` are beside the shell, as in a checkout;
//! - `curl` fails on an HTTP error (`--fail-with-body`), so an answer the README did not mean
//!   fails the test instead of scrolling by;
//! - it runs in a network namespace of its own, so the README's `localhost:8080` is free
//!   whatever else runs on this machine. That needs root (`unshare --net`): without it the test
//!   is skipped with a note, except under `CI=true`, where it fails.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use crate::cli::BIN;
use crate::kit::{guide_target_dir, repository, runnable_shell_blocks, text};

fn can_make_a_network_namespace() -> bool {
    let made = Command::new("unshare")
        .args(["--net", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !made && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "CI=true but `unshare --net` fails: README's blocks cannot run on a port of their own"
        );
    }
    if !made {
        eprintln!("`unshare --net` fails (not root?): skipping the README run");
    }
    made
}

#[test]
fn every_shell_block_of_the_readme_runs_in_order() {
    if !can_make_a_network_namespace() {
        return;
    }
    let readme = std::fs::read_to_string(repository().join("README.md")).unwrap();
    let mut blocks = runnable_shell_blocks(&readme);
    // README opens with its two commands: serving (the tour starts its own server) and running
    // the tests (this test is one of them). The rest is the walk-through, run here.
    let opening: Vec<String> = blocks.drain(..2.min(blocks.len())).collect();
    assert_eq!(
        opening,
        [
            "cargo run --release -- serve\n",
            "cargo test --workspace --no-fail-fast\n"
        ],
        "README no longer opens with its two commands"
    );
    assert!(blocks.len() >= 5, "README lost its blocks: {blocks:?}");

    let work = tempfile::tempdir().unwrap();
    let target = guide_target_dir();
    std::fs::create_dir_all(&target).unwrap();
    symlink(&target, work.path().join("target")).unwrap();
    symlink(repository().join("plugins"), work.path().join("plugins")).unwrap();
    let shims = work.path().join(".shims");
    std::fs::create_dir(&shims).unwrap();
    let real_cargo = which("cargo");
    let real_curl = which("curl");
    write_program(
        &shims.join("cargo"),
        &format!(
            "#!/usr/bin/env bash\n\
             if [ \"$1\" = run ]; then\n  while [ \"$1\" != -- ]; do shift; done; shift\n  exec {BIN} \"$@\"\nfi\n\
             cd {repo} && exec {real_cargo} \"$@\"\n",
            repo = repository().display()
        ),
    );
    write_program(
        &shims.join("curl"),
        // `-f` (as in `curl -sf`) and `--fail-with-body` may not be given together.
        &format!(
            "#!/usr/bin/env bash\n\
             for arg in \"$@\"; do case $arg in --fail) exec {real_curl} \"$@\";; --*) ;; -*f*) exec {real_curl} \"$@\";; esac; done\n\
             exec {real_curl} --fail-with-body \"$@\"\n"
        ),
    );

    // Servers the README starts in the background are stopped when the shell ends.
    let script = std::iter::once(
        "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n".to_string(),
    )
    .chain(
        blocks
            .iter()
            .enumerate()
            .map(|(i, block)| format!("echo '== README block {}' >&2\n{block}", i + 1)),
    )
    .collect::<String>();
    std::fs::write(work.path().join("readme.sh"), script).unwrap();

    let path = format!(
        "{}:{}",
        shims.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // A README loop that never ends (`until … ready`) fails the test rather than hanging it.
    let output = Command::new("timeout")
        .args([
            "900",
            "unshare",
            "--net",
            "bash",
            "-c",
            "ip link set lo up && exec bash readme.sh",
        ])
        .current_dir(work.path())
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", &target)
        // The compile cache of the tests' own servers: the README's server finds the Python
        // runtime compiled (as a user's does from its second start) instead of taking a minute
        // of a debug build's time to compile it.
        .env("PIPEWRIGHT_CACHE_DIR", crate::harness::shared_cache_dir())
        .env_remove("PIPEWRIGHT_DATABASE_URL")
        .env_remove("PIPEWRIGHT_BLOB_STORE")
        .output()
        .expect("running bash");
    assert!(
        output.status.success(),
        "README failed:\n--- stdout\n{}\n--- stderr\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

fn which(program: &str) -> String {
    let found = Command::new("bash")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .expect("bash");
    let path = text(&found.stdout).trim().to_string();
    assert!(!path.is_empty(), "{program} is not on PATH");
    path
}

fn write_program(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
