//! The local causal language model as a runtime feature (issues 21 and 22).
//!
//! A [`CausalLm`] wraps a network with the interface of `models/repository/smollm2-135m`
//! (built by `models/scripts/smollm2/build_onnx.py`): `input_ids`, `attention_mask` and
//! `past_key_values` in, `logits` and `present_key_values` out. It tokenizes text, runs a
//! prefill, continues from a [`KvCache`] one chunk of tokens at a time without re-running the
//! prefix, and turns logits into next-token log-probabilities. Compressors that score text by
//! perplexity and the KV-cache codec's quality evaluation share it.
//!
//! ```no_run
//! # async fn demo(lm: terse_causal_lm::CausalLm) -> Result<(), terse_core::Error> {
//! let tokens = lm.tokenize("The capital of France is Paris.")?;
//! let prefill = lm.forward(&tokens[..4], None).await?;
//! let rest = lm.forward(&tokens[4..], Some(&prefill.cache)).await?; // reuses the cache
//! let surprisal = -rest.log_prob(0, tokens[5]);
//! # Ok(()) }
//! ```

use std::sync::Arc;

use serde::Deserialize;
use terse_core::{DataType, Error, KvCache, KvShape, Network, TensorData};
use tokenizers::Tokenizer;

/// The model's dimensions and special tokens, from the `config` asset of its manifest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LmConfig {
    /// Transformer blocks.
    pub layers: usize,
    /// Key/value heads per block.
    pub kv_heads: usize,
    /// Channels per head.
    pub head_dim: usize,
    /// Vocabulary size (logits per position).
    pub vocab: usize,
    /// Longest sequence (cached plus new tokens) the model was trained for.
    pub context_length: usize,
    /// Beginning-of-sequence token id.
    pub bos_token_id: u32,
    /// End-of-sequence token id.
    pub eos_token_id: u32,
}

/// What one forward pass returned: logits of every new position and the cache after them.
#[derive(Debug, Clone)]
pub struct Forward {
    /// The logits as the network returned them: little-endian f32 bytes, position-major (kept
    /// as bytes: a pass of 512 positions holds 100 MB of them, and a second copy costs more
    /// than reading each row where it is used).
    logits: Vec<u8>,
    vocab: usize,
    /// The KV cache of the past and the new tokens.
    pub cache: KvCache,
}

impl Forward {
    /// Number of new positions.
    pub fn positions(&self) -> usize {
        self.logits.len() / (4 * self.vocab)
    }

    /// Logits at new position `i` (predicting the token after it).
    pub fn logits(&self, i: usize) -> Vec<f32> {
        terse_core::from_le_bytes(self.row(i))
    }

    fn row(&self, i: usize) -> &[u8] {
        &self.logits[i * 4 * self.vocab..(i + 1) * 4 * self.vocab]
    }

    /// `log p(token | everything up to and including new position i)`.
    pub fn log_prob(&self, i: usize, token: u32) -> f32 {
        log_softmax_at_le(self.row(i), token as usize)
    }

    /// `log p(targets[i] | everything up to and including new position i)` for the first
    /// `targets.len()` new positions: [`Forward::log_prob`] of each, the rows shared among the
    /// machine's cores (each value is computed alone, so the split does not change it).
    pub fn log_probs(&self, targets: &[u32]) -> Vec<f32> {
        let count = targets.len().min(self.positions());
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(count.div_ceil(ROWS_PER_THREAD))
            .max(1);
        let mut out = vec![0f32; count];
        let per = count.div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            for (part, (outs, tokens)) in out.chunks_mut(per).zip(targets.chunks(per)).enumerate() {
                scope.spawn(move || {
                    for (k, (o, &t)) in outs.iter_mut().zip(tokens).enumerate() {
                        *o = self.log_prob(part * per + k, t);
                    }
                });
            }
        });
        out
    }

    /// The most likely next token after new position `i` (lowest id on ties).
    pub fn top1(&self, i: usize) -> u32 {
        argmax(&self.logits(i)) as u32
    }
}

/// Fewest rows worth a thread of their own in [`Forward::log_probs`] (a row takes about
/// 0.2 ms).
const ROWS_PER_THREAD: usize = 32;

