//! Image evaluation table: every hosted WaLLoC config against JPEG (libjpeg-turbo), WebP, AVIF
//! and JPEG XL at matched bits per pixel, on the McMaster validation photos (never trained on):
//! bpp, PSNR, MS-SSIM, encode and decode MPix/s. Also the size of the latents written as the
//! reference does (8-bit planes in lossless WebP) against our prior-coded latents, and the
//! latent-bits rate knob of every config against WebP at matched bpp with the BD-rate of the
//! whole curve (`TERSE_EVAL_KNOB=0` skips that part).
//!
//! Run: `cargo bench -p terse-eval --bench walloc_image_eval` (`TERSE_EVAL_PHOTOS=n` evaluates the first
//! n photos only, `TERSE_EVAL_CONFIG=name` one model, `TERSE_EVAL_BASELINES=0` skips the
//! reference codecs; needs `scripts/setup`, the models in
//! models/repository, ../shared/datasets/images/mcmaster, and for the baselines the Debian
//! packages libjpeg-turbo-progs webp libavif-bin libjxl-tools; missing tools are skipped).

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use terse_image_eval::{
    Baseline, RgbImage, Row, bd_rate, load, ms_ssim, print_header, print_row, psnr, start_eval,
    tool,
};
use terse_walloc::WallocImage;

mod shared;

use shared::webp_latent_bytes;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn main() {
    let Some(photos) = start_eval(Path::new(ROOT)) else {
        return;
    };
    let mut configs = Vec::new();
    let registry = terse_eval::registry(&terse_eval::repository(), 1);
    for hosted in terse_hosting::walloc_image_codecs(&registry).expect("run scripts/setup first") {
        let name = hosted.codec().model().name.clone();
        if std::env::var("TERSE_EVAL_CONFIG").is_ok_and(|only| only != name) {
            continue;
        }
        configs.push((name, hosted));
    }
    let dir = std::env::temp_dir().join(format!("terse-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let n = photos.len() as f64;
    println!(
        "McMaster validation set: {} photos (500x500), never trained on",
        photos.len()
    );
    for (name, hosted) in &configs {
        let codec = hosted.codec();
        let mut ours = Row::default();
        let mut webp_latents = 0usize;
        let mut prior_latents = 0usize;
        let mut context_latents = 0usize;
        let mut baselines: Vec<(&str, Row)> = Vec::new();
        for photo in &photos {
            let original = load(photo);
            let (row, latents) = ours_at(hosted, &original, 0);
            ours.add(row);
            let codings = codec.code_latents(&latents).unwrap();
            prior_latents += codings.factorized.len();
            context_latents += codings.context_bytes();
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
        print_header();
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

/// Our codec on one photo with `shift` latent bits dropped.
fn ours_at(hosted: &WallocImage, original: &RgbImage, shift: u32) -> (Row, terse_walloc::Latents) {
    let codec = hosted.codec();
    let pixels = f64::from(original.width()) * f64::from(original.height());
    let start = Instant::now();
    let (bitstream, latents) = codec.encode_at(original, shift).unwrap();
    let encode_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let decoded = terse_eval::decode(hosted, &bitstream).unwrap();
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
fn rate_knob(configs: &[(String, WallocImage)], photos: &[PathBuf], dir: &Path) {
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
    for (name, hosted) in configs {
        for bits in [8, 7, 6, 5, 4] {
            let shift = hosted.codec().shift_for(bits).unwrap();
            let (mut ours, mut theirs) = (Row::default(), Row::default());
            for photo in photos {
                let original = load(photo);
                let (row, _) = ours_at(hosted, &original, shift);
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
