//! PSNR and MS-SSIM of 8-bit RGB images (MS-SSIM as Wang et al. 2003 / pytorch-msssim:
//! 11-tap Gaussian window σ = 1.5, K = (0.01, 0.03), 5 scales with the standard weights,
//! computed per channel and averaged), and PSNR/SNR of audio.

use image::RgbImage;
use ndarray::ArrayView2;

fn squared_error(a: ArrayView2<f32>, b: ArrayView2<f32>) -> (f64, f64) {
    assert_eq!(a.dim(), b.dim(), "clips must have the same shape");
    a.iter()
        .zip(b.iter())
        .fold((0.0, 0.0), |(signal, error), (&x, &y)| {
            (
                signal + f64::from(x).powi(2),
                error + (f64::from(x) - f64::from(y)).powi(2),
            )
        })
}

fn decibels(ratio: f64) -> f64 {
    if ratio.is_nan() {
        f64::INFINITY
    } else {
        10.0 * ratio.log10()
    }
}

/// Audio PSNR in dB against full scale (peak 1.0 for samples in [−1, 1]) over all channels;
/// `a` is the reference.
pub fn audio_psnr(a: ArrayView2<f32>, b: ArrayView2<f32>) -> f64 {
    let (_, error) = squared_error(a, b);
    decibels(a.len() as f64 / error)
}

/// Signal-to-noise ratio in dB: energy of the reference `a` over the energy of `a − b`.
pub fn snr(a: ArrayView2<f32>, b: ArrayView2<f32>) -> f64 {
    let (signal, error) = squared_error(a, b);
    decibels(signal / error)
}

/// PSNR in dB over all channels (∞ for identical images).
pub fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(
        a.dimensions(),
        b.dimensions(),
        "images must have the same size"
    );
    let mse = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

const WEIGHTS: [f64; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];
const WINDOW: usize = 11;

fn gaussian() -> [f64; WINDOW] {
    let mut g = [0f64; WINDOW];
    for (i, v) in g.iter_mut().enumerate() {
        let x = i as f64 - (WINDOW / 2) as f64;
        *v = (-x * x / (2.0 * 1.5 * 1.5)).exp();
    }
    let sum: f64 = g.iter().sum();
    g.map(|v| v / sum)
}

/// Separable "valid" Gaussian filtering of a `w × h` plane.
fn blur(plane: &[f64], w: usize, h: usize, g: &[f64; WINDOW]) -> (Vec<f64>, usize, usize) {
    let (ow, oh) = (w - WINDOW + 1, h - WINDOW + 1);
    let mut rows = vec![0f64; ow * h];
    for y in 0..h {
        for x in 0..ow {
            rows[y * ow + x] = (0..WINDOW).map(|k| g[k] * plane[y * w + x + k]).sum();
        }
    }
    let mut out = vec![0f64; ow * oh];
    for y in 0..oh {
        for x in 0..ow {
            out[y * ow + x] = (0..WINDOW).map(|k| g[k] * rows[(y + k) * ow + x]).sum();
        }
    }
    (out, ow, oh)
}

/// (SSIM, contrast-structure) means of one scale.
fn ssim_cs(a: &[f64], b: &[f64], w: usize, h: usize, g: &[f64; WINDOW]) -> (f64, f64) {
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let product = |f: &dyn Fn(f64, f64) -> f64| {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| f(x, y))
            .collect::<Vec<f64>>()
    };
    let (mu_a, ow, oh) = blur(a, w, h, g);
    let (mu_b, _, _) = blur(b, w, h, g);
    let (aa, _, _) = blur(&product(&|x, _| x * x), w, h, g);
    let (bb, _, _) = blur(&product(&|_, y| y * y), w, h, g);
    let (ab, _, _) = blur(&product(&|x, y| x * y), w, h, g);
    let (mut ssim, mut cs) = (0.0, 0.0);
    for i in 0..ow * oh {
        let (ma, mb) = (mu_a[i], mu_b[i]);
        let (va, vb, cov) = (aa[i] - ma * ma, bb[i] - mb * mb, ab[i] - ma * mb);
        let c = (2.0 * cov + c2) / (va + vb + c2);
        cs += c;
        ssim += (2.0 * ma * mb + c1) / (ma * ma + mb * mb + c1) * c;
    }
    let n = (ow * oh) as f64;
    (ssim / n, cs / n)
}

