//! `s2r train tokenizer DATASET…`: trains a tokenizer variant on curated
//! clips, with held-out evaluation and resumable safetensors checkpoints
//! (s2r_tokenizer::fit trains; this shows the progress).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use s2r_tokenizer::fit::{fit, FitOptions, FitProgress};

#[derive(Subcommand)]
pub enum TrainCmd {
    /// The causal video tokenizer (continuous cv4x8x8 or discrete dv8x16x16).
    Tokenizer(TokenizerArgs),
}

#[derive(Args)]
pub struct TokenizerArgs {
    /// Curated datasets (folders with clips/) or bags.
    #[arg(required = true)]
    datasets: Vec<PathBuf>,
    /// cv4x8x8 or dv8x16x16.
    #[arg(long, default_value = "cv4x8x8")]
    variant: String,
    /// The checkpoint to write (and to resume from with --resume).
    #[arg(short, long)]
    output: PathBuf,
    #[arg(long)]
    resume: bool,
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    #[arg(long, default_value_t = 2)]
    batch: usize,
    /// Training crop (the model is convolutional; evaluation uses whole frames).
    #[arg(long, default_value_t = 128)]
    crop: usize,
    /// Frame size the clips are resampled to.
    #[arg(long, default_value_t = 256)]
    size: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Steps over which the learning rate ramps up from zero, at every (re)start:
    /// checkpoints hold no optimizer state, and Adam's first steps move every weight by about lr.
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Network width.
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// Residual blocks at the latent rate (encoder and decoder each).
    #[arg(long, default_value_t = 2)]
    blocks: usize,
    #[arg(long, default_value_t = 100)]
    eval_every: usize,
    #[arg(long, default_value = "front")]
    camera: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(cmd: TrainCmd) -> Result<()> {
    match cmd {
        TrainCmd::Tokenizer(a) => tokenizer(a),
    }
}

fn tokenizer(a: TokenizerArgs) -> Result<()> {
    s2r_tokenizer::tune_allocator();
    let opts = FitOptions {
        datasets: a.datasets,
        variant: a.variant,
        output: a.output,
        resume: a.resume,
        steps: a.steps,
        batch: a.batch,
        crop: a.crop,
        size: a.size,
        lr: a.lr,
        warmup: a.warmup,
        width: a.width,
        blocks: a.blocks,
        eval_every: a.eval_every,
        camera: a.camera,
        seed: a.seed,
    };
    fit(&opts, &mut |p| match p {
        FitProgress::Start { config, train_clips, held_out, frames, size, from_step } => eprintln!(
            "{}: {train_clips} training clips, {held_out} held out, {frames} frames of {size}x{size} each; from step {from_step}",
            config.name()
        ),
        FitProgress::Step { step, steps, loss, steps_per_second: rate } => {
            let width = 30;
            let filled = width * step / steps.max(1);
            eprint!(
                "\r[{}{}] step {step}/{steps} loss {loss:.5} ({:.1} dB) {rate:.2} steps/s, {:.0} s left   ",
                "#".repeat(filled),
                ".".repeat(width - filled),
                10.0 * (4.0 / loss.max(1e-12)).log10(),
                (steps - step) as f64 / rate.max(1e-9)
            );
            std::io::stderr().flush().ok();
        }
        FitProgress::Checkpoint { step, psnr, path } => {
            eprintln!("\nstep {step}: held-out PSNR {psnr:.2} dB; checkpoint {}", path.display())
        }
    })?;
    Ok(())
}
