//! pipewright: a registry of versioned pipelines and a host for WebAssembly plugins.
//!
//! Where to look:
//! - [`api`]: the HTTP surfaces, thin adapters over the core, one router each: native `/v1`,
//!   the Acumos ML Workbench pipeline service (`/mlWorkbench`), GBDX tasks and workflows
//!   (`/workflows/v1`), Mystic's `/v4` (and its `/v3` file links); with `/healthz`, `/readyz`,
//!   `/metrics` and the OpenAPI document;
//! - [`console`]: the web console at `/`, pages over the same core the surfaces call;
//! - [`registry`]: the core rules (names, versions, latest, ownership, approval through
//!   policies and type handlers, durable registration, the Acumos records);
//! - [`runs`]: runs and workflows beside the registry (it uses the registry; the registry does
//!   not know it);
//! - [`store`]: SQLite / PostgreSQL; [`blobs`]: content by digest; [`workcopies`]: the git
//!   working copy of each workbench pipeline;
//! - [`plugins`]: wasmtime, the compile cache, limits, the built-in plugins;
//! - [`outbound`]: where the server may connect when it fetches for a caller (`--allow-fetch`);
//! - [`cli`] and [`server`]: what `main.rs` calls; [`drain`]: a bounded graceful shutdown;
//!   [`kit`]: `pipewright plugin …`, the plugin author's kit; [`push`]: `pipewright pipeline
//!   push`.

pub mod api;
pub mod blobs;
pub mod cli;
pub mod console;
pub mod drain;
pub mod kit;
pub mod logging;
pub mod outbound;
pub mod plugins;
pub mod push;
pub mod registry;
pub mod runs;
pub mod server;
pub mod store;
pub mod workcopies;

use cli::{Cli, Command, PipelineCommand, TokenCommand};
use logging::init_tracing;

/// Runs one command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            init_tracing(args.log_json, "info");
            server::serve(*args).await
        }
        Command::Token(TokenCommand::Create(args)) => {
            init_tracing(false, "info");
            let store = server::open_store(&args.storage).await?;
            // The registry needs no plugins to issue a token: skip loading them.
            let token =
                registry::accounts::create_token(&store, &args.user, args.account.as_deref())
                    .await?;
            println!("{token}");
            Ok(())
        }
        Command::Pipeline(PipelineCommand::Push(args)) => {
            init_tracing(false, "info");
            let pointer = tokio::task::spawn_blocking(move || {
                push::push(
                    &args.dir,
                    &args.connection.server,
                    &args.connection.token,
                    args.version.as_deref(),
                )
            })
            .await??;
            println!("{pointer}");
            Ok(())
        }
        Command::Plugin(command) => {
            // `plugin test` loads plugins in-process; their load logs would drown its report.
            init_tracing(false, "warn");
            // Builds, cargo and blocking HTTP: off the async runtime.
            tokio::task::spawn_blocking(move || kit::run(command)).await?
        }
    }
}
