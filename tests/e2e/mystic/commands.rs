//! The real `pipeline` CLI (PyPI `pipeline-ai` 2.8) against a started server, logged in with
//! `pipeline cluster login` into a fresh `PIPELINE_DIR`, as a user would: `get`, `edit` and
//! `delete pipelines`, `get`, `create`, `edit` and `delete pointers`, `create` and `get files`,
//! `logs run`. What each prints is what is checked.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::{client_python, drive, hostile, push, push_hello, push_hostile, run};
use crate::harness::{Backend, TestServer};
use crate::on_both_stores;

/// The `pipeline` CLI of the client's venv, logged in to one server.
pub struct PipelineCli {
    program: PathBuf,
    config: tempfile::TempDir,
}

/// What one command did.
#[derive(Debug)]
pub struct Ran {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl PipelineCli {
    /// Logs in to `server` with `token` (`pipeline cluster login pw TOKEN -u URL -a`); None
    /// (skip) without the client outside CI.
    pub async fn login(server: &TestServer, token: &str) -> Option<PipelineCli> {
        let python = client_python()?;
        let program = PathBuf::from(python).with_file_name("pipeline");
        assert!(program.exists(), "no `pipeline` beside the client's python");
        let cli = PipelineCli {
            program,
            config: tempfile::tempdir().unwrap(),
        };
        let login = cli
            .run(&["cluster", "login", "pw", token, "-u", &server.base, "-a"])
            .await;
        assert!(
            login.ok && login.stdout.contains("Successfully authenticated"),
            "{login:?}"
        );
        Some(cli)
    }

