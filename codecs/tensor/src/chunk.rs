//! One chunk of a tensor: coded on its own, so chunks decode in parallel and a tensor can be
//! read without the rest of the file.
//!
//! A chunk payload starts with its coding:
//!
//! ```text
//! 0 stored   the bytes as they are
//! 1 zstd     one zstd frame of the bytes
//! 3 split    float elements (see `float`): the symbols as a model and an interleaved
//!              ANS stream (see `symbols`), then each packed raw byte plane as a section
//!              (see `planes` and `section`)
//! 4 palette  per-block palettes of few-valued elements (see `palette`)
//! ```
//!
//! Coding 2, the split of the first release (four ANS streams, each a quarter of the
//! elements), is no longer written or read: such a chunk gets an error that says so.
//!
//! The model is the chunk's own symbol histogram, quantized in integers by the encoder and
//! stored, so the decoder never recomputes a probability.

use crate::{
    error::{Result, malformed},
    float::FloatLayout,
    palette,
    planes::{self, pack, packed_len},
    section::{self, Reader, push_section},
    symbols,
};

const STORED: u8 = 0;
const ZSTD: u8 = 1;
/// The retired four-stream split.
const SPLIT_V1: u8 = 2;
const SPLIT: u8 = 3;
const PALETTE: u8 = 4;

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
        Some(layout) => {
            consider(encode_split(data, layout));
            if palette::worth_trying(data, layout) {
                let mut out = vec![PALETTE];
                out.extend(palette::encode(data, layout));
                consider(out);
            }
        }
        None => {
            if let Ok(frame) = zstd::bulk::compress(data, section::ZSTD_LEVEL) {
                let mut out = vec![ZSTD];
                out.extend_from_slice(&frame);
                consider(out);
            }
        }
    }
    best
}

fn encode_split(data: &[u8], layout: FloatLayout) -> Vec<u8> {
    let n = data.len() / layout.bytes();
    let alphabet = 1usize << layout.symbol_bits();
    let mut symbols = Vec::with_capacity(n);
    let mut planes = vec![Vec::with_capacity(n); layout.planes()];
    for i in 0..n {
        let (symbol, rest) = layout.split(layout.read(data, i));
        symbols.push(symbol);
        for (p, plane) in planes.iter_mut().enumerate() {
            plane.push((rest >> (8 * p)) as u8);
        }
    }
    let mut out = vec![SPLIT];
    symbols::encode(&symbols, alphabet, &mut out);
    for (p, plane) in planes.iter().enumerate() {
        push_section(&mut out, &pack(plane, layout.plane_bits(p)));
    }
    out
}

/// Buffers a thread reuses from chunk to chunk, so decoding does not fault in fresh pages for
/// every chunk.
#[derive(Default)]
struct Scratch {
    symbols: Vec<u16>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
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
            let bytes = section::unzstd(r.bytes, out.len(), "zstd bytes")?;
            r.bytes = &[];
            out.copy_from_slice(&bytes);
        }
        SPLIT => {
            let layout =
                layout.ok_or_else(|| malformed("chunk: a split chunk of a non-float tensor"))?;
            decode_split(&mut r, layout, out)?;
        }
        PALETTE => {
            let layout =
                layout.ok_or_else(|| malformed("chunk: a palette chunk of a non-float tensor"))?;
            palette::decode(&mut r, layout, out)?;
        }
        SPLIT_V1 => {
            return Err(malformed(
                "chunk: coding 2 (the four-stream split of the first release) is no longer read; encode the file again",
            ));
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
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.symbols.resize(n, 0);
        let symbols = &mut scratch.symbols[..n];
        symbols::decode(r, 1 << layout.symbol_bits(), symbols)?;
        let packed_planes = (0..layout.planes())
            .map(|p| r.section(packed_len(n, layout.plane_bits(p)), &format!("plane {p}")))
            .collect::<Result<Vec<_>>>()?;
        let planes: Vec<&[u8]> = packed_planes.iter().map(|p| &**p).collect();
        planes::join(layout, symbols, &planes, out)
    })
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
            layout.write(&mut out, i, crate::float::element_of(layout, *v));
        }
        out
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
