//! LLMLingua-1 (Jiang et al., EMNLP 2023) as the Python package `llmlingua` 0.2.2 runs it with
//! `rank_method="llmlingua"` and its defaults: a context-level budget (contexts ranked by their
//! perplexity, kept in their original order until the token budget plus 100 is spent), then
//! iterative token-level compression: the text is scored window by window (`iterative_size`
//! tokens) through the KV cache, and in each window the tokens whose loss is under the window's
//! quantile are dropped before the next window is scored on the compressed prefix.
//!
//! The port keeps the reference's arithmetic where it decides which tokens survive, quirks
//! included, so that it keeps the same tokens (tests/fixtures/llmlingua1.json):
//! - token `i` is kept by the loss of token `i + 1` (the loss vector is one shorter than the
//!   tokens, and its first value closes it);
//! - a window start before the beginning of the text counts from the end, as a negative Python
//!   slice does: a text shorter than one window is compressed only in its last
//!   `len - (iterative_size - len)` tokens.

use terse_causal_lm::CausalLm;
use terse_core::{Error, KvCache};
use terse_text::TokenCounter;

/// Tokens the reference keeps at the front of a cache it trims (`cache_bos_num`).
const CACHE_BOS_TOKENS: usize = 10;
/// What the reference appends to a question to rank contexts by it.
pub const RANK_SUFFIX: &str = " We can get the answer to this question in the given documents.";

/// Options of [`compress_prompt`] (the reference's names).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Fraction of the prompt's LM tokens to keep, (0, 1]; ignored when `target_token` is set.
    pub rate: f64,
    /// Token budget of the compressed contexts (LM tokens); `None`: from `rate`.
    pub target_token: Option<f64>,
    /// Tokens scored per iteration.
    pub iterative_size: usize,
    /// Drop whole contexts first when there are several (the budget controller).
    pub use_context_level_filter: bool,
    /// Then drop tokens.
    pub use_token_level_filter: bool,
    /// Append the question after the compressed contexts.
    pub concate_question: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rate: 0.5,
            target_token: None,
            iterative_size: 200,
            use_context_level_filter: true,
            use_token_level_filter: true,
            concate_question: true,
        }
    }
}

/// What [`compress_prompt`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Compressed {
    /// Instruction, compressed contexts and question, joined by blank lines.
    pub compressed_prompt: String,
    /// cl100k tokens of the original prompt.
    pub origin_tokens: usize,
    /// cl100k tokens of the compressed prompt.
    pub compressed_tokens: usize,
    /// Indexes of the contexts the budget kept, in order.
    pub kept_contexts: Vec<usize>,
}

/// Per-token losses `-log p(token[i + 1] | token[..=i])` of `ids[past..end]` after `cache`
/// (which holds `ids[..past]`), and the cache extended to `end`.
async fn token_losses(
    lm: &CausalLm,
    ids: &[u32],
    cache: Option<&KvCache>,
    end: usize,
) -> Result<(Vec<f32>, KvCache), Error> {
    let past = cache.map_or(0, |c| c.shape().tokens);
    let end = end.min(past + lm.config().context_length);
    if end <= past {
        return Err(Error::internal(format!(
            "nothing to score: the cache holds {past} tokens, the window ends at {end}"
        )));
    }
    let run = lm.forward(&ids[past..end], cache).await?;
    let losses = (0..end - past - 1)
        .map(|i| -run.log_prob(i, ids[past + i + 1]))
        .collect();
    Ok((losses, run.cache))
}

/// Python's bound `i` of a slice (`list[i:]` or `list[:i]`) over `len` items: negative counts
/// from the end, and it is clamped into `0..=len`.
fn python_index(i: i64, len: usize) -> usize {
    if i < 0 {
        (len as i64 + i).max(0) as usize
    } else {
        (i as usize).min(len)
    }
}

/// [`python_index`] of a slice's stop.
fn slice_stop(stop: i64, len: usize) -> usize {
    python_index(stop, len)
}

/// The loss at the reference's quantile: descending order, index `int(len * ratio) - 1`
/// clamped into the vector; `-inf` at ratio 1 (keep everything).
fn threshold(losses: &[f32], ratio: f64) -> f32 {
    if ratio == 1.0 {
        return f32::NEG_INFINITY;
    }
    let mut sorted: Vec<f32> = losses.iter().copied().filter(|&l| l != 10000.0).collect();
    if sorted.is_empty() {
        return f32::NEG_INFINITY;
    }
    sorted.sort_by(|a, b| b.total_cmp(a));
    let target = ((sorted.len() as f64 * ratio) as i64 - 1).clamp(0, sorted.len() as i64 - 1);
    sorted[target as usize]
}

