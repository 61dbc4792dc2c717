//! Audio evaluation table: every shipped WaLLoC audio config against Opus (opus-tools) at
//! matched and at fixed bitrates, on the held-out singularity-music tracks ("Through Space",
//! "Awakening"; never trained on): kbps, PSNR (full scale), SNR, encode and decode speed as
//! multiples of real time. Also the size of the latents written as the reference does (uint8
//! planes in lossless WebP) against our prior-coded and context-coded latents.
//!
//! Run: `cargo bench -p terse-eval --bench walloc_audio_eval` (`TERSE_EVAL_SECONDS=n` evaluates the
//! first n seconds of each track, default 60; needs `scripts/setup`, the models in
//! models/repository, Debian `singularity-music`, and for the baseline `opus-tools`).

mod shared;

use std::{path::PathBuf, time::Instant};

use shared::{cmd, tool, webp_latent_bytes};
use terse_audio_io::{AudioClip, DecodeLimits, decode_audio_file, encode_wav};
use terse_image_eval::timed;
use terse_walloc::{WallocAudio, audio_psnr, snr};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const MUSIC: &str = "/usr/share/games/singularity/music";
const VALIDATION: [&str; 2] = ["Through Space.ogg", "Awakening.ogg"];
const LIMITS: DecodeLimits = DecodeLimits {
    max_seconds: 3600.0,
    max_channels: 2,
};

/// One clip coded one way.
#[derive(Clone, Copy)]
struct Row {
    bits: f64,
    psnr: f64,
    snr: f64,
    encode_s: f64,
    decode_s: f64,
    seconds: f64,
}

/// Total of `field` over `rows`.
fn total(rows: &[Row], field: fn(&Row) -> f64) -> f64 {
    rows.iter().map(field).sum()
}

/// Bitrate in kbps over `rows` (all their bits over all their seconds).
fn kbps(rows: &[Row]) -> f64 {
    total(rows, |r| r.bits) / total(rows, |r| r.seconds) / 1000.0
}

/// Prints a table row: the bitrate, mean PSNR and SNR, and encode and decode speed as
/// multiples of real time, over `rows` (nothing when there are none).
fn print_rows(name: &str, rows: &[Row]) {
    if rows.is_empty() {
        return;
    }
    let (seconds, n) = (total(rows, |r| r.seconds), rows.len() as f64);
    println!(
        "  {name:<26} {:>7.2} {:>7.2} {:>7.2} {:>9.0} {:>9.0}",
        kbps(rows),
        total(rows, |r| r.psnr) / n,
        total(rows, |r| r.snr) / n,
        seconds / total(rows, |r| r.encode_s),
        seconds / total(rows, |r| r.decode_s),
    );
}

fn measure(original: &AudioClip, decoded: &AudioClip) -> (f64, f64) {
    let frames = original.frames().min(decoded.frames());
    let a = original.samples.slice(ndarray::s![.., ..frames]);
    let b = decoded.samples.slice(ndarray::s![.., ..frames]);
    (audio_psnr(a, b), snr(a, b))
}

/// Opus at `kbps` through opusenc/opusdec (file size, Ogg container included).
fn opus(original: &AudioClip, kbps: f64, dir: &std::path::Path) -> Option<Row> {
    let (wav, coded, out) = (
        dir.join("in.wav"),
        dir.join("coded.opus"),
        dir.join("out.wav"),
    );
    std::fs::write(&wav, encode_wav(original).ok()?).ok()?;
    let bitrate = format!("{kbps:.2}");
    let (wav, coded, out) = (wav.to_str()?, coded.to_str()?, out.to_str()?);
    let encode_s = timed(cmd(
        "opusenc",
        &["--quiet", "--bitrate", &bitrate, wav, coded],
    ))?;
    let decode_s = timed(cmd("opusdec", &["--quiet", "--rate", "48000", coded, out]))?;
    let decoded = decode_audio_file(&std::fs::read(out).ok()?, LIMITS).ok()?;
    let (psnr, snr) = measure(original, &decoded);
    Some(Row {
        bits: std::fs::metadata(coded).ok()?.len() as f64 * 8.0,
        psnr,
        snr,
        encode_s,
        decode_s,
        seconds: original.seconds(),
    })
}

/// Opus with the requested bitrate bisected so that the file's rate (container included) is
/// closest to `target` kbps.
fn opus_matched(original: &AudioClip, target: f64, dir: &std::path::Path) -> Option<Row> {
    let (mut lo, mut hi) = (6.0f64, 256.0f64);
    let mut best: Option<Row> = None;
    for _ in 0..8 {
        let request = (lo * hi).sqrt();
        let row = opus(original, request, dir)?;
        if best.is_none_or(|b| (kbps(&[b]) - target).abs() > (kbps(&[row]) - target).abs()) {
            best = Some(row);
        }
        if kbps(&[row]) > target {
            hi = request;
        } else {
            lo = request;
        }
    }
    best
}

