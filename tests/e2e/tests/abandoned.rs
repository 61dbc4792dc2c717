//! Work a call abandons stops with it (issue 18, finding 3): after a deadline the server's CPU
//! goes idle once the running ONNX Runtime node ends, and SIGTERM exits within
//! `shutdown_grace_ms` even while a long ONNX Runtime run is in progress. The long run is an
//! MLIC encode of a large noisy image.

use std::time::{Duration, Instant};

use terse_e2e::{ConfigFile, Server};
use terse_proto::image::v1::{
    EncodeOptions, EncodeRequest, image_service_client::ImageServiceClient,
};
use tonic::{Code, Request};

/// A PNG of `side`² noisy pixels (seconds of MLIC analysis on one core).
fn large_png(side: u32) -> Vec<u8> {
    let mut state = 0x9e37_79b9_u32;
    let image = image::RgbImage::from_fn(side, side, |x, y| {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = (state >> 27) as u8;
        image::Rgb([(x / 8) as u8 ^ noise, (y / 8) as u8, noise.wrapping_mul(3)])
    });
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

fn encode_request(png: Vec<u8>, deadline: Option<Duration>) -> Request<EncodeRequest> {
    let mut request = Request::new(EncodeRequest {
        image: png,
        options: Some(EncodeOptions {
            codec: "mlic-q6".into(),
            ..Default::default()
        }),
    });
    if let Some(deadline) = deadline {
        request.set_timeout(deadline);
    }
    request
}

/// CPU seconds (user + system) the process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // /proc reports in USER_HZ, which Linux fixes at 100 on every ABI.
    ticks / 100.0
}

#[tokio::test]
async fn work_stops_when_its_deadline_passes() {
    let server = Server::start(&["--config", "config/terse.toml", "--services", "image"]).await;
    let mut client = ImageServiceClient::new(server.channel().await);
    let png = large_png(2048);
    let started = Instant::now();
    let status = client
        .encode(encode_request(png, Some(Duration::from_millis(2500))))
        .await
        .unwrap_err();
    // The server's deadline answer, or the client's own timer firing first.
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // ONNX Runtime checks its terminate flag between graph nodes, and one convolution over a
    // 2048² image takes a second or two on a busy core: measure after that, and allow one
    // more node's worth of CPU (a loaded CI machine). Unterminated, the encode keeps a core
    // busy through the whole window (2.99 CPU-seconds of 3).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = cpu_seconds(server.pid());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = cpu_seconds(server.pid()) - before;
    assert!(
        used < 1.0,
        "the server used {used:.2} CPU seconds in 3 s, from 3 s after the call's deadline"
    );
}

#[tokio::test]
async fn sigterm_exits_within_the_grace_period_despite_a_long_run() {
    let config = ConfigFile::new(
        "[server]\nshutdown_grace_ms = 500\nrequest_timeout_ms = 0\nservices = [\"image\"]\n",
    );
    let server = Server::start(&["--config", config.arg()]).await;
    let mut client = ImageServiceClient::new(server.channel().await);
    let png = large_png(2048);
    let call = tokio::spawn(async move { client.encode(encode_request(png, None)).await });
    server
        .wait_for_metric("terse_grpc_in_flight_requests 1")
        .await;
    // Into the analysis network's run.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    server.terminate().await;
    let exit = server.wait(Duration::from_secs(60)).await;
    let took = started.elapsed();
    assert!(exit.status.success(), "{:?}\n{}", exit.status, exit.stderr);
    assert!(took < Duration::from_secs(3), "exit took {took:?}");
    assert!(call.await.unwrap().is_err());
}
