//! STC-style streaming reduction over a sequence of frames.

use ndarray::{Array2, ArrayView2, Axis};

use super::{Reduction, check_tokens, keep_only};
use crate::{
    error::{Result, invalid},
    math::normalize_rows,
};

/// One frame's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameReduction {
    /// Dynamic tokens kept for this frame (static ones are reused from the cache, not sent).
    pub reduction: Reduction,
    /// Tokens found static (cosine to the cached token ≥ the reuse threshold).
    pub static_tokens: usize,
}

/// Parameters of [`stream_reduce`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamParams {
    /// Most tokens kept per frame.
    pub keep: usize,
    /// Cosine to the cached token at the same position from which a token counts as static.
    pub reuse_threshold: f64,
    /// Weight of temporal saliency (1 − cos to the cache) against spatial saliency (1 − cos to
    /// the frame's mean token).
    pub alpha: f64,
}

impl Default for StreamParams {
    fn default() -> Self {
        Self {
            keep: 64,
            reuse_threshold: 0.9,
            alpha: 0.5,
        }
    }
}

/// STC-style streaming reducer (terse's rule, after STC-Cacher/STC-Pruner, Wang et al. 2026):
/// a token whose cosine to the cached token at its position is ≥ `reuse_threshold` is static
/// and reused; among the dynamic tokens the `keep` with the highest
/// `α·(1 − cos to cache) + (1 − α)·(1 − cos to the frame mean)` are kept; the cache then takes
/// the frame's dynamic tokens. The first frame has no cache (all dynamic, temporal term 1). A
/// frame with no dynamic token yields no tokens (it is skipped).
pub fn stream_reduce(
    frames: &[ArrayView2<f32>],
    params: StreamParams,
) -> Result<Vec<FrameReduction>> {
    let first = frames
        .first()
        .ok_or_else(|| invalid("the frame sequence is empty"))?;
    let (n, d) = first.dim();
    if !(0.0..=1.0).contains(&params.alpha) {
        return Err(invalid(format!("alpha {} is outside [0, 1]", params.alpha)));
    }
    let mut cache: Option<Array2<f32>> = None;
    let mut out = Vec::with_capacity(frames.len());
    for (t, frame) in frames.iter().enumerate() {
        if frame.dim() != (n, d) {
            return Err(invalid(format!(
                "frame {t} is {:?}, the first frame is [{n}, {d}]",
                frame.shape()
            )));
        }
        check_tokens(*frame, params.keep.min(n).max(1))?;
        let normed = normalize_rows(*frame);
        let mean = frame
            .mapv(f64::from)
            .mean_axis(Axis(0))
            .expect("n > 0")
            .mapv(|v| v as f32);
        let mean = normalize_rows(mean.view().insert_axis(Axis(0)));
        let spatial: Vec<f64> = (0..n)
            .map(|i| 1.0 - f64::from(normed.row(i).dot(&mean.row(0))))
            .collect();
        let (temporal, dynamic): (Vec<f64>, Vec<bool>) = match &cache {
            None => (vec![1.0; n], vec![true; n]),
            Some(c) => {
                let cached = normalize_rows(c.view());
                (0..n)
                    .map(|i| {
                        let s = f64::from(normed.row(i).dot(&cached.row(i)));
                        (1.0 - s, s < params.reuse_threshold)
                    })
                    .unzip()
            }
        };
        let score: Vec<f64> = (0..n)
            .map(|i| params.alpha * temporal[i] + (1.0 - params.alpha) * spatial[i])
            .collect();
        let mut candidates: Vec<usize> = (0..n).filter(|&i| dynamic[i]).collect();
        candidates.sort_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
        let mut kept: Vec<usize> = candidates.into_iter().take(params.keep).collect();
        kept.sort_unstable();
        let static_tokens = dynamic.iter().filter(|&&x| !x).count();
        out.push(FrameReduction {
            reduction: keep_only(*frame, kept)
                .with_scores((0..n).map(|i| if dynamic[i] { score[i] } else { f64::NAN })),
            static_tokens,
        });
        cache = Some(match cache {
            None => frame.to_owned(),
            Some(mut c) => {
                for i in (0..n).filter(|&i| dynamic[i]) {
                    c.row_mut(i).assign(&frame.row(i));
                }
                c
            }
        });
    }
    Ok(out)
}
