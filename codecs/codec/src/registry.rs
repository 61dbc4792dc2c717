//! The codecs of one media kind, by name and by the model a bitstream names.

use std::sync::Arc;

use terse_core::{Error, ErrorKind, echo, pick_by_name};
use terse_entropy::Header;

use crate::{CodecInfo, DynCodec};

/// The codecs of one media kind, in the order they were registered (the first is the
/// default).
pub struct CodecRegistry<M, K = ()> {
    what: &'static str,
    codecs: Vec<Arc<DynCodec<M, K>>>,
}

impl<M: Send + Sync + 'static, K: Default + Send + Sync + 'static> CodecRegistry<M, K> {
    /// An empty registry of `what` codecs (for messages: "image", "audio").
    pub fn new(what: &'static str) -> Self {
        Self {
            what,
            codecs: Vec::new(),
        }
    }

    /// Adds a codec; a name already taken is an error.
    pub fn register(&mut self, codec: Arc<DynCodec<M, K>>) -> Result<(), Error> {
        let name = &codec.info().name;
        if self.codecs.iter().any(|c| c.info().name == *name) {
            return Err(Error::internal(format!(
                "two {} codecs are named `{name}`",
                self.what
            )));
        }
        self.codecs.push(codec);
        Ok(())
    }

    /// The codecs, default first.
    pub fn codecs(&self) -> &[Arc<DynCodec<M, K>>] {
        &self.codecs
    }

    /// What each codec says about itself.
    pub fn infos(&self) -> impl Iterator<Item = &CodecInfo> {
        self.codecs.iter().map(|c| c.info())
    }

    /// The codec names.
    pub fn names(&self) -> Vec<String> {
        self.infos().map(|i| i.name.clone()).collect()
    }

    /// The codec called `name` (empty: the default): `Unavailable` when none is hosted,
    /// `NotFound` naming the hosted ones when `name` is not.
    pub fn pick(&self, name: &str) -> Result<&Arc<DynCodec<M, K>>, Error> {
        pick_by_name(
            &self.codecs,
            name,
            |c| c.info().name.as_str(),
            &format!("{} codec", self.what),
        )
    }

    /// The codec a bitstream was coded with: `InvalidInput` when it is not a container or
    /// names no model and no model-less codec of its codec id is here, `NotFound` when no codec here has that name, `Unavailable` when the
    /// codec here runs another build of the model (its tag differs).
    pub fn for_bitstream(&self, bitstream: &[u8]) -> Result<&Arc<DynCodec<M, K>>, Error> {
        let header =
            Header::read(bitstream).map_err(|e| Error::invalid(format!("bitstream: {e}")))?;
        let Some(model) = header.model else {
            // A codec that runs no model writes none into its bitstreams (splats).
            return self
                .codecs
                .iter()
                .find(|c| c.tag().is_none() && c.info().id == header.codec)
                .ok_or_else(|| Error::invalid("bitstream names no model"));
        };
        let found = self
            .codecs
            .iter()
            .find(|c| c.info().name == model.name && c.info().id == header.codec)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "bitstream needs codec `{}`, which this server does not host",
                        echo(&model.name)
                    ),
                )
            })?;
        match found.tag() {
            Some(tag) if *tag == model => Ok(found),
            tag => Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "bitstream was coded with another build of `{}` (decoder sha256 prefix {}); this server has {}",
                    model.name,
                    hex(&model.sha256_prefix),
                    tag.map_or_else(|| "none".into(), |t| hex(&t.sha256_prefix))
                ),
            )),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Codec, DecodeCall, DecodeFuture, EncodeCall, EncodeFuture, EncodeOptions, Encoding, Work,
    };
    use terse_entropy::{CodecId, Container, ModelTag};

    /// Writes a container naming its model, with the bytes as one section.
    struct Tagged(CodecInfo, ModelTag);

    impl Codec for Tagged {
        type Media = Vec<u8>;
        type Knobs = ();
        fn info(&self) -> &CodecInfo {
            &self.0
        }
        fn working_memory(&self, _: Work, shape: &[u64]) -> u64 {
            shape.iter().product()
        }
        fn encode<'a>(&'a self, call: EncodeCall<'a, Vec<u8>>) -> EncodeFuture<'a, Vec<u8>> {
            let media = call.media;
            let mut container = Container::new(self.0.id);
            container.model = Some(self.1.clone());
            container.push_section(*b"DATA", media.to_vec());
            let bitstream = container
                .to_bytes()
                .map_err(|e| Error::internal(e.to_string()));
            Box::pin(async move { Ok(Encoding::bitstream(bitstream?)) })
        }
        fn decode<'a>(&'a self, call: DecodeCall<'a>) -> DecodeFuture<'a, Vec<u8>> {
            let bitstream = call.bitstream;
            Box::pin(async move { Ok(bitstream) })
        }
    }

    fn tagged(name: &str, sha: &str) -> Arc<Tagged> {
        let tag = ModelTag::from_sha256_hex(name, sha).unwrap();
        let info = CodecInfo {
            channels: 1,
            ..CodecInfo::learned(&tag, "1", "test", CodecId::Test, String::new())
        };
        Arc::new(Tagged(info, tag))
    }

    const SHA_A: &str = "aa00000000000000000000000000000000000000000000000000000000000000";
    const SHA_B: &str = "bb00000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn picks_by_name_with_the_first_as_default() {
        let mut registry = CodecRegistry::new("test");
        assert_eq!(
            registry.pick("").err().unwrap().kind,
            ErrorKind::Unavailable
        );
        registry.register(tagged("one", SHA_A)).unwrap();
        registry.register(tagged("two", SHA_A)).unwrap();
        assert_eq!(registry.pick("").unwrap().info().name, "one");
        assert_eq!(registry.pick("two").unwrap().info().name, "two");
        let missing = registry.pick(&"x".repeat(1000)).err().unwrap();
        assert_eq!(missing.kind, ErrorKind::NotFound);
        assert!(missing.message.contains("available: one, two"), "{missing}");
        assert!(missing.message.len() < 400, "the name is echoed cut");
        assert!(registry.register(tagged("one", SHA_B)).is_err());
    }

    #[test]
    fn finds_the_codec_of_a_bitstream_and_checks_its_build() {
        let mut registry = CodecRegistry::new("test");
        registry.register(tagged("one", SHA_A)).unwrap();
        let same = tagged("one", SHA_A);
        let other_build = tagged("one", SHA_B);
        let unknown = tagged("three", SHA_A);
        let code = |c: &Tagged| {
            let call = EncodeCall::new(
                Arc::new(vec![1, 2]),
                EncodeOptions::default(),
                &terse_core::Inline,
            );
            terse_core::block_on(c.encode(call)).unwrap().bitstream
        };
        assert_eq!(
            registry.for_bitstream(&code(&same)).unwrap().info().name,
            "one"
        );
        let e = registry.for_bitstream(&code(&other_build)).err().unwrap();
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(e.message.contains("another build"), "{e}");
        let e = registry.for_bitstream(&code(&unknown)).err().unwrap();
        assert_eq!(e.kind, ErrorKind::NotFound);
        let e = registry.for_bitstream(b"not a container").err().unwrap();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
    }
}
