//! Evaluation table of the MLIC-style codec on a folder of photos never trained on (McMaster by
//! default; `TERSE_EVAL_DIR` for another, e.g. the 24 Kodak PNGs): every shipped rate point
//! (models/repository, task `mlic-image`), the WaLLoC codecs, and JPEG, WebP, AVIF and JPEG XL
//! at the bpp of each rate point; bpp, PSNR, MS-SSIM, encode and decode MPix/s (CPU); BD-rate
//! of the MLIC curve against each reference codec's own 8-setting curve measured in the same
//! run and, on Kodak, against the published VTM, BPG and CompressAI curves
//! (terse-image-eval's `published/kodak.json`); an RD plot (SVG, `TERSE_EVAL_PLOT=path`); and
//! the ablation (hyperprior only → + channel context → + checkerboard spatial context) from the
//! models in models/ablation, each fine-tuned the same 1000 steps from the earlier `mlic-q3`.
//!
//! BD-rate: mean difference of log-rate at equal PSNR-RGB over the overlapping PSNR range,
//! log-rate interpolated piecewise-linearly in PSNR (terse_image_eval::bd_rate).
//!
//! Run: `cargo bench -p terse-eval --bench mlic_eval` (`TERSE_EVAL_PHOTOS=n`: first n photos;
//! `TERSE_EVAL_BASELINES=0`: no reference codecs; needs `scripts/setup`, the models, and the
//! photos; reference codecs from the Debian packages libjpeg-turbo-progs webp libavif-bin
//! libjxl-tools, skipped when missing).

use std::{path::Path, time::Instant};

use terse_image_eval::{
    Baseline, RgbImage, Row, bd_rate, eval_folder, load, ms_ssim, print_header, print_row, psnr,
    published_curves, start_eval, tool, write_rd_svg,
};

#[path = "../tests/support/mod.rs"]
mod support;

use support::{Loaded, ROOT, load_all};

/// Mean (bpp, PSNR) points of one codec.
type Curve = Vec<(f64, f64)>;

fn ours(model: &Loaded, original: &RgbImage) -> Row {
    let pixels = f64::from(original.width()) * f64::from(original.height());
    let start = Instant::now();
    let original_shared = std::sync::Arc::new(original.clone());
    let encoded = terse_eval::encode(&model.image, &original_shared, Default::default()).unwrap();
    let encode_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let decoded = terse_eval::decode(&model.image, &encoded.bitstream).unwrap();
    let decode_s = start.elapsed().as_secs_f64();
    Row {
        bpp: encoded.bitstream.len() as f64 * 8.0 / pixels,
        psnr: psnr(original, &decoded),
        ms_ssim: ms_ssim(original, &decoded).unwrap_or(f64::NAN),
        encode_s,
        decode_s,
        pixels,
    }
}

