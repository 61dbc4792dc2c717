//! COLR: SH DC colours on a `step` grid as green, red − green and blue − green; green in the
//! context of the previous splat's green, each difference in that of the value before it.
//!
//! Level `k` stands for `anchor + k * step`. SPZ stores a byte `b` for
//! `(b - 127.5) / (0.15 * 255)`, so its levels sit at odd multiples of half its step; the
//! anchor is SPZ's level `1 / (2 * 0.15 * 255)` reduced modulo `step`, so at SPZ's step and
//! its divisors every SPZ colour is a level: SPZ-sourced scenes keep their colours.

use terse_entropy::{AdaptiveDecoder, AdaptiveEncoder, AdaptiveIntegers, Container};

use super::section::{Attribute, BUCKETS, Buckets, MAX_RAW_BITS, Section, corrupt};
use crate::error::Result;

/// SPZ's colour level nearest above 0: half its step of `1 / (0.15 * 255)`.
const SPZ_ANCHOR: f64 = 0.5 / (0.15 * 255.0);

/// The level in `[0, step)` that SPZ's level grid passes through at `step`.
pub(super) fn anchor_for(step: f64) -> f64 {
    SPZ_ANCHOR.rem_euclid(step)
}

/// The colour model.
pub(super) struct Colors {
    step: f64,
    anchor: f64,
    ranges: [[i64; 2]; 3],
    /// Context buckets of green and of red − green.
    buckets: [Buckets; 2],
    raw_bits: u32,
    models: [AdaptiveIntegers; 3],
    previous: usize,
}

impl Colors {
    /// The model of (green, red − green, blue − green) in `ranges` on a `step` grid whose
    /// level 0 is `anchor`, with `raw_bits` low bits coded raw.
    pub fn new(step: f64, anchor: f64, ranges: [[i64; 2]; 3], raw_bits: u32) -> Result<Self> {
        let model =
            |r: [i64; 2]| AdaptiveIntegers::with_raw_low_bits(r[0], r[1], BUCKETS, raw_bits);
        Ok(Self {
            step,
            anchor,
            ranges,
            buckets: [Buckets::new(ranges[0]), Buckets::new(ranges[1])],
            raw_bits,
            models: [model(ranges[0])?, model(ranges[1])?, model(ranges[2])?],
            previous: 0,
        })
    }

    /// Writes `color_step`, `color_anchor`, `color_ranges` and `color_raw_bits`.
    pub fn write_header(&self, container: &mut Container) {
        container.put_f64("color_step", self.step);
        container.put_f64("color_anchor", self.anchor);
        container.put_i64s("color_ranges", &self.ranges.concat());
        container.put_u64("color_raw_bits", u64::from(self.raw_bits));
    }

    /// (green, red − green, blue − green) of an RGB DC colour on the levels
    /// `anchor + k * step`.
    pub fn quantize(step: f64, anchor: f64, color: [f32; 3]) -> [i64; 3] {
        let [r, g, b] = color.map(|c| super::quantize(f64::from(c) - anchor, step));
        [g, r - g, b - g]
    }
}

impl Attribute for Colors {
    const TAG: [u8; 4] = *b"COLR";
    type Output = [f32; 3];

    /// Reads what [`Colors::write_header`] wrote and builds the model.
    fn from_header(container: &Container) -> Result<Self> {
        let step = super::step_field(container, "color_step")?;
        let anchor = container.f64("color_anchor")?;
        if !(0.0..step).contains(&anchor) {
            return Err(corrupt(
                "header field `color_anchor` is outside [0, color_step)",
            ));
        }
        let r = container.i64s::<6>("color_ranges")?;
        let ranges = [[r[0], r[1]], [r[2], r[3]], [r[4], r[5]]];
        if ranges.iter().any(|r| r[0] > r[1]) {
            return Err(corrupt("header field `color_ranges` holds an empty range"));
        }
        let raw_bits = super::ranged(container, "color_raw_bits", 0, MAX_RAW_BITS)? as u32;
        Self::new(step, anchor, ranges, raw_bits)
    }

    /// The RGB colour coded values stand for.
    fn dequantize(&self, [green, red, blue]: [i64; 3]) -> [f32; 3] {
        let q = [green.saturating_add(red), green, green.saturating_add(blue)];
        q.map(|v| (self.anchor + v as f64 * self.step) as f32)
    }
}

impl Section for Colors {
    type Value = [i64; 3];

    fn encode(&mut self, enc: &mut AdaptiveEncoder, c: [i64; 3]) -> Result<()> {
        self.models[0].encode(enc, self.previous, c[0])?;
        self.models[1].encode(enc, self.buckets[0].of(c[0]), c[1])?;
        self.models[2].encode(enc, self.buckets[1].of(c[1]), c[2])?;
        self.previous = self.buckets[0].of(c[0]);
        Ok(())
    }

    fn decode(&mut self, dec: &mut AdaptiveDecoder) -> Result<[i64; 3]> {
        let green = self.models[0].decode(dec, self.previous)?;
        let red = self.models[1].decode(dec, self.buckets[0].of(green))?;
        let blue = self.models[2].decode(dec, self.buckets[1].of(red))?;
        self.previous = self.buckets[0].of(green);
        Ok([green, red, blue])
    }
}
