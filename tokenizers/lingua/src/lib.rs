//! LLMLingua-2 prompt compression (Pan et al. 2024; microsoft/LLMLingua
//! `compress_prompt_llmlingua2`), ported step for step so that, with the same classifier
//! outputs, the compressed prompt equals the Python package's word for word:
//!
//! 1. force tokens that the classifier's tokenizer splits are replaced by `[NEWi]` placeholders;
//! 2. each context is cut into chunks of at most 510 classifier tokens, backing off to the last
//!    chunk-end token (`.` / `\n`);
//! 3. the classifier gives every sub-token a keep-probability (`softmax(logits)[1]`; it runs
//!    outside this crate: [`Lingua2::plan`] lists its inputs, [`Lingua2::finish`] takes its
//!    outputs);
//! 4. sub-tokens merge into words (WordPiece: a non-`##` token starts a word; SentencePiece: `▁`
//!    or punctuation does) with the mean or first probability; force tokens get 1, digits too
//!    with `force_reserve_digit`;
//! 5. per chunk, the keep threshold is the percentile of the word probabilities repeated by each
//!    word's token count in the target LLM's tokenizer (cl100k), and words above it are kept;
//! 6. optionally a context-level filter first keeps whole contexts by mean word probability.
//!
//! Beyond the reference: [`OutputText::Original`] returns kept words as they are written in the
//! input (the reference re-detokenizes them, which lowercases with an uncased model), and
//! [`Options::budget_tolerance`] makes `target_token` a cap the output never exceeds, landing
//! within a tolerance under it.

mod percentile;

pub use percentile::{Prob, Threshold, percentile, threshold};

use std::collections::HashSet;

use terse_text::{SubwordFamily, TextTokenizer, TokenCounter};

/// Why a prompt could not be compressed.
#[derive(Debug, thiserror::Error)]
pub enum LinguaError {
    /// The request is unusable; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// Tokenization failed.
    #[error(transparent)]
    Text(#[from] terse_text::TextError),
    /// The classifier's output does not fit its input.
    #[error("classifier: {0}")]
    Classifier(String),
}

impl terse_core::Classify for LinguaError {
    fn kind(&self) -> terse_core::ErrorKind {
        match self {
            Self::Invalid(_) | Self::Text(_) => terse_core::ErrorKind::InvalidInput,
            Self::Classifier(_) => terse_core::ErrorKind::Internal,
        }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, LinguaError>;

/// How sub-token probabilities become a word probability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenToWord {
    /// Mean over the word's sub-tokens (the reference default).
    #[default]
    Mean,
    /// The first sub-token's.
    First,
}

/// How the compressed text is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputText {
    /// Kept words as they appear in the input, with the input's spacing between adjacent words.
    #[default]
    Original,
    /// Kept words detokenized by the classifier's tokenizer, exactly as the Python package does
    /// (an uncased model lowercases them).
    Reference,
}

/// Options of one compression; defaults are the reference's.
#[derive(Debug, Clone)]
pub struct Options {
    /// Fraction of target-LLM tokens to keep, in (0, 1].
    pub rate: f64,
    /// Token budget in target-LLM tokens (> 0 overrides `rate`).
    pub target_token: i64,
    /// Keep whole contexts first by their mean word probability.
    pub use_context_level_filter: bool,
    /// Drop words inside kept contexts.
    pub use_token_level_filter: bool,
    /// Number of contexts to keep (context-level filter).
    pub target_context: i64,
    /// Fraction of contexts to keep (context-level filter).
    pub context_level_rate: f64,
    /// Token budget of the context-level filter.
    pub context_level_target_token: i64,
    /// Contexts always kept by the context-level filter.
    pub force_context_ids: Vec<usize>,
    /// Also return every original word with its 0/1 label.
    pub return_word_label: bool,
    /// Separator between `word{label_sep}label` items.
    pub word_sep: String,
    /// Separator between a word and its label.
    pub label_sep: String,
    /// Sub-token to word probability.
    pub token_to_word: TokenToWord,
    /// Tokens always kept (at most [`MAX_FORCE_TOKENS`]).
    pub force_tokens: Vec<String>,
    /// Keep every word containing a digit.
    pub force_reserve_digit: bool,
    /// Drop a force token that repeats with nothing kept in between.
    pub drop_consecutive: bool,
    /// Tokens a chunk may end at.
    pub chunk_end_tokens: Vec<String>,
    /// Output text style.
    pub output: OutputText,
    /// With `target_token` > 0: when set, `target_token` is a cap: the keep rate is searched
    /// until the compressed prompt fits it and is no more than this fraction under it (the
    /// reference sets the rate once and often overshoots). `None`: reference behaviour.
    pub budget_tolerance: Option<f64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rate: 0.5,
            target_token: -1,
            use_context_level_filter: false,
            use_token_level_filter: true,
            target_context: -1,
            context_level_rate: 1.0,
            context_level_target_token: -1,
            force_context_ids: Vec::new(),
            return_word_label: false,
            word_sep: "\t\t|\t\t".into(),
            label_sep: " ".into(),
            token_to_word: TokenToWord::Mean,
            force_tokens: Vec::new(),
            force_reserve_digit: false,
            drop_consecutive: false,
            chunk_end_tokens: vec![".".into(), "\n".into()],
            output: OutputText::Original,
            budget_tolerance: None,
        }
    }
}

