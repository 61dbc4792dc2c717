//! The terse splat codec: training-free, every attribute stream entropy-coded with
//! context-adaptive models from `terse-entropy`.
//!
//! Pipeline: optional low-opacity pruning and SH-degree truncation; positions quantized on a
//! `position_bits` grid over the bounding box and sorted in Morton order (the order is not
//! preserved: splat order carries no meaning for rendering); Morton-code deltas coded by bit
//! length + mantissa; per splat, in that order, opacity (sigmoid space), log-scales,
//! smallest-three rotations, colours (green, then red and blue as differences to green) and
//! SH coefficients, each with adaptive models whose contexts are neighbouring values.

use terse_entropy::{AdaptiveDecoder, AdaptiveEncoder, AdaptiveIntegers, CodecId, Container};

use crate::{
    error::{Result, SplatError},
    scene::{SplatScene, check_splat_limit, logit, sh_coeffs_per_channel, sigmoid},
};

const FRAC_1_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
const BUCKETS: usize = 16;
/// Largest SH codebook.
pub const MAX_SH_CODEBOOK: u32 = 65_536;

/// A named trade-off between size and fidelity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preset {
    /// Finer than SPZ on every attribute.
    High,
    /// SPZ-level precision on every attribute (the default).
    #[default]
    Balanced,
    /// Coarser attributes for the smallest files.
    Small,
}

/// Quantization knobs; start from a [`Preset`] and override what you need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecOptions {
    /// Bits per position axis over the bounding box (8..=21).
    pub position_bits: u32,
    /// Quantization step of log-scales.
    pub scale_step: f32,
    /// Magnitude bits of each smallest-three rotation component (4..=15).
    pub rotation_bits: u32,
    /// Bits of opacity after the sigmoid (4..=12).
    pub opacity_bits: u32,
    /// Quantization step of the SH DC (colour) coefficients.
    pub color_step: f32,
    /// Quantization steps of SH bands 1, 2 and 3.
    pub sh_steps: [f32; 3],
    /// Highest SH degree kept (0..=3).
    pub max_sh_degree: u8,
    /// Splats whose opacity after the sigmoid is below this are dropped (0 keeps all).
    pub min_opacity: f32,
    /// Size of a k-means codebook for the higher-order SH vectors (16..=65536); 0 quantizes
    /// every coefficient on its own. Codebook entries are themselves quantized with `sh_steps`.
    pub sh_codebook: u32,
}

impl CodecOptions {
    /// The knobs of a preset.
    pub fn preset(preset: Preset) -> Self {
        let spz_color_step = 1.0 / (0.15 * 255.0);
        match preset {
            Preset::High => Self {
                position_bits: 18,
                scale_step: 1.0 / 64.0,
                rotation_bits: 11,
                opacity_bits: 10,
                color_step: spz_color_step / 4.0,
                sh_steps: [1.0 / 64.0, 1.0 / 32.0, 1.0 / 32.0],
                max_sh_degree: 3,
                min_opacity: 0.0,
                sh_codebook: 0,
            },
            Preset::Balanced => Self {
                position_bits: 16,
                scale_step: 1.0 / 16.0,
                rotation_bits: 9,
                opacity_bits: 8,
                color_step: spz_color_step,
                sh_steps: [1.0 / 16.0, 1.0 / 8.0, 1.0 / 8.0],
                max_sh_degree: 3,
                min_opacity: 0.0,
                sh_codebook: 0,
            },
            Preset::Small => Self {
                position_bits: 14,
                scale_step: 1.0 / 8.0,
                rotation_bits: 7,
                opacity_bits: 6,
                color_step: spz_color_step * 2.0,
                sh_steps: [1.0 / 8.0, 1.0 / 4.0, 1.0 / 4.0],
                max_sh_degree: 3,
                min_opacity: 1.0 / 255.0,
                sh_codebook: 0,
            },
        }
    }

