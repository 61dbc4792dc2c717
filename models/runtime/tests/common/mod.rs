//! Helpers shared by the runtime's integration tests.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use terse_runtime::{OnnxRuntime, resolve_library_path};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The ONNX Runtime library `scripts/setup` installs (or `ORT_DYLIB_PATH`), loaded once.
pub fn runtime() -> &'static OnnxRuntime {
    static RUNTIME: OnceLock<OnnxRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let path = std::env::var_os("ORT_DYLIB_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::set_current_dir(workspace()).unwrap();
                resolve_library_path(None).expect("run scripts/setup first")
            });
        OnnxRuntime::load(&path).expect("the ONNX Runtime from scripts/setup loads")
    })
}

/// `len` deterministic pseudo-random values in [0, 1), a different run for each `seed`.
pub fn test_values(len: usize, seed: u32) -> Vec<f32> {
    let mut state = 0x2545_f491 ^ seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 8) as f32 / (1u32 << 24) as f32
        })
        .collect()
}
