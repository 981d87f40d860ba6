//! Every served OpenAPI document is true: Schemathesis (every check, every phase, stateful
//! included, a fixed seed and bounded examples) runs against a live server over each document
//! in turn and finds nothing. The configuration and hooks are in `tests/schemathesis/`.
//!
//! Schemathesis is found through `PIPEWRIGHT_TEST_SCHEMATHESIS` (the `schemathesis` program,
//! installed by `.ci/run`); when it is missing the test is skipped with a note, except under
//! `CI=true`, where that fails the run.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::{peer_from_env, Backend, TestServer, ADMIN_ACCOUNT};

/// Test cases per operation and phase: enough to find a lie, few enough for CI's two cores.
const MAX_EXAMPLES: &str = "25";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_in_any_document() {
    let Some(program) = peer_from_env("PIPEWRIGHT_TEST_SCHEMATHESIS", "the Schemathesis run")
    else {
        return;
    };
    let server = TestServer::start_with_admin(Backend::Sqlite).await;
    // A member of the admin account, so the admin routes are exercised past their 403.
    let token = server.token_in("st-admin", Some(ADMIN_ACCOUNT)).await;
    let config_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/schemathesis");
    let mut failures = Vec::new();
    for document in pipewright::api::documents::all() {
        let url = format!("{}/openapi/{}.json", server.base, document.surface);
        let report = tempfile::tempdir().unwrap();
        let (program, token, config_dir) = (program.clone(), token.clone(), config_dir.clone());
        let report_dir = report.path().to_path_buf();
        let output = tokio::task::spawn_blocking(move || {
            Command::new(&program)
                .arg("--config-file")
                .arg(config_dir.join("schemathesis.toml"))
                .args(["--no-color", "run", &url, "--checks", "all"])
                .args(["--phases", "examples,coverage,fuzzing,stateful"])
                .args([
                    "--max-examples",
                    MAX_EXAMPLES,
                    "--seed",
                    "20261130",
                    "--workers",
                    "1",
                ])
                .arg("--header")
                .arg(format!("Authorization: Bearer {token}"))
                .args(["--generation-database", "none", "--report-dir"])
                .arg(&report_dir)
                // Its cache folder goes there too, not into the repository.
                .current_dir(&report_dir)
                .env("SCHEMATHESIS_HOOKS", "hooks")
                .env("PYTHONPATH", &config_dir)
                .output()
                .expect("Schemathesis runs")
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            failures.push(format!(
                "== {} ({})\n{stdout}\n{}",
                document.surface,
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        } else {
            // The summary line, so the log shows how much was tried.
            let summary = stdout
                .lines()
                .rev()
                .find(|l| l.contains(" in "))
                .unwrap_or("");
            eprintln!("{}: {summary}", document.surface);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
