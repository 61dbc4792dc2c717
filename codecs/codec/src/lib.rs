//! The [`Codec`] trait and the [`CodecRegistry`].
//!
//! A codec turns media (an image, an audio clip) into a terse bitstream and back. Learned
//! codecs run their networks through [`terse_core::Network`] and their blocking work on a
//! [`terse_core::Worker`], so the server, the tools and the tests run one code path; the
//! networks of a test are [`terse_core::FakeNetwork`]s.
//!
//! The registry holds the codecs of one media kind, picks one by name (empty: the default) or
//! by the model a bitstream's container names, with the model-tag check, and lists their
//! [`CodecInfo`]. Which implementations exist is listed once, where models are hosted
//! (`terse-hosting`).

mod registry;

use std::sync::Arc;

use terse_core::{BoxFuture, Error, TensorData, Worker};
use terse_entropy::{CodecId, ModelTag};

pub use registry::CodecRegistry;

/// A codec of media `M` with knobs `K`, as registries hold it.
pub type DynCodec<M, K = ()> = dyn Codec<Media = M, Knobs = K>;

/// The repository model a codec runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    /// Model name in its manifest.
    pub name: String,
    /// Model version in its manifest.
    pub version: String,
}

/// What a codec says about itself (what `ListCodecs` answers).
#[derive(Debug, Clone, PartialEq)]
pub struct CodecInfo {
    /// The codec's name: what requests pick it by, and what its bitstreams' model tag names.
    pub name: String,
    /// The family (`walloc`, `mlic`).
    pub family: &'static str,
    /// The container codec id of its bitstreams.
    pub id: CodecId,
    /// The model it runs.
    pub model: ModelRef,
    /// One line for people.
    pub description: String,
    /// Latent channels.
    pub latent_channels: u32,
    /// Wavelet levels (MLIC: its ×16 analysis, 4 stride-2 stages).
    pub levels: u32,
    /// Bits per latent (0: not a knob of this codec).
    pub latent_bits: u32,
    /// Sample rate in Hz (audio codecs; 0 otherwise).
    pub sample_rate: u32,
    /// Channels the codec codes.
    pub channels: u32,
    /// The model identity its bitstreams carry (`None`: bitstreams name no model).
    pub tag: Option<ModelTag>,
}

impl CodecInfo {
    /// The info of a codec that runs no learned model (splat, tensor): its own name names its
    /// model, at `version` (its crate's), and it has no latents, levels or audio facts.
    pub fn model_free(
        name: &str,
        family: &'static str,
        id: CodecId,
        version: &str,
        description: &str,
    ) -> Self {
        Self {
            name: name.into(),
            family,
            id,
            model: ModelRef {
                name: name.into(),
                version: version.into(),
            },
            description: description.into(),
            latent_channels: 0,
            levels: 0,
            latent_bits: 0,
            sample_rate: 0,
            channels: 0,
            tag: None,
        }
    }

    /// The info of a codec that runs the learned model `tag` names, at `version` of its
    /// manifest: the codec is named after its model and its bitstreams carry `tag`. Latent,
    /// level and audio facts start at 0 for the caller to fill in.
    pub fn learned(
        tag: &ModelTag,
        version: &str,
        family: &'static str,
        id: CodecId,
        description: String,
    ) -> Self {
        Self {
            tag: Some(tag.clone()),
            description,
            ..Self::model_free(&tag.name, family, id, version, "")
        }
    }
}

