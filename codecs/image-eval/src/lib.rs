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

/// Runs `command` to its end and answers its wall time in seconds; `None` when it could not
/// start or did not succeed.
pub fn timed(mut command: Command) -> Option<f64> {
    let start = Instant::now();
    let status = command.output().ok()?.status;
    status.success().then(|| start.elapsed().as_secs_f64())
}

/// What every eval bench does first: work from the workspace `root` (the ONNX Runtime in
/// ./.venv and the model repository are relative to it) and list the evaluation photos; `None`,
/// after saying why, when there are none.
pub fn start_eval(root: &Path) -> Option<Vec<PathBuf>> {
    std::env::set_current_dir(root).expect("workspace root");
    let photos = validation_photos(root);
    if photos.is_empty() {
        println!(
            "no photos in {}: nothing to evaluate",
            eval_folder(root).display()
        );
        return None;
    }
    Some(photos)
}

/// The folder of evaluation photos: `TERSE_EVAL_DIR` (any folder of PNG/TIFF/JPEG photos, e.g.
/// the 24 Kodak PNGs), else the McMaster set under `root/../shared/datasets` (never trained on).
pub fn eval_folder(root: &Path) -> PathBuf {
    std::env::var_os("TERSE_EVAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/datasets/images/mcmaster"))
}

/// The photos of [`eval_folder`], sorted, the first `TERSE_EVAL_PHOTOS` of them when set.
pub fn validation_photos(root: &Path) -> Vec<PathBuf> {
    let is_photo = |p: &Path| {
        p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            ["png", "tif", "tiff", "jpg", "jpeg", "bmp"].contains(&e.to_ascii_lowercase().as_str())
        })
    };
    let mut photos: Vec<PathBuf> = std::fs::read_dir(eval_folder(root))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_photo(p))
                .collect()
        })
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
    /// JPEG, WebP, AVIF and JPEG XL: one row each (label, encoder binary, the file
    /// extensions its tools read and write, the quality range, the encode command at quality
    /// `q` from `i` to `o`, the decode command from `i` to `o`).
    #[rustfmt::skip]
    pub fn all() -> Vec<Baseline> {
        vec![
            Baseline::new("JPEG (libjpeg-turbo)", "cjpeg", ["bmp", "bmp"], (1, 100),
                |q, i, o| cmd("cjpeg", &["-quality", &q.to_string(), "-optimize", "-outfile", o, i]),
                |i, o| cmd("djpeg", &["-bmp", "-outfile", o, i])),
            Baseline::new("WebP", "cwebp", ["png", "png"], (0, 100),
                |q, i, o| cmd("cwebp", &["-quiet", "-m", "6", "-q", &q.to_string(), i, "-o", o]),
                |i, o| cmd("dwebp", &["-quiet", i, "-o", o])),
            // Quality q is quantizer 63 − q, so that higher means more bits here too.
            Baseline::new("AVIF (libavif)", "avifenc", ["png", "png"], (0, 63),
                |q, i, o| { let k = (63 - q).to_string(); cmd("avifenc", &["-s", "6", "--min", &k, "--max", &k, i, o]) },
                |i, o| cmd("avifdec", &[i, o])),
            Baseline::new("JPEG XL (libjxl)", "cjxl", ["png", "png"], (1, 100),
                |q, i, o| cmd("cjxl", &["--quiet", "-q", &q.to_string(), i, o]),
                |i, o| cmd("djxl", &["--quiet", i, o])),
        ]
    }

    /// A baseline from its row in [`Baseline::all`].
    fn new(
        label: &'static str,
        binary: &'static str,
        [input, output]: [&'static str; 2],
        range: (u32, u32),
        encode: fn(u32, &str, &str) -> Command,
        decode: fn(&str, &str) -> Command,
    ) -> Self {
        Self {
            label,
            binary,
            input,
            output,
            range,
            encode,
            decode,
        }
    }

    /// Encodes at the quality whose bpp is closest to `target` (bisection), then decodes.
    pub fn matched(&self, original: &RgbImage, dir: &Path, target: f64) -> Option<Row> {
        let input = dir.join(format!("input.{}", self.input));
        original.save(&input).ok()?;
        let coded = dir.join("coded.bin");
        let (i, c) = (input.to_str()?, coded.to_str()?);
        let pixels = f64::from(original.width()) * f64::from(original.height());
        let encode = |q: u32| -> Option<(f64, f64)> {
            let seconds = timed((self.encode)(q, i, c))?;
            Some((
                std::fs::metadata(&coded).ok()?.len() as f64 * 8.0 / pixels,
                seconds,
            ))
        };
        let (quality, _) = closest_quality(self.range, target, |q| encode(q).map(|(bpp, _)| bpp))?;
        self.at(original, dir, quality)
    }

    /// Encodes at quality setting `q` (within `range`), decodes, and measures.
    pub fn at(&self, original: &RgbImage, dir: &Path, q: u32) -> Option<Row> {
        let input = dir.join(format!("input.{}", self.input));
        original.save(&input).ok()?;
        let coded = dir.join("coded.bin");
        let decoded = dir.join(format!("decoded.{}", self.output));
        let (i, c, d) = (input.to_str()?, coded.to_str()?, decoded.to_str()?);
        let pixels = f64::from(original.width()) * f64::from(original.height());
        let encode_s = timed((self.encode)(q, i, c))?;
        let bpp = std::fs::metadata(&coded).ok()?.len() as f64 * 8.0 / pixels;
        let decode_s = timed((self.decode)(c, d))?;
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

/// A published rate-distortion curve: mean (bpp, PSNR-RGB) per setting.
pub struct PublishedCurve {
    /// Codec name.
    pub name: String,
    /// Points, in the order published.
    pub points: Vec<(f64, f64)>,
}

/// The published Kodak curves (VTM, BPG, CompressAI) committed in `published/kodak.json` with
/// their source, when the photos evaluated are the 24 Kodak PNGs (`kodim01.png` …
/// `kodim24.png`); empty otherwise, since the numbers hold only for that set.
pub fn published_curves(photos: &[PathBuf]) -> Vec<PublishedCurve> {
    let kodak = photos.len() == 24
        && photos.iter().enumerate().all(|(i, p)| {
            p.file_name().and_then(|n| n.to_str()) == Some(&format!("kodim{:02}.png", i + 1))
        });
    if !kodak {
        return Vec::new();
    }
    let text = include_str!("../published/kodak.json");
    let file: serde_json::Value = serde_json::from_str(text).expect("published/kodak.json");
    let numbers = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_f64().expect("number"))
            .collect()
    };
    file["curves"]
        .as_array()
        .expect("curves")
        .iter()
        .map(|c| PublishedCurve {
            name: c["name"].as_str().expect("name").to_string(),
            points: numbers(&c["bpp"])
                .into_iter()
                .zip(numbers(&c["psnr_rgb"]))
                .collect(),
        })
        .collect()
}

