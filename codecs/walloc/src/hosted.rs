//! The WaLLoC codecs as [`terse_codec::Codec`]s: the Rust side with its decoder network.

use std::sync::Arc;

use ndarray::{Array3, ArrayD, Axis};
use terse_audio_io::AudioClip;
use terse_codec::{Codec, CodecInfo, EncodeOptions, Encoding, ModelRef, Work};
use terse_core::{BoxFuture, Classify, Error, ErrorKind, Network, TensorData, Worker, on_worker};
use terse_entropy::{CodecId, ModelTag};

use crate::{RgbImage, WallocAudioCodec, WallocError, WallocImageCodec};

impl Classify for WallocError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::InvalidInput,
            Self::TooLarge(_) => ErrorKind::TooLarge,
            Self::Entropy(e) => e.kind(),
            Self::Model(_) | Self::Decoder(_) => ErrorKind::Internal,
        }
    }
}

fn classified(e: WallocError) -> Error {
    Error::from_classified(&e)
}

/// Runs blocking codec work on `worker`.
async fn blocking<T: Send + 'static>(
    worker: &dyn Worker,
    work: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> Result<T, Error> {
    on_worker(worker, work).await?.map_err(classified)
}

/// The integer latents `[L, h, w]` as an INT32 tensor on the model's full-precision scale
/// (values of a coarser grid multiplied back by `2^shift`).
pub fn latent_tensor(values: &Array3<i32>, shift: u32) -> TensorData {
    let (l, h, w) = values.dim();
    TensorData {
        name: "latents".into(),
        datatype: terse_core::DataType::Int32,
        shape: vec![l as i64, h as i64, w as i64],
        bytes: values
            .iter()
            .flat_map(|v| (v << shift).to_le_bytes())
            .collect(),
    }
}

/// Runs the decoder network on normal-domain latents (a batch of one) and returns the bands of
/// that one item.
async fn decode_bands(decoder: &dyn Network, normal: ArrayD<f32>) -> Result<ArrayD<f32>, Error> {
    let ndim = normal.ndim();
    let bands = terse_core::run_f32(decoder, &["normal_latent"], vec![normal])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Error::internal(format!("{} returned no output", decoder.name())))?;
    if bands.shape().first() != Some(&1) || bands.ndim() != ndim {
        return Err(Error::internal(format!(
            "decoder {} returned shape {:?}, expected a batch of one of rank {ndim}",
            decoder.name(),
            bands.shape()
        )));
    }
    Ok(bands.index_axis_move(Axis(0), 0))
}

fn info(
    model: &ModelTag,
    id: CodecId,
    version: &str,
    description: &str,
    weights: &crate::EncoderWeights,
    sample_rate: u32,
) -> CodecInfo {
    CodecInfo {
        name: model.name.clone(),
        family: "walloc",
        id,
        model: ModelRef {
            name: model.name.clone(),
            version: version.into(),
        },
        description: description.into(),
        latent_channels: weights.latent_dim as u32,
        levels: weights.levels,
        latent_bits: weights.bits,
        sample_rate,
        channels: weights.channels as u32,
    }
}

/// Peak working memory per pixel (image) or sample (audio) in bytes, measured by
/// `scripts/cost_model.py` (the rise of a fresh server's peak RSS over one request: 1024² and
/// 2048² images; 30 s and 120 s of 48 kHz stereo) plus about 10 %. Decoding runs the decoder
/// network, so an encode that decodes again costs as much as a decode.
mod cost {
    /// Image encode (wavelet and linear encoder in Rust).
    pub const IMAGE_ENCODE: u64 = 70;
    /// Image decode (decoder network).
    pub const IMAGE_DECODE: u64 = 220;
    /// Audio encode.
    pub const AUDIO_ENCODE: u64 = 27;
    /// Audio decode.
    pub const AUDIO_DECODE: u64 = 60;
}

fn per_unit(work: Work, encode: u64, decode: u64) -> u64 {
    match work {
        Work::Encode => encode,
        Work::EncodeAndDecode | Work::Decode => decode,
    }
}

fn product(shape: &[u64]) -> u64 {
    shape.iter().fold(1u64, |n, &d| n.saturating_mul(d))
}

/// A WaLLoC image codec with its decoder network.
pub struct WallocImage {
    codec: Arc<WallocImageCodec>,
    decoder: Arc<dyn Network>,
    info: CodecInfo,
}

impl WallocImage {
    /// The codec `codec` decoding through `decoder`, from a model of `version` described by
    /// `description`.
    pub fn new(
        codec: WallocImageCodec,
        decoder: Arc<dyn Network>,
        version: &str,
        description: &str,
    ) -> Self {
        let info = info(
            codec.model(),
            CodecId::WallocImage,
            version,
            description,
            codec.weights(),
            0,
        );
        Self {
            codec: Arc::new(codec),
            decoder,
            info,
        }
    }

    /// The Rust side of the codec.
    pub fn codec(&self) -> &WallocImageCodec {
        &self.codec
    }

    async fn reconstruct(
        &self,
        latents: crate::Latents,
        worker: &dyn Worker,
    ) -> Result<RgbImage, Error> {
        let normal = self.codec.normal_latents(&latents).into_dyn();
        let bands = decode_bands(self.decoder.as_ref(), normal).await?;
        let codec = Arc::clone(&self.codec);
        blocking(worker, move || {
            let bands = bands
                .into_dimensionality()
                .map_err(|e| WallocError::Decoder(format!("decoder output: {e}")))?;
            codec.reconstruct(bands.view(), latents.width, latents.height)
        })
        .await
    }
}

