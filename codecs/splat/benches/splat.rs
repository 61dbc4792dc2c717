//! Splat benchmark: size and attribute errors of the terse codec next to SPZ v3 (gzip) and
//! v4 (zstd) at their defaults, on the same scenes in the same run, plus timings. The SPZ rows
//! are this crate's own SPZ writer and reader (`terse_splat::spz`); Niantic's reference tools
//! are timed end to end, with PLY I/O, when `TERSE_BENCH_SPZ_REFERENCE` names them.
//!
//! Scenes: ../shared's real ones (or the test fixture), each also as an SPZ-sourced scene
//! (written to SPZ v4 and read back, as web-delivered scenes arrive), a synthetic SH3 scene, a
//! synthetic scene 400× wider (city-scale extents, where a bounding-box grid is coarse in
//! absolute units) and a large synthetic SH0 scene. Per scene a verdict line compares
//! `balanced` and `small` with SPZ v4: size ratio and the attributes whose RMSE or largest error
//! exceeds SPZ's.
//!
//! Run: `cargo bench -p terse-splat` (set `TERSE_BENCH_SPLATS` and `TERSE_BENCH_SH` to change
//! the large scene's size and SH degree, `TERSE_BENCH_FILTER` to bench only the scenes whose
//! name holds it, `TERSE_BENCH_SCENES` to a folder of held-out `.ply`/`.spz` scenes to add them,
//! `TERSE_BENCH_SPZ_REFERENCE` to Niantic's reference tools built by
//! `scripts/splat-spz-reference` to time every scene end to end with PLY I/O against them).

use std::{collections::HashMap, path::Path, process::Command, time::Instant};

use terse_splat::{
    CodecOptions, Preset, SplatScene, codec,
    metrics::{AttributeError, attribute_errors},
    ply::{read_ply, write_ply},
    spz::{SpzVersion, read_spz, write_spz},
    synth::surface_scene,
};

const LIMIT: u64 = u64::MAX;

fn timed<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let start = Instant::now();
    let value = f();
    (start.elapsed().as_secs_f64(), value)
}

fn summary(errors: &[AttributeError]) -> String {
    let get = |name: &str| errors.iter().find(|e| e.attribute == name);
    let mut parts = vec![
        format!(
            "pos {:.2e}",
            get("position_relative").map_or(0.0, |e| e.rmse)
        ),
        format!("rot {:.3}°", get("rotation_deg").map_or(0.0, |e| e.rmse)),
        format!("scale {:.4}", get("scale").map_or(0.0, |e| e.rmse)),
        format!("opac {:.4}", get("opacity").map_or(0.0, |e| e.rmse)),
        format!(
            "dc {:.4} ({:.1} dB)",
            get("sh_dc").map_or(0.0, |e| e.rmse),
            get("sh_dc").and_then(|e| e.psnr_db).unwrap_or(0.0)
        ),
    ];
    if let Some(e) = get("sh_rest") {
        parts.push(format!("sh {:.4}", e.rmse));
    }
    parts.join(", ")
}

fn row(
    label: &str,
    bytes: usize,
    ply: usize,
    n: usize,
    enc: f64,
    dec: f64,
    errors: &[AttributeError],
) {
    println!(
        "  {label:<16} {bytes:>11} B  ratio {:>6.2}  {:>6.2} B/splat  enc {:>6.2}s dec {:>6.2}s  rmse: {}",
        ply as f64 / bytes as f64,
        bytes as f64 / n.max(1) as f64,
        enc,
        dec,
        summary(errors)
    );
}

/// Attributes of `ours` whose RMSE or largest error exceeds `spz`'s by more than float
/// rounding: 0.01 % relative (both quantize on the same lattice; their reconstructions differ in
/// the last bits) or 1e-6 absolute (an f32 ulp of values near 8).
fn worse_than(ours: &[AttributeError], spz: &[AttributeError]) -> Vec<String> {
    let mut worse = Vec::new();
    for e in ours {
        let Some(s) = spz.iter().find(|s| s.attribute == e.attribute) else {
            continue;
        };
        let exceeds = |a: f64, b: f64| a > b * (1.0 + 1e-4) + 1e-6;
        if exceeds(e.rmse, s.rmse) {
            worse.push(format!(
                "{} rmse {:.3e} > {:.3e}",
                e.attribute, e.rmse, s.rmse
            ));
        }
        if exceeds(e.max_abs_error, s.max_abs_error) {
            worse.push(format!(
                "{} max {:.3e} > {:.3e}",
                e.attribute, e.max_abs_error, s.max_abs_error
            ));
        }
    }
    worse
}

