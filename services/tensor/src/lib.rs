//! gRPC transport of `compress.tensor.v1.TensorService` over a weight [`CodecRegistry`] and a
//! KV-cache one.
//!
//! Only request handling, limits, conversion and status mapping live here; the formats and the
//! coding are in `terse-tensor` (weights) and `terse-kvcache` (KV caches). Coding runs on the call's worker (and its chunks on the rayon
//! pool), so it never stalls the async runtime, and stops when the call ends.

use std::sync::Arc;

use terse_codec::{Codec, CodecRegistry, DynCodec, EncodeOptions, Work};
use terse_core::{KvCache, KvShape};
use terse_entropy::{CodecId, Container};
use terse_kvcache::{EncodeOptions as KvOptions, KvCacheCodec, KvDtype, KvMedia};
use terse_proto::{
    common::v1 as common,
    tensor::v1::{self as api, tensor_service_server},
};
use terse_runtime::ModelRegistry;
use terse_service_common::prelude::*;
use terse_tensor::{
    TensorEntry,
    file::{self, DEFAULT_CHUNK_ELEMENTS, MAX_CHUNK_ELEMENTS},
};

pub use tensor_service_server::TensorServiceServer;

/// `[tensor]`: limits of the tensor service.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TensorLimits {
    /// Most bytes of one safetensors file, coming in (unary or streamed) or decoded; larger
    /// ones get RESOURCE_EXHAUSTED before any work.
    pub max_file_bytes: u64,
    /// Most values of one KV cache, coming in or decoded; more get RESOURCE_EXHAUSTED before
    /// any work.
    pub max_kv_elements: u64,
}

impl Default for TensorLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 4 << 30,
            max_kv_elements: 1 << 28,
        }
    }
}

/// The KV-cache codecs (one per causal LM), with their knobs.
pub type KvCodecs = CodecRegistry<KvMedia, KvOptions>;

/// The weight codecs, with their knobs.
pub type TensorCodecs = CodecRegistry<Vec<u8>, file::EncodeOptions>;

type WeightCodec = DynCodec<Vec<u8>, file::EncodeOptions>;

/// The service.
pub struct TensorService {
    weights: CodecHost<TensorLimits, Vec<u8>, file::EncodeOptions>,
    kv: CodecHost<TensorLimits, KvMedia, KvOptions>,
    kv_models: Vec<api::KvModel>,
    limits: TensorLimits,
}

impl TensorService {
    /// Hosts the weight codecs (`terse_hosting::tensor_codecs`) and the KV codecs of the causal
    /// LMs of `registry` (`terse_hosting::kv_codecs`).
    pub fn hosted(registry: &ModelRegistry, limits: TensorLimits, memory: MemoryBudget) -> Self {
        Self::new(
            terse_hosting::tensor_codecs(),
            terse_hosting::kv_codecs(registry),
            limits,
            memory,
        )
    }

    /// A service over the weight `codecs` and the KV codecs `kv` enforcing `limits`; calls
    /// reserve their working memory from `memory`.
    pub fn new(
        codecs: TensorCodecs,
        kv: Vec<Arc<KvCacheCodec>>,
        limits: TensorLimits,
        memory: MemoryBudget,
    ) -> Self {
        let kv_models = kv
            .iter()
            .map(|codec| {
                let dims = codec.dims();
                api::KvModel {
                    model: Some(model_ref(&codec.info().model)),
                    layers: dims.layers as u32,
                    kv_heads: dims.kv_heads as u32,
                    head_dim: dims.head_dim as u32,
                    context_length: dims.context_length as u32,
                }
            })
            .collect();
        let max_bytes = usize::try_from(limits.max_file_bytes).unwrap_or(usize::MAX);
        let mut registry = KvCodecs::new("KV-cache");
        for codec in kv {
            registry
                .register(codec)
                .expect("terse_hosting::kv_codecs names each model once");
        }
        Self {
            weights: CodecHost::new(codecs, limits, max_bytes, memory.clone()),
            kv: CodecHost::new(registry, limits, max_bytes, memory),
            kv_models,
            limits,
        }
    }

    /// Refuses a KV cache of more values than the limit.
    fn check_kv_elements(&self, elements: Option<usize>, what: &str) -> Result<usize, Status> {
        match elements {
            Some(n) if n as u64 <= self.limits.max_kv_elements => Ok(n),
            _ => Err(Status::resource_exhausted(format!(
                "{what} holds {} values, over the limit of {}",
                elements.map_or_else(|| "more than 2^64".into(), |n| n.to_string()),
                self.limits.max_kv_elements
            ))),
        }
    }

