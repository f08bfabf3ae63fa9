//! `s2r bench tokenizer`: encode and decode frames per second at 256×256 of
//! each tokenizer checkpoint, one chunk (1 + t frames) at a time as
//! tokenizer_node runs it, with candle on this machine's CPU cores.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, Result};
use clap::Args;
use s2r_tokenizer::codec::Codec;

/// Options of `s2r bench tokenizer`.
#[derive(Args, Clone)]
pub struct TokenizerBenchArgs {
    /// Checkpoints: shipped names or files.
    #[arg(long, value_delimiter = ',', default_value = "cv4x8x8,dv8x16x16")]
    checkpoints: Vec<String>,
    /// Frame size (square).
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Seconds each measurement runs (after one warm-up chunk).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
}

/// A moving test pattern with edges and gradients (speed does not depend on content).
fn frames(n: usize, size: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|f| {
            let mut v = vec![0f32; 3 * size * size];
            for c in 0..3 {
                for y in 0..size {
                    for x in 0..size {
                        let u = (x + 3 * f) as f32 / size as f32;
                        let block = if ((x + 2 * f) / 32 + y / 32) % 2 == 0 { 0.4 } else { -0.4 };
                        v[(c * size + y) * size + x] = block + 0.3 * (6.0 * u + c as f32).sin() * (y as f32 / size as f32);
                    }
                }
            }
            v
        })
        .collect()
}

/// Runs `f` (which handles `per` frames) for about `seconds`; frames per second.
fn rate(seconds: f64, per: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let t0 = Instant::now();
    let mut n = 0;
    while t0.elapsed().as_secs_f64() < seconds {
        f()?;
        n += per;
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

/// Measures each checkpoint and prints a table row each.
pub(crate) fn run(a: TokenizerBenchArgs) -> Result<()> {
    s2r_tokenizer::tune_allocator();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("tokenizer benchmark: {0}x{0}, one chunk at a time, candle CPU, {threads} cores", a.size);
    println!("| checkpoint | variant | parameters | chunk | encode frames/s | decode frames/s |");
    println!("|---|---|---|---|---|---|");
    for name in &a.checkpoints {
        let path: PathBuf = s2r_tokenizer::resolve_checkpoint(name);
        let codec = Codec::load(&path).map_err(|e| anyhow!(e))?;
        let chunk = 1 + codec.cfg.temporal;
        let clip = frames(chunk, a.size);
        let enc = rate(a.seconds, chunk, || codec.encode(&clip, a.size).map(|_| ()).map_err(Into::into))?;
        let tokens = codec.encode(&clip, a.size)?;
        let dec = rate(a.seconds, chunk, || codec.decode(&tokens).map(|_| ()).map_err(Into::into))?;
        println!(
            "| {} | {} w{} b{} | {} | {chunk} | {enc:.1} | {dec:.1} |",
            path.display(),
            codec.cfg.name(),
            codec.cfg.width,
            codec.cfg.blocks,
            codec.parameters()
        );
    }
    Ok(())
}
