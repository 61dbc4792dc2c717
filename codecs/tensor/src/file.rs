//! Safetensors files as terse bitstreams.
//!
//! A container (codec [`CodecId::Tensor`]) with header fields `file_bytes` (the original file's
//! size) and `chunk_elements`, and three sections:
//!
//! ```text
//! HEAD  the file's 8-byte length and JSON header, verbatim
//! INDX  u32 tensors; per tensor in data order: u32 chunks; per chunk: u32 length, u32 CRC32
//! DATA  the chunk payloads (see `chunk`), in order
//! ```
//!
//! HEAD and INDX are checked under the container's checksums; each chunk under its own, so a
//! tensor reads without touching the rest. The tensors tile the data region exactly (the
//! safetensors rule), so writing HEAD then every tensor gives back the file byte for byte.

use std::io::Write;

use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors, tensor::Metadata};
use terse_entropy::{CodecId, Container, Layout, interrupt};

use crate::{
    buffer, chunk,
    error::{Result, TensorError, malformed},
    float::{BF16, F16, F32, FloatLayout},
};

/// Elements per chunk unless the caller says otherwise (512 KiB of BF16). In `tensor_eval`'s
/// chunk-size rows it was the smallest or within 0.01 points of it on every file
/// (all-MiniLM-L6-v2 as BF16: 66.02 % at 2^16, 65.95 % at 2^18, 65.98 % at 2^20), and it
/// gives rayon smaller units of work than 2^20.
pub const DEFAULT_CHUNK_ELEMENTS: u64 = 1 << 18;
/// Most elements a chunk may hold (bounds a decoder's working memory).
pub const MAX_CHUNK_ELEMENTS: u64 = 1 << 24;
const HEAD: [u8; 4] = *b"HEAD";
const INDX: [u8; 4] = *b"INDX";
const DATA: [u8; 4] = *b"DATA";

/// How to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Elements per chunk (1 ..= [`MAX_CHUNK_ELEMENTS`]): the unit of parallel decoding and
    /// of a decoder's working memory; smaller chunks cost a little ratio.
    pub chunk_elements: u64,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            chunk_elements: DEFAULT_CHUNK_ELEMENTS,
        }
    }
}

/// The coding of a dtype: float layouts are split, everything else is bytes.
pub fn float_layout(dtype: Dtype) -> Option<FloatLayout> {
    match dtype {
        Dtype::BF16 => Some(BF16),
        Dtype::F16 => Some(F16),
        Dtype::F32 => Some(F32),
        _ => None,
    }
}

fn chunk_bytes(dtype: Dtype, chunk_elements: u64) -> usize {
    (chunk_elements as usize).saturating_mul((dtype.bitsize() / 8).max(1))
}

/// One chunk's place in the DATA section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPlace {
    /// Offset in DATA.
    pub offset: usize,
    /// Payload length.
    pub len: usize,
    /// CRC32 of the payload.
    pub crc: u32,
    /// Bytes it decodes to.
    pub bytes: usize,
}

/// One tensor of a coded file.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorEntry {
    /// Name in the file.
    pub name: String,
    /// Dtype.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Bytes in the original file.
    pub bytes: u64,
    /// Coded bytes (its chunk payloads).
    pub coded_bytes: u64,
    /// Its chunks.
    pub chunks: Vec<ChunkPlace>,
}

/// What a coded file holds, read from its header and index alone.
#[derive(Debug, Clone, PartialEq)]
pub struct FileInfo {
    /// Size of the original safetensors file.
    pub file_bytes: u64,
    /// Elements per chunk.
    pub chunk_elements: u64,
    /// The tensors in data order.
    pub tensors: Vec<TensorEntry>,
}

/// Encodes a safetensors file.
pub fn encode(file: &[u8], options: EncodeOptions) -> Result<Vec<u8>> {
    if !(1..=MAX_CHUNK_ELEMENTS).contains(&options.chunk_elements) {
        return Err(malformed(format!(
            "chunk_elements {} is outside 1..={MAX_CHUNK_ELEMENTS}",
            options.chunk_elements
        )));
    }
    let (header_len, metadata) = SafeTensors::read_metadata(file)
        .map_err(|e| malformed(format!("not a safetensors file: {e}")))?;
    let data_start = 8 + header_len;
    let data = &file[data_start..];
    let mut jobs = Vec::new();
    let mut counts = Vec::new();
    for name in metadata.offset_keys() {
        let info = metadata.info(&name).expect("a listed tensor");
        let (start, end) = info.data_offsets;
        let bytes = &data[start..end];
        let step = chunk_bytes(info.dtype, options.chunk_elements);
        let before = jobs.len();
        jobs.extend(
            bytes
                .chunks(step)
                .map(|piece| (piece, float_layout(info.dtype))),
        );
        counts.push((jobs.len() - before) as u32);
    }
    let stop = interrupt::handle();
    let payloads: Vec<Vec<u8>> = jobs
        .par_iter()
        .map(|&(piece, layout)| {
            stop.check()?;
            Ok(chunk::encode(piece, layout))
        })
        .collect::<Result<_>>()?;
    let mut index = Vec::with_capacity(4 + counts.len() * 4 + payloads.len() * 8);
    index.extend_from_slice(&(counts.len() as u32).to_le_bytes());
    let mut payload_iter = payloads.iter();
    for count in counts {
        index.extend_from_slice(&count.to_le_bytes());
        for payload in payload_iter.by_ref().take(count as usize) {
            index.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            index.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        }
    }
    let mut container = Container::new(CodecId::Tensor);
    container.put_u64("file_bytes", file.len() as u64);
    container.put_u64("chunk_elements", options.chunk_elements);
    container.push_section(HEAD, file[..data_start].to_vec());
    container.push_section(INDX, index);
    container.push_section(DATA, payloads.concat());
    Ok(container.to_bytes()?)
}

