//! Word-for-word parity with the Python reference (llmlingua 0.2.2) on the shipped keep/drop
//! model: tokenizers/lingua/reference/make_fixtures.py ran the reference on SQuAD contexts with
//! the same ONNX graph (one chunk per call, padded to 512) and recorded what it returned. terse
//! runs as it serves: the chunks of every case share batches, padded to the batch's longest.

use std::{path::PathBuf, sync::Arc};

use serde_json::Value;
use terse_context::KeepClassifier;
use terse_lingua::{Options, OutputText, TokenToWord};
use terse_runtime::{ModelRegistry, ModelSelection, ModelState, OnnxRuntime, SessionOptions};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn classifier() -> KeepClassifier {
    std::env::set_current_dir(ROOT).unwrap();
    let library = terse_runtime::resolve_library_path(None).expect("scripts/setup makes ./.venv");
    let ort = OnnxRuntime::load(&library).unwrap();
    let registry = ModelRegistry::load(
        &ort,
        &PathBuf::from("models/repository"),
        &ModelSelection::default(),
        &SessionOptions::default(),
        None,
    )
    .unwrap();
    registry
        .entries()
        .iter()
        .find_map(|e| match &e.state {
            ModelState::Ready(model) if e.entry.manifest.task == "keep-classifier" => {
                Some(terse_hosting::keep_classifier(&e.entry, Arc::clone(model) as _).unwrap())
            }
            _ => None,
        })
        .expect("a keep-classifier model in models/repository")
}

fn options(json: &Value) -> Options {
    let mut o = Options {
        output: OutputText::Reference,
        ..Options::default()
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    for (key, value) in json.as_object().unwrap() {
        match key.as_str() {
            "rate" => o.rate = value.as_f64().unwrap(),
            "target_token" => o.target_token = value.as_i64().unwrap(),
            "use_context_level_filter" => o.use_context_level_filter = value.as_bool().unwrap(),
            "use_token_level_filter" => o.use_token_level_filter = value.as_bool().unwrap(),
            "return_word_label" => o.return_word_label = value.as_bool().unwrap(),
            "token_to_word" => {
                o.token_to_word = match value.as_str().unwrap() {
                    "first" => TokenToWord::First,
                    _ => TokenToWord::Mean,
                }
            }
            "force_tokens" => o.force_tokens = strings(value),
            "force_reserve_digit" => o.force_reserve_digit = value.as_bool().unwrap(),
            "drop_consecutive" => o.drop_consecutive = value.as_bool().unwrap(),
            other => panic!("fixture option `{other}` is not mapped"),
        }
    }
    o
}

#[tokio::test(flavor = "current_thread")]
async fn compressions_equal_the_python_package_word_for_word() {
    let classifier = classifier();
    let fixtures: Value = serde_json::from_slice(
        &std::fs::read(PathBuf::from(ROOT).join("tokenizers/lingua/tests/fixtures/parity.json"))
            .unwrap(),
    )
    .unwrap();
    let cases = fixtures.as_array().unwrap();
    assert!(cases.len() >= 10);
    let plans: Vec<_> = cases
        .iter()
        .map(|case| {
            let contexts: Vec<String> = case["context"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect();
            classifier
                .lingua
                .plan(&contexts, &options(&case["options"]))
                .unwrap()
        })
        .collect();
    // Every case's chunks in one call, as the service batches requests.
    let inputs: Vec<&[u32]> = plans.iter().flat_map(|plan| plan.inputs()).collect();
    assert!(inputs.len() > classifier.max_batch_size, "several batches");
    let all = classifier.keep_probabilities(&inputs).await.unwrap();
    let mut rows = all.as_slice();
    for (case, plan) in cases.iter().zip(&plans) {
        let name = case["name"].as_str().unwrap();
        let (probs, rest) = rows.split_at(plan.inputs().len());
        rows = rest;
        let ours = classifier.lingua.finish(plan, probs).unwrap();
        let theirs = &case["result"];
        assert_eq!(
            ours.compressed_prompt,
            theirs["compressed_prompt"].as_str().unwrap(),
            "{name}"
        );
        let list: Vec<&str> = theirs["compressed_prompt_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(ours.compressed_prompt_list, list, "{name}");
        assert_eq!(
            ours.origin_tokens as u64,
            theirs["origin_tokens"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            ours.compressed_tokens as u64,
            theirs["compressed_tokens"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            ours.ratio_text(),
            theirs["ratio"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(ours.rate_text(), theirs["rate"].as_str().unwrap(), "{name}");
        if let Some(labels) = theirs.get("fn_labeled_original_prompt") {
            assert_eq!(
                ours.fn_labeled_original_prompt.as_deref(),
                labels.as_str(),
                "{name}"
            );
        }
    }
}
