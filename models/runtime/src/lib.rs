//! The terse model runtime: a repository of ONNX models described by manifests, loaded into ONNX
//! Runtime (CPU, CUDA or TensorRT with ordered fallback) and served from pools of sessions.
//!
//! Transport-free: services wrap [`ModelRegistry`] and map [`InferError`] to their status codes.

pub mod batching;
pub mod error;
pub mod library;
pub mod manifest;
pub mod model;
pub mod provider;
pub mod registry;
pub mod tensor;

pub use batching::{BatchingSpec, PadSpec};
pub use error::{InferError, LoadError};
pub use library::{OnnxRuntime, resolve_library_path, resolve_library_path_under};
pub use manifest::{Asset, ManifestEntry, ModelManifest, TensorSpec};
pub use model::{ExecutionObserver, InferOutput, LoadedModel, StatsSnapshot};
pub use provider::{DynamicBatching, Fallback, ProviderKind, SessionOptions};
pub use registry::{ModelRegistry, ModelSelection, ModelState, RegistryEntry};
pub use tensor::{DataType, TensorData};