fn mean_error(errors: &[AttributeError], name: &str) -> f64 {
    errors
        .iter()
        .find(|e| e.attribute == name)
        .map_or(0.0, |e| e.mean_error)
}

/// `scene` as a web-delivered scene: written to SPZ v4 and read back.
fn spz_sourced(scene: &SplatScene) -> SplatScene {
    read_spz(&write_spz(scene, SpzVersion::V4).unwrap(), LIMIT)
        .unwrap()
        .0
}

/// `scene` scaled `factor`× about the origin (positions and scales).
fn widened(mut scene: SplatScene, factor: f32) -> SplatScene {
    for p in &mut scene.positions {
        *p = p.map(|v| v * factor);
    }
    for s in &mut scene.scales {
        *s = s.map(|v| v + factor.ln());
    }
    scene
}

/// `decoded`'s splats in `original`'s order, matched by nearest centre (a format that reorders
/// splats, as SOG does): the original indices matched and the decoded scene in their order.
fn match_by_position(original: &SplatScene, decoded: &SplatScene) -> (Vec<usize>, SplatScene) {
    let (lo, hi) = original.bounds();
    let diagonal = (0..3)
        .map(|k| f64::from(hi[k] - lo[k]).powi(2))
        .sum::<f64>()
        .sqrt()
        .max(1e-9);
    let cell = diagonal / 4096.0;
    let key = |p: [f32; 3]| p.map(|v| (f64::from(v) / cell).floor() as i64);
    let mut grid: HashMap<[i64; 3], Vec<usize>> = HashMap::new();
    for (j, &p) in decoded.positions.iter().enumerate() {
        grid.entry(key(p)).or_default().push(j);
    }
    let mut used = vec![false; decoded.len()];
    let (mut kept, mut picks) = (Vec::new(), Vec::new());
    for (i, &p) in original.positions.iter().enumerate() {
        let [x, y, z] = key(p);
        let mut best: Option<(f64, usize)> = None;
        for (dx, dy, dz) in
            (-1..=1).flat_map(|a| (-1..=1).flat_map(move |b| (-1..=1).map(move |c| (a, b, c))))
        {
            for &j in grid.get(&[x + dx, y + dy, z + dz]).into_iter().flatten() {
                let d: f64 = (0..3)
                    .map(|k| f64::from(p[k] - decoded.positions[j][k]).powi(2))
                    .sum();
                if !used[j] && best.is_none_or(|(bd, _)| d < bd) {
                    best = Some((d, j));
                }
            }
        }
        if let Some((_, j)) = best {
            used[j] = true;
            kept.push(i);
            picks.push(j);
        }
    }
    (kept, decoded.retain_indices(&picks))
}

/// SOG's size and errors on `scene`, from `TERSE_BENCH_SOG_DIR` (written by
/// `scripts/splat-sog-baseline`), if there.
fn sog_row(name: &str, scene: &SplatScene, ply: usize) {
    let Ok(dir) = std::env::var("TERSE_BENCH_SOG_DIR") else {
        return;
    };
    let stem = name
        .trim_end_matches(" (held out)")
        .trim_end_matches(".ply");
    let (Ok(sog), Ok(decoded)) = (
        std::fs::metadata(format!("{dir}/{stem}.sog")),
        std::fs::read(format!("{dir}/{stem}_sog_decoded.ply")),
    ) else {
        return;
    };
    let decoded = read_ply(&decoded, LIMIT).unwrap().0;
    let (kept, matched) = match_by_position(scene, &decoded);
    let errors = attribute_errors(&scene.retain_indices(&kept), &matched);
    row(
        "SOG (splat-transform)",
        sog.len() as usize,
        ply,
        scene.len(),
        0.0,
        0.0,
        &errors,
    );
    if kept.len() < scene.len() {
        println!(
            "     ({} of {} splats matched by position)",
            kept.len(),
            scene.len()
        );
    }
}

/// Best wall time of 3 runs of `f`.
fn best_of_3(mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| timed(&mut f).0)
        .fold(f64::INFINITY, f64::min)
}

