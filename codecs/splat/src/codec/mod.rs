//! The terse splat codec: training-free, every attribute stream entropy-coded with
//! context-adaptive models from `terse-entropy`.
//!
//! Pipeline: optional low-opacity pruning and SH-degree truncation; positions quantized on a
//! grid (an absolute step or `position_bits` over the bounding box, per axis the finer) and
//! sorted in Morton order (the order is not preserved: splat order carries no meaning for
//! rendering); Morton-code deltas coded by bit length + mantissa; per splat, in that order,
//! opacity (sigmoid space), log-scales, smallest-three rotations, colours (green, then red and blue as differences to green) and
//! SH coefficients, each with adaptive models whose contexts are neighbouring values.

mod color;
mod opacity;
mod options;
mod position;
mod rotation;
mod scale;
mod section;
mod sh;

use std::collections::HashMap;

use terse_entropy::{CodecId, Container};

pub use options::{CodecOptions, MAX_SH_CODEBOOK, Preset};

use crate::{
    error::Result,
    scene::{SplatScene, check_splat_limit, sh_coeffs_per_channel, sigmoid},
};
use color::Colors;
use opacity::Opacity;
use position::{Grid, MortonCodes};
use rotation::Rotations;
use scale::Scales;
use section::{corrupt, range_of, read, read_attribute, write, write_smallest};
use sh::ShLayout;

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

