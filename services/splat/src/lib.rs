//! gRPC transport of `compress.splat.v1.SplatService` over `terse-splat`.
//!
//! Only request handling, limits and status mapping live here; formats and coding are in
//! `terse-splat`. Coding runs on the blocking pool so it never stalls the async runtime.

use std::pin::Pin;

use terse_entropy::Container;
use terse_proto::{
    common::v1 as common,
    splat::v1::{self as api, splat_service_server},
};
use terse_service_common::{
    MemoryBudget, Reservation, collect_upload, download_chunks, run_blocking, status_of,
};
use terse_splat::{
    CodecOptions, Preset, SplatError, SplatScene, codec, metrics::attribute_errors, ply, spz,
    spz::SpzVersion,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

pub use splat_service_server::SplatServiceServer;

/// Limits of the splat service.
#[derive(Debug, Clone, Copy)]
pub struct SplatLimits {
    /// Most splats in a scene or bitstream.
    pub max_splats: u64,
    /// Most bytes of a scene or bitstream, also when streamed.
    pub max_scene_bytes: usize,
}

/// The service.
#[derive(Debug, Clone)]
pub struct SplatService {
    limits: SplatLimits,
    memory: MemoryBudget,
}

/// Peak working memory per splat in bytes: a base plus a part per SH coefficient (3 per
/// colour channel and degree), from `scripts/cost-model splat` (the rise of a fresh server's
/// peak RSS over one encode and decode of 50k and 200k SH3 splats: about 1,400 bytes each)
/// plus about 10 %.
mod cost {
    /// Per splat.
    pub const BASE: u64 = 440;
    /// Per SH coefficient of a splat.
    pub const PER_SH_COEFFICIENT: u64 = 24;
}

impl SplatService {
    /// A service enforcing `limits`; calls reserve their working memory from `memory`.
    pub fn new(limits: SplatLimits, memory: MemoryBudget) -> Self {
        Self { limits, memory }
    }

    /// Reserves the working memory of coding the scene or bitstream `data` declares (its
    /// header's splat count and SH degree), before the work.
    fn reserve(&self, data: &[u8], what: &str) -> Result<Reservation, Status> {
        let (splats, degree) = describe(data)
            .map(|info| (info.splat_count, info.sh_degree))
            .unwrap_or((0, 0));
        let coefficients = 3 * ((u64::from(degree) + 1).pow(2) - 1);
        let per_splat = cost::BASE + cost::PER_SH_COEFFICIENT * coefficients;
        self.memory.reserve(
            splats.saturating_mul(per_splat),
            &format!("{what} of {splats} splats (SH degree {degree})"),
        )
    }
}

impl SplatService {
    /// Checks the size of a bitstream and decodes it to a scene file on the blocking pool.
    async fn decode_file(
        &self,
        bitstream: Vec<u8>,
        output_format: i32,
        spz_version: u32,
    ) -> Result<(Vec<u8>, api::SplatFormat, SplatScene), Status> {
        check_size(bitstream.len(), &self.limits, "bitstream")?;
        terse_service_common::expect_codec_family(&bitstream, &[terse_entropy::CodecId::Splat])?;
        let _memory = self.reserve(&bitstream, "splat decode")?;
        let limits = self.limits;
        run_blocking(move || decode_to_file(&bitstream, output_format, spz_version, limits)).await
    }
}

/// The status of a codec error.
fn status_of_splat(error: SplatError) -> Status {
    status_of(&error)
}

fn check_size(len: usize, limits: &SplatLimits, what: &str) -> Result<(), Status> {
    terse_service_common::check_bytes(len, limits.max_scene_bytes, what)
}

/// Detects the format of `data`.
fn detect(data: &[u8]) -> Option<api::SplatFormat> {
    if ply::sniff(data) {
        Some(api::SplatFormat::Ply)
    } else if Container::sniff(data) {
        Some(api::SplatFormat::Terse)
    } else if spz::sniff(data) {
        Some(api::SplatFormat::Spz)
    } else {
        None
    }
}

/// Reads a PLY or SPZ scene, with warnings about what it carried that is not kept.
fn read_scene(
    data: &[u8],
    declared: i32,
    limits: &SplatLimits,
) -> Result<(SplatScene, Vec<String>), Status> {
    let declared = api::SplatFormat::try_from(declared)
        .map_err(|_| Status::invalid_argument(format!("unknown input_format {declared}")))?;
    let format = match declared {
        api::SplatFormat::Unspecified => detect(data).ok_or_else(|| {
            Status::invalid_argument(
                "unrecognized scene format: expected a PLY (`ply` header) or SPZ file",
            )
        })?,
        other => other,
    };
    match format {
        api::SplatFormat::Ply => {
            let (scene, report) =
                ply::read_ply(data, limits.max_splats).map_err(status_of_splat)?;
            let mut warnings = Vec::new();
            if !report.dropped_properties.is_empty() {
                warnings.push(format!(
                    "PLY properties not kept: {}",
                    report.dropped_properties.join(", ")
                ));
            }
            if report.nonzero_normals {
                warnings.push(
                    "PLY normals (nx ny nz) are not used by 3DGS and are not kept".to_string(),
                );
            }
            Ok((scene, warnings))
        }
        api::SplatFormat::Spz => {
            let (scene, _) = spz::read_spz(data, limits.max_splats).map_err(status_of_splat)?;
            Ok((scene, Vec::new()))
        }
        api::SplatFormat::Terse => Err(Status::invalid_argument(
            "input is already a terse bitstream: call Decode to restore a scene",
        )),
        api::SplatFormat::Unspecified => unreachable!("resolved above"),
    }
}

/// Preset values with the request's explicit knobs applied.
pub fn codec_options(options: &api::EncodeOptions) -> Result<CodecOptions, Status> {
    let preset = match api::Preset::try_from(options.preset) {
        Ok(api::Preset::High) => Preset::High,
        Ok(api::Preset::Small) => Preset::Small,
        Ok(api::Preset::Balanced | api::Preset::Unspecified) => Preset::Balanced,
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "unknown preset {}",
                options.preset
            )));
        }
    };
    let mut o = CodecOptions::preset(preset);
    if let Some(v) = options.position_bits {
        o.position_bits = v;
    }
    if let Some(v) = options.max_sh_degree {
        o.max_sh_degree = u8::try_from(v)
            .map_err(|_| Status::invalid_argument(format!("max_sh_degree {v} is above 3")))?;
    }
    if let Some(v) = options.rotation_bits {
        o.rotation_bits = v;
    }
    if let Some(v) = options.opacity_bits {
        o.opacity_bits = v;
    }
    if let Some(v) = options.scale_step {
        o.scale_step = v;
    }
    if let Some(v) = options.color_step {
        o.color_step = v;
    }
    if let Some(v) = options.sh_band1_step {
        o.sh_steps[0] = v;
    }
    if let Some(v) = options.sh_higher_step {
        o.sh_steps[1] = v;
        o.sh_steps[2] = v;
    }
    if let Some(v) = options.min_opacity {
        o.min_opacity = v;
    }
    if let Some(v) = options.sh_codebook {
        o.sh_codebook = v;
    }
    o.validate().map_err(status_of_splat)?;
    Ok(o)
}

