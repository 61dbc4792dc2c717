//! The container every terse codec writes: one self-describing, checksummed layout.
//!
//! All integers are little-endian:
//!
//! ```text
//! 0   magic            b"TRSE"
//! 4   u16 version      FORMAT_VERSION
//! 6   u16 codec        which codec wrote the payload (see [`CodecId`])
//! 8   u32 header_len   bytes of the header block after this 16-byte prelude
//! 12  u32 sections     number of entries in the section table
//! 16  header block     model name (u8 len + UTF-8), model sha256 prefix (8 bytes),
//!                      u16 field count, fields (u8 key len + UTF-8 key, u32 value len + value)
//! ..  section table    per section: 4-byte tag, u64 length, u32 CRC32 of the payload
//! ..  u32 CRC32        of every byte before it (prelude, header block, section table)
//! ..  payloads         concatenated in table order; the file ends exactly after the last one
//! ```
//!
//! [`Container::parse`] checks every length against the bytes that are actually there before
//! using it, verifies both checksums, and rejects trailing bytes.

use crate::error::{EntropyError, Result};

/// The first four bytes of every terse bitstream.
pub const MAGIC: [u8; 4] = *b"TRSE";
/// The container layout version this build writes. Version 2 closes every entropy-coded
/// section with a seal (see [`crate::raw::RANGE_SEAL`]); version 3 stores an ANS section
/// without the zero high bytes of its last word. This build reads both (a version 2 ANS
/// section is a version 3 one with those bytes kept); version 1 streams, whose counts cannot be
/// checked against their data, are refused with a request to re-encode.
pub const FORMAT_VERSION: u16 = 3;
/// The oldest container layout version this build reads.
pub const OLDEST_READ_VERSION: u16 = 2;
/// Most sections a container may declare.
pub const MAX_SECTIONS: u32 = 4096;
/// Largest header block accepted.
pub const MAX_HEADER_BYTES: u32 = 1 << 20;
const PRELUDE_BYTES: usize = 16;
const SECTION_ENTRY_BYTES: usize = 16;

/// Registered codec identifiers (the `codec` field of a container).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum CodecId {
    /// 3D Gaussian splat scenes (`terse-splat`).
    Splat = 1,
    /// WaLLoC images.
    WallocImage = 2,
    /// WaLLoC audio.
    WallocAudio = 3,
    /// MLIC-style learned images.
    MlicImage = 4,
    /// Lossless tensor files (`terse-tensor`).
    Tensor = 5,
    /// Lossy KV caches (`terse-kvcache`).
    KvCache = 6,
    /// Generic entropy-coded test payloads.
    Test = 0xfff0,
}

impl CodecId {
    /// The codec with this wire value, if registered.
    pub fn from_u16(value: u16) -> Option<Self> {
        [
            Self::Splat,
            Self::WallocImage,
            Self::WallocAudio,
            Self::MlicImage,
            Self::Tensor,
            Self::KvCache,
            Self::Test,
        ]
        .into_iter()
        .find(|c| *c as u16 == value)
    }
}

/// Identifies the model a payload was coded with, so a decoder can refuse a mismatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTag {
    /// Model name (at most 255 bytes of UTF-8).
    pub name: String,
    /// First 8 bytes of the model file's sha256.
    pub sha256_prefix: [u8; 8],
}

impl ModelTag {
    /// A tag from a model name and the lower-case hex sha256 of its file (first 8 bytes kept).
    pub fn from_sha256_hex(name: &str, sha256_hex: &str) -> Result<Self> {
        let bytes = sha256_hex.as_bytes();
        if bytes.len() < 16 || !bytes[..16].iter().all(u8::is_ascii_hexdigit) {
            return Err(EntropyError::Container(format!(
                "`{sha256_hex}` is not a hex sha256"
            )));
        }
        let nibble = |b: u8| (b as char).to_digit(16).expect("checked hex") as u8;
        let sha256_prefix =
            std::array::from_fn(|i| nibble(bytes[2 * i]) << 4 | nibble(bytes[2 * i + 1]));
        Ok(Self {
            name: name.to_string(),
            sha256_prefix,
        })
    }
}

