//! Hosting of WaLLoC codecs for the image and audio services (and for the tools and tests that
//! run the shipped models): a codec per ready model of its task in the registry, its decoder
//! network run through the model runtime, and the gRPC status of every codec error.

use std::{path::Path, sync::Arc};

use ndarray::ArrayD;
use terse_entropy::{Container, ModelTag};
use terse_runtime::{
    LoadedModel, ManifestEntry, ModelRegistry, ModelSelection, ModelState, OnnxRuntime,
    SessionOptions,
};
use terse_service_common::{echo, infer_status};
use terse_walloc::{BandDecoder, EncoderWeights, WallocAudioCodec, WallocError, WallocImageCodec};
use tonic::Status;

/// A WaLLoC codec type the host can build from a model's assets.
pub trait WallocModel: Sized + Send + Sync + 'static {
    /// Task name of its models in manifests.
    const TASK: &'static str;
    /// Builds the codec from assets fetched by name.
    fn from_assets(
        read: impl Fn(&str) -> Result<Option<Vec<u8>>, String>,
        tag: ModelTag,
    ) -> Result<Self, WallocError>;
    /// Model identity recorded in bitstreams.
    fn tag(&self) -> &ModelTag;
    /// The encoder weights.
    fn encoder(&self) -> &EncoderWeights;
}

impl WallocModel for WallocImageCodec {
    const TASK: &'static str = "walloc-image";
    fn from_assets(
        read: impl Fn(&str) -> Result<Option<Vec<u8>>, String>,
        tag: ModelTag,
    ) -> Result<Self, WallocError> {
        WallocImageCodec::from_assets(read, tag)
    }
    fn tag(&self) -> &ModelTag {
        self.model()
    }
    fn encoder(&self) -> &EncoderWeights {
        self.weights()
    }
}

impl WallocModel for WallocAudioCodec {
    const TASK: &'static str = "walloc-audio";
    fn from_assets(
        read: impl Fn(&str) -> Result<Option<Vec<u8>>, String>,
        tag: ModelTag,
    ) -> Result<Self, WallocError> {
        WallocAudioCodec::from_assets(read, tag)
    }
    fn tag(&self) -> &ModelTag {
        self.model()
    }
    fn encoder(&self) -> &EncoderWeights {
        self.weights()
    }
}

/// A codec the server hosts: its Rust side and its decoder network.
pub struct Hosted<C> {
    /// The codec.
    pub codec: Arc<C>,
    /// Its decoder network.
    pub decoder: Arc<LoadedModel>,
    /// Model version from the manifest.
    pub version: String,
    /// Model description from the manifest.
    pub description: String,
}

/// An asset of a model entry: `Ok(None)` when the manifest lists none by that name.
pub fn read_asset(entry: &ManifestEntry, name: &str) -> Result<Option<Vec<u8>>, String> {
    if !entry.manifest.assets.iter().any(|a| a.name == name) {
        return Ok(None);
    }
    entry.read_asset(name).map(Some).map_err(|e| e.to_string())
}

/// Every ready model of `C`'s task in the registry, strongest dimension reduction first.
pub fn host_all<C: WallocModel>(registry: &ModelRegistry) -> Result<Vec<Hosted<C>>, String> {
    let mut hosted = Vec::new();
    for entry in registry.entries() {
        let manifest = &entry.entry.manifest;
        if manifest.task != C::TASK {
            continue;
        }
        let ModelState::Ready(model) = &entry.state else {
            continue;
        };
        let tag = ModelTag::from_sha256_hex(&manifest.name, &manifest.sha256)
            .map_err(|e| e.to_string())?;
        let codec = C::from_assets(|name| read_asset(&entry.entry, name), tag)
            .map_err(|e| format!("model {}: {e}", entry.entry.id()))?;
        hosted.push(Hosted {
            codec: Arc::new(codec),
            decoder: Arc::clone(model),
            version: manifest.version.clone(),
            description: manifest.description.clone(),
        });
    }
    hosted.sort_by_key(|h| (h.codec.encoder().latent_dim, h.codec.tag().name.clone()));
    Ok(hosted)
}

/// Loads ONNX Runtime (as `scripts/setup` installs it) and every model of `C`'s task in a model
/// repository directory: for tools and tests that run the shipped models without a server.
pub fn host_repository<C: WallocModel>(repository: &Path) -> Result<Vec<Hosted<C>>, String> {
    let library = terse_runtime::resolve_library_path(None).map_err(|e| e.to_string())?;
    let ort = OnnxRuntime::load(&library).map_err(|e| e.to_string())?;
    let registry = ModelRegistry::load(
        &ort,
        repository,
        &ModelSelection::default(),
        &SessionOptions::default(),
        None,
    )
    .map_err(|e| e.to_string())?;
    host_all(&registry)
}

