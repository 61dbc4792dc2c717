//! "Run these tensors": the one trait for a neural network a codec or compressor calls.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use ndarray::ArrayD;

use crate::{BoxFuture, Error, TensorData};

/// What [`Network::run`] returns.
pub type NetworkFuture<'a> = BoxFuture<'a, Result<Vec<TensorData>, Error>>;

/// A network: named tensors in, its outputs (in graph order) out.
///
/// The model runtime implements it for its loaded ONNX models; [`FakeNetwork`] stands in for
/// one in tests.
///
/// ```
/// use terse_core::{FakeNetwork, Network, TensorData, block_on};
///
/// // A network that doubles its input.
/// let double = FakeNetwork::f32("double", |inputs| {
///     Ok(inputs.into_iter().map(|x| x * 2.0).collect())
/// });
/// let out = block_on(double.run(vec![TensorData::from_f32("x", vec![2], &[1.0, 2.5])])).unwrap();
/// assert_eq!(out[0].to_f32().unwrap(), [2.0, 5.0]);
/// ```
pub trait Network: Send + Sync {
    /// The network's name for messages (`name:version` for a repository model).
    fn name(&self) -> String;

    /// Runs the network on its named inputs.
    fn run(&self, inputs: Vec<TensorData>) -> NetworkFuture<'_>;
}

/// Runs a network of `f32` inputs named `names` and returns its outputs as `f32` arrays.
pub async fn run_f32(
    network: &dyn Network,
    names: &[&str],
    arrays: Vec<ArrayD<f32>>,
) -> Result<Vec<ArrayD<f32>>, Error> {
    if names.len() != arrays.len() {
        return Err(Error::internal(format!(
            "{} tensors for the inputs {names:?} of {}",
            arrays.len(),
            network.name()
        )));
    }
    let tensors = names
        .iter()
        .zip(&arrays)
        .map(|(name, array)| TensorData::from_f32_array(*name, array.view()))
        .collect();
    drop(arrays);
    let outputs = network.run(tensors).await?;
    outputs
        .iter()
        .map(|t| {
            t.to_f32_array().ok_or_else(|| {
                Error::internal(format!(
                    "output `{}` of {} is not a consistent fp32 tensor",
                    t.name,
                    network.name()
                ))
            })
        })
        .collect()
}

type Respond = dyn Fn(Vec<TensorData>) -> Result<Vec<TensorData>, Error> + Send + Sync;

/// The declared test double of [`Network`]: a closure stands in for the model, and the calls
/// are counted. Tests of codecs and services use it so they run without ONNX Runtime.
#[derive(Clone)]
pub struct FakeNetwork {
    name: String,
    respond: Arc<Respond>,
    calls: Arc<AtomicUsize>,
}

impl FakeNetwork {
    /// A network answering with `respond`.
    pub fn new(
        name: impl Into<String>,
        respond: impl Fn(Vec<TensorData>) -> Result<Vec<TensorData>, Error> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            respond: Arc::new(respond),
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A network of `f32` tensors: `respond` maps the input arrays (in the order given) to
    /// the output arrays, named `output0`, `output1`, ….
    pub fn f32(
        name: impl Into<String>,
        respond: impl Fn(Vec<ArrayD<f32>>) -> Result<Vec<ArrayD<f32>>, Error> + Send + Sync + 'static,
    ) -> Self {
        Self::new(name, move |inputs: Vec<TensorData>| {
            let arrays = inputs
                .iter()
                .map(|t| {
                    t.to_f32_array()
                        .ok_or_else(|| Error::invalid(format!("`{}` is not fp32", t.name)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(respond(arrays)?
                .iter()
                .enumerate()
                .map(|(i, a)| TensorData::from_f32_array(format!("output{i}"), a.view()))
                .collect())
        })
    }

    /// How many times the network ran.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }
}

impl Network for FakeNetwork {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn run(&self, inputs: Vec<TensorData>) -> NetworkFuture<'_> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let result = (self.respond)(inputs);
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, block_on};

    #[test]
    fn run_f32_names_inputs_and_checks_outputs() {
        let sum = FakeNetwork::new("sum", |inputs| {
            assert_eq!(inputs[0].name, "a");
            assert_eq!(inputs[1].name, "b");
            let (a, b) = (inputs[0].to_f32().unwrap(), inputs[1].to_f32().unwrap());
            let s: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
            Ok(vec![TensorData::from_f32("s", vec![2], &s)])
        });
        let a = ArrayD::from_shape_vec(vec![2], vec![1.0, 2.0]).unwrap();
        let out = block_on(run_f32(&sum, &["a", "b"], vec![a.clone(), a])).unwrap();
        assert_eq!(out[0].as_slice().unwrap(), [2.0, 4.0]);
        assert_eq!(sum.calls(), 1);

        let e = block_on(run_f32(&sum, &["a"], vec![])).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
        let ints = FakeNetwork::new("ints", |_| {
            Ok(vec![TensorData::from_i64("i", vec![1], &[1])])
        });
        let e = block_on(run_f32(&ints, &[], vec![])).unwrap_err();
        assert!(e.message.contains("not a consistent fp32"), "{e}");
    }
}
