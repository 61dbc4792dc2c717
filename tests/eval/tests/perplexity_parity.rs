//! LLMLingua-1 and LongLLMLingua (`terse-perplexity`) against the Python package on the same
//! graph (tokenizers/perplexity/tests/fixtures/llmlingua.json, written by
//! tokenizers/perplexity/reference/make_fixtures.py): the same compressed prompt, word for
//! word. Here rather than in tokenizers/perplexity, which must not reach ONNX Runtime.

use std::path::{Path, PathBuf};

use terse_core::CountingInline;
use terse_perplexity::{Options, compress_prompt};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[derive(serde::Deserialize)]
struct Case {
    method: String,
    context: Vec<String>,
    instruction: String,
    question: String,
    rate: f64,
    iterative_size: usize,
    compressed_prompt: String,
    origin_tokens: usize,
    compressed_tokens: usize,
}

#[derive(serde::Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[tokio::test]
async fn every_fixture_case_keeps_the_tokens_the_python_package_keeps_with_either_method() {
    let lm = terse_hosting::load_causal_lm(
        &workspace(),
        &workspace().join("models/repository"),
        "smollm2-135m",
    )
    .expect("scripts/setup built models/repository/smollm2-135m");
    let path = workspace().join("tokenizers/perplexity/tests/fixtures/llmlingua.json");
    let fixture: Fixture = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut differences = Vec::new();
    let worker = CountingInline::default();
    for (i, case) in fixture.cases.iter().enumerate() {
        let recipe = match case.method.as_str() {
            "llmlingua" => Options::default(),
            "longllmlingua" => Options::longllmlingua(case.rate),
            other => panic!("unknown method {other}"),
        };
        let options = Options {
            rate: case.rate,
            iterative_size: case.iterative_size,
            ..recipe
        };
        let jobs_before = worker.jobs();
        let got = compress_prompt(
            &lm,
            &worker,
            &case.context,
            &case.instruction,
            &case.question,
            &options,
        )
        .await
        .unwrap();
        assert_eq!(got.origin_tokens, case.origin_tokens, "case {i}");
        assert!(
            worker.jobs() > jobs_before,
            "case {i} computed no log-probabilities on the worker"
        );
        if got.compressed_prompt != case.compressed_prompt {
            differences.push(format!(
                "case {i} ({} at rate {}):\n  ours:   {:?}\n  python: {:?}",
                case.method, case.rate, got.compressed_prompt, case.compressed_prompt
            ));
        } else {
            assert_eq!(got.compressed_tokens, case.compressed_tokens, "case {i}");
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
