//! Niantic's SPZ format, versions 2 to 4: read and write.
//!
//! Layout (from the reference implementation, nianticlabs/spz):
//! - v2/v3: a gzip stream holding a 16-byte header (`NGSP` magic, version, point count, SH degree,
//!   fractional bits, flags, reserved), optional extension records (flag `0x2`), then the
//!   attribute arrays: positions (24-bit fixed point), alphas, colours, scales, rotations
//!   (v2: first three of `xyzw` as bytes; v3: smallest three, 2-bit index + 3 × 10 bits),
//!   spherical harmonics (coefficient-major, colour-minor).
//! - v4: a plaintext 32-byte header (adds stream count and TOC offset), optional extension
//!   records, a TOC of (compressed, uncompressed) u64 sizes, then one zstd stream per array.
//!
//! Files are written with the reference's default pack options (12 fractional bits, 5 bits for
//! SH degree 1 and 4 bits above). SPZ stores the RUB coordinate system while PLY scenes (and
//! [`SplatScene`]) use RDF, so reading and writing convert the way the reference tools
//! (`ply_to_spz`, `spz_to_ply`, splat-transform) do: y and z of positions, of the rotation axis
//! and of the odd SH basis functions change sign. Checked against files the reference writes
//! (`tests/fixtures/splats/*.reference_v*.spz`).

use std::io::{Read, Write};

use crate::{
    error::{Result, SplatError, malformed},
    scene::{MAX_SH_DEGREE, SplatScene, check_splat_limit, logit, sh_coeffs_per_channel, sigmoid},
};

const MAGIC: u32 = 0x5053_474e;
const V4_HEADER_BYTES: usize = 32;
const LEGACY_HEADER_BYTES: usize = 16;
const FLAG_ANTIALIASED: u8 = 0x1;
const FLAG_EXTENSIONS: u8 = 0x2;
const COLOR_SCALE: f32 = 0.15;
const FRACTIONAL_BITS: u8 = 12;
const SH1_BITS: u32 = 5;
const SH_REST_BITS: u32 = 4;
const ZSTD_LEVEL: i32 = 12;
/// Sign of each per-channel SH coefficient (bands 1–3) under the RDF ↔ RUB flip of y and z.
const SH_FLIP: [f32; 15] = [
    -1., -1., 1., -1., 1., 1., -1., 1., -1., 1., -1., -1., 1., -1., 1.,
];
/// Sign of x, y, z under the RDF ↔ RUB flip.
const AXIS_FLIP: [f32; 3] = [1., -1., -1.];
/// Extension bytes accepted on read.
const MAX_EXTENSION_BYTES: usize = 1 << 20;

/// An SPZ format version this crate writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpzVersion {
    /// gzip, first-three rotations.
    V2 = 2,
    /// gzip, smallest-three rotations.
    V3 = 3,
    /// zstd per attribute stream, plaintext header.
    V4 = 4,
}

/// True when `bytes` looks like SPZ (gzip-wrapped v1–v3 or plaintext v4).
pub fn sniff(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b]) || bytes.starts_with(&MAGIC.to_le_bytes())
}

fn to_u8(x: f32) -> u8 {
    x.round().clamp(0.0, 255.0) as u8
}

/// The packed attribute arrays, in file order.
struct Packed {
    positions: Vec<u8>,
    alphas: Vec<u8>,
    colors: Vec<u8>,
    scales: Vec<u8>,
    rotations: Vec<u8>,
    sh: Vec<u8>,
}

impl Packed {
    fn streams(&self) -> Vec<&[u8]> {
        let mut s = vec![
            &self.positions[..],
            &self.alphas,
            &self.colors,
            &self.scales,
            &self.rotations,
        ];
        if !self.sh.is_empty() {
            s.push(&self.sh);
        }
        s
    }
}

fn expected_sizes(n: usize, degree: u8, rotation_bytes: usize) -> Vec<usize> {
    let mut sizes = vec![n * 9, n, n * 3, n * 3, n * rotation_bytes];
    if degree > 0 {
        sizes.push(n * sh_coeffs_per_channel(degree) * 3);
    }
    sizes
}

fn quantize_sh(x: f32, bucket: i32) -> u8 {
    let q = (x * 128.0).round() as i32 + 128;
    let q = (q + bucket / 2) / bucket * bucket;
    q.clamp(0, 255) as u8
}