/// One window's drop: which of `ids` survive. Returns the kept ids, the kept losses and the new
/// window end (the reference's `get_compressed_input`).
fn drop_tokens(
    losses: &[f32],
    ids: &[u32],
    end: i64,
    window: i64,
    threshold: f32,
) -> (Vec<u32>, Vec<f32>, i64) {
    let mut keep: Vec<bool> = losses.iter().map(|&l| l > threshold).collect();
    keep.push(losses.first().is_some_and(|&l| l > 0.0));
    let len = keep.len();
    keep[python_index(end, len)..].fill(true);
    let upto = slice_stop(end - window, len);
    keep[..upto].fill(true);
    let kept_losses = losses
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(l, _)| *l)
        .collect();
    keep.resize(ids.len(), true);
    let removed_before_end = keep[..slice_stop(end, keep.len())]
        .iter()
        .filter(|k| !**k)
        .count() as i64;
    let kept_ids = ids
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(i, _)| *i)
        .collect();
    (kept_ids, kept_losses, end - removed_before_end)
}

/// The reference's `get_dynamic_compression_ratio`: per iteration, the (tokens, keep ratio)
/// of the contexts that fall in its window.
fn window_ratios(
    lm: &CausalLm,
    contexts: &[String],
    target_token: f64,
    window: usize,
    dynamic_ratio: &[f64],
) -> Result<Vec<Vec<(i64, f64)>>, Error> {
    let lengths = contexts
        .iter()
        .map(|c| Ok(lm.tokenize(c)?.len() as i64 + 2))
        .collect::<Result<Vec<i64>, Error>>()?;
    let tau = target_token / (lengths.iter().sum::<i64>() + 1) as f64;
    let ratio = |delta: f64| (tau + delta).clamp(0.0, 1.0);
    let window = window as i64;
    let (mut out, mut last, mut pending) = (Vec::new(), 1i64, Vec::new());
    for (length, &delta) in lengths.iter().zip(dynamic_ratio) {
        if last + length >= window {
            pending.push((window - last, ratio(delta)));
            out.push(std::mem::take(&mut pending));
            last = last + length - window;
            if last > window {
                let k = last / window;
                out.extend((0..k).map(|_| vec![(window, ratio(delta))]));
                last -= k * window;
            }
            if last != 0 {
                pending = vec![(last, ratio(delta))];
            }
        } else {
            last += length;
            pending.push((*length, ratio(delta)));
        }
    }
    if !pending.is_empty() {
        out.push(pending);
    }
    Ok(out)
}

/// The reference's `iterative_compress_prompt` (no question condition, no kept separators):
/// the contexts joined by blank lines, compressed window by window; returns the kept ids.
pub async fn compress_tokens(
    lm: &CausalLm,
    contexts: &[String],
    target_token: f64,
    window: usize,
    dynamic_ratio: &[f64],
) -> Result<Vec<u32>, Error> {
    let ratios = window_ratios(lm, contexts, target_token, window, dynamic_ratio)?;
    let mut ids = lm.tokenize(&contexts.join("\n\n"))?;
    let max_positions = lm.config().context_length as i64;
    let window_i = window as i64;
    let mut end = window_i.min(ids.len() as i64);
    let (mut cache, mut past_losses, mut ready_end): (Option<KvCache>, Option<Vec<f32>>, i64) =
        (None, None, 0);
    let mut popped: Vec<u32> = Vec::new();
    let mut iteration = 0usize;
    while end <= ids.len() as i64 {
        if end > max_positions
            && let Some(full) = cache.take()
        {
            // The reference's KV-cache compression: the oldest tokens after the first ten
            // leave the cache and the window.
            let e = (end - max_positions) as usize;
            let s = CACHE_BOS_TOKENS.min(max_positions as usize);
            popped.extend(ids.drain(..e));
            cache = Some(full.without_tokens(s, e)?);
            end -= e as i64;
            ready_end -= e as i64;
        }
        let score_end = if iteration > 0 {
            end as usize
        } else {
            ids.len()
        };
        let (losses, extended) = token_losses(lm, &ids, cache.as_ref(), score_end).await?;
        if losses.is_empty() {
            break;
        }
        let losses = match past_losses.take() {
            Some(mut past) => {
                let want = (end - 1).max(0) as usize;
                if want > past.len() {
                    let pad = (want - past.len()).min(losses.len());
                    past.extend(std::iter::repeat_n(0.0, pad));
                }
                let from = python_index(ready_end, past.len());
                let to = (from + losses.len()).min(past.len());
                past[from..to].copy_from_slice(&losses[..to - from]);
                past
            }
            None => losses,
        };
        cache = if iteration > 0 {
            let tokens = extended.shape().tokens;
            Some(extended.truncated(slice_stop(end - window_i, tokens))?)
        } else {
            None
        };
        ready_end = end - window_i;
        let mut current = losses;
        for &(delta_end, ratio) in ratios.get(iteration).map_or(&[][..], Vec::as_slice) {
            let cut = threshold(&current, ratio);
            let (kept, kept_losses, new_end) =
                drop_tokens(&current, &ids, end - window_i + delta_end, delta_end, cut);
            ids = kept;
            current = kept_losses;
            end = new_end + window_i;
        }
        past_losses = Some(current);
        iteration += 1;
    }
    popped.extend(ids);
    Ok(popped)
}