/// Most force tokens per request (the reference adds 100 placeholder tokens).
pub const MAX_FORCE_TOKENS: usize = 100;

/// What a compression returns (the reference's result dictionary).
#[derive(Debug, Clone, PartialEq)]
pub struct Compressed {
    /// The compressed contexts joined by blank lines.
    pub compressed_prompt: String,
    /// The compressed contexts (only those the context-level filter kept).
    pub compressed_prompt_list: Vec<String>,
    /// Target-LLM tokens of the input.
    pub origin_tokens: usize,
    /// Target-LLM tokens of the output.
    pub compressed_tokens: usize,
    /// `origin_tokens / compressed_tokens` (1 when nothing is left).
    pub ratio: f64,
    /// Every original word and its label, when asked for.
    pub word_labels: Option<Vec<(String, u8)>>,
    /// The word labels formatted as the reference's `fn_labeled_original_prompt`.
    pub fn_labeled_original_prompt: Option<String>,
    /// Index of each context the context-level filter kept (all without it).
    pub kept_contexts: Vec<usize>,
}

impl Compressed {
    /// The reference's `ratio` string, e.g. `"2.1x"`.
    pub fn ratio_text(&self) -> String {
        format!("{:.1}x", self.ratio)
    }

    /// The reference's `rate` string, e.g. `"47.6%"`.
    pub fn rate_text(&self) -> String {
        format!("{:.1}%", 1.0 / self.ratio * 100.0)
    }
}

/// One classifier input: a chunk of a context.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// The chunk's text (the reference's detokenized chunk, placeholders included).
    pub text: String,
    /// Classifier tokens, framed by the start and end tokens, at most `max_seq_len`.
    pub tokens: Vec<String>,
    /// Their ids.
    pub ids: Vec<u32>,
    /// Byte spans in the (placeholder-substituted) context of the tokens between the framing
    /// tokens (`OutputText::Original`).
    spans: Option<Vec<(usize, usize)>>,
}

/// A prepared compression: the classifier inputs and what [`Lingua2::finish`] needs.
#[derive(Debug, Clone)]
pub struct Plan {
    options: Options,
    token_map: Vec<(String, String)>,
    contexts: Vec<String>,
    chunks: Vec<Vec<Chunk>>,
    origin_tokens: usize,
}

