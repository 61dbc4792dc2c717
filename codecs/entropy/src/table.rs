//! Indexed fixed-point CDF tables with CompressAI semantics, coded with ANS.
//!
//! Row `i` of a table is a quantized CDF of `cdf_length[i]` entries at 16-bit precision
//! (`cdf[0] == 0`, last entry `== 1 << 16`), i.e. `cdf_length[i] - 1` symbols. Symbol `k` of a
//! row stands for the integer `offset[i] + k`, except the last symbol, which is the escape:
//! values outside the row's range are coded as the escape followed by their distance from the
//! range in raw bits, so nothing is ever clamped.

use constriction::stream::{
    Decode, Encode, model::ContiguousCategoricalEntropyModel, stack::DefaultAnsCoder,
};
use serde::{Deserialize, Serialize};

use crate::{
    error::{EntropyError, Result},
    guided::GuidedRow,
    raw::{ANS_SEAL, RAW_CHUNK_BITS, bit_length, chunk_model, chunks, length_model},
    words::{bytes_to_stack, stack_to_bytes},
};

/// Fixed-point precision of every table row (CompressAI's `entropy_coder_precision`).
pub const TABLE_PRECISION: u32 = 16;

/// A categorical model over `0..n` at [`TABLE_PRECISION`] bits.
pub type TableModel = ContiguousCategoricalEntropyModel<u32, Vec<u32>, 16>;

/// Builds a constriction model from a quantized CDF (`cdf[0] == 0`, `cdf[n] == 1 << 16`,
/// strictly increasing).
pub fn model_from_cdf(cdf: &[u32]) -> Result<TableModel> {
    TableModel::from_nonzero_fixed_point_probabilities(checked_probabilities(cdf)?, false)
        .map_err(|()| EntropyError::InvalidModel("probabilities do not sum to 1 << 16".into()))
}

/// The symbol probabilities of a quantized CDF, refused unless it starts at 0, ends at
/// `1 << 16` and strictly increases.
fn checked_probabilities(cdf: &[u32]) -> Result<Vec<u32>> {
    let full = 1u32 << TABLE_PRECISION;
    if cdf.len() < 2 {
        return Err(EntropyError::InvalidModel(format!(
            "a CDF needs at least 2 entries, got {}",
            cdf.len()
        )));
    }
    if cdf[0] != 0 || cdf[cdf.len() - 1] != full {
        return Err(EntropyError::InvalidModel(format!(
            "a CDF must start at 0 and end at {full}, got {} .. {}",
            cdf[0],
            cdf[cdf.len() - 1]
        )));
    }
    let mut probabilities = Vec::with_capacity(cdf.len() - 1);
    for pair in cdf.windows(2) {
        if pair[1] <= pair[0] {
            return Err(EntropyError::InvalidModel(format!(
                "CDF is not strictly increasing ({} then {}): every symbol needs a nonzero probability",
                pair[0], pair[1]
            )));
        }
        probabilities.push(pair[1] - pair[0]);
    }
    Ok(probabilities)
}

/// Quantizes a probability vector to frequencies that are all ≥ 1 and sum to `1 << 16`.
/// Integer-only after the initial scaling, so identical inputs give identical tables.
pub fn quantize_pmf(pmf: &[f64]) -> Result<Vec<u32>> {
    let n = pmf.len();
    let full = 1u64 << TABLE_PRECISION;
    if n == 0 || n as u64 >= full {
        return Err(EntropyError::InvalidModel(format!(
            "cannot quantize a pmf of {n} symbols"
        )));
    }
    if pmf.iter().any(|p| !p.is_finite() || *p < 0.0) {
        return Err(EntropyError::InvalidModel(
            "pmf has a negative or non-finite entry".into(),
        ));
    }
    let total: f64 = pmf.iter().sum();
    if total <= 0.0 {
        return Err(EntropyError::InvalidModel("pmf sums to zero".into()));
    }
    let spare = (full - n as u64) as f64;
    let mut freqs: Vec<u64> = pmf
        .iter()
        .map(|p| 1 + (p / total * spare).floor() as u64)
        .collect();
    let sum: u64 = freqs.iter().sum();
    let largest = (0..n)
        .max_by_key(|&i| (freqs[i], std::cmp::Reverse(i)))
        .expect("n > 0");
    freqs[largest] += full - sum;
    Ok(freqs.into_iter().map(|f| f as u32).collect())
}

