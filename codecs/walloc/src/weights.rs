//! The linear encoder and the latent mappings exported by the training script.

use ndarray::{Array2, Array3, ArrayView3};
use serde::Deserialize;

use crate::{Result, WallocError};

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
    /// Added to pixels in [0, 1] before the transform.
    pub input_offset: f32,
    /// `[L, 3·4^J]`.
    pub weight: Array2<f32>,
    /// `[L]`.
    pub bias: Vec<f32>,
    /// Decoder input per integer latent, from `−(2^(b−1) − 1)` up.
    pub to_normal: Vec<f32>,
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
        if !(1..=6).contains(&file.levels)
            || !(2..=16).contains(&file.bits)
            || file.scale.is_nan()
            || file.scale <= 0.0
        {
            return Err(bad("levels, bits or scale out of range".into()));
        }
        let bands = 3 * (1usize << (2 * file.levels));
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
            weight: Array2::from_shape_vec((file.latent_dim, bands), file.weight.concat())
                .expect("checked"),
            bias: file.bias,
            to_normal: file.to_normal,
        })
    }

    /// Largest latent magnitude, `2^(b−1) − 1`.
    pub fn max_level(&self) -> i32 {
        (1i32 << (self.bits - 1)) - 1
    }

    /// Linear encoder, ToUniform and rounding: bands `[3·4^J, h, w]` → integers `[L, h, w]`.
    pub fn encode_bands(&self, bands: ArrayView3<f32>) -> Array3<i32> {
        let (b, h, w) = bands.dim();
        let flat = bands.to_shape((b, h * w)).expect("contiguous bands");
        let mut z = self.weight.dot(&flat);
        for (mut row, &bias) in z.rows_mut().into_iter().zip(&self.bias) {
            row += bias;
        }
        let latent_max = f64::from(self.max_level()) + 0.5;
        let bound = self.max_level();
        let q = z.mapv(|v| {
            let u = (0.5 * libm::erfc(-f64::from(v) / self.scale / std::f64::consts::SQRT_2) - 0.5)
                * 2.0
                * latent_max;
            (u.round() as i32).clamp(-bound, bound)
        });
        q.into_shape_with_order((self.latent_dim, h, w))
            .expect("sized")
    }
}
