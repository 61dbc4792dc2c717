//! `compress.vision.v1.VisionService` on the real `terse` binary: every method over the wire
//! gives what the library (checked against the NumPy reference) gives; FP16 and batches; frame
//! streams; precise errors.

use ndarray::Array2;
use terse_e2e::{Server, assert_status};
use terse_proto::{
    common::v1::{DataType, Tensor},
    vision::v1::{
        Keep, MethodParams, PruneFramesRequest, PruneMethod, PruneTokensRequest, keep::Budget,
        vision_service_client::VisionServiceClient,
    },
};
use terse_vision::{PruMergeBudget, StreamParams};
use tonic::{Code, transport::Channel};

/// Deterministic structured tokens: clusters plus noise, attention peaked on a few tokens.
fn scene(seed: u64, n: usize, d: usize, heads: usize) -> (Array2<f32>, Array2<f32>) {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let centres: Vec<Vec<f64>> = (0..5)
        .map(|_| (0..d).map(|_| 2.0 * next()).collect())
        .collect();
    let tokens = Array2::from_shape_fn((n, d), |(i, j)| (centres[i % 5][j] + 0.3 * next()) as f32);
    let logits = Array2::from_shape_fn((heads, n), |(_, i)| {
        next() + if i % 11 == 0 { 3.0 } else { 0.0 }
    });
    let mut attention = logits.mapv(f64::exp);
    for mut row in attention.rows_mut() {
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    (tokens, attention.mapv(|v| v as f32))
}

fn tensor(m: &[f32], shape: &[usize]) -> Tensor {
    Tensor {
        name: String::new(),
        datatype: DataType::Fp32 as i32,
        shape: shape.iter().map(|&d| d as i64).collect(),
        raw_contents: m.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

fn fp16(m: &[f32], shape: &[usize]) -> Tensor {
    Tensor {
        datatype: DataType::Fp16 as i32,
        raw_contents: m
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect(),
        ..tensor(m, shape)
    }
}

fn values(t: &Tensor) -> Vec<f32> {
    t.raw_contents
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

async fn client(server: &Server) -> VisionServiceClient<Channel> {
    VisionServiceClient::new(server.channel().await)
}

fn request(
    tokens: &Array2<f32>,
    attention: Option<&Array2<f32>>,
    method: PruneMethod,
    count: u32,
) -> PruneTokensRequest {
    PruneTokensRequest {
        tokens: Some(tensor(tokens.as_slice().unwrap(), tokens.shape())),
        cls_attention: attention.map(|a| tensor(a.as_slice().unwrap(), a.shape())),
        method: method as i32,
        keep: Some(Keep {
            budget: Some(Budget::Count(count)),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn every_method_over_the_wire_matches_the_library() {
    let server = Server::start(&["--config", "config/terse.toml"]).await;
    let mut client = client(&server).await;
    let (tokens, attention) = scene(1, 64, 24, 4);
    let (t, a) = (tokens.view(), attention.view());
    let k = 16;
    let expected = [
        (
            PruneMethod::Fastervlm,
            terse_vision::fastervlm(t, a, k).unwrap(),
        ),
        (
            PruneMethod::Visionzip,
            terse_vision::visionzip(t, a, t, k - 3, 3).unwrap(),
        ),
        (PruneMethod::Divprune, terse_vision::divprune(t, k).unwrap()),
        (
            PruneMethod::Prumerge,
            terse_vision::prumerge(t, a, t, PruMergeBudget::Adaptive, false, 32)
                .unwrap()
                .0,
        ),
        (
            PruneMethod::PrumergePlus,
            terse_vision::prumerge(t, a, t, PruMergeBudget::Adaptive, true, 32)
                .unwrap()
                .0,
        ),
        (
            PruneMethod::Tome,
            terse_vision::tome(t, t, 64 - 48, 0, None).unwrap(),
        ),
        (PruneMethod::Uniform, terse_vision::uniform(t, k).unwrap()),
        (PruneMethod::AvgPool, terse_vision::avg_pool(t, 4).unwrap()),
    ];
    for (method, want) in expected {
        let count = if method == PruneMethod::Tome {
            48
        } else {
            k as u32
        };
        let response = client
            .prune_tokens(request(&tokens, Some(&attention), method, count))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.input_tokens, 64);
        let image = &response.images[0];
        assert_eq!(
            image.kept_indices,
            want.kept.iter().map(|&i| i as u32).collect::<Vec<_>>(),
            "{method:?}"
        );
        assert_eq!(
            image.slot,
            want.slot.iter().map(|&s| s as i32).collect::<Vec<_>>(),
            "{method:?}"
        );
        assert_eq!(
            values(image.tokens.as_ref().unwrap()),
            want.tokens.iter().copied().collect::<Vec<_>>(),
            "{method:?}"
        );
        assert_eq!(image.effective_tokens as usize, want.len());
    }
    // Scores on request: FasterVLM ranks by mean attention over heads.
    let mut with_scores = request(&tokens, Some(&attention), PruneMethod::Fastervlm, 4);
    with_scores.return_scores = true;
    let scored = client.prune_tokens(with_scores).await.unwrap().into_inner();
    let mean: Vec<f32> = (0..64)
        .map(|i| {
            (attention
                .column(i)
                .iter()
                .map(|&v| f64::from(v))
                .sum::<f64>()
                / 4.0) as f32
        })
        .collect();
    assert_eq!(scored.images[0].scores, mean);
    let unscored = client
        .prune_tokens(request(
            &tokens,
            Some(&attention),
            PruneMethod::Fastervlm,
            4,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(unscored.images[0].scores.is_empty());

    // The VisionZip default split is the reference's 54 + 10 at 64 tokens kept.
    let (big, big_attention) = scene(2, 576, 16, 2);
    let vz = client
        .prune_tokens(request(
            &big,
            Some(&big_attention),
            PruneMethod::Visionzip,
            64,
        ))
        .await
        .unwrap()
        .into_inner();
    let want =
        terse_vision::visionzip(big.view(), big_attention.view(), big.view(), 54, 10).unwrap();
    assert_eq!(vz.images[0].kept_indices.len(), 64);
    assert_eq!(
        vz.images[0].kept_indices,
        want.kept.iter().map(|&i| i as u32).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn batches_fp16_importance_sources_and_frames() {
    let server = Server::start(&["--config", "config/terse.toml"]).await;
    let mut client = client(&server).await;
    let (a_tokens, a_attention) = scene(3, 49, 8, 1);
    let (b_tokens, b_attention) = scene(4, 49, 8, 1);
    let stacked: Vec<f32> = a_tokens.iter().chain(b_tokens.iter()).copied().collect();
    let attention: Vec<f32> = a_attention
        .iter()
        .chain(b_attention.iter())
        .copied()
        .collect();
    let response = client
        .prune_tokens(PruneTokensRequest {
            tokens: Some(fp16(&stacked, &[2, 49, 8])),
            cls_attention: Some(tensor(&attention, &[2, 49])),
            method: PruneMethod::Fastervlm as i32,
            keep: Some(Keep {
                budget: Some(Budget::Ratio(0.25)),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.images.len(), 2);
    for (image, attn) in response.images.iter().zip([&a_attention, &b_attention]) {
        let rounded = a_tokens.mapv(|v| half::f16::from_f32(v).to_f32());
        let want = terse_vision::fastervlm(rounded.view(), attn.view(), 12).unwrap();
        assert_eq!(
            image.kept_indices,
            want.kept.iter().map(|&i| i as u32).collect::<Vec<_>>()
        );
    }

    // IDPruner: explicit importance wins over a query, which wins over attention.
    let query = vec![0.5f32; 8];
    let mut with_query = request(&a_tokens, Some(&a_attention), PruneMethod::Idpruner, 10);
    with_query.query = Some(tensor(&query, &[8]));
    with_query.params = Some(MethodParams {
        lambda: Some(0.7),
        ..Default::default()
    });
    let got = client.prune_tokens(with_query).await.unwrap().into_inner();
    let q = Array2::from_shape_vec((1, 8), query).unwrap();
    let importance = terse_vision::query_importance(a_tokens.view(), q.view()).unwrap();
    let want = terse_vision::idpruner(a_tokens.view(), &importance, 10, 0.7).unwrap();
    assert_eq!(
        got.images[0].kept_indices,
        want.kept.iter().map(|&i| i as u32).collect::<Vec<_>>()
    );

    // Frames: the second frame repeats the first, so every token is static and nothing is sent.
    let frames: Vec<f32> = a_tokens
        .iter()
        .chain(a_tokens.iter())
        .chain(b_tokens.iter())
        .copied()
        .collect();
    let got = client
        .prune_frames(PruneFramesRequest {
            frames: Some(tensor(&frames, &[3, 49, 8])),
            keep: Some(Keep {
                budget: Some(Budget::Count(12)),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let views = [a_tokens.view(), a_tokens.view(), b_tokens.view()];
    let want = terse_vision::stream_reduce(
        &views,
        StreamParams {
            keep: 12,
            ..StreamParams::default()
        },
    )
    .unwrap();
    assert_eq!(got.frames.len(), 3);
    assert_eq!(
        (
            got.frames[1].static_tokens,
            got.frames[1].reduction.as_ref().unwrap().kept_indices.len()
        ),
        (49, 0)
    );
    for (g, w) in got.frames.iter().zip(&want) {
        assert_eq!(
            g.reduction.as_ref().unwrap().kept_indices,
            w.reduction
                .kept
                .iter()
                .map(|&i| i as u32)
                .collect::<Vec<_>>()
        );
    }
}

#[tokio::test]
async fn bad_requests_get_invalid_argument_with_reasons() {
    let server = Server::start(&["--config", "config/terse.toml"]).await;
    let mut client = client(&server).await;
    let (tokens, attention) = scene(5, 36, 8, 2);
    let mut nan = tokens.clone();
    nan[[4, 1]] = f32::NAN;
    let mut short = request(&tokens, None, PruneMethod::Divprune, 4);
    short.tokens.as_mut().unwrap().raw_contents.pop();
    let mut bf = request(&tokens, None, PruneMethod::Divprune, 4);
    bf.tokens.as_mut().unwrap().datatype = DataType::Int32 as i32;
    let cases = vec![
        (
            "visionzip without attention",
            request(&tokens, None, PruneMethod::Visionzip, 8),
            "VisionZip needs cls_attention",
        ),
        (
            "nan",
            request(&nan, None, PruneMethod::Divprune, 4),
            "tokens[4, 1] is NaN",
        ),
        (
            "k too large",
            request(&tokens, None, PruneMethod::Uniform, 37),
            "keep.count 37 is outside 1..=36",
        ),
        (
            "attention shape",
            request(
                &tokens,
                Some(&attention.slice(ndarray::s![.., 1..]).to_owned()),
                PruneMethod::Fastervlm,
                4,
            ),
            "cls_attention must be",
        ),
        ("byte length", short, "needs 1152 bytes"),
        ("dtype", bf, "not supported"),
        (
            "no method",
            request(&tokens, None, PruneMethod::Unspecified, 4),
            "method is required",
        ),
        (
            "tome too far",
            request(&tokens, None, PruneMethod::Tome, 4),
            "ToMe merges at most",
        ),
        (
            "idpruner without importance",
            request(&tokens, None, PruneMethod::Idpruner, 4),
            "IDPruner needs",
        ),
    ];
    for (name, req, needle) in cases {
        let err = client.prune_tokens(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{name}: {err:?}");
        assert!(
            err.message().contains(needle),
            "{name}: `{}` lacks `{needle}`",
            err.message()
        );
    }
    let mut no_keep = request(&tokens, None, PruneMethod::Uniform, 4);
    no_keep.keep = None;
    assert!(
        client
            .prune_tokens(no_keep)
            .await
            .unwrap_err()
            .message()
            .contains("keep is required")
    );
}

/// Issue 18, finding 1: DivPrune on ~100k tokens (a 400 KB request) used to allocate an N×N
/// matrix (40 GB) and abort the process. Every pairwise method is now refused before any work
/// above `vision.max_pairwise_tokens`; linear methods still serve the same request, and the
/// server stays up.
#[tokio::test]
async fn pairwise_methods_are_refused_over_their_token_limit_before_any_work() {
    let server = Server::start(&["--config", "config/terse.toml", "--services", "vision"]).await;
    let mut client = client(&server).await;
    let n = 99_856;
    let tokens = Array2::from_shape_fn((n, 1), |(i, _)| (i % 97) as f32 / 97.0);
    let attention = Array2::from_elem((1, n), 1.0 / n as f32);
    for method in [
        PruneMethod::Divprune,
        PruneMethod::Idpruner,
        PruneMethod::Prumerge,
        PruneMethod::PrumergePlus,
        PruneMethod::Tome,
    ] {
        let started = std::time::Instant::now();
        assert_status(
            client
                .prune_tokens(request(&tokens, Some(&attention), method, 64))
                .await,
            Code::ResourceExhausted,
            "vision.max_pairwise_tokens",
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{method:?} took {:?}",
            started.elapsed()
        );
    }
    let kept = client
        .prune_tokens(request(&tokens, None, PruneMethod::Uniform, 64))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.images[0].kept_indices.len(), 64);
}

/// Issue 18, finding 7: `reuse_threshold: NaN` (or -2) used to be accepted and report a changed
/// frame as static. Every float option is now checked (finite, in range) before any work.
#[tokio::test]
async fn float_options_must_be_finite_and_in_range() {
    let server = Server::start(&["--config", "config/terse.toml", "--services", "vision"]).await;
    let mut client = client(&server).await;
    let frames: Vec<f32> = (0..2 * 16 * 4).map(|i| (i % 7) as f32 / 7.0).collect();
    let frames_request = |reuse_threshold: Option<f32>, alpha: Option<f32>| PruneFramesRequest {
        frames: Some(tensor(&frames, &[2, 16, 4])),
        keep: Some(Keep {
            budget: Some(Budget::Count(4)),
        }),
        reuse_threshold,
        alpha,
        ..Default::default()
    };
    for (reuse, alpha, needle) in [
        (Some(f32::NAN), None, "reuse_threshold NaN"),
        (Some(-2.0), None, "reuse_threshold -2"),
        (None, Some(f32::INFINITY), "alpha inf"),
        (None, Some(1.5), "alpha 1.5"),
    ] {
        assert_status(
            client.prune_frames(frames_request(reuse, alpha)).await,
            Code::InvalidArgument,
            needle,
        );
    }
    assert!(
        client
            .prune_frames(frames_request(Some(0.5), Some(0.25)))
            .await
            .is_ok()
    );
    let (tokens, _) = scene(5, 36, 8, 2);
    let mut idpruner = request(&tokens, None, PruneMethod::Idpruner, 4);
    idpruner.importance = Some(tensor(&[1.0; 36], &[36]));
    idpruner.params = Some(terse_proto::vision::v1::MethodParams {
        lambda: Some(f32::NAN),
        ..Default::default()
    });
    assert_status(
        client.prune_tokens(idpruner).await,
        Code::InvalidArgument,
        "lambda NaN",
    );
}
