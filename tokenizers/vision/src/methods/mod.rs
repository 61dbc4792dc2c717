//! The reducers and their shared output type.

mod baseline;
mod divprune;
mod idpruner;
mod prumerge;
mod stream;
mod tome;
mod visionzip;

pub use baseline::{avg_pool, uniform};
pub use divprune::divprune;
pub use idpruner::{IMPORTANCE_EPSILON, idpruner, query_importance};
pub use prumerge::{PruMergeBudget, iqr_outlier_ratio, prumerge};
pub use stream::{FrameReduction, StreamParams, stream_reduce};
pub use tome::tome;
pub use visionzip::{fastervlm, visionzip};

use ndarray::{Array2, ArrayView2};

use crate::{
    error::{Result, invalid},
    math::check_finite,
};

/// What a reducer kept and produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Reduction {
    /// Input indices kept as they are (or as merge targets), ascending.
    pub kept: Vec<usize>,
    /// Output tokens `[slots, D]`: kept tokens in index order, then tokens the method built
    /// (merged contextual tokens, pooled cells).
    pub tokens: Array2<f32>,
    /// For every input token, the output slot it went to (kept, merged into, pooled into), or -1
    /// when it was dropped.
    pub slot: Vec<i64>,
    /// How many input tokens each output slot stands for, where the method tracks it.
    pub sizes: Option<Vec<f32>>,
    /// The per-input-token score the method ranks by (attention, importance, saliency, …),
    /// NaN where it defines none; `None` for methods without scores.
    pub scores: Option<Vec<f32>>,
}

impl Reduction {
    /// This reduction with per-token `scores`.
    pub(crate) fn with_scores(mut self, scores: impl IntoIterator<Item = f64>) -> Self {
        self.scores = Some(scores.into_iter().map(|s| s as f32).collect());
        self
    }
}

impl Reduction {
    /// Number of output tokens.
    pub fn len(&self) -> usize {
        self.tokens.nrows()
    }

    /// True when nothing was produced.
    pub fn is_empty(&self) -> bool {
        self.tokens.nrows() == 0
    }
}

/// Checks tokens and the number to keep.
pub(crate) fn check_tokens(tokens: ArrayView2<f32>, keep: usize) -> Result<()> {
    if tokens.nrows() == 0 || tokens.ncols() == 0 {
        return Err(invalid(format!(
            "tokens must be [N, D] with N, D > 0, got {:?}",
            tokens.shape()
        )));
    }
    check_finite("tokens", tokens)?;
    if keep == 0 || keep > tokens.nrows() {
        return Err(invalid(format!(
            "cannot keep {keep} of {} tokens (must be 1..={})",
            tokens.nrows(),
            tokens.nrows()
        )));
    }
    Ok(())
}

/// Checks an auxiliary per-token matrix (`keys` [N, Dk]).
pub(crate) fn check_per_token(name: &str, values: ArrayView2<f32>, n: usize) -> Result<()> {
    if values.nrows() != n || values.ncols() == 0 {
        return Err(invalid(format!(
            "{name} must be [{n}, *] to match the tokens, got {:?}",
            values.shape()
        )));
    }
    check_finite(name, values)
}

/// Checks [CLS]→patch attention `[H, N]`.
pub(crate) fn check_attention(attention: ArrayView2<f32>, n: usize) -> Result<()> {
    if attention.ncols() != n || attention.nrows() == 0 {
        return Err(invalid(format!(
            "cls_attention must be [heads, {n}] (or [{n}]) to match the tokens, got {:?}",
            attention.shape()
        )));
    }
    check_finite("cls_attention", attention)
}

/// Output of keep-only methods: the kept tokens in index order.
pub(crate) fn keep_only(tokens: ArrayView2<f32>, kept: Vec<usize>) -> Reduction {
    let mut slot = vec![-1i64; tokens.nrows()];
    for (s, &i) in kept.iter().enumerate() {
        slot[i] = s as i64;
    }
    let out = tokens.select(ndarray::Axis(0), &kept);
    Reduction {
        kept,
        tokens: out,
        slot,
        sizes: None,
        scores: None,
    }
}