fn pack(scene: &SplatScene, version: SpzVersion) -> Result<Packed> {
    let n = scene.len();
    let scale = f32::from(1u16 << FRACTIONAL_BITS);
    let mut positions = Vec::with_capacity(n * 9);
    for (i, p) in scene.positions.iter().enumerate() {
        for (&c, flip) in p.iter().zip(AXIS_FLIP) {
            let fixed = (flip * c * scale).round();
            if !(-8_388_608.0..=8_388_607.0).contains(&fixed) {
                return Err(SplatError::InvalidOptions(format!(
                    "splat {i}: coordinate {c} does not fit SPZ's 24-bit fixed point (|x| < 2048)"
                )));
            }
            let fixed = fixed as i32;
            positions.extend_from_slice(&fixed.to_le_bytes()[..3]);
        }
    }
    let alphas = scene
        .opacities
        .iter()
        .map(|&a| to_u8(sigmoid(a) * 255.0))
        .collect();
    let colors = scene
        .colors
        .as_flattened()
        .iter()
        .map(|&c| to_u8(c * (COLOR_SCALE * 255.0) + 0.5 * 255.0))
        .collect();
    let scales = scene
        .scales
        .as_flattened()
        .iter()
        .map(|&s| to_u8((s + 10.0) * 16.0))
        .collect();
    let mut rotations = Vec::with_capacity(n * 4);
    for q in &scene.rotations {
        let [w, x, y, z] = *q;
        let (y, z) = (-y, -z);
        let norm = (w * w + x * x + y * y + z * z).sqrt();
        let xyzw = [x / norm, y / norm, z / norm, w / norm];
        match version {
            SpzVersion::V2 => {
                let s = if xyzw[3] < 0.0 { -127.5 } else { 127.5 };
                rotations.extend(xyzw[..3].iter().map(|&c| to_u8(c * s + 127.5)));
            }
            SpzVersion::V3 | SpzVersion::V4 => {
                rotations.extend_from_slice(&pack_smallest_three(xyzw).to_le_bytes())
            }
        }
    }
    let coeffs = sh_coeffs_per_channel(scene.sh_degree);
    let mut sh = Vec::with_capacity(n * coeffs * 3);
    for i in 0..n {
        let rest = scene.sh_of(i);
        for k in 0..coeffs {
            let bits = if k < 3 { SH1_BITS } else { SH_REST_BITS };
            for channel in 0..3 {
                sh.push(quantize_sh(
                    SH_FLIP[k] * rest[channel * coeffs + k],
                    1 << (8 - bits),
                ));
            }
        }
    }
    Ok(Packed {
        positions,
        alphas,
        colors,
        scales,
        rotations,
        sh,
    })
}

/// Smallest-three packing of a normalized `xyzw` quaternion (SPZ v3+).
pub fn pack_smallest_three(q: [f32; 4]) -> u32 {
    let largest = (0..4).fold(
        0,
        |best, i| if q[i].abs() > q[best].abs() { i } else { best },
    );
    let negate = q[largest] < 0.0;
    let mut comp = largest as u32;
    for (i, &c) in q.iter().enumerate() {
        if i != largest {
            let negbit = ((c < 0.0) ^ negate) as u32;
            let mag = ((511.0 * (c.abs() / std::f32::consts::FRAC_1_SQRT_2) + 0.5) as u32).min(511);
            comp = (comp << 10) | (negbit << 9) | mag;
        }
    }
    comp
}

/// Inverse of [`pack_smallest_three`]: a normalized `xyzw` quaternion.
pub fn unpack_smallest_three(mut comp: u32) -> [f32; 4] {
    let largest = (comp >> 30) as usize;
    let mut q = [0f32; 4];
    let mut sum = 0.0;
    for i in (0..4).rev() {
        if i != largest {
            let mag = comp & 511;
            let negbit = (comp >> 9) & 1;
            comp >>= 10;
            let v = std::f32::consts::FRAC_1_SQRT_2 * mag as f32 / 511.0;
            q[i] = if negbit == 1 { -v } else { v };
            sum += q[i] * q[i];
        }
    }
    q[largest] = (1.0 - sum).max(0.0).sqrt();
    q
}

