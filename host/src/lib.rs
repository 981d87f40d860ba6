//! pipewright: a registry of versioned pipelines and a host for WebAssembly plugins.
//!
//! Where to look:
//! - [`api`]: the HTTP surfaces (`/v1`, Acumos `/mlWorkbench`; thin adapters) and `/healthz`, `/metrics`, OpenAPI;
//! - [`registry`]: the core rules (names, versions, latest, ownership, policies);
//! - [`store`]: SQLite / PostgreSQL; [`blobs`]: content by digest; [`workcopies`]: the git
//!   working copy of each workbench pipeline;
//! - [`plugins`]: wasmtime, the compile cache, limits, the built-in plugins;
//! - [`cli`] and [`server`]: what `main.rs` calls.

pub mod api;
pub mod blobs;
pub mod cli;
pub mod plugins;
pub mod push;
pub mod registry;
pub mod runs;
pub mod server;
pub mod store;
pub mod workcopies;

use cli::{Cli, Command, PipelineCommand, TokenCommand};

/// Runs one command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            init_tracing(args.log_json);
            server::serve(*args).await
        }
        Command::Token(TokenCommand::Create(args)) => {
            init_tracing(false);
            let store = server::open_store(&args.storage).await?;
            // The registry needs no plugins to issue a token: skip loading them.
            let token =
                registry::accounts::create_token(&store, &args.user, args.account.as_deref())
                    .await?;
            println!("{token}");
            Ok(())
        }
        Command::Pipeline(PipelineCommand::Push(args)) => {
            init_tracing(false);
            let pointer = tokio::task::spawn_blocking(move || {
                push::push(&args.dir, &args.server, &args.token)
            })
            .await??;
            println!("{pointer}");
            Ok(())
        }
    }
}

/// Logs to stderr (stdout is for command output), filtered by `RUST_LOG` (default `info`).
pub fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
