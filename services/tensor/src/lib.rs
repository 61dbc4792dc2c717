//! gRPC transport of `compress.tensor.v1.TensorService` over a weight [`CodecRegistry`].
//!
//! Only request handling, limits, conversion and status mapping live here; the format and the
//! coding are in `terse-tensor`. Coding runs on the call's worker (and its chunks on the rayon
//! pool), so it never stalls the async runtime, and stops when the call ends.

use std::sync::Arc;

use terse_codec::{CodecRegistry, DynCodec, EncodeOptions, Work};
use terse_entropy::CodecId;
use terse_proto::{
    common::v1 as common,
    tensor::v1::{self as api, tensor_service_server},
};
use terse_service_common::{
    Download, Host, HostedService, MemoryBudget, Reservation, collect_chunks, collect_upload,
    declared_fields, decode_in_call, download, download_then, encode_in_call, run_blocking,
    status_of,
};
use terse_tensor::{
    TensorEntry,
    file::{self, DEFAULT_CHUNK_ELEMENTS, MAX_CHUNK_ELEMENTS},
};
use tonic::{Request, Response, Status, Streaming, service::RoutesBuilder};

pub use tensor_service_server::TensorServiceServer;

/// `[tensor]`: limits of the tensor service.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TensorLimits {
    /// Most bytes of one safetensors file, coming in (unary or streamed) or decoded; larger
    /// ones get RESOURCE_EXHAUSTED before any work.
    pub max_file_bytes: u64,
}

impl Default for TensorLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 4 << 30,
        }
    }
}

/// The weight codecs, with their knobs.
pub type TensorCodecs = CodecRegistry<Vec<u8>, file::EncodeOptions>;

type WeightCodec = DynCodec<Vec<u8>, file::EncodeOptions>;

/// The service.
pub struct TensorService {
    codecs: Arc<TensorCodecs>,
    limits: TensorLimits,
    memory: MemoryBudget,
}

impl TensorService {
    /// Hosts the weight codecs (`terse_hosting::tensor_codecs`).
    pub fn hosted(limits: TensorLimits, memory: MemoryBudget) -> Self {
        Self::new(terse_hosting::tensor_codecs(), limits, memory)
    }

    /// A service over `codecs` enforcing `limits`; calls reserve their working memory from
    /// `memory`.
    pub fn new(codecs: TensorCodecs, limits: TensorLimits, memory: MemoryBudget) -> Self {
        Self {
            codecs: Arc::new(codecs),
            limits,
            memory,
        }
    }

    fn max_bytes(&self) -> usize {
        usize::try_from(self.limits.max_file_bytes).unwrap_or(usize::MAX)
    }

    fn check_size(&self, len: usize, what: &str) -> Result<(), Status> {
        terse_service_common::check_bytes(len, self.max_bytes(), what)
    }

    fn reserve(
        &self,
        codec: &WeightCodec,
        work: Work,
        file_bytes: u64,
        what: &str,
    ) -> Result<Reservation, Status> {
        self.memory.reserve(
            codec.working_memory(work, &[file_bytes]),
            &format!("{what} of a {file_bytes}-byte file"),
        )
    }

    /// Checks that `bitstream` is a tensor container no larger than the limit.
    fn check_bitstream(&self, bitstream: &[u8]) -> Result<(), Status> {
        self.check_size(bitstream.len(), "bitstream")?;
        if !terse_entropy::Container::sniff(bitstream) {
            return Err(Status::invalid_argument(
                "bitstream does not start with the terse magic `TRSE`",
            ));
        }
        terse_service_common::expect_codec_family(bitstream, &[CodecId::Tensor])?;
        Ok(())
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
        self.check_size(data.len(), "file")?;
        let codec = self.codecs.pick("").map_err(|e| status_of(&e))?;
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
        self.check_bitstream(&bitstream)?;
        let file_bytes = self.declared_file_bytes(&bitstream)?;
        let codec = self
            .codecs
            .for_bitstream(&bitstream)
            .map_err(|e| status_of(&e))?;
        let _memory = self.reserve(codec.as_ref(), Work::Decode, file_bytes, "weight decode")?;
        decode_in_call(codec.as_ref(), bitstream, self.limits.max_file_bytes).await
    }
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

#[tonic::async_trait]
impl tensor_service_server::TensorService for TensorService {
    async fn encode(
        &self,
        request: Request<api::EncodeRequest>,
    ) -> Result<Response<api::EncodeResponse>, Status> {
        let request = request.into_inner();
        let options = request.options.unwrap_or_default();
        let result = self.encode_file(request.file, options).await?;
        Ok(Response::new(api::EncodeResponse {
            result: Some(result),
        }))
    }