/// Reads, encodes, decodes again and measures: the whole Encode call.
fn encode_scene(
    data: Vec<u8>,
    options: api::EncodeOptions,
    limits: SplatLimits,
) -> Result<api::EncodeResult, Status> {
    let (scene, mut warnings) = read_scene(&data, options.input_format, &limits)?;
    let codec_options = codec_options(&options)?;
    let encoded =
        codec::encode(&scene, &codec_options, limits.max_splats).map_err(status_of_splat)?;
    let decoded = codec::decode(&encoded.bitstream, limits.max_splats).map_err(status_of_splat)?;
    let mut reference = scene.retain_indices(&encoded.order);
    reference.truncate_sh(encoded.sh_degree);
    if encoded.sh_degree < scene.sh_degree {
        warnings.push(format!(
            "SH bands above degree {} dropped (max_sh_degree)",
            encoded.sh_degree
        ));
    }
    let bytes = encoded.bitstream.len() as u64;
    let splats = encoded.order.len() as u64;
    Ok(api::EncodeResult {
        splat_count: splats,
        sh_degree: u32::from(encoded.sh_degree),
        rate_distortion: Some(common::RateDistortion {
            compressed_bytes: bytes,
            original_bytes: data.len() as u64,
            bits_per_splat: (splats > 0).then(|| bytes as f64 * 8.0 / splats as f64),
            ..Default::default()
        }),
        attribute_errors: attribute_errors(&reference, &decoded)
            .into_iter()
            .map(|e| api::AttributeError {
                attribute: e.attribute.to_string(),
                rmse: e.rmse,
                max_abs_error: e.max_abs_error,
                psnr_db: e.psnr_db.filter(|p| p.is_finite()),
            })
            .collect(),
        source_splats: scene.len() as u64,
        pruned_splats: (scene.len() - encoded.order.len()) as u64,
        sections: encoded
            .section_bytes
            .iter()
            .map(|(tag, b)| api::Section {
                tag: tag.clone(),
                bytes: *b as u64,
            })
            .collect(),
        warnings,
        compression_ratio: data.len() as f64 / bytes as f64,
        bitstream: encoded.bitstream,
    })
}

