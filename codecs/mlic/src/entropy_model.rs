//! The entropy model: hyper synthesis, channel slices, checkerboard passes and the Gaussian
//! conditional coder, all indexed from integer computations so that encoder and decoder select
//! the same distributions on any machine.

use std::collections::BTreeMap;

use ndarray::{Array2, Array3, ArrayView3, Axis, concatenate};
use serde::Deserialize;
use terse_entropy::{FactorizedPrior, Family, ScaleConditional, TableFile};

use crate::{
    MlicError, Result,
    int_net::{IntNetwork, LayerSpec, gather},
};

/// Which contexts the entropy parameters see (the ablation ladder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContextKind {
    /// Hyperprior only: one pass per slice from the hyper features.
    Hyper,
    /// + channel context over earlier slices.
    Channel,
    /// + checkerboard spatial context (anchors, then non-anchors).
    Full,
}

#[derive(Debug, Deserialize)]
struct Networks {
    h_s: Vec<LayerSpec>,
    ep_anchor: Vec<Vec<LayerSpec>>,
    #[serde(default)]
    spatial: Vec<Vec<LayerSpec>>,
    #[serde(default)]
    ep_other: Vec<Vec<LayerSpec>>,
}

#[derive(Debug, Deserialize)]
struct EntropyFile {
    format: String,
    context: ContextKind,
    latent_channels: usize,
    hyper_channels: usize,
    slices: usize,
    activation_bits: u32,
    weight_bits: u32,
    scale_table: Vec<f64>,
    networks: Networks,
}

/// Largest latent symbol magnitude an encoder writes and a decoder accepts.
pub const MAX_SYMBOL: i32 = 1 << 20;

/// The format tag of `entropy.json`.
pub const ENTROPY_FORMAT: &str = "terse-mlic-entropy/1";

/// Which pass of a slice: all positions, or the checkerboard's anchors / non-anchors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Every position (no spatial context).
    All,
    /// Positions with (i + j) even.
    Anchor,
    /// Positions with (i + j) odd, conditioned on the anchors.
    NonAnchor,
}

impl Pass {
    fn includes(self, i: usize, j: usize) -> bool {
        match self {
            Pass::All => true,
            Pass::Anchor => (i + j).is_multiple_of(2),
            Pass::NonAnchor => (i + j) % 2 == 1,
        }
    }

    /// The pass's positions of a `height × width` plane, row-major.
    fn positions(self, height: usize, width: usize) -> Vec<(usize, usize)> {
        (0..height)
            .flat_map(|i| (0..width).map(move |j| (i, j)))
            .filter(|&(i, j)| self.includes(i, j))
            .collect()
    }

    /// Container section tag of slice `slice` in this pass.
    pub fn tag(self, slice: usize) -> [u8; 4] {
        let pass = match self {
            Pass::All => b'F',
            Pass::Anchor => b'A',
            Pass::NonAnchor => b'N',
        };
        [b'Y', b'0' + slice as u8, pass, b' ']
    }
}

/// Symbols of one (slice, pass): channel-major over the pass's positions, with their means
/// (Q`A`) and scale-table rows.
pub struct PassParams<'a> {
    /// Slice number.
    pub slice: usize,
    /// Which positions.
    pub pass: Pass,
    /// Flat `(channel, i, j)` coordinates inside the slice, in coding order.
    pub positions: &'a [(usize, usize, usize)],
    /// Means, Q`A`.
    pub means: &'a [i64],
    /// Scale-table rows.
    pub indexes: &'a [u32],
}

