//! gRPC transport of `compress.image.v1.ImageService` over the image codecs hosted from the
//! model repository (`terse_hosting::image_codecs`: WaLLoC, the fast mode, and the MLIC-style
//! rate points, the high-quality mode): request conversion, limits, working-memory
//! reservations and status mapping. The codecs themselves are `terse_codec::Codec`s.

use std::sync::Arc;

use terse_codec::{CodecRegistry, DynCodec, EncodeOptions, Work};
use terse_entropy::CodecId;
use terse_proto::{common::v1 as common, image::v1 as api};
use terse_service_common::prelude::*;
use terse_walloc::{ImageFormat, RgbImage, decode_image_file, encode_image_file};

pub use api::image_service_server::ImageServiceServer;

/// `[image]`: limits of the image codec service.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageLimits {
    /// Most pixels per image, input or decoded; more gets RESOURCE_EXHAUSTED.
    pub max_pixels: u64,
    /// Most bytes of one image file or bitstream, unary or streamed.
    pub max_bytes: usize,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_pixels: 64 << 20,
            max_bytes: 256 << 20,
        }
    }
}

/// The service.
pub struct ImageService {
    host: CodecHost<ImageLimits, RgbImage>,
}

/// Width and height an image file declares in its header (0 × 0 when unreadable: decoding
/// then refuses it with the precise reason).
fn declared_size(file: &[u8]) -> [u64; 2] {
    image::ImageReader::new(std::io::Cursor::new(file))
        .with_guessed_format()
        .ok()
        .and_then(|reader| reader.into_dimensions().ok())
        .map_or([0, 0], |(w, h)| [u64::from(w), u64::from(h)])
}

impl ImageService {
    /// Serves `codecs` (any implementations: tests host codecs with fake networks).
    pub fn new(codecs: CodecRegistry<RgbImage>, limits: ImageLimits, memory: MemoryBudget) -> Self {
        Self {
            host: CodecHost::new(codecs, limits, limits.max_bytes, memory),
        }
    }

    /// Reserves the working memory `codec` estimates for `work` on a `size` image, before any
    /// work.
    fn reserve(
        &self,
        codec: &DynCodec<RgbImage>,
        work: Work,
        [width, height]: [u64; 2],
    ) -> Result<Reservation, Status> {
        let what = match work {
            Work::Decode => "decode",
            Work::Encode | Work::EncodeAndDecode => "encode",
        };
        let family = codec.info().family;
        let what = format!("{family} {what} of {width}x{height} pixels");
        self.host.reserve(codec, work, &[width, height], &what)
    }

    /// Names of the hosted codecs.
    pub fn codec_names(&self) -> Vec<String> {
        self.host.names()
    }

