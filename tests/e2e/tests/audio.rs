//! `compress.audio.v1.AudioService` on the real `terse` binary with the shipped WaLLoC audio
//! model: the PSNR an encode reports is the PSNR of the WAV that Decode returns; mono and
//! resampled input; latents; streaming; precise errors and limits.

use terse_audio_io::{AudioClip, DecodeLimits, decode_audio_file};
use terse_e2e::{ConfigFile, Server, assert_status, upload_chunks, workspace};
use terse_proto::{
    audio::v1::{
        DecodeRequest, DecodeStreamRequest, EncodeOptions, EncodeRequest, EncodeStreamRequest,
        ListCodecsRequest, audio_service_client::AudioServiceClient, encode_stream_request::Part,
    },
    common::v1::DataType,
};
use tonic::{Code, transport::Channel};

const LIMITS: DecodeLimits = DecodeLimits {
    max_seconds: 60.0,
    max_channels: 2,
};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(workspace().join("tests/fixtures/audio").join(name)).unwrap()
}

fn music() -> Vec<u8> {
    fixture("through_space_6s.ogg")
}

fn clip(file: &[u8]) -> AudioClip {
    decode_audio_file(file, LIMITS).unwrap()
}

async fn client(server: &Server) -> AudioServiceClient<Channel> {
    AudioServiceClient::new(server.channel().await).max_decoding_message_size(64 << 20)
}

