//! Every parser and decoder that reads bytes from the network, as a fuzz entry point.
//!
//! Each [`Target`] takes arbitrary bytes and must return (its result is dropped) without
//! panicking, hanging or allocating beyond the limits it is given. The same functions are
//! driven three ways:
//! - by libFuzzer through `cargo fuzz` (the `fuzz/` package, `scripts/fuzz`), bounded in time;
//! - by this crate's tests in every CI run: every file of the committed corpora
//!   (`fuzz/corpus/<target>`) and crash regressions (`fuzz/regressions/<target>`) is replayed,
//!   and proptest feeds random and mutated inputs;
//! - by `fuzz-seeds`, which writes valid inputs made from the test fixtures as starting corpora.
//!
//! Targets that need a model read its assets from the shipped repository once (no ONNX Runtime:
//! the decoders under test are the entropy-coding and parsing paths that run before a network).

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use prost::Message;
use terse_codec::Codec;
use terse_entropy::{Container, ModelTag};
use terse_hosting::read_asset;
use terse_lingua::Lingua2;
use terse_mlic::MlicCodec;
use terse_proto::{context::v1 as context, vision::v1 as vision};
use terse_runtime::{ManifestEntry, manifest::read_manifest};
use terse_walloc::{WallocAudioCodec, WallocImageCodec};

/// Largest image any target decodes (pixels).
pub const MAX_PIXELS: u64 = 1 << 20;
/// Most splats any target decodes.
pub const MAX_SPLATS: u64 = 1 << 14;
/// Most audio frames any target decodes.
pub const MAX_FRAMES: u64 = 1 << 20;
/// Most float elements of a vision tensor.
pub const MAX_ELEMENTS: usize = 1 << 16;
/// Largest safetensors file any target decodes (bytes).
pub const MAX_TENSOR_FILE_BYTES: u64 = 1 << 24;

