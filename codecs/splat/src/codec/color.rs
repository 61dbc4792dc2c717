//! COLR: SH DC colours on a `step` grid as green, red − green and blue − green; green in the
//! context of the previous splat's green, each difference in that of the value before it.

use terse_entropy::{AdaptiveDecoder, AdaptiveEncoder, AdaptiveIntegers, Container};

use super::section::{BUCKETS, Section, bucket, corrupt};
use crate::error::Result;

/// The colour model.
pub(super) struct Colors {
    step: f64,
    ranges: [[i64; 2]; 3],
    models: [AdaptiveIntegers; 3],
    previous: usize,
}

impl Colors {
    /// The model of (green, red − green, blue − green) in `ranges` on a `step` grid.
    pub fn new(step: f64, ranges: [[i64; 2]; 3]) -> Result<Self> {
        let model = |r: [i64; 2]| AdaptiveIntegers::new(r[0], r[1], BUCKETS);
        Ok(Self {
            step,
            ranges,
            models: [model(ranges[0])?, model(ranges[1])?, model(ranges[2])?],
            previous: 0,
        })
    }

    /// Reads `color_step` and `color_ranges` and builds the model.
    pub fn from_header(container: &Container) -> Result<Self> {
        let step = super::step_field(container, "color_step")?;
        let r = container.i64s::<6>("color_ranges")?;
        let ranges = [[r[0], r[1]], [r[2], r[3]], [r[4], r[5]]];
        if ranges.iter().any(|r| r[0] > r[1]) {
            return Err(corrupt("header field `color_ranges` holds an empty range"));
        }
        Self::new(step, ranges)
    }

    /// Writes `color_step` and `color_ranges`.
    pub fn write_header(&self, container: &mut Container) {
        container.put_f64("color_step", self.step);
        container.put_i64s("color_ranges", &self.ranges.concat());
    }

    /// (green, red − green, blue − green) of an RGB DC colour on a `step` grid.
    pub fn quantize(step: f64, color: [f32; 3]) -> [i64; 3] {
        let [r, g, b] = color.map(|c| super::quantize(f64::from(c), step));
        [g, r - g, b - g]
    }

    /// The RGB colour coded values stand for.
    pub fn dequantize(&self, [green, red, blue]: [i64; 3]) -> [f32; 3] {
        let q = [green.saturating_add(red), green, green.saturating_add(blue)];
        q.map(|v| (v as f64 * self.step) as f32)
    }
}

impl Section for Colors {
    type Value = [i64; 3];

    fn encode(&mut self, enc: &mut AdaptiveEncoder, c: [i64; 3]) -> Result<()> {
        self.models[0].encode(enc, self.previous, c[0])?;
        self.models[1].encode(enc, bucket(c[0], self.ranges[0]), c[1])?;
        self.models[2].encode(enc, bucket(c[1], self.ranges[1]), c[2])?;
        self.previous = bucket(c[0], self.ranges[0]);
        Ok(())
    }

    fn decode(&mut self, dec: &mut AdaptiveDecoder) -> Result<[i64; 3]> {
        let green = self.models[0].decode(dec, self.previous)?;
        let red = self.models[1].decode(dec, bucket(green, self.ranges[0]))?;
        let blue = self.models[2].decode(dec, bucket(red, self.ranges[1]))?;
        self.previous = bucket(green, self.ranges[0]);
        Ok([green, red, blue])
    }
}