impl Plan {
    /// Every chunk's classifier ids in order (context by context).
    pub fn inputs(&self) -> Vec<&[u32]> {
        self.chunks
            .iter()
            .flatten()
            .map(|c| c.ids.as_slice())
            .collect()
    }

    /// The chunks, context by context.
    pub fn chunks(&self) -> &[Vec<Chunk>] {
        &self.chunks
    }

    /// Target-LLM tokens of the input.
    pub fn origin_tokens(&self) -> usize {
        self.origin_tokens
    }
}

/// A word and its probabilities.
#[derive(Debug, Clone)]
struct Word {
    text: String,
    /// Byte span in the substituted context (`OutputText::Original`).
    span: Option<(usize, usize)>,
    probs: Vec<Prob>,
    probs_no_force: Vec<Prob>,
    /// Target-LLM tokens of `text` (the threshold repeats the word's probability this often).
    tokens: usize,
}

/// The LLMLingua-2 compressor over one classifier tokenizer.
pub struct Lingua2 {
    tokenizer: TextTokenizer,
    counter: TokenCounter,
    placeholders: Vec<String>,
    max_seq_len: usize,
    digit: regex::Regex,
    words: regex::Regex,
}

const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

impl Lingua2 {
    /// A compressor over a classifier tokenizer that holds the `[NEW0]`..`[NEW99]` placeholder
    /// tokens, with inputs of at most `max_seq_len` tokens (512 for BERT-style models).
    pub fn new(tokenizer: TextTokenizer, max_seq_len: usize) -> Result<Self> {
        let placeholders: Vec<String> =
            (0..MAX_FORCE_TOKENS).map(|i| format!("[NEW{i}]")).collect();
        for p in &placeholders {
            if tokenizer.tokenize(p)?.len() != 1 {
                return Err(LinguaError::Invalid(format!(
                    "the classifier tokenizer lacks the placeholder token `{p}`"
                )));
            }
        }
        if max_seq_len < 8 {
            return Err(LinguaError::Invalid("max_seq_len is too small".into()));
        }
        Ok(Self {
            tokenizer,
            counter: TokenCounter::default(),
            placeholders,
            max_seq_len,
            digit: regex::Regex::new(r"\d").expect("valid"),
            words: regex::Regex::new(r#"\b\w+\b|[<>=/!@#$%^&*()?":{}|\\`~;_+-]"#).expect("valid"),
        })
    }

    /// The target-LLM token counter.
    pub fn counter(&self) -> &TokenCounter {
        &self.counter
    }

    /// Prepares a compression: validates options, substitutes force tokens, chunks every
    /// context and lists the classifier inputs.
    pub fn plan(&self, contexts: &[String], options: &Options) -> Result<Plan> {
        if contexts.is_empty() {
            return Err(LinguaError::Invalid("no context to compress".into()));
        }
        if !(options.rate > 0.0 && options.rate <= 1.0) {
            return Err(LinguaError::Invalid(format!(
                "rate {} is outside (0, 1]",
                options.rate
            )));
        }
        if options.force_tokens.len() > MAX_FORCE_TOKENS {
            return Err(LinguaError::Invalid(format!(
                "{} force tokens exceed the limit of {MAX_FORCE_TOKENS}",
                options.force_tokens.len()
            )));
        }
        // An empty force token would be substituted between every pair of characters, and one
        // of spaces inside every word gap (issue 18, finding 6); "\n" stays allowed, as in the
        // reference's documented `force_tokens=['\n', '.', ...]`.
        if let Some(i) = options
            .force_tokens
            .iter()
            .position(|t| t.chars().all(|c| c == ' ' || c == '\t'))
        {
            return Err(LinguaError::Invalid(format!(
                "force_tokens[{i}] is empty or only spaces"
            )));
        }
        let mut token_map: Vec<(String, String)> = Vec::new();
        for (i, t) in options.force_tokens.iter().enumerate() {
            if self.tokenizer.tokenize(t)?.len() != 1 && !token_map.iter().any(|(o, _)| o == t) {
                token_map.push((t.clone(), self.placeholders[i].clone()));
            }
        }
        let mut chunk_end: HashSet<String> = options.chunk_end_tokens.iter().cloned().collect();
        for c in &options.chunk_end_tokens {
            if let Some((_, new)) = token_map.iter().find(|(o, _)| o == c) {
                chunk_end.insert(new.clone());
            }
        }
        let mut origin_tokens = 0;
        let mut substituted = Vec::with_capacity(contexts.len());
        let mut chunks = Vec::with_capacity(contexts.len());
        for context in contexts {
            origin_tokens += self.counter.count(context);
            let mut text = context.clone();
            for (ori, new) in &token_map {
                text = text.replace(ori.as_str(), new);
            }
            chunks.push(self.chunk_context(&text, &chunk_end, options.output)?);
            substituted.push(text);
        }
        let mut options = options.clone();
        if contexts.len() == 1 {
            options.use_context_level_filter = false;
        }
        Ok(Plan {
            options,
            token_map,
            contexts: substituted,
            chunks,
            origin_tokens,
        })
    }

    /// `__chunk_context`: chunks of at most `max_seq_len − 2` tokens ending at a chunk-end
    /// token where one is found.
    fn chunk_context(
        &self,
        text: &str,
        chunk_end: &HashSet<String>,
        output: OutputText,
    ) -> Result<Vec<Chunk>> {
        let max_len = self.max_seq_len - 2;
        let with_offsets = self.tokenizer.tokenize_with_offsets(text)?;
        let tokens: Vec<String> = with_offsets.iter().map(|(t, _)| t.clone()).collect();
        let n = tokens.len();
        let mut out = Vec::new();
        let mut st = 0;
        while st < n {
            let ed = if st + max_len > n - 1 {
                n - 1
            } else {
                let mut ed = st + max_len;
                for j in 0..ed - st {
                    if chunk_end.contains(&tokens[ed - j]) {
                        ed -= j;
                        break;
                    }
                }
                ed
            };
            let piece = &tokens[st..=ed];
            let chunk_text = self.tokenizer.tokens_to_string(piece)?;
            let chunk = match output {
                OutputText::Reference => self.frame(
                    chunk_text.clone(),
                    self.tokenizer.tokenize(&chunk_text)?,
                    None,
                ),
                OutputText::Original => self.frame(
                    chunk_text,
                    piece.to_vec(),
                    Some(with_offsets[st..=ed].iter().map(|(_, o)| *o).collect()),
                ),
            };
            out.push(chunk);
            st = ed + 1;
        }
        Ok(out)
    }

    /// `TokenClfDataset`: start token, tokens, end token, cut to `max_seq_len` (with the
    /// tokenizer's own special tokens: the reference hard-codes BERT's, issue #181).
    fn frame(&self, text: String, inner: Vec<String>, spans: Option<Vec<(usize, usize)>>) -> Chunk {
        let special = self.tokenizer.special();
        let mut tokens = Vec::with_capacity(inner.len() + 2);
        tokens.push(special.cls.clone());
        tokens.extend(inner);
        tokens.push(special.sep.clone());
        tokens.truncate(self.max_seq_len);
        let ids = self.tokenizer.ids(&tokens);
        Chunk {
            text,
            tokens,
            ids,
            spans,
        }
    }

    /// Finishes a compression with the classifier's keep-probabilities, one row per input of
    /// [`Plan::inputs`] with one value per token.
    pub fn finish(&self, plan: &Plan, probs: &[Vec<f32>]) -> Result<Compressed> {
        let flat: Vec<&Chunk> = plan.chunks.iter().flatten().collect();
        if probs.len() != flat.len() {
            return Err(LinguaError::Classifier(format!(
                "{} probability rows for {} chunks",
                probs.len(),
                flat.len()
            )));
        }
        for (row, chunk) in probs.iter().zip(&flat) {
            if row.len() != chunk.ids.len() {
                return Err(LinguaError::Classifier(format!(
                    "{} probabilities for {} tokens",
                    row.len(),
                    chunk.ids.len()
                )));
            }
        }
        let options = &plan.options;
        let words = self.chunk_words(plan, probs);
        if options.target_token > 0 && options.target_token as u64 >= plan.origin_tokens as u64 {
            // A budget at or above the input keeps everything (issue 18, finding 8), whatever
            // the mode; this also covers budgets too large for any rate arithmetic.
            return Ok(self.finish_once(plan, &words, 1.0, -1));
        }
        match options.budget_tolerance {
            Some(tolerance) if options.target_token > 0 => {
                self.finish_within_budget(plan, &words, tolerance)
            }
            _ => Ok(self.finish_once(plan, &words, options.rate, options.target_token)),
        }
    }

    /// The words of every chunk with their probabilities, context by context.
    fn chunk_words(&self, plan: &Plan, probs: &[Vec<f32>]) -> Vec<Vec<Vec<Word>>> {
        let mut rows = probs.iter();
        plan.chunks
            .iter()
            .map(|chunks| {
                chunks
                    .iter()
                    .map(|chunk| {
                        self.merge_words(chunk, rows.next().expect("one row per chunk"), plan)
                    })
                    .collect()
            })
            .collect()
    }

    /// Searches the keep rate (bisection on the rate the reference would derive) until the
    /// output fits the budget `target_token` and lands no more than `tolerance` of it under:
    /// the budget is a cap, never exceeded. Otherwise the largest output under the cap the
    /// search met; when even the smallest output exceeds the cap (force tokens, many
    /// contexts), the request is refused rather than answered over budget.
    fn finish_within_budget(
        &self,
        plan: &Plan,
        words: &[Vec<Vec<Word>>],
        tolerance: f64,
    ) -> Result<Compressed> {
        let target = usize::try_from(plan.options.target_token).unwrap_or(usize::MAX);
        let floor = ((1.0 - tolerance) * target as f64).ceil() as usize;
        let (mut lo, mut hi) = (0.0f64, 1.0f64);
        let mut best: Option<(usize, Compressed)> = None;
        let mut smallest = usize::MAX;
        for _ in 0..24 {
            let rate = (lo + hi) / 2.0;
            let result = self.finish_once(plan, words, rate, -1);
            let tokens = self.output_tokens(&result);
            smallest = smallest.min(tokens);
            if tokens > target {
                hi = rate;
                continue;
            }
            if tokens >= floor {
                return Ok(result);
            }
            lo = rate;
            if best.as_ref().is_none_or(|(t, _)| tokens > *t) {
                best = Some((tokens, result));
            }
        }
        best.map(|(_, result)| result).ok_or_else(|| {
            LinguaError::Invalid(format!(
                "target_token {target} is below the smallest output these options allow \
                 ({smallest} tokens)"
            ))
        })
    }

    /// Target-LLM tokens of a result as it is sent on: the joined prompt, or the sum over its
    /// contexts if that is larger.
    fn output_tokens(&self, result: &Compressed) -> usize {
        self.counter
            .count(&result.compressed_prompt)
            .max(result.compressed_tokens)
    }

    fn finish_once(
        &self,
        plan: &Plan,
        chunk_words: &[Vec<Vec<Word>>],
        rate: f64,
        target_token: i64,
    ) -> Compressed {
        let options = &plan.options;
        let mut rate = rate;

        let mut kept: Vec<usize> = (0..plan.chunks.len()).collect();
        let mut context_label = vec![true; plan.chunks.len()];
        if options.use_context_level_filter {
            let mut context_level_rate = options.context_level_rate;
            let mut context_level_target_token = options.context_level_target_token;
            if options.target_context <= 0
                && context_level_rate >= 1.0
                && context_level_target_token <= 0
            {
                if target_token < 0 && rate < 1.0 {
                    context_level_rate = if options.use_token_level_filter {
                        (rate + 1.0) / 2.0
                    } else {
                        rate
                    };
                }
                if target_token >= 0 {
                    context_level_target_token = if options.use_token_level_filter {
                        target_token * 2
                    } else {
                        target_token
                    };
                }
            }
            if options.target_context >= 0 {
                context_level_rate =
                    (options.target_context as f64 / plan.chunks.len() as f64).min(1.0);
            }
            if context_level_target_token >= 0 {
                context_level_rate =
                    (context_level_target_token as f64 / plan.origin_tokens as f64).min(1.0);
            }
            let context_probs: Vec<f32> = chunk_words
                .iter()
                .map(|chunks| {
                    let word_probs: Vec<f32> = chunks
                        .iter()
                        .flatten()
                        .map(|w| word_prob(&w.probs_no_force, options.token_to_word).value)
                        .collect();
                    mean_f32(&word_probs)
                })
                .collect();
            let threshold = percentile(&context_probs, (100.0 * (1.0 - context_level_rate)) as i64)
                .expect("at least two contexts");
            kept.clear();
            for (i, &p) in context_probs.iter().enumerate() {
                let keep = p >= threshold || options.force_context_ids.contains(&i);
                context_label[i] = keep;
                if keep {
                    kept.push(i);
                }
            }
            let reserved_tokens: usize = kept
                .iter()
                .flat_map(|&i| &plan.chunks[i])
                .map(|c| self.counter.count(&c.text))
                .sum();
            if target_token >= 0 {
                rate = if reserved_tokens == 0 {
                    1.0
                } else {
                    (target_token as f64 / reserved_tokens as f64).min(1.0)
                };
            }
        } else if target_token > 0 {
            rate = (target_token as f64 / plan.origin_tokens as f64).min(1.0);
        }

        let reduce_rate = if options.use_token_level_filter {
            (1.0 - rate).max(0.0)
        } else {
            0.0
        };
        let mut compressed_list = Vec::with_capacity(kept.len());
        let mut labelled: Vec<Vec<(String, u8)>> = Vec::with_capacity(kept.len());
        for &i in &kept {
            let (text, words) = if reduce_rate <= 0.0 {
                self.keep_all(plan, i)
            } else {
                self.compress_context(plan, i, &chunk_words[i], reduce_rate)
            };
            compressed_list.push(text);
            labelled.push(words);
        }

        let compressed_tokens: usize = compressed_list.iter().map(|c| self.counter.count(c)).sum();
        let ratio = if compressed_tokens == 0 {
            1.0
        } else {
            plan.origin_tokens as f64 / compressed_tokens as f64
        };
        let word_labels = options.return_word_label.then(|| {
            let mut all = Vec::new();
            let mut next = labelled.iter();
            for (i, chunks) in chunk_words.iter().enumerate() {
                if context_label[i] {
                    all.extend(next.next().expect("one per kept context").iter().cloned());
                } else {
                    all.extend(
                        chunks
                            .iter()
                            .flatten()
                            .map(|w| (self.display_word(&w.text), 0)),
                    );
                }
            }
            all
        });
        let fn_labeled_original_prompt = word_labels.as_ref().map(|words| {
            words
                .iter()
                .map(|(w, l)| format!("{w}{}{l}", options.label_sep))
                .collect::<Vec<_>>()
                .join(&options.word_sep)
        });
        Compressed {
            compressed_prompt: compressed_list.join("\n\n"),
            compressed_prompt_list: compressed_list,
            origin_tokens: plan.origin_tokens,
            compressed_tokens,
            ratio,
            word_labels,
            fn_labeled_original_prompt,
            kept_contexts: kept,
        }
    }

    /// A word as the reference lists it in labels (SentencePiece words lose their `▁`).
    fn display_word(&self, word: &str) -> String {
        match self.tokenizer.family() {
            SubwordFamily::SentencePiece => word.trim_start_matches('▁').to_string(),
            SubwordFamily::WordPiece => word.to_string(),
        }
    }

    /// `__compress` with `reduce_rate <= 0`: every word kept.
    fn keep_all(&self, plan: &Plan, context: usize) -> (String, Vec<(String, u8)>) {
        let chunks = &plan.chunks[context];
        let mut words = Vec::new();
        let mut texts = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            let text = restore(&chunk.text, &plan.token_map);
            words.extend(
                self.words
                    .find_iter(&text)
                    .map(|m| (m.as_str().to_string(), 1)),
            );
            texts.push(text);
        }
        let text = match plan.options.output {
            OutputText::Reference => texts.concat(),
            OutputText::Original => restore(&plan.contexts[context], &plan.token_map),
        };
        (text, words)
    }

