//! Helpers both evaluation benches use: command-line tools and the reference's latent coding.

use std::path::Path;

use ndarray::Array3;

pub use terse_image_eval::{cmd, tool};

/// Bytes of the latents coded as the reference does: each channel shifted to uint8 (`bias`
/// added), all channels tiled into one grayscale image, lossless WebP (`cwebp -lossless -z 9`).
/// `None` without cwebp.
pub fn webp_latent_bytes(values: &Array3<i32>, bias: i32, dir: &Path) -> Option<usize> {
    if !tool("cwebp") {
        return None;
    }
    let (l, h, w) = values.dim();
    let cols = (l as f64).sqrt().ceil() as usize;
    let rows = l.div_ceil(cols);
    let tile = image::GrayImage::from_fn((cols * w) as u32, (rows * h) as u32, |x, y| {
        let (c, xx, yy) = (
            (y as usize / h) * cols + x as usize / w,
            x as usize % w,
            y as usize % h,
        );
        image::Luma([if c < l {
            (values[[c, yy, xx]] + bias).clamp(0, 255) as u8
        } else {
            0
        }])
    });
    let png = dir.join("latents.png");
    tile.save(&png).ok()?;
    let out = dir.join("latents.webp");
    cmd(
        "cwebp",
        &[
            "-quiet",
            "-lossless",
            "-z",
            "9",
            png.to_str()?,
            "-o",
            out.to_str()?,
        ],
    )
    .output()
    .ok()?;
    std::fs::metadata(&out).map(|m| m.len() as usize).ok()
}
