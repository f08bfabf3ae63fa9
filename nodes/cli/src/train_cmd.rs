//! `s2r train tokenizer DATASET…`: trains a tokenizer variant on curated
//! clips; `s2r train perception DATASET…` the perception network on the
//! simulator's labelled frames. Both evaluate on held-out data as they go and
//! write resumable safetensors checkpoints (the crates' `fit` modules train;
//! this parses and shows the progress).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use s2r_tokenizer::fit::{fit, FitOptions, FitProgress};

use crate::job_report::{self, Event};

#[derive(Subcommand)]
pub enum TrainCmd {
    /// The causal video tokenizer (continuous cv4x8x8 or discrete dv8x16x16).
    Tokenizer(TokenizerArgs),
    /// The perception network: detection, metric depth and segmentation.
    Perception(PerceptionArgs),
    /// The driving policy: behaviour cloning on the expert's demonstrations (s2r demos), then DAgger rounds.
    Policy(crate::train_policy_cmd::PolicyArgs),
    /// The reasoning predictors, fitted to the simulator's braking trials.
    Reason(crate::reason_cmd::TrainReasonArgs),
    /// The world model: pre-train on every scenario, or post-train a base (--base) on a target domain.
    World(crate::world_cmd::TrainWorldArgs),
    /// The multiview model: a rig's other cameras from its front camera (s2r generate config/sweeps/multiview.yaml).
    Multiview(crate::multiview_cmd::TrainMultiviewArgs),
}

#[derive(Args)]
pub struct PerceptionArgs {
    /// Datasets from `s2r generate` (their training split), curated folders or bags.
    #[arg(required = true)]
    datasets: Vec<PathBuf>,
    /// The checkpoint to write; when it exists, training resumes from it (see --fresh).
    #[arg(short, long)]
    output: PathBuf,
    /// Held-out data for the evaluations during training (default: the datasets' `val` split).
    #[arg(long)]
    val: Vec<PathBuf>,
    /// Renderings to train on: flat, restyled or both.
    #[arg(long, default_value = "both")]
    frames: String,
    /// Cameras (default: every camera with labels).
    #[arg(long, value_delimiter = ',')]
    camera: Vec<String>,
    /// Use every n-th frame of each camera.
    #[arg(long, default_value_t = 1)]
    every: usize,
    #[arg(long, default_value_t = 20_000)]
    steps: usize,
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Peak learning rate (warm-up, then cosine decay).
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Training crop, WIDTHxHEIGHT (multiples of 16).
    #[arg(long, default_value = "256x192")]
    crop: String,
    /// No augmentation (the letterboxed frames as they are).
    #[arg(long)]
    no_augment: bool,
    #[arg(long, default_value_t = 500)]
    eval_every: usize,
    /// Held-out frames per evaluation.
    #[arg(long, default_value_t = 200)]
    eval_frames: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Start from scratch even if the output exists.
    #[arg(long)]
    fresh: bool,
    /// Fine-tune a trained checkpoint: its network and weights, a fresh optimiser and --steps of schedule (a smaller
    /// --lr suits); an existing output still resumes.
    #[arg(long)]
    base: Option<PathBuf>,
    /// cpu, or cuda / cuda:N (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
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
    /// Where the network trains: cpu, cuda or cuda:N (CUDA needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn run(cmd: TrainCmd) -> Result<()> {
    match cmd {
        TrainCmd::Tokenizer(a) => tokenizer(a),
        TrainCmd::Perception(a) => perception(a),
        TrainCmd::Policy(a) => crate::train_policy_cmd::run(a),
        TrainCmd::Reason(a) => crate::reason_cmd::train(a),
        TrainCmd::World(a) => crate::world_cmd::train(a),
        TrainCmd::Multiview(a) => crate::multiview_cmd::train(a),
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
        device: s2r_train::device(&a.device)?,
    };
    job_report::emit(Event::Start { steps: opts.steps as u64, metric: "psnr_db".into(), higher_is_better: true });
    fit(&opts, &mut |p| match p {
        FitProgress::Start { config, train_clips, held_out, frames, size, from_step } => eprintln!(
            "{}: {train_clips} training clips, {held_out} held out, {frames} frames of {size}x{size} each; from step {from_step}",
            config.name()
        ),
        FitProgress::Step { step, steps, loss, steps_per_second: rate } => {
            job_report::emit(Event::Step { step: step as u64, loss: loss as f64 });
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
            job_report::emit(Event::HeldOut { step: step as u64, value: psnr as f64 });
            eprintln!("\nstep {step}: held-out PSNR {psnr:.2} dB; checkpoint {}", path.display())
        }
    })?;
    Ok(())
}

