//! The WaLLoC image codec: 2-D wavelet packet of RGB planes.

use ndarray::{Array3, Array4, ArrayView3, Axis};
use terse_entropy::{CodecId, ModelTag};

use crate::{EncoderWeights, Result, RgbImage, Signal, WallocError, latent::LatentCoder};

/// Integer latents of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Latents {
    /// `[L, h, w]`, each in `±((2^(b−1) − 1) >> shift)`.
    pub values: Array3<i32>,
    /// Bits dropped from the model's `b` latent bits (the rate knob): values lie on a grid
    /// `2^shift` times coarser.
    pub shift: u32,
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
}

/// The RGB planes `[3, ph, pw]` of `image` as `pixel / 255 + offset`, the last column and row
/// repeated out to `pw` × `ph`: the input of the wavelet packet.
pub fn padded_planes(image: &RgbImage, pw: usize, ph: usize, offset: f32) -> Array3<f32> {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let mut planes = Array3::<f32>::zeros((3, ph, pw));
    let raw = image.as_raw();
    for (c, mut plane) in planes.outer_iter_mut().enumerate() {
        for (y, mut row) in plane.outer_iter_mut().enumerate() {
            let source = &raw[y.min(height - 1) * width * 3..][..width * 3];
            let row = row.as_slice_mut().expect("standard layout");
            for (out, pixel) in row.iter_mut().zip(source.chunks_exact(3)) {
                *out = f32::from(pixel[c]) / 255.0 + offset;
            }
            let last = row[width - 1];
            row[width..].fill(last);
        }
    }
    planes
}

/// A loaded WaLLoC image model: encoder weights, prior and identity.
pub struct WallocImageCodec {
    coder: LatentCoder,
}

impl WallocImageCodec {
    /// A codec from the model's `encoder.json` and `prior.json` bytes and its identity (name and
    /// the first 8 bytes of the ONNX decoder's sha256, recorded in every bitstream).
    pub fn new(encoder_json: &[u8], prior_json: &[u8], model: ModelTag) -> Result<Self> {
        let coder = LatentCoder::new(encoder_json, prior_json, model, Signal::Image)?;
        Self::checked(coder)
    }

    /// A codec from a model's assets, fetched by name with `read`: `encoder` and `prior` are
    /// required, `context` (learned starting counts of the context models) optional.
    /// `read` answers `Ok(None)` for an asset the model does not ship.
    pub fn from_assets(
        read: impl Fn(&str) -> std::result::Result<Option<Vec<u8>>, String>,
        model: ModelTag,
    ) -> Result<Self> {
        Self::checked(LatentCoder::from_assets(read, model, Signal::Image)?)
    }

    fn checked(coder: LatentCoder) -> Result<Self> {
        if coder.weights.channels != 3 {
            return Err(WallocError::Model(format!(
                "image models code RGB, this one has {} channels",
                coder.weights.channels
            )));
        }
        Ok(Self { coder })
    }

    /// Starts the context models from learned counts (`context.json`). Bitstreams record the
    /// prior's checksum, so a decoder with another prior refuses them.
    pub fn with_context_prior(self, context_json: &[u8]) -> Result<Self> {
        Ok(Self {
            coder: self.coder.with_context_prior(context_json)?,
        })
    }

    /// The encoder weights.
    pub fn weights(&self) -> &EncoderWeights {
        &self.coder.weights
    }

    /// Model identity recorded in bitstreams.
    pub fn model(&self) -> &ModelTag {
        &self.coder.model
    }

    /// The grid shift that leaves `latent_bits` bits per latent (0: the model's own), or
    /// `Invalid` when the model cannot.
    pub fn shift_for(&self, latent_bits: u32) -> Result<u32> {
        self.coder.shift_for(latent_bits)
    }

    /// Latents of an image at full latent precision (the "encode to latents" output, for
    /// learning on compressed data).
    pub fn analyze(&self, image: &RgbImage) -> Result<Latents> {
        self.analyze_at(image, 0)
    }

    /// Latents of an image with `shift` latent bits dropped.
    pub fn analyze_at(&self, image: &RgbImage, shift: u32) -> Result<Latents> {
        if shift > self.coder.max_shift() {
            return Err(WallocError::Invalid(format!(
                "latent shift {shift} is too large"
            )));
        }
        let (width, height) = image.dimensions();
        if width == 0 || height == 0 {
            return Err(WallocError::Invalid("image has no pixels".into()));
        }
        let weights = &self.coder.weights;
        let block = weights.block() as u32;
        let (pw, ph) = (
            width.div_ceil(block) * block,
            height.div_ceil(block) * block,
        );
        let offset = weights.input_offset;
        let planes = padded_planes(image, pw as usize, ph as usize, offset);
        let bands = terse_wavelet::wpt2d(&terse_wavelet::bior44(), planes.view(), weights.levels)
            .map_err(|e| WallocError::Invalid(e.to_string()))?;
        Ok(Latents {
            values: weights.encode_bands(bands.view(), shift),
            shift,
            width,
            height,
        })
    }

