//! Latency of every reducer (p50/p99) on 576×1024 and 2880×1024 tokens, against the NumPy
//! reference on the same inputs (when `.venv-export` with NumPy exists), printed as ratios.
//!
//! Run: `cargo bench -p terse-vision --bench vision` (`TERSE_BENCH_REPS` sets repetitions,
//! default 20; `TERSE_BENCH_FILTER` runs the methods whose name contains it;
//! `TERSE_BENCH_TOKENS` the token counts, comma separated, default `576,2880`;
//! `TERSE_NUMPY_PYTHON` names the Python with NumPy, default `.venv/bin/python`).

use std::{collections::BTreeMap, process::Command, time::Instant};

use ndarray::Array2;
use terse_vision::{PruMergeBudget, Reduction};

fn scene(n: usize, d: usize, heads: usize) -> (Array2<f32>, Array2<f32>) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let centres: Vec<Vec<f64>> = (0..32).map(|_| (0..d).map(|_| next()).collect()).collect();
    let tokens = Array2::from_shape_fn((n, d), |(i, j)| {
        (centres[(i / 7) % 32][j] + 0.2 * next()) as f32
    });
    let mut attention = Array2::from_shape_fn((heads, n), |(_, i)| {
        (next() * 2.0 + if i % 37 == 0 { 4.0 } else { 0.0 }).exp()
    });
    for mut row in attention.rows_mut() {
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    (tokens, attention.mapv(|v| v as f32))
}

fn percentile(times: &mut [f64], q: f64) -> f64 {
    times.sort_by(f64::total_cmp);
    times[((times.len() - 1) as f64 * q).round() as usize]
}

fn reference_times(
    tokens: &Array2<f32>,
    attention: &Array2<f32>,
    reps: usize,
) -> Option<BTreeMap<String, Vec<f64>>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let python =
        std::env::var("TERSE_NUMPY_PYTHON").unwrap_or_else(|_| format!("{root}/.venv/bin/python"));
    if !std::path::Path::new(&python).exists() {
        return None;
    }
    let dir = tempdir();
    let write = |name: &str, m: &Array2<f32>| {
        std::fs::write(
            dir.join(name),
            m.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
        )
        .unwrap()
    };
    write("tokens.f32", tokens);
    write("attention.f32", attention);
    let output = Command::new(python)
        .arg(format!("{}/reference/bench.py", env!("CARGO_MANIFEST_DIR")))
        .arg(&dir)
        .args([tokens.nrows(), tokens.ncols(), attention.nrows(), reps].map(|v| v.to_string()))
        .output()
        .ok()?;
    std::fs::remove_dir_all(&dir).ok();
    if !output.status.success() {
        eprintln!(
            "reference bench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    parse_json_times(&String::from_utf8_lossy(&output.stdout))
}

/// Minimal parser for `{"name": [f, f, ...], ...}` (keeps the bench free of a JSON dependency).
fn parse_json_times(text: &str) -> Option<BTreeMap<String, Vec<f64>>> {
    let mut out = BTreeMap::new();
    for part in text
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .split(']')
    {
        let Some((name, values)) = part.split_once(':') else {
            continue;
        };
        let name = name
            .trim_matches(|c: char| c == ',' || c == ' ' || c == '"')
            .to_string();
        let values = values.trim().trim_start_matches('[');
        out.insert(
            name,
            values
                .split(',')
                .filter_map(|v| v.trim().parse().ok())
                .collect(),
        );
    }
    Some(out)
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("terse-vision-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn main() {
    // The server's heap policy (it keeps a request's scratch buffers for the next one).
    terse_core::heap::keep_freed_buffers();
    let reps: usize = std::env::var("TERSE_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let sizes: Vec<usize> = std::env::var("TERSE_BENCH_TOKENS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![576, 2880]);
    for n in sizes {
        let (tokens, attention) = scene(n, 1024, 16);
        let (t, a) = (tokens.view(), attention.view());
        let k = n / 4;
        let contextual = k * 10 / 64;
        type Run<'a> = Box<dyn Fn() -> Reduction + 'a>;
        let methods: Vec<(&str, Run)> = vec![
            (
                "fastervlm",
                Box::new(|| terse_vision::fastervlm(t, a, k).unwrap()),
            ),
            (
                "visionzip",
                Box::new(|| terse_vision::visionzip(t, a, t, k - contextual, contextual).unwrap()),
            ),
            (
                "divprune",
                Box::new(|| terse_vision::divprune(t, k).unwrap()),
            ),
            (
                "prumerge",
                Box::new(|| {
                    terse_vision::prumerge(t, a, t, PruMergeBudget::Adaptive, false, 32)
                        .unwrap()
                        .0
                }),
            ),
            (
                "tome",
                Box::new(|| terse_vision::tome(t, t, n / 2 - 1, 0, None).unwrap()),
            ),
            (
                "idpruner",
                Box::new(|| {
                    let importance: Vec<f64> = (0..n)
                        .map(|i| a.column(i).iter().map(|&v| f64::from(v)).sum::<f64>() / 16.0)
                        .collect();
                    terse_vision::idpruner(t, &importance, k, 0.5).unwrap()
                }),
            ),
            ("uniform", Box::new(|| terse_vision::uniform(t, k).unwrap())),
        ];
        let reference_reps = if n > 1000 {
            reps.div_ceil(4).max(3)
        } else {
            reps.div_ceil(2).max(3)
        };
        let reference = reference_times(&tokens, &attention, reference_reps);
        println!(
            "{n} tokens × 1024 dims, 16 heads, keep {k} (ToMe: r = {}); {reps} runs (reference: {reference_reps})",
            n / 2 - 1
        );
        println!(
            "  {:<10} {:>10} {:>10} {:>12} {:>12} {:>9}",
            "method", "p50 ms", "p99 ms", "numpy p50", "numpy p99", "speed-up"
        );
        let filter = std::env::var("TERSE_BENCH_FILTER").unwrap_or_default();
        for (name, run) in methods
            .iter()
            .filter(|(name, _)| name.contains(filter.as_str()))
        {
            let mut times: Vec<f64> = (0..reps)
                .map(|_| {
                    let start = Instant::now();
                    std::hint::black_box(run());
                    start.elapsed().as_secs_f64()
                })
                .collect();
            let (p50, p99) = (percentile(&mut times, 0.5), percentile(&mut times, 0.99));
            match reference.as_ref().and_then(|r| r.get(*name)) {
                Some(reference) => {
                    let mut reference = reference.clone();
                    let (r50, r99) = (
                        percentile(&mut reference, 0.5),
                        percentile(&mut reference, 0.99),
                    );
                    println!(
                        "  {name:<10} {:>10.3} {:>10.3} {:>12.3} {:>12.3} {:>8.1}x",
                        p50 * 1e3,
                        p99 * 1e3,
                        r50 * 1e3,
                        r99 * 1e3,
                        r50 / p50
                    );
                }
                None => println!(
                    "  {name:<10} {:>10.3} {:>10.3} {:>12} {:>12} {:>9}",
                    p50 * 1e3,
                    p99 * 1e3,
                    "-",
                    "-",
                    "-"
                ),
            }
        }
    }
}
