//! The vision service's conversion, limits and status mapping (no model involved).

use ndarray::Array2;
use tonic::Code;

use super::*;

const LIMITS: VisionLimits = VisionLimits {
    max_elements: 1 << 20,
    max_pairwise_tokens: 64,
};

fn tokens(n: usize, d: usize) -> terse_proto::common::v1::Tensor {
    to_tensor(
        "tokens",
        &Array2::from_shape_fn((n, d), |(i, j)| ((i * 31 + j * 17) % 13) as f32 - 6.0),
    )
}

fn request(method: api::PruneMethod, n: usize, keep: u32) -> api::PruneTokensRequest {
    api::PruneTokensRequest {
        tokens: Some(tokens(n, 8)),
        method: method as i32,
        keep: Some(api::Keep {
            budget: Some(api::keep::Budget::Count(keep)),
        }),
        ..Default::default()
    }
}

#[test]
fn a_method_prunes_to_its_budget() {
    let response = prune(request(api::PruneMethod::Divprune, 32, 8), LIMITS).unwrap();
    assert_eq!(response.input_tokens, 32);
    let image = &response.images[0];
    assert_eq!(image.kept_indices.len(), 8);
    assert_eq!(image.tokens.as_ref().unwrap().shape, [8, 8]);
    assert_eq!(image.slot.len(), 32);
}

#[test]
fn bad_requests_get_precise_statuses() {
    let status = prune(request(api::PruneMethod::Divprune, 65, 8), LIMITS).unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("DivPrune"),
        "{}",
        status.message()
    );
    // Uniform is not pairwise: the same size is served.
    prune(request(api::PruneMethod::Uniform, 65, 8), LIMITS).unwrap();

    let status = prune(request(api::PruneMethod::Fastervlm, 16, 4), LIMITS).unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("needs cls_attention"));

    let status = prune(request(api::PruneMethod::Unspecified, 16, 4), LIMITS).unwrap_err();
    assert!(status.message().contains("method is required"));

    let status = prune(request(api::PruneMethod::Divprune, 16, 17), LIMITS).unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("outside 1..=16"));

    let mut bad_lambda = request(api::PruneMethod::Idpruner, 16, 4);
    bad_lambda.params = Some(api::MethodParams {
        lambda: Some(2.0),
        ..Default::default()
    });
    let status = prune(bad_lambda, LIMITS).unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}
