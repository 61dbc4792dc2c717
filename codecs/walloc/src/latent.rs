//! The part every WaLLoC codec shares: the linear encoder's weights, the model identity, and
//! the entropy coding of integer latents `[L, h, w]` in a container (static factorized prior
//! or context-adaptive model, whichever is smaller).

use ndarray::Array3;
use terse_entropy::{Container, FactorizedPrior, IndexedCdfTable, ModelTag, TableFile};

use crate::{EncoderWeights, Result, Signal, WallocError, context};

/// How the integer latents are entropy-coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum LatentCoding {
    /// Static learned per-channel factorized prior (ANS).
    Factorized = 0,
    /// Causal-neighbour prediction with adaptive residual models (range coder), one stream.
    Context = 1,
    /// The same in 2 to 4 streams of consecutive channels, sections `LCT0`, `LCT1`… (their
    /// number is the group count), coded and decoded in parallel: what the encoder writes for
    /// latents of 2^17 values and more.
    ContextGroups = 2,
}

/// The latents coded both ways, for the encoder to keep the smaller (and evals to compare).
#[derive(Debug, Clone)]
pub struct LatentCodings {
    /// Under the factorized prior (one ANS stream).
    pub factorized: Vec<u8>,
    /// Under the context model: one stream per channel group ([`context::group_count`]).
    pub context: Vec<Vec<u8>>,
}

impl LatentCodings {
    /// Bytes of the context model's streams together.
    pub fn context_bytes(&self) -> usize {
        self.context.iter().map(Vec::len).sum()
    }
}

/// Bytes an ANS stream can be shorter than its information content: its final state (two
/// 32-bit words) and word alignment, with room to spare.
const ANS_STATE_BYTES: usize = 64;

/// The latents in channel order, with each one's prior row (its channel).
fn factorized_symbols(values: &Array3<i32>) -> (Vec<i32>, Vec<u32>) {
    let (_, h, w) = values.dim();
    let symbols: Vec<i32> = values.iter().copied().collect();
    let indexes = (0..symbols.len()).map(|i| (i / (h * w)) as u32).collect();
    (symbols, indexes)
}

/// A container section: its tag and payload.
type Section = ([u8; 4], Vec<u8>);

/// Section tag of context group `g`.
fn group_tag(g: usize) -> [u8; 4] {
    [b'L', b'C', b'T', b'0' + g as u8]
}

/// A loaded model's encoder weights, priors and identity.
pub(crate) struct LatentCoder {
    pub(crate) weights: EncoderWeights,
    prior: FactorizedPrior,
    /// The prior's rows merged onto the coarser grids: entry `s − 1` for shift `s`.
    coarse_priors: Vec<IndexedCdfTable>,
    /// The context models' starting state: fresh, or seeded from `context.json`.
    context_models: context::ContextModels,
    /// CRC-32 of the `context.json` the models were seeded from (0: none), recorded in
    /// bitstreams.
    context_checksum: u32,
    pub(crate) model: ModelTag,
}

impl LatentCoder {
    /// From `encoder.json` and `prior.json` bytes; refuses a model of another signal kind.
    pub(crate) fn new(
        encoder_json: &[u8],
        prior_json: &[u8],
        model: ModelTag,
        signal: Signal,
    ) -> Result<Self> {
        let weights = EncoderWeights::from_json(encoder_json)?;
        if weights.signal != signal {
            return Err(WallocError::Model(format!(
                "encoder.json describes a {:?} model, expected {signal:?}",
                weights.signal
            )));
        }
        let text = std::str::from_utf8(prior_json)
            .map_err(|_| WallocError::Model("prior is not UTF-8".into()))?;
        let prior = FactorizedPrior::from_file(&TableFile::from_json(text)?)?;
        if prior.channels() != weights.latent_dim {
            return Err(WallocError::Model(format!(
                "prior has {} channels, the encoder {}",
                prior.channels(),
                weights.latent_dim
            )));
        }
        let coarse_priors = (1..weights.bits - 1)
            .map(|shift| coarse_table(prior.table(), shift))
            .collect::<Result<_>>()?;
        let context_models = context::ContextModels::new(weights.latent_dim, None)?;
        Ok(Self {
            weights,
            prior,
            coarse_priors,
            context_models,
            context_checksum: 0,
            model,
        })
    }

