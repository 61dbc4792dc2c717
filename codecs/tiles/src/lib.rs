//! Large images as a grid of independently coded tiles, over any image [`Codec`].
//!
//! A learned codec runs its networks over the whole image: one convolution over a 2048²
//! image takes a second or more on a busy core, ONNX Runtime can stop a run only between
//! nodes, and the working memory grows with the pixels (MLIC decodes at about 1.1 KB per
//! pixel). [`Tiled`] codes an image of more than its pixel bound (for MLIC [`MAX_TILE_PIXELS`],
//! 1024²) as a grid of tiles of at most that many pixels, each an ordinary bitstream of the
//! inner codec, one after the other. So:
//! - every network run covers at most one tile, and a call that ends (deadline, cancellation)
//!   stops at the next node of the current tile's networks and starts no further tile;
//! - the working memory is one tile's plus the whole image's buffers, so images far larger than
//!   the memory budget would allow whole are served;
//! - images within the bound are coded exactly as the inner codec codes them
//!   (same bitstream), and every bitstream written before tiling existed decodes as before.
//!
//! The price: tiles are coded independently, so each seam costs some bits and some PSNR, as
//! the tiles of AVIF grids do. The grid has as few tiles as the bound allows, then the
//! shortest seams.
//!
//! A tiled bitstream is a container with the inner codec's id and model tag, header fields
//! `width`, `height`, `tile_width` and `tile_height`, and one `TILE` section per tile in raster
//! order, each holding the tile's own bitstream. Tiles lie at multiples of the tile size; the
//! last column and row take what is left.

use std::sync::Arc;

use image::{GenericImage, GenericImageView, RgbImage};
use terse_codec::{
    Codec, CodecInfo, DecodeCall, DecodeFuture, DynCodec, EncodeCall, EncodeFuture, Encoding, Work,
};
use terse_core::{Error, ErrorKind, Worker, on_worker};
use terse_entropy::{Container, Header};

/// A tile bound of 1024² pixels: most pixels of one tile, and of an image coded whole (the
/// bound MLIC is served with).
pub const MAX_TILE_PIXELS: u64 = 1 << 20;

/// Most tiles a container can hold.
const MAX_TILES: u32 = terse_entropy::container::MAX_SECTIONS;

/// Tile sides are multiples of this (the total stride of the image codecs' analysis), but for
/// the last column and row.
const TILE_ALIGN: u32 = 64;

/// Section tag of one tile's bitstream.
const TILE: [u8; 4] = *b"TILE";

/// Bytes per pixel of the whole image a tiled call holds besides one tile's work, by work:
/// the decoded input or output image and its file (encode, decode), and with a reconstruction
/// the quality measures the service computes over the whole image (MS-SSIM's float planes).
/// Measured peak RSS rise of a fresh server (`scripts/cost_model.py tiled`, 2048² and 4096²)
/// less one tile's measured work, plus about 10 %: 11–13 B/pixel to decode, 82–85 with
/// quality.
pub fn whole_image_bytes_per_pixel(work: Work) -> u64 {
    match work {
        Work::Encode | Work::Decode => 20,
        Work::EncodeAndDecode => 96,
    }
}

/// Where the tiles of an image lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// Width of every tile but those of the last column.
    pub tile_width: u32,
    /// Height of every tile but those of the last row.
    pub tile_height: u32,
}

impl Grid {
    /// The grid of a `width × height` image with tiles of at most `max_pixels` (at least
    /// 64²): the image whole when it has no more; otherwise the fewest tiles, then the
    /// shortest seams, with sides split evenly and rounded up to multiples of 64 (a
    /// 1920 × 1080 image: two tiles of 960 × 1080).
    pub fn for_image(width: u32, height: u32, max_pixels: u64) -> Self {
        let whole = Self {
            width,
            height,
            tile_width: width.max(1),
            tile_height: height.max(1),
        };
        if u64::from(width) * u64::from(height) <= max_pixels {
            return whole;
        }
        let align = u64::from(TILE_ALIGN);
        let columns_wanted = width.div_ceil(TILE_ALIGN).min(MAX_TILES);
        (1..=columns_wanted)
            .filter_map(|columns| {
                let tile_width = split(width, columns);
                let max_height = max_pixels / u64::from(tile_width) / align * align;
                let max_height = u32::try_from(max_height).unwrap_or(u32::MAX);
                (max_height > 0).then(|| Self {
                    tile_height: split(height, height.div_ceil(max_height)),
                    tile_width,
                    ..whole
                })
            })
            .min_by_key(|grid| (grid.count(), grid.seam_pixels()))
            .unwrap_or(whole)
    }

    /// Pixels along the seams between tiles.
    fn seam_pixels(&self) -> u64 {
        u64::from(self.columns() - 1) * u64::from(self.height)
            + u64::from(self.rows() - 1) * u64::from(self.width)
    }

    /// Tiles per row.
    pub fn columns(&self) -> u32 {
        self.width.div_ceil(self.tile_width)
    }