/// Produces the symbols of each pass: by rounding the encoder's latents, or by decoding.
pub trait SymbolCoder {
    /// The symbols of one pass, in `params.positions` order.
    fn code(&mut self, model: &EntropyModel, params: &PassParams<'_>) -> Result<Vec<i32>>;
}

/// The integer entropy model of one trained rate point.
#[derive(Debug)]
pub struct EntropyModel {
    context: ContextKind,
    latent_channels: usize,
    hyper_channels: usize,
    slices: usize,
    activation_bits: u32,
    h_s: IntNetwork,
    ep_anchor: Vec<IntNetwork>,
    spatial: Vec<IntNetwork>,
    ep_other: Vec<IntNetwork>,
    scale_table_q: Vec<i64>,
    conditional: ScaleConditional,
    prior: FactorizedPrior,
}

impl EntropyModel {
    /// Loads `entropy.json`, `entropy.bin` (i32 little-endian) and `prior.json`.
    pub fn from_assets(entropy_json: &[u8], entropy_bin: &[u8], prior_json: &[u8]) -> Result<Self> {
        let file: EntropyFile = serde_json::from_slice(entropy_json)
            .map_err(|e| MlicError::Model(format!("entropy.json: {e}")))?;
        if file.format != ENTROPY_FORMAT {
            return Err(MlicError::Model(format!(
                "entropy.json format `{}`",
                file.format
            )));
        }
        if file.slices == 0
            || file.slices > 10
            || !file.latent_channels.is_multiple_of(file.slices)
            || !(4..=16).contains(&file.activation_bits)
        {
            return Err(MlicError::Model(
                "entropy.json: bad slices / channels / bits".into(),
            ));
        }
        if !entropy_bin.len().is_multiple_of(4) {
            return Err(MlicError::Model(
                "entropy.bin is not a whole number of i32".into(),
            ));
        }
        let blob: Vec<i32> = entropy_bin
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        let net = |specs: &[LayerSpec]| IntNetwork::new(specs, &blob, file.weight_bits);
        let nets =
            |list: &[Vec<LayerSpec>]| list.iter().map(|n| net(n)).collect::<Result<Vec<_>>>();
        let spatial_needed = file.context == ContextKind::Full;
        let networks = &file.networks;
        if networks.ep_anchor.len() != file.slices
            || (spatial_needed
                && (networks.spatial.len() != file.slices
                    || networks.ep_other.len() != file.slices))
        {
            return Err(MlicError::Model(
                "entropy.json: one network per slice expected".into(),
            ));
        }
        let scale = f64::from(1u32 << file.activation_bits);
        let scale_table_q = file
            .scale_table
            .iter()
            .map(|s| (s * scale).round() as i64)
            .collect();
        let conditional =
            ScaleConditional::with_scale_table(Family::Gaussian, file.scale_table.clone(), 1e-9)?;
        let prior_text = std::str::from_utf8(prior_json)
            .map_err(|_| MlicError::Model("prior.json is not UTF-8".into()))?;
        let prior_file = TableFile::from_json(prior_text)?;
        let prior = FactorizedPrior::from_file(&prior_file)?;
        if prior.channels() != file.hyper_channels {
            return Err(MlicError::Model(format!(
                "prior has {} channels, the model {}",
                prior.channels(),
                file.hyper_channels
            )));
        }
        Ok(Self {
            context: file.context,
            latent_channels: file.latent_channels,
            hyper_channels: file.hyper_channels,
            slices: file.slices,
            activation_bits: file.activation_bits,
            h_s: net(&networks.h_s)?,
            ep_anchor: nets(&networks.ep_anchor)?,
            spatial: nets(&networks.spatial)?,
            ep_other: nets(&networks.ep_other)?,
            scale_table_q,
            conditional,
            prior,
        })
    }

    /// Latent channels M.
    pub fn latent_channels(&self) -> usize {
        self.latent_channels
    }

    /// Hyper-latent channels Z.
    pub fn hyper_channels(&self) -> usize {
        self.hyper_channels
    }

    /// The context ablation this model was trained with.
    pub fn context(&self) -> ContextKind {
        self.context
    }

    /// Fractional bits of the integer activations (and of `y_hat`).
    pub fn activation_bits(&self) -> u32 {
        self.activation_bits
    }

    /// The factorized prior of z.
    pub fn prior(&self) -> &FactorizedPrior {
        &self.prior
    }

    /// The Gaussian conditional coder.
    pub fn conditional(&self) -> &ScaleConditional {
        &self.conditional
    }

