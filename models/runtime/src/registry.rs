//! The set of models a server hosts: which are loaded, which failed and why.

use std::{path::Path, sync::Arc};

use serde::Deserialize;

use crate::{
    error::{InferError, LoadError},
    library::OnnxRuntime,
    manifest::{ManifestEntry, scan_repository, version_key},
    model::{ExecutionObserver, LoadedModel},
    provider::{Fallback, ProviderKind, SessionOptions, create_session},
};

/// Which models of the repository to load.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSelection {
    /// `"*"` for all, or `name` (every version) / `name:version` entries.
    pub load: Vec<String>,
    /// When true (the default) a model that fails to load stops start-up; when false the server
    /// starts, the model is reported FAILED with its reason and services needing it are NOT_SERVING.
    pub strict: bool,
    /// When set, only models of these tasks load (the others stay unloaded): the server sets it
    /// from the services it hosts, so a splat-only server loads no model. Not a config key.
    #[serde(skip)]
    pub tasks: Option<Vec<String>>,
}

impl Default for ModelSelection {
    fn default() -> Self {
        Self {
            load: vec!["*".to_string()],
            strict: true,
            tasks: None,
        }
    }
}

impl ModelSelection {
    fn selects(&self, entry: &ManifestEntry) -> bool {
        let task_needed = self
            .tasks
            .as_ref()
            .is_none_or(|tasks| tasks.contains(&entry.manifest.task));
        task_needed
            && self
                .load
                .iter()
                .any(|item| item == "*" || *item == entry.manifest.name || *item == entry.id())
    }
}

/// Load state of one model version.
#[derive(Debug, Clone)]
pub enum ModelState {
    /// Loaded and serving.
    Ready(Arc<LoadedModel>),
    /// In the repository, not selected by the configuration.
    Unloaded,
    /// Selected but failed to load.
    Failed(String),
}

/// One model version of the repository and its state.
#[derive(Debug, Clone)]
pub struct RegistryEntry {
    /// Manifest and directory.
    pub entry: ManifestEntry,
    /// Load state.
    pub state: ModelState,
    /// Size of the model file in bytes (0 if unreadable).
    pub file_bytes: u64,
}

/// Every model of the repository with its state.
#[derive(Debug)]
pub struct ModelRegistry {
    entries: Vec<RegistryEntry>,
}

/// Loads one model: verify sha256, then try providers in order until one gives sessions.
fn load_model(
    runtime: &OnnxRuntime,
    entry: &ManifestEntry,
    options: &SessionOptions,
    observer: Option<Arc<dyn ExecutionObserver>>,
) -> Result<LoadedModel, LoadError> {
    let model_error = |reason: String| LoadError::Model {
        model: entry.id(),
        reason,
    };
    let bytes = entry.read_verified()?;
    if options.providers.is_empty() {
        return Err(model_error("no execution providers configured".to_string()));
    }
    let mut fallbacks = Vec::new();
    for &provider in &options.providers {
        let pool = options
            .pool_size
            .min(entry.manifest.max_sessions.unwrap_or(usize::MAX))
            .max(1);
        let sessions: Result<Vec<_>, String> = (0..pool)
            .map(|_| create_session(runtime.environment(), &bytes, provider, options))
            .collect();
        match sessions {
            Ok(sessions) => {
                for fallback in &fallbacks {
                    let Fallback { provider, reason } = fallback;
                    tracing::warn!(model = %entry.id(), %provider, %reason, "execution provider unavailable, fell back");
                }
                tracing::info!(model = %entry.id(), %provider, sessions = sessions.len(), "model loaded");
                let batching = entry
                    .manifest
                    .batching
                    .clone()
                    .filter(|_| options.dynamic_batching.applies_to(provider));
                let arena =
                    (provider == ProviderKind::Cpu).then_some(options.cpu_arena_input_bytes);
                return LoadedModel::new(
                    entry.clone(),
                    provider,
                    fallbacks,
                    sessions,
                    observer,
                    arena,
                )
                .map(|model| model.with_batching(batching))
                .map_err(model_error);
            }
            Err(reason) => fallbacks.push(Fallback { provider, reason }),
        }
    }
    let tried: Vec<String> = fallbacks
        .iter()
        .map(|f| format!("{}: {}", f.provider, f.reason))
        .collect();
    Err(model_error(format!(
        "no execution provider could run it ({})",
        tried.join("; ")
    )))
}

