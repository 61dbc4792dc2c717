//! Interleaved rANS: the entropy coder of a chunk's float symbols, written for decode speed.
//!
//! Decoding is the hot path of a weight load. `constriction`'s coders write one stream per
//! coder, and a reader of one stream waits on each state update before the next; four
//! streams decoded in lockstep ran at half of ZipNN's decode speed. This coder keeps `lanes`
//! states over **one** word stream, symbol `i` on lane `i mod lanes`, in the layout of
//! F. Giesen's interleaved rANS: the lanes of a row refill in lane order from the same
//! pointer, so a vector unit decodes 16 lanes per instruction. With AVX-512 (VBMI2) the
//! decoder steps 64 lanes as four vectors of 16 — one table gather, one masked expand-load of
//! the refill words — and elsewhere a scalar loop reads the same stream; both give the same
//! symbols (`tests::the_vector_decoder_agrees_with_the_scalar_one`).
//!
//! The format, for `n` symbols over `lanes` lanes with a model of [`PRECISION`] bits:
//! - a lane's state lies in `[2^16, 2^32)` between symbols;
//! - the words are little-endian `u16`, read front to back: first each lane's initial state
//!   (low word, high word), lane 0 first, then the refill words in decode order;
//! - decoding symbol `i` on its lane maps the state `x` through the table slot
//!   `s = x mod 2^PRECISION` (symbol, frequency `f`, offset `s − cum`) to
//!   `f · (x >> PRECISION) + offset`, then, while that is below `2^16`, shifts in the next word
//!   (at most once);
//! - after the last symbol every lane is back at `2^16` and every word has been read.
//!
//! The model is integers only (the frequencies the encoder stored), so every machine decodes
//! the same symbols.

use crate::error::{Result, malformed};

/// Fixed-point precision of the symbol model: a table of `1 << PRECISION` slots.
pub const PRECISION: u32 = 11;
/// Lanes of a chunk long enough to fill them (the vector decoder's width).
pub const WIDE_LANES: usize = 64;
/// Most lanes a stream may declare.
pub const MAX_LANES: usize = WIDE_LANES;
const SLOTS: usize = 1 << PRECISION;
const SLOT_MASK: u32 = (SLOTS - 1) as u32;
/// A lane's state between symbols is at least this.
const LOW: u32 = 1 << 16;

/// Lanes the encoder gives `n` symbols (the initial states cost 4 bytes a lane): 64 once each
/// lane gets 256 symbols, 16 (one vector) from 64 each, one below that.
pub fn lanes_for(n: usize) -> usize {
    match n {
        n if n >= WIDE_LANES * 256 => WIDE_LANES,
        n if n >= 16 * 64 => 16,
        _ => 1,
    }
}

/// Codes `indices` (each an index into `freqs`) over `lanes` lanes. The frequencies must be
/// nonzero and sum to `1 << PRECISION`; returns the words, in stream order.
pub fn encode(indices: &[u16], freqs: &[u16], lanes: usize) -> Vec<u16> {
    assert!((1..=MAX_LANES).contains(&lanes), "1..={MAX_LANES} lanes");
    let cums: Vec<u32> = freqs
        .iter()
        .scan(0u32, |sum, &f| {
            let cum = *sum;
            *sum += u32::from(f);
            Some(cum)
        })
        .collect();
    let mut states = vec![LOW; lanes];
    let mut words = Vec::with_capacity(indices.len() / 2 + 2 * lanes);
    // Backwards, so the decoder reads forwards; each symbol's spill word comes out right
    // before the state that decodes it, so reversed it comes right after.
    for (i, &index) in indices.iter().enumerate().rev() {
        let x = &mut states[i % lanes];
        let freq = u32::from(freqs[usize::from(index)]);
        if *x >= freq << (32 - PRECISION) {
            words.push(*x as u16);
            *x >>= 16;
        }
        *x = ((*x / freq) << PRECISION) + *x % freq + cums[usize::from(index)];
    }
    for &x in states.iter().rev() {
        words.push((x >> 16) as u16);
        words.push(x as u16);
    }
    words.reverse();
    words
}

/// Bits of a table entry's frequency and offset fields (a frequency is below `2^PRECISION`:
/// a model of one symbol is never coded).
const FIELD_BITS: u32 = PRECISION;
const FIELD_MASK: u32 = (1 << FIELD_BITS) - 1;
/// Symbols are below `2^SYMBOL_BITS`, so an entry fits one 32-bit word.
pub const SYMBOL_BITS: u32 = 32 - 2 * FIELD_BITS;