    /// From a model's assets fetched by name (`encoder`, `prior` required; `context`
    /// optional). `read` answers `Ok(None)` for an asset the model does not ship.
    pub(crate) fn from_assets(
        read: impl Fn(&str) -> std::result::Result<Option<Vec<u8>>, String>,
        model: ModelTag,
        signal: Signal,
    ) -> Result<Self> {
        let get =
            |name: &str| read(name).map_err(|e| WallocError::Model(format!("asset `{name}`: {e}")));
        let need = |name: &str| {
            get(name)?.ok_or_else(|| WallocError::Model(format!("asset `{name}` is missing")))
        };
        let coder = Self::new(&need("encoder")?, &need("prior")?, model, signal)?;
        match get("context")? {
            Some(bytes) => coder.with_context_prior(&bytes),
            None => Ok(coder),
        }
    }

    /// Starts the context models from learned counts (`context.json`).
    pub(crate) fn with_context_prior(mut self, context_json: &[u8]) -> Result<Self> {
        let prior = context::ContextPrior::from_json(context_json, self.weights.latent_dim)?;
        self.context_models = context::ContextModels::new(self.weights.latent_dim, Some(&prior))?;
        self.context_checksum = crc32fast::hash(context_json);
        Ok(self)
    }

    fn layout(&self) -> context::Layout {
        match self.weights.signal {
            Signal::Image => context::Layout::Plane,
            Signal::Audio => context::Layout::Sequence,
        }
    }

    fn context_checksum(&self) -> u64 {
        u64::from(self.context_checksum)
    }

    /// Most bits that can be dropped from the latents (at least 2 bits remain).
    pub(crate) fn max_shift(&self) -> u32 {
        self.weights.bits - 2
    }

    /// The shift that leaves `latent_bits` bits (0: the model's own), or why it cannot.
    pub(crate) fn shift_for(&self, latent_bits: u32) -> Result<u32> {
        let bits = self.weights.bits;
        match latent_bits {
            0 => Ok(0),
            b if (2..=bits).contains(&b) => Ok(bits - b),
            b => Err(WallocError::Invalid(format!(
                "latent_bits {b} is outside 2..={bits} for this model"
            ))),
        }
    }

    fn prior_table(&self, shift: u32) -> &IndexedCdfTable {
        match shift {
            0 => self.prior.table(),
            s => &self.coarse_priors[s as usize - 1],
        }
    }

    /// The latents coded by the context model, in [`context::group_count`] streams.
    fn context_streams(&self, values: &Array3<i32>) -> Result<Vec<Vec<u8>>> {
        context::encode_context_groups(
            values,
            &self.context_models,
            self.layout(),
            context::group_count(values.dim()),
        )
    }

    /// The latents (on the grid of `shift`) coded both ways.
    pub(crate) fn code_latents(&self, values: &Array3<i32>, shift: u32) -> Result<LatentCodings> {
        let (symbols, indexes) = factorized_symbols(values);
        // The codings are independent: they share the rayon pool, each under this thread's
        // interrupt flag.
        let interrupt = terse_entropy::interrupt::handle();
        let (factorized, contextual) = rayon::join(
            || {
                interrupt.run(|| {
                    self.prior_table(shift)
                        .encode_with_indexes(&symbols, &indexes)
                })
            },
            || interrupt.run(|| self.context_streams(values)),
        );
        Ok(LatentCodings {
            factorized: factorized?,
            context: contextual?,
        })
    }

