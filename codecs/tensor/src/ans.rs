//! Table-driven decoding of the ANS streams `constriction`'s `SmallAnsCoder` writes.
//!
//! Encoding goes through `constriction`. Decoding is the hot path of a weight load, and the
//! generic coder (a trait call, a `Result` and a bounds-checked pop per symbol) ran at a third
//! of the speed a reader needs, so this module reads the same format with one 4096-entry table
//! that maps a state's low bits straight to the symbol, its frequency and the state offset,
//! and steps [`LANES`] independent streams in lockstep so their dependency chains overlap.
//! `tests::decodes_what_constriction_encodes` pins the two to each other.
//!
//! The format: each stream is a sequence of `u16` words, read from the end; its initial state
//! is the last word (nonzero) shifted up over the one before it; a step maps the state `x` to
//! `freq · (x >> PRECISION) + (x mod 2^PRECISION) − cum` and refills 16 bits while `x < 2^16`
//! and words remain. A stream that decoded exactly its symbols ends with state 0 and no words.

use crate::error::{Result, malformed};

/// Fixed-point precision of the symbol model: a table of `1 << PRECISION` slots.
pub const PRECISION: u32 = 12;
/// Streams decoded in lockstep.
pub const LANES: usize = 4;
const SLOTS: usize = 1 << PRECISION;
const SLOT_MASK: u32 = (SLOTS - 1) as u32;

/// What one slot of the decoding table resolves to.
#[derive(Clone, Copy, Default)]
#[repr(C, align(8))]
struct Slot {
    /// The decoded symbol's value.
    symbol: u16,
    /// Its quantized frequency.
    freq: u16,
    /// The slot's distance from the symbol's first slot.
    offset: u16,
}

/// The decoding table of one model.
pub struct Table {
    slots: Box<[Slot]>,
}

impl Table {
    /// Builds the table of symbols `values` with frequencies `freqs`; the frequencies must be
    /// nonzero and sum to `1 << PRECISION`.
    pub fn new(values: &[u16], freqs: &[u16]) -> Result<Self> {
        let total: u32 = freqs.iter().map(|&f| u32::from(f)).sum();
        if values.len() != freqs.len() || freqs.contains(&0) || total != SLOTS as u32 {
            return Err(malformed("chunk: frequencies do not form a model"));
        }
        let mut slots = vec![Slot::default(); SLOTS].into_boxed_slice();
        let mut start = 0usize;
        for (&symbol, &freq) in values.iter().zip(freqs) {
            for (offset, slot) in slots[start..start + usize::from(freq)]
                .iter_mut()
                .enumerate()
            {
                *slot = Slot {
                    symbol,
                    freq,
                    offset: offset as u16,
                };
            }
            start += usize::from(freq);
        }
        Ok(Self { slots })
    }
}

/// One stream's decoder state.
struct Lane {
    /// A zero word, then the stream's words: `padded[i + 1]` is word `i`.
    padded: Vec<u16>,
    /// Words not yet read: words `..left`, so the next one is `padded[left]`.
    left: usize,
    state: u32,
}

impl Lane {
    /// A decoder of the little-endian words in `bytes` (an even count).
    fn new(bytes: &[u8]) -> Result<Self> {
        let mut padded = Vec::with_capacity(bytes.len() / 2 + 1);
        padded.push(0);
        padded.extend(
            bytes
                .chunks_exact(2)
                .map(|pair| u16::from_le_bytes([pair[0], pair[1]])),
        );
        let mut left = padded.len() - 1;
        let mut state = 0u32;
        if left > 0 {
            state = u32::from(padded[left]);
            left -= 1;
            if state == 0 {
                return Err(malformed(
                    "chunk: ANS stream does not end in a nonzero word",
                ));
            }
            if left > 0 {
                state = (state << 16) | u32::from(padded[left]);
                left -= 1;
            }
        }
        Ok(Self {
            padded,
            left,
            state,
        })
    }

    /// Decodes one symbol. The refill is computed without a branch (a mispredicted one every
    /// few symbols cost more than the table lookup); the zero word in front keeps the read in
    /// bounds when no words are left. `WORDS_LEFT`: the caller knows a word is left (a step
    /// reads at most one), so the check is skipped.
    #[inline(always)]
    fn step<const WORDS_LEFT: bool>(&mut self, table: &[Slot; SLOTS]) -> u16 {
        let slot = table[(self.state & SLOT_MASK) as usize];
        // freq ≤ 2^12 and state >> 12 < 2^20, so this stays below 2^32.
        let state = u32::from(slot.freq) * (self.state >> PRECISION) + u32::from(slot.offset);
        let refill = u32::from(state < 1 << 16) & u32::from(WORDS_LEFT || self.left > 0);
        let word = u32::from(self.padded[self.left]) * refill;
        self.state = (state << (16 * refill)) | word;
        self.left -= refill as usize;
        slot.symbol
    }

    fn finished(&self) -> bool {
        self.state == 0 && self.left == 0
    }
}

