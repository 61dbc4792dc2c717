//! Lossless weight compression against the tools a user would pick, in one run on one machine:
//! zstd -19, DFloat11's format (its size computed from its published layout: one Huffman code
//! of the exponents per transformer block over the Linear/Embedding weights, the sign and
//! mantissa byte raw, 5 bits of gap per 8-byte thread and a 4-byte output position per
//! 512-thread block; other tensors stay BF16) and ZipNN (PyPI `zipnn`, run through
//! `scripts/tensor-baselines.py` when `TERSE_ZIPNN_PYTHON` names a Python that has it).
//!
//! Run: `TERSE_TENSOR_FILES=a.safetensors,b.safetensors cargo bench -p terse-tensor --bench
//! tensor_eval` (the files: `scripts/tensor-weights.py OUT_DIR`). Each FP32 file is also measured cast to BF16 (round to nearest even, as
//! `torch.Tensor.to(torch.bfloat16)` does), the way BF16 checkpoints are made. Every round trip
//! is asserted bit-exact, the whole file and every tensor read on its own.

use std::{
    collections::{BTreeMap, BinaryHeap},
    process::Command,
    time::Instant,
};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use terse_tensor::{EncodeOptions, decode, decode_tensor, decode_to, encode, inspect};

/// Timed decodes per codec; the best counts (the ZipNN script does the same).
const RUNS: usize = 5;