/// Writes `scene` as SPZ.
pub fn write_spz(scene: &SplatScene, version: SpzVersion) -> Result<Vec<u8>> {
    scene.validate()?;
    if scene.sh_degree > MAX_SH_DEGREE {
        return Err(SplatError::InvalidOptions(
            "SPZ writer supports SH degree ≤ 3".into(),
        ));
    }
    let n = u32::try_from(scene.len())
        .map_err(|_| SplatError::TooLarge("SPZ holds at most 2^32 - 1 splats".into()))?;
    let packed = pack(scene, version)?;
    let flags = if scene.antialiased {
        FLAG_ANTIALIASED
    } else {
        0
    };
    let mut header = Vec::with_capacity(V4_HEADER_BYTES);
    header.extend_from_slice(&MAGIC.to_le_bytes());
    header.extend_from_slice(&(version as u32).to_le_bytes());
    header.extend_from_slice(&n.to_le_bytes());
    header.extend_from_slice(&[scene.sh_degree, FRACTIONAL_BITS, flags]);
    let io = |e: std::io::Error| SplatError::InvalidOptions(format!("SPZ compression failed: {e}"));
    match version {
        SpzVersion::V2 | SpzVersion::V3 => {
            header.push(0);
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&header).map_err(io)?;
            for stream in packed.streams() {
                gz.write_all(stream).map_err(io)?;
            }
            gz.finish().map_err(io)
        }
        SpzVersion::V4 => {
            let streams = packed.streams();
            header.push(streams.len() as u8);
            header.extend_from_slice(&(V4_HEADER_BYTES as u32).to_le_bytes());
            header.resize(V4_HEADER_BYTES, 0);
            let compressed: Vec<Vec<u8>> = streams
                .iter()
                .map(|s| zstd::bulk::compress(s, ZSTD_LEVEL))
                .collect::<std::io::Result<_>>()
                .map_err(io)?;
            let mut out = header;
            for (c, s) in compressed.iter().zip(&streams) {
                out.extend_from_slice(&(c.len() as u64).to_le_bytes());
                out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            }
            for c in &compressed {
                out.extend_from_slice(c);
            }
            Ok(out)
        }
    }
}

/// Header facts of an SPZ file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpzHeader {
    /// Format version (2..=4).
    pub version: u32,
    /// Number of splats.
    pub splats: u32,
    /// SH degree.
    pub sh_degree: u8,
    /// Fractional bits of the fixed-point positions.
    pub fractional_bits: u8,
    /// Header flags.
    pub flags: u8,
}

fn parse_common(bytes: &[u8], max_splats: u64) -> Result<SpzHeader> {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    if u32_at(0) != MAGIC {
        return Err(malformed("SPZ header does not start with the NGSP magic"));
    }
    let header = SpzHeader {
        version: u32_at(4),
        splats: u32_at(8),
        sh_degree: bytes[12],
        fractional_bits: bytes[13],
        flags: bytes[14],
    };
    if !(2..=4).contains(&header.version) {
        return Err(malformed(format!(
            "SPZ version {} is not supported (2..=4)",
            header.version
        )));
    }
    if header.sh_degree > MAX_SH_DEGREE {
        return Err(malformed(format!(
            "SPZ SH degree {} is not supported (0..=3)",
            header.sh_degree
        )));
    }
    if header.fractional_bits > 23 {
        return Err(malformed(format!(
            "SPZ fractional bits {} exceed 23",
            header.fractional_bits
        )));
    }
    check_splat_limit(u64::from(header.splats), max_splats)?;
    Ok(header)
}

/// Checks that extension records (`u32 type, u32 length, payload`) exactly fill `bytes`.
fn check_extensions(bytes: &[u8]) -> Result<()> {
    let mut at = 0;
    while at < bytes.len() {
        if bytes.len() - at < 8 {
            return Err(malformed("SPZ extension record header is truncated"));
        }
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        at += 8;
        if len > bytes.len() - at {
            return Err(malformed(format!(
                "SPZ extension record of {len} bytes overruns its area"
            )));
        }
        at += len;
    }
    Ok(())
}

/// Reads an SPZ file (v2–v4); refuses more than `max_splats` splats before inflating them.
pub fn read_spz(bytes: &[u8], max_splats: u64) -> Result<(SplatScene, SpzHeader)> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        read_gzip(bytes, max_splats)
    } else if bytes.starts_with(&MAGIC.to_le_bytes()) {
        read_v4(bytes, max_splats)
    } else {
        Err(malformed(
            "not an SPZ file: neither gzip-wrapped nor an NGSP v4 header",
        ))
    }
}

