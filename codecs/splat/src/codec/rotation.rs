//! ROTN: rotations as "smallest three": the index of the largest quaternion component (in the
//! context of the previous splat's), then the other three on a `bits`-bit grid (in the
//! context of the index and their slot).

use terse_entropy::{AdaptiveDecoder, AdaptiveEncoder, AdaptiveIntegers, Container};

use super::section::{Attribute, EqualParts, MAX_RAW_BITS, Section, corrupt};
use crate::error::Result;

const FRAC_1_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;

/// Contexts of a component by the squared length of the ones before it in its rotation.
const RINGS: usize = 8;

/// A quantized rotation: the largest component's index and the other three.
pub(super) type Quantized = (usize, [i64; 3]);

/// The rotation model.
pub(super) struct Rotations {
    bits: u32,
    raw_bits: u32,
    m: i64,
    /// The rings of `0..m²`.
    rings: EqualParts<RINGS>,
    largest: AdaptiveIntegers,
    components: AdaptiveIntegers,
    previous: usize,
}

impl Rotations {
    /// The model of `bits`-bit components whose `raw_bits` low bits are coded raw.
    pub fn new(bits: u32, raw_bits: u32) -> Result<Self> {
        let m = (1i64 << bits) - 1;
        Ok(Self {
            bits,
            raw_bits,
            m,
            rings: EqualParts::new((m * m) as u128),
            largest: AdaptiveIntegers::new(0, 3, 4)?,
            components: AdaptiveIntegers::with_raw_low_bits(-m, m, 4 * 3 * RINGS, raw_bits)?,
            previous: 0,
        })
    }

    /// Writes `rotation_bits` and `rotation_raw_bits`.
    pub fn write_header(&self, container: &mut Container) {
        container.put_u64("rotation_bits", u64::from(self.bits));
        container.put_u64("rotation_raw_bits", u64::from(self.raw_bits));
    }

    /// Normalized `w, x, y, z` quaternion with the largest component made positive, as
    /// (largest index, the other three quantized to `-m..=m`, `m = 2^bits - 1`).
    pub fn quantize(bits: u32, q: [f32; 4]) -> Quantized {
        let m = (1i64 << bits) - 1;
        let norm = q
            .iter()
            .map(|&c| f64::from(c) * f64::from(c))
            .sum::<f64>()
            .sqrt();
        let q = q.map(|c| f64::from(c) / norm);
        let largest = (0..4).fold(
            0,
            |best, i| if q[i].abs() > q[best].abs() { i } else { best },
        );
        let sign = if q[largest] < 0.0 { -1.0 } else { 1.0 };
        let mut rest = [0i64; 3];
        for (slot, i) in (0..4).filter(|&i| i != largest).enumerate() {
            rest[slot] = ((sign * q[i] / FRAC_1_SQRT_2 * m as f64).round() as i64).clamp(-m, m);
        }
        (largest, rest)
    }
}

impl Rotations {
    /// The context of slot `slot` of a rotation whose largest component is `largest`: the
    /// components before it bound what is left (the four have unit length), so the ring of
    /// their squared length says how wide this one may be.
    fn context(&self, largest: usize, before: &[i64]) -> usize {
        let squared: u64 = before.iter().map(|v| v.unsigned_abs().pow(2)).sum();
        (largest * 3 + before.len()) * RINGS + self.rings.of(squared)
    }
}

impl Attribute for Rotations {
    const TAG: [u8; 4] = *b"ROTN";
    type Output = [f32; 4];

    /// Reads `rotation_bits` and `rotation_raw_bits` and builds the model.
    fn from_header(container: &Container) -> Result<Self> {
        Self::new(
            super::ranged(container, "rotation_bits", 4, 15)? as u32,
            super::ranged(container, "rotation_raw_bits", 0, MAX_RAW_BITS)? as u32,
        )
    }

    /// The unit quaternion a quantized rotation stands for.
    fn dequantize(&self, (largest, rest): Quantized) -> [f32; 4] {
        let mut q = [0f64; 4];
        let mut sum = 0.0;
        for (slot, i) in (0..4).filter(|&i| i != largest).enumerate() {
            q[i] = rest[slot] as f64 / self.m as f64 * FRAC_1_SQRT_2;
            sum += q[i] * q[i];
        }
        q[largest] = (1.0 - sum).max(0.0).sqrt();
        q.map(|c| c as f32)
    }
}

impl Section for Rotations {
    type Value = Quantized;

    fn encode(&mut self, enc: &mut AdaptiveEncoder, (largest, rest): Quantized) -> Result<()> {
        self.largest.encode(enc, self.previous, largest as i64)?;
        for slot in 0..3 {
            let ctx = self.context(largest, &rest[..slot]);
            self.components.encode(enc, ctx, rest[slot])?;
        }
        self.previous = largest;
        Ok(())
    }

    fn decode(&mut self, dec: &mut AdaptiveDecoder) -> Result<Quantized> {
        let largest = self.largest.decode(dec, self.previous)?;
        if !(0..4).contains(&largest) {
            return Err(corrupt("rotation index out of range"));
        }
        let largest = largest as usize;
        let mut rest = [0i64; 3];
        for slot in 0..3 {
            let ctx = self.context(largest, &rest[..slot]);
            let v = self.components.decode(dec, ctx)?;
            if !(-self.m..=self.m).contains(&v) {
                return Err(corrupt("rotation component out of range"));
            }
            rest[slot] = v;
        }
        self.previous = largest;
        Ok((largest, rest))
    }
}
