//! Prometheus metrics and the HTTP endpoint that exposes them.

use std::{collections::HashSet, convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use http_body_util::Full;
use hyper::{Request, Response, body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use prost::Message;
use terse_runtime::ExecutionObserver;
use tokio::{net::TcpListener, sync::watch};

/// Label used for paths that are not a known gRPC method (keeps label cardinality bounded).
pub const UNKNOWN_METHOD: &str = "unknown";

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    known_methods: HashSet<String>,
    /// Finished calls by method and gRPC code.
    pub requests: IntCounterVec,
    /// Call latency by method (until the response body ends).
    pub latency: HistogramVec,
    /// Request payload bytes by method.
    pub bytes_in: IntCounterVec,
    /// Response payload bytes by method.
    pub bytes_out: IntCounterVec,
    /// Calls in flight.
    pub in_flight: IntGauge,
    /// Model execution time by model, version and outcome.
    pub model_execution: HistogramVec,
    /// 1 for each loaded model version, 0 for one that failed or is not loaded.
    pub model_ready: IntGaugeVec,
    /// Time each model request waited for a session (and batch-mates) by model and version.
    pub model_queue: HistogramVec,
    /// Rows per batched run by model and version.
    pub model_batch_rows: HistogramVec,
    /// Requests per batched run by model and version.
    pub model_batch_requests: HistogramVec,
}

/// `/package.Service/Method` paths of every method in an encoded descriptor set.
fn method_paths(descriptor_set: &[u8]) -> Vec<String> {
    let Ok(set) = prost_types::FileDescriptorSet::decode(descriptor_set) else {
        return Vec::new();
    };
    set.file
        .iter()
        .flat_map(|file| {
            file.service.iter().flat_map(move |service| {
                service.method.iter().map(move |method| {
                    format!("/{}.{}/{}", file.package(), service.name(), method.name())
                })
            })
        })
        .collect()
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let method = &["method"];
        let requests = IntCounterVec::new(
            Opts::new(
                "terse_grpc_requests_total",
                "Finished gRPC calls by method and status code.",
            ),
            &["method", "code"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "terse_grpc_request_duration_seconds",
                "gRPC call latency, first byte in to last byte out.",
            )
            .buckets(prometheus::exponential_buckets(0.0005, 2.0, 18)?),
            method,
        )?;
        let bytes_in = IntCounterVec::new(
            Opts::new(
                "terse_grpc_request_bytes_total",
                "Bytes of gRPC request bodies (framed messages).",
            ),
            method,
        )?;
        let bytes_out = IntCounterVec::new(
            Opts::new(
                "terse_grpc_response_bytes_total",
                "Bytes of gRPC response bodies (framed messages).",
            ),
            method,
        )?;
        let in_flight = IntGauge::new("terse_grpc_in_flight_requests", "gRPC calls being served.")?;
        let model_execution = HistogramVec::new(
            HistogramOpts::new(
                "terse_model_execution_seconds",
                "Model execution time (excluding queueing).",
            )
            .buckets(prometheus::exponential_buckets(0.0001, 2.0, 20)?),
            &["model", "version", "outcome"],
        )?;
        let model_ready = IntGaugeVec::new(
            Opts::new(
                "terse_model_ready",
                "1 if the model version is loaded and serving, else 0.",
            ),
            &["model", "version"],
        )?;
        let model_queue = HistogramVec::new(
            HistogramOpts::new(
                "terse_model_queue_seconds",
                "Time a model request waited for a session and, when batched, for batch-mates.",
            )
            .buckets(prometheus::exponential_buckets(0.00005, 2.0, 20)?),
            &["model", "version"],
        )?;
        let model_batch_rows = HistogramVec::new(
            HistogramOpts::new(
                "terse_model_batch_rows",
                "Rows (first dimension) per dynamically batched model run.",
            )
            .buckets(prometheus::exponential_buckets(1.0, 2.0, 11)?),
            &["model", "version"],
        )?;
        let model_batch_requests = HistogramVec::new(
            HistogramOpts::new(
                "terse_model_batch_requests",
                "Requests per dynamically batched model run.",
            )
            .buckets(prometheus::exponential_buckets(1.0, 2.0, 11)?),
            &["model", "version"],
        )?;
        registry.register(Box::new(model_ready.clone()))?;
        registry.register(Box::new(model_queue.clone()))?;
        registry.register(Box::new(model_batch_rows.clone()))?;
        registry.register(Box::new(model_batch_requests.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(bytes_in.clone()))?;
        registry.register(Box::new(bytes_out.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(model_execution.clone()))?;
        let known_methods = [
            terse_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ]
        .into_iter()
        .flat_map(method_paths)
        .collect();
        Ok(Self {
            registry,
            known_methods,
            requests,
            latency,
            bytes_in,
            bytes_out,
            in_flight,
            model_execution,
            model_ready,
            model_queue,
            model_batch_rows,
            model_batch_requests,
        })
    }

    /// The metric label for a request path.
    pub fn method_label<'a>(&self, path: &'a str) -> &'a str {
        if self.known_methods.contains(path) {
            path
        } else {
            UNKNOWN_METHOD
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl ExecutionObserver for Metrics {
    fn observe(&self, name: &str, version: &str, elapsed: Duration, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.model_execution
            .with_label_values(&[name, version, outcome])
            .observe(elapsed.as_secs_f64());
    }

    fn observe_queue(&self, name: &str, version: &str, queued: Duration) {
        self.model_queue
            .with_label_values(&[name, version])
            .observe(queued.as_secs_f64());
    }

    fn observe_batch(&self, name: &str, version: &str, rows: usize, requests: usize) {
        self.model_batch_rows
            .with_label_values(&[name, version])
            .observe(rows as f64);
        self.model_batch_requests
            .with_label_values(&[name, version])
            .observe(requests as f64);
    }
}

/// Serves `GET /metrics` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    continue;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let metrics = Arc::clone(&metrics);
                async move {
                    let response = if request.uri().path() == "/metrics" {
                        Response::builder()
                            .header("content-type", "text/plain; version=0.0.4")
                            .body(Full::new(Bytes::from(metrics.render())))
                    } else {
                        Response::builder()
                            .status(404)
                            .body(Full::new(Bytes::from_static(b"not found\n")))
                    };
                    Ok::<_, Infallible>(response.expect("static response parts are valid"))
                }
            });
            let connection = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "metrics connection ended with an error");
            }
        });
    }
}
