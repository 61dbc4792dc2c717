//! The WaLLoC codecs as [`terse_codec::Codec`]s: the Rust side with its decoder network.

use std::sync::Arc;

use ndarray::{Array2, Array3, ArrayD, Axis};
use terse_audio_io::AudioClip;
use terse_codec::{
    Codec, CodecInfo, DecodeCall, DecodeFuture, EncodeCall, EncodeFuture, Encoding, UnitCost, Work,
};
use terse_core::{Classify, Error, ErrorKind, Network, TensorData, Worker, on_worker_classified};
use terse_entropy::{CodecId, ModelTag};

use crate::{
    AudioLatents, EncoderWeights, Latents, Result as WallocResult, RgbImage, WallocAudioCodec,
    WallocError, WallocImageCodec,
};

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

/// Peak working memory per pixel (image) or sample (audio) in bytes, measured by
/// `scripts/cost_model.py` (the rise of a fresh server's peak RSS over one request: 1024² and
/// 2048² images; 30 s and 120 s of 48 kHz stereo) plus about 10 %. Images encode with the
/// wavelet and linear encoder in Rust and decode through the decoder network.
const COST_PER_PIXEL: UnitCost = UnitCost::new(70, 220);
/// Per audio sample: see [`COST_PER_PIXEL`].
const COST_PER_SAMPLE: UnitCost = UnitCost::new(27, 60);

/// One signal kind's Rust side of WaLLoC (image or audio): what [`Walloc`] needs around its
/// decoder network.
pub trait WallocSide: Send + Sync + 'static {
    /// What the codec compresses.
    type Media: Send + Sync + 'static;
    /// Integer latents with what decoding needs besides them (size, sample rate).
    type Latents: Send + 'static;
    /// The container's codec id.
    const ID: CodecId;
    /// Working memory per unit (pixel or sample).
    const COST: UnitCost;

    /// The model identity written into bitstreams.
    fn model_tag(&self) -> &ModelTag;
    /// The encoder weights and their hyper-parameters.
    fn encoder_weights(&self) -> &EncoderWeights;
    /// Sample rate in Hz (0 for images).
    fn rate(&self) -> u32;
    /// Bits to drop so the latents keep `latent_bits` (0: all).
    fn shift_for_bits(&self, latent_bits: u32) -> WallocResult<u32>;
    /// Encodes with `shift` bits dropped: the bitstream and the latents.
    fn encode_media(
        &self,
        media: &Self::Media,
        shift: u32,
    ) -> WallocResult<(Vec<u8>, Self::Latents)>;
    /// Reads latents back, refusing media over `max_units`.
    fn read_latents(&self, bitstream: &[u8], max_units: u64) -> WallocResult<Self::Latents>;
    /// The integer values `[L, h, w]` and their shift.
    fn values(latents: &Self::Latents) -> (&Array3<i32>, u32);
    /// The decoder network's input (a batch of one).
    fn network_input(&self, latents: &Self::Latents) -> ArrayD<f32>;
    /// Media from the decoder's bands (the batch item) and the latents' side information.
    fn rebuild(&self, bands: ArrayD<f32>, latents: Self::Latents) -> WallocResult<Self::Media>;
}

fn bands_as<D: ndarray::Dimension>(bands: ArrayD<f32>) -> WallocResult<ndarray::Array<f32, D>> {
    bands
        .into_dimensionality()
        .map_err(|e| WallocError::Decoder(format!("decoder output: {e}")))
}

impl WallocSide for WallocImageCodec {
    type Media = RgbImage;
    type Latents = Latents;
    const ID: CodecId = CodecId::WallocImage;
    const COST: UnitCost = COST_PER_PIXEL;

    fn model_tag(&self) -> &ModelTag {
        self.model()
    }
    fn encoder_weights(&self) -> &EncoderWeights {
        self.weights()
    }
    fn rate(&self) -> u32 {
        0
    }
    fn shift_for_bits(&self, latent_bits: u32) -> WallocResult<u32> {
        self.shift_for(latent_bits)
    }
    fn encode_media(&self, media: &RgbImage, shift: u32) -> WallocResult<(Vec<u8>, Latents)> {
        self.encode_at(media, shift)
    }
    fn read_latents(&self, bitstream: &[u8], max_units: u64) -> WallocResult<Latents> {
        self.decode_latents(bitstream, max_units)
    }
    fn values(latents: &Latents) -> (&Array3<i32>, u32) {
        (&latents.values, latents.shift)
    }
    fn network_input(&self, latents: &Latents) -> ArrayD<f32> {
        self.normal_latents(latents).into_dyn()
    }
    fn rebuild(&self, bands: ArrayD<f32>, latents: Latents) -> WallocResult<RgbImage> {
        let bands: Array3<f32> = bands_as(bands)?;
        self.reconstruct(bands.view(), latents.width, latents.height)
    }
}

