//! The byte-level pieces of a chunk payload: a reader that refuses to run past the payload,
//! and sections (a byte string stored or zstd-coded, whichever is smaller).
//!
//! A section is `u8 mode, u32 length, bytes`; its decoded length is always known to the reader
//! from what came before, so a section never decodes to more. Modes:
//! - 0: stored;
//! - 1: one zstd frame;
//! - 2: the bytes as symbols of a stored model through the interleaved rANS coder (see
//!   `symbols`), which decodes several times faster than zstd's entropy stage. The writer
//!   takes it unless zstd saves more than 1/64 of the section's bytes (runs and repeats, which
//!   an order-0 model cannot see).

use std::borrow::Cow;

use crate::{
    error::{Result, malformed},
    symbols,
};

const STORED: u8 = 0;
const ZSTD: u8 = 1;
const ANS: u8 = 2;
/// zstd level of sections and zstd-coded chunks.
pub const ZSTD_LEVEL: i32 = 3;

/// Appends `bytes` as a section.
pub fn push_section(out: &mut Vec<u8>, bytes: &[u8]) {
    let frame = zstd::bulk::compress(bytes, ZSTD_LEVEL).ok();
    let mut modelled = Vec::new();
    let wide: Vec<u16> = bytes.iter().map(|&b| u16::from(b)).collect();
    symbols::encode(&wide, 256, &mut modelled);
    let zstd_len = frame.as_ref().map_or(usize::MAX, Vec::len);
    let (mode, bytes) = if modelled.len() < bytes.len()
        && modelled.len() <= zstd_len.saturating_add(bytes.len() / 64)
    {
        (ANS, modelled.as_slice())
    } else if zstd_len < bytes.len() {
        (ZSTD, frame.as_deref().expect("a frame"))
    } else {
        (STORED, bytes)
    };
    out.push(mode);
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Reads a payload front to back.
pub struct Reader<'a> {
    /// What is left.
    pub bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// The next `len` bytes.
    pub fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8]> {
        if len > self.bytes.len() {
            return Err(malformed(format!(
                "chunk: {what} needs {len} bytes, {} remain",
                self.bytes.len()
            )));
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    /// The next byte.
    pub fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    /// The next little-endian `u16`.
    pub fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2, what)?.try_into().expect("2"),
        ))
    }

    /// The next little-endian `u32`.
    pub fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4"),
        ))
    }

    /// The next `count` little-endian `u16`s.
    pub fn u16s(&mut self, count: usize, what: &str) -> Result<Vec<u16>> {
        let bytes = self.take(count * 2, what)?;
        Ok(bytes
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect())
    }

    /// The next section, which must decode to exactly `len` bytes.
    pub fn section(&mut self, len: usize, what: &str) -> Result<Cow<'a, [u8]>> {
        let mode = self.u8(what)?;
        let stored = self.u32(what)? as usize;
        let bytes = self.take(stored, what)?;
        match mode {
            STORED if stored == len => Ok(Cow::Borrowed(bytes)),
            ZSTD => Ok(Cow::Owned(unzstd(bytes, len, what)?)),
            ANS => {
                let mut inner = Reader { bytes };
                let mut wide = vec![0u16; len];
                symbols::decode(&mut inner, 256, &mut wide)?;
                if !inner.bytes.is_empty() {
                    return Err(malformed(format!("chunk: {what}: bytes after its symbols")));
                }
                Ok(Cow::Owned(wide.into_iter().map(|s| s as u8).collect()))
            }
            _ => Err(malformed(format!(
                "chunk: {what} has mode {mode} and {stored} bytes, expected {len}"
            ))),
        }
    }
}

thread_local! {
    /// A decompression context per thread (creating one per section showed in profiles).
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompresses a zstd frame that must hold exactly `len` bytes.
pub fn unzstd(frame: &[u8], len: usize, what: &str) -> Result<Vec<u8>> {
    let zstd_error = |e: std::io::Error| malformed(format!("chunk: {what}: zstd: {e}"));
    let bytes = DECOMPRESSOR.with_borrow_mut(|slot| {
        let decompressor = match slot {
            Some(decompressor) => decompressor,
            None => slot.insert(zstd::bulk::Decompressor::new().map_err(zstd_error)?),
        };
        decompressor.decompress(frame, len).map_err(zstd_error)
    })?;
    if bytes.len() != len {
        return Err(malformed(format!(
            "chunk: {what} holds {} bytes, expected {len}",
            bytes.len()
        )));
    }
    Ok(bytes)
}