fn read_gzip(bytes: &[u8], max_splats: u64) -> Result<(SplatScene, SpzHeader)> {
    let gz_err = |e: std::io::Error| malformed(format!("SPZ gzip stream: {e}"));
    let mut gz = flate2::read::GzDecoder::new(bytes);
    let mut head = [0u8; LEGACY_HEADER_BYTES];
    gz.read_exact(&mut head).map_err(gz_err)?;
    let header = parse_common(&head, max_splats)?;
    if header.version == 4 {
        return Err(malformed("SPZ v4 must not be gzip-wrapped"));
    }
    let sizes = expected_sizes(
        header.splats as usize,
        header.sh_degree,
        if header.version >= 3 { 4 } else { 3 },
    );
    let payload: usize = sizes.iter().sum();
    let allowance = if header.flags & FLAG_EXTENSIONS != 0 {
        MAX_EXTENSION_BYTES
    } else {
        0
    };
    let mut body = Vec::with_capacity(payload);
    gz.by_ref()
        .take((payload + allowance + 1) as u64)
        .read_to_end(&mut body)
        .map_err(gz_err)?;
    if body.len() > payload + allowance {
        return Err(malformed(format!(
            "SPZ payload is longer than the {payload} bytes its header declares"
        )));
    }
    if body.len() < payload {
        return Err(malformed(format!(
            "SPZ payload has {} bytes, its header declares {payload}",
            body.len()
        )));
    }
    let ext = body.len() - payload;
    check_extensions(&body[..ext])?;
    let mut streams = Vec::with_capacity(sizes.len());
    let mut at = ext;
    for size in sizes {
        streams.push(body[at..at + size].to_vec());
        at += size;
    }
    Ok((unpack(&header, streams), header))
}

fn read_v4(bytes: &[u8], max_splats: u64) -> Result<(SplatScene, SpzHeader)> {
    if bytes.len() < V4_HEADER_BYTES {
        return Err(malformed(format!(
            "SPZ v4 header needs {V4_HEADER_BYTES} bytes, file has {}",
            bytes.len()
        )));
    }
    let header = parse_common(bytes, max_splats)?;
    if header.version != 4 {
        return Err(malformed(format!(
            "plaintext NGSP header with version {} (only v4 is plaintext)",
            header.version
        )));
    }
    let sizes = expected_sizes(header.splats as usize, header.sh_degree, 4);
    let streams = bytes[15] as usize;
    if streams != sizes.len() {
        return Err(malformed(format!(
            "SPZ v4 declares {streams} streams, expected {}",
            sizes.len()
        )));
    }
    let toc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes")) as usize;
    if toc < V4_HEADER_BYTES || toc > bytes.len() {
        return Err(malformed(format!(
            "SPZ v4 TOC offset {toc} is outside the file"
        )));
    }
    if header.flags & FLAG_EXTENSIONS == 0 && toc != V4_HEADER_BYTES {
        return Err(malformed(
            "SPZ v4 has bytes before its TOC but no extension flag",
        ));
    }
    check_extensions(&bytes[V4_HEADER_BYTES..toc])?;
    let toc_end = toc + streams * 16;
    if toc_end > bytes.len() {
        return Err(malformed("SPZ v4 TOC is truncated"));
    }
    let mut at = toc_end;
    let mut decoded = Vec::with_capacity(streams);
    for (i, &expected) in sizes.iter().enumerate() {
        let entry = &bytes[toc + i * 16..toc + i * 16 + 16];
        let compressed = u64::from_le_bytes(entry[..8].try_into().expect("8 bytes"));
        let uncompressed = u64::from_le_bytes(entry[8..].try_into().expect("8 bytes"));
        if uncompressed != expected as u64 {
            return Err(malformed(format!(
                "SPZ v4 stream {i} declares {uncompressed} bytes, expected {expected}"
            )));
        }
        let compressed = usize::try_from(compressed)
            .ok()
            .filter(|&c| c <= bytes.len() - at)
            .ok_or_else(|| {
                malformed(format!(
                    "SPZ v4 stream {i} of {compressed} compressed bytes overruns the file"
                ))
            })?;
        let data = zstd::bulk::decompress(&bytes[at..at + compressed], expected)
            .map_err(|e| malformed(format!("SPZ v4 stream {i}: zstd: {e}")))?;
        if data.len() != expected {
            return Err(malformed(format!(
                "SPZ v4 stream {i} inflates to {} bytes, expected {expected}",
                data.len()
            )));
        }
        decoded.push(data);
        at += compressed;
    }
    if at != bytes.len() {
        return Err(malformed(format!(
            "{} trailing bytes after the last SPZ v4 stream",
            bytes.len() - at
        )));
    }
    Ok((unpack(&header, decoded), header))
}

