//! A loaded model: its manifest, a pool of ONNX Runtime sessions and execution statistics.

use std::{
    collections::HashSet,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use ort::session::{RunOptions, Session};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::{
    batching::{self, BatchingSpec, Reporter, Request},
    error::InferError,
    manifest::{ManifestEntry, TensorSpec},
    provider::{Fallback, ProviderKind},
    tensor::TensorData,
};

/// Told about every model execution, e.g. to feed Prometheus histograms.
pub trait ExecutionObserver: Send + Sync {
    /// One execution of `model` (`name`, `version`) took `elapsed` and succeeded or not.
    fn observe(&self, name: &str, version: &str, elapsed: Duration, ok: bool);

    /// One request waited `queued` for a session (and, when batched, for batch-mates).
    fn observe_queue(&self, _name: &str, _version: &str, _queued: Duration) {}

    /// One batched run of `rows` rows from `requests` requests.
    fn observe_batch(&self, _name: &str, _version: &str, _rows: usize, _requests: usize) {}
}

/// Counters of one model since start-up.
#[derive(Debug, Default)]
pub struct ModelStats {
    inference_count: AtomicU64,
    failure_count: AtomicU64,
    execution_ns: AtomicU64,
    queue_ns: AtomicU64,
    last_inference_unix_ms: AtomicU64,
}

/// A copy of [`ModelStats`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// Successful executions.
    pub inference_count: u64,
    /// Failed executions.
    pub failure_count: u64,
    /// Total time of successful executions, ns.
    pub execution_ns: u64,
    /// Total time spent waiting for a pooled session, ns.
    pub queue_ns: u64,
    /// Unix ms of the last execution, 0 if none.
    pub last_inference_unix_ms: u64,
}

impl ModelStats {
    fn record(&self, queued: Duration, executed: Duration, ok: bool) {
        let counter = if ok {
            &self.inference_count
        } else {
            &self.failure_count
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if ok {
            self.execution_ns
                .fetch_add(executed.as_nanos() as u64, Ordering::Relaxed);
        }
        self.queue_ns
            .fetch_add(queued.as_nanos() as u64, Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.last_inference_unix_ms
            .store(now.as_millis() as u64, Ordering::Relaxed);
    }

    /// Reads all counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            inference_count: self.inference_count.load(Ordering::Relaxed),
            failure_count: self.failure_count.load(Ordering::Relaxed),
            execution_ns: self.execution_ns.load(Ordering::Relaxed),
            queue_ns: self.queue_ns.load(Ordering::Relaxed),
            last_inference_unix_ms: self.last_inference_unix_ms.load(Ordering::Relaxed),
        }
    }
}

/// Sessions of one model. `Session::run` needs `&mut`, so each concurrent execution takes a
/// session out of the pool and puts it back when done, on the blocking thread pool, so a caller
/// that gives up (deadline, disconnect) never loses a session.
pub(crate) struct SessionPool {
    sessions: Mutex<Vec<Session>>,
    pub(crate) permits: Arc<Semaphore>,
    size: usize,
    /// For sessions with a CPU memory arena: runs whose inputs total more bytes give the
    /// arena's free memory back when they end.
    arena_release_above: Option<u64>,
}

/// The run option that makes ONNX Runtime free the CPU arena's unused memory after the run.
const ARENA_SHRINKAGE: (&str, &str) = ("memory.enable_memory_arena_shrinkage", "cpu:0");

impl SessionPool {
    /// Options for one run of `inputs`, shared with whoever may terminate it: large runs on a
    /// CPU arena hand its memory back when they end.
    pub(crate) fn run_options(&self, inputs: &[TensorData]) -> Result<Arc<RunOptions>, InferError> {
        let failed = |e: ort::Error| InferError::Execution(format!("run options: {e}"));
        let mut options = RunOptions::new().map_err(failed)?;
        if self.releases_memory_after(inputs) {
            options
                .set(ARENA_SHRINKAGE.0, ARENA_SHRINKAGE.1)
                .map_err(failed)?;
        }
        Ok(Arc::new(options))
    }

    /// Whether a run of `inputs` gives the CPU arena's memory back when it ends.
    fn releases_memory_after(&self, inputs: &[TensorData]) -> bool {
        let bytes: u64 = inputs.iter().map(|t| t.bytes.len() as u64).sum();
        self.arena_release_above.is_some_and(|limit| bytes > limit)
    }

