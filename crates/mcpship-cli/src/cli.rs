//! Command-line interface: flags and environment, then dispatch.

use std::{path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use mcpship::{ServeConfig, Server, state::StateBackend};
use mcpship_docs::{
    store::{self, CachedStore, DocumentStore},
    tools::DocsServer,
};

/// Exit code for a configuration the server refuses to start with (EX_USAGE).
const EXIT_CONFIG: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "mcpship",
    version,
    about = "A production MCP server: document search over Streamable HTTP and stdio"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve MCP at http://HOST:PORT/mcp (or on stdio with --stdio).
    Serve(ServeArgs),
    /// Load Markdown, text, HTML and JSON Lines files into the document store.
    Ingest(IngestArgs),
    /// Check a running server end to end (health, modern and legacy MCP).
    Smoke(SmokeArgs),
    /// Exit 0 if the local server's /health is healthy (container HEALTHCHECK).
    Healthcheck(HealthcheckArgs),
    /// Print the effective configuration, secrets redacted.
    Config(ServeArgs),
}

/// Which test fixtures to serve instead of the document tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Fixtures {
    /// The document-search server (the product).
    None,
    /// The MCP conformance suite's fixture tools, resources and prompts.
    Conformance,
}

/// Where documents live.
#[derive(Debug, Clone, Args, serde::Serialize)]
pub(crate) struct StoreArgs {
    /// Document store: sqlite://PATH (default, created if missing),
    /// sqlite::memory:, or postgres://USER:PASSWORD@HOST/DB.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://mcpship.db")]
    pub(crate) database_url: String,
}

impl StoreArgs {
    pub(crate) async fn open(&self) -> anyhow::Result<Arc<dyn DocumentStore>> {
        store::open(&self.database_url).await.with_context(|| {
            format!(
                "opening the document store at {} (DATABASE_URL)",
                store::redact_url(&self.database_url)
            )
        })
    }
}

fn parse_duration(value: &str) -> Result<Duration, String> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(value.trim())
        .map_err(|e| format!("{e}; write e.g. \"5s\" or \"0\" to disable"))
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("{other:?} is not a boolean; use true or false")),
    }
}

#[derive(Debug, Clone, Args, serde::Serialize)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    #[serde(flatten)]
    server: ServeConfig,

    #[command(flatten)]
    #[serde(flatten)]
    store: StoreArgs,

    /// Load the sample corpus shipped in the binary at start (idempotent).
    #[arg(long, env = "MCPSHIP_SEED_CORPUS", value_parser = parse_bool, default_value = "true", action = clap::ArgAction::Set)]
    seed_corpus: bool,

    /// How long a fetched document is served from memory (0 disables).
    #[arg(long, env = "MCPSHIP_DOCUMENT_CACHE_TTL", value_parser = parse_duration, default_value = "5s")]
    #[serde(serialize_with = "show_duration")]
    document_cache_ttl: Duration,

    /// Serve MCP on stdin/stdout instead of HTTP (for desktop clients).
    #[arg(long)]
    stdio: bool,

    /// Serve test fixtures instead of the document tools.
    #[arg(long, env = "MCPSHIP_FIXTURES", value_enum, default_value_t = Fixtures::None)]
    fixtures: Fixtures,
}

fn show_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

#[derive(Debug, Args)]
struct IngestArgs {
    /// Files or directories to ingest (directories are walked).
    #[arg(required = true)]
    paths: Vec<PathBuf>,

    #[command(flatten)]
    store: StoreArgs,

    /// Never draw a progress bar, even on a terminal.
    #[arg(long)]
    no_progress: bool,

    #[command(flatten)]
    changes: ChangeArgs,
}

/// Where `mcpship ingest` announces what it changed: the serving replicas'
/// shared state. The same variables as `mcpship serve`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ChangeArgs {
    /// `redis` publishes changed documents to listeners on every replica
    /// sharing MCPSHIP_REDIS_URL; `memory` tells no one (no replica can hear).
    #[arg(long, env = mcpship::config::env::STATE, value_enum, default_value_t = StateBackend::Memory)]
    pub(crate) state: StateBackend,

    /// Redis URL for MCPSHIP_STATE=redis.
    #[arg(long, env = mcpship::config::env::REDIS_URL)]
    pub(crate) redis_url: Option<String>,

    /// Prefix of every Redis key; must match the serving replicas'.
    #[arg(long, env = mcpship::config::env::REDIS_PREFIX, default_value = "mcpship")]
    pub(crate) redis_prefix: String,
}

#[derive(Debug, Args)]
struct SmokeArgs {
    /// The MCP endpoint, e.g. http://127.0.0.1:8080/mcp.
    url: String,
    /// Tool to call (default: search_documents if offered).
    #[arg(long)]
    tool: Option<String>,
    /// JSON arguments for --tool.
    #[arg(long, value_parser = parse_json)]
    arguments: Option<serde_json::Value>,
    /// Time limit of each request.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    timeout: Duration,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_json(value: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(value).map_err(|e| format!("not valid JSON: {e}"))
}

#[derive(Debug, Args)]
struct HealthcheckArgs {
    /// URL to check [default: http://127.0.0.1:$PORT/health].
    #[arg(long)]
    url: Option<String>,
    /// Port of the local server.
    #[arg(long, env = "PORT", default_value_t = mcpship::config::DEFAULT_PORT)]
    port: u16,
    /// Time limit.
    #[arg(long, value_parser = parse_duration, default_value = "3s")]
    timeout: Duration,
}