    /// The whole EncodeKvCache call.
    async fn encode_kv(
        &self,
        request: api::EncodeKvCacheRequest,
    ) -> Result<api::EncodeKvCacheResponse, Status> {
        let codec = self.kv.pick(&request.model)?;
        let message = request
            .cache
            .ok_or_else(|| Status::invalid_argument("the request carries no cache"))?;
        let shape = KvShape {
            layers: message.layers as usize,
            kv_heads: message.kv_heads as usize,
            tokens: message.tokens as usize,
            head_dim: message.head_dim as usize,
        };
        let elements = self.check_kv_elements(shape.elements(), "the cache")?;
        let dtype = KvDtype::from_name(&message.dtype).ok_or_else(|| {
            Status::invalid_argument(format!(
                "cache dtype `{}` is not fp32, fp16 or bf16",
                terse_core::echo(&message.dtype)
            ))
        })?;
        if message.values.len() != elements * dtype.size() {
            return Err(Status::invalid_argument(format!(
                "the cache's shape holds {elements} {} values ({} bytes), `values` has {} bytes",
                dtype.name(),
                elements * dtype.size(),
                message.values.len()
            )));
        }
        let level = match request.level {
            0 => terse_kvcache::DEFAULT_LEVEL,
            level => u8::try_from(level)
                .ok()
                .filter(|l| (1..=terse_kvcache::MAX_LEVEL).contains(l))
                .ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "level {level} is outside 1..={}",
                        terse_kvcache::MAX_LEVEL
                    ))
                })?,
        };
        let knobs = KvOptions {
            level,
            sink_tokens: request.sink_tokens.unwrap_or(1) as usize,
        };
        let coding = EncodeOptions {
            knobs,
            reconstruct: true,
            ..Default::default()
        };
        let what = format!("KV encode of {elements} values");
        let _memory = self
            .kv
            .reserve(codec.as_ref(), coding.work(), &[elements as u64], &what)?;
        let original_bytes = message.values.len() as u64;
        let media = run_blocking(move || {
            let values = dtype.to_f32(&message.values).expect("length checked");
            let cache = KvCache::new(shape, values).map_err(|e| status_of(&e))?;
            Ok(Arc::new(KvMedia { cache, dtype }))
        })
        .await?;
        let encoding = encode_in_call(codec.as_ref(), Arc::clone(&media), coding).await?;
        let decoded = encoding
            .reconstruction
            .ok_or_else(|| Status::internal("the KV codec returned no reconstruction"))?;
        let (snr_db, max_abs_error) = run_blocking(move || Ok(kv_error(&media, &decoded))).await?;
        let bitstream = encoding.bitstream;
        Ok(api::EncodeKvCacheResponse {
            rate_distortion: Some(common::RateDistortion {
                compressed_bytes: bitstream.len() as u64,
                original_bytes,
                bits_per_element: Some(bitstream.len() as f64 * 8.0 / elements.max(1) as f64),
                snr_db: Some(snr_db),
                ..Default::default()
            }),
            bitstream,
            max_abs_error,
        })
    }

    /// The whole DecodeKvCache call.
    async fn decode_kv(&self, bitstream: Vec<u8>) -> Result<api::DecodeKvCacheResponse, Status> {
        self.kv.check_container(&bitstream, &[CodecId::KvCache])?;
        // The header, checked (layout, checksums of the front, shape, level), before anything
        // is decoded or allocated.
        let header = terse_kvcache::info(&bitstream).map_err(|e| status_of(&e))?;
        let elements = self.check_kv_elements(header.shape.elements(), "the bitstream's cache")?;
        let codec = self.kv.for_bitstream(&bitstream)?;
        let what = format!("KV decode of {elements} values");
        let _memory = self
            .kv
            .reserve(codec.as_ref(), Work::Decode, &[elements as u64], &what)?;
        let media = decode_in_call(codec.as_ref(), bitstream, self.limits.max_kv_elements).await?;
        let shape = media.cache.shape();
        let values = run_blocking(move || Ok(media.dtype.from_f32(media.cache.values()))).await?;
        Ok(api::DecodeKvCacheResponse {
            model: header.model.name,
            level: u32::from(header.level),
            sink_tokens: header.sink_tokens as u32,
            cache: Some(api::KvCache {
                layers: shape.layers as u32,
                kv_heads: shape.kv_heads as u32,
                tokens: shape.tokens as u32,
                head_dim: shape.head_dim as u32,
                dtype: header.dtype,
                values,
            }),
        })
    }

    fn reserve(
        &self,
        codec: &WeightCodec,
        work: Work,
        file_bytes: u64,
        what: &str,
    ) -> Result<Reservation, Status> {
        let what = format!("{what} of a {file_bytes}-byte file");
        self.weights.reserve(codec, work, &[file_bytes], &what)
    }

    /// The size the bitstream says its file has, refused over the limit before any work.
    fn declared_file_bytes(&self, bitstream: &[u8]) -> Result<u64, Status> {
        let [file_bytes] = declared_fields(bitstream, ["file_bytes"]).ok_or_else(|| {
            Status::invalid_argument("bitstream: the container header does not read")
        })?;
        if file_bytes > self.limits.max_file_bytes {
            return Err(Status::resource_exhausted(format!(
                "the bitstream decodes to {file_bytes} bytes, over the limit of {}",
                self.limits.max_file_bytes
            )));
        }
        Ok(file_bytes)
    }

    /// The whole Encode call.
    async fn encode_file(
        &self,
        data: Vec<u8>,
        options: api::EncodeOptions,
    ) -> Result<api::EncodeResult, Status> {
        self.weights.check_bytes(data.len(), "file")?;
        let codec = self.weights.pick("")?;
        let coding = EncodeOptions {
            knobs: codec_options(&options)?,
            ..Default::default()
        };
        let file_bytes = data.len() as u64;
        let _memory = self.reserve(codec.as_ref(), coding.work(), file_bytes, "weight encode")?;
        let encoding = encode_in_call(codec.as_ref(), Arc::new(data), coding).await?;
        let bitstream = encoding.bitstream;
        let (bitstream, info) = run_blocking(move || {
            let info = terse_tensor::inspect(&bitstream).map_err(|e| status_of(&e))?;
            Ok((bitstream, info))
        })
        .await?;
        let bytes = bitstream.len() as u64;
        Ok(api::EncodeResult {
            rate_distortion: Some(common::RateDistortion {
                compressed_bytes: bytes,
                original_bytes: file_bytes,
                ..Default::default()
            }),
            compression_ratio: file_bytes as f64 / bytes as f64,
            tensors: info.tensors.iter().map(summary).collect(),
            bitstream,
        })
    }

    /// Checks a bitstream and decodes it to the file.
    async fn decode_file(&self, bitstream: Vec<u8>) -> Result<Vec<u8>, Status> {
        self.weights
            .check_container(&bitstream, &[CodecId::Tensor])?;
        let file_bytes = self.declared_file_bytes(&bitstream)?;
        let codec = self.weights.for_bitstream(&bitstream)?;
        let _memory = self.reserve(codec.as_ref(), Work::Decode, file_bytes, "weight decode")?;
        decode_in_call(codec.as_ref(), bitstream, self.limits.max_file_bytes).await
    }

    /// One tensor of a bitstream, decoded alone.
    async fn decode_one_tensor(
        &self,
        request: api::ReadTensorRequest,
    ) -> Result<api::ReadTensorResponse, Status> {
        let api::ReadTensorRequest { bitstream, name } = request;
        self.weights
            .check_container(&bitstream, &[CodecId::Tensor])?;
        let bitstream = Arc::new(bitstream);
        let (bytes, wanted) = {
            let (bitstream, name) = (Arc::clone(&bitstream), name.clone());
            run_blocking(move || {
                let info = terse_tensor::inspect(&bitstream).map_err(|e| status_of(&e))?;
                let entry = info.tensors.iter().find(|t| t.name == name);
                Ok((entry.map(|t| t.bytes), name))
            })
            .await?
        };
        // A missing name is reported by the decode itself (NOT_FOUND); a present one reserves
        // its bytes first.
        let codec = self.weights.for_bitstream(&bitstream)?;
        let _memory = self.reserve(
            codec.as_ref(),
            Work::Decode,
            bytes.unwrap_or(0),
            "tensor read",
        )?;
        let max_bytes = self.limits.max_file_bytes;
        let (entry, data) = run_blocking(move || {
            terse_tensor::decode_tensor(&bitstream, &wanted, max_bytes).map_err(|e| status_of(&e))
        })
        .await?;
        Ok(api::ReadTensorResponse {
            tensor: Some(summary(&entry)),
            data,
        })
    }

    /// What a bitstream holds, without decoding it.
    async fn describe(&self, bitstream: Vec<u8>) -> Result<api::InfoResponse, Status> {
        self.weights
            .check_container(&bitstream, &[CodecId::Tensor])?;
        let format_version = Container::peek_version(&bitstream).map_or(0, u32::from);
        let info =
            run_blocking(move || terse_tensor::inspect(&bitstream).map_err(|e| status_of(&e)))
                .await?;
        Ok(api::InfoResponse {
            file_bytes: info.file_bytes,
            chunk_elements: info.chunk_elements,
            format_version,
            tensors: info.tensors.iter().map(summary).collect(),
        })
    }
}