#[tokio::test]
async fn reported_quality_is_what_decode_returns() {
    let server = Server::start(&["--config", "config/terse.toml", "--services", "audio"]).await;
    let mut client = client(&server).await;
    let codecs = client
        .list_codecs(ListCodecsRequest {})
        .await
        .unwrap()
        .into_inner()
        .codecs;
    assert!(!codecs.is_empty(), "no walloc-audio model is shipped");
    let original = clip(&music());
    for codec in &codecs {
        assert_eq!((codec.sample_rate, codec.channels), (48_000, 2));
        let result = client
            .encode(EncodeRequest {
                audio: music(),
                options: Some(EncodeOptions {
                    codec: codec.name.clone(),
                    measure_quality: true,
                    return_latents: true,
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .result
            .unwrap();
        assert_eq!(
            (result.sample_rate, result.channels, result.frames),
            (48_000, 2, 288_000)
        );
        assert_eq!(result.resampled_from, 0);
        let rd = result.rate_distortion.unwrap();
        assert_eq!(rd.compressed_bytes, result.bitstream.len() as u64);
        let kbps = rd.kilobits_per_second.unwrap();
        assert!(
            (kbps - result.bitstream.len() as f64 * 8.0 / 6.0 / 1000.0).abs() < 1e-9,
            "{kbps}"
        );
        let latents = result.latents.unwrap();
        assert_eq!(latents.datatype, DataType::Int32 as i32);
        let block = 1i64 << codec.levels;
        assert_eq!(
            latents.shape,
            vec![
                i64::from(codec.latent_channels),
                1,
                (288_000 + block - 1) / block
            ]
        );

        let decoded = client
            .decode(DecodeRequest {
                bitstream: result.bitstream.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (decoded.sample_rate, decoded.channels, decoded.frames),
            (48_000, 2, 288_000)
        );
        let back = clip(&decoded.wav);
        let psnr = terse_walloc::audio_psnr(original.samples.view(), back.samples.view());
        let snr = terse_walloc::snr(original.samples.view(), back.samples.view());
        let (reported_psnr, reported_snr) = (rd.psnr_db.unwrap(), rd.snr_db.unwrap());
        assert!(
            (psnr - reported_psnr).abs() < 1e-9 && (snr - reported_snr).abs() < 1e-9,
            "{}: reported {reported_psnr}/{reported_snr} dB, decoded {psnr}/{snr} dB",
            codec.name
        );
        assert!(
            snr > 8.0,
            "{}: SNR {snr:.2} dB at {kbps:.1} kbps",
            codec.name
        );

        // Streamed decode reassembles to the same WAV.
        let mut stream = client
            .decode_stream(DecodeStreamRequest {
                bitstream: result.bitstream,
            })
            .await
            .unwrap()
            .into_inner();
        let mut wav = Vec::new();
        while let Some(part) = stream.message().await.unwrap() {
            assert_eq!((part.sample_rate, part.channels), (48_000, 2));
            wav.extend_from_slice(&part.chunk.unwrap().data);
        }
        assert_eq!(wav, decoded.wav);
    }
}

#[tokio::test]
async fn mono_input_is_resampled_only_when_asked() {
    let server = Server::start(&["--config", "config/terse.toml", "--services", "audio"]).await;
    let mut client = client(&server).await;
    let speech = fixture("speech_16k_mono_3s.wav");
    let err = client
        .encode(EncodeRequest {
            audio: speech.clone(),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("16000 Hz") && err.message().contains("set `resample`"),
        "{}",
        err.message()
    );
    let result = client
        .encode(EncodeRequest {
            audio: speech,
            options: Some(EncodeOptions {
                resample: true,
                measure_quality: true,
                return_reconstruction: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(result.resampled_from, 16_000);
    assert_eq!(
        (result.sample_rate, result.channels, result.frames),
        (48_000, 1, 144_000)
    );
    let reconstruction = clip(&result.reconstruction);
    assert_eq!(reconstruction.samples.dim(), (1, 144_000));
    let decoded = client
        .decode(DecodeRequest {
            bitstream: result.bitstream,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decoded.wav, result.reconstruction);
}

#[tokio::test]
async fn streamed_upload_matches_unary_and_errors_are_precise() {
    let server = Server::start(&["--config", "config/terse.toml", "--services", "audio"]).await;
    let mut client = client(&server).await;
    let audio = music();
    let unary = client
        .encode(EncodeRequest {
            audio: audio.clone(),
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
        upload_chunks(&audio, 16_384)
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
                    audio: b"not audio, only words".to_vec(),
                    options: None,
                })
                .await
                .map(|_| ()),
            Code::InvalidArgument,
            "not a supported audio file",
        ),
        (
            client
                .encode(EncodeRequest {
                    audio: audio.clone(),
                    options: Some(EncodeOptions {
                        codec: "mp3".into(),
                        ..Default::default()
                    }),
                })
                .await
                .map(|_| ()),
            Code::NotFound,
            "codec `mp3` is not hosted",
        ),
        (
            client
                .decode(DecodeRequest { bitstream: corrupt })
                .await
                .map(|_| ()),
            Code::InvalidArgument,
            "checksum mismatch",
        ),
        (
            client
                .decode(DecodeRequest {
                    bitstream: unary.bitstream[..30].to_vec(),
                })
                .await
                .map(|_| ()),
            Code::InvalidArgument,
            "truncated",
        ),
    ];
    for (result, code, needle) in cases {
        assert_status(result, code, needle);
    }

    let small = ConfigFile::new("[server]\nservices = [\"audio\"]\n[audio]\nmax_seconds = 2.5\n");
    let limited = Server::start(&["--config", small.arg()]).await;
    let mut limited = AudioServiceClient::new(limited.channel().await);
    for err in [
        limited
            .encode(EncodeRequest {
                audio,
                options: None,
            })
            .await
            .unwrap_err(),
        limited
            .decode(DecodeRequest {
                bitstream: unary.bitstream,
            })
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
        assert!(
            err.message().contains("limit of 2.5 s")
                || err.message().contains("exceeds the limit of 120000 frames"),
            "{}",
            err.message()
        );
    }
}

/// Issue 18, finding 2: a 192 KB WAV whose header says 4,294,967,295 Hz, with `resample`, used
/// to resample past its deadline to 12 GB; a 444-byte WAV at 1 Hz became 4.8 M frames. Both are
/// now refused at once, before any sample is kept.
#[tokio::test]
async fn absurd_sample_rates_are_refused_before_any_work() {
    let server = Server::start(&["--config", "config/terse.toml", "--services", "audio"]).await;
    let mut client = client(&server).await;
    let speech = fixture("speech_16k_mono_3s.wav");
    assert_eq!(&speech[..4], b"RIFF");
    assert_eq!(&speech[12..16], b"fmt ");
    for rate in [u32::MAX, 1, 999, 768_001] {
        let mut wav = speech.clone();
        wav[24..28].copy_from_slice(&rate.to_le_bytes());
        let started = std::time::Instant::now();
        assert_status(
            client
                .encode(EncodeRequest {
                    audio: wav,
                    options: Some(EncodeOptions {
                        resample: true,
                        ..Default::default()
                    }),
                })
                .await,
            Code::InvalidArgument,
            &format!("sample rate {rate} Hz is outside 1000..=768000 Hz"),
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
