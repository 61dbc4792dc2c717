//! One-level DWT along an axis, and full wavelet-packet transforms built from it.

use ndarray::{Array2, Array3, ArrayView1, ArrayView2, ArrayView3, ArrayViewMut1, s};

use crate::{Result, Wavelet, WaveletError};

/// One-level analysis of `x` (even length) into low and high halves, written to `lo`/`hi`.
fn analyze(
    w: &Wavelet,
    x: ArrayView1<f32>,
    mut lo: ArrayViewMut1<f32>,
    mut hi: ArrayViewMut1<f32>,
) {
    let n = x.len();
    let shift = w.analysis_shift();
    for i in 0..n / 2 {
        let (mut a, mut d) = (0f64, 0f64);
        for j in 0..w.len() {
            let v = f64::from(x[(2 * i + shift + n * w.len() - j) % n]);
            a += w.dec_lo[j] * v;
            d += w.dec_hi[j] * v;
        }
        lo[i] = a as f32;
        hi[i] = d as f32;
    }
}

/// One-level synthesis of `lo`/`hi` (length N/2 each) into `out` (length N).
fn synthesize(w: &Wavelet, lo: ArrayView1<f32>, hi: ArrayView1<f32>, mut out: ArrayViewMut1<f32>) {
    let n = out.len();
    let shift = w.synthesis_shift();
    for m in 0..n {
        let mut v = 0f64;
        for k in 0..w.len() {
            let p = (m + shift + n * w.len() - k) % n;
            if p.is_multiple_of(2) {
                v += w.rec_lo[k] * f64::from(lo[p / 2]) + w.rec_hi[k] * f64::from(hi[p / 2]);
            }
        }
        out[m] = v as f32;
    }
}

fn check_even(len: usize, levels: u32, what: &str) -> Result<()> {
    let block = 1usize << levels;
    if len == 0 || !len.is_multiple_of(block) {
        return Err(WaveletError::Shape(format!(
            "{what} length {len} is not a positive multiple of 2^{levels} = {block}"
        )));
    }
    Ok(())
}

/// One-level DWT of a signal (even length): `(approximation, detail)`, as `pywt.dwt`.
pub fn dwt(w: &Wavelet, x: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
    check_even(x.len(), 1, "signal")?;
    let mut lo = vec![0f32; x.len() / 2];
    let mut hi = vec![0f32; x.len() / 2];
    analyze(
        w,
        ArrayView1::from(x),
        ArrayViewMut1::from(&mut lo[..]),
        ArrayViewMut1::from(&mut hi[..]),
    );
    Ok((lo, hi))
}

/// Inverse of [`dwt`], as `pywt.idwt`.
pub fn idwt(w: &Wavelet, lo: &[f32], hi: &[f32]) -> Result<Vec<f32>> {
    if lo.len() != hi.len() || lo.is_empty() {
        return Err(WaveletError::Shape(format!(
            "bands of {} and {} samples",
            lo.len(),
            hi.len()
        )));
    }
    let mut out = vec![0f32; 2 * lo.len()];
    synthesize(
        w,
        ArrayView1::from(lo),
        ArrayView1::from(hi),
        ArrayViewMut1::from(&mut out[..]),
    );
    Ok(out)
}

/// Splits every row of `x` [R, N] into [2R, N/2]: row r becomes rows 2r (low) and 2r+1 (high).
fn split_rows(w: &Wavelet, x: ArrayView2<f32>) -> Array2<f32> {
    let (r, n) = x.dim();
    let mut out = Array2::<f32>::zeros((2 * r, n / 2));
    for (i, row) in x.rows().into_iter().enumerate() {
        let (mut lo, mut hi) = out.multi_slice_mut((s![2 * i, ..], s![2 * i + 1, ..]));
        analyze(w, row, lo.view_mut(), hi.view_mut());
    }
    out
}

/// Inverse of [`split_rows`].
fn merge_rows(w: &Wavelet, x: ArrayView2<f32>) -> Array2<f32> {
    let (r2, half) = x.dim();
    let mut out = Array2::<f32>::zeros((r2 / 2, 2 * half));
    for (i, mut row) in out.rows_mut().into_iter().enumerate() {
        synthesize(w, x.row(2 * i), x.row(2 * i + 1), row.view_mut());
    }
    out
}

/// Full 1-D wavelet-packet transform: `[C, T]` → `[C·2^J, T/2^J]`, bands of each channel in
/// PyWavelets `natural` order (`a…a`, `a…d`, …, `d…d`).
pub fn wpt1d(w: &Wavelet, x: ArrayView2<f32>, levels: u32) -> Result<Array2<f32>> {
    check_even(x.ncols(), levels, "signal")?;
    let mut bands = x.to_owned();
    for _ in 0..levels {
        bands = split_rows(w, bands.view());
    }
    Ok(bands)
}