/// What a container says before its payloads: the codec, the model and the header fields.
/// [`Header::read`] reads it from a bitstream without touching the payloads; a [`Container`]
/// dereferences to its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Codec that wrote the payload.
    pub codec: CodecId,
    /// Model the payload depends on; `None` for model-free codecs.
    pub model: Option<ModelTag>,
    version: u16,
    fields: Vec<(String, Vec<u8>)>,
}

/// The front of a container: its [`Header`] and the tag and length of every payload section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The header.
    pub header: Header,
    /// Each section's place, in order.
    pub sections: Vec<SectionEntry>,
}

/// Where one section's payload lies in the bytes, and its checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionEntry {
    /// Tag.
    pub tag: [u8; 4],
    /// Offset of the payload in the container bytes.
    pub offset: usize,
    /// Payload length.
    pub len: usize,
    /// CRC32 of the payload as written.
    pub crc: u32,
}

impl Layout {
    /// Reads and validates everything before the payloads: magic, version, codec, the header
    /// block and the section table under their checksum, and that the table's lengths add up to
    /// exactly the bytes there. The payloads' checksums are not verified and nothing of them is
    /// copied (use [`Container::parse`] for that).
    pub fn read(bytes: &[u8]) -> Result<Self> {
        let (header, table, mut pos) = read_front(bytes)?;
        let mut sections = Vec::with_capacity(table.len() / SECTION_ENTRY_BYTES);
        for entry in table.chunks_exact(SECTION_ENTRY_BYTES) {
            let tag: [u8; 4] = entry[..4].try_into().expect("4 bytes");
            let len = u64::from_le_bytes(entry[4..12].try_into().expect("8 bytes"));
            let crc = u32::from_le_bytes(entry[12..16].try_into().expect("4 bytes"));
            let end = usize::try_from(len)
                .ok()
                .and_then(|len| pos.checked_add(len))
                .filter(|&end| end <= bytes.len())
                .ok_or_else(|| {
                    EntropyError::Container(format!(
                        "truncated: section `{}` payload declares {len} bytes, {} remain",
                        tag_name(tag),
                        bytes.len() - pos
                    ))
                })?;
            sections.push(SectionEntry {
                tag,
                offset: pos,
                len: end - pos,
                crc,
            });
            pos = end;
        }
        check_no_trailing(bytes, pos)?;
        Ok(Self { header, sections })
    }

    fn entry(&self, tag: [u8; 4]) -> Result<&SectionEntry> {
        self.sections.iter().find(|s| s.tag == tag).ok_or_else(|| {
            EntropyError::Container(format!("section `{}` is missing", tag_name(tag)))
        })
    }

    /// The payload of the first section tagged `tag` in `bytes` (the bytes this layout was
    /// read from), its checksum verified.
    pub fn payload<'a>(&self, bytes: &'a [u8], tag: [u8; 4]) -> Result<&'a [u8]> {
        let entry = self.entry(tag)?;
        let payload = self.unchecked_payload(bytes, tag)?;
        let actual = crc32fast::hash(payload);
        if actual != entry.crc {
            return Err(EntropyError::Container(format!(
                "section `{}` payload checksum mismatch (stored {:08x}, computed {actual:08x})",
                tag_name(tag),
                entry.crc
            )));
        }
        Ok(payload)
    }

    /// The payload of the first section tagged `tag`, its checksum not verified: for a
    /// section whose parts carry checksums of their own, read one part at a time.
    pub fn unchecked_payload<'a>(&self, bytes: &'a [u8], tag: [u8; 4]) -> Result<&'a [u8]> {
        let entry = self.entry(tag)?;
        bytes
            .get(entry.offset..entry.offset + entry.len)
            .ok_or_else(|| EntropyError::Container("the bytes are not those of this layout".into()))
    }
}

/// A parsed or to-be-written container: a [`Header`] (which it dereferences to) and the
/// payload sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    header: Header,
    sections: Vec<Section>,
}

/// A payload section: its tag and its bytes.
pub type Section = ([u8; 4], Vec<u8>);

impl std::ops::Deref for Container {
    type Target = Header;

    fn deref(&self) -> &Header {
        &self.header
    }
}

impl std::ops::DerefMut for Container {
    fn deref_mut(&mut self) -> &mut Header {
        &mut self.header
    }
}

impl Header {
    /// The format version: [`FORMAT_VERSION`] for a new container, and what a parsed one was
    /// written with (it is written back with it, so a parsed container re-serializes to the
    /// same bytes).
    pub fn version(&self) -> u16 {
        self.version
    }

