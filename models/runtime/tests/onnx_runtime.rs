//! Runs the shipped models through the real ONNX Runtime library (installed by scripts/setup).

mod common;

use std::{path::PathBuf, sync::Arc};

use common::{runtime, workspace};
use terse_runtime::{
    InferError, LoadError, ModelRegistry, ModelSelection, ModelState, ProviderKind, SessionOptions,
    TensorData,
};

fn repository() -> PathBuf {
    workspace().join("models/repository")
}

fn registry(load: &[&str], options: &SessionOptions) -> ModelRegistry {
    let selection = ModelSelection {
        load: load.iter().map(|s| s.to_string()).collect(),
        strict: true,
        tasks: None,
    };
    ModelRegistry::load(runtime(), &repository(), &selection, options, None).unwrap()
}

/// Deterministic pseudo-random image values in [0, 1).
fn test_image(len: usize) -> Vec<f32> {
    common::test_values(len, 0)
}

#[tokio::test]
async fn haar_analysis_matches_the_definition_and_synthesis_inverts_it() {
    let registry = registry(&["*"], &SessionOptions::default());
    let analysis = registry.get("haar-wpt2d-analysis", "").unwrap();
    let synthesis = registry.get("haar-wpt2d-synthesis", "1").unwrap();
    assert_eq!(analysis.provider(), ProviderKind::Cpu);

    let (h, w) = (6usize, 8usize);
    let image = test_image(3 * h * w);
    let out = analysis
        .infer(
            vec![TensorData::from_f32(
                "image",
                vec![1, 3, h as i64, w as i64],
                &image,
            )],
            &[],
        )
        .await
        .unwrap();
    let coefficients = &out.outputs[0];
    assert_eq!(coefficients.shape, vec![1, 12, 3, 4]);
    let c = coefficients.to_f32().unwrap();
    // LL, horizontal, vertical and diagonal subbands of channel 1 at block (1, 2), by hand.
    let px = |ch: usize, y: usize, x: usize| image[ch * h * w + y * w + x];
    let (a, b, cc, d) = (px(1, 2, 4), px(1, 2, 5), px(1, 3, 4), px(1, 3, 5));
    let expected = [
        (a + b + cc + d) / 2.0,
        (a - b + cc - d) / 2.0,
        (a + b - cc - d) / 2.0,
        (a - b - cc + d) / 2.0,
    ];
    for (k, want) in expected.iter().enumerate() {
        let got = c[(4 + k) * 12 + 4 + 2];
        assert!((got - want).abs() < 1e-6, "subband {k}: {got} vs {want}");
    }

    let back = synthesis
        .infer(
            vec![TensorData {
                name: "coefficients".into(),
                ..coefficients.clone()
            }],
            &[],
        )
        .await
        .unwrap();
    let restored = back.outputs[0].to_f32().unwrap();
    let max_error = restored
        .iter()
        .zip(&image)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(max_error < 1e-6, "max error {max_error}");
    assert_eq!(analysis.stats().inference_count, 1);
}

