//! Encodes an image with the default codec, decodes it back to PNG and prints what it cost
//! (raw RGB bytes -> bitstream bytes, bits per pixel, PSNR).
//!
//! `cargo run -p terse-client --example roundtrip_image -- http://127.0.0.1:50051 photo.png out.png`

use terse_client::{
    Client,
    proto::image::v1::{EncodeOptions, ImageFormat},
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [address, input, output] = args.as_slice() else {
        return Err("usage: roundtrip_image ADDRESS INPUT OUTPUT.png".into());
    };
    let client = Client::connect(address.clone()).await?;
    let original = std::fs::read(input)?;
    let options = EncodeOptions {
        measure_quality: true,
        ..Default::default()
    };
    let encoded = client.encode_image(&original, options).await?;
    let decoded = client
        .decode_image(&encoded.bitstream, ImageFormat::Png)
        .await?;
    std::fs::write(output, &decoded.image)?;
    let rd = encoded.rate_distortion.unwrap_or_default();
    println!(
        "{}x{}: {} -> {} bytes, {:.3} bpp, PSNR {:.2} dB",
        encoded.width,
        encoded.height,
        rd.original_bytes,
        rd.compressed_bytes,
        rd.bits_per_pixel.unwrap_or_default(),
        rd.psnr_db.unwrap_or_default()
    );
    Ok(())
}
