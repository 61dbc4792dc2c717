//! `terse-load`: a bounded gRPC load generator for terse (a ghz substitute). For each method and
//! each concurrency level it sends a fixed number of calls (or stops at a time cap), from that many
//! concurrent clients each waiting for its answer before the next call, and prints one table row:
//! sustained calls/s, latency percentiles, status codes and, with `--server-pid`, the server's
//! peak resident memory during the run. No call is retried: shed calls (RESOURCE_EXHAUSTED) are
//! counted as such. Loopback use is the intent; every run stops by itself.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use terse_proto::{
    audio::v1::{self as audio, audio_service_client::AudioServiceClient},
    common::v1::{DataType, ModelRef, Tensor},
    context::v1::{self as context, context_service_client::ContextServiceClient},
    image::v1::{self as image, image_service_client::ImageServiceClient},
    models::v1::{InferRequest, model_repository_service_client::ModelRepositoryServiceClient},
    splat::v1::{self as splat, splat_service_client::SplatServiceClient},
    vision::v1::{self as vision, vision_service_client::VisionServiceClient},
};
use tonic::{Code, transport::Channel};

/// A method to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Method {
    /// ModelRepositoryService/Infer on `--model` with an fp32 input of `--shape`.
    Infer,
    /// ModelRepositoryService/Infer on a text model `--model` (e.g. lingua-minilm-keep) with
    /// int64 `input_ids` and `attention_mask` of one row of `--tokens` tokens.
    Tokens,
    /// ImageService/Encode of an image file (default codec).
    Image,
    /// AudioService/Encode of an audio file (resampled to the codec's rate).
    Audio,
    /// SplatService/Encode of a PLY scene.
    Splat,
    /// ContextService/CompressPrompt of a text at rate 0.5.
    Context,
    /// VisionService/PruneTokens: 576 tokens of 1024 floats to 144 with FasterVLM.
    Vision,
}

/// Command-line options.
#[derive(Debug, Parser)]
#[command(name = "terse-load", about = "Bounded load test of a terse server")]
struct Options {
    /// Server address, e.g. http://127.0.0.1:50051.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Methods to load, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "infer")]
    method: Vec<Method>,
    /// Concurrent clients, comma separated: one run per level.
    #[arg(long, value_delimiter = ',', default_value = "8")]
    concurrency: Vec<usize>,
    /// Calls per run (at most 1,000,000).
    #[arg(long, default_value_t = 1000)]
    requests: u64,
    /// Stop a run after this many seconds even if calls remain (at most 600).
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
    /// Per-call deadline in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Model for `infer`.
    #[arg(long, default_value = "haar-wpt2d-analysis")]
    model: String,
    /// Input tensor name for `infer`.
    #[arg(long, default_value = "image")]
    input: String,
    /// Input shape for `infer` (fp32, deterministic pattern), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,3,256,256")]
    shape: Vec<i64>,
    /// Tokens per row for `tokens` (framing ids included).
    #[arg(long, default_value_t = 128)]
    tokens: usize,
    /// Input file for `image`, `audio`, `splat` or `context` (default: a test fixture).
    #[arg(long)]
    file: Option<PathBuf>,
    /// Process id of the server: report its peak resident memory during each run (Linux).
    #[arg(long)]
    server_pid: Option<u32>,
    /// HTTP/2 connections the clients share (calls are spread over them).
    #[arg(long, default_value_t = 4)]
    connections: usize,
}

/// One request, ready to send again and again.
#[derive(Clone)]
enum Call {
    Infer(InferRequest),
    Image(image::EncodeRequest),
    Audio(audio::EncodeRequest),
    Splat(splat::EncodeRequest),
    Context(context::CompressPromptRequest),
    Vision(vision::PruneTokensRequest),
}

fn request<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

fn code<T>(result: Result<T, tonic::Status>) -> Code {
    match result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

impl Call {
    /// Sends the call once and returns its status code.
    async fn send(&self, channel: Channel, timeout: Duration) -> Code {
        const MAX: usize = 1 << 30;
        match self {
            Call::Infer(m) => code(
                ModelRepositoryServiceClient::new(channel)
                    .max_encoding_message_size(MAX)
                    .max_decoding_message_size(MAX)
                    .infer(request(m.clone(), timeout))
                    .await,
            ),
            Call::Image(m) => code(
                ImageServiceClient::new(channel)
                    .max_encoding_message_size(MAX)
                    .max_decoding_message_size(MAX)
                    .encode(request(m.clone(), timeout))
                    .await,
            ),
            Call::Audio(m) => code(
                AudioServiceClient::new(channel)
                    .max_encoding_message_size(MAX)
                    .max_decoding_message_size(MAX)
                    .encode(request(m.clone(), timeout))
                    .await,
            ),
            Call::Splat(m) => code(
                SplatServiceClient::new(channel)
                    .max_encoding_message_size(MAX)
                    .max_decoding_message_size(MAX)
                    .encode(request(m.clone(), timeout))
                    .await,
            ),
            Call::Context(m) => code(
                ContextServiceClient::new(channel)
                    .max_encoding_message_size(MAX)
                    .max_decoding_message_size(MAX)
                    .compress_prompt(request(m.clone(), timeout))
                    .await,
            ),
            Call::Vision(m) => code(
                VisionServiceClient::new(channel)
                    .max_encoding_message_size(MAX)
                    .max_decoding_message_size(MAX)
                    .prune_tokens(request(m.clone(), timeout))
                    .await,
            ),
        }
    }
}

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(path)
}

