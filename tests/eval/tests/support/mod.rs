//! The packaged MLIC rate points, for the tests and the eval bench.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use terse_codec::Codec;
use terse_mlic::MlicImage;

pub use terse_eval::ROOT;

pub fn model_name() -> String {
    std::env::var("TERSE_MLIC_MODEL").unwrap_or_else(|_| "mlic-q4".into())
}

pub fn repository() -> PathBuf {
    std::env::var_os("TERSE_MLIC_REPOSITORY")
        .map(PathBuf::from)
        .unwrap_or_else(terse_eval::repository)
}

/// A packaged rate point (a fixed-rate model, or one rate of a variable-rate model) with its
/// networks, and the validation PSNR its training recorded.
pub struct Loaded {
    pub name: String,
    pub image: MlicImage,
    /// The manifest entry of the rate point's synthesis model.
    pub entry: terse_runtime::ManifestEntry,
    pub validation_psnr: f64,
}

impl Loaded {
    /// An asset of the synthesis model.
    pub fn asset(&self, name: &str) -> Vec<u8> {
        self.entry.read_asset(name).unwrap()
    }

    /// The Rust side of the codec.
    pub fn codec(&self) -> &terse_mlic::MlicCodec {
        self.image.codec()
    }
}

/// The shipped model (see [`model_name`]) with ONNX Runtime sessions of `threads` threads.
pub fn load(threads: usize) -> Loaded {
    load_all(&repository(), threads)
        .into_iter()
        .find(|l| l.name == model_name())
        .unwrap_or_else(|| panic!("no packaged model {}", model_name()))
}

/// Every rate point of every `mlic-image` model of `repository`, by codec name.
pub fn load_all(repository: &Path, threads: usize) -> Vec<Loaded> {
    let registry = terse_eval::registry(repository, threads);
    terse_hosting::mlic_codecs(&registry)
        .unwrap()
        .into_iter()
        .map(|image| {
            let model = &image.info().model;
            let entry = registry
                .get(&model.name, &model.version)
                .unwrap()
                .entry()
                .clone();
            let training: serde_json::Value =
                serde_json::from_slice(&entry.read_asset("training").unwrap()).unwrap();
            let validation_psnr = match image.codec().rate() {
                None => &training["validation_psnr"],
                Some(rate) => &training["validation_mcmaster"][rate.index]["psnr"],
            };
            Loaded {
                name: image.codec().model().name.clone(),
                validation_psnr: validation_psnr.as_f64().unwrap(),
                entry,
                image,
            }
        })
        .collect()
}
