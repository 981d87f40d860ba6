//! The `pipewright` binary: parses the command line and hands it to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pipewright::run(pipewright::cli::Cli::parse()).await
}
