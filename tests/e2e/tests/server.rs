//! The real `terse` binary on 127.0.0.1: health, reflection, models API, inference, limits,
//! deadlines, load shedding, graceful shutdown, metrics.

use std::time::Duration;

use terse_e2e::{ConfigFile, Server, binary, flip_byte, health_status, repository_copy, workspace};
use terse_proto::{
    common::v1::{DataType, ModelRef, Tensor},
    models::v1::{
        ExecutionProvider, GetModelRequest, GetModelStatisticsRequest, InferRequest, InferResponse,
        ListModelsRequest, ModelState,
        model_repository_service_client::ModelRepositoryServiceClient,
    },
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const MODELS_SERVICE: &str = "compress.models.v1.ModelRepositoryService";

fn f32_tensor(name: &str, shape: Vec<i64>, values: &[f32]) -> Tensor {
    Tensor {
        name: name.to_string(),
        datatype: DataType::Fp32.into(),
        shape,
        raw_contents: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

fn f32_values(tensor: &Tensor) -> Vec<f32> {
    assert_eq!(tensor.datatype, DataType::Fp32 as i32);
    tensor
        .raw_contents
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn model(name: &str) -> Option<ModelRef> {
    Some(ModelRef {
        name: name.to_string(),
        version: String::new(),
    })
}

fn analysis_request(height: i64, width: i64) -> (InferRequest, Vec<f32>) {
    let image: Vec<f32> = (0..3 * height * width)
        .map(|i| ((i * 37) % 101) as f32 / 100.0)
        .collect();
    let request = InferRequest {
        model: model("haar-wpt2d-analysis"),
        inputs: vec![f32_tensor("image", vec![1, 3, height, width], &image)],
        outputs: vec![],
    };
    (request, image)
}

/// Starts an Infer call whose request stream stays open until the returned sender sends the
/// request (or is dropped): the call holds a concurrency permit meanwhile.
async fn open_infer_call(
    channel: Channel,
    timeout: Option<Duration>,
) -> (
    mpsc::Sender<InferRequest>,
    tokio::task::JoinHandle<Result<InferResponse, tonic::Status>>,
) {
    let (sender, receiver) = mpsc::channel(1);
    let mut grpc = tonic::client::Grpc::new(channel);
    let task = tokio::spawn(async move {
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let mut request = Request::new(ReceiverStream::new(receiver));
        if let Some(timeout) = timeout {
            request.set_timeout(timeout);
        }
        let path = http::uri::PathAndQuery::from_static(
            "/compress.models.v1.ModelRepositoryService/Infer",
        );
        grpc.client_streaming(request, path, tonic_prost::ProstCodec::default())
            .await
            .map(|response| response.into_inner())
    });
    (sender, task)
}

#[tokio::test]
async fn serves_health_reflection_models_api_and_the_shipped_models() {
    let server = Server::start(&["--config", "config/terse.toml"]).await;
    let channel = server.channel().await;

    // Health: overall, the probe names and per hosted service.
    for name in ["", "readiness", "liveness"] {
        assert_eq!(
            health_status(channel.clone(), name).await,
            ServingStatus::Serving
        );
    }
    assert_eq!(
        health_status(channel.clone(), MODELS_SERVICE).await,
        ServingStatus::Serving
    );
    let unknown = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "compress.nothing.v1.NothingService".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        unknown.code(),
        Code::NotFound,
        "services not hosted have no health entry"
    );

    // Reflection v1 (tonic client) lists exactly the hosted services.
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses
        .message()
        .await
        .unwrap()
        .expect("one reflection answer");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer {response:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "compress.audio.v1.AudioService".to_string(),
            "compress.context.v1.ContextService".to_string(),
            "compress.image.v1.ImageService".to_string(),
            MODELS_SERVICE.to_string(),
            "compress.splat.v1.SplatService".to_string(),
            "compress.tensor.v1.TensorService".to_string(),
            "compress.vision.v1.VisionService".to_string(),
            "grpc.health.v1.Health".to_string()
        ]
    );

    // Reflection v1alpha via grpcurl (what operators use).
    let grpcurl = workspace().join(".venv/bin/grpcurl");
    assert!(
        grpcurl.is_file(),
        "{} missing: run scripts/setup",
        grpcurl.display()
    );
    let listed = tokio::process::Command::new(&grpcurl)
        .args(["-plaintext", &server.grpc_addr, "list"])
        .output()
        .await
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.lines().any(|l| l == MODELS_SERVICE),
        "grpcurl list: {listed}"
    );
    let called = tokio::process::Command::new(&grpcurl)
        .args([
            "-plaintext",
            "-d",
            r#"{"model": {"name": "haar-wpt2d-synthesis"}}"#,
            &server.grpc_addr,
            &format!("{MODELS_SERVICE}/GetModel"),
        ])
        .output()
        .await
        .unwrap();
    let called = String::from_utf8_lossy(&called.stdout);
    assert!(
        called.contains("\"MODEL_STATE_READY\""),
        "grpcurl GetModel: {called}"
    );

    // Models API.
    let mut client = ModelRepositoryServiceClient::new(channel.clone());
    let listed = client
        .list_models(ListModelsRequest { ready_only: false })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.runtime_version, "1.31.1");
    assert!(listed.available_providers.contains(&"cpu".to_string()));
    let names: Vec<&str> = listed.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "haar-wpt2d-analysis",
            "haar-wpt2d-synthesis",
            "lingua-minilm-keep",
            "minilm-sentence",
            "mlic",
            "mlic-analysis",
            "smollm2-135m",
            "walloc-rgb-16x",
            "walloc-rgb-4x",
            "walloc-stereo-19x"
        ]
    );
    for info in &listed.models {
        let status = info.status.as_ref().unwrap();
        assert_eq!(status.state(), ModelState::Ready);
        assert_eq!(status.provider(), ExecutionProvider::Cpu);
        assert_eq!(info.sha256.len(), 64);
        assert!(!info.license.is_empty() && !info.source.is_empty());
    }
    let described = client
        .get_model(GetModelRequest {
            model: model("haar-wpt2d-analysis"),
        })
        .await
        .unwrap()
        .into_inner();
    let described = described.model.unwrap();
    assert_eq!(described.inputs[0].shape, vec![-1, 3, -1, -1]);
    // The shipped config batches only on GPU providers: on the CPU every request runs alone.
    assert_eq!(described.status.as_ref().unwrap().batching, None);
    assert_eq!(described.outputs[0].name, "coefficients");

    // Run the shipped models: analysis then synthesis gives the image back.
    let (request, image) = analysis_request(16, 24);
    let analysed = client.infer(request).await.unwrap().into_inner();
    assert_eq!(analysed.model_version, "1");
    assert_eq!(analysed.provider(), ExecutionProvider::Cpu);
    let coefficients = analysed.outputs.into_iter().next().unwrap();
    assert_eq!(coefficients.shape, vec![1, 12, 8, 12]);
    let ll = f32_values(&coefficients)[0];
    let expected_ll = (image[0] + image[1] + image[24] + image[25]) / 2.0;
    assert!((ll - expected_ll).abs() < 1e-6, "LL {ll} vs {expected_ll}");
    let restored = client
        .infer(InferRequest {
            model: model("haar-wpt2d-synthesis"),
            inputs: vec![Tensor {
                name: "coefficients".into(),
                ..coefficients
            }],
            outputs: vec!["image".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let restored = f32_values(&restored.outputs[0]);
    let max_error = restored
        .iter()
        .zip(&image)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max_error < 1e-5, "round trip error {max_error}");

    let stats = client
        .get_model_statistics(GetModelStatisticsRequest { model: None })
        .await
        .unwrap()
        .into_inner()
        .statistics;
    // The two Haar models ran once each; nothing else ran.
    assert!(
        stats.iter().all(|s| {
            let ran = s.name.starts_with("haar");
            s.failure_count == 0
                && if ran {
                    s.inference_count == 1 && s.execution_ns > 0
                } else {
                    s.inference_count == 0
                }
        }),
        "{stats:?}"
    );

    // Metrics saw the calls and the model executions.
    let metrics = server.metrics().await;
    assert!(metrics.contains(r#"terse_grpc_requests_total{code="Ok",method="/compress.models.v1.ModelRepositoryService/Infer"} 2"#), "{metrics}");
    assert!(metrics.contains(r#"terse_model_execution_seconds_count{model="haar-wpt2d-analysis",outcome="ok",version="1"} 1"#), "{metrics}");
    assert!(
        metrics.contains(r#"terse_model_ready{model="haar-wpt2d-synthesis",version="1"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("terse_grpc_response_bytes_total{method=\"/compress.models.v1.ModelRepositoryService/Infer\"}"), "{metrics}");
}

#[tokio::test]
async fn batched_infer_calls_share_runs_and_show_in_the_metrics() {
    let config = ConfigFile::new("[runtime.sessions]\ndynamic_batching = \"on\"\npool_size = 1\n");
    let server = Server::start(&["--config", config.arg(), "--services", "models"]).await;
    let channel = server.channel().await;
    let (request, _) = analysis_request(256, 256);
    let mut alone = ModelRepositoryServiceClient::new(channel.clone());
    let expected = alone
        .infer(request.clone())
        .await
        .unwrap()
        .into_inner()
        .outputs;
    let calls: Vec<_> = (0..32)
        .map(|_| {
            let mut client = ModelRepositoryServiceClient::new(channel.clone());
            let request = request.clone();
            tokio::spawn(async move { client.infer(request).await })
        })
        .collect();
    for call in calls {
        let outputs = call.await.unwrap().unwrap().into_inner().outputs;
        assert_eq!(outputs, expected, "a batched call gets what it gets alone");
    }
    // GetModel says how each model batches on this server.
    let batching = |name: &'static str| {
        let mut client = ModelRepositoryServiceClient::new(channel.clone());
        async move {
            client
                .get_model(GetModelRequest { model: model(name) })
                .await
                .unwrap()
                .into_inner()
                .model
                .unwrap()
                .status
                .unwrap()
                .batching
        }
    };
    let haar = batching("haar-wpt2d-analysis").await.unwrap();
    assert_eq!(
        (haar.max_batch_size, haar.max_queue_delay_us, haar.pad_axis),
        (16, 0, 0)
    );
    let keep = batching("lingua-minilm-keep").await.unwrap();
    assert_eq!((keep.max_batch_size, keep.pad_axis), (32, 1));
    assert_eq!(batching("minilm-sentence").await, None);

    let metrics = server.metrics().await;
    let value = |name: &str| -> f64 {
        let prefix = format!(r#"{name}{{model="haar-wpt2d-analysis",version="1"}} "#);
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
            .parse()
            .unwrap()
    };
    // 33 calls in all, each counted once as queued and once in a batch; 32 at once on one
    // session formed batches of more than one call.
    assert_eq!(value("terse_model_queue_seconds_count"), 33.0);
    assert_eq!(value("terse_model_batch_requests_sum"), 33.0);
    assert!(
        value("terse_model_batch_requests_count") < 33.0,
        "{metrics}"
    );
    assert_eq!(value("terse_model_batch_rows_sum"), 33.0);
}

#[tokio::test]
async fn bad_requests_get_precise_status_codes() {
    let config = ConfigFile::new("[server.max_request_bytes]\ndefault = 4096\n");
    let server = Server::start(&["--config", config.arg()]).await;
    let mut client = ModelRepositoryServiceClient::new(server.channel().await);

    let code =
        |result: Result<tonic::Response<InferResponse>, tonic::Status>| result.unwrap_err().code();
    let (small, _) = analysis_request(4, 4);
    assert_eq!(
        code(
            client
                .infer(InferRequest {
                    model: model("no-such-model"),
                    ..small.clone()
                })
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            client
                .infer(InferRequest {
                    model: None,
                    ..small.clone()
                })
                .await
        ),
        Code::InvalidArgument
    );
    let mut odd = small.clone();
    odd.inputs[0].shape = vec![1, 3, 3, 4];
    let status = client.infer(odd).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("multiple of 2"), "{status:?}");
    let mut short = small.clone();
    short.inputs[0].raw_contents.remove(0);
    let status = client.infer(short).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("needs 192 bytes, got 191"),
        "{status:?}"
    );
    let mut untyped = small.clone();
    untyped.inputs[0].datatype = DataType::Unspecified.into();
    assert_eq!(code(client.infer(untyped).await), Code::InvalidArgument);
    let (large, _) = analysis_request(32, 32);
    let status = client.infer(large).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        client.infer(small).await.is_ok(),
        "the server is still fine"
    );
}

#[tokio::test]
async fn overload_is_shed_and_deadlines_are_enforced() {
    let config =
        ConfigFile::new("[server]\nmax_concurrent_requests = 1\nrequest_timeout_ms = 400\n");
    let server = Server::start(&["--config", config.arg()]).await;
    let channel = server.channel().await;

    // One call holds the only permit...
    let (sender, held) = open_infer_call(channel.clone(), None).await;
    server
        .wait_for_metric("terse_grpc_in_flight_requests 1")
        .await;
    // ...so the next one is shed at once, while health checks still answer.
    let shed = ModelRepositoryServiceClient::new(channel.clone())
        .list_models(ListModelsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(shed.code(), Code::ResourceExhausted, "{shed:?}");
    assert_eq!(
        health_status(channel.clone(), MODELS_SERVICE).await,
        ServingStatus::Serving
    );
    // The held call runs into the server's 400 ms limit.
    let status = held.await.unwrap().unwrap_err();
    drop(sender);
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");

    // A client deadline shorter than the server's limit wins.
    let started = std::time::Instant::now();
    let (_sender, held) = open_infer_call(channel.clone(), Some(Duration::from_millis(100))).await;
    let status = held.await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_millis(390),
        "took {:?}",
        started.elapsed()
    );

    let metrics = server.metrics().await;
    assert!(metrics.contains(r#"terse_grpc_requests_total{code="ResourceExhausted",method="/compress.models.v1.ModelRepositoryService/ListModels"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"terse_grpc_requests_total{code="DeadlineExceeded",method="/compress.models.v1.ModelRepositoryService/Infer"} 2"#), "{metrics}");
}

/// A deadline answers DEADLINE_EXCEEDED however short it is. tonic's own `grpc-timeout` timer
/// runs outside the guard and answers CANCELLED ("Timeout expired"); a CI run of the Python SDK
/// saw that answer for a 1 ms deadline. The client here is plain HTTP/2 (hyper) with no timer
/// of its own (tonic's channel would end the call itself with the same CANCELLED), so every
/// status is the server's. Before the guard read the clock on every poll, 5 of these 600 calls
/// got CANCELLED on an idle machine.
#[tokio::test]
async fn the_shortest_deadlines_answer_deadline_exceeded() {
    let server = Server::start(&["--config", "config/terse.toml"]).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<tonic::body::Body>();
    let origin: http::Uri = server.grpc_url.parse().unwrap();
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    for round in 0..600u64 {
        let mut grpc = tonic::client::Grpc::with_origin(client.clone(), origin.clone());
        grpc.ready().await.unwrap();
        // The request stream stays open, so only the deadline can end the call.
        let (_sender, receiver) = mpsc::channel::<InferRequest>(1);
        let mut request = Request::new(ReceiverStream::new(receiver));
        request.set_timeout(Duration::from_nanos(1 + (round % 6) * 200_000));
        let path = http::uri::PathAndQuery::from_static(
            "/compress.models.v1.ModelRepositoryService/Infer",
        );
        let codec = tonic_prost::ProstCodec::<InferRequest, InferResponse>::default();
        let status = grpc
            .client_streaming(request, path, codec)
            .await
            .unwrap_err();
        *codes
            .entry(format!("{:?}: {}", status.code(), status.message()))
            .or_default() += 1;
    }
    assert!(
        codes
            .keys()
            .all(|code| code.starts_with("DeadlineExceeded")),
        "{codes:?}"
    );
}

#[tokio::test]
async fn sigterm_drains_in_flight_calls_then_exits_cleanly() {
    let server = Server::start(&["--config", "config/terse.toml", "--log-format", "json"]).await;
    let channel = server.channel().await;
    let (sender, held) = open_infer_call(channel.clone(), None).await;
    server
        .wait_for_metric("terse_grpc_in_flight_requests 1")
        .await;

    server.terminate().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The call started before SIGTERM still completes.
    let (request, _) = analysis_request(4, 4);
    sender.send(request).await.unwrap();
    drop(sender);
    let response = held
        .await
        .unwrap()
        .expect("in-flight call drained, not cut");
    assert_eq!(response.outputs[0].shape, vec![1, 12, 2, 2]);

    let exit = server.wait(Duration::from_secs(20)).await;
    assert!(exit.status.success(), "{:?}\n{}", exit.status, exit.stderr);
    assert!(
        exit.stderr.contains("shutdown requested"),
        "{}",
        exit.stderr
    );
    for line in exit.stderr.lines() {
        assert!(
            line.starts_with('{') && line.ends_with('}') && line.contains(r#""level":"#),
            "not a JSON log line: {line}"
        );
    }
}

#[tokio::test]
async fn shutdown_grace_bounds_how_long_a_stuck_call_keeps_the_server_alive() {
    let config = ConfigFile::new("[server]\nshutdown_grace_ms = 300\nrequest_timeout_ms = 0\n");
    let server = Server::start(&["--config", config.arg()]).await;
    let (_sender, _held) = open_infer_call(server.channel().await, None).await;
    server
        .wait_for_metric("terse_grpc_in_flight_requests 1")
        .await;
    let started = std::time::Instant::now();
    server.terminate().await;
    let exit = server.wait(Duration::from_secs(20)).await;
    assert!(exit.status.success(), "{:?}\n{}", exit.status, exit.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "exit took {:?}",
        started.elapsed()
    );
    assert!(exit.stderr.contains("grace period over"), "{}", exit.stderr);
}

#[tokio::test]
async fn bounded_load_is_served_without_errors() {
    let server = Server::start(&["--config", "config/terse.toml"]).await;
    let report = run_load(
        &server,
        &[
            "--concurrency",
            "8",
            "--requests",
            "300",
            "--shape",
            "1,3,32,32",
            "--max-seconds",
            "60",
        ],
    )
    .await;
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("| models.Infer | 8 | 300 |") && l.contains("| Ok=300 |")),
        "{report}"
    );
    // 300 measured calls plus terse-load's one warm-up call.
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"terse_model_execution_seconds_count{model="haar-wpt2d-analysis",outcome="ok",version="1"} 301"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_broken_model_is_reported_when_start_up_is_lenient() {
    let repository = repository_copy();
    let file = repository.path().join("haar-wpt2d-synthesis/1/model.onnx");
    flip_byte(&file, 20, 1);
    let config = ConfigFile::new(
        "[runtime.models]
strict = false
",
    );
    let server = Server::start(&[
        "--config",
        config.arg(),
        "--model-repository",
        repository.path().to_str().unwrap(),
    ])
    .await;
    let channel = server.channel().await;
    assert_eq!(
        health_status(channel.clone(), MODELS_SERVICE).await,
        ServingStatus::Serving
    );
    let mut client = ModelRepositoryServiceClient::new(channel);
    let described = client
        .get_model(GetModelRequest {
            model: model("haar-wpt2d-synthesis"),
        })
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap();
    let status = described.status.unwrap();
    assert_eq!(status.state(), ModelState::Failed);
    assert!(status.reason.contains("sha256 mismatch"), "{status:?}");
    let refused = client
        .infer(InferRequest {
            model: model("haar-wpt2d-synthesis"),
            inputs: vec![],
            outputs: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("failed to load"), "{refused:?}");
    let (request, _) = analysis_request(4, 4);
    assert!(
        client.infer(request).await.is_ok(),
        "the intact model still serves"
    );
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"terse_model_ready{model="haar-wpt2d-synthesis",version="1"} 0"#),
        "{metrics}"
    );
}

/// Runs terse-load with `args` against `server` and returns its report (stdout), failing the
/// test when it fails.
async fn run_load(server: &Server, args: &[&str]) -> String {
    let output = tokio::process::Command::new(binary("terse-load"))
        .args(["--addr", &server.grpc_url])
        .args(args)
        .output()
        .await
        .expect("terse-load runs");
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    report
}

/// The columns of the terse-load table row for `method`.
fn load_row(report: &str, method: &str) -> Vec<String> {
    report
        .lines()
        .find(|l| l.starts_with(&format!("| {method} |")))
        .unwrap_or_else(|| panic!("no row for {method}:\n{report}"))
        .split('|')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

#[tokio::test]
async fn overload_is_shed_and_memory_stays_bounded() {
    let config = ConfigFile::new("[server]\nmax_concurrent_requests = 4\n");
    let server = Server::start(&["--config", config.arg(), "--services", "vision"]).await;
    let start_kib = std::fs::read_to_string(format!("/proc/{}/status", server.pid()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap();
    // 64 clients, each with a 2.3 MB request, against a limit of 4 calls in flight.
    let pid = server.pid().to_string();
    let report = run_load(
        &server,
        &[
            "--method",
            "vision",
            "--concurrency",
            "64",
            "--requests",
            "400",
            "--max-seconds",
            "120",
            "--server-pid",
            &pid,
        ],
    )
    .await;
    let row = load_row(&report, "vision.PruneTokens");
    let codes = &row[8];
    let count = |code: &str| -> u64 {
        codes
            .split_whitespace()
            .find_map(|c| c.strip_prefix(&format!("{code}=")))
            .map_or(0, |n| n.parse().unwrap())
    };
    assert!(count("Ok") > 0, "{report}");
    assert!(count("ResourceExhausted") > 0, "{report}");
    assert_eq!(count("Ok") + count("ResourceExhausted"), 400, "{report}");
    // Shed calls are refused before their bodies are read: memory grows by a few in-flight
    // requests, not by 64 of them (an unbounded queue grows ~350 MiB here).
    let peak_mib: u64 = row[9].parse().unwrap();
    let growth = peak_mib.saturating_sub(start_kib / 1024);
    assert!(
        growth < 150,
        "server grew {growth} MiB under overload:\n{report}"
    );
}

/// Issue 18, finding 14: Infer inputs with an empty dimension, token ids outside the
/// vocabulary (or negative) and sequences longer than the model's positions used to reach ONNX
/// Runtime and come back INTERNAL. The manifest's bounds now refuse them with INVALID_ARGUMENT.
#[tokio::test]
async fn infer_inputs_outside_the_manifest_bounds_are_invalid_arguments() {
    let server = Server::start(&["--config", "config/terse.toml", "--services", "models"]).await;
    let mut client = ModelRepositoryServiceClient::new(server.channel().await);
    let ids = |name: &str, values: &[i64], len: i64| Tensor {
        name: name.to_string(),
        datatype: DataType::Int64.into(),
        shape: vec![1, len],
        raw_contents: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    };
    let request = |input_ids: &[i64], mask: &[i64], len: i64| InferRequest {
        model: model("lingua-minilm-keep"),
        inputs: vec![
            ids("input_ids", input_ids, len),
            ids("attention_mask", mask, len),
        ],
        outputs: vec![],
    };
    let cases = [
        (request(&[], &[], 0), "dimension 1 is 0"),
        (
            request(&[101, -7, 102], &[1, 1, 1], 3),
            "`input_ids` element 1 is -7",
        ),
        (
            request(&[101, 40_000, 102], &[1, 1, 1], 3),
            "outside 0..=30621",
        ),
        (
            request(&[101, 2023, 102], &[1, 2, 1], 3),
            "`attention_mask` element 1 is 2",
        ),
        (
            request(&vec![1000; 600], &vec![1; 600], 600),
            "over this model's limit of 512",
        ),
    ];
    for (request, needle) in cases {
        let status = client.infer(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains(needle),
            "`{}` lacks `{needle}`",
            status.message()
        );
    }
    let fine = client
        .infer(request(&[101, 2023, 102], &[1, 1, 1], 3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fine.outputs[0].shape, vec![1, 3, 2]);
}

/// Issue 18, finding 19: `--services splat` used to load all the ONNX models. Without the
/// model-repository service, only the models the hosted services run are loaded.
#[tokio::test]
async fn only_the_models_of_the_hosted_services_are_loaded() {
    let ready = |metrics: &str, model: &str| -> Option<i64> {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("terse_model_ready{") && l.contains(&format!("model=\"{model}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    let splat = Server::start(&["--config", "config/terse.toml", "--services", "splat"]).await;
    let metrics = splat.metrics().await;
    for model in [
        "mlic",
        "walloc-rgb-16x",
        "lingua-minilm-keep",
        "haar-wpt2d-analysis",
    ] {
        assert_eq!(ready(&metrics, model), Some(0), "{model}: {metrics}");
    }
    drop(splat);
    let image = Server::start(&["--config", "config/terse.toml", "--services", "image"]).await;
    let metrics = image.metrics().await;
    for (model, loaded) in [
        ("mlic", 1),
        ("mlic-analysis", 1),
        ("walloc-rgb-16x", 1),
        ("walloc-stereo-19x", 0),
        ("lingua-minilm-keep", 0),
    ] {
        assert_eq!(ready(&metrics, model), Some(loaded), "{model}: {metrics}");
    }
}