    /// Tiles per column.
    pub fn rows(&self) -> u32 {
        self.height.div_ceil(self.tile_height)
    }

    /// Number of tiles.
    pub fn count(&self) -> u64 {
        u64::from(self.columns()) * u64::from(self.rows())
    }

    /// Whether the image is one tile (coded as the inner codec codes it).
    pub fn is_single(&self) -> bool {
        self.columns() <= 1 && self.rows() <= 1
    }

    /// The tiles as `(x, y, width, height)`, in raster order.
    pub fn tiles(&self) -> impl Iterator<Item = (u32, u32, u32, u32)> + '_ {
        (0..self.rows()).flat_map(move |row| {
            (0..self.columns()).map(move |column| {
                let (x, y) = (column * self.tile_width, row * self.tile_height);
                (
                    x,
                    y,
                    self.tile_width.min(self.width - x),
                    self.tile_height.min(self.height - y),
                )
            })
        })
    }
}

/// The side of `parts` even tiles covering `total`: `total` itself for one part, otherwise
/// rounded up to [`TILE_ALIGN`].
fn split(total: u32, parts: u32) -> u32 {
    match parts {
        0 | 1 => total.max(1),
        _ => total.div_ceil(parts).next_multiple_of(TILE_ALIGN),
    }
}

/// An image codec that codes images larger than a tile as a grid of tiles of the inner codec.
pub struct Tiled {
    inner: Arc<DynCodec<RgbImage>>,
    max_pixels: u64,
}

impl Tiled {
    /// `inner` with tiles of at most `max_pixels` (at least 64²).
    pub fn with_max_pixels(inner: Arc<DynCodec<RgbImage>>, max_pixels: u64) -> Self {
        Self {
            inner,
            max_pixels: max_pixels.max(u64::from(TILE_ALIGN * TILE_ALIGN)),
        }
    }

    /// Codes `image` tile by tile. Cropping, pasting and writing the container copy up to
    /// megabytes, so they run on the worker like the coding, not on the async task.
    async fn encode_tiles(
        &self,
        call: EncodeCall<'_, RgbImage>,
        grid: Grid,
    ) -> Result<Encoding<RgbImage>, Error> {
        let (image, options, worker) = (call.media, call.options, call.worker);
        if options.latents {
            return Err(Error::invalid(format!(
                "latents are returned for images of at most {} pixels; this one is coded as {} tiles",
                self.max_pixels,
                grid.count()
            )));
        }
        let mut container = Container::new(self.inner.info().id);
        container.model = self.inner.tag().cloned();
        container.put_u64("width", u64::from(grid.width));
        container.put_u64("height", u64::from(grid.height));
        container.put_u64("tile_width", u64::from(grid.tile_width));
        container.put_u64("tile_height", u64::from(grid.tile_height));
        let mut reconstruction = options
            .reconstruct
            .then(|| RgbImage::new(grid.width, grid.height));
        let mut latent_bits = 0;
        for (x, y, width, height) in grid.tiles() {
            let source = Arc::clone(&image);
            let tile =
                on_worker(worker, move || source.view(x, y, width, height).to_image()).await?;
            let media = Arc::new(tile);
            let coded = self
                .inner
                .encode(EncodeCall {
                    media,
                    options,
                    worker,
                })
                .await?;
            latent_bits = coded.latent_bits;
            container.push_section(TILE, coded.bitstream);
            reconstruction = match (reconstruction, coded.reconstruction) {
                (Some(canvas), Some(decoded)) => Some(pasted(worker, canvas, decoded, x, y).await?),
                (canvas, _) => canvas,
            };
        }
        let bitstream = on_worker(worker, move || container.to_bytes())
            .await?
            .map_err(|e| Error::internal(e.to_string()))?;
        Ok(Encoding {
            bitstream,
            reconstruction,
            latents: None,
            latent_bits,
            reference: None,
        })
    }

    /// Decodes a tiled bitstream; parsing and pasting run on the worker.
    async fn decode_tiles(&self, call: DecodeCall<'_>) -> Result<RgbImage, Error> {
        let (bitstream, max_units, worker) = (call.bitstream, call.max_units, call.worker);
        let corrupt = |e: terse_entropy::EntropyError| Error::invalid(format!("bitstream: {e}"));
        let (header, sections) = on_worker(worker, move || Container::parse(&bitstream))
            .await?
            .map_err(corrupt)?
            .into_parts();
        header.expect_codec(self.inner.info().id).map_err(corrupt)?;
        if header.model.as_ref() != self.inner.tag() {
            return Err(Error::invalid(
                "bitstream: the tiled image names another model than its codec's",
            ));
        }
        let grid = read_grid(&header, max_units, self.max_pixels)?;
        let tiles: Vec<Vec<u8>> = sections
            .into_iter()
            .map(|(tag, payload)| match tag {
                TILE => Ok(payload),
                _ => Err(Error::invalid(
                    "bitstream: a tiled image holds only TILE sections",
                )),
            })
            .collect::<Result<_, _>>()?;
        if tiles.len() as u64 != grid.count() {
            return Err(Error::invalid(format!(
                "bitstream: a {}x{} image in tiles of {}x{} has {} tiles, not {}",
                grid.width,
                grid.height,
                grid.tile_width,
                grid.tile_height,
                grid.count(),
                tiles.len()
            )));
        }
        let mut image = RgbImage::new(grid.width, grid.height);
        for ((x, y, width, height), tile) in grid.tiles().zip(tiles) {
            let call = DecodeCall::new(tile, u64::from(width) * u64::from(height), worker);
            let decoded = self.inner.decode(call).await?;
            if decoded.dimensions() != (width, height) {
                return Err(Error::invalid(format!(
                    "bitstream: the tile at ({x}, {y}) decodes to {}x{} pixels, not {width}x{height}",
                    decoded.width(),
                    decoded.height()
                )));
            }
            image = pasted(worker, image, decoded, x, y).await?;
        }
        Ok(image)
    }
}

