//! DivPrune: greedy max–min diversity on cosine distance.

use ndarray::ArrayView2;

use super::{Reduction, check_tokens, keep_only};
use crate::{
    error::Result,
    math::{Similarities, argmax, normalize_rows},
};

/// DivPrune (vbdi/divprune): with distance `1 − cos`, the first pick is the token farthest from
/// its nearest neighbour; each next pick is the token farthest from the selected set (the
/// maximum over tokens of the minimum distance to any selected token).
pub fn divprune(tokens: ArrayView2<f32>, k: usize) -> Result<Reduction> {
    divprune_with(tokens, k, Similarities::FULL_MATRIX_TOKENS)
}

/// [`divprune`] holding the whole similarity matrix only up to `full_limit` tokens.
fn divprune_with(tokens: ArrayView2<f32>, k: usize, full_limit: usize) -> Result<Reduction> {
    check_tokens(tokens, k)?;
    let n = tokens.nrows();
    let normed = normalize_rows(tokens);
    // Second-smallest distance of each column j over the rows i in order: the nearest other
    // token (self is 0). Distances are f32 as in the reference (`1 − cos` in single precision);
    // computed a block of rows at a time, branch-free.
    let similarities = Similarities::with_full_limit(normed.view(), full_limit);
    let (mut smallest, mut second) = (vec![f32::INFINITY; n], vec![f32::INFINITY; n]);
    similarities.for_each_row(|_, row| {
        for ((low, next), &s) in smallest.iter_mut().zip(second.iter_mut()).zip(row) {
            let v = 1.0 - s;
            *next = next.min(low.max(v));
            *low = low.min(v);
        }
    });
    let isolation = if n == 1 { smallest } else { second };
    let first = argmax(isolation.iter().map(|&v| f64::from(v)));
    // Score: the distance that won each pick (isolation for the first), and for tokens never
    // picked their final distance to the selected set.
    let mut picked_at = vec![f32::NAN; n];
    picked_at[first] = isolation[first];
    let mut selected = vec![first];
    let mut nearest: Vec<f32> = similarities.row(first).iter().map(|&s| 1.0 - s).collect();
    while selected.len() < k {
        let next = argmax(nearest.iter().map(|&v| f64::from(v)));
        picked_at[next] = nearest[next];
        selected.push(next);
        for (d, &s) in nearest.iter_mut().zip(similarities.row(next).iter()) {
            *d = d.min(1.0 - s);
        }
    }
    selected.sort_unstable();
    let scores = picked_at
        .iter()
        .zip(&nearest)
        .map(|(&p, &d)| f64::from(if p.is_nan() { d } else { p }));
    Ok(keep_only(tokens, selected).with_scores(scores))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_by_row_similarities_pick_what_the_whole_matrix_picks() {
        let tokens = ndarray::Array2::from_shape_fn((700, 24), |(i, j)| {
            (((i * 31 + j * 17) % 97) as f32 - 48.0) * if (i + j) % 7 == 0 { 2.5 } else { 1.0 }
        });
        let whole = divprune_with(tokens.view(), 90, usize::MAX).unwrap();
        let rows = divprune_with(tokens.view(), 90, 0).unwrap();
        assert_eq!(whole.kept, rows.kept);
        assert_eq!(whole.scores, rows.scores);
    }
}
