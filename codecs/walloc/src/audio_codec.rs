//! The WaLLoC audio codec: 1-D wavelet packet of every channel (stereo models), latents
//! `[L, 1, t]` with one latent step per `2^J` frames.

use ndarray::{Array2, Array3, ArrayView2, Axis};
use terse_entropy::{CodecId, ModelTag};

use crate::{EncoderWeights, Result, Signal, WallocError, latent::LatentCoder};

/// Integer latents of one clip.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioLatents {
    /// `[L, 1, t]`, each in `±((2^(b−1) − 1) >> shift)`.
    pub values: Array3<i32>,
    /// Bits dropped from the model's `b` latent bits (the rate knob).
    pub shift: u32,
    /// Frames (samples per channel) of the clip.
    pub frames: u64,
    /// Channels of the clip: the model's, or 1 for a mono clip coded as identical channels.
    pub channels: u32,
    /// Sample rate in Hz (the model's).
    pub sample_rate: u32,
}

/// A loaded WaLLoC audio model.
pub struct WallocAudioCodec {
    coder: LatentCoder,
    sample_rate: u32,
}

impl WallocAudioCodec {
    /// A codec from a model's assets, fetched by name with `read` (`encoder`, `prior`
    /// required; `context` optional), and its identity.
    pub fn from_assets(
        read: impl Fn(&str) -> std::result::Result<Option<Vec<u8>>, String>,
        model: ModelTag,
    ) -> Result<Self> {
        let coder = LatentCoder::from_assets(read, model, Signal::Audio)?;
        let sample_rate = coder
            .weights
            .sample_rate
            .ok_or_else(|| WallocError::Model("audio model without a sample rate".into()))?;
        Ok(Self { coder, sample_rate })
    }

    /// The encoder weights.
    pub fn weights(&self) -> &EncoderWeights {
        &self.coder.weights
    }

    /// Model identity recorded in bitstreams.
    pub fn model(&self) -> &ModelTag {
        &self.coder.model
    }

    /// The one sample rate this model codes, in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Channels of the model (clips of one channel are coded too).
    pub fn channels(&self) -> usize {
        self.coder.weights.channels
    }

    /// The grid shift that leaves `latent_bits` bits per latent (0: the model's own).
    pub fn shift_for(&self, latent_bits: u32) -> Result<u32> {
        self.coder.shift_for(latent_bits)
    }

    /// Latents of a clip `[channels, frames]` of samples in [−1, 1] at the model's rate with
    /// `shift` latent bits dropped (the "encode to latents" output). A mono clip is coded as
    /// identical channels.
    pub fn analyze(
        &self,
        samples: ArrayView2<f32>,
        sample_rate: u32,
        shift: u32,
    ) -> Result<AudioLatents> {
        if shift > self.coder.max_shift() {
            return Err(WallocError::Invalid(format!(
                "latent shift {shift} is too large"
            )));
        }
        let (channels, frames) = samples.dim();
        if sample_rate != self.sample_rate {
            return Err(WallocError::Invalid(format!(
                "the model codes {} Hz audio, the clip is {sample_rate} Hz (resample it first)",
                self.sample_rate
            )));
        }
        let model_channels = self.channels();
        if channels != model_channels && channels != 1 {
            return Err(WallocError::Invalid(format!(
                "the model codes {model_channels} channels or mono, the clip has {channels}"
            )));
        }
        if frames == 0 {
            return Err(WallocError::Invalid("the clip has no samples".into()));
        }
        if samples.iter().any(|v| !v.is_finite()) {
            return Err(WallocError::Invalid(
                "the clip holds non-finite samples".into(),
            ));
        }
        let weights = &self.coder.weights;
        let padded = frames.div_ceil(weights.block()) * weights.block();
        let offset = weights.input_offset;
        let signal = Array2::from_shape_fn((model_channels, padded), |(c, i)| {
            samples[[c.min(channels - 1), i.min(frames - 1)]].clamp(-1.0, 1.0) + offset
        });
        let bands = terse_wavelet::wpt1d(&terse_wavelet::bior44(), signal.view(), weights.levels)
            .map_err(|e| WallocError::Invalid(e.to_string()))?;
        Ok(AudioLatents {
            values: weights.encode_bands(bands.insert_axis(Axis(1)).view(), shift),
            shift,
            frames: frames as u64,
            channels: channels as u32,
            sample_rate,
        })
    }

