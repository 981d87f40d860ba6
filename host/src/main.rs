//! The `pipewright` binary: parses the command line and hands it to the library.

use std::time::Duration;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long the exit waits, after `serve` has drained, for work that no request waits for
/// (a blocking compile, a plugin call); then it leaves it. `#[tokio::main]` would wait for it
/// without bound and so stretch `--shutdown-grace-secs`.
const EXIT_WAIT: Duration = Duration::from_secs(1);

/// An error ends the process with status 1 and its chain of causes on one line: what a user
/// needs, not a stack trace (which `RUST_BACKTRACE` would add to a returned `anyhow::Error`).
fn main() -> std::process::ExitCode {
    let cli = pipewright::cli::Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            let result = runtime.block_on(pipewright::run(cli));
            runtime.shutdown_timeout(EXIT_WAIT);
            result
        });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
