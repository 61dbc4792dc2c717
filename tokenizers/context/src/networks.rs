//! The networks of the context compressors, on [`Network`]: a keep/drop token classifier
//! (LLMLingua-2) and a sentence encoder (RECOMP). Both take `input_ids` and `attention_mask`
//! (int64 `[N, T]`); the classifier returns `logits` `[N, T, 2]` (keep probability
//! `softmax(logits)[1]`), the encoder `embedding` `[N, D]` (unit length: mean pooling and
//! normalization are inside the graph).

use std::sync::Arc;

use serde::Deserialize;
use terse_core::{Error, Network, TensorData};
use terse_lingua::Lingua2 as Lingua2Planner;
use terse_text::TextTokenizer;

/// The sizes a model's `config` asset declares.
#[derive(Deserialize)]
struct Config {
    format: String,
    max_seq_len: usize,
    max_batch_size: usize,
    #[serde(default)]
    dimension: usize,
}

impl Config {
    fn parse(bytes: &[u8], format: &str) -> Result<Self, String> {
        let config: Config = serde_json::from_slice(bytes).map_err(|e| format!("config: {e}"))?;
        if config.format != format || config.max_seq_len < 8 || config.max_batch_size == 0 {
            return Err("config: unsupported format or sizes".into());
        }
        Ok(config)
    }
}

/// The tokenizer of a `tokenizer` asset and its padding id.
fn tokenizer(bytes: &[u8]) -> Result<(TextTokenizer, u32), String> {
    let tokenizer = TextTokenizer::from_bytes(bytes).map_err(|e| e.to_string())?;
    let pad_id = tokenizer.ids(std::slice::from_ref(&tokenizer.special().pad))[0];
    Ok((tokenizer, pad_id))
}

/// `input_ids` and `attention_mask` of a batch of token-id rows padded to `width`.
fn encoder_inputs(batch: &[&[u32]], width: usize, pad_id: u32) -> Vec<TensorData> {
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

/// Runs `network` on a padded batch and returns its first output as `f32`, checked to hold
/// `per_row` values per row.
async fn run_rows(
    network: &dyn Network,
    batch: &[&[u32]],
    pad_id: u32,
    per_row: impl Fn(usize) -> usize,
) -> Result<(Vec<f32>, usize), Error> {
    let width = batch.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
    let outputs = network.run(encoder_inputs(batch, width, pad_id)).await?;
    let values = outputs
        .first()
        .and_then(|t| t.to_f32())
        .ok_or_else(|| Error::internal(format!("{} returned no fp32 output", network.name())))?;
    let expected = batch.len() * per_row(width);
    if values.len() != expected {
        return Err(Error::internal(format!(
            "{} returned {} values for {} rows of width {width}, expected {expected}",
            network.name(),
            values.len(),
            batch.len()
        )));
    }
    Ok((values, width))
}

/// A keep/drop classifier with its tokenizer and the LLMLingua-2 planner over it.
pub struct KeepClassifier {
    network: Arc<dyn Network>,
    /// The LLMLingua-2 planner over the classifier's tokenizer.
    pub lingua: Lingua2Planner,
    /// Longest input, framing tokens included.
    pub max_seq_len: usize,
    /// Rows per classifier call.
    pub max_batch_size: usize,
    pad_id: u32,
}

impl KeepClassifier {
    /// From a model's assets: `config` (`terse-keep-classifier/1`: max_seq_len,
    /// max_batch_size) and `tokenizer` (tokenizer.json with the `[NEWi]` placeholders).
    pub fn new(
        config: &[u8],
        tokenizer_json: &[u8],
        network: Arc<dyn Network>,
    ) -> Result<Self, String> {
        let config = Config::parse(config, "terse-keep-classifier/1")?;
        let (tokenizer, pad_id) = tokenizer(tokenizer_json)?;
        let lingua =
            Lingua2Planner::new(tokenizer, config.max_seq_len).map_err(|e| e.to_string())?;
        Ok(Self {
            network,
            lingua,
            max_seq_len: config.max_seq_len,
            max_batch_size: config.max_batch_size,
            pad_id,
        })
    }

    /// Keep probabilities of every token of every input, in batches of `max_batch_size` rows
    /// padded to the batch's longest; the batches run concurrently, results in input order. A
    /// model with static activation scales gives every row the same probabilities whatever its
    /// padding and batch-mates (the parity test holds it to that).
    pub async fn keep_probabilities(&self, inputs: &[&[u32]]) -> Result<Vec<Vec<f32>>, Error> {
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

    async fn classify_batch(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>, Error> {
        let (logits, width) =
            run_rows(self.network.as_ref(), batch, self.pad_id, |width| width * 2).await?;
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

/// `softmax([drop, keep])[1]` in f32 as torch computes it: shift by the max, exponentiate,
/// divide by the sum.
fn keep_probability(drop: f32, keep: f32) -> f32 {
    let max = drop.max(keep);
    let (a, b) = ((drop - max).exp(), (keep - max).exp());
    b / (a + b)
}

/// A sentence encoder with its tokenizer.
pub struct SentenceEncoder {
    network: Arc<dyn Network>,
    tokenizer: TextTokenizer,
    max_seq_len: usize,
    max_batch_size: usize,
    dimension: usize,
    pad_id: u32,
}

impl SentenceEncoder {
    /// From a model's assets `config` (`terse-sentence-encoder/1`: max_seq_len,
    /// max_batch_size, dimension) and `tokenizer`.
    pub fn new(
        config: &[u8],
        tokenizer_json: &[u8],
        network: Arc<dyn Network>,
    ) -> Result<Self, String> {
        let config = Config::parse(config, "terse-sentence-encoder/1")?;
        if config.dimension == 0 {
            return Err("config: unsupported format or sizes".into());
        }
        let (tokenizer, pad_id) = tokenizer(tokenizer_json)?;
        Ok(Self {
            network,
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
    pub async fn embed(&self, rows: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, Error> {
        let mut out = Vec::with_capacity(rows.len());
        let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        for batch in refs.chunks(self.max_batch_size) {
            let dimension = self.dimension;
            let (values, _) =
                run_rows(self.network.as_ref(), batch, self.pad_id, |_| dimension).await?;
            out.extend(values.chunks(dimension).map(<[f32]>::to_vec));
        }
        Ok(out)
    }
}
