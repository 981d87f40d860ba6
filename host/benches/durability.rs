//! What durable acknowledgements cost (issue 17, item 3): on SQLite every write the server
//! acknowledges is synced to disk before its answer (`PRAGMA synchronous = FULL`, as shipped).
//! This bench times the same acknowledged writes on a second server whose pool runs at `NORMAL`
//! (synced at checkpoints only: what the server did before, which a power loss could undo), the
//! two servers taking turns in rounds, and prints the median ratio FULL ÷ NORMAL with its spread
//! and the load average:
//!
//! (a) one client, one write at a time: `POST /v1/pipelines` (a pipeline: one small transaction)
//!     and `POST /v1/pipelines/{ns}/{name}/versions` (a version with a notebook: the policy
//!     chain, the type handler's validation, a blob and the version's rows);
//! (b) eight clients registering versions at once: versions per second;
//! (c) a blob put on the local content store (`LocalFileSystem`, as `BlobStore` opens it: the
//!     file and its directory synced before the put returns) against the same put unsynced
//!     (what it did before), in process, new 4 KiB contents each time. (a) and (b) sync their
//!     blobs on both sides: their ratio is the database's part alone.
//!
//! The databases sit under the target directory (`CARGO_TARGET_TMPDIR`), on the disk a server's
//! data directory would be on, not on a tmpfs where a sync costs nothing.
//! Run with `cargo bench -p pipewright --bench durability` (about 20 seconds).

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Percentiles, RoundRatios};
use pipewright::registry::Registry;
use pipewright::server::{build_services, ServerConfig};
use serde_json::{json, Value};

const ROUNDS: usize = 10;
/// Writes of each kind per side per round in (a).
const PER_ROUND: usize = 30;
/// Clients, and versions each registers per side per round, in (b).
const CLIENTS: usize = 8;
const PER_CLIENT: usize = 10;

/// One server of the comparison: its base URL and alice's token.
struct Side {
    label: &'static str,
    registry: Registry,
    served: common::Served,
    token: String,
}

fn main() -> anyhow::Result<()> {
    common::print_load_average("before");
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let full = start("FULL (as shipped)", &dir.path().join("full")).await?;
        let normal = start("NORMAL", &dir.path().join("normal")).await?;
        relax_to_normal(&normal.registry).await?;
        for side in [&full, &normal] {
            println!(
                "  {}: synchronous = {}",
                side.label,
                synchronous_levels(&side.registry).await?
            );
        }
        let client = reqwest::Client::new();
        one_at_a_time(&client, [&full, &normal]).await?;
        concurrent(&client, [&full, &normal]).await?;
        blob_puts(&dir.path().join("blobs")).await
    })?;
    common::print_load_average("after");
    Ok(())
}

async fn start(label: &'static str, dir: &Path) -> anyhow::Result<Side> {
    std::fs::create_dir_all(dir)?;
    let database_url = format!("sqlite://{}", dir.join("pipewright.db").display());
    let config = ServerConfig::new(dir, database_url);
    let services = build_services(&config).await?;
    let registry = services.registry.clone();
    let served = common::serve(services, config.api.clone()).await?;
    let token =
        pipewright::registry::accounts::create_token(registry.store(), "alice", None).await?;
    Ok(Side {
        label,
        registry,
        served,
        token,
    })
}

