//! Shared numeric helpers.

use ndarray::{Array2, ArrayView1, ArrayView2, Axis};

use crate::error::{Result, invalid};

/// Rows scaled to unit L2 norm (norm accumulated in f64; norms below 1e-12 count as 1e-12).
/// Similarities are then single-precision matrix products, as in the references.
pub fn normalize_rows(x: ArrayView2<f32>) -> Array2<f32> {
    let mut out = x.to_owned();
    for mut row in out.axis_iter_mut(Axis(0)) {
        let norm = row
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt()
            .max(1e-12);
        row.mapv_inplace(|v| (f64::from(v) / norm) as f32);
    }
    out
}

/// Indices of the `k` largest scores (ties to the lower index), ascending.
pub fn top_k(scores: ArrayView1<f64>, k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut kept = order[..k.min(order.len())].to_vec();
    kept.sort_unstable();
    kept
}

/// Index of the first maximum.
pub fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (f64::NEG_INFINITY, 0);
    for (i, v) in values.enumerate() {
        if v > best.0 || i == 0 {
            best = (v, i);
        }
    }
    best.1
}

/// Fails unless every value is finite.
pub fn check_finite(name: &str, values: ArrayView2<f32>) -> Result<()> {
    if values.iter().fold(true, |ok, v| ok & v.is_finite()) {
        return Ok(());
    }
    match values.indexed_iter().find(|(_, v)| !v.is_finite()) {
        Some(((r, c), v)) => Err(invalid(format!(
            "{name}[{r}, {c}] is {v}: NaN and infinities are not accepted"
        ))),
        None => Ok(()),
    }
}

/// Rows of `a · bᵀ` computed per block of this many rows, so pairwise methods hold
/// O(block · N) similarities instead of O(N²) (issue 18, finding 1).
pub const SIMILARITY_BLOCK_ROWS: usize = 256;

/// Calls `visit(i, row)` with row `i` of `a · bᵀ` for every row of `a` in order, computing
/// [`SIMILARITY_BLOCK_ROWS`] rows at a time. Each block is the matching slice of the whole
/// product (the same single-precision kernel), so results equal the unblocked product's.
pub fn for_each_similarity_row(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    mut visit: impl FnMut(usize, ArrayView1<f32>),
) {
    let bt = b.t();
    for start in (0..a.nrows()).step_by(SIMILARITY_BLOCK_ROWS) {
        let end = (start + SIMILARITY_BLOCK_ROWS).min(a.nrows());
        let block = a.slice(ndarray::s![start..end, ..]).dot(&bt);
        for (offset, row) in block.axis_iter(Axis(0)).enumerate() {
            visit(start + offset, row);
        }
    }
}

/// Cosine similarities among the rows of a row-normalized matrix, for greedy methods that
/// read one row per pick: the whole N × N matrix while it stays under
/// [`Similarities::FULL_MATRIX_TOKENS`]² entries (one matrix product is faster than many
/// row products), else each row computed when it is asked for (memory O(N)).
pub struct Similarities<'a> {
    normed: ArrayView2<'a, f32>,
    full: Option<Array2<f32>>,
}

impl<'a> Similarities<'a> {
    /// Up to this many tokens the whole matrix is held (4096² f32 = 64 MiB).
    pub const FULL_MATRIX_TOKENS: usize = 4096;

    /// Similarities of `normed`'s rows, held whole up to [`Self::FULL_MATRIX_TOKENS`] rows.
    pub fn new(normed: ArrayView2<'a, f32>) -> Self {
        Self::with_full_limit(normed, Self::FULL_MATRIX_TOKENS)
    }

    /// As [`Self::new`] with another limit (tests force the row-by-row path with 0).
    pub fn with_full_limit(normed: ArrayView2<'a, f32>, full_limit: usize) -> Self {
        let full = (normed.nrows() <= full_limit).then(|| normed.dot(&normed.t()));
        Self { normed, full }
    }

    /// Calls `visit(i, row)` for every row in order: from the whole matrix when it is held,
    /// else computed a block of rows at a time ([`for_each_similarity_row`]).
    pub fn for_each_row(&self, mut visit: impl FnMut(usize, ArrayView1<f32>)) {
        match &self.full {
            Some(full) => {
                for (i, row) in full.axis_iter(Axis(0)).enumerate() {
                    visit(i, row);
                }
            }
            None => for_each_similarity_row(self.normed, self.normed, visit),
        }
    }

    /// Row `i`: the similarity of token `i` to every token.
    pub fn row(&self, i: usize) -> std::borrow::Cow<'_, [f32]> {
        match &self.full {
            Some(full) => std::borrow::Cow::Borrowed(
                full.row(i)
                    .to_slice()
                    .expect("a row of an owned matrix is contiguous"),
            ),
            None => {
                let row = self
                    .normed
                    .slice(ndarray::s![i..i + 1, ..])
                    .dot(&self.normed.t());
                std::borrow::Cow::Owned(row.into_raw_vec_and_offset().0)
            }
        }
    }
}
