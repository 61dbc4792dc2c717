//! Loading packaged MLIC models through the model runtime, for the tests and the eval bench.

#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

use ndarray::ArrayD;
use terse_mlic::{MlicCodec, Network};
use terse_runtime::{
    LoadedModel, ModelRegistry, ModelSelection, OnnxRuntime, SessionOptions, TensorData,
};

/// The workspace root.
pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

pub fn model_name() -> String {
    std::env::var("TERSE_MLIC_MODEL").unwrap_or_else(|_| "mlic-q4".into())
}

pub fn repository() -> PathBuf {
    std::env::var_os("TERSE_MLIC_REPOSITORY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(ROOT).join("models/repository"))
}

/// The process's ONNX Runtime (one environment per process).
pub fn runtime() -> &'static OnnxRuntime {
    static RUNTIME: OnceLock<OnnxRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        std::env::set_current_dir(ROOT).unwrap();
        let library = terse_runtime::resolve_library_path(None).expect("scripts/setup makes .venv");
        OnnxRuntime::load(&library).unwrap()
    })
}

/// An ONNX stage run through the runtime (blocking).
pub struct Stage {
    pub model: Arc<LoadedModel>,
    inputs: &'static [&'static str],
    tokio: tokio::runtime::Runtime,
}

impl Network for Stage {
    fn run(&self, inputs: Vec<ArrayD<f32>>) -> Result<Vec<ArrayD<f32>>, String> {
        if inputs.len() != self.inputs.len() {
            return Err(format!("{} inputs for {:?}", inputs.len(), self.inputs));
        }
        let tensors = self
            .inputs
            .iter()
            .zip(&inputs)
            .map(|(name, array)| TensorData::from_f32_array(*name, array.view()))
            .collect();
        let output = self
            .tokio
            .block_on(self.model.infer(tensors, &[]))
            .map_err(|e| e.to_string())?;
        output
            .outputs
            .iter()
            .map(|t| {
                t.to_f32_array()
                    .ok_or_else(|| format!("`{}` is not fp32", t.name))
            })
            .collect()
    }
}

/// A packaged rate point (a fixed-rate model, or one rate of a variable-rate model): the codec
/// and its two networks.
pub struct Loaded {
    pub name: String,
    pub codec: MlicCodec,
    pub analysis: Stage,
    pub synthesis: Stage,
    pub validation_psnr: f64,
}

/// The shipped model (see [`model_name`]) with ONNX Runtime sessions of `threads` threads.
pub fn load(threads: usize) -> Loaded {
    load_all(&repository(), threads)
        .into_iter()
        .find(|l| l.name == model_name())
        .unwrap_or_else(|| panic!("no packaged model {}", model_name()))
}

/// Every rate point of every `mlic-image` model of `repository` (with its analysis model), by
/// codec name.
pub fn load_all(repository: &Path, threads: usize) -> Vec<Loaded> {
    let options = SessionOptions {
        intra_op_threads: threads,
        pool_size: 1,
        ..Default::default()
    };
    let registry = ModelRegistry::load(
        runtime(),
        repository,
        &ModelSelection::default(),
        &options,
        None,
    )
    .unwrap();
    let mut models: Vec<(String, String)> = registry
        .entries()
        .iter()
        .filter(|e| e.entry.manifest.task == "mlic-image")
        .map(|e| {
            (
                e.entry.manifest.name.clone(),
                e.entry.manifest.version.clone(),
            )
        })
        .collect();
    models.sort();
    models
        .into_iter()
        .flat_map(|(name, version)| load_one(&registry, name, &version))
        .collect()
}

/// A synthesis model and the analysis model of the same version.
fn load_one(registry: &ModelRegistry, name: String, version: &str) -> Vec<Loaded> {
    let synthesis = registry
        .get(&name, version)
        .expect("packaged synthesis model");
    let analysis = registry
        .get(&format!("{name}-analysis"), version)
        .expect("packaged analysis model");
    let entry = synthesis.entry();
    let asset = |a: &str| entry.read_asset(a).unwrap();
    let training: serde_json::Value = serde_json::from_slice(&asset("training")).unwrap();
    let stage = |model: &Arc<LoadedModel>, inputs| Stage {
        model: Arc::clone(model),
        inputs,
        tokio: tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap(),
    };
    MlicCodec::from_package(
        &asset("entropy"),
        &asset("entropy-weights"),
        &asset("prior"),
        &name,
        &entry.manifest.sha256,
    )
    .unwrap()
    .into_iter()
    .map(|codec| {
        let analysis_inputs = codec.analysis_input_names();
        let validation_psnr = match codec.rate() {
            None => &training["validation_psnr"],
            Some(rate) => &training["validation_mcmaster"][rate.index]["psnr"],
        };
        Loaded {
            name: codec.model().name.clone(),
            analysis: stage(&analysis, analysis_inputs),
            synthesis: stage(&synthesis, &["y_hat"]),
            validation_psnr: validation_psnr.as_f64().unwrap(),
            codec,
        }
    })
    .collect()
}
