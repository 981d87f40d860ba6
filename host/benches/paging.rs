//! `GET /v1/pipelines/{namespace}/{name}/versions?limit=100` at a million versions of one
//! pipeline, at random cursors: p50/p99 over HTTP (target: p99 < 10 ms), beside the same page
//! read by the core in process (`Registry::list_versions_page`, no HTTP, no JSON), the two
//! sides taking turns in rounds, with the median ratio and the load average.
//!
//! The versions are written straight into SQLite (one transaction, a file each, as a
//! registration leaves it) before the server starts, so that its start-up sees them as it
//! would after a restart. Every page is checked: a full page, starting right after the cursor's
//! version, and a `Link` to the next one.
//! Run with `cargo bench -p pipewright --bench paging` (`--profile dev` for a debug build:
//! a release build takes a quarter of an hour on two cores).

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use anyhow::Context;
use common::{Percentiles, RoundRatios};
use pipewright::registry::paging::{Cursor, PageLimit};
use pipewright::registry::Registry;
use pipewright::server::{build_services, ServerConfig};
use pipewright::store::pipelines::VersionPosition;
use pipewright::store::precedence::precedence_key;
use serde_json::Value;

const VERSIONS: usize = 1_000_000;

/// [`VERSIONS`], or fewer from `PIPEWRIGHT_BENCH_VERSIONS` (to try the bench out quickly).
fn versions() -> usize {
    std::env::var("PIPEWRIGHT_BENCH_VERSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(VERSIONS)
}
const PAGE: usize = 100;
/// Rows per INSERT statement while seeding.
const ROWS_PER_INSERT: usize = 1_000;
/// Rounds, and pages of each side per round.
const ROUNDS: usize = 10;
const PER_ROUND: usize = 100;
const PIPELINE_ID: &str = "bench-pipeline";
/// When the first version was registered (milliseconds); version i was registered i ms later.
const FIRST_REGISTERED_AT: i64 = 1_700_000_000_000;

/// The i-th version, lowest first: release `i / 2` (`major.minor.patch`, numbers of one to
/// five digits) preceded by a pre-release of its own.
fn version(i: usize) -> String {
    let release = i / 2;
    let text = format!(
        "{}.{}.{}",
        release / 10_000,
        (release / 100) % 100,
        release % 100
    );
    if i.is_multiple_of(2) {
        format!("{text}-rc.{}", release % 7)
    } else {
        text
    }
}

fn position(i: usize) -> VersionPosition {
    VersionPosition {
        precedence_key: precedence_key(&version(i)),
        registered_at: FIRST_REGISTERED_AT + i as i64,
        version_key: version(i),
    }
}

fn main() -> anyhow::Result<()> {
    common::print_load_average("before");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let database_url = format!("sqlite://{}", dir.path().join("bench.db").display());

    let started = Instant::now();
    let token = runtime.block_on(seed(&database_url))?;
    let seeded = started.elapsed();
    let started = Instant::now();
    let (registry, served) = runtime.block_on(async {
        let config = ServerConfig::new(dir.path(), database_url.clone());
        let services = build_services(&config).await?;
        let registry = services.registry.clone();
        let served = common::serve(services, config.api.clone()).await?;
        anyhow::Ok((registry, served))
    })?;
    println!(
        "GET /v1/pipelines/alice/big/versions?limit={PAGE} at random cursors, {} versions \
         of one pipeline (seeded in {seeded:.1?}, server started in {:.1?})",
        versions(),
        started.elapsed()
    );
    // The server compiles its built-in plugins again in the background after it starts (the
    // optimizing tier), on the runtime's threads: measured meanwhile, pages wait behind those
    // compiles. Wait until the process is idle.
    let settled = settle();
    println!(
        "  (measured once the server's own start-up work was done: {settled:.1?} after it started)"
    );
    let client = reqwest::Client::new();
    let caller = runtime.block_on(registry.authenticate(&token))?;

    // Versions to start after: random, the same for both sides, leaving a full page after each.
    let mut rng = Lcg(0x5eed);
    let starts: Vec<usize> = (0..ROUNDS * PER_ROUND)
        .map(|_| rng.below(versions() - PAGE - 1))
        .collect();
    let (http, core) = runtime.block_on(async {
        // Warm-up: the first page and a few others, not counted.
        for &i in starts.iter().take(20) {
            http_page(&client, &served.base, &token, i).await?;
        }
        let (mut http, mut core) = (Vec::new(), Vec::new());
        for (round, block) in starts.chunks(PER_ROUND).enumerate() {
            // Alternate which side goes first.
            for side in [round % 2, 1 - round % 2] {
                for &i in block {
                    let started = Instant::now();
                    if side == 0 {
                        http_page(&client, &served.base, &token, i).await?;
                        http.push(started.elapsed());
                    } else {
                        core_page(&registry, &caller, i).await?;
                        core.push(started.elapsed());
                    }
                }
            }
        }
        anyhow::Ok((http, core))
    })?;
    let ratios = RoundRatios::of_blocks(&http, &core, PER_ROUND);
    let (http, core) = (Percentiles::of(http), Percentiles::of(core));
    println!(
        "  {} pages over HTTP (body read and parsed):     {http}   (target: p99 < 10 ms: {})",
        ROUNDS * PER_ROUND,
        if http.p99 < Duration::from_millis(10) {
            "met"
        } else {
            "NOT MET"
        }
    );
    println!(
        "  the same pages from the core, in process:        {core}   (what HTTP, auth and JSON add: {ratios})"
    );
    let (first, last) = runtime.block_on(async {
        let mut first = Vec::new();
        let mut last = Vec::new();
        for _ in 0..50 {
            let started = Instant::now();
            get(&client, &served.base, &token, &format!("?limit={PAGE}")).await?;
            first.push(started.elapsed());
            let started = Instant::now();
            let cursor = Cursor::after_version(PIPELINE_ID, &position(versions() - PAGE / 2));
            let (items, next) = get(
                &client,
                &served.base,
                &token,
                &format!("?limit={PAGE}&cursor={}", cursor.as_str()),
            )
            .await?;
            last.push(started.elapsed());
            anyhow::ensure!(
                items.len() == PAGE / 2 - 1 && next.is_none(),
                "the last page had {} versions and a Link {next:?}",
                items.len()
            );
        }
        anyhow::Ok((first, last))
    })?;
    println!(
        "  the first page (no cursor), 50 samples:          {}",
        Percentiles::of(first)
    );
    println!(
        "  the last page (49 versions, no Link), 50 samples: {}",
        Percentiles::of(last)
    );
    println!("  {}", common::load_average());
    drop(served);
    Ok(())
}

/// The page after version `i` over HTTP, checked: a full page from version i + 1, and a Link.
async fn http_page(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    i: usize,
) -> anyhow::Result<()> {
    let cursor = Cursor::after_version(PIPELINE_ID, &position(i));
    let (items, next) = get(
        client,
        base,
        token,
        &format!("?limit={PAGE}&cursor={}", cursor.as_str()),
    )
    .await?;
    anyhow::ensure!(
        items.len() == PAGE
            && items[0]["version"].as_str() == Some(version(i + 1).as_str())
            && items[PAGE - 1]["version"].as_str() == Some(version(i + PAGE).as_str())
            && next.is_some(),
        "the page after {} was not versions {}..{} with a Link",
        version(i),
        version(i + 1),
        version(i + PAGE)
    );
    Ok(())
}

/// `GET …/versions{query}`: the versions and the `Link` header.
async fn get(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    query: &str,
) -> anyhow::Result<(Vec<Value>, Option<String>)> {
    let response = client
        .get(format!("{base}/v1/pipelines/alice/big/versions{query}"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?;
    let next = response
        .headers()
        .get("link")
        .and_then(|link| link.to_str().ok())
        .map(str::to_string);
    let body: Value = response.json().await?;
    let items = body.as_array().context("not a list")?.clone();
    Ok((items, next))
}

/// The page after version `i` from the core, checked as [`http_page`] checks it.
async fn core_page(
    registry: &Registry,
    caller: &pipewright::registry::Caller,
    i: usize,
) -> anyhow::Result<()> {
    let cursor = Cursor::after_version(PIPELINE_ID, &position(i));
    let page = registry
        .list_versions_page(
            caller,
            "alice",
            "big",
            PageLimit::parse(Some("100"))?,
            Some(cursor.as_str()),
        )
        .await?;
    anyhow::ensure!(
        page.items.len() == PAGE && page.items[0].version == version(i + 1) && page.next.is_some(),
        "the core's page after {} was wrong",
        version(i)
    );
    Ok(())
}

/// Alice's token, and her pipeline `alice/big` with [`VERSIONS`] ready versions, a file each,
/// written straight into the store in one transaction.
async fn seed(database_url: &str) -> anyhow::Result<String> {
    let store = pipewright::store::Store::connect(database_url).await?;
    let token = pipewright::registry::accounts::create_token(&store, "alice", None).await?;
    let (user, account): (String, String) =
        sqlx::query_as("SELECT id, personal_account_id FROM users WHERE name_key = 'alice'")
            .fetch_one(store.pool())
            .await?;
    let mut tx = store.begin().await?;
    sqlx::query(&format!(
        "INSERT INTO pipelines (id, namespace, namespace_key, name, name_key, pipeline_type,
            owner_account_id, created_by, created_at, versions_revision)
         VALUES ('{PIPELINE_ID}', 'alice', 'alice', 'big', 'big', 'jupyter', '{account}', '{user}',
            {FIRST_REGISTERED_AT}, {count})",
        count = versions()
    ))
    .execute(&mut *tx)
    .await?;
    let order: Vec<usize> = (0..versions()).collect();
    for chunk in order.chunks(ROWS_PER_INSERT) {
        let (mut versions, mut files) = (Vec::new(), Vec::new());
        for &i in chunk {
            let VersionPosition {
                precedence_key,
                registered_at,
                version_key,
            } = position(i);
            versions.push(format!(
                "('v{i}', '{PIPELINE_ID}', '{version_key}', '{version_key}', '{precedence_key}', \
                 'ready', 'null', 'sha256:{i:064x}', '[\"policy-semver@0.1.0\"]', '{user}', \
                 {registered_at}, 1, {registered_at})"
            ));
            files.push(format!(
                "('v{i}', 'notebook.ipynb', 'sha256:{:064x}', 68)",
                i % 1000
            ));
        }
        sqlx::query(&format!(
            "INSERT INTO pipeline_versions (id, pipeline_id, version, version_key, precedence_key,
                state, definition, content_digest, approved_by, registered_by, registered_at,
                attempts, finished_at)
             VALUES {}",
            versions.join(", ")
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "INSERT INTO version_files (version_id, path, digest, size) VALUES {}",
            files.join(", ")
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    store.pool().close().await;
    Ok(token)
}

/// A small deterministic generator (the same cursors on every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Waits until this process (the server in it) uses less than 5% of a core over half a second,
/// at most two minutes; how long it waited.
fn settle() -> Duration {
    let started = Instant::now();
    let window = Duration::from_millis(500);
    while started.elapsed() < Duration::from_secs(120) {
        let before = process_cpu_time();
        std::thread::sleep(window);
        if process_cpu_time().saturating_sub(before) < window / 20 {
            break;
        }
    }
    started.elapsed()
}

/// CPU time used by this process so far, all its threads, user and system.
fn process_cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given; a zeroed `rusage` is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}
