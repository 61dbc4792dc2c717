//! Blocks of few distinct values: a palette per block and an index per element.
//!
//! Weights dequantized from a block quantizer (GGUF's Q4_0/Q4_1 and the K-quants' sub-blocks
//! of 32, and the like) take at most 16 distinct values in each block of 32, whatever their
//! exponents. The split coding cannot see that; zstd's long matches see part of it. Here each
//! block of [`BLOCK`] elements stores its distinct values, sorted by float value, and each
//! element the index of its value in `ceil(log2(size))` bits.
//!
//! The coding of a chunk of `n` elements, after its coding byte:
//!
//! ```text
//! u8 block length B, then sections (see `section`):
//!   sizes        per block: palette size − 1 (the last block may be shorter than B)
//!   firsts × W   per block: the palette's smallest value, one section per byte of the
//!                element width W (low byte first)
//!   gaps × W     per block: the order-key differences of each next palette value (≥ 1),
//!                one section per byte
//!   indices      per element: its palette index, ceil(log2(size)) bits, LSB-first, zero
//!                padding
//! ```
//!
//! Byte planes rather than whole values: most gaps are below 256, so the high plane is
//! nearly all zeros. On SmolLM2's dequantized weights, planes made the gaps 9 % (BF16) and
//! 10 % (FP16) smaller under zstd than little-endian values, and zstd decoded them faster.
//!
//! Values are ordered by an order key, the float's bits mapped so that integer order is float
//! order (negative values flipped): a palette's values then step evenly where a quantizer's
//! levels do, and the gaps repeat.

use crate::{
    error::{Result, malformed},
    float::FloatLayout,
    section::{Reader, push_section},
};

/// Elements per block (a quantizer's block of 32).
pub const BLOCK: usize = 32;
/// Blocks [`worth_trying`] samples.
const SAMPLED_BLOCKS: usize = 64;

/// The order key of `value`, a float of `bits` bits: integer order is float order.
fn key(value: u32, bits: u32) -> u32 {
    let sign = 1u32 << (bits - 1);
    let all = sign | (sign - 1);
    if value & sign != 0 {
        !value & all
    } else {
        value | sign
    }
}

/// The value whose order key is `key` (at most `bits` bits), without a branch: keys with the
/// sign bit set lose it, the others flip every bit.
#[inline(always)]
fn value_of(key: u32, bits: u32) -> u32 {
    let sign = 1u32 << (bits - 1);
    let all = sign | (sign - 1);
    let flip = ((key >> (bits - 1)) & 1).wrapping_sub(1) & (all ^ sign);
    key ^ sign ^ flip
}

/// Index width for a palette of `size` values.
fn width(size: usize) -> u32 {
    usize::BITS - (size - 1).leading_zeros()
}

/// Whether blocks of `data` look few-valued: the sampled blocks hold at most half as many
/// distinct values as elements, on average. Cheap, so the encoder asks before trying.
pub fn worth_trying(data: &[u8], layout: FloatLayout) -> bool {
    let blocks = data.len() / layout.bytes() / BLOCK;
    if blocks == 0 {
        return false;
    }
    let step = blocks.div_ceil(SAMPLED_BLOCKS);
    let (mut distinct, mut sampled) = (0, 0);
    for b in (0..blocks).step_by(step) {
        let mut values: Vec<u32> = (0..BLOCK)
            .map(|i| layout.read(data, b * BLOCK + i))
            .collect();
        values.sort_unstable();
        values.dedup();
        distinct += values.len();
        sampled += 1;
    }
    2 * distinct <= sampled * BLOCK
}

