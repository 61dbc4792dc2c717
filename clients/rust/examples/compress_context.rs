//! Compresses the text on stdin with LLMLingua-2 at the given rate and prints the result.
//!
//! `echo "some long prompt" | cargo run -p terse-client --example compress_context -- http://127.0.0.1:50051 0.5`

use std::io::Read;

use terse_client::{Client, proto::context::v1::PromptOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [address, rate] = args.as_slice() else {
        return Err("usage: compress_context ADDRESS RATE < prompt.txt".into());
    };
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    let client = Client::connect(address.clone()).await?;
    let options = PromptOptions {
        rate: Some(rate.parse()?),
        ..Default::default()
    };
    let response = client.compress_prompt([text], options).await?;
    eprintln!(
        "{} -> {} tokens ({})",
        response.origin_tokens, response.compressed_tokens, response.rate
    );
    println!("{}", response.compressed_prompt);
    Ok(())
}
