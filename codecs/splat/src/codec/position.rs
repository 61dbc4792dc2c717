//! POSN: centres on a grid, in Morton order; the deltas between consecutive Morton codes coded
//! as bit length, top mantissa bits (adaptive) and the rest raw.
//!
//! The grid is chosen per axis: a fixed absolute step (SPZ's 2^-12 at `balanced`), aligned to
//! multiples of the step so that inputs already on that grid come back exactly, or
//! `position_bits` over the bounding box, whichever is finer. An axis that would need more than
//! [`MAX_POSITION_BITS`] at its step falls back to that many bits over its extent.

use terse_entropy::{AdaptiveDecoder, AdaptiveEncoder, AdaptiveIntegers, Container};

use super::section::{Section, corrupt};
use crate::error::Result;

/// Most bits per axis (SPZ's 24-bit fixed point).
pub const MAX_POSITION_BITS: u32 = 24;

/// The quantization grid of the centres: axis `k` of cell `q` is `origin[k] + q * cell[k]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Grid {
    /// Bits per axis of the Morton code.
    pub bits: u32,
    /// Centre of cell 0.
    pub origin: [f64; 3],
    /// Cell size per axis (0 on an axis where every centre is equal).
    pub cell: [f64; 3],
    /// Bounding box of the coded centres (min, max), for `Info`.
    pub bounds: [[f64; 3]; 2],
}

/// The cells `0..=max` a value range takes at `cell` from `origin`.
fn cells(origin: f64, hi: f64, cell: f64) -> u64 {
    if cell > 0.0 {
        ((hi - origin) / cell).round().max(0.0) as u64
    } else {
        0
    }
}

fn bits_for(max_cell: u64) -> u32 {
    (64 - max_cell.leading_zeros()).max(1)
}

impl Grid {
    /// The grid of `points`: per axis the finer of `step` (absolute, aligned to its multiples;
    /// 0 for none) and `bits` over the extent (0 for none); at least one must be set.
    pub fn choose(bits: u32, step: f64, points: impl Iterator<Item = [f32; 3]>) -> Self {
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for p in points {
            for k in 0..3 {
                lo[k] = lo[k].min(f64::from(p[k]));
                hi[k] = hi[k].max(f64::from(p[k]));
            }
        }
        if lo[0] > hi[0] {
            (lo, hi) = ([0.0; 3], [0.0; 3]);
        }
        let widest = |extent: f64| extent / ((1u64 << MAX_POSITION_BITS) - 1) as f64;
        let mut origin = lo;
        let mut cell = [0.0; 3];
        for k in 0..3 {
            let extent = hi[k] - lo[k];
            if extent <= 0.0 {
                continue;
            }
            let relative = match bits {
                0 => f64::INFINITY,
                b => extent / ((1u64 << b) - 1) as f64,
            };
            let fits =
                |o: f64, c: f64| c.is_finite() && bits_for(cells(o, hi[k], c)) <= MAX_POSITION_BITS;
            let aligned = (lo[k] / step).floor() * step;
            (origin[k], cell[k]) = if step > 0.0 && step <= relative && fits(aligned, step) {
                (aligned, step)
            } else if fits(lo[k], relative) {
                (lo[k], relative)
            } else {
                (lo[k], widest(extent))
            };
        }
        let bits = (0..3)
            .map(|k| bits_for(cells(origin[k], hi[k], cell[k])))
            .max()
            .unwrap_or(1);
        Self {
            bits,
            origin,
            cell,
            bounds: [lo, hi],
        }
    }

    fn max_cell(&self) -> i64 {
        ((1u64 << self.bits) - 1) as i64
    }

    /// The Morton code of a point's cell.
    pub fn code(&self, p: [f32; 3]) -> u128 {
        let max = self.max_cell();
        morton(std::array::from_fn(|k| {
            if self.cell[k] > 0.0 {
                let q = ((f64::from(p[k]) - self.origin[k]) / self.cell[k]).round() as i64;
                q.clamp(0, max) as u32
            } else {
                0
            }
        }))
    }

