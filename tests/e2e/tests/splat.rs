//! `compress.splat.v1.SplatService` on the real `terse` binary: encode (unary and streamed),
//! decode to PLY and SPZ (unary and streamed), info, precise errors and limits.

use terse_e2e::{ConfigFile, Server, assert_status, upload_chunks, workspace};
use terse_proto::splat::v1::{
    DecodeRequest, DecodeStreamRequest, EncodeOptions, EncodeRequest, EncodeResult,
    EncodeStreamRequest, InfoRequest, Preset, SplatFormat, encode_stream_request::Part,
    splat_service_client::SplatServiceClient,
};
use terse_splat::{
    ply::{read_ply, write_ply},
    spz::{SpzVersion, read_spz, write_spz},
    synth::surface_scene,
};
use tonic::{Code, transport::Channel};

fn fixture() -> Vec<u8> {
    std::fs::read(workspace().join("tests/fixtures/splats/yashica_1024_sh3.ply")).unwrap()
}

async fn client(server: &Server) -> SplatServiceClient<Channel> {
    SplatServiceClient::new(server.channel().await)
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20)
}

async fn encode(
    client: &mut SplatServiceClient<Channel>,
    scene: Vec<u8>,
    options: EncodeOptions,
) -> Result<EncodeResult, tonic::Status> {
    Ok(client
        .encode(EncodeRequest {
            scene,
            options: Some(options),
        })
        .await?
        .into_inner()
        .result
        .unwrap())
}

fn stream_parts(options: EncodeOptions, scene: &[u8], chunk: usize) -> Vec<EncodeStreamRequest> {
    let mut parts = vec![EncodeStreamRequest {
        part: Some(Part::Options(options)),
    }];
    parts.extend(
        upload_chunks(scene, chunk)
            .into_iter()
            .map(|chunk| EncodeStreamRequest {
                part: Some(Part::Chunk(chunk)),
            }),
    );
    parts
}

