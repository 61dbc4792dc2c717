//! gRPC transport of `compress.vision.v1.VisionService` over `terse-vision`.
//!
//! Request decoding (dtypes, shapes, batch splitting), defaults and status mapping live here;
//! the reducers are in `terse-vision`. Work runs on the blocking pool.

mod tensors;

use ndarray::ArrayView2;
use terse_proto::vision::v1::{self as api, vision_service_server};
use terse_service_common::{Host, HostedService, float_option, rpcs, run_blocking};
use terse_vision::{
    IdPrunerParams, Inputs, Method, PruMergeParams, PruneError, Pruner, Reduction, StreamParams,
    ToMeParams, VisionZipParams,
};
use tonic::{Status, service::RoutesBuilder};

use tensors::{Floats, attention_per_image, floats, per_image, to_tensor};
pub use vision_service_server::VisionServiceServer;

/// `[vision]`: limits of the visual-token service.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VisionLimits {
    /// Most float elements in any one input tensor (tokens, keys, frames); more gets
    /// RESOURCE_EXHAUSTED.
    pub max_elements: usize,
    /// Most tokens per image for the methods whose time grows with the square of the token
    /// count (DivPrune, IDPruner, PruMerge/PruMerge+, ToMe; their memory is O(256 · N)); more
    /// gets RESOURCE_EXHAUSTED before any work.
    pub max_pairwise_tokens: usize,
}

impl Default for VisionLimits {
    fn default() -> Self {
        Self {
            max_elements: 16 << 20,
            max_pairwise_tokens: 8192,
        }
    }
}

/// The service.
#[derive(Debug, Clone)]
pub struct VisionService {
    limits: VisionLimits,
}

impl VisionService {
    /// A service enforcing `limits`.
    pub fn new(limits: VisionLimits) -> Self {
        Self { limits }
    }
}

fn prune_status(image: usize, batch: usize, e: PruneError) -> Status {
    let PruneError::InvalidInput(m) = e;
    if batch > 1 {
        Status::invalid_argument(format!("image {image}: {m}"))
    } else {
        Status::invalid_argument(m)
    }
}

/// Number of output tokens for `keep` out of `n`.
fn keep_count(keep: Option<&api::Keep>, n: usize) -> Result<usize, Status> {
    match keep.and_then(|k| k.budget) {
        Some(api::keep::Budget::Count(c)) if (1..=n as u64).contains(&u64::from(c)) => {
            Ok(c as usize)
        }
        Some(api::keep::Budget::Count(c)) => Err(Status::invalid_argument(format!(
            "keep.count {c} is outside 1..={n} (the number of input tokens)"
        ))),
        Some(api::keep::Budget::Ratio(r)) if r > 0.0 && r <= 1.0 => {
            Ok(((r as f64 * n as f64).round() as usize).max(1))
        }
        Some(api::keep::Budget::Ratio(r)) => Err(Status::invalid_argument(format!(
            "keep.ratio {r} is outside (0, 1]"
        ))),
        None => Err(Status::invalid_argument(
            "keep is required (a count or a ratio)",
        )),
    }
}

fn to_proto(r: Reduction, return_scores: bool) -> api::ImageReduction {
    api::ImageReduction {
        scores: if return_scores {
            r.scores.clone().unwrap_or_default()
        } else {
            Vec::new()
        },
        kept_indices: r.kept.iter().map(|&i| i as u32).collect(),
        effective_tokens: r.len() as u32,
        tokens: Some(to_tensor("tokens", &r.tokens)),
        slot: r.slot.iter().map(|&s| s as i32).collect(),
        sizes: r.sizes.unwrap_or_default(),
    }
}

/// The reducer a request names, with its parameters (reference defaults where unset).
fn method_of(method: i32, params: &api::MethodParams) -> Result<Method, Status> {
    use api::PruneMethod as M;
    let method = M::try_from(method)
        .map_err(|_| Status::invalid_argument(format!("unknown method {method}")))?;
    Ok(match method {
        M::Unspecified => return Err(Status::invalid_argument("method is required")),
        M::Fastervlm => Method::FasterVlm,
        M::Visionzip => Method::VisionZip(VisionZipParams {
            contextual: params.contextual_tokens.map(|c| c as usize),
        }),
        M::Divprune => Method::DivPrune,
        M::Prumerge | M::PrumergePlus => Method::PruMerge(PruMergeParams {
            plus: method == M::PrumergePlus,
            adaptive: params.adaptive.unwrap_or(true),
            neighbours: params.neighbours.map_or(32, |n| n as usize),
        }),
        M::Tome => Method::ToMe(ToMeParams {
            protected: params.protected_tokens.unwrap_or(0) as usize,
        }),
        M::Idpruner => Method::IdPruner(IdPrunerParams {
            lambda: f64::from(float_option("lambda", params.lambda, 0.5, 0.0..=1.0)?),
        }),
        M::Uniform => Method::Uniform,
        M::AvgPool => Method::AvgPool,
    })
}

