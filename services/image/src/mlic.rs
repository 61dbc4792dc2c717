//! Hosting of the MLIC-style codecs (the high-quality mode): each `mlic-image` model (synthesis
//! network + integer entropy model as assets) pairs with its `<name>-analysis` model. A
//! variable-rate model serves one codec per rate point (`mlic-q1` … `mlic-q6`).

use std::sync::Arc;

use ndarray::ArrayD;
use terse_mlic::{MlicCodec, MlicError};
use terse_runtime::{LoadedModel, ModelRegistry, ModelState, TensorData};
use terse_service_common::infer_status;
use terse_walloc_host::read_asset;
use tonic::Status;

/// Task of MLIC synthesis models (with the entropy model as assets).
pub const MLIC_TASK: &str = "mlic-image";
/// Task of MLIC analysis models.
pub const MLIC_ANALYSIS_TASK: &str = "mlic-analysis";

/// An MLIC rate point the server hosts.
pub struct HostedMlic {
    /// The codec (integer entropy model, container, rate point).
    pub codec: Arc<MlicCodec>,
    /// `g_a` + `h_a`: image (and a variable-rate model's gains) → `[y, z]`.
    pub analysis: Arc<LoadedModel>,
    /// `g_s`: `y_hat` → image.
    pub synthesis: Arc<LoadedModel>,
    /// Name of the model (a variable-rate model serves several rate points).
    pub model: String,
    /// Model version.
    pub version: String,
    /// Model description.
    pub description: String,
}

/// Every rate point of every ready `mlic-image` model with its analysis model, by codec name.
pub fn host_mlic(registry: &ModelRegistry) -> Result<Vec<HostedMlic>, String> {
    let mut hosted = Vec::new();
    for entry in registry.entries() {
        let manifest = &entry.entry.manifest;
        if manifest.task != MLIC_TASK {
            continue;
        }
        let ModelState::Ready(synthesis) = &entry.state else {
            continue;
        };
        let analysis_name = format!("{}-analysis", manifest.name);
        let analysis = registry
            .get(&analysis_name, &manifest.version)
            .map_err(|e| format!("model {} needs {analysis_name}: {e}", entry.entry.id()))?;
        if analysis.entry().manifest.task != MLIC_ANALYSIS_TASK {
            return Err(format!(
                "{analysis_name} is not an `{MLIC_ANALYSIS_TASK}` model"
            ));
        }
        let asset = |name: &str| {
            read_asset(&entry.entry, name)?
                .ok_or_else(|| format!("model {} has no `{name}` asset", entry.entry.id()))
        };
        let codecs = MlicCodec::from_package(
            &asset("entropy")?,
            &asset("entropy-weights")?,
            &asset("prior")?,
            &manifest.name,
            &manifest.sha256,
        )
        .map_err(|e| format!("model {}: {e}", entry.entry.id()))?;
        for codec in codecs {
            let description = match codec.rate() {
                Some(rate) => format!(
                    "Rate point {} (lambda {}) of {}. {}",
                    rate.index + 1,
                    rate.lambda,
                    manifest.name,
                    manifest.description
                ),
                None => manifest.description.clone(),
            };
            hosted.push(HostedMlic {
                codec: Arc::new(codec),
                analysis: Arc::clone(&analysis),
                synthesis: Arc::clone(synthesis),
                model: manifest.name.clone(),
                version: manifest.version.clone(),
                description,
            });
        }
    }
    hosted.sort_by(|a, b| a.codec.model().name.cmp(&b.codec.model().name));
    Ok(hosted)
}

/// gRPC status of an MLIC codec error.
pub fn mlic_status(e: MlicError) -> Status {
    match e {
        MlicError::Image(m) => Status::invalid_argument(m),
        MlicError::Bitstream(m) => Status::invalid_argument(format!("bitstream: {m}")),
        MlicError::Entropy(e) => Status::invalid_argument(format!("bitstream: {e}")),
        MlicError::TooLarge(m) => Status::resource_exhausted(m),
        e @ (MlicError::Model(_) | MlicError::Network { .. }) => Status::internal(e.to_string()),
    }
}

/// Runs one stage on its named inputs and returns its outputs as f32 arrays.
pub async fn run_stage(
    model: &LoadedModel,
    inputs: &[&str],
    arrays: Vec<ArrayD<f32>>,
) -> Result<Vec<ArrayD<f32>>, Status> {
    if inputs.len() != arrays.len() {
        return Err(Status::internal(format!(
            "{} tensors for the inputs {inputs:?} of {}",
            arrays.len(),
            model.entry().id()
        )));
    }
    let tensors = inputs
        .iter()
        .zip(&arrays)
        .map(|(name, array)| TensorData::from_f32_array(*name, array.view()))
        .collect();
    let output = model.infer(tensors, &[]).await.map_err(infer_status)?;
    output
        .outputs
        .iter()
        .map(|t| {
            t.to_f32_array().ok_or_else(|| {
                Status::internal(format!(
                    "output `{}` of {} is not fp32",
                    t.name,
                    model.entry().id()
                ))
            })
        })
        .collect()
}
