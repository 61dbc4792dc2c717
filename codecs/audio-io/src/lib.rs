//! Audio files in and out for the audio codecs: decoding of WAV, FLAC, MP3 and OGG Vorbis
//! (symphonia) into planar `f32` samples with a duration limit checked while decoding, 16-bit
//! PCM WAV writing (hound), and explicit resampling (rubato's FFT resampler).

use std::io::Cursor;

use ndarray::Array2;
use rubato::{Fft, FixedSync, Resampler, audioadapter_buffers::direct::InterleavedSlice};
use symphonia::core::{
    codecs::audio::AudioDecoderOptions,
    errors::Error as SymphoniaError,
    formats::{FormatOptions, TrackType, probe::Hint},
    io::MediaSourceStream,
    meta::MetadataOptions,
};

/// Why audio could not be read, written or resampled.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The bytes are not audio in a supported format, or are corrupt.
    #[error("{0}")]
    Invalid(String),
    /// The audio exceeds a configured limit.
    #[error("{0}")]
    TooLarge(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, AudioError>;

/// Decoded audio: samples in [−1, 1], `[channels, frames]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioClip {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Planar samples `[channels, frames]`.
    pub samples: Array2<f32>,
}

impl AudioClip {
    /// Channels of the clip.
    pub fn channels(&self) -> usize {
        self.samples.nrows()
    }

    /// Frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.ncols()
    }

    /// Duration in seconds.
    pub fn seconds(&self) -> f64 {
        self.frames() as f64 / f64::from(self.sample_rate)
    }
}

/// Sample rates a file may declare, in Hz. Outside this range the file is refused before any
/// sample is kept: a header claiming 4,294,967,295 Hz or 1 Hz would otherwise turn a few bytes
/// into gigabytes of resampled audio (issue 18, finding 2). 768 kHz is the highest rate of
/// professional converters; 1 kHz is below any speech codec's.
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 1_000..=768_000;

/// What [`decode_audio_file`] accepts.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Longest clip in seconds.
    pub max_seconds: f64,
    /// Most channels.
    pub max_channels: usize,
}

fn invalid(what: &str, e: SymphoniaError) -> AudioError {
    AudioError::Invalid(format!("{what}: {e}"))
}

/// Refuses a WAV file whose `fmt ` chunk declares no channels or more than `max_channels`,
/// before symphonia reads it: its WAV reader multiplies the channel count in 16 bits, which
/// overflows on absurd counts. Other files, and WAV files without a readable `fmt ` chunk, pass
/// to the decoder, which judges them.
fn check_wav_channels(bytes: &[u8], max_channels: usize) -> Result<()> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Ok(());
    }
    let mut at = 12usize;
    while let Some(header) = bytes.get(at..at + 8) {
        let size = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
        if &header[..4] == b"fmt " {
            let Some(field) = bytes.get(at + 10..at + 12) else {
                return Ok(());
            };
            let channels = usize::from(u16::from_le_bytes([field[0], field[1]]));
            if channels == 0 || channels > max_channels {
                return Err(AudioError::Invalid(format!(
                    "the WAV header declares {channels} channels (1 to {max_channels} are supported)"
                )));
            }
            return Ok(());
        }
        // Chunks are padded to an even size.
        at = at
            .saturating_add(8)
            .saturating_add(size)
            .saturating_add(size & 1);
    }
    Ok(())
}

