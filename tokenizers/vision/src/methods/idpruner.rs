//! IDPruner: Maximal Marginal Relevance between importance and diversity.

use ndarray::ArrayView2;

use super::{Reduction, check_tokens, keep_only};
use crate::{
    error::{Result, invalid},
    math::{Similarities, argmax, normalize_rows},
};

/// Added to the denominator of the min–max normalization of importance.
pub const IMPORTANCE_EPSILON: f64 = 1e-6;

/// Importance of each token from a text query `[M, D]`: the mean over query rows of the cosine
/// between the token and the row.
pub fn query_importance(tokens: ArrayView2<f32>, query: ArrayView2<f32>) -> Result<Vec<f64>> {
    if query.ncols() != tokens.ncols() || query.nrows() == 0 {
        return Err(invalid(format!(
            "query must be [M, {}] to match the token width, got {:?}",
            tokens.ncols(),
            query.shape()
        )));
    }
    crate::math::check_finite("query", query)?;
    let (t, q) = (normalize_rows(tokens), normalize_rows(query));
    Ok(t.dot(&q.t())
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|&v| f64::from(v)).sum::<f64>() / r.len() as f64)
        .collect())
}

/// IDPruner (Tan et al., 2026): greedily picks the token maximizing
/// `λ·Imp − (1 − λ)·max_{s ∈ S} cos(token, s)` (the second term is 0 while S is empty), with
/// `Imp = (w − min w) / (max w − min w + ε)`.
pub fn idpruner(
    tokens: ArrayView2<f32>,
    importance: &[f64],
    k: usize,
    lambda: f64,
) -> Result<Reduction> {
    check_tokens(tokens, k)?;
    let n = tokens.nrows();
    if importance.len() != n {
        return Err(invalid(format!(
            "importance has {} entries for {n} tokens",
            importance.len()
        )));
    }
    if importance.iter().any(|v| !v.is_finite()) {
        return Err(invalid("importance has a NaN or infinite entry"));
    }
    if !(0.0..=1.0).contains(&lambda) {
        return Err(invalid(format!("lambda {lambda} is outside [0, 1]")));
    }
    let (lo, hi) = importance
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    let imp: Vec<f64> = importance
        .iter()
        .map(|&w| (w - lo) / (hi - lo + IMPORTANCE_EPSILON))
        .collect();
    let normed = normalize_rows(tokens);
    let sim = Similarities::new(normed.view());
    let mut selected = vec![false; n];
    let mut redundancy = vec![0f64; n];
    let mut kept = Vec::with_capacity(k);
    for step in 0..k {
        let next = argmax((0..n).map(|i| {
            if selected[i] {
                f64::NEG_INFINITY
            } else {
                lambda * imp[i] - (1.0 - lambda) * redundancy[i]
            }
        }));
        selected[next] = true;
        kept.push(next);
        for (r, &s) in redundancy.iter_mut().zip(sim.row(next).iter()) {
            let sim = f64::from(s);
            *r = if step == 0 { sim } else { r.max(sim) };
        }
    }
    kept.sort_unstable();
    Ok(keep_only(tokens, kept).with_scores(imp))
}