    /// `__merge_token_to_word` over one chunk.
    fn merge_words(&self, chunk: &Chunk, probs: &[f32], plan: &Plan) -> Vec<Word> {
        let options = &plan.options;
        let placeholders: HashSet<&str> = plan.token_map.iter().map(|(_, n)| n.as_str()).collect();
        let forced =
            |t: &str| options.force_tokens.iter().any(|f| f == t) || placeholders.contains(t);
        let mut words: Vec<Word> = Vec::new();
        // The reference carries the last word-start probability into continuation tokens of
        // the no-force list (a quirk kept for parity).
        let mut prob_no_force = 0f32;
        for (k, (token, &prob)) in chunk.tokens.iter().zip(probs).enumerate() {
            if self.tokenizer.is_special(token) {
                continue;
            }
            let span = chunk
                .spans
                .as_ref()
                .and_then(|s| s.get(k.wrapping_sub(1)).copied());
            let digit = options.force_reserve_digit && self.digit.is_match(token);
            if self.begins_word(token, &forced) || words.is_empty() {
                let pure = self.pure(token);
                prob_no_force = prob;
                let prob = if forced(pure) || digit {
                    Prob::assigned(1.0)
                } else {
                    Prob::model(prob)
                };
                words.push(Word {
                    text: restore(token, &plan.token_map),
                    span,
                    probs: vec![prob],
                    probs_no_force: vec![Prob::model(prob_no_force)],
                    tokens: 0,
                });
            } else {
                let word = words.last_mut().expect("not empty");
                word.text.push_str(self.pure(token));
                word.span = match (word.span, span) {
                    (Some((a, _)), Some((_, b))) => Some((a, b)),
                    (s, _) => s,
                };
                word.probs.push(if digit {
                    Prob::assigned(1.0)
                } else {
                    Prob::model(prob)
                });
                word.probs_no_force.push(Prob::model(prob_no_force));
            }
        }
        for word in &mut words {
            word.tokens = self.counter.count(&word.text);
        }
        words
    }

