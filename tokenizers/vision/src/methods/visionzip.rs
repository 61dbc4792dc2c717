//! Attention-driven reducers: FasterVLM (top-k by [CLS] attention) and VisionZip (dominant by
//! [CLS] attention + contextual tokens merged by key similarity).

use ndarray::{Array1, Array2, ArrayView2, Axis};

use super::{Reduction, check_attention, check_per_token, check_tokens, keep_only};
use crate::{
    error::{Result, invalid},
    math::{argmax, for_each_similarity_row, normalize_rows, top_k},
};

/// FasterVLM: keeps the `k` tokens with the highest [CLS] attention averaged over heads.
pub fn fastervlm(
    tokens: ArrayView2<f32>,
    attention: ArrayView2<f32>,
    k: usize,
) -> Result<Reduction> {
    check_tokens(tokens, k)?;
    check_attention(attention, tokens.nrows())?;
    let scores: Array1<f64> = attention
        .mapv(f64::from)
        .mean_axis(Axis(0))
        .expect("heads > 0");
    Ok(keep_only(tokens, top_k(scores.view(), k)).with_scores(scores.iter().copied()))
}

/// VisionZip (dvlab-research/VisionZip `clip_encoder.py`): the `dominant` tokens with the
/// highest [CLS] attention summed over heads are kept; of the remaining `R` tokens (in input
/// order) those at positions `0, step, 2·step, …` (`step = max(1, R / contextual)`, first
/// `contextual` of them) are targets, and every other remaining token is assigned to the target
/// whose L2-normalized key is most similar; each contextual token is its target plus the mean
/// of the tokens assigned to it. Output: dominant tokens (index order), then contextual ones.
pub fn visionzip(
    tokens: ArrayView2<f32>,
    attention: ArrayView2<f32>,
    keys: ArrayView2<f32>,
    dominant: usize,
    contextual: usize,
) -> Result<Reduction> {
    let n = tokens.nrows();
    check_tokens(tokens, dominant.max(1))?;
    check_attention(attention, n)?;
    check_per_token("keys", keys, n)?;
    if contextual == 0 || dominant + contextual > n {
        return Err(invalid(format!(
            "VisionZip needs 1 or more contextual tokens and dominant + contextual ≤ {n}, got {dominant} + {contextual}"
        )));
    }
    let scores: Array1<f64> = attention.mapv(f64::from).sum_axis(Axis(0));
    let kept = if dominant == 0 {
        Vec::new()
    } else {
        top_k(scores.view(), dominant)
    };
    let mut is_kept = vec![false; n];
    kept.iter().for_each(|&i| is_kept[i] = true);
    let rest: Vec<usize> = (0..n).filter(|&i| !is_kept[i]).collect();
    let r = rest.len();
    let step = (r / contextual).max(1);
    let target_pos: Vec<usize> = (0..r).step_by(step).take(contextual).collect();
    let mut is_target = vec![false; r];
    target_pos.iter().for_each(|&p| is_target[p] = true);
    let normed = normalize_rows(keys);

    let d = tokens.ncols();
    let slots = kept.len() + target_pos.len();
    let mut out = Array2::<f32>::zeros((slots, d));
    let mut slot = vec![-1i64; n];
    for (s, &i) in kept.iter().enumerate() {
        out.row_mut(s).assign(&tokens.row(i));
        slot[i] = s as i64;
    }
    let mut sums = vec![vec![0f64; d]; target_pos.len()];
    let mut counts = vec![0usize; target_pos.len()];
    let targets: Vec<usize> = target_pos.iter().map(|&p| rest[p]).collect();
    let others: Vec<usize> = (0..r).filter(|&p| !is_target[p]).collect();
    let other_rows: Vec<usize> = others.iter().map(|&p| rest[p]).collect();
    let mut best_target = Vec::with_capacity(others.len());
    for_each_similarity_row(
        normed.select(Axis(0), &other_rows).view(),
        normed.select(Axis(0), &targets).view(),
        |_, sims| best_target.push(argmax(sims.iter().map(|&s| f64::from(s)))),
    );
    for (&p, &best) in others.iter().zip(&best_target) {
        counts[best] += 1;
        for (acc, &v) in sums[best].iter_mut().zip(tokens.row(rest[p])) {
            *acc += f64::from(v);
        }
        slot[rest[p]] = (kept.len() + best) as i64;
    }
    for (t, &p) in target_pos.iter().enumerate() {
        let s = kept.len() + t;
        slot[rest[p]] = s as i64;
        let count = counts[t].max(1) as f64;
        for ((o, &v), acc) in out
            .row_mut(s)
            .iter_mut()
            .zip(tokens.row(rest[p]))
            .zip(&sums[t])
        {
            *o = (f64::from(v) + acc / count) as f32;
        }
    }
    let mut kept_or_target: Vec<usize> = kept.clone();
    kept_or_target.extend(target_pos.iter().map(|&p| rest[p]));
    let mut sizes = vec![1f32; kept.len()];
    sizes.extend(counts.iter().map(|&c| (c + 1) as f32));
    Ok(Reduction {
        kept: kept_or_target,
        tokens: out,
        slot,
        sizes: Some(sizes),
        scores: Some(scores.iter().map(|&s| s as f32).collect()),
    })
}