/// Decodes `out.len()` symbols: [`LANES`] streams of little-endian words, stream `k` filling the `k`-th of the
/// contiguous parts [`lane_ranges`] cuts. Every stream must end exactly after its symbols.
pub fn decode(table: &Table, streams: [&[u8]; LANES], out: &mut [u16]) -> Result<()> {
    let table: &[Slot; SLOTS] = (&*table.slots).try_into().expect("SLOTS entries");
    let [a, b, c, d] = streams;
    let mut lanes = [Lane::new(a)?, Lane::new(b)?, Lane::new(c)?, Lane::new(d)?];
    let ranges: Vec<_> = lane_ranges(out.len()).collect();
    let shortest = ranges.iter().map(|r| r.len()).min().unwrap_or(0);
    {
        // Four lanes by hand: each keeps its state, position and words in registers (eight
        // lanes spill on x86-64 and ran slower).
        let (a, rest) = out.split_at_mut(ranges[1].start);
        let (b, rest) = rest.split_at_mut(ranges[2].start - ranges[1].start);
        let (c, d) = rest.split_at_mut(ranges[3].start - ranges[2].start);
        let mut done = 0;
        while done < shortest {
            // While every lane has `words` words left, `words` steps need no check.
            let words = lanes.iter().map(|l| l.left).min().unwrap_or(0);
            let block = words.clamp(1, shortest - done);
            let [la, lb, lc, ld] = &mut lanes;
            let lockstep = a[done..done + block]
                .iter_mut()
                .zip(&mut b[done..done + block])
                .zip(&mut c[done..done + block])
                .zip(&mut d[done..done + block]);
            if words > 0 {
                for (((a, b), c), d) in lockstep {
                    *a = la.step::<true>(table);
                    *b = lb.step::<true>(table);
                    *c = lc.step::<true>(table);
                    *d = ld.step::<true>(table);
                }
            } else {
                for (((a, b), c), d) in lockstep {
                    *a = la.step::<false>(table);
                    *b = lb.step::<false>(table);
                    *c = lc.step::<false>(table);
                    *d = ld.step::<false>(table);
                }
            }
            done += block;
        }
    }
    for (lane, range) in lanes.iter_mut().zip(&ranges) {
        for symbol in &mut out[range.start + shortest..range.end] {
            *symbol = lane.step::<false>(table);
        }
        if !lane.finished() {
            return Err(malformed(
                "chunk: ANS data left after the last symbol (the element count does not match)",
            ));
        }
    }
    Ok(())
}

/// The symbols each of the [`LANES`] streams codes: contiguous parts, the first ones a
/// symbol longer where the count does not divide.
pub fn lane_ranges(n: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let (base, extra) = (n / LANES, n % LANES);
    (0..LANES).map(move |k| {
        let start = k * base + k.min(extra);
        start..start + base + usize::from(k < extra)
    })
}

#[cfg(test)]
mod tests {
    use constriction::stream::{model::ContiguousCategoricalEntropyModel, stack::SmallAnsCoder};

    use super::*;

    #[test]
    fn decodes_what_constriction_encodes() {
        let values = [3u16, 17, 40, 300];
        let freqs = [2000u16, 1500, 595, 1];
        let model = ContiguousCategoricalEntropyModel::<u16, Vec<u16>, 12>::from_nonzero_fixed_point_probabilities(
            freqs, false,
        )
        .unwrap();
        let mut seed = 9u32;
        for n in [0usize, 1, 2, 5, 1000, 4099] {
            let indices: Vec<usize> = (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    match seed >> 20 {
                        s if s < 2000 => 0,
                        s if s < 3500 => 1,
                        s if s < 4095 => 2,
                        _ => 3,
                    }
                })
                .collect();
            let words: Vec<Vec<u8>> = lane_ranges(n)
                .map(|range| {
                    let mut coder = SmallAnsCoder::new();
                    coder
                        .encode_iid_symbols_reverse(indices[range].iter().copied(), &model)
                        .unwrap();
                    let words = coder.into_compressed().unwrap();
                    words.iter().flat_map(|w| w.to_le_bytes()).collect()
                })
                .collect();
            let streams = [&words[0][..], &words[1][..], &words[2][..], &words[3][..]];
            let table = Table::new(&values, &freqs).unwrap();
            let mut out = vec![0u16; n];
            decode(&table, streams, &mut out).unwrap();
            let expected: Vec<u16> = indices.iter().map(|&i| values[i]).collect();
            assert_eq!(out, expected, "{n} symbols");
            if n > 8 {
                // Each lane one symbol short leaves state behind. (One too many can pass: a
                // lane at state 0 decodes the first symbol and stays at 0, which is why the
                // container's CRCs and counts, not this check, guard a chunk's length.)
                let mut shorter = vec![0u16; n - LANES];
                assert!(decode(&table, streams, &mut shorter).is_err());
            }
        }
    }

    #[test]
    fn tables_refuse_frequencies_that_do_not_sum_to_the_precision() {
        assert!(Table::new(&[1, 2], &[2000, 2000]).is_err());
        assert!(Table::new(&[1, 2], &[4096, 0]).is_err());
        assert!(Table::new(&[1], &[4096, 0]).is_err());
        assert!(Table::new(&[1, 2], &[4000, 96]).is_ok());
    }
}
