//! Any byte string given to the container parser returns Ok or Err, never panics; what parses
//! re-serializes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terse_entropy::Container;

fuzz_target!(|data: &[u8]| {
    if let Ok(container) = Container::parse(data) {
        assert_eq!(container.to_bytes().unwrap(), data);
    }
});
