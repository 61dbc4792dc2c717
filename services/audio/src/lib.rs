//! gRPC transport of `compress.audio.v1.AudioService`: WaLLoC audio codecs found in the model
//! repository (task `walloc-audio`); files in through symphonia, encoding in Rust, the decoder
//! network through the model runtime, 16-bit WAV out.

use std::{pin::Pin, sync::Arc};

use ndarray::Array2;
use terse_audio_io::{
    AudioClip, AudioError, DecodeLimits, decode_audio_file, encode_wav, resample,
};
use terse_proto::{audio::v1 as api, common::v1 as common};
use terse_runtime::ModelRegistry;
use terse_service_common::{
    MemoryBudget, Reservation, collect_upload, declared_fields, download_chunks, run_blocking,
};
use terse_walloc::{AudioLatents, WallocAudioCodec};
use terse_walloc_host::{Hosted, decode_bands, latent_tensor, walloc_status};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

pub use api::audio_service_server::AudioServiceServer;

/// Model tasks this service hosts (a failed model of one of them makes the service NOT_SERVING).
pub const MODEL_TASKS: &[&str] = &[<WallocAudioCodec as terse_walloc_host::WallocModel>::TASK];

/// Limits of the audio service.
#[derive(Debug, Clone, Copy)]
pub struct AudioLimits {
    /// Longest clip in seconds (input or decoded).
    pub max_seconds: f64,
    /// Most bytes of an audio file or bitstream, unary or streamed.
    pub max_bytes: usize,
}

/// The service.
pub struct AudioService {
    codecs: Vec<Hosted<WallocAudioCodec>>,
    limits: AudioLimits,
    memory: MemoryBudget,
}

/// Peak working memory per sample (frames × channels, at the codec's rate) in bytes, measured
/// by `scripts/cost-model audio` (the rise of a fresh server's peak RSS over one request, 30 s
/// and 120 s of 48 kHz stereo) plus about 10 %. Decoding runs the decoder network, so an
/// encode that measures quality or returns the reconstruction costs as much as a decode.
mod cost {
    /// WaLLoC encode.
    pub const ENCODE: u64 = 27;
    /// WaLLoC decode.
    pub const DECODE: u64 = 60;
}

fn audio_status(e: AudioError) -> Status {
    match e {
        AudioError::Invalid(m) => Status::invalid_argument(m),
        AudioError::TooLarge(m) => Status::resource_exhausted(m),
    }
}

/// What an encode keeps for reporting.
struct Encoded {
    clip: AudioClip,
    bitstream: Vec<u8>,
    latents: AudioLatents,
    resampled_from: u32,
}

impl AudioService {
    /// Hosts every ready `walloc-audio` model of the registry; calls reserve their working
    /// memory from `memory`.
    pub fn from_registry(
        registry: &ModelRegistry,
        limits: AudioLimits,
        memory: MemoryBudget,
    ) -> Result<Self, String> {
        Ok(Self {
            codecs: terse_walloc_host::host_all(registry)?,
            limits,
            memory,
        })
    }

    /// Reserves `bytes_per_sample` for each of `frames` × `channels` samples, before the work.
    fn reserve(
        &self,
        frames: u64,
        channels: u64,
        bytes_per_sample: u64,
        what: &str,
    ) -> Result<Reservation, Status> {
        self.memory.reserve(
            frames
                .saturating_mul(channels)
                .saturating_mul(bytes_per_sample),
            &format!("{what} of {frames} frames × {channels} channels"),
        )
    }

    /// Names of the hosted codecs.
    pub fn codec_names(&self) -> Vec<String> {
        terse_walloc_host::names(&self.codecs)
    }

    fn check_bytes(&self, len: usize, what: &str) -> Result<(), Status> {
        if len > self.limits.max_bytes {
            return Err(Status::resource_exhausted(format!(
                "{what} of {len} bytes exceeds the limit of {} bytes",
                self.limits.max_bytes
            )));
        }
        Ok(())
    }

    fn max_frames(&self, codec: &WallocAudioCodec) -> u64 {
        (self.limits.max_seconds * f64::from(codec.sample_rate())).floor() as u64
    }

