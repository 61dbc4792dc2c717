//! Training-free reducers of visual tokens, on [`ndarray`].
//!
//! Every reducer takes patch tokens `[N, D]` (no `[CLS]` token) plus what its method needs
//! ([CLS]→patch attention `[H, N]`, keys `[N, Dk]`) and returns a [`Reduction`]: the indices kept
//! (ascending), the output tokens (kept tokens, then merged ones where the method merges), and
//! the slot each input token went to. Each follows its reference implementation's rule; ties go
//! to the lower token index. `reference/reference.py` is the NumPy reference the tests compare
//! against.

mod error;
mod math;
pub mod methods;
mod pruner;
pub mod quality;
mod similarity;

pub use error::{PruneError, Result};
pub use methods::{
    FrameReduction, PruMergeBudget, Reduction, StreamParams, avg_pool, divprune, fastervlm,
    idpruner, iqr_outlier_ratio, prumerge, query_importance, stream_reduce, tome, uniform,
    visionzip,
};
pub use pruner::{
    IdPrunerParams, Inputs, Method, PruMergeParams, Pruner, ToMeParams, VisionZipParams,
};
pub use quality::{Quality, quality};
