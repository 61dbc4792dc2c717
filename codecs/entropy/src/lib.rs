//! Entropy-coding core of terse, on [`constriction`].
//!
//! - [`table`]: indexed fixed-point CDF tables with CompressAI semantics (quantized CDF, length,
//!   offset, escape for out-of-range values), coded with ANS; [`TableFile`] imports tables
//!   trained in PyTorch.
//! - [`factorized`]: per-channel non-parametric prior (`EntropyBottleneck`).
//! - [`conditional`]: Gaussian / Laplace conditionals over a scale table (`GaussianConditional`).
//! - [`adaptive`]: context-adaptive models for generic integer streams, range-coded.
//! - [`container`]: the one checksummed container format every codec writes.
//! - [`interrupt`]: cooperative interruption of long coding work whose request ended.
//!
//! Everything that selects or builds a model is integer arithmetic or deterministic software
//! floating point (`libm`), so a bitstream decodes identically on every machine.

pub mod adaptive;
pub mod conditional;
pub mod container;
pub mod error;
pub mod factorized;
mod guided;
pub mod interrupt;
mod raw;
pub mod table;
mod words;

pub use adaptive::{AdaptiveCategorical, AdaptiveDecoder, AdaptiveEncoder, AdaptiveIntegers};
pub use conditional::{Family, ScaleConditional};
pub use container::{CodecId, Container, Header, Layout, ModelTag, SectionEntry};
pub use error::{EntropyError, Result};
pub use factorized::FactorizedPrior;
pub use table::{IndexedCdfTable, TableFile};
pub use words::{unzigzag, zigzag};
