//! The splat codec as a [`terse_codec::Codec`]: scenes in, terse bitstreams out, with the
//! per-request [`CodecOptions`] as its knobs.

use terse_codec::{
    Codec, CodecInfo, DecodeCall, DecodeFuture, EncodeCall, EncodeFuture, Encoding, Work,
};
use terse_core::on_worker_classified;
use terse_entropy::CodecId;

use crate::{CodecOptions, SplatScene, codec};

/// Peak working memory per splat in bytes: a base plus a part per SH coefficient (3 per
/// colour channel and degree), from `scripts/cost_model.py splat` (the rise of a fresh
/// server's peak RSS over one encode and decode of 50k and 200k SH3 splats: about 1,400 bytes
/// each) plus about 10 %. Encoding and decoding are of one size, so the estimate does not
/// depend on the work.
mod cost {
    /// Per splat.
    pub const BASE: u64 = 440;
    /// Per SH coefficient of a splat.
    pub const PER_SH_COEFFICIENT: u64 = 24;
}

terse_codec::model_free_codec! {
    /// The training-free terse splat codec.
    pub struct SplatCodec = "terse-splat", family "splat", CodecId::Splat,
        "training-free: Morton-ordered positions and context-adaptive entropy coding of every \
         attribute";
}

impl Codec for SplatCodec {
    type Media = SplatScene;
    type Knobs = CodecOptions;

    fn info(&self) -> &CodecInfo {
        &self.info
    }

    fn working_memory(&self, _work: Work, shape: &[u64]) -> u64 {
        let splats = shape.first().copied().unwrap_or(0);
        let degree = shape.get(1).copied().unwrap_or(0).min(3);
        let coefficients = 3 * ((degree + 1).pow(2) - 1);
        splats.saturating_mul(cost::BASE + cost::PER_SH_COEFFICIENT * coefficients)
    }

    /// Encodes with `options.knobs`; a reconstruction comes with the reference it is to be
    /// compared with (the kept splats in coded order, SH truncated as coded).
    fn encode<'a>(
        &'a self,
        call: EncodeCall<'a, SplatScene, CodecOptions>,
    ) -> EncodeFuture<'a, SplatScene> {
        let (scene, options, worker) = (call.media, call.options, call.worker);
        Box::pin(async move {
            options.refuse_latents("splat")?;
            let knobs = options.knobs;
            let reconstruct = options.reconstruct;
            on_worker_classified(worker, move || {
                let encoded = codec::encode(&scene, &knobs, scene.len() as u64)?;
                let mut reference = scene.retain_indices(&encoded.order);
                reference.truncate_sh(encoded.sh_degree);
                let reconstruction = match reconstruct {
                    true => Some(codec::decode(&encoded.bitstream, reference.len() as u64)?),
                    false => None,
                };
                Ok::<_, crate::SplatError>(Encoding {
                    bitstream: encoded.bitstream,
                    reconstruction,
                    latents: None,
                    latent_bits: 0,
                    reference: Some(reference),
                })
            })
            .await
        })
    }

    fn decode<'a>(&'a self, call: DecodeCall<'a>) -> DecodeFuture<'a, SplatScene> {
        let (bitstream, max_splats, worker) = (call.bitstream, call.max_units, call.worker);
        Box::pin(async move {
            on_worker_classified(worker, move || codec::decode(&bitstream, max_splats)).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use terse_codec::EncodeOptions;
    use terse_core::{ErrorKind, Inline, block_on};

    #[test]
    fn encode_reports_its_reference_and_decode_inverts_it() {
        let codec = SplatCodec::new();
        let scene = Arc::new(crate::synth::surface_scene(400, 2, 7));
        let options = EncodeOptions {
            reconstruct: true,
            knobs: CodecOptions {
                min_opacity: 0.5,
                max_sh_degree: 1,
                ..CodecOptions::default()
            },
            ..Default::default()
        };
        let encoding =
            block_on(codec.encode(EncodeCall::new(Arc::clone(&scene), options, &Inline))).unwrap();
        let reference = encoding.reference.unwrap();
        let reconstruction = encoding.reconstruction.unwrap();
        assert!(reference.len() < scene.len(), "low-opacity splats pruned");
        assert_eq!(reference.len(), reconstruction.len());
        assert_eq!(reference.sh_degree, 1);
        let decoded =
            block_on(codec.decode(DecodeCall::new(encoding.bitstream, 400, &Inline))).unwrap();
        assert_eq!(decoded.positions, reconstruction.positions);
        let refused =
            block_on(codec.decode(DecodeCall::new(Vec::from(&b"TRSE"[..]), 400, &Inline)))
                .unwrap_err();
        assert_eq!(refused.kind, ErrorKind::InvalidInput);
    }

    #[test]
    fn latent_knobs_are_refused() {
        let codec = SplatCodec::new();
        let scene = Arc::new(crate::synth::surface_scene(10, 0, 1));
        let options = EncodeOptions {
            latent_bits: 4,
            ..Default::default()
        };
        let refused = block_on(codec.encode(EncodeCall::new(scene, options, &Inline)))
            .err()
            .unwrap();
        assert_eq!(refused.kind, ErrorKind::InvalidInput);
    }
}
