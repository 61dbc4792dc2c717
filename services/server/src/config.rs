//! Server configuration: a TOML file, overridden by environment variables and CLI flags.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, bail};
use serde::Deserialize;
use terse_runtime::{ModelSelection, SessionOptions};
use terse_service_common::HostedService;

use crate::auth::TokenSet;

/// A service this binary can host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKind {
    /// `compress.models.v1.ModelRepositoryService`.
    Models,
    /// `compress.splat.v1.SplatService`.
    Splat,
    /// `compress.vision.v1.VisionService`.
    Vision,
    /// `compress.image.v1.ImageService`.
    Image,
    /// `compress.audio.v1.AudioService`.
    Audio,
    /// `compress.context.v1.ContextService`.
    Context,
    /// `compress.tensor.v1.TensorService`.
    Tensor,
}

/// Services the API defines that this build does not implement yet (named in errors).
const PLANNED_SERVICES: &[&str] = &[];

impl ServiceKind {
    /// Every service this build implements.
    pub const ALL: &[ServiceKind] = &[
        ServiceKind::Models,
        ServiceKind::Splat,
        ServiceKind::Vision,
        ServiceKind::Image,
        ServiceKind::Audio,
        ServiceKind::Context,
        ServiceKind::Tensor,
    ];

    /// The service of this kind as `config` sets it up: the one place that lists the
    /// service implementations.
    pub fn hosted(self, config: &Config) -> &dyn HostedService {
        match self {
            Self::Models => &terse_models_service::ModelsHost,
            Self::Splat => &config.splat,
            Self::Vision => &config.vision,
            Self::Image => &config.image,
            Self::Audio => &config.audio,
            Self::Context => &config.context,
            Self::Tensor => &config.tensor,
        }
    }

    /// Config name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Models => "models",
            Self::Splat => "splat",
            Self::Vision => "vision",
            Self::Image => "image",
            Self::Audio => "audio",
            Self::Context => "context",
            Self::Tensor => "tensor",
        }
    }

    /// Fully qualified gRPC service name (health and reflection use it).
    pub fn grpc_name(self) -> &'static str {
        match self {
            Self::Models => "compress.models.v1.ModelRepositoryService",
            Self::Splat => "compress.splat.v1.SplatService",
            Self::Vision => "compress.vision.v1.VisionService",
            Self::Image => "compress.image.v1.ImageService",
            Self::Audio => "compress.audio.v1.AudioService",
            Self::Context => "compress.context.v1.ContextService",
            Self::Tensor => "compress.tensor.v1.TensorService",
        }
    }

    /// Parses a config name, explaining unknown and not-yet-built services.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        if let Some(kind) = Self::ALL.iter().find(|k| k.name() == name) {
            return Ok(*kind);
        }
        let known: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
        if PLANNED_SERVICES.contains(&name) {
            bail!(
                "service `{name}` is defined in the API but not implemented in this build (available: {})",
                known.join(", ")
            );
        }
        bail!("unknown service `{name}` (available: {})", known.join(", "))
    }
}