    /// Runs one call on a free session (the permit guarantees one) on the blocking thread pool
    /// and returns what it gave and how long it ran. The session goes back to the pool and the
    /// permit is released when the run ends, whether or not anyone still awaits it.
    pub(crate) fn run(
        self: &Arc<Self>,
        permit: OwnedSemaphorePermit,
        inputs: Vec<TensorData>,
        wanted: Vec<String>,
        run_options: Arc<RunOptions>,
    ) -> tokio::task::JoinHandle<(Result<Vec<TensorData>, InferError>, Duration)> {
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut session = pool
                .sessions
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .pop()
                .expect("a permit guarantees a free session");
            let started = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| {
                run_session(&mut session, &inputs, &wanted, &run_options)
            }))
            .unwrap_or_else(|_| Err(InferError::Execution("ONNX Runtime panicked".to_string())));
            let elapsed = started.elapsed();
            if pool.releases_memory_after(&inputs) {
                terse_core::heap::release_free_memory();
            }
            pool.sessions
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(session);
            drop(permit);
            (result, elapsed)
        })
    }
}

/// What one execution returned.
#[derive(Debug)]
pub struct InferOutput {
    /// Output tensors in manifest order (only the requested ones).
    pub outputs: Vec<TensorData>,
    /// Time spent executing (not queueing).
    pub execution: Duration,
}

/// A model ready to run.
pub struct LoadedModel {
    entry: ManifestEntry,
    provider: ProviderKind,
    fallbacks: Vec<Fallback>,
    pool: Arc<SessionPool>,
    stats: ModelStats,
    observer: Option<Arc<dyn ExecutionObserver>>,
    batching: Option<BatchingSpec>,
    /// The queue of the batcher task, started by the first batched request (and again if the
    /// runtime it ran on has ended).
    batcher: Mutex<Option<mpsc::UnboundedSender<Request>>>,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("model", &self.entry.id())
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

fn graph_spec_mismatch(spec: &TensorSpec, outlet: &ort::value::Outlet) -> Option<String> {
    let ort::value::ValueType::Tensor { ty, shape, .. } = outlet.dtype() else {
        return Some(format!("`{}` is not a tensor in the ONNX graph", spec.name));
    };
    if crate::tensor::data_type_from_ort(*ty) != Some(spec.datatype) {
        return Some(format!(
            "`{}` is {ty:?} in the ONNX graph but {} in the manifest",
            spec.name, spec.datatype
        ));
    }
    let graph_shape: Vec<i64> = shape.iter().copied().collect();
    let compatible = graph_shape.len() == spec.shape.len()
        && graph_shape
            .iter()
            .zip(&spec.shape)
            .all(|(&g, &m)| g < 0 || g == m);
    (!compatible).then(|| {
        format!(
            "`{}` has shape {graph_shape:?} in the ONNX graph but {:?} in the manifest",
            spec.name, spec.shape
        )
    })
}

/// Checks that the manifest describes the graph: same input and output names, types and shapes.
fn check_manifest_matches_graph(entry: &ManifestEntry, session: &Session) -> Result<(), String> {
    let sides = [
        ("inputs", &entry.manifest.inputs, session.inputs()),
        ("outputs", &entry.manifest.outputs, session.outputs()),
    ];
    for (side, specs, outlets) in sides {
        let spec_names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        let graph_names: Vec<&str> = outlets.iter().map(|o| o.name()).collect();
        if spec_names != graph_names {
            return Err(format!(
                "manifest {side} {spec_names:?} differ from the ONNX graph's {graph_names:?}"
            ));
        }
        if let Some(mismatch) = specs
            .iter()
            .zip(outlets)
            .find_map(|(spec, outlet)| graph_spec_mismatch(spec, outlet))
        {
            return Err(mismatch);
        }
    }
    Ok(())
}

impl LoadedModel {
    pub(crate) fn new(
        entry: ManifestEntry,
        provider: ProviderKind,
        fallbacks: Vec<Fallback>,
        sessions: Vec<Session>,
        observer: Option<Arc<dyn ExecutionObserver>>,
        arena_release_above: Option<u64>,
    ) -> Result<Self, String> {
        let first = sessions
            .first()
            .ok_or("a model needs at least one session")?;
        check_manifest_matches_graph(&entry, first)?;
        let size = sessions.len();
        Ok(Self {
            entry,
            provider,
            fallbacks,
            pool: Arc::new(SessionPool {
                sessions: Mutex::new(sessions),
                permits: Arc::new(Semaphore::new(size)),
                size,
                arena_release_above,
            }),
            stats: ModelStats::default(),
            observer,
            batching: None,
            batcher: Mutex::new(None),
        })
    }

