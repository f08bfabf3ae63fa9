//! Behaviour cloning: L1 between the network's chunk and the demonstrator's
//! next commands, AdamW with warm-up and cosine decay, photometric
//! augmentation (the policy must not key on the simulator's exact colours),
//! held-out seeds scored as it goes, resumable checkpoints.

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};

use crate::checkpoint::{self, Meta, Trainable};
use crate::data::{self, Sample};
use crate::model::{Config, Net, Robot};
use crate::{candle, PolicyError};

/// How to train.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Demonstration sets.
    pub data: Vec<PathBuf>,
    /// A robot's own recordings beside them, each with the seed its split
    /// goes by (read by [`data::read_recordings`]: the cycle's fine-tuning).
    pub recordings: Vec<(PathBuf, u64)>,
    /// The checkpoint to write (and to resume from when it exists).
    pub output: PathBuf,
    /// Optimisation steps in all.
    pub steps: usize,
    /// Examples per step.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Draws the initial weights, the batches and the augmentation.
    pub seed: u64,
    /// Use every n-th camera frame.
    pub every: usize,
    /// Score the held-out seeds (and save) every this many steps.
    pub eval_every: usize,
    /// Start afresh even when the output exists.
    pub fresh: bool,
    /// The camera the policy looks through.
    pub camera: String,
    /// Which of its frames it learns from.
    pub frames: data::Frames,
    /// A fresh network's input, width × height (None: 128×96).
    pub input: Option<(usize, usize)>,
    /// A fresh network's band of the frame's rows (None: the whole frame; see [`Config::rows`]).
    pub rows: Option<[f32; 2]>,
    /// A fresh network's past frame, seconds before each frame (see [`Config::past`]).
    pub past: Option<f32>,
    /// The quantile of the demonstrator's speed a vehicle's policy learns
    /// (pinball loss on the speed commands; yaw rates keep the median). Below
    /// 0.5 it takes the cautious end of what the demonstrator would do where
    /// its camera cannot tell what the demonstrator knew (a pedestrian about
    /// to cross, far and small). None: the checkpoint's own when resuming,
    /// else the median (L1 on every command).
    pub speed_quantile: Option<f32>,
    /// Where the network trains (the CPU, or a GPU with the `cuda` feature).
    pub device: Device,
}

/// What training reports as it goes.
#[derive(Clone, Debug)]
pub enum Progress {
    /// The data is read.
    Data {
        /// Training examples.
        train: usize,
        /// Held-out examples.
        held_out: usize,
        /// Episodes read.
        episodes: usize,
        /// Episodes left out (the demonstrator hit someone or dropped a cup).
        skipped: usize,
        /// What the demonstrations drive.
        robot: Robot,
    },
    /// Resuming a checkpoint at this step.
    Resumed(usize),
    /// After a step.
    Step {
        /// The step.
        step: usize,
        /// Its loss.
        loss: f32,
    },
    /// After a held-out evaluation.
    HeldOut {
        /// The step.
        step: usize,
        /// Mean absolute error of the first command (see [`Mae`]).
        mae: Mae,
        /// The same over the whole chunk.
        chunk_mae: Mae,
    },
}