/// The decoding table of one model: per slot, one word `freq | offset << 11 | symbol << 22`,
/// what one gather fetches.
pub struct Table {
    entries: Box<[u32; SLOTS]>,
}

impl Table {
    /// Builds the table of symbols `values` with frequencies `freqs`; the frequencies must be
    /// nonzero and sum to `1 << PRECISION`.
    pub fn new(values: &[u16], freqs: &[u16]) -> Result<Self> {
        let total: u32 = freqs.iter().map(|&f| u32::from(f)).sum();
        if values.len() != freqs.len()
            || values.len() < 2
            || freqs.contains(&0)
            || total != SLOTS as u32
            || values.iter().any(|&v| u32::from(v) >> SYMBOL_BITS != 0)
        {
            return Err(malformed("chunk: frequencies do not form a model"));
        }
        let mut entries = Box::new([0u32; SLOTS]);
        let mut start = 0usize;
        for (&symbol, &freq) in values.iter().zip(freqs) {
            let end = start + usize::from(freq);
            for (offset, slot) in (start..end).enumerate() {
                entries[slot] = u32::from(freq)
                    | (offset as u32) << FIELD_BITS
                    | u32::from(symbol) << (2 * FIELD_BITS);
            }
            start = end;
        }
        Ok(Self { entries })
    }
}

/// Decodes `out.len()` symbols over `lanes` lanes from the little-endian words in `bytes`
/// (an even count). The stream must end exactly after the symbols.
pub fn decode(table: &Table, bytes: &[u8], lanes: usize, out: &mut [u16]) -> Result<()> {
    if !(1..=MAX_LANES).contains(&lanes) || !bytes.len().is_multiple_of(2) {
        return Err(malformed("chunk: a malformed ANS stream"));
    }
    let words = bytes.len() / 2;
    if words < 2 * lanes {
        return Err(malformed(
            "chunk: the ANS stream is shorter than its states",
        ));
    }
    let word = |i: usize| u32::from(u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]));
    let mut states = [0u32; MAX_LANES];
    for (k, state) in states[..lanes].iter_mut().enumerate() {
        *state = word(2 * k) | word(2 * k + 1) << 16;
    }
    let mut cursor = Cursor {
        bytes,
        next: 2 * lanes,
    };
    let done = vector::decode(table, &mut cursor, lanes, &mut states, out);
    for row in out[done..].chunks_mut(lanes) {
        for (symbol, x) in row.iter_mut().zip(&mut states) {
            *symbol = step(table, x, &mut cursor)?;
        }
    }
    if states[..lanes].iter().any(|&x| x != LOW) || cursor.next != words {
        return Err(malformed(
            "chunk: the ANS stream does not end after the last symbol (the element count does not match)",
        ));
    }
    Ok(())
}

/// The read position in a word stream.
struct Cursor<'a> {
    bytes: &'a [u8],
    /// The next word to read.
    next: usize,
}

