//! gRPC transport of `compress.image.v1.ImageService`: WaLLoC codecs found in the model
//! repository (task `walloc-image`), encoding in Rust, the decoder network through the model
//! runtime.

#![warn(missing_docs)]

use std::{pin::Pin, sync::Arc};

use ndarray::{Array3, Array4};
use terse_entropy::{Container, ModelTag};
use terse_proto::{common::v1 as common, image::v1 as api};
use terse_runtime::{
    InferError, LoadedModel, ManifestEntry, ModelRegistry, ModelState, TensorData,
};
use terse_service_common::{collect_upload, download_chunks, run_blocking};
use terse_walloc::{
    ImageFormat, Latents, WallocError, WallocImageCodec, decode_image_file, encode_image_file,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

pub use api::image_service_server::ImageServiceServer;

/// Task name of WaLLoC image decoders in model manifests.
pub const WALLOC_IMAGE_TASK: &str = "walloc-image";

/// Limits of the image service.
#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    /// Most pixels per image (input or decoded).
    pub max_pixels: u64,
    /// Most bytes of an image file or bitstream, unary or streamed.
    pub max_bytes: usize,
}

/// A codec the server hosts: its Rust side and its decoder network.
pub struct HostedCodec {
    codec: Arc<WallocImageCodec>,
    decoder: Arc<LoadedModel>,
    version: String,
    description: String,
}

/// The service.
pub struct ImageService {
    codecs: Vec<HostedCodec>,
    limits: ImageLimits,
}

fn walloc_status(e: WallocError) -> Status {
    match e {
        WallocError::Invalid(m) => Status::invalid_argument(m),
        WallocError::TooLarge(m) => Status::resource_exhausted(m),
        WallocError::Entropy(e) => Status::invalid_argument(format!("bitstream: {e}")),
        WallocError::Model(m) | WallocError::Decoder(m) => Status::internal(m),
    }
}

fn infer_status(e: InferError) -> Status {
    match e {
        InferError::NotFound(m) => Status::not_found(m),
        InferError::Unavailable(m) => Status::failed_precondition(m),
        InferError::InvalidInput(m) => Status::invalid_argument(m),
        InferError::Execution(m) => Status::internal(m),
    }
}

/// An asset of a model entry: `Ok(None)` when the manifest lists none by that name.
pub fn read_asset(entry: &ManifestEntry, name: &str) -> Result<Option<Vec<u8>>, String> {
    if !entry.manifest.assets.iter().any(|a| a.name == name) {
        return Ok(None);
    }
    entry.read_asset(name).map(Some).map_err(|e| e.to_string())
}

impl ImageService {
    /// Hosts every ready `walloc-image` model of the registry.
    pub fn from_registry(registry: &ModelRegistry, limits: ImageLimits) -> Result<Self, String> {
        let mut codecs = Vec::new();
        for entry in registry.entries() {
            let manifest = &entry.entry.manifest;
            if manifest.task != WALLOC_IMAGE_TASK {
                continue;
            }
            let ModelState::Ready(model) = &entry.state else {
                continue;
            };
            let tag = ModelTag::from_sha256_hex(&manifest.name, &manifest.sha256)
                .map_err(|e| e.to_string())?;
            let codec = WallocImageCodec::from_assets(|name| read_asset(&entry.entry, name), tag)
                .map_err(|e| format!("model {}: {e}", entry.entry.id()))?;
            codecs.push(HostedCodec {
                codec: Arc::new(codec),
                decoder: Arc::clone(model),
                version: manifest.version.clone(),
                description: manifest.description.clone(),
            });
        }
        // Default first: the strongest dimension reduction.
        codecs.sort_by_key(|c| (c.codec.weights().latent_dim, c.codec.model().name.clone()));
        Ok(Self { codecs, limits })
    }

    /// Names of the hosted codecs.
    pub fn codec_names(&self) -> Vec<String> {
        self.codecs
            .iter()
            .map(|c| c.codec.model().name.clone())
            .collect()
    }

    fn pick(&self, name: &str) -> Result<&HostedCodec, Status> {
        if self.codecs.is_empty() {
            return Err(Status::failed_precondition(
                "no image codec is loaded (no `walloc-image` model in the repository)",
            ));
        }
        if name.is_empty() {
            return Ok(&self.codecs[0]);
        }
        self.codecs
            .iter()
            .find(|c| c.codec.model().name == name)
            .ok_or_else(|| {
                Status::not_found(format!(
                    "codec `{name}` is not hosted (available: {})",
                    self.codec_names().join(", ")
                ))
            })
    }

