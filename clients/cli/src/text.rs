//! `compress-context`: LLMLingua-2 prompt compression, RECOMP selection for a query, or
//! LLMLingua-1 / LongLLMLingua on the server's causal LM (`--method`).

use std::{io::Read, path::PathBuf};

use anyhow::Context;
use clap::Args;
use terse_client::proto::context::v1::{
    CompressContextRequest, Document, PerplexityMethod, PerplexityOptions, PromptOptions,
};

use crate::Connection;

/// `compress-context` options.
#[derive(Debug, Args)]
pub struct ContextArgs {
    /// Text files (each one context / document); none or `-`: stdin.
    inputs: Vec<PathBuf>,
    /// Fraction of tokens to keep, (0, 1].
    #[arg(long)]
    rate: Option<f64>,
    /// Token budget instead of a rate (target-LLM tokens).
    #[arg(long)]
    target_token: Option<i64>,
    /// Words that are always kept (e.g. `\n`, `?`).
    #[arg(long = "force-token")]
    force_tokens: Vec<String>,
    /// Keep every word with a digit.
    #[arg(long)]
    force_reserve_digit: bool,
    /// A question: select the sentences of the inputs that answer it (RECOMP); with
    /// `--rate`/`--target-token` the selection is then compressed with LLMLingua-2.
    #[arg(long)]
    query: Option<String>,
    /// With `--query`: keep this many sentences.
    #[arg(long)]
    top_k: Option<u32>,
    /// With `--query`: keep sentences within this many tokens.
    #[arg(long)]
    selection_tokens: Option<u32>,
    /// Compress with LLMLingua-1 (`llmlingua`), LongLLMLingua (`longllmlingua`, the question in
    /// `--query`) or LongCodeZip (`longcodezip`: one source file, the code before a completion
    /// point or a question in `--query`) on the server's causal LM instead of LLMLingua-2 /
    /// RECOMP.
    #[arg(long, value_parser = ["llmlingua", "longllmlingua", "longcodezip"])]
    method: Option<String>,
    /// With `--method longcodezip`: the code's language (`python`, `rust`; default: detected).
    #[arg(long)]
    language: Option<String>,
}

fn read_inputs(inputs: &[PathBuf]) -> anyhow::Result<Vec<(String, String)>> {
    if inputs.is_empty() || inputs.iter().any(|p| p.as_os_str() == "-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading stdin")?;
        return Ok(vec![("stdin".into(), text)]);
    }
    inputs
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok((path.display().to_string(), text))
        })
        .collect()
}

/// `terse-cli compress-context`.
pub async fn compress(connection: &Connection, args: ContextArgs) -> anyhow::Result<bool> {
    let inputs = read_inputs(&args.inputs)?;
    let compress = args.rate.is_some() || args.target_token.is_some();
    let options = PromptOptions {
        rate: args.rate,
        target_token: args.target_token,
        force_tokens: args.force_tokens.clone(),
        force_reserve_digit: args.force_reserve_digit,
        ..Default::default()
    };
    let (client, local) = connection.open(&["context"]).await?;
    let report = |r: &terse_client::proto::context::v1::CompressPromptResponse| {
        eprintln!(
            "terse-cli: {} -> {} tokens ({}, ratio {:.2})",
            r.origin_tokens, r.compressed_tokens, r.rate, r.ratio
        );
    };
    let result = match (&args.method, &args.query) {
        (Some(method), query) => {
            let options = PerplexityOptions {
                method: match method.as_str() {
                    "longllmlingua" => PerplexityMethod::Longllmlingua,
                    "longcodezip" => PerplexityMethod::Longcodezip,
                    _ => PerplexityMethod::Llmlingua,
                } as i32,
                language: args.language.clone().unwrap_or_default(),
                rate: args.rate,
                target_token: args.target_token,
                question: query.clone().unwrap_or_default(),
                ..Default::default()
            };
            client
                .compress_prompt_llmlingua(inputs.into_iter().map(|(_, text)| text), options)
                .await
                .map(|r| {
                    report(&r);
                    r.compressed_prompt
                })
        }
        (None, None) => client
            .compress_prompt(inputs.into_iter().map(|(_, text)| text), options)
            .await
            .map(|r| {
                report(&r);
                r.compressed_prompt
            }),
        (None, Some(query)) => {
            let request = CompressContextRequest {
                query: query.clone(),
                documents: inputs
                    .into_iter()
                    .map(|(id, text)| Document {
                        id,
                        text,
                        ..Default::default()
                    })
                    .collect(),
                top_k_sentences: args.top_k,
                target_tokens: args.selection_tokens,
                then_compress: compress.then_some(options),
                ..Default::default()
            };
            client.compress_context(request).await.map(|r| {
                eprintln!(
                    "terse-cli: {} -> {} tokens ({} of {} sentences, ratio {:.2})",
                    r.original_tokens,
                    r.compressed_tokens,
                    r.sentences.len(),
                    r.sentences_scored,
                    r.compression_ratio
                );
                r.compressed_context
            })
        }
    };
    if let Some(local) = local {
        local.stop().await?;
    }
    println!("{}", result?);
    Ok(true)
}
