//! Finding and loading the ONNX Runtime shared library.
//!
//! `ort` is built with `load-dynamic`: nothing is linked at build time and the library is opened
//! at start-up. Every failure (missing file, not a shared library, too old) is turned into a
//! [`LoadError::Library`] naming the path, before `ort` could panic on it.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    path::{Path, PathBuf},
};

use ort::environment::Environment;

use crate::{error::LoadError, provider::ProviderKind};

/// Oldest ONNX Runtime the `api-24` build of `ort` accepts.
pub const MIN_VERSION: (u32, u32) = (1, 24);

/// Environment variable naming the library, as `ort` itself uses it.
pub const LIBRARY_ENV: &str = "ORT_DYLIB_PATH";

/// A loaded ONNX Runtime: the library path, its version and the process-wide environment.
pub struct OnnxRuntime {
    path: PathBuf,
    version: String,
    environment: Environment,
}

impl std::fmt::Debug for OnnxRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxRuntime")
            .field("path", &self.path)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

fn library_error(path: &Path, reason: impl Into<String>) -> LoadError {
    LoadError::Library {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The version in a file name like `libonnxruntime.so.1.31.1`, if it has one.
pub fn version_from_file_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let (_, version) = name.split_once(".so.")?;
    version
        .split('.')
        .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        .then(|| version.to_string())
}

fn parse_major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Finds the library: `explicit` if given, else `$ORT_DYLIB_PATH`, else the onnxruntime wheel in
/// `./.venv` (what `scripts/setup` installs).
pub fn resolve_library_path(explicit: Option<&Path>) -> Result<PathBuf, LoadError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    resolve_library_path_under(Path::new(""))
}

/// [`resolve_library_path`] without an explicit path, `.venv` taken under `root` instead of the
/// working directory (for tools, tests and benches that run from a crate's directory).
pub fn resolve_library_path_under(root: &Path) -> Result<PathBuf, LoadError> {
    if let Some(path) = std::env::var_os(LIBRARY_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let lib_dir = &root.join(".venv/lib");
    let mut found: Vec<PathBuf> = std::fs::read_dir(lib_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| python.path().join("site-packages/onnxruntime/capi"))
        .flat_map(|capi| std::fs::read_dir(capi).into_iter().flatten().flatten())
        .map(|entry| entry.path())
        .filter(|path| version_from_file_name(path).is_some())
        .collect();
    found.sort();
    found.pop().ok_or_else(|| {
        library_error(
            lib_dir,
            format!(
                "no libonnxruntime.so.<version> found; run scripts/setup, set {LIBRARY_ENV} or runtime.library"
            ),
        )
    })
}

impl OnnxRuntime {
    /// Opens the library at `path` and creates the process-wide ONNX Runtime environment.
    /// Can succeed once per process: ONNX Runtime is a process-wide singleton.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        if !path.is_file() {
            return Err(library_error(path, "file not found"));
        }
        let version = version_from_file_name(path).unwrap_or_else(|| "unknown".to_string());
        if let Some(found) = parse_major_minor(&version)
            && found < MIN_VERSION
        {
            return Err(library_error(
                path,
                format!(
                    "version {version} is too old: need {}.{} or newer",
                    MIN_VERSION.0, MIN_VERSION.1
                ),
            ));
        }
        let loaded = catch_unwind(AssertUnwindSafe(|| {
            ort::init_from(path)
                .map(|builder| builder.with_name("terse").with_telemetry(false).build())
        }));
        let environment = match loaded {
            Ok(Ok(Ok(environment))) => environment,
            Ok(Ok(Err(e))) => {
                return Err(library_error(
                    path,
                    format!("cannot create environment: {e}"),
                ));
            }
            Ok(Err(e)) => return Err(library_error(path, e.to_string())),
            Err(_) => return Err(library_error(path, "ONNX Runtime panicked while loading")),
        };
        tracing::info!(path = %path.display(), %version, "loaded ONNX Runtime");
        Ok(Self {
            path: path.to_path_buf(),
            version,
            environment,
        })
    }

    /// Path of the loaded library.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Version of the loaded library, from its file name (e.g. "1.31.1").
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Providers the library was built with.
    pub fn available_providers(&self) -> Vec<ProviderKind> {
        [
            ProviderKind::Cpu,
            ProviderKind::Cuda,
            ProviderKind::Tensorrt,
        ]
        .into_iter()
        .filter(|p| p.is_compiled_in())
        .collect()
    }

    pub(crate) fn environment(&self) -> &Environment {
        &self.environment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_file_names() {
        assert_eq!(
            version_from_file_name(Path::new("/x/libonnxruntime.so.1.31.1")).as_deref(),
            Some("1.31.1")
        );
        assert_eq!(
            version_from_file_name(Path::new("/x/libonnxruntime.so")),
            None
        );
        assert_eq!(
            version_from_file_name(Path::new("/x/libonnxruntime.so.1.x")),
            None
        );
    }

    #[test]
    fn missing_and_too_old_libraries_are_reported_with_their_path() {
        let err =
            OnnxRuntime::load(Path::new("/nonexistent/libonnxruntime.so.1.31.1")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ONNX Runtime library /nonexistent/libonnxruntime.so.1.31.1: file not found"
        );
        let tmp = tempfile::tempdir().unwrap();
        let old = tmp.path().join("libonnxruntime.so.1.16.3");
        std::fs::write(&old, b"").unwrap();
        let err = OnnxRuntime::load(&old).unwrap_err().to_string();
        assert!(
            err.contains("version 1.16.3 is too old: need 1.24 or newer"),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_is_not_a_library_is_an_error_not_a_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let bogus = tmp.path().join("libonnxruntime.so.1.31.1");
        std::fs::write(&bogus, b"this is not an ELF file").unwrap();
        let err = OnnxRuntime::load(&bogus).unwrap_err().to_string();
        assert!(err.contains(bogus.to_str().unwrap()), "{err}");
    }
}
