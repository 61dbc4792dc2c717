//! Compiles every `.proto` under `compress/` with protox (no system protoc), writes the descriptor
//! set for gRPC reflection, and generates prost messages plus tonic clients and servers.

use std::{
    error::Error,
    fs,
    path::{Path, PathBuf},
};

use prost::Message;

fn collect_protos(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, found)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            found.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let mut protos = Vec::new();
    collect_protos(&root.join("compress"), &mut protos)?;
    protos.sort();
    // The folder too: Cargo scans a folder for any change, so a new package's file reruns
    // this script (listing the files alone missed one added later).
    println!("cargo:rerun-if-changed={}", root.join("compress").display());
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }

    let relative: Vec<PathBuf> = protos
        .iter()
        .map(|p| p.strip_prefix(&root).map(Path::to_path_buf))
        .collect::<Result<_, _>>()?;
    let descriptors = protox::compile(&relative, [&root])?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("terse_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
