//! `terse-cli`: encode and decode image, audio, splat and safetensors files (and whole
//! folders) and KV caches, and compress prompts and retrieved contexts, against a terse server (`--server`) or with the
//! services hosted in-process (no `--server`).

mod batch;
mod files;
mod kv;
mod local;
mod shard;
mod text;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use terse_client::Client;

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "terse-cli", version, about = "terse compression client")]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: Command,
}

/// Where the services are.
#[derive(Debug, Args)]
struct Connection {
    /// Server address (`http://host:port`, `https://…` or `host:port`). Without it the services
    /// run in this process on the shipped models.
    #[arg(long, env = "TERSE_SERVER", global = true)]
    server: Option<String>,
    /// Bearer token sent with every call.
    #[arg(long, env = "TERSE_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Use TLS with the system roots (or `--ca-cert`).
    #[arg(long, global = true)]
    tls: bool,
    /// PEM file of the CA that signed the server certificate (implies `--tls`).
    #[arg(long, global = true)]
    ca_cert: Option<PathBuf>,
    /// Per-call deadline in seconds.
    #[arg(long, default_value_t = 300, global = true)]
    timeout_secs: u64,
    /// Requests in flight at once.
    #[arg(long, short = 'j', default_value_t = 4, global = true)]
    jobs: usize,
    /// In-process mode: server config file (TOML, as for `terse`).
    #[arg(long, env = "TERSE_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// In-process mode: model repository root.
    #[arg(long, env = "TERSE_MODEL_REPOSITORY", global = true)]
    model_repository: Option<PathBuf>,
    /// In-process mode: path of libonnxruntime.so.<version>.
    #[arg(long, env = "TERSE_ORT_LIBRARY", global = true)]
    ort_library: Option<PathBuf>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Compress files or folders (recursively): images, audio, splat scenes, safetensors
    /// weights. Writes `<name>.terse-image|-audio|-splat|-tensor` next to each input or under
    /// `--out`.
    Encode(batch::EncodeArgs),
    /// Decode `.terse-*` files or folders back to PNG/WebP, WAV, PLY/SPZ, safetensors.
    Decode(batch::DecodeArgs),
    /// Encode a KV cache (a safetensors file with one tensor `kv` [layers, 2, kv_heads, tokens,
    /// head_dim]) of a causal LM of the repository into a lossy `.terse-kv` bitstream.
    EncodeKv(kv::EncodeKvArgs),
    /// Decode a `.terse-kv` bitstream into a safetensors file (tensor `kv`, in the dtype it
    /// was encoded from).
    DecodeKv(kv::DecodeKvArgs),
    /// Compress a prompt (LLMLingua-2) or, with `--query`, select from documents (RECOMP),
    /// reading files or stdin; the result goes to stdout, the figures to stderr.
    CompressContext(text::ContextArgs),
    /// Asks a server's gRPC health service (for container health checks): prints the status and
    /// exits 0 when SERVING, 1 otherwise.
    Health {
        /// Health name: `readiness` (every hosted service), `liveness`, or a gRPC service name.
        #[arg(default_value = "readiness")]
        service: String,
    },
}

impl Connection {
    /// Connects to `--server`, or starts the services for `services` in-process.
    async fn open(&self, services: &[&str]) -> anyhow::Result<(Client, Option<local::Local>)> {
        let (address, local) = match &self.server {
            Some(address) => (address.clone(), None),
            None => {
                let local = local::Local::start(self, services).await?;
                (format!("http://{}", local.address()), Some(local))
            }
        };
        let mut builder = Client::builder(address)
            .timeout(Duration::from_secs(self.timeout_secs))
            .retries(3, Duration::from_millis(200));
        if let Some(token) = &self.token {
            builder = builder.auth_token(token.clone());
        }
        if let Some(path) = &self.ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("--ca-cert {}: {e}", path.display()))?;
            builder = builder.tls_ca(pem, None);
        } else if self.tls {
            builder = builder.tls();
        }
        Ok((builder.connect().await?, local))
    }
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::Encode(args) => batch::encode(&cli.connection, args).await,
        Command::Decode(args) => batch::decode(&cli.connection, args).await,
        Command::CompressContext(args) => text::compress(&cli.connection, args).await,
        Command::EncodeKv(args) => kv::encode(&cli.connection, args).await,
        Command::DecodeKv(args) => kv::decode(&cli.connection, args).await,
        Command::Health { service } => {
            if cli.connection.server.is_none() {
                anyhow::bail!("health needs --server (or $TERSE_SERVER)");
            }
            let (client, _) = cli.connection.open(&[]).await?;
            let serving = client.serving(&service).await?;
            println!("{}", if serving { "SERVING" } else { "NOT_SERVING" });
            Ok(serving)
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("terse-cli: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
