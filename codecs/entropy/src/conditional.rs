//! Gaussian and Laplace conditionals over a scale table (CompressAI `GaussianConditional`).
//!
//! The table holds one CDF row per scale; a value with predicted scale `s` is coded with the row
//! of the first table scale ≥ `s`. Rows are computed with `libm` (pure software, identical on every
//! machine), so encoder and decoder build bit-identical tables.

use crate::{
    error::{EntropyError, Result},
    table::{IndexedCdfTable, TableFile},
};

/// Smallest scale of the default table (and the lower bound applied to predicted scales).
pub const SCALES_MIN: f64 = 0.11;
/// Largest scale of the default table.
pub const SCALES_MAX: f64 = 256.0;
/// Number of scales in the default table.
pub const SCALES_LEVELS: usize = 64;
/// Probability mass left to the escape of each row.
pub const TAIL_MASS: f64 = 1e-9;

/// Shape of the conditional distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Zero-mean Gaussian with standard deviation `scale`.
    Gaussian,
    /// Zero-mean Laplace with diversity `scale`.
    Laplace,
}

impl Family {
    /// Cumulative distribution of the unit-scale distribution.
    fn standardized_cdf(self, x: f64) -> f64 {
        match self {
            Self::Gaussian => 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2),
            Self::Laplace => {
                if x < 0.0 {
                    0.5 * libm::exp(x)
                } else {
                    1.0 - 0.5 * libm::exp(-x)
                }
            }
        }
    }

    /// Quantile of the unit-scale distribution (bisection on the CDF: deterministic).
    fn standardized_quantile(self, q: f64) -> f64 {
        let (mut lo, mut hi) = (-100.0f64, 100.0f64);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if self.standardized_cdf(mid) < q {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    }
}

/// CompressAI's default scale table: `exp(linspace(ln 0.11, ln 256, 64))`.
pub fn default_scale_table() -> Vec<f64> {
    let (lo, hi) = (libm::log(SCALES_MIN), libm::log(SCALES_MAX));
    (0..SCALES_LEVELS)
        .map(|i| libm::exp(lo + (hi - lo) * i as f64 / (SCALES_LEVELS - 1) as f64))
        .collect()
}

/// A scale-indexed conditional entropy model.
#[derive(Debug, Clone)]
pub struct ScaleConditional {
    family: Family,
    scales: Vec<f64>,
    table: IndexedCdfTable,
}

impl ScaleConditional {
    /// The model over CompressAI's default 64-scale table.
    pub fn new(family: Family) -> Self {
        Self::with_scale_table(family, default_scale_table(), TAIL_MASS)
            .expect("default table is valid")
    }

    /// A model over an explicit, strictly increasing scale table.
    pub fn with_scale_table(family: Family, scales: Vec<f64>, tail_mass: f64) -> Result<Self> {
        if scales.is_empty() || scales.windows(2).any(|w| w[1] <= w[0]) || scales[0] <= 0.0 {
            return Err(EntropyError::InvalidModel(
                "scale table must be positive and strictly increasing".into(),
            ));
        }
        if !(tail_mass > 0.0 && tail_mass < 0.5) {
            return Err(EntropyError::InvalidModel(format!(
                "tail mass {tail_mass} is not in (0, 0.5)"
            )));
        }
        let multiplier = -family.standardized_quantile(tail_mass / 2.0);
        let mut pmfs = Vec::with_capacity(scales.len());
        let mut tails = Vec::with_capacity(scales.len());
        let mut offsets = Vec::with_capacity(scales.len());
        for &scale in &scales {
            let center = (scale * multiplier).ceil() as i64;
            let pmf: Vec<f64> = (-center..=center)
                .map(|k| {
                    let k = k.unsigned_abs() as f64;
                    family.standardized_cdf((0.5 - k) / scale)
                        - family.standardized_cdf((-0.5 - k) / scale)
                })
                .collect();
            tails.push(2.0 * family.standardized_cdf((-0.5 - center as f64) / scale));
            pmfs.push(pmf);
            offsets.push(-center as i32);
        }
        let table = IndexedCdfTable::from_pmfs(&pmfs, &tails, &offsets)?;
        Ok(Self {
            family,
            scales,
            table,
        })
    }

