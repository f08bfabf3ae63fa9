//! The training driver of `s2r train tokenizer`: a variant trained on the
//! clips of curated datasets or bags, every tenth clip held out for
//! evaluation, random crops, learning-rate warm-up at every (re)start, and
//! resumable safetensors checkpoints (`train::Trainer` does the steps).

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;

use crate::data::{self, Clip};
use crate::model::Config;
use crate::train::Trainer;
use crate::TokenizerError;

/// What [`fit`] trains. The defaults are `s2r train tokenizer`'s (with no
/// datasets and no output).
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Curated datasets (folders with clips/) or bags.
    pub datasets: Vec<PathBuf>,
    /// `cv4x8x8` or `dv8x16x16` (ignored when resuming: the checkpoint's own architecture is used).
    pub variant: String,
    /// The checkpoint to write (and to resume from with `resume`).
    pub output: PathBuf,
    /// Continue from the checkpoint at `output`: its architecture, weights and step.
    pub resume: bool,
    /// The step to stop at (counted from the start, resumed steps included).
    pub steps: usize,
    /// Clips per step.
    pub batch: usize,
    /// Training crop (the model is convolutional; evaluation uses whole frames).
    pub crop: usize,
    /// Frame size the clips are resampled to.
    pub size: usize,
    /// Learning rate after warm-up.
    pub lr: f64,
    /// Steps over which the learning rate ramps up from zero, at every (re)start:
    /// checkpoints hold no optimizer state, and Adam's first steps move every weight by about lr.
    pub warmup: usize,
    /// Network width.
    pub width: usize,
    /// Residual blocks at the latent rate (encoder and decoder each).
    pub blocks: usize,
    /// Steps between held-out evaluations (each writes the checkpoint).
    pub eval_every: usize,
    /// The camera whose frames are used.
    pub camera: String,
    /// Seed of the clip and crop choice.
    pub seed: u64,
    /// Where the network trains (the CPU, or a GPU with the `cuda` feature).
    pub device: Device,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            datasets: Vec::new(),
            variant: "cv4x8x8".into(),
            output: PathBuf::new(),
            resume: false,
            steps: 1000,
            batch: 2,
            crop: 128,
            size: 256,
            lr: 1e-3,
            warmup: 100,
            width: 64,
            blocks: 2,
            eval_every: 100,
            camera: "front".into(),
            seed: 0,
            device: Device::Cpu,
        }
    }
}

/// What [`fit`] reports as it goes.
#[derive(Clone, Copy, Debug)]
pub enum FitProgress<'a> {
    /// The data is loaded and the model ready; training starts.
    Start {
        /// The architecture trained.
        config: Config,
        /// Clips trained on.
        train_clips: usize,
        /// Clips held out (every tenth).
        held_out: usize,
        /// Frames per clip.
        frames: usize,
        /// Frame size (square).
        size: usize,
        /// The step training starts from (0, or the resumed checkpoint's).
        from_step: usize,
    },
    /// An optimisation step is done.
    Step {
        /// Steps done so far (resumed ones included).
        step: usize,
        /// The step training stops at.
        steps: usize,
        /// Mean loss (MSE in [−1, 1]) of the last 20 steps.
        loss: f32,
        /// Steps per second since this start.
        steps_per_second: f64,
    },
    /// The held-out clips were evaluated and the checkpoint written.
    Checkpoint {
        /// The step.
        step: usize,
        /// Mean PSNR of the held-out clips, dB.
        psnr: f32,
        /// The checkpoint written.
        path: &'a Path,
    },
}

/// The state [`fit`] ended in.
#[derive(Clone, Copy, Debug)]
pub struct Fitted {
    /// The architecture trained.
    pub config: Config,
    /// Steps done (resumed ones included).
    pub step: usize,
    /// Held-out PSNR at the last checkpoint, dB (none if no step was due one).
    pub psnr: Option<f32>,
}

/// The architecture of a variant name with the given width and blocks.
pub fn variant(name: &str, width: usize, blocks: usize) -> Result<Config, TokenizerError> {
    let cfg = match name {
        "cv4x8x8" => Config::CV4X8X8,
        "dv8x16x16" => Config::DV8X16X16,
        o => return Err(TokenizerError::UnknownVariant { name: o.into() }),
    };
    Ok(Config { width, blocks, ..cfg })
}

