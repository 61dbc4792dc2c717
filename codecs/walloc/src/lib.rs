//! The WaLLoC image codec ("Learned Compression for Compressed Learning", DCC 2025), built on
//! `terse-wavelet` and `terse-entropy`.
//!
//! Encoding is cheap and runs here: pad to a multiple of `2^J` (edge replication), bior4.4
//! wavelet packet (`J` levels), a linear map from the `3·4^J` bands to `L` latent channels,
//! the bounded `ToUniform` squashing and rounding to integers in `±(2^(b−1) − 1)`, then a
//! learned per-channel factorized prior codes the integers (instead of the reference's
//! lossless WebP). Decoding maps integers to the decoder's input through a fixed table (so it
//! is identical on every machine), runs the convolutional decoder behind [`BandDecoder`] (an
//! ONNX model in the server), and inverts the wavelet packet.
#![warn(missing_docs)]

mod context;
mod image_io;
mod metrics;
mod weights;

pub use image::RgbImage;
pub use image_io::{ImageFormat, decode_image_file, encode_image_file};
pub use metrics::{ms_ssim, psnr};
pub use weights::EncoderWeights;

use ndarray::{Array3, Array4, ArrayView3, Axis};
use terse_entropy::{CodecId, Container, FactorizedPrior, ModelTag, TableFile};

/// Why an image could not be coded.
#[derive(Debug, thiserror::Error)]
pub enum WallocError {
    /// The codec's model files are malformed.
    #[error("model: {0}")]
    Model(String),
    /// The input image or bitstream is unusable; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// The input exceeds a configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// The decoder network failed.
    #[error("decoder: {0}")]
    Decoder(String),
    /// A container or entropy stream is corrupt.
    #[error(transparent)]
    Entropy(#[from] terse_entropy::EntropyError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, WallocError>;

/// Runs the decoder network: normal-domain latents `[1, L, h, w]` → wavelet bands
/// `[1, 3·4^J, h, w]`.
pub trait BandDecoder {
    /// Decodes one latent tensor.
    fn decode(&self, normal_latent: Array4<f32>) -> std::result::Result<Array4<f32>, String>;
}

/// How the integer latents are entropy-coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum LatentCoding {
    /// Static learned per-channel factorized prior (ANS).
    Factorized = 0,
    /// Causal-neighbour prediction with adaptive residual models (range coder).
    Context = 1,
}

/// Integer latents of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Latents {
    /// `[L, h, w]`, each in `±(2^(b−1) − 1)`.
    pub values: Array3<i32>,
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
}

/// A loaded WaLLoC image model: encoder weights, prior and identity.
pub struct WallocImageCodec {
    weights: EncoderWeights,
    prior: FactorizedPrior,
    context_prior: Option<(context::ContextPrior, u32)>,
    model: ModelTag,
}

impl WallocImageCodec {
    /// A codec from the model's `encoder.json` and `prior.json` bytes and its identity (name and
    /// the first 8 bytes of the ONNX decoder's sha256, recorded in every bitstream).
    pub fn new(encoder_json: &[u8], prior_json: &[u8], model: ModelTag) -> Result<Self> {
        let weights = EncoderWeights::from_json(encoder_json)?;
        let text = std::str::from_utf8(prior_json)
            .map_err(|_| WallocError::Model("prior is not UTF-8".into()))?;
        let prior = FactorizedPrior::from_file(&TableFile::from_json(text)?)?;
        if prior.channels() != weights.latent_dim {
            return Err(WallocError::Model(format!(
                "prior has {} channels, the encoder {}",
                prior.channels(),
                weights.latent_dim
            )));
        }
        Ok(Self {
            weights,
            prior,
            context_prior: None,
            model,
        })
    }

    /// A codec from a model's assets, fetched by name with `read`: `encoder` and `prior` are
    /// required, `context` (learned starting counts of the context models) optional.
    /// `read` answers `Ok(None)` for an asset the model does not ship.
    pub fn from_assets(
        read: impl Fn(&str) -> std::result::Result<Option<Vec<u8>>, String>,
        model: ModelTag,
    ) -> Result<Self> {
        let get =
            |name: &str| read(name).map_err(|e| WallocError::Model(format!("asset `{name}`: {e}")));
        let need = |name: &str| {
            get(name)?.ok_or_else(|| WallocError::Model(format!("asset `{name}` is missing")))
        };
        let codec = Self::new(&need("encoder")?, &need("prior")?, model)?;
        match get("context")? {
            Some(bytes) => codec.with_context_prior(&bytes),
            None => Ok(codec),
        }
    }

