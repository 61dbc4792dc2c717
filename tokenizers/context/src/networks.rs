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

    /// Keep probabilities of every token of every input, in batches of at most `max_batch_size`
    /// rows and [`MAX_BATCH_TOKENS`] tokens padded to the batch's longest; the batches run
    /// concurrently on the model's sessions, results in input order. A model with static
    /// activation scales gives every row the same probabilities whatever its padding and
    /// batch-mates (the parity test holds it to that).
    pub async fn keep_probabilities(&self, inputs: &[&[u32]]) -> Result<Vec<Vec<f32>>, Error> {
        // Rows of similar length share a batch, so little of a call is padding.
        let mut order: Vec<usize> = (0..inputs.len()).collect();
        order.sort_by_key(|&i| inputs[i].len());
        let sorted: Vec<&[u32]> = order.iter().map(|&i| inputs[i]).collect();
        let batches = token_bounded_batches(&sorted, self.max_batch_size, MAX_BATCH_TOKENS)
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

/// Most padded tokens in one classifier call. On the CPU, batches cost more per token than
/// single rows (16 × 512 tokens: 20 % more in ONNX Runtime alone, their attention scores are
/// 200 MB per layer), and a few large calls leave sessions of the pool idle while the last one
/// runs: in the context eval bench, 2,048 / 1,024 / 512 / 256 tokens per call gave 4.9 / 3.8 /
/// 3.3 / 3.4 s for 69 chunks and 1.3 / 1.1 / 0.8 / 0.9 s for 50 paragraphs. Where batches pay
/// (GPU providers), the runtime's dynamic batching merges these calls again.
const MAX_BATCH_TOKENS: usize = 512;

/// Consecutive runs of `rows`, sorted by length, of at most `max_rows` rows and at most
/// `max_tokens` tokens once padded to their longest, which is their last (a longer row goes
/// alone).
fn token_bounded_batches<'r, 'a>(
    rows: &'r [&'a [u32]],
    max_rows: usize,
    max_tokens: usize,
) -> impl Iterator<Item = &'r [&'a [u32]]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut take = 1;
        while take < rest.len().min(max_rows) && rest[take].len() * (take + 1) <= max_tokens {
            take += 1;
        }
        let (batch, tail) = rest.split_at(take);
        rest = tail;
        Some(batch)
    })
}

/// `softmax([drop, keep])[1]` in f32 bit for bit as PyTorch's CPU kernel computes it
/// (`_vec_softmax_lastdim`, which llmlingua's `F.softmax` runs): shift by the max, SLEEF's
/// `expf_u10` ([`sleef_expf`]), then multiply by the reciprocal of the sum. A correctly rounded
/// `exp` or a division instead differ in the last bit for about a quarter of tokens, which flips
/// words that sit at the keep threshold (7 of 300 SQuAD paragraphs with keep model version 4).
fn keep_probability(drop: f32, keep: f32) -> f32 {
    let max = drop.max(keep);
    let (a, b) = (sleef_expf(drop - max), sleef_expf(keep - max));
    b * (1.0 / (a + b))
}

/// SLEEF's single-precision `exp` (1.0-ulp variant, `xexpf` of sleefsimdsp.c) as its vector
/// kernels compute it on CPUs with fused multiply-add (x86-64 AVX2/AVX-512, AArch64): the
/// exponent by round-to-nearest-even of `d / ln 2`, a two-part `ln 2` reduction, a degree-5
/// polynomial, and the scale applied in two halves. Inputs here are ≤ 0 (shifted by the max).
#[allow(clippy::excessive_precision)] // SLEEF's constants as it writes them
fn sleef_expf(d: f32) -> f32 {
    const R_LN2: f32 = std::f32::consts::LOG2_E; // SLEEF's R_LN2f, the same f32
    const L2U: f32 = 0.693145751953125;
    const L2L: f32 = 1.428606765330187045e-06;
    if d < -104.0 {
        return 0.0;
    }
    if d > 1e10 {
        return f32::INFINITY;
    }
    let q = (d * R_LN2).round_ties_even() as i32;
    let qf = q as f32;
    let s = qf.mul_add(-L2U, d);
    let s = qf.mul_add(-L2L, s);
    let mut u: f32 = 0.000198527617612853646278381;
    for c in [
        0.00139304355252534151077271,
        0.00833336077630519866943359,
        0.0416664853692054748535156,
        0.166666671633720397949219,
        0.5,
    ] {
        u = u.mul_add(s, c);
    }
    let u = 1.0 + (s * s).mul_add(u, s);
    let pow2 = |e: i32| f32::from_bits(((e + 0x7f) as u32) << 23);
    let half = q >> 1;
    u * pow2(half) * pow2(q - half)
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

#[cfg(test)]
mod tests {
    use super::{keep_probability, token_bounded_batches};

    #[test]
    fn batches_are_bounded_by_rows_and_padded_tokens() {
        let rows: Vec<Vec<u32>> = [100, 100, 200, 300, 600, 600]
            .iter()
            .map(|&n| vec![0; n])
            .collect();
        let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        let sizes = |max_rows, max_tokens| -> Vec<Vec<usize>> {
            token_bounded_batches(&refs, max_rows, max_tokens)
                .map(|b| b.iter().map(|r| r.len()).collect())
                .collect()
        };
        assert_eq!(
            sizes(16, 512),
            [vec![100, 100], vec![200], vec![300], vec![600], vec![600]]
        );
        assert_eq!(
            sizes(2, 100_000),
            [vec![100, 100], vec![200, 300], vec![600, 600]]
        );
        assert_eq!(sizes(16, 100_000), [vec![100, 100, 200, 300, 600, 600]]);
    }

    /// PyTorch's softmax over real keep-model logits and wide random pairs
    /// (tokenizers/lingua/reference/make_softmax_fixture.py): equal bit for bit.
    #[test]
    fn keep_probabilities_equal_torch_softmax_bit_for_bit() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/torch_softmax.json")).unwrap();
        let pairs = fixture["pairs"].as_array().unwrap();
        assert!(pairs.len() >= 1000);
        let bits = |v: &serde_json::Value| f32::from_bits(v.as_u64().unwrap() as u32);
        let differ: Vec<_> = pairs
            .iter()
            .filter_map(|p| {
                let (drop, keep, torch) = (bits(&p[0]), bits(&p[1]), bits(&p[2]));
                let ours = keep_probability(drop, keep);
                (ours.to_bits() != torch.to_bits()).then_some((drop, keep, ours, torch))
            })
            .collect();
        assert!(
            differ.is_empty(),
            "{} differ, e.g. {:?}",
            differ.len(),
            &differ[..differ.len().min(3)]
        );
    }
}
