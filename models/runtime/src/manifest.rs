//! Model manifests and the on-disk repository layout.
//!
//! ```text
//! models/repository/<name>/<version>/manifest.toml
//! models/repository/<name>/<version>/<file named in the manifest, e.g. model.onnx>
//! ```

use std::{
    fs,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{error::LoadError, tensor::DataType};

/// Name, type and shape of a model input or output as the manifest declares it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    /// Name in the ONNX graph.
    pub name: String,
    /// Element type.
    pub datatype: DataType,
    /// Dimensions; -1 is dynamic.
    pub shape: Vec<i64>,
    /// Optional per-dimension divisor that dynamic dimensions must be a multiple of (e.g. 2 for
    /// a stride-2 transform), checked before execution so nothing is silently cropped.
    #[serde(default)]
    pub multiple_of: Option<Vec<i64>>,
    /// Optional per-dimension upper bound of dynamic dimensions (-1: none), e.g. the number of
    /// position embeddings of a transformer's sequence axis.
    #[serde(default)]
    pub max_shape: Option<Vec<i64>>,
    /// Optional per-dimension flags of dynamic dimensions that may be 0 (e.g. the past length
    /// of a KV cache at the first step); every other dimension must be at least 1.
    #[serde(default)]
    pub may_be_empty: Option<Vec<bool>>,
    /// Optional inclusive range of the values of an integer input, e.g. `[0, vocab - 1]` for
    /// token ids.
    #[serde(default)]
    pub value_range: Option<[i64; 2]>,
}

impl TensorSpec {
    /// Checks a concrete shape against this spec: rank, fixed dimensions, no empty dimension,
    /// divisors and upper bounds.
    pub fn check_shape(&self, shape: &[i64]) -> Result<(), String> {
        if shape.len() != self.shape.len() {
            return Err(format!(
                "`{}` must have rank {} (shape {:?}), got shape {shape:?}",
                self.name,
                self.shape.len(),
                self.shape
            ));
        }
        let empty_allowed =
            |axis: usize| self.may_be_empty.as_ref().and_then(|m| m.get(axis)) == Some(&true);
        if let Some(axis) = shape
            .iter()
            .enumerate()
            .position(|(axis, &d)| d < 0 || (d == 0 && !empty_allowed(axis)))
        {
            return Err(format!(
                "`{}` dimension {axis} is {}: every dimension must be at least 1, got shape {shape:?}",
                self.name, shape[axis]
            ));
        }
        for (axis, &got) in shape.iter().enumerate() {
            if let Some(&most) = self.max_shape.as_ref().and_then(|m| m.get(axis))
                && most >= 0
                && got > most
            {
                return Err(format!(
                    "`{}` dimension {axis} is {got}, over this model's limit of {most}",
                    self.name
                ));
            }
        }
        for (axis, (&want, &got)) in self.shape.iter().zip(shape).enumerate() {
            if want >= 0 && want != got {
                return Err(format!(
                    "`{}` dimension {axis} must be {want} (shape {:?}), got shape {shape:?}",
                    self.name, self.shape
                ));
            }
            if let Some(&divisor) = self.multiple_of.as_ref().and_then(|m| m.get(axis))
                && divisor > 1
                && got % divisor != 0
            {
                return Err(format!(
                    "`{}` dimension {axis} must be a multiple of {divisor}, got shape {shape:?}",
                    self.name
                ));
            }
        }
        Ok(())
    }

    /// Checks the values of an integer input against [`TensorSpec::value_range`] (so an
    /// out-of-vocabulary or negative token id is refused before it reaches the graph).
    pub fn check_values(&self, tensor: &crate::TensorData) -> Result<(), String> {
        let Some([lo, hi]) = self.value_range else {
            return Ok(());
        };
        let values: Vec<i64> = match tensor.datatype {
            crate::DataType::Int64 => tensor
                .bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
            crate::DataType::Int32 => tensor
                .bytes
                .chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes(c.try_into().expect("4 bytes"))))
                .collect(),
            _ => return Ok(()),
        };
        match values.iter().position(|v| !(lo..=hi).contains(v)) {
            None => Ok(()),
            Some(i) => Err(format!(
                "`{}` element {i} is {}, outside {lo}..={hi}",
                self.name, values[i]
            )),
        }
    }
}

