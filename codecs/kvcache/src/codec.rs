//! The bitstream: a terse container (codec [`CodecId::KvCache`]) naming the model (name and
//! sha256 prefix), with header fields `layers`, `kv_heads`, `head_dim`, `tokens`, `level`,
//! `sink_tokens`, `dtype` and `kv_format`, and one section per layer and kind (`K000`, `V000`,
//! `K001`, …), each CRC-checked and decodable on its own:
//!
//! ```text
//! u8      formats        bit 0: sink values f32 (else fp16)
//! ..      sink values    the first `sink_tokens` tokens, [head][token][channel], exact enough
//!                        to keep the attention sink (fp16 unless a value does not fit)
//! f32     step           quantization step of the plane: values are coded as q = round(x / step)
//! u8 × C  channel codes  per channel (head-major) bit 7: delta mode; bits 0-5: the row of the
//!                        Laplace scale table its symbols are coded with
//! ..      anchors        per channel, zigzag LEB128: the rounded mean of its q (the channel's
//!                        offset, which keys have large ones of)
//! u32     ANS length, then the ANS stream of the channels' symbols, channel after channel:
//!         direct mode q[t] - anchor; delta mode q[0] - anchor, then q[t] - q[t-1]
//! ```
//!
//! The entropy model is indexed only by integers read from the bitstream (the rows), so decoding
//! is the same on every machine.

use half::f16;
use rayon::prelude::*;
use terse_core::{KvCache, KvShape};
use terse_entropy::{
    CodecId, Container, Layout, ModelTag,
    conditional::{Family, ScaleConditional},
    interrupt,
};

use crate::error::{KvError, Result, invalid};

/// Version of the section layout above.
pub const KV_FORMAT: u64 = 1;
/// Quality levels: 1 (smallest) to [`MAX_LEVEL`] (closest to the exact cache).
pub const MAX_LEVEL: u8 = 8;
/// The level [`EncodeOptions::default`] picks.
pub const DEFAULT_LEVEL: u8 = 5;
/// Most layers a bitstream may name (section tags carry three digits).
pub const MAX_LAYERS: usize = 999;
/// Quantization step of each level as a fraction of the plane's RMS (around the channel means), before the layer factor.
const STEP_OF_LEVEL: [f32; MAX_LEVEL as usize] = [2.0, 1.4, 1.0, 0.7, 0.5, 0.35, 0.25, 0.18];
/// CacheGen's layer-wise levels: the first third of the layers, which the output is most
/// sensitive to, get a finer step, the rest a coarser one.
const EARLY_LAYER_FACTOR: f32 = 0.6;
const LATE_LAYER_FACTOR: f32 = 1.15;
/// Largest magnitude a quantized value may take (deltas stay inside i32 with room to spare).
const MAX_SYMBOL: f32 = (1 << 28) as f32;
const DELTA_MODE: u8 = 0x80;
const ROW_MASK: u8 = 0x3f;

/// How to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Quality level, 1..=[`MAX_LEVEL`]: each step up shrinks the quantization step by about
    /// √2 (more bits, closer to the exact cache).
    pub level: u8,
    /// Leading tokens kept (almost) exactly: the attention sink. Quantizing the first token
    /// alone moved the next-token log-likelihood more than quantizing all the others.
    pub sink_tokens: usize,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            level: DEFAULT_LEVEL,
            sink_tokens: 1,
        }
    }
}

/// What a bitstream's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvInfo {
    /// The model whose cache this is.
    pub model: ModelTag,
    /// Dimensions.
    pub shape: KvShape,
    /// Quality level it was encoded at.
    pub level: u8,
    /// Tokens kept exactly at the start.
    pub sink_tokens: usize,
    /// Element type of the cache that was encoded (decoding yields f32 values).
    pub dtype: String,
}

/// The quantization step of `layer` (of `layers`) at `level`, as a fraction of its plane's RMS
/// around the channel means: a decoded value is within half of it of the original.
pub fn step_fraction(level: u8, layer: usize, layers: usize) -> f32 {
    let early = layer * 3 < layers;
    STEP_OF_LEVEL[usize::from(level - 1)]
        * if early {
            EARLY_LAYER_FACTOR
        } else {
            LATE_LAYER_FACTOR
        }
}