/// The hosted codec called `name` (empty: the first).
pub fn pick<'a, C: WallocModel>(
    hosted: &'a [Hosted<C>],
    name: &str,
) -> Result<&'a Hosted<C>, Status> {
    let Some(first) = hosted.first() else {
        return Err(Status::failed_precondition(format!(
            "no codec is loaded (no `{}` model in the repository)",
            C::TASK
        )));
    };
    if name.is_empty() {
        return Ok(first);
    }
    hosted
        .iter()
        .find(|h| h.codec.tag().name == name)
        .ok_or_else(|| {
            Status::not_found(format!(
                "codec `{}` is not hosted (available: {})",
                echo(name),
                names(hosted).join(", ")
            ))
        })
}

/// Names of the hosted codecs.
pub fn names<C: WallocModel>(hosted: &[Hosted<C>]) -> Vec<String> {
    hosted.iter().map(|h| h.codec.tag().name.clone()).collect()
}

/// The hosted codec a bitstream was coded with: `NOT_FOUND` when the server does not host that
/// model, `FAILED_PRECONDITION` when it hosts another build of it.
pub fn codec_for_bitstream<'a, C: WallocModel>(
    hosted: &'a [Hosted<C>],
    bitstream: &[u8],
) -> Result<&'a Hosted<C>, Status> {
    find_by_tag(hosted, |h| h.codec.tag(), bitstream)
}

/// The entry of `hosted` whose model (`tag_of`) a bitstream's container names, with the same
/// statuses as [`codec_for_bitstream`], for any kind of hosted codec.
pub fn find_by_tag<'a, T>(
    hosted: &'a [T],
    tag_of: impl Fn(&T) -> &ModelTag,
    bitstream: &[u8],
) -> Result<&'a T, Status> {
    let container = Container::parse(bitstream)
        .map_err(|e| Status::invalid_argument(format!("bitstream: {e}")))?;
    let model = container
        .model
        .ok_or_else(|| Status::invalid_argument("bitstream names no model"))?;
    let found = hosted
        .iter()
        .find(|h| tag_of(h).name == model.name)
        .ok_or_else(|| {
            Status::not_found(format!(
                "bitstream needs codec `{}`, which this server does not host",
                model.name
            ))
        })?;
    if *tag_of(found) != model {
        return Err(Status::failed_precondition(format!(
            "bitstream was coded with another build of `{}` (decoder sha256 prefix {}); this server has {}",
            model.name,
            hex::encode(model.sha256_prefix),
            hex::encode(tag_of(found).sha256_prefix)
        )));
    }
    Ok(found)
}

/// The integer latents `[L, h, w]` as an INT32 tensor on the model's full-precision scale
/// (values of a coarser grid multiplied back by `2^shift`).
pub fn latent_tensor(values: &ndarray::Array3<i32>, shift: u32) -> terse_proto::common::v1::Tensor {
    let (l, h, w) = values.dim();
    terse_proto::common::v1::Tensor {
        name: "latents".into(),
        datatype: terse_proto::common::v1::DataType::Int32 as i32,
        shape: vec![l as i64, h as i64, w as i64],
        raw_contents: values
            .iter()
            .flat_map(|v| (v << shift).to_le_bytes())
            .collect(),
    }
}

/// gRPC status of a codec error.
pub fn walloc_status(e: WallocError) -> Status {
    match e {
        WallocError::Invalid(m) => Status::invalid_argument(m),
        WallocError::TooLarge(m) => Status::resource_exhausted(m),
        WallocError::Entropy(e) => Status::invalid_argument(format!("bitstream: {e}")),
        WallocError::Model(m) | WallocError::Decoder(m) => Status::internal(m),
    }
}

/// Runs a decoder network on normal-domain latents (a batch of one) and returns the bands of
/// that one item.
pub async fn decode_bands(
    decoder: &LoadedModel,
    normal: ArrayD<f32>,
) -> Result<ArrayD<f32>, Status> {
    let bands = decoder
        .infer_f32_array("normal_latent", normal.view())
        .await
        .map_err(infer_status)?;
    if bands.shape().first() != Some(&1) || bands.ndim() != normal.ndim() {
        return Err(Status::internal(format!(
            "decoder output shape {:?} for input {:?}",
            bands.shape(),
            normal.shape()
        )));
    }
    Ok(bands.index_axis_move(ndarray::Axis(0), 0))
}

/// A decoder network run synchronously (on its own single-thread async runtime): the
/// [`BandDecoder`] for tools and tests.
pub struct BlockingDecoder {
    model: Arc<LoadedModel>,
    runtime: tokio::runtime::Runtime,
}

impl BlockingDecoder {
    /// Wraps a loaded decoder network.
    pub fn new(model: Arc<LoadedModel>) -> std::io::Result<Self> {
        Ok(Self {
            model,
            runtime: tokio::runtime::Builder::new_current_thread().build()?,
        })
    }
}

impl BandDecoder for BlockingDecoder {
    fn decode(&self, normal: ArrayD<f32>) -> Result<ArrayD<f32>, String> {
        self.runtime
            .block_on(self.model.infer_f32_array("normal_latent", normal.view()))
            .map_err(|e| e.to_string())
    }
}
