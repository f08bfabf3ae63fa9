//! `s2r tokens decode BAG -o DIR`: token chunks (sim2real_msgs/TokenFrame)
//! back into images (PNG) for inspection (s2r_tokenizer::decode does it).

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use s2r_tokenizer::codec::Codec;

#[derive(Subcommand)]
pub enum TokensCmd {
    /// Decode the tokens of a bag into PNG images.
    Decode(DecodeArgs),
}

#[derive(Args)]
pub struct DecodeArgs {
    /// A bag with sim2real_msgs/msg/TokenFrame messages.
    bag: PathBuf,
    /// The tokenizer checkpoint the tokens were made with: a shipped name (cv4x8x8, dv8x16x16) or a file.
    #[arg(long, default_value = "cv4x8x8")]
    checkpoint: String,
    #[arg(short, long, default_value = "decoded")]
    output: PathBuf,
}

pub fn run(c: TokensCmd) -> Result<()> {
    match c {
        TokensCmd::Decode(a) => decode(a),
    }
}

fn decode(a: DecodeArgs) -> Result<()> {
    s2r_tokenizer::tune_allocator();
    let codec = Codec::load(&s2r_tokenizer::resolve_checkpoint(&a.checkpoint))?;
    // The decoder's errors name the bag and the cause in their message.
    let n = s2r_tokenizer::decode::decode_bag(&a.bag, &codec, &a.checkpoint, &a.output, &mut |m| eprintln!("warning: {m}"))
        .map_err(|e| anyhow!("{e}"))?;
    println!("decoded {n} frames into {}", a.output.display());
    Ok(())
}