/// Trains a tokenizer on `opts.device` as `opts` says, up to `opts.steps`, writing
/// the checkpoint at every evaluation; `progress` hears of the start, every
/// step and every checkpoint. Errors name the option, the dataset or the
/// checkpoint that is wrong.
pub fn fit(opts: &FitOptions, progress: &mut dyn FnMut(FitProgress<'_>)) -> Result<Fitted, TokenizerError> {
    let mut cfg = variant(&opts.variant, opts.width, opts.blocks)?;
    let dev = opts.device.clone();
    if opts.resume {
        // The checkpoint's own architecture, not the options'.
        cfg = crate::codec::checkpoint_config(&opts.output)
            .map_err(|e| TokenizerError::ResumeConfig { path: opts.output.clone(), error: Box::new(e) })?;
    }
    let (size, crop) = (opts.size, opts.crop);
    if !crop.is_multiple_of(cfg.spatial) || !size.is_multiple_of(cfg.spatial) || crop > size {
        return Err(TokenizerError::CropSize { crop, size, spatial: cfg.spatial });
    }
    let len = 1 + cfg.temporal;
    let clips = data::load(&opts.datasets, &opts.camera, size, len)?;
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
        return Err(TokenizerError::TooFewClips { clips: clips.len(), frames: len, camera: opts.camera.clone() });
    }
    let mut tr = Trainer::new(cfg, opts.lr, &dev)?;
    if opts.resume {
        tr.load(&opts.output).map_err(|e| TokenizerError::ResumeWeights { path: opts.output.clone(), error: Box::new(e) })?;
    }
    progress(FitProgress::Start { config: cfg, train_clips: train.len(), held_out: held.len(), frames: len, size, from_step: tr.step });
    let mut rng = opts.seed ^ 0x9e37_79b9_7f4a_7c15 ^ tr.step as u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let eval = |tr: &Trainer| -> Result<f32, TokenizerError> {
        let mut sum = 0.0;
        for c in &held {
            let v = data::batch(&[c], size, size, &[(0, 0)], &dev)?;
            sum += tr.evaluate(&v)?;
        }
        Ok(sum / held.len() as f32)
    };
    let t0 = Instant::now();
    let start = tr.step;
    let mut recent = Vec::new();
    let mut psnr = None;
    while tr.step < opts.steps {
        let picks: Vec<&Clip> = (0..opts.batch).map(|_| train[(next() % train.len() as u64) as usize]).collect();
        let span = (size - crop) / cfg.spatial + 1;
        let offs: Vec<(usize, usize)> = (0..opts.batch)
            .map(|_| (((next() % span as u64) as usize) * cfg.spatial, ((next() % span as u64) as usize) * cfg.spatial))
            .collect();
        let b = data::batch(&picks, size, crop, &offs, &dev)?;
        tr.set_lr(opts.lr * ((tr.step - start + 1) as f64 / opts.warmup.max(1) as f64).min(1.0));
        recent.push(tr.step(&b)?);
        if recent.len() > 20 {
            recent.remove(0);
        }
        let done = tr.step - start;
        progress(FitProgress::Step {
            step: tr.step,
            steps: opts.steps,
            loss: recent.iter().sum::<f32>() / recent.len() as f32,
            steps_per_second: done as f64 / t0.elapsed().as_secs_f64(),
        });
        if tr.step % opts.eval_every == 0 || tr.step == opts.steps {
            let p = eval(&tr)?;
            tr.save(&opts.output)?;
            psnr = Some(p);
            progress(FitProgress::Checkpoint { step: tr.step, psnr: p, path: &opts.output });
        }
    }
    Ok(Fitted { config: cfg, step: tr.step, psnr })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bags").join(name)
    }

    #[test]
    fn variants_by_name() {
        assert_eq!(variant("dv8x16x16", 8, 1).unwrap(), Config { width: 8, blocks: 1, ..Config::DV8X16X16 });
        let e = variant("cv9", 8, 1).unwrap_err().to_string();
        assert_eq!(e, "variant 'cv9' is not cv4x8x8 or dv8x16x16");
    }

    #[test]
    fn a_tiny_model_trains_checkpoints_and_resumes() {
        let dir = std::env::temp_dir().join(format!("s2r_fit_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let opts = FitOptions {
            datasets: vec![sample("icy_night_crossing"), sample("cup_near_edge")],
            output: dir.join("tiny.safetensors"),
            steps: 2,
            batch: 1,
            crop: 32,
            size: 64,
            width: 8,
            blocks: 1,
            eval_every: 2,
            ..FitOptions::default()
        };
        let mut events = Vec::new();
        let done = fit(&opts, &mut |p| {
            events.push(match p {
                FitProgress::Start { train_clips, held_out, frames, from_step, .. } => {
                    format!("start {train_clips} {held_out} {frames} {from_step}")
                }
                FitProgress::Step { step, steps, .. } => format!("step {step}/{steps}"),
                FitProgress::Checkpoint { step, path, .. } => format!("checkpoint {step} {}", path == opts.output),
            })
        })
        .unwrap();
        // 15 clips of 5 frames in the two bags: every tenth held out.
        assert_eq!(events, ["start 14 1 5 0", "step 1/2", "step 2/2", "checkpoint 2 true"]);
        assert_eq!((done.step, done.config.width), (2, 8));
        assert!(done.psnr.is_some() && opts.output.is_file());
        // Resumed: the checkpoint's architecture (width 8), not the options' (64).
        let resumed = FitOptions { resume: true, steps: 3, eval_every: 3, width: 64, ..opts.clone() };
        let done = fit(&resumed, &mut |_| {}).unwrap();
        assert_eq!((done.step, done.config.width), (3, 8));
        // Errors name what is wrong.
        let e = fit(&FitOptions { camera: "nope".into(), ..opts.clone() }, &mut |_| {}).unwrap_err().to_string();
        assert_eq!(e, "0 clips of 5 frames found; training needs at least 10 (camera 'nope')");
        let e = fit(&FitOptions { crop: 100, ..opts.clone() }, &mut |_| {}).unwrap_err().to_string();
        assert_eq!(e, "--crop 100 and --size 64 must be multiples of 8 (crop ≤ size)");
        let junk = dir.join("junk.safetensors");
        std::fs::write(&junk, b"junk").unwrap();
        let e = fit(&FitOptions { resume: true, output: junk, ..opts }, &mut |_| {}).unwrap_err().to_string();
        assert!(e.contains("junk.safetensors") && e.ends_with("(or train without --resume to start one)"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
