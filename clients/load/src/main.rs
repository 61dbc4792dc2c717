//! `terse-load`: sends a bounded number of `Infer` calls to a terse server at a fixed concurrency
//! and reports throughput, latency percentiles and status codes. Every run stops by itself: after
//! `--requests` calls or `--max-seconds`, whichever comes first.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use terse_proto::{
    common::v1::{DataType, ModelRef, Tensor},
    models::v1::{InferRequest, model_repository_service_client::ModelRepositoryServiceClient},
};
use tonic::transport::Endpoint;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    name = "terse-load",
    about = "Bounded load test of a terse server's Infer method"
)]
struct Options {
    /// Server address, e.g. http://127.0.0.1:50051.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Model to call.
    #[arg(long, default_value = "haar-wpt2d-analysis")]
    model: String,
    /// Input tensor name.
    #[arg(long, default_value = "image")]
    input: String,
    /// Input shape (fp32, filled with a deterministic pattern), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,3,256,256")]
    shape: Vec<i64>,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Total calls to send (at most 1,000,000).
    #[arg(long, default_value_t = 1000)]
    requests: u64,
    /// Stop after this many seconds even if calls remain (at most 600).
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
    /// Per-call deadline in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
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
    if options.concurrency == 0 || options.concurrency > 1024 {
        bail!("--concurrency must be in 1..=1024");
    }
    let elements: i64 = options.shape.iter().product();
    if elements <= 0 || elements > 64 << 20 {
        bail!("--shape must have 1..=67108864 elements");
    }
    let raw_contents: Vec<u8> = (0..elements)
        .flat_map(|i| (((i * 37) % 255) as f32 / 255.0).to_le_bytes())
        .collect();
    let request = InferRequest {
        model: Some(ModelRef {
            name: options.model.clone(),
            version: String::new(),
        }),
        inputs: vec![Tensor {
            name: options.input.clone(),
            datatype: DataType::Fp32.into(),
            shape: options.shape.clone(),
            raw_contents,
        }],
        outputs: vec![],
    };
    let channel = Endpoint::from_shared(options.addr.clone())?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", options.addr))?;
    let client = ModelRepositoryServiceClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);

    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let stop_at = started + Duration::from_secs(options.max_seconds);
    let workers: Vec<_> = (0..options.concurrency)
        .map(|_| {
            let mut client = client.clone();
            let request = request.clone();
            let next = Arc::clone(&next);
            let total = options.requests;
            let timeout = Duration::from_millis(options.timeout_ms);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut codes: BTreeMap<String, u64> = BTreeMap::new();
                while next.fetch_add(1, Ordering::Relaxed) < total && Instant::now() < stop_at {
                    let mut call = tonic::Request::new(request.clone());
                    call.set_timeout(timeout);
                    let sent = Instant::now();
                    let code = match client.infer(call).await {
                        Ok(_) => tonic::Code::Ok,
                        Err(status) => status.code(),
                    };
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
    latencies.sort();
    let calls = latencies.len() as f64;
    let payload_mib = (elements * 4) as f64 / (1 << 20) as f64;
    println!(
        "model={} shape={:?} concurrency={} calls={} elapsed_s={:.2}",
        options.model,
        options.shape,
        options.concurrency,
        latencies.len(),
        elapsed.as_secs_f64()
    );
    println!(
        "throughput_rps={:.1} input_mib_per_s={:.1}",
        calls / elapsed.as_secs_f64(),
        calls * payload_mib / elapsed.as_secs_f64()
    );
    println!(
        "latency_ms p50={:.2} p90={:.2} p99={:.2} max={:.2}",
        percentile(&latencies, 50.0).as_secs_f64() * 1e3,
        percentile(&latencies, 90.0).as_secs_f64() * 1e3,
        percentile(&latencies, 99.0).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    let codes: Vec<String> = codes
        .iter()
        .map(|(code, n)| format!("{code}={n}"))
        .collect();
    println!("codes {}", codes.join(" "));
    Ok(())
}
