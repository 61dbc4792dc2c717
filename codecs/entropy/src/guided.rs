//! A 16-bit CDF row with a guide table: the model of
//! [`IndexedCdfTable::decode_with_indexes`](crate::table::IndexedCdfTable::decode_with_indexes)
//! and of the adaptive models, in both directions.
//!
//! `constriction`'s categorical model finds a quantile's symbol by binary search over the row,
//! a dozen unpredictable branches on CompressAI's rows. The guide maps the top bits of a
//! quantile (8, or fewer for a small alphabet, so rebuilding an adaptive model stays cheap) to
//! the symbol that holds the bucket's first quantile; the symbol sought is that one or one a few
//! entries further, found by a short forward scan. Encoding reads the CDF directly. Same CDF,
//! so the same symbols and bytes as constriction's model:
//! `tests::agrees_with_constriction_on_every_quantile`.

use std::{borrow::Borrow, num::NonZeroU32};

use constriction::stream::model::{DecoderModel, EncoderModel, EntropyModel};

use crate::table::TABLE_PRECISION;

/// The row's precision as the model traits take it.
const PRECISION: usize = TABLE_PRECISION as usize;
/// Most guide bits: 256 buckets.
const MAX_GUIDE_BITS: u32 = 8;

/// A CDF row (`cdf[0] == 0`, strictly increasing, `cdf[n] == 1 << 16`) and its guide.
#[derive(Debug, Clone)]
pub struct GuidedRow {
    cdf: Vec<u32>,
    /// Quantile bits a bucket drops.
    shift: u32,
    /// For each bucket `b`, the symbol whose range holds quantile `b << shift`.
    guide: Vec<u32>,
}

impl GuidedRow {
    /// The guide for a checked CDF row: twice as many buckets as symbols, at most 256.
    pub fn new(cdf: &[u32]) -> Self {
        Self::from_cdf(cdf.to_vec())
    }

    /// The row of nonzero `frequencies` (summing to at most `1 << 16`) with what they leave of
    /// `1 << 16` added to the first of the largest.
    pub fn topped_up(frequencies: impl Iterator<Item = u32>) -> Self {
        let symbols = frequencies.size_hint().0;
        let mut row = Self {
            cdf: Vec::with_capacity(symbols + 1),
            shift: 0,
            guide: Vec::with_capacity((2 * symbols).clamp(2, 1 << MAX_GUIDE_BITS)),
        };
        row.refill_topped_up(frequencies);
        row
    }

    /// Makes this row [`Self::topped_up`]`(frequencies)` in one pass, reusing its memory: the
    /// adaptive models rebuild their rows often.
    pub fn refill_topped_up(&mut self, frequencies: impl Iterator<Item = u32>) {
        self.cdf.clear();
        self.cdf.push(0);
        let (mut sum, mut largest, mut most) = (0u32, 0usize, 0u32);
        for (i, f) in frequencies.enumerate() {
            sum += f;
            self.cdf.push(sum);
            if f > most {
                (largest, most) = (i, f);
            }
        }
        let remainder = (1u32 << TABLE_PRECISION) - sum;
        for c in &mut self.cdf[largest + 1..] {
            *c += remainder;
        }
        self.build_guide();
    }

    fn from_cdf(cdf: Vec<u32>) -> Self {
        let mut row = Self {
            cdf,
            shift: 0,
            guide: Vec::new(),
        };
        row.build_guide();
        row
    }

    fn build_guide(&mut self) {
        let symbols = self.cdf.len() - 1;
        let bits = (usize::BITS - symbols.leading_zeros()).clamp(1, MAX_GUIDE_BITS);
        self.shift = TABLE_PRECISION - bits;
        self.guide.clear();
        let mut symbol = 0usize;
        for b in 0..1u32 << bits {
            while self.cdf[symbol + 1] <= b << self.shift {
                symbol += 1;
            }
            self.guide.push(symbol as u32);
        }
    }
}

impl EntropyModel<PRECISION> for GuidedRow {
    type Symbol = usize;
    type Probability = u32;
}

impl DecoderModel<PRECISION> for GuidedRow {
    #[inline(always)]
    fn quantile_function(&self, quantile: u32) -> (usize, u32, NonZeroU32) {
        let mut symbol = self.guide[(quantile >> self.shift) as usize] as usize;
        while self.cdf[symbol + 1] <= quantile {
            symbol += 1;
        }
        let (left, right) = (self.cdf[symbol], self.cdf[symbol + 1]);
        (
            symbol,
            left,
            NonZeroU32::new(right - left).expect("a strictly increasing CDF"),
        )
    }
}

impl EncoderModel<PRECISION> for GuidedRow {
    #[inline(always)]
    fn left_cumulative_and_probability(
        &self,
        symbol: impl Borrow<usize>,
    ) -> Option<(u32, NonZeroU32)> {
        let symbol = *symbol.borrow();
        let (&left, &right) = (self.cdf.get(symbol)?, self.cdf.get(symbol + 1)?);
        Some((left, NonZeroU32::new(right - left)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::model_from_cdf;

    #[test]
    fn agrees_with_constriction_on_every_quantile() {
        let rows: [Vec<u32>; 3] = [
            vec![0, 1, 2, 65535, 65536],
            vec![0, 30000, 30001, 30300, 40000, 65536],
            (0..=256).map(|i| i * 256).collect(),
        ];
        for cdf in &rows {
            let reference = model_from_cdf(cdf).unwrap();
            let guided = GuidedRow::new(cdf);
            for quantile in 0..1u32 << 16 {
                let (s, left, p) = guided.quantile_function(quantile);
                let (rs, rleft, rp) = reference.quantile_function(quantile);
                assert_eq!((s, left, p.get()), (rs, rleft, rp.get()), "{quantile}");
            }
            for symbol in 0..cdf.len() {
                let ours = guided.left_cumulative_and_probability(symbol);
                let theirs = reference.left_cumulative_and_probability(symbol);
                assert_eq!(
                    ours.map(|(l, p)| (l, p.get())),
                    theirs.map(|(l, p)| (l, p.get()))
                );
            }
        }
    }
}
