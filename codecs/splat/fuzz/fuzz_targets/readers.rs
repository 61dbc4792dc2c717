//! Arbitrary bytes given to the PLY, SPZ and terse-bitstream readers return Ok or Err, never
//! panic, and never allocate for more splats than the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terse_splat::{codec, ply, spz};

const LIMIT: u64 = 100_000;

fuzz_target!(|data: &[u8]| {
    let _ = ply::read_ply(data, LIMIT);
    let _ = spz::read_spz(data, LIMIT);
    let _ = codec::decode(data, LIMIT);
    let _ = codec::inspect(data);
});