/// Encodes a scene. `max_splats` bounds the input.
pub fn encode(scene: &SplatScene, options: &CodecOptions, max_splats: u64) -> Result<Encoded> {
    options.validate()?;
    check_splat_limit(scene.len() as u64, max_splats)?;
    scene.validate()?;
    let sh_degree = scene.sh_degree.min(options.max_sh_degree);
    let kept = (0..scene.len()).filter(|&i| sigmoid(scene.opacities[i]) >= options.min_opacity);
    let kept: Vec<usize> = kept.collect();

    let grid = Grid::choose(
        options.position_bits,
        f64::from(options.position_step),
        kept.iter().map(|&i| scene.positions[i]),
    );
    let mut coded: Vec<(u128, usize)> = kept
        .iter()
        .map(|&i| (grid.code(scene.positions[i]), i))
        .collect();
    coded.sort_unstable();
    let order: Vec<usize> = coded.iter().map(|&(_, i)| i).collect();

    let mut container = Container::new(CodecId::Splat);
    container.put_u64("splat_format", SPLAT_FORMAT);
    container.put_u64("splats", order.len() as u64);
    container.put_u64("source_splats", scene.len() as u64);
    container.put_u64("sh_degree", u64::from(sh_degree));
    container.put_u64("antialiased", u64::from(scene.antialiased));
    grid.write_header(&mut container);

    // The attribute sections are independent: each is coded on a thread of its own (under the
    // call's interrupt flag) into a part holding its header fields and sections, and the parts
    // are merged in a fixed order, so the bytes do not depend on the threads.
    let interrupt = terse_entropy::interrupt::handle();
    let parts = std::thread::scope(|scope| {
        let opacity = start(scope, &interrupt, || {
            let bits = options.opacity_bits;
            let values: Vec<i64> = order
                .iter()
                .map(|&i| Opacity::quantize(bits, scene.opacities[i]))
                .collect();
            let (model, bytes) = write_smallest(|raw| Opacity::new(bits, raw), 0..=3, &values)?;
            Ok(part(|c| model.write_header(c), *b"OPAC", bytes))
        });
        let scales = start(scope, &interrupt, || {
            let step = f64::from(options.scale_step);
            let values: Vec<[i64; 3]> = order
                .iter()
                .map(|&i| Scales::quantize(step, scene.scales[i]))
                .collect();
            let range = range_of(values.iter().flatten().copied());
            let make = |raw| Scales::new(step, range, raw);
            let (model, bytes) = write_smallest(make, 0..=4, &values)?;
            Ok(part(|c| model.write_header(c), *b"SCAL", bytes))
        });
        let rotations = start(scope, &interrupt, || {
            let bits = options.rotation_bits;
            let values: Vec<_> = order
                .iter()
                .map(|&i| Rotations::quantize(bits, scene.rotations[i]))
                .collect();
            let raw = bits.saturating_sub(6)..=bits.saturating_sub(2);
            let (model, bytes) = write_smallest(|raw| Rotations::new(bits, raw), raw, &values)?;
            Ok(part(|c| model.write_header(c), *b"ROTN", bytes))
        });
        let colors = start(scope, &interrupt, || {
            let step = f64::from(options.color_step);
            let anchor = color::anchor_for(step);
            let values: Vec<[i64; 3]> = order
                .iter()
                .map(|&i| Colors::quantize(step, anchor, scene.colors[i]))
                .collect();
            let ranges = std::array::from_fn(|k| range_of(values.iter().map(|c| c[k])));
            let make = |raw| Colors::new(step, anchor, ranges, raw);
            let (model, bytes) = write_smallest(make, 0..=3, &values)?;
            Ok(part(|c| model.write_header(c), *b"COLR", bytes))
        });
        let sh = start(scope, &interrupt, || {
            let mut sh = Container::new(CodecId::Splat);
            let coeffs = sh_coeffs_per_channel(sh_degree);
            if coeffs > 0 {
                encode_sh(scene, &order, coeffs, options, &mut sh)?;
            }
            Ok(sh)
        });
        let mut positions = MortonCodes::new(grid.bits)?;
        let posn = write(&mut positions, coded.iter().map(|&(code, _)| code))?;
        Result::Ok([
            part(|_| {}, *b"POSN", posn),
            finish(opacity)?,
            finish(scales)?,
            finish(rotations)?,
            finish(colors)?,
            finish(sh)?,
        ])
    })?;
    for part in parts {
        container.append(part);
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

/// Splats per codebook entry at least: an entry costs about as many bits as 16 splats'
/// indices, so a larger codebook spends more on itself than it saves.
const SPLATS_PER_ENTRY: usize = 16;

/// The codebook size used for `requested` entries at most over `splats` splats: a power of
/// two no larger than `splats / SPLATS_PER_ENTRY`, or 0 when even 16 entries would not pay.
pub fn codebook_size(requested: u32, splats: usize) -> usize {
    let cap = (splats / SPLATS_PER_ENTRY).min(requested as usize);
    if cap < 16 { 0 } else { 1 << cap.ilog2() }
}

/// The distinct quantized SH vectors of `values` (`dim` each), most frequent first, and each
/// splat's index among them, when there are at most half as many as splats (and at most
/// [`MAX_SH_CODEBOOK`]): scenes that went through a palette format (SOG) repeat a few
/// thousand vectors, which an exact palette codes without further loss.
fn exact_palette(values: &[i64], dim: usize) -> Option<(Vec<i64>, Vec<usize>)> {
    let n = values.len() / dim;
    let most = (n / 2).min(MAX_SH_CODEBOOK as usize);
    if most == 0 {
        return None;
    }
    // Ids in order of first sight, each splat's id, and each id's first splat and count.
    let mut ids: HashMap<&[i64], usize> = HashMap::new();
    let mut of_splat = Vec::with_capacity(n);
    let mut seen: Vec<(usize, usize)> = Vec::new();
    for (i, v) in values.chunks_exact(dim).enumerate() {
        let id = *ids.entry(v).or_insert_with(|| {
            seen.push((i, 0));
            seen.len() - 1
        });
        if seen.len() > most {
            return None;
        }
        seen[id].1 += 1;
        of_splat.push(id);
    }
    // Most frequent first; ties in order of first sight.
    let mut by_count: Vec<usize> = (0..seen.len()).collect();
    by_count.sort_by_key(|&id| std::cmp::Reverse(seen[id].1));
    let mut rank = vec![0; seen.len()];
    for (r, &id) in by_count.iter().enumerate() {
        rank[id] = r;
    }
    let entries = by_count
        .iter()
        .flat_map(|&id| &values[seen[id].0 * dim..][..dim])
        .copied()
        .collect();
    Some((entries, of_splat.into_iter().map(|id| rank[id]).collect()))
}

/// SH: scalar (SHRS), or a codebook (SHCB) plus one index per splat (SHIX): the exact palette
/// of repeated vectors when there is one, or a k-means codebook when `sh_codebook` asks for
/// one. A codebook is kept only when its streams are smaller than the scalar stream.
fn encode_sh(
    scene: &SplatScene,
    order: &[usize],
    coeffs: usize,
    options: &CodecOptions,
    container: &mut Container,
) -> Result<()> {
    let steps = options.sh_steps.map(f64::from);
    let dim = 3 * coeffs;
    let scaled = ShLayout::scaled(coeffs, steps, scene, order);
    let layout = |codebook, values: &[i64]| ShLayout {
        coeffs,
        steps,
        codebook,
        range: range_of(values.iter().copied()),
    };
    let values: Vec<i64> = scaled.iter().map(|v| v.round() as i64).collect();
    let palette = exact_palette(&values, dim);
    let scalar = layout(0, &values);
    let scalar_bytes = write(&mut scalar.values()?, values)?;
    let mut best = (scalar, vec![(*b"SHRS", scalar_bytes)]);
    let bytes = |s: &[([u8; 4], Vec<u8>)]| s.iter().map(|(_, b)| b.len()).sum::<usize>();
    // A codebook's entries (SHCB) and each splat's index (SHIX), kept if smaller.
    let mut try_codebook = |entries: Vec<i64>, indices: Vec<usize>| -> Result<()> {
        let codebook = layout(entries.len() / dim, &entries);
        let sections = vec![
            (*b"SHCB", write(&mut codebook.values()?, entries)?),
            (*b"SHIX", write(&mut codebook.indices()?, indices)?),
        ];
        if bytes(&sections) < bytes(&best.1) {
            best = (codebook, sections);
        }
        Ok(())
    };
    if let Some((entries, indices)) = palette {
        try_codebook(entries, indices)?;
    }
    let codebook = codebook_size(options.sh_codebook, order.len());
    if codebook > 0 {
        let points: Vec<f32> = scaled.iter().map(|&v| v as f32).collect();
        let entries: Vec<i64> = crate::vq::train(&points, dim, codebook)
            .iter()
            .map(|c| c.round() as i64)
            .collect();
        let rounded: Vec<f32> = entries.iter().map(|&e| e as f32).collect();
        let indices = crate::vq::nearest(&points, dim, &rounded);
        try_codebook(entries, indices.into_iter().map(|i| i as usize).collect())?;
    }
    best.0.write_header(container);
    for (tag, bytes) in best.1 {
        container.push_section(tag, bytes);
    }
    Ok(())
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
    /// Position grid cell per axis: a centre is off by at most half of it.
    pub position_cell: [f64; 3],
    /// Bytes of each section, by tag.
    pub section_bytes: Vec<(String, usize)>,
}

/// Reads the header of a bitstream (validating the whole container).
pub fn inspect(bitstream: &[u8]) -> Result<BitstreamInfo> {
    let container = Container::parse(bitstream)?;
    container.expect_codec(CodecId::Splat)?;
    check_format(&container)?;
    let grid = Grid::from_header(&container)?;
    let [lo, hi] = grid.bounds;
    Ok(BitstreamInfo {
        splats: container.u64("splats")?,
        source_splats: container.u64("source_splats")?,
        sh_degree: container.u64("sh_degree")?.min(255) as u8,
        bounds: (lo, hi),
        position_cell: grid.cell,
        section_bytes: section_bytes(bitstream)?,
    })
}

/// Bytes of each section of a bitstream, by tag, read from its section table (the payloads are
/// neither checked nor copied: for a bitstream this process just wrote, or after [`inspect`]).
pub fn section_bytes(bitstream: &[u8]) -> Result<Vec<(String, usize)>> {
    Ok(terse_entropy::Layout::read(bitstream)?
        .sections
        .into_iter()
        .map(|s| (terse_entropy::container::tag_name(s.tag), s.len))
        .collect())
}

/// The layout of the header fields and sections this module writes. Format 2 added the
/// absolute position grid (`position_origin`, `position_cell`) and the colour levels' anchor.
const SPLAT_FORMAT: u64 = 2;

fn check_format(container: &Container) -> Result<()> {
    match container.u64("splat_format") {
        Ok(SPLAT_FORMAT) => Ok(()),
        Ok(v) => Err(corrupt(format!(
            "splat format {v} is not {SPLAT_FORMAT}, the one this build reads"
        ))),
        Err(_) => Err(corrupt(
            "bitstream written by an earlier splat format (before 2): re-encode the scene",
        )),
    }
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
    check_format(&container)?;
    let n = container.u64("splats")?;
    check_splat_limit(n, max_splats)?;
    let n = n as usize;
    let sh_degree = ranged(&container, "sh_degree", 0, 3)? as u8;
    let antialiased = ranged(&container, "antialiased", 0, 1)? == 1;
    let grid = Grid::from_header(&container)?;

    // The sections are independent streams: all but the positions are decoded on threads of
    // their own (each under the call's interrupt flag), the positions on this one.
    let interrupt = terse_entropy::interrupt::handle();
    let (positions, opacities, scales, rotations, colors, sh_rest) = std::thread::scope(|scope| {
        let opacities = start(scope, &interrupt, || {
            read_attribute::<Opacity>(&container, n)
        });
        let scales = start(scope, &interrupt, || {
            read_attribute::<Scales>(&container, n)
        });
        let rotations = start(scope, &interrupt, || {
            read_attribute::<Rotations>(&container, n)
        });
        let colors = start(scope, &interrupt, || {
            read_attribute::<Colors>(&container, n)
        });
        let sh_rest = start(scope, &interrupt, || {
            match sh_coeffs_per_channel(sh_degree) {
                0 => Ok(Vec::new()),
                coeffs => decode_sh(&container, n, coeffs),
            }
        });
        let codes = read(
            &mut MortonCodes::new(grid.bits)?,
            container.section(*b"POSN")?,
            n,
        )?;
        let positions = codes.into_iter().map(|code| grid.point(code)).collect();
        Result::Ok((
            positions,
            finish(opacities)?,
            finish(scales)?,
            finish(rotations)?,
            finish(colors)?,
            finish(sh_rest)?,
        ))
    })?;
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

/// A part of a bitstream: the header fields `write_header` puts and one section.
fn part(write_header: impl FnOnce(&mut Container), tag: [u8; 4], bytes: Vec<u8>) -> Container {
    let mut part = Container::new(CodecId::Splat);
    write_header(&mut part);
    part.push_section(tag, bytes);
    part
}

/// Starts `work` on a thread of `scope` under `interrupt`.
fn start<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    interrupt: &'scope terse_entropy::interrupt::Handle,
    work: impl FnOnce() -> Result<T> + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, Result<T>> {
    scope.spawn(move || interrupt.run(work))
}

/// What a thread from [`start`] returned (its panic goes on in this thread).
fn finish<T>(thread: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The `sh_rest` of `n` splats.
fn decode_sh(container: &Container, n: usize, coeffs: usize) -> Result<Vec<f32>> {
    let layout = ShLayout::from_header(container, coeffs)?;
    let dim = layout.dim();
    let values = if layout.codebook > 0 {
        let entries = container.section(*b"SHCB")?;
        let entries = read(&mut layout.values()?, entries, layout.codebook * dim)?;
        let indices = read(&mut layout.indices()?, container.section(*b"SHIX")?, n)?;
        let mut values = Vec::with_capacity(n * dim);
        for index in indices {
            values.extend_from_slice(&entries[index * dim..(index + 1) * dim]);
        }
        values
    } else {
        read(&mut layout.values()?, container.section(*b"SHRS")?, n * dim)?
    };
    Ok(layout.unscaled(&values))
}
