//! Start-up (runtime, models, listeners) and the serving loop with graceful shutdown.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use terse_runtime::{
    ExecutionObserver, ModelRegistry, ModelState, OnnxRuntime, resolve_library_path,
};
use terse_service_common::{Host, MemoryBudget};
use tokio::{net::TcpListener, sync::watch};
use tonic::{
    service::RoutesBuilder,
    transport::{Certificate, Identity, Server, ServerTlsConfig, server::TcpIncoming},
};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    config::{Config, Resolved, ServiceKind, TlsMaterial},
    guard::{GuardLayer, GuardSettings},
    metrics::{self, Metrics},
};

/// Loads the ONNX Runtime library and the configured models (blocking work, done before serving).
fn load_models(
    resolved: &Resolved,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<(OnnxRuntime, Arc<ModelRegistry>)> {
    let runtime_config = &resolved.config.runtime;
    let library = resolve_library_path(runtime_config.library.as_deref())?;
    let runtime = OnnxRuntime::load(&library)?;
    let observer: Arc<dyn ExecutionObserver> = Arc::clone(metrics) as Arc<dyn ExecutionObserver>;
    // Without the model-repository service (which serves any model) only the models of the
    // hosted services' tasks are loaded: a splat-only server loads none (issue 18, finding 19).
    let mut selection = runtime_config.models.clone();
    if !resolved.services.contains(&ServiceKind::Models) {
        selection.tasks = Some(
            resolved
                .services
                .iter()
                .flat_map(|&kind| kind.hosted(&resolved.config).model_tasks())
                .map(|task| task.to_string())
                .collect(),
        );
    }
    let registry = ModelRegistry::load(
        &runtime,
        &runtime_config.repository,
        &selection,
        &runtime_config.sessions,
        Some(observer),
    )?;
    for entry in registry.entries() {
        let manifest = &entry.entry.manifest;
        let ready = matches!(entry.state, ModelState::Ready(_));
        metrics
            .model_ready
            .with_label_values(&[&manifest.name, &manifest.version])
            .set(i64::from(ready));
        if matches!(entry.state, ModelState::Unloaded) {
            tracing::info!(model = %entry.entry.id(), "model not loaded: not selected by runtime.models.load, or no hosted service needs it");
        }
    }
    Ok((runtime, Arc::new(registry)))
}

/// Health name that is SERVING when every hosted service is (same as ""): the readiness probe.
pub const READINESS: &str = "readiness";
/// Health name that is SERVING while the process serves at all: the liveness probe.
pub const LIVENESS: &str = "liveness";

/// Models of `kind`'s tasks that were selected but failed to load, as `name:version`.
fn failed_models(registry: &ModelRegistry, config: &Config, kind: ServiceKind) -> Vec<String> {
    let tasks = kind.hosted(config).model_tasks();
    registry
        .entries()
        .iter()
        .filter(|e| {
            tasks.contains(&e.entry.manifest.task.as_str())
                && matches!(e.state, ModelState::Failed(_))
        })
        .map(|e| e.entry.id())
        .collect()
}

/// rustls settings from the PEM files of `[tls]`.
fn server_tls(tls: &TlsMaterial) -> ServerTlsConfig {
    let config = ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem));
    match &tls.client_ca_pem {
        Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
        None => config,
    }
}

/// `off`, `tls` or `mtls`: what the ready line and the start-up log say.
fn tls_mode(resolved: &Resolved) -> &'static str {
    match &resolved.tls {
        None => "off",
        Some(tls) if tls.client_ca_pem.is_some() => "mtls",
        Some(_) => "tls",
    }
}

/// Waits for SIGINT or SIGTERM.
async fn termination_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

fn reflection_builder(services: &[ServiceKind]) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(terse_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health");
    for service in services {
        builder = builder.with_service_name(service.grpc_name());
    }
    builder
}