/// One fuzz entry point.
pub struct Target {
    /// Name: the cargo-fuzz binary and the corpus folder.
    pub name: &'static str,
    /// What it feeds the bytes to.
    pub about: &'static str,
    /// Runs one input; true when it was accepted (decoded), false for a typed error.
    pub run: fn(&[u8]) -> bool,
    /// Valid inputs to start from, made from the fixtures.
    pub seeds: fn() -> Vec<Vec<u8>>,
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "container",
        about: "terse_entropy::Container::parse (every codec's bitstream framing)",
        run: container,
        seeds: container_seeds,
    },
    Target {
        name: "entropy_decoders",
        about: "IndexedCdfTable::decode_with_indexes and the adaptive range decoder",
        run: entropy_decoders,
        seeds: entropy_seeds,
    },
    Target {
        name: "splat_ply",
        about: "terse_splat::ply::read_ply",
        run: splat_ply,
        seeds: ply_seeds,
    },
    Target {
        name: "splat_spz",
        about: "terse_splat::spz::read_spz (gzip + SPZ v2/v3/v4)",
        run: splat_spz,
        seeds: spz_seeds,
    },
    Target {
        name: "splat_bitstream",
        about: "terse_splat::codec::{inspect, decode}",
        run: splat_bitstream,
        seeds: splat_bitstream_seeds,
    },
    Target {
        name: "image_file",
        about: "terse_walloc::decode_image_file (PNG, JPEG, WebP, BMP, TIFF ingestion)",
        run: image_file,
        seeds: image_seeds,
    },
    Target {
        name: "audio_file",
        about: "terse_audio_io::decode_audio_file (WAV, FLAC, MP3, OGG Vorbis ingestion)",
        run: audio_file,
        seeds: audio_seeds,
    },
    Target {
        name: "walloc_image_bitstream",
        about: "WallocImageCodec::decode_latents (walloc-rgb-16x)",
        run: walloc_image_bitstream,
        seeds: walloc_image_seeds,
    },
    Target {
        name: "walloc_audio_bitstream",
        about: "WallocAudioCodec::decode_latents (walloc-stereo-19x)",
        run: walloc_audio_bitstream,
        seeds: walloc_audio_seeds,
    },
    Target {
        name: "tiled_image_bitstream",
        about: "terse_tiles::Tiled::decode over WaLLoC's latent decoder (tiles of at most 64², the decoder network replaced by a test double): the grid, its bounds and every tile's latents",
        run: tiled_image_bitstream,
        seeds: tiled_image_seeds,
    },
    Target {
        name: "mlic_bitstream",
        about: "MlicCodec::decode_latents (mlic rate point q4: hyperprior, channel and checkerboard contexts, gains)",
        run: mlic_bitstream,
        seeds: mlic_seeds,
    },
    Target {
        name: "tensor_bitstream",
        about: "terse_tensor::{inspect, decode, decode_tensor} (weights bitstreams: index, chunks, ANS streams, planes)",
        run: tensor_bitstream,
        seeds: tensor_bitstream_seeds,
    },
    Target {
        name: "kv_bitstream",
        about: "terse_kvcache::{info, decode} (KV-cache bitstreams as they come, and the bytes as the plane payloads of a well-formed container, so the plane parser is reached past the checksums)",
        run: kv_bitstream,
        seeds: kv_bitstream_seeds,
    },
    Target {
        name: "safetensors_file",
        about: "terse_tensor::encode (safetensors header and tensor layout, every dtype)",
        run: safetensors_file,
        seeds: safetensors_seeds,
    },
    Target {
        name: "vision_request",
        about: "PruneTokensRequest protobuf -> terse_vision_service::prune (tensor dtype/shape/length checks, every method)",
        run: vision_request,
        seeds: vision_seeds,
    },
    Target {
        name: "prompt_request",
        about: "CompressPromptRequest protobuf -> prompt_options -> LLMLingua-2 plan and post-processing",
        run: prompt_request,
        seeds: prompt_seeds,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The committed inputs of `target` under `fuzz/<folder>` (`corpus` or `regressions`),
/// sorted; none when the folder does not exist.
pub fn committed_inputs(folder: &str, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(workspace().join("fuzz").join(folder).join(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(workspace().join("tests/fixtures").join(path))
        .unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// The newest version of a shipped model.
fn manifest(model: &str) -> ManifestEntry {
    let dir = workspace().join("models/repository").join(model);
    let version = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .max_by_key(|v| terse_runtime::manifest::version_key(v))
        .unwrap_or_else(|| panic!("{model} has no version"));
    read_manifest(&dir.join(version).join("manifest.toml"))
        .unwrap_or_else(|e| panic!("{model}: {e}"))
}

fn tag(entry: &ManifestEntry) -> ModelTag {
    ModelTag::from_sha256_hex(&entry.manifest.name, &entry.manifest.sha256).expect("valid tag")
}

fn walloc_image() -> &'static WallocImageCodec {
    static CODEC: OnceLock<WallocImageCodec> = OnceLock::new();
    CODEC.get_or_init(|| {
        let entry = manifest("walloc-rgb-16x");
        WallocImageCodec::from_assets(|name| read_asset(&entry, name), tag(&entry))
            .expect("walloc-rgb-16x")
    })
}

fn walloc_audio() -> &'static WallocAudioCodec {
    static CODEC: OnceLock<WallocAudioCodec> = OnceLock::new();
    CODEC.get_or_init(|| {
        let entry = manifest("walloc-stereo-19x");
        WallocAudioCodec::from_assets(|name| read_asset(&entry, name), tag(&entry))
            .expect("walloc-stereo-19x")
    })
}

fn mlic() -> &'static MlicCodec {
    static CODEC: OnceLock<MlicCodec> = OnceLock::new();
    CODEC.get_or_init(|| {
        let entry = manifest("mlic");
        let asset = |name: &str| entry.read_asset(name).expect("mlic asset");
        MlicCodec::from_package(
            &asset("entropy"),
            &asset("entropy-weights"),
            &asset("prior"),
            &entry.manifest.name,
            &entry.manifest.sha256,
        )
        .expect("mlic codecs")
        .into_iter()
        .nth(3)
        .expect("rate point q4")
    })
}

fn lingua() -> &'static Lingua2 {
    static LINGUA: OnceLock<Lingua2> = OnceLock::new();
    LINGUA.get_or_init(|| {
        let entry = manifest("lingua-minilm-keep");
        let tokenizer = terse_text::TextTokenizer::from_bytes(
            &entry.read_asset("tokenizer").expect("tokenizer asset"),
        )
        .expect("tokenizer");
        Lingua2::new(tokenizer, 512).expect("lingua")
    })
}