/// What `manifest.toml` says about one model version.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    /// Model name, equal to its directory name.
    pub name: String,
    /// Version, equal to its directory name.
    pub version: String,
    /// What the model does.
    pub task: String,
    /// Longer human description.
    #[serde(default)]
    pub description: String,
    /// Model file name, relative to the manifest.
    pub file: String,
    /// Lower-case hex sha256 of the model file.
    pub sha256: String,
    /// License of the weights.
    pub license: String,
    /// Where the model comes from / how it was produced.
    pub source: String,
    /// Inputs in graph order.
    pub inputs: Vec<TensorSpec>,
    /// Outputs in graph order.
    pub outputs: Vec<TensorSpec>,
    /// Other files the model's codec needs (encoder weights, entropy tables), sha-checked.
    #[serde(default)]
    pub assets: Vec<Asset>,
    /// Most sessions the model gets whatever `runtime.sessions.pool_size` says: a large model
    /// (the 540 MB causal LM) holds its weights once per session.
    #[serde(default)]
    pub max_sessions: Option<usize>,
    /// Present when the model's output rows depend on their input rows alone: requests from
    /// different callers may then share one run (see [`crate::batching`]).
    #[serde(default)]
    pub batching: Option<crate::batching::BatchingSpec>,
}

/// A file shipped with a model besides the ONNX graph.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    /// What the codec calls it (e.g. `encoder`, `prior`).
    pub name: String,
    /// File name, relative to the manifest.
    pub file: String,
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
}

/// A manifest found in the repository, with where it lives.
#[derive(Debug, Clone)]
pub struct ManifestEntry {
    /// The parsed manifest.
    pub manifest: ModelManifest,
    /// The directory holding the manifest and the model file.
    pub dir: PathBuf,
}

impl ManifestEntry {
    /// `name:version`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.manifest.name, self.manifest.version)
    }

    /// Path of the model file.
    pub fn model_path(&self) -> PathBuf {
        self.dir.join(&self.manifest.file)
    }

    /// Reads the model file and checks its sha256 against the manifest.
    pub fn read_verified(&self) -> Result<Vec<u8>, LoadError> {
        self.read_checked("model file", &self.manifest.file, &self.manifest.sha256)
    }

    /// Reads the asset called `name` and checks its sha256 against the manifest.
    pub fn read_asset(&self, name: &str) -> Result<Vec<u8>, LoadError> {
        let asset = self
            .manifest
            .assets
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| LoadError::Model {
                model: self.id(),
                reason: format!("manifest lists no asset `{name}`"),
            })?;
        self.read_checked("asset", &asset.file, &asset.sha256)
    }

    fn read_checked(&self, what: &str, file: &str, sha256: &str) -> Result<Vec<u8>, LoadError> {
        let path = self.dir.join(file);
        let bytes = fs::read(&path).map_err(|e| LoadError::Model {
            model: self.id(),
            reason: format!("cannot read {what} {}: {e}", path.display()),
        })?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != sha256 {
            return Err(LoadError::Model {
                model: self.id(),
                reason: format!(
                    "sha256 mismatch for {}: manifest says {sha256}, file has {actual}",
                    path.display()
                ),
            });
        }
        Ok(bytes)
    }
}