/// Largest request message when the config names no limit.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 << 20;
/// Largest response message when the config names no limit.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 << 20;
/// Largest request and response message of the tensor service by default: whole KV caches.
pub const TENSOR_MAX_MESSAGE_BYTES: usize = 256 << 20;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// `[server]`: transport and limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// gRPC listen address; port 0 picks a free port (printed on stdout when ready).
    pub listen: SocketAddr,
    /// Prometheus `/metrics` listen address; empty disables the endpoint.
    pub metrics_listen: String,
    /// Services to host, by config name.
    pub services: Vec<String>,
    /// Requests served at once across all services; more are refused with RESOURCE_EXHAUSTED.
    /// Health and reflection calls are never refused.
    pub max_concurrent_requests: usize,
    /// Longest a request may run, in ms; a shorter client deadline wins. 0: no server limit.
    pub request_timeout_ms: u64,
    /// On SIGTERM/SIGINT, how long in-flight calls may take to finish before the process exits.
    pub shutdown_grace_ms: u64,
    /// Largest request message per service, in bytes (`default` applies to unnamed services).
    pub max_request_bytes: BTreeMap<String, usize>,
    /// Largest response message per service, in bytes (`default` applies to unnamed services).
    pub max_response_bytes: BTreeMap<String, usize>,
    /// Working memory all calls together may reserve, in bytes: each image, audio, splat and
    /// tensor call reserves its estimate (docs/operations.md) before its work, and one over the whole
    /// budget or over what is free gets RESOURCE_EXHAUSTED.
    pub max_work_memory_bytes: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:50051".parse().expect("valid address"),
            metrics_listen: "127.0.0.1:9464".to_string(),
            services: [
                "models", "splat", "vision", "image", "audio", "context", "tensor",
            ]
            .map(String::from)
            .to_vec(),
            max_concurrent_requests: 256,
            request_timeout_ms: 60_000,
            shutdown_grace_ms: 15_000,
            // A KV cache travels in one message (23.6 MB for 512 tokens of SmolLM2-135M).
            max_request_bytes: BTreeMap::from([
                ("default".to_string(), DEFAULT_MAX_REQUEST_BYTES),
                ("tensor".to_string(), TENSOR_MAX_MESSAGE_BYTES),
            ]),
            max_response_bytes: BTreeMap::from([
                ("default".to_string(), DEFAULT_MAX_RESPONSE_BYTES),
                ("tensor".to_string(), TENSOR_MAX_MESSAGE_BYTES),
            ]),
            max_work_memory_bytes: 8 << 30,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// `plain` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `terse=debug,ort=warn`; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            format: LogFormat::Plain,
            level: "info,ort=warn".to_string(),
        }
    }
}

/// `[runtime]`: the ONNX Runtime library and the model repository.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSection {
    /// Path of `libonnxruntime.so.<version>`; unset: `$ORT_DYLIB_PATH`, then `./.venv`.
    pub library: Option<PathBuf>,
    /// Root of the model repository.
    pub repository: PathBuf,
    /// Which models to load.
    pub models: ModelSelection,
    /// Execution providers and session pools.
    pub sessions: SessionOptions,
}

impl Default for RuntimeSection {
    fn default() -> Self {
        Self {
            library: None,
            repository: PathBuf::from("models/repository"),
            models: ModelSelection::default(),
            sessions: SessionOptions::default(),
        }
    }
}

/// Smallest `server.max_response_bytes`: a streamed download's chunk and its header fit.
const MIN_RESPONSE_BYTES: usize = 2 * terse_service_common::DOWNLOAD_CHUNK_BYTES;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Transport and limits.
    pub server: ServerSection,
    /// Logging.
    pub log: LogSection,
    /// Models.
    pub runtime: RuntimeSection,
    /// 3D Gaussian splat service limits (the service's own section).
    pub splat: terse_splat_service::SplatLimits,
    /// Visual-token service limits.
    pub vision: terse_vision_service::VisionLimits,
    /// Image codec limits.
    pub image: terse_image_service::ImageLimits,
    /// Audio codec limits.
    pub audio: terse_audio_service::AudioLimits,
    /// Context compression limits.
    pub context: terse_context_service::ContextLimits,
    /// Weight compression limits.
    pub tensor: terse_tensor_service::TensorLimits,
    /// Transport security.
    pub tls: TlsSection,
    /// Bearer-token authentication.
    pub auth: AuthSection,
}

/// `[tls]`: serve gRPC over TLS (rustls), optionally requiring client certificates.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain of the server; with `key`, turns TLS on.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// PEM bundle of the CAs whose client certificates are accepted; set, it turns on mutual
    /// TLS: a client without a certificate signed by one of them cannot connect.
    pub client_ca: Option<PathBuf>,
}

