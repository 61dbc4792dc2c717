//! `encode-kv` / `decode-kv`: a KV cache in a safetensors file (one tensor `kv`, shape
//! `[layers, 2 (key, value), kv_heads, tokens, head_dim]`, F32, F16 or BF16) to a lossy
//! `.terse-kv` bitstream and back.

use std::{collections::HashMap, path::PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use terse_client::proto::tensor::v1::KvCache;

use crate::Connection;

/// The tensor a KV-cache safetensors file holds.
pub const TENSOR: &str = "kv";

/// `encode-kv` options.
#[derive(Debug, Args)]
pub struct EncodeKvArgs {
    /// safetensors file with one tensor `kv` [layers, 2, kv_heads, tokens, head_dim].
    input: PathBuf,
    /// The causal LM the cache is of (a model of the server's repository).
    #[arg(long)]
    model: String,
    /// Quality level, 1 (smallest) to 8 (closest); 0: the server's default.
    #[arg(long, default_value_t = 0)]
    level: u32,
    /// Leading tokens kept in fp16 (the attention sink); default 1.
    #[arg(long)]
    sink_tokens: Option<u32>,
    /// Output file; default: the input with `.terse-kv` in place of its extension.
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
}

/// `decode-kv` options.
#[derive(Debug, Args)]
pub struct DecodeKvArgs {
    /// A `.terse-kv` bitstream.
    input: PathBuf,
    /// Output safetensors file; default: the input with `.safetensors` in place of its
    /// extension.
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
}

/// The `KvCache` message of a safetensors file.
fn read_cache(file: &[u8]) -> anyhow::Result<KvCache> {
    let tensors = SafeTensors::deserialize(file).context("not a safetensors file")?;
    let view = tensors
        .tensor(TENSOR)
        .with_context(|| format!("the file has no tensor `{TENSOR}`"))?;
    let dtype = match view.dtype() {
        Dtype::F32 => "fp32",
        Dtype::F16 => "fp16",
        Dtype::BF16 => "bf16",
        other => bail!("`{TENSOR}` is {other:?}; a KV cache is F32, F16 or BF16"),
    };
    let &[layers, 2, kv_heads, tokens, head_dim] = view.shape() else {
        bail!(
            "`{TENSOR}` has shape {:?}; a KV cache is [layers, 2, kv_heads, tokens, head_dim]",
            view.shape()
        );
    };
    let dim = |d: usize| u32::try_from(d).context("a dimension over 2^32");
    Ok(KvCache {
        layers: dim(layers)?,
        kv_heads: dim(kv_heads)?,
        tokens: dim(tokens)?,
        head_dim: dim(head_dim)?,
        dtype: dtype.into(),
        values: view.data().to_vec(),
    })
}

fn output(input: &std::path::Path, out: Option<PathBuf>, extension: &str) -> PathBuf {
    out.unwrap_or_else(|| input.with_extension(extension))
}

/// `terse-cli encode-kv`.
pub async fn encode(connection: &Connection, args: EncodeKvArgs) -> anyhow::Result<bool> {
    let file =
        std::fs::read(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    let cache = read_cache(&file).with_context(|| args.input.display().to_string())?;
    let (client, _local) = connection.open(&["tensor"]).await?;
    let encoded = client
        .encode_kv_cache(&args.model, cache, args.level, args.sink_tokens)
        .await?;
    let out = output(&args.input, args.out, "terse-kv");
    std::fs::write(&out, &encoded.bitstream)
        .with_context(|| format!("writing {}", out.display()))?;
    let rd = encoded.rate_distortion.unwrap_or_default();
    eprintln!(
        "{} -> {}: {} bytes, {:.3} bits/element, SNR {:.1} dB, max error {:.4}",
        args.input.display(),
        out.display(),
        rd.compressed_bytes,
        rd.bits_per_element.unwrap_or_default(),
        rd.snr_db.unwrap_or_default(),
        encoded.max_abs_error
    );
    Ok(true)
}

/// `terse-cli decode-kv`.
pub async fn decode(connection: &Connection, args: DecodeKvArgs) -> anyhow::Result<bool> {
    let bitstream =
        std::fs::read(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    let (client, _local) = connection.open(&["tensor"]).await?;
    let decoded = client.decode_kv_cache(&bitstream).await?;
    let cache = decoded
        .cache
        .context("the server answered without a cache")?;
    let dtype = match cache.dtype.as_str() {
        "fp32" => Dtype::F32,
        "fp16" => Dtype::F16,
        "bf16" => Dtype::BF16,
        other => bail!("the server answered with dtype `{other}`"),
    };
    let shape = [
        cache.layers,
        2,
        cache.kv_heads,
        cache.tokens,
        cache.head_dim,
    ]
    .map(|d| d as usize)
    .to_vec();
    let view = TensorView::new(dtype, shape, &cache.values).context("the decoded cache")?;
    let metadata = HashMap::from([
        ("model".to_string(), decoded.model.clone()),
        ("level".to_string(), decoded.level.to_string()),
    ]);
    let file = safetensors::serialize([(TENSOR, view)], Some(metadata))?;
    let out = output(&args.input, args.out, "safetensors");
    std::fs::write(&out, file).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "{} -> {}: {} tokens of {} (level {})",
        args.input.display(),
        out.display(),
        cache.tokens,
        decoded.model,
        decoded.level
    );
    Ok(true)
}
