//! One chunk of a tensor: coded on its own, so chunks decode in parallel and a tensor can be
//! read without the rest of the file.
//!
//! A chunk payload starts with its coding:
//!
//! ```text
//! 0 stored   the bytes as they are
//! 1 zstd     one zstd frame of the bytes
//! 2 split    float elements (see `float`):
//!              u16 P, P × u16 symbols present (increasing), P × u16 frequencies (P > 1;
//!              each ≥ 1, summing to 1 << PRECISION), 4 × u32 word counts and the words
//!              of 4 ANS streams (the chunk's element quarters, decoded in lockstep),
//!              then per raw byte plane: u8 mode (0 stored, 1 zstd), u32 length, bytes
//! ```
//!
//! The model is the chunk's own symbol histogram, quantized in integers by the encoder and
//! stored, so the decoder never recomputes a probability.

use std::borrow::Cow;

use constriction::stream::{model::ContiguousCategoricalEntropyModel, stack::SmallAnsCoder};

use crate::{
    ans::{self, LANES as STREAMS},
    error::{Result, malformed},
    float::FloatLayout,
};

/// Fixed-point precision of a chunk's symbol model (a 4096-entry decoding table).
pub const PRECISION: usize = ans::PRECISION as usize;
const STORED: u8 = 0;
const ZSTD: u8 = 1;
const SPLIT: u8 = 2;
const ZSTD_LEVEL: i32 = 3;

type EncoderModel = ContiguousCategoricalEntropyModel<u16, Vec<u16>, PRECISION>;

/// Codes one chunk: float elements of `layout` split and modelled, other bytes through zstd;
/// whichever coding is smallest, never larger than the bytes plus one.
pub fn encode(data: &[u8], layout: Option<FloatLayout>) -> Vec<u8> {
    let mut best = Vec::with_capacity(data.len() + 1);
    best.push(STORED);
    best.extend_from_slice(data);
    let mut consider = |candidate: Vec<u8>| {
        if candidate.len() < best.len() {
            best = candidate;
        }
    };
    match layout {
        Some(layout) => consider(encode_split(data, layout)),
        None => {
            if let Ok(frame) = zstd::bulk::compress(data, ZSTD_LEVEL) {
                let mut out = vec![ZSTD];
                out.extend_from_slice(&frame);
                consider(out);
            }
        }
    }
    best
}

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