/// Sets every connection of the server's pool to `synchronous = NORMAL`. The setting is per
/// connection and the server sets FULL as it opens each, so all of the pool's connections are
/// held at once (opening any not open yet) and changed; [`synchronous_levels`] reads them back.
async fn relax_to_normal(registry: &Registry) -> anyhow::Result<()> {
    for mut connection in all_connections(registry).await? {
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// `PRAGMA synchronous` of each of the pool's connections, by name.
async fn synchronous_levels(registry: &Registry) -> anyhow::Result<String> {
    let mut levels = Vec::new();
    for mut connection in all_connections(registry).await? {
        let (level,): (i64,) = sqlx::query_as("PRAGMA synchronous")
            .fetch_one(&mut *connection)
            .await?;
        levels.push(match level {
            1 => "NORMAL",
            2 => "FULL",
            _ => "other",
        });
    }
    Ok(levels.join(", "))
}

async fn all_connections(
    registry: &Registry,
) -> anyhow::Result<Vec<sqlx::pool::PoolConnection<sqlx::Any>>> {
    let pool = registry.store().pool();
    let size = pool.options().get_max_connections() as usize;
    let connections = futures_util::future::try_join_all((0..size).map(|_| pool.acquire())).await?;
    Ok(connections)
}

/// (a): a pipeline created, then a version registered, one at a time, the sides taking turns.
async fn one_at_a_time(client: &reqwest::Client, sides: [&Side; 2]) -> anyhow::Result<()> {
    println!(
        "(a) one client, one acknowledged write at a time, {ROUNDS} rounds of {PER_ROUND} per side"
    );
    for side in sides {
        create_pipeline(client, side, "Warm").await?;
        register(client, side, "Warm", "0.0.1").await?;
    }
    let mut created: [Vec<Duration>; 2] = Default::default();
    let mut registered: [Vec<Duration>; 2] = Default::default();
    for round in 0..ROUNDS {
        // Alternate which side goes first.
        for which in [round % 2, 1 - round % 2] {
            let side = sides[which];
            for i in 0..PER_ROUND {
                let name = format!("p{round}-{i}");
                let started = Instant::now();
                create_pipeline(client, side, &name).await?;
                created[which].push(started.elapsed());
            }
            for i in 0..PER_ROUND {
                let version = format!("1.{round}.{i}");
                let started = Instant::now();
                register(client, side, "Warm", &version).await?;
                registered[which].push(started.elapsed());
            }
        }
    }
    for (what, samples) in [
        ("POST /v1/pipelines", created),
        ("POST /v1/pipelines/alice/Warm/versions", registered),
    ] {
        let [full, normal] = samples;
        let ratios = RoundRatios::of_blocks(&full, &normal, PER_ROUND);
        println!("  {what}");
        println!("    {:<18} {}", sides[0].label, Percentiles::of(full));
        println!("    {:<18} {}", sides[1].label, Percentiles::of(normal));
        println!("    FULL ÷ NORMAL, p50 per round: {ratios}");
    }
    Ok(())
}

/// (b): eight clients registering versions of pipelines of their own at once, the sides taking
/// turns; versions per second.
async fn concurrent(client: &reqwest::Client, sides: [&Side; 2]) -> anyhow::Result<()> {
    println!(
        "(b) {CLIENTS} clients registering versions at once, {ROUNDS} rounds of {} per side",
        CLIENTS * PER_CLIENT
    );
    for side in sides {
        for c in 0..CLIENTS {
            create_pipeline(client, side, &format!("Busy{c}")).await?;
        }
    }
    let mut per_second: [Vec<f64>; 2] = Default::default();
    let mut ratios = Vec::new();
    for round in 0..ROUNDS {
        let mut this_round = [0.0; 2];
        for which in [round % 2, 1 - round % 2] {
            let side = sides[which];
            let started = Instant::now();
            futures_util::future::try_join_all((0..CLIENTS).map(|c| async move {
                for i in 0..PER_CLIENT {
                    let version = format!("1.{round}.{i}");
                    register(client, side, &format!("Busy{c}"), &version).await?;
                }
                anyhow::Ok(())
            }))
            .await?;
            this_round[which] = (CLIENTS * PER_CLIENT) as f64 / started.elapsed().as_secs_f64();
            per_second[which].push(this_round[which]);
        }
        ratios.push(this_round[0] / this_round[1]);
    }
    for (side, per_second) in sides.iter().zip(per_second) {
        println!(
            "    {:<18} {:>8.0} versions/s (median of rounds)",
            side.label,
            RoundRatios::of(per_second).median()
        );
    }
    println!(
        "    FULL ÷ NORMAL, versions/s per round: {}",
        RoundRatios::of(ratios)
    );
    Ok(())
}

/// (c): puts of new contents on a synced and an unsynced `LocalFileSystem`, taking turns.
async fn blob_puts(dir: &Path) -> anyhow::Result<()> {
    use object_store::{local::LocalFileSystem, path::Path as ObjectPath, ObjectStore, PutMode};
    println!("(c) a 4 KiB blob put on the local store, {ROUNDS} rounds of {PER_ROUND} per side");
    let mut stores = Vec::new();
    for (which, fsync) in [(0, true), (1, false)] {
        let root = dir.join(which.to_string());
        std::fs::create_dir_all(&root)?;
        stores.push(LocalFileSystem::new_with_prefix(&root)?.with_fsync(fsync));
    }
    let mut samples: [Vec<Duration>; 2] = Default::default();
    let mut count = 0u64;
    for round in 0..ROUNDS {
        for which in [round % 2, 1 - round % 2] {
            for _ in 0..PER_ROUND {
                count += 1;
                // As the content store names blobs: two hex digits, then the rest of the digest.
                let name = format!("{count:064x}");
                let path = ObjectPath::from(format!("sha256/{}/{}", &name[62..], &name[..62]));
                let mut bytes = vec![b' '; 4096];
                bytes[..8].copy_from_slice(&count.to_le_bytes());
                let started = Instant::now();
                stores[which]
                    .put_opts(&path, bytes.into(), PutMode::Create.into())
                    .await?;
                samples[which].push(started.elapsed());
            }
        }
    }
    let [synced, unsynced] = samples;
    let ratios = RoundRatios::of_blocks(&synced, &unsynced, PER_ROUND);
    println!(
        "    {:<18} {}",
        "synced (as shipped)",
        Percentiles::of(synced)
    );
    println!("    {:<18} {}", "unsynced", Percentiles::of(unsynced));
    println!("    synced ÷ unsynced, p50 per round: {ratios}");
    Ok(())
}

async fn create_pipeline(client: &reqwest::Client, side: &Side, name: &str) -> anyhow::Result<()> {
    let body = json!({"namespace": "alice", "name": name, "type": "jupyter"});
    let url = format!("{}/v1/pipelines", side.served.base);
    expect(client, side, url, body, 201).await
}

async fn register(
    client: &reqwest::Client,
    side: &Side,
    name: &str,
    version: &str,
) -> anyhow::Result<()> {
    let body = common::notebook_version(version);
    let url = format!("{}/v1/pipelines/alice/{name}/versions", side.served.base);
    expect(client, side, url, body, 201).await
}

/// POSTs `body` as alice; an error unless the answer has `status`.
async fn expect(
    client: &reqwest::Client,
    side: &Side,
    url: String,
    body: Value,
    status: u16,
) -> anyhow::Result<()> {
    let response = client
        .post(&url)
        .bearer_auth(&side.token)
        .json(&body)
        .send()
        .await?;
    let got = response.status().as_u16();
    let text = response.text().await?;
    anyhow::ensure!(got == status, "POST {url}: {got} {text}");
    Ok(())
}
