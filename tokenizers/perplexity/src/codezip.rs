//! LongCodeZip (Shi et al., ASE 2025) as its reference implementation (`longcodezip` on GitHub,
//! YerbaPage/LongCodeZip, MIT) runs `compress_code_file`, on the local causal LM:
//! 1. **Coarse: functions.** The code is split into function and class chunks (Python, Rust).
//!    Each chunk is scored by how much it lowers the perplexity of the query (the paper's
//!    approximated mutual information, `ppl(query) − ppl(query | chunk)`), and chunks are kept
//!    best first until the token budget plus 100 is spent; the rest become `… ` markers.
//! 2. **Fine: blocks.** Each kept function of at least `min_lines_for_fine_grained` lines is cut
//!    into blocks where the per-line perplexity spikes, gets its own keep ratio (more for more
//!    important functions, `importance_beta`), and keeps the blocks a 0/1 knapsack picks for
//!    their query-perplexity gain within its tokens; blocks opening with a signature, a comment
//!    or a `return` are always kept.
//!
//! Where the port differs from the reference (each for a stated reason):
//! - the per-line perplexities of step 2 come from one pass over the function, split at the
//!   token boundaries the reference computes, instead of one pass per line over every line
//!   before it (the same conditioning, `O(lines)` times less work; values differ only where a
//!   token straddles a line break);
//! - Rust omission markers are `// …` (the reference writes `#`, not a Rust comment), and the
//!   chunker also starts chunks at `enum`, `trait` and `async def` (the reference's patterns
//!   leave them inside the previous chunk);
//! - only the knapsack block selection is built (the reference's default), not its greedy
//!   line-by-line alternative;
//! - chunks are cut at line breaks and joined again by one, so code the function stage keeps
//!   whole comes back byte for byte (the reference joins its chunks with a blank line).

use terse_causal_lm::CausalLm;
use terse_core::{Error, Worker};

use crate::llmlingua::{token_losses, with_bos};

/// A source language the chunker knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// Python: chunks start at `def`, `async def` and `class` lines.
    Python,
    /// Rust: chunks start at `fn`, `struct`, `enum`, `trait` and `impl` items.
    Rust,
}

impl Language {
    /// The language a hint names (`python`/`py`, `rust`/`rs`, any case); empty: detect it
    /// from the code. Any other hint is refused.
    pub fn from_hint(hint: &str, code: &str) -> Result<Self, Error> {
        match hint.trim().to_ascii_lowercase().as_str() {
            "" => Ok(Self::detect(code)),
            "python" | "py" => Ok(Self::Python),
            "rust" | "rs" => Ok(Self::Rust),
            other => Err(Error::invalid(format!(
                "unknown code language `{other}`: python or rust (or empty to detect it)"
            ))),
        }
    }

    /// The language whose item keywords open more lines of `code` (Python on a tie).
    pub fn detect(code: &str) -> Self {
        let (mut python, mut rust) = (0usize, 0usize);
        for line in code.lines() {
            let line = line.trim_start();
            python += usize::from(python_item(line) || line.starts_with("import "));
            rust += usize::from(rust_item(line) || line.starts_with("use ") || line.ends_with(';'));
        }
        if rust > python {
            Self::Rust
        } else {
            Self::Python
        }
    }

    /// What opens a line comment.
    fn comment(self) -> &'static str {
        match self {
            Self::Python => "#",
            Self::Rust => "//",
        }
    }

    /// The marker of omitted code.
    fn omission(self) -> &'static str {
        match self {
            Self::Python => "# ...",
            Self::Rust => "// ...",
        }
    }

    /// Whether a line opens a chunk.
    fn opens_chunk(self, line: &str) -> bool {
        let line = line.trim_start();
        match self {
            Self::Python => python_item(line),
            Self::Rust => rust_item(line),
        }
    }
}

fn python_item(line: &str) -> bool {
    ["def ", "async def ", "class "]
        .iter()
        .any(|k| line.starts_with(k))
}

fn rust_item(line: &str) -> bool {
    let mut rest = line;
    for qualifier in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(qualifier).unwrap_or(rest);
    }
    ["fn ", "struct ", "enum ", "trait ", "impl ", "impl<"]
        .iter()
        .any(|k| rest.starts_with(k))
}

