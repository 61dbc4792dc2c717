//! What every layer of terse shares, and nothing more.
//!
//! - [`ErrorKind`] and [`Classify`]: the one error taxonomy. Every domain error says which kind
//!   it is; `services/common` maps a kind to a gRPC status in one place.
//! - [`TensorData`]: a tensor as it travels (element type, shape, little-endian bytes).
//! - [`KvCache`]: a transformer's key/value cache between the model runtime and the KV codec.
//! - [`Network`]: "run these tensors". The model runtime implements it once for its ONNX
//!   models; [`FakeNetwork`] is the declared test double, so codecs and services are tested
//!   without the ONNX Runtime library.
//! - [`Worker`]: where blocking work runs (the server's blocking pool with the call's
//!   cancellation flag, or [`Inline`] in tools and tests).
//! - [`heap`]: the C heap's policy for a serving process.
//!
//! This crate depends on neither ONNX Runtime nor any networking crate.

mod error;
pub mod heap;
mod kv;
mod network;
mod pick;
mod tensor;
mod worker;

pub use error::{Classify, ECHO_CHARS, Error, ErrorKind, echo};
pub use kv::{KvCache, KvShape};
pub use network::{FakeNetwork, Network, NetworkFuture, run_f32};
pub use pick::pick_by_name;
pub use tensor::{DataType, TensorData, element_count, from_le_bytes, le_bytes};
pub use worker::{
    BoxFuture, CountingInline, Inline, Job, Worker, block_on, on_worker, on_worker_classified,
};