/// `[auth]`: bearer tokens (`authorization: Bearer <token>`) required on every call.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    /// File of accepted tokens, one per line (blank lines and `#` comments ignored).
    pub tokens_file: Option<PathBuf>,
    /// Name of an environment variable holding accepted tokens, comma or newline separated.
    pub tokens_env: Option<String>,
    /// gRPC services callable without a token (health, so that probes need no secret).
    pub exempt: Vec<String>,
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            tokens_file: None,
            tokens_env: None,
            exempt: vec!["grpc.health.v1.Health".to_string()],
        }
    }
}

/// Configuration checked and resolved into what the server needs.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The raw configuration.
    pub config: Config,
    /// Hosted services, de-duplicated, in a stable order.
    pub services: Vec<ServiceKind>,
    /// Metrics address, if enabled.
    pub metrics_listen: Option<SocketAddr>,
    /// Certificates and keys read from `[tls]`, when TLS is on.
    pub tls: Option<TlsMaterial>,
    /// Accepted bearer tokens from `[auth]`, when authentication is on.
    pub tokens: Option<Arc<TokenSet>>,
}

/// The PEM files named in `[tls]`, read at start-up. `Debug` shows sizes only.
#[derive(Clone)]
pub struct TlsMaterial {
    /// Server certificate chain.
    pub cert_pem: Vec<u8>,
    /// Server private key.
    pub key_pem: Vec<u8>,
    /// Client CA bundle: mutual TLS when present.
    pub client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("cert_bytes", &self.cert_pem.len())
            .field("key", &"<redacted>")
            .field("mutual", &self.client_ca_pem.is_some())
            .finish()
    }
}

/// Shortest accepted token: shorter secrets are guessable and refused at start-up.
pub const MIN_TOKEN_LEN: usize = 16;

fn read_pem(path: &std::path::Path, what: &str) -> anyhow::Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        bail!("{what} {} is not a PEM file", path.display());
    }
    Ok(bytes)
}

impl TlsSection {
    fn load(&self) -> anyhow::Result<Option<TlsMaterial>> {
        match (&self.cert, &self.key) {
            (None, None) => {
                if self.client_ca.is_some() {
                    bail!("tls.client_ca needs tls.cert and tls.key (mutual TLS runs over TLS)");
                }
                Ok(None)
            }
            (Some(cert), Some(key)) => Ok(Some(TlsMaterial {
                cert_pem: read_pem(cert, "tls.cert")?,
                key_pem: read_pem(key, "tls.key")?,
                client_ca_pem: self
                    .client_ca
                    .as_deref()
                    .map(|ca| read_pem(ca, "tls.client_ca"))
                    .transpose()?,
            })),
            _ => bail!("tls.cert and tls.key must be set together"),
        }
    }
}

impl AuthSection {
    fn load(&self) -> anyhow::Result<Option<Arc<TokenSet>>> {
        if self.tokens_file.is_none() && self.tokens_env.is_none() {
            return Ok(None);
        }
        let mut tokens = Vec::new();
        if let Some(path) = &self.tokens_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read auth.tokens_file {}", path.display()))?;
            tokens.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from),
            );
        }
        if let Some(name) = &self.tokens_env {
            let value = std::env::var(name).with_context(|| {
                format!("auth.tokens_env names ${name}, which is not set (or not UTF-8)")
            })?;
            tokens.extend(
                value
                    .split([',', '\n'])
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(String::from),
            );
        }
        if tokens.is_empty() {
            bail!(
                "authentication is configured but no token was found (auth.tokens_file / auth.tokens_env)"
            );
        }
        if let Some(position) = tokens.iter().position(|t| t.len() < MIN_TOKEN_LEN) {
            bail!(
                "auth token #{} is shorter than {MIN_TOKEN_LEN} characters",
                position + 1
            );
        }
        if let Some(bad) = tokens
            .iter()
            .position(|t| !t.bytes().all(|b| b.is_ascii_graphic()))
        {
            bail!(
                "auth token #{} has characters other than printable ASCII",
                bad + 1
            );
        }
        Ok(Some(Arc::new(TokenSet::new(&tokens))))
    }
}

