//! Filter banks.

/// A biorthogonal filter bank with the sample offsets PyWavelets uses for periodization.
#[derive(Debug, Clone, PartialEq)]
pub struct Wavelet {
    /// Name, as PyWavelets spells it.
    pub name: &'static str,
    /// Analysis low-pass filter.
    pub dec_lo: &'static [f64],
    /// Analysis high-pass filter.
    pub dec_hi: &'static [f64],
    /// Synthesis low-pass filter.
    pub rec_lo: &'static [f64],
    /// Synthesis high-pass filter.
    pub rec_hi: &'static [f64],
}

impl Wavelet {
    /// Filter length.
    pub fn len(&self) -> usize {
        self.dec_lo.len()
    }

    /// True for an empty filter bank (never for the shipped wavelets).
    pub fn is_empty(&self) -> bool {
        self.dec_lo.is_empty()
    }

    /// Analysis offset: `out[i] = Σ_j f[j] · x[(2i + F/2 − j) mod N]`.
    pub(crate) fn analysis_shift(&self) -> usize {
        self.len() / 2
    }

    /// Synthesis offset: `x[m] = Σ_k g[k] · up[(m − k + F/2 − 1) mod N]`.
    pub(crate) fn synthesis_shift(&self) -> usize {
        self.len() / 2 - 1
    }
}

/// bior4.4 (CDF 9/7), the coefficients PyWavelets 1.8 uses.
pub fn bior44() -> Wavelet {
    const DEC_LO: [f64; 10] = [
        0.0,
        0.03782845550726404,
        -0.023849465019556843,
        -0.11062440441843718,
        0.37740285561283066,
        0.8526986790088938,
        0.37740285561283066,
        -0.11062440441843718,
        -0.023849465019556843,
        0.03782845550726404,
    ];
    const DEC_HI: [f64; 10] = [
        0.0,
        -0.06453888262869706,
        0.04068941760916406,
        0.41809227322161724,
        -0.7884856164055829,
        0.41809227322161724,
        0.04068941760916406,
        -0.06453888262869706,
        0.0,
        0.0,
    ];
    const REC_LO: [f64; 10] = [
        0.0,
        -0.06453888262869706,
        -0.04068941760916406,
        0.41809227322161724,
        0.7884856164055829,
        0.41809227322161724,
        -0.04068941760916406,
        -0.06453888262869706,
        0.0,
        0.0,
    ];
    const REC_HI: [f64; 10] = [
        0.0,
        -0.03782845550726404,
        -0.023849465019556843,
        0.11062440441843718,
        0.37740285561283066,
        -0.8526986790088938,
        0.37740285561283066,
        0.11062440441843718,
        -0.023849465019556843,
        -0.03782845550726404,
    ];
    Wavelet {
        name: "bior4.4",
        dec_lo: &DEC_LO,
        dec_hi: &DEC_HI,
        rec_lo: &REC_LO,
        rec_hi: &REC_HI,
    }
}
