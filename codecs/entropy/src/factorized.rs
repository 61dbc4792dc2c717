//! Non-parametric factorized prior: one CDF row per channel, symbols relative to the channel's
//! median (CompressAI `EntropyBottleneck.compress` / `decompress` semantics).

use crate::{
    error::{EntropyError, Result},
    table::{IndexedCdfTable, TableFile},
};

/// A per-channel factorized prior.
#[derive(Debug, Clone)]
pub struct FactorizedPrior {
    table: IndexedCdfTable,
    medians: Vec<f32>,
}

impl FactorizedPrior {
    /// A prior from a table with one row per channel and the channels' medians.
    pub fn new(table: IndexedCdfTable, medians: Vec<f32>) -> Result<Self> {
        if table.rows() != medians.len() {
            return Err(EntropyError::InvalidModel(format!(
                "factorized prior has {} CDF rows but {} medians",
                table.rows(),
                medians.len()
            )));
        }
        if medians.iter().any(|m| !m.is_finite()) {
            return Err(EntropyError::InvalidModel("a median is not finite".into()));
        }
        Ok(Self { table, medians })
    }

    /// A prior from an interchange file that carries `medians`.
    pub fn from_file(file: &TableFile) -> Result<Self> {
        let medians = file.medians.clone().ok_or_else(|| {
            EntropyError::InvalidModel("factorized prior file has no `medians`".into())
        })?;
        Self::new(file.table()?, medians)
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.medians.len()
    }

    /// The underlying table.
    pub fn table(&self) -> &IndexedCdfTable {
        &self.table
    }

    fn indexes(&self, len: usize, plane: usize) -> Result<Vec<u32>> {
        let channels = self.channels();
        if plane == 0 || !len.is_multiple_of(channels * plane) {
            return Err(EntropyError::Encode(format!(
                "{len} values do not form whole [*, {channels}, {plane}] tensors"
            )));
        }
        Ok((0..len).map(|i| ((i / plane) % channels) as u32).collect())
    }

    /// Integer symbols `round(x - median[c])` of a `[batch, channels, plane]` tensor.
    pub fn quantize(&self, latent: &[f32], plane: usize) -> Result<Vec<i32>> {
        let indexes = self.indexes(latent.len(), plane)?;
        latent
            .iter()
            .zip(&indexes)
            .map(|(&x, &c)| {
                let q = (x - self.medians[c as usize]).round();
                if !q.is_finite() || q.abs() > i32::MAX as f32 {
                    return Err(EntropyError::Encode(format!(
                        "latent value {x} cannot be quantized"
                    )));
                }
                Ok(q as i32)
            })
            .collect()
    }

    /// Entropy-codes a `[batch, channels, plane]` latent.
    pub fn compress(&self, latent: &[f32], plane: usize) -> Result<Vec<u8>> {
        let symbols = self.quantize(latent, plane)?;
        self.table
            .encode_with_indexes(&symbols, &self.indexes(latent.len(), plane)?)
    }

    /// Decodes `len` values of a `[batch, channels, plane]` latent: symbols plus medians.
    pub fn decompress(&self, bytes: &[u8], len: usize, plane: usize) -> Result<Vec<f32>> {
        let indexes = self
            .indexes(len, plane)
            .map_err(|e| EntropyError::Corrupt(e.to_string()))?;
        let symbols = self.table.decode_with_indexes(bytes, &indexes)?;
        Ok(symbols
            .iter()
            .zip(&indexes)
            .map(|(&s, &c)| s as f32 + self.medians[c as usize])
            .collect())
    }
}