    /// The centre a Morton code stands for.
    pub fn point(&self, code: u128) -> [f32; 3] {
        let q = unmorton(code);
        std::array::from_fn(|k| (self.origin[k] + f64::from(q[k]) * self.cell[k]) as f32)
    }

    /// Writes `position_bits`, `position_origin`, `position_cell` and `bounds`.
    pub fn write_header(&self, container: &mut Container) {
        let [lo, hi] = self.bounds;
        container.put_u64("position_bits", u64::from(self.bits));
        container.put_f64s("position_origin", &self.origin);
        container.put_f64s("position_cell", &self.cell);
        container.put_f64s("bounds", &[lo[0], lo[1], lo[2], hi[0], hi[1], hi[2]]);
    }

    /// Reads what [`Grid::write_header`] wrote.
    pub fn from_header(container: &Container) -> Result<Self> {
        let max = u64::from(MAX_POSITION_BITS);
        let bits = super::ranged(container, "position_bits", 1, max)? as u32;
        let origin = container.f64s::<3>("position_origin")?;
        let cell = container.f64s::<3>("position_cell")?;
        let b = container.f64s::<6>("bounds")?;
        if origin.iter().any(|o| !o.is_finite())
            || cell.iter().any(|c| !(c.is_finite() && *c >= 0.0))
        {
            return Err(corrupt(
                "header fields `position_origin`/`position_cell` are not a grid",
            ));
        }
        Ok(Self {
            bits,
            origin,
            cell,
            bounds: [[b[0], b[1], b[2]], [b[3], b[4], b[5]]],
        })
    }
}

/// Bits 0..21 of `v` spread to every third bit.
fn spread21(v: u64) -> u64 {
    let mut x = v & 0x1f_ffff;
    x = (x | (x << 32)) & 0x001f_0000_0000_ffff;
    x = (x | (x << 16)) & 0x001f_0000_ff00_00ff;
    x = (x | (x << 8)) & 0x100f_00f0_0f00_f00f;
    x = (x | (x << 4)) & 0x10c3_0c30_c30c_30c3;
    (x | (x << 2)) & 0x1249_2492_4924_9249
}

/// The inverse of [`spread21`]: every third bit gathered.
fn compact21(v: u64) -> u64 {
    let mut x = v & 0x1249_2492_4924_9249;
    x = (x ^ (x >> 2)) & 0x10c3_0c30_c30c_30c3;
    x = (x ^ (x >> 4)) & 0x100f_00f0_0f00_f00f;
    x = (x ^ (x >> 8)) & 0x001f_0000_ff00_00ff;
    x = (x ^ (x >> 16)) & 0x001f_0000_0000_ffff;
    (x ^ (x >> 32)) & 0x1f_ffff
}

/// Bit `b` of axis `a` goes to bit `3b + a` (up to 24 bits per axis: 72-bit codes).
fn morton(q: [u32; 3]) -> u128 {
    let spread = |v: u32| {
        u128::from(spread21(u64::from(v))) | (u128::from(spread21(u64::from(v >> 21))) << 63)
    };
    spread(q[0]) | (spread(q[1]) << 1) | (spread(q[2]) << 2)
}

fn unmorton(code: u128) -> [u32; 3] {
    std::array::from_fn(|axis| {
        let c = code >> axis;
        (compact21(c as u64 & ((1 << 63) - 1)) | (compact21((c >> 63) as u64) << 21)) as u32
    })
}

/// Most bits of a Morton delta.
const MAX_DELTA_BITS: usize = 3 * MAX_POSITION_BITS as usize;

/// Ascending Morton codes as deltas; the context of a length is the previous length.
pub(super) struct MortonCodes {
    bits: u32,
    lengths: AdaptiveIntegers,
    tops: AdaptiveIntegers,
    previous: u128,
    previous_len: usize,
}

impl MortonCodes {
    /// The model of codes on a `bits`-bit grid.
    pub fn new(bits: u32) -> Result<Self> {
        let contexts = MAX_DELTA_BITS + 1;
        Ok(Self {
            bits,
            lengths: AdaptiveIntegers::new(0, MAX_DELTA_BITS as i64, contexts)?,
            tops: AdaptiveIntegers::new(0, 3, contexts)?,
            previous: 0,
            previous_len: 0,
        })
    }
}

