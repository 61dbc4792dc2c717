//! Adaptive (context-modelled) coding of generic integer streams with a range coder.
//!
//! Models learn symbol frequencies as they code, so encoder and decoder must visit symbols in
//! the same order: that is why this side uses constriction's range coder (a queue) rather than
//! ANS (a stack). All model arithmetic is integer, so decoding is identical on every machine.

use std::ops::Range;

use constriction::stream::{
    Decode, Encode,
    queue::{DefaultRangeDecoder, DefaultRangeEncoder},
};

use crate::{
    error::{EntropyError, Result},
    guided::GuidedRow,
    raw::{
        RANGE_SEAL, RANGE_SEAL_BITS, RAW_CHUNK_BITS, bit_length, chunk_model, chunks, length_model,
    },
    table::TABLE_PRECISION,
    words::{bytes_to_words, unzigzag, words_to_bytes, zigzag},
};

/// Largest alphabet of one adaptive model.
pub const MAX_ADAPTIVE_ALPHABET: usize = 4096;
const COUNT_INCREMENT: u32 = 32;
const COUNT_LIMIT: u32 = 1 << 16;
const FIRST_REBUILD: u32 = 4;
const MAX_REBUILD_INTERVAL: u32 = 1024;
/// Rebuilds cost one pass over the alphabet: small alphabets rebuild often (they learn fast),
/// large ones at most every 1024 symbols.
fn rebuild_cap(alphabet: usize) -> u32 {
    (alphabet as u32)
        .saturating_mul(4)
        .clamp(16, MAX_REBUILD_INTERVAL)
}

/// A categorical model over `0..alphabet` that adapts to the symbols coded with it.
#[derive(Debug, Clone)]
pub struct AdaptiveCategorical {
    counts: Vec<u32>,
    total: u32,
    model: GuidedRow,
    until_rebuild: u32,
    interval: u32,
}

impl AdaptiveCategorical {
    /// A model over `0..alphabet`, starting uniform.
    pub fn new(alphabet: usize) -> Result<Self> {
        Self::check_alphabet(alphabet)?;
        Ok(Self::from_counts(vec![1; alphabet]))
    }

    /// A model over `counts.len()` symbols starting from learned counts (each raised to at
    /// least 1, scaled down to at most 2^16 in total): a prior that keeps adapting.
    pub fn with_counts(counts: &[u32]) -> Result<Self> {
        Self::check_alphabet(counts.len())?;
        let total: u64 = counts.iter().map(|&c| u64::from(c.max(1))).sum();
        let scale = total.div_ceil(u64::from(COUNT_LIMIT)).max(1);
        Ok(Self::from_counts(
            counts
                .iter()
                .map(|&c| ((u64::from(c.max(1)) / scale).max(1)) as u32)
                .collect(),
        ))
    }

    fn check_alphabet(alphabet: usize) -> Result<()> {
        if alphabet == 0 || alphabet > MAX_ADAPTIVE_ALPHABET {
            return Err(EntropyError::InvalidModel(format!(
                "adaptive alphabet of {alphabet} symbols (must be 1..={MAX_ADAPTIVE_ALPHABET})"
            )));
        }
        Ok(())
    }

    /// The model of checked `counts` (each at least 1, at most 2^16 in total), before any
    /// symbol is coded.
    fn from_counts(counts: Vec<u32>) -> Self {
        let total = counts.iter().sum();
        let model = Self::quantize(&counts, total);
        Self {
            counts,
            total,
            model,
            until_rebuild: FIRST_REBUILD,
            interval: FIRST_REBUILD,
        }
    }

    /// Alphabet size.
    pub fn alphabet(&self) -> usize {
        self.counts.len()
    }

    fn quantize(counts: &[u32], total: u32) -> GuidedRow {
        GuidedRow::topped_up(Self::shares(counts, total))
    }

    /// Each count's share of the row, at least 1 each; the row tops the largest (the first of
    /// equals) up with the rounding remainder.
    fn shares(counts: &[u32], total: u32) -> impl Iterator<Item = u32> + '_ {
        let spare = (1u64 << TABLE_PRECISION) - counts.len() as u64;
        counts
            .iter()
            .map(move |&c| 1 + (u64::from(c) * spare / u64::from(total)) as u32)
    }

    fn update(&mut self, symbol: usize) {
        self.counts[symbol] += COUNT_INCREMENT;
        self.total += COUNT_INCREMENT;
        if self.total > COUNT_LIMIT {
            self.total = 0;
            for c in &mut self.counts {
                *c = c.div_ceil(2);
                self.total += *c;
            }
        }
        self.until_rebuild -= 1;
        if self.until_rebuild == 0 {
            self.model
                .refill_topped_up(Self::shares(&self.counts, self.total));
            self.interval = (self.interval * 2).min(rebuild_cap(self.counts.len()));
            self.until_rebuild = self.interval;
        }
    }
}