/// See [`TARGETS`].
/// What parses re-serializes to the same bytes (the format has one encoding per value).
pub fn container(data: &[u8]) -> bool {
    let Ok(container) = Container::parse(data) else {
        return false;
    };
    let bytes = container.to_bytes().expect("a parsed container serializes");
    assert_eq!(bytes, data, "container round trip changed the bytes");
    true
}

/// See [`TARGETS`]: arbitrary coded streams fed to the ANS table decoder and the adaptive
/// range decoder under fixed models.
pub fn entropy_decoders(data: &[u8]) -> bool {
    use terse_entropy::{AdaptiveDecoder, AdaptiveIntegers, IndexedCdfTable};
    static TABLE: OnceLock<IndexedCdfTable> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        IndexedCdfTable::from_pmfs(
            &[vec![0.25, 0.5, 0.25], vec![0.9, 0.1]],
            &[1e-3, 1e-2],
            &[-1, 0],
        )
        .expect("valid table")
    });
    let indexes: Vec<u32> = (0..128).map(|i| i % 2).collect();
    let table_ok = table.decode_with_indexes(data, &indexes).is_ok();
    let mut adaptive_ok = false;
    if let Ok(mut decoder) = AdaptiveDecoder::new(data) {
        let mut model = AdaptiveIntegers::new(-100, 100, 2).expect("valid model");
        adaptive_ok = (0..256).all(|i| model.decode(&mut decoder, i % 2).is_ok());
    }
    table_ok || adaptive_ok
}

/// See [`TARGETS`].
pub fn splat_ply(data: &[u8]) -> bool {
    terse_splat::ply::read_ply(data, MAX_SPLATS).is_ok()
}

/// See [`TARGETS`].
pub fn splat_spz(data: &[u8]) -> bool {
    terse_splat::spz::read_spz(data, MAX_SPLATS).is_ok()
}

/// See [`TARGETS`].
pub fn splat_bitstream(data: &[u8]) -> bool {
    let info = terse_splat::codec::inspect(data).is_ok();
    terse_splat::codec::decode(data, MAX_SPLATS).is_ok() && info
}

/// See [`TARGETS`].
pub fn tensor_bitstream(data: &[u8]) -> bool {
    let Ok(info) = terse_tensor::inspect(data) else {
        return false;
    };
    let whole = terse_tensor::decode(data, MAX_TENSOR_FILE_BYTES).is_ok();
    let first = info
        .tensors
        .first()
        .is_none_or(|t| terse_tensor::decode_tensor(data, &t.name, MAX_TENSOR_FILE_BYTES).is_ok());
    whole && first
}

/// Most values of a KV cache any target decodes.
pub const MAX_KV_ELEMENTS: usize = 1 << 22;

/// The model tag the KV targets' bitstreams carry.
fn kv_model() -> ModelTag {
    ModelTag::from_sha256_hex("fuzz-lm", "00112233445566778899aabbccddeeff").expect("hex")
}

/// A container of a 1-layer KV cache whose two plane sections are `planes` (the shape and
/// sink count taken from the first bytes), checksums valid.
fn kv_container(data: &[u8]) -> Vec<u8> {
    let (shape, rest) = data.split_at(data.len().min(3));
    let dim = |i: usize| u64::from(shape.get(i).copied().unwrap_or(1) % 9);
    let split = rest.len() / 2;
    let mut container = Container::new(terse_entropy::CodecId::KvCache);
    container.model = Some(kv_model());
    container.put_u64("kv_format", terse_kvcache::KV_FORMAT);
    container.put_u64("layers", 1);
    container.put_u64("kv_heads", dim(0).max(1));
    container.put_u64("head_dim", dim(1).max(1));
    container.put_u64("tokens", dim(2));
    container.put_u64("level", 5);
    container.put_u64("sink_tokens", dim(2) / 3);
    container.put_field("dtype", b"fp32".to_vec());
    container.push_section(*b"K000", rest[..split].to_vec());
    container.push_section(*b"V000", rest[split..].to_vec());
    container.to_bytes().expect("a small container")
}

