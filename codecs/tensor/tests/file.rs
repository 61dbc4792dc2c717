//! Whole safetensors files through the tensor codec: every dtype back byte for byte, one tensor
//! read on its own, and damaged or over-limit bitstreams refused with the right error.

use std::collections::HashMap;

use safetensors::{Dtype, tensor::TensorView};
use terse_core::{Classify, ErrorKind};
use terse_tensor::{EncodeOptions, TensorError, decode, decode_tensor, decode_to, encode, inspect};

/// Deterministic pseudo-random bytes.
fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// Weight-like floats (roughly normal, scale 0.05) as f32.
fn weights(n: usize, seed: u32) -> Vec<f32> {
    noise(4 * n, seed)
        .chunks_exact(4)
        .map(|b| {
            let sum: f32 = b.iter().map(|&v| f32::from(v) / 255.0).sum();
            (sum - 2.0) * 0.05
        })
        .collect()
}

/// A file of every kind of tensor the codec meets: the three float dtypes over several chunks,
/// integers, bytes, an empty tensor, and free-form metadata.
fn mixed_file() -> Vec<u8> {
    let w = weights(5000, 1);
    let bf16: Vec<u8> = w
        .iter()
        .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
        .collect();
    let f16: Vec<u8> = w
        .iter()
        .flat_map(|v| {
            // Normal halves only: |v| < 0.25 here, exponent well inside the range.
            let bits = v.to_bits();
            let exp = (((bits >> 23) & 0xff) as i32 - 127 + 15).max(1) as u32;
            ((((bits >> 16) & 0x8000) | (exp << 10) | ((bits >> 13) & 0x3ff)) as u16).to_le_bytes()
        })
        .collect();
    let f32: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
    let ids: Vec<u8> = (0..700i64)
        .flat_map(|i| (i * 7 % 300).to_le_bytes())
        .collect();
    let bytes = noise(333, 5);
    let tensors: Vec<(&str, Dtype, Vec<usize>, &[u8])> = vec![
        ("layer.0.weight", Dtype::BF16, vec![50, 100], &bf16),
        ("layer.0.half", Dtype::F16, vec![5000], &f16),
        ("layer.1.weight", Dtype::F32, vec![100, 50], &f32),
        ("position_ids", Dtype::I64, vec![1, 700], &ids),
        ("mask", Dtype::U8, vec![333], &bytes),
        ("empty", Dtype::F32, vec![0, 8], &[]),
    ];
    let views: Vec<(String, TensorView)> = tensors
        .into_iter()
        .map(|(name, dtype, shape, data)| {
            (
                name.to_string(),
                TensorView::new(dtype, shape, data).unwrap(),
            )
        })
        .collect();
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(metadata)).unwrap()
}

const SMALL_CHUNKS: EncodeOptions = EncodeOptions {
    chunk_elements: 1024,
};

#[test]
fn every_dtype_round_trips_byte_for_byte_and_floats_shrink() {
    let file = mixed_file();
    let coded = encode(&file, SMALL_CHUNKS).unwrap();
    assert_eq!(decode(&coded, file.len() as u64).unwrap(), file);
    let mut streamed = Vec::new();
    assert_eq!(
        decode_to(&coded, u64::MAX, &mut streamed).unwrap(),
        file.len() as u64
    );
    assert_eq!(streamed, file);

    let info = inspect(&coded).unwrap();
    assert_eq!(info.file_bytes, file.len() as u64);
    assert_eq!(info.chunk_elements, 1024);
    let parsed = safetensors::SafeTensors::deserialize(&file).unwrap();
    assert_eq!(info.tensors.len(), 6);
    for entry in &info.tensors {
        let view = parsed.tensor(&entry.name).unwrap();
        assert_eq!(
            (entry.dtype, &entry.shape[..]),
            (view.dtype(), view.shape())
        );
        let (read, bytes) = decode_tensor(&coded, &entry.name, entry.bytes).unwrap();
        assert_eq!(read.name, entry.name);
        assert_eq!(bytes, view.data(), "{}", entry.name);
        if matches!(entry.dtype, Dtype::BF16 | Dtype::F16 | Dtype::F32) && entry.bytes > 0 {
            assert!(
                entry.coded_bytes * 10 < entry.bytes * 9,
                "{}: {} of {} bytes",
                entry.name,
                entry.coded_bytes,
                entry.bytes
            );
        }
    }
    let weight = &info
        .tensors
        .iter()
        .find(|t| t.name == "layer.1.weight")
        .unwrap();
    assert_eq!(weight.chunks.len(), 5, "5000 elements in chunks of 1024");
}