    /// Checks every knob's range.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(SplatError::InvalidOptions(m));
        if !(8..=21).contains(&self.position_bits) {
            return bad(format!(
                "position_bits {} is outside 8..=21",
                self.position_bits
            ));
        }
        if !(4..=15).contains(&self.rotation_bits) {
            return bad(format!(
                "rotation_bits {} is outside 4..=15",
                self.rotation_bits
            ));
        }
        if !(4..=12).contains(&self.opacity_bits) {
            return bad(format!(
                "opacity_bits {} is outside 4..=12",
                self.opacity_bits
            ));
        }
        for (name, step) in [
            ("scale_step", self.scale_step),
            ("color_step", self.color_step),
        ]
        .into_iter()
        .chain(self.sh_steps.iter().map(|&s| ("sh_step", s)))
        {
            if !(step.is_finite() && (1e-4..=16.0).contains(&step)) {
                return bad(format!("{name} {step} is outside 1e-4..=16"));
            }
        }
        if self.max_sh_degree > 3 {
            return bad(format!("max_sh_degree {} is above 3", self.max_sh_degree));
        }
        if self.sh_codebook != 0 && !(16..=MAX_SH_CODEBOOK).contains(&self.sh_codebook) {
            return bad(format!(
                "sh_codebook {} is neither 0 nor in 16..={MAX_SH_CODEBOOK}",
                self.sh_codebook
            ));
        }
        if !(0.0..1.0).contains(&self.min_opacity) {
            return bad(format!(
                "min_opacity {} is outside [0, 1)",
                self.min_opacity
            ));
        }
        Ok(())
    }
}

impl Default for CodecOptions {
    fn default() -> Self {
        Self::preset(Preset::default())
    }
}

/// An encoded scene and what went into it.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The container bytes.
    pub bitstream: Vec<u8>,
    /// Input splat indices in coded order (pruned splats are absent).
    pub order: Vec<usize>,
    /// Bytes of each coded stream, by section tag.
    pub section_bytes: Vec<(String, usize)>,
    /// SH degree coded.
    pub sh_degree: u8,
}

fn quantize(x: f64, step: f64) -> i64 {
    (x / step).round() as i64
}

fn range_of(values: impl Iterator<Item = i64>) -> [i64; 2] {
    values.fold([0, 0], |[lo, hi], v| [lo.min(v), hi.max(v)])
}

fn bucket(v: i64, range: [i64; 2]) -> usize {
    let span = (range[1] - range[0]) as i128 + 1;
    (((v.clamp(range[0], range[1]) - range[0]) as i128 * BUCKETS as i128 / span) as usize)
        .min(BUCKETS - 1)
}

fn morton(q: [u32; 3], bits: u32) -> u64 {
    let mut code = 0u64;
    for b in 0..bits {
        for (axis, &v) in q.iter().enumerate() {
            code |= u64::from((v >> b) & 1) << (3 * b + axis as u32);
        }
    }
    code
}

fn unmorton(code: u64, bits: u32) -> [u32; 3] {
    let mut q = [0u32; 3];
    for b in 0..bits {
        for (axis, v) in q.iter_mut().enumerate() {
            *v |= (((code >> (3 * b + axis as u32)) & 1) as u32) << b;
        }
    }
    q
}

/// Normalized `w, x, y, z` quaternion with the largest component made positive, as
/// (largest index, the other three quantized to `-m..=m`).
fn quantize_rotation(q: [f32; 4], m: i64) -> (usize, [i64; 3]) {
    let norm = q
        .iter()
        .map(|&c| f64::from(c) * f64::from(c))
        .sum::<f64>()
        .sqrt();
    let q = q.map(|c| f64::from(c) / norm);
    let largest = (0..4).fold(
        0,
        |best, i| if q[i].abs() > q[best].abs() { i } else { best },
    );
    let sign = if q[largest] < 0.0 { -1.0 } else { 1.0 };
    let mut rest = [0i64; 3];
    for (slot, i) in (0..4).filter(|&i| i != largest).enumerate() {
        rest[slot] = ((sign * q[i] / FRAC_1_SQRT_2 * m as f64).round() as i64).clamp(-m, m);
    }
    (largest, rest)
}