fn push_plane(out: &mut Vec<u8>, plane: &[u8]) {
    let frame = zstd::bulk::compress(plane, ZSTD_LEVEL)
        .ok()
        .filter(|frame| frame.len() < plane.len());
    let (mode, bytes) = match &frame {
        Some(frame) => (ZSTD, frame.as_slice()),
        None => (STORED, plane),
    };
    out.push(mode);
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn encode_split(data: &[u8], layout: FloatLayout) -> Vec<u8> {
    let n = data.len() / layout.bytes();
    let alphabet = 1usize << layout.symbol_bits();
    let mut symbols = Vec::with_capacity(n);
    let mut planes = vec![Vec::with_capacity(n); layout.planes()];
    let mut counts = vec![0u32; alphabet];
    for i in 0..n {
        let (symbol, rest) = layout.split(layout.read(data, i));
        counts[symbol as usize] += 1;
        symbols.push(symbol);
        for (p, plane) in planes.iter_mut().enumerate() {
            plane.push((rest >> (8 * p)) as u8);
        }
    }
    let present: Vec<u16> = (0..alphabet as u16)
        .filter(|&s| counts[s as usize] > 0)
        .collect();
    let mut out = vec![SPLIT];
    out.extend_from_slice(&(present.len() as u16).to_le_bytes());
    for s in &present {
        out.extend_from_slice(&s.to_le_bytes());
    }
    let words = if present.len() > 1 {
        let freqs = quantize(
            &present
                .iter()
                .map(|&s| counts[s as usize])
                .collect::<Vec<_>>(),
        );
        for f in &freqs {
            out.extend_from_slice(&f.to_le_bytes());
        }
        let mut index = vec![0usize; alphabet];
        for (i, &s) in present.iter().enumerate() {
            index[s as usize] = i;
        }
        let model = EncoderModel::from_nonzero_fixed_point_probabilities(&freqs, false)
            .expect("quantized frequencies sum to the precision");
        ans::lane_ranges(n)
            .map(|range| {
                let mut coder = SmallAnsCoder::new();
                coder
                    .encode_iid_symbols_reverse(
                        symbols[range].iter().map(|&s| index[s as usize]),
                        &model,
                    )
                    .expect("every symbol has a nonzero frequency");
                coder.into_compressed().expect("a coder with no seal state")
            })
            .collect()
    } else {
        vec![Vec::new(); STREAMS]
    };
    for stream in &words {
        out.extend_from_slice(&(stream.len() as u32).to_le_bytes());
    }
    for stream in &words {
        for w in stream {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }
    for (p, plane) in planes.iter().enumerate() {
        push_plane(&mut out, &pack(plane, layout.plane_bits(p)));
    }
    out
}

/// Packs `values` of `width` bits (1..=8) LSB-first into bytes.
fn pack(values: &[u8], width: u32) -> Vec<u8> {
    if width == 8 {
        return values.to_vec();
    }
    let mut out = Vec::with_capacity(packed_len(values.len(), width));
    let (mut acc, mut filled) = (0u64, 0u32);
    for &v in values {
        acc |= u64::from(v) << filled;
        filled += width;
        while filled >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            filled -= 8;
        }
    }
    if filled > 0 {
        out.push(acc as u8);
    }
    out
}

/// Bytes that `n` values of `width` bits pack into.
fn packed_len(n: usize, width: u32) -> usize {
    (n * width as usize).div_ceil(8)
}

/// Fills `out` with the values of `width` bits [`pack`] wrote; the padding bits must be zero.
fn unpack(bytes: &[u8], width: u32, out: &mut [u8]) -> Result<()> {
    if width == 8 {
        out.copy_from_slice(bytes);
        return Ok(());
    }
    let mask = (1u64 << width) - 1;
    let w = width as usize;
    // Every 8 values fill exactly `width` bytes.
    let groups = out.len() / 8;
    for (g, values) in out.chunks_exact_mut(8).enumerate() {
        // An 8-byte load where the bytes run on (a fixed-size copy is one load, a `width`-byte
        // one a call), the group's bytes alone at the end.
        let at = g * w;
        let word = match bytes.get(at..at + 8) {
            Some(eight) => u64::from_le_bytes(eight.try_into().expect("8 bytes")),
            None => {
                let mut word = [0u8; 8];
                word[..w].copy_from_slice(&bytes[at..at + w]);
                u64::from_le_bytes(word)
            }
        };
        for (k, value) in values.iter_mut().enumerate() {
            *value = ((word >> (k * w)) & mask) as u8;
        }
    }
    let tail = &bytes[groups * w..];
    let mut word = [0u8; 8];
    word[..tail.len()].copy_from_slice(tail);
    let word = u64::from_le_bytes(word);
    let left = &mut out[groups * 8..];
    for (k, value) in left.iter_mut().enumerate() {
        *value = ((word >> (k * w)) & mask) as u8;
    }
    if word >> (left.len() * w) != 0 {
        return Err(malformed("chunk: nonzero padding after a packed plane"));
    }
    Ok(())
}

/// Buffers a thread reuses from chunk to chunk, so decoding does not fault in fresh pages for
/// every chunk.
#[derive(Default)]
struct Scratch {
    symbols: Vec<u16>,
    planes: Vec<Vec<u8>>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8]> {
        if len > self.bytes.len() {
            return Err(malformed(format!(
                "chunk: {what} needs {len} bytes, {} remain",
                self.bytes.len()
            )));
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2, what)?.try_into().expect("2"),
        ))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4"),
        ))
    }

    fn u16s(&mut self, count: usize, what: &str) -> Result<Vec<u16>> {
        let bytes = self.take(count * 2, what)?;
        Ok(bytes
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect())
    }
}

