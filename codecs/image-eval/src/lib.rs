//! Shared machinery of the image-codec evaluation benches (WaLLoC, MLIC): rows of averaged
//! figures, the reference codecs driven through their command-line tools at matched bpp
//! (JPEG, WebP, AVIF, JPEG XL), the validation photos, and the Bjøntegaard delta rate.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

pub use terse_walloc::{RgbImage, decode_image_file, ms_ssim, psnr};

/// Whether a command-line tool is on the PATH.
pub fn tool(name: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A command with arguments.
pub fn cmd(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args);
    c
}

/// What every eval bench does first: work from the workspace `root` (the ONNX Runtime in
/// ./.venv and the model repository are relative to it) and list the validation photos; `None`,
/// after saying why, when there are none.
pub fn start_eval(root: &Path) -> Option<Vec<PathBuf>> {
    std::env::set_current_dir(root).expect("workspace root");
    let photos = validation_photos(root);
    if photos.is_empty() {
        println!(
            "no validation photos under ../shared/datasets/images/mcmaster: nothing to evaluate"
        );
        return None;
    }
    Some(photos)
}

/// The McMaster validation photos (never trained on) under `root/../shared/datasets`, the
/// first `TERSE_EVAL_PHOTOS` of them when set.
pub fn validation_photos(root: &Path) -> Vec<PathBuf> {
    let shared = root.join("../shared/datasets/images/mcmaster");
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&shared)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    photos.sort();
    if let Some(limit) = std::env::var("TERSE_EVAL_PHOTOS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        photos.truncate(limit);
    }
    photos
}

/// Figures of one codec on one photo (or sums over photos).
#[derive(Default, Clone, Copy)]
pub struct Row {
    /// Bits per pixel.
    pub bpp: f64,
    /// PSNR in dB.
    pub psnr: f64,
    /// MS-SSIM.
    pub ms_ssim: f64,
    /// Encode seconds.
    pub encode_s: f64,
    /// Decode seconds.
    pub decode_s: f64,
    /// Pixels.
    pub pixels: f64,
}

impl Row {
    /// Accumulates another row (sums; divide by the count when printing).
    pub fn add(&mut self, o: Row) {
        self.bpp += o.bpp;
        self.psnr += o.psnr;
        self.ms_ssim += o.ms_ssim;
        self.encode_s += o.encode_s;
        self.decode_s += o.decode_s;
        self.pixels += o.pixels;
    }
}

/// Prints the column header of [`print_row`].
pub fn print_header() {
    println!(
        "  {:<22} {:>6} {:>7} {:>8} {:>9} {:>9}",
        "codec", "bpp", "PSNR", "MS-SSIM", "enc MP/s", "dec MP/s"
    );
}

/// Prints a row averaged over `n` photos (bpp, PSNR, MS-SSIM, encode and decode MPix/s).
pub fn print_row(name: &str, r: Row, n: f64) {
    println!(
        "  {name:<22} {:>6.3} {:>7.2} {:>8.4} {:>9.1} {:>9.1}",
        r.bpp / n,
        r.psnr / n,
        r.ms_ssim / n,
        r.pixels / r.encode_s / 1e6,
        r.pixels / r.decode_s / 1e6
    );
}

/// A reference codec driven through its command-line tools.
pub struct Baseline {
    /// Name in tables.
    pub label: &'static str,
    /// Encoder binary (skipped when missing).
    pub binary: &'static str,
    /// Input and decoded-output file extensions the tools read and write.
    input: &'static str,
    output: &'static str,
    /// Quality range searched (higher = more bits).
    range: (u32, u32),
    encode: fn(u32, &str, &str) -> Command,
    decode: fn(&str, &str) -> Command,
}

impl Baseline {
    /// JPEG, WebP, AVIF and JPEG XL.
    pub fn all() -> Vec<Baseline> {
        vec![
            Baseline {
                label: "JPEG (libjpeg-turbo)",
                binary: "cjpeg",
                input: "bmp",
                output: "bmp",
                range: (1, 100),
                encode: |q, i, o| {
                    cmd(
                        "cjpeg",
                        &["-quality", &q.to_string(), "-optimize", "-outfile", o, i],
                    )
                },
                decode: |i, o| cmd("djpeg", &["-bmp", "-outfile", o, i]),
            },
            Baseline {
                label: "WebP",
                binary: "cwebp",
                input: "png",
                output: "png",
                range: (0, 100),
                encode: |q, i, o| {
                    cmd(
                        "cwebp",
                        &["-quiet", "-m", "6", "-q", &q.to_string(), i, "-o", o],
                    )
                },
                decode: |i, o| cmd("dwebp", &["-quiet", i, "-o", o]),
            },
            Baseline {
                label: "AVIF (libavif)",
                binary: "avifenc",
                input: "png",
                output: "png",
                range: (0, 63),
                encode: |q, i, o| {
                    let quantizer = (63 - q).to_string();
                    cmd(
                        "avifenc",
                        &["-s", "6", "--min", &quantizer, "--max", &quantizer, i, o],
                    )
                },
                decode: |i, o| cmd("avifdec", &[i, o]),
            },
            Baseline {
                label: "JPEG XL (libjxl)",
                binary: "cjxl",
                input: "png",
                output: "png",
                range: (1, 100),
                encode: |q, i, o| cmd("cjxl", &["--quiet", "-q", &q.to_string(), i, o]),
                decode: |i, o| cmd("djxl", &["--quiet", i, o]),
            },
        ]
    }