/// Runs the server until SIGINT/SIGTERM; with `check_only`, stops after loading the models.
pub async fn run(resolved: Resolved, check_only: bool) -> anyhow::Result<()> {
    if check_only {
        let metrics = Arc::new(Metrics::new().context("cannot register metrics")?);
        let (runtime, registry) = tokio::task::block_in_place(|| load_models(&resolved, &metrics))?;
        println!(
            "terse: configuration OK: services {:?}, ONNX Runtime {}, {} model(s) ready",
            resolved
                .services
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>(),
            runtime.version(),
            registry
                .entries()
                .iter()
                .filter(|e| matches!(e.state, ModelState::Ready(_)))
                .count()
        );
        return Ok(());
    }
    let running = start(resolved).await?;
    println!(
        "terse ready grpc={} metrics={} tls={} auth={}",
        running.grpc_addr,
        running
            .metrics_addr
            .map_or_else(|| "off".to_string(), |a| a.to_string()),
        running.tls,
        if running.auth { "on" } else { "off" }
    );
    let stopper = running.stopper();
    tokio::spawn(async move {
        termination_signal().await;
        stopper.stop().await;
    });
    running.wait().await
}

/// A server started by [`start`]: its addresses, and the means to stop it and wait for it.
pub struct Running {
    /// Where the gRPC listener is bound.
    pub grpc_addr: SocketAddr,
    /// Where the metrics listener is bound, when enabled.
    pub metrics_addr: Option<SocketAddr>,
    /// `off`, `tls` or `mtls`.
    pub tls: &'static str,
    /// Whether calls need a bearer token.
    pub auth: bool,
    stopper: Stopper,
    serve: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Asks a running server to drain and stop (health turns NOT_SERVING first).
#[derive(Clone)]
pub struct Stopper {
    health: HealthReporter,
    services: Vec<ServiceKind>,
    stop: Arc<watch::Sender<bool>>,
}

impl Stopper {
    /// Marks every service NOT_SERVING, refuses new calls and drains in-flight calls.
    pub async fn stop(&self) {
        tracing::info!("shutdown requested: refusing new calls, draining in-flight calls");
        for service in &self.services {
            self.health
                .set_service_status(service.grpc_name(), ServingStatus::NotServing)
                .await;
        }
        for name in ["", READINESS, LIVENESS] {
            self.health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        let _ = self.stop.send(true);
    }
}

impl Running {
    /// A handle that stops this server (cheap to clone, usable from another task).
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Waits until the server has stopped (after [`Stopper::stop`] and the drain).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.serve.await.context("server task failed")?
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.stopper.stop().await;
        self.wait().await
    }
}

/// Loads the runtime and models, binds the listeners and serves in the background until
/// stopped through the returned [`Running`]. The binary and in-process hosts (the CLI's
/// local mode) start servers the same way.
pub async fn start(resolved: Resolved) -> anyhow::Result<Running> {
    let metrics = Arc::new(Metrics::new().context("cannot register metrics")?);
    let (runtime, registry) = tokio::task::block_in_place(|| load_models(&resolved, &metrics))?;
    let server = &resolved.config.server;
    let listener = TcpListener::bind(server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", server.listen))?;
    let grpc_addr = listener.local_addr()?;
    let metrics_listener = match resolved.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for metrics"))?,
        ),
        None => None,
    };
    let metrics_addr = metrics_listener
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?;

    let (stop_tx, stop_rx) = watch::channel(false);
    if let Some(listener) = metrics_listener {
        tokio::spawn(metrics::serve(
            listener,
            Arc::clone(&metrics),
            stop_rx.clone(),
        ));
    }