    /// Runs `pipeline ARGS`, off the runtime that serves the server it talks to.
    pub async fn run(&self, args: &[&str]) -> Ran {
        let mut command = std::process::Command::new(&self.program);
        command
            .args(args)
            .env("PIPELINE_DIR", self.config.path())
            .env_remove("PIPELINE_API_URL")
            .env_remove("PIPELINE_API_TOKEN");
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("running the pipeline CLI");
        Ran {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs a command that must succeed; what it printed.
    pub async fn ok(&self, args: &[&str]) -> String {
        let ran = self.run(args).await;
        assert!(ran.ok, "pipeline {args:?} failed: {ran:?}");
        ran.stdout
    }

    /// Runs a command the server must refuse; what it printed (the client prints the
    /// `APIError`, with the status and the server's detail, on stdout).
    pub async fn refused(&self, args: &[&str]) -> String {
        let ran = self.run(args).await;
        assert!(!ran.ok, "pipeline {args:?} succeeded: {ran:?}");
        assert!(ran.stderr.contains("APIError"), "{ran:?}");
        ran.stdout
    }
}

/// The rows of a table the CLI printed (`| a | b |`), as cells.
pub fn table_rows(printed: &str) -> Vec<Vec<String>> {
    printed
        .lines()
        // psql style: `| a | b |` rows; `|---+---|` under the header.
        .filter(|line| line.starts_with('|') && !line.starts_with("|-"))
        .skip(1) // the header
        .map(|line| {
            line.trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().to_string())
                .collect()
        })
        .collect()
}

on_both_stores!(
    pipelines_are_listed_edited_and_deleted_with_the_cli,
    pointers_are_created_moved_locked_and_deleted_with_the_cli,
    files_are_uploaded_listed_and_downloaded_with_the_cli,
    a_runs_logs_are_what_it_printed_kept_to_a_bound,
);

async fn pipelines_are_listed_edited_and_deleted_with_the_cli(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let Some(cli) = PipelineCli::login(&server, &alice).await else {
        return;
    };
    push_hello(&server, &alice, "0.1.0").await;
    push_hello(&server, &alice, "0.2.0").await;
    // Another account's pipeline is not alice's to see.
    let bob = server.token("bob").await;
    push_hello(&server, &bob, "0.1.0").await;

    let listed = cli.ok(&["get", "pipelines"]).await;
    let rows = table_rows(&listed);
    let ids: Vec<&str> = rows.iter().map(|row| row[0].as_str()).collect();
    assert_eq!(ids, ["alice/hello:0.1.0", "alice/hello:0.2.0"], "{listed}");
    assert_eq!(rows[0][1], "alice/hello");
    assert_eq!(rows[0][4], "cpu", "{listed}");
    assert!(listed.contains("Page 1 of 1"), "{listed}");
    // Paged as asked.
    let second = cli
        .ok(&["get", "pipelines", "--skip", "1", "--limit", "1"])
        .await;
    let rows = table_rows(&second);
    assert_eq!(rows.len(), 1, "{second}");
    assert_eq!(rows[0][0], "alice/hello:0.2.0");
    assert!(second.contains("Page 2 of 2"), "{second}");

    // Nothing of a pipeline is editable here: a scaling configuration is not found, and what
    // the CLI drops before the wire (`-c`) changes nothing.
    let refused = cli
        .refused(&["edit", "pipeline", "alice/hello:0.1.0", "-s", "fast"])
        .await;
    assert!(refused.contains("status_code=404"), "{refused}");
    assert!(
        refused.contains("scaling configuration `fast` not found"),
        "{refused}"
    );
    let edited = cli
        .ok(&["edit", "pipeline", "alice/hello:0.1.0", "-c", "2"])
        .await;
    assert!(edited.contains("Pipeline edited!"), "{edited}");

    let deleted = cli.ok(&["delete", "pipeline", "alice/hello:0.1.0"]).await;
    assert!(deleted.contains("Pipeline deleted!"), "{deleted}");
    let listed = cli.ok(&["get", "pipelines"]).await;
    let ids: Vec<String> = table_rows(&listed)
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(ids, ["alice/hello:0.2.0"], "{listed}");
    let (status, _) = server
        .post(
            "/v4/runs",
            &alice,
            json!({"pipeline": "alice/hello:0.1.0", "inputs": [{"type": "string", "value": "x"}]}),
        )
        .await;
    assert_eq!(status, 404, "a deleted pipeline does not run");
    // Deleting it again, or bob's, or a name that is no pipeline id: not found, nothing changed.
    for id in ["alice/hello:0.1.0", "bob/hello:0.1.0", "alice/hello"] {
        let refused = cli.refused(&["delete", "pipeline", id]).await;
        assert!(refused.contains("status_code=404"), "{id}: {refused}");
    }
    let (status, _) = server.get("/v1/pipelines/bob/hello:0.1.0", &bob).await;
    assert_eq!(status, 200, "bob's pipeline is still there");
}

async fn pointers_are_created_moved_locked_and_deleted_with_the_cli(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let Some(cli) = PipelineCli::login(&server, &alice).await else {
        return;
    };
    let python = client_python().unwrap();
    push_hello(&server, &alice, "0.1.0").await;
    push_hello(&server, &alice, "0.2.0").await;
    let run_prod = || async {
        let result = drive(
            &python,
            &server,
            &alice,
            &["run-string", "alice/hello:prod", "you"],
        )
        .await;
        assert_eq!(result["raised"], Value::Null, "{result}");
        result["result"]["pipeline_id"]
            .as_str()
            .unwrap()
            .to_string()
    };

    let created = cli
        .ok(&["create", "pointer", "alice/hello:prod", "alice/hello:0.1.0"])
        .await;
    assert!(
        created.contains("Created pointer alice/hello:prod -> alice/hello:0.1.0"),
        "{created}"
    );
    assert_eq!(run_prod().await, "alice/hello:0.1.0");
    // A pointer made from a pointer takes its version.
    let created = cli
        .ok(&[
            "create",
            "pointer",
            "alice/hello:stable",
            "alice/hello:prod",
        ])
        .await;
    assert!(created.contains("-> alice/hello:0.1.0"), "{created}");

    let listed = cli.ok(&["get", "pointers"]).await;
    assert_eq!(
        table_rows(&listed),
        [
            ["alice/hello:prod", "alice/hello:0.1.0"],
            ["alice/hello:stable", "alice/hello:0.1.0"]
        ],
        "{listed}"
    );

    let moved = cli
        .ok(&[
            "edit",
            "pointer",
            "alice/hello:prod",
            "-s",
            "alice/hello:0.2.0",
        ])
        .await;
    assert!(moved.contains("Pointer edited!"), "{moved}");
    assert_eq!(
        run_prod().await,
        "alice/hello:0.2.0",
        "a run follows the pointer at once"
    );

    // Locked: neither moved nor deleted until unlocked.
    cli.ok(&["edit", "pointer", "alice/hello:prod", "--locked"])
        .await;
    let refused = cli
        .refused(&[
            "edit",
            "pointer",
            "alice/hello:prod",
            "-s",
            "alice/hello:0.1.0",
        ])
        .await;
    assert!(refused.contains("status_code=409"), "{refused}");
    assert!(refused.contains("is locked"), "{refused}");
    let refused = cli
        .refused(&["delete", "pointer", "alice/hello:prod"])
        .await;
    assert!(refused.contains("is locked"), "{refused}");
    assert_eq!(run_prod().await, "alice/hello:0.2.0");
    cli.ok(&["edit", "pointer", "alice/hello:prod", "--unlocked"])
        .await;
    cli.ok(&[
        "edit",
        "pointer",
        "alice/hello:prod",
        "-s",
        "alice/hello:0.1.0",
    ])
    .await;
    assert_eq!(run_prod().await, "alice/hello:0.1.0");

    // One set of names: a pointer may not take a version's name, nor a version a pointer's.
    for (pointer, conflict) in [
        ("alice/hello:prod", "exists already"),
        ("alice/hello:0.2.0", "is a version"),
    ] {
        let refused = cli
            .refused(&["create", "pointer", pointer, "alice/hello:0.1.0"])
            .await;
        assert!(refused.contains("status_code=409"), "{pointer}: {refused}");
        assert!(refused.contains(conflict), "{pointer}: {refused}");
    }
    cli.ok(&[
        "create",
        "pointer",
        "alice/hello:1.0.0",
        "alice/hello:0.2.0",
    ])
    .await;
    let dir = super::pipeline_dir(
        "hello",
        "hello",
        "1.0.0",
        json!([{"name": "text", "type": "string"}]),
        json!([{"name": "greeting", "type": "string"}]),
        &[],
    );
    let (ok, _, stderr) = push(dir.path(), &server, &alice);
    assert!(!ok, "a version named as a pointer was pushed");
    assert!(
        stderr.contains("alice/hello:1.0.0 is a pointer"),
        "{stderr}"
    );
    cli.ok(&["delete", "pointer", "alice/hello:1.0.0"]).await;
    // A pointer names only a version of its own pipeline, and one that exists.
    push_hello_as(&server, &alice, "other").await;
    let refused = cli
        .refused(&["create", "pointer", "alice/hello:x1", "alice/other:0.1.0"])
        .await;
    assert!(refused.contains("status_code=400"), "{refused}");
    let refused = cli
        .refused(&["create", "pointer", "alice/hello:x1", "alice/hello:9.9.9"])
        .await;
    assert!(refused.contains("status_code=404"), "{refused}");

    // A pointer whose pipeline was deleted is listed only when asked for, and runs nothing.
    cli.ok(&["delete", "pipeline", "alice/hello:0.1.0"]).await;
    let listed = cli.ok(&["get", "pointers"]).await;
    assert_eq!(table_rows(&listed), Vec::<Vec<String>>::new(), "{listed}");
    let listed = cli.ok(&["get", "pointers", "-d", "-n", "hello"]).await;
    assert_eq!(table_rows(&listed).len(), 2, "{listed}");
    let result = drive(
        &python,
        &server,
        &alice,
        &["run-string", "alice/hello:prod", "you"],
    )
    .await;
    assert_eq!(result["raised"], "APIError", "{result}");
    assert_eq!(result["status_code"], 404, "{result}");

    let deleted = cli.ok(&["delete", "pointer", "alice/hello:prod"]).await;
    assert!(deleted.contains("Pointer deleted!"), "{deleted}");
    let refused = cli
        .refused(&["delete", "pointer", "alice/hello:prod"])
        .await;
    assert!(refused.contains("status_code=404"), "{refused}");
    let listed = cli.ok(&["get", "pointers", "--show-deleted"]).await;
    assert_eq!(
        table_rows(&listed),
        [["alice/hello:stable", "alice/hello:0.1.0"]],
        "{listed}"
    );
}

/// Pushes the `hello` example as `name` at 0.1.0.
async fn push_hello_as(server: &TestServer, token: &str, name: &str) {
    let dir = super::pipeline_dir(
        "hello",
        name,
        "0.1.0",
        json!([{"name": "text", "type": "string"}]),
        json!([{"name": "greeting", "type": "string"}]),
        &[],
    );
    let (ok, _, stderr) = push(dir.path(), server, token);
    assert!(ok, "{stderr}");
}

async fn files_are_uploaded_listed_and_downloaded_with_the_cli(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let Some(cli) = PipelineCli::login(&server, &alice).await else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let document = local.path().join("notes.txt");
    std::fs::write(&document, "alpha\nbeta").unwrap();
    let document = document.to_str().unwrap();

    let uploaded = cli
        .ok(&["create", "file", document, "--name", "renamed.txt"])
        .await;
    let id = uploaded
        .split("File uploaded successfully with ID: ")
        .nth(1)
        .unwrap_or_else(|| panic!("{uploaded}"))
        .trim()
        .to_string();
    let uploaded = cli.ok(&["create", "file", document]).await;
    assert!(
        uploaded.contains("File uploaded successfully"),
        "{uploaded}"
    );

    let listed = cli.ok(&["get", "files"]).await;
    let rows = table_rows(&listed);
    assert_eq!(rows.len(), 2, "{listed}");
    assert_eq!(rows[0][0], id);
    assert!(rows[0][2].ends_with("/renamed.txt"), "{listed}");
    assert!(rows[1][2].ends_with("/notes.txt"), "{listed}");
    let one = cli.ok(&["get", "files", &id]).await;
    assert_eq!(table_rows(&one), rows[..1], "{one}");

    let saved = local.path().join("saved.txt");
    let downloaded = cli
        .ok(&["get", "files", &id, "-d", "-o", saved.to_str().unwrap()])
        .await;
    assert!(
        downloaded.contains("File downloaded successfully"),
        "{downloaded}"
    );
    assert_eq!(std::fs::read_to_string(&saved).unwrap(), "alpha\nbeta");

    // Another account sees none of them.
    let bob = server.token("bob").await;
    let bobs = PipelineCli::login(&server, &bob).await.unwrap();
    let listed = bobs.ok(&["get", "files"]).await;
    assert_eq!(table_rows(&listed), Vec::<Vec<String>>::new(), "{listed}");
    let ran = bobs.run(&["get", "files", &id]).await;
    assert!(!ran.ok && ran.stdout.contains("status_code=404"), "{ran:?}");
}

async fn a_runs_logs_are_what_it_printed_kept_to_a_bound(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.token("alice").await;
    let Some(cli) = PipelineCli::login(&server, &alice).await else {
        return;
    };
    push_hostile(&server, &alice).await;
    let python = client_python().unwrap();
    let said = drive(
        &python,
        &server,
        &alice,
        &["run-string", "alice/hostile:0.1.0", "say:hello there"],
    )
    .await;
    assert_eq!(said["result"]["state"], "completed", "{said}");
    let id = said["result"]["id"].as_str().unwrap();
    let printed = cli.ok(&["logs", "run", id]).await;
    assert_eq!(
        printed.lines().collect::<Vec<_>>(),
        ["hello there", "hello there (stderr)"],
        "{printed}"
    );

    // A run that prints more than is kept: the first 64 KiB of it, then a line saying so.
    let (status, flooded) = run(&server, &alice, hostile("flood:200000")).await;
    assert_eq!(
        (status, &flooded["state"]),
        (200, &json!("completed")),
        "{flooded}"
    );
    let (status, logs) = server
        .get(
            &format!("/v4/logs/run/{}", flooded["id"].as_str().unwrap()),
            &alice,
        )
        .await;
    assert_eq!(status, 200);
    let entries = logs["log_entries"].as_array().unwrap();
    let kept: usize = entries[..entries.len() - 1]
        .iter()
        .map(|line| line.as_str().unwrap().len() + 1)
        .sum();
    assert!(kept <= pipewright::runs::STORED_LOG_BYTES + 1, "{kept}");
    let last = entries.last().unwrap().as_str().unwrap();
    assert!(last.starts_with("[log truncated: "), "{last}");

    // A run that printed nothing has no entries, and prints nothing.
    let (_, quiet) = run(&server, &alice, hostile("quiet")).await;
    let printed = cli
        .ok(&["logs", "run", quiet["id"].as_str().unwrap()])
        .await;
    assert_eq!(printed, "", "{printed}");

    // Another account's run, or none: not found.
    let bob = server.token("bob").await;
    let bobs = PipelineCli::login(&server, &bob).await.unwrap();
    for id in [id, "no-such-run"] {
        let ran = bobs.run(&["logs", "run", id]).await;
        assert!(!ran.ok && ran.stdout.contains("status_code=404"), "{ran:?}");
    }
}
