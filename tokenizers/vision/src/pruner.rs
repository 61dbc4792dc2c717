//! The [`Pruner`] trait and the [`Method`] enum that dispatches to every reducer, with each
//! method's parameters and their reference defaults.

use ndarray::ArrayView2;

use crate::{
    PruMergeBudget, Reduction,
    error::{Result, invalid},
    methods,
};

/// What one image brings to a pruner: its patch tokens `[N, D]` and whatever else the caller
/// has (a method refuses when what it needs is missing).
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// Patch tokens `[N, D]`.
    pub tokens: ArrayView2<'a, f32>,
    /// [CLS]→patch attention `[H, N]`.
    pub attention: Option<ArrayView2<'a, f32>>,
    /// Attention keys `[N, Dk]` (where absent, methods that use keys use the tokens).
    pub keys: Option<ArrayView2<'a, f32>>,
    /// Per-token importance `[N]`.
    pub importance: Option<&'a [f64]>,
    /// Text query embeddings `[M, D]`.
    pub query: Option<ArrayView2<'a, f32>>,
}

impl<'a> Inputs<'a> {
    /// Inputs of just the tokens.
    pub fn tokens(tokens: ArrayView2<'a, f32>) -> Self {
        Self {
            tokens,
            attention: None,
            keys: None,
            importance: None,
            query: None,
        }
    }

    fn attention(&self, method: &str) -> Result<ArrayView2<'a, f32>> {
        self.attention
            .ok_or_else(|| invalid(format!("{method} needs cls_attention")))
    }

    fn keys_or_tokens(&self) -> ArrayView2<'a, f32> {
        self.keys.unwrap_or(self.tokens)
    }
}

/// A reducer of one image's visual tokens to a budget.
///
/// ```
/// use ndarray::Array2;
/// use terse_vision::{Inputs, Method, Pruner};
///
/// let tokens = Array2::from_shape_fn((16, 4), |(i, j)| ((i * 7 + j * 3) % 5) as f32);
/// let reduction = Method::DivPrune.prune(&Inputs::tokens(tokens.view()), 4).unwrap();
/// assert_eq!(reduction.kept.len(), 4);
/// ```
pub trait Pruner {
    /// The method's name, for messages.
    fn name(&self) -> &'static str;

    /// Whether it compares every token with every other (time, and at most O(256·N) memory,
    /// quadratic in the token count).
    fn pairwise(&self) -> bool;

    /// Reduces `inputs` to `keep` output tokens (a budget: adaptive methods may keep fewer).
    fn prune(&self, inputs: &Inputs, keep: usize) -> Result<Reduction>;
}

/// VisionZip's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VisionZipParams {
    /// How many of the kept tokens are contextual (merged); `None`: 10 of every 64 kept, the
    /// reference's 54 + 10.
    pub contextual: Option<usize>,
}

impl VisionZipParams {
    /// The contextual share of `keep` tokens.
    pub fn contextual_of(&self, keep: usize) -> usize {
        self.contextual
            .unwrap_or_else(|| ((keep * 10 + 32) / 64).clamp(1, keep.saturating_sub(1).max(1)))
    }
}

/// PruMerge's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruMergeParams {
    /// PruMerge+ (adds spatially uniform tokens).
    pub plus: bool,
    /// Keep the IQR outliers (the reference), instead of the budget's share.
    pub adaptive: bool,
    /// Key neighbours each kept token merges (the reference's 32).
    pub neighbours: usize,
}

impl Default for PruMergeParams {
    fn default() -> Self {
        Self {
            plus: false,
            adaptive: true,
            neighbours: 32,
        }
    }
}

/// ToMe's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ToMeParams {
    /// Leading tokens never merged.
    pub protected: usize,
}

/// IDPruner's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdPrunerParams {
    /// Trade-off between importance (1) and diversity (0); the reference's 0.5.
    pub lambda: f64,
}

impl Default for IdPrunerParams {
    fn default() -> Self {
        Self { lambda: 0.5 }
    }
}

/// Every reducer, with its parameters: the one place that dispatches to them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// FasterVLM: top [CLS] attention.
    FasterVlm,
    /// VisionZip: dominant tokens plus merged contextual tokens.
    VisionZip(VisionZipParams),
    /// DivPrune: max-min diversity.
    DivPrune,
    /// PruMerge / PruMerge+.
    PruMerge(PruMergeParams),
    /// ToMe: bipartite soft matching.
    ToMe(ToMeParams),
    /// IDPruner: importance and diversity (MMR).
    IdPruner(IdPrunerParams),
    /// Every `N / k`-th token.
    Uniform,
    /// Average pooling to a `⌊√k⌋²` grid.
    AvgPool,
}

