//! The in-memory scene: one struct of arrays in the standard 3DGS parameterization.

use crate::error::{Result, SplatError, malformed};

/// Highest spherical-harmonics degree handled.
pub const MAX_SH_DEGREE: u8 = 3;

/// Number of higher-order SH coefficients per colour channel for a degree (0, 3, 8, 15).
pub fn sh_coeffs_per_channel(degree: u8) -> usize {
    let d = degree as usize;
    (d + 1) * (d + 1) - 1
}

/// SH degree whose per-channel coefficient count is `coeffs`, if any.
pub fn sh_degree_for_coeffs(coeffs: usize) -> Option<u8> {
    (0..=MAX_SH_DEGREE).find(|&d| sh_coeffs_per_channel(d) == coeffs)
}

/// A 3D Gaussian splat scene. Values are in the parameterization 3DGS trains and stores:
/// log scales, logit opacities, SH DC coefficients as colours, quaternions `w, x, y, z`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SplatScene {
    /// Centres.
    pub positions: Vec<[f32; 3]>,
    /// Log of the per-axis standard deviations.
    pub scales: Vec<[f32; 3]>,
    /// Rotation quaternions, `w` first (PLY `rot_0..3`); not necessarily normalized.
    pub rotations: Vec<[f32; 4]>,
    /// Opacity before the sigmoid.
    pub opacities: Vec<f32>,
    /// SH degree-0 coefficients (`f_dc_0..2`).
    pub colors: Vec<[f32; 3]>,
    /// SH degree of `sh_rest` (0..=3).
    pub sh_degree: u8,
    /// Higher-order SH coefficients, `3 * sh_coeffs_per_channel(sh_degree)` per splat in PLY
    /// order: all red coefficients, then green, then blue (`f_rest_*`).
    pub sh_rest: Vec<f32>,
    /// Whether the scene was trained with antialiasing (SPZ flag).
    pub antialiased: bool,
}

impl SplatScene {
    /// Number of splats.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// True when the scene has no splats.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Higher-order SH values per splat.
    pub fn sh_rest_per_splat(&self) -> usize {
        3 * sh_coeffs_per_channel(self.sh_degree)
    }

    /// The higher-order SH values of splat `i`.
    pub fn sh_of(&self, i: usize) -> &[f32] {
        let n = self.sh_rest_per_splat();
        &self.sh_rest[i * n..(i + 1) * n]
    }

    /// Checks that every array has one entry per splat and that every value is finite (opacity
    /// logits may be ±∞).
    pub fn validate(&self) -> Result<()> {
        let n = self.len();
        if self.sh_degree > MAX_SH_DEGREE {
            return Err(malformed(format!(
                "SH degree {} exceeds {MAX_SH_DEGREE}",
                self.sh_degree
            )));
        }
        let lengths = [
            ("scales", self.scales.len()),
            ("rotations", self.rotations.len()),
            ("opacities", self.opacities.len()),
            ("colors", self.colors.len()),
        ];
        for (name, len) in lengths {
            if len != n {
                return Err(malformed(format!(
                    "{name} has {len} entries for {n} splats"
                )));
            }
        }
        if self.sh_rest.len() != n * self.sh_rest_per_splat() {
            return Err(malformed(format!(
                "sh_rest has {} values, expected {} for {n} splats of degree {}",
                self.sh_rest.len(),
                n * self.sh_rest_per_splat(),
                self.sh_degree
            )));
        }
        let check = |name: &str, values: &[f32], per: usize| -> Result<()> {
            match values.iter().position(|v| !v.is_finite()) {
                Some(at) => Err(malformed(format!(
                    "splat {}: {name} is not finite ({})",
                    at / per.max(1),
                    values[at]
                ))),
                None => Ok(()),
            }
        };
        check("position", self.positions.as_flattened(), 3)?;
        check("scale", self.scales.as_flattened(), 3)?;
        check("rotation", self.rotations.as_flattened(), 4)?;
        // ±∞ logits are legitimate (fully opaque / transparent after the sigmoid); NaN is not.
        if let Some(i) = self.opacities.iter().position(|v| v.is_nan()) {
            return Err(malformed(format!("splat {i}: opacity is NaN")));
        }
        check("color", self.colors.as_flattened(), 3)?;
        check("sh_rest", &self.sh_rest, self.sh_rest_per_splat())?;
        if let Some(i) = self
            .rotations
            .iter()
            .position(|q| q.iter().all(|&c| c == 0.0))
        {
            return Err(malformed(format!(
                "splat {i}: rotation quaternion is all zeros"
            )));
        }
        Ok(())
    }

    /// Keeps the splats for which `keep` is true, in order.
    pub fn retain_indices(&self, indices: &[usize]) -> SplatScene {
        let per = self.sh_rest_per_splat();
        SplatScene {
            positions: indices.iter().map(|&i| self.positions[i]).collect(),
            scales: indices.iter().map(|&i| self.scales[i]).collect(),
            rotations: indices.iter().map(|&i| self.rotations[i]).collect(),
            opacities: indices.iter().map(|&i| self.opacities[i]).collect(),
            colors: indices.iter().map(|&i| self.colors[i]).collect(),
            sh_degree: self.sh_degree,
            sh_rest: indices
                .iter()
                .flat_map(|&i| self.sh_rest[i * per..(i + 1) * per].iter().copied())
                .collect(),
            antialiased: self.antialiased,
        }
    }

    /// Drops SH bands above `degree` (no-op when the scene has fewer).
    pub fn truncate_sh(&mut self, degree: u8) {
        if degree >= self.sh_degree {
            return;
        }
        let (old, new) = (
            sh_coeffs_per_channel(self.sh_degree),
            sh_coeffs_per_channel(degree),
        );
        let mut rest = Vec::with_capacity(self.len() * 3 * new);
        for splat in self.sh_rest.chunks_exact(3 * old) {
            for channel in 0..3 {
                rest.extend_from_slice(&splat[channel * old..channel * old + new]);
            }
        }
        self.sh_rest = rest;
        self.sh_degree = degree;
    }

    /// Axis-aligned bounds of the centres (zeros for an empty scene).
    pub fn bounds(&self) -> ([f32; 3], [f32; 3]) {
        if self.is_empty() {
            return ([0.0; 3], [0.0; 3]);
        }
        let mut lo = [f32::INFINITY; 3];
        let mut hi = [f32::NEG_INFINITY; 3];
        for p in &self.positions {
            for k in 0..3 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        (lo, hi)
    }
}

/// Fails with `TooLarge` when `count` exceeds `limit`.
pub fn check_splat_limit(count: u64, limit: u64) -> Result<()> {
    if count > limit {
        return Err(SplatError::TooLarge(format!(
            "scene has {count} splats, the limit is {limit}"
        )));
    }
    Ok(())
}

/// Logistic function.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Inverse of [`sigmoid`].
pub fn logit(p: f32) -> f32 {
    (p / (1.0 - p)).ln()
}
