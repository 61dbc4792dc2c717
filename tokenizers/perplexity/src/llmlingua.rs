//! LLMLingua-1 (Jiang et al., EMNLP 2023) and LongLLMLingua (Jiang et al., ACL 2024) as the
//! Python package `llmlingua` 0.2.2 runs them (`PromptCompressor.compress_prompt`):
//! 1. **Context budget** (several contexts): contexts are ranked by perplexity (LLMLingua-1:
//!    highest first) or by the perplexity of the question given each context (LongLLMLingua:
//!    lowest first), and kept until the token budget plus 100 is spent; LongLLMLingua can keep
//!    them in rank order and give the better-ranked ones a higher keep ratio.
//! 2. **Token-level compression**: the text is scored window by window (`iterative_size`
//!    tokens) through the KV cache, and in each window the tokens under the window's loss
//!    quantile are dropped before the next window is scored on the compressed prefix.
//!    LongLLMLingua puts the question in front and drops by the contrastive perplexity (a
//!    token's loss without the question minus its loss with it).
//!
//! The port keeps the reference's arithmetic where it decides which tokens survive, quirks
//! included, so that it keeps the same tokens (tests/fixtures/llmlingua.json):
//! - token `i` is kept by the loss of token `i + 1` (the loss vector is one shorter than the
//!   tokens, and its first value closes it);
//! - a window start before the beginning of the text counts from the end, as a negative Python
//!   slice does: a text shorter than one window is compressed only in its last
//!   `len - (iterative_size - len)` tokens;
//! - lengths are counted with the BOS token transformers puts in front (`<|im_start|>` here).

use terse_causal_lm::CausalLm;
use terse_core::{Error, KvCache, Worker, on_worker};
use terse_text::TokenCounter;

/// Tokens the reference keeps at the front of a cache it trims (`cache_bos_num`).
const CACHE_BOS_TOKENS: usize = 10;
/// What the reference appends to a question to rank contexts by it.
pub const RANK_SUFFIX: &str = " We can get the answer to this question in the given documents.";

/// How contexts are ranked for the budget (the reference's `rank_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rank {
    /// LLMLingua-1: by each context's own perplexity (`"llmlingua"`).
    Perplexity,
    /// LongLLMLingua: by the perplexity of the question given the context
    /// (`"longllmlingua"`); needs a question.
    QuestionGivenContext,
}

/// Where the question goes when a context is scored (the reference's `condition_in_question`
/// without its `_condition` suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// The context alone.
    None,
    /// The question before the context.
    Before,
    /// The question after the context.
    After,
}

/// The order of the kept contexts (the reference's `reorder_context`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reorder {
    /// Their original order.
    Original,
    /// Best-ranked first.
    Sort,
    /// Odd ranks first, then even ranks backwards (the best at both ends).
    TwoStage,
}

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
    /// How contexts are ranked.
    pub rank: Rank,
    /// Where the question goes when contexts are ranked (LongLLMLingua: `None` means `After`).
    pub condition_in_question: Condition,
    /// Token-level compression with the question in front (the `_condition` suffix).
    pub condition_on_question: bool,
    /// Drop tokens by contrastive perplexity (implies `condition_on_question`).
    pub condition_compare: bool,
    /// Order of the kept contexts.
    pub reorder_context: Reorder,
    /// Spread of the keep ratios of the kept contexts by rank (0: the same for all).
    pub dynamic_context_compression_ratio: f64,
    /// Tokens added to the budget of the context filter (the reference's `"+100"`).
    pub context_budget_extra: f64,
}

impl Default for Options {
    /// The reference's defaults (LLMLingua-1).
    fn default() -> Self {
        Self {
            rate: 0.5,
            target_token: None,
            iterative_size: 200,
            use_context_level_filter: true,
            use_token_level_filter: true,
            concate_question: true,
            rank: Rank::Perplexity,
            condition_in_question: Condition::None,
            condition_on_question: false,
            condition_compare: false,
            reorder_context: Reorder::Original,
            dynamic_context_compression_ratio: 0.0,
            context_budget_extra: 100.0,
        }
    }
}