/// What transformers' `decode` does after detokenizing (`clean_up_tokenization_spaces`, on for
/// this tokenizer): no space before punctuation and English contractions.
fn clean_up_spaces(text: &str) -> String {
    [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ]
    .iter()
    .fold(text.to_string(), |text, (from, to)| text.replace(from, to))
}

/// The reference's `compress_prompt` with `rank_method="llmlingua"`.
pub async fn compress_prompt(
    lm: &CausalLm,
    contexts: &[String],
    instruction: &str,
    question: &str,
    options: &Options,
) -> Result<Compressed, Error> {
    if !(options.rate > 0.0 && options.rate <= 1.0) {
        return Err(Error::invalid(format!(
            "rate {} is outside (0, 1]",
            options.rate
        )));
    }
    if options.iterative_size < 2 {
        return Err(Error::invalid("iterative_size must be at least 2"));
    }
    let blank = [" ".to_string()];
    let contexts = if contexts.is_empty() {
        &blank[..]
    } else {
        contexts
    };
    let counter = TokenCounter::default();
    let mut whole = vec![instruction.to_string()];
    whole.extend(contexts.iter().cloned());
    whole.push(question.to_string());
    let origin_tokens = counter.count(whole.join("\n\n").trim());
    // The reference counts with the tokenizer's special tokens: transformers puts the BOS
    // token (`<|im_start|>` for this GGUF) in front of every text.
    let length = |text: &str| -> Result<f64, Error> { Ok(lm.tokenize(text)?.len() as f64 + 1.0) };
    let context_lengths = contexts
        .iter()
        .map(|c| length(c))
        .collect::<Result<Vec<f64>, Error>>()?;
    let (instruction_length, question_length) = (length(instruction)?, length(question)?);
    let target_token = options.target_token.unwrap_or_else(|| {
        (instruction_length + question_length + context_lengths.iter().sum::<f64>()) * options.rate
            - instruction_length
            - if options.concate_question {
                question_length
            } else {
                0.0
            }
    });

    let mut kept_contexts: Vec<usize> = (0..contexts.len()).collect();
    if contexts.len() > 1 && options.use_context_level_filter {
        // Contexts by perplexity, highest first; kept until the budget plus 100 is spent.
        let mut ranked = Vec::with_capacity(contexts.len());
        for (index, context) in contexts.iter().enumerate() {
            let mut ids = vec![lm.config().bos_token_id];
            ids.extend(lm.tokenize(context)?);
            let perplexity = if ids.len() < 2 {
                f32::NAN
            } else {
                let (losses, _) = token_losses(lm, &ids, None, ids.len()).await?;
                losses.iter().sum::<f32>() / losses.len() as f32
            };
            ranked.push((index, perplexity));
        }
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut budget = if target_token < 0.0 {
            100.0
        } else {
            target_token
        } + 100.0;
        let mut used = Vec::new();
        for (index, _) in ranked {
            budget -= context_lengths[index];
            used.push(index);
            if budget < 0.0 {
                break;
            }
        }
        used.sort_unstable();
        kept_contexts = used;
    }
    let kept: Vec<String> = kept_contexts.iter().map(|&i| contexts[i].clone()).collect();
    let compressed = if options.use_token_level_filter {
        let ids = compress_tokens(
            lm,
            &kept,
            target_token,
            options.iterative_size,
            &vec![0.0; kept.len()],
        )
        .await?;
        clean_up_spaces(&lm.detokenize(&ids)?)
    } else {
        kept.join("\n\n")
    };
    let mut parts = Vec::new();
    if !instruction.is_empty() {
        parts.push(instruction.to_string());
    }
    if !compressed.trim().is_empty() {
        parts.push(compressed);
    }
    if !question.is_empty() && options.concate_question {
        parts.push(question.to_string());
    }
    let compressed_prompt = parts.join("\n\n");
    Ok(Compressed {
        compressed_tokens: counter.count(&compressed_prompt),
        compressed_prompt,
        origin_tokens,
        kept_contexts,
    })
}
