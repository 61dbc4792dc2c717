//! The weight codec as a [`terse_codec::Codec`]: safetensors files in, terse bitstreams out,
//! with the chunk size as its knob.

use terse_codec::{
    Codec, CodecInfo, DecodeCall, DecodeFuture, EncodeCall, EncodeFuture, Encoding, UnitCost, Work,
};
use terse_core::on_worker_classified;
use terse_entropy::CodecId;

use crate::file;

/// Peak working memory per byte of the file, in tenths of a byte: the rise of a fresh
/// server's peak RSS over one call, from `scripts/cost_model.py tensor` on all-MiniLM-L6-v2
/// (91 MB) and SmolLM2-135M BF16 (269 MB), plus about 10 %. An encode holds the uploaded file
/// as it grows, the file, the chunk payloads, the bitstream and its response chunks (3.1–4.0
/// B/byte measured); a decode (a whole file, or one tensor) the bitstream, the file and its
/// response chunks (2.0–2.1).
const COST_PER_BYTE_TENTHS: UnitCost = UnitCost::new(44, 23);

terse_codec::model_free_codec! {
    /// The lossless safetensors codec.
    pub struct WeightCodec = "terse-weights", family "tensor", CodecId::Tensor,
        "lossless: exponent and top mantissa bit ANS-coded per chunk, sign and low mantissa bits \
         packed, other dtypes zstd";
}

impl Codec for WeightCodec {
    /// A safetensors file.
    type Media = Vec<u8>;
    type Knobs = file::EncodeOptions;

    fn info(&self) -> &CodecInfo {
        &self.info
    }

    fn working_memory(&self, work: Work, shape: &[u64]) -> u64 {
        work.memory(shape, COST_PER_BYTE_TENTHS) / 10
    }

    /// Encodes with `options.knobs`. Lossless: there is no reconstruction to report (the
    /// decode is the input, byte for byte), and latents do not apply.
    fn encode<'a>(
        &'a self,
        call: EncodeCall<'a, Vec<u8>, file::EncodeOptions>,
    ) -> EncodeFuture<'a, Vec<u8>> {
        let (media, options, worker) = (call.media, call.options, call.worker);
        Box::pin(async move {
            options.refuse_latents("weight")?;
            let knobs = options.knobs;
            let bitstream =
                on_worker_classified(worker, move || file::encode(&media, knobs)).await?;
            Ok(Encoding::bitstream(bitstream))
        })
    }

    /// Decodes, refusing a file over `max_bytes`.
    fn decode<'a>(&'a self, call: DecodeCall<'a>) -> DecodeFuture<'a, Vec<u8>> {
        let (bitstream, max_bytes, worker) = (call.bitstream, call.max_units, call.worker);
        Box::pin(async move {
            on_worker_classified(worker, move || file::decode(&bitstream, max_bytes)).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use terse_codec::EncodeOptions;
    use terse_core::{ErrorKind, Inline, block_on};

    /// A safetensors file of one F32 tensor.
    fn checkpoint() -> Vec<u8> {
        let data: Vec<u8> = (0..3000)
            .flat_map(|i| ((i as f32 * 0.37).sin() * 0.05).to_le_bytes())
            .collect();
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![3000], &data)
            .unwrap();
        safetensors::serialize([("w", view)], None).unwrap()
    }

    #[test]
    fn the_codec_round_trips_and_refuses_what_does_not_apply() {
        let codec = WeightCodec::new();
        let file = Arc::new(checkpoint());
        let encoding = block_on(codec.encode(EncodeCall::new(
            Arc::clone(&file),
            EncodeOptions::default(),
            &Inline,
        )))
        .unwrap();
        assert!(encoding.bitstream.len() < file.len());
        let decoded = block_on(codec.decode(DecodeCall::new(
            encoding.bitstream.clone(),
            u64::MAX,
            &Inline,
        )));
        assert_eq!(decoded.unwrap(), *file);
        let over =
            block_on(codec.decode(DecodeCall::new(encoding.bitstream, 100, &Inline))).unwrap_err();
        assert_eq!(over.kind, ErrorKind::TooLarge);
        let latents = EncodeOptions {
            latents: true,
            ..Default::default()
        };
        let refused = block_on(codec.encode(EncodeCall::new(file, latents, &Inline)))
            .err()
            .unwrap();
        assert_eq!(refused.kind, ErrorKind::InvalidInput);
    }

    #[test]
    fn working_memory_follows_the_measured_bytes_per_file_byte() {
        let codec = WeightCodec::new();
        assert_eq!(codec.working_memory(Work::Encode, &[1000]), 4400);
        assert_eq!(codec.working_memory(Work::Decode, &[1000]), 2300);
        assert_eq!(
            codec.working_memory(Work::Decode, &[u64::MAX]),
            u64::MAX / 10
        );
    }
}