impl Options {
    /// LongLLMLingua as its README calls it: question-aware ranking after the context, kept
    /// contexts sorted, keep ratios spread by 0.3, contrastive token-level compression.
    pub fn longllmlingua(rate: f64) -> Self {
        Self {
            rate,
            rank: Rank::QuestionGivenContext,
            condition_in_question: Condition::After,
            condition_on_question: true,
            condition_compare: true,
            reorder_context: Reorder::Sort,
            dynamic_context_compression_ratio: 0.3,
            ..Self::default()
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

/// Most tokens one forward pass runs: longer stretches go through the KV cache in pieces, so
/// a pass never holds more than this many positions of logits (49,152 floats each) and
/// attention scores.
const SCORE_CHUNK: usize = 512;

/// Per-token losses `-log p(token[i + 1] | token[..=i])` of `ids[past..end]` after `cache`
/// (which holds `ids[..past]`), and the cache extended to `end`. The log-probabilities of
/// each pass are computed on `worker`.
pub(crate) async fn token_losses(
    lm: &CausalLm,
    worker: &dyn Worker,
    ids: &[u32],
    cache: Option<&KvCache>,
    end: usize,
) -> Result<(Vec<f32>, KvCache), Error> {
    let past = cache.map_or(0, |c| c.shape().tokens);
    let end = end.min(past + lm.config().context_length).min(ids.len());
    if end <= past {
        return Err(Error::internal(format!(
            "nothing to score: the cache holds {past} tokens, the window ends at {end}"
        )));
    }
    let mut losses = Vec::with_capacity(end - past - 1);
    let mut cache = cache.cloned();
    let mut at = past;
    while at < end {
        let to = (at + SCORE_CHUNK).min(end);
        let run = lm.forward(&ids[at..to], cache.as_ref()).await?;
        let targets = ids[at + 1..(to + 1).min(end)].to_vec();
        let (log_probs, run) = on_worker(worker, move || (run.log_probs(&targets), run)).await?;
        losses.extend(log_probs.into_iter().map(|l| -l));
        cache = Some(run.cache);
        at = to;
    }
    Ok((losses, cache.expect("at least one pass ran")))
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

/// One window's losses, with the question-free ones under contrastive compression.
struct WindowLosses<'a> {
    losses: &'a [f32],
    /// Losses of the text without the question in front (contrastive compression).
    self_losses: Option<&'a [f32]>,
    /// Tokens of the question in front of the text.
    start: usize,
}

/// What one drop left.
struct Dropped {
    ids: Vec<u32>,
    losses: Vec<f32>,
    self_losses: Option<Vec<f32>>,
    end: i64,
}

/// `self_losses[..n] - losses[start..]` (the contrastive perplexity), `n` the shorter length.
fn contrast(losses: &[f32], self_losses: &[f32], start: usize) -> Vec<f32> {
    let conditioned = losses.get(start..).unwrap_or(&[]);
    self_losses
        .iter()
        .zip(conditioned)
        .map(|(own, given)| own - given)
        .collect()
}

/// One window's drop: which of `ids` survive, the kept losses and the new window end (the
/// reference's `get_compressed_input`).
fn drop_tokens(
    window_losses: &WindowLosses,
    ids: &[u32],
    end: i64,
    window: i64,
    cut: f32,
) -> Dropped {
    let WindowLosses {
        losses,
        self_losses,
        start,
    } = *window_losses;
    let mut keep: Vec<bool> = match self_losses {
        Some(own) => {
            let mut keep: Vec<bool> = losses.iter().take(start).map(|&l| l > 0.0).collect();
            keep.extend(contrast(losses, own, start).iter().map(|&c| c > cut));
            keep
        }
        None => losses.iter().map(|&l| l > cut).collect(),
    };
    keep.push(losses.first().is_some_and(|&l| l > 0.0));
    let len = keep.len();
    keep[python_index(end, len)..].fill(true);
    let upto = python_index(end - window, len);
    keep[..upto].fill(true);
    let kept_losses = losses
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(l, _)| *l)
        .collect();
    let kept_self_losses = self_losses.map(|own| {
        if keep.len() < own.len() + start + 1 {
            keep.resize(own.len() + start + 1, true);
        }
        own.iter()
            .zip(&keep[start..])
            .filter(|(_, k)| **k)
            .map(|(l, _)| *l)
            .collect()
    });
    keep.resize(ids.len(), true);
    let removed_before_end = keep[..python_index(end, keep.len())]
        .iter()
        .filter(|k| !**k)
        .count() as i64;
    Dropped {
        ids: ids
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(i, _)| *i)
            .collect(),
        losses: kept_losses,
        self_losses: kept_self_losses,
        end: end - removed_before_end,
    }
}

/// The reference's `get_dynamic_compression_ratio`: per iteration, the (tokens, keep ratio)
/// of the contexts that fall in its window; `skip_first` leaves out the question in front.
fn window_ratios(
    lm: &CausalLm,
    contexts: &[String],
    target_token: f64,
    window: usize,
    dynamic_ratio: &[f64],
    skip_first: bool,
) -> Result<Vec<Vec<(i64, f64)>>, Error> {
    let mut lengths = contexts
        .iter()
        .map(|c| Ok(lm.tokenize(c)?.len() as i64 + 2))
        .collect::<Result<Vec<i64>, Error>>()?;
    if skip_first {
        lengths.remove(0);
    }
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

/// One scored sequence through the windows: its ids, its cache, the losses scored so far
/// and where the last window's losses begin.
struct Scored {
    ids: Vec<u32>,
    cache: Option<KvCache>,
    losses: Option<Vec<f32>>,
    ready_end: i64,
}

impl Scored {
    fn new(ids: Vec<u32>) -> Self {
        Self {
            ids,
            cache: None,
            losses: None,
            ready_end: 0,
        }
    }

    /// Scores up to `score_end` (the whole sequence in the first iteration) and merges the new
    /// losses into the ones kept; then keeps the cache of the tokens before `cache_end` (none
    /// in the first iteration). Returns whether there was anything to score.
    async fn score(
        &mut self,
        lm: &CausalLm,
        worker: &dyn Worker,
        score_end: usize,
        loss_end: i64,
        cache_end: Option<i64>,
    ) -> Result<bool, Error> {
        let (losses, extended) =
            token_losses(lm, worker, &self.ids, self.cache.as_ref(), score_end).await?;
        if losses.is_empty() {
            return Ok(false);
        }
        self.losses = Some(match self.losses.take() {
            Some(mut past) => {
                let want = loss_end.max(0) as usize;
                if want > past.len() {
                    let pad = (want - past.len()).min(losses.len());
                    past.extend(std::iter::repeat_n(0.0, pad));
                }
                let from = python_index(self.ready_end, past.len());
                let to = (from + losses.len()).min(past.len());
                past[from..to].copy_from_slice(&losses[..to - from]);
                past
            }
            None => losses,
        });
        self.cache = match cache_end {
            Some(end) => {
                let tokens = extended.shape().tokens;
                Some(extended.truncated(python_index(end, tokens))?)
            }
            None => None,
        };
        Ok(true)
    }

    /// The reference's cache compression past the model's context: `count` tokens after the
    /// first `keep` leave the cache, and the first `count` ids leave the sequence.
    fn pop(&mut self, keep: usize, count: usize) -> Result<Vec<u32>, Error> {
        if let Some(cache) = self.cache.take() {
            self.cache = Some(cache.without_tokens(keep, count)?);
        }
        self.ready_end -= count as i64;
        Ok(self.ids.drain(..count.min(self.ids.len())).collect())
    }
}

/// What the token-level pass of [`compress_tokens`] works to.
#[derive(Debug, Clone, Copy)]
pub struct TokenPass<'a> {
    /// Tokens to keep (the reference's `target_token`).
    pub target_token: f64,
    /// Tokens per window (`iterative_size`).
    pub window: usize,
    /// Each context's shift of the keep ratio (`dynamic_ratio`).
    pub dynamic_ratio: &'a [f64],
    /// Tokens of the question in front of the first context (0: none).
    pub start: usize,
    /// Drop by contrastive perplexity (`condition_compare`).
    pub condition_compare: bool,
}

/// The reference's `iterative_compress_prompt` (no kept separators): the contexts joined by
/// blank lines, compressed window by window; with `pass.start` > 0 the first context is the
/// question (`start` tokens) in front, and `condition_compare` drops by contrastive
/// perplexity. Log-probabilities are computed on `worker`. Returns the kept ids after the
/// question.
pub async fn compress_tokens(
    lm: &CausalLm,
    worker: &dyn Worker,
    contexts: &[String],
    pass: &TokenPass<'_>,
) -> Result<Vec<u32>, Error> {
    let TokenPass {
        target_token,
        window,
        dynamic_ratio,
        start,
        condition_compare,
    } = *pass;
    let ratios = window_ratios(lm, contexts, target_token, window, dynamic_ratio, start > 0)?;
    let ids = lm.tokenize(&contexts.join("\n\n"))?;
    let max_positions = lm.config().context_length as i64;
    let window_i = window as i64;
    let start_i = start as i64;
    let mut end = (window_i + start_i).min(ids.len() as i64);
    let mut own = condition_compare.then(|| Scored::new(ids[start.min(ids.len())..].to_vec()));
    let mut main = Scored::new(ids);
    let mut popped: Vec<u32> = Vec::new();
    let mut iteration = 0usize;
    while end <= main.ids.len() as i64 {
        if end > max_positions && main.cache.is_some() {
            let e = (end - max_positions) as usize;
            let keep = (CACHE_BOS_TOKENS + start).min(max_positions as usize);
            popped.extend(main.pop(keep, e)?);
            end -= e as i64;
            if let Some(own) = own.as_mut() {
                let cached = own.cache.as_ref().map_or(0, |c| c.shape().tokens);
                own.pop(keep.min(cached.saturating_sub(e)), e)?;
            }
        }
        let first = iteration == 0;
        let score_end = if first { main.ids.len() } else { end as usize };
        let cache_end = (!first).then_some(end - window_i);
        if !main
            .score(lm, worker, score_end, end - 1, cache_end)
            .await?
        {
            break;
        }
        let fresh = start > 0 && first;
        if let Some(own) = own.as_mut() {
            let own_end = if first {
                own.ids.len()
            } else {
                (end - start_i) as usize
            };
            let own_cache_end = (!first).then_some(end - window_i - start_i);
            own.score(lm, worker, own_end, end - start_i - 1, own_cache_end)
                .await?;
            own.ready_end = if fresh { 0 } else { end - start_i - window_i };
        }
        main.ready_end = if fresh { 0 } else { end - window_i };
        for &(delta_end, ratio) in ratios.get(iteration).map_or(&[][..], Vec::as_slice) {
            let losses = main.losses.take().unwrap_or_default();
            let own_losses = own.as_mut().map(|o| o.losses.take().unwrap_or_default());
            let cut = match &own_losses {
                Some(own_losses) => threshold(&contrast(&losses, own_losses, start), ratio),
                None => threshold(&losses, ratio),
            };
            let window_losses = WindowLosses {
                losses: &losses,
                self_losses: own_losses.as_deref(),
                start,
            };
            let dropped = drop_tokens(
                &window_losses,
                &main.ids,
                end - window_i + delta_end,
                delta_end,
                cut,
            );
            if let Some(own) = own.as_mut() {
                own.ids = dropped.ids[start.min(dropped.ids.len())..].to_vec();
                own.losses = dropped.self_losses;
            }
            main.ids = dropped.ids;
            main.losses = Some(dropped.losses);
            end = dropped.end + window_i;
        }
        iteration += 1;
    }
    popped.extend(main.ids);
    Ok(popped.split_off(start.min(popped.len())))
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

/// Token ids as the reference's tokenizer makes them with special tokens: BOS in front.
pub(crate) fn with_bos(lm: &CausalLm, text: &str) -> Result<Vec<u32>, Error> {
    let mut ids = vec![lm.config().bos_token_id];
    ids.extend(lm.tokenize(text)?);
    Ok(ids)
}

/// The reference's `get_condition_ppl`: the mean loss of `text` alone, or of the part after
/// the question (`Before`) or of the question after the text (`After`).
async fn condition_perplexity(
    lm: &CausalLm,
    worker: &dyn Worker,
    text: &str,
    question: &str,
    condition: Condition,
) -> Result<f32, Error> {
    let (ids, from) = match condition {
        Condition::None => (with_bos(lm, text)?, 0),
        Condition::Before => (
            with_bos(lm, &format!("{question}{text}"))?,
            with_bos(lm, question)?.len() - 1,
        ),
        Condition::After => (
            with_bos(lm, &format!("{text}{question}"))?,
            with_bos(lm, text)?.len() - 1,
        ),
    };
    if ids.len() < 2 {
        return Ok(f32::NAN);
    }
    let (losses, _) = token_losses(lm, worker, &ids, None, ids.len()).await?;
    let tail = losses.get(from..).unwrap_or(&[]);
    Ok(tail.iter().sum::<f32>() / tail.len() as f32)
}

/// The reference's `get_prefix_length`: the tokens `prefix` takes at the front of
/// `prefix + text` (checked by decoding both sides).
fn prefix_length(lm: &CausalLm, prefix: &str, text: &str) -> Result<usize, Error> {
    let head: String = text.chars().take(100).collect();
    let possible = lm.tokenize(prefix)?.len().saturating_sub(3).max(1);
    let full = lm.tokenize(&format!("{prefix}{head}"))?;
    let decode =
        |ids: &[u32]| -> Result<String, Error> { Ok(clean_up_spaces(&lm.detokenize(ids)?)) };
    let mut at = possible;
    for i in possible..full.len() {
        at = i;
        if decode(&full[..i])? == prefix {
            break;
        }
    }
    if at > full.len() || decode(&full[at..])? != head {
        return Err(Error::invalid(
            "the question does not tokenize apart from the first context",
        ));
    }
    Ok(at)
}

/// The reference's `compress_prompt` (LLMLingua-1 with [`Options::default`], LongLLMLingua
/// with [`Options::longllmlingua`]); the log-probabilities of every pass are computed on
/// `worker`, off the async task.
pub async fn compress_prompt(
    lm: &CausalLm,
    worker: &dyn Worker,
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
    if options.rank == Rank::QuestionGivenContext && question.is_empty() {
        return Err(Error::invalid("LongLLMLingua needs a question"));
    }
    let blank = [" ".to_string()];
    let contexts = if contexts.is_empty() {
        &blank[..]
    } else {
        contexts
    };
    let condition_flag = options.condition_on_question || options.condition_compare;
    let rank_condition = match (options.rank, options.condition_in_question) {
        (Rank::Perplexity, _) => Condition::None,
        (Rank::QuestionGivenContext, Condition::None) => Condition::After,
        (Rank::QuestionGivenContext, condition) => condition,
    };
    let counter = TokenCounter::default();
    let mut whole = vec![instruction.to_string()];
    whole.extend(contexts.iter().cloned());
    whole.push(question.to_string());
    let origin_tokens = counter.count(whole.join("\n\n").trim());
    let length = |text: &str| -> Result<f64, Error> { Ok(with_bos(lm, text)?.len() as f64) };
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
    let mut dynamic_ratio = vec![0.0; contexts.len()];
    if contexts.len() > 1 && options.use_context_level_filter {
        let rank_question = format!("{question}{RANK_SUFFIX}");
        let mut ranked = Vec::with_capacity(contexts.len());
        for (index, context) in contexts.iter().enumerate() {
            let score =
                condition_perplexity(lm, worker, context, &rank_question, rank_condition).await?;
            ranked.push((index, score));
        }
        // Python's sorted: stable; highest perplexity first without a question, lowest first
        // with one.
        if rank_condition == Condition::None {
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        } else {
            ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
        }
        let mut budget = if target_token < 0.0 {
            100.0
        } else {
            target_token
        } + options.context_budget_extra;
        let mut used = Vec::new();
        for (index, _) in ranked {
            budget -= context_lengths[index];
            used.push(index);
            if budget < 0.0 {
                break;
            }
        }
        let by_rank = used.clone();
        match options.reorder_context {
            Reorder::Original => used.sort_unstable(),
            Reorder::Sort => {}
            Reorder::TwoStage => {
                let odd: Vec<usize> = used.iter().step_by(2).copied().collect();
                let even: Vec<usize> = used.iter().skip(1).step_by(2).copied().collect();
                used = odd.into_iter().chain(even.into_iter().rev()).collect();
            }
        }
        let spread = options.dynamic_context_compression_ratio;
        dynamic_ratio = if spread > 0.0 {
            let n = by_rank.len();
            let step = if n > 1 {
                spread.abs() / (n - 1) as f64
            } else {
                0.0
            };
            let by_rank_ratio: Vec<f64> = (0..n)
                .map(|k| (n as f64 - 1.0 - 2.0 * k as f64) * step)
                .collect();
            used.iter()
                .map(|i| by_rank_ratio[by_rank.iter().position(|j| j == i).expect("kept")])
                .collect()
        } else {
            vec![0.0; used.len()]
        };
        kept_contexts = used;
    }
    let kept: Vec<String> = kept_contexts.iter().map(|&i| contexts[i].clone()).collect();
    let compressed = if options.use_token_level_filter {
        let (texts, start) = if condition_flag {
            let mut prefix = question.to_string();
            let window = options.iterative_size;
            let max_positions = lm.config().context_length;
            if lm.tokenize(&format!("{prefix}\n\n"))?.len() + 2 * window > max_positions {
                // The reference keeps the question's first 100 tokens and its end.
                let tokens = lm.tokenize(&prefix)?;
                let tail = (tokens.len() + 2 + 100 + 2 * window).saturating_sub(max_positions);
                let mut kept_tokens = tokens[..100.min(tokens.len())].to_vec();
                kept_tokens.extend_from_slice(&tokens[tail.min(tokens.len())..]);
                prefix = clean_up_spaces(&lm.detokenize(&kept_tokens)?);
            }
            let start = prefix_length(lm, &format!("{prefix}\n\n"), &kept[0])?;
            let mut texts = vec![prefix];
            texts.extend(kept.iter().cloned());
            (texts, start)
        } else {
            (kept.clone(), 0)
        };
        let pass = TokenPass {
            target_token,
            window: options.iterative_size,
            dynamic_ratio: &dynamic_ratio,
            start,
            condition_compare: options.condition_compare,
        };
        let ids = compress_tokens(lm, worker, &texts, &pass).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_is_the_reference_quantile_and_ratio_one_keeps_everything() {
        let losses = [0.5, 3.0, 1.0, 2.0];
        // Descending [3, 2, 1, 0.5]; int(4 * 0.5) - 1 = 1.
        assert_eq!(threshold(&losses, 0.5), 2.0);
        assert_eq!(threshold(&losses, 0.1), 3.0); // clamped to the first
        assert_eq!(threshold(&losses, 1.0), f32::NEG_INFINITY);
        assert_eq!(threshold(&[], 0.5), f32::NEG_INFINITY);
    }

    #[test]
    fn python_slices_count_negative_bounds_from_the_end() {
        assert_eq!(python_index(-2, 10), 8);
        assert_eq!(python_index(-20, 10), 0);
        assert_eq!(python_index(3, 10), 3);
        assert_eq!(python_index(30, 10), 10);
    }

    #[test]
    fn a_window_keeps_tokens_by_the_next_tokens_loss_and_protects_what_is_outside_it() {
        // Six tokens, five losses (loss i belongs to token i + 1, and decides token i).
        let ids = [10, 11, 12, 13, 14, 15];
        let losses = [5.0, 0.1, 4.0, 0.2, 3.0];
        let window = WindowLosses {
            losses: &losses,
            self_losses: None,
            start: 0,
        };
        // The whole text is the window: tokens 1 and 3 (losses 0.1 and 0.2) go.
        let dropped = drop_tokens(&window, &ids, 6, 6, 1.0);
        assert_eq!(dropped.ids, [10, 12, 14, 15]);
        assert_eq!(dropped.losses, [5.0, 4.0, 3.0]);
        assert_eq!(dropped.end, 4);
        // A window of the last 3 tokens only: token 1 is outside it and stays.
        let dropped = drop_tokens(&window, &ids, 6, 3, 1.0);
        assert_eq!(dropped.ids, [10, 11, 12, 14, 15]);
        // A window longer than the text (a short context): the start counts from the end, as
        // the reference's negative slice does, so only the last two tokens can go.
        let dropped = drop_tokens(&window, &ids, 6, 8, 1.0);
        assert_eq!(dropped.ids, ids);
    }
}