/// A batch as tensors: images `[B,H,W,C]`, states `[B,2]`, actions `[B,chunk,2]` (scaled).
fn batch(
    samples: &[&Sample],
    cfg: &Config,
    device: &Device,
    rng: Option<&mut rand::rngs::StdRng>,
) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let (w, h, ch) = (cfg.width, cfg.height, cfg.channels_in());
    let mut images = vec![0f32; samples.len() * ch * w * h];
    let mut rng = rng;
    for (b, s) in samples.iter().enumerate() {
        // Photometric augmentation: gain, bias and colour cast per image, pixel noise.
        let (gain, bias, cast, noise) = match rng.as_deref_mut() {
            Some(r) => (
                r.random_range(0.6..1.5f32),
                r.random_range(-0.08..0.08f32),
                [r.random_range(0.85..1.15f32), r.random_range(0.85..1.15f32), r.random_range(0.85..1.15f32)],
                r.random_range(0.0..0.04f32),
            ),
            None => (1.0, 0.0, [1.0; 3], 0.0),
        };
        // The same for every frame of an example (a past frame must differ from the current one only by what moved).
        let base = b * ch * w * h;
        // Pixel noise from a xorshift seeded per image (a generator call per
        // pixel would cost more than the network).
        let mut x = rng.as_deref_mut().map_or(1u32, |r| r.random::<u32>() | 1);
        for i in 0..w * h {
            for c in 0..ch {
                let mut v = s.image[i * ch + c] as f32 / 255.0 * gain * cast[c % 3] + bias;
                if noise > 0.0 {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    v += noise * ((x >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0);
                }
                images[base + i * ch + c] = v.clamp(0.0, 1.0);
            }
        }
    }
    let images = Tensor::from_vec(images, (samples.len(), h, w, ch), device)?;
    let (ss, asc) = (cfg.robot.state_scale(), cfg.robot.action_scale());
    let state: Vec<f32> = samples.iter().flat_map(|s| s.state.iter().zip(ss).map(|(x, k)| x / k)).collect();
    let state = Tensor::from_vec(state, (samples.len(), ss.len()), device)?;
    let actions: Vec<f32> = samples.iter().flat_map(|s| s.actions.iter().flat_map(|a| a.iter().zip(asc).map(|(x, k)| x / k))).collect();
    let actions = Tensor::from_vec(actions, (samples.len(), cfg.chunk, asc.len()), device)?;
    Ok((images, state, actions))
}

/// Mean absolute error of the commands in two figures: a vehicle's speed
/// (m/s) and yaw rate (rad/s); an arm's joint targets (rad, mean over the
/// six) and gripper opening (m).
pub type Mae = (f32, f32);

/// The two figures of [`Mae`] from per-entry absolute errors in their units.
fn figures(robot: Robot, per_entry: &[f64]) -> Mae {
    match robot {
        Robot::Vehicle => (per_entry[0] as f32, per_entry[1] as f32),
        Robot::Arm => ((per_entry[..6].iter().sum::<f64>() / 6.0) as f32, per_entry[6] as f32),
    }
}

/// Mean absolute errors (first command, whole chunk) over `samples`.
pub fn held_out_error(net: &Net, samples: &[&Sample], device: &Device) -> Result<(Mae, Mae), PolicyError> {
    let scale = net.config.robot.action_scale();
    let mut first = vec![0f64; scale.len()];
    let mut all = vec![0f64; scale.len()];
    for chunk in samples.chunks(64) {
        let (x, s, y) = batch(chunk, &net.config, device, None).map_err(candle("held-out batch"))?;
        let p = net.forward(&x, &s).map_err(candle("held-out forward"))?;
        let d = (p - y).and_then(|d| d.abs()).and_then(|d| d.to_vec3::<f32>()).map_err(candle("held-out error"))?;
        for e in d {
            for (k, (v, sc)) in e[0].iter().zip(scale).enumerate() {
                first[k] += (v * sc) as f64;
            }
            for a in &e {
                for (k, (v, sc)) in a.iter().zip(scale).enumerate() {
                    all[k] += (v * sc) as f64;
                }
            }
        }
    }
    let n = samples.len().max(1) as f64;
    let k = n * net.config.chunk as f64;
    let first: Vec<f64> = first.iter().map(|x| x / n).collect();
    let all: Vec<f64> = all.iter().map(|x| x / k).collect();
    Ok((figures(net.config.robot, &first), figures(net.config.robot, &all)))
}

/// The speed (m/s) from which the policy learns the whole of its speed
/// quantile: below it the quantile rises linearly to the median at a
/// standstill, where stopping takes no distance and caution would only keep
/// a car waiting that the demonstrator would drive on.
pub const CAUTION_SPEED: f32 = 5.0;

/// The quantile a vehicle's speed commands are learnt at from a state
/// driving at `speed` m/s (see [`FitOptions::speed_quantile`], [`CAUTION_SPEED`]).
pub fn speed_tau(quantile: Option<f32>, speed: f32) -> f32 {
    match quantile {
        Some(q) => 0.5 - (0.5 - q) * (speed / CAUTION_SPEED).clamp(0.0, 1.0),
        None => 0.5,
    }
}

