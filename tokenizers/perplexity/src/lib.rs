//! Prompt compression by the perplexity of a local causal LM (issue 21): LLMLingua-1 and
//! LongLLMLingua ([`llmlingua`]), on [`terse_causal_lm::CausalLm`] and its KV cache.

pub mod llmlingua;

pub use llmlingua::{
    Compressed, Condition, Options, Rank, Reorder, TokenPass, compress_prompt, compress_tokens,
};