    /// This model with dynamic batching as `batching` declares (`None`: every request alone).
    pub(crate) fn with_batching(mut self, batching: Option<BatchingSpec>) -> Self {
        self.batching = batching;
        self
    }

    /// How this model batches requests, if it does.
    pub fn batching(&self) -> Option<&BatchingSpec> {
        self.batching.as_ref()
    }

    /// The manifest entry.
    pub fn entry(&self) -> &ManifestEntry {
        &self.entry
    }

    /// The provider the sessions run on.
    pub fn provider(&self) -> ProviderKind {
        self.provider
    }

    /// Providers tried before [`Self::provider`] that did not work.
    pub fn fallbacks(&self) -> &[Fallback] {
        &self.fallbacks
    }

    /// Number of pooled sessions.
    pub fn pool_size(&self) -> usize {
        self.pool.size
    }

    /// Execution statistics.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Checks inputs against the manifest and returns them ordered as the graph expects.
    fn order_inputs(&self, inputs: Vec<TensorData>) -> Result<Vec<TensorData>, InferError> {
        let specs = &self.entry.manifest.inputs;
        let mut slots: Vec<Option<TensorData>> = specs.iter().map(|_| None).collect();
        for tensor in inputs {
            let index = specs
                .iter()
                .position(|s| s.name == tensor.name)
                .ok_or_else(|| {
                    let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                    InferError::InvalidInput(format!(
                        "model {} has no input `{}` (inputs: {known:?})",
                        self.entry.id(),
                        tensor.name
                    ))
                })?;
            let spec = &specs[index];
            if tensor.datatype != spec.datatype {
                return Err(InferError::InvalidInput(format!(
                    "input `{}` must be {}, got {}",
                    spec.name, spec.datatype, tensor.datatype
                )));
            }
            spec.check_shape(&tensor.shape)
                .map_err(InferError::InvalidInput)?;
            tensor
                .validate()
                .map_err(|e| InferError::InvalidInput(e.message))?;
            spec.check_values(&tensor)
                .map_err(InferError::InvalidInput)?;
            if slots[index].replace(tensor).is_some() {
                return Err(InferError::InvalidInput(format!(
                    "input `{}` given twice",
                    spec.name
                )));
            }
        }
        slots
            .into_iter()
            .zip(specs)
            .map(|(slot, spec)| {
                slot.ok_or_else(|| {
                    InferError::InvalidInput(format!("missing input `{}`", spec.name))
                })
            })
            .collect()
    }

    /// Runs a model of one `f32` input and returns its first output as an `f32` array.
    pub async fn infer_f32_array(
        &self,
        input_name: &str,
        input: ndarray::ArrayViewD<'_, f32>,
    ) -> Result<ndarray::ArrayD<f32>, InferError> {
        let tensor = TensorData::from_f32_array(input_name, input);
        let output = self.infer(vec![tensor], &[]).await?;
        let first = output.outputs.into_iter().next().ok_or_else(|| {
            InferError::Execution(format!("model {} returned no output", self.entry.id()))
        })?;
        first.to_f32_array().ok_or_else(|| {
            InferError::Execution(format!(
                "output `{}` of model {} is not a consistent fp32 tensor",
                first.name,
                self.entry.id()
            ))
        })
    }

    /// Runs the model. `outputs` selects outputs by name (empty: all).
    pub async fn infer(
        &self,
        inputs: Vec<TensorData>,
        outputs: &[String],
    ) -> Result<InferOutput, InferError> {
        let inputs = self.order_inputs(inputs)?;
        let known: HashSet<&str> = self
            .entry
            .manifest
            .outputs
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        if let Some(unknown) = outputs.iter().find(|name| !known.contains(name.as_str())) {
            return Err(InferError::InvalidInput(format!(
                "model {} has no output `{unknown}`",
                self.entry.id()
            )));
        }
        let wanted: Vec<String> = self
            .entry
            .manifest
            .outputs
            .iter()
            .map(|s| s.name.clone())
            .filter(|name| outputs.is_empty() || outputs.contains(name))
            .collect();

        if let Some(spec) = &self.batching {
            return self.infer_batched(spec, inputs, wanted).await;
        }
        let queued_at = Instant::now();
        let permit = Arc::clone(&self.pool.permits)
            .acquire_owned()
            .await
            .map_err(|_| self.shutting_down())?;
        let queued = queued_at.elapsed();
        let run_options = self.pool.run_options(&inputs)?;
        // Dropping this future (the call's deadline passed, the client cancelled) terminates
        // the run inside ONNX Runtime instead of letting it finish for nobody.
        let abandon = TerminateOnDrop(Some(Arc::clone(&run_options)));
        let job = self.pool.run(permit, inputs, wanted, run_options);
        let (result, elapsed) = job
            .await
            .map_err(|e| InferError::Execution(format!("execution task failed: {e}")))?;
        abandon.disarm();
        self.record(queued, elapsed, result.is_ok());
        result.map(|outputs| InferOutput {
            outputs,
            execution: elapsed,
        })
    }