fn dequantize_rotation(largest: usize, rest: [i64; 3], m: i64) -> [f32; 4] {
    let mut q = [0f64; 4];
    let mut sum = 0.0;
    for (slot, i) in (0..4).filter(|&i| i != largest).enumerate() {
        q[i] = rest[slot] as f64 / m as f64 * FRAC_1_SQRT_2;
        sum += q[i] * q[i];
    }
    q[largest] = (1.0 - sum).max(0.0).sqrt();
    q.map(|c| c as f32)
}

/// Models of green, red − green and blue − green.
fn color_models(ranges: &[[i64; 2]]) -> Result<Vec<AdaptiveIntegers>> {
    Ok(ranges
        .iter()
        .map(|r| AdaptiveIntegers::new(r[0], r[1], BUCKETS))
        .collect::<terse_entropy::Result<_>>()?)
}

/// Context of log-scale `axis`: axis 0 looks at the previous splat's axis 0 (`previous`
/// bucket), axis 1 at this splat's axis 0, axis 2 at both earlier axes (coarser).
fn scale_context(axis: usize, previous: usize, before: &[i64], range: [i64; 2]) -> usize {
    match axis {
        0 => previous,
        1 => BUCKETS + bucket(before[0], range),
        _ => 2 * BUCKETS + bucket(before[0], range) / 4 * 4 + bucket(before[1], range) / 4,
    }
}

/// Codes SH vectors (`3 * coeffs` integers each, coefficient-major, channel-minor); returns
/// the stream and the value range its decoder needs.
fn encode_sh_values(values: &[i64], coeffs: usize) -> Result<(Vec<u8>, [i64; 2])> {
    let range = range_of(values.iter().copied());
    let mut model = AdaptiveIntegers::new(range[0], range[1], sh_contexts(coeffs))?;
    terse_entropy::interrupt::check()?;
    let mut enc = AdaptiveEncoder::new();
    for item in values.chunks_exact(3 * coeffs) {
        let mut previous = 0i64;
        for (p, &q) in item.iter().enumerate() {
            model.encode(&mut enc, sh_context(p / 3, p % 3, previous), q)?;
            previous = q;
        }
    }
    Ok((enc.seal()?, range))
}

/// Inverse of [`encode_sh_values`] for `count` vectors.
fn decode_sh_values(
    bytes: &[u8],
    count: usize,
    coeffs: usize,
    range: [i64; 2],
) -> Result<Vec<i64>> {
    let mut model = AdaptiveIntegers::new(range[0], range[1], sh_contexts(coeffs))?;
    terse_entropy::interrupt::check()?;
    let mut dec = AdaptiveDecoder::new(bytes)?;
    let mut values = Vec::with_capacity(count * 3 * coeffs);
    for _ in 0..count {
        let mut previous = 0i64;
        for p in 0..3 * coeffs {
            let q = model.decode(&mut dec, sh_context(p / 3, p % 3, previous))?;
            values.push(q);
            previous = q;
        }
    }
    dec.close()?;
    Ok(values)
}

/// Number of SH contexts for `coeffs` coefficients per channel.
fn sh_contexts(coeffs: usize) -> usize {
    coeffs * 3 * 5
}

/// Context of SH value (`k`, `channel`): its slot and the previous value coded in the same splat
/// (the other channel of the same coefficient, or the last channel of the previous one),
/// clamped to -2..=2 so sign and size both count.
fn sh_context(k: usize, channel: usize, previous: i64) -> usize {
    (k * 3 + channel) * 5 + (previous.clamp(-2, 2) + 2) as usize
}

/// Which SH band a per-channel coefficient index belongs to (0 for band 1).
fn band_of(k: usize) -> usize {
    match k {
        0..3 => 0,
        3..8 => 1,
        _ => 2,
    }
}

