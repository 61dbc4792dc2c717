//! gRPC transport of `compress.image.v1.ImageService`: WaLLoC codecs found in the model
//! repository (task `walloc-image`), encoding in Rust, the decoder network through the model
//! runtime.

#![warn(missing_docs)]

use std::{pin::Pin, sync::Arc};

use terse_proto::{common::v1 as common, image::v1 as api};
use terse_runtime::ModelRegistry;
use terse_service_common::{collect_upload, download_chunks, run_blocking};
use terse_walloc::{ImageFormat, Latents, WallocImageCodec, decode_image_file, encode_image_file};
use terse_walloc_host::{Hosted, WallocModel, decode_bands, latent_tensor, walloc_status};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

pub use api::image_service_server::ImageServiceServer;

/// Task name of WaLLoC image decoders in model manifests.
pub const WALLOC_IMAGE_TASK: &str = WallocImageCodec::TASK;

/// Limits of the image service.
#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    /// Most pixels per image (input or decoded).
    pub max_pixels: u64,
    /// Most bytes of an image file or bitstream, unary or streamed.
    pub max_bytes: usize,
}

/// The service.
pub struct ImageService {
    codecs: Vec<Hosted<WallocImageCodec>>,
    limits: ImageLimits,
}

impl ImageService {
    /// Hosts every ready `walloc-image` model of the registry.
    pub fn from_registry(registry: &ModelRegistry, limits: ImageLimits) -> Result<Self, String> {
        Ok(Self {
            codecs: terse_walloc_host::host_all(registry)?,
            limits,
        })
    }

    /// Names of the hosted codecs.
    pub fn codec_names(&self) -> Vec<String> {
        terse_walloc_host::names(&self.codecs)
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
        hosted: &Hosted<WallocImageCodec>,
        latents: Latents,
    ) -> Result<terse_walloc::RgbImage, Status> {
        let normal = hosted.codec.normal_latents(&latents).into_dyn();
        let bands = decode_bands(&hosted.decoder, normal).await?;
        let codec = Arc::clone(&hosted.codec);
        let (width, height) = (latents.width, latents.height);
        run_blocking(move || {
            let bands = bands
                .into_dimensionality()
                .map_err(|e| Status::internal(format!("decoder output: {e}")))?;
            codec
                .reconstruct(bands.view(), width, height)
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
        let hosted = terse_walloc_host::pick(&self.codecs, &options.codec)?;
        let codec = Arc::clone(&hosted.codec);
        let max_pixels = self.limits.max_pixels;
        let requested_bits = options.latent_bits;
        let (original, alpha, bitstream, latents) = run_blocking(move || {
            let (rgb, alpha) = decode_image_file(&image, max_pixels).map_err(walloc_status)?;
            let shift = codec.shift_for(requested_bits).map_err(walloc_status)?;
            let (bitstream, latents) = codec.encode_at(&rgb, shift).map_err(walloc_status)?;
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
        let latent_tensor = options
            .return_latents
            .then(|| latent_tensor(&latents.values, latents.shift));
        let latent_bits = hosted.codec.weights().bits - latents.shift;
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
            latent_bits,
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
        let hosted = terse_walloc_host::codec_for_bitstream(&self.codecs, &bitstream)?;
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