/// Signal-to-noise ratio (dB) and largest absolute error of a decoded cache; the reference is
/// the input as the codec saw it (its dtype's values). An exact decode has infinite SNR.
fn kv_error(original: &KvMedia, decoded: &KvMedia) -> (f64, f64) {
    let (mut signal, mut noise, mut max) = (0f64, 0f64, 0f64);
    for (&a, &b) in original.cache.values().iter().zip(decoded.cache.values()) {
        let error = f64::from(a) - f64::from(b);
        signal += f64::from(a).powi(2);
        noise += error * error;
        max = max.max(error.abs());
    }
    let snr = if noise == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (signal / noise).log10()
    };
    (snr, max)
}

/// The codec knobs of a request's options.
fn codec_options(options: &api::EncodeOptions) -> Result<file::EncodeOptions, Status> {
    let chunk_elements = options.chunk_elements.unwrap_or(DEFAULT_CHUNK_ELEMENTS);
    if !(1..=MAX_CHUNK_ELEMENTS).contains(&chunk_elements) {
        return Err(Status::invalid_argument(format!(
            "chunk_elements {chunk_elements} is outside 1..={MAX_CHUNK_ELEMENTS}"
        )));
    }
    Ok(file::EncodeOptions { chunk_elements })
}

fn summary(entry: &TensorEntry) -> api::TensorSummary {
    api::TensorSummary {
        name: entry.name.clone(),
        dtype: format!("{:?}", entry.dtype),
        shape: entry.shape.iter().map(|&d| d as u64).collect(),
        bytes: entry.bytes,
        coded_bytes: entry.coded_bytes,
        chunks: entry.chunks.len() as u32,
    }
}