/// Encodes a scene. `max_splats` bounds the input.
pub fn encode(scene: &SplatScene, options: &CodecOptions, max_splats: u64) -> Result<Encoded> {
    options.validate()?;
    check_splat_limit(scene.len() as u64, max_splats)?;
    scene.validate()?;
    let sh_degree = scene.sh_degree.min(options.max_sh_degree);
    let coeffs = sh_coeffs_per_channel(sh_degree);
    let in_coeffs = sh_coeffs_per_channel(scene.sh_degree);
    let kept: Vec<usize> = (0..scene.len())
        .filter(|&i| sigmoid(scene.opacities[i]) >= options.min_opacity)
        .collect();

    // Positions: grid over the bounding box of the kept splats, Morton order.
    let bits = options.position_bits;
    let grid = ((1u64 << bits) - 1) as f64;
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for &i in &kept {
        for k in 0..3 {
            lo[k] = lo[k].min(f64::from(scene.positions[i][k]));
            hi[k] = hi[k].max(f64::from(scene.positions[i][k]));
        }
    }
    if kept.is_empty() {
        lo = [0.0; 3];
        hi = [0.0; 3];
    }
    let cell = |k: usize| {
        if hi[k] > lo[k] {
            (hi[k] - lo[k]) / grid
        } else {
            1.0
        }
    };
    let mut coded: Vec<(u64, usize)> = kept
        .iter()
        .map(|&i| {
            let q = std::array::from_fn(|k| {
                (((f64::from(scene.positions[i][k]) - lo[k]) / cell(k)).round() as i64)
                    .clamp(0, grid as i64) as u32
            });
            (morton(q, bits), i)
        })
        .collect();
    coded.sort_unstable();
    let order: Vec<usize> = coded.iter().map(|&(_, i)| i).collect();

    let mut container = Container::new(CodecId::Splat);
    container.put_u64("splats", order.len() as u64);
    container.put_u64("source_splats", scene.len() as u64);
    container.put_u64("sh_degree", u64::from(sh_degree));
    container.put_u64("antialiased", u64::from(scene.antialiased));
    container.put_u64("position_bits", u64::from(bits));
    container.put_f64s("bounds", &[lo[0], lo[1], lo[2], hi[0], hi[1], hi[2]]);

    // POSN: Morton deltas as (bit length, top mantissa bits adaptive, rest raw).
    terse_entropy::interrupt::check()?;
    let mut enc = AdaptiveEncoder::new();
    let mut lengths = AdaptiveIntegers::new(0, 64, 65)?;
    let mut tops = AdaptiveIntegers::new(0, 3, 65)?;
    let mut previous = 0u64;
    let mut previous_len = 0usize;
    for &(code, _) in &coded {
        let delta = code - previous;
        let len = 64 - delta.leading_zeros();
        lengths.encode(&mut enc, previous_len, i64::from(len))?;
        if len > 1 {
            let below = len - 1;
            let top_bits = below.min(2);
            let top = (delta >> (below - top_bits)) & ((1 << top_bits) - 1);
            tops.encode(&mut enc, len as usize, top as i64)?;
            enc.encode_bits(delta, below - top_bits)?;
        }
        previous = code;
        previous_len = len as usize;
    }
    container.push_section(*b"POSN", enc.seal()?);

    // OPAC: sigmoid space, context = previous splat's top 3 bits.
    let opacity_max = (1i64 << options.opacity_bits) - 1;
    terse_entropy::interrupt::check()?;
    let mut enc = AdaptiveEncoder::new();
    let mut model = AdaptiveIntegers::new(0, opacity_max, 8)?;
    let mut previous = 0usize;
    for &i in &order {
        let q = ((f64::from(sigmoid(scene.opacities[i])) * opacity_max as f64).round() as i64)
            .clamp(0, opacity_max);
        model.encode(&mut enc, previous, q)?;
        previous = (q >> (options.opacity_bits - 3)) as usize;
    }
    container.put_u64("opacity_bits", u64::from(options.opacity_bits));
    container.push_section(*b"OPAC", enc.seal()?);

    // SCAL: log-scales; axis 0 in the context of the previous splat's axis 0, axes 1 and 2 in
    // the context of the previous axis of the same splat.
    let scale_step = f64::from(options.scale_step);
    let scales: Vec<[i64; 3]> = order
        .iter()
        .map(|&i| scene.scales[i].map(|s| quantize(f64::from(s), scale_step)))
        .collect();
    let scale_range = range_of(scales.iter().flatten().copied());
    terse_entropy::interrupt::check()?;
    let mut enc = AdaptiveEncoder::new();
    let mut model = AdaptiveIntegers::new(scale_range[0], scale_range[1], 3 * BUCKETS)?;
    let mut previous = 0;
    for s in &scales {
        for axis in 0..3 {
            model.encode(
                &mut enc,
                scale_context(axis, previous, &s[..axis], scale_range),
                s[axis],
            )?;
        }
        previous = bucket(s[0], scale_range);
    }
    container.put_f64("scale_step", scale_step);
    container.put_i64s("scale_range", &scale_range);
    container.push_section(*b"SCAL", enc.seal()?);

    // ROTN: smallest three.
    let m = (1i64 << options.rotation_bits) - 1;
    terse_entropy::interrupt::check()?;
    let mut enc = AdaptiveEncoder::new();
    let mut largest_model = AdaptiveIntegers::new(0, 3, 4)?;
    let mut components = AdaptiveIntegers::new(-m, m, 12)?;
    let mut previous = 0;
    for &i in &order {
        let (largest, rest) = quantize_rotation(scene.rotations[i], m);
        largest_model.encode(&mut enc, previous, largest as i64)?;
        for (slot, &v) in rest.iter().enumerate() {
            components.encode(&mut enc, largest * 3 + slot, v)?;
        }
        previous = largest;
    }
    container.put_u64("rotation_bits", u64::from(options.rotation_bits));
    container.push_section(*b"ROTN", enc.seal()?);

    // COLR: green, then red − green and blue − green.
    let color_step = f64::from(options.color_step);
    let colors: Vec<[i64; 3]> = order
        .iter()
        .map(|&i| {
            let [r, g, b] = scene.colors[i].map(|c| quantize(f64::from(c), color_step));
            [g, r - g, b - g]
        })
        .collect();
    let color_ranges: Vec<[i64; 2]> = (0..3)
        .map(|k| range_of(colors.iter().map(|c| c[k])))
        .collect();
    let mut models = color_models(&color_ranges)?;
    terse_entropy::interrupt::check()?;
    let mut enc = AdaptiveEncoder::new();
    let mut previous = 0;
    for c in &colors {
        models[0].encode(&mut enc, previous, c[0])?;
        models[1].encode(&mut enc, bucket(c[0], color_ranges[0]), c[1])?;
        models[2].encode(&mut enc, bucket(c[1], color_ranges[1]), c[2])?;
        previous = bucket(c[0], color_ranges[0]);
    }
    container.put_f64("color_step", color_step);
    container.put_i64s("color_ranges", &color_ranges.concat());
    container.push_section(*b"COLR", enc.seal()?);

    // SH: scalar (SHRS) or a k-means codebook (SHCB) plus one index per splat (SHIX).
    if coeffs > 0 {
        let steps = options.sh_steps.map(f64::from);
        let dim = 3 * coeffs;
        let scaled: Vec<f64> = order
            .iter()
            .flat_map(|&i| {
                let sh = scene.sh_of(i);
                (0..coeffs).flat_map(move |k| {
                    (0..3).map(move |c| f64::from(sh[c * in_coeffs + k]) / steps[band_of(k)])
                })
            })
            .collect();
        container.put_f64s("sh_steps", &steps);
        let codebook = options.sh_codebook as usize;
        if codebook > 0 && order.len() > codebook {
            let points: Vec<f32> = scaled.iter().map(|&v| v as f32).collect();
            let entries: Vec<i64> = crate::vq::train(&points, dim, codebook)
                .iter()
                .map(|c| c.round() as i64)
                .collect();
            let rounded: Vec<f32> = entries.iter().map(|&e| e as f32).collect();
            let indices = crate::vq::nearest(&points, dim, &rounded);
            let size = entries.len() / dim;
            let (bytes, range) = encode_sh_values(&entries, coeffs)?;
            container.put_u64("sh_codebook", size as u64);
            container.put_i64s("sh_range", &range);
            container.push_section(*b"SHCB", bytes);
            let mut model = AdaptiveIntegers::new(0, size as i64 - 1, 1)?;
            terse_entropy::interrupt::check()?;
            let mut enc = AdaptiveEncoder::new();
            for &index in &indices {
                model.encode(&mut enc, 0, i64::from(index))?;
            }
            container.push_section(*b"SHIX", enc.seal()?);
        } else {
            let values: Vec<i64> = scaled.iter().map(|v| v.round() as i64).collect();
            let (bytes, range) = encode_sh_values(&values, coeffs)?;
            container.put_u64("sh_codebook", 0);
            container.put_i64s("sh_range", &range);
            container.push_section(*b"SHRS", bytes);
        }
    }

    let section_bytes = container
        .sections()
        .map(|(tag, p)| (terse_entropy::container::tag_name(tag), p.len()))
        .collect();
    Ok(Encoded {
        bitstream: container.to_bytes()?,
        order,
        section_bytes,
        sh_degree,
    })
}