/// The code split into chunks: what precedes the first item, then one chunk from each item's
/// first line to the next item's (methods are chunks of their own, as in the reference).
pub fn split_functions(code: &str, language: Language) -> Vec<String> {
    let mut chunks: Vec<Vec<&str>> = vec![Vec::new()];
    for line in code.split('\n') {
        if language.opens_chunk(line) && chunks.last().is_some_and(|c| !c.is_empty()) {
            chunks.push(Vec::new());
        }
        chunks.last_mut().expect("one chunk at least").push(line);
    }
    chunks
        .into_iter()
        .map(|lines| lines.join("\n"))
        .filter(|chunk| !chunk.trim().is_empty())
        .collect()
}

/// Options of [`compress_code`], with the reference's names and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeOptions {
    /// Share of the code's LM tokens the function stage keeps (`rate`).
    pub rate: f64,
    /// LM tokens the function stage keeps, over `rate` when above 0 (`target_token`).
    pub target_token: f64,
    /// Share of the kept functions' lines the block stage keeps (`fine_ratio`; `None`: `rate`).
    pub fine_ratio: Option<f64>,
    /// Tokens the function budget may run over (`context_budget` "+100").
    pub budget_extra: f64,
    /// How much a function's importance moves its own keep ratio (`importance_beta`).
    pub importance_beta: f64,
    /// Functions with fewer non-empty blocks are kept whole (`min_lines_for_fine_grained`).
    pub min_lines_for_fine_grained: usize,
    /// Function stage only (`rank_only`).
    pub rank_only: bool,
    /// Most LM tokens one request may score, checked before any is scored against an upper
    /// bound of the plan (every chunk and, without `rank_only`, every block of every chunk
    /// scored with the query); over it: too large.
    pub max_scored_tokens: usize,
}

impl Default for CodeOptions {
    fn default() -> Self {
        Self {
            rate: 0.5,
            target_token: -1.0,
            fine_ratio: None,
            budget_extra: 100.0,
            importance_beta: 0.5,
            min_lines_for_fine_grained: 5,
            rank_only: false,
            max_scored_tokens: 1 << 16,
        }
    }
}

/// What [`compress_code`] returned.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeCompressed {
    /// The code with omitted functions and blocks replaced by markers.
    pub compressed_code: String,
    /// Instruction, compressed code and query, joined by blank lines.
    pub compressed_prompt: String,
    /// The language the code was read as.
    pub language: Language,
    /// The chunks the code was split into.
    pub chunks: usize,
    /// Indexes of the chunks the function stage kept, in order.
    pub kept_chunks: Vec<usize>,
    /// LM tokens of the code.
    pub origin_tokens: usize,
    /// LM tokens of the compressed code.
    pub compressed_tokens: usize,
}

/// The LM and where its log-probabilities are computed.
#[derive(Clone, Copy)]
struct Scorer<'a> {
    lm: &'a CausalLm,
    worker: &'a dyn Worker,
}