/// Raw bits of a value wider than 64 bits: the low 64 first, then the rest.
fn encode_wide(enc: &mut AdaptiveEncoder, value: u128, bits: u32) -> Result<()> {
    enc.encode_bits(value as u64, bits.min(64))?;
    if bits > 64 {
        enc.encode_bits((value >> 64) as u64, bits - 64)?;
    }
    Ok(())
}

fn decode_wide(dec: &mut AdaptiveDecoder, bits: u32) -> Result<u128> {
    let low = u128::from(dec.decode_bits(bits.min(64))?);
    let high = match bits {
        65.. => u128::from(dec.decode_bits(bits - 64)?) << 64,
        _ => 0,
    };
    Ok(low | high)
}

impl Section for MortonCodes {
    type Value = u128;

    fn encode(&mut self, enc: &mut AdaptiveEncoder, code: u128) -> Result<()> {
        let delta = code - self.previous;
        let len = 128 - delta.leading_zeros();
        self.lengths
            .encode(enc, self.previous_len, i64::from(len))?;
        if len > 1 {
            let below = len - 1;
            let top_bits = below.min(2);
            let top = (delta >> (below - top_bits)) & ((1 << top_bits) - 1);
            self.tops.encode(enc, len as usize, top as i64)?;
            encode_wide(enc, delta, below - top_bits)?;
        }
        self.previous = code;
        self.previous_len = len as usize;
        Ok(())
    }

    fn decode(&mut self, dec: &mut AdaptiveDecoder) -> Result<u128> {
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
            let low_bits = below - top_bits;
            (1u128 << below)
                | ((top as u128) << low_bits)
                | (decode_wide(dec, low_bits)? & ((1u128 << low_bits) - 1))
        };
        let code = self
            .previous
            .checked_add(delta)
            .filter(|&c| c < 1u128 << (3 * bits))
            .ok_or_else(|| corrupt("Morton code overflows the grid"))?;
        self.previous = code;
        self.previous_len = len as usize;
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn morton_codes_interleave_and_invert_up_to_24_bits() {
        let slow = |q: [u32; 3]| {
            let mut code = 0u128;
            for b in 0..MAX_POSITION_BITS {
                for (axis, v) in q.iter().enumerate() {
                    code |= u128::from((v >> b) & 1) << (3 * b + axis as u32);
                }
            }
            code
        };
        let mut x = 0x9e37_79b9_u32;
        for _ in 0..10_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let q = [x & 0xff_ffff, x.rotate_left(11) & 0xff_ffff, x >> 8];
            assert_eq!(morton(q), slow(q));
            assert_eq!(unmorton(morton(q)), q);
        }
        let top = (1 << MAX_POSITION_BITS) - 1;
        assert_eq!(unmorton(morton([top; 3])), [top; 3]);
    }

    #[test]
    fn a_fixed_step_aligns_to_its_multiples_and_keeps_points_on_it_exactly() {
        let step = 1.0 / 4096.0;
        let points = [[-1.5, 0.25, 3.0], [1700.0, -2.0, 3.0], [0.125, 0.0, 3.0]];
        let grid = Grid::choose(0, step, points.iter().copied());
        assert_eq!(grid.cell, [step, step, 0.0]);
        assert_eq!(grid.bits, 23);
        for p in points {
            assert_eq!(grid.point(grid.code(p)), p);
        }
    }

    #[test]
    fn the_finer_of_step_and_bits_wins_per_axis_and_wide_axes_fall_back() {
        let points = [[0.0, 0.0, 0.0], [1.0, 1e5, 0.5]];
        let grid = Grid::choose(16, 1.0 / 4096.0, points.iter().copied());
        assert_eq!(grid.cell[0], 1.0 / 65_535.0);
        assert_eq!(grid.cell[1], 1e5 / 65_535.0);
        let wide = Grid::choose(0, 1.0 / 4096.0, [[0.0; 3], [1e5, 0.0, 0.0]].into_iter());
        assert_eq!(wide.bits, MAX_POSITION_BITS);
        assert_eq!(wide.cell[0], 1e5 / ((1u64 << 24) - 1) as f64);
    }
}
