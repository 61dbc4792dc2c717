//! gRPC transport of `compress.models.v1.ModelRepositoryService` over a [`ModelRegistry`].
//!
//! Only conversion and status mapping live here; loading and execution are in `terse-runtime`.

use std::sync::Arc;

use terse_proto::{
    common::v1 as common,
    models::v1::{self as api, model_repository_service_server::ModelRepositoryService},
};
use terse_runtime::{
    ModelRegistry, ModelState, OnnxRuntime, ProviderKind, RegistryEntry, TensorSpec,
};
use terse_service_common::{
    Host, HostedService, datatype_to_proto, rpcs, status_of, tensor_from_proto, tensor_to_proto,
};
use tonic::{Status, service::RoutesBuilder};

pub use api::model_repository_service_server::ModelRepositoryServiceServer;

fn provider_to_proto(provider: ProviderKind) -> api::ExecutionProvider {
    match provider {
        ProviderKind::Cpu => api::ExecutionProvider::Cpu,
        ProviderKind::Cuda => api::ExecutionProvider::Cuda,
        ProviderKind::Tensorrt => api::ExecutionProvider::Tensorrt,
    }
}

fn spec_to_proto(spec: &TensorSpec) -> api::TensorSpec {
    api::TensorSpec {
        name: spec.name.clone(),
        datatype: datatype_to_proto(spec.datatype).into(),
        shape: spec.shape.clone(),
    }
}

fn model_info(entry: &RegistryEntry) -> api::ModelInfo {
    let manifest = &entry.entry.manifest;
    let status = match &entry.state {
        ModelState::Ready(model) => api::ModelStatus {
            state: api::ModelState::Ready.into(),
            reason: String::new(),
            provider: provider_to_proto(model.provider()).into(),
            fallbacks: model
                .fallbacks()
                .iter()
                .map(|f| api::ProviderFallback {
                    provider: provider_to_proto(f.provider).into(),
                    reason: f.reason.clone(),
                })
                .collect(),
            session_pool_size: model.pool_size() as u32,
            batching: model.batching().map(|b| api::DynamicBatching {
                max_batch_size: b.max_batch_size as u32,
                max_queue_delay_us: b.max_queue_delay_us,
                pad_axis: b.pad.as_ref().map_or(0, |p| p.axis as u32),
            }),
        },
        ModelState::Unloaded => api::ModelStatus {
            state: api::ModelState::Unloaded.into(),
            reason: "not selected by the server configuration".to_string(),
            ..Default::default()
        },
        ModelState::Failed(reason) => api::ModelStatus {
            state: api::ModelState::Failed.into(),
            reason: reason.clone(),
            ..Default::default()
        },
    };
    api::ModelInfo {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        task: manifest.task.clone(),
        description: manifest.description.clone(),
        sha256: manifest.sha256.clone(),
        license: manifest.license.clone(),
        source: manifest.source.clone(),
        file_bytes: entry.file_bytes,
        inputs: manifest.inputs.iter().map(spec_to_proto).collect(),
        outputs: manifest.outputs.iter().map(spec_to_proto).collect(),
        status: Some(status),
    }
}

fn statistics(entry: &RegistryEntry) -> api::ModelStatistics {
    let stats = match &entry.state {
        ModelState::Ready(model) => model.stats(),
        _ => Default::default(),
    };
    api::ModelStatistics {
        name: entry.entry.manifest.name.clone(),
        version: entry.entry.manifest.version.clone(),
        inference_count: stats.inference_count,
        failure_count: stats.failure_count,
        execution_ns: stats.execution_ns,
        queue_ns: stats.queue_ns,
        last_inference_unix_ms: stats.last_inference_unix_ms,
    }
}

/// The runtime facts the repository reports with its model list.
#[derive(Debug, Clone, Default)]
pub struct RuntimeFacts {
    /// ONNX Runtime version.
    pub version: String,
    /// Execution providers the runtime library offers.
    pub providers: Vec<String>,
}

impl RuntimeFacts {
    /// The facts of a loaded runtime.
    pub fn of(runtime: &OnnxRuntime) -> Self {
        Self {
            version: runtime.version().to_string(),
            providers: runtime
                .available_providers()
                .into_iter()
                .map(|p| p.name().to_string())
                .collect(),
        }
    }
}