impl Scorer<'_> {
    /// LM tokens of `text` with the BOS token (the reference's `get_token_length`).
    fn tokens(&self, text: &str) -> Result<usize, Error> {
        Ok(with_bos(self.lm, text)?.len())
    }

    /// `exp` of the mean loss of `text` from loss index `from` on (the reference's `get_ppl`
    /// with `condition_pos_id`); infinite when nothing is left to score.
    async fn perplexity(&self, text: &str, from: usize) -> Result<f64, Error> {
        let ids = with_bos(self.lm, text)?;
        if ids.len() < 2 {
            return Ok(f64::INFINITY);
        }
        let (losses, _) = token_losses(self.lm, self.worker, &ids, None, ids.len()).await?;
        let tail = losses.get(from..).unwrap_or(&[]);
        if tail.is_empty() {
            return Ok(f64::INFINITY);
        }
        let mean = tail.iter().map(|&l| f64::from(l)).sum::<f64>() / tail.len() as f64;
        Ok(mean.exp())
    }

    /// How much `context` lowers the query's perplexity, with the reference's loss offset
    /// (`offset` subtracted from the context's token length).
    async fn gain(
        &self,
        query_ppl: f64,
        context: &str,
        query: &str,
        offset: usize,
    ) -> Result<f64, Error> {
        let prefix = format!("{context}\n\n");
        let from = self.tokens(&prefix)?.saturating_sub(offset);
        let with = self.perplexity(&format!("{prefix}{query}"), from).await?;
        Ok(query_ppl - with)
    }

    /// Per-line perplexities (log2) of `lines`, each given the lines before it, from one pass
    /// (a line's tokens are those that start inside it, after the BOS token).
    async fn line_perplexities(&self, lines: &[String]) -> Result<Vec<f64>, Error> {
        let text = lines.join("\n");
        let tokens = self.lm.tokenize_with_starts(&text)?;
        let mut ids = vec![self.lm.config().bos_token_id];
        ids.extend(tokens.iter().map(|&(id, _)| id));
        if ids.len() < 2 {
            return Ok(vec![0.0; lines.len()]);
        }
        let (losses, _) = token_losses(self.lm, self.worker, &ids, None, ids.len()).await?;
        let mut starts = Vec::with_capacity(lines.len() + 1);
        let mut line_start = 0;
        for line in lines {
            starts.push(1 + tokens.partition_point(|&(_, from)| from < line_start));
            line_start += line.len() + 1;
        }
        starts.push(ids.len());
        Ok(lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                if line.is_empty() {
                    return 0.0;
                }
                let (from, to) = (starts[i], starts[i + 1].max(starts[i]));
                let scored = losses.get(from - 1..to - 1).unwrap_or(&[]);
                if scored.is_empty() {
                    return f64::INFINITY;
                }
                let mean = scored.iter().map(|&l| f64::from(l)).sum::<f64>() / scored.len() as f64;
                mean / std::f64::consts::LN_2
            })
            .collect())
    }
}

/// The reference's `EntropyChunking.chunk_text_adaptive` ("std", k = 0.2): lines (a blank line
/// from a double newline becomes `" "`), cut after every line whose perplexity spikes over
/// its neighbours by the adaptive threshold.
async fn entropy_blocks(scorer: Scorer<'_>, code: &str) -> Result<Vec<String>, Error> {
    let lines = entropy_lines(code);
    let ppls = scorer.line_perplexities(&lines).await?;
    let threshold = spike_threshold(&ppls, 0.2);
    let mut cuts = vec![0];
    for i in 1..ppls.len().saturating_sub(1) {
        let current = ppls[i];
        if !current.is_finite() {
            continue;
        }
        let left = if ppls[i - 1].is_finite() {
            ppls[i - 1]
        } else {
            current
        };
        let right = if ppls[i + 1].is_finite() {
            ppls[i + 1]
        } else {
            current
        };
        let (left_diff, right_diff) = (current - left, current - right);
        if (left_diff >= threshold || right_diff >= threshold)
            && left_diff >= 0.0
            && right_diff >= 0.0
        {
            cuts.push(i + 1);
        }
    }
    cuts.push(lines.len());
    Ok(cuts
        .windows(2)
        .map(|w| lines[w[0]..w[1]].join("\n"))
        .collect())
}

/// The lines the block stage reads: a blank line from a double newline becomes `" "`.
fn entropy_lines(code: &str) -> Vec<String> {
    code.replace("\n\n", "\n\u{0}\n")
        .split('\n')
        .map(|line| {
            if line == "\u{0}" {
                " ".to_string()
            } else {
                line.to_string()
            }
        })
        .collect()
}

/// Mean plus `k` population standard deviations of the finite positive values; 0.5 with
/// fewer than 3 of them.
fn spike_threshold(values: &[f64], k: f64) -> f64 {
    let valid: Vec<f64> = values
        .iter()
        .copied()
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    if valid.len() < 3 {
        return 0.5;
    }
    let mean = valid.iter().sum::<f64>() / valid.len() as f64;
    let variance = valid.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / valid.len() as f64;
    mean + k * variance.sqrt()
}