    /// The latents coded both ways (factorized prior, context model).
    pub fn code_latents(&self, latents: &Latents) -> Result<crate::LatentCodings> {
        self.coder.code_latents(&latents.values, latents.shift)
    }

    /// Encodes an image into a container bitstream at full latent precision.
    pub fn encode(&self, image: &RgbImage) -> Result<(Vec<u8>, Latents)> {
        self.encode_at(image, 0)
    }

    /// Encodes an image with `shift` latent bits dropped (smaller, lower quality).
    pub fn encode_at(&self, image: &RgbImage, shift: u32) -> Result<(Vec<u8>, Latents)> {
        let latents = self.analyze_at(image, shift)?;
        let mut container =
            self.coder
                .container(CodecId::WallocImage, &latents.values, latents.shift)?;
        container.put_u64("width", u64::from(latents.width));
        container.put_u64("height", u64::from(latents.height));
        Ok((container.to_bytes()?, latents))
    }

    /// Reads the latents back from a bitstream (checks codec, model and shape fields).
    pub fn decode_latents(&self, bitstream: &[u8], max_pixels: u64) -> Result<Latents> {
        let container = self.coder.open(bitstream, CodecId::WallocImage)?;
        let width = container.u64("width")?;
        let height = container.u64("height")?;
        if width == 0 || height == 0 || width > u64::from(u32::MAX) || height > u64::from(u32::MAX)
        {
            return Err(WallocError::Invalid(format!(
                "image size {width}x{height} is invalid"
            )));
        }
        if width.saturating_mul(height) > max_pixels {
            return Err(WallocError::TooLarge(format!(
                "image of {width}x{height} pixels exceeds the limit of {max_pixels}"
            )));
        }
        let block = self.coder.weights.block() as u64;
        let shape = (
            height.div_ceil(block) as usize,
            width.div_ceil(block) as usize,
        );
        let (values, shift) = self.coder.read_latents(&container, shape)?;
        Ok(Latents {
            values,
            shift,
            width: width as u32,
            height: height as u32,
        })
    }

    /// Decoder input for integer latents: `[1, L, h, w]` from the fixed ToNormal table.
    pub fn normal_latents(&self, latents: &Latents) -> Array4<f32> {
        self.coder
            .normal_latents(&latents.values, latents.shift)
            .insert_axis(Axis(0))
    }

    /// Inverts the wavelet packet of decoded bands `[3·4^J, h, w]` and crops to the image.
    pub fn reconstruct(&self, bands: ArrayView3<f32>, width: u32, height: u32) -> Result<RgbImage> {
        let weights = &self.coder.weights;
        if bands.dim().0 != weights.bands() {
            return Err(WallocError::Decoder(format!(
                "decoder produced {} bands, expected {}",
                bands.dim().0,
                weights.bands()
            )));
        }
        let planes = terse_wavelet::wpt2d_inverse(&terse_wavelet::bior44(), bands, weights.levels)
            .map_err(|e| WallocError::Decoder(e.to_string()))?;
        if planes.dim().1 < height as usize || planes.dim().2 < width as usize {
            return Err(WallocError::Decoder(
                "decoded planes are smaller than the image".into(),
            ));
        }
        let offset = weights.input_offset;
        Ok(RgbImage::from_fn(width, height, |x, y| {
            image::Rgb(std::array::from_fn(|c| {
                ((planes[[c, y as usize, x as usize]] - offset) * 255.0)
                    .round()
                    .clamp(0.0, 255.0) as u8
            }))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_planes_repeat_the_last_column_and_row() {
        let (width, height) = (5u32, 3u32);
        let image = RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x * 40) as u8, (y * 70) as u8, (x * y * 9 + 3) as u8])
        });
        let (pw, ph) = (8usize, 8usize);
        let expected = Array3::from_shape_fn((3, ph, pw), |(c, y, x)| {
            let p = image.get_pixel((x as u32).min(width - 1), (y as u32).min(height - 1));
            f32::from(p[c]) / 255.0 - 0.5
        });
        assert_eq!(padded_planes(&image, pw, ph, -0.5), expected);
    }
}