rpcs! {
    impl tensor_service_server::TensorService for TensorService {
        fn encode(self, request: api::EncodeRequest) -> api::EncodeResponse {
            let options = request.options.unwrap_or_default();
            api::EncodeResponse { result: Some(self.encode_file(request.file, options).await?) }
        }

        fn encode_stream(
            self,
            stream: Streaming<api::EncodeStreamRequest>,
        ) -> stream EncodeStreamStream of api::EncodeStreamResponse {
            let (options, file) = self.weights.upload(stream, "file").await?;
            let mut result = self.encode_file(file, options).await?;
            let bitstream = std::mem::take(&mut result.bitstream);
            let last = api::EncodeStreamResponse { chunk: None, result: Some(result) };
            let chunk = |chunk| api::EncodeStreamResponse { chunk: Some(chunk), result: None };
            download_then(&bitstream, chunk, Some(last))
        }

        fn decode(self, request: api::DecodeRequest) -> api::DecodeResponse {
            api::DecodeResponse { file: self.decode_file(request.bitstream).await? }
        }

        fn decode_stream(
            self,
            stream: Streaming<api::DecodeStreamRequest>,
        ) -> stream DecodeStreamStream of api::DecodeStreamResponse {
            let mut stream = stream;
            let max_bytes = self.weights.max_bytes();
            let bitstream = collect_chunks(&mut stream, max_bytes, "bitstream", |message| {
                message
                    .chunk
                    .ok_or_else(|| Status::invalid_argument("a stream message carries no chunk"))
            })
            .await?;
            let file = self.decode_file(bitstream).await?;
            let file_bytes = file.len() as u64;
            download(&file, |chunk| api::DecodeStreamResponse { file_bytes, chunk: Some(chunk) })
        }

        fn read_tensor(self, request: api::ReadTensorRequest) -> api::ReadTensorResponse {
            self.decode_one_tensor(request).await?
        }

        fn info(self, request: api::InfoRequest) -> api::InfoResponse {
            self.describe(request.bitstream).await?
        }

        fn encode_kv_cache(self, request: api::EncodeKvCacheRequest) -> api::EncodeKvCacheResponse {
            self.encode_kv(request).await?
        }

        fn decode_kv_cache(self, request: api::DecodeKvCacheRequest) -> api::DecodeKvCacheResponse {
            self.decode_kv(request.bitstream).await?
        }

        fn list_kv_models(self, _request: api::ListKvModelsRequest) -> api::ListKvModelsResponse {
            api::ListKvModelsResponse { models: self.kv_models.clone() }
        }
    }
}

impl HostedService for TensorLimits {
    fn add_to(&self, host: &Host, routes: &mut RoutesBuilder) -> Result<String, String> {
        let service = TensorService::hosted(host.registry, *self, host.memory.clone());
        let hosted = format!(
            "tensor codecs {:?}, KV-cache codecs {:?}",
            service.weights.names(),
            service.kv.names()
        );
        terse_service_common::add_service!(routes, host, TensorServiceServer, service, hosted)
    }
}

#[cfg(test)]
mod tests;
