//! The codec: padding, the float stages behind [`terse_core::Network`], the integer entropy model, and
//! the terse container (`CodecId::MlicImage`, sections `ZHAT` and one per slice pass).

use std::{collections::BTreeMap, sync::Arc};

use image::RgbImage;
use ndarray::{Array3, Array4, ArrayD, Ix4};
use terse_entropy::{CodecId, Container, ModelTag};

use crate::{
    MlicError, Result,
    entropy_model::{EntropyModel, RoundingCoder, SectionDecoder},
    rate::RatePoint,
};

/// Images are padded (edge replication) to a multiple of this before analysis: ×16 for y,
/// ×4 more for z.
pub const ALIGN: u32 = 64;
const Z_TAG: [u8; 4] = *b"ZHAT";
/// Largest side accepted from a bitstream header before any allocation.
pub const MAX_SIDE: u32 = 1 << 15;

/// What an encode produced.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The container bytes.
    pub bitstream: Vec<u8>,
    /// The dequantized latents `[1, M, h, w]` the decoder will see (feed `g_s` to measure).
    pub y_hat: Array4<f32>,
    /// Bytes of the hyper-latent section.
    pub z_bytes: usize,
    /// Bytes of the latent sections.
    pub y_bytes: usize,
}

/// One rate point of the codec: a fixed-rate model, or one gain vector of a variable-rate
/// model (several codecs then share one [`EntropyModel`]).
#[derive(Debug, Clone)]
pub struct MlicCodec {
    entropy: Arc<EntropyModel>,
    model: ModelTag,
    rate: Option<RatePoint>,
}

fn four(array: ArrayD<f32>, stage_name: &'static str, expect: [usize; 4]) -> Result<Array4<f32>> {
    let array = array
        .into_dimensionality::<Ix4>()
        .map_err(|e| MlicError::Network {
            stage: stage_name,
            message: e.to_string(),
        })?;
    if array.shape() != expect {
        return Err(MlicError::Network {
            stage: stage_name,
            message: format!("output {:?}, expected {:?}", array.shape(), expect),
        });
    }
    Ok(array)
}

fn padded(side: u32) -> u32 {
    side.div_ceil(ALIGN) * ALIGN
}

impl MlicCodec {
    /// A fixed-rate codec from its entropy model and the tag that bitstreams carry.
    pub fn new(entropy: EntropyModel, model: ModelTag) -> Self {
        Self {
            entropy: Arc::new(entropy),
            model,
            rate: None,
        }
    }

    /// One rate point of a variable-rate model: bitstreams carry `model` (conventionally named
    /// by [`crate::rate_point_name`]) and the rate index; the analysis takes the point's gains.
    pub fn at_rate(entropy: Arc<EntropyModel>, model: ModelTag, rate: RatePoint) -> Result<Self> {
        if rate.gain.len() != entropy.latent_channels() {
            return Err(MlicError::Model(format!(
                "rate point {} has {} gains for {} latent channels",
                rate.index,
                rate.gain.len(),
                entropy.latent_channels()
            )));
        }
        Ok(Self {
            entropy,
            model,
            rate: Some(rate),
        })
    }

    /// Every codec a packaged model serves: a fixed-rate model's one codec, tagged `name`, or
    /// one per rate point of a variable-rate model (`rates` in `entropy.json`), tagged with
    /// [`crate::rate_point_name`] and sharing one entropy model. `sha256_hex` is the model
    /// file's checksum, which the tags carry.
    pub fn from_package(
        entropy_json: &[u8],
        entropy_bin: &[u8],
        prior_json: &[u8],
        name: &str,
        sha256_hex: &str,
    ) -> Result<Vec<Self>> {
        let entropy = Arc::new(EntropyModel::from_assets(
            entropy_json,
            entropy_bin,
            prior_json,
        )?);
        let tag = |name: &str| ModelTag::from_sha256_hex(name, sha256_hex);
        let rates = RatePoint::from_entropy_json(entropy_json)?;
        if rates.is_empty() {
            return Ok(vec![Self {
                entropy,
                model: tag(name)?,
                rate: None,
            }]);
        }
        rates
            .into_iter()
            .map(|rate| {
                let point = crate::rate_point_name(name, rate.index);
                Self::at_rate(Arc::clone(&entropy), tag(&point)?, rate)
            })
            .collect()
    }

    /// The rate point of a variable-rate model (`None`: a fixed-rate model).
    pub fn rate(&self) -> Option<&RatePoint> {
        self.rate.as_ref()
    }

