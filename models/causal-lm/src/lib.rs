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
    logits: Vec<f32>,
    vocab: usize,
    /// The KV cache of the past and the new tokens.
    pub cache: KvCache,
}

impl Forward {
    /// Number of new positions.
    pub fn positions(&self) -> usize {
        self.logits.len() / self.vocab
    }

    /// Logits at new position `i` (predicting the token after it).
    pub fn logits(&self, i: usize) -> &[f32] {
        &self.logits[i * self.vocab..(i + 1) * self.vocab]
    }

    /// `log p(token | everything up to and including new position i)`.
    pub fn log_prob(&self, i: usize, token: u32) -> f32 {
        log_softmax_at(self.logits(i), token as usize)
    }

    /// The most likely next token after new position `i` (lowest id on ties).
    pub fn top1(&self, i: usize) -> u32 {
        argmax(self.logits(i)) as u32
    }
}

/// `log softmax(row)[index]`, accumulated in f64.
pub fn log_softmax_at(row: &[f32], index: usize) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = row.iter().map(|&v| f64::from(v - max).exp()).sum();
    (f64::from(row[index] - max) - sum.ln()) as f32
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
            if tensor.datatype != DataType::Fp32 || tensor.shape != shape {
                return Err(Error::internal(format!(
                    "{} output `{}` is {} {:?}, expected fp32 {shape:?}",
                    self.network.name(),
                    tensor.name,
                    tensor.datatype,
                    tensor.shape
                )));
            }
            tensor.to_f32().ok_or_else(|| {
                Error::internal(format!(
                    "output `{}` is not a consistent fp32 tensor",
                    tensor.name
                ))
            })
        };
        let logits = expect(&logits, vec![1, tokens.len() as i64, c.vocab as i64])?;
        let present_shape = [c.layers, 2, 1, c.kv_heads, total, c.head_dim].map(|d| d as i64);
        let present = expect(&present, present_shape.to_vec())?;
        Ok(Forward {
            logits,
            vocab: c.vocab,
            cache: KvCache::new(self.cache_shape(total), present)?,
        })
    }
}