/// Declares a codec that runs no learned model (splat, tensor): a struct holding its
/// [`CodecInfo::model_free`] info in a private field `info`, with the codec's name as `NAME`,
/// `new` and `Default`. The calling crate's version is the model version the info gives.
///
/// ```
/// use terse_entropy::CodecId;
///
/// terse_codec::model_free_codec! {
///     /// Stores bytes as they are.
///     pub struct Verbatim = "verbatim", family "test", CodecId::Test, "stores bytes as they are";
/// }
/// let codec = Verbatim::new();
/// assert_eq!(codec.info.name, Verbatim::NAME);
/// assert_eq!(codec.info.model.version, env!("CARGO_PKG_VERSION"));
/// ```
#[macro_export]
macro_rules! model_free_codec {
    (
        $(#[$doc:meta])*
        pub struct $codec:ident = $name:literal, family $family:literal, $id:expr, $description:expr;
    ) => {
        $(#[$doc])*
        pub struct $codec {
            info: $crate::CodecInfo,
        }

        impl $codec {
            /// The codec's name.
            pub const NAME: &str = $name;

            /// The codec.
            pub fn new() -> Self {
                let version = env!("CARGO_PKG_VERSION");
                Self {
                    info: $crate::CodecInfo::model_free($name, $family, $id, version, $description),
                }
            }
        }

        impl Default for $codec {
            fn default() -> Self {
                Self::new()
            }
        }
    };
}

/// Per-request knobs: those every codec understands, and the codec's own (`K`,
/// [`Codec::Knobs`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeOptions<K = ()> {
    /// Bits per latent (0: the model's own); codecs without this knob refuse any other value.
    pub latent_bits: u32,
    /// Also decode what was coded (to measure quality or return it).
    pub reconstruct: bool,
    /// Also return the quantized latents (codecs without latents refuse).
    pub latents: bool,
    /// The codec's own knobs.
    pub knobs: K,
}

impl<K> EncodeOptions<K> {
    /// Refuses the knobs only codecs with latents take (`latent_bits`, `latents`), for the
    /// codec `codec` (its name in the message), which has none.
    pub fn refuse_latents(&self, codec: &str) -> Result<(), Error> {
        if self.latent_bits != 0 || self.latents {
            return Err(Error::invalid(format!(
                "the {codec} codec has no latents: latent_bits and latents do not apply"
            )));
        }
        Ok(())
    }

    /// The work these options ask for, for the working-memory estimate.
    pub fn work(&self) -> Work {
        match self.reconstruct {
            true => Work::EncodeAndDecode,
            false => Work::Encode,
        }
    }
}

/// What an encode produced.
#[derive(Debug, Clone)]
pub struct Encoding<M> {
    /// The bitstream (a terse container).
    pub bitstream: Vec<u8>,
    /// The media decoded from the coded latents, when asked for.
    pub reconstruction: Option<M>,
    /// The quantized latents, when asked for.
    pub latents: Option<TensorData>,
    /// Bits per latent used (0 where that is not a knob).
    pub latent_bits: u32,
    /// What the reconstruction is to be compared with, where the codec did not code the
    /// input as it came (splats dropped or reordered); `None`: the input itself.
    pub reference: Option<M>,
}

impl<M> Encoding<M> {
    /// A bare bitstream: no reconstruction, latents or reference.
    pub fn bitstream(bitstream: Vec<u8>) -> Self {
        Self {
            bitstream,
            reconstruction: None,
            latents: None,
            latent_bits: 0,
            reference: None,
        }
    }
}

/// Work a call asks of a codec, for its working-memory estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Encode only.
    Encode,
    /// Encode and decode again (quality, reconstruction).
    EncodeAndDecode,
    /// Decode a bitstream.
    Decode,
}

/// Peak working memory per media unit (pixel, sample, byte, value) of a codec's encode and
/// decode, in bytes (or in the fraction of a byte its codec divides by), as its cost model
/// gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitCost {
    /// To encode only.
    pub encode: u64,
    /// To decode.
    pub decode: u64,
}

impl UnitCost {
    /// `encode` per unit to encode, `decode` to decode.
    pub const fn new(encode: u64, decode: u64) -> Self {
        Self { encode, decode }
    }
}

impl Work {
    /// Memory of this work over media of `shape` (the product of its dimensions is the units)
    /// at `cost` per unit; an encode that decodes again costs the larger of the two.
    pub fn memory(self, shape: &[u64], cost: UnitCost) -> u64 {
        let per_unit = match self {
            Work::Encode => cost.encode,
            Work::Decode => cost.decode,
            Work::EncodeAndDecode => cost.encode.max(cost.decode),
        };
        shape.iter().fold(per_unit, |n, &d| n.saturating_mul(d))
    }
}