/// A bitstream's layout, header and index, checked.
struct Parsed<'a> {
    head: &'a [u8],
    data: &'a [u8],
    info: FileInfo,
}

fn parse(bitstream: &[u8]) -> Result<Parsed<'_>> {
    let layout = Layout::read(bitstream)?;
    layout.header.expect_codec(CodecId::Tensor)?;
    let file_bytes = layout.header.u64("file_bytes")?;
    let chunk_elements = layout.header.u64("chunk_elements")?;
    if !(1..=MAX_CHUNK_ELEMENTS).contains(&chunk_elements) {
        return Err(malformed(format!(
            "chunk_elements {chunk_elements} is outside 1..={MAX_CHUNK_ELEMENTS}"
        )));
    }
    let head = layout.payload(bitstream, HEAD)?;
    let index = layout.payload(bitstream, INDX)?;
    let data = layout.unchecked_payload(bitstream, DATA)?;
    let metadata = read_head(head)?;
    let data_len = metadata.data_len() as u64;
    if head.len() as u64 + data_len != file_bytes {
        return Err(malformed(format!(
            "the header describes a file of {} bytes, the bitstream says {file_bytes}",
            head.len() as u64 + data_len
        )));
    }
    let mut r = index;
    let mut u32_of = |what: &str| -> Result<u32> {
        let (word, rest) = r
            .split_first_chunk::<4>()
            .ok_or_else(|| malformed(format!("index: {what} is missing")))?;
        r = rest;
        Ok(u32::from_le_bytes(*word))
    };
    let names = metadata.offset_keys();
    let tensor_count = u32_of("tensor count")? as usize;
    if tensor_count != names.len() {
        return Err(malformed(format!(
            "index lists {tensor_count} tensors, the header {}",
            names.len()
        )));
    }
    let mut tensors = Vec::with_capacity(names.len());
    let mut offset = 0usize;
    for name in names {
        let info = metadata.info(&name).expect("a listed tensor");
        let bytes = info.data_offsets.1 - info.data_offsets.0;
        let step = chunk_bytes(info.dtype, chunk_elements);
        let expected = bytes.div_ceil(step);
        let count = u32_of("chunk count")? as usize;
        if count != expected {
            return Err(malformed(format!(
                "index: tensor `{}` has {count} chunks, its size needs {expected}",
                terse_core::echo(&name)
            )));
        }
        // The count is checked against the header's size, which a bitstream may inflate: the
        // index bytes bound what is allocated (8 per chunk entry).
        let mut chunks = Vec::with_capacity(count.min(index.len() / 8));
        for c in 0..count {
            let len = u32_of("chunk length")? as usize;
            let crc = u32_of("chunk checksum")?;
            chunks.push(ChunkPlace {
                offset,
                len,
                crc,
                bytes: step.min(bytes - c * step),
            });
            offset = offset
                .checked_add(len)
                .filter(|&end| end <= data.len())
                .ok_or_else(|| malformed("index: chunks run past the data"))?;
        }
        tensors.push(TensorEntry {
            coded_bytes: chunks.iter().map(|c| c.len as u64).sum(),
            name,
            dtype: info.dtype,
            shape: info.shape.clone(),
            bytes: bytes as u64,
            chunks,
        });
    }
    if !r.is_empty() || offset != data.len() {
        return Err(malformed(
            "index: the chunks do not account for exactly the data",
        ));
    }
    Ok(Parsed {
        head,
        data,
        info: FileInfo {
            file_bytes,
            chunk_elements,
            tensors,
        },
    })
}

fn read_head(head: &[u8]) -> Result<Metadata> {
    let (len, json) = head
        .split_first_chunk::<8>()
        .ok_or_else(|| malformed("safetensors header: shorter than its length"))?;
    if u64::from_le_bytes(*len) != json.len() as u64 {
        return Err(malformed("safetensors header: its length does not match"));
    }
    serde_json::from_slice(json).map_err(|e| malformed(format!("safetensors header: {e}")))
}

/// Reads what a bitstream holds (header and index only).
pub fn inspect(bitstream: &[u8]) -> Result<FileInfo> {
    parse(bitstream).map(|p| p.info)
}

