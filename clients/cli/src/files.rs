//! Which files a command works on: kinds by extension, folders walked recursively, and where
//! each output goes.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The kind of media a file holds, which picks the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// PNG, JPEG, WebP, BMP, TIFF → `compress.image.v1`.
    Image,
    /// WAV, FLAC, MP3, OGG Vorbis → `compress.audio.v1`.
    Audio,
    /// 3DGS PLY, SPZ → `compress.splat.v1`.
    Splat,
    /// safetensors weights → `compress.tensor.v1` (lossless).
    Tensor,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 4] = [Kind::Image, Kind::Audio, Kind::Splat, Kind::Tensor];

    /// The kind of a source file, by extension (case-insensitive).
    pub fn of_source(path: &Path) -> Option<Kind> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "png" | "jpg" | "jpeg" | "webp" | "bmp" | "tif" | "tiff" => Some(Kind::Image),
            "wav" | "flac" | "mp3" | "ogg" => Some(Kind::Audio),
            "ply" | "spz" => Some(Kind::Splat),
            "safetensors" => Some(Kind::Tensor),
            _ => None,
        }
    }

    /// The kind of a compressed file, by its `.terse-*` extension.
    pub fn of_compressed(path: &Path) -> Option<Kind> {
        let extension = path.extension()?.to_str()?;
        Kind::ALL
            .into_iter()
            .find(|kind| extension == kind.compressed_extension())
    }

    /// Extension of compressed files of this kind.
    pub fn compressed_extension(self) -> &'static str {
        match self {
            Kind::Image => "terse-image",
            Kind::Audio => "terse-audio",
            Kind::Splat => "terse-splat",
            Kind::Tensor => "terse-tensor",
        }
    }

    /// The server service name hosting this kind.
    pub fn service(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Audio => "audio",
            Kind::Splat => "splat",
            Kind::Tensor => "tensor",
        }
    }

    /// Short lower-case name for tables.
    pub fn name(self) -> &'static str {
        self.service()
    }
}

/// One file to process: where it is, what it is, and where its output goes.
#[derive(Clone, Debug)]
pub struct Job {
    /// Input path.
    pub input: PathBuf,
    /// Media kind.
    pub kind: Kind,
    /// Output path (decided by the command).
    pub output: PathBuf,
}

/// Expands `inputs` (files and folders, folders recursively in name order) into files whose
/// kind `classify` recognises. A file named explicitly must be recognised; unrecognised files
/// inside folders are skipped. Returns each file with the folder it was found under (for
/// mirroring the tree into an output folder).
pub fn collect(
    inputs: &[PathBuf],
    classify: fn(&Path) -> Option<Kind>,
) -> anyhow::Result<Vec<(PathBuf, PathBuf, Kind)>> {
    let mut found = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).with_context(|| format!("{}", input.display()))?;
        if meta.is_dir() {
            for entry in walkdir::WalkDir::new(input).sort_by_file_name() {
                let entry = entry.with_context(|| format!("walking {}", input.display()))?;
                if entry.file_type().is_file()
                    && let Some(kind) = classify(entry.path())
                {
                    found.push((entry.path().to_path_buf(), input.clone(), kind));
                }
            }
        } else {
            let Some(kind) = classify(input) else {
                bail!("{}: unrecognised file type (by extension)", input.display());
            };
            let base = input.parent().map(Path::to_path_buf).unwrap_or_default();
            found.push((input.clone(), base, kind));
        }
    }
    Ok(found)
}

/// Where the output of `input` (found under `base`) goes: next to it, or mirrored under
/// `out_dir`, with `file_name` as its name.
pub fn output_path(input: &Path, base: &Path, out_dir: Option<&Path>, file_name: &str) -> PathBuf {
    match out_dir {
        Some(out) => {
            let relative = input
                .parent()
                .and_then(|parent| parent.strip_prefix(base).ok())
                .unwrap_or_else(|| Path::new(""));
            out.join(relative).join(file_name)
        }
        None => input.with_file_name(file_name),
    }
}

/// `photo.png` → `photo.png.terse-image`.
pub fn compressed_name(input: &Path, kind: Kind) -> String {
    format!(
        "{}.{}",
        input.file_name().unwrap_or_default().to_string_lossy(),
        kind.compressed_extension()
    )
}

/// `photo.png.terse-image` → `photo.<extension>`; `clip.terse-audio` → `clip.<extension>`.
pub fn decoded_name(input: &Path, extension: &str) -> String {
    let stem = Path::new(input.file_stem().unwrap_or_default());
    let base = match Kind::of_source(stem) {
        Some(_) => stem.file_stem().unwrap_or_default(),
        None => stem.as_os_str(),
    };
    format!("{}.{extension}", base.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_the_compressed_extension() {
        let input = Path::new("shots/photo.PNG");
        assert_eq!(Kind::of_source(input), Some(Kind::Image));
        let compressed = compressed_name(input, Kind::Image);
        assert_eq!(compressed, "photo.PNG.terse-image");
        assert_eq!(
            Kind::of_compressed(Path::new(&compressed)),
            Some(Kind::Image)
        );
        assert_eq!(decoded_name(Path::new(&compressed), "png"), "photo.png");
        assert_eq!(
            decoded_name(Path::new("clip.terse-audio"), "wav"),
            "clip.wav"
        );
        assert_eq!(Kind::of_source(Path::new("notes.txt")), None);
    }

    #[test]
    fn outputs_mirror_the_tree_under_an_output_folder() {
        let out = output_path(
            Path::new("in/a/b/x.png"),
            Path::new("in"),
            Some(Path::new("out")),
            "x.png.terse-image",
        );
        assert_eq!(out, Path::new("out/a/b/x.png.terse-image"));
        let beside = output_path(Path::new("in/x.png"), Path::new("in"), None, "x.y");
        assert_eq!(beside, Path::new("in/x.y"));
    }
}
