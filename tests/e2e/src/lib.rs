//! Harness for end-to-end tests: starts the real `terse` binary on 127.0.0.1 with ephemeral
//! ports, waits for its ready line, and stops it when dropped.

use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use std::sync::{Arc, Mutex};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    process::{Child, Command},
    task::JoinHandle,
};

/// How long start-up may take before a test fails.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace exists")
}

/// A workspace binary (`terse`, `terse-load`): `$TERSE_BIN_DIR/<name>`, else
/// `target/debug/<name>` (scripts/test builds the workspace first).
pub fn binary(name: &str) -> PathBuf {
    let dir = std::env::var_os("TERSE_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace().join("target"))
                .join("debug")
        });
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

/// A command for the binary, run from the workspace root so relative paths in the default
/// config (models/repository, .venv) resolve.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(binary("terse"));
    command
        .current_dir(workspace())
        .args(args)
        .kill_on_drop(true);
    command
}

/// What a run that was expected to fail printed.
#[derive(Debug)]
pub struct Failure {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything on stderr.
    pub stderr: String,
}

/// Runs the binary to completion (bounded by [`START_TIMEOUT`]) and returns its status and stderr.
pub async fn run_to_exit(args: &[&str], envs: &[(&str, &str)]) -> Failure {
    let mut command = command(args);
    command
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let output = tokio::time::timeout(START_TIMEOUT, command.output())
        .await
        .expect("terse exits in time")
        .expect("terse starts");
    Failure {
        status: output.status,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A running server.
pub struct Server {
    child: Child,
    /// Everything the server wrote to stderr so far (drained continuously so logging never blocks).
    stderr: Arc<Mutex<String>>,
    stderr_task: Option<JoinHandle<()>>,
    /// `http://127.0.0.1:PORT` of the gRPC listener.
    pub grpc_url: String,
    /// `127.0.0.1:PORT` of the gRPC listener.
    pub grpc_addr: String,
    /// `127.0.0.1:PORT` of the metrics listener.
    pub metrics_addr: String,
}

impl Server {
    /// Starts `terse` with ephemeral ports plus `args`, and waits for it to be ready.
    pub async fn start(args: &[&str]) -> Self {
        Self::start_on("127.0.0.1:0", args).await
    }

    /// Starts `terse` with its gRPC listener on `listen` (metrics on an ephemeral port) plus
    /// `args`, and waits for it to be ready.
    pub async fn start_on(listen: &str, args: &[&str]) -> Self {
        let mut all = vec!["--listen", listen, "--metrics-listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut child = command(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("terse starts");
        // Drain stderr from the start: a verbose server must never block on a full pipe.
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        let stderr_task = tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut text = sink.lock().expect("stderr buffer");
                text.push_str(&line);
                text.push('\n');
            }
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(START_TIMEOUT, lines.next_line()).await;
        let line = match ready {
            Ok(Ok(Some(line))) if line.starts_with("terse ready ") => line,
            other => {
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                let log = stderr.lock().expect("stderr buffer").clone();
                panic!("terse did not become ready ({other:?}); stderr:\n{log}");
            }
        };
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|part| part.strip_prefix(key))
                .unwrap_or_else(|| panic!("ready line `{line}` lacks {key}"))
                .to_string()
        };
        let grpc_addr = field("grpc=");
        let metrics_addr = field("metrics=");
        Self {
            stderr,
            stderr_task: Some(stderr_task),
            child,
            grpc_url: format!("http://{grpc_addr}"),
            grpc_addr,
            metrics_addr,
        }
    }

    /// A channel to the server.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.grpc_url.clone())
            .expect("valid url")
            .connect()
            .await
            .expect("connects to terse")
    }

    /// Waits (up to 5 s) until `/metrics` has exactly the line `line`.
    pub async fn wait_for_metric(&self, line: &str) {
        self.wait_for_any_metric(&[line]).await;
    }

    /// Waits (up to 5 s) until `/metrics` has exactly one of `lines`, and returns it.
    pub async fn wait_for_any_metric<'a>(&self, lines: &[&'a str]) -> &'a str {
        for _ in 0..200 {
            let metrics = self.metrics().await;
            if let Some(line) = lines
                .iter()
                .find(|&&line| metrics.lines().any(|l| l == line))
            {
                return line;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "none of the metric lines {lines:?} appeared:\n{}\nserver stderr:\n{}",
            self.metrics().await,
            self.stderr()
        );
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Kills the process at once (SIGKILL: no drain) and waits for it to be gone.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill works");
    }

    /// Sends SIGTERM.
    pub async fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .await
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit and returns its status and stderr.
    pub async fn wait(mut self, limit: Duration) -> Failure {
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .expect("terse exits in time")
            .expect("wait works");
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        let stderr = self.stderr.lock().expect("stderr buffer").clone();
        Failure { status, stderr }
    }

    /// `GET /metrics` over plain HTTP/1.1.
    pub async fn metrics(&self) -> String {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(&self.metrics_addr)
            .await
            .expect("metrics listener");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .expect("request sent");
        let mut response = String::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            stream.read_to_string(&mut response),
        )
        .await
        .expect("metrics answer in time")
        .expect("metrics readable");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        response
    }
}

