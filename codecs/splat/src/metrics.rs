//! Per-attribute reconstruction errors of a lossy coding.

use crate::scene::{SplatScene, sigmoid};

/// SH degree-0 basis constant: colour = 0.5 + C0 · f_dc.
pub const SH_C0: f64 = 0.282_094_791_773_878_14;

/// Error of one attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeError {
    /// `position` (scene units), `position_relative` (÷ bounding-box diagonal), `scale` (log
    /// units), `rotation_deg` (angle between quaternions), `opacity` (after the sigmoid),
    /// `sh_dc` (coefficient units; PSNR of the base colour in [0, 1]), `sh_rest`.
    pub attribute: &'static str,
    /// Mean signed error, original minus decoded (a bias; for `rotation_deg`, an angle, the mean angle).
    pub mean_error: f64,
    /// Root mean square error.
    pub rmse: f64,
    /// Largest absolute error.
    pub max_abs_error: f64,
    /// PSNR where a peak is defined.
    pub psnr_db: Option<f64>,
}

#[derive(Default)]
struct Accumulator {
    sum: f64,
    sum_sq: f64,
    max: f64,
    count: usize,
}

impl Accumulator {
    fn add(&mut self, error: f64) {
        self.sum += error;
        self.sum_sq += error * error;
        self.max = self.max.max(error.abs());
        self.count += 1;
    }

    fn finish(&self, attribute: &'static str, peak: Option<f64>) -> AttributeError {
        let count = self.count.max(1) as f64;
        let rmse = (self.sum_sq / count).sqrt();
        let psnr_db = peak.map(|p| {
            if rmse == 0.0 {
                f64::INFINITY
            } else {
                20.0 * (p / rmse).log10()
            }
        });
        AttributeError {
            attribute,
            mean_error: self.sum / count,
            rmse,
            max_abs_error: self.max,
            psnr_db,
        }
    }
}

fn angle_deg(a: [f32; 4], b: [f32; 4]) -> f64 {
    let norm = |q: [f32; 4]| q.iter().map(|&c| f64::from(c).powi(2)).sum::<f64>().sqrt();
    let dot: f64 = a
        .iter()
        .zip(&b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum::<f64>()
        / (norm(a) * norm(b));
    2.0 * dot.abs().min(1.0).acos().to_degrees()
}

/// Errors of `decoded` against `original` (same splats, same order, same SH degree or lower:
/// missing bands count as zeros).
pub fn attribute_errors(original: &SplatScene, decoded: &SplatScene) -> Vec<AttributeError> {
    assert_eq!(
        original.len(),
        decoded.len(),
        "scenes must hold the same splats"
    );
    let (lo, hi) = original.bounds();
    let diagonal = (0..3)
        .map(|k| f64::from(hi[k] - lo[k]).powi(2))
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    let mut position = Accumulator::default();
    let mut scale = Accumulator::default();
    let mut rotation = Accumulator::default();
    let mut opacity = Accumulator::default();
    let mut sh_dc = Accumulator::default();
    let mut base_color = Accumulator::default();
    let mut sh_rest = Accumulator::default();
    let coeffs_in = original.sh_rest_per_splat() / 3;
    let coeffs_out = decoded.sh_rest_per_splat() / 3;
    for i in 0..original.len() {
        for k in 0..3 {
            position.add(f64::from(original.positions[i][k]) - f64::from(decoded.positions[i][k]));
            scale.add(f64::from(original.scales[i][k]) - f64::from(decoded.scales[i][k]));
            let dc = f64::from(original.colors[i][k]) - f64::from(decoded.colors[i][k]);
            sh_dc.add(dc);
            let clamp = |c: f32| (0.5 + SH_C0 * f64::from(c)).clamp(0.0, 1.0);
            base_color.add(clamp(original.colors[i][k]) - clamp(decoded.colors[i][k]));
        }
        rotation.add(angle_deg(original.rotations[i], decoded.rotations[i]));
        opacity.add(
            f64::from(sigmoid(original.opacities[i])) - f64::from(sigmoid(decoded.opacities[i])),
        );
        let (a, b) = (original.sh_of(i), decoded.sh_of(i));
        for channel in 0..3 {
            for k in 0..coeffs_in {
                let kept = if k < coeffs_out {
                    f64::from(b[channel * coeffs_out + k])
                } else {
                    0.0
                };
                sh_rest.add(f64::from(a[channel * coeffs_in + k]) - kept);
            }
        }
    }
    let absolute = position.finish("position", None);
    let relative = AttributeError {
        attribute: "position_relative",
        mean_error: absolute.mean_error / diagonal,
        rmse: absolute.rmse / diagonal,
        max_abs_error: position.max / diagonal,
        psnr_db: None,
    };
    let mut dc = sh_dc.finish("sh_dc", None);
    dc.psnr_db = base_color.finish("", Some(1.0)).psnr_db;
    let mut out = vec![
        absolute,
        relative,
        scale.finish("scale", None),
        rotation.finish("rotation_deg", None),
        opacity.finish("opacity", Some(1.0)),
        dc,
    ];
    if coeffs_in > 0 {
        out.push(sh_rest.finish("sh_rest", None));
    }
    out
}