impl Codec for WallocImage {
    type Media = RgbImage;

    fn info(&self) -> &CodecInfo {
        &self.info
    }

    fn tag(&self) -> Option<&ModelTag> {
        Some(self.codec.model())
    }

    fn working_memory(&self, work: Work, shape: &[u64]) -> u64 {
        product(shape).saturating_mul(per_unit(work, cost::IMAGE_ENCODE, cost::IMAGE_DECODE))
    }

    fn encode<'a>(
        &'a self,
        media: Arc<RgbImage>,
        options: EncodeOptions,
        worker: &'a dyn Worker,
    ) -> BoxFuture<'a, Result<Encoding<RgbImage>, Error>> {
        Box::pin(async move {
            let codec = Arc::clone(&self.codec);
            let (bitstream, latents) = blocking(worker, move || {
                let shift = codec.shift_for(options.latent_bits)?;
                codec.encode_at(&media, shift)
            })
            .await?;
            let latent_tensor = options
                .latents
                .then(|| latent_tensor(&latents.values, latents.shift));
            let latent_bits = self.codec.weights().bits - latents.shift;
            let reconstruction = match options.reconstruct {
                true => Some(self.reconstruct(latents, worker).await?),
                false => None,
            };
            Ok(Encoding {
                bitstream,
                reconstruction,
                latents: latent_tensor,
                latent_bits,
            })
        })
    }

    fn decode<'a>(
        &'a self,
        bitstream: Vec<u8>,
        max_units: u64,
        worker: &'a dyn Worker,
    ) -> BoxFuture<'a, Result<RgbImage, Error>> {
        Box::pin(async move {
            let codec = Arc::clone(&self.codec);
            let latents =
                blocking(worker, move || codec.decode_latents(&bitstream, max_units)).await?;
            self.reconstruct(latents, worker).await
        })
    }
}

/// A WaLLoC audio codec with its decoder network.
pub struct WallocAudio {
    codec: Arc<WallocAudioCodec>,
    decoder: Arc<dyn Network>,
    info: CodecInfo,
}

impl WallocAudio {
    /// The codec `codec` decoding through `decoder`, from a model of `version` described by
    /// `description`.
    pub fn new(
        codec: WallocAudioCodec,
        decoder: Arc<dyn Network>,
        version: &str,
        description: &str,
    ) -> Self {
        let info = info(
            codec.model(),
            CodecId::WallocAudio,
            version,
            description,
            codec.weights(),
            codec.sample_rate(),
        );
        Self {
            codec: Arc::new(codec),
            decoder,
            info,
        }
    }

    /// The Rust side of the codec.
    pub fn codec(&self) -> &WallocAudioCodec {
        &self.codec
    }

    async fn reconstruct(
        &self,
        latents: crate::AudioLatents,
        worker: &dyn Worker,
    ) -> Result<AudioClip, Error> {
        let normal = self.codec.normal_latents(&latents).into_dyn();
        let bands = decode_bands(self.decoder.as_ref(), normal).await?;
        let codec = Arc::clone(&self.codec);
        blocking(worker, move || {
            let bands: ndarray::Array2<f32> = bands
                .into_dimensionality()
                .map_err(|e| WallocError::Decoder(format!("decoder output: {e}")))?;
            Ok(AudioClip {
                sample_rate: latents.sample_rate,
                samples: codec.reconstruct(bands.view(), &latents)?,
            })
        })
        .await
    }
}

impl Codec for WallocAudio {
    type Media = AudioClip;

    fn info(&self) -> &CodecInfo {
        &self.info
    }

    fn tag(&self) -> Option<&ModelTag> {
        Some(self.codec.model())
    }

    fn working_memory(&self, work: Work, shape: &[u64]) -> u64 {
        product(shape).saturating_mul(per_unit(work, cost::AUDIO_ENCODE, cost::AUDIO_DECODE))
    }

    fn encode<'a>(
        &'a self,
        media: Arc<AudioClip>,
        options: EncodeOptions,
        worker: &'a dyn Worker,
    ) -> BoxFuture<'a, Result<Encoding<AudioClip>, Error>> {
        Box::pin(async move {
            let codec = Arc::clone(&self.codec);
            let (bitstream, latents) = blocking(worker, move || {
                let shift = codec.shift_for(options.latent_bits)?;
                codec.encode(media.samples.view(), media.sample_rate, shift)
            })
            .await?;
            let latent_tensor = options
                .latents
                .then(|| latent_tensor(&latents.values, latents.shift));
            let latent_bits = self.codec.weights().bits - latents.shift;
            let reconstruction = match options.reconstruct {
                true => Some(self.reconstruct(latents, worker).await?),
                false => None,
            };
            Ok(Encoding {
                bitstream,
                reconstruction,
                latents: latent_tensor,
                latent_bits,
            })
        })
    }

    fn decode<'a>(
        &'a self,
        bitstream: Vec<u8>,
        max_units: u64,
        worker: &'a dyn Worker,
    ) -> BoxFuture<'a, Result<AudioClip, Error>> {
        Box::pin(async move {
            let codec = Arc::clone(&self.codec);
            let latents =
                blocking(worker, move || codec.decode_latents(&bitstream, max_units)).await?;
            self.reconstruct(latents, worker).await
        })
    }
}
