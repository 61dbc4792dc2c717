//! DivPrune: greedy max–min diversity on cosine distance.

use ndarray::ArrayView2;

use super::{Reduction, check_tokens, keep_only};
use crate::{
    error::Result,
    math::{argmax, normalize_rows},
};

/// DivPrune (vbdi/divprune): with distance `1 − cos`, the first pick is the token farthest from
/// its nearest neighbour; each next pick is the token farthest from the selected set (the
/// maximum over tokens of the minimum distance to any selected token).
pub fn divprune(tokens: ArrayView2<f32>, k: usize) -> Result<Reduction> {
    check_tokens(tokens, k)?;
    let n = tokens.nrows();
    let normed = normalize_rows(tokens);
    let distance = normed.dot(&normed.t()).mapv(|s| 1.0 - s);
    let isolation: Vec<f64> = (0..n)
        .map(|j| {
            // Second-smallest entry of column j: the nearest other token (self is 0).
            let mut smallest = [f64::INFINITY; 2];
            for i in 0..n {
                let v = f64::from(distance[[i, j]]);
                if v < smallest[0] {
                    smallest = [v, smallest[0]];
                } else if v < smallest[1] {
                    smallest[1] = v;
                }
            }
            if n == 1 { smallest[0] } else { smallest[1] }
        })
        .collect();
    let first = argmax(isolation.iter().copied());
    // Score: the distance that won each pick (isolation for the first), and for tokens never
    // picked their final distance to the selected set.
    let mut picked_at = vec![f64::NAN; n];
    picked_at[first] = isolation[first];
    let mut selected = vec![first];
    let mut nearest: Vec<f64> = (0..n).map(|j| f64::from(distance[[first, j]])).collect();
    while selected.len() < k {
        let next = argmax(nearest.iter().copied());
        picked_at[next] = nearest[next];
        selected.push(next);
        for (j, d) in nearest.iter_mut().enumerate() {
            *d = d.min(f64::from(distance[[next, j]]));
        }
    }
    selected.sort_unstable();
    let scores = picked_at
        .iter()
        .zip(&nearest)
        .map(|(&p, &d)| if p.is_nan() { d } else { p });
    Ok(keep_only(tokens, selected).with_scores(scores))
}
