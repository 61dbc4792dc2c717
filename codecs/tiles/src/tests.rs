use std::sync::atomic::{AtomicUsize, Ordering};

use terse_core::{BoxFuture, CountingInline, Inline, Job, block_on};
use terse_entropy::{CodecId, ModelTag};

use super::*;
use terse_codec::{EncodeOptions, UnitCost};

/// Test double: stores the pixels verbatim in a container like a real image codec's, running
/// its work on the worker (one job per call).
struct Verbatim {
    info: CodecInfo,
    encodes: AtomicUsize,
}

impl Verbatim {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            info: CodecInfo::learned(
                &ModelTag {
                    name: "verbatim".into(),
                    sha256_prefix: [7; 8],
                },
                "1",
                "test",
                CodecId::Test,
                "pixels as they are".into(),
            ),
            encodes: AtomicUsize::new(0),
        })
    }
}

impl Codec for Verbatim {
    type Media = RgbImage;
    type Knobs = ();

    fn info(&self) -> &CodecInfo {
        &self.info
    }

    fn working_memory(&self, work: Work, shape: &[u64]) -> u64 {
        work.memory(shape, UnitCost::new(100, 200))
    }

    fn encode<'a>(&'a self, call: EncodeCall<'a, RgbImage>) -> EncodeFuture<'a, RgbImage> {
        let (media, options, worker) = (call.media, call.options, call.worker);
        Box::pin(async move {
            self.encodes.fetch_add(1, Ordering::SeqCst);
            let tag = self.tag().cloned();
            let image = Arc::clone(&media);
            let bitstream = terse_core::on_worker(worker, move || {
                let mut container = Container::new(CodecId::Test);
                container.model = tag;
                container.put_u64("width", u64::from(image.width()));
                container.put_u64("height", u64::from(image.height()));
                container.push_section(*b"DATA", image.as_raw().clone());
                container.to_bytes().unwrap()
            })
            .await?;
            Ok(Encoding {
                reconstruction: options.reconstruct.then(|| (*media).clone()),
                latent_bits: 5,
                ..Encoding::bitstream(bitstream)
            })
        })
    }

    fn decode<'a>(&'a self, call: DecodeCall<'a>) -> DecodeFuture<'a, RgbImage> {
        let (bitstream, max_units) = (call.bitstream, call.max_units);
        Box::pin(async move {
            let container =
                Container::parse(&bitstream).map_err(|e| Error::invalid(e.to_string()))?;
            let (w, h) = (
                container.u64("width").unwrap(),
                container.u64("height").unwrap(),
            );
            if w * h > max_units {
                return Err(Error::new(ErrorKind::TooLarge, "tile over its limit"));
            }
            let pixels = container.section(*b"DATA").unwrap().to_vec();
            RgbImage::from_raw(w as u32, h as u32, pixels).ok_or_else(|| Error::invalid("short"))
        })
    }
}

/// A worker that runs `budget` jobs and then answers every job as a call that ended.
struct EndsAfter(AtomicUsize);

impl Worker for EndsAfter {
    fn run(&self, job: Job) -> BoxFuture<'static, Result<(), Error>> {
        let left = self.0.load(Ordering::SeqCst);
        if left == 0 {
            return Box::pin(std::future::ready(Err(Error::new(
                ErrorKind::Cancelled,
                "the call ended",
            ))));
        }
        self.0.store(left - 1, Ordering::SeqCst);
        job();
        Box::pin(std::future::ready(Ok(())))
    }
}

fn picture(width: u32, height: u32) -> Arc<RgbImage> {
    Arc::new(RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([
            (x % 251) as u8,
            (y % 241) as u8,
            ((x * 7 + y * 3) % 256) as u8,
        ])
    }))
}

fn encode(codec: &Tiled, image: &Arc<RgbImage>, reconstruct: bool) -> Encoding<RgbImage> {
    let options = EncodeOptions {
        reconstruct,
        ..Default::default()
    };
    block_on(codec.encode(EncodeCall::new(Arc::clone(image), options, &Inline))).unwrap()
}

/// Rewrites a tiled bitstream through `change` (checksums recomputed, as an attacker would).
fn rewrite(bitstream: &[u8], change: impl FnOnce(&mut Container)) -> Vec<u8> {
    let mut container = Container::parse(bitstream).unwrap();
    change(&mut container);
    container.to_bytes().unwrap()
}

