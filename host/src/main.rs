//! The `pipewright` binary: parses the command line and hands it to the library.

use std::time::Duration;

use clap::Parser;

/// How long the exit waits, after `serve` has drained, for work that no request waits for
/// (a blocking compile, a plugin call); then it leaves it. `#[tokio::main]` would wait for it
/// without bound and so stretch `--shutdown-grace-secs`.
const EXIT_WAIT: Duration = Duration::from_secs(1);

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(pipewright::run(pipewright::cli::Cli::parse()));
    runtime.shutdown_timeout(EXIT_WAIT);
    result
}
