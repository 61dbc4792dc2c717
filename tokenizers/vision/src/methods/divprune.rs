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
    // token (self is 0). Computed a block of rows at a time.
    let similarities = Similarities::with_full_limit(normed.view(), full_limit);
    let mut smallest = vec![[f64::INFINITY; 2]; n];
    similarities.for_each_row(|_, row| {
        for (column, &s) in smallest.iter_mut().zip(row) {
            let v = f64::from(1.0 - s);
            if v < column[0] {
                *column = [v, column[0]];
            } else if v < column[1] {
                column[1] = v;
            }
        }
    });
    let isolation: Vec<f64> = smallest
        .iter()
        .map(|s| if n == 1 { s[0] } else { s[1] })
        .collect();
    let distance_row = |i: usize| -> Vec<f64> {
        similarities
            .row(i)
            .iter()
            .map(|&s| f64::from(1.0 - s))
            .collect()
    };
    let first = argmax(isolation.iter().copied());
    // Score: the distance that won each pick (isolation for the first), and for tokens never
    // picked their final distance to the selected set.
    let mut picked_at = vec![f64::NAN; n];
    picked_at[first] = isolation[first];
    let mut selected = vec![first];
    let mut nearest = distance_row(first);
    while selected.len() < k {
        let next = argmax(nearest.iter().copied());
        picked_at[next] = nearest[next];
        selected.push(next);
        for (d, new) in nearest.iter_mut().zip(distance_row(next)) {
            *d = d.min(new);
        }
    }
    selected.sort_unstable();
    let scores = picked_at
        .iter()
        .zip(&nearest)
        .map(|(&p, &d)| if p.is_nan() { d } else { p });
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