impl WallocSide for WallocAudioCodec {
    type Media = AudioClip;
    type Latents = AudioLatents;
    const ID: CodecId = CodecId::WallocAudio;
    const COST: UnitCost = COST_PER_SAMPLE;

    fn model_tag(&self) -> &ModelTag {
        self.model()
    }
    fn encoder_weights(&self) -> &EncoderWeights {
        self.weights()
    }
    fn rate(&self) -> u32 {
        self.sample_rate()
    }
    fn shift_for_bits(&self, latent_bits: u32) -> WallocResult<u32> {
        self.shift_for(latent_bits)
    }
    fn encode_media(&self, media: &AudioClip, shift: u32) -> WallocResult<(Vec<u8>, AudioLatents)> {
        self.encode(media.samples.view(), media.sample_rate, shift)
    }
    fn read_latents(&self, bitstream: &[u8], max_units: u64) -> WallocResult<AudioLatents> {
        self.decode_latents(bitstream, max_units)
    }
    fn values(latents: &AudioLatents) -> (&Array3<i32>, u32) {
        (&latents.values, latents.shift)
    }
    fn network_input(&self, latents: &AudioLatents) -> ArrayD<f32> {
        self.normal_latents(latents).into_dyn()
    }
    fn rebuild(&self, bands: ArrayD<f32>, latents: AudioLatents) -> WallocResult<AudioClip> {
        let bands: Array2<f32> = bands_as(bands)?;
        Ok(AudioClip {
            sample_rate: latents.sample_rate,
            samples: self.reconstruct(bands.view(), &latents)?,
        })
    }
}

/// A WaLLoC codec (the Rust side `S`) with its decoder network.
pub struct Walloc<S> {
    side: Arc<S>,
    decoder: Arc<dyn Network>,
    info: CodecInfo,
}

/// The WaLLoC image codec with its decoder network.
pub type WallocImage = Walloc<WallocImageCodec>;
/// The WaLLoC audio codec with its decoder network.
pub type WallocAudio = Walloc<WallocAudioCodec>;

impl<S: WallocSide> Walloc<S> {
    /// The codec `side` decoding through `decoder`, from a model of `version` described by
    /// `description`.
    pub fn new(side: S, decoder: Arc<dyn Network>, version: &str, description: &str) -> Self {
        let model = side.model_tag();
        let weights = side.encoder_weights();
        let info = CodecInfo {
            latent_channels: weights.latent_dim as u32,
            levels: weights.levels,
            latent_bits: weights.bits,
            sample_rate: side.rate(),
            channels: weights.channels as u32,
            ..CodecInfo::learned(model, version, "walloc", S::ID, description.into())
        };
        Self {
            side: Arc::new(side),
            decoder,
            info,
        }
    }

    /// The Rust side of the codec.
    pub fn codec(&self) -> &S {
        &self.side
    }

    async fn reconstruct(
        &self,
        latents: S::Latents,
        worker: &dyn Worker,
    ) -> Result<S::Media, Error> {
        let normal = self.side.network_input(&latents);
        let bands = decode_bands(self.decoder.as_ref(), normal).await?;
        let side = Arc::clone(&self.side);
        on_worker_classified(worker, move || side.rebuild(bands, latents)).await
    }
}

impl<S: WallocSide> Codec for Walloc<S> {
    type Media = S::Media;
    type Knobs = ();

    fn info(&self) -> &CodecInfo {
        &self.info
    }

    fn working_memory(&self, work: Work, shape: &[u64]) -> u64 {
        work.memory(shape, S::COST)
    }

    fn encode<'a>(&'a self, call: EncodeCall<'a, S::Media>) -> EncodeFuture<'a, S::Media> {
        let (media, options, worker) = (call.media, call.options, call.worker);
        Box::pin(async move {
            let side = Arc::clone(&self.side);
            let (bitstream, latents) = on_worker_classified(worker, move || {
                let shift = side.shift_for_bits(options.latent_bits)?;
                side.encode_media(&media, shift)
            })
            .await?;
            let (values, shift) = S::values(&latents);
            let latent_tensor = options.latents.then(|| latent_tensor(values, shift));
            let latent_bits = self.side.encoder_weights().bits - shift;
            let reconstruction = match options.reconstruct {
                true => Some(self.reconstruct(latents, worker).await?),
                false => None,
            };
            Ok(Encoding {
                bitstream,
                reconstruction,
                latents: latent_tensor,
                latent_bits,
                reference: None,
            })
        })
    }

    fn decode<'a>(&'a self, call: DecodeCall<'a>) -> DecodeFuture<'a, S::Media> {
        let (bitstream, max_units, worker) = (call.bitstream, call.max_units, call.worker);
        Box::pin(async move {
            let side = Arc::clone(&self.side);
            let latents =
                on_worker_classified(worker, move || side.read_latents(&bitstream, max_units))
                    .await?;
            self.reconstruct(latents, worker).await
        })
    }
}