fn section_tag(layer: usize, kv: usize) -> [u8; 4] {
    let digits = format!("{layer:03}");
    let d = digits.as_bytes();
    [if kv == 0 { b'K' } else { b'V' }, d[0], d[1], d[2]]
}

fn table() -> &'static ScaleConditional {
    static TABLE: std::sync::OnceLock<ScaleConditional> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| ScaleConditional::new(Family::Laplace))
}

/// Encodes `cache` (of the model `model`, whose values were `dtype`, e.g. "fp32").
pub fn encode(
    cache: &KvCache,
    model: &ModelTag,
    dtype: &str,
    options: &EncodeOptions,
) -> Result<Vec<u8>> {
    let shape = cache.shape();
    if !(1..=MAX_LEVEL).contains(&options.level) {
        return Err(invalid(format!(
            "level {} is outside 1..={MAX_LEVEL}",
            options.level
        )));
    }
    check_shape(&shape)?;
    if let Some(i) = cache.values().iter().position(|v| !v.is_finite()) {
        return Err(invalid(format!(
            "the KV cache holds a non-finite value ({}) at element {i}",
            cache.values()[i]
        )));
    }
    let sink = options.sink_tokens.min(shape.tokens);
    let stop = interrupt::handle();
    let planes: Vec<(usize, usize)> = (0..shape.layers)
        .flat_map(|layer| [(layer, 0), (layer, 1)])
        .collect();
    let payloads: Vec<Vec<u8>> = planes
        .par_iter()
        .map(|&(layer, kv)| {
            stop.check()?;
            let step = step_fraction(options.level, layer, shape.layers);
            encode_plane(cache.plane(layer, kv), &shape, sink, step)
        })
        .collect::<Result<_>>()?;
    let mut container = Container::new(CodecId::KvCache);
    container.model = Some(model.clone());
    container.put_u64("kv_format", KV_FORMAT);
    container.put_u64("layers", shape.layers as u64);
    container.put_u64("kv_heads", shape.kv_heads as u64);
    container.put_u64("head_dim", shape.head_dim as u64);
    container.put_u64("tokens", shape.tokens as u64);
    container.put_u64("level", u64::from(options.level));
    container.put_u64("sink_tokens", sink as u64);
    container.put_field("dtype", dtype.as_bytes().to_vec());
    for (&(layer, kv), payload) in planes.iter().zip(payloads) {
        container.push_section(section_tag(layer, kv), payload);
    }
    Ok(container.to_bytes()?)
}

fn check_shape(shape: &KvShape) -> Result<()> {
    if shape.layers == 0 || shape.kv_heads == 0 || shape.head_dim == 0 {
        return Err(invalid(format!(
            "the KV cache shape {shape:?} has an empty dimension"
        )));
    }
    if shape.layers > MAX_LAYERS {
        return Err(KvError::TooLarge(format!(
            "{} layers; at most {MAX_LAYERS} are supported",
            shape.layers
        )));
    }
    if shape
        .kv_heads
        .checked_mul(shape.head_dim)
        .is_none_or(|c| c > 1 << 20)
    {
        return Err(KvError::TooLarge(format!(
            "{} heads of {} channels per layer; at most 2^20 channels are supported",
            shape.kv_heads, shape.head_dim
        )));
    }
    shape
        .elements()
        .ok_or_else(|| KvError::TooLarge(format!("the KV cache shape {shape:?} overflows")))?;
    Ok(())
}

/// One plane `[head][token][channel]` as channel rows over the tokens after the sink.
fn channel_rows(plane: &[f32], shape: &KvShape, sink: usize) -> Vec<Vec<f32>> {
    let (tokens, dim) = (shape.tokens, shape.head_dim);
    let mut rows = Vec::with_capacity(shape.kv_heads * dim);
    for head in 0..shape.kv_heads {
        let block = &plane[head * tokens * dim..(head + 1) * tokens * dim];
        for channel in 0..dim {
            rows.push((sink..tokens).map(|t| block[t * dim + channel]).collect());
        }
    }
    rows
}

