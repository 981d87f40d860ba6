//! Policy bindings and chains (issue 6, item 7), each beside a baseline measured in the same
//! run. Prints figures and ratios; asserts no times.
//!
//! (a) From `PUT /v1/policy-bindings/namespace:…` to the first request that uses the new chain.
//!     The namespace's chain is swapped between one that refuses the request (`policy-lowercase`
//!     first: the pipeline is called `Churn`) and one that accepts it (`policy-semver` alone);
//!     each sample starts when the PUT is sent and ends with the first registration answered
//!     under the new chain:
//!     - on the server that took the PUT, beside the same registration with no swap before it;
//!     - on a second server on the same store (a replica), asked back to back: on SQLite the
//!       servers poll the change counter (every 250 ms); on PostgreSQL (set
//!       `PIPEWRIGHT_BENCH_POSTGRES_URL` to an empty database) a change is also notified.
//! (b) Per-request cost of a three-policy chain (`policy-lowercase`, `policy-acumos`,
//!     `policy-semver`) against `policy-semver` alone: the chain's evaluation in-process (warm
//!     instances), and a whole registration over HTTP (which also validates the notebook,
//!     writes and commits), alternating between the two.
//!
//! Run with `cargo bench -p pipewright --bench bindings` (about a minute).

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use common::{ratio, Percentiles, RoundRatios};

use pipewright::registry::policies::evaluate;
use pipewright::registry::Registry;
use pipewright::server::{build_services, ServerConfig};
use serde_json::{json, Value};

const SWAPS: usize = 40;
const EVALUATIONS: usize = 20_000;
const REGISTRATIONS: usize = 200;
const REFUSING: &[&str] = &["policy-lowercase", "policy-semver"];
const ACCEPTING: &[&str] = &["policy-semver"];
const THREE: &[&str] = &["policy-lowercase", "policy-acumos", "policy-semver"];
const ONE: &[&str] = &["policy-semver"];

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let dir = tempfile::tempdir()?;
    runtime.block_on(async {
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        swap_to_first_use("SQLite", &dir.path().join("sqlite"), sqlite).await?;
        match std::env::var("PIPEWRIGHT_BENCH_POSTGRES_URL") {
            Ok(url) => swap_to_first_use("PostgreSQL", &dir.path().join("pg"), url).await?,
            Err(_) => println!("  (PostgreSQL: set PIPEWRIGHT_BENCH_POSTGRES_URL to measure it)"),
        }
        chain_cost(&dir.path().join("chains")).await
    })
}

/// Two servers on one store, an admin token and a user's.
struct Pair {
    first: Server,
    replica: Server,
    admin: String,
    user: String,
    /// This run's namespace (the PostgreSQL database may hold earlier runs').
    namespace: String,
}

struct Server {
    registry: Registry,
    served: common::Served,
}

async fn pair(dir: &std::path::Path, database_url: String) -> anyhow::Result<Pair> {
    std::fs::create_dir_all(dir)?;
    let config = ServerConfig {
        admin_account: Some("platform".into()),
        ..ServerConfig::new(dir, database_url)
    };
    let start = || async {
        let services = build_services(&config).await?;
        let registry = services.registry.clone();
        let served = common::serve(services, config.api.clone()).await?;
        anyhow::Ok(Server { registry, served })
    };
    let (first, replica) = (start().await?, start().await?);
    let store = first.registry.store();
    let namespace = format!("bench{}", std::process::id());
    let create = pipewright::registry::accounts::create_token;
    Ok(Pair {
        admin: create(store, "ops", Some("platform")).await?,
        user: create(store, &namespace, None).await?,
        first,
        replica,
        namespace,
    })
}