/// One run of a reference tool: whether it succeeded.
fn run_tool(tool: &Path, args: &[&Path]) -> bool {
    Command::new(tool)
        .args(args)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Niantic's reference tools in `TERSE_BENCH_SPZ_REFERENCE`, if set, against terse `balanced`,
/// end to end with PLY I/O as a user runs them: PLY file to SPZ file (`ply_to_spz`) and back
/// (`spz_to_ply`), PLY file to terse bitstream file and back. Best of 3 each; the tools' own
/// start-up (the median of 5 runs without arguments) is subtracted. Ours is split into its
/// stages (file and PLY parse, codec, PLY write and file) to show where the time goes.
fn reference_timings(scene: &SplatScene) {
    let Ok(dir) = std::env::var("TERSE_BENCH_SPZ_REFERENCE") else {
        return;
    };
    // Relative to the workspace root (benches run in the crate's folder).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(dir);
    let (to_spz, to_ply) = (dir.join("ply_to_spz"), dir.join("spz_to_ply"));
    let tmp = std::env::temp_dir().join(format!("terse-spz-reference-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let [ply, spz, back, coded] =
        ["in.ply", "out.spz", "back.ply", "out.terse"].map(|name| tmp.join(name));
    std::fs::write(&ply, write_ply(scene)).unwrap();
    let mut startups: Vec<f64> = (0..5).map(|_| timed(|| run_tool(&to_spz, &[])).0).collect();
    startups.sort_by(f64::total_cmp);
    let startup = startups[2];
    assert!(run_tool(&to_spz, &[&ply, &spz]), "{to_spz:?} failed");
    let ref_encode = best_of_3(|| assert!(run_tool(&to_spz, &[&ply, &spz]))) - startup;
    let ref_decode = best_of_3(|| assert!(run_tool(&to_ply, &[&spz, &back]))) - startup;
    let spz_bytes = std::fs::metadata(&spz).unwrap().len();

    let options = CodecOptions::preset(Preset::Balanced);
    let (mut parse, mut code, mut write) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    let encode = best_of_3(|| {
        let (t_parse, parsed) = timed(|| read_ply(&std::fs::read(&ply).unwrap(), LIMIT).unwrap().0);
        let (t_code, encoded) = timed(|| codec::encode(&parsed, &options, LIMIT).unwrap());
        let (t_write, ()) = timed(|| std::fs::write(&coded, &encoded.bitstream).unwrap());
        (parse, code, write) = (parse.min(t_parse), code.min(t_code), write.min(t_write));
    });
    let (mut read, mut decode_only, mut ply_out) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    let decode = best_of_3(|| {
        let (t_read, bytes) = timed(|| std::fs::read(&coded).unwrap());
        let (t_decode, decoded) = timed(|| codec::decode(&bytes, LIMIT).unwrap());
        let (t_ply, ()) = timed(|| std::fs::write(&back, write_ply(&decoded)).unwrap());
        (read, decode_only, ply_out) = (
            read.min(t_read),
            decode_only.min(t_decode),
            ply_out.min(t_ply),
        );
    });
    println!(
        "  -> end to end with PLY I/O, balanced vs Niantic's reference ({spz_bytes} B SPZ): \
         encode {encode:.3}s vs {ref_encode:.3}s ({:.2}x its time; PLY read {parse:.3}s, \
         codec {code:.3}s, file {write:.3}s), decode {decode:.3}s vs {ref_decode:.3}s ({:.2}x; \
         file {read:.3}s, codec {decode_only:.3}s, PLY write {ply_out:.3}s)",
        encode / ref_encode,
        decode / ref_decode,
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}

fn bench_scene(name: &str, scene: &SplatScene) {
    if let Ok(filter) = std::env::var("TERSE_BENCH_FILTER")
        && !name.contains(&filter)
    {
        return;
    }
    let ply = write_ply(scene).len();
    println!(
        "{name}: {} splats, SH degree {}, PLY {ply} B",
        scene.len(),
        scene.sh_degree
    );
    let mut spz_sizes = Vec::new();
    let mut spz_errors = Vec::new();
    for version in [SpzVersion::V3, SpzVersion::V4] {
        let (enc, bytes) = timed(|| write_spz(scene, version).unwrap());
        let (dec, (decoded, _)) = timed(|| read_spz(&bytes, LIMIT).unwrap());
        let errors = attribute_errors(scene, &decoded);
        row(
            &format!("SPZ {version:?}"),
            bytes.len(),
            ply,
            scene.len(),
            enc,
            dec,
            &errors,
        );
        spz_sizes.push(bytes.len());
        spz_errors = errors;
    }
    sog_row(name, scene, ply);
    reference_timings(scene);
    let mut runs: Vec<(String, CodecOptions)> =
        [Preset::High, Preset::Balanced, Preset::Small, Preset::Web]
            .iter()
            .map(|&p| (format!("terse {p:?}"), CodecOptions::preset(p)))
            .collect();
    if scene.sh_degree > 0 {
        for preset in [Preset::Balanced, Preset::Small] {
            let vq = CodecOptions {
                sh_codebook: 4096,
                ..CodecOptions::preset(preset)
            };
            runs.push((format!("{preset:?}+SH VQ 4096"), vq));
        }
    }
    for (name, options) in runs {
        let (enc, encoded) = timed(|| codec::encode(scene, &options, LIMIT).unwrap());
        let (dec, decoded) = timed(|| codec::decode(&encoded.bitstream, LIMIT).unwrap());
        let mut reference = scene.retain_indices(&encoded.order);
        reference.truncate_sh(options.max_sh_degree);
        let pruned = scene.len() - encoded.order.len();
        let label = if pruned > 0 {
            format!("{name}*")
        } else {
            name.clone()
        };
        let errors = attribute_errors(&reference, &decoded);
        row(
            &label,
            encoded.bitstream.len(),
            ply,
            scene.len(),
            enc,
            dec,
            &errors,
        );
        let bytes = encoded.bitstream.len() as f64;
        if name == "terse Balanced" {
            let worse = worse_than(&errors, &spz_errors);
            println!(
                "  -> balanced vs SPZ: {:.2}x smaller than v3, {:.2}x smaller than v4; \
                 errors above v4's: {}; mean signed DC error {:+.1e}; streams {:?}",
                spz_sizes[0] as f64 / bytes,
                spz_sizes[1] as f64 / bytes,
                if worse.is_empty() {
                    "none".to_string()
                } else {
                    worse.join(", ")
                },
                mean_error(&errors, "sh_dc"),
                encoded.section_bytes
            );
        }
        if name == "terse Small" {
            println!(
                "  -> small vs SPZ v4: {:.2}x smaller; streams {:?}",
                spz_sizes[1] as f64 / bytes,
                encoded.section_bytes
            );
        }
        if pruned > 0 {
            println!(
                "     (* {pruned} splats below opacity {:.4} pruned; errors over the kept ones)",
                options.min_opacity
            );
        }
    }
}

/// The `.ply` and `.spz` scenes in `TERSE_BENCH_SCENES` (a folder), by file name: scenes no
/// knob was chosen on (docs/splats.md lists the ones measured and their sources).
fn held_out_scenes() -> Vec<(String, SplatScene)> {
    let Ok(dir) = std::env::var("TERSE_BENCH_SCENES") else {
        return Vec::new();
    };
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("TERSE_BENCH_SCENES={dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|path| {
            let bytes = std::fs::read(&path).ok()?;
            let scene = match path.extension()?.to_str()? {
                "ply" => read_ply(&bytes, LIMIT).unwrap().0,
                "spz" => read_spz(&bytes, LIMIT).unwrap().0,
                _ => return None,
            };
            Some((path.file_name()?.to_string_lossy().into_owned(), scene))
        })
        .collect()
}

fn main() {
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/datasets/splats"
    );
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/splats/yashica_1024_sh3.ply"
    );
    let mut real = Vec::new();
    for file in ["yashica_t4_top8192_sh3.ply", "playcanvas_guitar_sh0.ply"] {
        match std::fs::read(format!("{shared}/{file}")) {
            Ok(bytes) => real.push((file.to_string(), read_ply(&bytes, LIMIT).unwrap().0)),
            Err(_) => println!("({file} not found under ../shared/datasets/splats: skipped)"),
        }
    }
    if real.is_empty() {
        real.push((
            "yashica_1024_sh3.ply (fixture)".into(),
            read_ply(&std::fs::read(fixture).unwrap(), LIMIT).unwrap().0,
        ));
    }
    for (name, scene) in &real {
        bench_scene(name, scene);
        bench_scene(&format!("{name} via SPZ v4"), &spz_sourced(scene));
    }
    for (name, scene) in held_out_scenes() {
        bench_scene(&format!("{name} (held out)"), &scene);
    }
    bench_scene(
        "synthetic surfaces 100k SH3",
        &surface_scene(100_000, 3, 11),
    );
    bench_scene(
        "synthetic surfaces 100k SH3, 400x wider (~1,700 units)",
        &widened(surface_scene(100_000, 3, 13), 400.0),
    );
    let env = |key: &str, default| {
        std::env::var(key)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let big = env("TERSE_BENCH_SPLATS", 1_000_000);
    let degree = env("TERSE_BENCH_SH", 0).min(3);
    bench_scene(
        &format!("synthetic surfaces {big} SH{degree}"),
        &surface_scene(big, degree as u8, 12),
    );
}
