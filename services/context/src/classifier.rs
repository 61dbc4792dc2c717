//! A keep/drop token classifier (LLMLingua-2) run through the model runtime: inputs
//! `input_ids`, `attention_mask` (int64, `[N, T]`), output `logits` `[N, T, 2]`; the keep
//! probability of a token is `softmax(logits)[1]`.

use serde::Deserialize;
use terse_lingua::Lingua2;
use terse_runtime::{InferError, LoadedModel, ManifestEntry, TensorData};
use terse_text::TextTokenizer;

#[derive(Deserialize)]
struct ClassifierConfig {
    format: String,
    max_seq_len: usize,
    max_batch_size: usize,
}

/// A loaded keep/drop classifier with its tokenizer and compressor.
pub struct KeepClassifier {
    /// The network.
    pub model: std::sync::Arc<LoadedModel>,
    /// The LLMLingua-2 compressor over the model's tokenizer.
    pub lingua: Lingua2,
    /// Longest input, framing tokens included.
    pub max_seq_len: usize,
    /// Rows per classifier call.
    pub max_batch_size: usize,
    pad_id: u32,
}

impl KeepClassifier {
    /// From a model entry with assets `tokenizer` (tokenizer.json with the `[NEWi]`
    /// placeholders) and `config` (`terse-keep-classifier/1`: max_seq_len, max_batch_size).
    pub fn new(entry: &ManifestEntry, model: std::sync::Arc<LoadedModel>) -> Result<Self, String> {
        let read = |name: &str| {
            entry
                .read_asset(name)
                .map_err(|e| format!("asset `{name}`: {e}"))
        };
        let config: ClassifierConfig =
            serde_json::from_slice(&read("config")?).map_err(|e| format!("config: {e}"))?;
        if config.format != "terse-keep-classifier/1"
            || config.max_seq_len < 8
            || config.max_batch_size == 0
        {
            return Err("config: unsupported format or sizes".into());
        }
        let tokenizer =
            TextTokenizer::from_bytes(&read("tokenizer")?).map_err(|e| e.to_string())?;
        let pad_id = tokenizer.ids(std::slice::from_ref(&tokenizer.special().pad))[0];
        let lingua = Lingua2::new(tokenizer, config.max_seq_len).map_err(|e| e.to_string())?;
        Ok(Self {
            model,
            lingua,
            max_seq_len: config.max_seq_len,
            max_batch_size: config.max_batch_size,
            pad_id,
        })
    }

    /// Keep probabilities of every token of every input, in batches of `max_batch_size` rows
    /// padded to the batch's longest; the batches run concurrently on the model's session pool,
    /// results in input order. A model with static activation scales gives every row the same
    /// probabilities whatever its padding and batch-mates (the parity test holds it to that).
    pub async fn keep_probabilities(&self, inputs: &[&[u32]]) -> Result<Vec<Vec<f32>>, InferError> {
        // Rows of similar length share a batch, so little of a call is padding.
        let mut order: Vec<usize> = (0..inputs.len()).collect();
        order.sort_by_key(|&i| inputs[i].len());
        let sorted: Vec<&[u32]> = order.iter().map(|&i| inputs[i]).collect();
        let batches = sorted
            .chunks(self.max_batch_size)
            .map(|batch| self.classify_batch(batch));
        let results = futures_util::future::try_join_all(batches).await?;
        let mut out = vec![Vec::new(); inputs.len()];
        for (&i, row) in order.iter().zip(results.into_iter().flatten()) {
            out[i] = row;
        }
        Ok(out)
    }

    async fn classify_batch(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>, InferError> {
        let width = batch.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
        let output = self
            .model
            .infer(encoder_inputs(batch, width, self.pad_id), &[])
            .await?;
        let logits = output
            .outputs
            .first()
            .and_then(|t| t.to_f32())
            .ok_or_else(|| InferError::Execution("classifier returned no fp32 logits".into()))?;
        if logits.len() != batch.len() * width * 2 {
            return Err(InferError::Execution(format!(
                "classifier returned {} logits for {} x {width} tokens",
                logits.len(),
                batch.len()
            )));
        }
        Ok(batch
            .iter()
            .enumerate()
            .map(|(r, row)| {
                (0..row.len())
                    .map(|t| {
                        let at = (r * width + t) * 2;
                        keep_probability(logits[at], logits[at + 1])
                    })
                    .collect()
            })
            .collect())
    }
}

/// `input_ids` and `attention_mask` of a batch of token-id rows padded to `width`.
pub(crate) fn encoder_inputs(batch: &[&[u32]], width: usize, pad_id: u32) -> Vec<TensorData> {
    let mut ids = Vec::with_capacity(batch.len() * width);
    let mut mask = Vec::with_capacity(batch.len() * width);
    for row in batch {
        ids.extend(row.iter().map(|&i| i64::from(i)));
        ids.extend(std::iter::repeat_n(i64::from(pad_id), width - row.len()));
        mask.extend(std::iter::repeat_n(1i64, row.len()));
        mask.extend(std::iter::repeat_n(0i64, width - row.len()));
    }
    let shape = vec![batch.len() as i64, width as i64];
    vec![
        TensorData::from_i64("input_ids", shape.clone(), &ids),
        TensorData::from_i64("attention_mask", shape, &mask),
    ]
}

/// `softmax([drop, keep])[1]` in f32 as torch computes it: shift by the max, exponentiate,
/// divide by the sum.
fn keep_probability(drop: f32, keep: f32) -> f32 {
    let max = drop.max(keep);
    let (a, b) = ((drop - max).exp(), (keep - max).exp());
    b / (a + b)
}
