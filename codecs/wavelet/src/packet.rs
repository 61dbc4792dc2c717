//! One-level DWT along an axis, and full wavelet-packet transforms built from it.
//!
//! Every output sample is the sum the filter bank defines, accumulated in `f64` tap by tap in
//! filter order, exactly as the one-sample-at-a-time definition would (the tests compare bit
//! for bit). The speed comes from the loop order: each tap reads a contiguous run of samples
//! (a row for the outer axis; the even or odd phase of a line, periodically extended, for the
//! inner axis), runs of 16 outputs keep their sums in registers over all taps, the loops are
//! compiled for the widest vector unit the CPU has, and the bands of a packet level are
//! transformed on the rayon pool.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3};
use rayon::prelude::*;

use crate::{Result, Wavelet, WaveletError};
use kernels::{filter_pair, synthesis_sum};

/// Samples in one unit of work handed to the rayon pool.
const UNIT_SAMPLES: usize = 1 << 13;

/// Reusable buffers of one worker: periodic extensions and the two output phases of a line.
#[derive(Default)]
struct Scratch {
    first: Vec<f32>,
    second: Vec<f32>,
    even_out: Vec<f32>,
    odd_out: Vec<f32>,
}

/// The periodic extension of a line of `len` samples by `pad` on each side: `dst[pad + k]` is
/// sample `k mod len` for `k` in `−pad .. len + pad`. `fill` writes the line itself into
/// `dst[pad .. pad + len]`.
fn extend_periodic(len: usize, pad: usize, dst: &mut Vec<f32>, fill: impl FnOnce(&mut [f32])) {
    dst.clear();
    dst.resize(len + 2 * pad, 0.0);
    fill(&mut dst[pad..pad + len]);
    for k in 0..pad {
        dst[k] = dst[pad + (k + len * pad - pad) % len];
        dst[pad + len + k] = dst[pad + k % len];
    }
}

/// The inner loops, compiled for the widest vector unit the CPU has. Rust never fuses a
/// multiply and an add, so every build computes the same bits.
#[allow(unsafe_code)]
mod kernels {
    /// Outputs computed together, their sums held in registers across all taps.
    const LANES: usize = 16;

    /// Starts of the runs of `LANES` outputs that cover `0..n` (`n` = 0 or at least `LANES`):
    /// the last run ends at `n` and may overlap the one before it, which computes the same
    /// outputs again, so no output is left to a slower loop.
    #[inline(always)]
    fn run_starts(n: usize) -> impl Iterator<Item = usize> {
        let last = n.saturating_sub(LANES);
        (0..n).step_by(LANES).map(move |start| start.min(last))
    }

