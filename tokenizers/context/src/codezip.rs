//! LongCodeZip: a local causal LM's conditional perplexity decides which functions of a
//! source file, and which blocks of them, survive (`terse_perplexity::codezip`).

use std::sync::Arc;

use terse_causal_lm::CausalLm;
use terse_core::{Error, Worker};
use terse_perplexity::codezip::{CodeOptions, Language, compress_code};

use crate::{
    CompressFuture, Compression, ContextCompressor, ContextInput, Stage, perplexity::check_context,
    within,
};

/// LongCodeZip with one causal LM, for one source file (the input's one context); the input's
/// query is what the kept code must serve (the code before a completion point, or a
/// question).
pub struct CodeZip {
    lm: Arc<CausalLm>,
    options: CodeOptions,
    instruction: String,
    language: String,
}

impl CodeZip {
    /// Compresses with `lm` as `options` say, reading the code as `language` (`python`,
    /// `rust`; empty: detected); `instruction` goes in front of the result uncompressed.
    pub fn new(
        lm: Arc<CausalLm>,
        options: CodeOptions,
        instruction: String,
        language: String,
    ) -> Self {
        Self {
            lm,
            options,
            instruction,
            language,
        }
    }
}

impl ContextCompressor for CodeZip {
    fn compress<'a>(&'a self, input: ContextInput, worker: &'a dyn Worker) -> CompressFuture<'a> {
        Box::pin(async move {
            let [code] = input.contexts.as_slice() else {
                return Err(Error::invalid(format!(
                    "LongCodeZip compresses one source file: give it as the one context, not {}",
                    input.contexts.len()
                )));
            };
            if code.trim().is_empty() {
                return Err(Error::invalid("the code is empty"));
            }
            let language = Language::from_hint(&self.language, code)?;
            let counter = terse_text::TokenCounter::default();
            let texts = [code.clone(), input.query.clone(), self.instruction.clone()];
            // The code's count is the origin's; the query and instruction only count against
            // the limit.
            let origin_tokens = counter.count(code);
            let others = counter.count(&input.query) + counter.count(&self.instruction);
            within(origin_tokens + others, input.max_tokens, "prompt")?;
            check_context(&self.lm, &texts)?;
            let result = compress_code(
                &self.lm,
                worker,
                code,
                &input.query,
                &self.instruction,
                language,
                &self.options,
            )
            .await?;
            Ok(Compression {
                text: result.compressed_prompt.clone(),
                origin_tokens,
                compressed_tokens: counter.count(&result.compressed_code),
                stages: vec![Stage::Code(result)],
            })
        })
    }
}
