//! 3D Gaussian splat scenes: [`ply`] and [`spz`] (v2–v4) I/O, and the terse [`codec`], a
//! training-free compressor whose every stream is entropy-coded by `terse-entropy`.

pub mod codec;
pub mod error;
pub mod format;
mod hosted;
pub mod metrics;
pub mod ply;
pub mod scene;
pub mod spz;
pub mod synth;
pub mod vq;

pub use codec::{CodecOptions, Preset};
pub use error::{Result, SplatError};
pub use format::{SceneFormat, SceneInfo};
pub use hosted::SplatCodec;
pub use scene::SplatScene;
