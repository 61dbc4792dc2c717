//! What coding an image in tiles costs: every chosen image codec codes the photos over its tile
//! bound (the server's, `terse_hosting::tile_pixels`, or
//! `TERSE_EVAL_TILE_PIXELS` for all) whole and through `terse_tiles::Tiled`, as the server
//! does, and the bench prints, per codec, bits per pixel and PSNR both ways, the paired
//! differences with 95 % t-intervals over the photos, and encode and decode time tiled against
//! whole, in the same run.
//!
//! Data: the photos of the Debian package `mate-backgrounds` (GPL-2+; 1.3 to 4.9 Mpx JPEG, at
//! their own size: both arms code the same pixels, JPEG artefacts included; none was used to
//! train or select a model):
//!
//! ```text
//! apt-get download mate-backgrounds && dpkg -x mate-backgrounds_*.deb /tmp/mate
//! TERSE_EVAL_LARGE=/tmp/mate/usr/share/backgrounds/mate/nature cargo bench -p terse-eval --bench tiles_eval
//! ```
//!
//! `TERSE_EVAL_CODECS=a,b` picks the codecs (default: every WaLLoC codec and mlic-q3).

use std::{path::PathBuf, sync::Arc, time::Instant};

use image::RgbImage;
use terse_codec::{DynCodec, EncodeOptions};
use terse_eval::{decode, encode, mean_ci, registry, repository};
use terse_tiles::{Grid, Tiled};

/// One photo coded whole and tiled.
struct Pair {
    bpp: [f64; 2],
    psnr: [f64; 2],
    encode_s: [f64; 2],
    decode_s: [f64; 2],
}

fn photos() -> Option<Vec<(String, RgbImage)>> {
    let dir = PathBuf::from(std::env::var_os("TERSE_EVAL_LARGE")?);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg" || e == "png"))
        .collect();
    paths.sort();
    let mut photos = Vec::new();
    for path in paths {
        let photo = image::open(&path).unwrap().to_rgb8();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        photos.push((name, photo));
    }
    Some(photos)
}

/// Codes `photo` with `codec`: bits per pixel, PSNR of the decoded image, encode and decode
/// seconds.
fn code(codec: &DynCodec<RgbImage>, photo: &Arc<RgbImage>) -> (f64, f64, f64, f64) {
    let options = EncodeOptions::default();
    let started = Instant::now();
    let coded = encode(codec, photo, options).unwrap();
    let encode_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let decoded = decode(codec, &coded.bitstream).unwrap();
    let decode_s = started.elapsed().as_secs_f64();
    let pixels = f64::from(photo.width()) * f64::from(photo.height());
    let bpp = coded.bitstream.len() as f64 * 8.0 / pixels;
    (bpp, terse_walloc::psnr(photo, &decoded), encode_s, decode_s)
}

fn wanted(name: &str) -> bool {
    match std::env::var("TERSE_EVAL_CODECS") {
        Ok(list) => list.split(',').any(|n| n == name),
        Err(_) => !name.starts_with("mlic") || name == "mlic-q3",
    }
}

fn main() {
    let Some(photos) = photos() else {
        println!("TERSE_EVAL_LARGE is not set: nothing to evaluate (see the bench's doc comment)");
        return;
    };
    println!(
        "{} photos: {}",
        photos.len(),
        photos
            .iter()
            .map(|(n, p)| format!("{n} {}x{}", p.width(), p.height()))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let registry = registry(&repository(), 2);
    let mut codecs: Vec<Arc<DynCodec<RgbImage>>> = Vec::new();
    for c in terse_hosting::walloc_image_codecs(&registry).unwrap() {
        codecs.push(Arc::new(c));
    }
    for c in terse_hosting::mlic_codecs(&registry).unwrap() {
        codecs.push(Arc::new(c));
    }
    println!(
        "| codec | tile bound, pixels | photos tiled (tiles) | bpp whole | bpp tiled | bits, tiled vs whole (95 % CI) | PSNR whole | PSNR tiled | PSNR difference, dB (95 % CI) | encode time, tiled / whole | decode time, tiled / whole |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for inner in codecs.into_iter().filter(|c| wanted(&c.info().name)) {
        let name = inner.info().name.clone();
        let bound = std::env::var("TERSE_EVAL_TILE_PIXELS").map_or_else(
            |_| terse_hosting::tile_pixels(inner.as_ref()),
            |v| v.parse().unwrap(),
        );
        let tiled = Tiled::with_max_pixels(Arc::clone(&inner), bound);
        let over: Vec<&RgbImage> = photos
            .iter()
            .map(|(_, p)| p)
            .filter(|p| u64::from(p.width()) * u64::from(p.height()) > bound)
            .collect();
        if over.is_empty() {
            println!("| {name} | {bound} | none | | | | | | | | |");
            continue;
        }
        let tiles: Vec<u64> = over
            .iter()
            .map(|p| Grid::for_image(p.width(), p.height(), bound).count())
            .collect();
        let pairs: Vec<Pair> = over
            .iter()
            .map(|&photo| {
                let photo = Arc::new(photo.clone());
                let whole = code(inner.as_ref(), &photo);
                let split = code(&tiled, &photo);
                Pair {
                    bpp: [whole.0, split.0],
                    psnr: [whole.1, split.1],
                    encode_s: [whole.2, split.2],
                    decode_s: [whole.3, split.3],
                }
            })
            .collect();
        let mean = |f: &dyn Fn(&Pair) -> f64| pairs.iter().map(f).sum::<f64>() / pairs.len() as f64;
        let bits = mean_ci(
            &pairs
                .iter()
                .map(|p| 100.0 * (p.bpp[1] / p.bpp[0] - 1.0))
                .collect::<Vec<_>>(),
        );
        let psnr = mean_ci(
            &pairs
                .iter()
                .map(|p| p.psnr[1] - p.psnr[0])
                .collect::<Vec<_>>(),
        );
        let time = |f: &dyn Fn(&Pair) -> [f64; 2]| {
            pairs.iter().map(|p| f(p)[1]).sum::<f64>() / pairs.iter().map(|p| f(p)[0]).sum::<f64>()
        };
        println!(
            "| {name} | {bound} | {} {tiles:?} | {:.3} | {:.3} | {:+.2} % (±{:.2}) | {:.2} | {:.2} | {:+.3} (±{:.3}) | {:.2}× | {:.2}× |",
            over.len(),
            mean(&|p| p.bpp[0]),
            mean(&|p| p.bpp[1]),
            bits.0,
            bits.1,
            mean(&|p| p.psnr[0]),
            mean(&|p| p.psnr[1]),
            psnr.0,
            psnr.1,
            time(&|p| p.encode_s),
            time(&|p| p.decode_s),
        );
    }
}
