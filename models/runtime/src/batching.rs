//! Dynamic batching: requests to one model from different callers, of compatible shapes, run as
//! one ONNX Runtime call (what Triton's dynamic batcher and TEI's queue do).
//!
//! A model opts in with a `[batching]` table in its manifest, which declares that each output
//! row depends on its own input row alone. Requests wait in one queue per model. Once a session
//! is free, the oldest waiting request opens a batch: requests of the same shapes (after
//! padding, where the manifest allows it) join it in arrival order until it holds
//! `max_batch_size` rows or the opener has waited `max_queue_delay_us`; when other sessions
//! are free too, the batch takes only its share of the waiting rows and leaves the rest to
//! them. The batch runs as one call and each caller gets its own rows back. A caller that gives up (deadline, cancellation)
//! leaves the queue; a running batch is terminated once every caller in it has gone.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::{
    error::InferError,
    manifest::TensorSpec,
    model::{ExecutionObserver, SessionPool},
    tensor::{DataType, TensorData},
};

/// The `[batching]` table of a manifest: declares that the model's output rows depend on their
/// input rows alone, and how its requests may share a run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchingSpec {
    /// Most rows (the first dimension, summed over the requests) in one run. A single request
    /// with more rows runs alone.
    pub max_batch_size: usize,
    /// Longest time, in microseconds, the request that opens a batch waits for batch-mates.
    pub max_queue_delay_us: u64,
    /// Padding that lets requests of different lengths share a run.
    #[serde(default)]
    pub pad: Option<PadSpec>,
}

/// How the inputs of a batch are padded to one length.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PadSpec {
    /// The padded axis (1 or more) of every input.
    pub axis: usize,
    /// The value each input is padded with; every input is named.
    pub values: BTreeMap<String, i64>,
    /// Outputs that carry the padded axis at the same position: each caller gets them cut back
    /// to its own length. The other outputs must not see the padding (e.g. masked pooling).
    #[serde(default)]
    pub outputs: Vec<String>,
}

impl BatchingSpec {
    /// Most rows a manifest may ask for in one run.
    pub const MOST_ROWS: usize = 1024;
    /// Longest queue delay a manifest may ask for (1 s).
    pub const MOST_DELAY_US: u64 = 1_000_000;