    fn check_bytes(&self, len: usize, what: &str) -> Result<(), Status> {
        if len > self.limits.max_bytes {
            return Err(Status::resource_exhausted(format!(
                "{what} of {len} bytes exceeds the limit of {} bytes",
                self.limits.max_bytes
            )));
        }
        Ok(())
    }

    /// Runs the decoder network on latents and rebuilds the image.
    async fn reconstruct(
        &self,
        hosted: &HostedCodec,
        latents: Latents,
    ) -> Result<terse_walloc::RgbImage, Status> {
        let normal: Array4<f32> = hosted.codec.normal_latents(&latents);
        let shape: Vec<i64> = normal.shape().iter().map(|&d| d as i64).collect();
        let input = TensorData::from_f32(
            "normal_latent",
            shape,
            normal.as_slice().expect("standard layout"),
        );
        let output = hosted
            .decoder
            .infer(vec![input], &[])
            .await
            .map_err(infer_status)?;
        let bands = output
            .outputs
            .into_iter()
            .next()
            .ok_or_else(|| Status::internal("decoder returned nothing"))?;
        let values = bands
            .to_f32()
            .ok_or_else(|| Status::internal("decoder output is not FP32"))?;
        let dims: Vec<usize> = bands.shape.iter().map(|&d| d as usize).collect();
        let [1, b, h, w] = dims[..] else {
            return Err(Status::internal(format!("decoder output shape {dims:?}")));
        };
        let codec = Arc::clone(&hosted.codec);
        let (width, height) = (latents.width, latents.height);
        run_blocking(move || {
            let planes = Array3::from_shape_vec((b, h, w), values)
                .map_err(|e| Status::internal(e.to_string()))?;
            codec
                .reconstruct(planes.view(), width, height)
                .map_err(walloc_status)
        })
        .await
    }

    async fn encode_image(
        &self,
        image: Vec<u8>,
        options: api::EncodeOptions,
    ) -> Result<api::EncodeResult, Status> {
        self.check_bytes(image.len(), "image")?;
        let hosted = self.pick(&options.codec)?;
        let codec = Arc::clone(&hosted.codec);
        let max_pixels = self.limits.max_pixels;
        let (original, alpha, bitstream, latents) = run_blocking(move || {
            let (rgb, alpha) = decode_image_file(&image, max_pixels).map_err(walloc_status)?;
            let (bitstream, latents) = codec.encode(&rgb).map_err(walloc_status)?;
            Ok((rgb, alpha, bitstream, latents))
        })
        .await?;
        let (width, height) = original.dimensions();
        let pixels = f64::from(width) * f64::from(height);
        let mut rate = common::RateDistortion {
            compressed_bytes: bitstream.len() as u64,
            original_bytes: u64::from(width) * u64::from(height) * 3,
            bits_per_pixel: Some(bitstream.len() as f64 * 8.0 / pixels),
            ..Default::default()
        };
        let latent_tensor = options.return_latents.then(|| {
            let (l, h, w) = latents.values.dim();
            common::Tensor {
                name: "latents".into(),
                datatype: common::DataType::Int32 as i32,
                shape: vec![l as i64, h as i64, w as i64],
                raw_contents: latents
                    .values
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            }
        });
        let mut reconstruction = Vec::new();
        if options.measure_quality || options.return_reconstruction {
            let decoded = self.reconstruct(hosted, latents).await?;
            let format = options.reconstruction_format;
            let want_file = options.return_reconstruction;
            let (psnr, ms_ssim, file) = run_blocking(move || {
                let file = if want_file {
                    output_file(&decoded, format)?
                } else {
                    Vec::new()
                };
                Ok((
                    terse_walloc::psnr(&original, &decoded),
                    terse_walloc::ms_ssim(&original, &decoded),
                    file,
                ))
            })
            .await?;
            rate.psnr_db = psnr.is_finite().then_some(psnr);
            rate.ms_ssim = ms_ssim;
            reconstruction = file;
        }
        Ok(api::EncodeResult {
            bitstream,
            width,
            height,
            channels: 3,
            rate_distortion: Some(rate),
            model: Some(common::ModelRef {
                name: hosted.codec.model().name.clone(),
                version: hosted.version.clone(),
            }),
            reconstruction,
            latents: latent_tensor,
            warnings: if alpha {
                vec!["the alpha channel is not coded (RGB only)".into()]
            } else {
                Vec::new()
            },
        })
    }

