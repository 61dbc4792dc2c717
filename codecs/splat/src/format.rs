//! Scene file formats: detection, reading (with what a format carried that is not kept),
//! writing, and the header facts of any scene or bitstream.

use terse_entropy::Container;

use crate::{
    SplatScene, codec,
    error::{Result, SplatError},
    ply,
    scene::check_splat_limit,
    spz::{self, SpzVersion},
};

/// A scene file or bitstream format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SceneFormat {
    /// PLY as 3DGS trainers write it.
    Ply,
    /// Niantic SPZ (v2–v4).
    Spz,
    /// A terse splat bitstream.
    Terse,
}

/// The format of `data`, from its first bytes.
pub fn detect(data: &[u8]) -> Option<SceneFormat> {
    if ply::sniff(data) {
        Some(SceneFormat::Ply)
    } else if Container::sniff(data) {
        Some(SceneFormat::Terse)
    } else if spz::sniff(data) {
        Some(SceneFormat::Spz)
    } else {
        None
    }
}

/// Reads a PLY or SPZ scene of the given format (`None`: detect it), refusing more than
/// `max_splats`; returns warnings about what the file carried that is not kept.
pub fn read_scene(
    data: &[u8],
    format: Option<SceneFormat>,
    max_splats: u64,
) -> Result<(SplatScene, Vec<String>)> {
    let format = match format {
        Some(format) => format,
        None => detect(data).ok_or_else(|| {
            SplatError::Malformed(
                "unrecognized scene format: expected a PLY (`ply` header) or SPZ file".into(),
            )
        })?,
    };
    match format {
        SceneFormat::Ply => {
            let (scene, report) = ply::read_ply(data, max_splats)?;
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
        SceneFormat::Spz => Ok((spz::read_spz(data, max_splats)?.0, Vec::new())),
        SceneFormat::Terse => Err(SplatError::InvalidOptions(
            "input is already a terse bitstream: call Decode to restore a scene".into(),
        )),
    }
}

/// Writes a scene as PLY or SPZ (`spz` picks the SPZ version).
pub fn write_scene(scene: &SplatScene, format: SceneFormat, spz: SpzVersion) -> Result<Vec<u8>> {
    match format {
        SceneFormat::Ply => Ok(ply::write_ply(scene)),
        SceneFormat::Spz => spz::write_spz(scene, spz),
        SceneFormat::Terse => Err(SplatError::InvalidOptions(
            "output_format must be PLY or SPZ".into(),
        )),
    }
}

/// Header facts of a scene file or bitstream.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneInfo {
    /// Its format.
    pub format: SceneFormat,
    /// The format's version (PLY: 1; terse: the container format).
    pub format_version: u32,
    /// Splats it holds.
    pub splat_count: u64,
    /// SH degree.
    pub sh_degree: u8,
    /// Splats of the scene it was coded from (terse bitstreams; 0 otherwise).
    pub source_splats: u64,
    /// Bytes of each section, by tag (terse bitstreams).
    pub sections: Vec<(String, usize)>,
}

/// Reads the header facts of `data` without decoding it.
pub fn describe(data: &[u8]) -> Result<SceneInfo> {
    match detect(data) {
        Some(SceneFormat::Terse) => {
            let info = codec::inspect(data)?;
            Ok(SceneInfo {
                format: SceneFormat::Terse,
                format_version: Container::peek_version(data).map_or(0, u32::from),
                splat_count: info.splats,
                sh_degree: info.sh_degree,
                source_splats: info.source_splats,
                sections: info.section_bytes,
            })
        }
        Some(SceneFormat::Ply) => {
            let (splat_count, sh_degree) = ply::ply_splat_count(data)?;
            Ok(SceneInfo {
                format: SceneFormat::Ply,
                format_version: 1,
                splat_count,
                sh_degree,
                source_splats: 0,
                sections: Vec::new(),
            })
        }
        Some(SceneFormat::Spz) => {
            let header = spz::read_spz_header(data)?;
            Ok(SceneInfo {
                format: SceneFormat::Spz,
                format_version: header.version,
                splat_count: u64::from(header.splats),
                sh_degree: header.sh_degree,
                source_splats: 0,
                sections: Vec::new(),
            })
        }
        None => Err(SplatError::Malformed(
            "unrecognized data: expected PLY, SPZ or a terse bitstream".into(),
        )),
    }
}

/// [`describe`], refusing a header that declares more than `max_splats` splats.
pub fn describe_within(data: &[u8], max_splats: u64) -> Result<SceneInfo> {
    let info = describe(data)?;
    check_splat_limit(info.splat_count, max_splats)?;
    Ok(info)
}