    let strict = resolved.config.runtime.models.strict;
    let memory = MemoryBudget::new(server.max_work_memory_bytes);
    // Every configured service builds itself from its config section; one that cannot (with
    // lenient start-up) answers UNAVAILABLE and reports NOT_SERVING, with the reason.
    let mut routes = RoutesBuilder::default();
    let mut cannot_start: Vec<(ServiceKind, String)> = Vec::new();
    for &kind in &resolved.services {
        let host = Host {
            registry: &registry,
            runtime: &runtime,
            memory: &memory,
            max_request_bytes: resolved.max_request_bytes(kind),
            max_response_bytes: resolved.max_response_bytes(kind),
        };
        match kind.hosted(&resolved.config).add_to(&host, &mut routes) {
            Ok(hosted) => tracing::info!(service = kind.name(), "{hosted}"),
            Err(e) if strict => anyhow::bail!("{} service: {e}", kind.name()),
            Err(e) => {
                tracing::error!(service = kind.name(), error = %e, "service cannot start; it answers UNAVAILABLE and reports NOT_SERVING");
                cannot_start.push((kind, e));
            }
        }
    }
    let mut not_serving = cannot_start.clone();
    // A service that started without some of its models (lenient start-up) is NOT_SERVING too,
    // so readiness probes move traffic to complete replicas; it still serves what it has.
    for &kind in &resolved.services {
        let failed = failed_models(&registry, &resolved.config, kind);
        if !failed.is_empty() && !not_serving.iter().any(|(k, _)| *k == kind) {
            tracing::error!(service = kind.name(), models = ?failed, "models failed to load; service reports NOT_SERVING");
            not_serving.push((
                kind,
                format!("models failed to load: {}", failed.join(", ")),
            ));
        }
    }

    let (health, health_service) = tonic_health::server::health_reporter();
    for service in &resolved.services {
        let status = if not_serving.iter().any(|(kind, _)| kind == service) {
            ServingStatus::NotServing
        } else {
            ServingStatus::Serving
        };
        health.set_service_status(service.grpc_name(), status).await;
    }
    // "" and "readiness": every hosted service is serving (the readiness probe); "liveness":
    // the process answers (the liveness probe: a degraded replica is not restarted for it).
    let overall = if not_serving.is_empty() {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    for name in ["", READINESS] {
        health.set_service_status(name, overall).await;
    }
    health
        .set_service_status(LIVENESS, ServingStatus::Serving)
        .await;

    let reflection_v1 = reflection_builder(&resolved.services).build_v1()?;
    let reflection_v1alpha = reflection_builder(&resolved.services).build_v1alpha()?;
    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)));
    if let Some(tls) = &resolved.tls {
        builder = builder
            .tls_config(server_tls(tls))
            .context("TLS configuration")?;
    }
    routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let unavailable = cannot_start
        .iter()
        .map(|(kind, reason)| (kind.grpc_name().to_string(), reason.clone()))
        .collect();
    let router = builder
        .layer(GuardLayer::new(
            GuardSettings {
                limit: server.max_concurrent_requests,
                timeout: resolved.request_timeout(),
                tokens: resolved.tokens.clone(),
                auth_exempt: resolved.config.auth.exempt.clone(),
                unavailable,
            },
            Arc::clone(&metrics),
        ))
        .add_routes(routes.routes());

    let mut drain_rx = stop_rx.clone();
    // With our own listener, tonic's `tcp_nodelay` does not apply: set it on accepted sockets,
    // or small responses wait for delayed ACKs (~40 ms each).
    let incoming = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)));
    let serve = router.serve_with_incoming_shutdown(incoming, async move {
        let _ = drain_rx.wait_for(|stop| *stop).await;
    });
    tracing::info!(
        grpc = %grpc_addr,
        metrics = ?metrics_addr,
        tls = tls_mode(&resolved),
        auth = resolved.tokens.as_ref().map_or(0, |t| t.len()),
        "serving"
    );

    let grace = Duration::from_millis(server.shutdown_grace_ms);
    let mut grace_rx = stop_rx;
    let grace_expired = async move {
        let _ = grace_rx.wait_for(|stop| *stop).await;
        tokio::time::sleep(grace).await;
    };
    let serve = tokio::spawn(async move {
        tokio::select! {
            result = serve => result.context("gRPC server failed")?,
            _ = grace_expired => tracing::warn!(grace_ms = grace.as_millis() as u64, "grace period over; exiting with calls still in flight"),
        }
        tracing::info!("stopped");
        Ok(())
    });
    Ok(Running {
        grpc_addr,
        metrics_addr,
        tls: tls_mode(&resolved),
        auth: resolved.tokens.is_some(),
        stopper: Stopper {
            health,
            services: resolved.services.clone(),
            stop: Arc::new(stop_tx),
        },
        serve,
    })
}