    /// Reads and validates everything before the payloads (see [`Layout::read`]) and keeps the
    /// header: cheap enough to route a request on.
    pub fn read(bytes: &[u8]) -> Result<Self> {
        Layout::read(bytes).map(|layout| layout.header)
    }

    /// A header field of exactly `N` `i64`.
    pub fn i64s<const N: usize>(&self, key: &str) -> Result<[i64; N]> {
        let raw: [[u8; 8]; N] = self.words(key)?;
        Ok(raw.map(i64::from_le_bytes))
    }

    /// A header field of exactly `N` finite `f64`.
    pub fn f64s<const N: usize>(&self, key: &str) -> Result<[f64; N]> {
        let raw: [[u8; 8]; N] = self.words(key)?;
        let values = raw.map(f64::from_le_bytes);
        if values.iter().any(|v| !v.is_finite()) {
            return Err(EntropyError::Container(format!(
                "header field `{key}` is not finite"
            )));
        }
        Ok(values)
    }

    fn words<const N: usize>(&self, key: &str) -> Result<[[u8; 8]; N]> {
        let raw = self.field(key)?;
        if raw.len() != 8 * N {
            return Err(EntropyError::Container(format!(
                "header field `{key}` has {} bytes, expected {}",
                raw.len(),
                8 * N
            )));
        }
        Ok(std::array::from_fn(|i| {
            raw[8 * i..8 * i + 8].try_into().expect("8 bytes")
        }))
    }

    /// The raw bytes of a header field.
    pub fn field(&self, key: &str) -> Result<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
            .ok_or_else(|| EntropyError::Container(format!("header field `{key}` is missing")))
    }

    /// A `u64` header field.
    pub fn u64(&self, key: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.fixed_field::<8>(key)?))
    }

    /// An `f64` header field; NaN and infinities are rejected.
    pub fn f64(&self, key: &str) -> Result<f64> {
        let value = f64::from_le_bytes(self.fixed_field::<8>(key)?);
        if !value.is_finite() {
            return Err(EntropyError::Container(format!(
                "header field `{key}` is not finite"
            )));
        }
        Ok(value)
    }

    fn fixed_field<const N: usize>(&self, key: &str) -> Result<[u8; N]> {
        let raw = self.field(key)?;
        raw.try_into().map_err(|_| {
            EntropyError::Container(format!(
                "header field `{key}` has {} bytes, expected {N}",
                raw.len()
            ))
        })
    }

    /// Header fields in insertion order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Fails unless the container was written by `codec`.
    pub fn expect_codec(&self, codec: CodecId) -> Result<()> {
        if self.codec != codec {
            return Err(EntropyError::Container(format!(
                "bitstream was written by codec {:?}, expected {codec:?}",
                self.codec
            )));
        }
        Ok(())
    }
}

impl Container {
    /// An empty container for `codec`.
    pub fn new(codec: CodecId) -> Self {
        Self {
            header: Header {
                codec,
                model: None,
                version: FORMAT_VERSION,
                fields: Vec::new(),
            },
            sections: Vec::new(),
        }
    }

    /// The header and the sections, moved out (no payload is copied).
    pub fn into_parts(self) -> (Header, Vec<Section>) {
        (self.header, self.sections)
    }