/// See [`TARGETS`].
pub fn kv_bitstream(data: &[u8]) -> bool {
    let as_is = terse_kvcache::info(data).is_ok()
        && terse_kvcache::decode(data, None, MAX_KV_ELEMENTS).is_ok();
    let planes = terse_kvcache::decode(&kv_container(data), Some(&kv_model()), MAX_KV_ELEMENTS);
    as_is || planes.is_ok()
}

fn kv_bitstream_seeds() -> Vec<Vec<u8>> {
    let shape = terse_core::KvShape {
        layers: 2,
        kv_heads: 2,
        tokens: 12,
        head_dim: 4,
    };
    let values = (0..shape.elements().expect("small"))
        .map(|i| ((i * 7919) % 97) as f32 * 0.1 - 4.0)
        .collect();
    let cache = terse_core::KvCache::new(shape, values).expect("shape");
    let options = terse_kvcache::EncodeOptions::default();
    vec![terse_kvcache::encode(&cache, &kv_model(), "fp32", &options).expect("encode")]
}

/// See [`TARGETS`].
pub fn safetensors_file(data: &[u8]) -> bool {
    let options = terse_tensor::EncodeOptions {
        chunk_elements: 128,
    };
    terse_tensor::encode(data, options).is_ok()
}

/// See [`TARGETS`].
pub fn image_file(data: &[u8]) -> bool {
    terse_walloc::decode_image_file(data, MAX_PIXELS).is_ok()
}

/// See [`TARGETS`].
pub fn audio_file(data: &[u8]) -> bool {
    terse_audio_io::decode_audio_file(
        data,
        terse_audio_io::DecodeLimits {
            max_seconds: 20.0,
            max_channels: 8,
        },
    )
    .is_ok()
}

/// See [`TARGETS`].
pub fn walloc_image_bitstream(data: &[u8]) -> bool {
    walloc_image().decode_latents(data, MAX_PIXELS).is_ok()
}

/// WaLLoC's image codec with its decoder network replaced by a test double (a black image of
/// the latents' size): the encoder and the latent decoder are the real ones, so the tiled
/// target reaches every tile's latents without ONNX Runtime.
struct WallocLatents(terse_codec::CodecInfo);

impl terse_codec::Codec for WallocLatents {
    type Media = terse_walloc::RgbImage;
    type Knobs = ();

    fn info(&self) -> &terse_codec::CodecInfo {
        &self.0
    }

    fn working_memory(&self, work: terse_codec::Work, shape: &[u64]) -> u64 {
        work.memory(shape, terse_codec::UnitCost::new(1, 1))
    }

    fn encode<'a>(
        &'a self,
        call: terse_codec::EncodeCall<'a, terse_walloc::RgbImage>,
    ) -> terse_codec::EncodeFuture<'a, terse_walloc::RgbImage> {
        let coded = walloc_image()
            .encode(&call.media)
            .map(|(bitstream, _)| terse_codec::Encoding::bitstream(bitstream))
            .map_err(|e| terse_core::Error::invalid(e.to_string()));
        Box::pin(std::future::ready(coded))
    }

    fn decode<'a>(
        &'a self,
        call: terse_codec::DecodeCall<'a>,
    ) -> terse_codec::DecodeFuture<'a, terse_walloc::RgbImage> {
        let decoded = walloc_image()
            .decode_latents(&call.bitstream, call.max_units)
            .map(|latents| terse_walloc::RgbImage::new(latents.width, latents.height))
            .map_err(|e| terse_core::Error::invalid(e.to_string()));
        Box::pin(std::future::ready(decoded))
    }
}

/// [`WallocLatents`] in tiles of at most 64² pixels, so that inputs of a few KiB hold grids.
fn tiled_image() -> &'static terse_tiles::Tiled {
    static CODEC: OnceLock<terse_tiles::Tiled> = OnceLock::new();
    CODEC.get_or_init(|| {
        let info = terse_codec::CodecInfo::learned(
            walloc_image().model(),
            "1",
            "walloc",
            terse_entropy::CodecId::WallocImage,
            "WaLLoC latents only (fuzzing)".into(),
        );
        terse_tiles::Tiled::with_max_pixels(std::sync::Arc::new(WallocLatents(info)), 64 * 64)
    })
}