impl ModelRegistry {
    /// Scans `repository`, loads the selected models and records the state of every model.
    pub fn load(
        runtime: &OnnxRuntime,
        repository: &Path,
        selection: &ModelSelection,
        options: &SessionOptions,
        observer: Option<Arc<dyn ExecutionObserver>>,
    ) -> Result<Self, LoadError> {
        let found = scan_repository(repository)?;
        for item in &selection.load {
            let matched = item == "*"
                || found
                    .iter()
                    .any(|e| *item == e.manifest.name || *item == e.id());
            if !matched {
                return Err(LoadError::Config(format!(
                    "model `{item}` is not in the repository {}",
                    repository.display()
                )));
            }
        }
        let mut entries = Vec::with_capacity(found.len());
        for entry in found {
            let file_bytes = std::fs::metadata(entry.model_path())
                .map(|m| m.len())
                .unwrap_or(0);
            let state = if !selection.selects(&entry) {
                ModelState::Unloaded
            } else {
                match load_model(runtime, &entry, options, observer.clone()) {
                    Ok(model) => ModelState::Ready(Arc::new(model)),
                    Err(e) if selection.strict => return Err(e),
                    Err(e) => {
                        tracing::error!(error = %e, "model failed to load; serving without it");
                        ModelState::Failed(e.to_string())
                    }
                }
            };
            entries.push(RegistryEntry {
                entry,
                state,
                file_bytes,
            });
        }
        Ok(Self { entries })
    }

    /// A registry of entries whose states are already decided, in the order given (that of
    /// [`crate::manifest::scan_repository`]); no runtime is touched: for tests of what serves a
    /// registry without the ONNX Runtime library.
    pub fn from_entries(entries: Vec<RegistryEntry>) -> Self {
        Self { entries }
    }

    /// Every model version, sorted by name then version.
    pub fn entries(&self) -> &[RegistryEntry] {
        &self.entries
    }

    /// Finds a model version's entry; an empty `version` picks the newest ready version (or the
    /// newest one if none is ready, so callers learn why it is unavailable).
    pub fn find(&self, name: &str, version: &str) -> Result<&RegistryEntry, InferError> {
        let mut candidates: Vec<&RegistryEntry> = self
            .entries
            .iter()
            .filter(|e| e.entry.manifest.name == name)
            .collect();
        if candidates.is_empty() {
            return Err(InferError::NotFound(format!("no model named `{name}`")));
        }
        if !version.is_empty() {
            return candidates
                .into_iter()
                .find(|e| e.entry.manifest.version == version)
                .ok_or_else(|| {
                    InferError::NotFound(format!("model `{name}` has no version `{version}`"))
                });
        }
        candidates.sort_by_key(|e| version_key(&e.entry.manifest.version));
        let newest_ready = candidates
            .iter()
            .rev()
            .find(|e| matches!(e.state, ModelState::Ready(_)));
        Ok(newest_ready
            .or(candidates.last())
            .copied()
            .expect("candidates is not empty"))
    }

    /// The loaded model for `name` / `version` (empty: newest ready).
    pub fn get(&self, name: &str, version: &str) -> Result<Arc<LoadedModel>, InferError> {
        let found = self.find(name, version)?;
        match &found.state {
            ModelState::Ready(model) => Ok(Arc::clone(model)),
            ModelState::Unloaded => Err(InferError::Unavailable(format!(
                "model {} is not loaded by this server's configuration",
                found.entry.id()
            ))),
            ModelState::Failed(reason) => Err(InferError::Unavailable(format!(
                "model {} failed to load: {reason}",
                found.entry.id()
            ))),
        }
    }
}
