//! Bad configuration fails start-up with one clear line on stderr and a non-zero exit.

use std::path::Path;

use terse_e2e::{ConfigFile, flip_byte, repository_copy, run_to_exit};

/// Runs terse with `args` (logging off, so stderr holds only the error) and returns the line.
async fn start_up_error(args: &[&str]) -> String {
    let mut all = vec!["--check", "--log-level", "off"];
    all.extend_from_slice(args);
    let failure = run_to_exit(&all, &[]).await;
    assert!(!failure.status.success(), "terse {args:?} should fail");
    assert_eq!(failure.status.code(), Some(1));
    let lines: Vec<&str> = failure.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one line expected, got:\n{}",
        failure.stderr
    );
    assert!(lines[0].starts_with("terse: error: "), "{}", lines[0]);
    lines[0].to_string()
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test]
async fn the_shipped_config_checks_out() {
    let result = run_to_exit(&["--check", "--config", "config/terse.toml"], &[]).await;
    assert!(result.status.success(), "{}", result.stderr);
}

/// Issue 18, finding 18: relative paths written in a config file are relative to the file's
/// directory, so `terse --config /abs/path/terse.toml` works from any working directory.
#[tokio::test]
async fn relative_paths_in_a_config_file_are_relative_to_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        terse_e2e::workspace().join("models/repository"),
        dir.path().join("shipped-models"),
    )
    .unwrap();
    let config = dir.path().join("terse.toml");
    std::fs::write(
        &config,
        "[server]\nservices = [\"models\"]\n[runtime]\nrepository = \"shipped-models\"\n",
    )
    .unwrap();
    // The binary runs from the workspace root, where `shipped-models` does not exist.
    let result = run_to_exit(&["--check", "--config", arg(&config)], &[]).await;
    assert!(result.status.success(), "{}", result.stderr);
    // A flag stays relative to the working directory.
    let line = start_up_error(&[
        "--config",
        arg(&config),
        "--model-repository",
        "shipped-models",
    ])
    .await;
    assert!(line.contains("shipped-models"), "{line}");
}

#[tokio::test]
async fn unknown_service() {
    let line = start_up_error(&["--services", "models,teleport"]).await;
    assert_eq!(
        line,
        "terse: error: unknown service `teleport` (available: models, splat, vision, image, audio, context, tensor)"
    );
}

#[tokio::test]
async fn unknown_config_key() {
    let config = ConfigFile::new("[server]\nlisten_port = 50051\n");
    let line = start_up_error(&["--config", config.arg()]).await;
    assert!(line.contains("unknown field `listen_port`"), "{line}");
    assert!(line.contains(config.arg()), "{line}");
}

#[tokio::test]
async fn missing_model_file() {
    let repository = repository_copy();
    let missing = repository.path().join("haar-wpt2d-synthesis/1/model.onnx");
    std::fs::remove_file(&missing).unwrap();
    let line = start_up_error(&["--model-repository", arg(repository.path())]).await;
    assert!(
        line.contains("model haar-wpt2d-synthesis:1: cannot read model file"),
        "{line}"
    );
    assert!(line.contains(arg(&missing)), "{line}");
}

#[tokio::test]
async fn model_sha256_mismatch() {
    let repository = repository_copy();
    let file = repository.path().join("haar-wpt2d-analysis/1/model.onnx");
    flip_byte(&file, 10, 0x40);
    let line = start_up_error(&["--model-repository", arg(repository.path())]).await;
    assert!(
        line.contains("model haar-wpt2d-analysis:1: sha256 mismatch"),
        "{line}"
    );
}

#[tokio::test]
async fn missing_onnxruntime_library() {
    let line = start_up_error(&["--ort-library", "/nonexistent/libonnxruntime.so.1.31.1"]).await;
    assert_eq!(
        line,
        "terse: error: ONNX Runtime library /nonexistent/libonnxruntime.so.1.31.1: file not found"
    );
}

#[tokio::test]
async fn onnxruntime_library_that_is_not_a_library() {
    let tmp = tempfile::tempdir().unwrap();
    let bogus = tmp.path().join("libonnxruntime.so.1.31.1");
    std::fs::write(&bogus, b"definitely not ELF").unwrap();
    let line = start_up_error(&["--ort-library", arg(&bogus)]).await;
    assert!(line.contains(arg(&bogus)), "{line}");
}

#[tokio::test]
async fn environment_variables_override_the_config_file() {
    let failure = run_to_exit(
        &[
            "--check",
            "--log-level",
            "off",
            "--config",
            "config/terse.toml",
        ],
        &[("TERSE_SERVICES", "models,nope")],
    )
    .await;
    assert!(
        failure.stderr.contains("unknown service `nope`"),
        "{}",
        failure.stderr
    );
}
