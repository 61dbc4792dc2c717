//! ToUniform and rounding of the linear encoder's outputs: `z ↦ round(u(z) / 2^shift)` with
//! `u(z) = (erfc(−z / (s·√2)) − 1) · (2^(b−1) − ½)`, clamped to the grid's bound.
//!
//! The mapping is a non-decreasing step function of `z`, so it is fully described by where it
//! steps: for each level `k` of a grid, the smallest `f32` whose rounded value reaches `k`. The
//! encoder finds those thresholds once per grid (by bisection over the `f32`s, with the exact
//! formula) and then places each latent among them, which gives the formula's integer without
//! evaluating `erfc` per latent (the formula costs about 28 ns per latent, a fifth to a third
//! of WaLLoC's analysis time).

use std::sync::OnceLock;

/// The squash of one model, with the step thresholds of each grid built on first use.
#[derive(Debug, Clone)]
pub(crate) struct Squash {
    scale: f64,
    /// `2^(b−1) − 1`.
    max_level: i32,
    /// Per shift: the thresholds of levels `−bound + 1 ..= bound`, ascending.
    thresholds: Vec<OnceLock<Vec<f32>>>,
}

impl Squash {
    /// The squash of `bits`-bit latents at ToUniform scale `scale`.
    pub(crate) fn new(scale: f64, bits: u32) -> Self {
        Self {
            scale,
            max_level: (1i32 << (bits - 1)) - 1,
            thresholds: (0..bits).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Largest magnitude on the grid of `shift`.
    fn bound(&self, shift: u32) -> i32 {
        self.max_level >> shift
    }

    /// The formula itself (NaN gives 0).
    pub(crate) fn exact(&self, z: f32, shift: u32) -> i32 {
        let latent_max = f64::from(self.max_level) + 0.5;
        let u = (0.5 * libm::erfc(-f64::from(z) / self.scale / std::f64::consts::SQRT_2) - 0.5)
            * 2.0
            * latent_max;
        let bound = self.bound(shift);
        ((u / f64::from(1u32 << shift)).round() as i32).clamp(-bound, bound)
    }

    /// The same integer as [`Self::exact`], from the thresholds of the grid (grids coarser
    /// than the model's bits, where every value is 0, use the formula).
    pub(crate) fn level(&self, z: f32, shift: u32) -> i32 {
        match self.thresholds(shift) {
            _ if z.is_nan() => 0,
            Some(thresholds) => -self.bound(shift) + thresholds.partition_point(|&t| t <= z) as i32,
            None => self.exact(z, shift),
        }
    }

    /// The thresholds of the grid of `shift`, computed on first use.
    fn thresholds(&self, shift: u32) -> Option<&[f32]> {
        let cell = self.thresholds.get(shift as usize)?;
        Some(cell.get_or_init(|| {
            let bound = self.bound(shift);
            (-bound + 1..=bound)
                .map(|k| first_reaching(|z| self.exact(z, shift) >= k))
                .collect()
        }))
    }
}

/// The smallest `f32` (finite or infinite) for which `reached` holds, for a predicate that is
/// false then true along the `f32`s in order.
fn first_reaching(reached: impl Fn(f32) -> bool) -> f32 {
    // f32s in order as u32 keys: negative values reversed below the positive ones.
    let key = |z: f32| {
        let bits = z.to_bits();
        if bits >> 31 == 1 {
            !bits
        } else {
            bits | 1 << 31
        }
    };
    let value = |k: u32| f32::from_bits(if k >> 31 == 1 { k & !(1 << 31) } else { !k });
    let (mut lo, mut hi) = (key(f32::NEG_INFINITY), key(f32::INFINITY));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if reached(value(mid)) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    value(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next_up(z: f32, steps: i32) -> f32 {
        let mut z = z;
        for _ in 0..steps.unsigned_abs() {
            z = if steps > 0 {
                z.next_up()
            } else {
                z.next_down()
            };
        }
        z
    }

    #[test]
    fn thresholds_give_the_formulas_levels() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for (scale, bits) in [(1.0, 8), (2.37, 8), (0.61, 6), (5.0, 10)] {
            let squash = Squash::new(scale, bits);
            for shift in 0..bits + 2 {
                for &t in squash.thresholds(shift).unwrap_or_default() {
                    for steps in -3..=3 {
                        let z = next_up(t, steps);
                        assert_eq!(
                            squash.level(z, shift),
                            squash.exact(z, shift),
                            "{z} s{shift}"
                        );
                    }
                }
                for _ in 0..20_000 {
                    let z = ((next() - 0.5) * 12.0 * scale) as f32;
                    assert_eq!(
                        squash.level(z, shift),
                        squash.exact(z, shift),
                        "{z} s{shift}"
                    );
                }
                for z in [
                    f32::NEG_INFINITY,
                    -1e30,
                    -0.0,
                    0.0,
                    1e30,
                    f32::INFINITY,
                    f32::NAN,
                ] {
                    assert_eq!(
                        squash.level(z, shift),
                        squash.exact(z, shift),
                        "{z} s{shift}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_search_finds_the_first_float_of_a_predicate() {
        for target in [-3.5f32, -1e-30, 1e-30, 2.0, f32::MAX] {
            assert_eq!(first_reaching(|z| z >= target).to_bits(), target.to_bits());
        }
        // −0 comes before +0 in the search's order, and equals it.
        assert_eq!(first_reaching(|z| z >= 0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(first_reaching(|_| true), f32::NEG_INFINITY);
    }
}
