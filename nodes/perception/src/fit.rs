//! `s2r train perception`: reads the labelled frames, trains the network with
//! augmentation, evaluates on held-out data as it goes, and checkpoints
//! (resumable: the same command continues from the output file).

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::augment::{example, random_view, Augment, Example};
use crate::checkpoint::{self, AdamW, Meta, Trainable, Training};
use crate::data::{self, Dataset, Frames, LoadOptions, Split};
use crate::eval::{self, Report};
use crate::frame::normalise;
use crate::loss::{Losses, Targets};
use crate::model::Config;
use crate::predict::Predictor;
use crate::PerceptionError;

/// What to train on and how.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Datasets (`s2r generate` outputs: their training split), curated folders or bags.
    pub data: Vec<PathBuf>,
    /// Held-out data; empty: the `val` split of the datasets that have one.
    pub val: Vec<PathBuf>,
    /// The checkpoint to write (and to resume from when it exists).
    pub output: PathBuf,
    /// Renderings to train on.
    pub frames: Frames,
    /// Cameras (empty: all with labels).
    pub cameras: Vec<String>,
    /// Every n-th frame.
    pub every: usize,
    /// Total optimisation steps.
    pub steps: usize,
    /// Images per step.
    pub batch: usize,
    /// Peak learning rate (linear warm-up, cosine decay).
    pub lr: f64,
    /// Training crop size (width, height), multiples of 16: a window of the
    /// frame at the scale of the network's input.
    pub crop: (usize, usize),
    /// Augmentation.
    pub augment: Augment,
    /// Evaluate and checkpoint every this many steps.
    pub eval_every: usize,
    /// Held-out frames per evaluation (spread evenly over the held-out data, always the same).
    pub eval_frames: usize,
    /// Seed of the sampling and augmentation.
    pub seed: u64,
    /// Start afresh even if `output` exists.
    pub fresh: bool,
    /// Fine-tune: start from this checkpoint's network and weights (a fresh
    /// optimiser and schedule of `steps`); a resumed `output` takes precedence.
    pub base: Option<PathBuf>,
    /// Draw a progress bar.
    pub progress: bool,
    /// Where to run.
    pub device: Device,
}

impl FitOptions {
    /// Defaults for `data` → `output`.
    pub fn new(data: Vec<PathBuf>, output: PathBuf) -> FitOptions {
        FitOptions {
            data,
            val: Vec::new(),
            output,
            frames: Frames::Restyled,
            cameras: Vec::new(),
            every: 1,
            steps: 20_000,
            batch: 8,
            lr: 2e-3,
            crop: (256, 192),
            augment: Augment::DEFAULT,
            eval_every: 500,
            eval_frames: 200,
            seed: 1,
            fresh: false,
            base: None,
            progress: true,
            device: Device::Cpu,
        }
    }
}

/// What a training run did.
#[derive(Clone, Debug)]
pub struct FitReport {
    /// The step it started from (0, or where a checkpoint left off).
    pub start: usize,
    /// The step it ended at.
    pub steps: usize,
    /// Mean loss over the first 20 steps of this run.
    pub first_loss: Losses,
    /// Mean loss over the last 20 steps.
    pub last_loss: Losses,
    /// Training samples.
    pub samples: usize,
    /// The last held-out evaluation.
    pub held_out: Option<Report>,
    /// Training images per second.
    pub images_per_second: f64,
}

/// Learning rate at `step`: linear warm-up over the first 300 steps, then cosine to 5% of the peak.
fn rate(peak: f64, step: usize, total: usize) -> f64 {
    let warm = 300.min(total / 10).max(1);
    if step < warm {
        return peak * (step + 1) as f64 / warm as f64;
    }
    let t = (step - warm) as f64 / (total - warm).max(1) as f64;
    peak * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos()))
}

