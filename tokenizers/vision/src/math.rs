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