/// Twice the mean pinball loss of the errors `e` (target − prediction,
/// `[B, chunk, components]`) at each component's quantile `taus`
/// (`[1, 1, components]`): at 0.5 the mean absolute error; below it, a
/// prediction above the target costs more than one below it.
fn pinball(e: &Tensor, taus: &Tensor) -> candle_core::Result<Tensor> {
    let under = e.broadcast_mul(taus)?;
    let over = e.broadcast_mul(&(taus - 1.0)?)?;
    (under.maximum(&over)? * 2.0)?.mean_all()
}

/// Trains (or resumes) and writes the checkpoint; returns its record.
pub fn fit(opts: &FitOptions, progress: &mut dyn FnMut(&Progress)) -> Result<Meta, PolicyError> {
    let device = opts.device.clone();
    let resume = if opts.output.is_file() && !opts.fresh { Some(checkpoint::read(&opts.output)?) } else { None };
    let config = match &resume {
        Some(r) => {
            let c = &r.meta.config;
            let asked = opts.input.is_some_and(|i| i != (c.width, c.height))
                || opts.rows.is_some_and(|rows| rows != c.rows)
                || opts.past.is_some_and(|p| Some(p) != c.past);
            if asked {
                let past = c.past.map_or("no past frame".to_string(), |p| format!("a frame {p} s before"));
                return Err(PolicyError::BadCheckpoint {
                    path: opts.output.clone(),
                    problem: format!(
                        "it reads {}x{} inputs from rows {}..{} of the frame and {past}; resuming keeps its network (leave the input, rows and past out, or start afresh)",
                        c.width, c.height, c.rows[0], c.rows[1]
                    ),
                });
            }
            c.clone()
        }
        None => {
            let mut c = Config::small(&opts.camera, data::robot_of(&opts.data)?);
            if let Some((w, h)) = opts.input {
                (c.width, c.height) = (w, h);
            }
            if let Some(rows) = opts.rows {
                c.rows = rows;
            }
            c.past = opts.past;
            c.check().map_err(|problem| PolicyError::BadCheckpoint { path: opts.output.clone(), problem })?;
            c
        }
    };
    let mut demos = if opts.data.is_empty() { data::Demos::default() } else { data::read(&opts.data, &config, opts.every, opts.frames)? };
    let recorded = data::read_recordings(&opts.recordings, &config, opts.every)?;
    demos.samples.extend(recorded.samples);
    demos.episodes += recorded.episodes;
    if demos.samples.is_empty() {
        return Err(PolicyError::Demos { path: opts.output.clone(), problem: "no demonstration sets or recordings given".into() });
    }
    let (held, train): (Vec<&Sample>, Vec<&Sample>) = demos.samples.iter().partition(|s| s2r_train::held_out(s.seed));
    if train.is_empty() {
        return Err(PolicyError::Demos {
            path: opts.data.first().or(opts.recordings.first().map(|r| &r.0)).cloned().unwrap_or_default(),
            problem: "every episode's seed is a held-out one (seed % 10 == 9): record more seeds".into(),
        });
    }
    progress(&Progress::Data {
        train: train.len(),
        held_out: held.len(),
        episodes: demos.episodes,
        skipped: demos.skipped,
        robot: config.robot,
    });
    let quantile = opts.speed_quantile.or(resume.as_ref().and_then(|r| r.meta.speed_quantile));
    if let Some(q) = quantile {
        let problem = if config.robot != Robot::Vehicle {
            Some("a speed quantile is for a vehicle's policy; an arm's commands are learnt at the median".to_string())
        } else if !(q > 0.0 && q < 1.0) {
            Some(format!("the speed quantile {q} is not between 0 and 1"))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(PolicyError::BadCheckpoint { path: opts.output.clone(), problem });
        }
    }
    let components = config.robot.action_scale().len();
    let model = Trainable::new(config.clone(), &device, opts.seed)?;
    let mut opt = s2r_train::AdamW::new(&model.varmap, opts.lr, 1e-4).map_err(candle("building the optimiser"))?;
    let mut step = 0;
    if let Some(r) = &resume {
        s2r_train::restore(&r.checkpoint, &model.varmap, &mut opt)?;
        step = r.meta.step;
        progress(&Progress::Resumed(step));
    }
    let mut meta = Meta {
        config: config.clone(),
        step,
        data: opts.data.iter().chain(opts.recordings.iter().map(|r| &r.0)).map(|p| p.display().to_string()).collect(),
        samples: (train.len(), held.len()),
        schedule: (opts.steps, opts.batch, opts.lr),
        held_out: resume.as_ref().and_then(|r| r.meta.held_out),
        speed_quantile: quantile,
        software: format!("sim2real {}", env!("CARGO_PKG_VERSION")),
    };
    if step == 0 && !held.is_empty() {
        // The untrained network's error: what training has to beat.
        let (mae, chunk_mae) = held_out_error(&model.net, &held, &device)?;
        progress(&Progress::HeldOut { step, mae, chunk_mae });
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed.wrapping_add(step as u64));
    let warmup = 100.min(opts.steps / 10).max(1);
    while step < opts.steps {
        let k = step as f64;
        opt.lr = if step < warmup {
            opts.lr * (k + 1.0) / warmup as f64
        } else {
            let p = (k - warmup as f64) / (opts.steps - warmup).max(1) as f64;
            opts.lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
        };
        let picks: Vec<&Sample> = (0..opts.batch).map(|_| train[rng.random_range(0..train.len())]).collect();
        let (x, s, y) = batch(&picks, &config, &device, Some(&mut rng)).map_err(candle("building a batch"))?;
        // Per example and command component, the quantile it is learnt at: [B, 1, components].
        let taus: Vec<f32> =
            picks.iter().flat_map(|p| (0..components).map(move |k| if k == 0 { speed_tau(quantile, p.state[0]) } else { 0.5 })).collect();
        let taus = Tensor::from_vec(taus, (picks.len(), 1, components), &device).map_err(candle("the loss's quantiles"))?;
        let loss = model.net.forward(&x, &s).and_then(|p| pinball(&(y - p)?, &taus)).map_err(candle("forward"))?;
        let l = loss.to_scalar::<f32>().map_err(candle("reading the loss"))?;
        if !l.is_finite() {
            return Err(PolicyError::Diverged { step, loss: l });
        }
        opt.backward_step(&loss).map_err(candle("backward"))?;
        step += 1;
        progress(&Progress::Step { step, loss: l });
        if step % opts.eval_every.max(1) == 0 || step == opts.steps {
            if !held.is_empty() {
                let (mae, chunk_mae) = held_out_error(&model.net, &held, &device)?;
                meta.held_out = Some(mae);
                progress(&Progress::HeldOut { step, mae, chunk_mae });
            }
            meta.step = step;
            checkpoint::save(&opts.output, &model, Some(&opt), &meta)?;
        }
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinball_is_l1_at_the_median_and_leans_below_it() {
        let d = Device::Cpu;
        // Errors (target − prediction) of one speed and one yaw-rate command.
        let e = Tensor::from_vec(vec![1.0f32, -2.0, -1.0, 2.0], (2, 1, 2), &d).unwrap();
        let at = |speed: f32| {
            let taus = Tensor::from_vec(vec![speed, 0.5], (1, 1, 2), &d).unwrap();
            pinball(&e, &taus).unwrap().to_scalar::<f32>().unwrap()
        };
        assert!((at(0.5) - 1.5).abs() < 1e-6, "the median's loss is the mean absolute error");
        // At 0.25 a speed predicted 1 m/s too high (error −1) costs 1.5, one
        // 1 m/s too low costs 0.5; the yaw rates still cost |e|.
        assert!((at(0.25) - (0.5 + 2.0 + 1.5 + 2.0) / 4.0).abs() < 1e-6);
        // Caution fades to the median at a standstill.
        assert_eq!(speed_tau(Some(0.25), 11.0), 0.25);
        assert_eq!(speed_tau(Some(0.25), 0.0), 0.5);
        assert!((speed_tau(Some(0.25), CAUTION_SPEED / 2.0) - 0.375).abs() < 1e-6);
        assert_eq!(speed_tau(None, 11.0), 0.5);
    }
}