    /// Starts the context models from learned counts (`context.json`). Bitstreams record the
    /// prior's checksum, so a decoder with another prior refuses them.
    pub fn with_context_prior(mut self, context_json: &[u8]) -> Result<Self> {
        let prior = context::ContextPrior::from_json(context_json, self.weights.latent_dim)?;
        self.context_prior = Some((prior, crc32fast::hash(context_json)));
        Ok(self)
    }

    /// The encoder weights.
    pub fn weights(&self) -> &EncoderWeights {
        &self.weights
    }

    /// Model identity recorded in bitstreams.
    pub fn model(&self) -> &ModelTag {
        &self.model
    }

    /// Latents of an image (the "encode to latents" output, for learning on compressed data).
    pub fn analyze(&self, image: &RgbImage) -> Result<Latents> {
        let (width, height) = image.dimensions();
        if width == 0 || height == 0 {
            return Err(WallocError::Invalid("image has no pixels".into()));
        }
        let block = 1u32 << self.weights.levels;
        let (pw, ph) = (
            width.div_ceil(block) * block,
            height.div_ceil(block) * block,
        );
        let offset = self.weights.input_offset;
        let planes = Array3::from_shape_fn((3, ph as usize, pw as usize), |(c, y, x)| {
            let p = image.get_pixel((x as u32).min(width - 1), (y as u32).min(height - 1));
            f32::from(p[c]) / 255.0 + offset
        });
        let bands =
            terse_wavelet::wpt2d(&terse_wavelet::bior44(), planes.view(), self.weights.levels)
                .map_err(|e| WallocError::Invalid(e.to_string()))?;
        Ok(Latents {
            values: self.weights.encode_bands(bands.view()),
            width,
            height,
        })
    }

    /// The latents coded both ways: (factorized prior, context model) payloads.
    pub fn code_latents(&self, latents: &Latents) -> Result<(Vec<u8>, Vec<u8>)> {
        let (_, h, w) = latents.values.dim();
        let symbols: Vec<i32> = latents.values.iter().copied().collect();
        let indexes: Vec<u32> = (0..symbols.len()).map(|i| (i / (h * w)) as u32).collect();
        let factorized = self.prior.table().encode_with_indexes(&symbols, &indexes)?;
        let contextual =
            context::encode_context(&latents.values, self.context_prior.as_ref().map(|p| &p.0))?;
        Ok((factorized, contextual))
    }

    /// Encodes an image into a container bitstream.
    pub fn encode(&self, image: &RgbImage) -> Result<(Vec<u8>, Latents)> {
        let latents = self.analyze(image)?;
        let l = latents.values.dim().0;
        // Both codings of the same integers; keep the smaller (a header field says which).
        let (factorized, contextual) = self.code_latents(&latents)?;
        let (coding, tag, payload) = if contextual.len() < factorized.len() {
            (LatentCoding::Context, *b"LCTX", contextual)
        } else {
            (LatentCoding::Factorized, *b"LATN", factorized)
        };
        let mut container = Container::new(CodecId::WallocImage);
        container.model = Some(self.model.clone());
        container.put_u64("width", u64::from(latents.width));
        container.put_u64("height", u64::from(latents.height));
        container.put_u64("latent_dim", l as u64);
        container.put_u64("levels", u64::from(self.weights.levels));
        container.put_u64("latent_coding", coding as u64);
        if coding == LatentCoding::Context {
            container.put_u64(
                "context_prior",
                self.context_prior.as_ref().map_or(0, |p| u64::from(p.1)),
            );
        }
        container.push_section(tag, payload);
        Ok((container.to_bytes()?, latents))
    }

