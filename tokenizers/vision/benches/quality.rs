//! Quality of every reducer on real ViT-S/14 outputs (three CBSD68 photos, 256 patch tokens):
//! reconstruction (mean best cosine to the output set, over all input tokens and over the
//! dropped or merged ones), diversity (mean pairwise cosine distance of the output) and the
//! smallest pairwise distance, at 64 and 32 tokens kept.
//!
//! Run: `cargo bench -p terse-vision --bench quality`

#[path = "../tests/common/mod.rs"]
mod common;

use terse_vision::{PruMergeBudget, Quality, Reduction, StreamParams, quality};

fn main() {
    let images = common::real_images();
    for keep in [64usize, 32] {
        println!(
            "keep {keep} of 256 tokens (ViT-S/14 layer 10, mean over {} images)",
            images.len()
        );
        println!(
            "  {:<14} {:>9} {:>9} {:>10} {:>13} {:>12}",
            "method", "all", "dropped", "diversity", "min distance", "tokens"
        );
        type Row<'a> = (&'a str, Vec<(Quality, usize)>);
        let mut rows: Vec<Row> = Vec::new();
        for image in &images {
            let (t, a, k) = (
                image.tokens.view(),
                image.attention.view(),
                image.keys.view(),
            );
            let contextual = (keep * 10 + 32) / 64;
            let importance: Vec<f64> = (0..256)
                .map(|i| a.column(i).iter().map(|&v| f64::from(v)).sum::<f64>() / 6.0)
                .collect();
            let results: Vec<(&str, Reduction)> = vec![
                ("uniform", terse_vision::uniform(t, keep).unwrap()),
                (
                    "avg_pool",
                    terse_vision::avg_pool(t, (keep as f64).sqrt() as usize).unwrap(),
                ),
                ("fastervlm", terse_vision::fastervlm(t, a, keep).unwrap()),
                (
                    "visionzip",
                    terse_vision::visionzip(t, a, k, keep - contextual, contextual).unwrap(),
                ),
                ("divprune", terse_vision::divprune(t, keep).unwrap()),
                (
                    "prumerge",
                    terse_vision::prumerge(
                        t,
                        a,
                        k,
                        PruMergeBudget::Ratio(keep as f64 / 256.0),
                        false,
                        32,
                    )
                    .unwrap()
                    .0,
                ),
                (
                    "prumerge+ adp",
                    terse_vision::prumerge(t, a, k, PruMergeBudget::Adaptive, true, 32)
                        .unwrap()
                        .0,
                ),
                (
                    "tome",
                    terse_vision::tome(t, k, 256 - keep.max(128), 0, None).unwrap(),
                ),
                (
                    "idpruner",
                    terse_vision::idpruner(t, &importance, keep, 0.5).unwrap(),
                ),
                (
                    "stc (1 frame)",
                    terse_vision::stream_reduce(
                        &[t],
                        StreamParams {
                            keep,
                            ..StreamParams::default()
                        },
                    )
                    .unwrap()
                    .remove(0)
                    .reduction,
                ),
            ];
            for (name, r) in results {
                let q = quality(t, r.tokens.view(), &r.kept);
                match rows.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, v)) => v.push((q, r.len())),
                    None => rows.push((name, vec![(q, r.len())])),
                }
            }
        }
        for (name, values) in rows {
            let n = values.len() as f64;
            let mean = |f: fn(&Quality) -> f64| values.iter().map(|(q, _)| f(q)).sum::<f64>() / n;
            let counts: Vec<String> = values.iter().map(|v| v.1.to_string()).collect();
            println!(
                "  {name:<14} {:>9.4} {:>9.4} {:>10.4} {:>13.4} {:>12}",
                mean(|q| q.reconstruction),
                mean(|q| q.dropped_reconstruction),
                mean(|q| q.diversity),
                mean(|q| q.min_distance),
                counts.join("/")
            );
        }
    }
}