    async fn decode_bitstream(
        &self,
        bitstream: Vec<u8>,
        format: i32,
    ) -> Result<(Vec<u8>, u32, u32, i32), Status> {
        self.check_bytes(bitstream.len(), "bitstream")?;
        let container = Container::parse(&bitstream)
            .map_err(|e| Status::invalid_argument(format!("bitstream: {e}")))?;
        let model = container
            .model
            .ok_or_else(|| Status::invalid_argument("bitstream names no model"))?;
        let hosted = self
            .codecs
            .iter()
            .find(|c| c.codec.model().name == model.name)
            .ok_or_else(|| {
                Status::not_found(format!(
                    "bitstream needs codec `{}`, which this server does not host",
                    model.name
                ))
            })?;
        if *hosted.codec.model() != model {
            return Err(Status::failed_precondition(format!(
                "bitstream was coded with another build of `{}` (decoder sha256 prefix {}); this server has {}",
                model.name,
                hex::encode(model.sha256_prefix),
                hex::encode(hosted.codec.model().sha256_prefix)
            )));
        }
        let codec = Arc::clone(&hosted.codec);
        let max_pixels = self.limits.max_pixels;
        let latents = run_blocking(move || {
            codec
                .decode_latents(&bitstream, max_pixels)
                .map_err(walloc_status)
        })
        .await?;
        let decoded = self.reconstruct(hosted, latents).await?;
        let (w, h) = decoded.dimensions();
        let file = run_blocking(move || output_file(&decoded, format)).await?;
        Ok((
            file,
            w,
            h,
            if format == 0 {
                api::ImageFormat::Png as i32
            } else {
                format
            },
        ))
    }
}

fn output_file(image: &terse_walloc::RgbImage, format: i32) -> Result<Vec<u8>, Status> {
    match api::ImageFormat::try_from(format) {
        Ok(api::ImageFormat::Unspecified | api::ImageFormat::Png) => {
            encode_image_file(image, ImageFormat::Png).map_err(walloc_status)
        }
        Ok(api::ImageFormat::Webp) => {
            encode_image_file(image, ImageFormat::WebP).map_err(walloc_status)
        }
        Ok(api::ImageFormat::RawRgb8) => Ok(image.as_raw().clone()),
        Err(_) => Err(Status::invalid_argument(format!(
            "unknown image format {format}"
        ))),
    }
}

/// Stream type of DecodeStream.
pub type DecodeChunks =
    Pin<Box<dyn Stream<Item = Result<api::DecodeStreamResponse, Status>> + Send>>;

#[tonic::async_trait]
impl api::image_service_server::ImageService for ImageService {
    async fn list_codecs(
        &self,
        _request: Request<api::ListCodecsRequest>,
    ) -> Result<Response<api::ListCodecsResponse>, Status> {
        Ok(Response::new(api::ListCodecsResponse {
            codecs: self
                .codecs
                .iter()
                .map(|c| api::CodecInfo {
                    name: c.codec.model().name.clone(),
                    model: Some(common::ModelRef {
                        name: c.codec.model().name.clone(),
                        version: c.version.clone(),
                    }),
                    description: c.description.clone(),
                    latent_channels: c.codec.weights().latent_dim as u32,
                    levels: c.codec.weights().levels,
                    latent_bits: c.codec.weights().bits,
                })
                .collect(),
        }))
    }

    async fn encode(
        &self,
        request: Request<api::EncodeRequest>,
    ) -> Result<Response<api::EncodeResponse>, Status> {
        let request = request.into_inner();
        let result = self
            .encode_image(request.image, request.options.unwrap_or_default())
            .await?;
        Ok(Response::new(api::EncodeResponse {
            result: Some(result),
        }))
    }

    async fn encode_stream(
        &self,
        request: Request<Streaming<api::EncodeStreamRequest>>,
    ) -> Result<Response<api::EncodeStreamResponse>, Status> {
        let mut stream = request.into_inner();
        let (options, image) = collect_upload(&mut stream, self.limits.max_bytes, "image").await?;
        let result = self.encode_image(image, options).await?;
        Ok(Response::new(api::EncodeStreamResponse {
            result: Some(result),
        }))
    }

    async fn decode(
        &self,
        request: Request<api::DecodeRequest>,
    ) -> Result<Response<api::DecodeResponse>, Status> {
        let request = request.into_inner();
        let (image, width, height, format) = self
            .decode_bitstream(request.bitstream, request.format)
            .await?;
        Ok(Response::new(api::DecodeResponse {
            image,
            format,
            width,
            height,
            channels: 3,
        }))
    }

    type DecodeStreamStream = DecodeChunks;

    async fn decode_stream(
        &self,
        request: Request<api::DecodeStreamRequest>,
    ) -> Result<Response<Self::DecodeStreamStream>, Status> {
        let request = request.into_inner();
        let (image, width, height, _) = self
            .decode_bitstream(request.bitstream, request.format)
            .await?;
        let chunks = download_chunks(&image, |chunk| api::DecodeStreamResponse {
            width,
            height,
            channels: 3,
            chunk: Some(chunk),
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }
}