    /// The latents coded both ways (factorized prior, context model).
    pub fn code_latents(&self, latents: &AudioLatents) -> Result<crate::LatentCodings> {
        self.coder.code_latents(&latents.values, latents.shift)
    }

    /// Encodes a clip into a container bitstream with `shift` latent bits dropped (0: full
    /// precision).
    pub fn encode(
        &self,
        samples: ArrayView2<f32>,
        sample_rate: u32,
        shift: u32,
    ) -> Result<(Vec<u8>, AudioLatents)> {
        let latents = self.analyze(samples, sample_rate, shift)?;
        let mut container =
            self.coder
                .container(CodecId::WallocAudio, &latents.values, latents.shift)?;
        container.put_u64("frames", latents.frames);
        container.put_u64("channels", u64::from(latents.channels));
        container.put_u64("sample_rate", u64::from(latents.sample_rate));
        Ok((container.to_bytes()?, latents))
    }

    /// Reads the latents back from a bitstream, refusing clips longer than `max_frames`.
    pub fn decode_latents(&self, bitstream: &[u8], max_frames: u64) -> Result<AudioLatents> {
        let container = self.coder.open(bitstream, CodecId::WallocAudio)?;
        let frames = container.u64("frames")?;
        let channels = container.u64("channels")?;
        let sample_rate = container.u64("sample_rate")?;
        if sample_rate != u64::from(self.sample_rate) {
            return Err(WallocError::Invalid(format!(
                "bitstream says {sample_rate} Hz, the model codes {} Hz",
                self.sample_rate
            )));
        }
        if channels != 1 && channels != self.channels() as u64 {
            return Err(WallocError::Invalid(format!(
                "bitstream says {channels} channels"
            )));
        }
        if frames == 0 {
            return Err(WallocError::Invalid("bitstream holds no frames".into()));
        }
        if frames > max_frames {
            return Err(WallocError::TooLarge(format!(
                "clip of {frames} frames ({:.1} s) exceeds the limit of {max_frames} frames",
                frames as f64 / f64::from(self.sample_rate)
            )));
        }
        let steps = frames.div_ceil(self.coder.weights.block() as u64) as usize;
        let (values, shift) = self.coder.read_latents(&container, (1, steps))?;
        Ok(AudioLatents {
            values,
            shift,
            frames,
            channels: channels as u32,
            sample_rate: self.sample_rate,
        })
    }

    /// Decoder input for integer latents: `[1, L, t]`.
    pub fn normal_latents(&self, latents: &AudioLatents) -> Array3<f32> {
        self.coder
            .normal_latents(&latents.values, latents.shift)
            .permuted_axes([1, 0, 2])
            .as_standard_layout()
            .to_owned()
    }

    /// Inverts the wavelet packet of decoded bands `[channels·2^J, t]`, crops to the clip and
    /// clamps to [−1, 1]; a mono clip comes back as the mean of the channels.
    pub fn reconstruct(
        &self,
        bands: ArrayView2<f32>,
        latents: &AudioLatents,
    ) -> Result<Array2<f32>> {
        let weights = &self.coder.weights;
        if bands.nrows() != weights.bands() {
            return Err(WallocError::Decoder(format!(
                "decoder produced {} bands, expected {}",
                bands.nrows(),
                weights.bands()
            )));
        }
        let signal = terse_wavelet::wpt1d_inverse(&terse_wavelet::bior44(), bands, weights.levels)
            .map_err(|e| WallocError::Decoder(e.to_string()))?;
        let frames = latents.frames as usize;
        if signal.ncols() < frames {
            return Err(WallocError::Decoder(
                "decoded signal is shorter than the clip".into(),
            ));
        }
        let offset = weights.input_offset;
        let model_channels = signal.nrows();
        Ok(Array2::from_shape_fn(
            (latents.channels as usize, frames),
            |(c, i)| {
                let v = if latents.channels == 1 {
                    signal.column(i).sum() / model_channels as f32
                } else {
                    signal[[c, i]]
                };
                (v - offset).clamp(-1.0, 1.0)
            },
        ))
    }
}
