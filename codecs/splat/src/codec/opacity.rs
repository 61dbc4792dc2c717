//! OPAC: opacity after the sigmoid on a `bits`-bit grid; the context is the previous
//! splat's top 3 bits.

use terse_entropy::{AdaptiveDecoder, AdaptiveEncoder, AdaptiveIntegers, Container};

use super::section::{Attribute, MAX_RAW_BITS, Section, corrupt};
use crate::{error::Result, scene::logit, scene::sigmoid};

/// The opacity model.
pub(super) struct Opacity {
    bits: u32,
    raw_bits: u32,
    max: i64,
    model: AdaptiveIntegers,
    previous: usize,
}

impl Opacity {
    /// The model of `bits`-bit opacities whose `raw_bits` low bits are coded raw.
    pub fn new(bits: u32, raw_bits: u32) -> Result<Self> {
        let max = (1i64 << bits) - 1;
        Ok(Self {
            bits,
            raw_bits,
            max,
            model: AdaptiveIntegers::with_raw_low_bits(0, max, 8, raw_bits)?,
            previous: 0,
        })
    }

    /// Writes `opacity_bits` and `opacity_raw_bits`.
    pub fn write_header(&self, container: &mut Container) {
        container.put_u64("opacity_bits", u64::from(self.bits));
        container.put_u64("opacity_raw_bits", u64::from(self.raw_bits));
    }

    /// The grid value of an opacity given as a logit on a `bits`-bit grid. The levels
    /// [`Opacity::dequantize`] keeps half a step off 0 and 1 come back to 0 and the top.
    pub fn quantize(bits: u32, logit_opacity: f32) -> i64 {
        let max = (1i64 << bits) - 1;
        let x = f64::from(sigmoid(logit_opacity)) * max as f64;
        let tie = 0.5 + 1e-4;
        if x <= tie {
            0
        } else if x >= max as f64 - tie {
            max
        } else {
            x.round() as i64
        }
    }
}

impl Attribute for Opacity {
    const TAG: [u8; 4] = *b"OPAC";
    type Output = f32;

    /// Reads `opacity_bits` and `opacity_raw_bits` and builds the model.
    fn from_header(container: &Container) -> Result<Self> {
        Self::new(
            super::ranged(container, "opacity_bits", 4, 12)? as u32,
            super::ranged(container, "opacity_raw_bits", 0, MAX_RAW_BITS)? as u32,
        )
    }

    /// The logit a grid value stands for (kept off 0 and 1 by half a step).
    fn dequantize(&self, q: i64) -> f32 {
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
