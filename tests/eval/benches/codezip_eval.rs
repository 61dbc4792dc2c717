//! LongCodeZip on real source files (issue 21): does the function a completion needs survive?
//!
//! Code set: Python files of the machine's standard library (`/usr/lib/python3.11`) and Rust
//! files of the crates in the cargo registry (`~/.cargo/registry/src`), in path order, each of
//! 1,200–3,500 LM tokens and at least 10 chunks. From each file, one completion point drawn at
//! random (seeded): a line in chunk `k` that calls a function defined in another chunk `j` of
//! the same file. The query is chunk `k`'s last 8 lines up to and including `name(`; the
//! context is the file without chunk `k`. The needed function survives when its first line
//! (the signature) is in the output. Nothing here was tuned on these files (LongCodeZip has no
//! trained parts beyond the LM, and its knobs keep the reference's defaults).
//!
//! At two settings (coarse rate 0.35 with fine ratio 0.7, about 4×; 0.2 with 0.6, about 8×),
//! the same cl100k tokens of kept chunks go to: the first chunks (first-N), chunks in a random
//! order, and chunks ranked by how many of the query's identifiers they contain (a lexical
//! baseline, ties in file order). Survival with 95 % Wilson intervals; paired differences
//! against LongCodeZip (95 % interval, exact sign test).
//!
//! Run: `cargo bench -p terse-eval --bench codezip_eval` (`TERSE_EVAL_FILES=n` files per
//! language, default 30; needs `scripts/setup`).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::Instant,
};

use terse_core::Inline;
use terse_perplexity::codezip::{CodeOptions, Language, compress_code, split_functions};
use terse_text::TokenCounter;

mod retention;
use retention::{Tally, Xorshift, paired};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// One completion point.
struct Sample {
    /// The file without the query's chunk.
    context: String,
    /// Its chunks, in order.
    chunks: Vec<String>,
    query: String,
    signature: String,
    /// The needed function sits in the second half of the file.
    late: bool,
    language: Language,
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            if !path.ends_with("tests") && !path.ends_with("test") {
                files(&path, ext, out);
            }
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

/// The name a chunk defines, if its first line is a function.
fn defined_name(chunk: &str, language: Language) -> Option<String> {
    let first = chunk.lines().find(|l| !l.trim().is_empty())?.trim_start();
    let after = match language {
        Language::Python => first
            .strip_prefix("async def ")
            .or_else(|| first.strip_prefix("def "))?,
        Language::Rust => {
            let at = first.find("fn ")?;
            &first[at + 3..]
        }
    };
    let name: String = after
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (name.len() >= 3 && name != "new" && name != "__init__").then_some(name)
}

fn sample(code: &str, language: Language, rng: &mut Xorshift) -> Option<Sample> {
    let chunks = split_functions(code, language);
    if chunks.len() < 10 {
        return None;
    }
    let names: Vec<Option<String>> = chunks.iter().map(|c| defined_name(c, language)).collect();
    let mut candidates = Vec::new();
    for (j, name) in names.iter().enumerate() {
        let Some(name) = name else { continue };
        if names.iter().filter(|n| n.as_ref() == Some(name)).count() > 1 {
            continue;
        }
        let call = format!("{name}(");
        for (k, chunk) in chunks.iter().enumerate() {
            if k == j || k == 0 {
                continue;
            }
            for (line_index, line) in chunk.lines().enumerate().skip(1) {
                if let Some(at) = line.find(&call)
                    && (at == 0
                        || !(line.as_bytes()[at - 1].is_ascii_alphanumeric()
                            || line.as_bytes()[at - 1] == b'_'))
                {
                    candidates.push((j, k, line_index, at + call.len()));
                }
            }
        }
    }
    if candidates.is_empty() {
        return None;
    }
    let (j, k, line_index, cut) = candidates[rng.below(candidates.len())];
    let lines: Vec<&str> = chunks[k].lines().collect();
    let mut query: Vec<&str> = lines[line_index.saturating_sub(7)..line_index].to_vec();
    query.push(&lines[line_index][..cut]);
    let rest: Vec<String> = chunks
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != k)
        .map(|(_, c)| c.clone())
        .collect();
    let signature = chunks[j]
        .lines()
        .find(|l| !l.trim().is_empty())?
        .trim()
        .to_string();
    Some(Sample {
        context: rest.join("\n"),
        chunks: split_functions(&rest.join("\n"), language),
        query: query.join("\n"),
        signature,
        late: j * 2 >= chunks.len(),
        language,
    })
}