fn encode_plane(plane: &[f32], shape: &KvShape, sink: usize, fraction: f32) -> Result<Vec<u8>> {
    let (tokens, dim) = (shape.tokens, shape.head_dim);
    let mut out = Vec::new();
    // Sink tokens.
    let sink_values: Vec<f32> = (0..shape.kv_heads)
        .flat_map(|head| plane[head * tokens * dim..][..sink * dim].iter().copied())
        .collect();
    let sink_f32 = sink_values.iter().any(|&v| !f16::from_f32(v).is_finite());
    let rows = channel_rows(plane, shape, sink);
    out.push(u8::from(sink_f32));
    for &v in &sink_values {
        if sink_f32 {
            out.extend_from_slice(&v.to_le_bytes());
        } else {
            out.extend_from_slice(&f16::from_f32(v).to_le_bytes());
        }
    }
    // The step: a fraction of the plane's RMS around the channel means.
    let count: usize = rows.iter().map(Vec::len).sum();
    let mut square_sum = 0f64;
    for row in &rows {
        let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / row.len().max(1) as f64;
        square_sum += row
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>();
    }
    let rms = (square_sum / count.max(1) as f64).sqrt() as f32;
    let step = if rms.is_normal() { rms * fraction } else { 1.0 };
    if !step.is_normal() {
        return Err(invalid(format!(
            "the values' spread ({rms}) gives no usable step"
        )));
    }
    out.extend_from_slice(&step.to_le_bytes());
    // Quantize, pick each channel's anchor, mode and row, code.
    let table = table();
    let mut codes = Vec::with_capacity(rows.len());
    let mut anchors = Vec::new();
    let mut symbols = Vec::with_capacity(count);
    let mut indexes = Vec::with_capacity(count);
    for row in &rows {
        let mut q = Vec::with_capacity(row.len());
        for &v in row {
            let level = (v / step).round();
            if level.abs() > MAX_SYMBOL {
                return Err(invalid(format!(
                    "a value ({v}) is {level} steps of {step}; the values are too spread to quantize"
                )));
            }
            q.push(level as i32);
        }
        let anchor = if q.is_empty() {
            0
        } else {
            (q.iter().map(|&v| i64::from(v)).sum::<i64>() as f64 / q.len() as f64).round() as i32
        };
        let direct: Vec<i32> = q.iter().map(|&v| v - anchor).collect();
        let mut delta = direct.clone();
        for t in (1..delta.len()).rev() {
            delta[t] = q[t] - q[t - 1];
        }
        let (direct_row, direct_bits) = best_row(table, &direct)?;
        let (delta_row, delta_bits) = best_row(table, &delta)?;
        let (code, row_symbols, row) = if delta_bits < direct_bits {
            (DELTA_MODE | delta_row, delta, delta_row)
        } else {
            (direct_row, direct, direct_row)
        };
        codes.push(code);
        write_zigzag(&mut anchors, anchor);
        indexes.extend(std::iter::repeat_n(u32::from(row), row_symbols.len()));
        symbols.extend(row_symbols);
    }
    out.extend_from_slice(&codes);
    out.extend_from_slice(&anchors);
    let stream = table.encode_symbols(&symbols, &indexes)?;
    out.extend_from_slice(&(stream.len() as u32).to_le_bytes());
    out.extend_from_slice(&stream);
    Ok(out)
}

/// Appends `value` zigzag-mapped as LEB128.
fn write_zigzag(out: &mut Vec<u8>, value: i32) {
    let mut v = ((value << 1) ^ (value >> 31)) as u32;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a zigzag LEB128 value from the front of `r`.
fn read_zigzag(r: &mut &[u8]) -> Result<i32> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        let (&byte, rest) = r
            .split_first()
            .ok_or_else(|| invalid("plane truncated: an anchor is cut short"))?;
        *r = rest;
        if shift == 28 && byte > 0x0f {
            return Err(invalid("an anchor overflows 32 bits"));
        }
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(((value >> 1) as i32) ^ -((value & 1) as i32));
        }
    }
    unreachable!("the shift-28 byte either ends the value or is refused")
}

