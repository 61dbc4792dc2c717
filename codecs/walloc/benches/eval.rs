//! Image evaluation table: every hosted WaLLoC config against JPEG (libjpeg-turbo), WebP, AVIF
//! and JPEG XL at matched bits per pixel, on the McMaster validation photos (never trained on):
//! bpp, PSNR, MS-SSIM, encode and decode MPix/s. Also the size of the latents written as the
//! reference does (8-bit planes in lossless WebP) against our prior-coded latents, and the
//! latent-bits rate knob of every config against WebP at matched bpp with the BD-rate of the
//! whole curve (`TERSE_EVAL_KNOB=0` skips that part).
//!
//! Run: `cargo bench -p terse-walloc --bench eval` (`TERSE_EVAL_PHOTOS=n` evaluates the first
//! n photos only, `TERSE_EVAL_CONFIG=name` one model, `TERSE_EVAL_BASELINES=0` skips the
//! reference codecs; needs `scripts/setup`, the models in
//! models/repository, ../shared/datasets/images/mcmaster, and for the baselines the Debian
//! packages libjpeg-turbo-progs webp libavif-bin libjxl-tools; missing tools are skipped).

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use terse_walloc::{RgbImage, WallocImageCodec, decode_image_file, ms_ssim, psnr};
use terse_walloc_host::{BlockingDecoder, host_repository};

mod shared;

use shared::{cmd, tool, webp_latent_bytes};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

#[derive(Default, Clone, Copy)]
struct Row {
    bpp: f64,
    psnr: f64,
    ms_ssim: f64,
    encode_s: f64,
    decode_s: f64,
    pixels: f64,
}

impl Row {
    fn add(&mut self, o: Row) {
        self.bpp += o.bpp;
        self.psnr += o.psnr;
        self.ms_ssim += o.ms_ssim;
        self.encode_s += o.encode_s;
        self.decode_s += o.decode_s;
        self.pixels += o.pixels;
    }
}

