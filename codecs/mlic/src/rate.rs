//! Rate points of a variable-rate model (gain units, after Cui et al., "Asymmetric Gained Deep
//! Image Compression"): rate point `r` multiplies the analysis latents channel-wise by `G[r]`
//! before `h_a` and quantization, and the decoder multiplies the dequantized latents by the
//! inverse gains `IG[r]` before `g_s`. The integer entropy model only ever sees the gained
//! latents, so one entropy model serves every rate point and decoding stays bit-exact.

use ndarray::Array4;
use serde::Deserialize;

use crate::{MlicError, Result};

/// Most rate points a model may declare.
pub const MAX_RATE_POINTS: usize = 64;

/// One rate point of a variable-rate model.
#[derive(Debug, Clone, PartialEq)]
pub struct RatePoint {
    /// Its index in the model (recorded in bitstreams).
    pub index: usize,
    /// The rate-distortion weight it was trained for (× 255² MSE + bpp).
    pub lambda: f64,
    /// Channel gains applied by the encoder, `[M]`.
    pub gain: Vec<f32>,
    /// Channel gains applied by the decoder before synthesis, `[M]`.
    pub inverse_gain: Vec<f32>,
}

#[derive(Deserialize)]
struct RateSpec {
    lambda: f64,
    gain: Vec<f32>,
    inverse_gain: Vec<f32>,
}

#[derive(Deserialize)]
struct RatesFile {
    latent_channels: usize,
    #[serde(default)]
    rates: Vec<RateSpec>,
}

impl RatePoint {
    /// The rate points `entropy.json` declares under `rates` (empty: a fixed-rate model).
    /// Each needs one finite, positive gain and inverse gain per latent channel.
    pub fn from_entropy_json(entropy_json: &[u8]) -> Result<Vec<RatePoint>> {
        let file: RatesFile = serde_json::from_slice(entropy_json)
            .map_err(|e| MlicError::Model(format!("entropy.json: {e}")))?;
        if file.rates.len() > MAX_RATE_POINTS {
            return Err(MlicError::Model(format!(
                "{} rate points (at most {MAX_RATE_POINTS})",
                file.rates.len()
            )));
        }
        file.rates
            .into_iter()
            .enumerate()
            .map(|(index, spec)| {
                let usable = |v: &[f32]| {
                    v.len() == file.latent_channels && v.iter().all(|g| g.is_finite() && *g > 0.0)
                };
                if !usable(&spec.gain) || !usable(&spec.inverse_gain) || !spec.lambda.is_finite() {
                    return Err(MlicError::Model(format!(
                        "rate point {index}: gains must be {} finite positive values each",
                        file.latent_channels
                    )));
                }
                Ok(RatePoint {
                    index,
                    lambda: spec.lambda,
                    gain: spec.gain,
                    inverse_gain: spec.inverse_gain,
                })
            })
            .collect()
    }

    /// The gains as the analysis network's second input, `[1, M, 1, 1]`.
    pub fn gain_tensor(&self) -> Array4<f32> {
        Array4::from_shape_vec((1, self.gain.len(), 1, 1), self.gain.clone()).expect("sized")
    }
}

/// The codec name of rate point `index` of model `model`: `mlic` → `mlic-q1`, `mlic-q2`, …
/// (q1 is the smallest rate).
pub fn rate_point_name(model: &str, index: usize) -> String {
    format!("{model}-q{}", index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_points_are_read_and_checked() {
        let json = br#"{"latent_channels": 2, "rates": [
            {"lambda": 0.01, "gain": [1.0, 2.0], "inverse_gain": [1.0, 0.5]},
            {"lambda": 0.02, "gain": [3.0, 4.0], "inverse_gain": [0.3, 0.25]}]}"#;
        let rates = RatePoint::from_entropy_json(json).unwrap();
        assert_eq!(rates.len(), 2);
        assert_eq!(rates[1].index, 1);
        assert_eq!(rates[1].gain_tensor().shape(), [1, 2, 1, 1]);
        assert_eq!(rate_point_name("mlic", 1), "mlic-q2");
        let fixed = br#"{"latent_channels": 2}"#;
        assert!(RatePoint::from_entropy_json(fixed).unwrap().is_empty());
        for bad in [
            r#"[1.0]"#,
            r#"[1.0, 0.0]"#,
            r#"[1.0, -2.0]"#,
            r#"[1.0, 1e39]"#,
        ] {
            let json = format!(
                r#"{{"latent_channels": 2, "rates": [{{"lambda": 0.1, "gain": {bad}, "inverse_gain": [1.0, 1.0]}}]}}"#
            );
            assert!(
                RatePoint::from_entropy_json(json.as_bytes()).is_err(),
                "{bad}"
            );
        }
    }
}