/// Codes `data` (whole elements of `layout`), without the chunk's coding byte.
pub fn encode(data: &[u8], layout: FloatLayout) -> Vec<u8> {
    let (bits, bytes) = (layout.bits, layout.bytes());
    let n = data.len() / bytes;
    let mut sizes = Vec::with_capacity(n.div_ceil(BLOCK));
    let mut firsts = vec![Vec::new(); bytes];
    let mut gaps = vec![Vec::new(); bytes];
    let mut indices = BitWriter::default();
    let mut keys = Vec::with_capacity(BLOCK);
    let mut palette = Vec::with_capacity(BLOCK);
    for start in (0..n).step_by(BLOCK) {
        keys.clear();
        keys.extend((start..n.min(start + BLOCK)).map(|i| key(layout.read(data, i), bits)));
        palette.clone_from(&keys);
        palette.sort_unstable();
        palette.dedup();
        sizes.push((palette.len() - 1) as u8);
        let first = value_of(palette[0], bits).to_le_bytes();
        for (plane, byte) in firsts.iter_mut().zip(first) {
            plane.push(byte);
        }
        for pair in palette.windows(2) {
            for (plane, byte) in gaps.iter_mut().zip((pair[1] - pair[0]).to_le_bytes()) {
                plane.push(byte);
            }
        }
        let width = width(palette.len());
        for k in &keys {
            let index = palette.binary_search(k).expect("a key of the block");
            indices.put(index as u32, width);
        }
    }
    let mut out = vec![BLOCK as u8];
    let sections = std::iter::once(sizes)
        .chain(firsts)
        .chain(gaps)
        .chain(std::iter::once(indices.finish()));
    for section in sections {
        push_section(&mut out, &section);
    }
    out
}

/// Decodes a palette chunk (after its coding byte) into `out`, whose length is the chunk's
/// bytes.
pub fn decode(r: &mut Reader<'_>, layout: FloatLayout, out: &mut [u8]) -> Result<()> {
    decode_with(r, layout, out, true)
}

/// [`decode`], with the vector path where `vector` and the CPU allow it.
fn decode_with(
    r: &mut Reader<'_>,
    layout: FloatLayout,
    out: &mut [u8],
    vector: bool,
) -> Result<()> {
    let (bits, bytes) = (layout.bits, layout.bytes());
    if !out.len().is_multiple_of(bytes) {
        return Err(malformed("chunk: a palette chunk of a partial element"));
    }
    let n = out.len() / bytes;
    let block = usize::from(r.u8("palette block length")?);
    if block == 0 {
        return Err(malformed("chunk: palette blocks of no elements"));
    }
    let blocks = n.div_ceil(block);
    let sizes = r.section(blocks, "palette sizes")?;
    let (mut gap_count, mut index_bits) = (0usize, 0usize);
    for (b, &size) in sizes.iter().enumerate() {
        let (len, size) = (block.min(n - b * block), usize::from(size) + 1);
        if size > len {
            return Err(malformed(format!(
                "chunk: a palette of {size} values for a block of {len} elements"
            )));
        }
        gap_count += size - 1;
        index_bits += len * width(size) as usize;
    }
    let firsts = (0..bytes)
        .map(|p| r.section(blocks, &format!("palette firsts, byte {p}")))
        .collect::<Result<Vec<_>>>()?;
    let gaps = (0..bytes)
        .map(|p| r.section(gap_count, &format!("palette gaps, byte {p}")))
        .collect::<Result<Vec<_>>>()?;

    let indices = r.section(index_bits.div_ceil(8), "palette indices")?;
    let sections = Sections {
        block,
        sizes: &sizes,
        firsts: planes(&firsts),
        gaps: planes(&gaps),
        indices: &indices,
    };
    match bytes {
        2 => fill::<2>(sections, bits, out, vector),
        _ => fill::<4>(sections, bits, out, vector),
    }?;
    let padding = indices.last().map_or(0, |&b| b >> (index_bits % 8));
    if index_bits % 8 != 0 && padding != 0 {
        return Err(malformed(
            "chunk: nonzero padding after the palette indices",
        ));
    }
    Ok(())
}