/// Refuses `what` ("the file", a tensor) of `bytes` over `max_bytes`, before any work.
fn check_size(what: &str, bytes: u64, max_bytes: u64) -> Result<()> {
    if bytes > max_bytes {
        return Err(TensorError::TooLarge(format!(
            "{what} is {bytes} bytes, over the limit of {max_bytes}"
        )));
    }
    Ok(())
}

fn decode_chunk(data: &[u8], place: &ChunkPlace, dtype: Dtype, out: &mut [u8]) -> Result<()> {
    let payload = &data[place.offset..place.offset + place.len];
    let actual = crc32fast::hash(payload);
    if actual != place.crc {
        return Err(malformed(format!(
            "chunk checksum mismatch (stored {:08x}, computed {actual:08x})",
            place.crc
        )));
    }
    buffer::prefault(out);
    chunk::decode(payload, float_layout(dtype), out)
}

/// Decodes `jobs` (consecutive chunks) in parallel into `out`, which holds exactly their bytes.
fn decode_chunks(data: &[u8], jobs: &[(&ChunkPlace, Dtype)], mut out: &mut [u8]) -> Result<()> {
    let mut work = Vec::with_capacity(jobs.len());
    for &(place, dtype) in jobs {
        let (piece, rest) = std::mem::take(&mut out).split_at_mut(place.bytes);
        work.push((place, dtype, piece));
        out = rest;
    }
    let stop = interrupt::handle();
    work.into_par_iter().try_for_each(|(place, dtype, piece)| {
        stop.check()?;
        decode_chunk(data, place, dtype, piece)
    })
}

/// Every chunk of the file in order, with its tensor's dtype.
fn chunk_jobs(info: &FileInfo) -> Vec<(&ChunkPlace, Dtype)> {
    info.tensors
        .iter()
        .flat_map(|t| t.chunks.iter().map(move |c| (c, t.dtype)))
        .collect()
}

/// Decodes a bitstream into `out`, refusing a file over `max_bytes` before any work. Chunks
/// decode in parallel into one reused buffer of a few chunks per thread, written in order:
/// the working memory is that buffer, not the file. Returns the bytes written.
pub fn decode_to(bitstream: &[u8], max_bytes: u64, out: &mut dyn Write) -> Result<u64> {
    let parsed = parse(bitstream)?;
    check_size("the file", parsed.info.file_bytes, max_bytes)?;
    let write = |out: &mut dyn Write, bytes: &[u8]| {
        out.write_all(bytes)
            .map_err(|e| malformed(format!("writing the file: {e}")))
    };
    write(out, parsed.head)?;
    let jobs = chunk_jobs(&parsed.info);
    let largest = jobs.iter().map(|(c, _)| c.bytes).max().unwrap_or(0);
    let budget = 4 * rayon::current_num_threads().max(1) * largest;
    let mut buffer = Vec::new();
    let mut rest = &jobs[..];
    while !rest.is_empty() {
        let (mut count, mut bytes) = (0, 0);
        while count < rest.len() && (count == 0 || bytes + rest[count].0.bytes <= budget) {
            bytes += rest[count].0.bytes;
            count += 1;
        }
        buffer.resize(bytes, 0);
        decode_chunks(parsed.data, &rest[..count], &mut buffer)?;
        write(out, &buffer)?;
        rest = &rest[count..];
    }
    Ok(parsed.info.file_bytes)
}

/// Decodes a bitstream to the original file's bytes, every chunk in parallel straight into
/// its place.
pub fn decode(bitstream: &[u8], max_bytes: u64) -> Result<Vec<u8>> {
    let parsed = parse(bitstream)?;
    check_size("the file", parsed.info.file_bytes, max_bytes)?;
    let mut out = vec![0u8; parsed.info.file_bytes as usize];
    let (head, data) = out.split_at_mut(parsed.head.len());
    head.copy_from_slice(parsed.head);
    decode_chunks(parsed.data, &chunk_jobs(&parsed.info), data)?;
    Ok(out)
}

/// Decodes one tensor (its entry and little-endian bytes) without the rest of the file,
/// refusing one over `max_bytes` before any work.
pub fn decode_tensor(
    bitstream: &[u8],
    name: &str,
    max_bytes: u64,
) -> Result<(TensorEntry, Vec<u8>)> {
    let parsed = parse(bitstream)?;
    let entry = parsed
        .info
        .tensors
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| {
            TensorError::NotFound(format!(
                "no tensor named `{}` in the file",
                terse_core::echo(name)
            ))
        })?;
    let what = format!("tensor `{}`", terse_core::echo(name));
    check_size(&what, entry.bytes, max_bytes)?;
    let mut out = vec![0u8; entry.bytes as usize];
    let jobs: Vec<_> = entry.chunks.iter().map(|c| (c, entry.dtype)).collect();
    decode_chunks(parsed.data, &jobs, &mut out)?;
    Ok((entry, out))
}
