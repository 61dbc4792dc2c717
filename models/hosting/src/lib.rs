//! Codecs and context-compressor networks hosted from a model repository: the one place that
//! lists the implementations of [`terse_codec::Codec`] and the model tasks they come from.
//!
//! To add a codec: implement [`terse_codec::Codec`] in its crate under `codecs/`, and build it
//! here from the ready models of its task (add the task to [`IMAGE_TASKS`] or
//! [`AUDIO_TASKS`]). The services pick codecs from the registries this builds and never name
//! an implementation. The context service's networks ([`KeepClassifier`],
//! [`SentenceEncoder`]) come as [`Catalog`]s by name and version.

mod catalog;

use std::{path::Path, sync::Arc};

pub use catalog::{Catalog, Hosted};

use image::RgbImage;
use terse_audio_io::AudioClip;
use terse_causal_lm::{CausalLm, LmConfig};
use terse_codec::Codec;
use terse_codec::{CodecRegistry, DynCodec, ModelRef};
use terse_context::{KeepClassifier, SentenceEncoder};
use terse_core::Network;
use terse_entropy::ModelTag;
use terse_kvcache::{KvCacheCodec, ModelDims};
use terse_mlic::{MlicCodec, MlicImage};
use terse_runtime::{
    ManifestEntry, ModelRegistry, ModelSelection, ModelState, OnnxRuntime, SessionOptions,
};
use terse_splat::{CodecOptions as SplatOptions, SplatCodec, SplatScene};
use terse_tensor::{WeightCodec, file::EncodeOptions as WeightOptions};
use terse_tiles::Tiled;
use terse_walloc::{WallocAudio, WallocAudioCodec, WallocImage, WallocImageCodec};

/// Task of WaLLoC image decoders in manifests.
pub const WALLOC_IMAGE_TASK: &str = "walloc-image";
/// Task of WaLLoC audio decoders in manifests.
pub const WALLOC_AUDIO_TASK: &str = "walloc-audio";
/// Task of MLIC synthesis models (with the entropy model as assets).
pub const MLIC_TASK: &str = "mlic-image";
/// Task of MLIC analysis models.
pub const MLIC_ANALYSIS_TASK: &str = "mlic-analysis";

/// Task of keep/drop token classifiers (LLMLingua-2) in manifests.
pub const KEEP_CLASSIFIER_TASK: &str = "keep-classifier";
/// Task of sentence encoders (RECOMP) in manifests.
pub const SENTENCE_ENCODER_TASK: &str = "sentence-encoder";

/// Model tasks the context compressors' networks come from.
pub const CONTEXT_TASKS: &[&str] = &[KEEP_CLASSIFIER_TASK, SENTENCE_ENCODER_TASK, CAUSAL_LM_TASK];

/// Task of causal language models (with a KV cache) in manifests.
pub const CAUSAL_LM_TASK: &str = "causal-lm";

/// Model tasks the image codecs come from.
pub const IMAGE_TASKS: &[&str] = &[WALLOC_IMAGE_TASK, MLIC_TASK, MLIC_ANALYSIS_TASK];
/// Model tasks the audio codecs come from.
pub const AUDIO_TASKS: &[&str] = &[WALLOC_AUDIO_TASK];

/// The splat codecs (training-free, no model): the terse splat codec.
pub fn splat_codecs() -> CodecRegistry<SplatScene, SplatOptions> {
    let mut codecs = CodecRegistry::new("splat");
    codecs
        .register(Arc::new(SplatCodec::new()))
        .expect("one codec has a free name");
    codecs
}

/// The KV-cache codecs: one per causal LM of the repository, loaded or not (coding a cache
/// needs the model's dimensions and identity, not its weights), newest version of each name.
/// A model whose `config` asset cannot be read is left out with a warning.
pub fn kv_codecs(registry: &ModelRegistry) -> Vec<Arc<KvCacheCodec>> {
    let mut codecs: Vec<Arc<KvCacheCodec>> = Vec::new();
    // Newest version first: it takes the model's name.
    for item in registry.entries().iter().rev() {
        let entry = &item.entry;
        if entry.manifest.task != CAUSAL_LM_TASK {
            continue;
        }
        let codec = entry
            .read_asset("config")
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                serde_json::from_slice::<LmConfig>(&bytes).map_err(|e| format!("config: {e}"))
            })
            .and_then(|config| {
                let dims = ModelDims {
                    layers: config.layers,
                    kv_heads: config.kv_heads,
                    head_dim: config.head_dim,
                    context_length: config.context_length,
                };
                let m = &entry.manifest;
                KvCacheCodec::new(&m.name, &m.version, &m.sha256, dims).map_err(|e| e.message)
            });
        match codec {
            Ok(codec) => {
                if codecs.iter().all(|c| c.info().name != codec.info().name) {
                    codecs.push(Arc::new(codec));
                }
            }
            Err(error) => {
                tracing::warn!(model = %entry.id(), %error, "KV codec not hosted");
            }
        }
    }
    codecs
}

