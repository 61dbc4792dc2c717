//! A sentence encoder run through the model runtime: inputs `input_ids`, `attention_mask`
//! (int64 `[N, T]`), output `embedding` `[N, D]` (unit length: mean pooling and normalization
//! are inside the graph).

use serde::Deserialize;
use terse_runtime::{InferError, LoadedModel, ManifestEntry};
use terse_text::TextTokenizer;

use crate::classifier::encoder_inputs;

#[derive(Deserialize)]
struct EncoderConfig {
    format: String,
    max_seq_len: usize,
    max_batch_size: usize,
    dimension: usize,
}

/// A loaded sentence encoder with its tokenizer.
pub struct SentenceEncoder {
    model: std::sync::Arc<LoadedModel>,
    tokenizer: TextTokenizer,
    max_seq_len: usize,
    max_batch_size: usize,
    dimension: usize,
    pad_id: u32,
}

impl SentenceEncoder {
    /// From a model entry with assets `tokenizer` and `config` (`terse-sentence-encoder/1`).
    pub fn new(entry: &ManifestEntry, model: std::sync::Arc<LoadedModel>) -> Result<Self, String> {
        let read = |name: &str| {
            entry
                .read_asset(name)
                .map_err(|e| format!("asset `{name}`: {e}"))
        };
        let config: EncoderConfig =
            serde_json::from_slice(&read("config")?).map_err(|e| format!("config: {e}"))?;
        if config.format != "terse-sentence-encoder/1"
            || config.max_seq_len < 8
            || config.max_batch_size == 0
            || config.dimension == 0
        {
            return Err("config: unsupported format or sizes".into());
        }
        let tokenizer =
            TextTokenizer::from_bytes(&read("tokenizer")?).map_err(|e| e.to_string())?;
        let pad_id = tokenizer.ids(std::slice::from_ref(&tokenizer.special().pad))[0];
        Ok(Self {
            model,
            tokenizer,
            max_seq_len: config.max_seq_len,
            max_batch_size: config.max_batch_size,
            dimension: config.dimension,
            pad_id,
        })
    }

    /// Longest input in tokens (longer sentences are cut).
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// Token ids of a text framed by the start and end tokens, cut to `max_seq_len`.
    pub fn ids(&self, text: &str) -> Result<Vec<u32>, String> {
        let special = self.tokenizer.special();
        let mut tokens = vec![special.cls.clone()];
        let mut inner = self.tokenizer.tokenize(text).map_err(|e| e.to_string())?;
        inner.truncate(self.max_seq_len - 2);
        tokens.extend(inner);
        tokens.push(special.sep.clone());
        Ok(self.tokenizer.ids(&tokens))
    }

    /// Unit embeddings of token-id rows, in batches padded to their longest row.
    pub async fn embed(&self, rows: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, InferError> {
        let mut out = Vec::with_capacity(rows.len());
        let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        for batch in refs.chunks(self.max_batch_size) {
            let width = batch.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
            let output = self
                .model
                .infer(encoder_inputs(batch, width, self.pad_id), &[])
                .await?;
            let values = output
                .outputs
                .first()
                .and_then(|t| t.to_f32())
                .ok_or_else(|| InferError::Execution("encoder returned no fp32 output".into()))?;
            if values.len() != batch.len() * self.dimension {
                return Err(InferError::Execution(format!(
                    "encoder returned {} values for {} rows of {}",
                    values.len(),
                    batch.len(),
                    self.dimension
                )));
            }
            out.extend(values.chunks(self.dimension).map(<[f32]>::to_vec));
        }
        Ok(out)
    }
}