/// The model repository service.
pub struct ModelRepository {
    registry: Arc<ModelRegistry>,
    runtime: RuntimeFacts,
}

impl ModelRepository {
    /// Serves `registry`, reporting `runtime`'s version and providers.
    pub fn new(registry: Arc<ModelRegistry>, runtime: RuntimeFacts) -> Self {
        Self { registry, runtime }
    }
}

fn model_ref(model: Option<common::ModelRef>) -> Result<common::ModelRef, Status> {
    let model = model.unwrap_or_default();
    if model.name.is_empty() {
        return Err(Status::invalid_argument("model.name is required"));
    }
    Ok(model)
}

impl ModelRepository {
    /// The models of the repository (the ready ones only, when asked), and the runtime's facts.
    fn list(&self, ready_only: bool) -> api::ListModelsResponse {
        let models = self
            .registry
            .entries()
            .iter()
            .filter(|e| !ready_only || matches!(e.state, ModelState::Ready(_)))
            .map(model_info)
            .collect();
        api::ListModelsResponse {
            models,
            runtime_version: self.runtime.version.clone(),
            available_providers: self.runtime.providers.clone(),
        }
    }

    /// The statistics of one model, or of every model when `model` names none.
    fn statistics(&self, model: common::ModelRef) -> Result<Vec<api::ModelStatistics>, Status> {
        if model.name.is_empty() {
            return Ok(self.registry.entries().iter().map(statistics).collect());
        }
        let entry = self
            .registry
            .find(&model.name, &model.version)
            .map_err(|e| status_of(&e))?;
        Ok(vec![statistics(entry)])
    }

    /// One inference of a named model.
    async fn run_inference(
        &self,
        request: api::InferRequest,
    ) -> Result<api::InferResponse, Status> {
        let model_ref = model_ref(request.model)?;
        let model = self
            .registry
            .get(&model_ref.name, &model_ref.version)
            .map_err(|e| status_of(&e))?;
        let inputs = request
            .inputs
            .into_iter()
            .map(tensor_from_proto)
            .collect::<Result<Vec<_>, _>>()?;
        let output = model
            .infer(inputs, &request.outputs)
            .await
            .map_err(|e| status_of(&e))?;
        let manifest = &model.entry().manifest;
        Ok(api::InferResponse {
            model_name: manifest.name.clone(),
            model_version: manifest.version.clone(),
            outputs: output.outputs.into_iter().map(tensor_to_proto).collect(),
            provider: provider_to_proto(model.provider()).into(),
            execution_ns: output.execution.as_nanos() as u64,
        })
    }
}

rpcs! {
    impl ModelRepositoryService for ModelRepository {
        fn list_models(self, request: api::ListModelsRequest) -> api::ListModelsResponse {
            self.list(request.ready_only)
        }

        fn get_model(self, request: api::GetModelRequest) -> api::GetModelResponse {
            let model = model_ref(request.model)?;
            let entry = self.registry.find(&model.name, &model.version);
            api::GetModelResponse { model: Some(model_info(entry.map_err(|e| status_of(&e))?)) }
        }

        fn get_model_statistics(
            self,
            request: api::GetModelStatisticsRequest,
        ) -> api::GetModelStatisticsResponse {
            let model = request.model.unwrap_or_default();
            api::GetModelStatisticsResponse { statistics: self.statistics(model)? }
        }

        fn infer(self, request: api::InferRequest) -> api::InferResponse {
            self.run_inference(request).await?
        }
    }
}

/// The model-repository service as the server hosts it (it has no config section: it serves
/// every loaded model).
pub struct ModelsHost;

impl HostedService for ModelsHost {
    fn add_to(&self, host: &Host, routes: &mut RoutesBuilder) -> Result<String, String> {
        let service =
            ModelRepository::new(Arc::clone(host.registry), RuntimeFacts::of(host.runtime));
        let hosted = format!("{} models", host.registry.entries().len());
        terse_service_common::add_service!(
            routes,
            host,
            ModelRepositoryServiceServer,
            service,
            hosted
        )
    }
}

#[cfg(test)]
mod tests;