/// Writes a rate-distortion plot (PSNR-RGB over bpp, one polyline with markers per curve) as
/// an SVG file. The window is set by the first curve (ours): bpp from 0 to 1.4× its largest,
/// PSNR from 3 dB under its lowest to 4 dB over its highest; other curves are clipped to it and
/// non-finite points (a lossless setting's infinite PSNR) are left out.
pub fn write_rd_svg(
    path: &Path,
    title: &str,
    curves: &[(String, Vec<(f64, f64)>)],
) -> std::io::Result<()> {
    const COLOURS: [&str; 10] = [
        "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#17becf", "#bcbd22",
    ];
    let finite = |c: &[(f64, f64)]| -> Vec<(f64, f64)> {
        let mut points: Vec<(f64, f64)> = c
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points
    };
    let Some((_, ours)) = curves.first() else {
        return Ok(());
    };
    let ours = finite(ours);
    if ours.is_empty() {
        return Ok(());
    }
    let max_x = ours.iter().map(|p| p.0).fold(0.0, f64::max);
    let (min_y, max_y) = ours.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let (x0, x1, y0, y1) = (
        0.0,
        max_x * 1.4,
        (min_y - 3.0).floor(),
        (max_y + 4.0).ceil(),
    );
    let (w, h, margin) = (760.0, 500.0, 60.0);
    let sx = |x: f64| margin + (x - x0) / (x1 - x0) * (w - 2.0 * margin);
    let sy = |y: f64| h - margin - (y - y0) / (y1 - y0) * (h - 2.0 * margin);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<defs><clipPath id=\"plot\"><rect x=\"{margin}\" y=\"{margin}\" width=\"{}\" height=\"{}\"/></clipPath></defs>\n<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{title}</text>\n",
        w - 2.0 * margin,
        h - 2.0 * margin,
        w / 2.0
    );
    for k in 0..=5 {
        let x = x0 + (x1 - x0) * f64::from(k) / 5.0;
        let y = y0 + (y1 - y0) * f64::from(k) / 5.0;
        svg += &format!(
            "<line x1=\"{:.1}\" y1=\"{margin}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/><line x1=\"{margin}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{x:.2}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{y:.1}</text>\n",
            sx(x),
            sx(x),
            h - margin,
            sy(y),
            w - margin,
            sy(y),
            sx(x),
            h - margin + 18.0,
            margin - 6.0,
            sy(y) + 4.0
        );
    }
    svg += &format!(
        "<rect x=\"{margin}\" y=\"{margin}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"black\"/>\n<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">bits per pixel</text><text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">PSNR-RGB (dB)</text>\n",
        w - 2.0 * margin,
        h - 2.0 * margin,
        w / 2.0,
        h - 16.0,
        h / 2.0,
        h / 2.0
    );
    for (i, (name, curve)) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points = finite(curve);
        let line: Vec<String> = points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let width = if i == 0 { 3 } else { 2 };
        svg += &format!(
            "<g clip-path=\"url(#plot)\"><polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"{width}\" points=\"{}\"/>\n",
            line.join(" ")
        );
        for &(x, y) in &points {
            svg += &format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>",
                sx(x),
                sy(y)
            );
        }
        let ly = margin + 14.0 + 18.0 * i as f64;
        svg += &format!(
            "</g>\n<line x1=\"{:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{colour}\" stroke-width=\"{width}\"/><text x=\"{:.1}\" y=\"{:.1}\">{name}</text>\n",
            w - margin - 250.0,
            w - margin - 225.0,
            w - margin - 218.0,
            ly + 4.0
        );
    }
    svg += "</svg>\n";
    std::fs::write(path, svg)
}