/// See [`TARGETS`].
pub fn tiled_image_bitstream(data: &[u8]) -> bool {
    let call = terse_codec::DecodeCall::new(data.to_vec(), MAX_PIXELS, &terse_core::Inline);
    terse_core::block_on(tiled_image().decode(call)).is_ok()
}

/// See [`TARGETS`].
pub fn walloc_audio_bitstream(data: &[u8]) -> bool {
    walloc_audio().decode_latents(data, MAX_FRAMES).is_ok()
}

/// See [`TARGETS`].
pub fn mlic_bitstream(data: &[u8]) -> bool {
    mlic().decode_latents(data, MAX_PIXELS).is_ok()
}

/// See [`TARGETS`].
pub fn vision_request(data: &[u8]) -> bool {
    let Ok(request) = vision::PruneTokensRequest::decode(data) else {
        return false;
    };
    terse_vision_service::prune(
        request,
        terse_vision_service::VisionLimits {
            max_elements: MAX_ELEMENTS,
            max_pairwise_tokens: 4096,
        },
    )
    .is_ok()
}

/// Keep-probabilities for a plan's inputs, derived from the input bytes (the classifier's
/// output is a float per token in [0, 1]; any such values must be handled).
fn probabilities(inputs: &[&[u32]], data: &[u8]) -> Vec<Vec<f32>> {
    let mut state = data
        .iter()
        .fold(0x9e37_79b9_u32, |h, &b| h.rotate_left(5) ^ u32::from(b));
    inputs
        .iter()
        .map(|ids| {
            ids.iter()
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    (state % 1001) as f32 / 1000.0
                })
                .collect()
        })
        .collect()
}

/// See [`TARGETS`].
pub fn prompt_request(data: &[u8]) -> bool {
    let Ok(request) = context::CompressPromptRequest::decode(data) else {
        return false;
    };
    let Ok(options) = terse_context_service::prompt_options(request.options) else {
        return false;
    };
    let lingua = lingua();
    let Ok(plan) = lingua.plan(&request.context, &options) else {
        return false;
    };
    let probs = probabilities(&plan.inputs(), data);
    lingua.finish(&plan, &probs).is_ok()
}

fn container_seeds() -> Vec<Vec<u8>> {
    let mut seeds = walloc_image_seeds();
    seeds.extend(splat_bitstream_seeds());
    seeds
}

fn entropy_seeds() -> Vec<Vec<u8>> {
    use terse_entropy::IndexedCdfTable;
    let table = IndexedCdfTable::from_pmfs(
        &[vec![0.25, 0.5, 0.25], vec![0.9, 0.1]],
        &[1e-3, 1e-2],
        &[-1, 0],
    )
    .expect("valid table");
    let indexes: Vec<u32> = (0..128).map(|i| i % 2).collect();
    let symbols: Vec<i32> = (0..128)
        .map(|i| if i % 2 == 0 { (i / 2) % 3 - 1 } else { 0 })
        .collect();
    vec![
        table
            .encode_with_indexes(&symbols, &indexes)
            .expect("encode"),
    ]
}

fn small_scene() -> terse_splat::SplatScene {
    terse_splat::synth::surface_scene(64, 1, 7)
}

fn ply_seeds() -> Vec<Vec<u8>> {
    vec![
        terse_splat::ply::write_ply(&small_scene()),
        terse_splat::ply::write_ply(&terse_splat::synth::surface_scene(16, 3, 1)),
    ]
}

fn spz_seeds() -> Vec<Vec<u8>> {
    vec![
        fixture("splats/yashica_1024_sh3.reference_v3.spz"),
        fixture("splats/yashica_1024_sh3.reference_v4.spz"),
    ]
}

fn splat_bitstream_seeds() -> Vec<Vec<u8>> {
    let options = terse_splat::CodecOptions::default();
    vec![
        terse_splat::codec::encode(&small_scene(), &options, MAX_SPLATS)
            .expect("encode")
            .bitstream,
    ]
}

