//! A stream of symbols under a stored model: the histogram quantized in integers, then the
//! symbols through the interleaved rANS coder (see `ans`).
//!
//! ```text
//! u16 P, P × u16 symbols present (increasing), then, when P > 1: P × u16 frequencies (each ≥ 1,
//! summing to 1 << PRECISION), u8 lanes, u32 word count and the words
//! ```
//!
//! A split chunk codes its float symbols this way, and a section may code its bytes this way
//! (see `section`).

use crate::{
    ans::{self, PRECISION},
    error::{Result, malformed},
    section::Reader,
};

/// Frequencies of `counts` (each nonzero) summing to `1 << PRECISION`, each at least 1.
fn quantize(counts: &[u32]) -> Vec<u16> {
    let full = 1u64 << PRECISION;
    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    let spare = full - counts.len() as u64;
    let mut freqs: Vec<u64> = counts
        .iter()
        .map(|&c| 1 + u64::from(c) * spare / total)
        .collect();
    let sum: u64 = freqs.iter().sum();
    let largest = (0..counts.len())
        .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
        .expect("at least one symbol");
    freqs[largest] += full - sum;
    freqs.into_iter().map(|f| f as u16).collect()
}

/// Appends the model and stream of `symbols`, each below `alphabet` (at most 1024).
pub fn encode(symbols: &[u16], alphabet: usize, out: &mut Vec<u8>) {
    let mut counts = vec![0u32; alphabet];
    for &s in symbols {
        counts[usize::from(s)] += 1;
    }
    let present: Vec<u16> = (0..alphabet as u16)
        .filter(|&s| counts[usize::from(s)] > 0)
        .collect();
    out.extend_from_slice(&(present.len() as u16).to_le_bytes());
    for s in &present {
        out.extend_from_slice(&s.to_le_bytes());
    }
    if present.len() <= 1 {
        return;
    }
    let freqs = quantize(
        &present
            .iter()
            .map(|&s| counts[usize::from(s)])
            .collect::<Vec<_>>(),
    );
    for f in &freqs {
        out.extend_from_slice(&f.to_le_bytes());
    }
    let mut index = vec![0u16; alphabet];
    for (i, &s) in present.iter().enumerate() {
        index[usize::from(s)] = i as u16;
    }
    let indices: Vec<u16> = symbols.iter().map(|&s| index[usize::from(s)]).collect();
    let lanes = ans::lanes_for(symbols.len());
    let words = ans::encode(&indices, &freqs, lanes);
    out.push(lanes as u8);
    out.extend_from_slice(&(words.len() as u32).to_le_bytes());
    for w in &words {
        out.extend_from_slice(&w.to_le_bytes());
    }
}

/// Reads a model and stream and decodes `out.len()` symbols, each below `alphabet`.
pub fn decode(r: &mut Reader<'_>, alphabet: usize, out: &mut [u16]) -> Result<()> {
    let count = r.u16("symbol count")? as usize;
    if count == 0 || count > alphabet {
        return Err(malformed(format!(
            "chunk: {count} symbols present, the alphabet has {alphabet}"
        )));
    }
    let present = r.u16s(count, "symbols")?;
    if present.windows(2).any(|w| w[0] >= w[1]) || present[count - 1] as usize >= alphabet {
        return Err(malformed(
            "chunk: symbols are not increasing within the alphabet",
        ));
    }
    if count == 1 {
        out.fill(present[0]);
        return Ok(());
    }
    let freqs = r.u16s(count, "frequencies")?;
    let lanes = usize::from(r.u8("ANS lanes")?);
    let words = r.u32("ANS word count")? as usize;
    let words = r.take(2 * words, "ANS words")?;
    let table = ans::Table::new(&present, &freqs)?;
    ans::decode(&table, words, lanes, out)
}