    /// Calls `$body` through a copy compiled for AVX-512F or AVX2 when the CPU has it.
    macro_rules! widest {
        ($body:ident($($arg:ident: $ty:ty),*)) => {{
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn wide($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                fn narrow($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the feature `wide` was compiled for.
                    return unsafe { wide($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has the feature `narrow` was compiled for.
                    return unsafe { narrow($($arg),*) };
                }
            }
            $body($($arg),*)
        }};
    }

    /// Output `i` of the run starting at `start`, one lane of `LANES`.
    #[inline(always)]
    fn filter_pair_run<const N: usize>(
        sources: &[&[f32]],
        ca: &[f64],
        cb: &[f64],
        start: usize,
        a: &mut [f64; N],
        b: &mut [f64; N],
    ) {
        for ((source, &ca), &cb) in sources.iter().zip(ca).zip(cb) {
            let x: &[f32; N] = source[start..start + N].try_into().expect("run");
            for ((a, b), &x) in a.iter_mut().zip(b.iter_mut()).zip(x) {
                let x = f64::from(x);
                *a += ca * x;
                *b += cb * x;
            }
        }
    }

    #[inline(always)]
    fn filter_pair_body(
        sources: &[&[f32]],
        ca: &[f64],
        cb: &[f64],
        out_a: &mut [f32],
        out_b: &mut [f32],
    ) {
        let n = out_a.len();
        let covered = if n < LANES { 0 } else { n };
        for start in run_starts(covered) {
            let (mut a, mut b) = ([0f64; LANES], [0f64; LANES]);
            filter_pair_run(sources, ca, cb, start, &mut a, &mut b);
            for (out, a) in out_a[start..start + LANES].iter_mut().zip(a) {
                *out = a as f32;
            }
            for (out, b) in out_b[start..start + LANES].iter_mut().zip(b) {
                *out = b as f32;
            }
        }
        for i in covered..n {
            let (mut a, mut b) = ([0f64; 1], [0f64; 1]);
            filter_pair_run(sources, ca, cb, i, &mut a, &mut b);
            out_a[i] = a[0] as f32;
            out_b[i] = b[0] as f32;
        }
    }

    /// `out_a[i] = Σ_j ca[j] · sources[j][i]` and `out_b` likewise with `cb`, summed in `f64`
    /// in tap order: both analysis filters at once.
    pub(super) fn filter_pair(
        sources: &[&[f32]],
        ca: &[f64],
        cb: &[f64],
        out_a: &mut [f32],
        out_b: &mut [f32],
    ) {
        widest!(filter_pair_body(
            sources: &[&[f32]],
            ca: &[f64],
            cb: &[f64],
            out_a: &mut [f32],
            out_b: &mut [f32]
        ))
    }

    #[inline(always)]
    fn synthesis_run<const N: usize>(
        lo: &[&[f32]],
        hi: &[&[f32]],
        cl: &[f64],
        ch: &[f64],
        start: usize,
        acc: &mut [f64; N],
    ) {
        for (((lo, hi), &cl), &ch) in lo.iter().zip(hi).zip(cl).zip(ch) {
            let l: &[f32; N] = lo[start..start + N].try_into().expect("run");
            let h: &[f32; N] = hi[start..start + N].try_into().expect("run");
            for (v, (&l, &h)) in acc.iter_mut().zip(l.iter().zip(h)) {
                *v += cl * f64::from(l) + ch * f64::from(h);
            }
        }
    }

    #[inline(always)]
    fn synthesis_sum_body(lo: &[&[f32]], hi: &[&[f32]], cl: &[f64], ch: &[f64], out: &mut [f32]) {
        let n = out.len();
        let covered = if n < LANES { 0 } else { n };
        for start in run_starts(covered) {
            let mut acc = [0f64; LANES];
            synthesis_run(lo, hi, cl, ch, start, &mut acc);
            for (out, v) in out[start..start + LANES].iter_mut().zip(acc) {
                *out = v as f32;
            }
        }
        for (i, out) in out.iter_mut().enumerate().skip(covered) {
            let mut acc = [0f64; 1];
            synthesis_run(lo, hi, cl, ch, i, &mut acc);
            *out = acc[0] as f32;
        }
    }

    /// `out[i] = Σ_k (cl[k] · lo[k][i] + ch[k] · hi[k][i])`, summed in `f64` in tap order: one
    /// phase of a synthesis.
    pub(super) fn synthesis_sum(
        lo: &[&[f32]],
        hi: &[&[f32]],
        cl: &[f64],
        ch: &[f64],
        out: &mut [f32],
    ) {
        widest!(synthesis_sum_body(
            lo: &[&[f32]],
            hi: &[&[f32]],
            cl: &[f64],
            ch: &[f64],
            out: &mut [f32]
        ))
    }
}

/// Longest filter the transforms take (bior4.4 has 10 taps).
const MAX_TAPS: usize = 16;

/// The synthesis taps that reach one output phase or row: runs of `lo`/`hi` and coefficients,
/// on the stack.
struct Taps<'a> {
    lo: [&'a [f32]; MAX_TAPS],
    hi: [&'a [f32]; MAX_TAPS],
    cl: [f64; MAX_TAPS],
    ch: [f64; MAX_TAPS],
    len: usize,
}

impl Default for Taps<'_> {
    fn default() -> Self {
        Self {
            lo: [&[]; MAX_TAPS],
            hi: [&[]; MAX_TAPS],
            cl: [0.0; MAX_TAPS],
            ch: [0.0; MAX_TAPS],
            len: 0,
        }
    }
}

impl<'a> Taps<'a> {
    fn push(&mut self, lo: &'a [f32], hi: &'a [f32], cl: f64, ch: f64) {
        let k = self.len;
        (self.lo[k], self.hi[k], self.cl[k], self.ch[k]) = (lo, hi, cl, ch);
        self.len += 1;
    }

    fn sum_into(&self, out: &mut [f32]) {
        let k = self.len;
        synthesis_sum(
            &self.lo[..k],
            &self.hi[..k],
            &self.cl[..k],
            &self.ch[..k],
            out,
        );
    }
}

/// One-level analysis of a contiguous line `x` (even length `n`) into `lo`/`hi` (`n/2` each):
/// `lo[i] = Σ_j dec_lo[j] · x[(2i + shift − j) mod n]`, and `hi` with `dec_hi`.
///
/// Sample `2i + t` is `even[i + t/2]` for even `t` and `odd[i + (t−1)/2]` for odd `t`, so each
/// tap reads a contiguous, shifted run of one phase.
fn analyze_line(w: &Wavelet, x: &[f32], lo: &mut [f32], hi: &mut [f32], scratch: &mut Scratch) {
    let half = x.len() / 2;
    let pad = w.len();
    let Scratch {
        first: even,
        second: odd,
        ..
    } = scratch;
    extend_periodic(half, pad, even, |line| {
        for (e, pair) in line.iter_mut().zip(x.chunks_exact(2)) {
            *e = pair[0];
        }
    });
    extend_periodic(half, pad, odd, |line| {
        for (o, pair) in line.iter_mut().zip(x.chunks_exact(2)) {
            *o = pair[1];
        }
    });
    let shift = w.analysis_shift() as isize;
    let mut sources: [&[f32]; MAX_TAPS] = [&[]; MAX_TAPS];
    for (j, source) in sources.iter_mut().enumerate().take(w.len()) {
        let t = shift - j as isize;
        let phase = if t % 2 == 0 { &even[..] } else { &odd[..] };
        let start = (pad as isize + t.div_euclid(2)) as usize;
        *source = &phase[start..start + half];
    }
    filter_pair(&sources[..w.len()], w.dec_lo, w.dec_hi, lo, hi);
}

/// One-level synthesis of contiguous `lo`/`hi` (`n/2` each) into `out` (`n`):
/// `out[m] = Σ_k [p even] (rec_lo[k] · lo[p/2] + rec_hi[k] · hi[p/2])`, `p = (m + shift − k) mod n`.
///
/// For `m = 2i + r` the taps with `r + shift − k` even contribute, reading `lo`/`hi` at
/// `i + (r + shift − k)/2`: a contiguous, shifted run per tap and output phase `r`.
fn synthesize_line(w: &Wavelet, lo: &[f32], hi: &[f32], out: &mut [f32], scratch: &mut Scratch) {
    let half = lo.len();
    let pad = w.len();
    let Scratch {
        first: lo_ext,
        second: hi_ext,
        even_out,
        odd_out,
    } = scratch;
    extend_periodic(half, pad, lo_ext, |line| line.copy_from_slice(lo));
    extend_periodic(half, pad, hi_ext, |line| line.copy_from_slice(hi));
    let shift = w.synthesis_shift() as isize;
    for (phase, phase_out) in [(0isize, &mut *even_out), (1, &mut *odd_out)] {
        let mut taps = Taps::default();
        for k in (0..w.len()).filter(|&k| (phase + shift - k as isize) % 2 == 0) {
            let start = (pad as isize + (phase + shift - k as isize) / 2) as usize;
            taps.push(
                &lo_ext[start..start + half],
                &hi_ext[start..start + half],
                w.rec_lo[k],
                w.rec_hi[k],
            );
        }
        phase_out.clear();
        phase_out.resize(half, 0.0);
        taps.sum_into(phase_out);
    }
    for ((pair, &e), &o) in out
        .chunks_exact_mut(2)
        .zip(even_out.iter())
        .zip(odd_out.iter())
    {
        pair[0] = e;
        pair[1] = o;
    }
}

/// One-level analysis along the outer axis of a row-major plane `x` (`n` rows of `width`):
/// output rows `first ..` of `lo`/`hi` (`n/2` rows in all) as [`analyze_line`] defines them
/// per column.
fn analyze_rows(
    w: &Wavelet,
    x: &[f32],
    width: usize,
    first: usize,
    lo: &mut [f32],
    hi: &mut [f32],
) {
    let n = x.len() / width;
    let shift = w.analysis_shift();
    for (i, (lo_row, hi_row)) in lo
        .chunks_exact_mut(width)
        .zip(hi.chunks_exact_mut(width))
        .enumerate()
    {
        let mut sources: [&[f32]; MAX_TAPS] = [&[]; MAX_TAPS];
        for (j, source) in sources.iter_mut().enumerate().take(w.len()) {
            let r = (2 * (first + i) + shift + n * w.len() - j) % n;
            *source = &x[r * width..(r + 1) * width];
        }
        filter_pair(&sources[..w.len()], w.dec_lo, w.dec_hi, lo_row, hi_row);
    }
}

/// One-level synthesis along the outer axis: row-major `lo`/`hi` (`n/2` rows of `width`) into
/// output rows `first ..` of `n`, as [`synthesize_line`] defines it per column.
fn synthesize_rows(
    w: &Wavelet,
    lo: &[f32],
    hi: &[f32],
    width: usize,
    first: usize,
    out: &mut [f32],
) {
    let n = 2 * lo.len() / width;
    let shift = w.synthesis_shift();
    for (m, out_row) in out.chunks_exact_mut(width).enumerate() {
        let mut taps = Taps::default();
        for k in 0..w.len() {
            let p = (first + m + shift + n * w.len() - k) % n;
            if p.is_multiple_of(2) {
                let row = p / 2 * width..(p / 2 + 1) * width;
                taps.push(&lo[row.clone()], &hi[row], w.rec_lo[k], w.rec_hi[k]);
            }
        }
        taps.sum_into(out_row);
    }
}

/// The samples of `x` in row-major order, as one vector.
fn row_major<D: ndarray::Dimension>(x: ndarray::ArrayView<f32, D>) -> Vec<f32> {
    x.as_standard_layout()
        .into_owned()
        .into_raw_vec_and_offset()
        .0
}

fn check_wavelet(w: &Wavelet) -> Result<()> {
    let n = w.len();
    if n == 0
        || !n.is_multiple_of(2)
        || n > MAX_TAPS
        || [w.dec_hi, w.rec_lo, w.rec_hi].iter().any(|f| f.len() != n)
    {
        return Err(WaveletError::Shape(format!(
            "wavelet `{}`: filters must share one even length of at most {MAX_TAPS} taps",
            w.name
        )));
    }
    Ok(())
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
    check_wavelet(w)?;
    check_even(x.len(), 1, "signal")?;
    let mut lo = vec![0f32; x.len() / 2];
    let mut hi = vec![0f32; x.len() / 2];
    analyze_line(w, x, &mut lo, &mut hi, &mut Scratch::default());
    Ok((lo, hi))
}

/// Inverse of [`dwt`], as `pywt.idwt`.
pub fn idwt(w: &Wavelet, lo: &[f32], hi: &[f32]) -> Result<Vec<f32>> {
    check_wavelet(w)?;
    if lo.len() != hi.len() || lo.is_empty() {
        return Err(WaveletError::Shape(format!(
            "bands of {} and {} samples",
            lo.len(),
            hi.len()
        )));
    }
    let mut out = vec![0f32; 2 * lo.len()];
    synthesize_line(w, lo, hi, &mut out, &mut Scratch::default());
    Ok(out)
}

/// Rows (or lines) per unit of parallel work: about this many samples each.
fn rows_per_unit(width: usize) -> usize {
    (UNIT_SAMPLES / width.max(1)).max(1)
}

/// Splits every row of `x` [R, N] into `out` [2R, N/2]: row r becomes rows 2r (low) and
/// 2r+1 (high).
fn split_rows(w: &Wavelet, x: &[f32], n: usize, out: &mut [f32]) {
    out.par_chunks_exact_mut(n)
        .zip(x.par_chunks_exact(n))
        .for_each_init(Scratch::default, |scratch, (pair, row)| {
            let (lo, hi) = pair.split_at_mut(n / 2);
            analyze_line(w, row, lo, hi, scratch);
        });
}

/// Inverse of [`split_rows`].
fn merge_rows(w: &Wavelet, x: &[f32], half: usize, out: &mut [f32]) {
    out.par_chunks_exact_mut(2 * half)
        .zip(x.par_chunks_exact(2 * half))
        .for_each_init(Scratch::default, |scratch, (row, pair)| {
            let (lo, hi) = pair.split_at(half);
            synthesize_line(w, lo, hi, row, scratch);
        });
}

/// Full 1-D wavelet-packet transform: `[C, T]` → `[C·2^J, T/2^J]`, bands of each channel in
/// PyWavelets `natural` order (`a…a`, `a…d`, …, `d…d`).
pub fn wpt1d(w: &Wavelet, x: ArrayView2<f32>, levels: u32) -> Result<Array2<f32>> {
    check_wavelet(w)?;
    check_even(x.ncols(), levels, "signal")?;
    let (rows, n) = x.dim();
    let mut bands = row_major(x);
    let mut spare = vec![0f32; bands.len()];
    for level in 0..levels {
        split_rows(w, &bands, n >> level, &mut spare);
        std::mem::swap(&mut bands, &mut spare);
    }
    Ok(Array2::from_shape_vec((rows << levels, n >> levels), bands).expect("sized"))
}

/// Inverse of [`wpt1d`].
pub fn wpt1d_inverse(w: &Wavelet, bands: ArrayView2<f32>, levels: u32) -> Result<Array2<f32>> {
    check_wavelet(w)?;
    let block = 1usize << levels;
    if !bands.nrows().is_multiple_of(block) || bands.ncols() == 0 {
        return Err(WaveletError::Shape(format!(
            "{} bands are not a multiple of 2^{levels}",
            bands.nrows()
        )));
    }
    let (rows, n) = bands.dim();
    let mut x = row_major(bands);
    let mut spare = vec![0f32; x.len()];
    for level in 0..levels {
        merge_rows(w, &x, n << level, &mut spare);
        std::mem::swap(&mut x, &mut spare);
    }
    Ok(Array2::from_shape_vec((rows >> levels, n << levels), x).expect("sized"))
}

/// One 2-D level on every band of `x` [B, H, W] into `out` [4B, H/2, W/2]: band b becomes
/// bands 4b + {0: a (low/low), 1: h (high along H, low along W), 2: v (low along H, high along
/// W), 3: d (high/high)}, as `pywt.dwt2` / `WaveletPacket2D`. `along_h` (as long as `x`) holds
/// the pass along H.
fn split_2d(w: &Wavelet, x: &[f32], h: usize, wd: usize, out: &mut [f32], along_h: &mut [f32]) {
    let plane = h * wd;
    let block = rows_per_unit(wd);
    // Along H: the low and high halves of every column, in blocks of output rows.
    along_h
        .par_chunks_exact_mut(plane)
        .zip(x.par_chunks_exact(plane))
        .for_each(|(halves, source)| {
            let (low, high) = halves.split_at_mut(plane / 2);
            low.par_chunks_mut(block * wd)
                .zip(high.par_chunks_mut(block * wd))
                .enumerate()
                .for_each(|(k, (lo, hi))| analyze_rows(w, source, wd, k * block, lo, hi));
        });
    // Along W: low-H rows → (a, v), high-H rows → (h, d), in blocks of lines.
    let quarter = plane / 4;
    out.par_chunks_exact_mut(4 * quarter)
        .zip(along_h.par_chunks_exact(plane))
        .for_each(|(four, halves)| {
            let (a, rest) = four.split_at_mut(quarter);
            let (hb, rest) = rest.split_at_mut(quarter);
            let (v, d) = rest.split_at_mut(quarter);
            let (low, high) = halves.split_at(plane / 2);
            for (source, lo, hi) in [(low, a, v), (high, hb, d)] {
                source
                    .par_chunks(block * wd)
                    .zip(lo.par_chunks_mut(block * wd / 2))
                    .zip(hi.par_chunks_mut(block * wd / 2))
                    .for_each_init(Scratch::default, |scratch, ((rows, lo), hi)| {
                        for ((row, lo), hi) in rows
                            .chunks_exact(wd)
                            .zip(lo.chunks_exact_mut(wd / 2))
                            .zip(hi.chunks_exact_mut(wd / 2))
                        {
                            analyze_line(w, row, lo, hi, scratch);
                        }
                    });
            }
        });
}

/// Inverse of [`split_2d`]: `x` [4B, H2, W2] into `out` [B, 2·H2, 2·W2].
fn merge_2d(w: &Wavelet, x: &[f32], h2: usize, w2: usize, out: &mut [f32], along_h: &mut [f32]) {
    let quarter = h2 * w2;
    let plane = 4 * quarter;
    let block = rows_per_unit(2 * w2);
    // Along W: (a, v) → low-H rows, (h, d) → high-H rows, in blocks of lines.
    along_h
        .par_chunks_exact_mut(plane)
        .zip(x.par_chunks_exact(plane))
        .for_each(|(halves, four)| {
            let (a, rest) = four.split_at(quarter);
            let (hb, rest) = rest.split_at(quarter);
            let (v, d) = rest.split_at(quarter);
            let (low, high) = halves.split_at_mut(2 * quarter);
            for (lo, hi, rows) in [(a, v, low), (hb, d, high)] {
                lo.par_chunks(block * w2)
                    .zip(hi.par_chunks(block * w2))
                    .zip(rows.par_chunks_mut(block * 2 * w2))
                    .for_each_init(Scratch::default, |scratch, ((lo, hi), rows)| {
                        for ((lo, hi), row) in lo
                            .chunks_exact(w2)
                            .zip(hi.chunks_exact(w2))
                            .zip(rows.chunks_exact_mut(2 * w2))
                        {
                            synthesize_line(w, lo, hi, row, scratch);
                        }
                    });
            }
        });
    // Along H, in blocks of output rows.
    out.par_chunks_exact_mut(plane)
        .zip(along_h.par_chunks_exact(plane))
        .for_each(|(rows, halves)| {
            let (low, high) = halves.split_at(2 * quarter);
            rows.par_chunks_mut(block * 2 * w2)
                .enumerate()
                .for_each(|(k, rows)| synthesize_rows(w, low, high, 2 * w2, k * block, rows));
        });
}

/// Full 2-D wavelet-packet transform: `[C, H, W]` → `[C·4^J, H/2^J, W/2^J]`, the 4^J bands of
/// each channel in PyWavelets `WaveletPacket2D` `natural` order (`a`, `h`, `v`, `d` per level).
pub fn wpt2d(w: &Wavelet, x: ArrayView3<f32>, levels: u32) -> Result<Array3<f32>> {
    check_wavelet(w)?;
    check_even(x.dim().1, levels, "height")?;
    check_even(x.dim().2, levels, "width")?;
    let (c, h, wd) = x.dim();
    let mut bands = row_major(x);
    let mut spare = vec![0f32; bands.len()];
    let mut along_h = vec![0f32; bands.len()];
    for level in 0..levels {
        split_2d(w, &bands, h >> level, wd >> level, &mut spare, &mut along_h);
        std::mem::swap(&mut bands, &mut spare);
    }
    Ok(
        Array3::from_shape_vec((c << (2 * levels), h >> levels, wd >> levels), bands)
            .expect("sized"),
    )
}

/// Inverse of [`wpt2d`].
pub fn wpt2d_inverse(w: &Wavelet, bands: ArrayView3<f32>, levels: u32) -> Result<Array3<f32>> {
    check_wavelet(w)?;
    let block = 1usize << (2 * levels);
    if !bands.dim().0.is_multiple_of(block) || bands.dim().1 == 0 || bands.dim().2 == 0 {
        return Err(WaveletError::Shape(format!(
            "{} bands are not a multiple of 4^{levels}",
            bands.dim().0
        )));
    }
    let (b, h, wd) = bands.dim();
    let mut x = row_major(bands);
    let mut spare = vec![0f32; x.len()];
    let mut along_h = vec![0f32; x.len()];
    for level in 0..levels {
        merge_2d(w, &x, h << level, wd << level, &mut spare, &mut along_h);
        std::mem::swap(&mut x, &mut spare);
    }
    Ok(Array3::from_shape_vec((b >> (2 * levels), h << levels, wd << levels), x).expect("sized"))
}

/// The one-sample-at-a-time definitions the transforms above must equal bit for bit.
#[cfg(test)]
mod tests {
    use ndarray::{ArrayView1, ArrayViewMut1, s};

    use super::*;
    use crate::bior44;

    /// One-level analysis of `x` (even length) into low and high halves, written to `lo`/`hi`.
    fn naive_analyze(
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
    fn naive_synthesize(
        w: &Wavelet,
        lo: ArrayView1<f32>,
        hi: ArrayView1<f32>,
        mut out: ArrayViewMut1<f32>,
    ) {
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

    /// Splits every row of `x` [R, N] into [2R, N/2]: row r becomes rows 2r (low) and 2r+1 (high).
    fn naive_split_rows(w: &Wavelet, x: ArrayView2<f32>) -> Array2<f32> {
        let (r, n) = x.dim();
        let mut out = Array2::<f32>::zeros((2 * r, n / 2));
        for (i, row) in x.rows().into_iter().enumerate() {
            let (mut lo, mut hi) = out.multi_slice_mut((s![2 * i, ..], s![2 * i + 1, ..]));
            naive_analyze(w, row, lo.view_mut(), hi.view_mut());
        }
        out
    }

    /// Inverse of [`split_rows`].
    fn naive_merge_rows(w: &Wavelet, x: ArrayView2<f32>) -> Array2<f32> {
        let (r2, half) = x.dim();
        let mut out = Array2::<f32>::zeros((r2 / 2, 2 * half));
        for (i, mut row) in out.rows_mut().into_iter().enumerate() {
            naive_synthesize(w, x.row(2 * i), x.row(2 * i + 1), row.view_mut());
        }
        out
    }

    /// One 2-D level on every band of `x` [B, H, W] → [4B, H/2, W/2]: band b becomes bands
    /// 4b + {0: a (low/low), 1: h (high along H, low along W), 2: v (low along H, high along W),
    /// 3: d (high/high)}, as `pywt.dwt2` / `WaveletPacket2D`.
    fn naive_split_2d(w: &Wavelet, x: ArrayView3<f32>) -> Array3<f32> {
        let (b, h, wd) = x.dim();
        let mut out = Array3::<f32>::zeros((4 * b, h / 2, wd / 2));
        let mut along_h = Array3::<f32>::zeros((2 * b, h / 2, wd));
        // Along H (axis 1): for every column.
        for band in 0..b {
            for col in 0..wd {
                let (mut lo, mut hi) =
                    along_h.multi_slice_mut((s![2 * band, .., col], s![2 * band + 1, .., col]));
                naive_analyze(w, x.slice(s![band, .., col]), lo.view_mut(), hi.view_mut());
            }
        }
        // Along W (axis 2): low-H → (a, v), high-H → (h, d).
        for band in 0..b {
            for (half_h, (lo_w, hi_w)) in [(0usize, (0usize, 2usize)), (1, (1, 3))] {
                for row in 0..h / 2 {
                    let src = along_h.slice(s![2 * band + half_h, row, ..]);
                    let (mut lo, mut hi) = out.multi_slice_mut((
                        s![4 * band + lo_w, row, ..],
                        s![4 * band + hi_w, row, ..],
                    ));
                    naive_analyze(w, src, lo.view_mut(), hi.view_mut());
                }
            }
        }
        out
    }

    /// Inverse of [`split_2d`].
    fn naive_merge_2d(w: &Wavelet, x: ArrayView3<f32>) -> Array3<f32> {
        let (b4, h2, w2) = x.dim();
        let b = b4 / 4;
        let mut along_h = Array3::<f32>::zeros((2 * b, h2, 2 * w2));
        for band in 0..b {
            for (half_h, (lo_w, hi_w)) in [(0usize, (0usize, 2usize)), (1, (1, 3))] {
                for row in 0..h2 {
                    let mut dst = along_h.slice_mut(s![2 * band + half_h, row, ..]);
                    naive_synthesize(
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
                naive_synthesize(
                    w,
                    along_h.slice(s![2 * band, .., col]),
                    along_h.slice(s![2 * band + 1, .., col]),
                    dst.view_mut(),
                );
            }
        }
        out
    }

    fn noise(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % 20001) as f32 / 1000.0 - 10.0
            })
            .collect()
    }

    #[test]
    fn lines_equal_the_definition_bit_for_bit() {
        let w = bior44();
        for n in [2usize, 4, 6, 8, 10, 16, 22, 64, 130] {
            let x = noise(n, n as u64);
            let (lo, hi) = dwt(&w, &x).unwrap();
            let (mut nlo, mut nhi) = (Array2::zeros((1, n / 2)), Array2::zeros((1, n / 2)));
            naive_analyze(&w, ArrayView1::from(&x[..]), nlo.row_mut(0), nhi.row_mut(0));
            assert_eq!(lo, nlo.row(0).to_vec(), "analysis, n = {n}");
            assert_eq!(hi, nhi.row(0).to_vec(), "analysis, n = {n}");
            let back = idwt(&w, &lo, &hi).unwrap();
            let mut nback = vec![0f32; n];
            naive_synthesize(
                &w,
                ArrayView1::from(&lo[..]),
                ArrayView1::from(&hi[..]),
                ArrayViewMut1::from(&mut nback[..]),
            );
            assert_eq!(back, nback, "synthesis, n = {n}");
        }
    }

    #[test]
    fn packets_equal_the_definition_bit_for_bit() {
        let w = bior44();
        for (c, h, wd, levels) in [
            (3usize, 8usize, 8usize, 3u32),
            (2, 4, 12, 2),
            (3, 40, 24, 2),
            (1, 256, 256, 2),
            (3, 16, 2, 1),
        ] {
            let x = Array3::from_shape_vec((c, h, wd), noise(c * h * wd, (h * wd) as u64)).unwrap();
            agrees_with_the_definition(
                x,
                levels,
                |x| naive_split_2d(&w, x.view()),
                |x| naive_merge_2d(&w, x.view()),
                |x| wpt2d(&w, x.view(), levels).unwrap(),
                |x| wpt2d_inverse(&w, x.view(), levels).unwrap(),
            );
        }
        for (rows, n, levels) in [(2usize, 16usize, 3u32), (1, 4096, 8), (3, 2, 1)] {
            let x = Array2::from_shape_vec((rows, n), noise(rows * n, n as u64)).unwrap();
            agrees_with_the_definition(
                x,
                levels,
                |x| naive_split_rows(&w, x.view()),
                |x| naive_merge_rows(&w, x.view()),
                |x| wpt1d(&w, x.view(), levels).unwrap(),
                |x| wpt1d_inverse(&w, x.view(), levels).unwrap(),
            );
        }
    }

    /// `forward` equals `levels` naive splits of `x`, and `inverse` of those bands equals
    /// `levels` naive merges of them, bit for bit.
    fn agrees_with_the_definition<A: PartialEq + std::fmt::Debug + Clone>(
        x: A,
        levels: u32,
        split: impl Fn(&A) -> A,
        merge: impl Fn(&A) -> A,
        forward: impl Fn(&A) -> A,
        inverse: impl Fn(&A) -> A,
    ) {
        let expected = (0..levels).fold(x.clone(), |x, _| split(&x));
        assert_eq!(forward(&x), expected, "forward, {levels} levels");
        let back = (0..levels).fold(expected.clone(), |x, _| merge(&x));
        assert_eq!(inverse(&expected), back, "inverse, {levels} levels");
    }
}
