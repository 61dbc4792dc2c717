//! Instances coming and going under load, driven through the SDK: a server restarted under load
//! (graceful drain, then a new process on the same port) and three replicas behind client-side
//! balancing with one killed mid-run. Every request must end in exactly one correct result.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use terse_client::{
    Client,
    proto::common::v1::ModelRef,
    proto::models::v1::InferRequest,
    tensor::{f32_array, f32_tensor},
};
use terse_e2e::{Server, free_loopback_addr};
use tokio::sync::Mutex;

const REQUESTS: usize = 600;
const WORKERS: usize = 8;
const SERVER_ARGS: &[&str] = &["--services", "models"];

/// A small wavelet analysis whose input is filled with a value unique to request `id`.
fn request(id: usize) -> InferRequest {
    let value = 1.0 + id as f32 / 1024.0;
    InferRequest {
        model: Some(ModelRef {
            name: "haar-wpt2d-analysis".into(),
            version: String::new(),
        }),
        inputs: vec![f32_tensor(
            "image",
            ndarray::ArrayD::from_elem(vec![1, 3, 8, 8], value).view(),
        )],
        outputs: vec![],
    }
}

/// Sends requests 0..REQUESTS from WORKERS tasks and records, per request id, how many results
/// came back and the first output value; `on_progress` sees the count of finished requests.
async fn drive(
    client: Client,
    on_progress: impl Fn(usize) + Send + Sync + 'static,
) -> BTreeMap<usize, Vec<f32>> {
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(BTreeMap::<usize, Vec<f32>>::new()));
    let on_progress = Arc::new(on_progress);
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (client, next, done, results, on_progress) = (
                client.clone(),
                Arc::clone(&next),
                Arc::clone(&done),
                Arc::clone(&results),
                Arc::clone(&on_progress),
            );
            tokio::spawn(async move {
                loop {
                    let id = next.fetch_add(1, Ordering::SeqCst);
                    if id >= REQUESTS {
                        return;
                    }
                    let response = client
                        .call(|| {
                            let mut models = client.models();
                            let call = client.request(request(id));
                            async move { models.infer(call).await }
                        })
                        .await
                        .unwrap_or_else(|e| panic!("request {id} lost: {e:?}"));
                    let output = f32_array(&response.outputs[0]).unwrap();
                    results
                        .lock()
                        .await
                        .entry(id)
                        .or_default()
                        .push(output[[0, 0, 0, 0]]);
                    on_progress(done.fetch_add(1, Ordering::SeqCst) + 1);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker finished");
    }
    Arc::try_unwrap(results).unwrap().into_inner()
}

/// Exactly one result per request, each the transform of that request's own input.
fn assert_complete(results: &BTreeMap<usize, Vec<f32>>) {
    assert_eq!(results.len(), REQUESTS, "requests without a result");
    let scale = results[&0][0] / 1.0;
    for (id, values) in results {
        assert_eq!(values.len(), 1, "request {id} has {} results", values.len());
        let expected = scale * (1.0 + *id as f32 / 1024.0);
        assert!(
            (values[0] - expected).abs() < 1e-4,
            "request {id}: {} vs {expected}",
            values[0]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_under_load_loses_no_request() {
    let addr = free_loopback_addr();
    let first = Server::start_on(&addr, SERVER_ARGS).await;
    let client = Client::builder(format!("http://{addr}"))
        .timeout(Duration::from_secs(20))
        .retries(30, Duration::from_millis(20))
        .connect_lazy()
        .unwrap();
    let (restart_tx, restart_rx) = tokio::sync::oneshot::channel();
    let restart_tx = std::sync::Mutex::new(Some(restart_tx));
    let restarter = tokio::spawn(async move {
        let _ = restart_rx.await;
        first.terminate().await;
        let exit = first.wait(Duration::from_secs(30)).await;
        assert!(exit.status.success(), "{:?}\n{}", exit.status, exit.stderr);
        assert!(
            !exit.stderr.contains("grace period over"),
            "{}",
            exit.stderr
        );
        Server::start_on(&addr, SERVER_ARGS).await
    });
    let results = drive(client, move |done| {
        if done == REQUESTS / 3
            && let Some(tx) = restart_tx.lock().unwrap().take()
        {
            let _ = tx.send(());
        }
    })
    .await;
    let second = restarter.await.unwrap();
    assert_complete(&results);
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_with_one_killed_mid_run_lose_and_duplicate_nothing() {
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(Server::start(SERVER_ARGS).await);
    }
    let addresses: Vec<String> = replicas.iter().map(|s| s.grpc_url.clone()).collect();
    let client = Client::builder(addresses[0].clone())
        .replicas(addresses[1..].to_vec())
        .timeout(Duration::from_secs(20))
        .retries(30, Duration::from_millis(20))
        .connect()
        .await
        .unwrap();
    let victim = replicas.remove(1);
    let (kill_tx, kill_rx) = tokio::sync::oneshot::channel();
    let kill_tx = std::sync::Mutex::new(Some(kill_tx));
    let killer = tokio::spawn(async move {
        let _ = kill_rx.await;
        victim.kill().await;
    });
    let results = drive(client, move |done| {
        if done == REQUESTS / 3
            && let Some(tx) = kill_tx.lock().unwrap().take()
        {
            let _ = tx.send(());
        }
    })
    .await;
    killer.await.unwrap();
    assert_complete(&results);
    // Both survivors took a share of the load (client-side balancing, not fail-over only).
    for replica in &replicas {
        let metrics = replica.metrics().await;
        let served: u64 = metrics
            .lines()
            .find_map(|line| {
                line.strip_prefix(r#"terse_grpc_requests_total{code="Ok",method="/compress.models.v1.ModelRepositoryService/Infer"} "#)
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(served > 0, "a replica served nothing:\n{metrics}");
    }
}
