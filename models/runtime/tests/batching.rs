//! Dynamic batching through the real ONNX Runtime: requests of different callers share a run,
//! each gets exactly its own rows back, and callers that give up leave the queue.

mod common;

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{runtime, workspace};
use terse_runtime::{
    DynamicBatching, ExecutionObserver, LoadedModel, ModelRegistry, ModelSelection, SessionOptions,
    TensorData,
};

/// Records every batched run as (rows, requests).
#[derive(Default)]
struct Batches(Mutex<Vec<(usize, usize)>>);

impl ExecutionObserver for Batches {
    fn observe(&self, _: &str, _: &str, _: Duration, _: bool) {}

    fn observe_batch(&self, _: &str, _: &str, rows: usize, requests: usize) {
        self.0.lock().unwrap().push((rows, requests));
    }
}

/// A repository holding a copy of the shipped `name` whose `[batching]` table is replaced by
/// `batching` (none when empty).
fn repository_with(name: &str, batching: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let from = workspace().join("models/repository").join(name);
    let version = std::fs::read_dir(&from)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let to = tmp.path().join(name).join(version.file_name().unwrap());
    std::fs::create_dir_all(&to).unwrap();
    for file in std::fs::read_dir(&version).unwrap() {
        let file = file.unwrap().path();
        std::fs::copy(&file, to.join(file.file_name().unwrap())).unwrap();
    }
    let manifest = std::fs::read_to_string(to.join("manifest.toml")).unwrap();
    let mut kept = String::new();
    let mut in_batching = false;
    for line in manifest.lines() {
        if line.starts_with('[') {
            in_batching = line.starts_with("[batching");
        }
        if !in_batching {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    std::fs::write(to.join("manifest.toml"), format!("{kept}\n{batching}\n")).unwrap();
    tmp
}

fn load(
    repository: &Path,
    name: &str,
    batching: bool,
    observer: Option<Arc<dyn ExecutionObserver>>,
) -> Arc<LoadedModel> {
    let options = SessionOptions {
        pool_size: 1,
        dynamic_batching: if batching {
            DynamicBatching::On
        } else {
            DynamicBatching::Off
        },
        ..SessionOptions::default()
    };
    let selection = ModelSelection {
        load: vec![name.to_string()],
        strict: true,
        tasks: None,
    };
    let registry =
        ModelRegistry::load(runtime(), repository, &selection, &options, observer).unwrap();
    registry.get(name, "").unwrap()
}

fn image(seed: u32) -> Vec<f32> {
    common::test_values(3 * 16 * 16, seed)
}

/// `count` concurrent calls of `inputs(i)`; each call's first output bytes and shape.
async fn concurrent(
    model: &Arc<LoadedModel>,
    count: usize,
    inputs: impl Fn(usize) -> Vec<TensorData>,
) -> Vec<(Vec<i64>, Vec<u8>)> {
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let model = Arc::clone(model);
            let inputs = inputs(i);
            tokio::spawn(async move {
                let out = model.infer(inputs, &[]).await.unwrap();
                (out.outputs[0].shape.clone(), out.outputs[0].bytes.clone())
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_runs_and_get_their_own_rows() {
    let repository = repository_with(
        "haar-wpt2d-analysis",
        "[batching]\nmax_batch_size = 4\nmax_queue_delay_us = 200000",
    );
    let batches = Arc::new(Batches::default());
    let batched = load(
        repository.path(),
        "haar-wpt2d-analysis",
        true,
        Some(Arc::clone(&batches) as Arc<dyn ExecutionObserver>),
    );
    let alone = load(repository.path(), "haar-wpt2d-analysis", false, None);
    let inputs = |i: usize| {
        // One request of two images among single images: rows, not requests, fill a batch.
        let rows = if i == 3 { 2 } else { 1 };
        let values: Vec<f32> = (0..rows).flat_map(|r| image((i * 10 + r) as u32)).collect();
        vec![TensorData::from_f32(
            "image",
            vec![rows as i64, 3, 16, 16],
            &values,
        )]
    };
    let together = concurrent(&batched, 9, inputs).await;
    let apart = concurrent(&alone, 9, inputs).await;
    assert_eq!(
        together, apart,
        "every caller gets exactly the rows it would get alone"
    );
    let batches = batches.0.lock().unwrap().clone();
    assert_eq!(
        batches.iter().map(|b| b.0).sum::<usize>(),
        10,
        "{batches:?}"
    );
    assert!(batches.iter().all(|&(rows, _)| rows <= 4), "{batches:?}");
    assert!(
        batches.iter().any(|&(_, requests)| requests > 1),
        "{batches:?}"
    );
    assert_eq!(batched.stats().inference_count, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_of_different_lengths_are_padded_and_cut_back() {
    let name = "lingua-minilm-keep";
    let repository = repository_with(
        name,
        "[batching]\nmax_batch_size = 8\nmax_queue_delay_us = 200000\n\n[batching.pad]\naxis = 1\nvalues = { input_ids = 0, attention_mask = 0 }\noutputs = [\"logits\"]",
    );
    let batches = Arc::new(Batches::default());
    let batched = load(
        repository.path(),
        name,
        true,
        Some(Arc::clone(&batches) as Arc<dyn ExecutionObserver>),
    );
    let alone = load(repository.path(), name, false, None);
    let inputs = |i: usize| {
        let length = 5 + 7 * i;
        let ids: Vec<i64> = (0..length)
            .map(|t| match t {
                0 => 101,
                t if t + 1 == length => 102,
                t => 2000 + ((t * 37 + i * 11) % 5000) as i64,
            })
            .collect();
        let shape = vec![1, length as i64];
        vec![
            TensorData::from_i64("input_ids", shape.clone(), &ids),
            TensorData::from_i64("attention_mask", shape, &vec![1; length]),
        ]
    };
    let together = concurrent(&batched, 5, inputs).await;
    let apart = concurrent(&alone, 5, inputs).await;
    for (i, ((shape, got), (want_shape, want))) in together.iter().zip(&apart).enumerate() {
        assert_eq!(shape, &vec![1, (5 + 7 * i) as i64, 2]);
        assert_eq!(shape, want_shape);
        // Static activation scales: padding and batch-mates change nothing, bit for bit.
        assert_eq!(got, want, "request {i}");
    }
    let batches = batches.0.lock().unwrap().clone();
    assert!(
        batches.iter().any(|&(_, requests)| requests > 1),
        "{batches:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_gives_up_leaves_the_queue() {
    let repository = repository_with(
        "haar-wpt2d-analysis",
        "[batching]\nmax_batch_size = 8\nmax_queue_delay_us = 400000",
    );
    let batches = Arc::new(Batches::default());
    let model = load(
        repository.path(),
        "haar-wpt2d-analysis",
        true,
        Some(Arc::clone(&batches) as Arc<dyn ExecutionObserver>),
    );
    let call = |seed: u32| {
        let model = Arc::clone(&model);
        async move {
            let input = TensorData::from_f32("image", vec![1, 3, 16, 16], &image(seed));
            model.infer(vec![input], &[]).await
        }
    };
    // The first call opens a batch that waits 400 ms for batch-mates; the second gives up
    // after 50 ms (its deadline), the third stays.
    let opener = tokio::spawn(call(1));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let impatient = tokio::time::timeout(Duration::from_millis(50), call(2)).await;
    assert!(impatient.is_err(), "the impatient call timed out");
    let patient = tokio::spawn(call(3));
    assert!(opener.await.unwrap().is_ok());
    assert!(patient.await.unwrap().is_ok());
    let batches = batches.0.lock().unwrap().clone();
    assert_eq!(
        batches,
        vec![(2, 2)],
        "the batch ran without the caller that left"
    );
    assert_eq!(model.stats().inference_count, 2);
}

#[test]
fn batching_tables_that_do_not_fit_the_model_are_refused() {
    for (table, complaint) in [
        (
            "[batching]\nmax_batch_size = 0\nmax_queue_delay_us = 0",
            "max_batch_size",
        ),
        (
            "[batching]\nmax_batch_size = 4\nmax_queue_delay_us = 5000000",
            "max_queue_delay_us",
        ),
        (
            "[batching]\nmax_batch_size = 4\nmax_queue_delay_us = 0\n[batching.pad]\naxis = 1\nvalues = { image = 0 }",
            "must be a dynamic dimension",
        ),
        (
            "[batching]\nmax_batch_size = 4\nmax_queue_delay_us = 0\n[batching.pad]\naxis = 2\nvalues = { image = 0 }\noutputs = [\"nothing\"]",
            "names `nothing`, which is not an output",
        ),
    ] {
        let repository = repository_with("haar-wpt2d-analysis", table);
        let err = terse_runtime::manifest::scan_repository(repository.path()).unwrap_err();
        assert!(err.to_string().contains(complaint), "{table}: {err}");
    }
    let repository = repository_with(
        "lingua-minilm-keep",
        "[batching]\nmax_batch_size = 4\nmax_queue_delay_us = 0\n[batching.pad]\naxis = 1\nvalues = { input_ids = 0 }",
    );
    let err = terse_runtime::manifest::scan_repository(repository.path()).unwrap_err();
    assert!(
        err.to_string().contains("no value for `attention_mask`"),
        "{err}"
    );
}
