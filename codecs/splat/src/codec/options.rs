//! Quantization knobs and their presets.

use crate::error::{Result, SplatError};

/// Largest SH codebook.
pub const MAX_SH_CODEBOOK: u32 = 65_536;

/// SPZ's position step: 24-bit fixed point with 12 fractional bits.
pub const SPZ_POSITION_STEP: f32 = 1.0 / 4096.0;
/// Finest absolute position step.
pub const MIN_POSITION_STEP: f32 = 1.0 / 1_048_576.0;

/// A named trade-off between size and fidelity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preset {
    /// Finer than SPZ on every attribute.
    High,
    /// SPZ's precision on every attribute (the default): positions on SPZ's absolute grid,
    /// colours, scales and SH on levels that contain SPZ's.
    #[default]
    Balanced,
    /// Coarser attributes for the smallest files.
    Small,
    /// For web delivery: about SOG's precision (16-bit positions over the bounding box, 6-bit
    /// rotations) with an SH codebook.
    Web,
}

impl Preset {
    /// Its entry in a row of per-preset `values` (High, Balanced, Small, Web).
    fn pick<T>(self, [high, balanced, small, web]: [T; 4]) -> T {
        match self {
            Preset::High => high,
            Preset::Balanced => balanced,
            Preset::Small => small,
            Preset::Web => web,
        }
    }
}

/// Quantization knobs; start from a [`Preset`] and override what you need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecOptions {
    /// Bits per position axis over the bounding box (8..=24; 0 for none).
    pub position_bits: u32,
    /// Absolute position step, aligned to its multiples (0 for none; SPZ's is 2^-12). Each axis
    /// takes the finer of this and `position_bits`; at least one must be set.
    pub position_step: f32,
    /// Quantization step of log-scales.
    pub scale_step: f32,
    /// Magnitude bits of each smallest-three rotation component (4..=15).
    pub rotation_bits: u32,
    /// Bits of opacity after the sigmoid (4..=12).
    pub opacity_bits: u32,
    /// Quantization step of the SH DC (colour) coefficients.
    pub color_step: f32,
    /// Quantization steps of SH bands 1, 2 and 3.
    pub sh_steps: [f32; 3],
    /// Highest SH degree kept (0..=3).
    pub max_sh_degree: u8,
    /// Splats whose opacity after the sigmoid is below this are dropped (0 keeps all).
    pub min_opacity: f32,
    /// Largest k-means codebook for the higher-order SH vectors (16..=65536); 0 quantizes
    /// every coefficient on its own. The encoder uses at most one entry per 16 splats (a power
    /// of two, see [`super::codebook_size`]) and keeps per-coefficient coding when the codebook
    /// does not make the file smaller. Entries are themselves quantized with `sh_steps`.
    pub sh_codebook: u32,
}

impl CodecOptions {
    /// The knobs of a preset: one line per knob, its value for each preset in the order
    /// High, Balanced, Small, Web.
    pub fn preset(preset: Preset) -> Self {
        let spz_color_step: f32 = 1.0 / (0.15 * 255.0);
        let sh_coarse = [1.0 / 4.0, 1.0 / 2.0, 1.0 / 2.0];
        Self {
            position_bits: preset.pick([18, 0, 11, 16]),
            position_step: preset.pick([SPZ_POSITION_STEP / 4.0, SPZ_POSITION_STEP, 0.0, 0.0]),
            scale_step: preset.pick([1.0 / 64.0, 1.0 / 16.0, 1.0 / 3.0, 1.0 / 8.0]),
            rotation_bits: preset.pick([11, 9, 6, 6]),
            opacity_bits: preset.pick([10, 8, 5, 7]),
            color_step: spz_color_step * preset.pick([0.25, 1.0, 4.0, 1.0]),
            sh_steps: preset.pick([
                [1.0 / 64.0, 1.0 / 32.0, 1.0 / 32.0],
                [1.0 / 16.0, 1.0 / 8.0, 1.0 / 8.0],
                sh_coarse,
                sh_coarse,
            ]),
            max_sh_degree: 3,
            min_opacity: preset.pick([0.0, 0.0, 1.0 / 255.0, 1.0 / 255.0]),
            sh_codebook: preset.pick([0, 0, 0, 4096]),
        }
    }

    /// Checks every knob's range.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(SplatError::InvalidOptions(m));
        let most = super::position::MAX_POSITION_BITS;
        if self.position_bits != 0 && !(8..=most).contains(&self.position_bits) {
            return bad(format!(
                "position_bits {} is neither 0 nor in 8..={most}",
                self.position_bits
            ));
        }
        let step = self.position_step;
        if step != 0.0 && !(step.is_finite() && (MIN_POSITION_STEP..=16.0).contains(&step)) {
            return bad(format!(
                "position_step {step} is neither 0 nor in {MIN_POSITION_STEP:e}..=16"
            ));
        }
        if self.position_bits == 0 && step == 0.0 {
            return bad("position_bits and position_step are both 0: no position grid".into());
        }
        if !(4..=15).contains(&self.rotation_bits) {
            return bad(format!(
                "rotation_bits {} is outside 4..=15",
                self.rotation_bits
            ));
        }
        if !(4..=12).contains(&self.opacity_bits) {
            return bad(format!(
                "opacity_bits {} is outside 4..=12",
                self.opacity_bits
            ));
        }
        for (name, step) in [
            ("scale_step", self.scale_step),
            ("color_step", self.color_step),
        ]
        .into_iter()
        .chain(self.sh_steps.iter().map(|&s| ("sh_step", s)))
        {
            if !(step.is_finite() && (1e-4..=16.0).contains(&step)) {
                return bad(format!("{name} {step} is outside 1e-4..=16"));
            }
        }
        if self.max_sh_degree > 3 {
            return bad(format!("max_sh_degree {} is above 3", self.max_sh_degree));
        }
        if self.sh_codebook != 0 && !(16..=MAX_SH_CODEBOOK).contains(&self.sh_codebook) {
            return bad(format!(
                "sh_codebook {} is neither 0 nor in 16..={MAX_SH_CODEBOOK}",
                self.sh_codebook
            ));
        }
        if !(0.0..1.0).contains(&self.min_opacity) {
            return bad(format!(
                "min_opacity {} is outside [0, 1)",
                self.min_opacity
            ));
        }
        Ok(())
    }
}

impl Default for CodecOptions {
    fn default() -> Self {
        Self::preset(Preset::default())
    }
}
