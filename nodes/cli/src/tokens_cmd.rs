//! `s2r tokens decode BAG -o DIR`: token chunks (sim2real_msgs/TokenFrame)
//! back into images (PNG) for inspection.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use s2r_bag::BagReader;
use s2r_image::{write_png, Rgb};
use s2r_runtime::Serialized;
use s2r_tokenizer::codec::Codec;
use s2r_tokenizer::node::tokens_of;
use sim2real_msgs::sim2real_msgs::msg::TokenFrame;

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
    let codec = Codec::load(&s2r_tokenizer::resolve_checkpoint(&a.checkpoint)).map_err(|e| anyhow!(e))?;
    let r = BagReader::open(&a.bag).map_err(|e| anyhow!("{}: {e}", a.bag.display()))?;
    std::fs::create_dir_all(&a.output)?;
    let mut n = 0;
    for m in r.messages() {
        let c = &r.connections[m.connection];
        if c.type_name != "sim2real_msgs/msg/TokenFrame" {
            continue;
        }
        let tf: TokenFrame = Serialized(m.data.clone()).decode().map_err(|e| anyhow!("{}: {}: {e}", a.bag.display(), c.topic))?;
        let want = format!("sim2real/{}", codec.cfg.name());
        if tf.codec != want {
            bail!("{}: tokens of codec '{}', the checkpoint {} is '{want}'", a.bag.display(), tf.codec, a.checkpoint);
        }
        let frames = match tokens_of(&tf).and_then(|t| Ok(codec.decode(&t)?)) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("warning: {}: {} message at {} ns skipped: {e}", a.bag.display(), c.topic, m.log_time);
                continue;
            }
        };
        let size = tf.width as usize;
        for (f, stamp) in frames.iter().zip(&tf.stamps) {
            let rgb = s2r_tokenizer::metrics::to_rgb8(f, size);
            let name = format!("{}_{}.{:09}.png", c.topic.trim_start_matches('/').replace('/', "_"), stamp.sec, stamp.nanosec);
            write_png(&a.output.join(name), &Rgb { width: size, height: size, data: rgb }).map_err(|e| anyhow!(e))?;
            n += 1;
        }
    }
    if n == 0 {
        bail!("{}: no sim2real_msgs/msg/TokenFrame messages", a.bag.display());
    }
    println!("decoded {n} frames into {}", a.output.display());
    Ok(())
}