    /// Runs the decoder network on latents and rebuilds the samples `[channels, frames]`.
    async fn reconstruct(
        &self,
        hosted: &Hosted<WallocAudioCodec>,
        latents: AudioLatents,
    ) -> Result<Array2<f32>, Status> {
        let normal = hosted.codec.normal_latents(&latents).into_dyn();
        let bands = decode_bands(&hosted.decoder, normal).await?;
        let codec = Arc::clone(&hosted.codec);
        run_blocking(move || {
            let bands: Array2<f32> = bands
                .into_dimensionality()
                .map_err(|e| Status::internal(format!("decoder output: {e}")))?;
            codec
                .reconstruct(bands.view(), &latents)
                .map_err(walloc_status)
        })
        .await
    }

    async fn encode_audio(
        &self,
        file: Vec<u8>,
        options: api::EncodeOptions,
    ) -> Result<api::EncodeResult, Status> {
        self.check_bytes(file.len(), "audio file")?;
        let hosted = terse_walloc_host::pick(&self.codecs, &options.codec)?;
        let codec = Arc::clone(&hosted.codec);
        let limits = DecodeLimits {
            max_seconds: self.limits.max_seconds,
            max_channels: 2,
        };
        let allow_resample = options.resample;
        let requested_bits = options.latent_bits;
        let codec_for_file = Arc::clone(&codec);
        let (clip, resampled_from) = run_blocking(move || {
            let codec = codec_for_file;
            let mut clip = decode_audio_file(&file, limits).map_err(audio_status)?;
            let mut resampled_from = 0;
            if clip.sample_rate != codec.sample_rate() {
                if !allow_resample {
                    return Err(Status::invalid_argument(format!(
                        "the input is {} Hz and codec `{}` codes {} Hz: set `resample` to convert it",
                        clip.sample_rate,
                        codec.model().name,
                        codec.sample_rate()
                    )));
                }
                resampled_from = clip.sample_rate;
                clip = resample(&clip, codec.sample_rate()).map_err(audio_status)?;
            }
            Ok((clip, resampled_from))
        })
        .await?;
        let decodes = options.measure_quality || options.return_reconstruction;
        let _memory = self.reserve(
            clip.frames() as u64,
            clip.channels() as u64,
            if decodes { cost::DECODE } else { cost::ENCODE },
            "audio encode",
        )?;
        let encoded = run_blocking(move || {
            let shift = codec.shift_for(requested_bits).map_err(walloc_status)?;
            let (bitstream, latents) = codec
                .encode(clip.samples.view(), clip.sample_rate, shift)
                .map_err(walloc_status)?;
            Ok(Encoded {
                clip,
                bitstream,
                latents,
                resampled_from,
            })
        })
        .await?;
        let Encoded {
            clip,
            bitstream,
            latents,
            resampled_from,
        } = encoded;
        let seconds = clip.seconds();
        let mut rate = common::RateDistortion {
            compressed_bytes: bitstream.len() as u64,
            original_bytes: clip.samples.len() as u64 * 2,
            kilobits_per_second: Some(bitstream.len() as f64 * 8.0 / seconds / 1000.0),
            ..Default::default()
        };
        let latent_tensor = options
            .return_latents
            .then(|| latent_tensor(&latents.values, latents.shift));
        let latent_bits = hosted.codec.weights().bits - latents.shift;
        let (channels, frames) = clip.samples.dim();
        let sample_rate = clip.sample_rate;
        let mut reconstruction = Vec::new();
        if options.measure_quality || options.return_reconstruction {
            let decoded = self.reconstruct(hosted, latents).await?;
            let want_file = options.return_reconstruction;
            let (psnr, snr, file) = run_blocking(move || {
                // Quality is measured on what a client receives: 16-bit samples.
                let decoded = decoded.mapv(|v| f32::from(terse_audio_io::to_i16(v)) / 32768.0);
                let file = if want_file {
                    encode_wav(&AudioClip {
                        sample_rate,
                        samples: decoded.clone(),
                    })
                    .map_err(audio_status)?
                } else {
                    Vec::new()
                };
                Ok((
                    terse_walloc::audio_psnr(clip.samples.view(), decoded.view()),
                    terse_walloc::snr(clip.samples.view(), decoded.view()),
                    file,
                ))
            })
            .await?;
            rate.psnr_db = psnr.is_finite().then_some(psnr);
            rate.snr_db = snr.is_finite().then_some(snr);
            reconstruction = file;
        }
        Ok(api::EncodeResult {
            bitstream,
            sample_rate,
            channels: channels as u32,
            frames: frames as u64,
            duration_seconds: seconds,
            rate_distortion: Some(rate),
            model: Some(common::ModelRef {
                name: hosted.codec.model().name.clone(),
                version: hosted.version.clone(),
            }),
            reconstruction,
            latents: latent_tensor,
            latent_bits,
            resampled_from,
        })
    }

