//! One attribute stream: a model whose one constructor serves the encoder and the decoder,
//! and the loops that write and read a sealed stream of it.

use terse_entropy::{AdaptiveDecoder, AdaptiveEncoder, Container};

use crate::error::{Result, SplatError};

/// Buckets of a value range used as contexts.
pub(super) const BUCKETS: usize = 16;

/// Which of `N` equal parts of `0..span` an offset falls in: `floor(offset · N / span)`,
/// capped at `N − 1`. Found by comparing with each part's first offset (computed once), not
/// by a division per value: contexts are computed for every coded value.
#[derive(Debug, Clone, Copy)]
pub(super) struct EqualParts<const N: usize> {
    /// `starts[b] = ceil(b · span / N)`: the first offset of part `b` (`starts[0]` is 0).
    starts: [u64; N],
}

impl<const N: usize> EqualParts<N> {
    /// The parts of `0..span`, `1 <= span <= 2^64`.
    pub fn new(span: u128) -> Self {
        let span = span.clamp(1, 1 << 64);
        // b · span < N · 2^64 and each start is below 2^64 for b < N.
        Self {
            starts: std::array::from_fn(|b| (b as u128 * span).div_ceil(N as u128) as u64),
        }
    }

    /// The part `offset` falls in.
    #[inline]
    pub fn of(&self, offset: u64) -> usize {
        self.starts[1..]
            .iter()
            .filter(|&&start| offset >= start)
            .count()
    }
}

/// The `BUCKETS` equal context buckets of a value range.
#[derive(Debug, Clone, Copy)]
pub(super) struct Buckets {
    range: [i64; 2],
    parts: EqualParts<BUCKETS>,
}

impl Buckets {
    /// The buckets of `range` (`range[0] <= range[1]`).
    pub fn new(range: [i64; 2]) -> Self {
        let span = (i128::from(range[1]) - i128::from(range[0]) + 1).max(1) as u128;
        Self {
            range,
            parts: EqualParts::new(span),
        }
    }

    /// The bucket of `v`, clamped into the range.
    #[inline]
    pub fn of(&self, v: i64) -> usize {
        let [lo, hi] = self.range;
        self.parts.of(v.clamp(lo, hi.max(lo)).abs_diff(lo))
    }
}

/// The smallest range holding every value (and 0).
pub(super) fn range_of(values: impl Iterator<Item = i64>) -> [i64; 2] {
    values.fold([0, 0], |[lo, hi], v| [lo.min(v), hi.max(v)])
}

/// A malformed-bitstream error.
pub(super) fn corrupt(message: impl Into<String>) -> SplatError {
    SplatError::Malformed(message.into())
}

/// The adaptive model of one stream: it codes values in order and keeps the context state
/// both sides update identically.
pub(super) trait Section {
    /// One coded item.
    type Value;
    /// Codes `value`.
    fn encode(&mut self, enc: &mut AdaptiveEncoder, value: Self::Value) -> Result<()>;
    /// Reads the next value, refusing one out of its range.
    fn decode(&mut self, dec: &mut AdaptiveDecoder) -> Result<Self::Value>;
}

/// A per-splat attribute stream whose model the container header describes: what the
/// decoder reads back as splat attributes.
pub(super) trait Attribute: Section + Sized {
    /// Tag of its section.
    const TAG: [u8; 4];
    /// The attribute of one splat.
    type Output;
    /// The model as the header describes it.
    fn from_header(container: &Container) -> Result<Self>;
    /// The attribute a coded value stands for.
    fn dequantize(&self, value: Self::Value) -> Self::Output;
}

/// The attribute `A` of `count` splats, from its section of `container`.
pub(super) fn read_attribute<A: Attribute>(
    container: &Container,
    count: usize,
) -> Result<Vec<A::Output>> {
    let mut model = A::from_header(container)?;
    let values = read(&mut model, container.section(A::TAG)?, count)?;
    Ok(values.into_iter().map(|q| model.dequantize(q)).collect())
}