/// A codec of one media kind.
///
/// ```
/// use std::sync::Arc;
/// use terse_codec::{
///     Codec, CodecInfo, DecodeCall, DecodeFuture, EncodeCall, EncodeFuture, EncodeOptions,
///     Encoding, ModelRef, Work,
/// };
/// use terse_core::{Inline, block_on};
/// use terse_entropy::CodecId;
///
/// /// Stores bytes as they are: the smallest codec there is.
/// struct Verbatim(CodecInfo);
///
/// impl Codec for Verbatim {
///     type Media = Vec<u8>;
///     type Knobs = ();
///     fn info(&self) -> &CodecInfo { &self.0 }
///     fn working_memory(&self, _work: Work, shape: &[u64]) -> u64 { 2 * shape[0] }
///     fn encode<'a>(&'a self, call: EncodeCall<'a, Vec<u8>>) -> EncodeFuture<'a, Vec<u8>> {
///         Box::pin(async move { Ok(Encoding::bitstream(call.media.to_vec())) })
///     }
///     fn decode<'a>(&'a self, call: DecodeCall<'a>) -> DecodeFuture<'a, Vec<u8>> {
///         Box::pin(async move { Ok(call.bitstream) })
///     }
/// }
///
/// let codec = Verbatim(CodecInfo {
///     name: "verbatim".into(), family: "test", id: CodecId::Test,
///     model: ModelRef { name: "none".into(), version: "1".into() }, description: String::new(),
///     latent_channels: 0, levels: 0, latent_bits: 0, sample_rate: 0, channels: 1, tag: None,
/// });
/// let media = Arc::new(vec![1, 2, 3]);
/// let call = EncodeCall { media, options: EncodeOptions::default(), worker: &Inline };
/// let coded = block_on(codec.encode(call)).unwrap();
/// let call = DecodeCall { bitstream: coded.bitstream, max_units: 3, worker: &Inline };
/// assert_eq!(block_on(codec.decode(call)).unwrap(), [1, 2, 3]);
/// ```
pub trait Codec: Send + Sync {
    /// The media it codes (`RgbImage`, `AudioClip`, `SplatScene`).
    type Media: Send + Sync + 'static;
    /// Its own encode knobs (`()` where it has none).
    type Knobs: Default + Send + Sync + 'static;

    /// What it says about itself.
    fn info(&self) -> &CodecInfo;

    /// The model identity its bitstreams carry (`None`: bitstreams name no model); the
    /// info's [`CodecInfo::tag`].
    fn tag(&self) -> Option<&ModelTag> {
        self.info().tag.as_ref()
    }

    /// Peak working memory in bytes of `work` on media of `shape`, estimated before the work
    /// starts. `shape` by media: an image's width and height; an audio clip's frames and
    /// channels; a splat scene's splat count and SH degree; a weights file's bytes (one
    /// tensor's, for a read of one tensor); a KV cache's value count.
    fn working_memory(&self, work: Work, shape: &[u64]) -> u64;

    /// Encodes the call's media.
    fn encode<'a>(
        &'a self,
        call: EncodeCall<'a, Self::Media, Self::Knobs>,
    ) -> EncodeFuture<'a, Self::Media>;

    /// Decodes a bitstream of this codec, refusing one whose media is over the call's
    /// `max_units` before allocating for it.
    fn decode<'a>(&'a self, call: DecodeCall<'a>) -> DecodeFuture<'a, Self::Media>;
}

/// One encode call: the media, the options, and the worker its blocking work runs on.
pub struct EncodeCall<'a, M, K = ()> {
    /// The media to encode.
    pub media: Arc<M>,
    /// What to produce besides the bitstream, and the codec's knobs.
    pub options: EncodeOptions<K>,
    /// Where blocking work runs.
    pub worker: &'a dyn Worker,
}

/// One decode call: the bitstream, the most media units it may decode to, and the worker its
/// blocking work runs on.
pub struct DecodeCall<'a> {
    /// The bitstream (a terse container).
    pub bitstream: Vec<u8>,
    /// The most media units (pixels, frames, splats, bytes, values) the bitstream may decode
    /// to; more is refused before anything is allocated for it.
    pub max_units: u64,
    /// Where blocking work runs.
    pub worker: &'a dyn Worker,
}

impl<'a, M, K> EncodeCall<'a, M, K> {
    /// A call encoding `media` with `options`, its blocking work on `worker`.
    pub fn new(media: Arc<M>, options: EncodeOptions<K>, worker: &'a dyn Worker) -> Self {
        Self {
            media,
            options,
            worker,
        }
    }
}

impl<'a> DecodeCall<'a> {
    /// A call decoding `bitstream` to at most `max_units`, its blocking work on `worker`.
    pub fn new(bitstream: Vec<u8>, max_units: u64, worker: &'a dyn Worker) -> Self {
        Self {
            bitstream,
            max_units,
            worker,
        }
    }
}

/// What [`Codec::encode`] returns for media `M`.
pub type EncodeFuture<'a, M> = BoxFuture<'a, Result<Encoding<M>, Error>>;

/// What [`Codec::decode`] returns for media `M`.
pub type DecodeFuture<'a, M> = BoxFuture<'a, Result<M, Error>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encode_that_decodes_again_costs_the_larger_of_the_two() {
        let cost = UnitCost::new(30, 20);
        assert_eq!(Work::Encode.memory(&[4, 5], cost), 600);
        assert_eq!(Work::Decode.memory(&[4, 5], cost), 400);
        assert_eq!(Work::EncodeAndDecode.memory(&[4, 5], cost), 600);
        assert_eq!(Work::Decode.memory(&[u64::MAX, 2], cost), u64::MAX);
    }
}