    /// The latents' sections coded the smaller way (what [`Self::code_latents`] then a size
    /// comparison give), without running the factorized coding when its information content
    /// alone is larger than the context coding: an ANS stream is never shorter than that by
    /// more than [`ANS_STATE_BYTES`], so it could not be the smaller one. The context model
    /// nearly always wins (by 21–29 % on photos), so the encoder usually codes the latents once.
    fn smaller_coding(
        &self,
        values: &Array3<i32>,
        shift: u32,
    ) -> Result<(LatentCoding, Vec<Section>)> {
        let (symbols, indexes) = factorized_symbols(values);
        let table = self.prior_table(shift);
        let interrupt = terse_entropy::interrupt::handle();
        let (ideal_bits, contextual) = rayon::join(
            || interrupt.run(|| table.ideal_bits(&symbols, &indexes)),
            || interrupt.run(|| self.context_streams(values)),
        );
        let mut contextual = contextual?;
        let context_bytes: usize = contextual.iter().map(Vec::len).sum();
        let factorized_at_least = (ideal_bits? / 8.0) as usize;
        let factorized = if factorized_at_least > context_bytes + ANS_STATE_BYTES {
            None
        } else {
            Some(table.encode_with_indexes(&symbols, &indexes)?)
        };
        Ok(match factorized {
            Some(factorized) if factorized.len() <= context_bytes => {
                (LatentCoding::Factorized, vec![(*b"LATN", factorized)])
            }
            _ if contextual.len() == 1 => (
                LatentCoding::Context,
                vec![(*b"LCTX", contextual.remove(0))],
            ),
            _ => {
                let tagged = contextual.into_iter().enumerate();
                let sections = tagged.map(|(g, stream)| (group_tag(g), stream)).collect();
                (LatentCoding::ContextGroups, sections)
            }
        })
    }

    /// A container for this model holding the latents, coded the smaller way; the caller adds
    /// its own header fields.
    pub(crate) fn container(
        &self,
        codec: terse_entropy::CodecId,
        values: &Array3<i32>,
        shift: u32,
    ) -> Result<Container> {
        let (coding, sections) = self.smaller_coding(values, shift)?;
        let mut container = Container::new(codec);
        container.model = Some(self.model.clone());
        container.put_u64("latent_dim", self.weights.latent_dim as u64);
        container.put_u64("levels", u64::from(self.weights.levels));
        container.put_u64("latent_coding", coding as u64);
        container.put_u64("latent_shift", u64::from(shift));
        if coding != LatentCoding::Factorized {
            container.put_u64("context_prior", self.context_checksum());
        }
        for (tag, payload) in sections {
            container.push_section(tag, payload);
        }
        Ok(container)
    }

    /// Parses a bitstream of this codec and model (codec id, model tag and latent shape fields
    /// are checked).
    pub(crate) fn open(
        &self,
        bitstream: &[u8],
        codec: terse_entropy::CodecId,
    ) -> Result<Container> {
        let container = Container::parse(bitstream)?;
        container.expect_codec(codec)?;
        match &container.model {
            Some(m) if *m == self.model => {}
            Some(m) => {
                return Err(WallocError::Invalid(format!(
                    "bitstream was coded with model `{}` ({}), this codec is `{}` ({})",
                    m.name,
                    hex(&m.sha256_prefix),
                    self.model.name,
                    hex(&self.model.sha256_prefix)
                )));
            }
            None => return Err(WallocError::Invalid("bitstream names no model".into())),
        }
        if container.u64("latent_dim")? != self.weights.latent_dim as u64
            || container.u64("levels")? != u64::from(self.weights.levels)
        {
            return Err(WallocError::Invalid(
                "latent shape fields do not match the model".into(),
            ));
        }
        Ok(container)
    }

    /// Decodes the latents `[L, h, w]` of an opened container and their grid shift.
    pub(crate) fn read_latents(
        &self,
        container: &Container,
        (h, w): (usize, usize),
    ) -> Result<(Array3<i32>, u32)> {
        let shift = container.u64("latent_shift")?;
        if shift > u64::from(self.max_shift()) {
            return Err(WallocError::Invalid(format!(
                "latent shift {shift} exceeds {}",
                self.max_shift()
            )));
        }
        let shift = shift as u32;
        let values = self.read_values(container, (h, w), shift)?;
        Ok((values, shift))
    }

