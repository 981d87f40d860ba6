//! The command line: `pipewright serve`, `pipewright token create`, `pipewright pipeline push` and
//! `pipewright plugin …` (the author's kit, see [`crate::kit`]). Every flag can also be
//! set by an environment variable (`PIPEWRIGHT_LISTEN`, `PIPEWRIGHT_DATA_DIR`,
//! `PIPEWRIGHT_DATABASE_URL`, ...); secrets are environment variables only.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "pipewright",
    version,
    about = "Pipeline registry and WebAssembly plugin host"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Runs the server.
    Serve(Box<ServeArgs>),
    /// Manages API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Works with runnable pipelines.
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// Writes, builds, tests and publishes plugins (the author's kit: `sdk/README.md`).
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand, Debug)]
pub enum PipelineCommand {
    /// Packages a pipeline directory (its `pipeline.yaml` and files; a component crate is built
    /// for wasm32-wasip2) and registers it on a server as `account/name:version`.
    Push(PushArgs),
}

#[derive(Args, Debug, Clone)]
pub struct PushArgs {
    /// The pipeline's directory (holding `pipeline.yaml`).
    pub dir: PathBuf,
    /// The version of a Python (Mystic) pipeline whose `pipeline_name` has no semver `:tag`;
    /// without it, the patch after the latest.
    #[arg(long)]
    pub version: Option<String>,
    #[command(flatten)]
    pub connection: ServerConnection,
}

/// Which server a client command talks to, and as whom.
#[derive(Args, Debug, Clone)]
pub struct ServerConnection {
    /// The server's base URL.
    #[arg(
        long,
        env = "PIPEWRIGHT_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub server: String,
    /// An API token (`pipewright token create`).
    #[arg(long, env = "PIPEWRIGHT_TOKEN", hide_env_values = true)]
    pub token: String,
}

#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Writes a ready plugin crate `DIR/NAME` from a template: it builds for wasm32-wasip2 as
    /// it is, with unit tests and fixtures that pass.
    New(PluginNewArgs),
    /// Builds the plugin crate for wasm32-wasip2 and prints the component's path.
    Build(PluginDirArgs),
    /// Runs the crate's unit tests, then loads the component in-process as a server would and
    /// runs the cases of `fixtures/*.json` against it. No server needed.
    #[command(
        after_help = "Fixture format: sdk/README.md (\"Fixtures\"), or the module docs of host/src/kit/harness.rs."
    )]
    Test(PluginDirArgs),
    /// Builds the plugin and uploads it as NAME@VERSION (the crate's package name and version),
    /// activating it. A runnable pipeline (a folder with `pipeline.yaml`) is pushed as
    /// `pipewright pipeline push` does.
    Push(PluginPushArgs),
    /// Lists the server's plugins.
    List(ServerConnection),
    /// Shows a plugin and its versions, or one version (NAME@VERSION).
    Show(PluginRefArgs),
    /// Makes NAME@VERSION the active version of its plugin.
    Activate(PluginRefArgs),
    /// Leaves a plugin with no active version.
    Deactivate(PluginNameArgs),
    /// Makes the version that was active before the current one active again.
    Rollback(PluginNameArgs),
}

/// The kinds of plugin `pipewright plugin new` writes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginKind {
    /// A pipeline type (world `pipewright:plugin/type-handler`).
    TypeHandler,
    /// A validation policy (world `pipewright:plugin/validation-policy`).
    Policy,
    /// A runnable pipeline (world `pipewright:pipeline/runnable`), with its `pipeline.yaml`.
    Runnable,
}

/// The languages `pipewright plugin new` writes a plugin in.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PluginLanguage {
    /// A crate, built by cargo for wasm32-wasip2.
    #[default]
    Rust,
    /// A Python project, built by componentize-py.
    Python,
}

