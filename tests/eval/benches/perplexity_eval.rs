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
//! Questions: two per paragraph (the paragraph's first two), from articles 0-5 of dev part a,
//! which the shipped LLMLingua-2 keep model did not train on (it trained on 6-15) and which
//! tuned nothing here (LLMLingua-1 and LongLLMLingua have no trained parts beyond the LM).
//! Tokens are the target LLM's (cl100k) over the contexts only (the question is not counted).
//!
//! Run: `cargo bench -p terse-eval --bench perplexity_eval` (`TERSE_EVAL_QUESTIONS=n`, default
//! 120; needs `scripts/setup` and ../shared/datasets).

use std::{path::PathBuf, sync::Arc, time::Instant};

use serde_json::Value;
use terse_context::{ContextCompressor, ContextInput, Lingua2, Recomp};
use terse_core::Inline;
use terse_perplexity::{Options, compress_prompt};
use terse_recomp::Selection;
use terse_runtime::{ModelRegistry, ModelSelection, ModelState, OnnxRuntime, SessionOptions};
use terse_text::TokenCounter;

mod retention;
use retention::{Tally, keep_words, paired};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

struct Sample {
    question: String,
    answers: Vec<String>,
    late: bool,
    gold: String,
    /// The gold paragraph among four of the same article.
    documents: Vec<String>,
}

fn samples(limit: usize) -> Vec<Sample> {
    let path = PathBuf::from(ROOT).join("../shared/datasets/text/squad-v1.1-dev-part-a.json");
    let data: Value = serde_json::from_slice(&std::fs::read(path).expect("SQuAD")).unwrap();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut out = Vec::new();
    for article in &data["data"].as_array().unwrap()[..6] {
        let paragraphs: Vec<String> = article["paragraphs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["context"].as_str().unwrap().to_string())
            .collect();
        for (index, paragraph) in article["paragraphs"].as_array().unwrap().iter().enumerate() {
            for qa in paragraph["qas"].as_array().unwrap().iter().take(2) {
                let gold = paragraphs[index].clone();
                let mut others: Vec<usize> =
                    (0..paragraphs.len()).filter(|&i| i != index).collect();
                for i in (1..others.len()).rev() {
                    others.swap(i, (next() as usize) % (i + 1));
                }
                let mut documents: Vec<String> = others
                    .iter()
                    .take(4)
                    .map(|&i| paragraphs[i].clone())
                    .collect();
                documents.insert((next() as usize) % (documents.len() + 1), gold.clone());
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

fn random_order(seed: &mut u64, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        order.swap(i, (*seed as usize) % (i + 1));
    }
    order
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
    let samples = samples(limit);
    println!(
        "SQuAD v1.1 dev part a, articles 0-5: {} questions ({} with the answer in the second half of its paragraph); tokens: cl100k of the contexts",
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

    println!("RAG: gold paragraph + 4 paragraphs of the same article");
    for rate in [0.25, 0.1] {
        let mut long = Tally::default();
        let mut lingua2 = Tally::default();
        let mut recomp = Tally::default();
        let mut first = Tally::default();
        let mut random = Tally::default();
        let mut seed = 11u64;
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
            let out = keep_words(&joined, budget, &counter, &mut |n| {
                random_order(&mut seed, n)
            });
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

    println!("one paragraph: LLMLingua-1");
    for rate in [0.5, 0.33] {
        let mut lingua1 = Tally::default();
        let mut first = Tally::default();
        let mut random = Tally::default();
        let mut seed = 5u64;
        for s in &samples {
            let origin = counter.count(&s.gold);
            let options = Options {
                rate,
                ..Options::default()
            };
            let started = Instant::now();
            let result = runtime
                .block_on(compress_prompt(
                    &lm,
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
            let out = keep_words(&s.gold, budget, &counter, &mut |n| {
                random_order(&mut seed, n)
            });
            random.add(&s.answers, s.late, origin, &out, &counter, 0.0);
        }
        lingua1.print(&format!("LLMLingua-1 rate {rate}"));
        first.print("first words, same tokens");
        random.print("random words, same tokens");
        paired("LLMLingua-1 - first words", &lingua1, &first);
        paired("LLMLingua-1 - random words", &lingua1, &random);
    }
}
