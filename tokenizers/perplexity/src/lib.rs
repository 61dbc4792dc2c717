//! Prompt compression by the perplexity of a local causal LM (issue 21): LLMLingua-1 and
//! LongLLMLingua ([`llmlingua`]) for prose, LongCodeZip ([`codezip`]) for source code, on
//! [`terse_causal_lm::CausalLm`] and its KV cache.

pub mod codezip;
pub mod llmlingua;

pub use llmlingua::{
    Compressed, Condition, Options, Rank, Reorder, TokenPass, compress_prompt, compress_tokens,
};
