//! Generated types of the terse gRPC API, one module per `compress.*.v1` package.
//!
//! The `.proto` files under `proto/compress/` are the single source of truth; this crate is what
//! servers and the Rust SDK compile against. [`FILE_DESCRIPTOR_SET`] feeds gRPC reflection.

/// Encoded `google.protobuf.FileDescriptorSet` of every terse proto file.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/terse_descriptor.bin"));

/// Fully qualified names of every gRPC service the API defines.
pub const SERVICE_NAMES: &[&str] = &[
    "compress.models.v1.ModelRepositoryService",
    "compress.image.v1.ImageService",
    "compress.audio.v1.AudioService",
    "compress.splat.v1.SplatService",
    "compress.context.v1.ContextService",
    "compress.vision.v1.VisionService",
    "compress.tensor.v1.TensorService",
];

/// One `compress.<name>.v1` package as `<name>::v1`, compiled from `proto/` by `build.rs`.
macro_rules! package {
    ($(#[$doc:meta])* $name:ident = $package:literal) => {
        $(#[$doc])*
        pub mod $name {
            /// Version 1.
            pub mod v1 {
                tonic::include_proto!($package);
            }
        }
    };
}

package! {
    /// `compress.common.v1`: tensors, chunks, rate-distortion reports, model references.
    common = "compress.common.v1"
}
package! {
    /// `compress.models.v1`: the model repository API.
    models = "compress.models.v1"
}
package! {
    /// `compress.image.v1`: learned image codecs.
    image = "compress.image.v1"
}
package! {
    /// `compress.audio.v1`: learned audio codecs.
    audio = "compress.audio.v1"
}
package! {
    /// `compress.splat.v1`: 3D Gaussian splat compression.
    splat = "compress.splat.v1"
}
package! {
    /// `compress.context.v1`: prompt and RAG-context compression.
    context = "compress.context.v1"
}
package! {
    /// `compress.vision.v1`: visual-token pruning.
    vision = "compress.vision.v1"
}
package! {
    /// `compress.tensor.v1`: lossless model-weight compression.
    tensor = "compress.tensor.v1"
}

#[cfg(test)]
mod tests {
    use prost::Message;

    /// Every service in [`super::SERVICE_NAMES`] is in the descriptor set and vice versa, so
    /// reflection and health report exactly the API the protos define.
    #[test]
    fn descriptor_set_lists_every_service() {
        let set = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        let mut found: Vec<String> = set
            .file
            .iter()
            .flat_map(|file| {
                let package = file.package().to_string();
                file.service
                    .iter()
                    .map(move |service| format!("{package}.{}", service.name()))
            })
            .collect();
        found.sort();
        let mut expected: Vec<String> =
            super::SERVICE_NAMES.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(found, expected);
    }
}