fn print_row(name: &str, r: Row, n: f64) {
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
struct Baseline {
    label: &'static str,
    binary: &'static str,
    /// Input and decoded-output file extensions the tools read and write.
    input: &'static str,
    output: &'static str,
    /// Quality range searched (higher = more bits).
    range: (u32, u32),
    encode: fn(u32, &str, &str) -> Command,
    decode: fn(&str, &str) -> Command,
}

impl Baseline {
    fn all() -> Vec<Baseline> {
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
    fn matched(&self, original: &RgbImage, dir: &Path, target: f64) -> Option<Row> {
        let input = dir.join(format!("input.{}", self.input));
        original.save(&input).ok()?;
        let coded = dir.join("coded.bin");
        let decoded = dir.join(format!("decoded.{}", self.output));
        let (i, c, d) = (input.to_str()?, coded.to_str()?, decoded.to_str()?);
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
        let (bpp, encode_s) = encode(best?.1)?;
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
}

fn main() {
    // Paths (the ONNX Runtime in ./.venv, the repository) are relative to the workspace root.
    std::env::set_current_dir(ROOT).expect("workspace root");
    let shared = PathBuf::from(ROOT).join("../shared/datasets/images/mcmaster");
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
    if photos.is_empty() {
        println!(
            "no validation photos under {}: nothing to evaluate",
            shared.display()
        );
        return;
    }
    std::env::set_current_dir(ROOT).unwrap();
    let mut configs = Vec::new();
    for hosted in host_repository::<WallocImageCodec>(&PathBuf::from("models/repository"))
        .expect("run scripts/setup first")
    {
        let name = hosted.codec.model().name.clone();
        if std::env::var("TERSE_EVAL_CONFIG").is_ok_and(|only| only != name) {
            continue;
        }
        let decoder = BlockingDecoder::new(hosted.decoder).unwrap();
        configs.push((name, hosted.codec, decoder));
    }
    configs.sort_by_key(|(_, c, _)| c.weights().latent_dim);
    let dir = std::env::temp_dir().join(format!("terse-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let n = photos.len() as f64;
    println!(
        "McMaster validation set: {} photos (500x500), never trained on",
        photos.len()
    );
    for (name, codec, decoder) in &configs {
        let mut ours = Row::default();
        let mut webp_latents = 0usize;
        let mut prior_latents = 0usize;
        let mut context_latents = 0usize;
        let mut baselines: Vec<(&str, Row)> = Vec::new();
        for photo in &photos {
            let original = load(photo);
            let (row, latents) = ours_at(codec, decoder, &original, 0);
            ours.add(row);
            let (factorized, contextual) = codec.code_latents(&latents).unwrap();
            prior_latents += factorized.len();
            context_latents += contextual.len();
            // The reference's latent coding: lossless WebP of the tiled uint8 planes.
            let bias = codec.weights().max_level() + 1;
            webp_latents += webp_latent_bytes(&latents.values, bias, &dir).unwrap_or(0);
            let run_baselines = std::env::var("TERSE_EVAL_BASELINES").map_or(true, |v| v != "0");
            for baseline in Baseline::all()
                .iter()
                .filter(|b| run_baselines && tool(b.binary))
            {
                if let Some(r) = baseline.matched(&original, &dir, row.bpp) {
                    match baselines.iter_mut().find(|(n, _)| *n == baseline.label) {
                        Some((_, acc)) => acc.add(r),
                        None => baselines.push((baseline.label, r)),
                    }
                }
            }
        }
        println!("\n{name} (bpp matched per photo)");
        println!(
            "  {:<22} {:>6} {:>7} {:>8} {:>9} {:>9}",
            "codec", "bpp", "PSNR", "MS-SSIM", "enc MP/s", "dec MP/s"
        );
        print_row(&format!("terse {name}"), ours, n);
        for (label, r) in &baselines {
            print_row(label, *r, n);
        }
        if webp_latents > 0 {
            let saving = |x: usize| 100.0 * (1.0 - x as f64 / webp_latents as f64);
            println!(
                "  latents: lossless WebP (reference) {webp_latents} B; learned factorized prior {prior_latents} B ({:+.1}%); context model {context_latents} B ({:+.1}%)",
                -saving(prior_latents),
                -saving(context_latents)
            );
        }
    }
    if std::env::var("TERSE_EVAL_KNOB").map_or(true, |v| v != "0") && tool("cwebp") {
        rate_knob(&configs, &photos, &dir);
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn load(photo: &Path) -> RgbImage {
    decode_image_file(&std::fs::read(photo).unwrap(), u64::MAX)
        .unwrap()
        .0
}

/// Our codec on one photo with `shift` latent bits dropped.
fn ours_at(
    codec: &WallocImageCodec,
    decoder: &BlockingDecoder,
    original: &RgbImage,
    shift: u32,
) -> (Row, terse_walloc::Latents) {
    let pixels = f64::from(original.width()) * f64::from(original.height());
    let start = Instant::now();
    let (bitstream, latents) = codec.encode_at(original, shift).unwrap();
    let encode_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let decoded = codec.decode(&bitstream, decoder, u64::MAX).unwrap();
    let decode_s = start.elapsed().as_secs_f64();
    let row = Row {
        bpp: bitstream.len() as f64 * 8.0 / pixels,
        psnr: psnr(original, &decoded),
        ms_ssim: ms_ssim(original, &decoded).unwrap_or(f64::NAN),
        encode_s,
        decode_s,
        pixels,
    };
    (row, latents)
}

/// The latent-bits rate knob of every config against WebP at matched bpp, and the BD-rate of
/// the whole terse curve against WebP's.
fn rate_knob(
    configs: &[(String, std::sync::Arc<WallocImageCodec>, BlockingDecoder)],
    photos: &[PathBuf],
    dir: &Path,
) {
    let webp = Baseline::all()
        .into_iter()
        .find(|b| b.binary == "cwebp")
        .expect("WebP baseline");
    let n = photos.len() as f64;
    let (mut ours_curve, mut webp_curve) = (Vec::new(), Vec::new());
    println!("\nrate knob (latent bits) against WebP at matched bpp");
    println!(
        "  {:<28} {:>6} {:>7} {:>8} {:>7}",
        "terse config", "bpp", "PSNR", "WebP bpp", "PSNR"
    );
    for (name, codec, decoder) in configs {
        for bits in [8, 7, 6, 5, 4] {
            let shift = codec.shift_for(bits).unwrap();
            let (mut ours, mut theirs) = (Row::default(), Row::default());
            for photo in photos {
                let original = load(photo);
                let (row, _) = ours_at(codec, decoder, &original, shift);
                ours.add(row);
                if let Some(r) = webp.matched(&original, dir, row.bpp) {
                    theirs.add(r);
                }
            }
            println!(
                "  {:<28} {:>6.3} {:>7.2} {:>8.3} {:>7.2}",
                format!("{name} b={bits}"),
                ours.bpp / n,
                ours.psnr / n,
                theirs.bpp / n,
                theirs.psnr / n
            );
            ours_curve.push((ours.bpp / n, ours.psnr / n));
            webp_curve.push((theirs.bpp / n, theirs.psnr / n));
        }
    }
    match bd_rate(&ours_curve, &webp_curve) {
        Some(rate) => println!(
            "  BD-rate against WebP (piecewise-linear log-rate over the shared PSNR range): {rate:+.1}%"
        ),
        None => println!("  BD-rate: the PSNR ranges do not overlap"),
    }
}

/// Bjøntegaard delta rate of `ours` against `reference` ((bpp, PSNR) points): the mean
/// difference of log-rate at equal PSNR over the shared PSNR range, with log-rate interpolated
/// piecewise-linearly in PSNR; in percent (negative: ours needs fewer bits).
fn bd_rate(ours: &[(f64, f64)], reference: &[(f64, f64)]) -> Option<f64> {
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
