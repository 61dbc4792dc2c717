//! Resource amplification (issue 18): no input may buy memory or time out of proportion to its
//! size and the limits the targets run under ([`MAX_PIXELS`], [`MAX_SPLATS`], [`MAX_FRAMES`],
//! [`MAX_ELEMENTS`]). Every corpus file, regression, seed and a set of mutated seeds runs under
//! a counting allocator; its peak heap above the starting point must stay within
//! `BYTES_PER_INPUT_BYTE × input + work bound of its target`, and its time within
//! [`MAX_SECONDS_PER_INPUT`]. This file holds one test, so nothing else allocates meanwhile.

// A counting global allocator forwards to the system allocator: `unsafe` by definition.
#![allow(unsafe_code)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use terse_entropy::Container;
use terse_fuzz_targets::{
    MAX_ELEMENTS, MAX_FRAMES, MAX_PIXELS, MAX_SPLATS, MAX_TENSOR_FILE_BYTES, StructuredEdit,
    TARGETS, committed_inputs, restructure,
};

/// The system allocator, counting live bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                let grown = new_size - layout.size();
                let live = LIVE.fetch_add(grown, Ordering::Relaxed) + grown;
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap an input may use per byte of itself (decompression, parsing copies).
const BYTES_PER_INPUT_BYTE: usize = 64;
/// Longest any one input may run (debug build, a loaded CI machine).
const MAX_SECONDS_PER_INPUT: f64 = 10.0;

/// Heap a target may use whatever the input, from the limits it runs under.
fn work_bound(target: &str) -> usize {
    const MIB: usize = 1 << 20;
    match target {
        // Decoded RGB (u8 and f32 copies) and the decoder's planes, per pixel.
        "image_file" | "walloc_image_bitstream" | "mlic_bitstream" => {
            MAX_PIXELS as usize * 64 + 16 * MIB
        }
        // Samples as f32 per channel (2), a resampled copy and the codec's bands.
        "audio_file" | "walloc_audio_bitstream" => MAX_FRAMES as usize * 2 * 4 * 8 + 16 * MIB,
        // The decoded scene (62 floats per splat at SH degree 3) and its coding buffers.
        "splat_ply" | "splat_spz" | "splat_bitstream" => MAX_SPLATS as usize * 2048 + 16 * MIB,
        // The decoded file, a tensor read on its own, and per-chunk symbols and planes (under
        // 3 bytes per element byte).
        "tensor_bitstream" => MAX_TENSOR_FILE_BYTES as usize * 6 + 16 * MIB,
        // A few copies of the largest tensor and O(256 · N) similarities.
        "vision_request" => MAX_ELEMENTS * 4 * 16 + 16 * MIB,
        // Tokenizer and keep-probability buffers.
        _ => 64 * MIB,
    }
}

/// Seeds with their 32-bit fields set to extreme values at every 4-byte step of the first
/// 256 bytes (where headers declare sizes and counts).
fn extreme_variants(seed: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for at in (0..seed.len().saturating_sub(4).min(256)).step_by(4) {
        for value in [u32::MAX, 1 << 31, 0x7fff_ffff] {
            let mut data = seed.to_vec();
            data[at..at + 4].copy_from_slice(&value.to_le_bytes());
            out.push(data);
        }
    }
    out
}

/// Container seeds with each 64-bit word of each header field set to an extreme value, under
/// fresh checksums (a byte edit of a container stops at its header's CRC).
fn hostile_field_variants(seed: &[u8]) -> Vec<Vec<u8>> {
    let Ok(container) = Container::parse(seed) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (field, (_, value)) in container.fields().enumerate() {
        for word in 0..value.len().div_ceil(8).max(1) {
            for value in [
                u64::MAX,
                i64::MAX as u64,
                1 << 32,
                1 << 31,
                u64::from(u32::MAX),
            ] {
                let edit = StructuredEdit::Word { field, word, value };
                out.extend(restructure(&container, &[edit]));
            }
        }
    }
    out
}

#[test]
fn no_input_buys_memory_or_time_out_of_proportion() {
    let mut report = Vec::new();
    for target in TARGETS {
        let mut inputs: Vec<Vec<u8>> = ["corpus", "regressions"]
            .iter()
            .flat_map(|folder| committed_inputs(folder, target.name))
            .map(|path| std::fs::read(path).expect("corpus file"))
            .collect();
        for seed in (target.seeds)() {
            inputs.extend(extreme_variants(&seed));
            inputs.extend(hostile_field_variants(&seed));
            inputs.push(seed);
        }
        let bound = work_bound(target.name);
        let (mut worst_ratio, mut worst_time) = (0.0f64, Duration::ZERO);
        // Model assets load once, on first use: outside the measurement.
        if let Some(seed) = inputs.last() {
            (target.run)(seed);
        }
        for input in &inputs {
            let start = LIVE.load(Ordering::Relaxed);
            PEAK.store(start, Ordering::Relaxed);
            let started = Instant::now();
            (target.run)(input);
            let took = started.elapsed();
            let used = PEAK.load(Ordering::Relaxed).saturating_sub(start);
            let allowed = BYTES_PER_INPUT_BYTE * input.len() + bound;
            assert!(
                used <= allowed,
                "{}: an input of {} bytes used {used} bytes of heap (allowed {allowed})",
                target.name,
                input.len()
            );
            assert!(
                took.as_secs_f64() <= MAX_SECONDS_PER_INPUT,
                "{}: an input of {} bytes ran {took:?}",
                target.name,
                input.len()
            );
            worst_ratio = worst_ratio.max(used as f64 / allowed as f64);
            worst_time = worst_time.max(took);
        }
        report.push(format!(
            "{}: {} inputs, peak heap at most {:.0} % of its bound, slowest {:?}",
            target.name,
            inputs.len(),
            100.0 * worst_ratio,
            worst_time
        ));
    }
    println!("{}", report.join("\n"));
}