/// The reference's knapsack: the preserved blocks, then the items that maximize the summed
/// value within `capacity` (exact for at most 100 items and 2000 tokens, else greedy by value
/// per token). Items are `(index, weight, value)`, sorted by value per token.
fn knapsack(mut items: Vec<(usize, usize, f64)>, capacity: usize) -> Vec<usize> {
    items.sort_by(|a, b| {
        let ratio = |x: &(usize, usize, f64)| x.2 / x.1.max(1) as f64;
        ratio(b).total_cmp(&ratio(a))
    });
    if items.is_empty() || capacity == 0 {
        return Vec::new();
    }
    if items.len() > 100 || capacity > 2000 {
        let mut used = 0;
        return items
            .into_iter()
            .filter(|&(_, weight, _)| {
                let fits = used + weight <= capacity;
                used += if fits { weight } else { 0 };
                fits
            })
            .map(|(index, _, _)| index)
            .collect();
    }
    let width = capacity + 1;
    let mut table = vec![0f64; (items.len() + 1) * width];
    for (i, &(_, weight, value)) in items.iter().enumerate() {
        for w in 0..width {
            let skip = table[i * width + w];
            let take = (weight <= w).then(|| table[i * width + w - weight] + value);
            table[(i + 1) * width + w] = take.map_or(skip, |t| t.max(skip));
        }
    }
    let mut chosen = Vec::new();
    let mut w = capacity;
    for i in (1..=items.len()).rev() {
        if table[i * width + w] != table[(i - 1) * width + w] {
            chosen.push(items[i - 1].0);
            w -= items[i - 1].1;
        }
    }
    chosen
}

/// Whether a block's first non-empty line is a signature, a comment or a `return`.
fn preserved(block: &str, language: Language) -> bool {
    let comment = language.comment();
    block
        .split('\n')
        .find(|l| !l.trim().is_empty())
        .is_some_and(|line| {
            ["def ", "class ", "function ", "fn ", "func "]
                .iter()
                .any(|k| line.contains(k))
                || line.trim().starts_with(comment)
                || line.contains("return ")
        })
}

/// One function compressed to `target` LM tokens by the block knapsack (whole when it has
/// fewer than `min_blocks` non-empty blocks).
async fn compress_function(
    scorer: Scorer<'_>,
    chunk: &str,
    query: &str,
    query_ppl: f64,
    target: usize,
    language: Language,
    min_blocks: usize,
) -> Result<String, Error> {
    let blocks = entropy_blocks(scorer, chunk).await?;
    let non_empty = blocks.iter().filter(|b| !b.trim().is_empty()).count();
    if non_empty < min_blocks {
        return Ok(chunk.to_string());
    }
    let mut weights = Vec::with_capacity(blocks.len());
    let mut keep = Vec::new();
    let mut items = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let weight = scorer.tokens(block)?;
        weights.push(weight);
        if preserved(block, language) {
            keep.push(i);
            continue;
        }
        let value = if block.trim().is_empty() || query.trim().is_empty() || !query_ppl.is_finite()
        {
            0.0
        } else {
            let gain = scorer.gain(query_ppl, block, query, 1).await?;
            if gain.is_finite() { gain } else { 0.0 }
        };
        items.push((i, weight, value));
    }
    let kept_tokens: usize = keep.iter().map(|&i| weights[i]).sum();
    if target > kept_tokens {
        keep.extend(knapsack(items, target - kept_tokens));
    }
    keep.sort_unstable();
    let indent: String = chunk
        .split('\n')
        .find(|l| !l.trim().is_empty())
        .map(|l| l.chars().take_while(|c| c.is_whitespace()).collect())
        .unwrap_or_default();
    let marker = format!("{indent}{} ", language.omission());
    let mut out: Vec<&str> = Vec::new();
    for (n, &i) in keep.iter().enumerate() {
        if n > 0 && i > keep[n - 1] + 1 && out.last() != Some(&marker.as_str()) {
            out.push(&marker);
        }
        out.push(&blocks[i]);
    }
    if keep.last().is_some_and(|&last| last + 1 < blocks.len())
        && out.last() != Some(&marker.as_str())
    {
        out.push(&marker);
    }
    Ok(out.join("\n\n"))
}

