//! The `pipewright` binary itself: `token create` and `serve` with flags and environment.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{fresh_database, postgres_admin_url, Backend};

pub const BIN: &str = env!("CARGO_BIN_EXE_pipewright");

pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn token_create(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["token", "create"])
        .args(args)
        .output()
        .expect("running pipewright");
    assert!(
        out.status.success(),
        "token create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "exactly the token on stdout, got {stdout:?}"
    );
    assert!(lines[0].starts_with("pw_"), "{stdout}");
    lines[0].to_string()
}

/// Starts `pipewright serve ARGS` on a free loopback port; returns it once it answers. A port
/// can be taken by another test's server between choosing and binding it: then this child exits
/// (and a health answer came from someone else's server), so it tries another port.
pub async fn serve_binary(args: &[&str]) -> (Running, String) {
    serve_binary_with_env(args, &[]).await
}

/// [`serve_binary`] with environment variables `env` set for the server.
pub async fn serve_binary_with_env(args: &[&str], env: &[(&str, &str)]) -> (Running, String) {
    for _ in 0..5 {
        let port = free_port();
        let child = Command::new(BIN)
            .arg("serve")
            .args(args)
            .envs(env.iter().copied())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut running = Running(child);
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if running.0.try_wait().unwrap().is_some() {
                break; // it could not start (the port was taken): another port
            }
            let healthy = reqwest::get(format!("{base}/healthz"))
                .await
                .is_ok_and(|r| r.status() == 200);
            if healthy {
                tokio::time::sleep(Duration::from_millis(300)).await;
                if running.0.try_wait().unwrap().is_none() {
                    return (running, base);
                }
                break;
            }
            assert!(
                Instant::now() < deadline,
                "server at {base} never became healthy"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    panic!("pipewright serve could not start on five free ports");
}

pub async fn wait_healthy(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "server at {base} never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn serve_and_use(database_args: &[&str], data_dir: &std::path::Path) {
    let dir = data_dir.to_str().unwrap();
    let token = token_create(&[&["--user", "dora", "--data-dir", dir], database_args].concat());
    let port = free_port();
    let child = Command::new(BIN)
        .arg("serve")
        .args(["--data-dir", dir])
        .args(database_args)
        .env("PIPEWRIGHT_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _running = Running(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base).await;
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{base}/v1/pipelines"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "from-cli", "type": "jupyter"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let body: serde_json::Value = created.json().await.unwrap();
    assert_eq!(
        body["namespace"], "dora",
        "the namespace defaults to the token's account"
    );
}

#[tokio::test]
async fn serve_on_the_embedded_default_with_flags_and_env() {
    let data = tempfile::tempdir().unwrap();
    serve_and_use(&[], data.path()).await;
    assert!(
        data.path().join("pipewright.db").exists(),
        "SQLite in the data dir by default"
    );
    assert!(
        data.path().join("blobs").is_dir(),
        "blobs in the data dir by default"
    );
    assert!(
        data.path().join("cache").is_dir(),
        "compile cache in the data dir by default"
    );
}

#[tokio::test]
async fn serve_on_postgres() {
    if postgres_admin_url().is_none() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let url = fresh_database(Backend::Postgres, data.path()).await;
    serve_and_use(&["--database-url", &url], data.path()).await;
    assert!(!data.path().join("pipewright.db").exists());
    crate::harness::drop_postgres_database(url.rsplit_once('/').unwrap().1.to_string());
}

#[test]
fn token_create_makes_accounts_and_tokens_once() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let first = token_create(&["--user", "erin", "--data-dir", dir]);
    let second = token_create(&["--user", "erin", "--account", "acme", "--data-dir", dir]);
    assert_ne!(first, second, "each call prints a new token");
    // An ordinary error is one line, even with backtraces asked for.
    let out = Command::new(BIN)
        .args(["token", "create", "--user", "bad/name", "--data-dir", dir])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no token printed on failure");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("user"),
        "{stderr}"
    );
    assert!(!stderr.contains("backtrace"), "{stderr}");

    // Names are lowercase where they are made (Mystic's rule), not refused at the first push.
    for args in [
        ["--user", "Erin", "", ""],
        ["--user", "erin", "--account", "Acme"],
    ] {
        let out = Command::new(BIN)
            .args(["token", "create", "--data-dir", dir])
            .args(args.iter().filter(|a| !a.is_empty()))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && out.stdout.is_empty(), "{stderr}");
        assert!(stderr.contains("names are lowercase"), "{stderr}");
    }
}
