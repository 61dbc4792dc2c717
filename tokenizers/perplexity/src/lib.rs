//! Prompt compression by the perplexity of a local causal LM (issue 21): LLMLingua-1 first
//! ([`llmlingua1`]), on [`terse_causal_lm::CausalLm`] and its KV cache.

pub mod llmlingua1;

pub use llmlingua1::{Compressed, Options, compress_prompt, compress_tokens};
