//! One attribute stream: a model whose one constructor serves the encoder and the decoder,
//! and the loops that write and read a sealed stream of it.

use terse_entropy::{AdaptiveDecoder, AdaptiveEncoder, Container};

use crate::error::{Result, SplatError};

/// Buckets of a value range used as contexts.
pub(super) const BUCKETS: usize = 16;

/// The context bucket of `v` in `range`.
pub(super) fn bucket(v: i64, range: [i64; 2]) -> usize {
    let span = (range[1] - range[0]) as i128 + 1;
    (((v.clamp(range[0], range[1]) - range[0]) as i128 * BUCKETS as i128 / span) as usize)
        .min(BUCKETS - 1)
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
