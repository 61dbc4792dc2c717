//! LLMLingua-1 and LongLLMLingua: a local causal LM's perplexity decides what survives
//! (`terse-perplexity` matches the Python package).

use std::sync::Arc;

use terse_causal_lm::CausalLm;
use terse_core::{Error, Worker};
use terse_perplexity::Options;

use crate::{CompressFuture, Compression, ContextCompressor, ContextInput, Stage, count_within};

/// LLMLingua-1 or LongLLMLingua (by `options.rank`) with one causal LM.
pub struct Perplexity {
    lm: Arc<CausalLm>,
    options: Options,
    instruction: String,
}

impl Perplexity {
    /// Compresses with `lm` as `options` say; `instruction` goes in front of the result
    /// uncompressed (the input's query is the question).
    pub fn new(lm: Arc<CausalLm>, options: Options, instruction: String) -> Self {
        Self {
            lm,
            options,
            instruction,
        }
    }
}

/// Refuses `texts` whose LM tokens together are over the LM's context: one request is scored
/// in one pass first, so it must fit (this also bounds the request's cost).
pub(crate) fn check_context(lm: &CausalLm, texts: &[String]) -> Result<(), Error> {
    let mut tokens = 0;
    for text in texts {
        tokens += lm.tokenize(text)?.len() + 2;
    }
    let most = lm.config().context_length;
    if tokens > most {
        return Err(Error::invalid(format!(
            "the prompt has {tokens} tokens of {}, over its context of {most}",
            lm.name()
        )));
    }
    Ok(())
}

impl ContextCompressor for Perplexity {
    fn compress<'a>(&'a self, input: ContextInput, worker: &'a dyn Worker) -> CompressFuture<'a> {
        Box::pin(async move {
            if input.contexts.iter().all(|c| c.trim().is_empty()) {
                return Err(Error::invalid(
                    "the prompt is empty: give at least one non-blank context",
                ));
            }
            let counter = terse_text::TokenCounter::default();
            let mut all = input.contexts.clone();
            all.push(input.query.clone());
            all.push(self.instruction.clone());
            count_within(&counter, &all, input.max_tokens, "prompt")?;
            check_context(&self.lm, &all)?;
            let result = terse_perplexity::compress_prompt(
                &self.lm,
                worker,
                &input.contexts,
                &self.instruction,
                &input.query,
                &self.options,
            )
            .await?;
            Ok(Compression {
                text: result.compressed_prompt.clone(),
                origin_tokens: result.origin_tokens,
                compressed_tokens: result.compressed_tokens,
                stages: vec![Stage::Perplexity(result)],
            })
        })
    }
}