    type EncodeStreamStream = Download<api::EncodeStreamResponse>;

    async fn encode_stream(
        &self,
        request: Request<Streaming<api::EncodeStreamRequest>>,
    ) -> Result<Response<Self::EncodeStreamStream>, Status> {
        let mut stream = request.into_inner();
        let (options, file) = collect_upload(&mut stream, self.max_bytes(), "file").await?;
        let mut result = self.encode_file(file, options).await?;
        let bitstream = std::mem::take(&mut result.bitstream);
        let last = api::EncodeStreamResponse {
            chunk: None,
            result: Some(result),
        };
        Ok(download_then(
            &bitstream,
            |chunk| api::EncodeStreamResponse {
                chunk: Some(chunk),
                result: None,
            },
            Some(last),
        ))
    }

    async fn decode(
        &self,
        request: Request<api::DecodeRequest>,
    ) -> Result<Response<api::DecodeResponse>, Status> {
        let file = self.decode_file(request.into_inner().bitstream).await?;
        Ok(Response::new(api::DecodeResponse { file }))
    }

    type DecodeStreamStream = Download<api::DecodeStreamResponse>;

    async fn decode_stream(
        &self,
        request: Request<Streaming<api::DecodeStreamRequest>>,
    ) -> Result<Response<Self::DecodeStreamStream>, Status> {
        let mut stream = request.into_inner();
        let bitstream = collect_chunks(&mut stream, self.max_bytes(), "bitstream", |message| {
            message
                .chunk
                .ok_or_else(|| Status::invalid_argument("a stream message carries no chunk"))
        })
        .await?;
        let file = self.decode_file(bitstream).await?;
        let file_bytes = file.len() as u64;
        Ok(download(&file, |chunk| api::DecodeStreamResponse {
            file_bytes,
            chunk: Some(chunk),
        }))
    }

    async fn read_tensor(
        &self,
        request: Request<api::ReadTensorRequest>,
    ) -> Result<Response<api::ReadTensorResponse>, Status> {
        let api::ReadTensorRequest { bitstream, name } = request.into_inner();
        self.check_bitstream(&bitstream)?;
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
        let codec = self
            .codecs
            .for_bitstream(&bitstream)
            .map_err(|e| status_of(&e))?;
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
        Ok(Response::new(api::ReadTensorResponse {
            tensor: Some(summary(&entry)),
            data,
        }))
    }

    async fn info(
        &self,
        request: Request<api::InfoRequest>,
    ) -> Result<Response<api::InfoResponse>, Status> {
        let bitstream = request.into_inner().bitstream;
        self.check_bitstream(&bitstream)?;
        let info =
            run_blocking(move || terse_tensor::inspect(&bitstream).map_err(|e| status_of(&e)))
                .await?;
        Ok(Response::new(api::InfoResponse {
            file_bytes: info.file_bytes,
            chunk_elements: info.chunk_elements,
            // The only version this build reads.
            format_version: u32::from(terse_entropy::container::FORMAT_VERSION),
            tensors: info.tensors.iter().map(summary).collect(),
        }))
    }
}

impl HostedService for TensorLimits {
    fn model_tasks(&self) -> &'static [&'static str] {
        &[]
    }

    fn add_to(&self, host: &Host, routes: &mut RoutesBuilder) -> Result<String, String> {
        let service = TensorService::hosted(*self, host.memory.clone());
        let hosted = format!("tensor codecs {:?}", service.codecs.names());
        terse_service_common::add_service!(routes, host, TensorServiceServer, service);
        Ok(hosted)
    }
}