#[test]
fn grids_have_the_fewest_tiles_then_the_shortest_seams() {
    let max = MAX_TILE_PIXELS;
    // Two tiles side by side (one seam of 1080) rather than three rows or a 2 x 2 grid.
    let hd = Grid::for_image(1920, 1080, max);
    assert_eq!((hd.tile_width, hd.tile_height, hd.count()), (960, 1080, 2));
    assert_eq!(
        hd.tiles().collect::<Vec<_>>(),
        [(0, 0, 960, 1080), (960, 0, 960, 1080)]
    );
    // A 12 Mpx photo: 12 tiles of 1024², the last row and column narrower.
    let photo = Grid::for_image(4000, 3000, max);
    assert_eq!(
        (photo.tile_width, photo.tile_height, photo.count()),
        (1024, 1024, 12)
    );
    for (width, height) in [(1280, 800), (1024, 1024), (1, 1), (5000, 10), (0, 7)] {
        assert!(
            Grid::for_image(width, height, max).is_single(),
            "{width}x{height}"
        );
    }
    for (width, height) in [
        (3001, 2049),
        (1025, 1025),
        (65_536, 20),
        (20, 65_536),
        (8192, 8192),
    ] {
        let grid = Grid::for_image(width, height, max);
        let tiles: Vec<_> = grid.tiles().collect();
        let covered: u64 = tiles
            .iter()
            .map(|&(_, _, w, h)| u64::from(w) * u64::from(h))
            .sum();
        assert_eq!(
            covered,
            u64::from(width) * u64::from(height),
            "{width}x{height}"
        );
        assert!(
            u64::from(grid.tile_width) * u64::from(grid.tile_height) <= max,
            "{grid:?}"
        );
        // No grid of fewer tiles fits the bound.
        let least = (u64::from(width) * u64::from(height)).div_ceil(max);
        assert!(
            grid.count() <= least * 2,
            "{grid:?}: {} tiles",
            grid.count()
        );
    }
}

#[test]
fn images_of_one_tile_are_coded_by_the_inner_codec_as_they_were() {
    let inner = Verbatim::new();
    let tiled = Tiled::with_max_pixels(inner.clone(), 64 * 64);
    let image = picture(64, 40);
    let own = block_on(inner.encode(EncodeCall::new(
        Arc::clone(&image),
        EncodeOptions::default(),
        &Inline,
    )))
    .unwrap();
    let coded = encode(&tiled, &image, false);
    assert_eq!(coded.bitstream, own.bitstream);
    assert!(!is_tiled(&coded.bitstream));
    assert_eq!(
        block_on(tiled.decode(DecodeCall::new(coded.bitstream, 64 * 40, &Inline))).unwrap(),
        *image
    );
    assert_eq!(
        tiled.working_memory(Work::Decode, &[64, 40]),
        inner.working_memory(Work::Decode, &[64, 40])
    );
}

#[test]
fn large_images_round_trip_through_tiles() {
    let inner = Verbatim::new();
    let tiled = Tiled::with_max_pixels(inner.clone(), 64 * 64);
    let image = picture(150, 70);
    let coded = encode(&tiled, &image, true);
    assert_eq!(inner.encodes.load(Ordering::SeqCst), 3 * 2);
    assert_eq!(coded.latent_bits, 5);
    assert_eq!(coded.reconstruction.as_ref(), Some(&*image));
    let header = Header::read(&coded.bitstream).unwrap();
    assert_eq!(header.codec, CodecId::Test);
    assert_eq!(header.model.as_ref(), inner.tag());
    assert_eq!(
        [
            header.u64("width").unwrap(),
            header.u64("tile_width").unwrap()
        ],
        [150, 64]
    );
    let decoded =
        block_on(tiled.decode(DecodeCall::new(coded.bitstream, 150 * 70, &Inline))).unwrap();
    assert_eq!(decoded, *image);
    // One tile's work plus the whole image's buffers, far less than the whole image's work.
    let whole = inner.working_memory(Work::Decode, &[150, 70]);
    let tiles = tiled.working_memory(Work::Decode, &[150, 70]);
    assert_eq!(
        tiles,
        200 * 64 * 64 + 150 * 70 * whole_image_bytes_per_pixel(Work::Decode)
    );
    assert_eq!(
        tiled.working_memory(Work::Decode, &[1 << 40, 1 << 30]),
        u64::MAX
    );
    assert!(tiles < whole + 150 * 70 * whole_image_bytes_per_pixel(Work::Decode));
}