    /// Scale-table row for a Q`A` scale: the first entry ≥ it, the lower bound mapping to 0.
    pub fn scale_index(&self, sigma_q: i64) -> u32 {
        let last = self.scale_table_q.len() - 1;
        self.scale_table_q
            .partition_point(|&t| t < sigma_q)
            .min(last) as u32
    }

    /// Runs the two-level context model over a latent of `height × width` positions given the
    /// hyper-latent `z_hat` `[Z, height/4, width/4]`; `coder` supplies each pass's symbols.
    /// Returns `y_hat` `[M, height, width]` in Q`A`.
    pub fn run(
        &self,
        z_hat: ArrayView3<'_, i32>,
        coder: &mut dyn SymbolCoder,
    ) -> Result<Array3<i64>> {
        let (zc, zh, zw) = z_hat.dim();
        if zc != self.hyper_channels {
            return Err(MlicError::Bitstream(format!(
                "z has {zc} channels, the model {}",
                self.hyper_channels
            )));
        }
        let hyper = self
            .h_s
            .forward(z_hat.mapv(|v| i64::from(v) << self.activation_bits))?;
        let (h, w) = (zh * 4, zw * 4);
        let cs = self.latent_channels / self.slices;
        let mut earlier: Vec<Array3<i64>> = Vec::with_capacity(self.slices);
        for slice in 0..self.slices {
            terse_entropy::interrupt::check()?;
            let mut inputs = vec![hyper.view()];
            if self.context != ContextKind::Hyper {
                inputs.extend(earlier.iter().map(|e| e.view()));
            }
            let context = concatenate(Axis(0), &inputs).expect("same plane size");
            let mut y_hat = Array3::<i64>::zeros((cs, h, w));
            if self.context == ContextKind::Full {
                let at = Pass::Anchor.positions(h, w);
                let params = self.ep_anchor[slice].forward_at(&context, &at)?;
                self.code_pass(slice, Pass::Anchor, (&params, &at), &mut y_hat, coder)?;
                let at = Pass::NonAnchor.positions(h, w);
                let params = self.non_anchor_params(slice, &context, &y_hat, &at)?;
                self.code_pass(slice, Pass::NonAnchor, (&params, &at), &mut y_hat, coder)?;
            } else {
                let at = Pass::All.positions(h, w);
                let params = self.ep_anchor[slice].forward_at(&context, &at)?;
                self.code_pass(slice, Pass::All, (&params, &at), &mut y_hat, coder)?;
            }
            earlier.push(y_hat);
        }
        let views: Vec<_> = earlier.iter().map(|e| e.view()).collect();
        Ok(concatenate(Axis(0), &views).expect("same plane"))
    }

    /// Entropy parameters `[2·cs, n]` of the non-anchors `at` of a slice, from its context
    /// planes and its anchors (`y_hat` after the anchor pass, zero at the non-anchors). With a
    /// pointwise parameter network, the spatial context is computed at the non-anchors only,
    /// from the taps that reach anchors (the others read zeros).
    fn non_anchor_params(
        &self,
        slice: usize,
        context: &Array3<i64>,
        anchors: &Array3<i64>,
        at: &[(usize, usize)],
    ) -> Result<Array2<i64>> {
        let network = &self.ep_other[slice];
        if !network.is_pointwise() {
            let spatial = self.spatial[slice].forward(anchors.clone())?;
            let other =
                concatenate(Axis(0), &[context.view(), spatial.view()]).expect("same plane");
            return network.forward_at(&other, at);
        }
        let spatial = self.spatial[slice]
            .forward_at_sparse(anchors, at, |i, j| Pass::Anchor.includes(i, j))?;
        let columns = concatenate(Axis(0), &[gather(context, at).view(), spatial.view()])
            .expect("same positions");
        network.forward_columns(columns)
    }