/// The cumulative form of quantized frequencies (`n + 1` entries).
pub fn cdf_from_frequencies(freqs: &[u32]) -> Vec<u32> {
    let mut cdf = Vec::with_capacity(freqs.len() + 1);
    let mut acc = 0u32;
    cdf.push(0);
    for f in freqs {
        acc += f;
        cdf.push(acc);
    }
    cdf
}

/// The raw payload of a value `k` (relative to a row's offset) outside the row's `escape`
/// in-range values: odd raw values lie below the range, even ones at or above its end.
fn escape_payload(k: i64, escape: usize) -> u64 {
    if k < 0 {
        2 * (-k) as u64 - 1
    } else {
        2 * (k as u64 - escape as u64)
    }
}

/// A set of indexed CDF rows (CompressAI `_quantized_cdf`, `_cdf_length`, `_offset`).
#[derive(Debug, Clone)]
pub struct IndexedCdfTable {
    /// The rows as models with guide tables, for both directions.
    rows: Vec<GuidedRow>,
    cdfs: Vec<Vec<u32>>,
    offsets: Vec<i32>,
    /// Bits each entry of each row costs, `−log2(frequency / 2^TABLE_PRECISION)` (the last
    /// entry is the escape), for [`Self::ideal_bits`].
    costs: Vec<Vec<f64>>,
}

impl IndexedCdfTable {
    /// Builds a table from quantized CDF rows. `cdfs[i]` may be padded beyond `cdf_lengths[i]`
    /// (as CompressAI stores them); the padding is ignored.
    pub fn from_quantized_cdfs(
        cdfs: &[Vec<u32>],
        cdf_lengths: &[u32],
        offsets: &[i32],
    ) -> Result<Self> {
        if cdfs.len() != cdf_lengths.len() || cdfs.len() != offsets.len() {
            return Err(EntropyError::InvalidModel(format!(
                "table has {} CDF rows, {} lengths and {} offsets",
                cdfs.len(),
                cdf_lengths.len(),
                offsets.len()
            )));
        }
        if cdfs.is_empty() {
            return Err(EntropyError::InvalidModel("table has no rows".into()));
        }
        let mut rows = Vec::with_capacity(cdfs.len());
        let mut trimmed = Vec::with_capacity(cdfs.len());
        for (i, (cdf, &len)) in cdfs.iter().zip(cdf_lengths).enumerate() {
            let len = len as usize;
            if len < 3 || len > cdf.len() {
                return Err(EntropyError::InvalidModel(format!(
                    "row {i}: cdf_length {len} must be ≥ 3 (one value and the escape) and ≤ the row's {} entries",
                    cdf.len()
                )));
            }
            let row = &cdf[..len];
            checked_probabilities(row)
                .map_err(|e| EntropyError::InvalidModel(format!("row {i}: {e}")))?;
            rows.push(GuidedRow::new(row));
            trimmed.push(row.to_vec());
        }
        let full = f64::from(1u32 << TABLE_PRECISION);
        let costs = trimmed
            .iter()
            .map(|cdf| {
                cdf.windows(2)
                    .map(|pair| -(f64::from(pair[1] - pair[0]) / full).log2())
                    .collect()
            })
            .collect();
        Ok(Self {
            rows,
            cdfs: trimmed,
            offsets: offsets.to_vec(),
            costs,
        })
    }

