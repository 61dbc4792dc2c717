//! Perplexity-based compression on SQuAD (issue 21), in one run:
//!
//! 1. **LongLLMLingua in RAG.** For each question, its gold paragraph among 4 paragraphs of
//!    the same article (the nearest distractors there are), at a random position. LongLLMLingua
//!    (the README recipe, question appended) at rates 1/4 and 1/10, then at the same number of
//!    contexts tokens: LLMLingua-2 (`target_token`), RECOMP (top sentences for the question
//!    within the tokens), keep-the-first-N words and random words. Answer retention (a gold
//!    answer survives, case-insensitive) with 95 % Wilson intervals, and paired differences
//!    against LongLLMLingua (95 % interval, exact sign test).
//! 2. **LLMLingua-1 on one paragraph** at rates 0.5 and 0.33 against random and first-N words
//!    at the same tokens.
//!
//! Questions: two per paragraph drawn at random (seeded), from articles 0-5 of dev part a,
//! which the shipped LLMLingua-2 keep model (version 4) saw no article of in training, and which
//! tuned nothing here (LLMLingua-1 and LongLLMLingua have no trained parts beyond the LM).
//! Tokens are the target LLM's (cl100k) over the contexts only (the question is not counted).
//!
//! 3. **Speed and agreement against the Python package** on its own model (transformers
//!    reading the GGUF, fp32, 2 threads; `reference/bench_reference.py`) over the parity
//!    fixture's 19 cases: LM tokens per second both ways, and how many outputs are equal
//!    (the fixture itself, made with the same ONNX graph on both sides, is all equal). Runs when
//!    `TERSE_EVAL_PYTHON` names a Python with the package and `TERSE_EVAL_GGUF_DIR` the folder
//!    of `SmolLM2-135M-Instruct.Q4_1.gguf`.
//!
//! Run: `cargo bench -p terse-eval --bench perplexity_eval` (`TERSE_EVAL_QUESTIONS=n`, default
//! 120, 0 for section 3 alone; needs `scripts/setup` and ../shared/datasets). For model
//! selection on other articles: `TERSE_EVAL_ARTICLES=6-11` (default 0-5, the evaluation set),
//! `TERSE_EVAL_SETTINGS=paragraph` (or `rag`; default both), and
//! `TERSE_EVAL_ITERATIVE_SIZE=n`, LLMLingua-1's window in section 2 (default the reference's).

use std::{path::PathBuf, sync::Arc, time::Instant};

use serde_json::Value;
use terse_context::{ContextCompressor, ContextInput, Lingua2, Recomp};
use terse_core::Inline;
use terse_perplexity::{Options, compress_prompt};
use terse_recomp::Selection;
use terse_runtime::{ModelRegistry, ModelSelection, ModelState, OnnxRuntime, SessionOptions};
use terse_text::TokenCounter;

mod retention;
use retention::{Tally, Xorshift, keep_words, paired, python_reference};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

struct Sample {
    question: String,
    answers: Vec<String>,
    late: bool,
    gold: String,
    /// The gold paragraph among four of the same article.
    documents: Vec<String>,
}

/// Articles `first..=last` of dev part a (`TERSE_EVAL_ARTICLES=first-last`; default 0-5).
fn articles() -> (usize, usize) {
    let Ok(range) = std::env::var("TERSE_EVAL_ARTICLES") else {
        return (0, 5);
    };
    let parse = |v: &str| {
        v.trim()
            .parse::<usize>()
            .expect("TERSE_EVAL_ARTICLES=first-last")
    };
    let (first, last) = range
        .split_once('-')
        .expect("TERSE_EVAL_ARTICLES=first-last");
    (parse(first), parse(last))
}

/// Whether `TERSE_EVAL_SETTINGS` (comma-separated; default every setting) names `setting`.
fn runs(setting: &str) -> bool {
    std::env::var("TERSE_EVAL_SETTINGS").map_or(true, |v| v.split(',').any(|s| s == setting))
}