    /// Sets a header field (replacing one with the same key).
    pub fn put_field(&mut self, key: &str, value: impl Into<Vec<u8>>) {
        let value = value.into();
        match self.header.fields.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.header.fields.push((key.to_string(), value)),
        }
    }

    /// Moves `part`'s header fields (replacing ones with the same key) and then its sections
    /// after this container's: for a container whose parts are written apart.
    pub fn append(&mut self, part: Container) {
        for (key, value) in part.header.fields {
            self.put_field(&key, value);
        }
        self.sections.extend(part.sections);
    }

    /// Sets a `u64` header field.
    pub fn put_u64(&mut self, key: &str, value: u64) {
        self.put_field(key, value.to_le_bytes());
    }

    /// Sets an `f64` header field.
    pub fn put_f64(&mut self, key: &str, value: f64) {
        self.put_field(key, value.to_le_bytes());
    }

    /// Sets a header field holding several `i64`.
    pub fn put_i64s(&mut self, key: &str, values: &[i64]) {
        self.put_words(key, values.iter().map(|v| v.to_le_bytes()));
    }

    /// Sets a header field holding several `f64`.
    pub fn put_f64s(&mut self, key: &str, values: &[f64]) {
        self.put_words(key, values.iter().map(|v| v.to_le_bytes()));
    }

    /// Sets a header field of little-endian 8-byte words.
    fn put_words(&mut self, key: &str, words: impl Iterator<Item = [u8; 8]>) {
        self.put_field(key, words.flatten().collect::<Vec<u8>>());
    }

    /// Appends a payload section.
    pub fn push_section(&mut self, tag: [u8; 4], payload: Vec<u8>) {
        self.sections.push((tag, payload));
    }

    /// The payload of the first section tagged `tag`.
    pub fn section(&self, tag: [u8; 4]) -> Result<&[u8]> {
        self.sections
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, p)| p.as_slice())
            .ok_or_else(|| {
                EntropyError::Container(format!("section `{}` is missing", tag_name(tag)))
            })
    }

    /// Sections in order, as (tag, payload).
    pub fn sections(&self) -> impl Iterator<Item = ([u8; 4], &[u8])> {
        self.sections.iter().map(|(t, p)| (*t, p.as_slice()))
    }

    /// Serializes the container.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut header = Vec::new();
        let (name, sha) = match &self.model {
            Some(m) => (m.name.as_bytes(), m.sha256_prefix),
            None => (&b""[..], [0; 8]),
        };
        push_short(&mut header, name, "model name")?;
        header.extend_from_slice(&sha);
        let count = u16::try_from(self.fields.len())
            .map_err(|_| EntropyError::Container("more than 65535 header fields".into()))?;
        header.extend_from_slice(&count.to_le_bytes());
        for (key, value) in &self.fields {
            push_short(&mut header, key.as_bytes(), "field key")?;
            let len = u32::try_from(value.len())
                .map_err(|_| EntropyError::Container(format!("field `{key}` is too large")))?;
            header.extend_from_slice(&len.to_le_bytes());
            header.extend_from_slice(value);
        }
        if header.len() > MAX_HEADER_BYTES as usize {
            return Err(EntropyError::Container("header block exceeds 1 MiB".into()));
        }
        if self.sections.len() > MAX_SECTIONS as usize {
            return Err(EntropyError::Container(format!(
                "more than {MAX_SECTIONS} sections"
            )));
        }
        let payload_bytes: usize = self.sections.iter().map(|(_, p)| p.len()).sum();
        let mut out = Vec::with_capacity(
            PRELUDE_BYTES
                + header.len()
                + self.sections.len() * SECTION_ENTRY_BYTES
                + 4
                + payload_bytes,
        );
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.codec as u16).to_le_bytes());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.sections.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        for (tag, payload) in &self.sections {
            out.extend_from_slice(tag);
            out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        }
        let table_crc = crc32fast::hash(&out);
        out.extend_from_slice(&table_crc.to_le_bytes());
        for (_, payload) in &self.sections {
            out.extend_from_slice(payload);
        }
        Ok(out)
    }

    /// True when `bytes` starts like a terse container (magic only; use [`Container::parse`]
    /// to validate).
    pub fn sniff(bytes: &[u8]) -> bool {
        bytes.starts_with(&MAGIC)
    }

    /// The codec a terse container (of this or an earlier format) says it holds, read from the
    /// 8-byte prelude alone (no checksum is verified: use [`Container::parse`] to validate);
    /// `None` for anything else.
    pub fn peek_codec(bytes: &[u8]) -> Option<CodecId> {
        let prelude = bytes.get(..8)?;
        Self::peek_version(prelude)?;
        CodecId::from_u16(u16::from_le_bytes([prelude[6], prelude[7]]))
    }

    /// The format version of a terse container (this or an earlier format), read from its
    /// prelude alone as [`Container::peek_codec`] reads the codec; `None` for anything else.
    pub fn peek_version(bytes: &[u8]) -> Option<u16> {
        let prelude = bytes.get(..6)?;
        let version = u16::from_le_bytes([prelude[4], prelude[5]]);
        (prelude[..4] == MAGIC && (1..=FORMAT_VERSION).contains(&version)).then_some(version)
    }

    /// Parses and validates a container: its [`Header`] and every payload under its checksum.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let (header, table, pos) = read_front(bytes)?;
        let mut r = Reader { bytes, pos };
        let mut sections = Vec::with_capacity(table.len() / SECTION_ENTRY_BYTES);
        for entry in table.chunks_exact(SECTION_ENTRY_BYTES) {
            let tag: [u8; 4] = entry[..4].try_into().expect("4 bytes");
            let len = u64::from_le_bytes(entry[4..12].try_into().expect("8 bytes"));
            let crc = u32::from_le_bytes(entry[12..16].try_into().expect("4 bytes"));
            let what = format!("section `{}` payload", tag_name(tag));
            let len = usize::try_from(len).map_err(|_| {
                EntropyError::Container(format!("{what} length {len} is too large"))
            })?;
            let payload = r.take(len, &what)?;
            let actual = crc32fast::hash(payload);
            if actual != crc {
                return Err(EntropyError::Container(format!(
                    "{what} checksum mismatch (stored {crc:08x}, computed {actual:08x})"
                )));
            }
            sections.push((tag, payload.to_vec()));
        }
        check_no_trailing(bytes, r.pos)?;
        Ok(Self { header, sections })
    }
}