/// One scalar decoding step of the lane at state `x`.
#[inline(always)]
fn step(table: &Table, x: &mut u32, cursor: &mut Cursor<'_>) -> Result<u16> {
    let entry = table.entries[(*x & SLOT_MASK) as usize];
    // freq < 2^11 and x >> 11 < 2^21, so this stays below 2^32.
    let mut next = (entry & FIELD_MASK) * (*x >> PRECISION) + (entry >> FIELD_BITS & FIELD_MASK);
    if next < LOW {
        let at = 2 * cursor.next;
        let pair = cursor
            .bytes
            .get(at..at + 2)
            .ok_or_else(|| malformed("chunk: the ANS stream ends early"))?;
        next = next << 16 | u32::from(u16::from_le_bytes([pair[0], pair[1]]));
        cursor.next += 1;
    }
    *x = next;
    Ok((entry >> (2 * FIELD_BITS)) as u16)
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod vector {
    //! The AVX-512 decoder: the lanes as vectors of 16 states.

    use std::arch::x86_64::*;

    use super::{Cursor, FIELD_BITS, FIELD_MASK, LOW, PRECISION, SLOT_MASK, Table, WIDE_LANES};

    /// Whether this CPU runs the vector decoder.
    pub fn available() -> bool {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512vbmi2")
            && is_x86_feature_detected!("popcnt")
    }

    /// Decodes whole rows of `out` while the stream has a row's worth of words left (a row
    /// reads at most one word a lane); returns the symbols written. Does nothing unless the
    /// stream has 16, 32 or 64 lanes and the CPU has AVX-512.
    pub fn decode(
        table: &Table,
        cursor: &mut Cursor<'_>,
        lanes: usize,
        states: &mut [u32; WIDE_LANES],
        out: &mut [u16],
    ) -> usize {
        if !matches!(lanes, 16 | 32 | 64) || !available() {
            return 0;
        }
        // SAFETY: the CPU has the features `rows` is compiled for (checked just above).
        unsafe {
            match lanes {
                16 => rows::<1>(table, cursor, states, out),
                32 => rows::<2>(table, cursor, states, out),
                _ => rows::<4>(table, cursor, states, out),
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi2,popcnt")]
    fn rows<const GROUPS: usize>(
        table: &Table,
        cursor: &mut Cursor<'_>,
        states: &mut [u32; WIDE_LANES],
        out: &mut [u16],
    ) -> usize {
        let words = cursor.bytes.len() / 2;
        let slot_mask = _mm512_set1_epi32(SLOT_MASK as i32);
        let low = _mm512_set1_epi32(LOW as i32);
        let field_mask = _mm512_set1_epi32(FIELD_MASK as i32);
        let entries = table.entries.as_ptr() as *const i32;
        // SAFETY (all loads and stores below): `states` has 64 lanes, read and written as
        // four vectors of 16; the gathers index tables of SLOTS entries with `x & SLOT_MASK`;
        // a group reads 16 words at `next`, and a row starts only while 64 words remain past
        // `next`, which moves at most 16 a group; each row writes its own 64 symbols of `out`.
        let mut x: [__m512i; GROUPS] = std::array::from_fn(|g| unsafe {
            _mm512_loadu_si512(states[16 * g..].as_ptr() as *const _)
        });
        let mut next = cursor.next;
        let lanes = 16 * GROUPS;
        let rows = out.len() / lanes;
        let mut row = 0;
        while row < rows && next + lanes <= words {
            for (g, x) in x.iter_mut().enumerate() {
                let slot = _mm512_and_si512(*x, slot_mask);
                let entry = unsafe { _mm512_i32gather_epi32::<4>(slot, entries) };
                let freq = _mm512_and_si512(entry, field_mask);
                let offset = _mm512_and_si512(_mm512_srli_epi32::<FIELD_BITS>(entry), field_mask);
                let symbol = _mm512_srli_epi32::<{ 2 * FIELD_BITS }>(entry);
                let scaled = _mm512_mullo_epi32(freq, _mm512_srli_epi32::<PRECISION>(*x));
                let decoded = _mm512_add_epi32(scaled, offset);
                let refill = _mm512_cmplt_epu32_mask(decoded, low);
                let ahead = unsafe {
                    _mm256_loadu_si256(cursor.bytes.as_ptr().add(2 * next) as *const __m256i)
                };
                let words = _mm512_cvtepu16_epi32(_mm256_maskz_expand_epi16(refill, ahead));
                let shifted = _mm512_or_si512(_mm512_slli_epi32::<16>(decoded), words);
                *x = _mm512_mask_mov_epi32(decoded, refill, shifted);
                next += refill.count_ones() as usize;
                let at = row * lanes + 16 * g;
                unsafe {
                    _mm256_storeu_si256(
                        out[at..at + 16].as_mut_ptr() as *mut __m256i,
                        _mm512_cvtepi32_epi16(symbol),
                    )
                };
            }
            row += 1;
        }
        for (g, x) in x.into_iter().enumerate() {
            unsafe { _mm512_storeu_si512(states[16 * g..].as_mut_ptr() as *mut _, x) };
        }
        cursor.next = next;
        row * lanes
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod vector {
    //! No vector decoder off x86-64: the scalar loop decodes everything.

    use super::{Cursor, Table, WIDE_LANES};

    /// Decodes nothing.
    pub fn decode(
        _table: &Table,
        _cursor: &mut Cursor<'_>,
        _lanes: usize,
        _states: &mut [u32; WIDE_LANES],
        _out: &mut [u16],
    ) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(words: &[u16]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// Skewed indices into a 4-symbol model.
    fn skewed(n: usize, seed: u32) -> Vec<u16> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                match state >> 21 {
                    s if s < 1000 => 0,
                    s if s < 1750 => 1,
                    s if s < 2047 => 2,
                    _ => 3,
                }
            })
            .collect()
    }

    const VALUES: [u16; 4] = [3, 17, 40, 1023];
    const FREQS: [u16; 4] = [1000, 750, 297, 1];

    #[test]
    fn round_trips_at_every_lane_count_and_length() {
        let table = Table::new(&VALUES, &FREQS).unwrap();
        for lanes in [1, 2, 5, 16, 32, 64] {
            for n in [0usize, 1, 2, 63, 64, 65, 1000, 64 * 300 + 7] {
                let indices = skewed(n, n as u32 + 1);
                let bytes = bytes_of(&encode(&indices, &FREQS, lanes));
                let mut out = vec![0u16; n];
                decode(&table, &bytes, lanes, &mut out).unwrap();
                let expected: Vec<u16> = indices.iter().map(|&i| VALUES[usize::from(i)]).collect();
                assert_eq!(out, expected, "{lanes} lanes, {n} symbols");
                // One symbol more or less, or another lane count, leaves the stream unfinished.
                if n > 0 {
                    let mut shorter = vec![0u16; n - 1];
                    assert!(decode(&table, &bytes, lanes, &mut shorter).is_err());
                }
                let mut longer = vec![0u16; n + 1];
                assert!(decode(&table, &bytes, lanes, &mut longer).is_err());
                if n > 1 && lanes > 1 {
                    assert!(decode(&table, &bytes, lanes - 1, &mut out).is_err());
                }
            }
        }
    }

    #[test]
    fn costs_close_to_the_entropy() {
        let n = 200_000;
        let indices = skewed(n, 5);
        let words = encode(&indices, &FREQS, WIDE_LANES);
        let entropy: f64 = indices
            .iter()
            .map(|&i| -(f64::from(FREQS[usize::from(i)]) / SLOTS as f64).log2())
            .sum();
        let bits = 16.0 * words.len() as f64;
        assert!(
            bits < entropy + 64.0 * 32.0 + 64.0,
            "{bits} bits, entropy {entropy}"
        );
    }

    #[test]
    fn the_vector_decoder_agrees_with_the_scalar_one() {
        // Damaged streams too: whatever the vector rows decode, the scalar loop must decode the
        // same, so the two are compared on every flip of a few bits.
        let table = Table::new(&VALUES, &FREQS).unwrap();
        let n = 64 * 200 + 13;
        for lanes in [16, 32, 64] {
            let bytes = bytes_of(&encode(&skewed(n, 9), &FREQS, lanes));
            for flip in std::iter::once(None).chain((0..bytes.len()).step_by(97).map(Some)) {
                let mut damaged = bytes.clone();
                if let Some(at) = flip {
                    damaged[at] ^= 0x24;
                }
                let scalar = scalar_decode(&table, &damaged, lanes, n);
                let mut out = vec![0u16; n];
                let result = decode(&table, &damaged, lanes, &mut out).map(|()| out);
                assert_eq!(result.ok(), scalar, "{lanes} lanes, flip at {flip:?}");
            }
        }
    }

    /// The format read by the scalar step alone.
    fn scalar_decode(table: &Table, bytes: &[u8], lanes: usize, n: usize) -> Option<Vec<u16>> {
        let word = |i: usize| u32::from(u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]));
        let mut states: Vec<u32> = (0..lanes)
            .map(|k| word(2 * k) | word(2 * k + 1) << 16)
            .collect();
        let mut cursor = Cursor {
            bytes,
            next: 2 * lanes,
        };
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            out.push(step(table, &mut states[i % lanes], &mut cursor).ok()?);
        }
        (states.iter().all(|&x| x == LOW) && cursor.next == bytes.len() / 2).then_some(out)
    }

    #[test]
    fn tables_refuse_frequencies_that_do_not_sum_to_the_precision() {
        assert!(Table::new(&[1, 2], &[1000, 1000]).is_err());
        assert!(Table::new(&[1, 2], &[2048, 0]).is_err());
        assert!(Table::new(&[1], &[2048]).is_err());
        assert!(Table::new(&[1, 1024], &[2000, 48]).is_err());
        assert!(Table::new(&[1, 1023], &[2000, 48]).is_ok());
    }
}
