//! KV-cache codec evaluation (issue 22, part 2): real caches of SmolLM2-135M (the shipped
//! causal LM) on SQuAD articles held out of every tuning choice, sizes against 8-bit
//! quantization, and the quality cost measured by continuing the text from the decoded cache.
//!
//! For each article: the cache of its first `PREFIX - 1` tokens is built exactly, encoded,
//! decoded, and the next `CONTINUATION` tokens are run from it. Reported per method, as mean
//! and 95 % confidence interval over the articles: bits per element, size ratio against 8-bit
//! quantization (per token and layer, one fp16 scale per 192-value vector, CacheGen's
//! baseline), the change of the continuation's mean negative log-likelihood (nats/token) and
//! perplexity, and the top-1 agreement of the next-token predictions with the exact cache.
//!
//! Tuning (level steps, layer factors, sink) used articles 1-3 (Warsaw, Teacher,
//! Victoria_(Australia)); this reports articles 4-15 (set TERSE_KV_ARTICLES=a-b to change).
//!
//! Run: `cargo bench -p terse-eval --bench kv_eval` (needs scripts/setup and
//! ../shared/datasets/text/squad-v1.1-dev-part-a.json).

use std::{path::Path, time::Instant};

use terse_causal_lm::{CausalLm, Forward};
use terse_core::KvCache;
use terse_entropy::ModelTag;
use terse_eval::mean_ci;
use terse_kvcache::{EncodeOptions, MAX_LEVEL, decode, encode};

const PREFIX: usize = 512;
const CONTINUATION: usize = 256;

/// One article's exact run.
struct Case {
    cache: KvCache,
    continuation: Vec<u32>,
    targets: Vec<u32>,
    exact: Forward,
}

/// What one method did to one article.
struct Outcome {
    bits_per_element: f64,
    delta_nll: f64,
    top1_agreement: f64,
    encode_s: f64,
    decode_s: f64,
}

fn mean_nll(forward: &Forward, targets: &[u32]) -> f64 {
    let total: f64 = targets
        .iter()
        .enumerate()
        .map(|(i, &t)| -f64::from(forward.log_prob(i, t)))
        .sum();
    total / targets.len() as f64
}

/// CacheGen's baseline: each token's 192 keys (or values) of a layer quantized to `bits` with
/// one fp16 scale (max magnitude), symmetric, rounded to nearest.
fn per_token_quantized(cache: &KvCache, bits: u32) -> (KvCache, f64) {
    let shape = cache.shape();
    let levels = ((1u32 << (bits - 1)) - 1) as f32;
    let mut values = cache.values().to_vec();
    let (tokens, dim) = (shape.tokens, shape.head_dim);
    for plane in values.chunks_mut(shape.plane()) {
        for t in 0..tokens {
            let index = |h: usize, d: usize| h * tokens * dim + t * dim + d;
            let mut max = 0f32;
            for h in 0..shape.kv_heads {
                for d in 0..dim {
                    max = max.max(plane[index(h, d)].abs());
                }
            }
            let scale = half::f16::from_f32(max).to_f32();
            for h in 0..shape.kv_heads {
                for d in 0..dim {
                    let v = &mut plane[index(h, d)];
                    *v = if scale > 0.0 {
                        (*v / scale * levels).round() / levels * scale
                    } else {
                        0.0
                    };
                }
            }
        }
    }
    let elements = values.len() as f64;
    let vectors = (2 * shape.layers * tokens) as f64;
    let bits_total = elements * f64::from(bits) + vectors * 16.0;
    (KvCache::new(shape, values).unwrap(), bits_total / elements)
}

async fn continue_from(lm: &CausalLm, case: &Case, cache: &KvCache) -> (f64, f64) {
    let run = lm.forward(&case.continuation, Some(cache)).await.unwrap();
    let delta = mean_nll(&run, &case.targets) - mean_nll(&case.exact, &case.targets);
    let agree = (0..case.targets.len())
        .filter(|&i| run.top1(i) == case.exact.top1(i))
        .count() as f64
        / case.targets.len() as f64;
    (delta, agree)
}