fn main() {
    let Some(photos) = start_eval(Path::new(ROOT)) else {
        return;
    };
    let images: Vec<RgbImage> = photos.iter().map(|p| load(p)).collect();
    let n = images.len() as f64;
    let rate_points = load_all(Path::new("models/repository"), 0);
    let dir = std::env::temp_dir().join(format!("terse-mlic-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "{}: {} photos, never trained on; CPU, ONNX Runtime default threads",
        eval_folder(Path::new(ROOT)).display(),
        images.len()
    );

    // Every rate point, with the reference codecs matched to its bpp photo by photo.
    let run_baselines = std::env::var("TERSE_EVAL_BASELINES").map_or(true, |v| v != "0");
    let baselines: Vec<Baseline> = Baseline::all()
        .into_iter()
        .filter(|b| run_baselines && tool(b.binary))
        .collect();
    let mut curves: Vec<(&str, Vec<(f64, f64)>)> = vec![("terse MLIC", Vec::new())];
    for model in &rate_points {
        let mut rows = vec![Row::default(); 1 + baselines.len()];
        for original in &images {
            let row = ours(model, original);
            rows[0].add(row);
            for (i, baseline) in baselines.iter().enumerate() {
                if let Some(r) = baseline.matched(original, &dir, row.bpp) {
                    rows[i + 1].add(r);
                }
            }
        }
        println!(
            "\n{} (reference codecs at the same bpp, photo by photo)",
            model.name
        );
        print_header();
        print_row(&format!("terse {}", model.name), rows[0], n);
        for (i, baseline) in baselines.iter().enumerate() {
            print_row(baseline.label, rows[i + 1], n);
        }
        curves[0].1.push((rows[0].bpp / n, rows[0].psnr / n));
    }
    // BD-rate against each reference codec's own curve (8 quality settings over its range,
    // averaged over the photos), so the PSNR ranges overlap; then the published curves.
    let mut plot: Vec<(String, Curve)> = vec![("terse MLIC".to_string(), curves[0].1.clone())];
    let mut references: Vec<(String, Curve, &str)> = baselines
        .iter()
        .map(|b| {
            (
                b.label.to_string(),
                b.curve(&images, &dir, 8),
                "measured in this run, 8 quality settings",
            )
        })
        .collect();
    references.extend(
        published_curves(&photos)
            .into_iter()
            .map(|c| (c.name, c.points, "published Kodak curve")),
    );
    println!();
    for (label, theirs, kind) in references {
        match bd_rate(&curves[0].1, &theirs) {
            Some(rate) => println!(
                "BD-rate of the MLIC curve ({} rate points) against {label} ({kind}): {rate:+.1}%",
                curves[0].1.len()
            ),
            None => println!("BD-rate against {label}: the PSNR ranges do not overlap"),
        }
        println!(
            "  {label} points (bpp, PSNR): {}",
            theirs
                .iter()
                .map(|(b, p)| format!("({b:.3}, {p:.2})"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        plot.push((label, theirs));
    }
    if let Some(path) = std::env::var_os("TERSE_EVAL_PLOT") {
        write_rd_svg(
            Path::new(&path),
            &format!(
                "MLIC on {}",
                eval_folder(Path::new(ROOT))
                    .file_name()
                    .map_or(String::new(), |n| n.to_string_lossy().into_owned())
            ),
            &plot,
        )
        .unwrap();
        println!("RD plot: {}", Path::new(&path).display());
    }

    // WaLLoC (the fast mode) on the same photos.
    println!("\nWaLLoC codecs on the same photos");
    print_header();
    let registry = terse_eval::registry(&terse_eval::repository(), 0);
    for hosted in terse_hosting::walloc_image_codecs(&registry).unwrap() {
        let mut total = Row::default();
        for original in &images {
            let pixels = f64::from(original.width()) * f64::from(original.height());
            let start = Instant::now();
            let (bitstream, _) = hosted.codec().encode(original).unwrap();
            let encode_s = start.elapsed().as_secs_f64();
            let start = Instant::now();
            let decoded = terse_eval::decode(&hosted, &bitstream).unwrap();
            total.add(Row {
                bpp: bitstream.len() as f64 * 8.0 / pixels,
                psnr: psnr(original, &decoded),
                ms_ssim: ms_ssim(original, &decoded).unwrap_or(f64::NAN),
                encode_s,
                decode_s: start.elapsed().as_secs_f64(),
                pixels,
            });
        }
        print_row(&format!("terse {}", hosted.codec().model().name), total, n);
    }

    // Ablation: the entropy model's references added one at a time, each model fine-tuned the
    // same number of steps from the same start (models/ablation, train_ladder.sh).
    let mut ablation = if Path::new("models/ablation").is_dir() {
        load_all(Path::new("models/ablation"), 0)
    } else {
        Vec::new()
    };
    ablation.sort_by_key(|m| m.codec().entropy().context() as u8);
    if !ablation.is_empty() {
        println!(
            "\nablation (same lambda, same start, same fine-tuning steps; references added one at a time)"
        );
        print_header();
        for model in &ablation {
            let mut total = Row::default();
            for original in &images {
                total.add(ours(model, original));
            }
            let context = format!("{:?}", model.codec().entropy().context()).to_lowercase();
            print_row(&format!("{} ({context})", model.name), total, n);
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
