//! Faults the server must survive: models that fail to load, clients that cancel mid-stream,
//! clients that trickle their uploads, and connections that never speak.

use std::time::Duration;

use sha2::{Digest, Sha256};
use terse_e2e::{
    ConfigFile, Server, flip_byte, health_status, repository_copy, upload_chunks, workspace,
};
use terse_proto::{
    context::v1::{
        CompressPromptRequest, PromptOptions, context_service_client::ContextServiceClient,
    },
    image::v1::{
        EncodeOptions, EncodeStreamRequest, ListCodecsRequest, encode_stream_request::Part,
        image_service_client::ImageServiceClient,
    },
    models::v1::{
        ListModelsRequest, model_repository_service_client::ModelRepositoryServiceClient,
    },
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

const CONTEXT: &str = "compress.context.v1.ContextService";
const VISION: &str = "compress.vision.v1.VisionService";
const MODELS: &str = "compress.models.v1.ModelRepositoryService";

const LENIENT: &str = "[runtime.models]\nstrict = false\n";

fn prompt() -> CompressPromptRequest {
    CompressPromptRequest {
        context: vec!["Rust is a language empowering everyone to build reliable software.".into()],
        options: Some(PromptOptions {
            rate: Some(0.5),
            ..Default::default()
        }),
        model: None,
        perplexity: None,
    }
}

/// Asserts the health status of each named service.
async fn assert_health(channel: &tonic::transport::Channel, expected: &[(&str, ServingStatus)]) {
    for (name, status) in expected {
        assert_eq!(
            health_status(channel.clone(), name).await,
            *status,
            "health of `{name}`"
        );
    }
}

async fn start_lenient(repository: &std::path::Path, config: &ConfigFile) -> Server {
    Server::start(&[
        "--config",
        config.arg(),
        "--model-repository",
        repository.to_str().unwrap(),
        "--services",
        "models,vision,context",
    ])
    .await
}

#[tokio::test]
async fn a_service_whose_model_fails_to_load_is_not_serving_while_the_others_serve() {
    let repository = repository_copy();
    flip_byte(
        &keep_model_dir(repository.path()).join("model.onnx"),
        100,
        1,
    );
    let config = ConfigFile::new(LENIENT);
    let server = start_lenient(repository.path(), &config).await;
    let channel = server.channel().await;
    // Readiness ("" and "readiness") is withheld while a service is degraded; liveness is not.
    assert_health(
        &channel,
        &[
            (CONTEXT, ServingStatus::NotServing),
            (VISION, ServingStatus::Serving),
            (MODELS, ServingStatus::Serving),
            ("", ServingStatus::NotServing),
            ("readiness", ServingStatus::NotServing),
            ("liveness", ServingStatus::Serving),
        ],
    )
    .await;

    // What needs the failed model is refused with a precise status; the rest still answers.
    let refused = ContextServiceClient::new(channel.clone())
        .compress_prompt(prompt())
        .await
        .unwrap_err();
    assert!(
        matches!(refused.code(), Code::FailedPrecondition | Code::NotFound),
        "{refused:?}"
    );
    let models = ModelRepositoryServiceClient::new(channel)
        .list_models(ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .models;
    assert!(models.len() > 3);
    assert!(
        server.stderr().contains("models failed to load"),
        "{}",
        server.stderr()
    );
}

/// The shipped keep classifier's version folder (its only version) in a repository copy.
fn keep_model_dir(repository: &std::path::Path) -> std::path::PathBuf {
    let model = repository.join("lingua-minilm-keep");
    let mut versions: Vec<_> = std::fs::read_dir(&model)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(versions.len(), 1, "{versions:?}");
    versions.remove(0)
}

/// Replaces the keep classifier's tokenizer with a file that is not a tokenizer and fixes its
/// checksum in the manifest, so the model loads but the service cannot be built from it.
fn break_tokenizer(repository: &std::path::Path) {
    let dir = keep_model_dir(repository);
    let old = std::fs::read(dir.join("tokenizer.json")).unwrap();
    let new = b"{\"not\": \"a tokenizer\"}";
    std::fs::write(dir.join("tokenizer.json"), new).unwrap();
    let manifest = std::fs::read_to_string(dir.join("manifest.toml")).unwrap();
    let manifest = manifest.replace(&hex(&Sha256::digest(&old)), &hex(&Sha256::digest(new)));
    std::fs::write(dir.join("manifest.toml"), manifest).unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_service_that_cannot_start_answers_unavailable_or_stops_a_strict_start_up() {
    let repository = repository_copy();
    break_tokenizer(repository.path());

    let strict = terse_e2e::run_to_exit(
        &[
            "--model-repository",
            repository.path().to_str().unwrap(),
            "--services",
            "context",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "",
        ],
        &[],
    )
    .await;
    assert!(!strict.status.success());
    assert!(
        strict.stderr.contains("context service:"),
        "{}",
        strict.stderr
    );

    let config = ConfigFile::new(LENIENT);
    let server = start_lenient(repository.path(), &config).await;
    let channel = server.channel().await;
    assert_health(
        &channel,
        &[
            (CONTEXT, ServingStatus::NotServing),
            (VISION, ServingStatus::Serving),
        ],
    )
    .await;
    let refused = ContextServiceClient::new(channel.clone())
        .compress_prompt(prompt())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("compress.context.v1.ContextService is not serving on this instance"),
        "{refused:?}"
    );
    assert!(
        ModelRepositoryServiceClient::new(channel)
            .list_models(ListModelsRequest::default())
            .await
            .is_ok()
    );
}

fn photo() -> Vec<u8> {
    std::fs::read(workspace().join("tests/fixtures/images/astronaut_200x136.png")).unwrap()
}

/// Starts an EncodeStream upload fed from the returned sender.
fn open_upload(
    client: &ImageServiceClient<tonic::transport::Channel>,
) -> (
    mpsc::Sender<EncodeStreamRequest>,
    tokio::task::JoinHandle<Result<(), tonic::Status>>,
) {
    let (sender, receiver) = mpsc::channel(4);
    let mut client = client.clone();
    let task = tokio::spawn(async move {
        client
            .encode_stream(ReceiverStream::new(receiver))
            .await
            .map(|_| ())
    });
    (sender, task)
}

fn options_part() -> EncodeStreamRequest {
    EncodeStreamRequest {
        part: Some(Part::Options(EncodeOptions::default())),
    }
}

#[tokio::test]
async fn cancelled_trickled_and_silent_clients_do_not_hold_the_server() {
    let config =
        ConfigFile::new("[server]\nrequest_timeout_ms = 1500\nmax_concurrent_requests = 8\n");
    let server = Server::start(&["--config", config.arg(), "--services", "image"]).await;
    let client = ImageServiceClient::new(server.channel().await);
    let chunks = upload_chunks(&photo(), 4096);

    // Cancelled mid-stream: half the file sent, then the client gives up.
    let (sender, call) = open_upload(&client);
    sender.send(options_part()).await.unwrap();
    for chunk in &chunks[..chunks.len() / 2] {
        sender
            .send(EncodeStreamRequest {
                part: Some(Part::Chunk(chunk.clone())),
            })
            .await
            .unwrap();
    }
    server
        .wait_for_metric("terse_grpc_in_flight_requests 1")
        .await;
    call.abort();
    server
        .wait_for_metric("terse_grpc_in_flight_requests 0")
        .await;
    // The client's HTTP/2 stack ends an abandoned upload with a reset (CANCELLED) or, in one
    // full test run under load, with a clean end of stream, which the server can only take for
    // a truncated upload (INVALID_ARGUMENT). Either way the call ended and holds nothing.
    server
        .wait_for_any_metric(&[
            r#"terse_grpc_requests_total{code="Cancelled",method="/compress.image.v1.ImageService/EncodeStream"} 1"#,
            r#"terse_grpc_requests_total{code="InvalidArgument",method="/compress.image.v1.ImageService/EncodeStream"} 1"#,
        ])
        .await;
    drop(sender);

    // Trickled: a chunk every 200 ms never finishes before the server's 1.5 s limit, and other
    // calls are answered meanwhile.
    let (sender, call) = open_upload(&client);
    let trickle = tokio::spawn(async move {
        let _ = sender.send(options_part()).await;
        for chunk in chunks {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let part = EncodeStreamRequest {
                part: Some(Part::Chunk(chunk)),
            };
            if sender.send(part).await.is_err() {
                break;
            }
        }
    });
    // Silent: 100 connections that never send a byte.
    let mut silent = Vec::new();
    for _ in 0..100 {
        silent.push(
            tokio::net::TcpStream::connect(&server.grpc_addr)
                .await
                .unwrap(),
        );
    }
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let codecs = client
            .clone()
            .list_codecs(ListCodecsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .codecs;
        assert!(!codecs.is_empty());
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    let status = call.await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    trickle.abort();
    drop(silent);
    server
        .wait_for_metric("terse_grpc_in_flight_requests 0")
        .await;

    // And the server still encodes.
    let mut parts = vec![options_part()];
    parts.extend(
        upload_chunks(&photo(), 4096)
            .into_iter()
            .map(|chunk| EncodeStreamRequest {
                part: Some(Part::Chunk(chunk)),
            }),
    );
    client
        .clone()
        .encode_stream(tokio_stream::iter(parts))
        .await
        .expect("encode after the faults");
}