    /// A model from an interchange file that carries `scale_table`.
    pub fn from_file(family: Family, file: &TableFile) -> Result<Self> {
        let scales = file.scale_table.clone().ok_or_else(|| {
            EntropyError::InvalidModel("conditional model file has no `scale_table`".into())
        })?;
        let table = file.table()?;
        if table.rows() != scales.len() {
            return Err(EntropyError::InvalidModel(format!(
                "{} CDF rows for {} scales",
                table.rows(),
                scales.len()
            )));
        }
        Ok(Self {
            family,
            scales,
            table,
        })
    }

    /// Distribution family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The scale table.
    pub fn scales(&self) -> &[f64] {
        &self.scales
    }

    /// The underlying CDF table.
    pub fn table(&self) -> &IndexedCdfTable {
        &self.table
    }

    /// Row for a predicted scale: the first table scale ≥ `scale` (the last row above the
    /// table). NaN maps to the last (widest) row.
    pub fn index_for_scale(&self, scale: f32) -> u32 {
        let last = self.scales.len() - 1;
        if scale.is_nan() {
            return last as u32;
        }
        let s = f64::from(scale).max(self.scales[0]);
        self.scales[..last]
            .iter()
            .position(|&t| t >= s)
            .unwrap_or(last) as u32
    }

    /// Rows for many predicted scales.
    pub fn build_indexes(&self, scales: &[f32]) -> Vec<u32> {
        scales.iter().map(|&s| self.index_for_scale(s)).collect()
    }

    /// Entropy-codes integer symbols with the given rows.
    pub fn encode_symbols(&self, symbols: &[i32], indexes: &[u32]) -> Result<Vec<u8>> {
        self.table.encode_with_indexes(symbols, indexes)
    }

    /// Decodes integer symbols with the given rows.
    pub fn decode_symbols(&self, bytes: &[u8], indexes: &[u32]) -> Result<Vec<i32>> {
        self.table.decode_with_indexes(bytes, indexes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_matches_compressai() {
        let scales = default_scale_table();
        assert_eq!(scales.len(), 64);
        assert!((scales[0] - 0.11).abs() < 1e-12 && (scales[63] - 256.0).abs() < 1e-9);
        // CompressAI: multiplier = -norm.ppf(5e-10) = 6.1094...
        let m = -Family::Gaussian.standardized_quantile(TAIL_MASS / 2.0);
        assert!((m - 6.109410).abs() < 1e-5, "{m}");
    }

    #[test]
    fn index_is_first_scale_at_least_s() {
        let model = ScaleConditional::new(Family::Gaussian);
        let scales = model.scales().to_vec();
        assert_eq!(model.index_for_scale(0.0), 0);
        assert_eq!(model.index_for_scale(scales[5] as f32 * 1.0001), 6);
        assert_eq!(model.index_for_scale(1e9), 63);
        assert_eq!(model.index_for_scale(f32::NAN), 63);
    }

    #[test]
    fn laplace_and_gaussian_round_trip() {
        for family in [Family::Gaussian, Family::Laplace] {
            let model = ScaleConditional::new(family);
            let symbols: Vec<i32> = (-50..50).collect();
            let indexes = model.build_indexes(
                &symbols
                    .iter()
                    .map(|&s| (s.abs() as f32) / 3.0)
                    .collect::<Vec<_>>(),
            );
            let bytes = model.encode_symbols(&symbols, &indexes).unwrap();
            assert_eq!(model.decode_symbols(&bytes, &indexes).unwrap(), symbols);
        }
    }
}