fn manifest_error(path: &Path, reason: impl Into<String>) -> LoadError {
    LoadError::Manifest {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Parses and checks one manifest file.
pub fn read_manifest(path: &Path) -> Result<ManifestEntry, LoadError> {
    let text = fs::read_to_string(path).map_err(|e| manifest_error(path, e.to_string()))?;
    let manifest: ModelManifest =
        toml::from_str(&text).map_err(|e| manifest_error(path, e.message().to_string()))?;
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let dir_version = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let dir_name = dir
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if manifest.name != dir_name || manifest.version != dir_version {
        return Err(manifest_error(
            path,
            format!(
                "declares {}:{} but lives in {dir_name}/{dir_version}",
                manifest.name, manifest.version
            ),
        ));
    }
    let files = std::iter::once((&manifest.file, &manifest.sha256))
        .chain(manifest.assets.iter().map(|a| (&a.file, &a.sha256)));
    for (file, sha256) in files {
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(manifest_error(
                path,
                format!("sha256 of `{file}` must be 64 lower-case hex digits"),
            ));
        }
        if file.contains("..") || Path::new(file).is_absolute() || file.contains('/') {
            return Err(manifest_error(
                path,
                format!("`{file}` must be a plain name inside the model directory"),
            ));
        }
    }
    for spec in manifest.inputs.iter().chain(&manifest.outputs) {
        for (key, per_dimension) in [
            ("max_shape", &spec.max_shape),
            ("multiple_of", &spec.multiple_of),
        ] {
            if per_dimension
                .as_ref()
                .is_some_and(|v| v.len() != spec.shape.len())
            {
                return Err(manifest_error(
                    path,
                    format!("`{}`: {key} must have one entry per dimension", spec.name),
                ));
            }
        }
    }
    if let Some(batching) = &manifest.batching {
        batching
            .check(&manifest.inputs, &manifest.outputs)
            .map_err(|reason| manifest_error(path, reason))?;
    }
    Ok(ManifestEntry { manifest, dir })
}

/// Finds every `<name>/<version>/manifest.toml` under `root`, sorted by name then version.
pub fn scan_repository(root: &Path) -> Result<Vec<ManifestEntry>, LoadError> {
    let read_dir = |dir: &Path| {
        fs::read_dir(dir).map_err(|e| {
            LoadError::Config(format!(
                "cannot read model repository {}: {e}",
                dir.display()
            ))
        })
    };
    let mut entries = Vec::new();
    for model_dir in read_dir(root)? {
        let model_dir = model_dir
            .map_err(|e| LoadError::Config(e.to_string()))?
            .path();
        if !model_dir.is_dir() {
            continue;
        }
        for version_dir in read_dir(&model_dir)? {
            let manifest = version_dir
                .map_err(|e| LoadError::Config(e.to_string()))?
                .path()
                .join("manifest.toml");
            if manifest.is_file() {
                entries.push(read_manifest(&manifest)?);
            }
        }
    }
    entries.sort_by(|a, b| {
        (a.manifest.name.as_str(), version_key(&a.manifest.version))
            .cmp(&(b.manifest.name.as_str(), version_key(&b.manifest.version)))
    });
    Ok(entries)
}

/// Orders versions numerically when they are numbers ("2" < "10"), else as text.
pub fn version_key(version: &str) -> (u64, String) {
    (version.parse().unwrap_or(u64::MAX), version.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(shape: Vec<i64>, multiple_of: Option<Vec<i64>>) -> TensorSpec {
        TensorSpec {
            name: "x".into(),
            datatype: DataType::Fp32,
            shape,
            multiple_of,
            max_shape: None,
            may_be_empty: None,
            value_range: None,
        }
    }

    #[test]
    fn empty_dimensions_bounds_and_value_ranges_are_enforced() {
        let mut s = spec(vec![-1, -1], None);
        s.datatype = DataType::Int64;
        s.max_shape = Some(vec![-1, 512]);
        s.value_range = Some([0, 30521]);
        assert!(s.check_shape(&[2, 512]).is_ok());
        assert!(s.check_shape(&[0, 5]).unwrap_err().contains("at least 1"));
        s.may_be_empty = Some(vec![false, true]);
        assert!(s.check_shape(&[2, 0]).is_ok());
        assert!(s.check_shape(&[0, 5]).unwrap_err().contains("at least 1"));
        assert!(s.check_shape(&[2, -1]).unwrap_err().contains("at least 1"));
        assert!(
            s.check_shape(&[1, 513])
                .unwrap_err()
                .contains("limit of 512")
        );
        let ids =
            |values: &[i64]| crate::TensorData::from_i64("x", vec![1, values.len() as i64], values);
        assert!(s.check_values(&ids(&[0, 101, 30521])).is_ok());
        assert!(
            s.check_values(&ids(&[5, -1]))
                .unwrap_err()
                .contains("element 1 is -1")
        );
        assert!(
            s.check_values(&ids(&[30522]))
                .unwrap_err()
                .contains("outside 0..=30521")
        );
    }

    #[test]
    fn check_shape_enforces_rank_fixed_dims_and_multiples() {
        let s = spec(vec![-1, 3, -1, -1], Some(vec![1, 1, 2, 2]));
        assert!(s.check_shape(&[1, 3, 4, 6]).is_ok());
        assert!(s.check_shape(&[1, 3, 4]).unwrap_err().contains("rank 4"));
        assert!(
            s.check_shape(&[1, 4, 4, 6])
                .unwrap_err()
                .contains("dimension 1 must be 3")
        );
        assert!(
            s.check_shape(&[1, 3, 5, 6])
                .unwrap_err()
                .contains("multiple of 2")
        );
    }

    #[test]
    fn shipped_repository_parses_and_verifies() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../repository");
        let entries = scan_repository(&root).unwrap();
        assert!(
            entries
                .iter()
                .any(|e| e.manifest.name == "haar-wpt2d-analysis")
        );
        for entry in &entries {
            entry.read_verified().unwrap();
        }
    }

    #[test]
    fn sha_mismatch_and_misplaced_manifests_are_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m/1");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("model.onnx"), b"not the model").unwrap();
        let manifest = |name: &str| {
            format!(
                "name = \"{name}\"\nversion = \"1\"\ntask = \"t\"\nfile = \"model.onnx\"\nsha256 = \"{}\"\nlicense = \"MIT\"\nsource = \"test\"\ninputs = []\noutputs = []\n",
                "0".repeat(64)
            )
        };
        fs::write(dir.join("manifest.toml"), manifest("m")).unwrap();
        let entry = read_manifest(&dir.join("manifest.toml")).unwrap();
        let err = entry.read_verified().unwrap_err().to_string();
        assert!(err.contains("sha256 mismatch"), "{err}");

        fs::write(dir.join("manifest.toml"), manifest("other")).unwrap();
        let err = read_manifest(&dir.join("manifest.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lives in m/1"), "{err}");
    }
}