/// Writes adaptive-model symbols and raw bits into one range-coded stream.
#[derive(Debug, Default)]
pub struct AdaptiveEncoder {
    coder: DefaultRangeEncoder,
}

impl AdaptiveEncoder {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Codes `symbol` and lets `model` learn from it.
    pub fn encode(&mut self, model: &mut AdaptiveCategorical, symbol: usize) -> Result<()> {
        if symbol >= model.alphabet() {
            return Err(EntropyError::Encode(format!(
                "symbol {symbol} is outside the model's alphabet of {}",
                model.alphabet()
            )));
        }
        self.coder
            .encode_symbol(symbol, &model.model)
            .map_err(|e| EntropyError::Encode(format!("{e:?}")))?;
        model.update(symbol);
        Ok(())
    }

    /// Codes the low `bits` bits of `value` as equiprobable bits.
    pub fn encode_bits(&mut self, value: u64, bits: u32) -> Result<()> {
        for (chunk, width) in chunks(value, bits) {
            self.coder
                .encode_symbol(chunk, chunk_model(width))
                .map_err(|e| EntropyError::Encode(format!("{e:?}")))?;
        }
        Ok(())
    }

    /// Codes any `i64` with a length prefix (the escape payload).
    pub fn encode_raw_i64(&mut self, value: i64) -> Result<()> {
        let raw = zigzag(value);
        let bits = bit_length(raw);
        self.coder
            .encode_symbol(bits as usize, length_model())
            .map_err(|e| EntropyError::Encode(format!("{e:?}")))?;
        self.encode_bits(raw, bits)
    }

    /// Size so far, in bits (for rate accounting).
    pub fn num_bits(&self) -> usize {
        self.coder.num_bits()
    }

    /// The finished stream, closed by a seal that [`AdaptiveDecoder::close`] checks, so a
    /// decoder detects symbol counts that do not match the data.
    pub fn seal(mut self) -> Result<Vec<u8>> {
        self.encode_bits(RANGE_SEAL, RANGE_SEAL_BITS)?;
        Ok(words_to_bytes(
            &self
                .coder
                .into_compressed()
                .expect("vector backend cannot fail"),
        ))
    }
}

/// Reads a stream written by [`AdaptiveEncoder`]; models must be fed in the same order.
pub struct AdaptiveDecoder {
    coder: DefaultRangeDecoder,
}

impl AdaptiveDecoder {
    /// A decoder over a finished stream.
    pub fn new(bytes: &[u8]) -> Result<Self> {
        let words = bytes_to_words(bytes)?;
        let coder = DefaultRangeDecoder::from_compressed(words)
            .map_err(|e| EntropyError::Corrupt(format!("range stream: {e:?}")))?;
        Ok(Self { coder })
    }

    /// Decodes one symbol and lets `model` learn from it.
    pub fn decode(&mut self, model: &mut AdaptiveCategorical) -> Result<usize> {
        let symbol = self
            .coder
            .decode_symbol(&model.model)
            .map_err(|e| EntropyError::Corrupt(format!("range stream: {e:?}")))?;
        model.update(symbol);
        Ok(symbol)
    }

    /// Decodes `bits` raw bits.
    pub fn decode_bits(&mut self, bits: u32) -> Result<u64> {
        let mut value = 0u64;
        for (i, (_, width)) in chunks(u64::MAX, bits).enumerate() {
            let chunk = self
                .coder
                .decode_symbol(chunk_model(width))
                .map_err(|e| EntropyError::Corrupt(format!("range stream: {e:?}")))?;
            value |= (chunk as u64) << (i as u32 * RAW_CHUNK_BITS);
        }
        Ok(value)
    }

    /// Ends a stream written with [`AdaptiveEncoder::seal`]: checks the seal that follows the
    /// last symbol and that no data is left after it. Decoding more symbols than were coded
    /// (the range decoder reads zeros past the end) or fewer fails here.
    pub fn close(mut self) -> Result<()> {
        if self.decode_bits(RANGE_SEAL_BITS)? != RANGE_SEAL {
            return Err(EntropyError::Corrupt(
                "stream seal not found: the symbol count does not match the data".into(),
            ));
        }
        if !self.coder.maybe_exhausted() {
            return Err(EntropyError::Corrupt(
                "stream has data left after its seal".into(),
            ));
        }
        Ok(())
    }

    /// Decodes a value written by [`AdaptiveEncoder::encode_raw_i64`].
    pub fn decode_raw_i64(&mut self) -> Result<i64> {
        let bits = self
            .coder
            .decode_symbol(length_model())
            .map_err(|e| EntropyError::Corrupt(format!("range stream: {e:?}")))?
            as u32;
        Ok(unzigzag(self.decode_bits(bits)?))
    }
}

