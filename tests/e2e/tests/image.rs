//! `compress.image.v1.ImageService` on the real `terse` binary with the shipped WaLLoC and MLIC
//! models: the PSNR an encode reports is the PSNR of what Decode returns; latents; streaming;
//! the MLIC rate ladder; errors.

use terse_e2e::{ConfigFile, Server, assert_status, upload_chunks, workspace};
use terse_proto::{
    common::v1::DataType,
    image::v1::{
        DecodeRequest, DecodeStreamRequest, EncodeOptions, EncodeRequest, EncodeStreamRequest,
        ImageFormat, ListCodecsRequest, encode_stream_request::Part,
        image_service_client::ImageServiceClient,
    },
};
use tonic::{Code, transport::Channel};

fn photo() -> Vec<u8> {
    std::fs::read(workspace().join("tests/fixtures/images/astronaut_200x136.png")).unwrap()
}

async fn client(server: &Server) -> ImageServiceClient<Channel> {
    ImageServiceClient::new(server.channel().await).max_decoding_message_size(64 << 20)
}

fn rgb(png: &[u8]) -> image::RgbImage {
    image::load_from_memory(png).unwrap().to_rgb8()
}

#[tokio::test]
async fn reported_quality_is_what_decode_returns() {
    let server = Server::start(&["--config", "config/terse.toml", "--services", "image"]).await;
    let mut client = client(&server).await;
    let codecs = client
        .list_codecs(ListCodecsRequest {})
        .await
        .unwrap()
        .into_inner()
        .codecs;
    assert!(!codecs.is_empty());
    for codec in &codecs {
        let options = EncodeOptions {
            codec: codec.name.clone(),
            measure_quality: true,
            return_latents: true,
            ..Default::default()
        };
        let result = client
            .encode(EncodeRequest {
                image: photo(),
                options: Some(options),
            })
            .await
            .unwrap()
            .into_inner()
            .result
            .unwrap();
        let rd = result.rate_distortion.unwrap();
        assert_eq!(
            (result.width, result.height, result.channels),
            (200, 136, 3)
        );
        assert_eq!(rd.compressed_bytes, result.bitstream.len() as u64);
        let reported = rd.psnr_db.unwrap();
        // Issue 18, finding 17: MS-SSIM used to be silently missing under 161 px per side; it
        // is now computed over the scales that fit (4 here), and the response says so.
        let ms_ssim = rd.ms_ssim.expect("MS-SSIM at fewer scales");
        assert!(rd.bits_per_pixel.unwrap() > 0.0 && ms_ssim > 0.5 && ms_ssim <= 1.0);
        assert!(
            result
                .warnings
                .iter()
                .any(|w| w.contains("MS-SSIM is computed over 4 of its 5 scales")),
            "{:?}",
            result.warnings
        );
        let latents = result.latents.unwrap();
        if codec.family == "mlic" {
            // y_hat [M, H/16, W/16] of the image padded to multiples of 64 (256 x 192).
            assert_eq!(latents.datatype, DataType::Fp32 as i32);
            assert_eq!(
                latents.shape,
                vec![i64::from(codec.latent_channels), 12, 16]
            );
        } else {
            assert_eq!(codec.family, "walloc");
            assert_eq!(latents.datatype, DataType::Int32 as i32);
            assert_eq!(
                latents.shape,
                vec![i64::from(codec.latent_channels), 17, 25]
            );
        }

        let decoded = client
            .decode(DecodeRequest {
                bitstream: result.bitstream.clone(),
                format: ImageFormat::Png as i32,
            })
            .await
            .unwrap()
            .into_inner();
        let measured = terse_walloc::psnr(&rgb(&photo()), &rgb(&decoded.image));
        assert!(
            (measured - reported).abs() < 1e-9,
            "{}: reported {reported} dB, decoded {measured} dB",
            codec.name
        );

        // Streamed decode of raw RGB reassembles to the same pixels.
        let mut stream = client
            .decode_stream(DecodeStreamRequest {
                bitstream: result.bitstream,
                format: ImageFormat::RawRgb8 as i32,
            })
            .await
            .unwrap()
            .into_inner();
        let mut raw = Vec::new();
        while let Some(part) = stream.message().await.unwrap() {
            raw.extend_from_slice(&part.chunk.unwrap().data);
        }
        assert_eq!(raw, rgb(&decoded.image).into_raw());
    }
}