impl Method {
    /// The per-token importance IDPruner ranks by: given, from the query, or mean [CLS]
    /// attention.
    fn importance(inputs: &Inputs) -> Result<Vec<f64>> {
        if let Some(w) = inputs.importance {
            return Ok(w.to_vec());
        }
        if let Some(q) = inputs.query {
            return methods::query_importance(inputs.tokens, q);
        }
        let a = inputs
            .attention
            .ok_or_else(|| invalid("IDPruner needs importance, query or cls_attention"))?;
        Ok((0..inputs.tokens.nrows())
            .map(|i| a.column(i).iter().map(|&v| f64::from(v)).sum::<f64>() / a.nrows() as f64)
            .collect())
    }
}

impl Pruner for Method {
    fn name(&self) -> &'static str {
        match self {
            Self::FasterVlm => "FasterVLM",
            Self::VisionZip(_) => "VisionZip",
            Self::DivPrune => "DivPrune",
            Self::PruMerge(p) if p.plus => "PruMerge+",
            Self::PruMerge(_) => "PruMerge",
            Self::ToMe(_) => "ToMe",
            Self::IdPruner(_) => "IDPruner",
            Self::Uniform => "uniform",
            Self::AvgPool => "average pooling",
        }
    }

    fn pairwise(&self) -> bool {
        matches!(
            self,
            Self::DivPrune | Self::IdPruner(_) | Self::PruMerge(_) | Self::ToMe(_)
        )
    }

    fn prune(&self, inputs: &Inputs, keep: usize) -> Result<Reduction> {
        let tokens = inputs.tokens;
        let n = tokens.nrows();
        match self {
            Self::FasterVlm => methods::fastervlm(tokens, inputs.attention("FasterVLM")?, keep),
            Self::VisionZip(p) => {
                let contextual = p.contextual_of(keep);
                if contextual >= keep {
                    return Err(invalid(format!(
                        "VisionZip: contextual_tokens {contextual} must be below keep {keep}"
                    )));
                }
                let attention = inputs.attention("VisionZip")?;
                let keys = inputs.keys_or_tokens();
                methods::visionzip(tokens, attention, keys, keep - contextual, contextual)
            }
            Self::DivPrune => methods::divprune(tokens, keep),
            Self::PruMerge(p) => {
                let budget = match p.adaptive {
                    true => PruMergeBudget::Adaptive,
                    false => PruMergeBudget::Ratio(keep as f64 / n as f64),
                };
                let attention = inputs.attention("PruMerge")?;
                let keys = inputs.keys_or_tokens();
                methods::prumerge(tokens, attention, keys, budget, p.plus, p.neighbours)
                    .map(|(r, _)| r)
            }
            Self::ToMe(p) => methods::tome(
                tokens,
                inputs.keys_or_tokens(),
                n.saturating_sub(keep),
                p.protected,
                None,
            ),
            Self::IdPruner(p) => {
                methods::idpruner(tokens, &Self::importance(inputs)?, keep, p.lambda)
            }
            Self::Uniform => methods::uniform(tokens, keep),
            Self::AvgPool => methods::avg_pool(tokens, (keep as f64).sqrt().floor() as usize),
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    #[test]
    fn missing_inputs_are_named() {
        let tokens = Array2::<f32>::ones((8, 2));
        let inputs = Inputs::tokens(tokens.view());
        for (method, needs) in [
            (Method::FasterVlm, "FasterVLM needs cls_attention"),
            (
                Method::PruMerge(PruMergeParams::default()),
                "PruMerge needs",
            ),
            (
                Method::IdPruner(IdPrunerParams::default()),
                "IDPruner needs",
            ),
        ] {
            let err = method.prune(&inputs, 4).unwrap_err().to_string();
            assert!(err.contains(needs), "{err}");
        }
    }

    #[test]
    fn visionzip_default_split_is_the_reference_54_plus_10() {
        assert_eq!(VisionZipParams::default().contextual_of(64), 10);
        assert_eq!(VisionZipParams::default().contextual_of(2), 1);
    }
}
