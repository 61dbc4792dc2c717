//! OPAC: opacity after the sigmoid on a `bits`-bit grid; the context is the previous
//! splat's top 3 bits.

use terse_entropy::{AdaptiveDecoder, AdaptiveEncoder, AdaptiveIntegers, Container};

use super::section::{Section, corrupt};
use crate::{error::Result, scene::logit, scene::sigmoid};

/// The opacity model.
pub(super) struct Opacity {
    bits: u32,
    max: i64,
    model: AdaptiveIntegers,
    previous: usize,
}

impl Opacity {
    /// The model of `bits`-bit opacities.
    pub fn new(bits: u32) -> Result<Self> {
        let max = (1i64 << bits) - 1;
        Ok(Self {
            bits,
            max,
            model: AdaptiveIntegers::new(0, max, 8)?,
            previous: 0,
        })
    }

    /// Reads `opacity_bits` and builds the model.
    pub fn from_header(container: &Container) -> Result<Self> {
        Self::new(super::ranged(container, "opacity_bits", 4, 12)? as u32)
    }

    /// Writes `opacity_bits`.
    pub fn write_header(&self, container: &mut Container) {
        container.put_u64("opacity_bits", u64::from(self.bits));
    }

    /// The grid value of an opacity given as a logit.
    pub fn quantize(&self, logit_opacity: f32) -> i64 {
        ((f64::from(sigmoid(logit_opacity)) * self.max as f64).round() as i64).clamp(0, self.max)
    }

    /// The logit a grid value stands for (kept off 0 and 1 by half a step).
    pub fn dequantize(&self, q: i64) -> f32 {
        let half = 0.5 / self.max as f64;
        logit((q as f64 / self.max as f64).clamp(half, 1.0 - half) as f32)
    }
}

impl Section for Opacity {
    type Value = i64;

    fn encode(&mut self, enc: &mut AdaptiveEncoder, q: i64) -> Result<()> {
        self.model.encode(enc, self.previous, q)?;
        self.previous = (q >> (self.bits - 3)) as usize;
        Ok(())
    }

    fn decode(&mut self, dec: &mut AdaptiveDecoder) -> Result<i64> {
        let q = self.model.decode(dec, self.previous)?;
        if !(0..=self.max).contains(&q) {
            return Err(corrupt("opacity out of range"));
        }
        self.previous = (q >> (self.bits - 3)) as usize;
        Ok(q)
    }
}
