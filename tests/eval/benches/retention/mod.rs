//! What the context evaluation benches share: answer-retention tallies with Wilson intervals,
//! paired comparisons (difference with its interval, exact sign test), and the word-keeping
//! baselines (first N, random) at a token budget. Each bench uses part of it.
#![allow(dead_code)]

use std::{ffi::OsStr, path::Path};

use serde_json::Value;
use terse_text::TokenCounter;

/// Xorshift64: the small seeded generator the benches draw samples and random baselines from,
/// so that runs are comparable (a nonzero seed).
pub struct Xorshift(pub u64);

impl Xorshift {
    /// The next 64 bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A draw in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Shuffles `items` in place (Fisher–Yates, from the back).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }

    /// `0..n` in a random order.
    pub fn order(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        self.shuffle(&mut order);
        order
    }
}

/// Runs a Python reference script (`python script args… out`) and reads the JSON it wrote to
/// `out`; `None` when it did not run or wrote nothing readable (the caller skips its rows).
pub fn python_reference(python: &str, script: &str, args: &[&OsStr], out: &Path) -> Option<Value> {
    let status = std::process::Command::new(python)
        .arg(script)
        .args(args)
        .arg(out)
        .stderr(std::process::Stdio::null())
        .status();
    let value = status
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::read(out).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    std::fs::remove_file(out).ok();
    value
}

#[derive(Default)]
/// One method's results over the questions.
pub struct Tally {
    origin: usize,
    kept: usize,
    /// Per question: a gold answer survived; its answer sits in the paragraph's second half.
    hits: Vec<(bool, bool)>,
    latencies: Vec<f64>,
}

/// `p` ± the half-width of its 95 % Wilson interval, in percent.
pub fn percent_ci(hits: usize, n: usize) -> String {
    if n == 0 {
        return "-".into();
    }
    let (z, n_f) = (1.96f64, n as f64);
    let p = hits as f64 / n_f;
    let centre = (p + z * z / (2.0 * n_f)) / (1.0 + z * z / n_f);
    let half = z * (p * (1.0 - p) / n_f + z * z / (4.0 * n_f * n_f)).sqrt() / (1.0 + z * z / n_f);
    format!(
        "{:.1} ({:.1}-{:.1})",
        100.0 * p,
        100.0 * (centre - half),
        100.0 * (centre + half)
    )
}

/// Two-sided exact sign test on the discordant pairs `b` (only the first method kept the
/// answer) and `c` (only the second).
pub fn sign_test(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let ln_choose = |k: usize| -> f64 {
        (1..=k)
            .map(|i| ((n - k + i) as f64).ln() - (i as f64).ln())
            .sum()
    };
    let tail: f64 = (0..=b.min(c))
        .map(|k| (ln_choose(k) - n as f64 * std::f64::consts::LN_2).exp())
        .sum();
    (2.0 * tail).min(1.0)
}

/// Paired comparison of two methods on the same questions: difference in retention (points)
/// with a 95 % interval, and the sign test.
pub fn paired(name: &str, ours: &Tally, theirs: &Tally) {
    let n = ours.hits.len();
    let d: Vec<f64> = ours
        .hits
        .iter()
        .zip(&theirs.hits)
        .map(|(a, b)| f64::from(u8::from(a.0)) - f64::from(u8::from(b.0)))
        .collect();
    let mean = d.iter().sum::<f64>() / n as f64;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0).max(1.0);
    let half = 1.96 * (var / n as f64).sqrt();
    let b = d.iter().filter(|&&x| x > 0.0).count();
    let c = d.iter().filter(|&&x| x < 0.0).count();
    println!(
        "    {name}: {:+.1} points (95 % CI {:+.1} to {:+.1}), sign test p = {:.3} ({b} vs {c} discordant)",
        100.0 * mean,
        100.0 * (mean - half),
        100.0 * (mean + half),
        sign_test(b, c)
    );
}

impl Tally {
    /// Records one question: `answers` (any surviving counts), whether its answer is `late`
    /// in its paragraph, the input's and the output's target-LLM tokens, and the time taken.
    pub fn add(
        &mut self,
        answers: &[String],
        late: bool,
        origin: usize,
        output: &str,
        counter: &TokenCounter,
        seconds: f64,
    ) {
        self.origin += origin;
        self.kept += counter.count(output);
        let lower = output.to_lowercase();
        let hit = answers.iter().any(|a| lower.contains(&a.to_lowercase()));
        self.hits.push((hit, late));
        self.latencies.push(seconds);
    }

    /// Prints one row: ratio, retention (all, early, late), throughput, p50 and p99.
    pub fn print(&mut self, name: &str) {
        self.latencies.sort_by(f64::total_cmp);
        let at = |q: f64| {
            self.latencies[((self.latencies.len() - 1) as f64 * q).round() as usize] * 1000.0
        };
        let total: f64 = self.latencies.iter().sum();
        let count = |late: Option<bool>| {
            let of: Vec<bool> = self
                .hits
                .iter()
                .filter(|(_, l)| late.is_none_or(|want| *l == want))
                .map(|(h, _)| *h)
                .collect();
            percent_ci(of.iter().filter(|&&h| h).count(), of.len())
        };
        println!(
            "  {name:<34} {:>6.2}x {:>19} {:>19} {:>19} {:>9.0} {:>7.2} {:>7.2}",
            self.origin as f64 / self.kept.max(1) as f64,
            count(None),
            count(Some(false)),
            count(Some(true)),
            if total > 0.0 {
                self.origin as f64 / total
            } else {
                f64::INFINITY
            },
            at(0.5),
            at(0.99),
        );
    }
}

/// Words of `text` kept by a rule (`pick`: an order of the word indexes) until `budget`
/// target tokens, joined by spaces in text order.
pub fn keep_words(
    text: &str,
    budget: usize,
    counter: &TokenCounter,
    pick: &mut dyn FnMut(usize) -> Vec<usize>,
) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut kept = Vec::new();
    let mut tokens = 0;
    for i in pick(words.len()) {
        // In-context cost: a word after a space, as it appears in the joined output.
        let cost = counter.count(&format!(" {}", words[i]));
        if tokens + cost > budget {
            continue;
        }
        tokens += cost;
        kept.push(i);
    }
    kept.sort_unstable();
    kept.iter().map(|&i| words[i]).collect::<Vec<_>>().join(" ")
}
