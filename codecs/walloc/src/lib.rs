//! The WaLLoC image codec ("Learned Compression for Compressed Learning", DCC 2025), built on
//! `terse-wavelet` and `terse-entropy`.
//!
//! Encoding is cheap and runs here: pad to a multiple of `2^J` (edge replication), bior4.4
//! wavelet packet (`J` levels), a linear map from the `3·4^J` bands to `L` latent channels,
//! the bounded `ToUniform` squashing and rounding to integers in `±(2^(b−1) − 1)`, then a
//! learned per-channel factorized prior codes the integers (instead of the reference's
//! lossless WebP). Decoding maps integers to the decoder's input through a fixed table (so it
//! is identical on every machine), runs the convolutional decoder behind [`terse_core::Network`]
//! (an ONNX model in the server; [`WallocImage`] and [`WallocAudio`] are the codecs with their
//! networks), and inverts the wavelet packet.

mod audio_codec;
mod context;
mod hosted;
mod image_codec;
mod image_io;
mod latent;
mod metrics;
mod squash;
mod weights;

pub use audio_codec::{AudioLatents, WallocAudioCodec};
pub use context::group_count as context_group_count;
pub use hosted::{Walloc, WallocAudio, WallocImage, WallocSide, latent_tensor};
pub use image::RgbImage;
pub use image_codec::{Latents, WallocImageCodec, padded_planes};
pub use image_io::{ImageFormat, decode_image_file, encode_image_file};
pub use latent::{LatentCoding, LatentCodings};
pub use metrics::{audio_psnr, ms_ssim, ms_ssim_scaled, psnr, snr};
pub use weights::{EncoderWeights, Signal};

/// Why an image could not be coded.
#[derive(Debug, thiserror::Error)]
pub enum WallocError {
    /// The codec's model files are malformed.
    #[error("model: {0}")]
    Model(String),
    /// The input image or bitstream is unusable; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// The input exceeds a configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// The decoder network failed.
    #[error("decoder: {0}")]
    Decoder(String),
    /// A container or entropy stream is corrupt.
    #[error("bitstream: {0}")]
    Entropy(#[from] terse_entropy::EntropyError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, WallocError>;