/// A palette chunk's sections, their lengths checked against the sizes.
struct Sections<'a> {
    block: usize,
    sizes: &'a [u8],
    /// Byte planes of the firsts (as many as the element has bytes, the rest empty).
    firsts: [&'a [u8]; 4],
    /// Byte planes of the gaps.
    gaps: [&'a [u8]; 4],
    indices: &'a [u8],
}

/// Up to four byte planes as slices, empty past the last.
fn planes<'a>(sections: &'a [std::borrow::Cow<'_, [u8]>]) -> [&'a [u8]; 4] {
    std::array::from_fn(|p| sections.get(p).map_or(&[][..], |s| &**s))
}

/// Value `i` of `B` byte planes.
#[inline(always)]
fn value_at<const B: usize>(planes: &[&[u8]; 4], i: usize) -> u32 {
    (0..B).fold(0, |value, p| value | u32::from(planes[p][i]) << (8 * p))
}

/// The `width` bits at bit `pos` of `bytes` (one 8-byte load away from the end).
#[inline(always)]
fn bits_at(bytes: &[u8], pos: usize, width: u32) -> u32 {
    let at = pos / 8;
    let word = match bytes.get(at..at + 8) {
        Some(eight) => u64::from_le_bytes(eight.try_into().expect("8 bytes")),
        None => {
            let mut word = [0u8; 8];
            let tail = &bytes[at.min(bytes.len())..];
            word[..tail.len()].copy_from_slice(tail);
            u64::from_le_bytes(word)
        }
    };
    ((word >> (pos % 8)) & ((1u64 << width) - 1)) as u32
}

/// One block of a palette chunk: its palette's size, smallest value and gaps, where its
/// indices start, and its elements' bytes.
struct Block<'s, 'o> {
    size: usize,
    first: u32,
    /// Byte planes of its size − 1 gaps.
    gaps: [&'s [u8]; 4],
    /// The bit of the indices section where this block's indices start.
    pos: usize,
    out: &'o mut [u8],
}

/// Writes the elements of `B` bytes the sections describe into `out`.
fn fill<const B: usize>(
    sections: Sections<'_>,
    bits: u32,
    out: &mut [u8],
    vector: bool,
) -> Result<()> {
    if B == 2
        && vector
        && let Some(filled) = wide::fill(&sections, out)
    {
        return filled;
    }
    for_blocks::<B>(&sections, out, |block| {
        scalar_block::<B>(block, bits, sections.indices)
    })
}

/// Runs `kernel` on every block in order.
#[inline(always)]
fn for_blocks<const B: usize>(
    sections: &Sections<'_>,
    out: &mut [u8],
    mut kernel: impl FnMut(Block<'_, '_>) -> Result<()>,
) -> Result<()> {
    let (mut gap, mut pos) = (0usize, 0usize);
    for ((b, &size), out) in sections
        .sizes
        .iter()
        .enumerate()
        .zip(out.chunks_mut(sections.block * B))
    {
        let size = usize::from(size) + 1;
        let elements = out.len() / B;
        kernel(Block {
            size,
            first: value_at::<B>(&sections.firsts, b),
            gaps: std::array::from_fn(|p| match p < B {
                true => &sections.gaps[p][gap..gap + size - 1],
                false => &[][..],
            }),
            pos,
            out,
        })?;
        gap += size - 1;
        pos += elements * width(size) as usize;
    }
    Ok(())
}

/// One block, element by element, for any width and palette size.
#[inline(always)]
fn scalar_block<const B: usize>(block: Block<'_, '_>, bits: u32, indices: &[u8]) -> Result<()> {
    let Block {
        size,
        first,
        gaps,
        pos,
        out,
    } = block;
    let most = if bits == 32 {
        u32::MAX
    } else {
        (1 << bits) - 1
    };
    let mut palette = [0u32; 256];
    palette[0] = first;
    // Keys add up in 64 bits, so no sum wraps; a zero gap or a key past the width is checked
    // once per block.
    let mut k = u64::from(key(first, bits));
    let mut zero_gap = false;
    for (g, slot) in palette[1..size].iter_mut().enumerate() {
        let step = value_at::<B>(&gaps, g);
        zero_gap |= step == 0;
        k += u64::from(step);
        *slot = value_of(k as u32, bits);
    }
    if zero_gap || k > u64::from(most) {
        return Err(malformed("chunk: palette values out of order or range"));
    }
    let width = width(size);
    let full = out.len() == BLOCK * B && pos % 8 == 0;
    let largest = match (full, width) {
        (true, 1) => full_block::<B, 1>(indices, pos / 8, &palette, out),
        (true, 2) => full_block::<B, 2>(indices, pos / 8, &palette, out),
        (true, 3) => full_block::<B, 3>(indices, pos / 8, &palette, out),
        (true, 4) => full_block::<B, 4>(indices, pos / 8, &palette, out),
        (true, 5) => full_block::<B, 5>(indices, pos / 8, &palette, out),
        _ => {
            let mut largest = 0;
            for (i, element) in out.chunks_exact_mut(B).enumerate() {
                let index = bits_at(indices, pos + i * width as usize, width) as usize;
                largest = largest.max(index);
                element.copy_from_slice(&palette[index].to_le_bytes()[..B]);
            }
            largest
        }
    };
    if largest >= size {
        return Err(malformed("chunk: a palette index past its palette"));
    }
    Ok(())
}

/// A whole block of [`BLOCK`] elements whose `W`-bit indices start at byte `at`: 4 groups of
/// 8 indices, `W` bytes each. Returns the largest index (the palette has 256 slots, so any
/// `W`-bit index reads one; the caller checks it against the palette's size).
#[inline(always)]
fn full_block<const B: usize, const W: usize>(
    indices: &[u8],
    at: usize,
    palette: &[u32; 256],
    out: &mut [u8],
) -> usize {
    let mask = (1u64 << W) - 1;
    let mut most = 0;
    for (g, group) in out.chunks_exact_mut(8 * B).enumerate() {
        let start = at + g * W;
        let word = match indices.get(start..start + 8) {
            Some(eight) => u64::from_le_bytes(eight.try_into().expect("8 bytes")),
            None => {
                let mut word = [0u8; 8];
                word[..W].copy_from_slice(&indices[start..start + W]);
                u64::from_le_bytes(word)
            }
        };
        for (k, element) in group.chunks_exact_mut(B).enumerate() {
            let index = ((word >> (k * W)) & mask) as usize;
            most = most.max(index);
            element.copy_from_slice(&palette[index].to_le_bytes()[..B]);
        }
    }
    most
}

/// Writes values of up to 32 bits LSB-first.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    filled: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, width: u32) {
        self.acc |= u64::from(value) << self.filled;
        self.filled += width;
        while self.filled >= 8 {
            self.bytes.push(self.acc as u8);
            self.acc >>= 8;
            self.filled -= 8;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.filled > 0 {
            self.bytes.push(self.acc as u8);
        }
        self.bytes
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod wide {
    //! 16-bit palette blocks with AVX-512 (VBMI): a block of 32 elements whose palette has at
    //! most 32 values is a prefix sum of its gaps, a byte shuffle and a multishift that
    //! unpack its indices, and one 32-way word permute.

    use std::arch::x86_64::*;

    use super::{BLOCK, Block, Sections, for_blocks, key, scalar_block, width};
    use crate::error::{Result, malformed};

    /// Fills `out` from 16-bit palette sections where the CPU has AVX-512 VBMI and the blocks
    /// are [`BLOCK`] long; `None` otherwise.
    pub fn fill(sections: &Sections<'_>, out: &mut [u8]) -> Option<Result<()>> {
        let available = is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512vbmi");
        // SAFETY: `fill_16` needs exactly the features checked here.
        (available && sections.block == BLOCK).then(|| unsafe { fill_16(sections, out) })
    }

    /// Shuffle controls, built once per chunk.
    struct Controls {
        /// Per index width 0..=5: qword `g` gathers the bytes from `g · width` on.
        gather: [__m512i; 6],
        /// Per index width: byte `k` of a qword takes the bits from `k · width` on.
        shifts: [__m512i; 6],
        /// Per shift 1, 2, 4, 8, 16 lanes: word lane `j` takes lane `j − shift`.
        up: [__m512i; 5],
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
    fn bytes_vector(bytes: [u8; 64]) -> __m512i {
        // SAFETY: reads the 64 bytes of the array.
        unsafe { _mm512_loadu_si512(bytes.as_ptr() as *const _) }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
    fn fill_16(sections: &Sections<'_>, out: &mut [u8]) -> Result<()> {
        let controls = Controls {
            gather: std::array::from_fn(|w| {
                bytes_vector(std::array::from_fn(|i| ((i / 8) * w + i % 8).min(63) as u8))
            }),
            shifts: std::array::from_fn(|w| {
                bytes_vector(std::array::from_fn(|i| ((i % 8) * w) as u8))
            }),
            up: [1, 2, 4, 8, 16].map(|shift| {
                bytes_vector(std::array::from_fn(|i| {
                    // Word lane i / 2 reads lane (i / 2 − shift), as little-endian u16 indices.
                    let lane = (i / 2).saturating_sub(shift);
                    if i % 2 == 0 { lane as u8 } else { 0 }
                }))
            }),
        };
        let indices = sections.indices;
        for_blocks::<2>(sections, out, |block| {
            if block.out.len() == 2 * BLOCK && block.pos % 8 == 0 && block.size <= BLOCK {
                block_16(block, indices, &controls)
            } else {
                scalar_block::<2>(block, 16, indices)
            }
        })
    }

    /// Word lanes moved up by `up[s]`'s shift, zeros below.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
    fn lanes_up(v: __m512i, controls: &Controls, s: usize) -> __m512i {
        let shift = 1u32 << s;
        _mm512_maskz_permutexvar_epi16(!((1u32 << shift) - 1), controls.up[s], v)
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
    fn block_16(block: Block<'_, '_>, indices: &[u8], controls: &Controls) -> Result<()> {
        let size = block.size;
        // Lane j of 1..size holds gap j − 1, lane 0 nothing.
        let gap_lanes = (((1u64 << size) - 1) as u32) & !1;
        // SAFETY: a masked load reads only its unmasked lanes; lane j reads byte j − 1 of a
        // plane, which holds size − 1 bytes.
        let [low, high] = [block.gaps[0], block.gaps[1]].map(|plane| unsafe {
            _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(
                gap_lanes,
                (plane.as_ptr() as *const i8).wrapping_sub(1),
            ))
        });
        let shifted = _mm512_or_si512(low, _mm512_slli_epi16::<8>(high));
        let mut sums = shifted;
        for s in 0..5 {
            sums = _mm512_add_epi16(sums, lanes_up(sums, controls, s));
        }
        let keys = _mm512_add_epi16(sums, _mm512_set1_epi16(key(block.first, 16) as u16 as i16));
        // Gaps ≥ 1 and no sum past 16 bits: the keys strictly increase.
        let previous = lanes_up(keys, controls, 0);
        if _mm512_mask_cmple_epu16_mask(gap_lanes, keys, previous) != 0 {
            return Err(malformed("chunk: palette values out of order or range"));
        }
        // Keys with the sign bit lose it, the others flip every bit.
        let sign = _mm512_srai_epi16::<15>(keys);
        let flip = _mm512_xor_si512(
            _mm512_and_si512(sign, _mm512_set1_epi16(0x7fff)),
            _mm512_set1_epi16(-1),
        );
        let palette = _mm512_xor_si512(keys, flip);
        let w = width(size) as usize;
        let at = block.pos / 8;
        let bytes = &indices[at..at + 4 * w];
        // SAFETY: reads the 4w bytes of `bytes` (mask of 4w lanes).
        let raw =
            unsafe { _mm512_maskz_loadu_epi8((1u64 << (4 * w)) - 1, bytes.as_ptr() as *const i8) };
        let grouped = _mm512_permutexvar_epi8(controls.gather[w], raw);
        let fields = _mm512_multishift_epi64_epi8(controls.shifts[w], grouped);
        let narrow = _mm512_and_si512(fields, _mm512_set1_epi8(((1u32 << w) - 1) as u8 as i8));
        let index = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(narrow));
        if _mm512_cmpge_epu16_mask(index, _mm512_set1_epi16(size as i16)) != 0 {
            return Err(malformed("chunk: a palette index past its palette"));
        }
        let values = _mm512_permutexvar_epi16(index, palette);
        let out: &mut [u8; 64] = block.out.try_into().expect("a block of 32 words");
        // SAFETY: writes the 64 bytes of `out`.
        unsafe { _mm512_storeu_si512(out.as_mut_ptr() as *mut _, values) };
        Ok(())
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod wide {
    //! No vector path off x86-64.

    use super::Sections;
    use crate::error::Result;

    /// Always `None`: the scalar blocks run.
    pub fn fill(_: &Sections<'_>, _: &mut [u8]) -> Option<Result<()>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::float::{BF16, F16, F32};

    #[test]
    fn order_keys_sort_like_floats_and_invert() {
        let floats = [-3.5f32, -1.0, -0.0, 0.0, 1e-30, 0.25, 7.0];
        let keys: Vec<u32> = floats.iter().map(|f| key(f.to_bits(), 32)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        for bits in [16, 32] {
            for value in [0u32, 1, 0x7fff, 0x8000, 0xffff, 0x1234] {
                assert_eq!(value_of(key(value, bits), bits), value);
            }
        }
        assert_eq!(value_of(key(u32::MAX, 32), 32), u32::MAX);
    }

    /// Blocks of 32 elements with `levels` distinct values each, like dequantized weights.
    fn dequantized(layout: FloatLayout, n: usize, levels: u32) -> Vec<u8> {
        let mut seed = 5u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u32
        };
        let mut out = vec![0u8; n * layout.bytes()];
        let mut scale = 0.0;
        let mut min = 0.0;
        for i in 0..n {
            if i % BLOCK == 0 {
                scale = (next() % 1000) as f32 * 1e-5;
                min = -((next() % 1000) as f32) * 1e-4;
            }
            let value = min + scale * (next() % levels) as f32;
            layout.write(&mut out, i, crate::float::element_of(layout, value));
        }
        out
    }

    #[test]
    fn dequantized_blocks_round_trip_in_under_60_percent() {
        for layout in [BF16, F16, F32] {
            for n in [1, 31, 32, 33, 10_000] {
                let data = dequantized(layout, n, 16);
                assert!(n < 64 || worth_trying(&data, layout), "{layout:?}");
                let coded = encode(&data, layout);
                for vector in [true, false] {
                    let mut out = vec![0u8; data.len()];
                    decode_with(&mut Reader { bytes: &coded }, layout, &mut out, vector).unwrap();
                    assert_eq!(out, data, "{layout:?} {n} {vector}");
                }
                if n == 10_000 {
                    // 50 %, 56 % and 41 % when written; random scales make the gaps costly.
                    assert!(
                        coded.len() * 10 < data.len() * 6,
                        "{layout:?}: {}",
                        coded.len()
                    );
                }
            }
        }
    }

    #[test]
    fn the_vector_path_agrees_with_the_scalar_one_on_every_palette_size_and_damage() {
        // Levels 1..=32 give every index width the vector path takes (0 to 5 bits); every
        // damaged copy must decode to the same bytes, or fail, on both paths.
        for levels in [1, 2, 3, 5, 9, 17, 32] {
            let data = dequantized(F16, 3000, levels);
            let coded = encode(&data, F16);
            let decoded = |bytes: &[u8], vector: bool| {
                let mut out = vec![0u8; data.len()];
                let mut r = Reader { bytes };
                decode_with(&mut r, F16, &mut out, vector)
                    .ok()
                    .filter(|()| r.bytes.is_empty())
                    .map(|()| out)
            };
            assert_eq!(
                decoded(&coded, true).as_deref(),
                Some(&data[..]),
                "{levels}"
            );
            for i in (0..coded.len()).step_by(7) {
                let mut bad = coded.clone();
                bad[i] ^= 0x10;
                assert_eq!(
                    decoded(&bad, true),
                    decoded(&bad, false),
                    "{levels}: byte {i}"
                );
            }
        }
    }

    #[test]
    fn distinct_values_are_not_worth_a_palette() {
        let data: Vec<u8> = (0..4096u32)
            .flat_map(|i| (i as u16 * 7).to_le_bytes())
            .collect();
        assert!(!worth_trying(&data, BF16));
    }

    #[test]
    fn damaged_palettes_are_refused_or_decode_to_other_bytes_never_panic() {
        let data = dequantized(F16, 2000, 16);
        let coded = encode(&data, F16);
        let mut out = vec![0u8; data.len()];
        for len in 0..coded.len() {
            let mut r = Reader {
                bytes: &coded[..len],
            };
            let whole = decode(&mut r, F16, &mut out).is_ok() && r.bytes.is_empty();
            assert!(!whole || len == coded.len(), "prefix {len}");
        }
        for i in 0..coded.len() {
            let mut bad = coded.clone();
            bad[i] ^= 0x41;
            let _ = decode(&mut Reader { bytes: &bad }, F16, &mut out);
        }
    }
}