/// Reads the prelude, header block and section table (under the header checksum): the header,
/// the raw table and the offset of the first payload.
fn read_front(bytes: &[u8]) -> Result<(Header, &[u8], usize)> {
    let mut r = Reader { bytes, pos: 0 };
    let magic = r.take(4, "magic")?;
    if magic != MAGIC {
        return Err(EntropyError::Container(format!(
            "bad magic {magic:02x?}, expected {:02x?} (\"TRSE\")",
            MAGIC
        )));
    }
    let version = r.u16("format version")?;
    if version == 1 {
        return Err(EntropyError::Container(format!(
            "format version 1 (written before section seals, so its counts cannot be \
             checked) is no longer decoded: re-encode the source (this build reads \
             {OLDEST_READ_VERSION} to {FORMAT_VERSION})"
        )));
    }
    if !(OLDEST_READ_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(EntropyError::Container(format!(
            "format version {version} is not supported (this build reads \
             {OLDEST_READ_VERSION} to {FORMAT_VERSION})"
        )));
    }
    let codec_raw = r.u16("codec id")?;
    let codec = CodecId::from_u16(codec_raw)
        .ok_or_else(|| EntropyError::Container(format!("unknown codec id {codec_raw}")))?;
    let header_len = r.u32("header length")?;
    if header_len > MAX_HEADER_BYTES {
        return Err(EntropyError::Container(format!(
            "header length {header_len} exceeds the limit of {MAX_HEADER_BYTES}"
        )));
    }
    let section_count = r.u32("section count")?;
    if section_count > MAX_SECTIONS {
        return Err(EntropyError::Container(format!(
            "section count {section_count} exceeds the limit of {MAX_SECTIONS}"
        )));
    }
    let block = r.take(header_len as usize, "header block")?;
    let table = r.take(
        section_count as usize * SECTION_ENTRY_BYTES,
        "section table",
    )?;
    let covered = r.pos;
    let stored_crc = r.u32("header checksum")?;
    let actual_crc = crc32fast::hash(&bytes[..covered]);
    if stored_crc != actual_crc {
        return Err(EntropyError::Container(format!(
            "header checksum mismatch (stored {stored_crc:08x}, computed {actual_crc:08x})"
        )));
    }

    let mut h = Reader {
        bytes: block,
        pos: 0,
    };
    let name_len = h.u8("model name length")? as usize;
    let name = utf8(h.take(name_len, "model name")?, "model name")?;
    let sha: [u8; 8] = h
        .take(8, "model sha256 prefix")?
        .try_into()
        .expect("8 bytes");
    let model = (!name.is_empty()).then_some(ModelTag {
        name,
        sha256_prefix: sha,
    });
    let field_count = h.u16("field count")?;
    let mut fields = Vec::with_capacity(field_count as usize);
    for _ in 0..field_count {
        let key_len = h.u8("field key length")? as usize;
        let key = utf8(h.take(key_len, "field key")?, "field key")?;
        let value_len = h.u32("field value length")? as usize;
        let value = h.take(value_len, "field value")?.to_vec();
        if fields.iter().any(|(k, _): &(String, Vec<u8>)| *k == key) {
            return Err(EntropyError::Container(format!(
                "header field `{key}` appears twice"
            )));
        }
        fields.push((key, value));
    }
    if h.pos != block.len() {
        return Err(EntropyError::Container(format!(
            "{} unused bytes at the end of the header block",
            block.len() - h.pos
        )));
    }
    let header = Header {
        codec,
        model,
        version,
        fields,
    };
    Ok((header, table, r.pos))
}

