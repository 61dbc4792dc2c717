//! The MLIC codec as a [`terse_codec::Codec`]: one rate point with its analysis and synthesis
//! networks.

use std::sync::Arc;

use image::RgbImage;
use ndarray::{Array4, ArrayD};
use terse_codec::{
    Codec, CodecInfo, DecodeCall, DecodeFuture, EncodeCall, EncodeFuture, Encoding, ModelRef,
    UnitCost, Work,
};
use terse_core::{
    Classify, Error, ErrorKind, Network, TensorData, Worker, on_worker_classified, run_f32,
};
use terse_entropy::CodecId;

use crate::{MlicCodec, MlicError};

impl Classify for MlicError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Image(_) | Self::Bitstream(_) => ErrorKind::InvalidInput,
            Self::TooLarge(_) => ErrorKind::TooLarge,
            Self::Entropy(e) => e.kind(),
            Self::Model(_) | Self::Network { .. } => ErrorKind::Internal,
        }
    }
}

/// Peak working memory per pixel in bytes, measured by `scripts/cost_model.py image` (the
/// rise of a fresh server's peak RSS over one request, 1024² and 2048² images) plus about
/// 10 %: an encode runs the analysis network and entropy coding, a decode the synthesis
/// network.
const COST_PER_PIXEL: UnitCost = UnitCost::new(480, 1100);

/// An MLIC rate point with its networks: analysis (`g_a` + `h_a`: image, and a
/// variable-rate model's gains → `[y, z]`) and synthesis (`g_s`: `y_hat` → image).
pub struct MlicImage {
    codec: Arc<MlicCodec>,
    analysis: Arc<dyn Network>,
    synthesis: Arc<dyn Network>,
    info: CodecInfo,
}

impl MlicImage {
    /// The rate point `codec` of `model` with its two networks.
    pub fn new(
        codec: MlicCodec,
        analysis: Arc<dyn Network>,
        synthesis: Arc<dyn Network>,
        model: ModelRef,
        description: &str,
    ) -> Self {
        let description = match codec.rate() {
            Some(rate) => format!(
                "Rate point {} (lambda {}) of {}. {description}",
                rate.index + 1,
                rate.lambda,
                model.name,
            ),
            None => description.to_string(),
        };
        let learned = CodecInfo::learned(
            codec.model(),
            &model.version,
            "mlic",
            CodecId::MlicImage,
            description,
        );
        let info = CodecInfo {
            model,
            latent_channels: codec.entropy().latent_channels() as u32,
            levels: 4,
            channels: 3,
            ..learned
        };
        Self {
            codec: Arc::new(codec),
            analysis,
            synthesis,
            info,
        }
    }

    /// The Rust side of the codec (entropy model, container).
    pub fn codec(&self) -> &MlicCodec {
        &self.codec
    }

    /// Runs the synthesis network on `y_hat` and crops its image to `width × height`.
    async fn synthesize(
        &self,
        y_hat: Array4<f32>,
        width: u32,
        height: u32,
        worker: &dyn Worker,
    ) -> Result<RgbImage, Error> {
        let outputs = run_f32(self.synthesis.as_ref(), &["y_hat"], vec![y_hat.into_dyn()]).await?;
        on_worker_classified(worker, move || {
            MlicCodec::reconstruct(outputs, width, height)
        })
        .await
    }
}

fn y_hat_tensor(y_hat: &Array4<f32>) -> TensorData {
    TensorData::from_f32_array("y_hat", y_hat.index_axis(ndarray::Axis(0), 0).into_dyn())
}

impl Codec for MlicImage {
    type Media = RgbImage;
    type Knobs = ();

    fn info(&self) -> &CodecInfo {
        &self.info
    }

    fn working_memory(&self, work: Work, shape: &[u64]) -> u64 {
        work.memory(shape, COST_PER_PIXEL)
    }

    fn encode<'a>(&'a self, call: EncodeCall<'a, RgbImage>) -> EncodeFuture<'a, RgbImage> {
        let (media, options, worker) = (call.media, call.options, call.worker);
        Box::pin(async move {
            if options.latent_bits != 0 {
                return Err(Error::invalid(
                    "latent_bits applies to WaLLoC codecs; MLIC rate points are separate codecs \
                     (pick one by name)",
                ));
            }
            let (width, height) = media.dimensions();
            let codec = Arc::clone(&self.codec);
            let inputs: Vec<ArrayD<f32>> =
                on_worker_classified(worker, move || codec.analysis_inputs(&media)).await?;
            let names = self.codec.analysis_input_names();
            let outputs = run_f32(self.analysis.as_ref(), names, inputs).await?;
            let codec = Arc::clone(&self.codec);
            let encoded =
                on_worker_classified(worker, move || codec.encode_latents(width, height, outputs))
                    .await?;
            let latents = options.latents.then(|| y_hat_tensor(&encoded.y_hat));
            let reconstruction = match options.reconstruct {
                true => Some(
                    self.synthesize(encoded.y_hat, width, height, worker)
                        .await?,
                ),
                false => None,
            };
            Ok(Encoding {
                bitstream: encoded.bitstream,
                reconstruction,
                latents,
                latent_bits: 0,
                reference: None,
            })
        })
    }

    fn decode<'a>(&'a self, call: DecodeCall<'a>) -> DecodeFuture<'a, RgbImage> {
        let (bitstream, max_units, worker) = (call.bitstream, call.max_units, call.worker);
        Box::pin(async move {
            let codec = Arc::clone(&self.codec);
            let (y_hat, width, height) =
                on_worker_classified(worker, move || codec.decode_latents(&bitstream, max_units))
                    .await?;
            self.synthesize(y_hat, width, height, worker).await
        })
    }
}