/// The table row (and its cost in bits) that codes `symbols` smallest among the rows around
/// their Laplace scale estimate (the mean magnitude).
fn best_row(table: &ScaleConditional, symbols: &[i32]) -> Result<(u8, f64)> {
    if symbols.is_empty() {
        return Ok((0, 0.0));
    }
    let scale = symbols.iter().map(|&s| f64::from(s).abs()).sum::<f64>() / symbols.len() as f64;
    let center = table.index_for_scale(scale as f32) as i64;
    let last = table.scales().len() as i64 - 1;
    let mut indexes = vec![0u32; symbols.len()];
    let mut best = (0u8, f64::INFINITY);
    for row in (center - 2).max(0)..=(center + 2).min(last).min(i64::from(ROW_MASK)) {
        indexes.fill(row as u32);
        let bits = table.table().ideal_bits(symbols, &indexes)?;
        if bits < best.1 {
            best = (row as u8, bits);
        }
    }
    Ok(best)
}

/// Reads and checks a bitstream's header (nothing is decoded).
pub fn info(bitstream: &[u8]) -> Result<KvInfo> {
    let layout = Layout::read(bitstream)?;
    info_of(&layout)
}

fn info_of(layout: &Layout) -> Result<KvInfo> {
    let header = &layout.header;
    header.expect_codec(CodecId::KvCache)?;
    let format = header.u64("kv_format")?;
    if format != KV_FORMAT {
        return Err(invalid(format!(
            "KV format {format} is not supported (this build reads {KV_FORMAT})"
        )));
    }
    let model = header
        .model
        .clone()
        .ok_or_else(|| invalid("the bitstream does not name its model"))?;
    let dimension = |key: &str| -> Result<usize> {
        usize::try_from(header.u64(key)?).map_err(|_| invalid(format!("`{key}` overflows")))
    };
    let shape = KvShape {
        layers: dimension("layers")?,
        kv_heads: dimension("kv_heads")?,
        tokens: dimension("tokens")?,
        head_dim: dimension("head_dim")?,
    };
    check_shape(&shape)?;
    let level = header.u64("level")?;
    if !(1..=u64::from(MAX_LEVEL)).contains(&level) {
        return Err(invalid(format!("level {level} is outside 1..={MAX_LEVEL}")));
    }
    let sink_tokens = dimension("sink_tokens")?;
    if sink_tokens > shape.tokens {
        return Err(invalid(format!(
            "{sink_tokens} sink tokens in a cache of {} tokens",
            shape.tokens
        )));
    }
    let dtype = String::from_utf8(header.field("dtype")?.to_vec())
        .map_err(|_| invalid("`dtype` is not UTF-8"))?;
    Ok(KvInfo {
        model,
        shape,
        level: level as u8,
        sink_tokens,
        dtype,
    })
}

/// Decodes a bitstream into a cache of at most `max_elements` values (checked before anything
/// is allocated). `expect_model`, when given, must be the model the bitstream names.
pub fn decode(
    bitstream: &[u8],
    expect_model: Option<&ModelTag>,
    max_elements: usize,
) -> Result<(KvInfo, KvCache)> {
    let layout = Layout::read(bitstream)?;
    let info = info_of(&layout)?;
    if let Some(expected) = expect_model
        && *expected != info.model
    {
        return Err(KvError::WrongModel(format!(
            "the bitstream holds a KV cache of model `{}`, not of `{}` (or of another build of it)",
            info.model.name, expected.name
        )));
    }
    let shape = info.shape;
    let elements = shape.elements().expect("checked by info_of");
    if elements > max_elements {
        return Err(KvError::TooLarge(format!(
            "the KV cache holds {elements} values, over the limit of {max_elements}"
        )));
    }
    if layout.sections.len() != 2 * shape.layers {
        return Err(invalid(format!(
            "{} sections for {} layers (expected one per layer and kind)",
            layout.sections.len(),
            shape.layers
        )));
    }
    let plane_size = shape.plane();
    let mut values = vec![0f32; elements];
    let stop = interrupt::handle();
    values
        .par_chunks_mut(plane_size.max(1))
        .enumerate()
        .try_for_each(|(index, out)| {
            stop.check()?;
            let payload = layout.payload(bitstream, section_tag(index / 2, index % 2))?;
            decode_plane(payload, &shape, info.sink_tokens, out)
        })?;
    let cache = KvCache::new(shape, values).map_err(|e| invalid(e.message))?;
    Ok((info, cache))
}