/// The weight codecs (lossless, no model): the terse safetensors codec. Its media is a
/// safetensors file's bytes.
pub fn tensor_codecs() -> CodecRegistry<Vec<u8>, WeightOptions> {
    let mut codecs = CodecRegistry::new("tensor");
    codecs
        .register(Arc::new(WeightCodec::new()))
        .expect("one codec has a free name");
    codecs
}

/// A keep/drop classifier from a model entry's `config` and `tokenizer` assets.
pub fn keep_classifier(
    entry: &ManifestEntry,
    network: Arc<dyn Network>,
) -> Result<KeepClassifier, String> {
    let (config, tokenizer) = config_and_tokenizer(entry)?;
    KeepClassifier::new(&config, &tokenizer, network)
}

/// A sentence encoder from a model entry's `config` and `tokenizer` assets.
pub fn sentence_encoder(
    entry: &ManifestEntry,
    network: Arc<dyn Network>,
) -> Result<SentenceEncoder, String> {
    let (config, tokenizer) = config_and_tokenizer(entry)?;
    SentenceEncoder::new(&config, &tokenizer, network)
}

fn config_and_tokenizer(entry: &ManifestEntry) -> Result<(Vec<u8>, Vec<u8>), String> {
    let read = |name: &str| {
        entry
            .read_asset(name)
            .map_err(|e| format!("asset `{name}`: {e}"))
    };
    Ok((read("config")?, read("tokenizer")?))
}

/// Every ready model of `task` built by `build`, as a catalog.
fn catalog<T>(
    registry: &ModelRegistry,
    task: &'static str,
    build: impl Fn(&ManifestEntry, Arc<dyn Network>) -> Result<T, String>,
) -> Result<Catalog<T>, String> {
    let mut hosted = Vec::new();
    for model in ready(registry, task) {
        let entry = model.entry;
        let item = build(entry, model.network).map_err(|e| format!("model {}: {e}", entry.id()))?;
        hosted.push(Hosted {
            item: Arc::new(item),
            name: entry.manifest.name.clone(),
            version: entry.manifest.version.clone(),
            description: entry.manifest.description.clone(),
        });
    }
    Ok(Catalog::new(task, hosted))
}

/// Every ready keep/drop classifier.
pub fn keep_classifiers(registry: &ModelRegistry) -> Result<Catalog<KeepClassifier>, String> {
    catalog(registry, KEEP_CLASSIFIER_TASK, keep_classifier)
}

/// Every ready sentence encoder.
pub fn sentence_encoders(registry: &ModelRegistry) -> Result<Catalog<SentenceEncoder>, String> {
    catalog(registry, SENTENCE_ENCODER_TASK, sentence_encoder)
}

/// Every ready causal LM (LLMLingua-1, LongLLMLingua).
pub fn causal_lms(registry: &ModelRegistry) -> Result<Catalog<CausalLm>, String> {
    catalog(registry, CAUSAL_LM_TASK, causal_lm)
}

/// A causal LM from a model entry's `tokenizer` and `config` assets.
fn causal_lm(entry: &ManifestEntry, network: Arc<dyn Network>) -> Result<CausalLm, String> {
    let tokenizer = entry.read_asset("tokenizer").map_err(|e| e.to_string())?;
    let config = entry.read_asset("config").map_err(|e| e.to_string())?;
    CausalLm::new(network, &tokenizer, &config).map_err(|e| e.message)
}