    /// Checks the table against the model's inputs and outputs.
    pub fn check(&self, inputs: &[TensorSpec], outputs: &[TensorSpec]) -> Result<(), String> {
        if !(1..=Self::MOST_ROWS).contains(&self.max_batch_size) {
            return Err(format!(
                "batching.max_batch_size must be 1..={}, got {}",
                Self::MOST_ROWS,
                self.max_batch_size
            ));
        }
        if self.max_queue_delay_us > Self::MOST_DELAY_US {
            return Err(format!(
                "batching.max_queue_delay_us must be at most {}, got {}",
                Self::MOST_DELAY_US,
                self.max_queue_delay_us
            ));
        }
        if let Some(spec) = inputs
            .iter()
            .chain(outputs)
            .find(|s| s.shape.first() != Some(&-1))
        {
            return Err(format!(
                "batching needs a dynamic first dimension everywhere, `{}` has shape {:?}",
                spec.name, spec.shape
            ));
        }
        let Some(pad) = &self.pad else {
            return Ok(());
        };
        let dynamic_at_axis = |s: &TensorSpec| pad.axis >= 1 && s.shape.get(pad.axis) == Some(&-1);
        for spec in inputs {
            if !dynamic_at_axis(spec) {
                return Err(format!(
                    "batching.pad.axis {} must be a dynamic dimension after the first of every input, `{}` has shape {:?}",
                    pad.axis, spec.name, spec.shape
                ));
            }
            let Some(&value) = pad.values.get(&spec.name) else {
                return Err(format!(
                    "batching.pad.values names no value for `{}`",
                    spec.name
                ));
            };
            let representable = match spec.datatype {
                DataType::Int64 => true,
                DataType::Int32 => i32::try_from(value).is_ok(),
                DataType::Fp32 => (value as f32) as i64 == value,
                _ => false,
            };
            if !representable {
                return Err(format!(
                    "batching.pad.values: `{}` ({}) cannot be padded with {value}",
                    spec.name, spec.datatype
                ));
            }
        }
        if let Some(name) = pad
            .values
            .keys()
            .find(|n| !inputs.iter().any(|s| &s.name == *n))
        {
            return Err(format!(
                "batching.pad.values names `{name}`, which is not an input"
            ));
        }
        for name in &pad.outputs {
            match outputs.iter().find(|s| &s.name == name) {
                Some(spec) if dynamic_at_axis(spec) => {}
                Some(spec) => {
                    return Err(format!(
                        "batching.pad.outputs: `{name}` has shape {:?}, not dynamic at axis {}",
                        spec.shape, pad.axis
                    ));
                }
                None => {
                    return Err(format!(
                        "batching.pad.outputs names `{name}`, which is not an output"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What batch-mates have in common (see [`Request::shape_key`]).
type Key = (bool, Vec<Vec<i64>>, Vec<String>);

/// One caller's request in the queue: inputs in graph order, already checked against the
/// manifest.
pub(crate) struct Request {
    /// The inputs, in graph order.
    pub inputs: Vec<TensorData>,
    /// The outputs the caller asked for, in graph order.
    pub wanted: Vec<String>,
    /// When the request entered the queue.
    pub enqueued: Instant,
    /// Where its answer goes; closed when the caller gave up.
    pub reply: oneshot::Sender<Result<Answer, InferError>>,
    /// What its batch-mates must share, computed once when it is made.
    key: Key,
}

/// What one caller gets back.
#[derive(Debug)]
pub(crate) struct Answer {
    /// Its rows of the wanted outputs.
    pub outputs: Vec<TensorData>,
    /// How long the shared run took.
    pub execution: Duration,
    /// How long the request waited before the run started.
    pub queued: Duration,
}

impl Request {
    /// A request entering the queue at `enqueued`, under the model's padding rule.
    pub fn new(
        inputs: Vec<TensorData>,
        wanted: Vec<String>,
        enqueued: Instant,
        reply: oneshot::Sender<Result<Answer, InferError>>,
        pad: Option<&PadSpec>,
    ) -> Self {
        let mut request = Self {
            inputs,
            wanted,
            enqueued,
            reply,
            key: Key::default(),
        };
        request.key = request.shape_key(pad);
        request
    }

    fn rows(&self) -> usize {
        self.inputs[0].shape[0] as usize
    }

    /// The request's length along the padded axis, when every input agrees on one of at
    /// least 1 (a request without one only joins requests of its exact shapes).
    fn length(&self, pad: Option<&PadSpec>) -> Option<usize> {
        let axis = pad?.axis;
        let first = *self.inputs[0].shape.get(axis)?;
        (first >= 1
            && self
                .inputs
                .iter()
                .all(|t| t.shape.get(axis) == Some(&first)))
        .then_some(first as usize)
    }

    /// What batch-mates share: whether they are padded, every input's shape but the first
    /// dimension (and the padded axis, when padded), and the wanted outputs.
    fn shape_key(&self, pad: Option<&PadSpec>) -> Key {
        let padded_axis = pad.filter(|_| self.length(pad).is_some()).map(|p| p.axis);
        let shapes = self
            .inputs
            .iter()
            .map(|t| {
                let mut shape = t.shape.clone();
                shape[0] = 0;
                if let Some(axis) = padded_axis {
                    shape[axis] = 0;
                }
                shape
            })
            .collect();
        (padded_axis.is_some(), shapes, self.wanted.clone())
    }
}

/// Where a model's batcher sends what it saw, for statistics and metrics.
#[derive(Clone)]
pub(crate) struct Reporter {
    pub name: String,
    pub version: String,
    pub observer: Option<Arc<dyn ExecutionObserver>>,
}

/// Starts the batcher of one model on the current tokio runtime; it ends when every sender of
/// the returned queue is dropped or the session pool closes.
pub(crate) fn spawn(
    pool: Arc<SessionPool>,
    spec: BatchingSpec,
    reporter: Reporter,
) -> mpsc::UnboundedSender<Request> {
    let (queue, requests) = mpsc::unbounded_channel();
    tokio::spawn(run_batcher(requests, pool, spec, reporter));
    queue
}

/// Moves every request already sent into `waiting`.
fn drain(requests: &mut mpsc::UnboundedReceiver<Request>, waiting: &mut VecDeque<Request>) {
    while let Ok(request) = requests.try_recv() {
        waiting.push_back(request);
    }
}

async fn run_batcher(
    mut requests: mpsc::UnboundedReceiver<Request>,
    pool: Arc<SessionPool>,
    spec: BatchingSpec,
    reporter: Reporter,
) {
    let delay = Duration::from_micros(spec.max_queue_delay_us);
    let mut waiting: VecDeque<Request> = VecDeque::new();
    loop {
        // A request to open a batch.
        if waiting.is_empty() {
            match requests.recv().await {
                Some(request) => waiting.push_back(request),
                None => return,
            }
        }
        // A free session; requests that arrive meanwhile wait for it too.
        let Ok(permit) = Arc::clone(&pool.permits).acquire_owned().await else {
            return;
        };
        drain(&mut requests, &mut waiting);
        waiting.retain(|r| !r.reply.is_closed());
        let Some(opener) = waiting.front() else {
            continue;
        };
        // Batch-mates of the oldest request, waiting up to the delay for more.
        let key = opener.key.clone();
        let deadline = opener.enqueued + delay;
        let compatible_rows = |waiting: &VecDeque<Request>| -> usize {
            waiting
                .iter()
                .filter(|r| r.key == key)
                .map(Request::rows)
                .sum()
        };
        loop {
            if compatible_rows(&waiting) >= spec.max_batch_size || Instant::now() >= deadline {
                break;
            }
            tokio::select! {
                request = requests.recv() => match request {
                    Some(request) => waiting.push_back(request),
                    None => break,
                },
                () = tokio::time::sleep_until(deadline.into()) => break,
            }
        }
        // Other free sessions take their share of what waits, so batching never leaves a
        // session idle while one runs everything (on a CPU each session is a core).
        let sessions = pool.permits.available_permits() + 1;
        let limit = spec
            .max_batch_size
            .min(compatible_rows(&waiting).div_ceil(sessions));
        let mut batch = Vec::new();
        let mut rows = 0;
        let mut rest = VecDeque::with_capacity(waiting.len());
        for request in waiting.drain(..) {
            if request.reply.is_closed() {
                continue;
            }
            let fits = batch.is_empty() || rows + request.rows() <= limit;
            if fits && request.key == key {
                rows += request.rows();
                batch.push(request);
            } else {
                rest.push_back(request);
            }
        }
        waiting = rest;
        if !batch.is_empty() {
            let pool = Arc::clone(&pool);
            let (pad, reporter) = (spec.pad.clone(), reporter.clone());
            tokio::spawn(async move { run_batch(pool, permit, batch, pad, reporter).await });
        }
    }
}

/// Runs one batch on the session the permit holds and answers every caller in it.
async fn run_batch(
    pool: Arc<SessionPool>,
    permit: tokio::sync::OwnedSemaphorePermit,
    mut batch: Vec<Request>,
    pad: Option<PadSpec>,
    reporter: Reporter,
) {
    let started = Instant::now();
    let lengths: Option<Vec<usize>> = batch.iter().map(|r| r.length(pad.as_ref())).collect();
    let padding = pad.as_ref().zip(lengths.as_deref());
    let inputs = assemble(&batch, padding);
    let wanted = batch[0].wanted.clone();
    let rows: Vec<usize> = batch.iter().map(Request::rows).collect();
    let run_options = match pool.run_options(&inputs) {
        Ok(options) => options,
        Err(error) => {
            batch.into_iter().for_each(|r| {
                let _ = r.reply.send(Err(error.clone()));
            });
            return;
        }
    };
    let job = pool.run(permit, inputs, wanted.clone(), Arc::clone(&run_options));
    tokio::pin!(job);
    let finished = {
        // Every caller gone: the run is terminated instead of finishing for nobody.
        let all_gone = async {
            for request in batch.iter_mut() {
                request.reply.closed().await;
            }
        };
        tokio::select! {
            finished = &mut job => finished,
            () = all_gone => {
                if let Err(e) = run_options.terminate() {
                    tracing::warn!(error = %e, "could not terminate an abandoned batch");
                }
                (&mut job).await
            }
        }
    };
    let (result, execution) = match finished {
        Ok(finished) => finished,
        Err(e) => (
            Err(InferError::Execution(format!("execution task failed: {e}"))),
            started.elapsed(),
        ),
    };
    if let Some(observer) = &reporter.observer {
        observer.observe_batch(
            &reporter.name,
            &reporter.version,
            rows.iter().sum(),
            batch.len(),
        );
    }
    let parts = result.and_then(|outputs| split(outputs, &wanted, &rows, padding));
    match parts {
        Ok(parts) => {
            for (request, outputs) in batch.into_iter().zip(parts) {
                let _ = request.reply.send(Ok(Answer {
                    outputs,
                    execution,
                    queued: started.saturating_duration_since(request.enqueued),
                }));
            }
        }
        Err(error) => {
            for request in batch {
                let _ = request.reply.send(Err(error.clone()));
            }
        }
    }
}

/// The little-endian bytes of the pad value in `datatype` (checked representable when the
/// manifest was read).
fn pad_bytes(value: i64, datatype: DataType) -> Vec<u8> {
    match datatype {
        DataType::Int32 => (value as i32).to_le_bytes().to_vec(),
        DataType::Fp32 => (value as f32).to_le_bytes().to_vec(),
        _ => value.to_le_bytes().to_vec(),
    }
}

/// One input tensor per graph input: the requests' tensors stacked along the first dimension,
/// each padded along `padding`'s axis to the longest request first.
fn assemble(batch: &[Request], padding: Option<(&PadSpec, &[usize])>) -> Vec<TensorData> {
    (0..batch[0].inputs.len())
        .map(|i| {
            let first = &batch[0].inputs[i];
            let size = first.datatype.size();
            let mut shape = first.shape.clone();
            shape[0] = batch.iter().map(|r| r.inputs[i].shape[0]).sum();
            let bytes = match padding {
                Some((pad, lengths)) => {
                    let target = lengths.iter().copied().max().unwrap_or(0);
                    let axis = pad.axis;
                    shape[axis] = target as i64;
                    let fill = pad_bytes(pad.values[&first.name], first.datatype);
                    let inner: usize = shape[axis + 1..].iter().map(|&d| d as usize).product();
                    let mut bytes = Vec::with_capacity(
                        crate::tensor::element_count(&shape).unwrap_or(0) * size,
                    );
                    for (request, &length) in batch.iter().zip(lengths) {
                        let tensor = &request.inputs[i];
                        let run = length * inner * size;
                        for chunk in tensor.bytes.chunks_exact(run.max(1)) {
                            bytes.extend_from_slice(chunk);
                            for _ in 0..(target - length) * inner {
                                bytes.extend_from_slice(&fill);
                            }
                        }
                    }
                    bytes
                }
                None => batch
                    .iter()
                    .flat_map(|r| r.inputs[i].bytes.iter().copied())
                    .collect(),
            };
            TensorData {
                name: first.name.clone(),
                datatype: first.datatype,
                shape,
                bytes,
            }
        })
        .collect()
}

/// Each request's rows of every output, padded outputs cut back to the request's length.
fn split(
    outputs: Vec<TensorData>,
    wanted: &[String],
    rows: &[usize],
    padding: Option<(&PadSpec, &[usize])>,
) -> Result<Vec<Vec<TensorData>>, InferError> {
    let total: usize = rows.iter().sum();
    let mut parts: Vec<Vec<TensorData>> = rows
        .iter()
        .map(|_| Vec::with_capacity(outputs.len()))
        .collect();
    for (output, name) in outputs.into_iter().zip(wanted) {
        if output.shape.first().map(|&d| d as usize) != Some(total) {
            return Err(InferError::Execution(format!(
                "output `{name}` of a batch of {total} rows has shape {:?}",
                output.shape
            )));
        }
        let size = output.datatype.size();
        let row_bytes = output.bytes.len() / total.max(1);
        let cut = padding.filter(|(pad, _)| pad.outputs.contains(name));
        let mut offset = 0;
        for (part, (r, &n)) in parts.iter_mut().zip(rows.iter().enumerate()) {
            let own = &output.bytes[offset * row_bytes..(offset + n) * row_bytes];
            offset += n;
            let mut shape = output.shape.clone();
            shape[0] = n as i64;
            let bytes = match cut {
                Some((pad, lengths)) => {
                    let axis = pad.axis;
                    let padded = output.shape[axis] as usize;
                    if lengths[r] > padded {
                        return Err(InferError::Execution(format!(
                            "output `{name}` has {padded} positions along axis {axis}, fewer than a request's {}",
                            lengths[r]
                        )));
                    }
                    let inner: usize = output.shape[axis + 1..]
                        .iter()
                        .map(|&d| d as usize)
                        .product();
                    shape[axis] = lengths[r] as i64;
                    let (keep, stride) = (lengths[r] * inner * size, padded * inner * size);
                    own.chunks_exact(stride.max(1))
                        .flat_map(|c| c[..keep].iter().copied())
                        .collect()
                }
                None => own.to_vec(),
            };
            part.push(TensorData {
                name: name.clone(),
                datatype: output.datatype,
                shape,
                bytes,
            });
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(inputs: Vec<TensorData>) -> Request {
        Request::new(
            inputs,
            vec!["out".into()],
            Instant::now(),
            oneshot::channel().0,
            None,
        )
    }

    fn ints(name: &str, shape: Vec<i64>, first: i64) -> TensorData {
        let count = shape.iter().product::<i64>();
        let values: Vec<i64> = (first..first + count).collect();
        TensorData::from_i64(name, shape, &values)
    }

    fn values(tensor: &TensorData) -> Vec<i64> {
        tensor
            .bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn rows_of_different_lengths_are_padded_then_cut_back() {
        let pad = PadSpec {
            axis: 1,
            values: [("x".to_string(), -1)].into(),
            outputs: vec!["out".into()],
        };
        // Two requests of [rows, length, 2]: 2 rows of length 1, 1 row of length 3.
        let batch = [
            request(vec![ints("x", vec![2, 1, 2], 0)]),
            request(vec![ints("x", vec![1, 3, 2], 100)]),
        ];
        assert_eq!(
            batch[0].shape_key(Some(&pad)),
            batch[1].shape_key(Some(&pad))
        );
        let lengths = [1, 3];
        let inputs = assemble(&batch, Some((&pad, &lengths)));
        assert_eq!(inputs[0].shape, vec![3, 3, 2]);
        assert_eq!(
            values(&inputs[0]),
            vec![
                0, 1, -1, -1, -1, -1, 2, 3, -1, -1, -1, -1, 100, 101, 102, 103, 104, 105
            ]
        );
        // The model's output here is its input, with the padded axis: each caller gets its own
        // rows at its own length.
        let mut output = inputs[0].clone();
        output.name = "out".into();
        let parts = split(
            vec![output],
            &["out".into()],
            &[2, 1],
            Some((&pad, &lengths)),
        )
        .unwrap();
        assert_eq!(parts[0][0].shape, vec![2, 1, 2]);
        assert_eq!(values(&parts[0][0]), vec![0, 1, 2, 3]);
        assert_eq!(parts[1][0].shape, vec![1, 3, 2]);
        assert_eq!(values(&parts[1][0]), (100..106).collect::<Vec<_>>());
    }

    #[test]
    fn requests_batch_only_with_their_own_shapes() {
        let pad = PadSpec {
            axis: 1,
            values: [("x".to_string(), 0), ("y".to_string(), 0)].into(),
            outputs: vec![],
        };
        let of = |x: Vec<i64>, y: Vec<i64>| request(vec![ints("x", x, 0), ints("y", y, 0)]);
        let key = |r: &Request| r.shape_key(Some(&pad));
        // Lengths may differ; other dimensions may not.
        assert_eq!(
            key(&of(vec![1, 4, 2], vec![1, 4])),
            key(&of(vec![3, 9, 2], vec![3, 9]))
        );
        assert_ne!(
            key(&of(vec![1, 4, 2], vec![1, 4])),
            key(&of(vec![1, 4, 3], vec![1, 4]))
        );
        // Inputs that disagree on the length are not padded: only exact shapes join them.
        let ragged = of(vec![1, 4, 2], vec![1, 5]);
        assert_eq!(ragged.length(Some(&pad)), None);
        assert_ne!(key(&ragged), key(&of(vec![1, 4, 2], vec![1, 4])));
        assert_eq!(key(&ragged), key(&of(vec![2, 4, 2], vec![2, 5])));
    }

    #[test]
    fn an_output_without_the_rows_of_the_batch_is_an_error() {
        let output = ints("out", vec![2, 3], 0);
        let error = split(vec![output], &["out".into()], &[2, 1], None).unwrap_err();
        assert!(error.to_string().contains("batch of 3 rows"), "{error}");
    }
}