/// Header facts of a terse splat bitstream.
#[derive(Debug, Clone, PartialEq)]
pub struct BitstreamInfo {
    /// Splats coded.
    pub splats: u64,
    /// Splats in the scene before pruning.
    pub source_splats: u64,
    /// SH degree coded.
    pub sh_degree: u8,
    /// Bounding box of the coded centres (min, max).
    pub bounds: ([f64; 3], [f64; 3]),
    /// Bytes of each section, by tag.
    pub section_bytes: Vec<(String, usize)>,
}

/// Reads the header of a bitstream (validating the whole container).
pub fn inspect(bitstream: &[u8]) -> Result<BitstreamInfo> {
    let container = Container::parse(bitstream)?;
    container.expect_codec(CodecId::Splat)?;
    let bounds = container.f64s::<6>("bounds")?;
    Ok(BitstreamInfo {
        splats: container.u64("splats")?,
        source_splats: container.u64("source_splats")?,
        sh_degree: container.u64("sh_degree")?.min(255) as u8,
        bounds: (
            [bounds[0], bounds[1], bounds[2]],
            [bounds[3], bounds[4], bounds[5]],
        ),
        section_bytes: container
            .sections()
            .map(|(t, p)| (terse_entropy::container::tag_name(t), p.len()))
            .collect(),
    })
}

