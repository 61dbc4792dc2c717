//! Prunes 576 random visual tokens to 64 with DivPrune and prints the kept indices.
//!
//! `cargo run -p terse-client --example prune_tokens -- http://127.0.0.1:50051`

use ndarray::Array2;
use terse_client::{Client, TokenInputs, keep_count, proto::vision::v1::PruneMethod};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:50051".into());
    let client = Client::connect(address).await?;
    // A deterministic stand-in for a vision encoder's output: 576 tokens of width 64.
    let tokens =
        Array2::from_shape_fn((576, 64), |(n, d)| ((n * 31 + d * 17) % 101) as f32 / 101.0);
    let images = client
        .prune_tokens(
            tokens.view().into_dyn(),
            PruneMethod::Divprune,
            keep_count(64),
            TokenInputs::default(),
        )
        .await?;
    let image = &images[0];
    println!(
        "kept {} of {} tokens: {:?}",
        image.tokens.nrows(),
        tokens.nrows(),
        image.kept_indices
    );
    Ok(())
}
