//! Plain baselines: uniform subsampling and average pooling of the token grid.

use ndarray::{Array2, ArrayView2};

use super::{Reduction, check_tokens, keep_only};
use crate::error::{Result, invalid};

/// Keeps `k` tokens at the centres of `k` equal strides: index `floor((j + ½)·N / k)`.
pub fn uniform(tokens: ArrayView2<f32>, k: usize) -> Result<Reduction> {
    check_tokens(tokens, k)?;
    let n = tokens.nrows();
    let kept = (0..k).map(|j| ((2 * j + 1) * n) / (2 * k)).collect();
    Ok(keep_only(tokens, kept))
}

/// Average-pools the square token grid (`N = s²`) to `side × side` cells with adaptive pooling
/// bins (`floor(i·s/side) .. ceil((i+1)·s/side)`, as `adaptive_avg_pool2d`). A token in two
/// overlapping bins is assigned to the first.
pub fn avg_pool(tokens: ArrayView2<f32>, side: usize) -> Result<Reduction> {
    let n = tokens.nrows();
    let s = (n as f64).sqrt().round() as usize;
    if s * s != n {
        return Err(invalid(format!(
            "average pooling needs a square token grid, {n} tokens is not one"
        )));
    }
    if side == 0 || side > s {
        return Err(invalid(format!("pooled side {side} must be 1..={s}")));
    }
    check_tokens(tokens, side * side)?;
    let d = tokens.ncols();
    let mut out = Array2::<f32>::zeros((side * side, d));
    let mut slot = vec![-1i64; n];
    let bins = |i: usize| ((i * s) / side, ((i + 1) * s).div_ceil(side));
    for i in 0..side {
        let (r0, r1) = bins(i);
        for j in 0..side {
            let (c0, c1) = bins(j);
            let cell = i * side + j;
            let mut sum = vec![0f64; d];
            for r in r0..r1 {
                for c in c0..c1 {
                    let t = r * s + c;
                    for (acc, &v) in sum.iter_mut().zip(tokens.row(t)) {
                        *acc += f64::from(v);
                    }
                    if slot[t] < 0 {
                        slot[t] = cell as i64;
                    }
                }
            }
            let count = ((r1 - r0) * (c1 - c0)) as f64;
            for (o, v) in out.row_mut(cell).iter_mut().zip(sum) {
                *o = (v / count) as f32;
            }
        }
    }
    Ok(Reduction {
        kept: Vec::new(),
        tokens: out,
        slot,
        sizes: None,
        scores: None,
    })
}
