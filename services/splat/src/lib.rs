//! gRPC transport of `compress.splat.v1.SplatService` over a splat [`CodecRegistry`].
//!
//! Only request handling, limits, conversion and status mapping live here; formats, coding
//! and the cost model are in `terse-splat`. Coding runs on the call's worker so it never
//! stalls the async runtime.

use std::sync::Arc;

use terse_codec::{CodecRegistry, DynCodec, EncodeOptions, Work};
use terse_proto::{
    common::v1 as common,
    splat::v1::{self as api, splat_service_server},
};
use terse_service_common::prelude::*;
use terse_splat::{
    CodecOptions, Preset, SceneFormat, SceneInfo, SplatScene, format, metrics::attribute_errors,
    spz::SpzVersion,
};

pub use splat_service_server::SplatServiceServer;

/// `[splat]`: limits of the splat service.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SplatLimits {
    /// Most splats in a scene or bitstream; larger inputs get RESOURCE_EXHAUSTED.
    pub max_splats: u64,
    /// Most bytes of one scene or bitstream, unary or streamed.
    pub max_scene_bytes: usize,
}

impl Default for SplatLimits {
    fn default() -> Self {
        Self {
            max_splats: 10_000_000,
            max_scene_bytes: 1 << 30,
        }
    }
}

/// The splat codecs, with their knobs.
pub type SplatCodecs = CodecRegistry<SplatScene, CodecOptions>;

type SplatCodec = DynCodec<SplatScene, CodecOptions>;

/// The service.
pub struct SplatService {
    host: CodecHost<SplatLimits, SplatScene, CodecOptions>,
}

impl SplatService {
    /// Hosts the splat codecs (`terse_hosting::splat_codecs`).
    pub fn hosted(limits: SplatLimits, memory: MemoryBudget) -> Self {
        Self::new(terse_hosting::splat_codecs(), limits, memory)
    }

    /// A service over `codecs` enforcing `limits`; calls reserve their working memory from
    /// `memory`.
    pub fn new(codecs: SplatCodecs, limits: SplatLimits, memory: MemoryBudget) -> Self {
        Self {
            host: CodecHost::new(codecs, limits, limits.max_scene_bytes, memory),
        }
    }

    /// Reserves the working memory of coding the scene or bitstream `data` declares (its
    /// header's splat count and SH degree), before the work.
    fn reserve(
        &self,
        codec: &SplatCodec,
        work: Work,
        data: &[u8],
        what: &str,
    ) -> Result<Reservation, Status> {
        let (splats, degree) = format::describe(data)
            .map(|info| (info.splat_count, info.sh_degree))
            .unwrap_or((0, 0));
        let what = format!("{what} of {splats} splats (SH degree {degree})");
        self.host
            .reserve(codec, work, &[splats, u64::from(degree)], &what)
    }