/// Reads `len` bytes from the front of `r`.
fn take<'a>(r: &mut &'a [u8], len: usize, what: &str) -> Result<&'a [u8]> {
    if r.len() < len {
        return Err(invalid(format!(
            "plane truncated: {what} needs {len} bytes, {} remain",
            r.len()
        )));
    }
    let (head, rest) = r.split_at(len);
    *r = rest;
    Ok(head)
}

fn floats(bytes: &[u8], wide: bool) -> Vec<f32> {
    if wide {
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect()
    } else {
        bytes
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect()
    }
}

fn decode_plane(payload: &[u8], shape: &KvShape, sink: usize, out: &mut [f32]) -> Result<()> {
    let (tokens, dim, heads) = (shape.tokens, shape.head_dim, shape.kv_heads);
    let channels = heads * dim;
    let mut r = payload;
    let formats = take(&mut r, 1, "formats")?[0];
    if formats & !1 != 0 {
        return Err(invalid(format!("unknown plane format bits {formats:#x}")));
    }
    let sink_f32 = formats & 1 != 0;
    let width = if sink_f32 { 4 } else { 2 };
    let sink_values = floats(
        take(&mut r, channels * sink * width, "sink values")?,
        sink_f32,
    );
    for head in 0..heads {
        out[head * tokens * dim..][..sink * dim]
            .copy_from_slice(&sink_values[head * sink * dim..][..sink * dim]);
    }
    let step = f32::from_le_bytes(take(&mut r, 4, "step")?.try_into().expect("4 bytes"));
    if !step.is_normal() || step < 0.0 {
        return Err(invalid(format!(
            "quantization step {step} is not a positive number"
        )));
    }
    let codes = take(&mut r, channels, "channel codes")?;
    let anchors = (0..channels)
        .map(|_| read_zigzag(&mut r))
        .collect::<Result<Vec<i32>>>()?;
    let stream_len = u32::from_le_bytes(take(&mut r, 4, "ANS length")?.try_into().expect("4"));
    let stream = take(&mut r, stream_len as usize, "ANS stream")?;
    if !r.is_empty() {
        return Err(invalid(format!(
            "{} bytes after the plane's ANS stream",
            r.len()
        )));
    }
    let per_channel = tokens - sink;
    let mut indexes = Vec::with_capacity(channels * per_channel);
    for &code in codes {
        let row = code & ROW_MASK;
        if code & !(DELTA_MODE | ROW_MASK) != 0 || usize::from(row) >= table().scales().len() {
            return Err(invalid(format!(
                "channel code {code:#x} names no table row"
            )));
        }
        indexes.extend(std::iter::repeat_n(u32::from(row), per_channel));
    }
    let symbols = table().decode_symbols(stream, &indexes)?;
    for (channel, (&code, row)) in codes
        .iter()
        .zip(symbols.chunks(per_channel.max(1)))
        .enumerate()
    {
        let (head, d) = (channel / dim, channel % dim);
        let block = &mut out[head * tokens * dim..(head + 1) * tokens * dim];
        let anchor = i64::from(anchors[channel]);
        let mut q = anchor;
        for (t, &s) in row.iter().enumerate() {
            q = if code & DELTA_MODE != 0 {
                q + i64::from(s)
            } else {
                anchor + i64::from(s)
            };
            block[(sink + t) * dim + d] = q as f32 * step;
        }
    }
    Ok(())
}
