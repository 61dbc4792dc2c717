//! How well a reduced token set stands for the full one, without a VLM.

use ndarray::ArrayView2;

use crate::math::normalize_rows;

/// Coverage and diversity of a reduction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// Mean, over every input token, of its highest cosine similarity to an output token
    /// (1 = every input token is represented exactly).
    pub reconstruction: f64,
    /// The same mean over the input tokens not kept as themselves (dropped or merged): how well
    /// what was left out is represented.
    pub dropped_reconstruction: f64,
    /// Mean pairwise cosine distance (1 − cos) among output tokens (higher = more diverse).
    pub diversity: f64,
    /// Smallest pairwise cosine distance among output tokens (what DivPrune maximizes greedily).
    pub min_distance: f64,
}

/// Measures `output` (the reduced tokens) against `input` (all tokens); `kept` are the input
/// indices kept as themselves.
pub fn quality(input: ArrayView2<f32>, output: ArrayView2<f32>, kept: &[usize]) -> Quality {
    let (a, b) = (normalize_rows(input), normalize_rows(output));
    let cross = a.dot(&b.t());
    let best: Vec<f64> = cross
        .rows()
        .into_iter()
        .map(|r| {
            r.iter()
                .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)))
        })
        .collect();
    let reconstruction = best.iter().sum::<f64>() / best.len().max(1) as f64;
    let mut is_kept = vec![false; best.len()];
    kept.iter()
        .filter(|&&i| i < best.len())
        .for_each(|&i| is_kept[i] = true);
    let dropped: Vec<f64> = best
        .iter()
        .zip(&is_kept)
        .filter(|(_, k)| !**k)
        .map(|(b, _)| *b)
        .collect();
    let dropped_reconstruction = dropped.iter().sum::<f64>() / dropped.len().max(1) as f64;
    let own = b.dot(&b.t());
    let m = output.nrows();
    let pairs = (m * m.saturating_sub(1)) as f64;
    let distances = || {
        own.indexed_iter()
            .filter(|((i, j), _)| i != j)
            .map(|(_, &v)| 1.0 - f64::from(v))
    };
    let diversity = if pairs > 0.0 {
        distances().sum::<f64>() / pairs
    } else {
        0.0
    };
    let min_distance = if pairs > 0.0 {
        distances().fold(f64::INFINITY, f64::min)
    } else {
        0.0
    };
    Quality {
        reconstruction,
        dropped_reconstruction,
        diversity,
        min_distance,
    }
}
