//! Visual-token pruning with `ndarray` arrays in and out.

use ndarray::{Array2, ArrayD, ArrayViewD, Ix2};
use terse_proto::vision::v1::{
    ImageReduction, Keep, MethodParams, PruneMethod, PruneTokensRequest, keep::Budget,
};

use crate::{Client, Error, tensor};

/// What a pruning method may need besides the tokens (see `compress.vision.v1`).
#[derive(Clone, Debug, Default)]
pub struct TokenInputs {
    /// `[CLS]`→patch attention: `[N]`, `[H, N]`, `[B, N]` or `[B, H, N]`.
    pub cls_attention: Option<ArrayD<f32>>,
    /// Keys for similarity: `[N, Dk]` or `[B, N, Dk]`.
    pub keys: Option<ArrayD<f32>>,
    /// Text-query embedding (IDPruner): `[D]` or `[M, D]`.
    pub query: Option<ArrayD<f32>>,
    /// Per-token importance (IDPruner): `[N]` or `[B, N]`.
    pub importance: Option<ArrayD<f32>>,
    /// Method parameters.
    pub params: Option<MethodParams>,
    /// Also return per-token scores.
    pub return_scores: bool,
}

/// One image's reduced tokens.
#[derive(Clone, Debug)]
pub struct PrunedImage {
    /// Indices of the kept input tokens, ascending.
    pub kept_indices: Vec<u32>,
    /// Output tokens `[slots, D]`: kept tokens in index order, then merged/built tokens.
    pub tokens: Array2<f32>,
    /// Per input token: the output slot it went to, or -1 when dropped.
    pub slot: Vec<i32>,
    /// Per output slot: how many input tokens it stands for.
    pub sizes: Vec<f32>,
    /// Tokens the reduced sequence counts as.
    pub effective_tokens: u32,
    /// Per-token scores, when asked for.
    pub scores: Vec<f32>,
}

impl TryFrom<ImageReduction> for PrunedImage {
    type Error = Error;

    fn try_from(reduction: ImageReduction) -> Result<Self, Error> {
        let tokens = reduction
            .tokens
            .as_ref()
            .ok_or_else(|| Error::Tensor("reduction without tokens".into()))?;
        let tokens = tensor::f32_array(tokens)?
            .into_dimensionality::<Ix2>()
            .map_err(|e| Error::Tensor(format!("reduced tokens are not [slots, D]: {e}")))?;
        Ok(Self {
            kept_indices: reduction.kept_indices,
            tokens,
            slot: reduction.slot,
            sizes: reduction.sizes,
            effective_tokens: reduction.effective_tokens,
            scores: reduction.scores,
        })
    }
}

/// A keep budget as a token count.
pub fn keep_count(count: u32) -> Keep {
    Keep {
        budget: Some(Budget::Count(count)),
    }
}

/// A keep budget as a fraction of the input tokens.
pub fn keep_ratio(ratio: f32) -> Keep {
    Keep {
        budget: Some(Budget::Ratio(ratio)),
    }
}

impl Client {
    /// Prunes (or merges) visual tokens `[N, D]` or `[B, N, D]` with `method`, keeping `keep`;
    /// returns one reduction per image.
    pub async fn prune_tokens(
        &self,
        tokens: ArrayViewD<'_, f32>,
        method: PruneMethod,
        keep: Keep,
        inputs: TokenInputs,
    ) -> Result<Vec<PrunedImage>, Error> {
        let optional = |name: &str, array: &Option<ArrayD<f32>>| {
            array.as_ref().map(|a| tensor::f32_tensor(name, a.view()))
        };
        let request = PruneTokensRequest {
            tokens: Some(tensor::f32_tensor("tokens", tokens)),
            cls_attention: optional("cls_attention", &inputs.cls_attention),
            keys: optional("keys", &inputs.keys),
            query: optional("query", &inputs.query),
            importance: optional("importance", &inputs.importance),
            method: method as i32,
            keep: Some(keep),
            params: inputs.params,
            return_scores: inputs.return_scores,
        };
        let response = self
            .call(|| {
                let request = self.request(request.clone());
                let mut client = self.vision();
                async move { client.prune_tokens(request).await }
            })
            .await?;
        response
            .images
            .into_iter()
            .map(PrunedImage::try_from)
            .collect()
    }
}
