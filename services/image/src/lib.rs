//! gRPC transport of `compress.image.v1.ImageService` over the codecs found in the model
//! repository: WaLLoC (task `walloc-image`, the fast mode: encoding in Rust, the decoder network
//! through the model runtime) and the MLIC-style codecs (task `mlic-image` + `mlic-analysis`,
//! the high-quality mode: both networks through the runtime, the entropy model in integers).

mod mlic;

use std::{pin::Pin, sync::Arc};

use terse_entropy::CodecId;
use terse_mlic::MlicCodec;
use terse_proto::{common::v1 as common, image::v1 as api};
use terse_runtime::ModelRegistry;
use terse_service_common::{
    MemoryBudget, collect_upload, declared_fields, download_chunks, echo, run_blocking,
};
use terse_walloc::{ImageFormat, Latents, WallocImageCodec, decode_image_file, encode_image_file};
use terse_walloc_host::{Hosted, WallocModel, decode_bands, latent_tensor, walloc_status};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

pub use api::image_service_server::ImageServiceServer;
pub use mlic::{HostedMlic, MLIC_ANALYSIS_TASK, MLIC_TASK, host_mlic};

/// Task name of WaLLoC image decoders in model manifests.
pub const WALLOC_IMAGE_TASK: &str = WallocImageCodec::TASK;

/// Model tasks this service hosts (a failed model of one of them makes the service NOT_SERVING).
pub const MODEL_TASKS: &[&str] = &[WALLOC_IMAGE_TASK, MLIC_TASK, MLIC_ANALYSIS_TASK];

/// Limits of the image service.
#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    /// Most pixels per image (input or decoded).
    pub max_pixels: u64,
    /// Most bytes of an image file or bitstream, unary or streamed.
    pub max_bytes: usize,
}

/// Peak working memory per pixel in bytes, measured by `scripts/cost-model image` (the rise
/// of a fresh server's peak RSS over one request, 1024² and 2048² images) plus about 10 %.
/// Decoding runs the synthesis network, so an encode that measures quality or returns the
/// reconstruction costs as much as a decode.
mod cost {
    /// MLIC encode (analysis network and entropy coding).
    pub const MLIC_ENCODE: u64 = 480;
    /// MLIC decode (synthesis network).
    pub const MLIC_DECODE: u64 = 1100;
    /// WaLLoC encode (wavelet and linear encoder in Rust).
    pub const WALLOC_ENCODE: u64 = 70;
    /// WaLLoC decode (decoder network).
    pub const WALLOC_DECODE: u64 = 220;
}

/// The service.
pub struct ImageService {
    codecs: Vec<Hosted<WallocImageCodec>>,
    mlic: Vec<HostedMlic>,
    limits: ImageLimits,
    memory: MemoryBudget,
}

/// Width × height an image file declares in its header (0 when unreadable: decoding then
/// refuses it with the precise reason).
fn declared_pixels(file: &[u8]) -> (u64, String) {
    image::ImageReader::new(std::io::Cursor::new(file))
        .with_guessed_format()
        .ok()
        .and_then(|reader| reader.into_dimensions().ok())
        .map_or((0, "an image".into()), |(w, h)| {
            (u64::from(w) * u64::from(h), format!("{w}x{h} pixels"))
        })
}

/// Width × height a bitstream's header declares (0 when unreadable).
fn bitstream_pixels(bitstream: &[u8]) -> (u64, String) {
    declared_fields(bitstream, ["width", "height"]).map_or((0, "a bitstream".into()), |[w, h]| {
        (w.saturating_mul(h), format!("{w}x{h} pixels"))
    })
}

impl ImageService {
    /// Hosts every ready `walloc-image` and `mlic-image` model of the registry; calls reserve
    /// their working memory from `memory`.
    pub fn from_registry(
        registry: &ModelRegistry,
        limits: ImageLimits,
        memory: MemoryBudget,
    ) -> Result<Self, String> {
        Ok(Self {
            codecs: terse_walloc_host::host_all(registry)?,
            mlic: mlic::host_mlic(registry)?,
            limits,
            memory,
        })
    }

    /// Reserves `bytes_per_pixel` × `pixels` of working memory for this call (its size being
    /// `what`), before any work.
    fn reserve(
        &self,
        (pixels, size): (u64, String),
        bytes_per_pixel: u64,
        what: &str,
    ) -> Result<terse_service_common::Reservation, Status> {
        self.memory.reserve(
            pixels.saturating_mul(bytes_per_pixel),
            &format!("{what} of {size}"),
        )
    }

