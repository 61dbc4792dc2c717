//! gRPC transport of `compress.audio.v1.AudioService` over the audio codecs hosted from the
//! model repository (`terse_hosting::audio_codecs`: WaLLoC audio): files in through
//! symphonia, request conversion, limits, working-memory reservations and status mapping,
//! 16-bit WAV out. The codecs themselves are `terse_codec::Codec`s.

use std::sync::Arc;

use terse_audio_io::{AudioClip, DecodeLimits, decode_audio_file, encode_wav, resample};
use terse_codec::{CodecRegistry, DynCodec, EncodeOptions, Work};
use terse_proto::{audio::v1 as api, common::v1 as common};
use terse_service_common::prelude::*;

pub use api::audio_service_server::AudioServiceServer;

/// `[audio]`: limits of the audio codec service.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioLimits {
    /// Longest clip in seconds, input or decoded; more gets RESOURCE_EXHAUSTED.
    pub max_seconds: f64,
    /// Most bytes of one audio file or bitstream, unary or streamed.
    pub max_bytes: usize,
}

impl Default for AudioLimits {
    fn default() -> Self {
        Self {
            max_seconds: 600.0,
            max_bytes: 256 << 20,
        }
    }
}

/// The service.
pub struct AudioService {
    host: CodecHost<AudioLimits, AudioClip>,
}

type AudioCodec = DynCodec<AudioClip>;

impl AudioService {
    /// Serves `codecs` (any implementations: tests host codecs with fake networks).
    pub fn new(
        codecs: CodecRegistry<AudioClip>,
        limits: AudioLimits,
        memory: MemoryBudget,
    ) -> Self {
        Self {
            host: CodecHost::new(codecs, limits, limits.max_bytes, memory),
        }
    }

    /// Reserves the working memory `codec` estimates for `work` on `frames` × `channels`
    /// samples, before the work.
    fn reserve(
        &self,
        codec: &AudioCodec,
        work: Work,
        [frames, channels]: [u64; 2],
    ) -> Result<Reservation, Status> {
        let what = match work {
            Work::Decode => "audio decode",
            Work::Encode | Work::EncodeAndDecode => "audio encode",
        };
        let what = format!("{what} of {frames} frames × {channels} channels");
        self.host.reserve(codec, work, &[frames, channels], &what)
    }

    /// Names of the hosted codecs.
    pub fn codec_names(&self) -> Vec<String> {
        self.host.names()
    }

    fn max_frames(&self, codec: &AudioCodec) -> u64 {
        (self.host.limits.max_seconds * f64::from(codec.info().sample_rate)).floor() as u64
    }

    async fn encode_audio(
        &self,
        file: Vec<u8>,
        options: api::EncodeOptions,
    ) -> Result<api::EncodeResult, Status> {
        self.host.check_bytes(file.len(), "audio file")?;
        let codec = self.host.pick(&options.codec)?;
        let limits = DecodeLimits {
            max_seconds: self.host.limits.max_seconds,
            max_channels: 2,
        };
        let allow_resample = options.resample;
        let (name, rate) = (codec.info().name.clone(), codec.info().sample_rate);
        let (clip, resampled_from) = run_blocking(move || {
            let mut clip = decode_audio_file(&file, limits).map_err(|e| status_of(&e))?;
            let mut resampled_from = 0;
            if clip.sample_rate != rate {
                if !allow_resample {
                    return Err(Status::invalid_argument(format!(
                        "the input is {} Hz and codec `{name}` codes {rate} Hz: set `resample` to convert it",
                        clip.sample_rate,
                    )));
                }
                resampled_from = clip.sample_rate;
                clip = resample(&clip, rate).map_err(|e| status_of(&e))?;
            }
            Ok((clip, resampled_from))
        })
        .await?;
        let coding = EncodeOptions {
            latent_bits: options.latent_bits,
            reconstruct: options.measure_quality || options.return_reconstruction,
            latents: options.return_latents,
            knobs: (),
        };
        let (channels, frames) = clip.samples.dim();
        let _memory = self.reserve(
            codec.as_ref(),
            coding.work(),
            [frames as u64, channels as u64],
        )?;
        let clip = Arc::new(clip);
        let encoding = encode_in_call(codec.as_ref(), Arc::clone(&clip), coding).await?;
        let seconds = clip.seconds();
        let bitstream = encoding.bitstream;
        let mut rate = common::RateDistortion {
            compressed_bytes: bitstream.len() as u64,
            original_bytes: clip.samples.len() as u64 * 2,
            kilobits_per_second: Some(bitstream.len() as f64 * 8.0 / seconds / 1000.0),
            ..Default::default()
        };
        let sample_rate = clip.sample_rate;
        let mut reconstruction = Vec::new();
        if let Some(decoded) = encoding.reconstruction {
            let want_file = options.return_reconstruction;
            let original = Arc::clone(&clip);
            let (psnr, snr, file) = run_blocking(move || {
                // Quality is measured on what a client receives: 16-bit samples.
                let samples = decoded
                    .samples
                    .mapv(|v| f32::from(terse_audio_io::to_i16(v)) / 32768.0);
                let file = if want_file {
                    encode_wav(&AudioClip {
                        sample_rate,
                        samples: samples.clone(),
                    })
                    .map_err(|e| status_of(&e))?
                } else {
                    Vec::new()
                };
                Ok((
                    terse_walloc::audio_psnr(original.samples.view(), samples.view()),
                    terse_walloc::snr(original.samples.view(), samples.view()),
                    file,
                ))
            })
            .await?;
            rate.psnr_db = psnr.is_finite().then_some(psnr);
            rate.snr_db = snr.is_finite().then_some(snr);
            reconstruction = file;
        }
        let info = codec.info();
        Ok(api::EncodeResult {
            bitstream,
            sample_rate,
            channels: channels as u32,
            frames: frames as u64,
            duration_seconds: seconds,
            rate_distortion: Some(rate),
            model: Some(model_ref(&info.model)),
            reconstruction,
            latents: encoding.latents.map(tensor_to_proto),
            latent_bits: encoding.latent_bits,
            resampled_from,
        })
    }