fn bf16_of(file: &[u8]) -> Vec<u8> {
    let st = SafeTensors::deserialize(file).expect("safetensors");
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in st.tensors() {
        let (dtype, data) = match view.dtype() {
            Dtype::F32 => (
                Dtype::BF16,
                view.data()
                    .chunks_exact(4)
                    .flat_map(|b| {
                        let u = u32::from_le_bytes(b.try_into().unwrap());
                        let rounded = if (u & 0x7fff_ffff) > 0x7f80_0000 {
                            (u >> 16) | 0x40 // NaN stays NaN
                        } else {
                            (u + 0x7fff + ((u >> 16) & 1)) >> 16
                        };
                        (rounded as u16).to_le_bytes()
                    })
                    .collect(),
            ),
            other => (other, view.data().to_vec()),
        };
        owned.push((name, dtype, view.shape().to_vec(), data));
    }
    let views: Vec<(String, TensorView)> = owned
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// Huffman code lengths of `counts` (plus dahuffman's end-of-file symbol of count 1).
fn huffman_bits(counts: &BTreeMap<u16, u64>) -> u64 {
    let mut heap: BinaryHeap<std::cmp::Reverse<(u64, usize)>> = BinaryHeap::new();
    let mut symbols: Vec<(u64, Vec<usize>)> = Vec::new(); // (count, leaf ids)
    let mut depth = vec![0u64; counts.len() + 1];
    for (i, &c) in counts.values().chain(std::iter::once(&1)).enumerate() {
        symbols.push((c, vec![i]));
        heap.push(std::cmp::Reverse((c, symbols.len() - 1)));
    }
    while heap.len() > 1 {
        let std::cmp::Reverse((a, i)) = heap.pop().unwrap();
        let std::cmp::Reverse((b, j)) = heap.pop().unwrap();
        let mut leaves = std::mem::take(&mut symbols[i].1);
        leaves.extend(std::mem::take(&mut symbols[j].1));
        for &leaf in &leaves {
            depth[leaf] += 1;
        }
        symbols.push((a + b, leaves));
        heap.push(std::cmp::Reverse((a + b, symbols.len() - 1)));
    }
    let eof = depth[counts.len()];
    counts.values().zip(&depth).map(|(c, d)| c * d).sum::<u64>() + eof
}

/// DFloat11's compressed size of a BF16 file.
fn dfloat11_bytes(file: &[u8]) -> u64 {
    let st = SafeTensors::deserialize(file).unwrap();
    let mut groups: BTreeMap<String, BTreeMap<u16, u64>> = BTreeMap::new();
    let mut elements: BTreeMap<String, u64> = BTreeMap::new();
    let mut raw = 0u64;
    for (name, view) in st.tensors() {
        let compressible =
            view.dtype() == Dtype::BF16 && view.shape().len() == 2 && name.ends_with(".weight");
        if !compressible {
            raw += view.data().len() as u64;
            continue;
        }
        let parts: Vec<&str> = name.split('.').collect();
        let block = parts
            .iter()
            .position(|p| p.parse::<u32>().is_ok())
            .map_or(name.clone(), |i| parts[..=i].join("."));
        let counts = groups.entry(block.clone()).or_default();
        for b in view.data().chunks_exact(2) {
            *counts
                .entry((u16::from_le_bytes([b[0], b[1]]) >> 7) & 0xff)
                .or_default() += 1;
        }
        *elements.entry(block).or_default() += view.data().len() as u64 / 2;
    }
    let mut total = raw;
    for (block, counts) in &groups {
        let bits = huffman_bits(counts);
        let encoded = bits.div_ceil(8);
        let threads = 512 * encoded.div_ceil(512 * 8);
        let positions = bits.div_ceil(8 * 8 * 512) + 1;
        total += encoded + elements[block] + 4 * positions + (5 * threads).div_ceil(8);
    }
    total
        + (file.len()
            - st.tensors()
                .iter()
                .map(|(_, v)| v.data().len())
                .sum::<usize>()) as u64
}

fn mbps(bytes: usize, seconds: f64) -> f64 {
    bytes as f64 / seconds / 1e6
}

fn zipnn(path: &str, bf16: bool) -> Option<String> {
    let python = std::env::var("TERSE_ZIPNN_PYTHON").ok()?;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/tensor-baselines.py"
    );
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(path);
    if bf16 {
        cmd.arg("--bf16");
    }
    let out = cmd.output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Size and decode speed at other chunk sizes (`TERSE_TENSOR_CHUNKS=65536,1048576`).
fn chunk_sizes(file: &[u8]) {
    let Ok(list) = std::env::var("TERSE_TENSOR_CHUNKS") else {
        return;
    };
    for chunk_elements in list.split(',').filter_map(|c| c.parse::<u64>().ok()) {
        let coded = encode(file, EncodeOptions { chunk_elements }).expect("encode");
        let mut dec_s = f64::INFINITY;
        for _ in 0..3 {
            let start = Instant::now();
            let decoded = decode(&coded, u64::MAX).expect("decode");
            dec_s = dec_s.min(start.elapsed().as_secs_f64());
            assert!(decoded == file);
        }
        println!(
            "  {:<34} {:>6.2}% {:>10} {:>10.0}",
            format!("terse-tensor, chunks of {chunk_elements}"),
            100.0 * coded.len() as f64 / file.len() as f64,
            "-",
            mbps(file.len(), dec_s)
        );
    }
}

fn evaluate(label: &str, path: &str, file: &[u8]) {
    println!("\n{label}: {} bytes", file.len());
    let start = Instant::now();
    let coded = encode(file, EncodeOptions::default()).expect("encode");
    let enc_s = start.elapsed().as_secs_f64();
    // Best of 5, as the ZipNN script times its decode. `decode` returns a fresh buffer, whose
    // pages the kernel faults in and zeroes; `decode_to` streams through a buffer of a few
    // chunks into a sink, here one reused from run to run (as a loader with its own memory,
    // or the service's response stream, would).
    let mut dec_s = f64::INFINITY;
    let mut decoded = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        decoded = decode(&coded, u64::MAX).expect("decode");
        dec_s = dec_s.min(start.elapsed().as_secs_f64());
    }
    assert!(
        decoded == file,
        "{label}: the file did not round-trip bit-exactly"
    );
    let mut streamed_s = f64::INFINITY;
    for _ in 0..RUNS {
        decoded.clear();
        let start = Instant::now();
        decode_to(&coded, u64::MAX, &mut decoded).expect("decode_to");
        streamed_s = streamed_s.min(start.elapsed().as_secs_f64());
    }
    assert!(decoded == file, "{label}: decode_to differs");
    let st = SafeTensors::deserialize(file).unwrap();
    for entry in inspect(&coded).unwrap().tensors {
        let (_, bytes) = decode_tensor(&coded, &entry.name, u64::MAX).unwrap();
        assert!(
            bytes == st.tensor(&entry.name).unwrap().data(),
            "{}",
            entry.name
        );
    }
    println!(
        "  {:<34} {:>7} {:>10} {:>10}",
        "codec", "ratio", "enc MB/s", "dec MB/s"
    );
    let row = |name: &str, size: u64, enc: Option<f64>, dec: Option<f64>| {
        let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
        println!(
            "  {name:<34} {:>6.2}% {:>10} {:>10}",
            100.0 * size as f64 / file.len() as f64,
            fmt(enc),
            fmt(dec)
        );
    };
    row(
        "terse-tensor (exact, every tensor)",
        coded.len() as u64,
        Some(mbps(file.len(), enc_s)),
        Some(mbps(file.len(), dec_s)),
    );
    row(
        "  decode_to, into a reused buffer",
        coded.len() as u64,
        None,
        Some(mbps(file.len(), streamed_s)),
    );
    chunk_sizes(file);
    let start = Instant::now();
    let z = zstd::bulk::compress(file, 19).unwrap();
    let zenc = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let back = zstd::bulk::decompress(&z, file.len()).unwrap();
    let zdec = start.elapsed().as_secs_f64();
    assert!(back == file);
    row(
        "zstd -19",
        z.len() as u64,
        Some(mbps(file.len(), zenc)),
        Some(mbps(file.len(), zdec)),
    );
    if st.tensors().iter().any(|(_, v)| v.dtype() == Dtype::BF16) {
        row(
            "DFloat11 format (computed)",
            dfloat11_bytes(file),
            None,
            None,
        );
    }
    if let Some(lines) = zipnn(path, label.contains("cast to BF16")) {
        for line in lines.lines() {
            println!("  {line}");
            let zipnn_dec = line.split(", ").find_map(|part| {
                part.strip_prefix("dec ")?
                    .strip_suffix(" MB/s")?
                    .parse::<f64>()
                    .ok()
            });
            if let Some(zipnn_dec) = zipnn_dec {
                println!(
                    "    decode throughput terse / zipnn: {:.2}x (decode), {:.2}x (decode_to)",
                    mbps(file.len(), dec_s) / zipnn_dec,
                    mbps(file.len(), streamed_s) / zipnn_dec
                );
            }
        }
    }
}

fn main() {
    let Ok(files) = std::env::var("TERSE_TENSOR_FILES") else {
        eprintln!("TERSE_TENSOR_FILES is not set: nothing to evaluate");
        return;
    };
    println!("rayon threads: {}", rayon::current_num_threads());
    for path in files.split(',').filter(|p| !p.is_empty()) {
        let file = std::fs::read(path).expect("read");
        let st = SafeTensors::deserialize(&file).expect("safetensors");
        let has_f32 = st.tensors().iter().any(|(_, v)| v.dtype() == Dtype::F32);
        evaluate(&format!("{path} (as stored)"), path, &file);
        if has_f32 {
            let bf16 = bf16_of(&file);
            evaluate(&format!("{path} (cast to BF16)"), path, &bf16);
        }
    }
}
