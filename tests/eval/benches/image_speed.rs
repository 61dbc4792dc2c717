//! Image codec speed against the classical codecs a user would pick instead, measured in the
//! same run (issue 23, part 2): for every chosen codec, encode and decode MPix/s over the
//! evaluation photos, and for each reference codec at the bits per pixel ours reached on the
//! same photo, its MPix/s and our speed as a ratio of its speed. WaLLoC codecs also get their
//! time split into stages.
//!
//! Timing rules, so the ratios do not flatter us:
//! - Ours: the `Codec` trait path the server runs, from decoded pixels to a bitstream and back
//!   (no PNG reading or writing), the median of `TERSE_EVAL_REPS` runs (default 3) per photo.
//! - References: their command-line tools reading and writing raw PPM (PNG for `avifenc`,
//!   Y4M out of `avifdec`), so no PNG compression is timed; the median of the same number of
//!   runs, minus the tool's own start-up (the median wall time of `tool --version`).
//! - Quality of each reference: bisection to the bits per pixel closest to ours on that photo
//!   (not timed). Speeds are total pixels over total seconds.
//!
//! Run: `cargo bench -p terse-eval --bench image_speed` (`TERSE_EVAL_CODECS=a,b` picks codecs,
//! default every WaLLoC codec and mlic-q3; `TERSE_EVAL_PHOTOS=n` the first n photos;
//! `TERSE_EVAL_BASELINES=0` skips the reference codecs;
//! `TERSE_EVAL_DIR` another folder, e.g. the 24 Kodak PNGs). Needs `scripts/setup`, the
//! models, the photos (../shared/datasets/images/mcmaster by default) and the Debian packages
//! `libjpeg-turbo-progs webp libavif-bin libjxl-tools` (missing tools are skipped).

use std::{path::Path, process::Command, sync::Arc, time::Instant};

