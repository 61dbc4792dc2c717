//! The linear encoder and the latent mappings exported by the training script.

use ndarray::{Array2, Array3, ArrayView3};
use rayon::prelude::*;
use serde::Deserialize;

use crate::{Result, WallocError, squash::Squash};

#[derive(Deserialize)]
struct EncoderFile {
    format: String,
    wavelet: String,
    levels: u32,
    bits: u32,
    scale: f64,
    latent_dim: usize,
    input_offset: f32,
    weight: Vec<Vec<f32>>,
    bias: Vec<f32>,
    to_normal: Vec<f32>,
    #[serde(default)]
    signal: Signal,
    #[serde(default)]
    channels: Option<usize>,
    #[serde(default)]
    sample_rate: Option<u32>,
}

/// What a model codes: the wavelet packet is 2-D for images and 1-D for audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// Images: 2-D packet, `channels·4^J` bands.
    #[default]
    Image,
    /// Audio: 1-D packet, `channels·2^J` bands.
    Audio,
}

/// `encoder.json`: the linear encoder, the latent squashing and the decoder-side table.
#[derive(Debug, Clone)]
pub struct EncoderWeights {
    /// Wavelet-packet levels `J`.
    pub levels: u32,
    /// Latent bits `b`: integers lie in `±(2^(b−1) − 1)`.
    pub bits: u32,
    /// ToUniform scale.
    pub scale: f64,
    /// Latent channels `L`.
    pub latent_dim: usize,
    /// Added to the input (pixels in [0, 1], samples in [−1, 1]) before the transform.
    pub input_offset: f32,
    /// What the model codes.
    pub signal: Signal,
    /// Input channels (3 for RGB, 2 for stereo).
    pub channels: usize,
    /// Sample rate of an audio model, in Hz.
    pub sample_rate: Option<u32>,
    /// `[L, bands]`.
    pub weight: Array2<f32>,
    /// `[L]`.
    pub bias: Vec<f32>,
    /// Decoder input per integer latent, from `−(2^(b−1) − 1)` up.
    pub to_normal: Vec<f32>,
    /// ToUniform and rounding, with each grid's step thresholds.
    squash: Squash,
}

impl EncoderWeights {
    /// Parses and checks `encoder.json`.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let bad = |m: String| WallocError::Model(format!("encoder.json: {m}"));
        let file: EncoderFile = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if file.format != "terse-walloc-encoder/1" || file.wavelet != "bior4.4" {
            return Err(bad(format!(
                "unsupported format `{}` / wavelet `{}`",
                file.format, file.wavelet
            )));
        }
        let channels = file.channels.unwrap_or(3);
        let (split, max_levels) = match file.signal {
            Signal::Image => (4usize, 6),
            Signal::Audio => (2usize, 12),
        };
        if file.signal == Signal::Audio && !matches!(file.sample_rate, Some(8000..=192_000)) {
            return Err(bad(
                "an audio model needs a sample_rate in 8000..=192000".into()
            ));
        }
        if !(1..=4).contains(&channels) {
            return Err(bad(format!("{channels} channels are not supported")));
        }
        if !(1..=max_levels).contains(&file.levels)
            || !(2..=16).contains(&file.bits)
            || file.scale.is_nan()
            || file.scale <= 0.0
        {
            return Err(bad("levels, bits or scale out of range".into()));
        }
        let bands = channels * split.pow(file.levels);
        if file.weight.len() != file.latent_dim || file.weight.iter().any(|r| r.len() != bands) {
            return Err(bad(format!(
                "weight must be [{}, {bands}]",
                file.latent_dim
            )));
        }
        if file.bias.len() != file.latent_dim {
            return Err(bad("bias length differs from latent_dim".into()));
        }
        let levels = (1usize << file.bits) - 1;
        if file.to_normal.len() != levels || file.to_normal.iter().any(|v| !v.is_finite()) {
            return Err(bad(format!("to_normal must hold {levels} finite values")));
        }
        Ok(Self {
            levels: file.levels,
            bits: file.bits,
            scale: file.scale,
            latent_dim: file.latent_dim,
            input_offset: file.input_offset,
            signal: file.signal,
            channels,
            sample_rate: file.sample_rate,
            weight: Array2::from_shape_vec((file.latent_dim, bands), file.weight.concat())
                .expect("checked"),
            bias: file.bias,
            to_normal: file.to_normal,
            squash: Squash::new(file.scale, file.bits),
        })
    }

    /// Wavelet-packet bands the encoder reads and the decoder writes.
    pub fn bands(&self) -> usize {
        self.weight.ncols()
    }

    /// Samples (per axis) that one latent covers: `2^J`.
    pub fn block(&self) -> usize {
        1 << self.levels
    }

    /// Largest latent magnitude, `2^(b−1) − 1`.
    pub fn max_level(&self) -> i32 {
        (1i32 << (self.bits - 1)) - 1
    }

    /// Largest latent magnitude when `shift` bits are dropped: `(2^(b−1) − 1) >> shift`.
    pub fn max_level_at(&self, shift: u32) -> i32 {
        self.max_level() >> shift
    }

    /// Linear encoder, ToUniform and rounding: bands `[B, h, w]` → integers `[L, h, w]`
    /// (audio: `h` = 1). With `shift` > 0 the squashed values are rounded on a grid `2^shift`
    /// times coarser (fewer latent bits, fewer bytes).
    pub fn encode_bands(&self, bands: ArrayView3<f32>, shift: u32) -> Array3<i32> {
        let (b, h, w) = bands.dim();
        let flat = bands.to_shape((b, h * w)).expect("contiguous bands");
        let mut z = self.weight.dot(&flat);
        for (mut row, &bias) in z.rows_mut().into_iter().zip(&self.bias) {
            row += bias;
        }
        let z = z.as_standard_layout();
        let q: Vec<i32> = z
            .as_slice()
            .expect("standard layout")
            .par_iter()
            .with_min_len(4096)
            .map(|&v| self.squash.level(v, shift))
            .collect();
        Array3::from_shape_vec((self.latent_dim, h, w), q).expect("sized")
    }
}