    /// Builds a table from probability rows: `pmfs[i][k]` is the probability of
    /// `offsets[i] + k` and `tail_masses[i]` the probability of everything else (the escape).
    pub fn from_pmfs(pmfs: &[Vec<f64>], tail_masses: &[f64], offsets: &[i32]) -> Result<Self> {
        if pmfs.len() != tail_masses.len() {
            return Err(EntropyError::InvalidModel(
                "pmfs and tail masses differ in length".into(),
            ));
        }
        let mut cdfs = Vec::with_capacity(pmfs.len());
        let mut lengths = Vec::with_capacity(pmfs.len());
        for (pmf, &tail) in pmfs.iter().zip(tail_masses) {
            let mut with_escape = pmf.clone();
            with_escape.push(tail);
            let cdf = cdf_from_frequencies(&quantize_pmf(&with_escape)?);
            lengths.push(cdf.len() as u32);
            cdfs.push(cdf);
        }
        Self::from_quantized_cdfs(&cdfs, &lengths, offsets)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Quantized CDF of row `i` (for export and inspection).
    pub fn cdf(&self, i: usize) -> &[u32] {
        &self.cdfs[i]
    }

    /// Offset of row `i`.
    pub fn offset(&self, i: usize) -> i32 {
        self.offsets[i]
    }

    fn check_index(&self, index: u32) -> Result<usize> {
        let i = index as usize;
        if i >= self.rows.len() {
            return Err(EntropyError::Encode(format!(
                "index {index} is out of range for a table of {} rows",
                self.rows.len()
            )));
        }
        Ok(i)
    }

    /// Codes `symbols[j]` with row `indexes[j]` into an ANS stream (little-endian bytes).
    pub fn encode_with_indexes(&self, symbols: &[i32], indexes: &[u32]) -> Result<Vec<u8>> {
        if symbols.len() != indexes.len() {
            return Err(EntropyError::Encode(format!(
                "{} symbols but {} indexes",
                symbols.len(),
                indexes.len()
            )));
        }
        let mut coder = DefaultAnsCoder::new();
        let failed = |e| EntropyError::Encode(format!("{e:?}"));
        // Coded first, so decoded last: the seal `decode_with_indexes` checks.
        coder
            .encode_symbol(ANS_SEAL, chunk_model(RAW_CHUNK_BITS))
            .map_err(failed)?;
        let lengths = length_model();
        // ANS codes in reverse: the symbols last to first, and within an escaped value its raw
        // chunks, then its length, then the escape (read back as escape, length, chunks).
        for (&value, &index) in symbols.iter().zip(indexes).rev() {
            let i = self.check_index(index)?;
            let escape = self.cdfs[i].len() - 2;
            let k = i64::from(value) - i64::from(self.offsets[i]);
            if (0..escape as i64).contains(&k) {
                coder
                    .encode_symbol(k as usize, &self.rows[i])
                    .map_err(failed)?;
                continue;
            }
            let raw = escape_payload(k, escape);
            let bits = bit_length(raw);
            let pieces: Vec<(usize, u32)> = chunks(raw, bits).collect();
            for &(piece, width) in pieces.iter().rev() {
                coder
                    .encode_symbol(piece, chunk_model(width))
                    .map_err(failed)?;
            }
            coder
                .encode_symbol(bits as usize, lengths)
                .map_err(failed)?;
            coder.encode_symbol(escape, &self.rows[i]).map_err(failed)?;
        }
        let words = coder
            .into_compressed()
            .map_err(|e| EntropyError::Encode(format!("{e:?}")))?;
        Ok(stack_to_bytes(&words))
    }

    /// Decodes `indexes.len()` symbols written by [`Self::encode_with_indexes`].
    pub fn decode_with_indexes(&self, bytes: &[u8], indexes: &[u32]) -> Result<Vec<i32>> {
        let words = bytes_to_stack(bytes)?;
        let mut coder = DefaultAnsCoder::from_compressed(words).map_err(|_| {
            EntropyError::Corrupt("ANS stream does not end in a nonzero word".into())
        })?;
        let corrupt = |_| EntropyError::Corrupt("ANS stream ended early".into());
        let lengths = length_model();
        // Every index checked up front, so the loop indexes rows without a fallible step.
        if let Some(&index) = indexes.iter().find(|&&i| i as usize >= self.rows.len()) {
            return Err(EntropyError::Corrupt(
                self.check_index(index)
                    .expect_err("out of range")
                    .to_string(),
            ));
        }
        let mut out = vec![0i32; indexes.len()];
        for (slot, &index) in out.iter_mut().zip(indexes) {
            let i = index as usize;
            let escape = self.cdfs[i].len() - 2;
            let symbol = coder.decode_symbol(&self.rows[i]).map_err(corrupt)?;
            let k = if symbol < escape {
                symbol as i64
            } else {
                let bits = coder.decode_symbol(lengths).map_err(corrupt)? as u32;
                let mut raw = 0u64;
                for (shift, (_, width)) in chunks(u64::MAX, bits).enumerate() {
                    let chunk = coder.decode_symbol(chunk_model(width)).map_err(corrupt)? as u64;
                    raw |= chunk << (shift as u32 * RAW_CHUNK_BITS);
                }
                unescape(raw, escape)
                    .ok_or_else(|| EntropyError::Corrupt("escaped value overflows".into()))?
            };
            let value = k
                .checked_add(i64::from(self.offsets[i]))
                .ok_or_else(|| EntropyError::Corrupt("escaped value overflows".into()))?;
            *slot = i32::try_from(value).map_err(|_| {
                EntropyError::Corrupt(format!("decoded value {value} does not fit in 32 bits"))
            })?;
        }
        // A count raised in a header reads past the data (an empty ANS stream keeps yielding
        // symbols); a lowered one stops inside it. Either way the seal is not where it belongs.
        if coder
            .decode_symbol(chunk_model(RAW_CHUNK_BITS))
            .map_err(corrupt)?
            != ANS_SEAL
        {
            return Err(EntropyError::Corrupt(
                "ANS stream seal not found: the symbol count does not match the data".into(),
            ));
        }
        if !coder.is_empty() {
            return Err(EntropyError::Corrupt(
                "ANS stream has data left after its seal".into(),
            ));
        }
        Ok(out)
    }

    /// Information content `-log2 p` of `symbols[j]` under row `indexes[j]`, in bits: what
    /// [`Self::encode_with_indexes`] spends on them (an escaped value: the escape, its bit
    /// length and its raw bits), without the seal; the ideal size an entropy coder approaches.
    /// An ANS stream is never shorter than this by more than its state's few words, so a caller
    /// can tell that another coding is smaller without running this one. One table lookup per
    /// symbol.
    pub fn ideal_bits(&self, symbols: &[i32], indexes: &[u32]) -> Result<f64> {
        if symbols.len() != indexes.len() {
            return Err(EntropyError::Encode(format!(
                "{} symbols but {} indexes",
                symbols.len(),
                indexes.len()
            )));
        }
        let length_bits = 65f64.log2();
        let mut total = 0.0;
        for (&value, &index) in symbols.iter().zip(indexes) {
            let i = self.check_index(index)?;
            let costs = &self.costs[i];
            let escape = costs.len() - 1;
            let k = i64::from(value) - i64::from(self.offsets[i]);
            total += match usize::try_from(k) {
                Ok(k) if k < escape => costs[k],
                _ => {
                    costs[escape] + (length_bits + f64::from(bit_length(escape_payload(k, escape))))
                }
            };
        }
        Ok(total)
    }

    /// The table in the interchange format.
    pub fn to_file(&self) -> TableFile {
        TableFile {
            format: TABLE_FILE_FORMAT.into(),
            precision: TABLE_PRECISION,
            quantized_cdf: self.cdfs.clone(),
            cdf_length: self.cdfs.iter().map(|c| c.len() as u32).collect(),
            offset: self.offsets.clone(),
            medians: None,
            scale_table: None,
        }
    }
}

/// Inverse of the escape mapping: odd raw values lie below the range, even ones at or above
/// `escape` (the first value past the range). `None` when the result overflows.
fn unescape(raw: u64, escape: usize) -> Option<i64> {
    if raw % 2 == 1 {
        i64::try_from(raw.div_ceil(2)).ok().map(|m| -m)
    } else {
        (escape as i64).checked_add((raw / 2) as i64)
    }
}

/// `format` value of a [`TableFile`].
pub const TABLE_FILE_FORMAT: &str = "terse-cdf-table/1";

/// Interchange format for tables trained elsewhere (e.g. exported from a CompressAI
/// `EntropyBottleneck` or `GaussianConditional` after `update()`), stored as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableFile {
    /// Must equal [`TABLE_FILE_FORMAT`].
    pub format: String,
    /// Fixed-point precision of `quantized_cdf`; must be 16.
    pub precision: u32,
    /// `_quantized_cdf`: one row per channel (factorized) or per scale (conditional).
    pub quantized_cdf: Vec<Vec<u32>>,
    /// `_cdf_length`.
    pub cdf_length: Vec<u32>,
    /// `_offset`.
    pub offset: Vec<i32>,
    /// Per-channel medians (`EntropyBottleneck.quantiles[:, 0, 1]`), for factorized priors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medians: Option<Vec<f32>>,
    /// Scale table, for conditional models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_table: Option<Vec<f64>>,
}