    /// Names of the hosted codecs.
    pub fn codec_names(&self) -> Vec<String> {
        let mut names = terse_walloc_host::names(&self.codecs);
        names.extend(self.mlic.iter().map(|m| m.codec.model().name.clone()));
        names
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

    /// PSNR, MS-SSIM and the reconstruction file, as `options` ask; with a warning when MS-SSIM
    /// had to use fewer than its 5 scales (an image under 161 pixels per side).
    async fn measure(
        original: terse_walloc::RgbImage,
        decoded: terse_walloc::RgbImage,
        options: &api::EncodeOptions,
        rate: &mut common::RateDistortion,
    ) -> Result<(Vec<u8>, Vec<String>), Status> {
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
                terse_walloc::ms_ssim_scaled(&original, &decoded),
                file,
            ))
        })
        .await?;
        rate.psnr_db = psnr.is_finite().then_some(psnr);
        rate.ms_ssim = ms_ssim.map(|(value, _)| value);
        let note = match ms_ssim {
            Some((_, scales)) if scales < 5 => vec![format!(
                "MS-SSIM is computed over {scales} of its 5 scales (weights renormalised): the image is under 161 pixels per side"
            )],
            Some(_) => Vec::new(),
            None => {
                vec!["MS-SSIM is not defined for an image of 10 pixels or less per side".into()]
            }
        };
        Ok((file, note))
    }

    fn find_mlic(&self, name: &str) -> Option<&HostedMlic> {
        self.mlic.iter().find(|m| m.codec.model().name == name)
    }

    async fn encode_image(
        &self,
        image: Vec<u8>,
        options: api::EncodeOptions,
    ) -> Result<api::EncodeResult, Status> {
        self.check_bytes(image.len(), "image")?;
        if let Some(hosted) = self.find_mlic(&options.codec) {
            return self.encode_mlic(hosted, image, options).await;
        }
        if !options.codec.is_empty()
            && !terse_walloc_host::names(&self.codecs).contains(&options.codec)
        {
            return Err(Status::not_found(format!(
                "codec `{}` is not hosted (available: {})",
                echo(&options.codec),
                self.codec_names().join(", ")
            )));
        }
        let hosted = terse_walloc_host::pick(&self.codecs, &options.codec)?;
        let decodes = options.measure_quality || options.return_reconstruction;
        let _memory = self.reserve(
            declared_pixels(&image),
            if decodes {
                cost::WALLOC_DECODE
            } else {
                cost::WALLOC_ENCODE
            },
            "WaLLoC encode",
        )?;
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
        let mut rate = rate_of(bitstream.len(), width, height);
        let latent_tensor = options
            .return_latents
            .then(|| latent_tensor(&latents.values, latents.shift));
        let latent_bits = hosted.codec.weights().bits - latents.shift;
        let mut reconstruction = Vec::new();
        let mut notes = Vec::new();
        if decodes {
            let decoded = self.reconstruct(hosted, latents).await?;
            (reconstruction, notes) = Self::measure(original, decoded, &options, &mut rate).await?;
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
            warnings: alpha_warning(alpha).into_iter().chain(notes).collect(),
        })
    }

    /// Encodes with an MLIC rate point: analysis network, integer entropy coding, and the
    /// synthesis network when quality or the reconstruction is asked for.
    async fn encode_mlic(
        &self,
        hosted: &HostedMlic,
        image: Vec<u8>,
        options: api::EncodeOptions,
    ) -> Result<api::EncodeResult, Status> {
        if options.latent_bits != 0 {
            return Err(Status::invalid_argument(format!(
                "latent_bits applies to WaLLoC codecs; MLIC rate points are separate codecs ({})",
                self.mlic
                    .iter()
                    .map(|m| m.codec.model().name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let _memory = self.reserve(
            declared_pixels(&image),
            if options.measure_quality || options.return_reconstruction {
                cost::MLIC_DECODE
            } else {
                cost::MLIC_ENCODE
            },
            "MLIC encode",
        )?;
        let max_pixels = self.limits.max_pixels;
        let codec = Arc::clone(&hosted.codec);
        let (original, alpha, inputs) = run_blocking(move || {
            let (rgb, alpha) = decode_image_file(&image, max_pixels).map_err(walloc_status)?;
            let inputs = codec.analysis_inputs(&rgb).map_err(mlic::mlic_status)?;
            Ok((rgb, alpha, inputs))
        })
        .await?;
        let (width, height) = original.dimensions();
        let names = hosted.codec.analysis_input_names();
        let outputs = mlic::run_stage(&hosted.analysis, names, inputs).await?;
        let codec = Arc::clone(&hosted.codec);
        let encoded = run_blocking(move || {
            codec
                .encode_latents(width, height, outputs)
                .map_err(mlic::mlic_status)
        })
        .await?;
        let mut rate = rate_of(encoded.bitstream.len(), width, height);
        let latents = options.return_latents.then(|| {
            let y_hat = encoded.y_hat.index_axis(ndarray::Axis(0), 0);
            common::Tensor {
                name: "y_hat".into(),
                datatype: common::DataType::Fp32 as i32,
                shape: y_hat.shape().iter().map(|&d| d as i64).collect(),
                raw_contents: y_hat.iter().flat_map(|v| v.to_le_bytes()).collect(),
            }
        });
        let mut reconstruction = Vec::new();
        let mut notes = Vec::new();
        if options.measure_quality || options.return_reconstruction {
            let outputs = mlic::run_stage(
                &hosted.synthesis,
                &["y_hat"],
                vec![encoded.y_hat.into_dyn()],
            )
            .await?;
            let decoded = run_blocking(move || {
                MlicCodec::reconstruct(outputs, width, height).map_err(mlic::mlic_status)
            })
            .await?;
            (reconstruction, notes) = Self::measure(original, decoded, &options, &mut rate).await?;
        }
        Ok(api::EncodeResult {
            bitstream: encoded.bitstream,
            width,
            height,
            channels: 3,
            rate_distortion: Some(rate),
            model: Some(common::ModelRef {
                name: hosted.model.clone(),
                version: hosted.version.clone(),
            }),
            reconstruction,
            latents,
            latent_bits: 0,
            warnings: alpha_warning(alpha).into_iter().chain(notes).collect(),
        })
    }

    /// Decodes an MLIC bitstream to an image.
    async fn decode_mlic(&self, bitstream: Vec<u8>) -> Result<terse_walloc::RgbImage, Status> {
        let hosted = terse_walloc_host::find_by_tag(&self.mlic, |m| m.codec.model(), &bitstream)?;
        let codec = Arc::clone(&hosted.codec);
        let max_pixels = self.limits.max_pixels;
        let (y_hat, width, height) = run_blocking(move || {
            codec
                .decode_latents(&bitstream, max_pixels)
                .map_err(mlic::mlic_status)
        })
        .await?;
        let outputs =
            mlic::run_stage(&hosted.synthesis, &["y_hat"], vec![y_hat.into_dyn()]).await?;
        run_blocking(move || {
            MlicCodec::reconstruct(outputs, width, height).map_err(mlic::mlic_status)
        })
        .await
    }

    async fn decode_bitstream(
        &self,
        bitstream: Vec<u8>,
        format: i32,
    ) -> Result<(Vec<u8>, u32, u32, i32), Status> {
        self.check_bytes(bitstream.len(), "bitstream")?;
        let codec = terse_service_common::expect_codec_family(
            &bitstream,
            &[CodecId::WallocImage, CodecId::MlicImage],
        )?;
        let is_mlic = codec == Some(CodecId::MlicImage);
        let (bytes_per_pixel, what) = if is_mlic {
            (cost::MLIC_DECODE, "MLIC decode")
        } else {
            (cost::WALLOC_DECODE, "WaLLoC decode")
        };
        let _memory = self.reserve(bitstream_pixels(&bitstream), bytes_per_pixel, what)?;
        let decoded = if is_mlic {
            self.decode_mlic(bitstream).await?
        } else {
            let hosted = terse_walloc_host::codec_for_bitstream(&self.codecs, &bitstream)?;
            let codec = Arc::clone(&hosted.codec);
            let max_pixels = self.limits.max_pixels;
            let latents = run_blocking(move || {
                codec
                    .decode_latents(&bitstream, max_pixels)
                    .map_err(walloc_status)
            })
            .await?;
            self.reconstruct(hosted, latents).await?
        };
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

/// Bytes and bits per pixel of a bitstream for a `width × height` RGB image.
fn rate_of(bytes: usize, width: u32, height: u32) -> common::RateDistortion {
    common::RateDistortion {
        compressed_bytes: bytes as u64,
        original_bytes: u64::from(width) * u64::from(height) * 3,
        bits_per_pixel: Some(bytes as f64 * 8.0 / (f64::from(width) * f64::from(height))),
        ..Default::default()
    }
}

/// The warning an input with an alpha channel gets.
fn alpha_warning(alpha: bool) -> Vec<String> {
    if alpha {
        vec!["the alpha channel is not coded (RGB only)".into()]
    } else {
        Vec::new()
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
                    family: "walloc".into(),
                })
                .chain(self.mlic.iter().map(|m| api::CodecInfo {
                    name: m.codec.model().name.clone(),
                    model: Some(common::ModelRef {
                        name: m.model.clone(),
                        version: m.version.clone(),
                    }),
                    description: m.description.clone(),
                    latent_channels: m.codec.entropy().latent_channels() as u32,
                    levels: 4,
                    latent_bits: 0,
                    family: "mlic".into(),
                }))
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