    /// PSNR, MS-SSIM and the reconstruction file, as `options` ask; with a warning when MS-SSIM
    /// had to use fewer than its 5 scales (an image under 161 pixels per side).
    async fn measure(
        original: Arc<RgbImage>,
        decoded: RgbImage,
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

    async fn encode_image(
        &self,
        image: Vec<u8>,
        options: api::EncodeOptions,
    ) -> Result<api::EncodeResult, Status> {
        self.host.check_bytes(image.len(), "image")?;
        let codec = self.host.pick(&options.codec)?;
        let coding = EncodeOptions {
            latent_bits: options.latent_bits,
            reconstruct: options.measure_quality || options.return_reconstruction,
            latents: options.return_latents,
            knobs: (),
        };
        let _memory = self.reserve(codec.as_ref(), coding.work(), declared_size(&image))?;
        let max_pixels = self.host.limits.max_pixels;
        let (original, alpha) =
            run_blocking(move || decode_image_file(&image, max_pixels).map_err(|e| status_of(&e)))
                .await?;
        let original = Arc::new(original);
        let encoding = encode_in_call(codec.as_ref(), Arc::clone(&original), coding).await?;
        let (width, height) = original.dimensions();
        let mut rate = rate_of(encoding.bitstream.len(), width, height);
        let mut reconstruction = Vec::new();
        let mut notes = Vec::new();
        if let Some(decoded) = encoding.reconstruction {
            (reconstruction, notes) = Self::measure(original, decoded, &options, &mut rate).await?;
        }
        let info = codec.info();
        Ok(api::EncodeResult {
            bitstream: encoding.bitstream,
            width,
            height,
            channels: 3,
            rate_distortion: Some(rate),
            model: Some(model_ref(&info.model)),
            reconstruction,
            latents: encoding.latents.map(tensor_to_proto),
            latent_bits: encoding.latent_bits,
            warnings: alpha_warning(alpha).into_iter().chain(notes).collect(),
        })
    }

    async fn decode_bitstream(
        &self,
        bitstream: Vec<u8>,
        format: i32,
    ) -> Result<(Vec<u8>, u32, u32, i32), Status> {
        self.host.check_bytes(bitstream.len(), "bitstream")?;
        terse_service_common::expect_codec_family(
            &bitstream,
            &[CodecId::WallocImage, CodecId::MlicImage],
        )?;
        let codec = self.host.for_bitstream(&bitstream)?;
        let size = declared_fields(&bitstream, ["width", "height"]).unwrap_or_default();
        let _memory = self.reserve(codec.as_ref(), Work::Decode, size)?;
        let decoded =
            decode_in_call(codec.as_ref(), bitstream, self.host.limits.max_pixels).await?;
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

fn output_file(image: &RgbImage, format: i32) -> Result<Vec<u8>, Status> {
    match api::ImageFormat::try_from(format) {
        Ok(api::ImageFormat::Unspecified | api::ImageFormat::Png) => {
            encode_image_file(image, ImageFormat::Png).map_err(|e| status_of(&e))
        }
        Ok(api::ImageFormat::Webp) => {
            encode_image_file(image, ImageFormat::WebP).map_err(|e| status_of(&e))
        }
        Ok(api::ImageFormat::RawRgb8) => Ok(image.as_raw().clone()),
        Err(_) => Err(Status::invalid_argument(format!(
            "unknown image format {format}"
        ))),
    }
}

rpcs! {
    impl api::image_service_server::ImageService for ImageService {
        fn list_codecs(self, _request: api::ListCodecsRequest) -> api::ListCodecsResponse {
            let codecs = self.host.codecs.infos().map(codec_info).collect();
            api::ListCodecsResponse { codecs }
        }

        fn encode(self, request: api::EncodeRequest) -> api::EncodeResponse {
            let options = request.options.unwrap_or_default();
            let result = self.encode_image(request.image, options).await?;
            api::EncodeResponse { result: Some(result) }
        }

        fn encode_stream(
            self,
            stream: Streaming<api::EncodeStreamRequest>,
        ) -> api::EncodeStreamResponse {
            let (options, image) = self.host.upload(stream, "image").await?;
            api::EncodeStreamResponse { result: Some(self.encode_image(image, options).await?) }
        }

        fn decode(self, request: api::DecodeRequest) -> api::DecodeResponse {
            let (image, width, height, format) =
                self.decode_bitstream(request.bitstream, request.format).await?;
            api::DecodeResponse { image, format, width, height, channels: 3 }
        }

        fn decode_stream(
            self,
            request: api::DecodeStreamRequest,
        ) -> stream DecodeStreamStream of api::DecodeStreamResponse {
            let (image, width, height, _) =
                self.decode_bitstream(request.bitstream, request.format).await?;
            download(&image, |chunk| api::DecodeStreamResponse {
                width,
                height,
                channels: 3,
                chunk: Some(chunk),
            })
        }
    }
}

/// The API's description of a hosted codec.
fn codec_info(info: &terse_codec::CodecInfo) -> api::CodecInfo {
    api::CodecInfo {
        name: info.name.clone(),
        model: Some(model_ref(&info.model)),
        description: info.description.clone(),
        latent_channels: info.latent_channels,
        levels: info.levels,
        latent_bits: info.latent_bits,
        family: info.family.into(),
    }
}

impl HostedService for ImageLimits {
    fn model_tasks(&self) -> &'static [&'static str] {
        terse_hosting::IMAGE_TASKS
    }

    fn add_to(&self, host: &Host, routes: &mut RoutesBuilder) -> Result<String, String> {
        let codecs = terse_hosting::image_codecs(host.registry)?;
        let service = ImageService::new(codecs, *self, host.memory.clone());
        let hosted = format!("image codecs {:?}", service.codec_names());
        terse_service_common::add_service!(routes, host, ImageServiceServer, service, hosted)
    }
}

#[cfg(test)]
mod tests;
