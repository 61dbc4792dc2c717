//! A decoding view of a 16-bit CDF row with a guide table, for the hot loop of
//! [`IndexedCdfTable::decode_with_indexes`](crate::table::IndexedCdfTable::decode_with_indexes).
//!
//! `constriction`'s categorical model finds a quantile's symbol by binary search over the row,
//! a dozen unpredictable branches on CompressAI's rows. The guide maps the top 8 bits of a
//! quantile to the symbol that holds the bucket's first quantile; the symbol sought is that one
//! or one a few entries further, found by a short forward scan. Same CDF, so the same symbols:
//! `tests::agrees_with_constriction_on_every_quantile`.

use std::num::NonZeroU32;

use constriction::stream::model::{DecoderModel, EntropyModel};

use crate::table::TABLE_PRECISION;

/// The row's precision as the model traits take it.
const PRECISION: usize = TABLE_PRECISION as usize;
/// Quantile bits the guide drops: 2^(16 − 8) quantiles per bucket.
const BUCKET_SHIFT: u32 = TABLE_PRECISION - 8;

/// A CDF row (`cdf[0] == 0`, strictly increasing, `cdf[n] == 1 << 16`) and its guide.
#[derive(Debug, Clone)]
pub struct GuidedRow {
    cdf: Vec<u32>,
    /// For each bucket `b`, the symbol whose range holds quantile `b << BUCKET_SHIFT`.
    guide: Vec<u32>,
}

impl GuidedRow {
    /// The guide for a checked CDF row.
    pub fn new(cdf: &[u32]) -> Self {
        let buckets = 1usize << (TABLE_PRECISION - BUCKET_SHIFT);
        let mut guide = Vec::with_capacity(buckets);
        let mut symbol = 0usize;
        for b in 0..buckets {
            let quantile = (b as u32) << BUCKET_SHIFT;
            while cdf[symbol + 1] <= quantile {
                symbol += 1;
            }
            guide.push(symbol as u32);
        }
        Self {
            cdf: cdf.to_vec(),
            guide,
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
        let mut symbol = self.guide[(quantile >> BUCKET_SHIFT) as usize] as usize;
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
        }
    }
}
