//! The raw bits of a split chunk: packed into byte planes by the encoder, unpacked and joined
//! with the decoded symbols straight into the output by the decoder.
//!
//! Plane `p` holds bits `8p..` of each element's raw bits (see [`FloatLayout::rest_bits`]),
//! [`FloatLayout::plane_bits`] of them per element, packed LSB-first with zero padding.
//!
//! The join is the other half of a decode's work besides the ANS loop, so it is one fused pass
//! (no unpacked planes in between) over groups of 8 elements, whose bits in a plane of width
//! `w` are exactly `w` bytes; it is compiled once more for AVX-512, where the compiler widens
//! the group loop into vector shifts.

use crate::{
    error::{Result, malformed},
    float::{BF16, F16, F32, FloatLayout},
};

/// Packs `values` of `width` bits (1..=8) LSB-first into bytes.
pub fn pack(values: &[u8], width: u32) -> Vec<u8> {
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
pub fn packed_len(n: usize, width: u32) -> usize {
    (n * width as usize).div_ceil(8)
}

/// Writes the `symbols.len()` elements of `layout` whose symbols are given and whose raw bits
/// are in the packed `planes` (each [`packed_len`] long) into little-endian `out`. The padding
/// bits after the last value of a plane must be zero.
pub fn join(layout: FloatLayout, symbols: &[u16], planes: &[&[u8]], out: &mut [u8]) -> Result<()> {
    let n = symbols.len();
    assert_eq!(
        planes.len(),
        layout.planes(),
        "one packed plane per byte of raw bits"
    );
    assert_eq!(out.len(), n * layout.bytes(), "room for every element");
    for (p, plane) in planes.iter().enumerate() {
        let bits = n * layout.plane_bits(p) as usize;
        assert_eq!(plane.len(), bits.div_ceil(8), "plane {p} holds its values");
        if !bits.is_multiple_of(8) && plane[plane.len() - 1] >> (bits % 8) != 0 {
            return Err(malformed("chunk: nonzero padding after a packed plane"));
        }
    }
    wide::join(layout, symbols, planes, out)
        .unwrap_or_else(|| join_any(layout, symbols, planes, out));
    Ok(())
}

/// The join for whatever CPU: one monomorphic loop per float layout.
#[inline(always)]
fn join_any(layout: FloatLayout, symbols: &[u16], planes: &[&[u8]], out: &mut [u8]) {
    match (layout, planes) {
        (BF16, &[a]) => join_layout::<1, 2>(BF16, symbols, [a], out),
        (F16, &[a, b]) => join_layout::<2, 2>(F16, symbols, [a, b], out),
        (F32, &[a, b, c]) => join_layout::<3, 4>(F32, symbols, [a, b, c], out),
        _ => unreachable!("float layouts are BF16, F16 and F32"),
    }
}

/// The join of one layout with `P` planes and `B` bytes per element; `layout` is a constant
/// where this is inlined, so the plane widths and masks are too.
#[inline(always)]
fn join_layout<const P: usize, const B: usize>(
    layout: FloatLayout,
    symbols: &[u16],
    planes: [&[u8]; P],
    out: &mut [u8],
) {
    let widths: [usize; P] = std::array::from_fn(|p| layout.plane_bits(p) as usize);
    let masks: [u64; P] = std::array::from_fn(|p| (1u64 << widths[p]) - 1);
    // Groups whose 8-byte reads stay inside every plane.
    let fast = (0..P)
        .map(|p| match planes[p].len() {
            len if len >= 8 => (len - 8) / widths[p] + 1,
            _ => 0,
        })
        .min()
        .unwrap_or(0)
        .min(symbols.len() / 8);
    let (head, tail) = symbols.split_at(8 * fast);
    let (out_head, out_tail) = out.split_at_mut(8 * fast * B);
    for (g, (symbols, out)) in head
        .chunks_exact(8)
        .zip(out_head.chunks_exact_mut(8 * B))
        .enumerate()
    {
        let words: [u64; P] = std::array::from_fn(|p| {
            let at = g * widths[p];
            u64::from_le_bytes(planes[p][at..at + 8].try_into().expect("8 bytes"))
        });
        for (k, (&symbol, bytes)) in symbols.iter().zip(out.chunks_exact_mut(B)).enumerate() {
            let mut rest = 0u32;
            for p in 0..P {
                rest |= (((words[p] >> (k * widths[p])) & masks[p]) as u32) << (8 * p);
            }
            bytes.copy_from_slice(&layout.join(symbol, rest).to_le_bytes()[..B]);
        }
    }
    for (i, (&symbol, bytes)) in tail.iter().zip(out_tail.chunks_exact_mut(B)).enumerate() {
        let i = 8 * fast + i;
        let mut rest = 0u32;
        for p in 0..P {
            let bit = i * widths[p];
            let pair = u16::from(planes[p][bit / 8])
                | u16::from(planes[p].get(bit / 8 + 1).copied().unwrap_or(0)) << 8;
            rest |= ((u64::from(pair >> (bit % 8)) & masks[p]) as u32) << (8 * p);
        }
        bytes.copy_from_slice(&layout.join(symbol, rest).to_le_bytes()[..B]);
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod wide {
    //! The same join compiled for AVX-512.

    use super::{FloatLayout, join_any};

    /// Joins with AVX-512 where the CPU has it; `None` where it does not.
    pub fn join(
        layout: FloatLayout,
        symbols: &[u16],
        planes: &[&[u8]],
        out: &mut [u8],
    ) -> Option<()> {
        let available = is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512vbmi");
        // SAFETY: `join_avx512` needs exactly the features checked here; the code inside is
        // safe Rust.
        available.then(|| unsafe { join_avx512(layout, symbols, planes, out) })
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx2,bmi2")]
    fn join_avx512(layout: FloatLayout, symbols: &[u16], planes: &[&[u8]], out: &mut [u8]) {
        join_any(layout, symbols, planes, out)
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod wide {
    //! No wide build off x86-64.

    use super::FloatLayout;

    /// Always `None`: the portable join runs.
    pub fn join(_: FloatLayout, _: &[u16], _: &[&[u8]], _: &mut [u8]) -> Option<()> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layout_joins_what_was_split_and_packed_at_every_length() {
        let mut seed = 77u64;
        for layout in [BF16, F16, F32] {
            for n in [0usize, 1, 7, 8, 9, 63, 64, 1000, 1003] {
                let values: Vec<u32> = (0..n)
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                        (seed >> 32) as u32 >> (32 - layout.bits)
                    })
                    .collect();
                let (symbols, rests): (Vec<u16>, Vec<u32>) =
                    values.iter().map(|&v| layout.split(v)).unzip();
                let planes: Vec<Vec<u8>> = (0..layout.planes())
                    .map(|p| {
                        let bytes: Vec<u8> = rests.iter().map(|r| (r >> (8 * p)) as u8).collect();
                        pack(&bytes, layout.plane_bits(p))
                    })
                    .collect();
                let views: Vec<&[u8]> = planes.iter().map(Vec::as_slice).collect();
                let expected: Vec<u8> = values
                    .iter()
                    .flat_map(|v| v.to_le_bytes()[..layout.bytes()].to_vec())
                    .collect();
                let mut out = vec![0u8; n * layout.bytes()];
                join(layout, &symbols, &views, &mut out).unwrap();
                assert_eq!(out, expected, "{layout:?}, {n}");
                let mut portable = vec![0u8; n * layout.bytes()];
                join_any(layout, &symbols, &views, &mut portable);
                assert_eq!(portable, expected, "{layout:?}, {n}, portable");
            }
        }
    }

    #[test]
    fn nonzero_padding_is_refused() {
        let mut plane = pack(&[1, 2, 3], 7);
        *plane.last_mut().unwrap() |= 0x80;
        let mut out = [0u8; 6];
        assert!(join(BF16, &[0, 0, 0], &[&plane], &mut out).is_err());
    }
}