/// Per-function keep ratios of the block stage: functions under `min_lines` lines keep all;
/// the rest share the remaining line budget, biased by their min-max normalized importance.
fn function_ratios(
    lines: &[usize],
    scores: &[f64],
    target_lines: usize,
    min_lines: usize,
    beta: f64,
) -> Vec<f64> {
    let small: usize = lines.iter().filter(|&&n| n < min_lines).sum();
    let large: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i] >= min_lines)
        .collect();
    let large_lines: usize = large.iter().map(|&i| lines[i]).sum();
    let target_large = target_lines.saturating_sub(small);
    let mut ratios = vec![1.0; lines.len()];
    if large.is_empty() || large_lines == 0 {
        return ratios;
    }
    let global = if target_large == 0 {
        0.0
    } else if target_large >= large_lines {
        1.0
    } else {
        target_large as f64 / large_lines as f64
    };
    let valid: Vec<f64> = large
        .iter()
        .map(|&i| scores[i])
        .filter(|s| s.is_finite())
        .collect();
    let (low, high) = valid
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &s| {
            (l.min(s), h.max(s))
        });
    if global == 0.0 || global == 1.0 || valid.is_empty() || low == high {
        for &i in &large {
            ratios[i] = global;
        }
        return ratios;
    }
    let initial: Vec<f64> = large
        .iter()
        .map(|&i| {
            let norm = if scores[i].is_finite() {
                (scores[i] - low) / (high - low)
            } else {
                0.0
            };
            (global * (1.0 + beta * (norm - 0.5) * 2.0)).clamp(0.0, 1.0)
        })
        .collect();
    let kept: f64 = large
        .iter()
        .zip(&initial)
        .map(|(&i, r)| r * lines[i] as f64)
        .sum();
    let adjust = if kept > 0.0 && (kept - target_large as f64).abs() > 1.0 {
        target_large as f64 / kept
    } else {
        1.0
    };
    for (&i, r) in large.iter().zip(initial) {
        ratios[i] = (r * adjust).clamp(0.0, 1.0);
    }
    ratios
}

