//! SH bands above the DC colour: either every coefficient on its own (SHRS), or a k-means
//! codebook of whole vectors (SHCB) plus one index per splat (SHIX). Codebook entries and
//! scalar values share one model: coefficient-major, channel-minor, each in the context of its
//! slot and the value coded before it in the same vector.

use terse_entropy::{AdaptiveDecoder, AdaptiveEncoder, AdaptiveIntegers, Container};

use super::section::{Section, corrupt};
use crate::{error::Result, scene::SplatScene};

/// Which SH band a per-channel coefficient index belongs to (0 for band 1).
fn band_of(k: usize) -> usize {
    match k {
        0..3 => 0,
        3..8 => 1,
        _ => 2,
    }
}

/// How the SH coefficients of a bitstream are laid out and scaled.
#[derive(Debug, Clone, Copy)]
pub(super) struct ShLayout {
    /// Coefficients per colour channel.
    pub coeffs: usize,
    /// Quantization steps of bands 1, 2 and 3.
    pub steps: [f64; 3],
    /// Codebook entries (0: scalar coding).
    pub codebook: usize,
    /// Range of the coded values.
    pub range: [i64; 2],
}

impl ShLayout {
    /// Integers per splat (or per codebook entry).
    pub fn dim(&self) -> usize {
        3 * self.coeffs
    }

    /// Writes `sh_steps`, `sh_codebook` and `sh_range`.
    pub fn write_header(&self, container: &mut Container) {
        container.put_f64s("sh_steps", &self.steps);
        container.put_u64("sh_codebook", self.codebook as u64);
        container.put_i64s("sh_range", &self.range);
    }

    /// Reads what [`ShLayout::write_header`] wrote, for `coeffs` coefficients per channel.
    pub fn from_header(container: &Container, coeffs: usize) -> Result<Self> {
        let steps = container.f64s::<3>("sh_steps")?;
        if steps.iter().any(|&s| !(s > 0.0 && s <= 16.0)) {
            return Err(corrupt("header field `sh_steps` holds an invalid step"));
        }
        let range = super::range_field(container, "sh_range")?;
        let max = u64::from(super::MAX_SH_CODEBOOK);
        let codebook = super::ranged(container, "sh_codebook", 0, max)? as usize;
        Ok(Self {
            coeffs,
            steps,
            codebook,
            range,
        })
    }

    /// The SH vectors of `order`'s splats divided by their band's step, coefficient-major,
    /// channel-minor (the first `coeffs` of the scene's coefficients per channel).
    pub fn scaled(coeffs: usize, steps: [f64; 3], scene: &SplatScene, order: &[usize]) -> Vec<f64> {
        let in_coeffs = scene.sh_rest_per_splat() / 3;
        order
            .iter()
            .flat_map(|&i| {
                let sh = scene.sh_of(i);
                (0..coeffs).flat_map(move |k| {
                    (0..3).map(move |c| f64::from(sh[c * in_coeffs + k]) / steps[band_of(k)])
                })
            })
            .collect()
    }

    /// The scene's `sh_rest` (channel-major) from coded vectors.
    pub fn unscaled(&self, values: &[i64]) -> Vec<f32> {
        let (dim, coeffs) = (self.dim(), self.coeffs);
        let mut sh_rest = vec![0f32; values.len()];
        for (i, item) in values.chunks_exact(dim).enumerate() {
            for k in 0..coeffs {
                for channel in 0..3 {
                    sh_rest[i * dim + channel * coeffs + k] =
                        (item[k * 3 + channel] as f64 * self.steps[band_of(k)]) as f32;
                }
            }
        }
        sh_rest
    }

    /// The model of the coded values.
    pub fn values(&self) -> Result<ShValues> {
        ShValues::new(self.coeffs, self.range)
    }

    /// The model of codebook indices.
    pub fn indices(&self) -> Result<ShIndices> {
        ShIndices::new(self.codebook)
    }
}

/// SH values in vectors of `3 * coeffs`.
pub(super) struct ShValues {
    dim: usize,
    model: AdaptiveIntegers,
    slot: usize,
    previous: i64,
}

impl ShValues {
    fn new(coeffs: usize, range: [i64; 2]) -> Result<Self> {
        Ok(Self {
            dim: 3 * coeffs,
            model: AdaptiveIntegers::new(range[0], range[1], coeffs * 3 * 5)?,
            slot: 0,
            previous: 0,
        })
    }

    /// The context of the next value: its slot (coefficient, channel) and the previous value
    /// of the vector clamped to -2..=2, so sign and size both count.
    fn context(&self) -> usize {
        self.slot * 5 + (self.previous.clamp(-2, 2) + 2) as usize
    }

    fn advance(&mut self, value: i64) {
        self.slot += 1;
        self.previous = value;
        if self.slot == self.dim {
            self.slot = 0;
            self.previous = 0;
        }
    }
}

impl Section for ShValues {
    type Value = i64;

    fn encode(&mut self, enc: &mut AdaptiveEncoder, value: i64) -> Result<()> {
        self.model.encode(enc, self.context(), value)?;
        self.advance(value);
        Ok(())
    }

    fn decode(&mut self, dec: &mut AdaptiveDecoder) -> Result<i64> {
        let value = self.model.decode(dec, self.context())?;
        self.advance(value);
        Ok(value)
    }
}

/// Codebook indices, one per splat.
pub(super) struct ShIndices {
    size: usize,
    model: AdaptiveIntegers,
}

impl ShIndices {
    fn new(size: usize) -> Result<Self> {
        Ok(Self {
            size,
            model: AdaptiveIntegers::new(0, size as i64 - 1, 1)?,
        })
    }
}

impl Section for ShIndices {
    type Value = usize;

    fn encode(&mut self, enc: &mut AdaptiveEncoder, index: usize) -> Result<()> {
        Ok(self.model.encode(enc, 0, index as i64)?)
    }

    fn decode(&mut self, dec: &mut AdaptiveDecoder) -> Result<usize> {
        let index = self.model.decode(dec, 0)?;
        usize::try_from(index)
            .ok()
            .filter(|&i| i < self.size)
            .ok_or_else(|| corrupt(format!("SH codebook index {index} out of range")))
    }
}
