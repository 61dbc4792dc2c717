//! `terse`: the compression service suite server. Hosts any subset of the services over gRPC,
//! chosen by a TOML config file, environment variables and flags (flags win).

use std::{io::IsTerminal, net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::Parser;
use terse_runtime::ProviderKind;
use terse_server::{
    config::{self, Config, LogFormat},
    server,
};

/// Command-line flags. Each can also be set by the environment variable shown in `--help`.
#[derive(Debug, Parser)]
#[command(
    name = "terse",
    version,
    about = "terse compression service suite: gRPC server"
)]
struct Cli {
    /// TOML config file (see config/terse.toml); without it the built-in defaults apply.
    #[arg(long, short, env = "TERSE_CONFIG")]
    config: Option<PathBuf>,
    /// gRPC listen address (port 0: pick a free port).
    #[arg(long, env = "TERSE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Prometheus metrics listen address; empty disables.
    #[arg(long, env = "TERSE_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Services to host, comma separated (e.g. `models`).
    #[arg(long, env = "TERSE_SERVICES", value_delimiter = ',')]
    services: Option<Vec<String>>,
    /// Path of libonnxruntime.so.<version>.
    #[arg(long, env = "TERSE_ORT_LIBRARY")]
    ort_library: Option<PathBuf>,
    /// Model repository root.
    #[arg(long, env = "TERSE_MODEL_REPOSITORY")]
    model_repository: Option<PathBuf>,
    /// Execution providers in order of preference, comma separated (cpu, cuda, tensorrt).
    #[arg(long, env = "TERSE_PROVIDERS", value_delimiter = ',')]
    providers: Option<Vec<ProviderKind>>,
    /// Log format.
    #[arg(long, env = "TERSE_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `debug,ort=warn`.
    #[arg(long, env = "TERSE_LOG_LEVEL")]
    log_level: Option<String>,
    /// PEM certificate chain: serve over TLS (with --tls-key).
    #[arg(long, env = "TERSE_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "TERSE_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// PEM CA bundle for client certificates: require mutual TLS.
    #[arg(long, env = "TERSE_TLS_CLIENT_CA")]
    tls_client_ca: Option<PathBuf>,
    /// File of accepted bearer tokens, one per line: require `authorization: Bearer <token>`.
    #[arg(long, env = "TERSE_AUTH_TOKENS_FILE")]
    auth_tokens_file: Option<PathBuf>,
    /// Check the configuration and load every model, then exit without serving.
    #[arg(long)]
    check: bool,
}

impl Cli {
    /// Reads the config file (or defaults) and applies flag / environment overrides.
    fn into_config(self) -> anyhow::Result<(Config, bool)> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(listen) = self.listen {
            config.server.listen = listen;
        }
        if let Some(metrics) = self.metrics_listen {
            config.server.metrics_listen = metrics;
        }
        if let Some(services) = self.services {
            config.server.services = services;
        }
        if let Some(library) = self.ort_library {
            config.runtime.library = Some(library);
        }
        if let Some(repository) = self.model_repository {
            config.runtime.repository = repository;
        }
        if let Some(providers) = self.providers {
            config.runtime.sessions.providers = providers;
        }
        if let Some(cert) = self.tls_cert {
            config.tls.cert = Some(cert);
        }
        if let Some(key) = self.tls_key {
            config.tls.key = Some(key);
        }
        if let Some(ca) = self.tls_client_ca {
            config.tls.client_ca = Some(ca);
        }
        if let Some(tokens) = self.auth_tokens_file {
            config.auth.tokens_file = Some(tokens);
        }
        if let Some(format) = self.log_format {
            config.log.format = format;
        }
        if let Some(level) = self.log_level {
            config.log.level = level;
        }
        Ok((config, self.check))
    }
}

fn init_logging(config: &config::LogSection) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.is_empty() => EnvFilter::try_new(value),
        _ => EnvFilter::try_new(&config.level),
    }
    .map_err(|e| anyhow::anyhow!("log level `{}`: {e}", config.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match config.format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}

fn run() -> anyhow::Result<()> {
    let (config, check_only) = Cli::parse().into_config()?;
    let resolved = config.resolve()?;
    init_logging(&resolved.config.log)?;
    // Requests' scratch buffers stay in the heap for the next request (terse_core::heap).
    if !terse_core::heap::keep_freed_buffers() {
        tracing::debug!("the C allocator keeps its default heap thresholds");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(server::run(resolved, check_only));
    // Dropping the runtime would wait for blocking work abandoned at the end of the grace
    // period; the process exits now instead (issue 18, finding 3).
    runtime.shutdown_background();
    result
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, the whole cause chain: start-up errors must be readable in a pod log.
            eprintln!("terse: error: {}", format!("{error:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