/// The step and loss of a progress line `step N/M: loss L, …`.
fn progress_line(m: &str) -> Option<(u64, f64)> {
    let rest = m.strip_prefix("step ")?;
    let (step, rest) = rest.split_once('/')?;
    let loss = rest.split_once(": loss ")?.1.split(',').next()?;
    Some((step.parse().ok()?, loss.trim().parse().ok()?))
}

/// `WIDTHxHEIGHT`.
fn parse_size(s: &str, what: &str) -> Result<(usize, usize)> {
    let (w, h) = s.split_once('x').ok_or_else(|| anyhow::anyhow!("{what} {s}: expected WIDTHxHEIGHT"))?;
    Ok((
        w.parse().map_err(|_| anyhow::anyhow!("{what} {s}: bad width"))?,
        h.parse().map_err(|_| anyhow::anyhow!("{what} {s}: bad height"))?,
    ))
}

fn perception(a: PerceptionArgs) -> Result<()> {
    use s2r_perception::{augment::Augment, data::Frames, fit};
    s2r_runtime::tune_allocator();
    let mut opts = fit::FitOptions::new(a.datasets, a.output);
    opts.val = a.val;
    opts.frames = Frames::parse(&a.frames).ok_or_else(|| anyhow::anyhow!("--frames {}: expected flat, restyled or both", a.frames))?;
    opts.cameras = a.camera;
    opts.every = a.every.max(1);
    opts.steps = a.steps;
    opts.batch = a.batch.max(1);
    opts.lr = a.lr;
    opts.crop = parse_size(&a.crop, "--crop")?;
    opts.augment = if a.no_augment { Augment::NONE } else { Augment::DEFAULT };
    opts.eval_every = a.eval_every;
    opts.eval_frames = a.eval_frames;
    opts.seed = a.seed;
    opts.fresh = a.fresh;
    opts.base = a.base;
    opts.device = s2r_perception::device(&a.device)?;
    let output = opts.output.clone();
    job_report::emit(Event::Start { steps: opts.steps as u64, metric: "ap50".into(), higher_is_better: true });
    let r = fit::fit(&opts, |m| {
        eprintln!("{m}");
        // Without a terminal (a trainer_node job) fit says every 100 steps "step N/M: loss L, …".
        if let Some((step, loss)) = progress_line(m) {
            job_report::emit(Event::Step { step, loss });
        }
    })?;
    if let Some(h) = &r.held_out {
        job_report::emit(Event::HeldOut { step: r.steps as u64, value: h.detection.ap50 });
    }
    if r.steps > r.start {
        let (a, b) = (r.first_loss, r.last_loss);
        eprintln!(
            "trained steps {}..{} on {} images ({:.1} images/s): loss {:.3} -> {:.3}; heat {:.3} -> {:.3}, box {:.3} -> {:.3}, \
             depth {:.3} -> {:.3}, segmentation {:.3} -> {:.3}; wrote {}",
            r.start,
            r.steps,
            r.samples,
            r.images_per_second,
            a.total,
            b.total,
            a.heat,
            b.heat,
            a.boxes,
            b.boxes,
            a.depth,
            b.depth,
            a.seg,
            b.seg,
            output.display()
        );
    } else {
        eprintln!("wrote {} (step {})", output.display(), r.steps);
    }
    if let Some(h) = &r.held_out {
        eprint!("held out:\n{}", s2r_perception::eval::format(h));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn perception_progress_lines_give_step_and_loss() {
        assert_eq!(super::progress_line("step 300/20000: loss 1.234, 55.2 images/s"), Some((300, 1.234)));
        assert_eq!(super::progress_line("wrote x (step 3)"), None);
    }
}