    fn begins_word(&self, token: &str, forced: &dyn Fn(&str) -> bool) -> bool {
        match self.tokenizer.family() {
            SubwordFamily::WordPiece => forced(self.pure(token)) || !token.starts_with("##"),
            SubwordFamily::SentencePiece => {
                (!token.is_empty() && PUNCTUATION.contains(token))
                    || forced(token)
                    || token.starts_with('▁')
            }
        }
    }

    /// `get_pure_token`: WordPiece strips every leading `#` (Python's `lstrip("##")`),
    /// SentencePiece every leading `▁`.
    fn pure<'t>(&self, token: &'t str) -> &'t str {
        match self.tokenizer.family() {
            SubwordFamily::WordPiece => token.trim_start_matches('#'),
            SubwordFamily::SentencePiece => token.trim_start_matches('▁'),
        }
    }

    /// Token-level compression of one context's chunks: per chunk threshold and kept words.
    fn compress_context(
        &self,
        plan: &Plan,
        context: usize,
        chunks: &[Vec<Word>],
        reduce_rate: f64,
    ) -> (String, Vec<(String, u8)>) {
        let options = &plan.options;
        let is_force = |w: &str| options.force_tokens.iter().any(|f| f == w);
        let mut texts = Vec::with_capacity(chunks.len());
        let mut labels = Vec::new();
        let mut kept_spans: Vec<(usize, usize)> = Vec::new();
        for words in chunks {
            let mut word_probs: Vec<Prob> = words
                .iter()
                .map(|w| word_prob(&w.probs, options.token_to_word))
                .collect();
            if options.drop_consecutive {
                let cut = threshold(&word_probs, (100.0 * reduce_rate) as i64);
                let mut between = false;
                let mut previous: Option<&str> = None;
                for (i, word) in words.iter().enumerate() {
                    if is_force(&word.text) {
                        if between {
                            between = false;
                        } else if previous == Some(word.text.as_str()) {
                            word_probs[i] = Prob::assigned(0.0);
                        }
                        previous = Some(&word.text);
                    } else if let Some(t) = cut {
                        between |= t.below(word_probs[i].value);
                    }
                }
            }
            let mut per_token = Vec::new();
            for (word, &p) in words.iter().zip(&word_probs) {
                per_token.extend(std::iter::repeat_n(p, word.tokens));
            }
            let cut = threshold(&per_token, (100.0 * reduce_rate + 1.0) as i64);
            let mut keep_words: Vec<String> = Vec::new();
            for (word, &p) in words.iter().zip(&word_probs) {
                let keep = cut.is_some_and(|t| t.keeps(p.value));
                if keep
                    && !(options.drop_consecutive
                        && is_force(&word.text)
                        && keep_words.last() == Some(&word.text))
                {
                    keep_words.push(word.text.clone());
                    if let Some(span) = word.span {
                        kept_spans.push(span);
                    }
                    labels.push((self.display_word(&word.text), 1));
                } else {
                    labels.push((self.display_word(&word.text), 0));
                }
            }
            texts.push(
                self.tokenizer
                    .tokens_to_string(&keep_words)
                    .unwrap_or_else(|_| keep_words.join(" ")),
            );
        }
        let text = match options.output {
            OutputText::Reference => texts.concat(),
            OutputText::Original => {
                join_spans(&plan.contexts[context], &kept_spans, &plan.token_map)
            }
        };
        (text, labels)
    }
}

