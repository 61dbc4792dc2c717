//! Coefficients against PyWavelets (`reference/make_fixture.py`) and perfect reconstruction.

use ndarray::{Array2, Array3};
use proptest::prelude::*;
use serde::Deserialize;
use terse_wavelet::{bior44, dwt, idwt, wpt1d, wpt1d_inverse, wpt2d, wpt2d_inverse};

#[derive(Deserialize)]
struct Fixture {
    image: Vec<Vec<Vec<f32>>>,
    signal: Vec<Vec<f32>>,
    dwt: Dwt,
    wpt2d_1: Vec<Vec<Vec<f64>>>,
    wpt2d_2: Vec<Vec<Vec<f64>>>,
    wpt2d_3: Vec<Vec<Vec<f64>>>,
    wpt1d_1: Vec<Vec<f64>>,
    wpt1d_3: Vec<Vec<f64>>,
    wpt1d_5: Vec<Vec<f64>>,
}

#[derive(Deserialize)]
struct Dwt {
    a: Vec<f64>,
    d: Vec<f64>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("fixtures/pywt.json")).unwrap()
}

fn worst(a: impl Iterator<Item = f32>, b: impl Iterator<Item = f64>) -> f64 {
    a.zip(b)
        .map(|(x, y)| (f64::from(x) - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn matches_pywavelets() {
    let f = fixture();
    let w = bior44();
    let (a, d) = dwt(&w, &f.signal[0]).unwrap();
    assert!(worst(a.into_iter(), f.dwt.a.iter().copied()) < 1e-5);
    assert!(worst(d.into_iter(), f.dwt.d.iter().copied()) < 1e-5);

    let (c, h, wd) = (f.image.len(), f.image[0].len(), f.image[0][0].len());
    let image = Array3::from_shape_vec((c, h, wd), f.image.concat().concat()).unwrap();
    for (levels, expected) in [(1, &f.wpt2d_1), (2, &f.wpt2d_2), (3, &f.wpt2d_3)] {
        let bands = wpt2d(&w, image.view(), levels).unwrap();
        assert_eq!(bands.dim().0, expected.len(), "levels {levels}");
        let e = worst(
            bands.iter().copied(),
            expected.iter().flatten().flatten().copied(),
        );
        assert!(e < 1e-4, "2-D levels {levels}: max error {e}");
    }
    let signal =
        Array2::from_shape_vec((f.signal.len(), f.signal[0].len()), f.signal.concat()).unwrap();
    for (levels, expected) in [(1, &f.wpt1d_1), (3, &f.wpt1d_3), (5, &f.wpt1d_5)] {
        let bands = wpt1d(&w, signal.view(), levels).unwrap();
        let e = worst(bands.iter().copied(), expected.iter().flatten().copied());
        assert!(e < 1e-4, "1-D levels {levels}: max error {e}");
    }
}

#[test]
fn shapes_that_do_not_divide_are_refused() {
    let w = bior44();
    assert!(
        wpt2d(&w, Array3::<f32>::zeros((3, 12, 16)).view(), 3)
            .unwrap_err()
            .to_string()
            .contains("height length 12")
    );
    assert!(wpt1d(&w, Array2::<f32>::zeros((1, 100)).view(), 3).is_err());
    assert!(dwt(&w, &[1.0, 2.0, 3.0]).is_err());
    assert!(idwt(&w, &[1.0], &[1.0, 2.0]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn perfect_reconstruction_2d(levels in 1u32..=3, hb in 1usize..4, wb in 1usize..4, seed in any::<u64>()) {
        let (h, wd) = (hb << levels, wb << levels);
        let mut state = seed | 1;
        let image = Array3::from_shape_fn((2, h, wd), |_| {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            (state % 2001) as f32 / 1000.0 - 1.0
        });
        let w = bior44();
        let back = wpt2d_inverse(&w, wpt2d(&w, image.view(), levels).unwrap().view(), levels).unwrap();
        let e = image.iter().zip(back.iter()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        prop_assert!(e < 1e-4, "max error {}", e);
    }

    #[test]
    fn perfect_reconstruction_1d(levels in 1u32..=8, blocks in 1usize..4, seed in any::<u64>()) {
        let n = blocks << levels;
        let mut state = seed | 1;
        let signal = Array2::from_shape_fn((2, n), |_| {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            (state % 2001) as f32 / 1000.0 - 1.0
        });
        let w = bior44();
        let back = wpt1d_inverse(&w, wpt1d(&w, signal.view(), levels).unwrap().view(), levels).unwrap();
        let e = signal.iter().zip(back.iter()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        prop_assert!(e < 1e-4, "max error {}", e);
    }
}