#[test]
fn latents_are_refused_for_tiled_images() {
    let tiled = Tiled::with_max_pixels(Verbatim::new(), 64 * 64);
    let options = EncodeOptions {
        latents: true,
        ..Default::default()
    };
    let err =
        block_on(tiled.encode(EncodeCall::new(picture(100, 50), options, &Inline))).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.message.contains("2 tiles"), "{}", err.message);
}

#[test]
fn an_ended_call_starts_no_further_tile() {
    let inner = Verbatim::new();
    let tiled = Tiled::with_max_pixels(inner.clone(), 64 * 64);
    // Each tile takes two jobs: its crop and its coding.
    let worker = EndsAfter(AtomicUsize::new(4));
    let err = block_on(tiled.encode(EncodeCall::new(
        picture(300, 300),
        EncodeOptions::default(),
        &worker,
    )))
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Cancelled);
    // Tiles 1 and 2 ran, the crop of tile 3 found the call ended; the other 22 never started.
    assert_eq!(inner.encodes.load(Ordering::SeqCst), 2);
}

#[test]
fn tile_copies_run_on_the_worker_not_the_async_task() {
    let tiled = Tiled::with_max_pixels(Verbatim::new(), 64 * 64);
    let image = picture(150, 70);
    let tiles = Grid::for_image(150, 70, 64 * 64).count() as usize;
    assert!(tiles > 1);
    let worker = CountingInline::default();
    let options = EncodeOptions {
        reconstruct: true,
        ..Default::default()
    };
    let coded =
        block_on(tiled.encode(EncodeCall::new(Arc::clone(&image), options, &worker))).unwrap();
    assert_eq!(coded.reconstruction.as_ref(), Some(&*image));
    // Per tile: the crop, the inner coding, the paste into the reconstruction; then the
    // container.
    assert_eq!(worker.jobs(), 3 * tiles + 1);

    let worker = CountingInline::default();
    let decoded =
        block_on(tiled.decode(DecodeCall::new(coded.bitstream, 150 * 70, &worker))).unwrap();
    assert_eq!(decoded, *image);
    // The parse, then a paste per tile (the test double decodes on the calling thread).
    assert_eq!(worker.jobs(), tiles + 1);
}

#[test]
fn tampered_grids_are_refused_before_decoding() {
    let inner = Verbatim::new();
    let tiled = Tiled::with_max_pixels(inner.clone(), 64 * 64);
    let coded = encode(&tiled, &picture(150, 70), false).bitstream;
    let decode = |bitstream: Vec<u8>, max: u64| {
        block_on(tiled.decode(DecodeCall::new(bitstream, max, &Inline)))
    };

    let err = decode(coded.clone(), 150 * 70 - 1).unwrap_err();
    assert_eq!(err.kind, ErrorKind::TooLarge, "{}", err.message);

    let raised = rewrite(&coded, |c| c.put_u64("width", 1 << 20));
    assert_eq!(
        decode(raised, u64::MAX).unwrap_err().kind,
        ErrorKind::InvalidInput
    );

    let huge = rewrite(&coded, |c| c.put_u64("height", 1 << 33));
    let err = decode(huge, u64::MAX).unwrap_err();
    assert!(err.message.contains("out of range"), "{}", err.message);

    // Tiles larger than the bound the memory estimate assumed.
    let wide = rewrite(&coded, |c| c.put_u64("tile_width", 128));
    let err = decode(wide, u64::MAX).unwrap_err();
    assert_eq!(err.kind, ErrorKind::TooLarge, "{}", err.message);

    let one_tile = rewrite(&coded, |c| {
        c.put_u64("tile_width", 150);
        c.put_u64("tile_height", 70);
    });
    let err = decode(one_tile, u64::MAX).unwrap_err();
    assert!(err.message.contains("do not split"), "{}", err.message);

    let extra = rewrite(&coded, |c| c.push_section(TILE, Vec::new()));
    let err = decode(extra, u64::MAX).unwrap_err();
    assert!(
        err.message.contains("has 6 tiles, not 7"),
        "{}",
        err.message
    );

    let foreign = rewrite(&coded, |c| c.push_section(*b"DATA", Vec::new()));
    assert_eq!(
        decode(foreign, u64::MAX).unwrap_err().kind,
        ErrorKind::InvalidInput
    );

    let moved = rewrite(&coded, |c| c.put_u64("tile_width", 32));
    let err = decode(moved, u64::MAX).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{}", err.message);

    let renamed = rewrite(&coded, |c| c.model = None);
    assert_eq!(
        decode(renamed, u64::MAX).unwrap_err().kind,
        ErrorKind::InvalidInput
    );
}
