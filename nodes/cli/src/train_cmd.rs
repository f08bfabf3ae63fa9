//! `s2r train tokenizer DATASET…`: trains a tokenizer variant on curated
//! clips, with held-out evaluation and resumable safetensors checkpoints.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use candle_core::Device;
use clap::{Args, Subcommand};
use s2r_tokenizer::data::{self, Clip};
use s2r_tokenizer::model::Config;
use s2r_tokenizer::train::Trainer;

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

fn variant(name: &str, width: usize, blocks: usize) -> Result<Config> {
    let cfg = match name {
        "cv4x8x8" => Config::CV4X8X8,
        "dv8x16x16" => Config::DV8X16X16,
        o => bail!("variant '{o}' is not cv4x8x8 or dv8x16x16"),
    };
    Ok(Config { width, blocks, ..cfg })
}

fn tokenizer(a: TokenizerArgs) -> Result<()> {
    s2r_tokenizer::tune_allocator();
    let mut cfg = variant(&a.variant, a.width, a.blocks)?;
    let dev = Device::Cpu;
    if a.resume {
        // The checkpoint's own architecture, not the flags'.
        cfg = s2r_tokenizer::codec::checkpoint_config(&a.output).map_err(|e| anyhow!("{e} (or train without --resume to start one)"))?;
    }
    if !a.crop.is_multiple_of(cfg.spatial) || !a.size.is_multiple_of(cfg.spatial) || a.crop > a.size {
        bail!("--crop {} and --size {} must be multiples of {} (crop ≤ size)", a.crop, a.size, cfg.spatial);
    }
    let len = 1 + cfg.temporal;
    let clips = data::load(&a.datasets, &a.camera, a.size, len).map_err(|e| anyhow!(e))?;
    // Every tenth clip is held out, never trained on.
    let (mut held, mut train): (Vec<&Clip>, Vec<&Clip>) = (Vec::new(), Vec::new());
    for (i, c) in clips.iter().enumerate() {
        if i % 10 == 9 {
            held.push(c)
        } else {
            train.push(c)
        }
    }
    if train.is_empty() || held.is_empty() {
        bail!("{} clips of {len} frames found; training needs at least 10 (camera '{}')", clips.len(), a.camera);
    }
    let mut tr = Trainer::new(cfg, a.lr, &dev)?;
    if a.resume {
        tr.load(&a.output).map_err(|e| anyhow!("{}: {e} (train without --resume to start one)", a.output.display()))?;
    }
    eprintln!(
        "{}: {} training clips, {} held out, {len} frames of {}x{} each; from step {}",
        cfg.name(),
        train.len(),
        held.len(),
        a.size,
        a.size,
        tr.step
    );
    let mut rng = a.seed ^ 0x9e37_79b9_7f4a_7c15 ^ tr.step as u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let eval = |tr: &Trainer| -> Result<f32> {
        let mut sum = 0.0;
        for c in &held {
            let v = data::batch(&[c], a.size, a.size, &[(0, 0)], &dev)?;
            sum += tr.evaluate(&v)?;
        }
        Ok(sum / held.len() as f32)
    };
    let t0 = Instant::now();
    let start = tr.step;
    let mut recent = Vec::new();
    while tr.step < a.steps {
        let picks: Vec<&Clip> = (0..a.batch).map(|_| train[(next() % train.len() as u64) as usize]).collect();
        let span = (a.size - a.crop) / cfg.spatial + 1;
        let offs: Vec<(usize, usize)> = (0..a.batch)
            .map(|_| (((next() % span as u64) as usize) * cfg.spatial, ((next() % span as u64) as usize) * cfg.spatial))
            .collect();
        let b = data::batch(&picks, a.size, a.crop, &offs, &dev)?;
        tr.set_lr(a.lr * ((tr.step - start + 1) as f64 / a.warmup.max(1) as f64).min(1.0));
        recent.push(tr.step(&b)?);
        if recent.len() > 20 {
            recent.remove(0);
        }
        let done = tr.step - start;
        let rate = done as f64 / t0.elapsed().as_secs_f64();
        let loss = recent.iter().sum::<f32>() / recent.len() as f32;
        let width = 30;
        let filled = width * tr.step / a.steps.max(1);
        eprint!(
            "\r[{}{}] step {}/{} loss {loss:.5} ({:.1} dB) {rate:.2} steps/s, {:.0} s left   ",
            "#".repeat(filled),
            ".".repeat(width - filled),
            tr.step,
            a.steps,
            10.0 * (4.0 / loss.max(1e-12)).log10(),
            (a.steps - tr.step) as f64 / rate.max(1e-9)
        );
        std::io::stderr().flush().ok();
        if tr.step % a.eval_every == 0 || tr.step == a.steps {
            let p = eval(&tr)?;
            tr.save(&a.output)?;
            eprintln!("\nstep {}: held-out PSNR {p:.2} dB; checkpoint {}", tr.step, a.output.display());
        }
    }
    Ok(())
}
