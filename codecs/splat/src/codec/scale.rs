//! SCAL: log-scales on a `step` grid. Axis 0 is coded in the context of the previous
//! splat's axis 0, axis 1 in that of this splat's axis 0, axis 2 in that of both earlier
//! axes (coarser).

use terse_entropy::{AdaptiveDecoder, AdaptiveEncoder, AdaptiveIntegers, Container};

use super::section::{Attribute, BUCKETS, Buckets, MAX_RAW_BITS, Section};
use crate::error::Result;

/// The log-scale model.
pub(super) struct Scales {
    step: f64,
    range: [i64; 2],
    buckets: Buckets,
    raw_bits: u32,
    model: AdaptiveIntegers,
    previous: usize,
}

impl Scales {
    /// The model of values in `range` on a `step` grid whose `raw_bits` low bits are coded
    /// raw.
    pub fn new(step: f64, range: [i64; 2], raw_bits: u32) -> Result<Self> {
        Ok(Self {
            step,
            range,
            buckets: Buckets::new(range),
            raw_bits,
            model: AdaptiveIntegers::with_raw_low_bits(range[0], range[1], 3 * BUCKETS, raw_bits)?,
            previous: 0,
        })
    }

    /// Writes `scale_step`, `scale_range` and `scale_raw_bits`.
    pub fn write_header(&self, container: &mut Container) {
        container.put_f64("scale_step", self.step);
        container.put_i64s("scale_range", &self.range);
        container.put_u64("scale_raw_bits", u64::from(self.raw_bits));
    }

    /// The grid values of log-scales.
    pub fn quantize(step: f64, scales: [f32; 3]) -> [i64; 3] {
        scales.map(|s| super::quantize(f64::from(s), step))
    }

    fn context(&self, axis: usize, before: &[i64]) -> usize {
        match axis {
            0 => self.previous,
            1 => BUCKETS + self.buckets.of(before[0]),
            _ => 2 * BUCKETS + self.buckets.of(before[0]) / 4 * 4 + self.buckets.of(before[1]) / 4,
        }
    }
}

impl Attribute for Scales {
    const TAG: [u8; 4] = *b"SCAL";
    type Output = [f32; 3];

    /// Reads `scale_step`, `scale_range` and `scale_raw_bits` and builds the model.
    fn from_header(container: &Container) -> Result<Self> {
        Self::new(
            super::step_field(container, "scale_step")?,
            super::range_field(container, "scale_range")?,
            super::ranged(container, "scale_raw_bits", 0, MAX_RAW_BITS)? as u32,
        )
    }

    /// The log-scales grid values stand for.
    fn dequantize(&self, q: [i64; 3]) -> [f32; 3] {
        q.map(|q| (q as f64 * self.step) as f32)
    }
}

impl Section for Scales {
    type Value = [i64; 3];

    fn encode(&mut self, enc: &mut AdaptiveEncoder, s: [i64; 3]) -> Result<()> {
        for axis in 0..3 {
            let ctx = self.context(axis, &s[..axis]);
            self.model.encode(enc, ctx, s[axis])?;
        }
        self.previous = self.buckets.of(s[0]);
        Ok(())
    }

    fn decode(&mut self, dec: &mut AdaptiveDecoder) -> Result<[i64; 3]> {
        let mut s = [0i64; 3];
        for axis in 0..3 {
            let ctx = self.context(axis, &s[..axis]);
            s[axis] = self.model.decode(dec, ctx)?;
        }
        self.previous = self.buckets.of(s[0]);
        Ok(s)
    }
}