    /// Sends the request to the model's batcher and waits for its rows of a shared run.
    /// Dropping this future (deadline, cancellation) takes the request out of the queue, or
    /// out of its batch's run.
    async fn infer_batched(
        &self,
        spec: &BatchingSpec,
        inputs: Vec<TensorData>,
        wanted: Vec<String>,
    ) -> Result<InferOutput, InferError> {
        let (reply, answer) = oneshot::channel();
        let enqueued = Instant::now();
        let request = Request::new(inputs, wanted, enqueued, reply, spec.pad.as_ref());
        self.batcher_queue(spec)
            .send(request)
            .map_err(|_| self.shutting_down())?;
        match answer.await.map_err(|_| self.shutting_down())? {
            Ok(answer) => {
                self.record(answer.queued, answer.execution, true);
                Ok(InferOutput {
                    outputs: answer.outputs,
                    execution: answer.execution,
                })
            }
            Err(error) => {
                self.record(enqueued.elapsed(), Duration::ZERO, false);
                Err(error)
            }
        }
    }

    /// The batcher's queue, starting the batcher on the current runtime if it is not running.
    fn batcher_queue(&self, spec: &BatchingSpec) -> mpsc::UnboundedSender<Request> {
        let mut slot = self
            .batcher
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match slot.as_ref() {
            Some(queue) if !queue.is_closed() => queue.clone(),
            _ => {
                let reporter = Reporter {
                    name: self.entry.manifest.name.clone(),
                    version: self.entry.manifest.version.clone(),
                    observer: self.observer.clone(),
                };
                let queue = batching::spawn(Arc::clone(&self.pool), spec.clone(), reporter);
                *slot = Some(queue.clone());
                queue
            }
        }
    }

    fn shutting_down(&self) -> InferError {
        InferError::Unavailable(format!("model {} is shutting down", self.entry.id()))
    }

    /// Counts one request in the statistics and tells the observer.
    fn record(&self, queued: Duration, elapsed: Duration, ok: bool) {
        self.stats.record(queued, elapsed, ok);
        if let Some(observer) = &self.observer {
            let (name, version) = (&self.entry.manifest.name, &self.entry.manifest.version);
            observer.observe_queue(name, version, queued);
            observer.observe(name, version, elapsed, ok);
        }
    }
}

/// Terminates a run of ONNX Runtime when dropped before [`Self::disarm`].
struct TerminateOnDrop(Option<Arc<RunOptions>>);

impl TerminateOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TerminateOnDrop {
    fn drop(&mut self) {
        if let Some(Err(e)) = self.0.take().map(|options| options.terminate()) {
            tracing::warn!(error = %e, "could not terminate an abandoned ONNX Runtime run");
        }
    }
}

fn run_session(
    session: &mut Session,
    inputs: &[TensorData],
    wanted: &[String],
    options: &RunOptions,
) -> Result<Vec<TensorData>, InferError> {
    let values = inputs
        .iter()
        .map(|t| Ok((t.name.clone(), crate::tensor::to_ort_value(t)?)))
        .collect::<Result<Vec<_>, InferError>>()?;
    let outputs = session
        .run_with_options(values, options)
        .map_err(|e| InferError::Execution(e.to_string()))?;
    wanted
        .iter()
        .map(|name| {
            let value = outputs.get(name.as_str()).ok_or_else(|| {
                InferError::Execution(format!("output `{name}` missing from the run"))
            })?;
            crate::tensor::from_ort_value(name, value)
        })
        .collect()
}

/// The one implementation of [`terse_core::Network`] for real models: every codec and
/// compressor runs its networks through this.
impl terse_core::Network for LoadedModel {
    fn name(&self) -> String {
        self.entry.id()
    }

    fn run(&self, inputs: Vec<TensorData>) -> terse_core::NetworkFuture<'_> {
        Box::pin(async move {
            self.infer(inputs, &[])
                .await
                .map(|output| output.outputs)
                .map_err(|e| terse_core::Error::from_classified(&e))
        })
    }
}