#[tokio::test]
async fn encodes_real_ply_and_restores_it_within_the_reported_errors() {
    let server = Server::start(&["--config", "config/terse.toml"]).await;
    let mut client = client(&server).await;
    let ply = fixture();
    let original = read_ply(&ply, u64::MAX).unwrap().0;
    let result = encode(&mut client, ply.clone(), EncodeOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (result.splat_count, result.source_splats, result.sh_degree),
        (1024, 1024, 3)
    );
    let rd = result.rate_distortion.unwrap();
    assert_eq!(rd.compressed_bytes, result.bitstream.len() as u64);
    assert_eq!(rd.original_bytes, ply.len() as u64);
    assert!(
        result.compression_ratio > 8.0,
        "ratio {}",
        result.compression_ratio
    );
    assert!(rd.bits_per_splat.unwrap() < 8.0 * 30.0);
    let tags: Vec<&str> = result.sections.iter().map(|s| s.tag.as_str()).collect();
    assert_eq!(tags, ["POSN", "OPAC", "SCAL", "ROTN", "COLR", "SHRS"]);
    assert!(result.warnings.is_empty(), "{:?}", result.warnings);

    // Decode to PLY: same splats (in coded order), errors equal to the reported ones.
    let decoded = client
        .decode(DecodeRequest {
            bitstream: result.bitstream.clone(),
            output_format: SplatFormat::Ply as i32,
            spz_version: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (decoded.splat_count, decoded.sh_degree, decoded.format),
        (1024, 3, SplatFormat::Ply as i32)
    );
    let restored = read_ply(&decoded.scene, u64::MAX).unwrap().0;
    // Match each restored splat to its original by the nearest coded position.
    let reported = |name: &str| {
        result
            .attribute_errors
            .iter()
            .find(|e| e.attribute == name)
            .unwrap()
            .max_abs_error
    };
    for splat in &restored.positions {
        let nearest = original
            .positions
            .iter()
            .map(|p| (0..3).map(|k| (p[k] - splat[k]).abs()).fold(0f32, f32::max))
            .fold(f32::INFINITY, f32::min);
        assert!(f64::from(nearest) <= reported("position") + 1e-6);
    }
    assert!(
        reported("rotation_deg") < 0.5
            && reported("opacity") < 0.01
            && reported("sh_rest") <= 1.0 / 16.0 + 1e-6
    );

    // Decode to SPZ v3 and the default v4; both parse with SPZ readers.
    for (version, expect) in [(3, 3), (0, 4)] {
        let spz = client
            .decode(DecodeRequest {
                bitstream: result.bitstream.clone(),
                output_format: SplatFormat::Spz as i32,
                spz_version: version,
            })
            .await
            .unwrap()
            .into_inner();
        let (scene, header) = read_spz(&spz.scene, u64::MAX).unwrap();
        assert_eq!((header.version, scene.len()), (expect, 1024));
    }

    // Streamed decode reassembles to the unary PLY.
    let mut stream = client
        .decode_stream(DecodeStreamRequest {
            bitstream: result.bitstream.clone(),
            output_format: 0,
            spz_version: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut joined = Vec::new();
    while let Some(part) = stream.message().await.unwrap() {
        let chunk = part.chunk.unwrap();
        assert_eq!(chunk.offset, joined.len() as u64);
        joined.extend_from_slice(&chunk.data);
    }
    assert_eq!(joined, decoded.scene);

    // Info on each format.
    for (data, format, count) in [
        (ply.clone(), SplatFormat::Ply, 1024),
        (result.bitstream.clone(), SplatFormat::Terse, 1024),
        (
            write_spz(&original, SpzVersion::V3).unwrap(),
            SplatFormat::Spz,
            1024,
        ),
    ] {
        let info = client
            .info(InfoRequest { data })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (info.format, info.splat_count, info.sh_degree),
            (format as i32, count, 3)
        );
    }
}

#[tokio::test]
async fn streamed_encode_matches_unary_and_checks_its_chunks() {
    let server = Server::start(&["--config", "config/terse.toml"]).await;
    let mut client = client(&server).await;
    let mut splats = surface_scene(30_000, 1, 21);
    for opacity in splats.opacities.iter_mut().step_by(10) {
        *opacity = -8.0; // below 1/255 after the sigmoid
    }
    let scene = write_spz(&splats, SpzVersion::V4).unwrap();
    let options = EncodeOptions {
        preset: Preset::Small as i32,
        max_sh_degree: Some(0),
        ..Default::default()
    };
    let unary = encode(&mut client, scene.clone(), options).await.unwrap();
    assert_eq!(
        unary.pruned_splats, 3_000,
        "the small preset prunes near-transparent splats"
    );
    assert_eq!(unary.sh_degree, 0);
    assert!(
        unary
            .warnings
            .iter()
            .any(|w| w.contains("SH bands above degree 0")),
        "{:?}",
        unary.warnings
    );
    let streamed = client
        .encode_stream(tokio_stream::iter(stream_parts(options, &scene, 64 * 1024)))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(streamed.bitstream, unary.bitstream);

    let mut reordered = stream_parts(options, &scene, 64 * 1024);
    reordered.swap(1, 2);
    let err = client
        .encode_stream(tokio_stream::iter(reordered))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("lost or reordered"),
        "{}",
        err.message()
    );

    let mut twice = stream_parts(options, &scene, 64 * 1024);
    twice.push(EncodeStreamRequest {
        part: Some(Part::Options(options)),
    });
    let err = client
        .encode_stream(tokio_stream::iter(twice))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let no_options = stream_parts(options, &scene, 64 * 1024).split_off(1);
    let err = client
        .encode_stream(tokio_stream::iter(no_options))
        .await
        .unwrap_err();
    assert!(
        err.message()
            .contains("first stream message must carry the options"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn malformed_input_gets_invalid_argument_with_a_precise_message() {
    let server = Server::start(&["--config", "config/terse.toml"]).await;
    let mut client = client(&server).await;
    let ply = fixture();
    let bitstream = encode(&mut client, ply.clone(), EncodeOptions::default())
        .await
        .unwrap()
        .bitstream;
    let mut corrupt = bitstream.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x01;
    let cases: Vec<(&str, Result<(), tonic::Status>, &str)> = vec![
        (
            "garbage",
            encode(
                &mut client,
                b"hello world".to_vec(),
                EncodeOptions::default(),
            )
            .await
            .map(|_| ()),
            "unrecognized scene format",
        ),
        (
            "truncated ply",
            encode(
                &mut client,
                ply[..ply.len() - 100].to_vec(),
                EncodeOptions::default(),
            )
            .await
            .map(|_| ()),
            "need",
        ),
        (
            "bitstream as scene",
            encode(&mut client, bitstream.clone(), EncodeOptions::default())
                .await
                .map(|_| ()),
            "call Decode",
        ),
        (
            "bad knob",
            encode(
                &mut client,
                ply.clone(),
                EncodeOptions {
                    position_bits: Some(40),
                    ..Default::default()
                },
            )
            .await
            .map(|_| ()),
            "position_bits 40",
        ),
        (
            "corrupt bitstream",
            client
                .decode(DecodeRequest {
                    bitstream: corrupt,
                    output_format: 0,
                    spz_version: 0,
                })
                .await
                .map(|_| ()),
            "checksum mismatch",
        ),
        (
            "truncated bitstream",
            client
                .decode(DecodeRequest {
                    bitstream: bitstream[..40].to_vec(),
                    output_format: 0,
                    spz_version: 0,
                })
                .await
                .map(|_| ()),
            "truncated",
        ),
        (
            "not a bitstream",
            client
                .decode(DecodeRequest {
                    bitstream: ply.clone(),
                    output_format: 0,
                    spz_version: 0,
                })
                .await
                .map(|_| ()),
            "TRSE",
        ),
        (
            "bad spz version",
            client
                .decode(DecodeRequest {
                    bitstream: bitstream.clone(),
                    output_format: SplatFormat::Spz as i32,
                    spz_version: 7,
                })
                .await
                .map(|_| ()),
            "spz_version 7",
        ),
        (
            "truncated spz",
            encode(
                &mut client,
                write_spz(&surface_scene(100, 0, 1), SpzVersion::V3).unwrap()[..50].to_vec(),
                EncodeOptions::default(),
            )
            .await
            .map(|_| ()),
            "gzip",
        ),
        (
            "info on garbage",
            client
                .info(InfoRequest {
                    data: vec![1, 2, 3],
                })
                .await
                .map(|_| ()),
            "unrecognized data",
        ),
    ];
    for (name, result, needle) in cases {
        let err = result.expect_err(name);
        assert_eq!(err.code(), Code::InvalidArgument, "{name}: {err:?}");
        assert!(
            err.message().contains(needle),
            "{name}: `{}` lacks `{needle}`",
            err.message()
        );
    }

    // Issue 18, finding 5: a raised (or lowered) splat count with the checksums recomputed
    // must not decode into invented splats (25 KB in, 24.8 MB of PLY out before the fix).
    let n = terse_splat::codec::inspect(&bitstream).unwrap().splats;
    for count in [n + 1, n * 1000, n - 1] {
        let mut container = terse_entropy::Container::parse(&bitstream).unwrap();
        container.put_u64("splats", count);
        let err = client
            .decode(DecodeRequest {
                bitstream: container.to_bytes().unwrap(),
                output_format: 0,
                spz_version: 0,
            })
            .await
            .map(|r| r.into_inner().scene.len())
            .expect_err("a tampered splat count decoded");
        assert_eq!(err.code(), Code::InvalidArgument, "count {count}: {err:?}");
    }
    // A bitstream of container format 1 (before section seals) is refused with a reason.
    let mut legacy = bitstream.clone();
    legacy[4..6].copy_from_slice(&1u16.to_le_bytes());
    let err = client
        .decode(DecodeRequest {
            bitstream: legacy,
            output_format: 0,
            spz_version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("re-encode"), "{}", err.message());
}

#[tokio::test]
async fn splat_count_and_scene_size_limits_give_resource_exhausted() {
    let config = ConfigFile::new(
        "[server]\nservices = [\"splat\"]\n[splat]\nmax_splats = 500\nmax_scene_bytes = 200000\n",
    );
    let server = Server::start(&["--config", config.arg()]).await;
    let mut client = client(&server).await;
    let small = write_ply(&surface_scene(600, 0, 3));
    let err = encode(&mut client, small, EncodeOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(err.message().contains("limit is 500"), "{}", err.message());
    let big = fixture();
    let err = client
        .encode_stream(tokio_stream::iter(stream_parts(
            EncodeOptions::default(),
            &big,
            50_000,
        )))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("limit of 200000 bytes"),
        "{}",
        err.message()
    );
    let fits = write_ply(&surface_scene(400, 0, 4));
    let result = encode(&mut client, fits, EncodeOptions::default())
        .await
        .unwrap();
    let scene = client
        .decode(DecodeRequest {
            bitstream: result.bitstream,
            output_format: 0,
            spz_version: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let restored = read_ply(&scene.scene, u64::MAX).unwrap().0;
    let original = surface_scene(400, 0, 4);
    assert_eq!(restored.len(), original.len());
    // Issue 18, finding 16: Info answered OK with whatever count a header declared (2^40). A
    // PLY header over the limit is now refused like the scene itself.
    let mut huge = write_ply(&surface_scene(10, 0, 5));
    let header = String::from_utf8_lossy(&huge[..200]).into_owned();
    let declared = header
        .find("element vertex 10\n")
        .expect("vertex count line");
    huge.splice(
        declared..declared + "element vertex 10".len(),
        "element vertex 1099511627776".bytes(),
    );
    assert_status(
        client.info(InfoRequest { data: huge }).await,
        Code::ResourceExhausted,
        "scene has 1099511627776 splats, the limit is 500",
    );
}
