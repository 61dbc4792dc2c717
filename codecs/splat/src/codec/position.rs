//! POSN: centres on a `bits`-bit grid over the bounding box, in Morton order; the deltas
//! between consecutive Morton codes coded as bit length, top mantissa bits (adaptive) and the
//! rest raw.

use terse_entropy::{AdaptiveDecoder, AdaptiveEncoder, AdaptiveIntegers, Container};

use super::section::{Section, corrupt};
use crate::error::Result;

/// The quantization grid of the centres.
#[derive(Debug, Clone, Copy)]
pub(super) struct Grid {
    /// Bits per axis.
    pub bits: u32,
    /// Lowest corner of the box.
    pub lo: [f64; 3],
    /// Highest corner of the box.
    pub hi: [f64; 3],
}

impl Grid {
    /// The grid over the bounding box of `points` (a unit box at 0 if there are none).
    pub fn around(bits: u32, points: impl Iterator<Item = [f32; 3]>) -> Self {
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        let mut any = false;
        for p in points {
            any = true;
            for k in 0..3 {
                lo[k] = lo[k].min(f64::from(p[k]));
                hi[k] = hi[k].max(f64::from(p[k]));
            }
        }
        if !any {
            (lo, hi) = ([0.0; 3], [0.0; 3]);
        }
        Self { bits, lo, hi }
    }

    fn steps(&self) -> f64 {
        ((1u64 << self.bits) - 1) as f64
    }

    /// The Morton code of a point's cell.
    pub fn code(&self, p: [f32; 3]) -> u64 {
        let grid = self.steps();
        let q = std::array::from_fn(|k| {
            let cell = if self.hi[k] > self.lo[k] {
                (self.hi[k] - self.lo[k]) / grid
            } else {
                1.0
            };
            (((f64::from(p[k]) - self.lo[k]) / cell).round() as i64).clamp(0, grid as i64) as u32
        });
        morton(q, self.bits)
    }

    /// The centre a Morton code stands for.
    pub fn point(&self, code: u64) -> [f32; 3] {
        let grid = self.steps();
        let q = unmorton(code, self.bits);
        std::array::from_fn(|k| {
            let cell = if self.hi[k] > self.lo[k] {
                (self.hi[k] - self.lo[k]) / grid
            } else {
                0.0
            };
            (self.lo[k] + f64::from(q[k]) * cell) as f32
        })
    }

    /// Writes `position_bits` and `bounds`.
    pub fn write_header(&self, container: &mut Container) {
        let (lo, hi) = (self.lo, self.hi);
        container.put_u64("position_bits", u64::from(self.bits));
        container.put_f64s("bounds", &[lo[0], lo[1], lo[2], hi[0], hi[1], hi[2]]);
    }

    /// Reads what [`Grid::write_header`] wrote.
    pub fn from_header(container: &Container) -> Result<Self> {
        let bits = super::ranged(container, "position_bits", 8, 21)? as u32;
        let b = container.f64s::<6>("bounds")?;
        Ok(Self {
            bits,
            lo: [b[0], b[1], b[2]],
            hi: [b[3], b[4], b[5]],
        })
    }
}

fn morton(q: [u32; 3], bits: u32) -> u64 {
    let mut code = 0u64;
    for b in 0..bits {
        for (axis, &v) in q.iter().enumerate() {
            code |= u64::from((v >> b) & 1) << (3 * b + axis as u32);
        }
    }
    code
}

fn unmorton(code: u64, bits: u32) -> [u32; 3] {
    let mut q = [0u32; 3];
    for b in 0..bits {
        for (axis, v) in q.iter_mut().enumerate() {
            *v |= (((code >> (3 * b + axis as u32)) & 1) as u32) << b;
        }
    }
    q
}

/// Ascending Morton codes as deltas; the context of a length is the previous length.
pub(super) struct MortonCodes {
    bits: u32,
    lengths: AdaptiveIntegers,
    tops: AdaptiveIntegers,
    previous: u64,
    previous_len: usize,
}

impl MortonCodes {
    /// The model of codes on a `bits`-bit grid.
    pub fn new(bits: u32) -> Result<Self> {
        Ok(Self {
            bits,
            lengths: AdaptiveIntegers::new(0, 64, 65)?,
            tops: AdaptiveIntegers::new(0, 3, 65)?,
            previous: 0,
            previous_len: 0,
        })
    }
}

impl Section for MortonCodes {
    type Value = u64;

    fn encode(&mut self, enc: &mut AdaptiveEncoder, code: u64) -> Result<()> {
        let delta = code - self.previous;
        let len = 64 - delta.leading_zeros();
        self.lengths
            .encode(enc, self.previous_len, i64::from(len))?;
        if len > 1 {
            let below = len - 1;
            let top_bits = below.min(2);
            let top = (delta >> (below - top_bits)) & ((1 << top_bits) - 1);
            self.tops.encode(enc, len as usize, top as i64)?;
            enc.encode_bits(delta, below - top_bits)?;
        }
        self.previous = code;
        self.previous_len = len as usize;
        Ok(())
    }

    fn decode(&mut self, dec: &mut AdaptiveDecoder) -> Result<u64> {
        let bits = self.bits;
        let len = self.lengths.decode(dec, self.previous_len)?;
        if !(0..=(3 * bits) as i64).contains(&len) {
            return Err(corrupt(format!(
                "Morton delta of {len} bits on a {bits}-bit grid"
            )));
        }
        let len = len as u32;
        let delta = if len == 0 {
            0
        } else if len == 1 {
            1
        } else {
            let below = len - 1;
            let top_bits = below.min(2);
            let top = self.tops.decode(dec, len as usize)?;
            if !(0..(1 << top_bits)).contains(&top) {
                return Err(corrupt("Morton delta mantissa out of range"));
            }
            (1u64 << below)
                | ((top as u64) << (below - top_bits))
                | dec.decode_bits(below - top_bits)?
        };
        let code = self
            .previous
            .checked_add(delta)
            .filter(|&c| c < 1u64 << (3 * bits))
            .ok_or_else(|| corrupt("Morton code overflows the grid"))?;
        self.previous = code;
        self.previous_len = len as usize;
        Ok(code)
    }
}