/// Decodes an audio file (WAV, FLAC, MP3, OGG Vorbis; the format is probed from the bytes) of
/// its first audio track. A corrupt packet fails the whole file rather than being skipped;
/// the duration limit is enforced while decoding, before the samples are kept.
pub fn decode_audio_file(bytes: &[u8], limits: DecodeLimits) -> Result<AudioClip> {
    if bytes.is_empty() {
        return Err(AudioError::Invalid("the audio file is empty".into()));
    }
    check_wav_channels(bytes, limits.max_channels)?;
    let stream = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let mut format = symphonia::default::get_probe()
        .probe(
            &Hint::new(),
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| invalid("not a supported audio file (WAV, FLAC, MP3, OGG Vorbis)", e))?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| AudioError::Invalid("the file holds no audio track".into()))?;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| AudioError::Invalid("the audio track has no codec parameters".into()))?
        .clone();
    let track_id = track.id;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| invalid("unsupported audio codec", e))?;
    let mut interleaved: Vec<f32> = Vec::new();
    let mut chunk: Vec<f32> = Vec::new();
    let mut spec: Option<(u32, usize)> = None;
    let mut packets = 0u64;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(e) => return Err(invalid(&format!("packet {packets}"), e)),
        };
        if packet.track_id != track_id {
            continue;
        }
        packets += 1;
        let buffer = decoder
            .decode(&packet)
            .map_err(|e| invalid(&format!("packet {packets}"), e))?;
        let rate = buffer.spec().rate();
        let channels = buffer.spec().channels().count();
        match spec {
            None => {
                if channels == 0 || channels > limits.max_channels {
                    return Err(AudioError::Invalid(format!(
                        "{channels} channels are not supported (at most {})",
                        limits.max_channels
                    )));
                }
                if !SAMPLE_RATES.contains(&rate) {
                    return Err(AudioError::Invalid(format!(
                        "sample rate {rate} Hz is outside {}..={} Hz",
                        SAMPLE_RATES.start(),
                        SAMPLE_RATES.end()
                    )));
                }
                spec = Some((rate, channels));
            }
            Some(known) if known != (rate, channels) => {
                return Err(AudioError::Invalid(format!(
                    "the stream changes from {} Hz × {} to {rate} Hz × {channels} mid-way",
                    known.0, known.1
                )));
            }
            Some(_) => {}
        }
        let max_frames = (limits.max_seconds * f64::from(rate)).floor() as usize;
        let frames = interleaved.len() / channels + buffer.frames();
        if frames > max_frames {
            return Err(AudioError::TooLarge(format!(
                "audio longer than the limit of {} s ({max_frames} frames at {rate} Hz)",
                limits.max_seconds
            )));
        }
        chunk.resize(buffer.samples_interleaved(), 0.0);
        buffer.copy_to_slice_interleaved(&mut chunk);
        interleaved.extend_from_slice(&chunk);
    }
    let Some((sample_rate, channels)) = spec else {
        return Err(AudioError::Invalid(
            "the audio track holds no samples".into(),
        ));
    };
    let frames = interleaved.len() / channels;
    if frames == 0 {
        return Err(AudioError::Invalid(
            "the audio track holds no samples".into(),
        ));
    }
    let samples = Array2::from_shape_fn((channels, frames), |(c, i)| {
        interleaved[i * channels + c].clamp(-1.0, 1.0)
    });
    Ok(AudioClip {
        sample_rate,
        samples,
    })
}