    /// Encodes at the quality whose bpp is closest to `target` (bisection), then decodes.
    pub fn matched(&self, original: &RgbImage, dir: &Path, target: f64) -> Option<Row> {
        let input = dir.join(format!("input.{}", self.input));
        original.save(&input).ok()?;
        let coded = dir.join("coded.bin");
        let (i, c) = (input.to_str()?, coded.to_str()?);
        let pixels = f64::from(original.width()) * f64::from(original.height());
        let encode = |q: u32| -> Option<(f64, f64)> {
            let start = Instant::now();
            let status = (self.encode)(q, i, c).output().ok()?;
            let seconds = start.elapsed().as_secs_f64();
            status.status.success().then_some(())?;
            Some((
                std::fs::metadata(&coded).ok()?.len() as f64 * 8.0 / pixels,
                seconds,
            ))
        };
        let (mut lo, mut hi) = self.range;
        let mut best: Option<(f64, u32)> = None;
        while lo <= hi {
            let q = (lo + hi) / 2;
            let (bpp, _) = encode(q)?;
            if best.is_none_or(|(d, _)| (bpp - target).abs() < d) {
                best = Some(((bpp - target).abs(), q));
            }
            if bpp > target {
                if q == 0 {
                    break;
                }
                hi = q - 1;
            } else {
                lo = q + 1;
            }
        }
        self.at(original, dir, best?.1)
    }

    /// Encodes at quality setting `q` (within `range`), decodes, and measures.
    pub fn at(&self, original: &RgbImage, dir: &Path, q: u32) -> Option<Row> {
        let input = dir.join(format!("input.{}", self.input));
        original.save(&input).ok()?;
        let coded = dir.join("coded.bin");
        let decoded = dir.join(format!("decoded.{}", self.output));
        let (i, c, d) = (input.to_str()?, coded.to_str()?, decoded.to_str()?);
        let pixels = f64::from(original.width()) * f64::from(original.height());
        let start = Instant::now();
        (self.encode)(q, i, c)
            .output()
            .ok()?
            .status
            .success()
            .then_some(())?;
        let encode_s = start.elapsed().as_secs_f64();
        let bpp = std::fs::metadata(&coded).ok()?.len() as f64 * 8.0 / pixels;
        let start = Instant::now();
        (self.decode)(c, d)
            .output()
            .ok()?
            .status
            .success()
            .then_some(())?;
        let decode_s = start.elapsed().as_secs_f64();
        let image = image::open(&decoded).ok()?.to_rgb8();
        Some(Row {
            bpp,
            psnr: psnr(original, &image),
            ms_ssim: ms_ssim(original, &image).unwrap_or(f64::NAN),
            encode_s,
            decode_s,
            pixels,
        })
    }

    /// Its rate-distortion curve over `images`: the mean (bpp, PSNR) at `steps` quality settings
    /// spread evenly over its range.
    pub fn curve(&self, images: &[RgbImage], dir: &Path, steps: u32) -> Vec<(f64, f64)> {
        let (lo, hi) = self.range;
        (0..steps)
            .filter_map(|k| {
                let q = lo + (hi - lo) * k / (steps - 1).max(1);
                let mut total = Row::default();
                for image in images {
                    total.add(self.at(image, dir, q)?);
                }
                let n = images.len() as f64;
                Some((total.bpp / n, total.psnr / n))
            })
            .collect()
    }
}

/// A photo as RGB.
pub fn load(photo: &Path) -> RgbImage {
    decode_image_file(&std::fs::read(photo).unwrap(), u64::MAX)
        .unwrap()
        .0
}

/// Bjøntegaard delta rate of `ours` against `reference` ((bpp, PSNR) points): the mean
/// difference of log-rate at equal PSNR over the shared PSNR range, with log-rate interpolated
/// piecewise-linearly in PSNR; in percent (negative: ours needs fewer bits).
pub fn bd_rate(ours: &[(f64, f64)], reference: &[(f64, f64)]) -> Option<f64> {
    let curve = |points: &[(f64, f64)]| {
        let mut c: Vec<(f64, f64)> = points.iter().map(|&(r, q)| (q, r.ln())).collect();
        c.sort_by(|a, b| a.0.total_cmp(&b.0));
        c.dedup_by(|a, b| a.0 == b.0);
        c
    };
    let (a, b) = (curve(ours), curve(reference));
    let lo = a.first()?.0.max(b.first()?.0);
    let hi = a.last()?.0.min(b.last()?.0);
    if hi <= lo {
        return None;
    }
    let at = |c: &[(f64, f64)], q: f64| {
        let i = c.partition_point(|p| p.0 < q).clamp(1, c.len() - 1);
        let ((q0, r0), (q1, r1)) = (c[i - 1], c[i]);
        r0 + (r1 - r0) * (q - q0) / (q1 - q0)
    };
    let steps = 1000;
    let mean = (0..=steps)
        .map(|k| {
            let q = lo + (hi - lo) * k as f64 / steps as f64;
            at(&a, q) - at(&b, q)
        })
        .sum::<f64>()
        / f64::from(steps + 1);
    Some((mean.exp() - 1.0) * 100.0)
}
