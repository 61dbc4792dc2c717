//! LLaVA-PruMerge and PruMerge+.

use ndarray::{Array1, Array2, ArrayView2, Axis};

use super::{Reduction, check_attention, check_per_token, check_tokens};
use crate::{
    error::{Result, invalid},
    math::{for_each_similarity_row, normalize_rows},
};

/// How many tokens PruMerge keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PruMergeBudget {
    /// The share of tokens whose [CLS] attention is an IQR outlier (above Q3 + 1.5·IQR).
    Adaptive,
    /// A fixed share of the tokens (`int(N · ratio)`).
    Ratio(f64),
}

/// Share of `scores` above `Q3 + 1.5·IQR` (percentiles with linear interpolation, as NumPy).
pub fn iqr_outlier_ratio(scores: &[f64]) -> f64 {
    let mut sorted = scores.to_vec();
    sorted.sort_by(f64::total_cmp);
    let percentile = |q: f64| {
        let position = q * (sorted.len() - 1) as f64;
        let (lo, hi) = (position.floor() as usize, position.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (position - lo as f64)
    };
    let (q1, q3) = (percentile(0.25), percentile(0.75));
    let upper = q3 + 1.5 * (q3 - q1);
    scores.iter().filter(|&&s| s > upper).count() as f64 / scores.len() as f64
}

/// LLaVA-PruMerge (42Shawn/LLaVA-PruMerge `token_prune_merge_advanced[_plus]`).
///
/// Keeps `int(N · ratio)` tokens by [CLS] attention (averaged over heads); with `plus`
/// (PruMerge+) also the tokens at `int(step/6), int(step/6) + int(step/3), … < N − 1`
/// (`step = int(1/ratio)`) not already kept. Each kept token becomes itself plus the sum, over
/// its `neighbours` most key-similar other tokens, of token × attention; one extra token (the
/// last output slot) is the attention-weighted sum of all tokens not kept. Output: kept tokens
/// by ascending index, then the extra token. The effective ratio is returned with the result.
pub fn prumerge(
    tokens: ArrayView2<f32>,
    attention: ArrayView2<f32>,
    keys: ArrayView2<f32>,
    budget: PruMergeBudget,
    plus: bool,
    neighbours: usize,
) -> Result<(Reduction, f64)> {
    let n = tokens.nrows();
    check_tokens(tokens, 1)?;
    check_attention(attention, n)?;
    check_per_token("keys", keys, n)?;
    if neighbours == 0 {
        return Err(invalid(
            "PruMerge needs at least one neighbour per kept token",
        ));
    }
    let attn: Array1<f64> = attention
        .mapv(f64::from)
        .mean_axis(Axis(0))
        .expect("heads > 0");
    let ratio = match budget {
        PruMergeBudget::Adaptive => iqr_outlier_ratio(attn.as_slice().expect("contiguous")),
        PruMergeBudget::Ratio(r) if (0.0..=1.0).contains(&r) => r,
        PruMergeBudget::Ratio(r) => {
            return Err(invalid(format!("PruMerge ratio {r} is outside [0, 1]")));
        }
    };
    let left = ((n as f64) * ratio) as usize;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| attn[b].total_cmp(&attn[a]).then(a.cmp(&b)));
    let mut idx: Vec<usize> = order[..left].to_vec();
    let mut chosen = vec![false; n];
    idx.iter().for_each(|&i| chosen[i] = true);
    if plus && ratio > 0.0 {
        let step = (1.0 / ratio) as usize;
        let stride = (step / 3).max(1);
        for x in (step / 6..n.saturating_sub(1)).step_by(stride) {
            if !chosen[x] {
                chosen[x] = true;
                idx.push(x);
            }
        }
    }
    let complement: Vec<usize> = (0..n).filter(|&i| !chosen[i]).collect();
    let normed = normalize_rows(keys);
    let d = tokens.ncols();
    // value += weight · token, in f64 (as ndarray's scaled_add, which this replaced).
    let add_scaled = |value: &mut [f64], weight: f64, token: usize| {
        for (v, &x) in value.iter_mut().zip(tokens.row(token)) {
            *v += weight * f64::from(x);
        }
    };
    let mut updated: Vec<(usize, Vec<f64>)> = Vec::with_capacity(idx.len());
    let kept_rows = normed.select(Axis(0), &idx);
    for_each_similarity_row(kept_rows.view(), normed.view(), |p, kept_sims| {
        let i = idx[p];
        let rest: Vec<usize> = idx[..p]
            .iter()
            .chain(&idx[p + 1..])
            .chain(&complement)
            .copied()
            .collect();
        let sims: Vec<f64> = rest.iter().map(|&j| f64::from(kept_sims[j])).collect();
        // The `neighbours` most similar, ties to the earlier position in `rest` (a total
        // order, so partitioning first picks the same set a full sort would).
        let order = |a: &usize, b: &usize| sims[*b].total_cmp(&sims[*a]).then(a.cmp(b));
        let mut pick: Vec<usize> = (0..rest.len()).collect();
        if neighbours < pick.len() {
            pick.select_nth_unstable_by(neighbours, order);
            pick.truncate(neighbours);
        }
        pick.sort_by(order);
        let mut value: Vec<f64> = tokens.row(i).iter().map(|&v| f64::from(v)).collect();
        for &q in &pick {
            add_scaled(&mut value, attn[rest[q]], rest[q]);
        }
        updated.push((i, value));
    });
    updated.sort_by_key(|(i, _)| *i);
    let mut extra = vec![0f64; d];
    for &c in &complement {
        add_scaled(&mut extra, attn[c], c);
    }
    let slots = updated.len() + 1;
    let mut out = Array2::<f32>::zeros((slots, d));
    let mut slot = vec![(slots - 1) as i64; n];
    let rows = updated.iter().map(|(_, value)| value).chain([&extra]);
    for (mut out, value) in out.rows_mut().into_iter().zip(rows) {
        out.iter_mut().zip(value).for_each(|(o, &v)| *o = v as f32);
    }
    for (s, (i, _)) in updated.iter().enumerate() {
        slot[*i] = s as i64;
    }
    let kept = updated.iter().map(|(i, _)| *i).collect();
    Ok((
        Reduction {
            kept,
            tokens: out,
            slot,
            sizes: None,
            scores: Some(attn.iter().map(|&s| s as f32).collect()),
        },
        ratio,
    ))
}