impl Config {
    /// Reads a TOML file. Relative paths written in it are relative to the file's directory
    /// (so `terse --config /etc/terse/terse.toml` works from any directory); built-in
    /// defaults, flags and environment variables stay relative to the working directory.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let parse_error = |e: toml::de::Error| {
            anyhow::anyhow!(
                "config file {}: {}",
                path.display(),
                e.to_string().replace('\n', " ")
            )
        };
        let mut config: Self = toml::from_str(&text).map_err(parse_error)?;
        let written: toml::Table = toml::from_str(&text).map_err(parse_error)?;
        let base = path.parent().unwrap_or(Path::new(""));
        config.rebase_written_paths(&written, base);
        Ok(config)
    }

    /// Joins every relative path that `written` (the file's own keys) sets onto `base`.
    fn rebase_written_paths(&mut self, written: &toml::Table, base: &Path) {
        let is_written = |key: &str| {
            let mut value = None::<&toml::Value>;
            let mut table = Some(written);
            for part in key.split('.') {
                value = table.and_then(|t| t.get(part));
                table = value.and_then(toml::Value::as_table);
            }
            value.is_some()
        };
        let rebase = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        for (key, path) in [
            ("runtime.repository", Some(&mut self.runtime.repository)),
            ("runtime.library", self.runtime.library.as_mut()),
            (
                "runtime.sessions.tensorrt_engine_cache",
                self.runtime.sessions.tensorrt_engine_cache.as_mut(),
            ),
            ("tls.cert", self.tls.cert.as_mut()),
            ("tls.key", self.tls.key.as_mut()),
            ("tls.client_ca", self.tls.client_ca.as_mut()),
            ("auth.tokens_file", self.auth.tokens_file.as_mut()),
        ] {
            if let Some(path) = path.filter(|_| is_written(key)) {
                rebase(path);
            }
        }
    }

    /// Checks the configuration and resolves names and addresses.
    pub fn resolve(self) -> anyhow::Result<Resolved> {
        let mut services = self
            .server
            .services
            .iter()
            .map(|name| ServiceKind::parse(name.trim()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        services.sort();
        services.dedup();
        if services.is_empty() {
            bail!("no services configured (server.services is empty)");
        }
        for (table, limits) in [
            ("server.max_request_bytes", &self.server.max_request_bytes),
            ("server.max_response_bytes", &self.server.max_response_bytes),
        ] {
            for (key, &value) in limits {
                if key != "default" {
                    ServiceKind::parse(key).with_context(|| format!("{table}.{key}"))?;
                }
                if value == 0 {
                    bail!("{table}.{key} must be positive");
                }
                if table == "server.max_response_bytes" && value < MIN_RESPONSE_BYTES {
                    bail!(
                        "{table}.{key} must be at least {MIN_RESPONSE_BYTES} (streamed downloads \
                         send chunks of {} bytes)",
                        terse_service_common::DOWNLOAD_CHUNK_BYTES
                    );
                }
            }
        }
        if self.server.max_work_memory_bytes < 1 << 20 {
            bail!("server.max_work_memory_bytes must be at least 1 MiB");
        }
        if self.server.max_concurrent_requests == 0 {
            bail!("server.max_concurrent_requests must be positive");
        }
        if self.runtime.sessions.pool_size == 0 {
            bail!("runtime.sessions.pool_size must be positive");
        }
        if self.context.max_input_tokens == 0 || self.context.max_batch_requests == 0 {
            bail!("context.max_input_tokens and context.max_batch_requests must be positive");
        }
        if !(self.audio.max_seconds.is_finite() && self.audio.max_seconds > 0.0) {
            bail!("audio.max_seconds must be a positive number");
        }
        let metrics = self.server.metrics_listen.trim();
        let metrics_listen = if metrics.is_empty() {
            None
        } else {
            Some(
                metrics
                    .parse()
                    .with_context(|| format!("server.metrics_listen `{metrics}`"))?,
            )
        };
        for name in &self.auth.exempt {
            if name != "grpc.health.v1.Health"
                && !name.starts_with("grpc.reflection.")
                && !ServiceKind::ALL.iter().any(|k| k.grpc_name() == name)
            {
                bail!("auth.exempt names `{name}`, which is not a gRPC service of this server");
            }
        }
        let tls = self.tls.load()?;
        let tokens = self.auth.load()?;
        Ok(Resolved {
            config: self,
            services,
            metrics_listen,
            tls,
            tokens,
        })
    }
}

impl Resolved {
    /// The service's own entry, else the table's `default`, else the built-in default (a table
    /// given in a config file replaces the built-in one, which may drop `default`).
    fn limit(table: &BTreeMap<String, usize>, service: ServiceKind, built_in: usize) -> usize {
        table
            .get(service.name())
            .or_else(|| table.get("default"))
            .copied()
            .unwrap_or(built_in)
    }

    /// Largest request message for `service`.
    pub fn max_request_bytes(&self, service: ServiceKind) -> usize {
        Self::limit(
            &self.config.server.max_request_bytes,
            service,
            DEFAULT_MAX_REQUEST_BYTES,
        )
    }

    /// Largest response message for `service`.
    pub fn max_response_bytes(&self, service: ServiceKind) -> usize {
        Self::limit(
            &self.config.server.max_response_bytes,
            service,
            DEFAULT_MAX_RESPONSE_BYTES,
        )
    }

    /// Server-side request timeout, if any.
    pub fn request_timeout(&self) -> Option<Duration> {
        (self.config.server.request_timeout_ms > 0)
            .then(|| Duration::from_millis(self.config.server.request_timeout_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_file_is_the_default() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut shipped = Config::from_file(&root.join("config/terse.toml"))
            .unwrap()
            .resolve()
            .unwrap();
        let default = Config::default().resolve().unwrap();
        // The file names the repository relative to itself, the default relative to the
        // working directory (the repository root): the same directory.
        assert_eq!(
            shipped.config.runtime.repository.canonicalize().unwrap(),
            root.join(&default.config.runtime.repository)
                .canonicalize()
                .unwrap()
        );
        shipped.config.runtime.repository = default.config.runtime.repository.clone();
        assert_eq!(
            format!("{:?}", shipped.config),
            format!("{:?}", default.config)
        );
    }

    #[test]
    fn a_response_limit_below_one_download_chunk_is_refused() {
        let config: Config =
            toml::from_str("[server.max_response_bytes]\ndefault = 131072\n").unwrap();
        let err = config.resolve().unwrap_err().to_string();
        assert!(err.contains("must be at least 2097152"), "{err}");
    }

    #[test]
    fn unknown_services_and_keys_are_rejected() {
        let mut config = Config::default();
        config.server.services = vec!["models".into(), "teleport".into()];
        let err = config.resolve().unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown service `teleport` (available: models, splat, vision, image, audio, context, tensor)"
        );

        let err = toml::from_str::<Config>("[server]\nlisten_port = 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `listen_port`"), "{err}");
    }

    #[test]
    fn per_service_limits_fall_back_to_default() {
        let mut config = Config::default();
        config
            .server
            .max_request_bytes
            .insert("models".into(), 1234);
        let resolved = config.resolve().unwrap();
        assert_eq!(resolved.max_request_bytes(ServiceKind::Models), 1234);

        // A table without `default` (it replaces the built-in one) falls back to the built-in value.
        let empty: Config = toml::from_str("[server.max_response_bytes]\n").unwrap();
        let resolved = empty.resolve().unwrap();
        assert_eq!(
            resolved.max_response_bytes(ServiceKind::Models),
            DEFAULT_MAX_RESPONSE_BYTES
        );
        assert_eq!(
            resolved.max_response_bytes(ServiceKind::Models),
            DEFAULT_MAX_RESPONSE_BYTES
        );
    }
}
