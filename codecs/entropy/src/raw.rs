//! Raw (equiprobable) bits inside an entropy-coded stream: the payload of escapes.

use constriction::stream::model::UniformModel;

/// Raw bits are coded in chunks of this many bits.
pub const RAW_CHUNK_BITS: u32 = 16;

/// Raw bits closing every entropy-coded section (container format 2): a decoder that reads a
/// different number of symbols than were coded (a count raised or lowered in a header, with
/// the checksums recomputed) does not find them where they belong. The range coder's seal is
/// [`RANGE_SEAL_BITS`] wide; ANS streams, which show exhaustion exactly, carry
/// [`RAW_CHUNK_BITS`] of [`ANS_SEAL`].
pub const RANGE_SEAL: u64 = 0x7e5e_5ea1;
/// Width of [`RANGE_SEAL`].
pub const RANGE_SEAL_BITS: u32 = 32;
/// The seal of an ANS stream (one raw chunk).
pub const ANS_SEAL: usize = 0x5ea1;

/// Uniform model over `0..2^bits` (bits ≤ 16).
pub fn chunk_model(bits: u32) -> UniformModel<u32, 24> {
    debug_assert!((1..=RAW_CHUNK_BITS).contains(&bits));
    UniformModel::new(1usize << bits)
}

/// Uniform model over bit lengths `0..=64`.
pub fn length_model() -> UniformModel<u32, 24> {
    UniformModel::new(65)
}

/// Splits the low `bits` bits of `value` into chunks, least significant first:
/// (chunk value, chunk width).
pub fn chunks(value: u64, bits: u32) -> impl Iterator<Item = (usize, u32)> {
    (0..bits.div_ceil(RAW_CHUNK_BITS)).map(move |i| {
        let shift = i * RAW_CHUNK_BITS;
        let width = (bits - shift).min(RAW_CHUNK_BITS);
        (((value >> shift) & ((1u64 << width) - 1)) as usize, width)
    })
}

/// Number of significant bits of `value` (0 for 0).
pub fn bit_length(value: u64) -> u32 {
    64 - value.leading_zeros()
}