/// Decodes a bitstream into a scene file of the requested format.
fn decode_to_file(
    bitstream: &[u8],
    format: i32,
    spz_version: u32,
    limits: SplatLimits,
) -> Result<(Vec<u8>, api::SplatFormat, SplatScene), Status> {
    let format = api::SplatFormat::try_from(format)
        .map_err(|_| Status::invalid_argument(format!("unknown output_format {format}")))?;
    let version = match spz_version {
        0 | 4 => SpzVersion::V4,
        3 => SpzVersion::V3,
        2 => SpzVersion::V2,
        v => {
            return Err(Status::invalid_argument(format!(
                "spz_version {v} is not 2, 3 or 4"
            )));
        }
    };
    if !Container::sniff(bitstream) {
        return Err(Status::invalid_argument(
            "bitstream does not start with the terse magic `TRSE`",
        ));
    }
    let scene = codec::decode(bitstream, limits.max_splats).map_err(status_of_splat)?;
    let (bytes, format) = match format {
        api::SplatFormat::Unspecified | api::SplatFormat::Ply => {
            (ply::write_ply(&scene), api::SplatFormat::Ply)
        }
        api::SplatFormat::Spz => (
            spz::write_spz(&scene, version).map_err(status_of_splat)?,
            api::SplatFormat::Spz,
        ),
        api::SplatFormat::Terse => {
            return Err(Status::invalid_argument("output_format must be PLY or SPZ"));
        }
    };
    Ok((bytes, format, scene))
}

/// Refuses a header that declares more splats than `limits` allow (issue 18, finding 16: Info
/// used to answer OK for 2^40).
fn within_limits(
    response: api::InfoResponse,
    limits: &SplatLimits,
) -> Result<api::InfoResponse, Status> {
    terse_splat::scene::check_splat_limit(response.splat_count, limits.max_splats)
        .map_err(status_of_splat)?;
    Ok(response)
}

fn info(data: &[u8], limits: &SplatLimits) -> Result<api::InfoResponse, Status> {
    within_limits(describe(data)?, limits)
}

