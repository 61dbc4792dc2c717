//! LongCodeZip (`terse_perplexity::codezip`) on the shipped causal LM: the function a
//! completion calls survives a 3× compression, and what was dropped is marked. Here rather
//! than in tokenizers/perplexity, which must not reach ONNX Runtime.

use std::path::{Path, PathBuf};

use terse_core::{CountingInline, Inline};
use terse_perplexity::codezip::{CodeOptions, Language, compress_code, split_functions};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A small Python module of six functions (tokenizers/perplexity/tests/fixtures/module.py).
fn module() -> String {
    std::fs::read_to_string(workspace().join("tokenizers/perplexity/tests/fixtures/module.py"))
        .unwrap()
}

#[tokio::test]
async fn the_function_a_completion_calls_survives_and_dropped_code_is_marked() {
    let lm = terse_hosting::load_causal_lm(
        &workspace(),
        &workspace().join("models/repository"),
        "smollm2-135m",
    )
    .expect("scripts/setup built models/repository/smollm2-135m");
    let module = module();
    assert_eq!(split_functions(&module, Language::Python).len(), 7);
    assert_eq!(Language::detect(&module), Language::Python);
    let query = "def report(folder):\n    images = list_images(folder)\n    total = sum(os.path.getsize(p) for p in images)\n    return format_size(";
    let worker = CountingInline::default();
    let options = CodeOptions {
        rate: 0.3,
        fine_ratio: Some(0.8),
        budget_extra: 0.0,
        ..CodeOptions::default()
    };
    let result = compress_code(
        &lm,
        &worker,
        &module,
        query,
        "Complete the code.",
        Language::Python,
        &options,
    )
    .await
    .unwrap();
    assert!(
        result.compressed_code.contains("def format_size(count):"),
        "{}",
        result.compressed_code
    );
    assert!(
        result.compressed_code.contains("# ..."),
        "{}",
        result.compressed_code
    );
    assert!(
        result.compressed_tokens * 2 < result.origin_tokens,
        "{} of {} tokens",
        result.compressed_tokens,
        result.origin_tokens
    );
    assert!(result.kept_chunks.len() < result.chunks);
    assert!(
        result
            .compressed_prompt
            .starts_with("Complete the code.\n\n")
    );
    assert!(result.compressed_prompt.ends_with(query));
    assert!(
        worker.jobs() > result.chunks,
        "the scoring ran on the worker"
    );

    let everything = CodeOptions {
        rate: 1.0,
        ..CodeOptions::default()
    };
    let whole = compress_code(
        &lm,
        &Inline,
        &module,
        query,
        "",
        Language::Python,
        &everything,
    )
    .await
    .unwrap();
    assert_eq!(
        whole.compressed_code, module,
        "rate 1 keeps the code as it is"
    );
    let bad = CodeOptions {
        rate: 0.0,
        ..CodeOptions::default()
    };
    let refused = compress_code(&lm, &Inline, &module, query, "", Language::Python, &bad).await;
    assert_eq!(
        refused.unwrap_err().kind,
        terse_core::ErrorKind::InvalidInput
    );
}