/// A batch of examples for `step`: samples and augmentation drawn from a
/// generator seeded by (seed, step), so a resumed run sees what an uninterrupted one would.
fn batch(ds: &Dataset, opts: &FitOptions, net: (usize, usize), step: usize) -> Vec<Example> {
    let mut rng = StdRng::seed_from_u64(opts.seed ^ (step as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let picks: Vec<(usize, u64)> = (0..opts.batch).map(|_| (rng.random_range(0..ds.samples.len()), rng.random())).collect();
    picks
        .par_iter()
        .map(|&(i, seed)| {
            let mut rng = StdRng::seed_from_u64(seed);
            let s = &ds.samples[i];
            let v = random_view(s.labels.w, s.labels.h, net, opts.crop.0, opts.crop.1, &opts.augment, &mut rng);
            example(s, &v, &opts.augment, &mut rng)
        })
        .collect()
}

/// Trains; returns what happened. Writes `opts.output` at every evaluation and at the end.
pub fn fit(opts: &FitOptions, mut log: impl FnMut(&str)) -> Result<FitReport, PerceptionError> {
    if !opts.crop.0.is_multiple_of(16) || !opts.crop.1.is_multiple_of(16) || opts.crop.0 == 0 || opts.crop.1 == 0 {
        return Err(PerceptionError::Data(format!("--crop {}x{}: both sides must be positive multiples of 16", opts.crop.0, opts.crop.1)));
    }
    let resume = if opts.output.is_file() && !opts.fresh { Some(checkpoint::read(&opts.output)?) } else { None };
    let base = match (&resume, &opts.base) {
        (None, Some(p)) => Some(checkpoint::read(p)?),
        _ => None,
    };
    // The network (and its class tables) of the run resumed, else of the base.
    let fixed = resume.as_ref().or(base.as_ref()).map(|r| &r.meta.config);
    let load = |paths: &[PathBuf], split: Split, fixed: Option<&Config>| -> Result<Dataset, PerceptionError> {
        let b = data::bags_of(paths, split)?;
        data::load(
            &b,
            &LoadOptions {
                frames: opts.frames,
                cameras: opts.cameras.clone(),
                every: opts.every,
                det_classes: fixed.map(|c| c.det_classes.clone()),
                seg_classes: fixed.map(|c| c.seg_classes.clone()),
            },
        )
    };
    let t0 = Instant::now();
    let train = load(&opts.data, Split::Train, fixed)?;
    if train.samples.is_empty() {
        let hint = if opts.frames == Frames::Flat {
            ""
        } else {
            "; restyled frames are /<camera>/image_raw beside the simulator's /sim/<camera>/image_raw (`--frames flat` trains on the flat renders alone)"
        };
        return Err(PerceptionError::Data(format!(
            "no labelled frames in {} (training split, {} frames){hint}",
            opts.data.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
            opts.frames.name()
        )));
    }
    if train.det_classes.is_empty() {
        return Err(PerceptionError::Data("the training data has no labelled objects (no boxes on /sim/<camera>/detections)".into()));
    }
    let cfg = match fixed {
        Some(c) => c.clone(),
        None => Config::small(train.det_classes.clone(), train.seg_classes.clone()),
    };
    // Held out: --val as given, else the `val` split of the datasets that
    // have one (a bag or folder without splits.yaml is all training data).
    let mut val = if !opts.val.is_empty() {
        load(&opts.val, Split::All, Some(&cfg))?
    } else {
        let split: Vec<PathBuf> = opts.data.iter().filter(|p| p.join("splits.yaml").is_file()).cloned().collect();
        if split.is_empty() {
            Dataset::default()
        } else {
            load(&split, Split::Val, Some(&cfg))?
        }
    };
    // Evenly spread over the held-out data (its bags are in scenario order).
    let n = val.samples.len();
    if n > opts.eval_frames {
        val.samples = (0..opts.eval_frames).map(|i| val.samples[i * n / opts.eval_frames].clone()).collect();
    }
    if !val.samples.is_empty() {
        let lut = val.det_lut();
        let mut seen = vec![false; cfg.det_classes.len()];
        for s in &val.samples {
            for o in &s.labels.objects {
                if let Some(k) = lut.get(o.class).copied().flatten() {
                    seen[k] = true;
                }
            }
        }
        let missing: Vec<&str> = cfg.det_classes.iter().zip(&seen).filter(|(_, s)| !**s).map(|(c, _)| c.as_str()).collect();
        if !missing.is_empty() {
            log(&format!("the held-out frames have no objects of class {}: no AP for them", missing.join(", ")));
        }
    }
    log(&format!(
        "{} training images ({}), {} held out, {} detected classes ({}), {} segmentation classes; read in {:.1} s",
        train.samples.len(),
        opts.frames.name(),
        val.samples.len(),
        cfg.det_classes.len(),
        cfg.det_classes.join(", "),
        cfg.seg_classes.len(),
        t0.elapsed().as_secs_f64()
    ));
    let candle = |context: &str| {
        let context = context.to_string();
        move |source| PerceptionError::Candle { context: context.clone(), source }
    };
    let model = Trainable::seeded(cfg.clone(), &opts.device, opts.seed).map_err(candle("building the network"))?;
    let mut opt = AdamW::new(&model.varmap, opts.lr, 1e-4).map_err(candle("building the optimiser"))?;
    let mut step = 0;
    if let Some(r) = &resume {
        r.restore(&model, &mut opt)?;
        step = r.meta.step;
        log(&format!("resuming {} at step {step}", opts.output.display()));
    } else if let Some(b) = &base {
        b.load_weights(&model)?;
        log(&format!("fine-tuning {} (trained {} steps)", b.path.display(), b.meta.step));
    }
    let start = step;
    let mut meta = Meta {
        config: cfg.clone(),
        step,
        training: Training {
            data: opts.data.iter().map(|p| p.display().to_string()).collect(),
            frames: opts.frames.name().into(),
            samples: train.samples.len(),
            steps: opts.steps,
            batch: opts.batch,
            lr: opts.lr,
            software: format!("sim2real {}", env!("CARGO_PKG_VERSION")),
            held_out: Vec::new(),
            base: match (&resume, &base) {
                (Some(r), _) => r.meta.training.base.clone(),
                (None, b) => b.as_ref().map(|b| b.path.display().to_string()),
            },
        },
    };
    let bar = if opts.progress {
        let b = indicatif::ProgressBar::new(opts.steps as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} steps ({per_sec}, eta {eta}) {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        b.set_position(step as u64);
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut recent: Vec<Losses> = Vec::new();
    let mut first: Vec<Losses> = Vec::new();
    let mut held_out = None;
    if step >= opts.steps {
        log(&format!("{} is already trained to step {step} (asked for {}); give more --steps to go on", opts.output.display(), opts.steps));
    }
    let mut saved_step = step;
    let started = Instant::now();
    let mut images = 0usize;
    let lut = train.det_lut();
    while step < opts.steps {
        let examples = batch(&train, opts, (cfg.width, cfg.height), step);
        let targets = Targets::new(&examples, &lut, cfg.det_classes.len(), cfg.focal, &opts.device).map_err(candle("building targets"))?;
        let (w, h) = (opts.crop.0, opts.crop.1);
        let input: Vec<f32> = examples.iter().flat_map(|e| normalise(&e.rgb, w, h)).collect();
        let x = Tensor::from_vec(input, (examples.len(), 3, h, w), &opts.device).map_err(candle("building a batch"))?;
        opt.lr = rate(opts.lr, step, opts.steps);
        let out = model.net.forward(&x, true).map_err(candle("forward pass"))?;
        let (loss, parts) = targets.loss(&out).map_err(candle("loss"))?;
        if !parts.total.is_finite() {
            bar.abandon();
            return Err(PerceptionError::Diverged { step, value: parts.total, path: opts.output.clone(), saved: saved_step });
        }
        opt.backward_step(&loss).map_err(candle("backward pass"))?;
        step += 1;
        images += examples.len();
        if first.len() < 20 {
            first.push(parts);
        }
        recent.push(parts);
        if recent.len() > 20 {
            recent.remove(0);
        }
        let m = mean(&recent);
        let ap = held_out.as_ref().map_or(String::new(), |r: &Report| format!(" | held-out AP@0.5 {:.3}", r.detection.ap50));
        bar.set_message(format!("loss {:.3} (heat {:.3} box {:.3} depth {:.3} seg {:.3}){ap}", m.total, m.heat, m.boxes, m.depth, m.seg));
        bar.set_position(step as u64);
        // Without a terminal (nohup, CI, a launch file's log) the bar draws nothing: a line every
        // 100 steps says how far training is and how fast it goes.
        if opts.progress && bar.is_hidden() && step % 100 == 0 {
            let rate = images as f64 / started.elapsed().as_secs_f64().max(1e-9);
            log(&format!("step {step}/{}: loss {:.3}, {rate:.1} images/s", opts.steps, m.total));
        }
        if step % opts.eval_every.max(1) == 0 || step == opts.steps {
            if !val.samples.is_empty() {
                let p = Predictor {
                    net: model.net.fold().map_err(candle("folding"))?,
                    device: opts.device.clone(),
                    threshold: 0.01,
                    max_detections: 100,
                    mirror: false,
                };
                let r = eval::evaluate(&p, &val, 8, true, |_, _| {})?;
                // Figures the data cannot give (no depth, no classes) are left out: JSON has no NaN.
                meta.training.held_out =
                    [("ap50", Some(r.detection.ap50)), ("ap", Some(r.detection.ap)), ("depth_abs_rel", r.depth_abs_rel), ("miou", r.miou)]
                        .into_iter()
                        .filter_map(|(k, v)| Some((k.to_string(), v?)))
                        .collect();
                bar.suspend(|| {
                    log(&format!(
                        "step {step}: loss {:.3}; held-out AP@0.5 {:.3}, AP {:.3}, depth AbsRel {:.3}, mIoU {:.3}",
                        m.total,
                        r.detection.ap50,
                        r.detection.ap,
                        r.depth_abs_rel.unwrap_or(f64::NAN),
                        r.miou.unwrap_or(f64::NAN)
                    ))
                });
                held_out = Some(r);
            }
            meta.step = step;
            checkpoint::save(&opts.output, &model, Some(&opt), &meta)?;
            saved_step = step;
        }
    }
    if saved_step != step || !opts.output.is_file() {
        meta.step = step;
        checkpoint::save(&opts.output, &model, Some(&opt), &meta)?;
    }
    bar.finish_and_clear();
    Ok(FitReport {
        start,
        steps: step,
        first_loss: mean(&first),
        last_loss: mean(&recent),
        samples: train.samples.len(),
        held_out,
        images_per_second: images as f64 / started.elapsed().as_secs_f64().max(1e-9),
    })
}

fn mean(v: &[Losses]) -> Losses {
    let n = v.len().max(1) as f32;
    let s = |f: fn(&Losses) -> f32| v.iter().map(f).sum::<f32>() / n;
    Losses { heat: s(|l| l.heat), boxes: s(|l| l.boxes), depth: s(|l| l.depth), seg: s(|l| l.seg), total: s(|l| l.total) }
}