/// Writes a clip as 16-bit PCM WAV (samples clamped to [−1, 1], rounded to the nearest step).
pub fn encode_wav(clip: &AudioClip) -> Result<Vec<u8>> {
    let channels = u16::try_from(clip.channels())
        .map_err(|_| AudioError::Invalid("too many channels for WAV".into()))?;
    let spec = hound::WavSpec {
        channels,
        sample_rate: clip.sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = Cursor::new(Vec::new());
    let wav_error = |e: hound::Error| AudioError::Invalid(format!("WAV: {e}"));
    let mut writer = hound::WavWriter::new(&mut out, spec).map_err(wav_error)?;
    for frame in clip.samples.columns() {
        for &v in frame {
            writer.write_sample(to_i16(v)).map_err(wav_error)?;
        }
    }
    writer.finalize().map_err(wav_error)?;
    Ok(out.into_inner())
}

/// A sample in [−1, 1] as 16-bit PCM.
pub fn to_i16(v: f32) -> i16 {
    (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Resamples a clip to `rate` Hz with rubato's FFT resampler (the startup delay trimmed, so
/// the output is aligned with the input).
pub fn resample(clip: &AudioClip, rate: u32) -> Result<AudioClip> {
    if rate == clip.sample_rate {
        return Ok(clip.clone());
    }
    if rate == 0 {
        return Err(AudioError::Invalid("cannot resample to 0 Hz".into()));
    }
    let (channels, frames) = clip.samples.dim();
    let mut resampler = Fft::<f32>::new(
        clip.sample_rate as usize,
        rate as usize,
        1024,
        channels,
        FixedSync::Input,
    )
    .map_err(|e| AudioError::Invalid(format!("resampler: {e}")))?;
    let interleaved: Vec<f32> = clip.samples.t().iter().copied().collect();
    let input = InterleavedSlice::new(&interleaved, channels, frames)
        .map_err(|e| AudioError::Invalid(format!("resampler input: {e}")))?;
    let output = resampler
        .process_all(&input, frames, None)
        .map_err(|e| AudioError::Invalid(format!("resampling: {e}")))?;
    let data = output.take_data();
    let out_frames = data.len() / channels;
    Ok(AudioClip {
        sample_rate: rate,
        samples: Array2::from_shape_fn((channels, out_frames), |(c, i)| {
            data[i * channels + c].clamp(-1.0, 1.0)
        }),
    })
}

impl terse_core::Classify for AudioError {
    fn kind(&self) -> terse_core::ErrorKind {
        match self {
            Self::Invalid(_) => terse_core::ErrorKind::InvalidInput,
            Self::TooLarge(_) => terse_core::ErrorKind::TooLarge,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: DecodeLimits = DecodeLimits {
        max_seconds: 60.0,
        max_channels: 8,
    };

    fn tone(rate: u32, channels: usize, frames: usize) -> AudioClip {
        AudioClip {
            sample_rate: rate,
            samples: Array2::from_shape_fn((channels, frames), |(c, i)| {
                0.5 * (i as f32 * 0.05 * (c + 1) as f32).sin()
            }),
        }
    }

    #[test]
    fn wav_round_trips_to_16_bit_precision() {
        let clip = tone(48_000, 2, 4800);
        let back = decode_audio_file(&encode_wav(&clip).unwrap(), LIMITS).unwrap();
        assert_eq!(back.sample_rate, 48_000);
        assert_eq!(back.samples.dim(), (2, 4800));
        let worst = clip
            .samples
            .iter()
            .zip(back.samples.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst <= 1.0 / 32768.0, "{worst}");
    }

    #[test]
    fn limits_and_garbage_are_refused() {
        let wav = encode_wav(&tone(8000, 1, 8000)).unwrap();
        let short = DecodeLimits {
            max_seconds: 0.5,
            ..LIMITS
        };
        assert!(matches!(
            decode_audio_file(&wav, short),
            Err(AudioError::TooLarge(_))
        ));
        let mono_only = DecodeLimits {
            max_channels: 1,
            ..LIMITS
        };
        assert!(matches!(
            decode_audio_file(&encode_wav(&tone(8000, 2, 100)).unwrap(), mono_only),
            Err(AudioError::Invalid(_))
        ));
        for bad in [&b""[..], b"RIFF\x00\x00", b"not audio at all, just text"] {
            assert!(matches!(
                decode_audio_file(bad, LIMITS),
                Err(AudioError::Invalid(_))
            ));
        }
    }

    #[test]
    fn wav_headers_with_absurd_channel_counts_are_refused_before_parsing() {
        // symphonia computes `channels × bytes per sample` in u16: 65,535 channels overflowed
        // (a panic in debug builds; the replay fuzz test found it).
        let wav = encode_wav(&tone(8000, 1, 100)).unwrap();
        assert_eq!(&wav[12..16], b"fmt ");
        for channels in [0u16, 9, 65_535] {
            let mut bad = wav.clone();
            bad[22..24].copy_from_slice(&channels.to_le_bytes());
            let err = decode_audio_file(&bad, LIMITS).unwrap_err();
            assert!(
                matches!(&err, AudioError::Invalid(m) if m.contains("channels")),
                "{channels}: {err:?}"
            );
        }
        // The same check through a chunk before `fmt ` and an odd-sized chunk's pad byte.
        let mut padded = wav[..12].to_vec();
        padded.extend_from_slice(b"JUNK\x03\x00\x00\x00abc\x00");
        padded.extend_from_slice(&wav[12..]);
        let riff_size = u32::from_le_bytes(wav[4..8].try_into().unwrap()) + 12;
        padded[4..8].copy_from_slice(&riff_size.to_le_bytes());
        assert_eq!(decode_audio_file(&padded, LIMITS).unwrap().frames(), 100);
        padded[22 + 12..24 + 12].copy_from_slice(&65_535u16.to_le_bytes());
        assert!(decode_audio_file(&padded, LIMITS).is_err());
    }

    #[test]
    fn resampling_keeps_duration_and_a_low_tone() {
        let clip = tone(44_100, 2, 44_100);
        let out = resample(&clip, 48_000).unwrap();
        assert_eq!(out.sample_rate, 48_000);
        assert!(
            (out.frames() as i64 - 48_000).abs() <= 1,
            "{}",
            out.frames()
        );
        // The tone at 0.05 rad/sample (351 Hz) survives: compare mid-clip samples with the
        // analytic signal at the new rate.
        let ratio = 44_100.0 / 48_000.0;
        for i in (10_000..30_000).step_by(997) {
            let expected = 0.5 * (i as f32 * ratio * 0.05).sin();
            assert!((out.samples[[0, i]] - expected).abs() < 1e-2, "{i}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode_audio_file(&bytes, LIMITS);
        }

        #[test]
        fn truncated_wav_never_panics(cut in 0usize..2000) {
            let wav = encode_wav(&tone(8000, 2, 500)).unwrap();
            let _ = decode_audio_file(&wav[..cut.min(wav.len())], LIMITS);
        }
    }
}