/// Our codec on one clip with `shift` latent bits dropped, measured on the 16-bit WAV a client
/// gets.
fn ours_at(
    hosted: &WallocAudio,
    clip: &AudioClip,
    shift: u32,
) -> (Row, terse_walloc::AudioLatents) {
    let codec = hosted.codec();
    let start = Instant::now();
    let (bitstream, latents) = codec
        .encode(clip.samples.view(), clip.sample_rate, shift)
        .unwrap();
    let encode_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let samples = terse_eval::decode(hosted, &bitstream).unwrap().samples;
    let decode_s = start.elapsed().as_secs_f64();
    let wav = encode_wav(&AudioClip {
        sample_rate: clip.sample_rate,
        samples,
    })
    .unwrap();
    let decoded = decode_audio_file(&wav, LIMITS).unwrap();
    let (psnr, snr) = measure(clip, &decoded);
    let row = Row {
        bits: bitstream.len() as f64 * 8.0,
        psnr,
        snr,
        encode_s,
        decode_s,
        seconds: clip.seconds(),
    };
    (row, latents)
}

fn main() {
    std::env::set_current_dir(ROOT).expect("workspace root");
    let seconds: f64 = std::env::var("TERSE_EVAL_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60.0);
    let mut tracks = Vec::new();
    for name in VALIDATION {
        let Ok(bytes) = std::fs::read(PathBuf::from(MUSIC).join(name)) else {
            println!(
                "{MUSIC}/{name} is missing (apt install singularity-music): nothing to evaluate"
            );
            return;
        };
        let mut clip = decode_audio_file(&bytes, LIMITS).expect("track decodes");
        let frames = ((seconds * f64::from(clip.sample_rate)) as usize).min(clip.frames());
        clip.samples = clip.samples.slice(ndarray::s![.., ..frames]).to_owned();
        tracks.push((name, clip));
    }
    let dir = std::env::temp_dir().join(format!("terse-audio-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let registry = terse_eval::registry(&terse_eval::repository(), 1);
    let hosted = terse_hosting::walloc_audio_codecs(&registry).expect("run scripts/setup first");
    println!(
        "singularity-music validation tracks ({}), first {seconds} s of each, 48 kHz stereo, never trained on",
        VALIDATION.join(", ")
    );
    println!("PSNR is against full scale (peak 1.0); SNR against the signal's own energy.");
    for h in &hosted {
        let codec = h.codec();
        let name = codec.model().name.clone();
        let mut ours = Vec::new();
        let (mut prior_bytes, mut context_bytes, mut webp_bytes) = (0, 0, 0);
        for (_, clip) in &tracks {
            let (row, latents) = ours_at(h, clip, 0);
            ours.push(row);
            let codings = codec.code_latents(&latents).unwrap();
            prior_bytes += codings.factorized.len();
            context_bytes += codings.context_bytes();
            // Channels as the rows of one image, as a spectrogram-like picture.
            let (l, _, t) = latents.values.dim();
            let plane = latents.values.to_shape((1, l, t)).unwrap().to_owned();
            webp_bytes +=
                webp_latent_bytes(&plane, codec.weights().max_level() + 1, &dir).unwrap_or(0);
        }
        let ours_kbps = kbps(&ours);
        println!("\n{name}");
        println!(
            "  {:<26} {:>7} {:>7} {:>7} {:>9} {:>9}",
            "codec", "kbps", "PSNR", "SNR", "enc ×RT", "dec ×RT"
        );
        print_rows(&format!("terse {name}"), &ours);
        for bits in [7, 6, 5, 4] {
            let shift = codec.shift_for(bits).unwrap();
            let rows: Vec<Row> = tracks
                .iter()
                .map(|(_, clip)| ours_at(h, clip, shift).0)
                .collect();
            print_rows(&format!("terse {name} b={bits}"), &rows);
        }
        if tool("opusenc") && tool("opusdec") {
            let matched: Vec<Row> = tracks
                .iter()
                .filter_map(|(_, clip)| opus_matched(clip, ours_kbps, &dir))
                .collect();
            print_rows("Opus 1.3 (kbps matched)", &matched);
            for rate in [12.0, 24.0, 48.0, 96.0] {
                let rows: Vec<Row> = tracks
                    .iter()
                    .filter_map(|(_, clip)| opus(clip, rate, &dir))
                    .collect();
                print_rows(&format!("Opus 1.3 --bitrate {rate:.1}"), &rows);
            }
        }
        if webp_bytes > 0 {
            let change = |x: usize| 100.0 * (x as f64 / webp_bytes as f64 - 1.0);
            println!(
                "  latents: lossless WebP (reference) {webp_bytes} B; learned factorized prior {prior_bytes} B ({:+.1}%); context model {context_bytes} B ({:+.1}%)",
                change(prior_bytes),
                change(context_bytes)
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