fn read(file: &Option<PathBuf>, default: &str) -> anyhow::Result<Vec<u8>> {
    let path = file.clone().unwrap_or_else(|| fixture(default));
    std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
}

fn f32_tensor(name: &str, shape: Vec<i64>, value: impl Fn(i64) -> f32) -> Tensor {
    let elements: i64 = shape.iter().product();
    Tensor {
        name: name.to_string(),
        datatype: DataType::Fp32.into(),
        raw_contents: (0..elements).flat_map(|i| value(i).to_le_bytes()).collect(),
        shape,
    }
}

const PROMPT: &str = "The Normans were the people who in the 10th and 11th centuries gave their name \
to Normandy, a region in France. They were descended from Norse raiders and pirates from Denmark, \
Iceland and Norway who, under their leader Rollo, agreed to swear fealty to King Charles III of \
West Francia. Through generations of assimilation and mixing with the native Frankish and \
Roman-Gaulish populations, their descendants would gradually merge with the Carolingian-based \
cultures of West Francia. The distinct cultural and ethnic identity of the Normans emerged \
initially in the first half of the 10th century, and it continued to evolve over the succeeding \
centuries.";

impl Options {
    fn call(&self, method: Method) -> anyhow::Result<Call> {
        Ok(match method {
            Method::Infer => {
                let elements: i64 = self.shape.iter().product();
                if elements <= 0 || elements > 64 << 20 {
                    bail!("--shape must have 1..=67108864 elements");
                }
                Call::Infer(InferRequest {
                    model: Some(ModelRef {
                        name: self.model.clone(),
                        version: String::new(),
                    }),
                    inputs: vec![f32_tensor(&self.input, self.shape.clone(), |i| {
                        ((i * 37) % 255) as f32 / 255.0
                    })],
                    outputs: vec![],
                })
            }
            Method::Tokens => {
                if !(2..=512).contains(&self.tokens) {
                    bail!("--tokens must be 2..=512");
                }
                let n = self.tokens as i64;
                // [CLS] ids… [SEP] in BERT's uncased vocabulary, a fixed pattern of word pieces.
                let ids: Vec<i64> = (0..n)
                    .map(|t| match t {
                        0 => 101,
                        t if t == n - 1 => 102,
                        t => 2000 + (t * 37) % 5000,
                    })
                    .collect();
                let int64 = |name: &str, values: &[i64]| Tensor {
                    name: name.to_string(),
                    datatype: DataType::Int64.into(),
                    raw_contents: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                    shape: vec![1, n],
                };
                Call::Infer(InferRequest {
                    model: Some(ModelRef {
                        name: self.model.clone(),
                        version: String::new(),
                    }),
                    inputs: vec![
                        int64("input_ids", &ids),
                        int64("attention_mask", &vec![1; self.tokens]),
                    ],
                    outputs: vec![],
                })
            }
            Method::Image => Call::Image(image::EncodeRequest {
                image: read(&self.file, "images/astronaut_200x136.png")?,
                options: None,
            }),
            Method::Audio => Call::Audio(audio::EncodeRequest {
                audio: read(&self.file, "audio/speech_16k_mono_3s.wav")?,
                options: Some(audio::EncodeOptions {
                    resample: true,
                    ..Default::default()
                }),
            }),
            Method::Splat => Call::Splat(splat::EncodeRequest {
                scene: read(&self.file, "splats/yashica_1024_sh3.ply")?,
                options: None,
            }),
            Method::Context => Call::Context(context::CompressPromptRequest {
                context: vec![match &self.file {
                    Some(path) => std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                    None => PROMPT.to_string(),
                }],
                options: Some(context::PromptOptions {
                    rate: Some(0.5),
                    ..Default::default()
                }),
                model: None,
                perplexity: None,
            }),
            Method::Vision => Call::Vision(vision::PruneTokensRequest {
                tokens: Some(f32_tensor("tokens", vec![576, 1024], |i| {
                    ((i * 7919) % 1000) as f32 / 1000.0 - 0.5
                })),
                cls_attention: Some(f32_tensor("cls_attention", vec![576], |i| {
                    ((i * 31) % 97) as f32 / 97.0
                })),
                method: vision::PruneMethod::Fastervlm.into(),
                keep: Some(vision::Keep {
                    budget: Some(vision::keep::Budget::Count(144)),
                }),
                ..Default::default()
            }),
        })
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Resident memory of a process in KiB (`VmRSS` of /proc/PID/status).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What one run measured.
struct Run {
    latencies: Vec<Duration>,
    codes: BTreeMap<String, u64>,
    elapsed: Duration,
    peak_rss_kib: Option<u64>,
}

async fn run(
    channels: &[Channel],
    call: &Call,
    concurrency: usize,
    options: &Options,
) -> anyhow::Result<Run> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let stop_at = started + Duration::from_secs(options.max_seconds);
    let done = Arc::new(AtomicBool::new(false));
    let sampler = options.server_pid.map(|pid| {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut peak = rss_kib(pid).unwrap_or(0);
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak.max(rss_kib(pid).unwrap_or(0))
        })
    });
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let channel = channels[worker % channels.len()].clone();
            let call = call.clone();
            let next = Arc::clone(&next);
            let total = options.requests;
            let timeout = Duration::from_millis(options.timeout_ms);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut codes: BTreeMap<String, u64> = BTreeMap::new();
                while next.fetch_add(1, Ordering::Relaxed) < total && Instant::now() < stop_at {
                    let sent = Instant::now();
                    let code = call.send(channel.clone(), timeout).await;
                    latencies.push(sent.elapsed());
                    *codes.entry(format!("{code:?}")).or_default() += 1;
                }
                (latencies, codes)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    for worker in workers {
        let (worker_latencies, worker_codes) = worker.await?;
        latencies.extend(worker_latencies);
        for (code, count) in worker_codes {
            *codes.entry(code).or_default() += count;
        }
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let peak_rss_kib = match sampler {
        Some(task) => Some(task.await?),
        None => None,
    };
    latencies.sort();
    Ok(Run {
        latencies,
        codes,
        elapsed,
        peak_rss_kib,
    })
}