/// 2×2 average pooling (odd sizes padded with zeros, as `avg_pool2d(padding = size % 2)`).
fn downsample(plane: &[f64], w: usize, h: usize) -> (Vec<f64>, usize, usize) {
    let (pw, ph) = (w % 2, h % 2);
    let (ow, oh) = ((w + pw) / 2, (h + ph) / 2);
    let mut out = vec![0f64; ow * oh];
    for y in 0..oh {
        for x in 0..ow {
            let mut sum = 0.0;
            for dy in 0..2 {
                for dx in 0..2 {
                    let (sy, sx) = (
                        (2 * y + dy) as isize - ph as isize,
                        (2 * x + dx) as isize - pw as isize,
                    );
                    if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w {
                        sum += plane[sy as usize * w + sx as usize];
                    }
                }
            }
            out[y * ow + x] = sum / 4.0;
        }
    }
    (out, ow, oh)
}

/// MS-SSIM in [0, 1] over the standard 5 scales; `None` when a side is shorter than 161
/// pixels (5 scales need it). See [`ms_ssim_scaled`] for smaller images.
pub fn ms_ssim(a: &RgbImage, b: &RgbImage) -> Option<f64> {
    match ms_ssim_scaled(a, b) {
        Some((value, scales)) if scales == WEIGHTS.len() => Some(value),
        _ => None,
    }
}

/// MS-SSIM over as many of the 5 standard scales as the image allows (each scale halves it and
/// needs a side over 10 × 2^scale pixels), with the weights of the scales used renormalised to
/// sum to 1; with the number of scales. `None` when a side is 10 pixels or less.
pub fn ms_ssim_scaled(a: &RgbImage, b: &RgbImage) -> Option<(f64, usize)> {
    assert_eq!(
        a.dimensions(),
        b.dimensions(),
        "images must have the same size"
    );
    let (w, h) = (a.width() as usize, a.height() as usize);
    let scales = (1..=WEIGHTS.len())
        .rev()
        .find(|&s| w.min(h) > (WINDOW - 1) << (s - 1))?;
    let total: f64 = WEIGHTS[..scales].iter().sum();
    let weights: Vec<f64> = WEIGHTS[..scales].iter().map(|w| w / total).collect();
    let g = gaussian();
    let mut total = 0.0;
    for c in 0..3 {
        let plane = |img: &RgbImage| img.pixels().map(|p| f64::from(p[c])).collect::<Vec<f64>>();
        let (mut pa, mut pb, mut cw, mut ch) = (plane(a), plane(b), w, h);
        let mut value = 1.0;
        for (scale, weight) in weights.iter().enumerate() {
            let (ssim, cs) = ssim_cs(&pa, &pb, cw, ch, &g);
            if scale == weights.len() - 1 {
                value *= ssim.max(0.0).powf(*weight);
            } else {
                value *= cs.max(0.0).powf(*weight);
                let (na, nw, nh) = downsample(&pa, cw, ch);
                pb = downsample(&pb, cw, ch).0;
                pa = na;
                (cw, ch) = (nw, nh);
            }
        }
        total += value;
    }
    Some((total / 3.0, scales))
}

#[cfg(test)]
mod scale_tests {
    use super::*;

    #[test]
    fn small_images_get_ms_ssim_over_the_scales_that_fit() {
        let img = RgbImage::from_fn(131, 97, |x, y| {
            image::Rgb([(x * 2) as u8, (y * 2) as u8, 7])
        });
        let mut noisy = img.clone();
        for (i, p) in noisy.pixels_mut().enumerate() {
            p[0] = p[0].wrapping_add((i % 7) as u8);
        }
        let (same, scales) = ms_ssim_scaled(&img, &img).unwrap();
        assert_eq!(scales, 4);
        assert!((same - 1.0).abs() < 1e-9);
        let (worse, _) = ms_ssim_scaled(&img, &noisy).unwrap();
        assert!(worse < 1.0 && worse > 0.5, "{worse}");
        assert_eq!(
            ms_ssim(&img, &img),
            None,
            "the 5-scale figure stays undefined"
        );
        let tiny = RgbImage::new(10, 40);
        assert!(ms_ssim_scaled(&tiny, &tiny).is_none());
        let big = RgbImage::new(161, 161);
        assert_eq!(ms_ssim_scaled(&big, &big).unwrap().1, 5);
    }
}