fn check_no_trailing(bytes: &[u8], end: usize) -> Result<()> {
    if end != bytes.len() {
        return Err(EntropyError::Container(format!(
            "{} trailing bytes after the last section",
            bytes.len() - end
        )));
    }
    Ok(())
}

fn push_short(out: &mut Vec<u8>, bytes: &[u8], what: &str) -> Result<()> {
    let len = u8::try_from(bytes.len())
        .map_err(|_| EntropyError::Container(format!("{what} is longer than 255 bytes")))?;
    out.push(len);
    out.extend_from_slice(bytes);
    Ok(())
}

fn utf8(bytes: &[u8], what: &str) -> Result<String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| EntropyError::Container(format!("{what} is not valid UTF-8")))
}

/// Printable form of a section tag.
pub fn tag_name(tag: [u8; 4]) -> String {
    tag.iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

/// Bounds-checked little-endian reader.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8]> {
        let available = self.bytes.len() - self.pos;
        if len > available {
            return Err(EntropyError::Container(format!(
                "truncated: {what} needs {len} bytes at offset {}, only {available} left",
                self.pos
            )));
        }
        let slice = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(slice)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2, what)?.try_into().expect("2 bytes"),
        ))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Container {
        let mut c = Container::new(CodecId::Test);
        c.model = Some(ModelTag {
            name: "prior".into(),
            sha256_prefix: [1, 2, 3, 4, 5, 6, 7, 8],
        });
        c.put_u64("count", 42);
        c.put_f64("step", 0.25);
        c.push_section(*b"POS0", vec![1, 2, 3]);
        c.push_section(*b"EMPT", vec![]);
        c
    }

    #[test]
    fn appending_parts_writes_what_writing_in_turn_writes() {
        let mut whole = Container::new(CodecId::Test);
        whole.put_u64("a", 1);
        whole.push_section(*b"AAAA", vec![1, 2]);
        whole.put_u64("b", 2);
        whole.push_section(*b"BBBB", vec![3]);
        let mut joined = Container::new(CodecId::Test);
        for (key, tag, value, payload) in
            [("a", *b"AAAA", 1, vec![1, 2]), ("b", *b"BBBB", 2, vec![3])]
        {
            let mut part = Container::new(CodecId::Test);
            part.put_u64(key, value);
            part.push_section(tag, payload);
            joined.append(part);
        }
        assert_eq!(joined.to_bytes().unwrap(), whole.to_bytes().unwrap());
    }

    #[test]
    fn peek_codec_reads_the_prelude_only() {
        let mut bytes = Container::new(CodecId::WallocAudio).to_bytes().unwrap();
        assert_eq!(Container::peek_codec(&bytes), Some(CodecId::WallocAudio));
        let last = bytes.len() - 1;
        bytes[last] ^= 1; // a checksum error later on does not matter to the peek
        assert_eq!(Container::peek_codec(&bytes), Some(CodecId::WallocAudio));
        assert_eq!(Container::peek_codec(&bytes[..7]), None);
        assert_eq!(Container::peek_codec(b"not a container"), None);
        assert_eq!(Container::peek_version(&bytes), Some(FORMAT_VERSION));
        bytes[4] = 2; // a version this build still reads
        assert_eq!(Container::peek_version(&bytes), Some(2));
        bytes[4] ^= 0xff; // another format version
        assert_eq!(Container::peek_codec(&bytes), None);
        assert_eq!(Container::peek_version(&bytes), None);
    }

    /// A version 2 container: its ANS sections keep their last word whole. It still parses and
    /// its sections still decode to the same symbols.
    #[test]
    fn version_2_containers_still_decode() {
        let model = crate::ScaleConditional::new(crate::Family::Gaussian);
        let scales: Vec<f32> = (0..501).map(|i| 0.3 + (i % 17) as f32).collect();
        let symbols: Vec<i32> = (0..501).map(|i| (i % 11) - 5).collect();
        let indexes = model.build_indexes(&scales);
        let mut stream = model.encode_symbols(&symbols, &indexes).unwrap();
        assert!(
            !stream.len().is_multiple_of(4),
            "version 3 drops zero high bytes here"
        );
        stream.resize(stream.len().next_multiple_of(4), 0);
        let mut container = Container::new(CodecId::Test);
        container.push_section(*b"ANS0", stream);
        let mut bytes = container.to_bytes().unwrap();
        bytes[4..6].copy_from_slice(&2u16.to_le_bytes());
        let covered = bytes.len() - container.sections[0].1.len() - 4;
        let crc = crc32fast::hash(&bytes[..covered]);
        bytes[covered..covered + 4].copy_from_slice(&crc.to_le_bytes());
        let parsed = Container::parse(&bytes).unwrap();
        assert_eq!(parsed.version(), 2);
        assert_eq!(
            parsed.to_bytes().unwrap(),
            bytes,
            "written back as version 2"
        );
        let section = parsed.section(*b"ANS0").unwrap();
        assert_eq!(model.decode_symbols(section, &indexes).unwrap(), symbols);
    }

    #[test]
    fn round_trips_fields_and_sections() {
        let bytes = sample().to_bytes().unwrap();
        let parsed = Container::parse(&bytes).unwrap();
        assert_eq!(parsed, sample());
        assert_eq!(parsed.u64("count").unwrap(), 42);
        assert_eq!(parsed.f64("step").unwrap(), 0.25);
        assert_eq!(parsed.section(*b"POS0").unwrap(), &[1, 2, 3]);
    }

    #[test]
    fn every_truncation_and_extension_is_rejected() {
        let bytes = sample().to_bytes().unwrap();
        for len in 0..bytes.len() {
            assert!(
                Container::parse(&bytes[..len]).is_err(),
                "prefix of {len} bytes parsed"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        let err = Container::parse(&longer).unwrap_err();
        assert!(err.to_string().contains("trailing"), "{err}");
    }

    #[test]
    fn the_header_reads_without_the_payloads() {
        let bytes = sample().to_bytes().unwrap();
        let header = Header::read(&bytes).unwrap();
        assert_eq!(header, *sample());
        assert_eq!(header.u64("count").unwrap(), 42);
        let layout = Layout::read(&bytes).unwrap();
        let places: Vec<_> = layout.sections.iter().map(|s| (s.tag, s.len)).collect();
        assert_eq!(places, vec![(*b"POS0", 3), (*b"EMPT", 0)]);
        assert_eq!(layout.payload(&bytes, *b"POS0").unwrap(), &[1, 2, 3]);
        // Every truncation and extension is refused: the table's lengths must add up.
        for len in 0..bytes.len() {
            assert!(
                Header::read(&bytes[..len]).is_err(),
                "prefix of {len} bytes read"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Header::read(&longer).is_err());
        // A payload byte is not checked here; `parse` still catches it.
        let mut corrupt = bytes.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        assert!(Header::read(&corrupt).is_ok());
        assert!(Container::parse(&corrupt).is_err());
        let layout = Layout::read(&corrupt).unwrap();
        assert!(layout.payload(&corrupt, *b"POS0").is_err());
        assert_eq!(
            layout.unchecked_payload(&corrupt, *b"POS0").unwrap(),
            &[1, 2, 2]
        );
        // A header byte is.
        let mut corrupt = bytes;
        corrupt[17] ^= 1;
        assert!(Header::read(&corrupt).is_err());
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = sample().to_bytes().unwrap();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut corrupt = bytes.clone();
                corrupt[i] ^= 1 << bit;
                assert!(
                    Container::parse(&corrupt).is_err(),
                    "flip of bit {bit} in byte {i} passed"
                );
            }
        }
    }

    #[test]
    fn errors_name_the_problem() {
        let mut bytes = sample().to_bytes().unwrap();
        bytes[4] = 9;
        let msg = Container::parse(&bytes).unwrap_err().to_string();
        assert!(msg.contains("format version 9"), "{msg}");
        let msg = Container::parse(b"PK\x03\x04rest").unwrap_err().to_string();
        assert!(msg.contains("bad magic"), "{msg}");
        let parsed = Container::parse(&sample().to_bytes().unwrap()).unwrap();
        assert!(
            parsed
                .u64("missing")
                .unwrap_err()
                .to_string()
                .contains("`missing` is missing")
        );
        assert!(parsed.expect_codec(CodecId::Splat).is_err());
    }
}