    fn read_values(
        &self,
        container: &Container,
        (h, w): (usize, usize),
        shift: u32,
    ) -> Result<Array3<i32>> {
        let l = self.weights.latent_dim;
        let bound = self.weights.max_level_at(shift);
        match container.u64("latent_coding")? {
            0 => {
                let indexes: Vec<u32> = (0..l * h * w).map(|i| (i / (h * w)) as u32).collect();
                let symbols = self
                    .prior_table(shift)
                    .decode_with_indexes(container.section(*b"LATN")?, &indexes)?;
                if symbols.iter().any(|s| s.abs() > bound) {
                    return Err(WallocError::Invalid(format!(
                        "a latent lies outside ±{bound}"
                    )));
                }
                Ok(Array3::from_shape_vec((l, h, w), symbols).expect("sized above"))
            }
            coding @ (1 | 2) => {
                if container.u64("context_prior")? != self.context_checksum() {
                    return Err(WallocError::Invalid(
                        "bitstream was coded with another context prior".into(),
                    ));
                }
                let streams = if coding == 1 {
                    vec![container.section(*b"LCTX")?]
                } else {
                    // The groups are the sections LCT0, LCT1, … in order, and nothing else.
                    let streams: Vec<&[u8]> = container
                        .sections()
                        .enumerate()
                        .map_while(|(g, (tag, payload))| {
                            (g < context::MAX_GROUPS && tag == group_tag(g)).then_some(payload)
                        })
                        .collect();
                    if streams.len() < 2 || streams.len() != container.sections().count() {
                        return Err(WallocError::Invalid(format!(
                            "context-group coding needs 2 to {} sections LCT0, LCT1, … and \
                             nothing else",
                            context::MAX_GROUPS
                        )));
                    }
                    streams
                };
                context::decode_context_groups(
                    &streams,
                    (l, h, w),
                    bound,
                    &self.context_models,
                    self.layout(),
                )
            }
            other => Err(WallocError::Invalid(format!(
                "unknown latent coding {other}"
            ))),
        }
    }

    /// Decoder input for integer latents on the grid of `shift` (same shape), from the fixed
    /// ToNormal table.
    pub(crate) fn normal_latents(&self, values: &Array3<i32>, shift: u32) -> Array3<f32> {
        let table = &self.weights.to_normal;
        let bound = self.weights.max_level();
        values.mapv(|q| table[((q << shift).clamp(-bound, bound) + bound) as usize])
    }
}

/// A prior's rows merged onto the grid `2^shift` times coarser: coarse value `c` gets the
/// frequencies of the fine values that round to it (`round(v / 2^shift)`, halves away from
/// zero), the escape keeps its own. Integer sums, so every machine builds the same table.
fn coarse_table(fine: &IndexedCdfTable, shift: u32) -> Result<IndexedCdfTable> {
    let step = 1i64 << shift;
    let coarse_of = |v: i64| (v.signum() * ((v.abs() + step / 2) >> shift)) as i32;
    let (mut pmfs, mut tails, mut offsets) = (Vec::new(), Vec::new(), Vec::new());
    for row in 0..fine.rows() {
        let cdf = fine.cdf(row);
        let offset = i64::from(fine.offset(row));
        let values = cdf.len() - 2; // the last interval is the escape
        let lo = coarse_of(offset);
        let hi = coarse_of(offset + values as i64 - 1);
        let mut pmf = vec![0f64; (hi - lo + 1) as usize];
        for k in 0..values {
            let freq = f64::from(cdf[k + 1] - cdf[k]);
            pmf[(coarse_of(offset + k as i64) - lo) as usize] += freq;
        }
        pmfs.push(pmf);
        tails.push(f64::from(cdf[values + 1] - cdf[values]));
        offsets.push(lo);
    }
    Ok(IndexedCdfTable::from_pmfs(&pmfs, &tails, &offsets)?)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
