//! Shared numeric helpers.

use ndarray::{Array2, ArrayView1, ArrayView2, Axis, ShapeBuilder};

use crate::{
    error::{Result, invalid},
    similarity::{self_similarities, similarities},
};

/// Rows scaled to unit L2 norm (norm accumulated in f64; norms below 1e-12 count as 1e-12).
/// Similarities are then single-precision matrix products, as in the references.
///
/// The result keeps its rows [`ROW_PADDING`] floats apart beyond the width rounded up to 16, so
/// that rows of power-of-two widths (1024) do not alias in the caches of the similarity kernel.
pub fn normalize_rows(x: ArrayView2<f32>) -> Array2<f32> {
    let (rows, cols) = x.dim();
    let stride = cols.next_multiple_of(16) + ROW_PADDING;
    // The last row needs only its own width.
    let mut data = vec![0f32; rows.checked_sub(1).map_or(0, |last| last * stride + cols)];
    for (i, row) in x.rows().into_iter().enumerate() {
        let out = &mut data[i * stride..i * stride + cols];
        match row.as_slice() {
            Some(row) => normalize_into(row, out),
            None => normalize_into(&row.to_vec(), out),
        }
    }
    Array2::from_shape_vec((rows, cols).strides((stride, 1)), data)
        .expect("the buffer spans every padded row")
}

/// Floats between the end of one normalized row (rounded up to 16) and the next.
pub const ROW_PADDING: usize = 16;

/// `out = row / max(‖row‖, 1e-12)`, the norm summed in f64 over 8 interleaved partial sums and
/// the scale applied in f64.
fn normalize_into(row: &[f32], out: &mut [f32]) {
    let mut partial = [0f64; 8];
    let mut chunks = row.chunks_exact(8);
    for chunk in &mut chunks {
        for (p, &v) in partial.iter_mut().zip(chunk) {
            *p += f64::from(v) * f64::from(v);
        }
    }
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum();
    let norm = (partial.iter().sum::<f64>() + tail).sqrt().max(1e-12);
    let scale = 1.0 / norm;
    for (o, &v) in out.iter_mut().zip(row) {
        *o = (f64::from(v) * scale) as f32;
    }
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

/// Fails unless every value is finite (a branch-free pass over the exponent bits, row by row,
/// then a search for the first offender to name it).
pub fn check_finite(name: &str, values: ArrayView2<f32>) -> Result<()> {
    let finite = |row: &[f32]| {
        row.iter().fold(0u32, |seen, v| {
            seen | u32::from(v.to_bits() & 0x7f80_0000 == 0x7f80_0000)
        }) == 0
    };
    let all_finite = match values.as_slice() {
        Some(all) => finite(all),
        None => values.rows().into_iter().all(|row| match row.as_slice() {
            Some(row) => finite(row),
            None => row.iter().all(|v| v.is_finite()),
        }),
    };
    if all_finite {
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
/// product (the same single-precision kernel, [`similarities`]), so results equal the
/// unblocked product's.
pub fn for_each_similarity_row(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    mut visit: impl FnMut(usize, ArrayView1<f32>),
) {
    for start in (0..a.nrows()).step_by(SIMILARITY_BLOCK_ROWS) {
        let end = (start + SIMILARITY_BLOCK_ROWS).min(a.nrows());
        let block = similarities(a.slice(ndarray::s![start..end, ..]), b);
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
        let full = (normed.nrows() <= full_limit).then(|| self_similarities(normed));
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
            None => std::borrow::Cow::Owned(
                similarities(self.normed.slice(ndarray::s![i..i + 1, ..]), self.normed)
                    .into_raw_vec_and_offset()
                    .0,
            ),
        }
    }
}