/// PruneTokens without the transport: checks the request against `limits` and prunes (blocking;
/// the service runs it off the async threads). Also the entry point of the fuzz targets.
pub fn prune(
    request: api::PruneTokensRequest,
    limits: VisionLimits,
) -> Result<api::PruneTokensResponse, Status> {
    let params = request.params.unwrap_or_default();
    let method = method_of(request.method, &params)?;
    let tokens = request
        .tokens
        .as_ref()
        .ok_or_else(|| Status::invalid_argument("tokens are required"))?;
    let tokens = floats(tokens, "tokens", limits.max_elements)?;
    let (batched, batch, n) = match tokens.shape() {
        [n, _] => (false, 1, *n),
        [b, n, _] => (true, *b, *n),
        other => {
            return Err(Status::invalid_argument(format!(
                "tokens must be [N, D] or [B, N, D], got {other:?}"
            )));
        }
    };
    if batch == 0 || n == 0 {
        return Err(Status::invalid_argument("tokens hold no image or no token"));
    }
    if method.pairwise() && n > limits.max_pairwise_tokens {
        return Err(Status::resource_exhausted(format!(
            "{} compares every pair of tokens: {n} tokens per image is over the limit of {} (vision.max_pairwise_tokens)",
            method.name(),
            limits.max_pairwise_tokens
        )));
    }
    let k = keep_count(request.keep.as_ref(), n)?;
    let optional = |t: &Option<terse_proto::common::v1::Tensor>,
                    what: &str|
     -> Result<Option<Floats>, Status> {
        t.as_ref()
            .map(|t| floats(t, what, limits.max_elements))
            .transpose()
    };
    let token_list = per_image(&tokens, "tokens", batch, n)?;
    let attention = optional(&request.cls_attention, "cls_attention")?
        .map(|a| attention_per_image(&a, batch, n, batched))
        .transpose()?;
    let keys = optional(&request.keys, "keys")?
        .map(|k| per_image(&k, "keys", batch, n))
        .transpose()?;
    let importance = optional(&request.importance, "importance")?
        .map(|w| {
            let rows = attention_per_image(&w, batch, n, batched)?;
            if rows.iter().any(|r| r.nrows() != 1) {
                return Err(Status::invalid_argument(format!(
                    "importance must be [{n}] or [{batch}, {n}]"
                )));
            }
            Ok(rows
                .into_iter()
                .map(|r| r.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>())
                .collect::<Vec<_>>())
        })
        .transpose()?;
    let query = optional(&request.query, "query")?
        .map(|q| match q.ndim() {
            1 => Ok(q
                .clone()
                .into_shape_with_order((1, q.len()))
                .expect("vector")),
            2 => Ok(q.into_dimensionality().expect("rank 2")),
            _ => Err(Status::invalid_argument(format!(
                "query must be [D] or [M, D], got {:?}",
                q.shape()
            ))),
        })
        .transpose()?;
    let mut images = Vec::with_capacity(batch);
    for (b, tokens) in token_list.iter().enumerate() {
        let inputs = Inputs {
            tokens: tokens.view(),
            attention: attention.as_ref().map(|a| a[b].view()),
            keys: keys.as_ref().map(|k| k[b].view()),
            importance: importance.as_ref().map(|w| w[b].as_slice()),
            query: query.as_ref().map(|q| q.view()),
        };
        let reduction = method
            .prune(&inputs, k)
            .map_err(|e| prune_status(b, batch, e))?;
        images.push(to_proto(reduction, request.return_scores));
    }
    Ok(api::PruneTokensResponse {
        images,
        input_tokens: n as u32,
    })
}

/// PruneFrames without the transport (blocking), as [`prune`].
pub fn prune_frames(
    request: api::PruneFramesRequest,
    limits: VisionLimits,
) -> Result<api::PruneFramesResponse, Status> {
    let frames = request
        .frames
        .as_ref()
        .ok_or_else(|| Status::invalid_argument("frames are required"))?;
    let frames = floats(frames, "frames", limits.max_elements)?;
    let &[t, n, _] = frames.shape() else {
        return Err(Status::invalid_argument(format!(
            "frames must be [T, N, D], got {:?}",
            frames.shape()
        )));
    };
    if t == 0 || n == 0 {
        return Err(Status::invalid_argument("frames hold no frame or no token"));
    }
    let keep = keep_count(request.keep.as_ref(), n)?;
    let list = per_image(&frames, "frames", t, n)?;
    let views: Vec<ArrayView2<f32>> = list.iter().map(|f| f.view()).collect();
    let params = StreamParams {
        keep,
        reuse_threshold: f64::from(float_option(
            "reuse_threshold",
            request.reuse_threshold,
            0.9,
            -1.0..=1.0,
        )?),
        alpha: f64::from(float_option("alpha", request.alpha, 0.5, 0.0..=1.0)?),
    };
    let result = terse_vision::stream_reduce(&views, params).map_err(|e| prune_status(0, 1, e))?;
    Ok(api::PruneFramesResponse {
        frames: result
            .into_iter()
            .map(|f| api::FrameReduction {
                static_tokens: f.static_tokens as u32,
                reduction: Some(to_proto(f.reduction, request.return_scores)),
            })
            .collect(),
    })
}

rpcs! {
    impl vision_service_server::VisionService for VisionService {
        fn prune_tokens(self, request: api::PruneTokensRequest) -> api::PruneTokensResponse {
            let limits = self.limits;
            run_blocking(move || prune(request, limits)).await?
        }

        fn prune_frames(self, request: api::PruneFramesRequest) -> api::PruneFramesResponse {
            let limits = self.limits;
            run_blocking(move || prune_frames(request, limits)).await?
        }
    }
}

impl HostedService for VisionLimits {
    fn add_to(&self, host: &Host, routes: &mut RoutesBuilder) -> Result<String, String> {
        let service = VisionService::new(*self);
        let hosted = "visual-token reducers".to_owned();
        terse_service_common::add_service!(routes, host, VisionServiceServer, service, hosted)
    }
}

#[cfg(test)]
mod tests;