struct Client {
    http: reqwest::Client,
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        url: String,
        token: &str,
        body: Value,
    ) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .request(method, url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    async fn bind(
        &self,
        server: &Server,
        admin: &str,
        namespace: &str,
        chain: &[&str],
    ) -> anyhow::Result<()> {
        let url = format!(
            "{}/v1/policy-bindings/namespace:{namespace}",
            server.served.base
        );
        let (status, body) = self
            .send(reqwest::Method::PUT, url, admin, json!({ "chain": chain }))
            .await?;
        anyhow::ensure!(status == 200, "PUT binding: {status} {body}");
        Ok(())
    }

    /// Registers `version` of `namespace/name`: Ok(true) accepted, Ok(false) refused by policy.
    async fn register(
        &self,
        server: &Server,
        token: &str,
        namespace: &str,
        name: &str,
        version: &str,
    ) -> anyhow::Result<bool> {
        let body = common::notebook_version(version);
        let url = format!(
            "{}/v1/pipelines/{namespace}/{name}/versions",
            server.served.base
        );
        let (status, answer) = self.send(reqwest::Method::POST, url, token, body).await?;
        match status {
            201 => Ok(true),
            400 => Ok(false),
            _ => anyhow::bail!("registering {name}:{version}: {status} {answer}"),
        }
    }
}

async fn swap_to_first_use(
    label: &str,
    dir: &std::path::Path,
    database_url: String,
) -> anyhow::Result<()> {
    let pair = pair(dir, database_url).await?;
    let client = Client {
        http: reqwest::Client::new(),
    };
    let (status, body) = client
        .send(
            reqwest::Method::POST,
            format!("{}/v1/pipelines", pair.first.served.base),
            &pair.user,
            json!({"namespace": pair.namespace, "name": "Churn", "type": "jupyter"}),
        )
        .await?;
    anyhow::ensure!(status == 201, "creating the pipeline: {status} {body}");

    let mut version = 0;
    let mut next_version = || {
        version += 1;
        format!("0.0.{version}")
    };
    let (mut here, mut alone, mut there, mut polls) = (vec![], vec![], vec![], 0usize);
    for sample in 0..=SWAPS {
        // Refusing everywhere first (the replica too), then the measured swap to accepting.
        client
            .bind(&pair.first, &pair.admin, &pair.namespace, REFUSING)
            .await?;
        while client
            .register(
                &pair.replica,
                &pair.user,
                &pair.namespace,
                "Churn",
                &next_version(),
            )
            .await?
        {}
        let started = Instant::now();
        client
            .bind(&pair.first, &pair.admin, &pair.namespace, ACCEPTING)
            .await?;
        let accepted = client
            .register(
                &pair.first,
                &pair.user,
                &pair.namespace,
                "Churn",
                &next_version(),
            )
            .await?;
        let on_first = started.elapsed();
        anyhow::ensure!(
            accepted,
            "the server that took the PUT did not use the new chain"
        );
        loop {
            polls += 1;
            if client
                .register(
                    &pair.replica,
                    &pair.user,
                    &pair.namespace,
                    "Churn",
                    &next_version(),
                )
                .await?
            {
                break;
            }
        }
        let on_replica = started.elapsed();
        // The same registration with no swap before it.
        let started = Instant::now();
        client
            .register(
                &pair.first,
                &pair.user,
                &pair.namespace,
                "Churn",
                &next_version(),
            )
            .await?;
        let plain = started.elapsed();
        if sample > 0 {
            here.push(on_first);
            there.push(on_replica);
            alone.push(plain);
        }
    }
    let per_block = RoundRatios::of_blocks(&here, &alone, SWAPS / 8);
    let (here, alone, there) = (
        Percentiles::of(here),
        Percentiles::of(alone),
        Percentiles::of(there),
    );
    println!("binding PUT -> first request under the new chain, {label}, {SWAPS} swaps");
    println!("  same server (PUT + request): {here}");
    println!("  the request alone:           {alone}");
    println!(
        "  ratio p50 {:.2}x (the PUT's own cost: one commit and a reload); p50 per block of {} rounds: {per_block}",
        ratio(here.p50, alone.p50),
        SWAPS / 8
    );
    println!("  {}", common::load_average());
    println!(
        "  replica on the same store:   {there}   ({:.1} requests per swap until it followed)",
        polls as f64 / SWAPS as f64
    );
    Ok(())
}