/// Prints a clap error, naming the environment variable when one set the bad
/// value (clap itself only names the flag).
pub(crate) fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let code = error.exit_code();
    let _ = error.print();
    if matches!(
        error.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) && let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg)
    {
        let flag = arg
            .split_whitespace()
            .next()
            .unwrap_or(arg)
            .trim_start_matches('-');
        let command = <Cli as clap::CommandFactory>::command();
        let env = command
            .get_subcommands()
            .flat_map(|c| c.get_arguments())
            .find(|a| a.get_long() == Some(flag))
            .and_then(|a| a.get_env())
            .and_then(|e| e.to_str())
            .filter(|e| std::env::var_os(e).is_some());
        if let Some(env) = env {
            eprintln!("note: the value came from the environment variable {env}; fix or unset it");
        }
    }
    if code == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_CONFIG)
    }
}

impl ServeArgs {
    fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors: Vec<String> = self
            .server
            .validate()
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect();
        let url = &self.store.database_url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            errors.push(format!(
                "DATABASE_URL={:?} is not valid: use sqlite://PATH, sqlite::memory: or postgres://USER:PASSWORD@HOST/DB",
                store::redact_url(url)
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    async fn serve(self) -> anyhow::Result<()> {
        if self.fixtures == Fixtures::Conformance {
            tracing::warn!("serving the conformance test fixtures, not the document tools");
            // MRTR requestState sealed with MCPSHIP_REQUEST_STATE_KEYS, so a
            // retry may land on any replica with the same keys.
            let codec = mcpship::state::request_state_codec(&self.server).with_context(|| {
                format!("{} is not valid", mcpship::config::env::REQUEST_STATE_KEYS)
            })?;
            let fixtures = mcpship_conformance::ConformanceServer::new(codec);
            if self.stdio {
                let telemetry = mcpship::telemetry::Telemetry::from_config(&self.server);
                return mcpship::stdio::serve_stdio_with(fixtures.handler(), telemetry).await;
            }
            return Server::new(self.server, move || fixtures.handler())
                .run_until_signal()
                .await;
        }
        let backend = self.store.open().await?;
        if self.seed_corpus {
            let summary = mcpship_docs::corpus::seed(backend.clone()).await;
            tracing::info!(
                files = summary.files,
                inserted = summary.inserted,
                updated = summary.updated,
                unchanged = summary.unchanged,
                failed = summary.failed.len(),
                elapsed_ms = summary.elapsed.as_millis() as u64,
                "sample corpus loaded"
            );
            for failure in &summary.failed {
                tracing::warn!(error = %failure, "sample corpus file not loaded");
            }
        }
        let documents = backend.count().await?;
        tracing::info!(
            backend = backend.backend(),
            documents,
            "document store ready"
        );
        let cached = Arc::new(CachedStore::new(
            backend.clone(),
            10_000,
            self.document_cache_ttl,
        ));
        let handler = DocsServer::new(cached);
        if self.stdio {
            let telemetry = mcpship::telemetry::Telemetry::from_config(&self.server);
            return mcpship::stdio::serve_stdio_with(handler, telemetry).await;
        }
        let readiness: mcpship::http::ReadinessCheck = Arc::new(move || {
            let store = backend.clone();
            Box::pin(async move { store.ping().await.map_err(|e| e.to_string()) })
        });
        Server::new(self.server, move || handler.clone())
            .with_readiness_check(readiness)
            .run_until_signal()
            .await
    }
}

impl Cli {
    pub(crate) async fn run(self) -> ExitCode {
        match self.command {
            Command::Serve(args) => {
                if let Err(errors) = args.validate() {
                    for e in errors {
                        eprintln!("error: {e}");
                    }
                    return ExitCode::from(EXIT_CONFIG);
                }
                // Logs and, when configured, the trace exporter.
                let telemetry = match mcpship::telemetry::init(&args.server) {
                    Ok(guard) => guard,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(EXIT_CONFIG);
                    }
                };
                let result = args.serve().await;
                // Export the last spans before exiting.
                telemetry.shutdown().await;
                match result {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "server stopped on an error");
                        eprintln!("error: {e:#}");
                        ExitCode::FAILURE
                    }
                }
            }
            Command::Config(args) => {
                let valid = args.validate();
                let mut shown = serde_json::to_value(&args).unwrap_or_default();
                shown["database_url"] =
                    serde_json::Value::String(store::redact_url(&args.store.database_url));
                shown["host"] = serde_json::Value::String(args.server.bind_host().to_string());
                println!(
                    "{}",
                    serde_json::to_string_pretty(&shown).unwrap_or_default()
                );
                match valid {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(errors) => {
                        for e in errors {
                            eprintln!("error: {e}");
                        }
                        ExitCode::from(EXIT_CONFIG)
                    }
                }
            }
            Command::Ingest(args) => {
                mcpship::logging::init("warn", mcpship::LogFormat::Text);
                match crate::ingest_cmd::run(
                    args.paths,
                    &args.store,
                    &args.changes,
                    args.no_progress,
                )
                .await
                {
                    Ok(true) => ExitCode::SUCCESS,
                    Ok(false) => ExitCode::FAILURE,
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        ExitCode::FAILURE
                    }
                }
            }
            Command::Smoke(args) => {
                let report = mcpship::smoke::run(mcpship::smoke::SmokeOptions {
                    endpoint: args.url,
                    tool: args.tool,
                    arguments: args.arguments,
                    timeout: args.timeout,
                })
                .await;
                if args.json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&report).unwrap_or_default()
                    );
                } else {
                    println!("{report}");
                }
                if report.passed() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Command::Healthcheck(args) => {
                let url = args
                    .url
                    .unwrap_or_else(|| format!("http://127.0.0.1:{}/health", args.port));
                match mcpship::healthcheck::check(&url, args.timeout).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("unhealthy: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
        }
    }
}
