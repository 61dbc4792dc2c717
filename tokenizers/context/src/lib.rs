//! Context compressors: what turns prompt pieces or retrieved documents into a shorter context
//! for a target LLM, behind one trait.
//!
//! - [`ContextCompressor`]: contexts (and a query) in, a [`Compression`] out. Its
//!   implementations are [`Lingua2`] (LLMLingua-2 keep/drop classification), [`Perplexity`]
//!   (LLMLingua-1 and LongLLMLingua on a local causal LM), [`CodeZip`] (LongCodeZip on the
//!   same LM, for source code), [`Recomp`] (RECOMP sentence
//!   selection) and [`Sequence`], which runs compressors one after another (RECOMP then
//!   LLMLingua-2 is a `Sequence`).
//! - The networks they run, [`KeepClassifier`] and [`SentenceEncoder`], call a
//!   [`terse_core::Network`]: the model runtime's ONNX models in the server, a
//!   [`terse_core::FakeNetwork`] in tests.
//!
//! CPU work (tokenization, planning, selection) runs on the caller's [`Worker`].

mod codezip;
mod lingua2;
mod networks;
mod perplexity;
mod recomp;
mod sequence;

use terse_core::{BoxFuture, Error, Worker};

pub use codezip::CodeZip;
pub use lingua2::Lingua2;
pub use networks::{KeepClassifier, SentenceEncoder};
pub use perplexity::Perplexity;
pub use recomp::{Recomp, SentenceSelection};
pub use sequence::Sequence;

/// What a compressor reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextInput {
    /// The contexts (prompt pieces or retrieved documents), in order.
    pub contexts: Vec<String>,
    /// The question the context is for (query-aware methods; may be empty for the others).
    pub query: String,
    /// Most target-LLM tokens the contexts may hold together, checked before any network
    /// runs (over it: invalid input).
    pub max_tokens: usize,
}

/// What one compressor did.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// LLMLingua-2's result.
    Lingua2(terse_lingua::Compressed),
    /// RECOMP's scored and kept sentences.
    Selection(SentenceSelection),
    /// LLMLingua-1's or LongLLMLingua's result.
    Perplexity(terse_perplexity::Compressed),
    /// LongCodeZip's result.
    Code(terse_perplexity::codezip::CodeCompressed),
}

/// What a compression produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Compression {
    /// The compressed context.
    pub text: String,
    /// Target-LLM (cl100k) tokens of the input.
    pub origin_tokens: usize,
    /// Target-LLM tokens of `text`.
    pub compressed_tokens: usize,
    /// What each compressor that ran did, in order (one for a single compressor).
    pub stages: Vec<Stage>,
}

impl Compression {
    /// `origin_tokens / compressed_tokens` (1 when nothing is left).
    pub fn ratio(&self) -> f64 {
        match self.compressed_tokens {
            0 => 1.0,
            n => self.origin_tokens as f64 / n as f64,
        }
    }
}

/// A context compressor.
///
/// ```
/// use terse_context::{CompressFuture, Compression, ContextCompressor, ContextInput, Sequence};
/// use terse_core::{Inline, Worker, block_on};
///
/// /// Keeps the first context only.
/// struct First;
///
/// impl ContextCompressor for First {
///     fn compress<'a>(&'a self, input: ContextInput, _: &'a dyn Worker) -> CompressFuture<'a> {
///         let text = input.contexts.first().cloned().unwrap_or_default();
///         Box::pin(async move {
///             Ok(Compression { origin_tokens: input.contexts.len(), compressed_tokens: 1,
///                              text, stages: Vec::new() })
///         })
///     }
/// }
///
/// let both = Sequence::new(vec![Box::new(First), Box::new(First)]);
/// let input = ContextInput { contexts: vec!["a".into(), "b".into()], ..Default::default() };
/// let out = block_on(both.compress(input, &Inline)).unwrap();
/// assert_eq!(out.text, "a");
/// assert_eq!(out.origin_tokens, 2);
/// ```
pub trait ContextCompressor: Send + Sync {
    /// Compresses `input`.
    fn compress<'a>(&'a self, input: ContextInput, worker: &'a dyn Worker) -> CompressFuture<'a>;
}

/// What [`ContextCompressor::compress`] returns.
pub type CompressFuture<'a> = BoxFuture<'a, Result<Compression, Error>>;

/// Target-LLM tokens of texts, refused over `max_tokens` (`what`: "prompt", "documents").
pub(crate) fn count_within(
    counter: &terse_text::TokenCounter,
    texts: &[String],
    max_tokens: usize,
    what: &str,
) -> Result<usize, Error> {
    let tokens = texts.iter().map(|t| counter.count(t)).sum();
    within(tokens, max_tokens, what)
}

/// `tokens` target-LLM tokens (already counted), refused over `max_tokens` as
/// [`count_within`] refuses them.
pub(crate) fn within(tokens: usize, max_tokens: usize, what: &str) -> Result<usize, Error> {
    if tokens > max_tokens {
        return Err(Error::invalid(format!(
            "the {what} {} {tokens} tokens, over the limit of {max_tokens}",
            if what.ends_with('s') { "have" } else { "has" }
        )));
    }
    Ok(tokens)
}