/// A small checkpoint of every coding path: BF16, F16 and F32 weights over several chunks of
/// 128 elements, integers, and metadata.
fn small_checkpoint() -> Vec<u8> {
    use safetensors::{Dtype, tensor::TensorView};
    let values: Vec<f32> = (0..300)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) * 1e-3)
        .collect();
    let bf16: Vec<u8> = values
        .iter()
        .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
        .collect();
    let f16: Vec<u8> = values[..100]
        .iter()
        .flat_map(|v| (((v.to_bits() >> 16) as u16) & 0x83ff | 0x1c00).to_le_bytes())
        .collect();
    let f32: Vec<u8> = values[..200].iter().flat_map(|v| v.to_le_bytes()).collect();
    let ids: Vec<u8> = (0..16i64).flat_map(|i| i.to_le_bytes()).collect();
    let views = vec![
        (
            "a.weight",
            TensorView::new(Dtype::BF16, vec![3, 100], &bf16).unwrap(),
        ),
        (
            "b.weight",
            TensorView::new(Dtype::F16, vec![100], &f16).unwrap(),
        ),
        (
            "c.weight",
            TensorView::new(Dtype::F32, vec![2, 100], &f32).unwrap(),
        ),
        ("ids", TensorView::new(Dtype::I64, vec![16], &ids).unwrap()),
    ];
    let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(metadata)).expect("serialize")
}

fn safetensors_seeds() -> Vec<Vec<u8>> {
    vec![small_checkpoint()]
}

fn tensor_bitstream_seeds() -> Vec<Vec<u8>> {
    let options = terse_tensor::EncodeOptions {
        chunk_elements: 128,
    };
    vec![
        terse_tensor::encode(&small_checkpoint(), options).expect("encode"),
        terse_tensor::encode(&wide_checkpoint(), Default::default()).expect("encode"),
    ]
}

/// A checkpoint whose chunks take the other codings: a BF16 tensor long enough for the
/// 64-lane ANS stream, and one dequantized from 16 levels per block of 32 (palette chunks).
fn wide_checkpoint() -> Vec<u8> {
    use safetensors::{Dtype, tensor::TensorView};
    let mut seed = 3u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as u32
    };
    let bf16 = |v: f32| ((v.to_bits() >> 16) as u16).to_le_bytes();
    let trained: Vec<u8> = (0..16_384)
        .flat_map(|_| {
            let sum: u32 = (0..4).map(|_| next() % 1000).sum();
            bf16((sum as f32 - 2000.0) * 1e-5)
        })
        .collect();
    let dequantized: Vec<u8> = (0..128)
        .flat_map(|_| {
            let (scale, min) = (
                (next() % 1000) as f32 * 1e-5,
                -((next() % 1000) as f32) * 1e-4,
            );
            (0..32)
                .flat_map(|_| bf16(min + scale * (next() % 16) as f32))
                .collect::<Vec<u8>>()
        })
        .collect();
    let views = vec![
        (
            "trained.weight",
            TensorView::new(Dtype::BF16, vec![128, 128], &trained).unwrap(),
        ),
        (
            "dequantized.weight",
            TensorView::new(Dtype::BF16, vec![64, 64], &dequantized).unwrap(),
        ),
    ];
    safetensors::serialize(views, None).unwrap()
}

fn small_image() -> terse_walloc::RgbImage {
    terse_walloc::RgbImage::from_fn(40, 24, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 10) as u8, ((x + y) * 3) as u8])
    })
}

fn image_seeds() -> Vec<Vec<u8>> {
    let mut seeds = vec![fixture("images/coffee_131x97.png")];
    for format in [
        terse_walloc::ImageFormat::Png,
        terse_walloc::ImageFormat::WebP,
    ] {
        seeds.push(terse_walloc::encode_image_file(&small_image(), format).expect("encode"));
    }
    seeds
}

fn audio_seeds() -> Vec<Vec<u8>> {
    let wav = fixture("audio/speech_16k_mono_3s.wav");
    vec![
        wav[..wav.len().min(8192)].to_vec(),
        fixture("audio/through_space_6s.ogg"),
    ]
}

fn walloc_image_seeds() -> Vec<Vec<u8>> {
    vec![walloc_image().encode(&small_image()).expect("encode").0]
}