fn unpack(header: &SpzHeader, streams: Vec<Vec<u8>>) -> SplatScene {
    let n = header.splats as usize;
    let [positions, alphas, colors, scales, rotations] = [0, 1, 2, 3, 4].map(|i| &streams[i]);
    let inv = 1.0 / (1u32 << header.fractional_bits) as f32;
    let positions = positions
        .chunks_exact(9)
        .map(|p| {
            std::array::from_fn(|k| {
                let b = &p[k * 3..k * 3 + 3];
                let fixed =
                    i32::from_le_bytes([b[0], b[1], b[2], if b[2] & 0x80 != 0 { 0xff } else { 0 }]);
                AXIS_FLIP[k] * fixed as f32 * inv
            })
        })
        .collect();
    let half_step = 0.5 / 255.0;
    let opacities = alphas
        .iter()
        .map(|&a| logit((f32::from(a) / 255.0).clamp(half_step, 1.0 - half_step)))
        .collect();
    let colors = colors
        .chunks_exact(3)
        .map(|c| c.map_to3(|v| (f32::from(v) / 255.0 - 0.5) / COLOR_SCALE))
        .collect();
    let scales = scales
        .chunks_exact(3)
        .map(|s| s.map_to3(|v| f32::from(v) / 16.0 - 10.0))
        .collect();
    let rotations = if header.version >= 3 {
        rotations
            .chunks_exact(4)
            .map(|r| {
                let [x, y, z, w] =
                    unpack_smallest_three(u32::from_le_bytes(r.try_into().expect("4 bytes")));
                [w, x, -y, -z]
            })
            .collect()
    } else {
        rotations
            .chunks_exact(3)
            .map(|r| {
                let [x, y, z] = r.map_to3(|v| f32::from(v) / 127.5 - 1.0);
                [(1.0 - x * x - y * y - z * z).max(0.0).sqrt(), x, -y, -z]
            })
            .collect()
    };
    let coeffs = sh_coeffs_per_channel(header.sh_degree);
    let mut sh_rest = vec![0f32; n * coeffs * 3];
    if coeffs > 0 {
        for (i, packed) in streams[5].chunks_exact(coeffs * 3).enumerate() {
            for k in 0..coeffs {
                for channel in 0..3 {
                    sh_rest[i * coeffs * 3 + channel * coeffs + k] =
                        SH_FLIP[k] * (f32::from(packed[k * 3 + channel]) - 128.0) / 128.0;
                }
            }
        }
    }
    SplatScene {
        positions,
        scales,
        rotations,
        opacities,
        colors,
        sh_degree: header.sh_degree,
        sh_rest,
        antialiased: header.flags & FLAG_ANTIALIASED != 0,
    }
}

trait MapTo3 {
    fn map_to3(&self, f: impl Fn(u8) -> f32) -> [f32; 3];
}

impl MapTo3 for [u8] {
    fn map_to3(&self, f: impl Fn(u8) -> f32) -> [f32; 3] {
        [f(self[0]), f(self[1]), f(self[2])]
    }
}

/// Header facts of an SPZ file without decoding the splats (v4: plaintext; v2/v3: inflates the
/// first 16 bytes only).
pub fn read_spz_header(bytes: &[u8]) -> Result<SpzHeader> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut head = [0u8; LEGACY_HEADER_BYTES];
        flate2::read::GzDecoder::new(bytes)
            .read_exact(&mut head)
            .map_err(|e| malformed(format!("SPZ gzip stream: {e}")))?;
        parse_common(&head, u64::MAX)
    } else if bytes.len() >= V4_HEADER_BYTES {
        parse_common(bytes, u64::MAX)
    } else {
        Err(malformed("not an SPZ file"))
    }
}