/// Collapses runs of omission-marker lines (blank lines between them do not break a run).
fn collapse_markers(code: &str, language: Language) -> String {
    let marker = language.omission();
    let mut last_was_marker = false;
    code.split('\n')
        .filter(|line| {
            let t = line.trim();
            if t.is_empty() {
                return true;
            }
            let is_marker = t == marker;
            let keep = !(is_marker && last_was_marker);
            last_was_marker = is_marker;
            keep
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// An upper bound of the LM tokens [`compress_code`] scores: the query alone, each chunk with
/// the query, and (unless `rank_only`) each chunk's line pass plus each of its lines as a block
/// with the query.
fn scored_bound(chunks: &[String], lengths: &[usize], query_tokens: usize, rank_only: bool) -> u64 {
    let query = query_tokens as u64 + 1;
    let mut bound = query;
    for (chunk, &length) in chunks.iter().zip(lengths) {
        bound += length as u64 + query;
        if !rank_only {
            bound += 2 * length as u64 + entropy_lines(chunk).len() as u64 * query;
        }
    }
    bound
}

/// The reference's `compress_code_file`: keeps the functions of `code` that most lower the
/// perplexity of `query`, then the blocks of each that do; log-probabilities are computed on
/// `worker`.
pub async fn compress_code(
    lm: &CausalLm,
    worker: &dyn Worker,
    code: &str,
    query: &str,
    instruction: &str,
    language: Language,
    options: &CodeOptions,
) -> Result<CodeCompressed, Error> {
    if !(options.rate > 0.0 && options.rate <= 1.0) {
        return Err(Error::invalid(format!(
            "rate must be in (0, 1], not {}",
            options.rate
        )));
    }
    if let Some(ratio) = options.fine_ratio.filter(|r| !(*r > 0.0 && *r <= 1.0)) {
        return Err(Error::invalid(format!(
            "fine_ratio must be in (0, 1], not {ratio}"
        )));
    }
    let scorer = Scorer { lm, worker };
    let chunks = split_functions(code, language);
    let lengths = chunks
        .iter()
        .map(|c| scorer.tokens(c))
        .collect::<Result<Vec<_>, _>>()?;
    let total: usize = lengths.iter().sum();
    let target = if options.target_token > 0.0 {
        options.target_token
    } else {
        (total as f64 * options.rate).floor()
    };
    let query_tokens = scorer.tokens(query)?;
    let scored = scored_bound(&chunks, &lengths, query_tokens, options.rank_only);
    if scored > options.max_scored_tokens as u64 {
        return Err(Error::new(
            terse_core::ErrorKind::TooLarge,
            format!(
                "LongCodeZip may score up to {scored} LM tokens for this code and question, over \
                 the bound of {}: send a smaller file or a shorter question, or rank_only",
                options.max_scored_tokens
            ),
        ));
    }
    let query_ppl = if query.trim().is_empty() {
        f64::INFINITY
    } else {
        scorer.perplexity(query, 0).await?
    };
    let mut scores = vec![0.0; chunks.len()];
    let mut kept: Vec<usize> = (0..chunks.len()).collect();
    if total as f64 > target {
        let mut ranked: Vec<usize> = (0..chunks.len()).collect();
        if query_ppl.is_finite() {
            for (i, chunk) in chunks.iter().enumerate() {
                scores[i] = scorer.gain(query_ppl, chunk, query, 0).await?;
            }
            ranked.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        }
        let mut budget = target + options.budget_extra;
        kept.clear();
        for i in ranked {
            budget -= lengths[i] as f64;
            kept.push(i);
            if budget < 0.0 {
                break;
            }
        }
        kept.sort_unstable();
    }
    let mut ratios = vec![1.0; chunks.len()];
    if !options.rank_only {
        let lines: Vec<usize> = kept
            .iter()
            .map(|&i| chunks[i].split('\n').count())
            .collect();
        let kept_scores: Vec<f64> = kept.iter().map(|&i| scores[i]).collect();
        let fine = options.fine_ratio.unwrap_or(options.rate);
        let target_lines = (lines.iter().sum::<usize>() as f64 * fine) as usize;
        let shares = function_ratios(
            &lines,
            &kept_scores,
            target_lines,
            options.min_lines_for_fine_grained,
            options.importance_beta,
        );
        for (&i, share) in kept.iter().zip(shares) {
            ratios[i] = share;
        }
    }
    let mut parts = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.iter().enumerate() {
        if kept.binary_search(&i).is_err() {
            parts.push(format!("{} ", language.omission()));
        } else if options.rank_only || ratios[i] >= 0.999 {
            // Kept whole: no block stage, so no pass of the LM over it.
            parts.push(chunk.clone());
        } else {
            parts.push(
                compress_function(
                    scorer,
                    chunk,
                    query,
                    query_ppl,
                    (lengths[i] as f64 * ratios[i]) as usize,
                    language,
                    options.min_lines_for_fine_grained,
                )
                .await?,
            );
        }
    }
    // Chunks were cut at line breaks, so joining them with one gives the code back.
    let compressed_code = collapse_markers(&parts.join("\n"), language);
    let prompt: Vec<&str> = [instruction.trim(), compressed_code.as_str(), query.trim()]
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .collect();
    Ok(CodeCompressed {
        compressed_tokens: scorer.tokens(&compressed_code)?,
        compressed_prompt: prompt.join("\n\n"),
        compressed_code,
        language,
        chunks: chunks.len(),
        kept_chunks: kept,
        origin_tokens: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTHON: &str = "import os\n\nclass Store:\n    def get(self, key):\n        return self.items[key]\n\n    async def put(self, key, value):\n        self.items[key] = value\n\ndef helper():\n    pass\n";
    const RUST: &str = "use std::fmt;\n\npub struct Point {\n    x: i32,\n}\n\nimpl Point {\n    pub fn norm(&self) -> i32 {\n        self.x.abs()\n    }\n}\n\npub(crate) async fn run() {}\n";

    #[test]
    fn code_splits_at_items_and_nothing_is_lost() {
        let chunks = split_functions(PYTHON, Language::Python);
        assert_eq!(chunks.len(), 5, "{chunks:?}");
        assert!(chunks[1].starts_with("class Store"));
        assert!(chunks[3].trim_start().starts_with("async def put"));
        assert_eq!(chunks.join("\n"), PYTHON);
        let chunks = split_functions(RUST, Language::Rust);
        let firsts: Vec<&str> = chunks
            .iter()
            .map(|c| c.lines().next().unwrap().trim())
            .collect();
        assert_eq!(
            firsts,
            [
                "use std::fmt;",
                "pub struct Point {",
                "impl Point {",
                "pub fn norm(&self) -> i32 {",
                "pub(crate) async fn run() {}"
            ]
        );
        assert_eq!(chunks.join("\n"), RUST);
    }

    #[test]
    fn the_language_comes_from_the_hint_or_the_code() {
        assert_eq!(Language::from_hint("", PYTHON).unwrap(), Language::Python);
        assert_eq!(Language::from_hint("", RUST).unwrap(), Language::Rust);
        assert_eq!(Language::from_hint(" RS ", PYTHON).unwrap(), Language::Rust);
        assert_eq!(
            Language::from_hint("python", RUST).unwrap(),
            Language::Python
        );
        let refused = Language::from_hint("cobol", PYTHON).unwrap_err();
        assert_eq!(refused.kind, terse_core::ErrorKind::InvalidInput);
    }

    #[test]
    fn the_knapsack_is_exact_where_the_reference_solves_it_exactly() {
        let mut state = 17u64;
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        for _ in 0..200 {
            let count = 1 + next(10) as usize;
            let items: Vec<(usize, usize, f64)> = (0..count)
                .map(|i| (i, 1 + next(30) as usize, next(200) as f64 / 10.0 - 5.0))
                .collect();
            let capacity = next(80) as usize;
            let chosen = knapsack(items.clone(), capacity);
            let weight: usize = chosen.iter().map(|&i| items[i].1).sum();
            let value: f64 = chosen.iter().map(|&i| items[i].2).sum();
            assert!(weight <= capacity);
            let best = (0..1u32 << count)
                .filter_map(|mask| {
                    let picked = (0..count).filter(|i| mask >> i & 1 == 1);
                    let (w, v) =
                        picked.fold((0, 0.0), |(w, v), i| (w + items[i].1, v + items[i].2));
                    (w <= capacity).then_some(v)
                })
                .fold(f64::NEG_INFINITY, f64::max);
            assert!((value - best).abs() < 1e-9, "{value} vs {best}");
        }
    }

    #[test]
    fn function_ratios_meet_the_line_target_and_favour_important_functions() {
        let lines = [3, 40, 40, 20];
        let ratios = function_ratios(&lines, &[0.0, 1.0, 3.0, 2.0], 50, 5, 0.5);
        assert_eq!(ratios[0], 1.0, "small functions stay whole");
        let kept: f64 = lines
            .iter()
            .zip(&ratios)
            .skip(1)
            .map(|(&n, r)| n as f64 * r)
            .sum();
        assert!((kept - 47.0).abs() <= 1.0, "{kept}");
        assert!(ratios[2] > ratios[3] && ratios[3] > ratios[1], "{ratios:?}");
        assert_eq!(function_ratios(&lines, &[0.0; 4], 500, 5, 0.5), [1.0; 4]);
    }

    #[test]
    fn the_scoring_bound_counts_every_chunk_and_every_block_with_the_query() {
        let chunks = ["a\nb".to_string(), "c".to_string()];
        assert_eq!(scored_bound(&chunks, &[3, 2], 9, true), 10 + 13 + 12);
        assert_eq!(
            scored_bound(&chunks, &[3, 2], 9, false),
            35 + (6 + 2 * 10) + (4 + 10)
        );
    }

    #[test]
    fn runs_of_omission_markers_collapse_to_one() {
        let code = "a\n# ... \n\n# ... \nb\n# ... ";
        assert_eq!(
            collapse_markers(code, Language::Python),
            "a\n# ... \n\nb\n# ... "
        );
        assert!(preserved("    def f(x):\n        y", Language::Python));
        assert!(preserved("\n    // why\n    x", Language::Rust));
        assert!(!preserved("    x = 1\n    return x", Language::Python));
        assert_eq!(spike_threshold(&[1.0, f64::INFINITY], 0.2), 0.5);
        assert!((spike_threshold(&[1.0, 2.0, 3.0], 0.0) - 2.0).abs() < 1e-12);
    }
}