    /// Names of the analysis network's inputs, in the order of [`MlicCodec::analysis_inputs`].
    pub fn analysis_input_names(&self) -> &'static [&'static str] {
        if self.rate.is_some() {
            &["image", "gain"]
        } else {
            &["image"]
        }
    }

    /// The inputs of the analysis network for `image`: the padded image tensor, then, for a
    /// variable-rate model, the rate point's gains as `[1, M, 1, 1]`.
    pub fn analysis_inputs(&self, image: &RgbImage) -> Result<Vec<ArrayD<f32>>> {
        let mut inputs = vec![Self::image_tensor(image)?.into_dyn()];
        if let Some(rate) = &self.rate {
            inputs.push(rate.gain_tensor().into_dyn());
        }
        Ok(inputs)
    }

    /// Dequantized latents for the synthesis network: Q`A` integers scaled down, times the
    /// inverse gains of a variable-rate model.
    fn synthesis_input(&self, y_hat_q: &Array3<i64>) -> Array4<f32> {
        let scale = (1u64 << self.entropy.activation_bits()) as f32;
        let mut y_hat = y_hat_q
            .mapv(|v| v as f32 / scale)
            .insert_axis(ndarray::Axis(0));
        if let Some(rate) = &self.rate {
            for (mut channel, &inverse) in y_hat
                .axis_iter_mut(ndarray::Axis(1))
                .zip(&rate.inverse_gain)
            {
                channel.mapv_inplace(|v| v * inverse);
            }
        }
        y_hat
    }

    /// A codec from `entropy.json`, `entropy.bin` and `prior.json`.
    pub fn from_assets(
        entropy_json: &[u8],
        entropy_bin: &[u8],
        prior_json: &[u8],
        model: ModelTag,
    ) -> Result<Self> {
        Ok(Self::new(
            EntropyModel::from_assets(entropy_json, entropy_bin, prior_json)?,
            model,
        ))
    }

    /// The model bitstreams of this codec carry.
    pub fn model(&self) -> &ModelTag {
        &self.model
    }

    /// The entropy model.
    pub fn entropy(&self) -> &EntropyModel {
        &self.entropy
    }

    /// The image as `[1, 3, H', W']` in [0, 1], edge-padded to multiples of [`ALIGN`].
    pub fn image_tensor(image: &RgbImage) -> Result<Array4<f32>> {
        let (w, h) = image.dimensions();
        if w == 0 || h == 0 {
            return Err(MlicError::Image(format!("{w}x{h} has no pixels")));
        }
        if w > MAX_SIDE || h > MAX_SIDE {
            // Over a size limit: RESOURCE_EXHAUSTED, as for WaLLoC (issue 18, finding 13).
            return Err(MlicError::TooLarge(format!(
                "{w}x{h} is over the limit of {MAX_SIDE} pixels per side"
            )));
        }
        let (pw, ph) = (padded(w) as usize, padded(h) as usize);
        Ok(Array4::from_shape_fn((1, 3, ph, pw), |(_, c, i, j)| {
            let pixel = image.get_pixel((j as u32).min(w - 1), (i as u32).min(h - 1));
            f32::from(pixel[c]) / 255.0
        }))
    }

    /// Codes the analysis outputs `[y, z]` of a `width × height` image (padded as
    /// [`MlicCodec::image_tensor`] pads it) into a bitstream.
    pub fn encode_latents(
        &self,
        width: u32,
        height: u32,
        outputs: Vec<ArrayD<f32>>,
    ) -> Result<Encoded> {
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return Err(MlicError::Image(format!(
                "{width}x{height} is outside 1..={MAX_SIDE} per side"
            )));
        }
        let (ph, pw) = (padded(height) as usize, padded(width) as usize);
        let m = self.entropy.latent_channels();
        let zc = self.entropy.hyper_channels();
        let mut outputs = outputs.into_iter();
        let (Some(y), Some(z), None) = (outputs.next(), outputs.next(), outputs.next()) else {
            return Err(MlicError::Network {
                stage: "analysis",
                message: "expected outputs [y, z]".into(),
            });
        };
        let y = four(y, "analysis", [1, m, ph / 16, pw / 16])?;
        let z = four(z, "analysis", [1, zc, ph / 64, pw / 64])?;
        let limit = f32::from(1u16 << 14);
        if z.iter().any(|v| !v.is_finite()) || y.iter().any(|v| !v.is_finite()) {
            return Err(MlicError::Network {
                stage: "analysis",
                message: "non-finite latents".into(),
            });
        }
        let z_rounded: Vec<f32> = z.iter().map(|v| v.round().clamp(-limit, limit)).collect();
        let plane = (ph / 64) * (pw / 64);
        let z_bytes = self.entropy.prior().compress(&z_rounded, plane)?;
        let z_hat = Array3::from_shape_vec(
            (zc, ph / 64, pw / 64),
            z_rounded.iter().map(|&v| v as i32).collect(),
        )
        .expect("sized");
        let y3 = y.index_axis(ndarray::Axis(0), 0);
        let mut coder = RoundingCoder::new(y3);
        let y_hat_q = self.entropy.run(z_hat.view(), &mut coder)?;

        let mut container = Container::new(CodecId::MlicImage);
        container.model = Some(self.model.clone());
        container.put_u64("width", u64::from(width));
        container.put_u64("height", u64::from(height));
        if let Some(rate) = &self.rate {
            container.put_u64("rate", rate.index as u64);
        }
        let y_bytes = coder.sections.values().map(Vec::len).sum();
        let z_len = z_bytes.len();
        container.push_section(Z_TAG, z_bytes);
        for (tag, bytes) in coder.sections {
            container.push_section(tag, bytes);
        }
        Ok(Encoded {
            bitstream: container.to_bytes()?,
            y_hat: self.synthesis_input(&y_hat_q),
            z_bytes: z_len,
            y_bytes,
        })
    }

    /// Decodes the latents `[1, M, h, w]` and the image size, refusing images over `max_pixels`
    /// before allocating anything for them.
    pub fn decode_latents(
        &self,
        bitstream: &[u8],
        max_pixels: u64,
    ) -> Result<(Array4<f32>, u32, u32)> {
        let container = Container::parse(bitstream)?;
        container.expect_codec(CodecId::MlicImage)?;
        match &container.model {
            Some(tag) if *tag == self.model => {}
            Some(tag) => {
                return Err(MlicError::Bitstream(format!(
                    "coded with model `{}`, this codec is `{}`",
                    tag.name, self.model.name
                )));
            }
            None => return Err(MlicError::Bitstream("no model tag".into())),
        }
        if let Some(rate) = &self.rate {
            let coded = container.u64("rate")?;
            if coded != rate.index as u64 {
                return Err(MlicError::Bitstream(format!(
                    "coded at rate point {coded}, this codec is rate point {}",
                    rate.index
                )));
            }
        }
        let (width, height) = (container.u64("width")?, container.u64("height")?);
        if width == 0 || height == 0 || width > u64::from(MAX_SIDE) || height > u64::from(MAX_SIDE)
        {
            return Err(MlicError::Bitstream(format!("image size {width}x{height}")));
        }
        if width * height > max_pixels {
            return Err(MlicError::TooLarge(format!(
                "{width}x{height} is over the limit of {max_pixels} pixels"
            )));
        }
        let (w, h) = (width as u32, height as u32);
        let (zh, zw) = (padded(h) as usize / 64, padded(w) as usize / 64);
        let zc = self.entropy.hyper_channels();
        let z =
            self.entropy
                .prior()
                .decompress(container.section(Z_TAG)?, zc * zh * zw, zh * zw)?;
        let z_hat = Array3::from_shape_vec((zc, zh, zw), z.iter().map(|&v| v as i32).collect())
            .expect("sized");
        let sections: BTreeMap<[u8; 4], Vec<u8>> = container
            .sections()
            .filter(|(tag, _)| *tag != Z_TAG)
            .map(|(tag, bytes)| (tag, bytes.to_vec()))
            .collect();
        let y_hat_q = self
            .entropy
            .run(z_hat.view(), &mut SectionDecoder::new(&sections))?;
        Ok((self.synthesis_input(&y_hat_q), w, h))
    }

    /// The image from the synthesis outputs (`[1, 3, H', W']`), cropped to `width × height`.
    pub fn reconstruct(outputs: Vec<ArrayD<f32>>, width: u32, height: u32) -> Result<RgbImage> {
        let x_hat = outputs
            .into_iter()
            .next()
            .ok_or_else(|| MlicError::Network {
                stage: "synthesis",
                message: "no output".into(),
            })?
            .into_dimensionality::<Ix4>()
            .map_err(|e| MlicError::Network {
                stage: "synthesis",
                message: e.to_string(),
            })?;
        let (n, c, h, w) = x_hat.dim();
        if n != 1 || c != 3 || h < height as usize || w < width as usize {
            return Err(MlicError::Network {
                stage: "synthesis",
                message: format!("output {:?}", x_hat.shape()),
            });
        }
        Ok(RgbImage::from_fn(width, height, |j, i| {
            image::Rgb(std::array::from_fn(|k| {
                (x_hat[[0, k, i as usize, j as usize]] * 255.0)
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
    fn oversized_images_are_too_large_and_empty_ones_invalid() {
        let wide = RgbImage::new(MAX_SIDE + 1, 1);
        assert!(matches!(
            MlicCodec::image_tensor(&wide),
            Err(MlicError::TooLarge(_))
        ));
        let empty = RgbImage::new(0, 4);
        assert!(matches!(
            MlicCodec::image_tensor(&empty),
            Err(MlicError::Image(_))
        ));
        assert_eq!(
            MlicCodec::image_tensor(&RgbImage::new(65, 3))
                .unwrap()
                .shape(),
            [1, 3, 64, 128]
        );
    }
}
