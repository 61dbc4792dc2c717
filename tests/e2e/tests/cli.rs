//! `terse-cli` against the real server, and in its in-process mode.

use std::{path::Path, process::Output};

use terse_e2e::{Server, binary, workspace};

/// Runs `terse-cli` from the workspace root (bounded) with `stdin`.
async fn cli(args: &[&str], stdin: &[u8]) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(binary("terse-cli"))
        .current_dir(workspace())
        .args(args)
        .env_remove("TERSE_SERVER")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("terse-cli starts");
    let mut pipe = child.stdin.take().expect("stdin");
    pipe.write_all(stdin).await.expect("stdin written");
    drop(pipe);
    tokio::time::timeout(
        std::time::Duration::from_secs(120),
        child.wait_with_output(),
    )
    .await
    .expect("terse-cli finishes in time")
    .expect("terse-cli runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn copy(from: &str, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(workspace().join("tests/fixtures").join(from), to).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_encode_and_decode_with_a_table_and_failures_named() {
    let server = Server::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    copy("images/astronaut_200x136.png", &input.join("a.png"));
    copy("audio/through_space_6s.ogg", &input.join("deep/clip.ogg"));
    copy("splats/yashica_1024_sh3.ply", &input.join("deep/scene.ply"));
    std::fs::write(input.join("notes.txt"), "not media").unwrap();
    let (input_s, enc, dec) = (
        input.to_str().unwrap(),
        dir.path().join("enc"),
        dir.path().join("dec"),
    );
    let (enc_s, dec_s) = (enc.to_str().unwrap(), dec.to_str().unwrap());
    let server_flag = ["--server", server.grpc_url.as_str()];

    let out = cli(
        &[
            &server_flag[..],
            &["encode", input_s, "-o", enc_s, "-j", "3"],
        ]
        .concat(),
        b"",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.contains("3 ok, 0 failed"), "{table}");
    let psnr_rows = table
        .lines()
        .filter(|line| line.trim_end().ends_with("ok") && !line.starts_with("total"))
        .filter(|line| {
            let psnr: f64 = line
                .split_whitespace()
                .rev()
                .nth(1)
                .unwrap()
                .parse()
                .unwrap();
            psnr > 20.0
        })
        .count();
    assert_eq!(psnr_rows, 3, "every row reports a PSNR: {table}");
    for name in [
        "a.png.terse-image",
        "deep/clip.ogg.terse-audio",
        "deep/scene.ply.terse-splat",
    ] {
        assert!(enc.join(name).is_file(), "{name} missing");
    }

    let out = cli(
        &[&server_flag[..], &["decode", enc_s, "-o", dec_s]].concat(),
        b"",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let png = image::open(dec.join("a.png")).expect("decoded PNG");
    assert_eq!((png.width(), png.height()), (200, 136));
    assert!(
        std::fs::read(dec.join("deep/clip.wav"))
            .unwrap()
            .starts_with(b"RIFF")
    );
    assert!(
        std::fs::read(dec.join("deep/scene.ply"))
            .unwrap()
            .starts_with(b"ply\n")
    );

    // Resuming skips finished outputs; a truncated bitstream fails the run and is named.
    let bitstream = std::fs::read(enc.join("a.png.terse-image")).unwrap();
    std::fs::write(
        enc.join("broken.terse-image"),
        &bitstream[..bitstream.len() / 3],
    )
    .unwrap();
    let out = cli(
        &[
            &server_flag[..],
            &["decode", enc_s, "-o", dec_s, "--skip-existing"],
        ]
        .concat(),
        b"",
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let (table, errors) = (text(&out.stdout), text(&out.stderr));
    assert!(
        table.contains("skipped") && table.contains("FAILED"),
        "{table}"
    );
    assert!(table.contains("3 ok, 1 failed"), "{table}");
    assert!(
        errors.contains("broken.terse-image: InvalidArgument"),
        "{errors}"
    );
    assert!(!dec.join("broken.png").exists());

    // A file named explicitly must be of a known type.
    let out = cli(
        &[
            &server_flag[..],
            &["encode", input.join("notes.txt").to_str().unwrap()],
        ]
        .concat(),
        b"",
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unrecognised file type"));
}

const PASSAGE: &str = "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in \
    Paris, France. It is named after the engineer Gustave Eiffel, whose company designed and \
    built the tower from 1887 to 1889. Locally nicknamed La dame de fer, it was constructed as \
    the centrepiece of the 1889 World's Fair.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compress_context_runs_in_process_without_a_server() {
    let out = cli(&["compress-context", "--rate", "0.5"], PASSAGE.as_bytes()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let compressed = text(&out.stdout);
    assert!(!compressed.trim().is_empty());
    assert!(compressed.split_whitespace().count() < PASSAGE.split_whitespace().count());
    assert!(
        text(&out.stderr).contains("tokens"),
        "{}",
        text(&out.stderr)
    );

    // Selection for a query, from a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doc.txt");
    std::fs::write(&file, PASSAGE).unwrap();
    let out = cli(
        &[
            "compress-context",
            file.to_str().unwrap(),
            "--query",
            "Which engineer is the tower named after?",
            "--top-k",
            "1",
        ],
        b"",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Gustave Eiffel"),
        "{}",
        text(&out.stdout)
    );
}

/// The manifest rows of a sharded run, as (input file name, status).
fn manifest_rows(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_batches_cover_every_input_once_and_resume() {
    let server = Server::start(&["--services", "image"]).await;
    // The container health check.
    for name in ["readiness", "liveness", "compress.image.v1.ImageService"] {
        let health = cli(&["--server", &server.grpc_url, "health", name], b"").await;
        assert!(health.status.success(), "{name}: {}", text(&health.stderr));
        assert_eq!(text(&health.stdout).trim(), "SERVING");
    }
    let unknown = cli(&["--server", &server.grpc_url, "health", "nope"], b"").await;
    assert!(!unknown.status.success());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut names = Vec::new();
    for i in 0..7 {
        let fixture = if i % 2 == 0 {
            "images/astronaut_200x136.png"
        } else {
            "images/coffee_131x97.png"
        };
        let name = format!("set{}/img{i}.png", i % 3);
        copy(fixture, &data.join(&name));
        names.push(name);
    }
    // An object list, as a batch system would hand out (one duplicate, one comment).
    let list = data.join("objects.txt");
    std::fs::write(
        &list,
        format!("# batch 1\n{}\n{}\n", names.join("\n"), names[0]),
    )
    .unwrap();
    let out = dir.path().join("out");
    let run = |shard: &str, extra: &[&str]| {
        let manifest = dir.path().join(format!("manifest-{}.jsonl", &shard[..1]));
        let mut args: Vec<String> = vec![
            "--server".into(),
            server.grpc_url.clone(),
            "encode".into(),
            "--list".into(),
            list.display().to_string(),
            "--out".into(),
            out.display().to_string(),
            "--shard".into(),
            shard.into(),
            "--manifest".into(),
            manifest.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let output = cli(&args, b"").await;
            assert!(
                output.status.success(),
                "{}{}",
                text(&output.stdout),
                text(&output.stderr)
            );
            manifest_rows(&manifest)
        }
    };
    let mut covered = Vec::new();
    for shard in ["0/3", "1/3", "2/3"] {
        let rows = run(shard, &[]).await;
        assert!(rows.len() == 2 || rows.len() == 3, "{rows:?}");
        for row in &rows {
            assert_eq!(row["status"], "ok", "{row}");
            assert_eq!(row["output_sha256"].as_str().unwrap().len(), 64);
            assert!(row["psnr_db"].as_f64().unwrap() > 20.0);
            covered.push(row["input"].as_str().unwrap().to_string());
        }
    }
    covered.sort();
    let mut expected: Vec<String> = names
        .iter()
        .map(|n| data.join(n).display().to_string())
        .collect();
    expected.sort();
    assert_eq!(
        covered, expected,
        "every input exactly once across the shards"
    );
    // Outputs mirror the list's tree.
    assert!(out.join("set1/img1.png.terse-image").is_file());

    // A worker that died is rerun: what exists is skipped, what is missing is done again.
    let first = manifest_rows(&dir.path().join("manifest-0.jsonl"));
    let lost = first[0]["output"].as_str().unwrap().to_string();
    std::fs::remove_file(&lost).unwrap();
    let rows = run("0/3", &["--skip-existing"]).await;
    for row in &rows {
        let expected = if row["output"] == lost.as_str() {
            "ok"
        } else {
            "skipped"
        };
        assert_eq!(row["status"], expected, "{row}");
        assert!(row["psnr_db"].as_f64().is_some(), "{row}");
    }
    assert_eq!(
        rows[0]["output_sha256"], first[0]["output_sha256"],
        "deterministic output"
    );
}

/// Issue 18, findings 10 and 11: `encode a/ b/ -o out/` with `a/x.png` and `b/x.png` wrote both
/// to `out/x.png.terse-image` and said "2 ok"; `decode DIR` after `encode DIR` replaced each
/// original with its lossy reconstruction. Both are now refused before any work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_that_would_lose_files_are_refused_before_any_work() {
    let server = Server::start(&["--config", "config/terse.toml", "--services", "image"]).await;
    let server_flag = ["--server", server.grpc_url.as_str()];
    let dir = tempfile::tempdir().unwrap();
    let (a, b, out) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("out"),
    );
    copy("images/astronaut_200x136.png", &a.join("x.png"));
    copy("images/coffee_131x97.png", &b.join("x.png"));
    let (a_s, b_s, out_s) = (
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let clash = cli(
        &[&server_flag[..], &["encode", a_s, b_s, "-o", out_s]].concat(),
        b"",
    )
    .await;
    assert!(!clash.status.success());
    assert!(
        text(&clash.stderr).contains("would both write"),
        "{}",
        text(&clash.stderr)
    );
    assert!(!out.exists(), "nothing was written");

    let original = std::fs::read(a.join("x.png")).unwrap();
    let encoded = cli(&[&server_flag[..], &["encode", a_s]].concat(), b"").await;
    assert!(encoded.status.success(), "{}", text(&encoded.stderr));
    // Encoding again may replace its own earlier output.
    let again = cli(&[&server_flag[..], &["encode", a_s]].concat(), b"").await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    let decode = cli(&[&server_flag[..], &["decode", a_s]].concat(), b"").await;
    assert!(!decode.status.success());
    assert!(
        text(&decode.stderr).contains("exists and was not written by terse: pass --overwrite"),
        "{}",
        text(&decode.stderr)
    );
    assert_eq!(
        std::fs::read(a.join("x.png")).unwrap(),
        original,
        "the original is intact"
    );
    let forced = cli(
        &[&server_flag[..], &["decode", a_s, "--overwrite"]].concat(),
        b"",
    )
    .await;
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert_ne!(std::fs::read(a.join("x.png")).unwrap(), original);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safetensors_round_trip_in_process_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let file = terse_e2e::bf16_checkpoint(300_000);
    let model = dir.path().join("model.safetensors");
    std::fs::write(&model, &file).unwrap();
    let out = cli(&["encode", model.to_str().unwrap()], b"").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let coded = dir.path().join("model.safetensors.terse-tensor");
    assert!(std::fs::metadata(&coded).unwrap().len() < file.len() as u64 * 3 / 4);
    std::fs::remove_file(&model).unwrap();
    let out = cli(&["decode", coded.to_str().unwrap()], b"").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::read(&model).unwrap() == file, "byte for byte");
}

/// A safetensors file of one KV tensor `kv` [30, 2, 3, tokens, 64] of `dtype`.
fn kv_file(tokens: usize, dtype: safetensors::Dtype) -> Vec<u8> {
    let n = 30 * 2 * 3 * tokens * 64;
    let values = terse_e2e::weight_values(n, 5);
    let bytes: Vec<u8> = match dtype {
        safetensors::Dtype::F16 => values
            .iter()
            .enumerate()
            .flat_map(|(i, v)| half::f16::from_f32(v * 20.0 + (i % 64) as f32 * 0.1).to_le_bytes())
            .collect(),
        _ => values
            .iter()
            .enumerate()
            .flat_map(|(i, v)| (v * 20.0 + (i % 64) as f32 * 0.1).to_le_bytes())
            .collect(),
    };
    let view =
        safetensors::tensor::TensorView::new(dtype, vec![30, 2, 3, tokens, 64], &bytes).unwrap();
    safetensors::serialize([("kv", view)], None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kv_cache_file_round_trips_through_the_server_in_its_dtype() {
    let server = Server::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("cache.safetensors");
    std::fs::write(&input, kv_file(32, safetensors::Dtype::F16)).unwrap();
    let url = server.grpc_url.as_str();
    let path = input.to_str().unwrap();
    let out = cli(
        &[
            "--server",
            url,
            "encode-kv",
            path,
            "--model",
            "smollm2-135m",
            "--level",
            "6",
        ],
        b"",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("bits/element"),
        "{}",
        text(&out.stderr)
    );
    let coded = dir.path().join("cache.terse-kv");
    std::fs::remove_file(&input).unwrap();
    let out = cli(
        &["--server", url, "decode-kv", coded.to_str().unwrap()],
        b"",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let decoded = std::fs::read(&input).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&decoded).unwrap();
    let kv = tensors.tensor("kv").unwrap();
    assert_eq!(kv.dtype(), safetensors::Dtype::F16);
    assert_eq!(kv.shape(), [30, 2, 3, 32, 64]);

    // A cache of another shape is refused with the reason, exit status 2.
    let bad = safetensors::serialize(
        [(
            "kv",
            safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                vec![2, 3, 4],
                &[0u8; 96],
            )
            .unwrap(),
        )],
        None,
    )
    .unwrap();
    std::fs::write(&input, bad).unwrap();
    let out = cli(
        &[
            "--server",
            url,
            "encode-kv",
            path,
            "--model",
            "smollm2-135m",
        ],
        b"",
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("[layers, 2, kv_heads, tokens, head_dim]"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn longllmlingua_from_files_prints_what_the_python_package_does() {
    let path = workspace().join("tokenizers/perplexity/tests/fixtures/llmlingua.json");
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let case = fixture["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["method"] == "longllmlingua")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "compress-context".to_string(),
        "--method".into(),
        "longllmlingua".into(),
        "--query".into(),
        case["question"].as_str().unwrap().into(),
        "--rate".into(),
        case["rate"].to_string(),
    ];
    for (i, context) in case["context"].as_array().unwrap().iter().enumerate() {
        let file = dir.path().join(format!("{i}.txt"));
        std::fs::write(&file, context.as_str().unwrap()).unwrap();
        args.push(file.to_str().unwrap().into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = cli(&args, b"").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim_end_matches('\n'),
        case["compressed_prompt"].as_str().unwrap()
    );
}
