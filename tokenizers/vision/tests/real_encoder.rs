//! Reducers on real vision-encoder outputs (ViT-S/14 layer 10 on three CBSD68 photos, see
//! `tests/common`): the properties each method is built for hold on real data.

mod common;

use terse_vision::{quality, visionzip};

#[test]
fn methods_show_their_intended_strengths_on_real_tokens() {
    for image in common::real_images() {
        let (t, a, k) = (
            image.tokens.view(),
            image.attention.view(),
            image.keys.view(),
        );
        for keep in [64, 32] {
            let contextual = (keep * 10 + 32) / 64;
            let top = terse_vision::fastervlm(t, a, keep).unwrap();
            let diverse = terse_vision::divprune(t, keep).unwrap();
            let zipped = visionzip(t, a, k, keep - contextual, contextual).unwrap();
            let (q_top, q_div, q_zip) = (
                quality(t, top.tokens.view(), &top.kept),
                quality(t, diverse.tokens.view(), &diverse.kept),
                quality(t, zipped.tokens.view(), &zipped.kept),
            );
            let name = &image.name;
            // DivPrune spreads its picks: farther apart and covering more than attention top-k.
            assert!(
                q_div.min_distance > q_top.min_distance,
                "{name} keep {keep}: {q_div:?} vs {q_top:?}"
            );
            assert!(
                q_div.reconstruction > q_top.reconstruction,
                "{name} keep {keep}: {q_div:?} vs {q_top:?}"
            );
            // VisionZip's contextual tokens stand for what the dominant ones leave out.
            assert!(
                q_zip.reconstruction > q_top.reconstruction,
                "{name} keep {keep}: {q_zip:?} vs {q_top:?}"
            );
            // Attention top-k keeps exactly the highest-attention patches.
            let mean: Vec<f32> = (0..256).map(|i| a.column(i).mean().unwrap()).collect();
            let lowest_kept = top
                .kept
                .iter()
                .map(|&i| mean[i])
                .fold(f32::INFINITY, f32::min);
            let highest_dropped = (0..256)
                .filter(|i| !top.kept.contains(i))
                .map(|i| mean[i])
                .fold(0f32, f32::max);
            assert!(lowest_kept >= highest_dropped, "{name}");
        }
    }
}

#[test]
fn keeping_everything_reconstructs_exactly() {
    let image = &common::real_images()[0];
    let all = terse_vision::uniform(image.tokens.view(), 256).unwrap();
    let q = quality(image.tokens.view(), all.tokens.view(), &all.kept);
    assert!((q.reconstruction - 1.0).abs() < 1e-5, "{q:?}");
}