    /// Reads the latents back from a bitstream (checks codec, model and shape fields).
    pub fn decode_latents(&self, bitstream: &[u8], max_pixels: u64) -> Result<Latents> {
        let container = Container::parse(bitstream)?;
        container.expect_codec(CodecId::WallocImage)?;
        match &container.model {
            Some(m) if *m == self.model => {}
            Some(m) => {
                return Err(WallocError::Invalid(format!(
                    "bitstream was coded with model `{}` ({}), this codec is `{}` ({})",
                    m.name,
                    hex(&m.sha256_prefix),
                    self.model.name,
                    hex(&self.model.sha256_prefix)
                )));
            }
            None => return Err(WallocError::Invalid("bitstream names no model".into())),
        }
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
        if container.u64("latent_dim")? != self.weights.latent_dim as u64
            || container.u64("levels")? != u64::from(self.weights.levels)
        {
            return Err(WallocError::Invalid(
                "latent shape fields do not match the model".into(),
            ));
        }
        let block = 1u64 << self.weights.levels;
        let (h, w) = (
            height.div_ceil(block) as usize,
            width.div_ceil(block) as usize,
        );
        let l = self.weights.latent_dim;
        let bound = self.weights.max_level();
        let values = match container.u64("latent_coding")? {
            0 => {
                let indexes: Vec<u32> = (0..l * h * w).map(|i| (i / (h * w)) as u32).collect();
                let symbols = self
                    .prior
                    .table()
                    .decode_with_indexes(container.section(*b"LATN")?, &indexes)?;
                if symbols.iter().any(|s| s.abs() > bound) {
                    return Err(WallocError::Invalid(format!(
                        "a latent lies outside ±{bound}"
                    )));
                }
                Array3::from_shape_vec((l, h, w), symbols).expect("sized above")
            }
            1 => {
                let expected = self.context_prior.as_ref().map_or(0, |p| u64::from(p.1));
                if container.u64("context_prior")? != expected {
                    return Err(WallocError::Invalid(
                        "bitstream was coded with another context prior".into(),
                    ));
                }
                let prior = self.context_prior.as_ref().map(|p| &p.0);
                context::decode_context(container.section(*b"LCTX")?, (l, h, w), bound, prior)?
            }
            other => {
                return Err(WallocError::Invalid(format!(
                    "unknown latent coding {other}"
                )));
            }
        };
        Ok(Latents {
            values,
            width: width as u32,
            height: height as u32,
        })
    }

    /// Decoder input for integer latents: `[1, L, h, w]` from the fixed ToNormal table.
    pub fn normal_latents(&self, latents: &Latents) -> Array4<f32> {
        let table = &self.weights.to_normal;
        let bound = self.weights.max_level();
        latents
            .values
            .mapv(|q| table[(q.clamp(-bound, bound) + bound) as usize])
            .insert_axis(Axis(0))
    }

    /// Inverts the wavelet packet of decoded bands `[3·4^J, h, w]` and crops to the image.
    pub fn reconstruct(&self, bands: ArrayView3<f32>, width: u32, height: u32) -> Result<RgbImage> {
        let expected = 3 * (1usize << (2 * self.weights.levels));
        if bands.dim().0 != expected {
            return Err(WallocError::Decoder(format!(
                "decoder produced {} bands, expected {expected}",
                bands.dim().0
            )));
        }
        let planes =
            terse_wavelet::wpt2d_inverse(&terse_wavelet::bior44(), bands, self.weights.levels)
                .map_err(|e| WallocError::Decoder(e.to_string()))?;
        if planes.dim().1 < height as usize || planes.dim().2 < width as usize {
            return Err(WallocError::Decoder(
                "decoded planes are smaller than the image".into(),
            ));
        }
        let offset = self.weights.input_offset;
        Ok(RgbImage::from_fn(width, height, |x, y| {
            image::Rgb(std::array::from_fn(|c| {
                ((planes[[c, y as usize, x as usize]] - offset) * 255.0)
                    .round()
                    .clamp(0.0, 255.0) as u8
            }))
        }))
    }

    /// Full decode: bitstream → latents → decoder network → image.
    pub fn decode(
        &self,
        bitstream: &[u8],
        decoder: &dyn BandDecoder,
        max_pixels: u64,
    ) -> Result<RgbImage> {
        let latents = self.decode_latents(bitstream, max_pixels)?;
        let bands = decoder
            .decode(self.normal_latents(&latents))
            .map_err(WallocError::Decoder)?;
        if bands.dim().0 != 1 {
            return Err(WallocError::Decoder(format!(
                "decoder returned a batch of {}",
                bands.dim().0
            )));
        }
        self.reconstruct(bands.index_axis(Axis(0), 0), latents.width, latents.height)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