/// Codes `values` into a sealed stream (stops first if the call was interrupted).
pub(super) fn write<S: Section>(
    section: &mut S,
    values: impl IntoIterator<Item = S::Value>,
) -> Result<Vec<u8>> {
    terse_entropy::interrupt::check()?;
    let mut enc = AdaptiveEncoder::new();
    for value in values {
        section.encode(&mut enc, value)?;
    }
    Ok(enc.seal()?)
}

/// Values a raw-bits trial codes: the head of a longer stream stands for all of it.
const TRIAL_VALUES: usize = 1 << 16;

/// Most raw low bits a stream's header may ask for.
pub(super) const MAX_RAW_BITS: u64 = 16;

/// Codes `values` with the model `make(raw_bits)` for the `raw_bits` among `candidates` that
/// gives the smallest stream (measured on the first [`TRIAL_VALUES`] values when there are
/// more) and returns that model (which writes its `raw_bits` to the header) and the stream.
/// Low bits coded raw shrink a model's alphabet, which pays where a wide, smooth distribution
/// has few samples to learn from.
pub(super) fn write_smallest<S: Section>(
    make: impl Fn(u32) -> Result<S>,
    candidates: std::ops::RangeInclusive<u32>,
    values: &[S::Value],
) -> Result<(S, Vec<u8>)>
where
    S::Value: Clone,
{
    let trial = &values[..values.len().min(TRIAL_VALUES)];
    let mut best: Option<(Vec<u8>, u32)> = None;
    for raw_bits in candidates.clone() {
        let bytes = write(&mut make(raw_bits)?, trial.iter().cloned())?;
        if best
            .as_ref()
            .is_none_or(|(smallest, _)| bytes.len() < smallest.len())
        {
            best = Some((bytes, raw_bits));
        }
    }
    let raw_bits = best.as_ref().map_or(*candidates.start(), |(_, b)| *b);
    // A trial over every value is already the stream.
    let bytes = match best {
        Some((bytes, _)) if trial.len() == values.len() => bytes,
        _ => write(&mut make(raw_bits)?, values.iter().cloned())?,
    };
    Ok((make(raw_bits)?, bytes))
}

/// Reads `count` values from a sealed stream, refusing one that holds more or fewer.
pub(super) fn read<S: Section>(
    section: &mut S,
    bytes: &[u8],
    count: usize,
) -> Result<Vec<S::Value>> {
    terse_entropy::interrupt::check()?;
    let mut dec = AdaptiveDecoder::new(bytes)?;
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        values.push(section.decode(&mut dec)?);
    }
    dec.close()?;
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition the parts replace: `floor(offset · N / span)`, capped at `N − 1`.
    fn divided(offset: u64, span: u128, n: usize) -> usize {
        ((u128::from(offset) * n as u128 / span) as usize).min(n - 1)
    }

    #[test]
    fn equal_parts_equal_the_division() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for span in [
            1u128,
            2,
            7,
            15,
            16,
            17,
            255,
            1 << 20,
            (1 << 30) * 3,
            1 << 64,
        ] {
            let parts = EqualParts::<16>::new(span);
            let rings = EqualParts::<8>::new(span);
            let last = (span - 1).min(u128::from(u64::MAX)) as u64;
            let offsets = (0..2000u64)
                .chain([last, last.saturating_add(1), u64::MAX])
                .chain((0..2000).map(|_| next() % last.max(1)));
            for offset in offsets {
                assert_eq!(
                    parts.of(offset),
                    divided(offset, span, 16),
                    "{offset} of {span}"
                );
                assert_eq!(
                    rings.of(offset),
                    divided(offset, span, 8),
                    "{offset} of {span}"
                );
            }
        }
        let buckets = Buckets::new([-40, 100]);
        for v in -100..200 {
            let offset = (v.clamp(-40, 100) + 40) as u64;
            assert_eq!(buckets.of(v), divided(offset, 141, 16), "{v}");
        }
    }
}