fn tiled_image_seeds() -> Vec<Vec<u8>> {
    // 3 x 2 tiles of at most 64², and an image of one tile (the inner codec's own bitstream).
    [(150, 70), (40, 24)]
        .into_iter()
        .map(|(width, height)| {
            let image =
                std::sync::Arc::new(terse_walloc::RgbImage::from_fn(width, height, |x, y| {
                    image::Rgb([(x * 3) as u8, (y * 5) as u8, ((x + y) * 2) as u8])
                }));
            let call = terse_codec::EncodeCall::new(image, Default::default(), &terse_core::Inline);
            terse_core::block_on(tiled_image().encode(call))
                .expect("encode")
                .bitstream
        })
        .collect()
}

fn walloc_audio_seeds() -> Vec<Vec<u8>> {
    let codec = walloc_audio();
    let rate = codec
        .weights()
        .sample_rate
        .expect("audio models have a rate");
    let samples = ndarray::Array2::from_shape_fn((2, 4096), |(c, i)| {
        (i as f32 * 0.01 * (c + 1) as f32).sin() * 0.5
    });
    vec![codec.encode(samples.view(), rate, 0).expect("encode").0]
}

fn mlic_seeds() -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(workspace().join("codecs/mlic/tests/fixtures/mlic-q4.json"))
        .expect("mlic fixture");
    let fixture: serde_json::Value = serde_json::from_str(&text).expect("json");
    let array = |values: &str, shape: &str| {
        let shape: Vec<usize> = fixture[shape]
            .as_array()
            .expect("shape")
            .iter()
            .map(|v| v.as_u64().expect("dim") as usize)
            .collect();
        let values: Vec<f32> = fixture[values]
            .as_array()
            .expect("values")
            .iter()
            .map(|v| v.as_f64().expect("value") as f32)
            .collect();
        let mut full = vec![1];
        full.extend(shape);
        ndarray::ArrayD::from_shape_vec(full, values).expect("shape matches")
    };
    let y = array("y", "y_shape");
    let z = array("z_hat", "z_shape");
    let (h, w) = (y.shape()[2] as u32 * 16, y.shape()[3] as u32 * 16);
    vec![
        mlic()
            .encode_latents(w, h, vec![y, z])
            .expect("encode")
            .bitstream,
    ]
}

fn vision_seeds() -> Vec<Vec<u8>> {
    use terse_proto::common::v1::{DataType, Tensor};
    let tensor = |shape: Vec<i64>| {
        let n: i64 = shape.iter().product();
        Tensor {
            name: String::new(),
            datatype: DataType::Fp32.into(),
            raw_contents: (0..n)
                .flat_map(|i| ((i % 17) as f32 / 17.0).to_le_bytes())
                .collect(),
            shape,
        }
    };
    [
        vision::PruneMethod::Fastervlm,
        vision::PruneMethod::Visionzip,
        vision::PruneMethod::Prumerge,
        vision::PruneMethod::Divprune,
        vision::PruneMethod::Tome,
        vision::PruneMethod::Idpruner,
    ]
    .into_iter()
    .map(|method| {
        vision::PruneTokensRequest {
            tokens: Some(tensor(vec![16, 8])),
            cls_attention: Some(tensor(vec![2, 16])),
            method: method.into(),
            keep: Some(vision::Keep {
                budget: Some(vision::keep::Budget::Count(10)),
            }),
            ..Default::default()
        }
        .encode_to_vec()
    })
    .collect()
}

fn prompt_seeds() -> Vec<Vec<u8>> {
    let text = "The Normans were the people who in the 10th and 11th centuries gave their name \
                to Normandy, a region in France. They were descended from Norse raiders.";
    vec![
        context::CompressPromptRequest {
            context: vec![text.into()],
            options: Some(context::PromptOptions {
                rate: Some(0.5),
                force_tokens: vec!["\n".into(), ".".into()],
                force_reserve_digit: true,
                drop_consecutive: true,
                ..Default::default()
            }),
            model: None,
            perplexity: None,
        }
        .encode_to_vec(),
        context::CompressPromptRequest {
            context: vec![text.into(), "A second context, 1234.".into()],
            options: Some(context::PromptOptions {
                target_token: Some(20),
                use_context_level_filter: true,
                return_word_label: true,
                ..Default::default()
            }),
            model: None,
            perplexity: None,
        }
        .encode_to_vec(),
    ]
}