#[derive(Args, Debug, Clone)]
pub struct PluginNewArgs {
    /// What the plugin is.
    #[arg(long, value_enum)]
    pub kind: PluginKind,
    /// What it is written in.
    #[arg(long, value_enum, default_value_t = PluginLanguage::Rust)]
    pub lang: PluginLanguage,
    /// The plugin's name: lowercase letters, digits and `-` (a type handler's type id too).
    pub name: String,
    /// The folder the crate's folder is made in.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// The pipewright SDK the crate depends on by path. Default: `$PIPEWRIGHT_SDK`, else the
    /// `sdk/` of the checkout this binary was built in (`target/<profile>/pipewright`).
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct PluginDirArgs {
    /// The plugin crate's folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct PluginPushArgs {
    /// The plugin crate's folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Upload only; the active version stays as it is.
    #[arg(long)]
    pub no_activate: bool,
    #[command(flatten)]
    pub connection: ServerConnection,
}

#[derive(Args, Debug, Clone)]
pub struct PluginRefArgs {
    /// NAME@VERSION (`show` takes a bare NAME too).
    pub plugin: String,
    #[command(flatten)]
    pub connection: ServerConnection,
}

#[derive(Args, Debug, Clone)]
pub struct PluginNameArgs {
    /// The plugin's name.
    pub name: String,
    #[command(flatten)]
    pub connection: ServerConnection,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Creates the user (and account) if absent and prints one new API token on stdout.
    Create(TokenCreateArgs),
}

/// Where the server keeps its state.
#[derive(Args, Debug, Clone)]
pub struct StorageArgs {
    /// Directory for the SQLite database, blobs and the plugin compile cache.
    #[arg(long, env = "PIPEWRIGHT_DATA_DIR", default_value = "./pipewright-data")]
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`. Default: SQLite in the data dir.
    #[arg(long, env = "PIPEWRIGHT_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl StorageArgs {
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!("sqlite://{}", self.data_dir.join("pipewright.db").display())
        })
    }
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PIPEWRIGHT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Compile cache for plugins. Default: `<data-dir>/cache`. Always per server.
    #[arg(long, env = "PIPEWRIGHT_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Where blobs (pipeline files, uploads, run outputs, plugin components) are kept:
    /// `s3://BUCKET[/PREFIX]` on an S3-compatible store, configured by the standard `AWS_*`
    /// environment (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION`, `AWS_ALLOW_HTTP`). Default: the local directory `<data-dir>/blobs`, which
    /// other replicas cannot see.
    #[arg(long, env = "PIPEWRIGHT_BLOB_STORE", value_name = "URL")]
    pub blob_store: Option<crate::blobs::BlobLocation>,
    /// Where the Acumos pipelines' git working copies are kept. Replicas share it (a shared
    /// volume, as JupyterHub deployments share home directories). Default: `<data-dir>/pipelines`.
    #[arg(long, env = "PIPEWRIGHT_WORKCOPY_DIR")]
    pub workcopy_dir: Option<PathBuf>,
    /// Deadline of one plugin call, in milliseconds.
    #[arg(long, env = "PIPEWRIGHT_PLUGIN_TIMEOUT_MS", default_value_t = 2000)]
    pub plugin_timeout_ms: u64,
    /// Memory one plugin instance may use, in MiB.
    #[arg(long, env = "PIPEWRIGHT_PLUGIN_MEMORY_MIB", default_value_t = 64)]
    pub plugin_memory_mib: usize,
    /// Trust this request header, set by a gateway in front of the server, to name the
    /// authenticated user (Acumos `authenticatedUserId`). Off unless given; `--trust-gateway-header`
    /// alone trusts the header `authenticatedUserId`.
    #[arg(long, env = "PIPEWRIGHT_TRUST_GATEWAY_HEADER", num_args = 0..=1, default_missing_value = "authenticatedUserId", value_name = "HEADER")]
    pub trust_gateway_header: Option<axum::http::HeaderName>,
    /// One registration attempt (fetch, verify, validate, compile) may take this long.
    #[arg(long, env = "PIPEWRIGHT_REGISTRATION_TIMEOUT_SECS", default_value_t = 30 * 60)]
    pub registration_timeout_secs: u64,
    /// Failed attempts are retried, with backoff, until this long after submission.
    #[arg(long, env = "PIPEWRIGHT_REGISTRATION_RETRY_WINDOW_SECS", default_value_t = 2 * 60 * 60)]
    pub registration_retry_window_secs: u64,
    /// A worker's lease on a registration; after a crash the job runs again once it lapses.
    #[arg(long, env = "PIPEWRIGHT_REGISTRATION_LEASE_SECS", default_value_t = 30)]
    pub registration_lease_secs: u64,
    /// Allows `file://` content sources under this directory (refused otherwise).
    #[arg(long, env = "PIPEWRIGHT_REGISTRATION_FILE_ROOT")]
    pub registration_file_root: Option<PathBuf>,
    /// Lets the server fetch from these otherwise refused addresses (repeatable; comma-separated
    /// in the environment). What the server fetches for callers (a GBDX task's `properties.url`,
    /// a plugin added by URL, a Mystic run's file input given by URL, and every redirect on the
    /// way) goes only to global addresses:
    /// loopback, private, link-local (cloud metadata), CGNAT, multicast, broadcast, unspecified
    /// and reserved addresses, IPv4 and IPv6, are refused. `CIDR[:PORT]` allows the resolved
    /// addresses in the range (`10.0.0.0/8:443`, `127.0.0.1:8080`, `[fd00::/8]:80`; a bare
    /// address is one address); `HOST[:PORT]` allows the URL's host name exactly
    /// (case-insensitive), whatever it resolves to. No port: every port. The service URLs
    /// (`--jupyterhub-url`, `--zeppelin-url`) need no rule: each is allowed, for its own plugin's
    /// grant only.
    #[arg(
        long = "allow-fetch",
        env = "PIPEWRIGHT_ALLOW_FETCH",
        value_delimiter = ',',
        value_name = "HOST|CIDR[:PORT]"
    )]
    pub allow_fetch: Vec<crate::outbound::AllowRule>,
    /// Wall-clock deadline of one pipeline run (and of one workflow task).
    #[arg(long, env = "PIPEWRIGHT_RUN_TIMEOUT_SECS", default_value_t = 60)]
    pub run_timeout_secs: u64,
    /// Runs at once, in total. Default: 4 per core. At most 256 (the instance pool's slots).
    #[arg(long, env = "PIPEWRIGHT_MAX_RUNS",
          value_parser = clap::value_parser!(u64).range(1..=crate::plugins::runnable::RUN_SLOTS as u64))]
    pub max_runs: Option<u64>,
    /// Runs at once of one pipeline. Default: 2 per core. Beyond the bounds a run waits only if
    /// it asks to (`wait_for_resources`); otherwise it is answered 503 `no_resources_available`.
    #[arg(long, env = "PIPEWRIGHT_MAX_RUNS_PER_PIPELINE")]
    pub max_runs_per_pipeline: Option<usize>,
    /// A runnable pipeline not run for this long is scaled to zero: its compiled code leaves
    /// memory, and its next run loads it from the compile cache (milliseconds, no compile).
    #[arg(long, env = "PIPEWRIGHT_IDLE_TIMEOUT_SECS", default_value_t = 5 * 60)]
    pub idle_timeout_secs: u64,
    /// Largest file a run's input given by URL (Mystic's `File(url=…)`) may be; fetched only
    /// where `--allow-fetch` admits.
    #[arg(long, env = "PIPEWRIGHT_MAX_URL_INPUT_BYTES", default_value_t = crate::runs::DEFAULT_MAX_URL_INPUT_BYTES)]
    pub max_url_input_bytes: u64,
    /// Members of this account may change policy bindings (`PUT /v1/policy-bindings/{scope}`).
    /// Unset: nobody can, through the API.
    #[arg(long, env = "PIPEWRIGHT_ADMIN_ACCOUNT")]
    pub admin_account: Option<String>,
    /// The base URL clients reach this server at (e.g. `https://pipelines.example.com`): download
    /// links are built on it, never on request headers. Default: `http://` + the listen address.
    #[arg(long, env = "PIPEWRIGHT_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
    /// Files one account may keep uploaded (`/v4/files`).
    #[arg(long, env = "PIPEWRIGHT_UPLOAD_QUOTA_FILES", default_value_t = 1000)]
    pub upload_quota_files: u64,
    /// Bytes one account may keep uploaded (`/v4/files`).
    #[arg(long, env = "PIPEWRIGHT_UPLOAD_QUOTA_BYTES", default_value_t = 1 << 30)]
    pub upload_quota_bytes: u64,
    /// An upload is deleted this long after it was made (its bytes too, unless a version, a
    /// plugin or a run still names them).
    #[arg(long, env = "PIPEWRIGHT_UPLOAD_TTL_SECS", default_value_t = 24 * 60 * 60)]
    pub upload_ttl_secs: u64,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "PIPEWRIGHT_LOG_JSON")]
    pub log_json: bool,
    /// On SIGTERM or Ctrl-C the server stops accepting connections and lets the requests in
    /// flight finish for at most this long; then it exits, cutting off what is left (and
    /// logging how many). Background runs are not waited for (their leases lapse and they are
    /// failed by the next server's sweep).
    #[arg(long, env = "PIPEWRIGHT_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// JupyterHub's public base URL (e.g. `http://127.0.0.1:8000`): grants the `jupyter` plugin
    /// its REST API, to launch notebook servers. Its API token comes only from the environment
    /// variable `PIPEWRIGHT_JUPYTERHUB_TOKEN` (a flag would show in `ps`).
    #[arg(long, env = "PIPEWRIGHT_JUPYTERHUB_URL")]
    pub jupyterhub_url: Option<String>,
    /// Zeppelin's public base URL (e.g. `http://127.0.0.1:8081`): grants the `zeppelin` plugin its
    /// notebook REST API. Anonymous Zeppelin needs nothing more; for a proxy in front of it that
    /// wants a header, set `PIPEWRIGHT_ZEPPELIN_AUTHORIZATION` (the `Authorization` value).
    #[arg(long, env = "PIPEWRIGHT_ZEPPELIN_URL")]
    pub zeppelin_url: Option<String>,
}