/// A copy of the shipped repository in a temporary directory. Files over 64 MiB (the causal LM
/// that scripts/setup builds) are symlinked, not copied: tests corrupt only the small models.
pub fn repository_copy() -> tempfile::TempDir {
    const LINK_ABOVE_BYTES: u64 = 64 << 20;
    let tmp = tempfile::tempdir().unwrap();
    let source = workspace().join("models/repository");
    for model in std::fs::read_dir(&source).unwrap() {
        let model = model.unwrap().path();
        for version in std::fs::read_dir(&model).unwrap() {
            let version = version.unwrap().path();
            let target = tmp
                .path()
                .join(model.file_name().unwrap())
                .join(version.file_name().unwrap());
            std::fs::create_dir_all(&target).unwrap();
            for file in std::fs::read_dir(&version).unwrap() {
                let file = file.unwrap().path();
                let into = target.join(file.file_name().unwrap());
                if std::fs::metadata(&file).unwrap().len() > LINK_ABOVE_BYTES {
                    std::os::unix::fs::symlink(&file, into).unwrap();
                } else {
                    std::fs::copy(&file, into).unwrap();
                }
            }
        }
    }
    tmp
}

/// A TOML config file in its own temporary directory (removed on drop).
pub struct ConfigFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl ConfigFile {
    /// Writes `toml` to a fresh temporary file.
    pub fn new(toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("terse.toml");
        std::fs::write(&path, toml).expect("config written");
        Self { _dir: dir, path }
    }

    /// The file's path as a command-line argument.
    pub fn arg(&self) -> &str {
        self.path.to_str().expect("temporary paths are UTF-8")
    }
}

/// Flips bits `mask` of byte `index` of `file` (to break a model's checksum).
pub fn flip_byte(file: &Path, index: usize, mask: u8) {
    let mut bytes = std::fs::read(file).expect("file readable");
    bytes[index] ^= mask;
    std::fs::write(file, bytes).expect("file writable");
}

/// A file cut into upload chunks of `size` bytes with their offsets (the chunk messages of the
/// streamed encode calls).
pub fn upload_chunks(bytes: &[u8], size: usize) -> Vec<terse_proto::common::v1::Chunk> {
    bytes
        .chunks(size)
        .enumerate()
        .map(|(i, data)| terse_proto::common::v1::Chunk {
            data: data.to_vec(),
            offset: (i * size) as u64,
        })
        .collect()
}

/// Asserts that a call failed with `code` and a message containing `needle`.
pub fn assert_status<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
    needle: &str,
) {
    let err = result.unwrap_err();
    assert_eq!(err.code(), code, "{err:?}");
    assert!(
        err.message().contains(needle),
        "`{}` lacks `{needle}`",
        err.message()
    );
}

/// The gRPC health status of `service` ("" for the whole server).
pub async fn health_status(
    channel: tonic::transport::Channel,
    service: &str,
) -> tonic_health::pb::health_check_response::ServingStatus {
    let response = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.to_string(),
        })
        .await
        .expect("health check answers");
    response.into_inner().status()
}

/// A loopback address with a port that was free a moment ago (for servers that must come back
/// on the same port).
pub fn free_loopback_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("bound address").to_string()
}

/// Weight-like values (a sum of four uniform bytes, centred, scaled to about ±0.08) from a
/// xorshift seed: the same on every machine.
pub fn weight_values(n: usize, seed: u32) -> Vec<f32> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            let mut sum = 0.0f32;
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                sum += f32::from(state as u8) / 255.0;
            }
            (sum - 2.0) * 0.04
        })
        .collect()
}

/// A safetensors file of one BF16 tensor `w` of [`weight_values`], written by hand.
pub fn bf16_checkpoint(n: usize) -> Vec<u8> {
    let data: Vec<u8> = weight_values(n, 7)
        .iter()
        .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
        .collect();
    let mut header = format!(
        r#"{{"w":{{"dtype":"BF16","shape":[{n}],"data_offsets":[0,{}]}}}}"#,
        2 * n
    );
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header.as_bytes());
    file.extend_from_slice(&data);
    file
}
