//! Realistic synthetic scenes for tests and benchmarks: splats on surfaces (spheres, a ground
//! plane, a box) with scales, rotations and colours correlated over space, as an optimizer
//! would leave them, rather than uniform noise.

use crate::scene::{SplatScene, logit, sh_coeffs_per_channel};

/// SplitMix64: small, deterministic, good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Quaternion (w, x, y, z) rotating +z onto `n`, then by `spin` about `n`.
fn align_z(n: [f64; 3], spin: f64) -> [f64; 4] {
    let (x, y, z) = (n[0], n[1], n[2]);
    let base = if z < -0.999_999 {
        [0.0, 1.0, 0.0, 0.0]
    } else {
        let w = 1.0 + z;
        let norm = (w * w + y * y + x * x).sqrt();
        [w / norm, -y / norm, x / norm, 0.0]
    };
    let (s, c) = (spin / 2.0).sin_cos();
    let twist = [c, 0.0, 0.0, s]; // about local z, applied first
    let [aw, ax, ay, az] = base;
    let [bw, bx, by, bz] = twist;
    [
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ]
}

/// A scene of `n` splats with SH degree `sh_degree`, deterministic in `seed`.
pub fn surface_scene(n: usize, sh_degree: u8, seed: u64) -> SplatScene {
    let mut rng = Rng::new(seed);
    let coeffs = sh_coeffs_per_channel(sh_degree);
    let mut scene = SplatScene {
        sh_degree,
        ..SplatScene::default()
    };
    let spheres = [
        ([1.5, 0.8, 0.0], 0.8),
        ([-1.2, 0.6, 1.0], 0.6),
        ([0.2, 1.8, -1.5], 1.0),
    ];
    for _ in 0..n {
        let pick = rng.uniform();
        let (p, normal) = if pick < 0.45 {
            let (c, r) = spheres[(rng.next_u64() % 3) as usize];
            let d = [rng.normal(), rng.normal(), rng.normal()];
            let len = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt().max(1e-9);
            let d = d.map(|v| v / len);
            ([c[0] + r * d[0], c[1] + r * d[1], c[2] + r * d[2]], d)
        } else if pick < 0.85 {
            (
                [rng.uniform() * 8.0 - 4.0, 0.0, rng.uniform() * 8.0 - 4.0],
                [0.0, 1.0, 0.0],
            )
        } else {
            let face = (rng.next_u64() % 3) as usize;
            let mut p = [
                rng.uniform() * 1.2 - 0.6 + 2.5,
                rng.uniform() * 1.2 + 0.0,
                rng.uniform() * 1.2 - 0.6 - 2.0,
            ];
            let mut normal = [0.0; 3];
            p[face] = if face == 1 { 1.2 } else { p[face] + 0.6 };
            normal[face] = 1.0;
            (p, normal)
        };
        let jitter = 0.004;
        scene.positions.push(std::array::from_fn(|k| {
            (p[k] + jitter * rng.normal()) as f32
        }));
        // Flat splats tangent to the surface; size varies smoothly over space.
        let size = -4.2 + 0.6 * (p[0] * 0.7).sin() + 0.25 * rng.normal();
        scene.scales.push([
            (size + 0.3 * rng.normal()) as f32,
            (size + 0.3 * rng.normal()) as f32,
            (size - 2.0 + 0.3 * rng.normal()) as f32,
        ]);
        let q = align_z(normal, rng.uniform() * std::f64::consts::TAU);
        let sign = if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
        scene.rotations.push(q.map(|c| (sign * c * 1.3) as f32));
        let alpha = if rng.uniform() < 0.7 {
            0.9 + 0.099 * rng.uniform()
        } else {
            0.02 + 0.9 * rng.uniform()
        };
        scene.opacities.push(logit(alpha as f32));
        let base = [
            (p[0] * 0.9).sin(),
            (p[2] * 0.7).cos(),
            (p[1] * 1.3 + p[0]).sin(),
        ];
        scene.colors.push(std::array::from_fn(|k| {
            (0.8 * base[k] + 0.6 * base[(k + 1) % 3] * 0.3 + 0.08 * rng.normal()) as f32
        }));
        for _ in 0..3 {
            for k in 0..coeffs {
                let band = if k < 3 {
                    1.0
                } else if k < 8 {
                    2.0
                } else {
                    3.0
                };
                scene
                    .sh_rest
                    .push((0.12 / band * rng.normal() * (p[2] * 0.5 + k as f64).cos()) as f32);
            }
        }
    }
    scene
}