impl TableFile {
    /// Parses and validates the JSON form.
    pub fn from_json(text: &str) -> Result<Self> {
        let file: Self = serde_json::from_str(text)
            .map_err(|e| EntropyError::InvalidModel(format!("table file: {e}")))?;
        if file.format != TABLE_FILE_FORMAT {
            return Err(EntropyError::InvalidModel(format!(
                "table file format `{}` is not `{TABLE_FILE_FORMAT}`",
                file.format
            )));
        }
        if file.precision != TABLE_PRECISION {
            return Err(EntropyError::InvalidModel(format!(
                "table precision {} is not supported (expected {TABLE_PRECISION})",
                file.precision
            )));
        }
        Ok(file)
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("table files serialize")
    }

    /// Builds the coding table.
    pub fn table(&self) -> Result<IndexedCdfTable> {
        IndexedCdfTable::from_quantized_cdfs(&self.quantized_cdf, &self.cdf_length, &self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_table() -> IndexedCdfTable {
        // Row 0: values -2..=2 plus escape; row 1: values 0..=1 plus escape.
        IndexedCdfTable::from_pmfs(
            &[vec![0.1, 0.2, 0.4, 0.2, 0.1], vec![0.5, 0.5]],
            &[1e-3, 1e-3],
            &[-2, 0],
        )
        .unwrap()
    }

    #[test]
    fn escapes_carry_any_i32() {
        let table = small_table();
        let symbols = [0, 2, -2, 3, -3, i32::MAX, i32::MIN, 1, 5, -1000];
        let indexes = [0, 0, 0, 0, 0, 0, 0, 1, 1, 1];
        let bytes = table.encode_with_indexes(&symbols, &indexes).unwrap();
        assert_eq!(
            table.decode_with_indexes(&bytes, &indexes).unwrap(),
            symbols
        );
    }

    #[test]
    fn ideal_bits_are_the_stream_size_up_to_the_coder_state() {
        let table = small_table();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for count in [1usize, 10, 1000, 200_000] {
            let (mut symbols, mut indexes) = (Vec::new(), Vec::new());
            for _ in 0..count {
                let r = next();
                let index = (r % 2) as u32;
                let value = match (r >> 8) % 100 {
                    // Mostly in range, sometimes far outside (escaped).
                    0 => (r >> 16) as i32,
                    v if index == 0 => (v % 5) as i32 - 2,
                    v => (v % 2) as i32,
                };
                symbols.push(value);
                indexes.push(index);
            }
            let bits = table.ideal_bits(&symbols, &indexes).unwrap();
            let stream = table.encode_with_indexes(&symbols, &indexes).unwrap().len() as f64 * 8.0;
            // The stream adds the 16-bit seal and at most its state's two 32-bit words.
            assert!(
                stream >= bits + 16.0 - 64.0,
                "{count}: {stream} bits for {bits}"
            );
            assert!(
                stream <= bits + 16.0 + 96.0,
                "{count}: {stream} bits for {bits}"
            );
        }
        assert!(table.ideal_bits(&[0], &[2]).is_err());
        assert!(table.ideal_bits(&[0, 1], &[0]).is_err());
    }

    #[test]
    fn malformed_tables_are_rejected() {
        assert!(
            IndexedCdfTable::from_quantized_cdfs(&[vec![0, 100, 100, 65536]], &[4], &[0]).is_err()
        );
        assert!(IndexedCdfTable::from_quantized_cdfs(&[vec![0, 100, 65535]], &[3], &[0]).is_err());
        assert!(IndexedCdfTable::from_quantized_cdfs(&[vec![0, 65536]], &[2], &[0]).is_err());
        assert!(IndexedCdfTable::from_quantized_cdfs(&[vec![0, 1, 65536]], &[4], &[0]).is_err());
        assert!(IndexedCdfTable::from_quantized_cdfs(&[vec![0, 1, 65536]], &[3], &[0, 1]).is_err());
    }

    #[test]
    fn out_of_range_index_is_an_error() {
        let table = small_table();
        assert!(table.encode_with_indexes(&[0], &[2]).is_err());
        let bytes = table.encode_with_indexes(&[0], &[0]).unwrap();
        assert!(table.decode_with_indexes(&bytes, &[7]).is_err());
    }

    #[test]
    fn json_round_trip_and_validation() {
        let file = small_table().to_file();
        let parsed = TableFile::from_json(&file.to_json()).unwrap();
        assert_eq!(parsed, file);
        let table = parsed.table().unwrap();
        let bytes = table.encode_with_indexes(&[1, -5], &[0, 0]).unwrap();
        assert_eq!(
            small_table().decode_with_indexes(&bytes, &[0, 0]).unwrap(),
            vec![1, -5]
        );
        let bad = file
            .to_json()
            .replace("\"precision\":16", "\"precision\":15");
        assert!(
            TableFile::from_json(&bad)
                .unwrap_err()
                .to_string()
                .contains("precision 15")
        );
    }

    #[test]
    fn quantized_pmfs_keep_every_symbol() {
        let freqs = quantize_pmf(&[1.0, 0.0, 1e-12, 0.5]).unwrap();
        assert!(freqs.iter().all(|&f| f >= 1));
        assert_eq!(freqs.iter().sum::<u32>(), 1 << 16);
    }
}
