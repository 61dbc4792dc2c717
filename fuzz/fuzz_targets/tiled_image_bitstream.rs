//! libFuzzer entry: see terse_fuzz_targets::TARGETS.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    terse_fuzz_targets::tiled_image_bitstream(data);
});
