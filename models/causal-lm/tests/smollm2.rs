//! The shipped causal LM (models/repository/smollm2-135m, built by scripts/setup) through the
//! real ONNX Runtime, against log-probabilities Hugging Face transformers computed on the same
//! GGUF (tests/fixtures/squad_reference.json).

use std::path::{Path, PathBuf};

use terse_causal_lm::CausalLm;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model() -> CausalLm {
    terse_hosting::load_causal_lm(
        &workspace(),
        &workspace().join("models/repository"),
        "smollm2-135m",
    )
    .expect("scripts/setup built models/repository/smollm2-135m")
}

#[derive(serde::Deserialize)]
struct Reference {
    text: String,
    ids: Vec<u32>,
    next_log_probs: Vec<f32>,
    top1: Vec<u32>,
}

fn reference() -> Reference {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/squad_reference.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test]
async fn tokens_and_log_probabilities_match_transformers_with_and_without_the_cache() {
    let lm = model();
    let reference = reference();
    assert_eq!(lm.tokenize(&reference.text).unwrap(), reference.ids);
    assert_eq!(lm.detokenize(&reference.ids).unwrap(), reference.text);

    // All at once, then a prefix followed by the rest through the cache, then one token at a
    // time at the end: every position's log-probability matches the reference.
    let ids = &reference.ids;
    let whole = lm.forward(ids, None).await.unwrap();
    let split = ids.len() - 8;
    let prefix = lm.forward(&ids[..split], None).await.unwrap();
    let mut cache = prefix.cache.clone();
    let mut rows = Vec::new();
    for i in 0..split {
        rows.push((
            prefix.log_prob(i, ids.get(i + 1).copied().unwrap_or(0)),
            prefix.top1(i),
        ));
    }
    for (position, &token) in ids.iter().enumerate().skip(split) {
        let step = lm.forward(&[token], Some(&cache)).await.unwrap();
        let next = ids.get(position + 1).copied().unwrap_or(0);
        rows.push((step.log_prob(0, next), step.top1(0)));
        cache = step.cache;
    }
    assert_eq!(cache.shape(), whole.cache.shape());
    let cache_error = cache
        .values()
        .iter()
        .zip(whole.cache.values())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        cache_error < 1e-3,
        "incremental cache differs by {cache_error}"
    );
    for (i, &want) in reference.next_log_probs.iter().enumerate() {
        let at_once = whole.log_prob(i, ids[i + 1]);
        let (stepwise, top1) = rows[i];
        assert!(
            (at_once - want).abs() < 2e-3,
            "position {i}: {at_once} vs transformers {want}"
        );
        assert!(
            (stepwise - want).abs() < 2e-3,
            "position {i}: {stepwise} (cached) vs {want}"
        );
        assert_eq!(top1, reference.top1[i], "top-1 at position {i}");
        assert_eq!(whole.top1(i), reference.top1[i], "top-1 at position {i}");
    }
}

#[tokio::test]
async fn bad_requests_are_refused_before_the_model_runs() {
    let lm = model();
    let config = lm.config().clone();
    let refused = |result: Result<terse_causal_lm::Forward, terse_core::Error>| {
        result.expect_err("refused").kind
    };
    use terse_core::ErrorKind::{InvalidInput, TooLarge};
    assert_eq!(refused(lm.forward(&[], None).await), InvalidInput);
    assert_eq!(
        refused(lm.forward(&[config.vocab as u32], None).await),
        InvalidInput
    );
    let too_long = vec![1u32; config.context_length + 1];
    assert_eq!(refused(lm.forward(&too_long, None).await), TooLarge);
    let other_model =
        terse_core::KvCache::empty(config.layers + 1, config.kv_heads, config.head_dim);
    assert_eq!(
        refused(lm.forward(&[1], Some(&other_model)).await),
        InvalidInput
    );
}