/// 64-bit words that break arithmetic: zero, one, signed and unsigned extremes, powers of two
/// at word boundaries, and floats that are not numbers, infinite, huge or tiny.
pub const EXTREME_WORDS: &[u64] = &[
    0,
    1,
    2,
    3,
    u64::MAX,
    i64::MAX as u64,
    i64::MIN as u64, // also -0.0
    u32::MAX as u64,
    1 << 31,
    1 << 32,
    1 << 53,
    (-1i64) as u64,
    (-2i64) as u64,
    f64::NAN.to_bits(),
    f64::INFINITY.to_bits(),
    f64::NEG_INFINITY.to_bits(),
    f64::MAX.to_bits(),
    f64::MIN_POSITIVE.to_bits(),
    1e-300f64.to_bits(),
    (-1.0f64).to_bits(),
    1e18f64.to_bits(),
];

/// One edit of a container's structure, applied under fresh checksums by [`restructure`]: byte
/// edits of a container almost always stop at a CRC, so these reach the header fields and
/// section payloads the decoders read after the checks. Indices wrap around what the container
/// has.
#[derive(Debug, Clone)]
pub enum StructuredEdit {
    /// An 8-byte word of a header field set (the field grows to hold it).
    Word {
        /// Which field.
        field: usize,
        /// Which word of it.
        word: usize,
        /// Its new little-endian value.
        value: u64,
    },
    /// A header field cut short.
    Cut {
        /// Which field.
        field: usize,
        /// Its new length (modulo its length + 1).
        len: usize,
    },
    /// A header field dropped.
    Drop {
        /// Which field.
        field: usize,
    },
    /// A byte of a section payload xored.
    Flip {
        /// Which section.
        section: usize,
        /// Which byte of it.
        at: usize,
        /// The bits flipped.
        mask: u8,
    },
    /// A section payload cut short.
    CutSection {
        /// Which section.
        section: usize,
        /// Its new length (modulo its length + 1).
        len: usize,
    },
}

/// `seed` (a container) rewritten with `edits`, its checksums recomputed.
pub fn restructure(seed: &Container, edits: &[StructuredEdit]) -> Option<Vec<u8>> {
    let mut fields: Vec<(String, Vec<u8>)> = seed
        .fields()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect();
    let mut sections: Vec<([u8; 4], Vec<u8>)> =
        seed.sections().map(|(t, p)| (t, p.to_vec())).collect();
    for edit in edits {
        match *edit {
            StructuredEdit::Word { field, word, value } if !fields.is_empty() => {
                let count = fields.len();
                let bytes = &mut fields[field % count].1;
                let words = bytes.len().div_ceil(8).max(1);
                let start = (word % words) * 8;
                bytes.resize(bytes.len().max(start + 8), 0);
                bytes[start..start + 8].copy_from_slice(&value.to_le_bytes());
            }
            StructuredEdit::Cut { field, len } if !fields.is_empty() => {
                let count = fields.len();
                let bytes = &mut fields[field % count].1;
                bytes.truncate(len % (bytes.len() + 1));
            }
            StructuredEdit::Drop { field } if !fields.is_empty() => {
                fields.remove(field % fields.len());
            }
            StructuredEdit::Flip { section, at, mask } if !sections.is_empty() => {
                let count = sections.len();
                let payload = &mut sections[section % count].1;
                if !payload.is_empty() {
                    let at = at % payload.len();
                    payload[at] ^= mask;
                }
            }
            StructuredEdit::CutSection { section, len } if !sections.is_empty() => {
                let count = sections.len();
                let payload = &mut sections[section % count].1;
                payload.truncate(len % (payload.len() + 1));
            }
            _ => {}
        }
    }
    let mut out = Container::new(seed.codec);
    out.model = seed.model.clone();
    for (key, value) in fields {
        out.put_field(&key, value);
    }
    for (tag, payload) in sections {
        out.push_section(tag, payload);
    }
    out.to_bytes().ok()
}
