//! Execution providers (CPU, CUDA, TensorRT) chosen by configuration, with ordered fallback.

use std::{fmt, path::PathBuf, str::FromStr};

use ort::{
    environment::Environment,
    ep::{self, ExecutionProvider},
    session::Session,
};
use serde::Deserialize;

/// An ONNX Runtime execution provider this server knows how to configure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// The default CPU provider; always available.
    Cpu,
    /// NVIDIA CUDA (needs the onnxruntime-gpu library, CUDA and cuDNN).
    Cuda,
    /// NVIDIA TensorRT (needs the onnxruntime-gpu library and TensorRT).
    Tensorrt,
}

impl ProviderKind {
    /// Config name of the provider.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::Tensorrt => "tensorrt",
        }
    }

    /// Whether the loaded ONNX Runtime library was built with this provider.
    pub fn is_compiled_in(self) -> bool {
        let available = match self {
            Self::Cpu => return true,
            Self::Cuda => ep::CUDA::is_available(),
            Self::Tensorrt => ep::TensorRT::is_available(),
        };
        available.unwrap_or(false)
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ProviderKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            "tensorrt" | "trt" => Ok(Self::Tensorrt),
            other => Err(format!(
                "unknown execution provider `{other}` (expected cpu, cuda or tensorrt)"
            )),
        }
    }
}

/// How sessions are created: providers in order of preference and their options.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionOptions {
    /// Providers to try, best first. A model runs on the first one that works for it; the ones
    /// that did not are reported with their reasons. Put `cpu` last to always have a fallback.
    pub providers: Vec<ProviderKind>,
    /// GPU ordinal for CUDA and TensorRT.
    pub device_id: i32,
    /// Where TensorRT keeps built engines between runs (strongly recommended: builds take minutes).
    pub tensorrt_engine_cache: Option<PathBuf>,
    /// Let TensorRT use FP16 kernels.
    pub tensorrt_fp16: bool,
    /// Sessions per model: how many requests one model serves at the same time.
    pub pool_size: usize,
    /// Threads each session may use inside one operator (0: ONNX Runtime decides).
    pub intra_op_threads: usize,
    /// When requests of different callers share a run, where a model's manifest allows it
    /// (`[batching]`).
    pub dynamic_batching: DynamicBatching,
    /// CPU sessions keep their buffers in a memory arena between runs. A run whose inputs
    /// total more than this many bytes gives the arena's free memory back when it ends, so a
    /// large request does not leave its peak memory held by an idle session (0: every run
    /// gives it back).
    pub cpu_arena_input_bytes: u64,
    /// With `intra_op_threads` above 1, whether ONNX Runtime's operator threads spin waiting
    /// for work after each operator instead of sleeping. Spinning saves a wake-up between
    /// back-to-back runs (the causal LM's scoring: 4 % more tokens/s), but the spinning
    /// threads keep the cores from the work that follows a run in the same call (MLIC's
    /// integer entropy path, WaLLoC's inverse wavelet packet), so it is off by default.
    pub intra_op_spinning: bool,
}

/// When requests of different callers share a run (see [`crate::batching`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DynamicBatching {
    /// For models on a GPU provider. On CPU each session runs on its own core, and one batched
    /// run was slower than the same requests run side by side (`scripts/batching-report`).
    #[default]
    Auto,
    /// Wherever the manifest allows it.
    On,
    /// Never: every request runs alone.
    Off,
}

impl DynamicBatching {
    /// Whether a model that allows batching batches on `provider`.
    pub fn applies_to(self, provider: ProviderKind) -> bool {
        match self {
            Self::Auto => provider != ProviderKind::Cpu,
            Self::On => true,
            Self::Off => false,
        }
    }
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            providers: vec![ProviderKind::Cpu],
            device_id: 0,
            tensorrt_engine_cache: None,
            tensorrt_fp16: false,
            pool_size: 2,
            intra_op_threads: 1,
            dynamic_batching: DynamicBatching::Auto,
            cpu_arena_input_bytes: 8 << 20,
            intra_op_spinning: false,
        }
    }
}

/// A provider that was tried and not used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// The provider that did not work.
    pub provider: ProviderKind,
    /// Why.
    pub reason: String,
}

/// Creates one session of `model` on `provider`, failing if the provider cannot be registered.
pub(crate) fn create_session(
    environment: &Environment,
    model: &[u8],
    provider: ProviderKind,
    options: &SessionOptions,
) -> Result<Session, String> {
    if !provider.is_compiled_in() {
        return Err(format!(
            "the loaded ONNX Runtime library was built without the {provider} provider"
        ));
    }
    let dispatch = match provider {
        // The arena keeps a session's buffers between runs: without it every run maps and
        // faults in fresh pages (MLIC decode ran 25 % slower). `SessionPool::run_options`
        // hands it back after large runs.
        ProviderKind::Cpu => ep::CPU::default().with_arena_allocator(true).build(),
        ProviderKind::Cuda => ep::CUDA::default()
            .with_device_id(options.device_id)
            .build(),
        ProviderKind::Tensorrt => {
            let mut trt = ep::TensorRT::default()
                .with_device_id(options.device_id)
                .with_fp16(options.tensorrt_fp16);
            if let Some(cache) = &options.tensorrt_engine_cache {
                trt = trt
                    .with_engine_cache(true)
                    .with_engine_cache_path(cache.display());
            }
            trt.build()
        }
    }
    .error_on_failure();
    let mut builder = Session::builder(environment)
        .map_err(|e| e.to_string())?
        .with_no_environment_execution_providers()
        .map_err(|e| e.to_string())?
        .with_execution_providers([dispatch])
        .map_err(|e| e.to_string())?;
    if options.intra_op_threads > 0 {
        builder = builder
            .with_intra_threads(options.intra_op_threads)
            .map_err(|e| e.to_string())?;
    }
    if provider == ProviderKind::Cpu {
        builder = builder
            .with_intra_op_spinning(options.intra_op_spinning)
            .map_err(|e| e.to_string())?;
    }
    builder.commit_from_memory(model).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_parse() {
        assert_eq!("CUDA".parse::<ProviderKind>().unwrap(), ProviderKind::Cuda);
        assert_eq!(
            "trt".parse::<ProviderKind>().unwrap(),
            ProviderKind::Tensorrt
        );
        assert!(
            "tpu"
                .parse::<ProviderKind>()
                .unwrap_err()
                .contains("unknown execution provider")
        );
    }
}