fn corrupt(message: impl Into<String>) -> SplatError {
    SplatError::Malformed(message.into())
}

fn ranged(container: &Container, key: &str, lo: u64, hi: u64) -> Result<u64> {
    let v = container.u64(key)?;
    if !(lo..=hi).contains(&v) {
        return Err(corrupt(format!(
            "header field `{key}` = {v} is outside {lo}..={hi}"
        )));
    }
    Ok(v)
}

fn range_field(container: &Container, key: &str) -> Result<[i64; 2]> {
    let r = container.i64s::<2>(key)?;
    if r[0] > r[1] {
        return Err(corrupt(format!("header field `{key}` is an empty range")));
    }
    Ok(r)
}

fn step_field(container: &Container, key: &str) -> Result<f64> {
    let s = container.f64(key)?;
    if !(s > 0.0 && s <= 16.0) {
        return Err(corrupt(format!(
            "header field `{key}` = {s} is not a valid step"
        )));
    }
    Ok(s)
}

/// Decodes a bitstream; refuses more than `max_splats` splats before allocating.
pub fn decode(bitstream: &[u8], max_splats: u64) -> Result<SplatScene> {
    let container = Container::parse(bitstream)?;
    container.expect_codec(CodecId::Splat)?;
    let n = container.u64("splats")?;
    check_splat_limit(n, max_splats)?;
    let n = n as usize;
    let sh_degree = ranged(&container, "sh_degree", 0, 3)? as u8;
    let antialiased = ranged(&container, "antialiased", 0, 1)? == 1;
    let bits = ranged(&container, "position_bits", 8, 21)? as u32;
    let b = container.f64s::<6>("bounds")?;
    let (lo, hi) = ([b[0], b[1], b[2]], [b[3], b[4], b[5]]);
    let grid = ((1u64 << bits) - 1) as f64;

    terse_entropy::interrupt::check()?;

    let mut dec = AdaptiveDecoder::new(container.section(*b"POSN")?)?;
    let mut lengths = AdaptiveIntegers::new(0, 64, 65)?;
    let mut tops = AdaptiveIntegers::new(0, 3, 65)?;
    let mut positions = Vec::with_capacity(n);
    let mut code = 0u64;
    let mut previous_len = 0usize;
    for _ in 0..n {
        let len = lengths.decode(&mut dec, previous_len)?;
        if !(0..=(3 * bits) as i64).contains(&len) {
            return Err(corrupt(format!(
                "Morton delta of {len} bits on a {bits}-bit grid"
            )));
        }
        let len = len as u32;
        let delta = if len == 0 {
            0
        } else if len == 1 {
            1
        } else {
            let below = len - 1;
            let top_bits = below.min(2);
            let top = tops.decode(&mut dec, len as usize)?;
            if !(0..(1 << top_bits)).contains(&top) {
                return Err(corrupt("Morton delta mantissa out of range"));
            }
            (1u64 << below)
                | ((top as u64) << (below - top_bits))
                | dec.decode_bits(below - top_bits)?
        };
        code = code
            .checked_add(delta)
            .filter(|&c| c < 1u64 << (3 * bits))
            .ok_or_else(|| corrupt("Morton code overflows the grid"))?;
        previous_len = len as usize;
        let q = unmorton(code, bits);
        positions.push(std::array::from_fn(|k| {
            let cell = if hi[k] > lo[k] {
                (hi[k] - lo[k]) / grid
            } else {
                0.0
            };
            (lo[k] + f64::from(q[k]) * cell) as f32
        }));
    }
    dec.close()?;

    let opacity_bits = ranged(&container, "opacity_bits", 4, 12)? as u32;
    let opacity_max = (1i64 << opacity_bits) - 1;
    terse_entropy::interrupt::check()?;
    let mut dec = AdaptiveDecoder::new(container.section(*b"OPAC")?)?;
    let mut model = AdaptiveIntegers::new(0, opacity_max, 8)?;
    let mut opacities = Vec::with_capacity(n);
    let mut previous = 0;
    let half = 0.5 / opacity_max as f64;
    for _ in 0..n {
        let q = model.decode(&mut dec, previous)?;
        if !(0..=opacity_max).contains(&q) {
            return Err(corrupt("opacity out of range"));
        }
        opacities.push(logit(
            (q as f64 / opacity_max as f64).clamp(half, 1.0 - half) as f32,
        ));
        previous = (q >> (opacity_bits - 3)) as usize;
    }
    dec.close()?;

    let scale_step = step_field(&container, "scale_step")?;
    let scale_range = range_field(&container, "scale_range")?;
    terse_entropy::interrupt::check()?;
    let mut dec = AdaptiveDecoder::new(container.section(*b"SCAL")?)?;
    let mut model = AdaptiveIntegers::new(scale_range[0], scale_range[1], 3 * BUCKETS)?;
    let mut scales = Vec::with_capacity(n);
    let mut previous = 0;
    for _ in 0..n {
        let mut s = [0i64; 3];
        for axis in 0..3 {
            s[axis] = model.decode(
                &mut dec,
                scale_context(axis, previous, &s[..axis], scale_range),
            )?;
        }
        let [s0, s1, s2] = s;
        previous = bucket(s0, scale_range);
        scales.push([s0, s1, s2].map(|q| (q as f64 * scale_step) as f32));
    }
    dec.close()?;

    let rotation_bits = ranged(&container, "rotation_bits", 4, 15)? as u32;
    let m = (1i64 << rotation_bits) - 1;
    terse_entropy::interrupt::check()?;
    let mut dec = AdaptiveDecoder::new(container.section(*b"ROTN")?)?;
    let mut largest_model = AdaptiveIntegers::new(0, 3, 4)?;
    let mut components = AdaptiveIntegers::new(-m, m, 12)?;
    let mut rotations = Vec::with_capacity(n);
    let mut previous = 0;
    for _ in 0..n {
        let largest = largest_model.decode(&mut dec, previous)?;
        if !(0..4).contains(&largest) {
            return Err(corrupt("rotation index out of range"));
        }
        let largest = largest as usize;
        let mut rest = [0i64; 3];
        for (slot, v) in rest.iter_mut().enumerate() {
            *v = components.decode(&mut dec, largest * 3 + slot)?;
            if !(-m..=m).contains(v) {
                return Err(corrupt("rotation component out of range"));
            }
        }
        rotations.push(dequantize_rotation(largest, rest, m));
        previous = largest;
    }
    dec.close()?;

    let color_step = step_field(&container, "color_step")?;
    let r = container.i64s::<6>("color_ranges")?;
    let color_ranges = [[r[0], r[1]], [r[2], r[3]], [r[4], r[5]]];
    if color_ranges.iter().any(|r| r[0] > r[1]) {
        return Err(corrupt("header field `color_ranges` holds an empty range"));
    }
    terse_entropy::interrupt::check()?;
    let mut dec = AdaptiveDecoder::new(container.section(*b"COLR")?)?;
    let mut models = color_models(&color_ranges)?;
    let mut colors = Vec::with_capacity(n);
    let mut previous = 0;
    for _ in 0..n {
        let green = models[0].decode(&mut dec, previous)?;
        let red = models[1].decode(&mut dec, bucket(green, color_ranges[0]))?;
        let blue = models[2].decode(&mut dec, bucket(red, color_ranges[1]))?;
        previous = bucket(green, color_ranges[0]);
        let q = [green.saturating_add(red), green, green.saturating_add(blue)];
        colors.push(q.map(|v| (v as f64 * color_step) as f32));
    }
    dec.close()?;

    let coeffs = sh_coeffs_per_channel(sh_degree);
    let mut sh_rest = vec![0f32; n * 3 * coeffs];
    if coeffs > 0 {
        let steps = container.f64s::<3>("sh_steps")?;
        if steps.iter().any(|&s| !(s > 0.0 && s <= 16.0)) {
            return Err(corrupt("header field `sh_steps` holds an invalid step"));
        }
        let range = range_field(&container, "sh_range")?;
        let codebook = ranged(&container, "sh_codebook", 0, u64::from(MAX_SH_CODEBOOK))? as usize;
        let dim = 3 * coeffs;
        let values = if codebook > 0 {
            let entries = decode_sh_values(container.section(*b"SHCB")?, codebook, coeffs, range)?;
            let mut model = AdaptiveIntegers::new(0, codebook as i64 - 1, 1)?;
            terse_entropy::interrupt::check()?;
            let mut dec = AdaptiveDecoder::new(container.section(*b"SHIX")?)?;
            let mut values = Vec::with_capacity(n * dim);
            for _ in 0..n {
                let index = model.decode(&mut dec, 0)?;
                let index = usize::try_from(index)
                    .ok()
                    .filter(|&i| i < codebook)
                    .ok_or_else(|| corrupt(format!("SH codebook index {index} out of range")))?;
                values.extend_from_slice(&entries[index * dim..(index + 1) * dim]);
            }
            dec.close()?;
            values
        } else {
            decode_sh_values(container.section(*b"SHRS")?, n, coeffs, range)?
        };
        for (i, item) in values.chunks_exact(dim).enumerate() {
            for k in 0..coeffs {
                for channel in 0..3 {
                    sh_rest[i * dim + channel * coeffs + k] =
                        (item[k * 3 + channel] as f64 * steps[band_of(k)]) as f32;
                }
            }
        }
    }
    let scene = SplatScene {
        positions,
        scales,
        rotations,
        opacities,
        colors,
        sh_degree,
        sh_rest,
        antialiased,
    };
    scene.validate()?;
    Ok(scene)
}