/// Inverse of [`wpt1d`].
pub fn wpt1d_inverse(w: &Wavelet, bands: ArrayView2<f32>, levels: u32) -> Result<Array2<f32>> {
    let block = 1usize << levels;
    if !bands.nrows().is_multiple_of(block) || bands.ncols() == 0 {
        return Err(WaveletError::Shape(format!(
            "{} bands are not a multiple of 2^{levels}",
            bands.nrows()
        )));
    }
    let mut x = bands.to_owned();
    for _ in 0..levels {
        x = merge_rows(w, x.view());
    }
    Ok(x)
}

/// One 2-D level on every band of `x` [B, H, W] → [4B, H/2, W/2]: band b becomes bands
/// 4b + {0: a (low/low), 1: h (high along H, low along W), 2: v (low along H, high along W),
/// 3: d (high/high)}, as `pywt.dwt2` / `WaveletPacket2D`.
fn split_2d(w: &Wavelet, x: ArrayView3<f32>) -> Array3<f32> {
    let (b, h, wd) = x.dim();
    let mut out = Array3::<f32>::zeros((4 * b, h / 2, wd / 2));
    let mut along_h = Array3::<f32>::zeros((2 * b, h / 2, wd));
    // Along H (axis 1): for every column.
    for band in 0..b {
        for col in 0..wd {
            let (mut lo, mut hi) =
                along_h.multi_slice_mut((s![2 * band, .., col], s![2 * band + 1, .., col]));
            analyze(w, x.slice(s![band, .., col]), lo.view_mut(), hi.view_mut());
        }
    }
    // Along W (axis 2): low-H → (a, v), high-H → (h, d).
    for band in 0..b {
        for (half_h, (lo_w, hi_w)) in [(0usize, (0usize, 2usize)), (1, (1, 3))] {
            for row in 0..h / 2 {
                let src = along_h.slice(s![2 * band + half_h, row, ..]);
                let (mut lo, mut hi) = out
                    .multi_slice_mut((s![4 * band + lo_w, row, ..], s![4 * band + hi_w, row, ..]));
                analyze(w, src, lo.view_mut(), hi.view_mut());
            }
        }
    }
    out
}

/// Inverse of [`split_2d`].
fn merge_2d(w: &Wavelet, x: ArrayView3<f32>) -> Array3<f32> {
    let (b4, h2, w2) = x.dim();
    let b = b4 / 4;
    let mut along_h = Array3::<f32>::zeros((2 * b, h2, 2 * w2));
    for band in 0..b {
        for (half_h, (lo_w, hi_w)) in [(0usize, (0usize, 2usize)), (1, (1, 3))] {
            for row in 0..h2 {
                let mut dst = along_h.slice_mut(s![2 * band + half_h, row, ..]);
                synthesize(
                    w,
                    x.slice(s![4 * band + lo_w, row, ..]),
                    x.slice(s![4 * band + hi_w, row, ..]),
                    dst.view_mut(),
                );
            }
        }
    }
    let mut out = Array3::<f32>::zeros((b, 2 * h2, 2 * w2));
    for band in 0..b {
        for col in 0..2 * w2 {
            let mut dst = out.slice_mut(s![band, .., col]);
            synthesize(
                w,
                along_h.slice(s![2 * band, .., col]),
                along_h.slice(s![2 * band + 1, .., col]),
                dst.view_mut(),
            );
        }
    }
    out
}

/// Full 2-D wavelet-packet transform: `[C, H, W]` → `[C·4^J, H/2^J, W/2^J]`, the 4^J bands of
/// each channel in PyWavelets `WaveletPacket2D` `natural` order (`a`, `h`, `v`, `d` per level).
pub fn wpt2d(w: &Wavelet, x: ArrayView3<f32>, levels: u32) -> Result<Array3<f32>> {
    check_even(x.dim().1, levels, "height")?;
    check_even(x.dim().2, levels, "width")?;
    let mut bands = x.to_owned();
    for _ in 0..levels {
        bands = split_2d(w, bands.view());
    }
    Ok(bands)
}

/// Inverse of [`wpt2d`].
pub fn wpt2d_inverse(w: &Wavelet, bands: ArrayView3<f32>, levels: u32) -> Result<Array3<f32>> {
    let block = 1usize << (2 * levels);
    if !bands.dim().0.is_multiple_of(block) || bands.dim().1 == 0 || bands.dim().2 == 0 {
        return Err(WaveletError::Shape(format!(
            "{} bands are not a multiple of 4^{levels}",
            bands.dim().0
        )));
    }
    let mut x = bands.to_owned();
    for _ in 0..levels {
        x = merge_2d(w, x.view());
    }
    Ok(x)
}