fn articles() -> (usize, usize) {
    let spec = std::env::var("TERSE_KV_ARTICLES").unwrap_or_else(|_| "4-15".into());
    let (a, b) = spec.split_once('-').expect("TERSE_KV_ARTICLES is a-b");
    (a.parse().unwrap(), b.parse().unwrap())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let squad = workspace.join("../shared/datasets/text/squad-v1.1-dev-part-a.json");
    let Ok(text) = std::fs::read(&squad) else {
        eprintln!(
            "kv_eval: {} is missing; nothing to measure",
            squad.display()
        );
        return;
    };
    let lm = terse_hosting::load_causal_lm(
        &workspace,
        &workspace.join("models/repository"),
        "smollm2-135m",
    )
    .expect("scripts/setup built the causal LM");
    let manifest =
        std::fs::read_to_string(workspace.join("models/repository/smollm2-135m/1/manifest.toml"))
            .unwrap();
    let sha = manifest
        .lines()
        .find_map(|l| l.strip_prefix("sha256 = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap();
    let tag = ModelTag::from_sha256_hex("smollm2-135m", sha).unwrap();
    let squad: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let (first, last) = articles();

    let mut cases = Vec::new();
    let mut titles = Vec::new();
    for article in &squad["data"].as_array().unwrap()[first..=last] {
        let text: Vec<&str> = article["paragraphs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["context"].as_str().unwrap())
            .collect();
        let ids = lm.tokenize(&text.join("\n")).unwrap();
        if ids.len() < PREFIX + CONTINUATION {
            eprintln!("skipping {}: {} tokens", article["title"], ids.len());
            continue;
        }
        let prefill = lm.forward(&ids[..PREFIX - 1], None).await.unwrap();
        let continuation = ids[PREFIX - 1..PREFIX - 1 + CONTINUATION].to_vec();
        let targets = ids[PREFIX..PREFIX + CONTINUATION].to_vec();
        let exact = lm
            .forward(&continuation, Some(&prefill.cache))
            .await
            .unwrap();
        titles.push(article["title"].as_str().unwrap().to_string());
        cases.push(Case {
            cache: prefill.cache,
            continuation,
            targets,
            exact,
        });
    }
    let shape = cases[0].cache.shape();
    println!(
        "kv_eval: SmolLM2-135M, SQuAD articles {first}-{last}: {} articles ({}), cache of {} tokens ({} layers x K,V x {} heads x {} channels = {} values), continuation {} tokens",
        cases.len(),
        titles.join(", "),
        shape.tokens,
        shape.layers,
        shape.kv_heads,
        shape.head_dim,
        shape.elements().unwrap(),
        CONTINUATION
    );

    let mut methods: Vec<(String, Vec<Outcome>)> = Vec::new();
    for bits in [8u32, 4] {
        let mut outcomes = Vec::new();
        for case in &cases {
            let (cache, bpe) = per_token_quantized(&case.cache, bits);
            let (delta_nll, top1_agreement) = continue_from(&lm, case, &cache).await;
            outcomes.push(Outcome {
                bits_per_element: bpe,
                delta_nll,
                top1_agreement,
                encode_s: f64::NAN,
                decode_s: f64::NAN,
            });
        }
        methods.push((format!("{bits}-bit per-token quantization"), outcomes));
    }
    for level in (1..=MAX_LEVEL).rev() {
        let options = EncodeOptions {
            level,
            ..EncodeOptions::default()
        };
        let mut outcomes = Vec::new();
        for case in &cases {
            let started = Instant::now();
            let bitstream = encode(&case.cache, &tag, "fp32", &options).unwrap();
            let encode_s = started.elapsed().as_secs_f64();
            let started = Instant::now();
            let (info, decoded) = decode(&bitstream, Some(&tag), usize::MAX).unwrap();
            let decode_s = started.elapsed().as_secs_f64();
            assert_eq!(info.shape, case.cache.shape());
            let (delta_nll, top1_agreement) = continue_from(&lm, case, &decoded).await;
            outcomes.push(Outcome {
                bits_per_element: bitstream.len() as f64 * 8.0 / case.cache.values().len() as f64,
                delta_nll,
                top1_agreement,
                encode_s,
                decode_s,
            });
        }
        methods.push((format!("terse level {level}"), outcomes));
    }

    let eight_bit = mean_ci(
        &methods[0]
            .1
            .iter()
            .map(|o| o.bits_per_element)
            .collect::<Vec<_>>(),
    )
    .0;
    println!();
    println!(
        "| method | bits/element | smaller than 8-bit | ΔNLL nats/token (95% CI) | perplexity change | top-1 agreement (95% CI) | encode MB/s | decode MB/s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, outcomes) in &methods {
        let column =
            |f: &dyn Fn(&Outcome) -> f64| mean_ci(&outcomes.iter().map(f).collect::<Vec<_>>());
        let (bits, _) = column(&|o| o.bits_per_element);
        let (delta, delta_ci) = column(&|o| o.delta_nll);
        let (agree, agree_ci) = column(&|o| o.top1_agreement);
        let bytes = (shape.elements().unwrap() * 4) as f64 / 1e6;
        let rate = |seconds: f64| {
            if seconds.is_nan() {
                "—".to_string()
            } else {
                format!("{:.0}", bytes / seconds)
            }
        };
        let (encode_s, _) = column(&|o| o.encode_s);
        let (decode_s, _) = column(&|o| o.decode_s);
        println!(
            "| {name} | {bits:.3} | {:.2}× | {delta:+.4} ± {delta_ci:.4} | {:+.2} % | {agree:.3} ± {agree_ci:.3} | {} | {} |",
            eight_bit / bits,
            (delta.exp() - 1.0) * 100.0,
            rate(encode_s),
            rate(decode_s),
        );
    }
}