/// `canvas` with `tile` pasted at (`x`, `y`), the copy made on the worker.
async fn pasted(
    worker: &dyn Worker,
    mut canvas: RgbImage,
    tile: RgbImage,
    x: u32,
    y: u32,
) -> Result<RgbImage, Error> {
    on_worker(worker, move || {
        paste(&mut canvas, &tile, x, y).map(|()| canvas)
    })
    .await?
}

/// The grid a tiled container declares, checked for consistency, against `max_units` pixels
/// and against `max_tile` pixels per tile (what the working-memory estimate assumed) before
/// anything is allocated.
fn read_grid(header: &Header, max_units: u64, max_tile: u64) -> Result<Grid, Error> {
    let field = |key: &str| -> Result<u32, Error> {
        let value = header
            .u64(key)
            .map_err(|e| Error::invalid(format!("bitstream: {e}")))?;
        u32::try_from(value)
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| Error::invalid(format!("bitstream: {key} {value} is out of range")))
    };
    let grid = Grid {
        width: field("width")?,
        height: field("height")?,
        tile_width: field("tile_width")?,
        tile_height: field("tile_height")?,
    };
    let pixels = u64::from(grid.width) * u64::from(grid.height);
    if pixels > max_units {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!(
                "bitstream declares {}x{} pixels, over the limit of {max_units}",
                grid.width, grid.height
            ),
        ));
    }
    if grid.tile_width > grid.width || grid.tile_height > grid.height || grid.is_single() {
        return Err(Error::invalid(format!(
            "bitstream: tiles of {}x{} do not split a {}x{} image",
            grid.tile_width, grid.tile_height, grid.width, grid.height
        )));
    }
    if u64::from(grid.tile_width) * u64::from(grid.tile_height) > max_tile {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!(
                "bitstream: tiles of {}x{} pixels are over this server's {max_tile} per tile",
                grid.tile_width, grid.tile_height
            ),
        ));
    }
    Ok(grid)
}

fn paste(canvas: &mut RgbImage, tile: &RgbImage, x: u32, y: u32) -> Result<(), Error> {
    canvas
        .copy_from(tile, x, y)
        .map_err(|e| Error::internal(format!("placing a tile at ({x}, {y}): {e}")))
}

/// Whether a bitstream's header declares a tile grid.
fn is_tiled(bitstream: &[u8]) -> bool {
    Header::read(bitstream).is_ok_and(|header| header.field("tile_width").is_ok())
}

impl Codec for Tiled {
    type Media = RgbImage;
    type Knobs = ();

    fn info(&self) -> &CodecInfo {
        self.inner.info()
    }

    /// `shape`: width, height. An image of several tiles: the inner codec's work on the largest
    /// tile a bitstream may hold (its costs are per pixel), plus
    /// [`whole_image_bytes_per_pixel`].
    fn working_memory(&self, work: Work, shape: &[u64]) -> u64 {
        let &[width, height] = shape else {
            return self.inner.working_memory(work, shape);
        };
        if width.saturating_mul(height) <= self.max_pixels {
            return self.inner.working_memory(work, shape);
        }
        self.inner
            .working_memory(work, &[self.max_pixels, 1])
            .saturating_add(
                width
                    .saturating_mul(height)
                    .saturating_mul(whole_image_bytes_per_pixel(work)),
            )
    }

    fn encode<'a>(&'a self, call: EncodeCall<'a, RgbImage>) -> EncodeFuture<'a, RgbImage> {
        let grid = Grid::for_image(call.media.width(), call.media.height(), self.max_pixels);
        if grid.is_single() {
            return self.inner.encode(call);
        }
        Box::pin(async move { self.encode_tiles(call, grid).await })
    }

    fn decode<'a>(&'a self, call: DecodeCall<'a>) -> DecodeFuture<'a, RgbImage> {
        if !is_tiled(&call.bitstream) {
            return self.inner.decode(call);
        }
        Box::pin(async move { self.decode_tiles(call).await })
    }
}

#[cfg(test)]
mod tests;