/// Loads the causal LM `name` (its newest version) from the repository at `repository` through
/// ONNX Runtime — the library at `$ORT_DYLIB_PATH`, else the one `scripts/setup` installs under
/// `workspace` — with one session: for tools, benches and tests (the server builds its models
/// from its configuration instead).
pub fn load_causal_lm(workspace: &Path, repository: &Path, name: &str) -> Result<CausalLm, String> {
    let library =
        terse_runtime::resolve_library_path_under(workspace).map_err(|e| e.to_string())?;
    let runtime = terse_runtime::OnnxRuntime::load(&library).map_err(|e| e.to_string())?;
    let selection = terse_runtime::ModelSelection {
        load: vec![name.to_string()],
        strict: true,
        tasks: None,
    };
    let options = terse_runtime::SessionOptions {
        pool_size: 1,
        intra_op_threads: 0,
        ..terse_runtime::SessionOptions::default()
    };
    let registry = ModelRegistry::load(&runtime, repository, &selection, &options, None)
        .map_err(|e| e.to_string())?;
    let model = registry.get(name, "").map_err(|e| e.to_string())?;
    let entry = model.entry().clone();
    causal_lm(&entry, model)
}

/// An asset of a model entry: `Ok(None)` when the manifest lists none by that name.
pub fn read_asset(entry: &ManifestEntry, name: &str) -> Result<Option<Vec<u8>>, String> {
    if !entry.manifest.assets.iter().any(|a| a.name == name) {
        return Ok(None);
    }
    entry.read_asset(name).map(Some).map_err(|e| e.to_string())
}

/// A ready model of the registry with its manifest entry.
struct Ready<'a> {
    entry: &'a ManifestEntry,
    network: Arc<dyn Network>,
}

/// Every ready model of `task`.
fn ready<'a>(registry: &'a ModelRegistry, task: &str) -> Vec<Ready<'a>> {
    registry
        .entries()
        .iter()
        .filter(|e| e.entry.manifest.task == task)
        .filter_map(|e| match &e.state {
            ModelState::Ready(model) => Some(Ready {
                entry: &e.entry,
                network: Arc::clone(model) as Arc<dyn Network>,
            }),
            _ => None,
        })
        .collect()
}

fn tag(entry: &ManifestEntry) -> Result<ModelTag, String> {
    ModelTag::from_sha256_hex(&entry.manifest.name, &entry.manifest.sha256)
        .map_err(|e| format!("model {}: {e}", entry.id()))
}

/// Most pixels of a WaLLoC image coded whole, and of one of its tiles (`terse_tiles`): its
/// server is idle a second after a deadline at 4 Mpx tiles, its decode takes about 0.9 GB,
/// and every seam costs bits and PSNR (docs/images.md), so photos up to 4 Mpx are coded whole.
pub const WALLOC_TILE_PIXELS: u64 = 4 << 20;

/// Most pixels of an MLIC image coded whole, and of one of its tiles: about 1.1 KB per pixel
/// to decode (1.15 GB), and a server idle a second after a deadline (at 2 Mpx tiles it still
/// used 1.2 CPU-seconds from 1 s after).
pub const MLIC_TILE_PIXELS: u64 = 1 << 20;

/// The WaLLoC image codecs (strongest dimension reduction first), then every MLIC rate
/// point by name, each coding images over its tile bound in tiles (`terse_tiles`). The first
/// is the default.
pub fn image_codecs(registry: &ModelRegistry) -> Result<CodecRegistry<RgbImage>, String> {
    let mut codecs = CodecRegistry::new("image");
    let walloc = walloc_image_codecs(registry)?
        .into_iter()
        .map(|c| Arc::new(c) as Arc<DynCodec<RgbImage>>);
    let mlic = mlic_codecs(registry)?
        .into_iter()
        .map(|c| Arc::new(c) as Arc<DynCodec<RgbImage>>);
    for codec in walloc.chain(mlic) {
        let bound = tile_pixels(codec.as_ref());
        let tiled = Tiled::with_max_pixels(codec, bound);
        codecs.register(Arc::new(tiled)).map_err(|e| e.message)?;
    }
    Ok(codecs)
}

/// The tile bound of an image codec by its family: [`MLIC_TILE_PIXELS`] or
/// [`WALLOC_TILE_PIXELS`].
pub fn tile_pixels(codec: &DynCodec<RgbImage>) -> u64 {
    match codec.info().family {
        "mlic" => MLIC_TILE_PIXELS,
        _ => WALLOC_TILE_PIXELS,
    }
}

