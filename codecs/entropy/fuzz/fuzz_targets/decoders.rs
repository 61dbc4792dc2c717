//! Arbitrary coded streams fed to the ANS table decoder and the adaptive range decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terse_entropy::{AdaptiveDecoder, AdaptiveIntegers, IndexedCdfTable};

fuzz_target!(|data: &[u8]| {
    let table = IndexedCdfTable::from_pmfs(&[vec![0.25, 0.5, 0.25], vec![0.9, 0.1]], &[1e-3, 1e-2], &[-1, 0])
        .expect("valid table");
    let indexes: Vec<u32> = (0..128).map(|i| i % 2).collect();
    let _ = table.decode_with_indexes(data, &indexes);
    if let Ok(mut dec) = AdaptiveDecoder::new(data) {
        let mut model = AdaptiveIntegers::new(-100, 100, 2).expect("valid model");
        for i in 0..256 {
            if model.decode(&mut dec, i % 2).is_err() {
                break;
            }
        }
    }
});