/// Images over a codec's tile bound (MLIC: 1 Mi pixels, WaLLoC: 4 Mi) are coded as a grid
/// of tiles, each an ordinary bitstream of the codec (issue 18, finding 3: no network run over
/// more than a tile, so an ended call stops within a second). The reported quality is still
/// that of the whole decoded image.
#[tokio::test]
async fn images_over_a_tile_are_coded_in_tiles_that_decode_whole() {
    let server = Server::start(&["--config", "config/terse.toml", "--services", "image"]).await;
    let mut client = client(&server).await;
    // Two tiles side by side each: the fewest tiles, then the shortest seam.
    for (codec, width, height, tile_width) in [
        ("mlic-q1", 1500, 800, 768),
        ("walloc-rgb-16x", 2500, 1700, 1280),
    ] {
        let original = image::imageops::resize(
            &rgb(&photo()),
            width,
            height,
            image::imageops::FilterType::Triangle,
        );
        let mut png = Vec::new();
        original
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let encode = |return_latents| EncodeRequest {
            image: png.clone(),
            options: Some(EncodeOptions {
                codec: codec.into(),
                measure_quality: true,
                return_latents,
                ..Default::default()
            }),
        };
        let result = client
            .encode(encode(false))
            .await
            .unwrap()
            .into_inner()
            .result
            .unwrap();
        assert_eq!((result.width, result.height), (width, height));
        let header = terse_entropy::Header::read(&result.bitstream).unwrap();
        let grid = ["width", "height", "tile_width", "tile_height"].map(|k| header.u64(k).unwrap());
        let expected = [width, height, tile_width, height].map(u64::from);
        assert_eq!(grid, expected, "{codec}");
        let layout = terse_entropy::Layout::read(&result.bitstream).unwrap();
        assert_eq!(layout.sections.len(), 2);
        assert!(layout.sections.iter().all(|s| &s.tag == b"TILE"));

        let decoded = client
            .decode(DecodeRequest {
                bitstream: result.bitstream,
                format: ImageFormat::Png as i32,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((decoded.width, decoded.height), (width, height));
        let reported = result.rate_distortion.unwrap().psnr_db.unwrap();
        let measured = terse_walloc::psnr(&original, &rgb(&decoded.image));
        assert!(
            (measured - reported).abs() < 1e-9 && reported > 24.0,
            "{codec}: reported {reported} dB, decoded {measured} dB"
        );

        assert_status(
            client.encode(encode(true)).await.map(|_| ()),
            Code::InvalidArgument,
            "coded as 2 tiles",
        );
    }
}

#[tokio::test]
async fn streamed_upload_matches_unary_and_errors_are_precise() {
    let server = Server::start(&["--config", "config/terse.toml", "--services", "image"]).await;
    let mut client = client(&server).await;
    let image = photo();
    let unary = client
        .encode(EncodeRequest {
            image: image.clone(),
            options: None,
        })
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    let mut parts = vec![EncodeStreamRequest {
        part: Some(Part::Options(EncodeOptions::default())),
    }];
    parts.extend(
        upload_chunks(&image, 10_000)
            .into_iter()
            .map(|chunk| EncodeStreamRequest {
                part: Some(Part::Chunk(chunk)),
            }),
    );
    let streamed = client
        .encode_stream(tokio_stream::iter(parts))
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(streamed.bitstream, unary.bitstream);

    let mut corrupt = unary.bitstream.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    let cases = [
        (
            client
                .encode(EncodeRequest {
                    image: b"not an image".to_vec(),
                    options: None,
                })
                .await
                .map(|_| ()),
            Code::InvalidArgument,
            "unrecognized image format",
        ),
        (
            client
                .encode(EncodeRequest {
                    image: image[..image.len() / 2].to_vec(),
                    options: None,
                })
                .await
                .map(|_| ()),
            Code::InvalidArgument,
            "cannot decode image",
        ),
        (
            client
                .encode(EncodeRequest {
                    image: image.clone(),
                    options: Some(EncodeOptions {
                        codec: "jpeg2000".into(),
                        ..Default::default()
                    }),
                })
                .await
                .map(|_| ()),
            Code::NotFound,
            "codec `jpeg2000` is not hosted",
        ),
        (
            client
                .decode(DecodeRequest {
                    bitstream: corrupt,
                    format: 0,
                })
                .await
                .map(|_| ()),
            Code::InvalidArgument,
            "checksum mismatch",
        ),
        // Issue 18, finding 13: another service's bitstream says which service decodes it.
        (
            client
                .decode(DecodeRequest {
                    bitstream: {
                        let mut other =
                            terse_entropy::Container::new(terse_entropy::CodecId::WallocAudio);
                        other.put_u64("frames", 1);
                        other.to_bytes().unwrap()
                    },
                    format: 0,
                })
                .await
                .map(|_| ()),
            Code::FailedPrecondition,
            "WallocAudio bitstream: compress.audio.v1.AudioService decodes it",
        ),
        (
            client
                .decode(DecodeRequest {
                    bitstream: unary.bitstream[..30].to_vec(),
                    format: 0,
                })
                .await
                .map(|_| ()),
            Code::InvalidArgument,
            "truncated",
        ),
        (
            client
                .decode(DecodeRequest {
                    bitstream: unary.bitstream.clone(),
                    format: 9,
                })
                .await
                .map(|_| ()),
            Code::InvalidArgument,
            "unknown image format 9",
        ),
    ];
    for (result, code, needle) in cases {
        assert_status(result, code, needle);
    }

    let small = ConfigFile::new("[server]\nservices = [\"image\"]\n[image]\nmax_pixels = 10000\n");
    let limited = Server::start(&["--config", small.arg()]).await;
    let err = ImageServiceClient::new(limited.channel().await)
        .encode(EncodeRequest {
            image,
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message()
            .contains("200x136 pixels exceeds the limit of 10000"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn fewer_latent_bits_give_smaller_files_that_decode() {
    let server = Server::start(&["--config", "config/terse.toml", "--services", "image"]).await;
    let mut client = client(&server).await;
    let mut previous: Option<(usize, f64)> = None;
    for bits in [8, 6, 4] {
        let result = client
            .encode(EncodeRequest {
                image: photo(),
                options: Some(EncodeOptions {
                    latent_bits: bits,
                    measure_quality: true,
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .result
            .unwrap();
        assert_eq!(result.latent_bits, bits);
        let psnr = result.rate_distortion.unwrap().psnr_db.unwrap();
        let decoded = client
            .decode(DecodeRequest {
                bitstream: result.bitstream.clone(),
                format: ImageFormat::Png as i32,
            })
            .await
            .unwrap()
            .into_inner();
        let measured = terse_walloc::psnr(&rgb(&photo()), &rgb(&decoded.image));
        assert!((measured - psnr).abs() < 1e-9, "{bits} bits");
        if let Some((bytes, quality)) = previous {
            assert!(
                result.bitstream.len() < bytes && psnr < quality,
                "{bits} bits: {} B {psnr:.2} dB after {bytes} B {quality:.2} dB",
                result.bitstream.len()
            );
        }
        previous = Some((result.bitstream.len(), psnr));
    }
    assert_status(
        client
            .encode(EncodeRequest {
                image: photo(),
                options: Some(EncodeOptions {
                    latent_bits: 1,
                    ..Default::default()
                }),
            })
            .await,
        Code::InvalidArgument,
        "latent_bits 1 is outside 2..=8",
    );
}

#[tokio::test]
async fn mlic_rate_points_form_a_ladder_and_refuse_what_they_cannot_do() {
    let server = Server::start(&["--config", "config/terse.toml", "--services", "image"]).await;
    let mut client = client(&server).await;
    let codecs = client
        .list_codecs(ListCodecsRequest {})
        .await
        .unwrap()
        .into_inner()
        .codecs;
    let mlic: Vec<String> = codecs
        .iter()
        .filter(|c| c.family == "mlic")
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(
        mlic,
        [
            "mlic-q1", "mlic-q2", "mlic-q3", "mlic-q4", "mlic-q5", "mlic-q6"
        ]
    );
    let mut previous: Option<(usize, f64)> = None;
    let mut bitstream = Vec::new();
    for name in &mlic {
        let result = client
            .encode(EncodeRequest {
                image: photo(),
                options: Some(EncodeOptions {
                    codec: name.clone(),
                    measure_quality: true,
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .result
            .unwrap();
        assert_eq!(result.model.unwrap().name, "mlic");
        let psnr = result.rate_distortion.unwrap().psnr_db.unwrap();
        if let Some((bytes, quality)) = previous {
            assert!(
                result.bitstream.len() > bytes && psnr > quality,
                "{name}: {} B {psnr:.2} dB after {bytes} B {quality:.2} dB",
                result.bitstream.len()
            );
        }
        previous = Some((result.bitstream.len(), psnr));
        bitstream = result.bitstream;
    }
    assert_status(
        client
            .encode(EncodeRequest {
                image: photo(),
                options: Some(EncodeOptions {
                    codec: "mlic-q2".into(),
                    latent_bits: 6,
                    ..Default::default()
                }),
            })
            .await,
        Code::InvalidArgument,
        "MLIC rate points are separate codecs",
    );
    // The top rate point's bitstream decodes; an earlier build of it is named; a bitstream
    // whose recorded rate point was changed is refused.
    let decoded = client
        .decode(DecodeRequest {
            bitstream: bitstream.clone(),
            format: ImageFormat::Png as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((decoded.width, decoded.height), (200, 136));
    let container = terse_entropy::Container::parse(&bitstream).unwrap();
    let mut other_build = container.clone();
    let mut tag = other_build.model.clone().unwrap();
    tag.sha256_prefix[0] ^= 0xff;
    other_build.model = Some(tag);
    let mut other_rate = container.clone();
    other_rate.put_u64("rate", 2);
    for (tampered, code, needle) in [
        (
            other_build,
            Code::FailedPrecondition,
            "another build of `mlic-q6`",
        ),
        (other_rate, Code::InvalidArgument, "rate point 2"),
    ] {
        assert_status(
            client
                .decode(DecodeRequest {
                    bitstream: tampered.to_bytes().unwrap(),
                    format: ImageFormat::Png as i32,
                })
                .await,
            code,
            needle,
        );
    }
    for cut in [20, bitstream.len() / 2, bitstream.len() - 1] {
        let result = client
            .decode(DecodeRequest {
                bitstream: bitstream[..cut].to_vec(),
                format: ImageFormat::Png as i32,
            })
            .await;
        assert_eq!(
            result.unwrap_err().code(),
            Code::InvalidArgument,
            "cut at {cut}"
        );
    }
}

/// Issue 18, finding 3: a call that ended at its deadline stopped counting against
/// `max_concurrent_requests` while its blocking work went on, so abandoned calls could take a
/// limited server far past its memory budget. The work now keeps the permit until it ends.
#[tokio::test]
async fn abandoned_work_keeps_its_permit_until_it_ends() {
    let config = ConfigFile::new("[server]\nservices = [\"image\"]\nmax_concurrent_requests = 1\n");
    let server = Server::start(&["--config", config.arg()]).await;
    let mut client = client(&server).await;
    // The work must start before the deadline and outlive it by far, on a loaded machine as on
    // a fast one: a 2048² encode with quality takes about 4 s on 2 idle cores, and the 500 ms
    // deadline leaves a loaded server time to start it (with 1024² and 150 ms, a full test run
    // with a bench alongside saw the deadline pass before the work began, so no permit was
    // held).
    let side = 2048u32;
    let gradient = image::RgbImage::from_fn(side, side, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut png = Vec::new();
    gradient
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let mut request = tonic::Request::new(EncodeRequest {
        image: png,
        options: Some(EncodeOptions {
            measure_quality: true,
            ..Default::default()
        }),
    });
    request.set_timeout(std::time::Duration::from_millis(500));
    let started = std::time::Instant::now();
    assert_eq!(
        client.encode(request).await.unwrap_err().code(),
        Code::DeadlineExceeded
    );
    // The encode is still running on the server: its permit is still taken.
    let shed = client.list_codecs(ListCodecsRequest {}).await.unwrap_err();
    assert_eq!(shed.code(), Code::ResourceExhausted, "{shed:?}");
    // Once the abandoned work ends, the permit returns.
    loop {
        match client.list_codecs(ListCodecsRequest {}).await {
            Ok(_) => break,
            Err(status) => assert_eq!(status.code(), Code::ResourceExhausted),
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the permit never came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Issue 18, finding 4: a request reserves its working memory (pixels × the codec's measured
/// bytes per pixel) before any work; one over `server.max_work_memory_bytes` is refused at once.
#[tokio::test]
async fn requests_over_the_memory_budget_are_refused_before_any_work() {
    let config =
        ConfigFile::new("[server]\nservices = [\"image\"]\nmax_work_memory_bytes = 134217728\n");
    let server = Server::start(&["--config", config.arg()]).await;
    let mut client = client(&server).await;
    let large = {
        let image = image::RgbImage::from_fn(1024, 1024, |x, y| {
            image::Rgb([(x / 4) as u8, (y / 4) as u8, ((x + y) / 8) as u8])
        });
        let mut png = Vec::new();
        image
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png
    };
    for codec in ["mlic-q3", ""] {
        let request = |image: Vec<u8>| EncodeRequest {
            image,
            options: Some(EncodeOptions {
                codec: codec.into(),
                measure_quality: true,
                ..Default::default()
            }),
        };
        let started = std::time::Instant::now();
        let refused = client
            .encode(request(large.clone()))
            .await
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            refused.code(),
            Code::ResourceExhausted,
            "{codec}: {refused:?}"
        );
        assert!(
            refused.message().contains("1024x1024 pixels")
                && refused.message().contains("max_work_memory_bytes"),
            "{codec}: {}",
            refused.message()
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        // A small image fits, and its reservation is returned when it ends.
        for _ in 0..3 {
            client.encode(request(photo())).await.unwrap();
        }
    }
}
