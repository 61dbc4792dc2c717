//! Hosting of the MLIC-style codecs (the high-quality mode): each `mlic-image` model (synthesis
//! network + integer entropy model as assets) pairs with its `<name>-analysis` model.

use std::sync::Arc;

use ndarray::ArrayD;
use terse_entropy::ModelTag;
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
    /// The codec (integer entropy model, container).
    pub codec: Arc<MlicCodec>,
    /// `g_a` + `h_a`: image → `[y, z]`.
    pub analysis: Arc<LoadedModel>,
    /// `g_s`: `y_hat` → image.
    pub synthesis: Arc<LoadedModel>,
    /// Model version.
    pub version: String,
    /// Model description.
    pub description: String,
}

/// Every ready `mlic-image` model with its analysis model, by name (mlic-q1 … mlic-q4).
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
        let tag = ModelTag::from_sha256_hex(&manifest.name, &manifest.sha256)
            .map_err(|e| e.to_string())?;
        let codec = MlicCodec::from_assets(
            &asset("entropy")?,
            &asset("entropy-weights")?,
            &asset("prior")?,
            tag,
        )
        .map_err(|e| format!("model {}: {e}", entry.entry.id()))?;
        hosted.push(HostedMlic {
            codec: Arc::new(codec),
            analysis,
            synthesis: Arc::clone(synthesis),
            version: manifest.version.clone(),
            description: manifest.description.clone(),
        });
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

/// Runs one stage on a single input and returns its outputs as f32 arrays.
pub async fn run_stage(
    model: &LoadedModel,
    input: &str,
    array: ArrayD<f32>,
) -> Result<Vec<ArrayD<f32>>, Status> {
    let output = model
        .infer(vec![TensorData::from_f32_array(input, array.view())], &[])
        .await
        .map_err(infer_status)?;
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