async fn chain_cost(dir: &std::path::Path) -> anyhow::Result<()> {
    let database_url = format!("sqlite://{}", dir.join("bench.db").display());
    let pair = pair(dir, database_url).await?;
    let plugins = pair.first.registry.plugins().clone();

    // In-process: the chain alone, warm.
    let (candidate, existing, context) = common::policy_check_input("churn", "v1");
    let chains = [THREE, ONE].map(|chain| chain.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let (mut three, mut one) = (Vec::new(), Vec::new());
    let evaluated = tokio::task::spawn_blocking(move || {
        for round in 0..EVALUATIONS + 500 {
            for (chain, samples) in chains.iter().zip([&mut three, &mut one]) {
                let started = Instant::now();
                let verdict = evaluate(&plugins, chain, candidate.clone(), &existing, &context);
                let took = started.elapsed();
                assert!(verdict.is_ok(), "{:?}", verdict.err());
                if round >= 500 {
                    samples.push(took);
                }
            }
        }
        (three, one)
    })
    .await?;
    let per_block = RoundRatios::of_blocks(&evaluated.0, &evaluated.1, EVALUATIONS / 10);
    let (three, one) = (Percentiles::of(evaluated.0), Percentiles::of(evaluated.1));
    println!("policy chain per request, in-process, {EVALUATIONS} evaluations each");
    println!("  three policies: {three}");
    println!("  one policy:     {one}");
    println!(
        "  ratio p50 {:.2}x  p99 {:.2}x; p50 per block of 10% of the rounds: {per_block}",
        ratio(three.p50, one.p50),
        ratio(three.p99, one.p99)
    );
    println!("  {}", common::load_average());

    // Over HTTP: a whole registration under each chain, alternating.
    let client = Client {
        http: reqwest::Client::new(),
    };
    let namespaces = [THREE, ONE].map(|chain| format!("{}-{}", pair.namespace, chain.len()));
    for (namespace, chain) in namespaces.iter().zip([THREE, ONE]) {
        let (status, body) = client
            .send(
                reqwest::Method::POST,
                format!("{}/v1/pipelines", pair.first.served.base),
                &pair.admin,
                json!({"namespace": namespace, "name": "churn", "type": "jupyter"}),
            )
            .await?;
        anyhow::ensure!(status == 201, "creating the pipeline: {status} {body}");
        client
            .bind(&pair.first, &pair.admin, namespace, chain)
            .await?;
    }
    let (mut three, mut one) = (Vec::new(), Vec::new());
    for round in 0..REGISTRATIONS + 10 {
        for (namespace, samples) in namespaces.iter().zip([&mut three, &mut one]) {
            let started = Instant::now();
            let accepted = client
                .register(
                    &pair.first,
                    &pair.admin,
                    namespace,
                    "churn",
                    &format!("1.0.{round}"),
                )
                .await?;
            let took = started.elapsed();
            anyhow::ensure!(accepted, "refused under {namespace}");
            if round >= 10 {
                samples.push(took);
            }
        }
    }
    let per_block = RoundRatios::of_blocks(&three, &one, REGISTRATIONS / 10);
    let (three, one) = (Percentiles::of(three), Percentiles::of(one));
    println!("registration over HTTP (SQLite), {REGISTRATIONS} each, alternating");
    println!("  three policies: {three}");
    println!("  one policy:     {one}");
    println!(
        "  ratio p50 {:.2}x  p99 {:.2}x; p50 per block of 10% of the rounds: {per_block}",
        ratio(three.p50, one.p50),
        ratio(three.p99, one.p99)
    );
    println!("  {}", common::load_average());
    Ok(())
}