#[tokio::test]
async fn inputs_that_do_not_fit_the_manifest_are_rejected_before_execution() {
    let registry = registry(&["haar-wpt2d-analysis"], &SessionOptions::default());
    let model = registry.get("haar-wpt2d-analysis", "1").unwrap();
    let cases = [
        (
            TensorData::from_f32("image", vec![1, 3, 5, 4], &[0.0; 60]),
            "multiple of 2",
        ),
        (
            TensorData::from_f32("image", vec![1, 4, 2, 2], &[0.0; 16]),
            "dimension 1 must be 3",
        ),
        (
            TensorData::from_f32("pixels", vec![1, 3, 2, 2], &[0.0; 12]),
            "has no input `pixels`",
        ),
        (
            TensorData::from_f32("image", vec![1, 3, 2, 2], &[0.0; 11]),
            "needs 48 bytes, got 44",
        ),
    ];
    for (tensor, message) in cases {
        let err = model.infer(vec![tensor], &[]).await.unwrap_err();
        assert!(matches!(err, InferError::InvalidInput(_)), "{err:?}");
        assert!(
            err.to_string().contains(message),
            "{err} should mention {message}"
        );
    }
    let err = model.infer(vec![], &[]).await.unwrap_err();
    assert!(err.to_string().contains("missing input `image`"), "{err}");
    assert_eq!(
        model.stats().inference_count,
        0,
        "nothing reached ONNX Runtime"
    );

    assert!(matches!(
        registry.get("nope", ""),
        Err(InferError::NotFound(_))
    ));
    assert!(matches!(
        registry.get("haar-wpt2d-analysis", "7"),
        Err(InferError::NotFound(_))
    ));
    let err = registry.get("haar-wpt2d-synthesis", "").unwrap_err();
    assert!(matches!(err, InferError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("not loaded"), "{err}");
}

#[tokio::test]
async fn unavailable_gpu_providers_fall_back_to_cpu_with_reasons() {
    if runtime()
        .available_providers()
        .contains(&ProviderKind::Cuda)
    {
        return; // a GPU build of ONNX Runtime: this test is about the CPU-only wheel
    }
    let options = SessionOptions {
        providers: vec![
            ProviderKind::Tensorrt,
            ProviderKind::Cuda,
            ProviderKind::Cpu,
        ],
        ..SessionOptions::default()
    };
    let registry = registry(&["haar-wpt2d-analysis"], &options);
    let model = registry.get("haar-wpt2d-analysis", "").unwrap();
    assert_eq!(model.provider(), ProviderKind::Cpu);
    let tried: Vec<ProviderKind> = model.fallbacks().iter().map(|f| f.provider).collect();
    assert_eq!(tried, vec![ProviderKind::Tensorrt, ProviderKind::Cuda]);
    assert!(
        model.fallbacks()[1]
            .reason
            .contains("without the cuda provider"),
        "{:?}",
        model.fallbacks()
    );

    let gpu_only = SessionOptions {
        providers: vec![ProviderKind::Cuda],
        ..SessionOptions::default()
    };
    let selection = ModelSelection {
        load: vec!["haar-wpt2d-analysis".into()],
        strict: true,
        tasks: None,
    };
    let err =
        ModelRegistry::load(runtime(), &repository(), &selection, &gpu_only, None).unwrap_err();
    assert!(
        err.to_string()
            .contains("no execution provider could run it"),
        "{err}"
    );
}

#[tokio::test]
async fn broken_models_fail_start_up_when_strict_and_are_reported_when_not() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["haar-wpt2d-analysis", "haar-wpt2d-synthesis"] {
        let dir = tmp.path().join(name).join("1");
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["manifest.toml", "model.onnx"] {
            std::fs::copy(repository().join(name).join("1").join(file), dir.join(file)).unwrap();
        }
    }
    let model_file = tmp.path().join("haar-wpt2d-synthesis/1/model.onnx");
    let mut bytes = std::fs::read(&model_file).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&model_file, bytes).unwrap();

    let options = SessionOptions::default();
    let strict = ModelSelection::default();
    let err = ModelRegistry::load(runtime(), tmp.path(), &strict, &options, None).unwrap_err();
    assert!(matches!(err, LoadError::Model { .. }));
    assert!(err.to_string().contains("sha256 mismatch"), "{err}");

    let lenient = ModelSelection {
        strict: false,
        ..ModelSelection::default()
    };
    let registry = ModelRegistry::load(runtime(), tmp.path(), &lenient, &options, None).unwrap();
    let states: Vec<_> = registry
        .entries()
        .iter()
        .map(|e| (e.entry.manifest.name.as_str(), &e.state))
        .collect();
    assert!(matches!(
        states[0],
        ("haar-wpt2d-analysis", ModelState::Ready(_))
    ));
    assert!(
        matches!(states[1], ("haar-wpt2d-synthesis", ModelState::Failed(r)) if r.contains("sha256 mismatch"))
    );

    std::fs::remove_file(tmp.path().join("haar-wpt2d-analysis/1/model.onnx")).unwrap();
    let err = ModelRegistry::load(runtime(), tmp.path(), &strict, &options, None).unwrap_err();
    assert!(err.to_string().contains("cannot read model file"), "{err}");

    let unknown = ModelSelection {
        load: vec!["no-such-model".into()],
        strict: true,
        tasks: None,
    };
    let err = ModelRegistry::load(runtime(), &repository(), &unknown, &options, None).unwrap_err();
    assert!(
        err.to_string()
            .contains("model `no-such-model` is not in the repository"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_the_session_pool() {
    let options = SessionOptions {
        pool_size: 2,
        ..SessionOptions::default()
    };
    let registry = registry(&["haar-wpt2d-analysis"], &options);
    let model = registry.get("haar-wpt2d-analysis", "").unwrap();
    assert_eq!(model.pool_size(), 2);
    let image = Arc::new(test_image(3 * 32 * 32));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let model = Arc::clone(&model);
            let image = Arc::clone(&image);
            tokio::spawn(async move {
                model
                    .infer(
                        vec![TensorData::from_f32("image", vec![1, 3, 32, 32], &image)],
                        &[],
                    )
                    .await
                    .map(|out| out.outputs[0].bytes.clone())
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap().unwrap());
    }
    assert!(
        results.windows(2).all(|w| w[0] == w[1]),
        "same input, same output"
    );
    assert_eq!(model.stats().inference_count, 16);
}

/// Runs that hand the CPU arena's memory back when they end (inputs above
/// `cpu_arena_input_bytes`) give what runs that keep it give, before and after each other;
/// so do two-thread sessions whose threads spin between operators (`intra_op_spinning`).
#[tokio::test]
async fn runs_that_release_the_arena_give_the_same_outputs() {
    let image = test_image(3 * 64 * 64);
    let input = || vec![TensorData::from_f32("image", vec![1, 3, 64, 64], &image)];
    let mut outputs = Vec::new();
    // 0: every run releases; the input's size: none does; in between: every run does.
    let bytes = (image.len() * 4) as u64;
    for (limit, spinning) in [
        (0, false),
        (bytes, false),
        (bytes - 1, false),
        (bytes, true),
    ] {
        let options = SessionOptions {
            cpu_arena_input_bytes: limit,
            intra_op_spinning: spinning,
            intra_op_threads: if spinning { 2 } else { 1 },
            ..SessionOptions::default()
        };
        let registry = registry(&["haar-wpt2d-analysis"], &options);
        let model = registry.get("haar-wpt2d-analysis", "").unwrap();
        for _ in 0..3 {
            let out = model.infer(input(), &[]).await.unwrap();
            outputs.push(out.outputs[0].bytes.clone());
        }
    }
    assert!(outputs.windows(2).all(|w| w[0] == w[1]));
}