fn name(method: Method) -> &'static str {
    match method {
        Method::Infer => "models.Infer",
        Method::Tokens => "models.Infer(tokens)",
        Method::Image => "image.Encode",
        Method::Audio => "audio.Encode",
        Method::Splat => "splat.Encode",
        Method::Context => "context.CompressPrompt",
        Method::Vision => "vision.PruneTokens",
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    if options.requests == 0 || options.requests > 1_000_000 {
        bail!("--requests must be in 1..=1000000");
    }
    if options.max_seconds == 0 || options.max_seconds > 600 {
        bail!("--max-seconds must be in 1..=600");
    }
    if options.concurrency.iter().any(|&c| c == 0 || c > 1024) {
        bail!("--concurrency levels must be in 1..=1024");
    }
    if options.connections == 0 || options.connections > 64 {
        bail!("--connections must be in 1..=64");
    }
    let mut channels = Vec::new();
    for _ in 0..options.connections {
        channels.push(
            tonic::transport::Endpoint::from_shared(options.addr.clone())?
                .connect_timeout(Duration::from_secs(5))
                .tcp_nodelay(true)
                .connect()
                .await
                .with_context(|| format!("cannot connect to {}", options.addr))?,
        );
    }
    println!(
        "| method | clients | calls | seconds | calls/s | p50 ms | p99 ms | max ms | codes | server peak RSS MiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|");
    for &method in &options.method {
        let call = options.call(method)?;
        // One call first, so connection set-up and lazy initialisation are not measured.
        let warm = call
            .send(
                channels[0].clone(),
                Duration::from_millis(options.timeout_ms),
            )
            .await;
        if warm != Code::Ok {
            eprintln!(
                "terse-load: warning: {} answered {warm:?} before the run",
                name(method)
            );
        }
        for &concurrency in &options.concurrency {
            let run = run(&channels, &call, concurrency, &options).await?;
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let codes: Vec<String> = run
                .codes
                .iter()
                .map(|(code, n)| format!("{code}={n}"))
                .collect();
            println!(
                "| {} | {concurrency} | {} | {:.2} | {:.1} | {:.2} | {:.2} | {:.2} | {} | {} |",
                name(method),
                run.latencies.len(),
                run.elapsed.as_secs_f64(),
                run.latencies.len() as f64 / run.elapsed.as_secs_f64(),
                ms(percentile(&run.latencies, 50.0)),
                ms(percentile(&run.latencies, 99.0)),
                ms(run.latencies.last().copied().unwrap_or_default()),
                codes.join(" "),
                run.peak_rss_kib
                    .map_or_else(|| "-".to_string(), |k| format!("{:.0}", k as f64 / 1024.0)),
            );
        }
    }
    Ok(())
}