    /// Decodes a bitstream into a 16-bit WAV file: (file, sample rate, channels, frames).
    async fn decode_bitstream(
        &self,
        bitstream: Vec<u8>,
    ) -> Result<(Vec<u8>, u32, u32, u64), Status> {
        self.check_bytes(bitstream.len(), "bitstream")?;
        terse_service_common::expect_codec_family(
            &bitstream,
            &[terse_entropy::CodecId::WallocAudio],
        )?;
        let hosted = terse_walloc_host::codec_for_bitstream(&self.codecs, &bitstream)?;
        let [frames, channels] =
            declared_fields(&bitstream, ["frames", "channels"]).unwrap_or_default();
        let _memory = self.reserve(frames, channels, cost::DECODE, "audio decode")?;
        let codec = Arc::clone(&hosted.codec);
        let max_frames = self.max_frames(&codec);
        let latents = run_blocking(move || {
            codec
                .decode_latents(&bitstream, max_frames)
                .map_err(walloc_status)
        })
        .await?;
        let sample_rate = latents.sample_rate;
        let decoded = self.reconstruct(hosted, latents).await?;
        let (channels, frames) = decoded.dim();
        let wav = run_blocking(move || {
            encode_wav(&AudioClip {
                sample_rate,
                samples: decoded,
            })
            .map_err(audio_status)
        })
        .await?;
        Ok((wav, sample_rate, channels as u32, frames as u64))
    }
}

/// Stream type of DecodeStream.
pub type DecodeChunks =
    Pin<Box<dyn Stream<Item = Result<api::DecodeStreamResponse, Status>> + Send>>;

#[tonic::async_trait]
impl api::audio_service_server::AudioService for AudioService {
    async fn list_codecs(
        &self,
        _request: Request<api::ListCodecsRequest>,
    ) -> Result<Response<api::ListCodecsResponse>, Status> {
        Ok(Response::new(api::ListCodecsResponse {
            codecs: self
                .codecs
                .iter()
                .map(|c| {
                    let weights = c.codec.weights();
                    api::CodecInfo {
                        name: c.codec.model().name.clone(),
                        model: Some(common::ModelRef {
                            name: c.codec.model().name.clone(),
                            version: c.version.clone(),
                        }),
                        sample_rate: c.codec.sample_rate(),
                        channels: c.codec.channels() as u32,
                        description: c.description.clone(),
                        latent_channels: weights.latent_dim as u32,
                        levels: weights.levels,
                        latent_bits: weights.bits,
                    }
                })
                .collect(),
        }))
    }

    async fn encode(
        &self,
        request: Request<api::EncodeRequest>,
    ) -> Result<Response<api::EncodeResponse>, Status> {
        let request = request.into_inner();
        let result = self
            .encode_audio(request.audio, request.options.unwrap_or_default())
            .await?;
        Ok(Response::new(api::EncodeResponse {
            result: Some(result),
        }))
    }

    async fn encode_stream(
        &self,
        request: Request<Streaming<api::EncodeStreamRequest>>,
    ) -> Result<Response<api::EncodeStreamResponse>, Status> {
        let mut stream = request.into_inner();
        let (options, file) =
            collect_upload(&mut stream, self.limits.max_bytes, "audio file").await?;
        let result = self.encode_audio(file, options).await?;
        Ok(Response::new(api::EncodeStreamResponse {
            result: Some(result),
        }))
    }

    async fn decode(
        &self,
        request: Request<api::DecodeRequest>,
    ) -> Result<Response<api::DecodeResponse>, Status> {
        let (wav, sample_rate, channels, frames) = self
            .decode_bitstream(request.into_inner().bitstream)
            .await?;
        Ok(Response::new(api::DecodeResponse {
            wav,
            sample_rate,
            channels,
            frames,
        }))
    }

    type DecodeStreamStream = DecodeChunks;

    async fn decode_stream(
        &self,
        request: Request<api::DecodeStreamRequest>,
    ) -> Result<Response<Self::DecodeStreamStream>, Status> {
        let (wav, sample_rate, channels, frames) = self
            .decode_bitstream(request.into_inner().bitstream)
            .await?;
        let chunks = download_chunks(&wav, |chunk| api::DecodeStreamResponse {
            sample_rate,
            channels,
            frames,
            chunk: Some(chunk),
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }
}