use image::RgbImage;
use terse_codec::{DynCodec, EncodeOptions};
use terse_eval::{decode, encode, registry, repository};
use terse_image_eval::{load, start_eval, tool};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// A reference codec driven through its command-line tools.
struct Reference {
    label: &'static str,
    encoder: &'static str,
    decoder: &'static str,
    /// Input file the encoder reads, coded file, decoded file.
    files: [&'static str; 3],
    /// Quality range searched (higher = more bits).
    range: (u32, u32),
    encode: fn(u32, &str, &str) -> Vec<String>,
    decode: fn(&str, &str) -> Vec<String>,
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn references() -> Vec<Reference> {
    vec![
        Reference {
            label: "JPEG (libjpeg-turbo)",
            encoder: "cjpeg",
            decoder: "djpeg",
            files: ["in.ppm", "coded.jpg", "out.ppm"],
            range: (1, 100),
            encode: |q, i, o| args(&["-quality", &q.to_string(), "-optimize", "-outfile", o, i]),
            decode: |i, o| args(&["-outfile", o, i]),
        },
        Reference {
            label: "WebP (cwebp default -m 4)",
            encoder: "cwebp",
            decoder: "dwebp",
            files: ["in.ppm", "coded.webp", "out.ppm"],
            range: (0, 100),
            encode: |q, i, o| args(&["-quiet", "-q", &q.to_string(), i, "-o", o]),
            decode: |i, o| args(&["-quiet", "-ppm", i, "-o", o]),
        },
        Reference {
            label: "AVIF (libavif, speed 6)",
            encoder: "avifenc",
            decoder: "avifdec",
            files: ["in.png", "coded.avif", "out.y4m"],
            range: (0, 63),
            encode: |q, i, o| {
                let quantizer = (63 - q).to_string();
                args(&["-s", "6", "--min", &quantizer, "--max", &quantizer, i, o])
            },
            decode: |i, o| args(&[i, o]),
        },
        Reference {
            label: "JPEG XL (libjxl)",
            encoder: "cjxl",
            decoder: "djxl",
            files: ["in.ppm", "coded.jxl", "out.ppm"],
            range: (1, 100),
            encode: |q, i, o| args(&["--quiet", "-q", &q.to_string(), i, o]),
            decode: |i, o| args(&["--quiet", i, o]),
        },
    ]
}

fn reps() -> usize {
    std::env::var("TERSE_EVAL_REPS").map_or(3, |v| v.parse().unwrap())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The median of `reps()` timings of `run`.
fn timed(mut run: impl FnMut()) -> f64 {
    median(
        (0..reps())
            .map(|_| {
                let started = Instant::now();
                run();
                started.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn run_tool(binary: &str, args: &[String]) {
    let output = Command::new(binary).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{binary} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Median wall time of `binary --version` (`-version` for the libjpeg and libwebp tools).
fn start_up(binary: &str) -> f64 {
    let flag =
        if binary.starts_with('c') && binary != "cjxl" || binary == "dwebp" || binary == "djpeg" {
            "-version"
        } else {
            "--version"
        };
    timed(|| {
        Command::new(binary)
            .arg(flag)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
    })
}

fn write_ppm(image: &RgbImage, path: &Path) {
    let mut bytes = format!("P6\n{} {}\n255\n", image.width(), image.height()).into_bytes();
    bytes.extend_from_slice(image.as_raw());
    std::fs::write(path, bytes).unwrap();
}

/// Encode and decode seconds and bits per pixel of one photo.
#[derive(Default, Clone, Copy)]
struct Timing {
    encode_s: f64,
    decode_s: f64,
    bpp: f64,
}

impl Reference {
    fn available(&self) -> bool {
        tool(self.encoder) && tool(self.decoder)
    }

    /// Timings at the quality whose bpp is closest to `target`, with start-up subtracted.
    fn at_bpp(&self, photo: &RgbImage, dir: &Path, target: f64, start_up: (f64, f64)) -> Timing {
        let path = |k: usize| dir.join(self.files[k]).to_str().unwrap().to_string();
        let (input, coded, decoded) = (path(0), path(1), path(2));
        if input.ends_with(".ppm") {
            write_ppm(photo, Path::new(&input));
        } else {
            photo.save(&input).unwrap();
        }
        let pixels = f64::from(photo.width()) * f64::from(photo.height());
        let bpp_at = |q: u32| {
            run_tool(self.encoder, &(self.encode)(q, &input, &coded));
            std::fs::metadata(&coded).unwrap().len() as f64 * 8.0 / pixels
        };
        let (quality, bpp) =
            terse_image_eval::closest_quality(self.range, target, |q| Some(bpp_at(q)))
                .expect("the bisection visits at least one quality");
        let encode_args = (self.encode)(quality, &input, &coded);
        let encode_s = timed(|| run_tool(self.encoder, &encode_args));
        let decode_args = (self.decode)(&coded, &decoded);
        let decode_s = timed(|| run_tool(self.decoder, &decode_args));
        Timing {
            encode_s: (encode_s - start_up.0).max(1e-6),
            decode_s: (decode_s - start_up.1).max(1e-6),
            bpp,
        }
    }
}

fn wanted(name: &str) -> bool {
    match std::env::var("TERSE_EVAL_CODECS") {
        Ok(list) => list.split(',').any(|n| n == name),
        Err(_) => !name.starts_with("mlic") || name == "mlic-q3",
    }
}

fn mpix(pixels: f64, seconds: f64) -> f64 {
    pixels / seconds / 1e6
}

/// Stage times of the WaLLoC codecs (seconds summed over the photos).
#[derive(Default)]
struct Stages {
    analysis: f64,
    coding: f64,
    latents: f64,
    synthesis: f64,
}

fn walloc_stages(codec: &terse_walloc::WallocImageCodec, photo: &RgbImage, stages: &mut Stages) {
    let analysis = timed(|| {
        codec.analyze(photo).unwrap();
    });
    stages.analysis += analysis;
    let (bitstream, _) = codec.encode(photo).unwrap();
    stages.coding += timed(|| {
        codec.encode(photo).unwrap();
    }) - analysis;
    stages.latents += timed(|| {
        codec.decode_latents(&bitstream, u64::MAX).unwrap();
    });
    // Bands of the decoder's shape (the encoder's packet of the photo) through the inverse
    // packet and the conversion to pixels.
    let weights = codec.weights();
    let block = weights.block() as u32;
    let (w, h) = (photo.width(), photo.height());
    let (pw, ph) = (w.div_ceil(block) * block, h.div_ceil(block) * block);
    let planes = terse_walloc::padded_planes(photo, pw as usize, ph as usize, 0.0);
    let bands =
        terse_wavelet::wpt2d(&terse_wavelet::bior44(), planes.view(), weights.levels).unwrap();
    stages.synthesis += timed(|| {
        codec.reconstruct(bands.view(), w, h).unwrap();
    });
}

fn main() {
    let Some(paths) = start_eval(Path::new(ROOT)) else {
        return;
    };
    let photos: Vec<RgbImage> = paths.iter().map(|p| load(p)).collect();
    let pixels: f64 = photos
        .iter()
        .map(|p| f64::from(p.width()) * f64::from(p.height()))
        .sum();
    let folder = paths[0].parent().unwrap_or(Path::new("."));
    println!(
        "{} photos from {} ({:.2} MPix in all), {} runs each, machine: {} threads",
        photos.len(),
        folder.display(),
        pixels / 1e6,
        reps(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let run_references = std::env::var("TERSE_EVAL_BASELINES").map_or(true, |v| v != "0");
    let references: Vec<Reference> = references()
        .into_iter()
        .filter(|r| run_references && r.available())
        .collect();
    let start_ups: Vec<(f64, f64)> = references
        .iter()
        .map(|r| (start_up(r.encoder), start_up(r.decoder)))
        .collect();
    for (r, s) in references.iter().zip(&start_ups) {
        println!(
            "  start-up subtracted: {} {:.1} ms, {} {:.1} ms",
            r.encoder,
            s.0 * 1e3,
            r.decoder,
            s.1 * 1e3
        );
    }
    let registry = registry(&repository(), 2);
    type Walloc = Arc<terse_walloc::WallocImage>;
    let mut codecs: Vec<(Arc<DynCodec<RgbImage>>, Option<Walloc>)> = Vec::new();
    for c in terse_hosting::walloc_image_codecs(&registry).unwrap() {
        let walloc = Arc::new(c);
        codecs.push((Arc::clone(&walloc) as Arc<DynCodec<RgbImage>>, Some(walloc)));
    }
    for c in terse_hosting::mlic_codecs(&registry).unwrap() {
        codecs.push((Arc::new(c), None));
    }
    let dir = std::env::temp_dir().join(format!("terse-speed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (codec, walloc) in codecs.iter().filter(|(c, _)| wanted(&c.info().name)) {
        let name = codec.info().name.clone();
        let mut ours = Timing::default();
        let mut theirs = vec![Timing::default(); references.len()];
        let mut stages = Stages::default();
        for photo in &photos {
            let photo_pixels = f64::from(photo.width()) * f64::from(photo.height());
            let shared = Arc::new(photo.clone());
            let coded = encode(codec.as_ref(), &shared, EncodeOptions::default()).unwrap();
            let encode_s = timed(|| {
                encode(codec.as_ref(), &shared, EncodeOptions::default()).unwrap();
            });
            let decode_s = timed(|| {
                decode(codec.as_ref(), &coded.bitstream).unwrap();
            });
            let bpp = coded.bitstream.len() as f64 * 8.0 / photo_pixels;
            ours.encode_s += encode_s;
            ours.decode_s += decode_s;
            ours.bpp += bpp / photos.len() as f64;
            for ((reference, total), start_up) in references.iter().zip(&mut theirs).zip(&start_ups)
            {
                let t = reference.at_bpp(photo, &dir, bpp, *start_up);
                total.encode_s += t.encode_s;
                total.decode_s += t.decode_s;
                total.bpp += t.bpp / photos.len() as f64;
            }
            if let Some(walloc) = walloc {
                walloc_stages(walloc.codec(), photo, &mut stages);
            }
        }
        println!("\n{name}: bpp matched per photo");
        println!(
            "| codec | bpp | encode MPix/s | decode MPix/s | ours vs it: encode speed | decode speed |"
        );
        println!("|---|---|---|---|---|---|");
        println!(
            "| terse {name} | {:.3} | {:.2} | {:.2} | | |",
            ours.bpp,
            mpix(pixels, ours.encode_s),
            mpix(pixels, ours.decode_s)
        );
        for (reference, t) in references.iter().zip(&theirs) {
            println!(
                "| {} | {:.3} | {:.2} | {:.2} | {:.2}× | {:.2}× |",
                reference.label,
                t.bpp,
                mpix(pixels, t.encode_s),
                mpix(pixels, t.decode_s),
                t.encode_s / ours.encode_s,
                t.decode_s / ours.decode_s
            );
        }
        if walloc.is_some() {
            // Each stage timed on its own (medians), so encode shares are of their sum.
            let share = |s: f64, total: f64| 100.0 * s / total;
            let encode_stages = stages.analysis + stages.coding;
            println!(
                "stages: encode = analysis (wavelet packet, linear encoder, rounding) {:.1} MPix/s ({:.0} %) + entropy coding and container {:.1} MPix/s ({:.0} %); decode = latents {:.1} MPix/s ({:.0} %) + inverse packet and pixels {:.1} MPix/s ({:.0} %) + decoder network and the rest ({:.0} %)",
                mpix(pixels, stages.analysis),
                share(stages.analysis, encode_stages),
                mpix(pixels, stages.coding),
                share(stages.coding, encode_stages),
                mpix(pixels, stages.latents),
                share(stages.latents, ours.decode_s),
                mpix(pixels, stages.synthesis),
                share(stages.synthesis, ours.decode_s),
                100.0 - share(stages.latents + stages.synthesis, ours.decode_s),
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
