//! Entropy-core benchmark: coded size against the ideal `-log2 p`, and throughput against raw
//! constriction coding the same symbols with the same models, measured in the same run.
//!
//! Run: `cargo bench -p terse-entropy`

use std::time::Instant;

use constriction::stream::{Decode, stack::DefaultAnsCoder};
use terse_entropy::{
    AdaptiveDecoder, AdaptiveEncoder, AdaptiveIntegers, Family, ScaleConditional,
    table::model_from_cdf,
};

/// SplitMix64: a small deterministic generator so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn gaussian(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..runs {
        let start = Instant::now();
        let value = f();
        best = best.min(start.elapsed().as_secs_f64());
        out = Some(value);
    }
    (best, out.expect("runs > 0"))
}

fn main() {
    const N: usize = 1_000_000;
    let mut rng = Rng(7);
    for family in [Family::Gaussian, Family::Laplace] {
        let model = ScaleConditional::new(family);
        let scales: Vec<f32> = (0..N)
            .map(|_| (0.2 + 20.0 * rng.uniform().powi(3)) as f32)
            .collect();
        let symbols: Vec<i32> = scales
            .iter()
            .map(|&s| {
                let x = match family {
                    Family::Gaussian => rng.gaussian() * f64::from(s),
                    Family::Laplace => {
                        let u = rng.uniform() - 0.5;
                        -f64::from(s) * u.signum() * (1.0 - 2.0 * u.abs()).max(1e-300).ln()
                    }
                };
                x.round() as i32
            })
            .collect();
        let indexes = model.build_indexes(&scales);
        let ideal_bits = model.table().ideal_bits(&symbols, &indexes).unwrap();
        let (enc_s, bytes) = best_of(3, || model.encode_symbols(&symbols, &indexes).unwrap());
        let (dec_s, decoded) = best_of(3, || model.decode_symbols(&bytes, &indexes).unwrap());
        assert_eq!(decoded, symbols);

        // Raw constriction: same rows, symbols already mapped to row positions, no escapes.
        let rows: Vec<_> = (0..model.table().rows())
            .map(|i| model_from_cdf(model.table().cdf(i)).unwrap())
            .collect();
        let positions: Vec<usize> = symbols
            .iter()
            .zip(&indexes)
            .map(|(&s, &i)| {
                let escape = model.table().cdf(i as usize).len() - 2;
                ((s - model.table().offset(i as usize)) as usize).min(escape)
            })
            .collect();
        let (raw_enc_s, words) = best_of(3, || {
            let mut coder = DefaultAnsCoder::new();
            coder
                .encode_symbols_reverse(
                    positions
                        .iter()
                        .zip(&indexes)
                        .map(|(&p, &i)| (p, &rows[i as usize])),
                )
                .unwrap();
            coder.into_compressed().unwrap()
        });
        let (raw_dec_s, _) = best_of(3, || {
            let mut coder = DefaultAnsCoder::from_compressed(words.clone()).unwrap();
            indexes
                .iter()
                .map(|&i| coder.decode_symbol(&rows[i as usize]).unwrap())
                .sum::<usize>()
        });
        let written_bits = bytes.len() as f64 * 8.0;
        println!(
            "{family:?} conditional, {N} symbols: {:.0} bytes written, ideal {:.0} bytes, overhead {:+.5}%",
            written_bits / 8.0,
            ideal_bits / 8.0,
            100.0 * (written_bits / ideal_bits - 1.0)
        );
        println!(
            "  encode {:.1} Msym/s (raw constriction {:.1}, ratio {:.2}); decode {:.1} Msym/s (raw {:.1}, ratio {:.2})",
            N as f64 / enc_s / 1e6,
            N as f64 / raw_enc_s / 1e6,
            raw_enc_s / enc_s,
            N as f64 / dec_s / 1e6,
            N as f64 / raw_dec_s / 1e6,
            raw_dec_s / dec_s
        );
    }

    // Adaptive coding of a skewed, drifting integer stream against its empirical entropy.
    let values: Vec<i64> = (0..N)
        .map(|i| (rng.gaussian() * (1.0 + (i / 100_000) as f64)).round() as i64)
        .collect();
    let mut counts = std::collections::HashMap::new();
    for &v in &values {
        *counts.entry(v).or_insert(0usize) += 1;
    }
    let entropy_bits: f64 = counts
        .values()
        .map(|&c| -(c as f64) * (c as f64 / N as f64).log2())
        .sum();
    let (enc_s, bytes) = best_of(3, || {
        let mut model = AdaptiveIntegers::new(-64, 64, 1).unwrap();
        let mut enc = AdaptiveEncoder::new();
        for &v in &values {
            model.encode(&mut enc, 0, v).unwrap();
        }
        enc.seal().unwrap()
    });
    let (dec_s, ok) = best_of(3, || {
        let mut model = AdaptiveIntegers::new(-64, 64, 1).unwrap();
        let mut dec = AdaptiveDecoder::new(&bytes).unwrap();
        values
            .iter()
            .all(|&v| model.decode(&mut dec, 0).unwrap() == v)
    });
    assert!(ok);
    println!(
        "Adaptive integers, {N} symbols: {} bytes, static empirical entropy {:.0} bytes ({:+.2}%), encode {:.1} Msym/s, decode {:.1} Msym/s",
        bytes.len(),
        entropy_bits / 8.0,
        100.0 * (bytes.len() as f64 * 8.0 / entropy_bits - 1.0),
        N as f64 / enc_s / 1e6,
        N as f64 / dec_s / 1e6
    );
}