/// The quality in `range` whose bpp (from `bpp_at`) is closest to `target`, and that bpp, found
/// by bisection: bpp is assumed to grow with quality. `None` when `bpp_at` fails.
pub fn closest_quality(
    range: (u32, u32),
    target: f64,
    mut bpp_at: impl FnMut(u32) -> Option<f64>,
) -> Option<(u32, f64)> {
    let (mut lo, mut hi) = range;
    let mut best: Option<(f64, u32, f64)> = None;
    while lo <= hi {
        let q = lo + (hi - lo) / 2;
        let bpp = bpp_at(q)?;
        if best.is_none_or(|(d, _, _)| (bpp - target).abs() < d) {
            best = Some(((bpp - target).abs(), q, bpp));
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
    best.map(|(_, q, bpp)| (q, bpp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rd_plot_is_windowed_on_our_curve_and_skips_non_finite_points() {
        let path = std::env::temp_dir().join(format!("terse-rd-{}.svg", std::process::id()));
        let ours = vec![(0.3, 28.0), (0.7, 31.9), (1.05, 33.5)];
        let theirs = vec![
            (0.2, 26.0),
            (0.9, 33.0),
            (9.2, f64::INFINITY),
            (f64::NAN, 30.0),
        ];
        write_rd_svg(
            &path,
            "test",
            &[("ours".into(), ours), ("theirs".into(), theirs)],
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).ok();
        assert!(svg.contains("clipPath") && svg.contains(">ours<") && svg.contains(">theirs<"));
        assert!(!svg.contains("inf") && !svg.contains("NaN"), "{svg}");
        // x runs to 1.4 x 1.05 bpp, y from 25 to 38 dB.
        assert!(
            svg.contains(">1.47<") && svg.contains(">25.0<") && svg.contains(">38.0<"),
            "{svg}"
        );
    }

    #[test]
    fn bd_rate_of_a_curve_against_itself_is_zero_and_halving_bits_is_minus_fifty() {
        let curve = vec![(0.2, 28.0), (0.4, 30.0), (0.8, 32.0)];
        assert!(bd_rate(&curve, &curve).unwrap().abs() < 1e-9);
        let half: Vec<(f64, f64)> = curve.iter().map(|&(r, q)| (r / 2.0, q)).collect();
        assert!((bd_rate(&half, &curve).unwrap() + 50.0).abs() < 1e-6);
    }
}
