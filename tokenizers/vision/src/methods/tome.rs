//! ToMe: bipartite soft matching with size-weighted merging.

use ndarray::{Array2, ArrayView2, s};

use super::{Reduction, check_per_token, check_tokens};
use crate::{
    error::{Result, invalid},
    math::{for_each_similarity_row, normalize_rows},
};

/// ToMe (facebookresearch/ToMe `bipartite_soft_matching` + `merge_wavg`): tokens alternate into
/// sets A (even indices) and B (odd); every A token finds its most similar B token by cosine of
/// `metric`; the `r` A tokens with the best matches merge into them, averaging weighted by
/// `sizes` (ones when `None`). The first `protected` tokens never merge. Output slots are in
/// input-index order of the surviving tokens; `sizes` of the result are the merged sizes.
pub fn tome(
    tokens: ArrayView2<f32>,
    metric: ArrayView2<f32>,
    r: usize,
    protected: usize,
    sizes: Option<&[f32]>,
) -> Result<Reduction> {
    let n = tokens.nrows();
    check_tokens(tokens, n)?;
    check_per_token("keys", metric, n)?;
    let limit = n.saturating_sub(protected) / 2;
    if r > limit {
        return Err(invalid(format!(
            "ToMe merges at most {limit} of {n} tokens per call ({protected} protected), asked for {r}"
        )));
    }
    let sizes: Vec<f64> = match sizes {
        Some(s) if s.len() != n => {
            return Err(invalid(format!(
                "sizes has {} entries for {n} tokens",
                s.len()
            )));
        }
        Some(s) if s.iter().any(|v| !(v.is_finite() && *v > 0.0)) => {
            return Err(invalid("sizes must be positive and finite"));
        }
        Some(s) => s.iter().map(|&v| f64::from(v)).collect(),
        None => vec![1.0; n],
    };
    let normed = normalize_rows(metric);
    let a: Vec<usize> = (0..n).step_by(2).collect();
    let b: Vec<usize> = (1..n).step_by(2).collect();
    let mut best: Vec<(f64, usize)> = Vec::with_capacity(a.len());
    // B tokens before this are protected (their scores count as −∞).
    let first_open_b = b.partition_point(|&j| j < protected);
    for_each_similarity_row(
        normed.slice(s![0..;2, ..]),
        normed.slice(s![1..;2, ..]),
        |ai, scores| {
            // A protected A token sees every B token as protected. The first of equal
            // scores wins.
            let open_from = if a[ai] < protected {
                b.len()
            } else {
                first_open_b
            };
            let mut top = (f64::NEG_INFINITY, 0usize);
            if let Some((offset, &score)) = scores
                .iter()
                .skip(open_from)
                .enumerate()
                .reduce(|best, next| if next.1 > best.1 { next } else { best })
                && (open_from == 0 || score > f32::NEG_INFINITY)
            {
                top = (f64::from(score), open_from + offset);
            }
            best.push(top);
        },
    );
    if b.is_empty() {
        best.iter_mut().for_each(|t| *t = (f64::NEG_INFINITY, 0));
    }
    let mut edge: Vec<usize> = (0..a.len()).collect();
    edge.sort_by(|&x, &y| best[y].0.total_cmp(&best[x].0).then(x.cmp(&y)));

    let d = tokens.ncols();
    let sizes = &sizes;
    let weighted = |i: usize| {
        let size = sizes[i];
        tokens.row(i).into_iter().map(move |&v| f64::from(v) * size)
    };
    // Size-weighted sums in f64, kept only for the B tokens that receive merges (in merge
    // order, as the reference adds them).
    let mut sum_of = vec![usize::MAX; n];
    let mut sums: Vec<f64> = Vec::with_capacity(r.min(b.len()) * d);
    let mut total = sizes.to_vec();
    let mut target: Vec<usize> = (0..n).collect();
    for &e in &edge[..r] {
        let (src, dst) = (a[e], b[best[e].1]);
        if sum_of[dst] == usize::MAX {
            sum_of[dst] = sums.len() / d;
            sums.extend(weighted(dst));
        }
        let sum = &mut sums[sum_of[dst] * d..(sum_of[dst] + 1) * d];
        for (acc, v) in sum.iter_mut().zip(weighted(src)) {
            *acc += v;
        }
        total[dst] += total[src];
        target[src] = dst;
    }
    let kept: Vec<usize> = (0..n).filter(|&i| target[i] == i).collect();
    let mut position = vec![0usize; n];
    kept.iter().enumerate().for_each(|(p, &i)| position[i] = p);
    let mut out = Array2::<f32>::zeros((kept.len(), d));
    for (mut row, &i) in out.rows_mut().into_iter().zip(&kept) {
        if sum_of[i] != usize::MAX {
            let sum = &sums[sum_of[i] * d..(sum_of[i] + 1) * d];
            row.iter_mut()
                .zip(sum)
                .for_each(|(o, v)| *o = (v / total[i]) as f32);
        } else if sizes[i] == 1.0 {
            // (v · 1) / 1 is v.
            row.assign(&tokens.row(i));
        } else {
            row.iter_mut()
                .zip(weighted(i))
                .for_each(|(o, v)| *o = (v / total[i]) as f32);
        }
    }
    let slot = (0..n).map(|i| position[target[i]] as i64).collect();
    let out_sizes = kept.iter().map(|&i| total[i] as f32).collect();
    Ok(Reduction {
        kept,
        tokens: out,
        slot,
        sizes: Some(out_sizes),
        scores: Some(
            (0..n)
                .map(|i| {
                    if i % 2 == 0 {
                        best[i / 2].0 as f32
                    } else {
                        f32::NAN
                    }
                })
                .collect(),
        ),
    })
}