/// The f32 values of little-endian bytes.
fn floats(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// `log softmax(row)[index]`, accumulated in f64.
pub fn log_softmax_at(row: &[f32], index: usize) -> f32 {
    log_softmax_at_le(&terse_core::le_bytes(row), index)
}

/// [`log_softmax_at`] of a row given as little-endian f32 bytes. The sum of exponentials runs
/// in eight f64 lanes through [`exp_nonpositive`], which the compiler vectorizes: a fifth of
/// the time of `f64::exp` one element after another, and the same f32 result but where the
/// f64 values sit within 1e-15 of an f32 rounding boundary.
fn log_softmax_at_le(row: &[u8], index: usize) -> f32 {
    const LANES: usize = 8;
    let max = floats(row).fold(f32::NEG_INFINITY, f32::max);
    let mut lanes = [0f64; LANES];
    let chunks = row.chunks_exact(4 * LANES);
    let rest = floats(chunks.remainder())
        .map(|v| exp_nonpositive(f64::from(v - max)))
        .sum::<f64>();
    for chunk in chunks {
        let mut x = [0f64; LANES];
        for (x, v) in x.iter_mut().zip(floats(chunk)) {
            *x = f64::from(v - max);
        }
        for (lane, x) in lanes.iter_mut().zip(x) {
            *lane += exp_nonpositive(x);
        }
    }
    let sum = lanes.iter().sum::<f64>() + rest;
    let at = floats(&row[4 * index..4 * index + 4])
        .next()
        .unwrap_or(f32::NAN);
    (f64::from(at - max) - sum.ln()) as f32
}

/// `e^x` for `x <= 0` within 2 ulp of `f64::exp`, in straight-line arithmetic the compiler
/// vectorizes: Cody-Waite reduction `x = k ln 2 + r` with `|r| <= ln 2 / 2`, a degree-13 Taylor
/// polynomial of `e^r` (truncation under 1e-17) and `2^k` from the exponent bits. Below -708
/// it returns 0 (such terms are under 1e-307 of a softmax sum that is at least 1); NaN stays
/// NaN.
#[inline(always)]
pub fn exp_nonpositive(x: f64) -> f64 {
    // fdlibm's split of ln 2: the high part has trailing zero bits, so k × LN2_HI is exact.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    /// 1.5 × 2^52: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let clamped = if x < -708.0 { -708.0 } else { x };
    let shifted = clamped * std::f64::consts::LOG2_E + ROUND;
    let k = shifted - ROUND;
    let r = (clamped - k * LN2_HI) - k * LN2_LO;
    let mut p = 1.0 / 6_227_020_800.0;
    for d in [
        479_001_600.0,
        39_916_800.0,
        3_628_800.0,
        362_880.0,
        40_320.0,
        5_040.0,
        720.0,
        120.0,
        24.0,
        6.0,
        2.0,
        1.0,
        1.0,
    ] {
        p = p * r + 1.0 / d;
    }
    // The low mantissa bits of `shifted` hold 2^51 + k; k is in [-1021, 0], so 2^k is the
    // normal number whose exponent field is k + 1023 (the shift keeps its low 12 bits, and
    // 2^51 is a multiple of 2^12).
    let scale = f64::from_bits(shifted.to_bits().wrapping_add(1023) << 52);
    let value = p * scale;
    if x < -708.0 { 0.0 } else { value }
}

/// Index of the largest value (the first one on ties).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// A causal language model with a KV cache.
pub struct CausalLm {
    network: Arc<dyn Network>,
    tokenizer: Tokenizer,
    config: LmConfig,
}

impl std::fmt::Debug for CausalLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CausalLm")
            .field("network", &self.network.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CausalLm {
    /// A model of `network` with its `tokenizer.json` and `config.json` assets.
    pub fn new(network: Arc<dyn Network>, tokenizer: &[u8], config: &[u8]) -> Result<Self, Error> {
        let tokenizer = Tokenizer::from_bytes(tokenizer)
            .map_err(|e| Error::internal(format!("causal LM tokenizer: {e}")))?;
        let config: LmConfig = serde_json::from_slice(config)
            .map_err(|e| Error::internal(format!("causal LM config: {e}")))?;
        if config.layers == 0 || config.kv_heads == 0 || config.head_dim == 0 || config.vocab == 0 {
            return Err(Error::internal(format!(
                "causal LM config has an empty dimension: {config:?}"
            )));
        }
        if tokenizer.get_vocab_size(true) != config.vocab {
            return Err(Error::internal(format!(
                "the causal LM tokenizer has {} tokens, its config {}",
                tokenizer.get_vocab_size(true),
                config.vocab
            )));
        }
        Ok(Self {
            network,
            tokenizer,
            config,
        })
    }

    /// Dimensions and special tokens.
    pub fn config(&self) -> &LmConfig {
        &self.config
    }

    /// The network's name (`name:version`).
    pub fn name(&self) -> String {
        self.network.name()
    }

    /// Token ids of `text` (no special tokens added).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, Error> {
        self.tokenizer
            .encode(text, false)
            .map(|encoding| encoding.get_ids().to_vec())
            .map_err(|e| Error::invalid(format!("cannot tokenize the text: {e}")))
    }

    /// Token ids of `text`, each with the byte offset in `text` where it starts (no special
    /// tokens added).
    pub fn tokenize_with_starts(&self, text: &str) -> Result<Vec<(u32, usize)>, Error> {
        self.tokenizer
            .encode(text, false)
            .map(|encoding| {
                let starts = encoding.get_offsets().iter().map(|&(start, _)| start);
                encoding.get_ids().iter().copied().zip(starts).collect()
            })
            .map_err(|e| Error::invalid(format!("cannot tokenize the text: {e}")))
    }

    /// The text of `ids` (special tokens kept).
    pub fn detokenize(&self, ids: &[u32]) -> Result<String, Error> {
        self.tokenizer
            .decode(ids, false)
            .map_err(|e| Error::invalid(format!("cannot decode token ids: {e}")))
    }

    /// The shape a cache of `tokens` tokens of this model has.
    pub fn cache_shape(&self, tokens: usize) -> KvShape {
        KvShape {
            layers: self.config.layers,
            kv_heads: self.config.kv_heads,
            tokens,
            head_dim: self.config.head_dim,
        }
    }

    /// Runs `tokens` after `past` (none: from the start) and returns the logits of every new
    /// position and the extended cache.
    pub async fn forward(&self, tokens: &[u32], past: Option<&KvCache>) -> Result<Forward, Error> {
        let past_tokens = past.map_or(0, |p| p.shape().tokens);
        if let Some(past) = past
            && past.shape() != self.cache_shape(past_tokens)
        {
            return Err(Error::invalid(format!(
                "the KV cache has shape {:?}; {} needs {:?}",
                past.shape(),
                self.network.name(),
                self.cache_shape(past_tokens)
            )));
        }
        if tokens.is_empty() {
            return Err(Error::invalid("no tokens to run"));
        }
        let total = past_tokens + tokens.len();
        if total > self.config.context_length {
            return Err(Error::new(
                terse_core::ErrorKind::TooLarge,
                format!(
                    "{past_tokens} cached and {} new tokens exceed the model's context of {}",
                    tokens.len(),
                    self.config.context_length
                ),
            ));
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= self.config.vocab) {
            return Err(Error::invalid(format!(
                "token id {bad} is outside the vocabulary of {}",
                self.config.vocab
            )));
        }
        let ids: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
        let c = &self.config;
        let past_shape = [c.layers, 2, 1, c.kv_heads, past_tokens, c.head_dim].map(|d| d as i64);
        let inputs = vec![
            TensorData::from_i64("input_ids", vec![1, ids.len() as i64], &ids),
            TensorData::from_i64("attention_mask", vec![1, total as i64], &vec![1; total]),
            TensorData::from_f32(
                "past_key_values",
                past_shape.to_vec(),
                past.map_or(&[][..], |p| p.values()),
            ),
        ];
        let outputs = self.network.run(inputs).await?;
        let [logits, present] = <[TensorData; 2]>::try_from(outputs).map_err(|outputs| {
            Error::internal(format!(
                "{} returned {} outputs, expected logits and present_key_values",
                self.network.name(),
                outputs.len()
            ))
        })?;
        let expect = |tensor: &TensorData, shape: Vec<i64>| {
            if tensor.datatype != DataType::Fp32
                || tensor.shape != shape
                || tensor.validate().is_err()
            {
                return Err(Error::internal(format!(
                    "{} output `{}` is {} {:?} in {} bytes, expected fp32 {shape:?}",
                    self.network.name(),
                    tensor.name,
                    tensor.datatype,
                    tensor.shape,
                    tensor.bytes.len()
                )));
            }
            Ok(())
        };
        expect(&logits, vec![1, tokens.len() as i64, c.vocab as i64])?;
        let present_shape = [c.layers, 2, 1, c.kv_heads, total, c.head_dim].map(|d| d as i64);
        expect(&present, present_shape.to_vec())?;
        let present = terse_core::from_le_bytes(&present.bytes);
        Ok(Forward {
            logits: logits.bytes,
            vocab: c.vocab,
            cache: KvCache::new(self.cache_shape(total), present)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vectorized_exp_is_within_two_ulp_of_the_standard_one() {
        let mut worst = 0u64;
        for i in 0..=2_000_000u32 {
            let x = -708.0 * f64::from(i) / 2_000_000.0;
            let (ours, std) = (exp_nonpositive(x), x.exp());
            worst = worst.max(ours.to_bits().abs_diff(std.to_bits()));
        }
        assert!(worst <= 2, "{worst} ulp");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-800.0), 0.0);
        assert_eq!(exp_nonpositive(f64::NEG_INFINITY), 0.0);
        assert!(exp_nonpositive(f64::NAN).is_nan());
    }

    #[test]
    fn log_softmax_matches_the_plain_f64_sum_on_logit_like_rows() {
        let plain = |row: &[f32], index: usize| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f64 = row.iter().map(|&v| f64::from(v - max).exp()).sum();
            (f64::from(row[index] - max) - sum.ln()) as f32
        };
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut unit = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut differing = 0;
        for case in 0..200 {
            let len = 1 + case * 97;
            let row: Vec<f32> = (0..len).map(|_| ((unit() - 0.7) * 30.0) as f32).collect();
            for index in [0, len / 2, len - 1] {
                let (ours, reference) = (log_softmax_at(&row, index), plain(&row, index));
                assert!(
                    ours.to_bits().abs_diff(reference.to_bits()) <= 1,
                    "{ours} vs {reference}"
                );
                differing += usize::from(ours != reference);
            }
        }
        assert!(differing <= 1, "{differing} of 600 differ in the last bit");
    }
}