fn samples(limit: usize, (first, last): (usize, usize)) -> Vec<Sample> {
    let path = PathBuf::from(ROOT).join("../shared/datasets/text/squad-v1.1-dev-part-a.json");
    let data: Value = serde_json::from_slice(&std::fs::read(path).expect("SQuAD")).unwrap();
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    for article in &data["data"].as_array().unwrap()[first..=last] {
        let paragraphs: Vec<String> = article["paragraphs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["context"].as_str().unwrap().to_string())
            .collect();
        for (index, paragraph) in article["paragraphs"].as_array().unwrap().iter().enumerate() {
            // Two questions drawn at random: SQuAD annotators wrote them in paragraph order, so
            // the first two favour early answers (and keep-first-N).
            let qas = paragraph["qas"].as_array().unwrap();
            let picks = rng.order(qas.len());
            for qa in picks.iter().take(2).map(|&i| &qas[i]) {
                let gold = paragraphs[index].clone();
                let mut others: Vec<usize> =
                    (0..paragraphs.len()).filter(|&i| i != index).collect();
                rng.shuffle(&mut others);
                let mut documents: Vec<String> = others
                    .iter()
                    .take(4)
                    .map(|&i| paragraphs[i].clone())
                    .collect();
                documents.insert(rng.below(documents.len() + 1), gold.clone());
                let start = qa["answers"][0]["answer_start"].as_u64().unwrap_or(0) as usize;
                out.push(Sample {
                    question: qa["question"].as_str().unwrap().to_string(),
                    answers: qa["answers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| a["text"].as_str().unwrap().to_string())
                        .collect(),
                    late: 2 * start >= gold.len(),
                    gold,
                    documents,
                });
                if out.len() >= limit {
                    return out;
                }
            }
        }
    }
    out
}

/// Section 3: the fixture's cases here and through the Python package on its own model.
fn against_python(lm: &terse_causal_lm::CausalLm, runtime: &tokio::runtime::Runtime) {
    let (Ok(python), Ok(gguf)) = (
        std::env::var("TERSE_EVAL_PYTHON"),
        std::env::var("TERSE_EVAL_GGUF_DIR"),
    ) else {
        println!(
            "(TERSE_EVAL_PYTHON and TERSE_EVAL_GGUF_DIR unset: the Python comparison is skipped)"
        );
        return;
    };
    let fixture: Value = serde_json::from_slice(
        &std::fs::read("tokenizers/perplexity/tests/fixtures/llmlingua.json").unwrap(),
    )
    .unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    let out =
        std::env::temp_dir().join(format!("terse-perplexity-eval-{}.json", std::process::id()));
    let Some(reference) = python_reference(
        &python,
        "tokenizers/perplexity/reference/bench_reference.py",
        &[std::ffi::OsStr::new(&gguf)],
        &out,
    ) else {
        println!("(the Python reference did not run: comparison skipped)");
        return;
    };
    let mut ours = Vec::new();
    let mut tokens = 0usize;
    let started = Instant::now();
    for case in cases {
        let contexts: Vec<String> = case["context"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        for text in &contexts {
            tokens += lm.tokenize(text).unwrap().len();
        }
        let recipe = if case["method"] == "longllmlingua" {
            Options::longllmlingua(case["rate"].as_f64().unwrap())
        } else {
            Options::default()
        };
        let options = Options {
            rate: case["rate"].as_f64().unwrap(),
            iterative_size: case["iterative_size"].as_u64().unwrap() as usize,
            ..recipe
        };
        let result = runtime
            .block_on(compress_prompt(
                lm,
                &Inline,
                &contexts,
                case["instruction"].as_str().unwrap(),
                case["question"].as_str().unwrap(),
                &options,
            ))
            .unwrap();
        ours.push(result.compressed_prompt);
    }
    let ours_seconds = started.elapsed().as_secs_f64();
    let theirs_seconds: f64 = reference["seconds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .sum();
    let equal = reference["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&ours)
        .filter(|(theirs, ours)| theirs.as_str() == Some(ours.as_str()))
        .count();
    println!(
        "against llmlingua 0.2.2 on its transformers model ({} cases, {tokens} LM tokens): terse {:.0} tokens/s, Python {:.0} tokens/s ({:.2}x); outputs equal: {equal}/{}",
        cases.len(),
        tokens as f64 / ours_seconds,
        tokens as f64 / theirs_seconds,
        theirs_seconds / ours_seconds,
        cases.len()
    );
}

fn main() {
    std::env::set_current_dir(ROOT).unwrap();
    let limit = std::env::var("TERSE_EVAL_QUESTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let ort =
        OnnxRuntime::load(&terse_runtime::resolve_library_path(None).expect("run scripts/setup"))
            .unwrap();
    let registry = ModelRegistry::load(
        &ort,
        &PathBuf::from("models/repository"),
        &ModelSelection::default(),
        &SessionOptions {
            intra_op_threads: 0,
            ..SessionOptions::default()
        },
        None,
    )
    .unwrap();
    let find = |task: &str| {
        registry.entries().iter().find_map(|e| match &e.state {
            ModelState::Ready(m) if e.entry.manifest.task == task => Some((
                e.entry.clone(),
                Arc::clone(m) as Arc<dyn terse_core::Network>,
            )),
            _ => None,
        })
    };
    let (entry, model) = find("keep-classifier").expect("keep-classifier model");
    let classifier = Arc::new(terse_hosting::keep_classifier(&entry, model).unwrap());
    let (entry, model) = find("sentence-encoder").expect("sentence-encoder model");
    let encoder = Arc::new(terse_hosting::sentence_encoder(&entry, model).unwrap());
    let lms = terse_hosting::causal_lms(&registry).unwrap();
    let lm = Arc::clone(&lms.pick("", "").expect("the causal LM").item);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let counter = TokenCounter::default();
    against_python(&lm, &runtime);
    if limit == 0 {
        return;
    }
    let (first, last) = articles();
    let samples = samples(limit, (first, last));
    println!(
        "SQuAD v1.1 dev part a, articles {}-{}: {} questions ({} with the answer in the second half of its paragraph); tokens: cl100k of the contexts",
        first,
        last,
        samples.len(),
        samples.iter().filter(|s| s.late).count()
    );
    println!(
        "  {:<34} {:>7} {:>19} {:>19} {:>19} {:>9} {:>7} {:>7}",
        "method",
        "ratio",
        "retained",
        "answer early",
        "answer late",
        "tokens/s",
        "p50 ms",
        "p99 ms"
    );

    if runs("rag") {
        println!("RAG: gold paragraph + 4 paragraphs of the same article");
    }
    for rate in [0.25, 0.1].into_iter().filter(|_| runs("rag")) {
        let mut long = Tally::default();
        let mut lingua2 = Tally::default();
        let mut recomp = Tally::default();
        let mut first = Tally::default();
        let mut random = Tally::default();
        let mut seed = Xorshift(11);
        for s in &samples {
            let joined = s.documents.join("\n\n");
            let origin = counter.count(&joined);
            let options = Options {
                concate_question: false,
                ..Options::longllmlingua(rate)
            };
            let started = Instant::now();
            let result = runtime
                .block_on(compress_prompt(
                    &lm,
                    &Inline,
                    &s.documents,
                    "",
                    &s.question,
                    &options,
                ))
                .unwrap();
            let seconds = started.elapsed().as_secs_f64();
            long.add(
                &s.answers,
                s.late,
                origin,
                &result.compressed_prompt,
                &counter,
                seconds,
            );
            let budget = counter.count(&result.compressed_prompt).max(1);

            let started = Instant::now();
            let lingua = Lingua2::new(
                Arc::clone(&classifier),
                terse_lingua::Options {
                    target_token: budget as i64,
                    ..terse_lingua::Options::default()
                },
            );
            let input = ContextInput {
                contexts: s.documents.clone(),
                query: s.question.clone(),
                max_tokens: usize::MAX,
            };
            let out = runtime
                .block_on(lingua.compress(input.clone(), &Inline))
                .map(|c| c.text)
                .unwrap_or_default();
            lingua2.add(
                &s.answers,
                s.late,
                origin,
                &out,
                &counter,
                started.elapsed().as_secs_f64(),
            );

            let started = Instant::now();
            let selection = Selection {
                target_tokens: Some(budget),
                ..Default::default()
            };
            let select = Recomp::new(Arc::clone(&encoder), selection, None).unwrap();
            let out = runtime
                .block_on(select.compress(input, &Inline))
                .map(|c| c.text)
                .unwrap_or_default();
            recomp.add(
                &s.answers,
                s.late,
                origin,
                &out,
                &counter,
                started.elapsed().as_secs_f64(),
            );

            let out = keep_words(&joined, budget, &counter, &mut |n| (0..n).collect());
            first.add(&s.answers, s.late, origin, &out, &counter, 0.0);
            let out = keep_words(&joined, budget, &counter, &mut |n| seed.order(n));
            random.add(&s.answers, s.late, origin, &out, &counter, 0.0);
        }
        long.print(&format!("LongLLMLingua rate {rate}"));
        lingua2.print("LLMLingua-2, same tokens");
        recomp.print("RECOMP sentences, same tokens");
        first.print("first words, same tokens");
        random.print("random words, same tokens");
        paired("LongLLMLingua - LLMLingua-2", &long, &lingua2);
        paired("LongLLMLingua - RECOMP", &long, &recomp);
        paired("LongLLMLingua - first words", &long, &first);
        paired("LongLLMLingua - random words", &long, &random);
    }

    let window = std::env::var("TERSE_EVAL_ITERATIVE_SIZE")
        .map_or(Options::default().iterative_size, |v| v.parse().unwrap());
    if runs("paragraph") {
        println!("one paragraph: LLMLingua-1, iterative_size {window}");
    }
    for rate in [0.5, 0.33].into_iter().filter(|_| runs("paragraph")) {
        let mut lingua1 = Tally::default();
        let mut first = Tally::default();
        let mut random = Tally::default();
        let mut seed = Xorshift(5);
        for s in &samples {
            let origin = counter.count(&s.gold);
            let options = Options {
                rate,
                iterative_size: window,
                ..Options::default()
            };
            let started = Instant::now();
            let result = runtime
                .block_on(compress_prompt(
                    &lm,
                    &Inline,
                    std::slice::from_ref(&s.gold),
                    "",
                    "",
                    &options,
                ))
                .unwrap();
            lingua1.add(
                &s.answers,
                s.late,
                origin,
                &result.compressed_prompt,
                &counter,
                started.elapsed().as_secs_f64(),
            );
            let budget = counter.count(&result.compressed_prompt).max(1);
            let out = keep_words(&s.gold, budget, &counter, &mut |n| (0..n).collect());
            first.add(&s.answers, s.late, origin, &out, &counter, 0.0);
            let out = keep_words(&s.gold, budget, &counter, &mut |n| seed.order(n));
            random.add(&s.answers, s.late, origin, &out, &counter, 0.0);
        }
        lingua1.print(&format!("LLMLingua-1 rate {rate}"));
        first.print("first words, same tokens");
        random.print("random words, same tokens");
        paired("LLMLingua-1 - first words", &lingua1, &first);
        paired("LLMLingua-1 - random words", &lingua1, &random);
    }
}