fn describe(data: &[u8]) -> Result<api::InfoResponse, Status> {
    let sections = |s: Vec<(String, usize)>| {
        s.into_iter()
            .map(|(tag, b)| api::Section {
                tag,
                bytes: b as u64,
            })
            .collect()
    };
    match detect(data) {
        Some(api::SplatFormat::Terse) => {
            let info = codec::inspect(data).map_err(status_of_splat)?;
            Ok(api::InfoResponse {
                format: api::SplatFormat::Terse as i32,
                format_version: u32::from(terse_entropy::container::FORMAT_VERSION),
                splat_count: info.splats,
                sh_degree: u32::from(info.sh_degree),
                source_splats: info.source_splats,
                sections: sections(info.section_bytes),
            })
        }
        Some(api::SplatFormat::Ply) => {
            let (count, degree) = ply::ply_splat_count(data).map_err(status_of_splat)?;
            Ok(api::InfoResponse {
                format: api::SplatFormat::Ply as i32,
                format_version: 1,
                splat_count: count,
                sh_degree: u32::from(degree),
                ..Default::default()
            })
        }
        Some(api::SplatFormat::Spz) => {
            let header = spz::read_spz_header(data).map_err(status_of_splat)?;
            Ok(api::InfoResponse {
                format: api::SplatFormat::Spz as i32,
                format_version: header.version,
                splat_count: u64::from(header.splats),
                sh_degree: u32::from(header.sh_degree),
                ..Default::default()
            })
        }
        _ => Err(Status::invalid_argument(
            "unrecognized data: expected PLY, SPZ or a terse bitstream",
        )),
    }
}

/// Stream type of DecodeStream.
pub type DecodeChunks =
    Pin<Box<dyn Stream<Item = Result<api::DecodeStreamResponse, Status>> + Send>>;

#[tonic::async_trait]
impl splat_service_server::SplatService for SplatService {
    async fn encode(
        &self,
        request: Request<api::EncodeRequest>,
    ) -> Result<Response<api::EncodeResponse>, Status> {
        let request = request.into_inner();
        check_size(request.scene.len(), &self.limits, "scene")?;
        let _memory = self.reserve(&request.scene, "splat encode")?;
        let limits = self.limits;
        let options = request.options.unwrap_or_default();
        let result = run_blocking(move || encode_scene(request.scene, options, limits)).await?;
        Ok(Response::new(api::EncodeResponse {
            result: Some(result),
        }))
    }

    async fn encode_stream(
        &self,
        request: Request<Streaming<api::EncodeStreamRequest>>,
    ) -> Result<Response<api::EncodeStreamResponse>, Status> {
        let mut stream = request.into_inner();
        let (options, scene) =
            collect_upload(&mut stream, self.limits.max_scene_bytes, "scene").await?;
        let _memory = self.reserve(&scene, "splat encode")?;
        let limits = self.limits;
        let result = run_blocking(move || encode_scene(scene, options, limits)).await?;
        Ok(Response::new(api::EncodeStreamResponse {
            result: Some(result),
        }))
    }

    async fn decode(
        &self,
        request: Request<api::DecodeRequest>,
    ) -> Result<Response<api::DecodeResponse>, Status> {
        let r = request.into_inner();
        let (scene_bytes, format, scene) = self
            .decode_file(r.bitstream, r.output_format, r.spz_version)
            .await?;
        Ok(Response::new(api::DecodeResponse {
            scene: scene_bytes,
            format: format as i32,
            splat_count: scene.len() as u64,
            sh_degree: u32::from(scene.sh_degree),
        }))
    }

    type DecodeStreamStream = DecodeChunks;

    async fn decode_stream(
        &self,
        request: Request<api::DecodeStreamRequest>,
    ) -> Result<Response<Self::DecodeStreamStream>, Status> {
        let r = request.into_inner();
        let (bytes, _, scene) = self
            .decode_file(r.bitstream, r.output_format, r.spz_version)
            .await?;
        let (count, degree) = (scene.len() as u64, u32::from(scene.sh_degree));
        let chunks = download_chunks(&bytes, |chunk| api::DecodeStreamResponse {
            splat_count: count,
            sh_degree: degree,
            chunk: Some(chunk),
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    async fn info(
        &self,
        request: Request<api::InfoRequest>,
    ) -> Result<Response<api::InfoResponse>, Status> {
        let request = request.into_inner();
        check_size(request.data.len(), &self.limits, "data")?;
        let limits = self.limits;
        Ok(Response::new(
            run_blocking(move || info(&request.data, &limits)).await?,
        ))
    }
}
