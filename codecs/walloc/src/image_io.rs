//! Image files in and out through the `image` crate, with size limits checked from the header
//! before any pixel is decoded.

use std::io::Cursor;

use image::{ImageReader, RgbImage};

use crate::{Result, WallocError};

/// Output file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// Lossless PNG.
    Png,
    /// WebP (lossless, as the `image` crate writes it).
    WebP,
}

/// Decodes PNG, JPEG, WebP, BMP, TIFF, … (8-bit RGB, RGBA or gray; alpha is dropped) into RGB,
/// refusing images above `max_pixels` from their header.
pub fn decode_image_file(bytes: &[u8], max_pixels: u64) -> Result<(RgbImage, bool)> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| WallocError::Invalid(format!("cannot read image: {e}")))?;
    if reader.format().is_none() {
        return Err(WallocError::Invalid(
            "unrecognized image format (expected PNG, JPEG, WebP, BMP or TIFF)".into(),
        ));
    }
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| WallocError::Invalid(format!("cannot read image header: {e}")))?;
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(WallocError::TooLarge(format!(
            "image of {w}x{h} pixels exceeds the limit of {max_pixels}"
        )));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .expect("read above");
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    reader.limits(limits);
    let decoded = reader
        .decode()
        .map_err(|e| WallocError::Invalid(format!("cannot decode image: {e}")))?;
    let had_alpha = decoded.color().has_alpha();
    Ok((decoded.to_rgb8(), had_alpha))
}

/// Encodes an RGB image.
pub fn encode_image_file(image: &RgbImage, format: ImageFormat) -> Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    let format = match format {
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::WebP => image::ImageFormat::WebP,
    };
    image
        .write_to(&mut out, format)
        .map_err(|e| WallocError::Invalid(format!("cannot encode image: {e}")))?;
    Ok(out.into_inner())
}