/// Adaptive coding of integers expected in `lo..=hi`, with one model per context.
///
/// Spans wider than [`MAX_ADAPTIVE_ALPHABET`] code their high part adaptively and the low bits
/// raw. Values outside `lo..=hi` are coded as an escape symbol followed by the value itself, so
/// any `i64` round-trips.
#[derive(Debug, Clone)]
pub struct AdaptiveIntegers {
    lo: i64,
    hi: i64,
    low_bits: u32,
    escape: usize,
    contexts: Vec<AdaptiveCategorical>,
}

impl AdaptiveIntegers {
    /// Models for `contexts` contexts over `lo..=hi`.
    pub fn new(lo: i64, hi: i64, contexts: usize) -> Result<Self> {
        Self::with_raw_low_bits(lo, hi, contexts, 0)
    }

    /// Models for `contexts` contexts over `lo..=hi` that code at least the `low_bits` lowest
    /// bits of each value's offset from `lo` raw: a smaller alphabet learns faster, which pays
    /// for wide, smooth distributions seen over few samples.
    pub fn with_raw_low_bits(lo: i64, hi: i64, contexts: usize, low_bits: u32) -> Result<Self> {
        if hi < lo {
            return Err(EntropyError::InvalidModel(format!(
                "empty integer range {lo}..={hi}"
            )));
        }
        if contexts == 0 {
            return Err(EntropyError::InvalidModel(
                "integer model needs at least one context".into(),
            ));
        }
        let span = (hi as i128 - lo as i128) as u128; // values 0..=span
        let mut low_bits = low_bits.min(u128::BITS - span.leading_zeros());
        while (span >> low_bits) + 1 > (MAX_ADAPTIVE_ALPHABET - 1) as u128 {
            low_bits += 1;
        }
        let escape = (span >> low_bits) as usize + 1;
        let contexts = (0..contexts)
            .map(|_| AdaptiveCategorical::new(escape + 1))
            .collect::<Result<_>>()?;
        Ok(Self {
            lo,
            hi,
            low_bits,
            escape,
            contexts,
        })
    }

    /// Starts context `ctx` from learned counts of the values `lo..=lo + counts.len() − 1`
    /// (only for ranges narrow enough to need no raw low bits); the escape keeps count 1.
    pub fn seed(&mut self, ctx: usize, counts: &[u32]) -> Result<()> {
        if self.low_bits != 0 || counts.len() != self.escape {
            return Err(EntropyError::InvalidModel(format!(
                "seed needs {} counts for a range without raw bits, got {}",
                self.escape,
                counts.len()
            )));
        }
        let mut with_escape = counts.to_vec();
        with_escape.push(1);
        let model = AdaptiveCategorical::with_counts(&with_escape)?;
        *self.context(ctx)? = model;
        Ok(())
    }

    /// A copy of contexts `range` alone (renumbered from 0), in their present state: lets a
    /// caller seed a full set of models once and start each coding from a cheap copy of the
    /// part it needs.
    pub fn subset(&self, range: Range<usize>) -> Result<Self> {
        let contexts = self.contexts.get(range.clone()).ok_or_else(|| {
            EntropyError::InvalidModel(format!(
                "contexts {range:?} out of range ({} contexts)",
                self.contexts.len()
            ))
        })?;
        if contexts.is_empty() {
            return Err(EntropyError::InvalidModel(
                "integer model needs at least one context".into(),
            ));
        }
        Ok(Self {
            contexts: contexts.to_vec(),
            ..*self
        })
    }

    /// Number of contexts.
    pub fn contexts(&self) -> usize {
        self.contexts.len()
    }

    fn context(&mut self, ctx: usize) -> Result<&mut AdaptiveCategorical> {
        let n = self.contexts.len();
        self.contexts.get_mut(ctx).ok_or_else(|| {
            EntropyError::Encode(format!("context {ctx} out of range ({n} contexts)"))
        })
    }

    /// Codes `value` in context `ctx`.
    pub fn encode(&mut self, enc: &mut AdaptiveEncoder, ctx: usize, value: i64) -> Result<()> {
        let (lo, hi, low_bits, escape) = (self.lo, self.hi, self.low_bits, self.escape);
        let model = self.context(ctx)?;
        if value < lo || value > hi {
            enc.encode(model, escape)?;
            return enc.encode_raw_i64(value);
        }
        let offset = (value as i128 - lo as i128) as u64;
        enc.encode(model, (offset >> low_bits) as usize)?;
        enc.encode_bits(offset, low_bits)
    }