/// Decompresses a zstd frame that must hold exactly `len` bytes.
fn unzstd(frame: &[u8], len: usize, what: &str) -> Result<Vec<u8>> {
    let bytes = zstd::bulk::decompress(frame, len)
        .map_err(|e| malformed(format!("chunk: {what}: zstd: {e}")))?;
    if bytes.len() != len {
        return Err(malformed(format!(
            "chunk: {what} holds {} bytes, expected {len}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Decodes a chunk payload into `out`, whose length is the chunk's byte count; `layout` is
/// the tensor's float layout (`None` for other dtypes, whose chunks are never split).
pub fn decode(payload: &[u8], layout: Option<FloatLayout>, out: &mut [u8]) -> Result<()> {
    let mut r = Reader { bytes: payload };
    match r.u8("coding")? {
        STORED => {
            let bytes = r.take(out.len(), "stored bytes")?;
            out.copy_from_slice(bytes);
        }
        ZSTD => {
            let bytes = unzstd(r.bytes, out.len(), "zstd bytes")?;
            r.bytes = &[];
            out.copy_from_slice(&bytes);
        }
        SPLIT => {
            let layout =
                layout.ok_or_else(|| malformed("chunk: a split chunk of a non-float tensor"))?;
            decode_split(&mut r, layout, out)?;
        }
        other => return Err(malformed(format!("chunk: unknown coding {other}"))),
    }
    if !r.bytes.is_empty() {
        return Err(malformed(format!(
            "chunk: {} bytes left after the data",
            r.bytes.len()
        )));
    }
    Ok(())
}

fn decode_split(r: &mut Reader<'_>, layout: FloatLayout, out: &mut [u8]) -> Result<()> {
    if !out.len().is_multiple_of(layout.bytes()) {
        return Err(malformed("chunk: a split chunk of a partial element"));
    }
    let n = out.len() / layout.bytes();
    let alphabet = 1usize << layout.symbol_bits();
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
    let freqs = match count {
        1 => Vec::new(),
        _ => r.u16s(count, "frequencies")?,
    };
    let mut lengths = [0usize; STREAMS];
    for len in &mut lengths {
        *len = r.u32("ANS length")? as usize;
    }
    let mut streams = Vec::with_capacity(STREAMS);
    for len in lengths {
        streams.push(r.take(2 * len, "ANS words")?);
    }
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.planes.resize_with(layout.planes(), Vec::new);
        scratch.symbols.resize(n, 0);
        let Scratch { symbols, planes } = scratch;
        decode_parts(
            r,
            layout,
            Parts {
                present: &present,
                freqs: &freqs,
                streams: &streams,
            },
            &mut symbols[..n],
            planes,
            out,
        )
    })
}

/// The model and ANS streams of a split chunk, read from its head.
struct Parts<'a> {
    present: &'a [u16],
    freqs: &'a [u16],
    streams: &'a [&'a [u8]],
}

fn decode_parts(
    r: &mut Reader<'_>,
    layout: FloatLayout,
    parts: Parts<'_>,
    symbols: &mut [u16],
    planes: &mut [Vec<u8>],
    out: &mut [u8],
) -> Result<()> {
    let n = symbols.len();
    let mut packed_planes = Vec::with_capacity(layout.planes());
    for p in 0..layout.planes() {
        let what = format!("plane {p}");
        let mode = r.u8(&what)?;
        let len = r.u32(&what)? as usize;
        let bytes = r.take(len, &what)?;
        let width = layout.plane_bits(p);
        let packed = packed_len(n, width);
        let packed = match mode {
            STORED if len == packed => Cow::Borrowed(bytes),
            ZSTD => Cow::Owned(unzstd(bytes, packed, &what)?),
            _ => {
                return Err(malformed(format!(
                    "chunk: {what} has mode {mode} and {len} bytes"
                )));
            }
        };
        packed_planes.push(packed);
    }
    let Parts {
        present,
        freqs,
        streams,
    } = parts;
    if present.len() == 1 {
        if streams.iter().any(|s| !s.is_empty()) {
            return Err(malformed("chunk: ANS words for a single symbol"));
        }
        symbols.fill(present[0]);
    } else {
        let table = ans::Table::new(present, freqs)?;
        let streams = streams.try_into().expect("STREAMS streams");
        ans::decode(&table, streams, symbols)?;
    }
    for (p, (plane, packed)) in planes.iter_mut().zip(&packed_planes).enumerate() {
        plane.resize(n, 0);
        unpack(packed, layout.plane_bits(p), plane)?;
    }
    join(layout, symbols, planes, out);
    Ok(())
}

/// Writes the elements whose symbols and unpacked raw planes are given into little-endian
/// `out`, one loop per plane count so each compiles to straight-line code.
fn join(layout: FloatLayout, symbols: &[u16], planes: &[Vec<u8>], out: &mut [u8]) {
    let n = symbols.len();
    match planes {
        [a] => {
            for ((bytes, &symbol), &a) in out.chunks_exact_mut(2).zip(symbols).zip(&a[..n]) {
                let value = layout.join(symbol, u32::from(a)) as u16;
                bytes.copy_from_slice(&value.to_le_bytes());
            }
        }
        [a, b] if layout.bytes() == 2 => {
            for ((bytes, &symbol), (&a, &b)) in out
                .chunks_exact_mut(2)
                .zip(symbols)
                .zip(a[..n].iter().zip(&b[..n]))
            {
                let rest = u32::from(a) | (u32::from(b) << 8);
                bytes.copy_from_slice(&(layout.join(symbol, rest) as u16).to_le_bytes());
            }
        }
        [a, b, c] => {
            for (((bytes, &symbol), (&a, &b)), &c) in out
                .chunks_exact_mut(4)
                .zip(symbols)
                .zip(a[..n].iter().zip(&b[..n]))
                .zip(&c[..n])
            {
                let rest = u32::from(a) | (u32::from(b) << 8) | (u32::from(c) << 16);
                bytes.copy_from_slice(&layout.join(symbol, rest).to_le_bytes());
            }
        }
        _ => unreachable!("float layouts have 1 to 3 planes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::float::{BF16, F16, F32};

    fn gaussian_floats(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u, v) = (uniform(), uniform());
                ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos() * 0.02) as f32
            })
            .collect()
    }

    fn bytes_of(layout: FloatLayout, values: &[f32]) -> Vec<u8> {
        let mut out = vec![0u8; values.len() * layout.bytes()];
        for (i, v) in values.iter().enumerate() {
            let bits = v.to_bits();
            let element = match layout {
                BF16 => bits >> 16,
                F16 => u32::from(half_bits(*v)),
                _ => bits,
            };
            layout.write(&mut out, i, element);
        }
        out
    }

    /// IEEE half bits by truncation (enough for test data).
    fn half_bits(v: f32) -> u16 {
        let bits = v.to_bits();
        let sign = (bits >> 16) & 0x8000;
        let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
        if exp <= 0 {
            return sign as u16;
        }
        (sign | ((exp.min(30) as u32) << 10) | ((bits >> 13) & 0x3ff)) as u16
    }

    #[test]
    fn trained_like_weights_round_trip_smaller() {
        let values = gaussian_floats(50_000, 7);
        for (layout, most) in [(BF16, 0.70), (F16, 0.86), (F32, 0.86)] {
            let data = bytes_of(layout, &values);
            let coded = encode(&data, Some(layout));
            assert_eq!(coded[0], SPLIT);
            let ratio = coded.len() as f64 / data.len() as f64;
            assert!(ratio < most, "{layout:?}: ratio {ratio:.3}");
            let mut out = vec![0u8; data.len()];
            decode(&coded, Some(layout), &mut out).unwrap();
            assert_eq!(out, data, "{layout:?}");
        }
    }

    #[test]
    fn special_chunks_round_trip() {
        // One symbol only, random bits (stored), integers (zstd), empty.
        let constant = bytes_of(BF16, &[0.5; 1000]);
        let mut state = 1u32;
        let random: Vec<u8> = (0..4000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        let integers: Vec<u8> = (0..1000i64).flat_map(|i| (i * 3).to_le_bytes()).collect();
        for (data, layout) in [
            (constant, Some(BF16)),
            (random.clone(), Some(F32)),
            (random, None),
            (integers, None),
            (Vec::new(), Some(BF16)),
        ] {
            let coded = encode(&data, layout);
            assert!(coded.len() <= data.len() + 1);
            let mut out = vec![0u8; data.len()];
            decode(&coded, layout, &mut out).unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn damaged_chunks_are_refused_or_decode_to_other_bytes_never_panic() {
        let data = bytes_of(BF16, &gaussian_floats(2000, 3));
        let coded = encode(&data, Some(BF16));
        let mut out = vec![0u8; data.len()];
        for len in 0..coded.len() {
            assert!(
                decode(&coded[..len], Some(BF16), &mut out).is_err(),
                "prefix {len}"
            );
        }
        let mut longer = coded.clone();
        longer.push(0);
        assert!(decode(&longer, Some(BF16), &mut out).is_err());
        for i in 0..coded.len().min(600) {
            let mut bad = coded.clone();
            bad[i] ^= 0x5a;
            let _ = decode(&bad, Some(BF16), &mut out);
        }
        // Another element count.
        let mut short = vec![0u8; data.len() - 2];
        assert!(decode(&coded, Some(BF16), &mut short).is_err());
    }
}