    /// Reads, encodes, decodes again and measures: the whole Encode call.
    async fn encode_scene(
        &self,
        data: Vec<u8>,
        options: api::EncodeOptions,
    ) -> Result<api::EncodeResult, Status> {
        self.host.check_bytes(data.len(), "scene")?;
        let codec = self.host.pick("")?;
        let coding = EncodeOptions {
            reconstruct: true,
            knobs: codec_options(&options)?,
            ..Default::default()
        };
        let _memory = self.reserve(codec.as_ref(), coding.work(), &data, "splat encode")?;
        let declared = input_format(options.input_format)?;
        let max_splats = self.host.limits.max_splats;
        let input_bytes = data.len() as u64;
        let (scene, mut warnings) = run_blocking(move || {
            format::read_scene(&data, declared, max_splats).map_err(|e| status_of(&e))
        })
        .await?;
        let (source_splats, source_degree) = (scene.len() as u64, scene.sh_degree);
        let encoding = encode_in_call(codec.as_ref(), Arc::new(scene), coding).await?;
        let (Some(reference), Some(decoded)) = (encoding.reference, encoding.reconstruction) else {
            return Err(Status::internal(
                "the splat codec returned no reconstruction",
            ));
        };
        let (splats, sh_degree) = (reference.len() as u64, reference.sh_degree);
        if sh_degree < source_degree {
            warnings.push(format!(
                "SH bands above degree {sh_degree} dropped (max_sh_degree)"
            ));
        }
        let bitstream = encoding.bitstream;
        let sections = terse_splat::codec::section_bytes(&bitstream).map_err(|e| status_of(&e))?;
        let asked_codebook = options.sh_codebook.unwrap_or(0) > 0 && sh_degree > 0;
        if asked_codebook && !sections.iter().any(|(tag, _)| tag == "SHCB") {
            warnings.push(
                "sh_codebook not used: per-coefficient SH coding was smaller for this scene \
                 (a codebook gets at most one entry per 16 splats)"
                    .to_string(),
            );
        }
        let errors = run_blocking(move || Ok(attribute_errors(&reference, &decoded))).await?;
        let bytes = bitstream.len() as u64;
        Ok(api::EncodeResult {
            splat_count: splats,
            sh_degree: u32::from(sh_degree),
            rate_distortion: Some(common::RateDistortion {
                compressed_bytes: bytes,
                original_bytes: input_bytes,
                bits_per_splat: (splats > 0).then(|| bytes as f64 * 8.0 / splats as f64),
                ..Default::default()
            }),
            attribute_errors: errors
                .into_iter()
                .map(|e| api::AttributeError {
                    attribute: e.attribute.to_string(),
                    rmse: e.rmse,
                    max_abs_error: e.max_abs_error,
                    mean_error: e.mean_error,
                    psnr_db: e.psnr_db.filter(|p| p.is_finite()),
                })
                .collect(),
            source_splats,
            pruned_splats: source_splats - splats,
            sections: proto_sections(sections),
            warnings,
            compression_ratio: input_bytes as f64 / bytes as f64,
            bitstream,
        })
    }

    /// Checks a bitstream and decodes it to a scene file.
    async fn decode_file(
        &self,
        bitstream: Vec<u8>,
        output_format: i32,
        spz_version: u32,
    ) -> Result<(Vec<u8>, api::SplatFormat, SplatScene), Status> {
        self.host
            .check_container(&bitstream, &[terse_entropy::CodecId::Splat])?;
        let (format, version) = output(output_format, spz_version)?;
        let codec = self.host.for_bitstream(&bitstream)?;
        let _memory = self.reserve(codec.as_ref(), Work::Decode, &bitstream, "splat decode")?;
        let scene = decode_in_call(codec.as_ref(), bitstream, self.host.limits.max_splats).await?;
        run_blocking(move || {
            let file = format::write_scene(&scene, format, version).map_err(|e| status_of(&e))?;
            Ok((file, proto_format(format), scene))
        })
        .await
    }
}

fn input_format(declared: i32) -> Result<Option<SceneFormat>, Status> {
    match api::SplatFormat::try_from(declared) {
        Ok(api::SplatFormat::Unspecified) => Ok(None),
        Ok(api::SplatFormat::Ply) => Ok(Some(SceneFormat::Ply)),
        Ok(api::SplatFormat::Spz) => Ok(Some(SceneFormat::Spz)),
        Ok(api::SplatFormat::Terse) => Ok(Some(SceneFormat::Terse)),
        Err(_) => Err(Status::invalid_argument(format!(
            "unknown input_format {declared}"
        ))),
    }
}

fn output(format: i32, spz_version: u32) -> Result<(SceneFormat, SpzVersion), Status> {
    let format = match api::SplatFormat::try_from(format) {
        Ok(api::SplatFormat::Unspecified | api::SplatFormat::Ply) => SceneFormat::Ply,
        Ok(api::SplatFormat::Spz) => SceneFormat::Spz,
        Ok(api::SplatFormat::Terse) => {
            return Err(Status::invalid_argument("output_format must be PLY or SPZ"));
        }
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "unknown output_format {format}"
            )));
        }
    };
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
    Ok((format, version))
}

fn proto_format(format: SceneFormat) -> api::SplatFormat {
    match format {
        SceneFormat::Ply => api::SplatFormat::Ply,
        SceneFormat::Spz => api::SplatFormat::Spz,
        SceneFormat::Terse => api::SplatFormat::Terse,
    }
}