    /// Decodes a bitstream into a 16-bit WAV file: (file, sample rate, channels, frames).
    async fn decode_bitstream(
        &self,
        bitstream: Vec<u8>,
    ) -> Result<(Vec<u8>, u32, u32, u64), Status> {
        self.host.check_bytes(bitstream.len(), "bitstream")?;
        terse_service_common::expect_codec_family(
            &bitstream,
            &[terse_entropy::CodecId::WallocAudio],
        )?;
        let codec = self.host.for_bitstream(&bitstream)?;
        let declared = declared_fields(&bitstream, ["frames", "channels"]).unwrap_or_default();
        let _memory = self.reserve(codec.as_ref(), Work::Decode, declared)?;
        let max_frames = self.max_frames(codec.as_ref());
        let decoded = decode_in_call(codec.as_ref(), bitstream, max_frames).await?;
        let (channels, frames) = decoded.samples.dim();
        let sample_rate = decoded.sample_rate;
        let wav = run_blocking(move || encode_wav(&decoded).map_err(|e| status_of(&e))).await?;
        Ok((wav, sample_rate, channels as u32, frames as u64))
    }
}

rpcs! {
    impl api::audio_service_server::AudioService for AudioService {
        fn list_codecs(self, _request: api::ListCodecsRequest) -> api::ListCodecsResponse {
            let codecs = self.host.codecs.infos().map(codec_info).collect();
            api::ListCodecsResponse { codecs }
        }

        fn encode(self, request: api::EncodeRequest) -> api::EncodeResponse {
            let options = request.options.unwrap_or_default();
            api::EncodeResponse { result: Some(self.encode_audio(request.audio, options).await?) }
        }

        fn encode_stream(
            self,
            stream: Streaming<api::EncodeStreamRequest>,
        ) -> api::EncodeStreamResponse {
            let (options, file) = self.host.upload(stream, "audio file").await?;
            let result = self.encode_audio(file, options).await?;
            api::EncodeStreamResponse { result: Some(result) }
        }

        fn decode(self, request: api::DecodeRequest) -> api::DecodeResponse {
            let (wav, sample_rate, channels, frames) =
                self.decode_bitstream(request.bitstream).await?;
            api::DecodeResponse { wav, sample_rate, channels, frames }
        }

        fn decode_stream(
            self,
            request: api::DecodeStreamRequest,
        ) -> stream DecodeStreamStream of api::DecodeStreamResponse {
            let (wav, sample_rate, channels, frames) =
                self.decode_bitstream(request.bitstream).await?;
            download(&wav, |chunk| api::DecodeStreamResponse {
                sample_rate,
                channels,
                frames,
                chunk: Some(chunk),
            })
        }
    }
}

/// The API's description of a hosted codec.
fn codec_info(info: &terse_codec::CodecInfo) -> api::CodecInfo {
    api::CodecInfo {
        name: info.name.clone(),
        model: Some(model_ref(&info.model)),
        sample_rate: info.sample_rate,
        channels: info.channels,
        description: info.description.clone(),
        latent_channels: info.latent_channels,
        levels: info.levels,
        latent_bits: info.latent_bits,
    }
}

impl HostedService for AudioLimits {
    fn model_tasks(&self) -> &'static [&'static str] {
        terse_hosting::AUDIO_TASKS
    }

    fn add_to(&self, host: &Host, routes: &mut RoutesBuilder) -> Result<String, String> {
        let codecs = terse_hosting::audio_codecs(host.registry)?;
        let service = AudioService::new(codecs, *self, host.memory.clone());
        let hosted = format!("audio codecs {:?}", service.codec_names());
        terse_service_common::add_service!(routes, host, AudioServiceServer, service, hosted)
    }
}

#[cfg(test)]
mod tests;