    /// Decodes one value in context `ctx`.
    pub fn decode(&mut self, dec: &mut AdaptiveDecoder, ctx: usize) -> Result<i64> {
        let (lo, low_bits, escape) = (self.lo, self.low_bits, self.escape);
        let model = self
            .context(ctx)
            .map_err(|e| EntropyError::Corrupt(e.to_string()))?;
        let high = dec.decode(model)?;
        if high == escape {
            return dec.decode_raw_i64();
        }
        let offset = ((high as u64) << low_bits) | dec.decode_bits(low_bits)?;
        let value = lo as i128 + offset as i128;
        i64::try_from(value)
            .map_err(|_| EntropyError::Corrupt(format!("decoded value {value} overflows")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skewed_streams_compress_toward_their_entropy() {
        let mut model = AdaptiveCategorical::new(16).unwrap();
        let mut enc = AdaptiveEncoder::new();
        let symbols: Vec<usize> = (0..20_000)
            .map(|i| if i % 10 == 0 { 3 } else { 0 })
            .collect();
        for &s in &symbols {
            enc.encode(&mut model, s).unwrap();
        }
        let bytes = enc.seal().unwrap();
        // Entropy of a 0.9/0.1 source is 0.469 bits/symbol.
        let bits_per_symbol = bytes.len() as f64 * 8.0 / symbols.len() as f64;
        assert!(bits_per_symbol < 0.55, "{bits_per_symbol}");
        let mut model = AdaptiveCategorical::new(16).unwrap();
        let mut dec = AdaptiveDecoder::new(&bytes).unwrap();
        for &s in &symbols {
            assert_eq!(dec.decode(&mut model).unwrap(), s);
        }
    }

    #[test]
    fn integers_escape_outside_their_range_and_split_wide_spans() {
        let values = [0i64, 5, -3, 100, i64::MIN, i64::MAX, 7, 1 << 40];
        for (lo, hi) in [(0, 10), (-1 << 20, 1 << 20), (i64::MIN, i64::MAX)] {
            let mut model = AdaptiveIntegers::new(lo, hi, 2).unwrap();
            let mut enc = AdaptiveEncoder::new();
            for (i, &v) in values.iter().enumerate() {
                model.encode(&mut enc, i % 2, v).unwrap();
            }
            let bytes = enc.seal().unwrap();
            let mut model = AdaptiveIntegers::new(lo, hi, 2).unwrap();
            let mut dec = AdaptiveDecoder::new(&bytes).unwrap();
            for (i, &v) in values.iter().enumerate() {
                assert_eq!(
                    model.decode(&mut dec, i % 2).unwrap(),
                    v,
                    "range {lo}..={hi}"
                );
            }
        }
    }

    #[test]
    fn a_subset_codes_as_the_contexts_it_copies() {
        // Seeded and partly trained contexts 0..6; the subset 2..5 must code exactly as
        // contexts 2..5 of the whole set do.
        let mut whole = AdaptiveIntegers::new(0, 7, 6).unwrap();
        for ctx in 0..6 {
            whole
                .seed(ctx, &[ctx as u32 + 1, 9, 3, 1, 1, 40, 2, 5])
                .unwrap();
        }
        let mut warm = AdaptiveEncoder::new();
        for i in 0..200 {
            whole.encode(&mut warm, i % 6, (i * 7 % 8) as i64).unwrap();
        }
        let values: Vec<i64> = (0..300).map(|i| (i * i % 9) as i64).collect();
        let code = |model: &mut AdaptiveIntegers, offset: usize| {
            let mut enc = AdaptiveEncoder::new();
            for (i, &v) in values.iter().enumerate() {
                model.encode(&mut enc, offset + i % 3, v).unwrap();
            }
            enc.seal().unwrap()
        };
        let mut subset = whole.subset(2..5).unwrap();
        assert_eq!(subset.contexts(), 3);
        let expected = code(&mut whole.clone(), 2);
        assert_eq!(code(&mut subset, 0), expected);
        // The copy learned alone: the whole set is as it was.
        assert_eq!(code(&mut whole.subset(2..5).unwrap(), 0), expected);
        assert!(whole.subset(4..7).is_err());
        assert!(whole.subset(3..3).is_err());
    }

    #[test]
    fn bad_parameters_are_errors() {
        assert!(AdaptiveCategorical::new(0).is_err());
        assert!(AdaptiveCategorical::new(MAX_ADAPTIVE_ALPHABET + 1).is_err());
        assert!(AdaptiveIntegers::new(5, 4, 1).is_err());
        let mut model = AdaptiveIntegers::new(0, 4, 1).unwrap();
        assert!(model.encode(&mut AdaptiveEncoder::new(), 1, 0).is_err());
        let mut cat = AdaptiveCategorical::new(4).unwrap();
        assert!(AdaptiveEncoder::new().encode(&mut cat, 4).is_err());
    }
}
