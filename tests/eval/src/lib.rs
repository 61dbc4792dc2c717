//! What the model-backed codec tests and the evaluation benches share: the shipped model
//! repository loaded through the model runtime, the codecs built from it by `terse-hosting`
//! (the server's own path), and one async runtime to drive them.

use std::{
    future::Future,
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

use image::RgbImage;
use terse_codec::{Codec, DecodeCall, EncodeCall, EncodeOptions, Encoding};
use terse_core::{Error, Inline};
use terse_runtime::{ModelRegistry, SessionOptions};

/// The workspace root.
pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The shipped model repository (`TERSE_MODEL_REPOSITORY` for another).
pub fn repository() -> PathBuf {
    std::env::var_os("TERSE_MODEL_REPOSITORY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(ROOT).join("models/repository"))
}

/// The models of `repository` with one session of `threads` ONNX Runtime threads each
/// (ONNX Runtime as `scripts/setup` installs it).
pub fn registry(repository: &Path, threads: usize) -> ModelRegistry {
    std::env::set_current_dir(ROOT).unwrap();
    // The server's heap policy, set at its start.
    terse_core::heap::keep_freed_buffers();
    let options = SessionOptions {
        intra_op_threads: threads,
        pool_size: 1,
        ..Default::default()
    };
    terse_hosting::load_repository(repository, &options)
        .expect("scripts/setup makes ./.venv with ONNX Runtime")
}

/// Runs a future on the process's async runtime (the model runtime runs its sessions there).
pub fn block_on<F: Future>(future: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| tokio::runtime::Runtime::new().unwrap())
        .block_on(future)
}

/// Encodes `media` with `codec` (blocking work on this thread).
pub fn encode<C: Codec + ?Sized>(
    codec: &C,
    media: &Arc<C::Media>,
    options: EncodeOptions<C::Knobs>,
) -> Result<Encoding<C::Media>, Error> {
    block_on(codec.encode(EncodeCall::new(Arc::clone(media), options, &Inline)))
}

/// Decodes `bitstream` with `codec` (blocking work on this thread), with no size limit.
pub fn decode<C: Codec + ?Sized>(codec: &C, bitstream: &[u8]) -> Result<C::Media, Error> {
    block_on(codec.decode(DecodeCall::new(bitstream.to_vec(), u64::MAX, &Inline)))
}

/// A test photo of `tests/fixtures/images`.
pub fn photo(name: &str) -> RgbImage {
    let bytes =
        std::fs::read(PathBuf::from(ROOT).join("tests/fixtures/images").join(name)).unwrap();
    terse_walloc::decode_image_file(&bytes, u64::MAX).unwrap().0
}

/// Mean and half-width of the 95 % t-interval.
pub fn mean_ci(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    // t(0.975, df) for df = 1..=30, then the normal quantile.
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    let t = T.get(values.len() - 2).copied().unwrap_or(1.96);
    (mean, t * (var / n).sqrt())
}
