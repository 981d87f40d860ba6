//! `wrk`, the external HTTP load generator the HTTP comparisons use: a process of its own, so
//! the generator is not what caps a server's figure (the benches' in-process generator capped
//! pipewright's `/healthz` at 7.7k/s where wrk reached 10k/s). Install it with
//! `apt-get install -y wrk` (Debian), or point `$WRK` at one.
//!
//! Each load checks every answer (status 200 and the expected text in the body) in a Lua
//! `response` hook, on every side alike, and reports how many failed the check.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};

/// The wrk binary: `$WRK`, else `wrk` on `PATH`.
pub fn find() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("WRK").map(PathBuf::from) {
        return path.is_file().then_some(path);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("wrk"))
            .find(|path| path.is_file())
    })
}

/// One kind of request, and what its answer must contain.
pub struct Target {
    pub url: String,
    pub method: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// Text every answer's body must contain (besides status 200).
    pub expect: String,
}

impl Target {
    pub fn get(url: String, expect: &str) -> Target {
        Target {
            url,
            method: "GET",
            headers: vec![],
            body: None,
            expect: expect.into(),
        }
    }

    /// The Lua script that sets the request and checks each answer; `done` prints the count
    /// of answers that failed the check, which [`run`] reads back.
    fn script(&self) -> String {
        let long = |text: &str| format!("[==[{text}]==]");
        let mut script = format!("wrk.method = \"{}\"\n", self.method);
        if let Some(body) = &self.body {
            script.push_str(&format!("wrk.body = {}\n", long(body)));
        }
        for (name, value) in &self.headers {
            // Spaced: `[[` would open a long string.
            script.push_str(&format!(
                "wrk.headers[ {} ] = {}\n",
                long(name),
                long(value)
            ));
        }
        script.push_str(&format!(
            r#"local expect = {}
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
bad = 0
function response(status, headers, body)
  if status ~= 200 or not string.find(body, expect, 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("bad") end
  io.write("bad answers: " .. total .. "\n")
end
"#,
            long(&self.expect)
        ));
        script
    }
}

/// What one load measured.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub bad: u64,
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>8.0} /s  (latency p50 {:>9.2?}  p99 {:>9.2?}; {} bad answers)",
            self.per_second, self.p50, self.p99, self.bad
        )
    }
}

/// Loads `target` from one wrk thread over `connections` keep-alive connections for
/// `duration` (whole seconds, at least one); the script is written under `scratch`.
pub fn run(
    wrk: &Path,
    target: &Target,
    connections: usize,
    duration: Duration,
    scratch: &Path,
) -> anyhow::Result<Load> {
    let script = scratch.join("wrk-target.lua");
    std::fs::write(&script, target.script())?;
    let output = Command::new(wrk)
        .args(["-t1", "--latency"])
        .arg(format!("-c{connections}"))
        // wrk takes whole seconds (`-d2s`; it has no `ms`).
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        // wrk's own timeout (2 s by default) would count a slow answer as an error, not a sample.
        .args(["--timeout", "30s", "-s"])
        .arg(&script)
        .arg(&target.url)
        .output()
        .with_context(|| format!("running {}", wrk.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse(&text).with_context(|| format!("reading wrk's report:\n{text}"))
}

/// Reads `Requests/sec:`, the 50% and 99% lines of `--latency`, and the script's bad count.
fn parse(report: &str) -> anyhow::Result<Load> {
    let field = |prefix: &str| -> Option<&str> {
        report
            .lines()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .map(str::trim)
    };
    let per_second: f64 = field("Requests/sec:").context("no Requests/sec")?.parse()?;
    let p50 = duration(field("50%").context("no 50% latency")?)?;
    let p99 = duration(field("99%").context("no 99% latency")?)?;
    let bad: u64 = field("bad answers:")
        .context("no bad answers count")?
        .parse()?;
    // Socket errors and non-2xx answers are counted too (the script sees only answers).
    let errors: u64 = field("Non-2xx or 3xx responses:")
        .map(str::parse)
        .transpose()?
        .unwrap_or(0);
    Ok(Load {
        per_second,
        p50,
        p99,
        bad: bad.max(errors),
    })
}

/// wrk's durations: `812.00us`, `1.23ms`, `2.00s`.
fn duration(text: &str) -> anyhow::Result<Duration> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .context("a duration without unit")?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse()?;
    let seconds = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        other => bail!("unknown unit {other}"),
    };
    Ok(Duration::from_secs_f64(seconds))
}