/// Chunks taken in `order` while their cl100k tokens fit `budget`, in file order.
fn keep_chunks(
    chunks: &[String],
    order: &[usize],
    budget: usize,
    counter: &TokenCounter,
) -> String {
    let mut used = 0;
    let mut kept = BTreeSet::new();
    for &i in order {
        let tokens = counter.count(&chunks[i]);
        if used + tokens <= budget {
            used += tokens;
            kept.insert(i);
        }
    }
    kept.into_iter()
        .map(|i| chunks[i].as_str())
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn identifiers(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.len() >= 3 && !w.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}

fn main() {
    std::env::set_current_dir(ROOT).unwrap();
    let per_language: usize = std::env::var("TERSE_EVAL_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let ort = terse_runtime::OnnxRuntime::load(
        &terse_runtime::resolve_library_path(None).expect("run scripts/setup"),
    )
    .unwrap();
    let registry = terse_runtime::ModelRegistry::load(
        &ort,
        &PathBuf::from("models/repository"),
        &terse_runtime::ModelSelection::default(),
        &terse_runtime::SessionOptions::default(),
        None,
    )
    .unwrap();
    let lms = terse_hosting::causal_lms(&registry).unwrap();
    let lm = std::sync::Arc::clone(&lms.pick("", "").expect("the causal LM").item);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let counter = TokenCounter::default();
    let home = std::env::var("HOME").unwrap_or_default();
    let sources = [
        (Language::Python, PathBuf::from("/usr/lib/python3.11"), "py"),
        (
            Language::Rust,
            PathBuf::from(home).join(".cargo/registry/src"),
            "rs",
        ),
    ];
    let mut samples = Vec::new();
    let mut rng = Xorshift(0x5eed_c0de_2026_1207);
    for (language, dir, ext) in sources {
        let mut paths = Vec::new();
        files(&dir, ext, &mut paths);
        let mut taken = 0;
        for path in paths {
            if taken == per_language {
                break;
            }
            let Ok(code) = std::fs::read_to_string(&path) else {
                continue;
            };
            let Ok(tokens) = lm.tokenize(&code) else {
                continue;
            };
            if !(1200..=3500).contains(&tokens.len()) {
                continue;
            }
            if let Some(s) = sample(&code, language, &mut rng) {
                samples.push(s);
                taken += 1;
            }
        }
        println!("{language:?}: {taken} files from {}", dir.display());
    }
    println!(
        "  {:<34} {:>7} {:>19} {:>19} {:>19} {:>9} {:>7} {:>7}",
        "method",
        "ratio",
        "survived",
        "needed early",
        "needed late",
        "tokens/s",
        "p50 ms",
        "p99 ms"
    );
    for (rate, fine) in [(0.15, 0.5), (0.07, 0.4)] {
        let options = CodeOptions {
            rate,
            fine_ratio: Some(fine),
            budget_extra: 0.0,
            // The method's quality is measured here, not the service's cost bound.
            max_scored_tokens: usize::MAX,
            ..CodeOptions::default()
        };
        let (mut zip, mut first, mut random, mut lexical) = (
            Tally::default(),
            Tally::default(),
            Tally::default(),
            Tally::default(),
        );
        for (n, s) in samples.iter().enumerate() {
            let origin = counter.count(&s.context);
            let wanted = [s.signature.clone()];
            let started = Instant::now();
            let result = runtime
                .block_on(compress_code(
                    &lm, &Inline, &s.context, &s.query, "", s.language, &options,
                ))
                .unwrap();
            let seconds = started.elapsed().as_secs_f64();
            if std::env::var_os("TERSE_EVAL_VERBOSE").is_some() {
                let needed = s
                    .chunks
                    .iter()
                    .position(|c| c.lines().any(|l| l.trim() == s.signature));
                println!(
                    "    {:?} {} chunks, needed {needed:?}, kept {:?}; LM tokens {} -> {}; query {:?}",
                    s.language,
                    result.chunks,
                    result.kept_chunks,
                    result.origin_tokens,
                    result.compressed_tokens,
                    s.query.lines().last()
                );
            }
            zip.add(
                &wanted,
                s.late,
                origin,
                &result.compressed_code,
                &counter,
                seconds,
            );
            let budget = counter.count(&result.compressed_code);
            let in_order: Vec<usize> = (0..s.chunks.len()).collect();
            let text = keep_chunks(&s.chunks, &in_order, budget, &counter);
            first.add(&wanted, s.late, origin, &text, &counter, 0.0);
            let shuffled = Xorshift(0x9e37_79b9_7f4a_7c15 ^ n as u64).order(s.chunks.len());
            let text = keep_chunks(&s.chunks, &shuffled, budget, &counter);
            random.add(&wanted, s.late, origin, &text, &counter, 0.0);
            let query_words = identifiers(&s.query);
            let mut by_overlap = in_order.clone();
            by_overlap.sort_by_key(|&i| {
                std::cmp::Reverse(identifiers(&s.chunks[i]).intersection(&query_words).count())
            });
            let text = keep_chunks(&s.chunks, &by_overlap, budget, &counter);
            lexical.add(&wanted, s.late, origin, &text, &counter, 0.0);
        }
        println!("coarse rate {rate}, fine ratio {fine}:");
        zip.print("LongCodeZip");
        first.print("first chunks, same tokens");
        random.print("random chunks, same tokens");
        lexical.print("query identifiers, same tokens");
        paired("LongCodeZip vs first chunks", &zip, &first);
        paired("LongCodeZip vs random chunks", &zip, &random);
        paired("LongCodeZip vs query identifiers", &zip, &lexical);
    }
}