/// Every ready `walloc-image` model as a codec, strongest dimension reduction first.
pub fn walloc_image_codecs(registry: &ModelRegistry) -> Result<Vec<WallocImage>, String> {
    let mut walloc = Vec::new();
    for model in ready(registry, WALLOC_IMAGE_TASK) {
        let entry = model.entry;
        let codec = WallocImageCodec::from_assets(|name| read_asset(entry, name), tag(entry)?)
            .map_err(|e| format!("model {}: {e}", entry.id()))?;
        let manifest = &entry.manifest;
        walloc.push(WallocImage::new(
            codec,
            model.network,
            &manifest.version,
            &manifest.description,
        ));
    }
    walloc.sort_by_key(|c| {
        (
            c.codec().weights().latent_dim,
            c.codec().model().name.clone(),
        )
    });
    Ok(walloc)
}

/// Every rate point of every ready `mlic-image` model with its `<name>-analysis` model, by
/// codec name.
pub fn mlic_codecs(registry: &ModelRegistry) -> Result<Vec<MlicImage>, String> {
    let mut hosted = Vec::new();
    for synthesis in ready(registry, MLIC_TASK) {
        let entry = synthesis.entry;
        let manifest = &entry.manifest;
        let analysis_name = format!("{}-analysis", manifest.name);
        let analysis = registry
            .get(&analysis_name, &manifest.version)
            .map_err(|e| format!("model {} needs {analysis_name}: {e}", entry.id()))?;
        if analysis.entry().manifest.task != MLIC_ANALYSIS_TASK {
            return Err(format!(
                "{analysis_name} is not an `{MLIC_ANALYSIS_TASK}` model"
            ));
        }
        let analysis: Arc<dyn Network> = analysis;
        let asset = |name: &str| {
            read_asset(entry, name)?
                .ok_or_else(|| format!("model {} has no `{name}` asset", entry.id()))
        };
        let codecs = MlicCodec::from_package(
            &asset("entropy")?,
            &asset("entropy-weights")?,
            &asset("prior")?,
            &manifest.name,
            &manifest.sha256,
        )
        .map_err(|e| format!("model {}: {e}", entry.id()))?;
        let model = ModelRef {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
        };
        hosted.extend(codecs.into_iter().map(|codec| {
            MlicImage::new(
                codec,
                Arc::clone(&analysis),
                Arc::clone(&synthesis.network),
                model.clone(),
                &manifest.description,
            )
        }));
    }
    hosted.sort_by(|a, b| a.codec().model().name.cmp(&b.codec().model().name));
    Ok(hosted)
}

/// The WaLLoC audio codecs (strongest dimension reduction first; the first is the default).
pub fn audio_codecs(registry: &ModelRegistry) -> Result<CodecRegistry<AudioClip>, String> {
    let mut codecs = CodecRegistry::new("audio");
    for codec in walloc_audio_codecs(registry)? {
        codecs.register(Arc::new(codec)).map_err(|e| e.message)?;
    }
    Ok(codecs)
}

/// Every ready `walloc-audio` model as a codec, strongest dimension reduction first.
pub fn walloc_audio_codecs(registry: &ModelRegistry) -> Result<Vec<WallocAudio>, String> {
    let mut hosted = Vec::new();
    for model in ready(registry, WALLOC_AUDIO_TASK) {
        let entry = model.entry;
        let codec = WallocAudioCodec::from_assets(|name| read_asset(entry, name), tag(entry)?)
            .map_err(|e| format!("model {}: {e}", entry.id()))?;
        hosted.push(WallocAudio::new(
            codec,
            model.network,
            &entry.manifest.version,
            &entry.manifest.description,
        ));
    }
    hosted.sort_by_key(|c| {
        (
            c.codec().weights().latent_dim,
            c.codec().model().name.clone(),
        )
    });
    Ok(hosted)
}

/// Loads ONNX Runtime (as `scripts/setup` installs it) and every model of a repository
/// directory with `options`: for tools and tests that run the shipped models without a
/// server. One ONNX Runtime environment serves the whole process.
pub fn load_repository(
    repository: &Path,
    options: &SessionOptions,
) -> Result<ModelRegistry, String> {
    static RUNTIME: std::sync::OnceLock<Result<OnnxRuntime, String>> = std::sync::OnceLock::new();
    let runtime = RUNTIME
        .get_or_init(|| {
            let library = terse_runtime::resolve_library_path(None).map_err(|e| e.to_string())?;
            OnnxRuntime::load(&library).map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)?;
    ModelRegistry::load(
        runtime,
        repository,
        &ModelSelection::default(),
        options,
        None,
    )
    .map_err(|e| e.to_string())
}