    /// Codes one pass given the entropy parameters `[2·cs, n]` at its `n` positions `at`.
    fn code_pass(
        &self,
        slice: usize,
        pass: Pass,
        (params, at): (&Array2<i64>, &[(usize, usize)]),
        y_hat: &mut Array3<i64>,
        coder: &mut dyn SymbolCoder,
    ) -> Result<()> {
        let cs = y_hat.dim().0;
        if params.dim() != (2 * cs, at.len()) {
            return Err(MlicError::Model(format!(
                "entropy parameters {:?}, expected {:?}",
                params.dim(),
                (2 * cs, at.len())
            )));
        }
        let count = cs * at.len();
        let mut positions = Vec::with_capacity(count);
        let (mut means, mut indexes) = (Vec::with_capacity(count), Vec::with_capacity(count));
        for c in 0..cs {
            for (k, &(i, j)) in at.iter().enumerate() {
                positions.push((c, i, j));
                means.push(params[[c, k]]);
                indexes.push(self.scale_index(params[[cs + c, k]]));
            }
        }
        let symbols = coder.code(
            self,
            &PassParams {
                slice,
                pass,
                positions: &positions,
                means: &means,
                indexes: &indexes,
            },
        )?;
        if symbols.len() != positions.len() {
            return Err(MlicError::Bitstream(
                "pass decoded to the wrong length".into(),
            ));
        }
        for ((&(c, i, j), &mean), &symbol) in positions.iter().zip(&means).zip(&symbols) {
            y_hat[[c, i, j]] = (i64::from(symbol) << self.activation_bits).wrapping_add(mean);
        }
        Ok(())
    }
}

/// Encoder side: rounds `y - mean` and entropy-codes each pass into its own section.
pub struct RoundingCoder<'a> {
    y: ArrayView3<'a, f32>,
    /// Coded passes by section tag.
    pub sections: BTreeMap<[u8; 4], Vec<u8>>,
    /// Every symbol, per pass, in coding order (for tests and statistics).
    pub symbols: Vec<Vec<i32>>,
}

impl<'a> RoundingCoder<'a> {
    /// A coder for the analysis output `y` `[M, h, w]`.
    pub fn new(y: ArrayView3<'a, f32>) -> Self {
        Self {
            y,
            sections: BTreeMap::new(),
            symbols: Vec::new(),
        }
    }
}

impl SymbolCoder for RoundingCoder<'_> {
    fn code(&mut self, model: &EntropyModel, params: &PassParams<'_>) -> Result<Vec<i32>> {
        let cs = model.latent_channels / model.slices;
        let scale = f64::from(1u32 << model.activation_bits);
        let symbols: Vec<i32> = params
            .positions
            .iter()
            .zip(params.means)
            .map(|(&(c, i, j), &mean)| {
                let y = f64::from(self.y[[params.slice * cs + c, i, j]]);
                let v = (y - mean as f64 / scale + 0.5).floor();
                v.clamp(-f64::from(MAX_SYMBOL), f64::from(MAX_SYMBOL)) as i32
            })
            .collect();
        let bytes = model.conditional.encode_symbols(&symbols, params.indexes)?;
        self.sections.insert(params.pass.tag(params.slice), bytes);
        self.symbols.push(symbols.clone());
        Ok(symbols)
    }
}

/// Decoder side: decodes each pass from its section.
pub struct SectionDecoder<'a> {
    sections: &'a BTreeMap<[u8; 4], Vec<u8>>,
}

impl<'a> SectionDecoder<'a> {
    /// A decoder over the coded sections.
    pub fn new(sections: &'a BTreeMap<[u8; 4], Vec<u8>>) -> Self {
        Self { sections }
    }
}

impl SymbolCoder for SectionDecoder<'_> {
    fn code(&mut self, model: &EntropyModel, params: &PassParams<'_>) -> Result<Vec<i32>> {
        let tag = params.pass.tag(params.slice);
        let bytes = self.sections.get(&tag).ok_or_else(|| {
            MlicError::Bitstream(format!("section {} missing", String::from_utf8_lossy(&tag)))
        })?;
        let symbols = model.conditional.decode_symbols(bytes, params.indexes)?;
        if symbols.iter().any(|s| s.unsigned_abs() > MAX_SYMBOL as u32) {
            return Err(MlicError::Bitstream(format!(
                "section {} holds a symbol beyond ±{MAX_SYMBOL}",
                String::from_utf8_lossy(&tag)
            )));
        }
        Ok(symbols)
    }
}