/// The Info answer for a scene or bitstream's header facts.
fn info_response(info: SceneInfo) -> api::InfoResponse {
    api::InfoResponse {
        format: proto_format(info.format) as i32,
        format_version: info.format_version,
        splat_count: info.splat_count,
        sh_degree: u32::from(info.sh_degree),
        source_splats: info.source_splats,
        sections: proto_sections(info.sections),
    }
}

fn proto_sections(sections: Vec<(String, usize)>) -> Vec<api::Section> {
    sections
        .into_iter()
        .map(|(tag, bytes)| api::Section {
            tag,
            bytes: bytes as u64,
        })
        .collect()
}

/// Preset values with the request's explicit knobs applied.
pub fn codec_options(options: &api::EncodeOptions) -> Result<CodecOptions, Status> {
    let preset = match api::Preset::try_from(options.preset) {
        Ok(api::Preset::High) => Preset::High,
        Ok(api::Preset::Small) => Preset::Small,
        Ok(api::Preset::Web) => Preset::Web,
        Ok(api::Preset::Balanced | api::Preset::Unspecified) => Preset::Balanced,
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "unknown preset {}",
                options.preset
            )));
        }
    };
    let mut o = CodecOptions::preset(preset);
    // An explicit grid knob replaces the preset's grid: the one not named is off.
    match (options.position_bits, options.position_step) {
        (Some(bits), step) => (o.position_bits, o.position_step) = (bits, step.unwrap_or(0.0)),
        (None, Some(step)) => (o.position_bits, o.position_step) = (0, step),
        (None, None) => {}
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
    o.validate().map_err(|e| status_of(&e))?;
    Ok(o)
}

rpcs! {
    impl splat_service_server::SplatService for SplatService {
        fn encode(self, request: api::EncodeRequest) -> api::EncodeResponse {
            let options = request.options.unwrap_or_default();
            api::EncodeResponse { result: Some(self.encode_scene(request.scene, options).await?) }
        }

        fn encode_stream(
            self,
            stream: Streaming<api::EncodeStreamRequest>,
        ) -> api::EncodeStreamResponse {
            let (options, scene) = self.host.upload(stream, "scene").await?;
            let result = self.encode_scene(scene, options).await?;
            api::EncodeStreamResponse { result: Some(result) }
        }

        fn decode(self, request: api::DecodeRequest) -> api::DecodeResponse {
            let api::DecodeRequest { bitstream, output_format, spz_version } = request;
            let (scene_bytes, format, scene) =
                self.decode_file(bitstream, output_format, spz_version).await?;
            api::DecodeResponse {
                scene: scene_bytes,
                format: format as i32,
                splat_count: scene.len() as u64,
                sh_degree: u32::from(scene.sh_degree),
            }
        }

        fn decode_stream(
            self,
            request: api::DecodeStreamRequest,
        ) -> stream DecodeStreamStream of api::DecodeStreamResponse {
            let api::DecodeStreamRequest { bitstream, output_format, spz_version } = request;
            let (bytes, _, scene) = self.decode_file(bitstream, output_format, spz_version).await?;
            let (count, degree) = (scene.len() as u64, u32::from(scene.sh_degree));
            download(&bytes, |chunk| api::DecodeStreamResponse {
                splat_count: count,
                sh_degree: degree,
                chunk: Some(chunk),
            })
        }

        fn info(self, request: api::InfoRequest) -> api::InfoResponse {
            self.host.check_bytes(request.data.len(), "data")?;
            let max_splats = self.host.limits.max_splats;
            let info = run_blocking(move || {
                format::describe_within(&request.data, max_splats).map_err(|e| status_of(&e))
            })
            .await?;
            info_response(info)
        }
    }
}

impl HostedService for SplatLimits {
    fn add_to(&self, host: &Host, routes: &mut RoutesBuilder) -> Result<String, String> {
        let service = SplatService::hosted(*self, host.memory.clone());
        let hosted = format!("splat codecs {:?}", service.host.names());
        terse_service_common::add_service!(routes, host, SplatServiceServer, service, hosted)
    }
}

#[cfg(test)]
mod tests;