#[test]
fn a_tensor_that_is_not_there_is_not_found() {
    let coded = encode(&mixed_file(), SMALL_CHUNKS).unwrap();
    let err = decode_tensor(&coded, "layer.9.weight", u64::MAX).unwrap_err();
    assert!(matches!(err, TensorError::NotFound(_)), "{err}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn a_file_over_the_limit_is_refused_before_decoding() {
    let file = mixed_file();
    let coded = encode(&file, SMALL_CHUNKS).unwrap();
    let err = decode(&coded, file.len() as u64 - 1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
    let mut sink = Vec::new();
    let err = decode_to(&coded, 100, &mut sink).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
    assert!(sink.is_empty(), "nothing is written before the check");
    let err = decode_tensor(&coded, "layer.1.weight", 19_999).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
}

#[test]
fn inputs_that_are_not_safetensors_or_bad_options_are_invalid() {
    let file = mixed_file();
    for bad in [&b""[..], b"not a safetensors file", &file[..file.len() - 1]] {
        let err = encode(bad, EncodeOptions::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
    for chunk_elements in [0, terse_tensor::file::MAX_CHUNK_ELEMENTS + 1] {
        let err = encode(&file, EncodeOptions { chunk_elements }).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
}

#[test]
fn every_truncation_and_every_flipped_byte_is_refused() {
    let file = mixed_file();
    let coded = encode(&file, SMALL_CHUNKS).unwrap();
    let stride = (coded.len() / 1000).max(1);
    for len in (0..512).chain((512..coded.len()).step_by(stride)) {
        assert!(decode(&coded[..len], u64::MAX).is_err(), "prefix of {len}");
    }
    let mut longer = coded.clone();
    longer.push(0);
    assert!(decode(&longer, u64::MAX).is_err(), "a trailing byte");
    // Every byte is under a checksum: the container's for header, HEAD and INDX, a chunk's
    // own for DATA. So any change is an error, never other bytes.
    // Every byte of the container header and the head of the sections, then a sample.
    for i in (0..512).chain((512..coded.len()).step_by(stride)) {
        let mut bad = coded.clone();
        bad[i] ^= 0x20;
        assert!(decode(&bad, u64::MAX).is_err(), "byte {i} flipped");
    }
}

#[test]
fn work_stops_when_its_call_has_ended() {
    use std::sync::{Arc, atomic::AtomicBool};
    let file = mixed_file();
    let coded = encode(&file, SMALL_CHUNKS).unwrap();
    let ended = Arc::new(AtomicBool::new(true));
    let run = |work: &dyn Fn() -> terse_tensor::Result<Vec<u8>>| {
        terse_entropy::interrupt::run_with_flag(Arc::clone(&ended), work).unwrap_err()
    };
    for err in [
        run(&|| decode(&coded, u64::MAX)),
        run(&|| encode(&file, SMALL_CHUNKS)),
        run(&|| decode_tensor(&coded, "layer.1.weight", u64::MAX).map(|(_, data)| data)),
    ] {
        assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    }
}

#[test]
fn a_header_that_declares_billions_of_chunks_is_refused_without_allocating_them() {
    use terse_entropy::{CodecId, Container};
    // One F32 tensor of 2^32 - 1 elements: at one element per chunk its index must list
    // u32::MAX chunks, and this one says so but holds none.
    let elements: u64 = u32::MAX as u64;
    let mut json = format!(
        r#"{{"w":{{"dtype":"F32","shape":[{elements}],"data_offsets":[0,{}]}}}}"#,
        4 * elements
    );
    while json.len() % 8 != 0 {
        json.push(' ');
    }
    let mut head = (json.len() as u64).to_le_bytes().to_vec();
    head.extend_from_slice(json.as_bytes());
    let mut index = 1u32.to_le_bytes().to_vec();
    index.extend_from_slice(&u32::MAX.to_le_bytes());
    let mut container = Container::new(CodecId::Tensor);
    container.put_u64("file_bytes", head.len() as u64 + 4 * elements);
    container.put_u64("chunk_elements", 1);
    container.push_section(*b"HEAD", head);
    container.push_section(*b"INDX", index);
    container.push_section(*b"DATA", Vec::new());
    let bitstream = container.to_bytes().unwrap();
    let err = inspect(&bitstream).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(decode(&bitstream, u64::MAX).is_err());
}