/// The kept words as written in `text`, a space between words that were apart.
fn join_spans(text: &str, spans: &[(usize, usize)], token_map: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut previous_end: Option<usize> = None;
    for &(start, end) in spans {
        if let Some(p) = previous_end
            && p != start
        {
            out.push(' ');
        }
        out.push_str(&text[start..end]);
        previous_end = Some(end);
    }
    restore(&out, token_map)
}

/// `replace_added_token`: placeholders back to the force tokens they stand for.
fn restore(text: &str, token_map: &[(String, String)]) -> String {
    let mut out = text.to_string();
    for (ori, new) in token_map {
        out = out.replace(new.as_str(), ori);
    }
    out
}

/// `__token_prob_to_word_prob` for one word: `sum(p) / len(p)` stays a Python float only when
/// every term is one.
fn word_prob(probs: &[Prob], mode: TokenToWord) -> Prob {
    match mode {
        TokenToWord::Mean => {
            let values: Vec<f32> = probs.iter().map(|p| p.value).collect();
            Prob {
                value: mean_f32(&values),
                exact: probs.iter().all(|p| p.exact),
            }
        }
        TokenToWord::First => probs[0],
    }
}

/// `sum(p) / len(p)` accumulated in `f32` in order, as Python does over numpy float32 values.
fn mean_f32(values: &[f32]) -> f32 {
    let mut sum = 0f32;
    for &v in values {
        sum += v;
    }
    sum / values.len() as f32
}
