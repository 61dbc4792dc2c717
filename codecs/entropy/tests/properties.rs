//! Property tests: every model round-trips random symbols exactly, and malformed input of any
//! shape gives an error, never a panic.

use proptest::prelude::*;
use terse_entropy::{
    AdaptiveDecoder, AdaptiveEncoder, AdaptiveIntegers, CodecId, Container, FactorizedPrior,
    Family, IndexedCdfTable, ScaleConditional,
};

fn pmf_rows() -> impl Strategy<Value = (Vec<Vec<f64>>, Vec<i32>)> {
    prop::collection::vec(
        (prop::collection::vec(0.0f64..1.0, 1..40), -50i32..50),
        1..6,
    )
    .prop_map(|rows| rows.into_iter().unzip())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn tables_round_trip_any_symbols((pmfs, offsets) in pmf_rows(),
                                     picks in prop::collection::vec((any::<u32>(), -200i32..200), 0..400),
                                     wild in prop::collection::vec(any::<i32>(), 0..8)) {
        let tails = vec![1e-4; pmfs.len()];
        let table = IndexedCdfTable::from_pmfs(&pmfs, &tails, &offsets).unwrap();
        let mut indexes: Vec<u32> = picks.iter().map(|(i, _)| i % pmfs.len() as u32).collect();
        let mut symbols: Vec<i32> = picks.iter().map(|(_, s)| *s).collect();
        indexes.extend(wild.iter().map(|_| 0));
        symbols.extend(&wild);
        let bytes = table.encode_with_indexes(&symbols, &indexes).unwrap();
        prop_assert_eq!(table.decode_with_indexes(&bytes, &indexes).unwrap(), symbols);
        // Counts that do not match the data (a tampered header) miss the seal.
        let mut more = indexes.clone();
        more.push(0);
        prop_assert!(table.decode_with_indexes(&bytes, &more).is_err());
        if !indexes.is_empty() {
            prop_assert!(table.decode_with_indexes(&bytes, &indexes[1..]).is_err());
        }
    }

    #[test]
    fn factorized_prior_round_trips_quantized_latents(medians in prop::collection::vec(-3.0f32..3.0, 1..5),
                                                      seed in prop::collection::vec(-20.0f32..20.0, 1..50)) {
        let channels = medians.len();
        let rows = vec![vec![0.05, 0.2, 0.5, 0.2, 0.05]; channels];
        let table = IndexedCdfTable::from_pmfs(&rows, &vec![1e-3; channels], &vec![-2; channels]).unwrap();
        let prior = FactorizedPrior::new(table, medians.clone()).unwrap();
        let plane = seed.len();
        let latent: Vec<f32> = (0..channels).flat_map(|_| seed.iter().copied()).collect();
        let bytes = prior.compress(&latent, plane).unwrap();
        let decoded = prior.decompress(&bytes, latent.len(), plane).unwrap();
        let symbols = prior.quantize(&latent, plane).unwrap();
        for (i, (&d, &s)) in decoded.iter().zip(&symbols).enumerate() {
            prop_assert_eq!(d, s as f32 + medians[(i / plane) % channels]);
        }
    }

    #[test]
    fn conditional_round_trips(values in prop::collection::vec((-3000i32..3000, 0.0f32..400.0), 0..300),
                               laplace in any::<bool>()) {
        let family = if laplace { Family::Laplace } else { Family::Gaussian };
        let model = ScaleConditional::new(family);
        let symbols: Vec<i32> = values.iter().map(|v| v.0).collect();
        let scales: Vec<f32> = values.iter().map(|v| v.1).collect();
        let indexes = model.build_indexes(&scales);
        let bytes = model.encode_symbols(&symbols, &indexes).unwrap();
        prop_assert_eq!(model.decode_symbols(&bytes, &indexes).unwrap(), symbols);
    }

    #[test]
    fn adaptive_integers_round_trip(lo in -1000i64..1000, width in 0i64..100_000,
                                    values in prop::collection::vec((any::<i64>(), 0usize..3, any::<bool>()), 0..500)) {
        let hi = lo + width;
        let values: Vec<(i64, usize)> = values
            .into_iter()
            .map(|(v, ctx, inside)| (if inside { lo + v.rem_euclid(width + 1) } else { v }, ctx))
            .collect();
        let mut model = AdaptiveIntegers::new(lo, hi, 3).unwrap();
        let mut enc = AdaptiveEncoder::new();
        for &(v, ctx) in &values {
            model.encode(&mut enc, ctx, v).unwrap();
        }
        let bytes = enc.seal().unwrap();
        let mut model = AdaptiveIntegers::new(lo, hi, 3).unwrap();
        let mut dec = AdaptiveDecoder::new(&bytes).unwrap();
        for &(v, ctx) in &values {
            prop_assert_eq!(model.decode(&mut dec, ctx).unwrap(), v);
        }
        prop_assert!(dec.close().is_ok());
        // A count raised by one (as in a tampered header) reads past the data: the seal is missed.
        let mut model = AdaptiveIntegers::new(lo, hi, 3).unwrap();
        let mut dec = AdaptiveDecoder::new(&bytes).unwrap();
        for &(_, ctx) in &values {
            model.decode(&mut dec, ctx).unwrap();
        }
        let _ = model.decode(&mut dec, 0);
        prop_assert!(dec.close().is_err());
        // A count lowered by one stops before the data ends.
        if let Some((_, rest)) = values.split_last() {
            let mut model = AdaptiveIntegers::new(lo, hi, 3).unwrap();
            let mut dec = AdaptiveDecoder::new(&bytes).unwrap();
            for &(_, ctx) in rest {
                model.decode(&mut dec, ctx).unwrap();
            }
            prop_assert!(dec.close().is_err());
        }
    }

    #[test]
    fn random_bytes_never_panic_decoders(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Container::parse(&bytes);
        let table = IndexedCdfTable::from_pmfs(&[vec![0.5, 0.5]], &[1e-3], &[0]).unwrap();
        let _ = table.decode_with_indexes(&bytes, &[0; 64]);
        if let Ok(mut dec) = AdaptiveDecoder::new(&bytes) {
            let mut model = AdaptiveIntegers::new(-5, 5, 1).unwrap();
            for _ in 0..64 {
                if model.decode(&mut dec, 0).is_err() { break; }
            }
        }
    }

    #[test]
    fn corrupted_containers_are_rejected(payload in prop::collection::vec(any::<u8>(), 1..200),
                                         position in any::<prop::sample::Index>(),
                                         flip in 1u8..=255) {
        let mut c = Container::new(CodecId::Test);
        c.put_u64("n", payload.len() as u64);
        c.push_section(*b"DATA", payload);
        let mut bytes = c.to_bytes().unwrap();
        let i = position.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert!(Container::parse(&bytes).is_err());
        let cut = position.index(bytes.len());
        prop_assert!(Container::parse(&c.to_bytes().unwrap()[..cut]).is_err());
    }
}