/// The secret of `--jupyterhub-url`: read from the environment only.
pub const JUPYTERHUB_TOKEN_ENV: &str = "PIPEWRIGHT_JUPYTERHUB_TOKEN";
/// The optional `Authorization` value added to Zeppelin requests: from the environment only.
pub const ZEPPELIN_AUTHORIZATION_ENV: &str = "PIPEWRIGHT_ZEPPELIN_AUTHORIZATION";

#[derive(Args, Debug, Clone)]
pub struct TokenCreateArgs {
    /// The user the token acts for.
    #[arg(long)]
    pub user: String,
    /// The account it acts in (created if absent, the user added as a member). Default: the
    /// user's personal account.
    #[arg(long)]
    pub account: Option<String>,
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// `--public-url`: an absolute http(s) URL with no query or fragment; kept without a trailing
/// slash, as links append `/v4/…` to it.
fn parse_public_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "`{text}` must be an http:// or https:// URL with a host"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{text}` must not have a query or a fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    fn serve(args: &[&str]) -> Result<Vec<String>, String> {
        let cli = Cli::try_parse_from(["pipewright", "serve"].iter().chain(args))
            .map_err(|e| e.to_string())?;
        let Command::Serve(serve) = cli.command else {
            unreachable!("parsed `serve`")
        };
        Ok(serve.allow_fetch.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn allow_fetch_is_repeatable_and_comma_separated() {
        assert_eq!(serve(&[]).unwrap(), Vec::<String>::new());
        assert_eq!(
            serve(&[
                "--allow-fetch",
                "10.0.0.0/8:443",
                "--allow-fetch",
                "[fd00::/8]:80,Registry.Internal"
            ])
            .unwrap(),
            ["10.0.0.0/8:443", "[fd00::/8]:80", "registry.internal"]
        );
        let error = serve(&["--allow-fetch", "10.0.0.1/8"]).unwrap_err();
        assert!(error.contains("10.0.0.0/8"), "{error}");
    }
}
