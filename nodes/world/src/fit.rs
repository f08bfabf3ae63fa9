//! Training: pre-training from scratch on every scenario, or post-training
//! a base checkpoint on a target domain ([`FitOptions::base`]: the base's
//! weights and architecture, a fresh optimiser). Windows of `context` + 1
//! token frames, teacher-forced (every frame of a window predicts the next
//! one: `context` predictions per window), cross-entropy per FSQ digit plus
//! the next state's squared error; AdamW with warm-up and cosine decay;
//! held-out seeds ([`s2r_train::held_out`]) scored as it goes; resumable.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};

use crate::checkpoint::{self, Record};
use crate::data::Episode;
use crate::model::{Batch, Config, WorldModel, ACTION, STATE_GAIN};
use crate::{candle, WorldError};

/// How to train.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// The recordings' names, for the record.
    pub data: Vec<String>,
    /// The checkpoint to write (and to resume from when it exists).
    pub output: PathBuf,
    /// Post-train this checkpoint (its architecture, its weights) rather than start from scratch.
    pub base: Option<PathBuf>,
    /// A fresh network's shape (ignored with a base or when resuming).
    pub config: Config,
    /// Optimisation steps in all.
    pub steps: usize,
    /// Windows per step.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Draws the initial weights and the batches.
    pub seed: u64,
    /// Score the held-out seeds (and save) every this many steps.
    pub eval_every: usize,
    /// Start afresh even when the output exists.
    pub fresh: bool,
    /// Post-train low-rank adapters of this rank on the base's frozen weights (0: the whole network).
    pub adapter: usize,
    /// The dynamics head's width ([`Config::dynamics`]) for a fresh network
    /// or, given, for a base without one (which gets a new head; a base with
    /// one of another width is refused); None keeps the base's (or the
    /// config's, for a fresh network). Ignored when resuming, as `config` is.
    pub dynamics: Option<usize>,
    /// Where the network trains (`s2r_train::device`: cpu, cuda, cuda:N).
    pub device: Device,
}

/// What training reports as it goes.
#[derive(Clone, Debug)]
pub enum Progress {
    /// The data is split.
    Data {
        /// Training windows.
        train: usize,
        /// Held-out windows.
        held_out: usize,
        /// Next-frame token accuracy of copying the last frame on the held-out windows.
        copy_last: f32,
        /// The network's own before this run's first step (a base's or a resumed checkpoint's; a fresh one's is noise).
        start: f32,
        /// Scalars trained (all, or the adapters').
        trained: usize,
    },
    /// Post-training from this base.
    Base(PathBuf),
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
        /// Next-frame token accuracy (every position's code right).
        accuracy: f32,
        /// Mean cross-entropy per digit.
        loss: f32,
    },
}

/// A window: an episode and the first of its `context` + 1 frames.
pub type Window = (usize, usize);

/// Every window of `context` + 1 frames of the episodes `keep` picks, starting every `stride` frames.
pub fn windows(episodes: &[Episode], context: usize, stride: usize, keep: impl Fn(&Episode) -> bool) -> Vec<Window> {
    let mut out = Vec::new();
    for (i, e) in episodes.iter().enumerate() {
        if !keep(e) || e.codes.len() < context + 1 {
            continue;
        }
        let mut s = 0;
        while s + context < e.codes.len() {
            out.push((i, s));
            s += stride.max(1);
        }
    }
    out
}

/// Inputs (frames 0..T) and targets (digits of frames 1..T+1, the state's change to them times
/// [`STATE_GAIN`]) of windows of T + 1 frames.
pub fn batch(
    model: &WorldModel,
    episodes: &[Episode],
    ws: &[Window],
    t: usize,
    device: &Device,
) -> candle_core::Result<(Batch, Tensor, Tensor)> {
    let cfg = &model.config;
    let (n, l) = (cfg.tokens(), cfg.levels.len());
    let b = ws.len();
    let mut digits = Vec::with_capacity(b * t * n * l);
    let mut target = Vec::with_capacity(b * t * n * l);
    let mut steps = Vec::with_capacity(b * t * 2 * ACTION);
    let mut next_states = Vec::with_capacity(b * t * ACTION);
    let mut conditions = Vec::with_capacity(b * 4);
    for &(e, s) in ws {
        let ep = &episodes[e];
        for f in s..s + t {
            for &c in &ep.codes[f] {
                digits.extend(cfg.digits(c));
            }
            for &c in &ep.codes[f + 1] {
                target.extend(cfg.digits(c));
            }
            steps.extend_from_slice(&ep.actions[f]);
            steps.extend_from_slice(&ep.states[f]);
            next_states.extend(ep.states[f + 1].iter().zip(&ep.states[f]).map(|(n, c)| (n - c) * STATE_GAIN));
        }
        conditions.extend(ep.conditions.rows());
    }
    let digits = model.offset_digits(&Tensor::from_vec(digits, (b, t, n, l), device)?)?;
    let batch = Batch {
        digits,
        steps: Tensor::from_vec(steps, (b, t, 2 * ACTION), device)?,
        conditions: Tensor::from_vec(conditions, (b, 4), device)?,
    };
    Ok((batch, Tensor::from_vec(target, (b, t, n, l), device)?, Tensor::from_vec(next_states, (b, t, ACTION), device)?))
}

/// Held-out next-frame token accuracy and loss of `model` on `ws` (the last
/// frame of each window, after `context` frames), and copy-last's accuracy.
pub fn held_out(model: &WorldModel, episodes: &[Episode], ws: &[Window], device: &Device) -> Result<(f32, f32, f32), WorldError> {
    let t = model.config.context;
    let (mut right, mut copy, mut total, mut loss, mut batches) = (0usize, 0usize, 0usize, 0f64, 0usize);
    for chunk in ws.chunks(16) {
        let (b, target, _) = batch(model, episodes, chunk, t, device).map_err(candle("held-out batch"))?;
        let (logits, _) = model.forward(&b).map_err(candle("held-out forward"))?;
        loss += model.token_loss(&logits, &target).and_then(|l| l.to_scalar::<f32>()).map_err(candle("held-out loss"))? as f64;
        batches += 1;
        let last = logits.narrow(1, t - 1, 1).map_err(candle("held-out"))?;
        let pred = model.argmax_digits(&last).and_then(|p| p.flatten_all()?.to_vec1::<u32>()).map_err(candle("held-out argmax"))?;
        let l = model.config.levels.len();
        let n = model.config.tokens();
        for (k, &(e, s)) in chunk.iter().enumerate() {
            let truth = &episodes[e].codes[s + t];
            let before = &episodes[e].codes[s + t - 1];
            for p in 0..n {
                let d = &pred[(k * n + p) * l..(k * n + p + 1) * l];
                right += (model.config.code(d) == truth[p]) as usize;
                copy += (before[p] == truth[p]) as usize;
            }
            total += n;
        }
    }
    let total = total.max(1) as f32;
    Ok((right as f32 / total, (loss / batches.max(1) as f64) as f32, copy as f32 / total))
}

/// Trains on `episodes` (split by seed) as `opts` says; returns the last record.
pub fn fit(episodes: &[Episode], opts: &FitOptions, progress: &mut dyn FnMut(Progress)) -> Result<Record, WorldError> {
    let device = opts.device.clone();
    let vars = VarMap::new();
    // The architecture: a resumed run's, a base's, or the options'.
    let resume = (!opts.fresh && opts.output.is_file()).then(|| checkpoint::read(&opts.output)).transpose()?;
    let base = match (&opts.base, &resume) {
        (Some(b), None) => Some(checkpoint::read(b)?),
        _ => None,
    };
    let config = match (&resume, &base) {
        (Some((r, _)), _) => {
            if let (Some(b), Some(parent)) = (&opts.base, &r.base) {
                let (br, _) = checkpoint::read(b)?;
                // What post-training added to the base (adapters, a new dynamics head) is the run's own.
                let dynamics = if br.config.dynamics == 0 { r.config.dynamics } else { br.config.dynamics };
                if (Config { adapter: r.config.adapter, dynamics, ..br.config.clone() }) != r.config {
                    return Err(WorldError::Mismatch {
                        path: b.clone(),
                        problem: format!(
                            "this base's network differs from that of {} (post-trained from {parent}), which would be resumed: {} here, {} there (--fresh starts it anew)",
                            opts.output.display(),
                            br.config.summary(),
                            r.config.summary()
                        ),
                    });
                }
            }
            r.config.clone()
        }
        (None, Some((r, _))) => {
            if opts.adapter > 0 && r.config.adapter > 0 {
                return Err(WorldError::Mismatch {
                    path: opts.base.clone().unwrap_or_default(),
                    problem: format!(
                        "already has adapters of rank {}: post-train it whole, or its own base with --adapter",
                        r.config.adapter
                    ),
                });
            }
            let dynamics = match opts.dynamics {
                Some(w) if r.config.dynamics > 0 && w != r.config.dynamics => {
                    return Err(WorldError::Mismatch {
                        path: opts.base.clone().unwrap_or_default(),
                        problem: format!("has a dynamics head of width {}, not {w}: leave --dynamics out to keep it", r.config.dynamics),
                    })
                }
                Some(w) => w,
                None => r.config.dynamics,
            };
            Config { adapter: opts.adapter, dynamics, ..r.config.clone() }
        }
        (None, None) => Config { adapter: 0, dynamics: opts.dynamics.unwrap_or(opts.config.dynamics), ..opts.config.clone() },
    };
    if config.codec != opts.config.codec || config.grid != opts.config.grid || config.levels != opts.config.levels {
        let path = opts.base.clone().unwrap_or_else(|| opts.output.clone());
        return Err(WorldError::Mismatch {
            path,
            problem: format!(
                "a world model of {} tokens ({}×{}, levels {:?}), but the data was tokenized by {} ({}×{}, levels {:?})",
                config.codec,
                config.grid,
                config.grid,
                config.levels,
                opts.config.codec,
                opts.config.grid,
                opts.config.grid,
                opts.config.levels
            ),
        });
    }
    let model =
        WorldModel::new(config.clone(), VarBuilder::from_varmap(&vars, DType::F32, &device)).map_err(candle("building the network"))?;
    init(&vars, opts.seed).map_err(candle("initial weights"))?;
    // With adapters only they (and the dynamics head) train; the base's weights stay as they are.
    let adapters = config.adapter > 0;
    let trains = |name: &str| !adapters || crate::model::is_adapter(name) || crate::model::is_dynamics(name);
    let mut opt = s2r_train::AdamW::new_for(&vars, opts.lr, 0.01, trains).map_err(candle("optimiser"))?;
    let mut step = 0;
    let base_name = match (&resume, &base) {
        (Some((r, c)), _) => {
            s2r_train::restore(c, &vars, &mut opt)
                .map_err(|e| WorldError::BadCheckpoint { path: opts.output.clone(), problem: e.to_string() })?;
            step = r.step;
            progress(Progress::Resumed(step));
            r.base.clone()
        }
        (None, Some((r, c))) => {
            // A base without a dynamics head gets a new one (its output starts at zero).
            checkpoint::copy_weights(c, &vars, r.config.dynamics == 0)?;
            progress(Progress::Base(c.path.clone()));
            Some(c.path.display().to_string())
        }
        (None, None) => None,
    };
    let t = config.context;
    let train = windows(episodes, t, 1, |e| !s2r_train::held_out(e.seed));
    let mut val = windows(episodes, t, 4, |e| s2r_train::held_out(e.seed));
    if train.is_empty() {
        return Err(WorldError::Data {
            path: opts.output.clone(),
            problem: format!("no training windows of {} token frames (every seed is held out, or the recordings are too short)", t + 1),
        });
    }
    // A fixed, spread subset of the held-out windows keeps evaluations quick and comparable.
    if val.len() > 256 {
        let k = val.len() / 256;
        val = val.into_iter().step_by(k).take(256).collect();
    }
    let (start, _, copy_last) = if val.is_empty() { (0.0, 0.0, 0.0) } else { held_out(&model, episodes, &val, &device)? };
    progress(Progress::Data { train: train.len(), held_out: val.len(), copy_last, start, trained: opt.trained() });
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed ^ (step as u64).wrapping_mul(0x9E37_79B9));
    let mut record = Record {
        config: config.clone(),
        step,
        steps: opts.steps,
        base: base_name,
        data: opts.data.clone(),
        windows: [train.len(), val.len()],
        held_out_accuracy: None,
    };
    let warmup = (opts.steps / 20).clamp(1, 200);
    while step < opts.steps {
        opt.lr = opts.lr * s2r_train::warmup_cosine(step, opts.steps, warmup, 0.1);
        let ws: Vec<Window> = (0..opts.batch).map(|_| train[rng.random_range(0..train.len())]).collect();
        let (b, target, next_state) = batch(&model, episodes, &ws, t, &device).map_err(candle("batch"))?;
        let (logits, state) = model.forward(&b).map_err(candle("forward"))?;
        let tokens = model.token_loss(&logits, &target).map_err(candle("loss"))?;
        let state_loss = (state - next_state).and_then(|d| d.sqr()?.mean_all()).map_err(candle("state loss"))?;
        let loss = (tokens + state_loss).map_err(candle("loss"))?;
        let l = loss.to_scalar::<f32>().map_err(candle("loss"))?;
        if !l.is_finite() {
            return Err(WorldError::Diverged { step, loss: l });
        }
        opt.backward_step(&loss).map_err(candle("backward"))?;
        step += 1;
        progress(Progress::Step { step, loss: l });
        if step % opts.eval_every.max(1) == 0 || step == opts.steps {
            if !val.is_empty() {
                let (accuracy, loss, _) = held_out(&model, episodes, &val, &device)?;
                record.held_out_accuracy = Some(accuracy);
                progress(Progress::HeldOut { step, accuracy, loss });
            }
            record.step = step;
            checkpoint::save(&opts.output, &vars, Some(&opt), &record)?;
        }
    }
    Ok(record)
}

/// Training steps per second of a fresh `config` network at `batch`
/// windows of synthetic codes (the cost does not depend on what they show),
/// timed over `steps` steps after one to warm up, on `device`.
pub fn bench_steps(config: &Config, batch: usize, steps: usize, device: &Device) -> Result<f64, WorldError> {
    use crate::model::{Conditions, Robot, Surface};
    let vars = VarMap::new();
    let model =
        WorldModel::new(config.clone(), VarBuilder::from_varmap(&vars, DType::F32, device)).map_err(candle("building the network"))?;
    let mut opt = s2r_train::AdamW::new(&vars, 1e-4, 0.01).map_err(candle("optimiser"))?;
    let n = config.tokens();
    let frames = config.context + 1;
    let episode = Episode {
        source: PathBuf::from("bench"),
        scenario: "bench".into(),
        seed: 0,
        conditions: Conditions { robot: Robot::Vehicle, surface: Surface::Dry, weather: 0, time: 1 },
        codes: (0..frames).map(|f| (0..n).map(|p| ((p * 131 + f * 7919) % 64_000) as u16).collect()).collect(),
        actions: vec![[0.1; ACTION]; frames],
        states: vec![[0.2; ACTION]; frames],
        stamps: (0..frames as i64).collect(),
        views: Vec::new(),
        objects: None,
    };
    let episodes = [episode];
    let ws = vec![(0usize, 0usize); batch];
    let mut one = || -> candle_core::Result<()> {
        let (b, target, next_state) = self::batch(&model, &episodes, &ws, config.context, device)?;
        let (logits, state) = model.forward(&b)?;
        let loss = (model.token_loss(&logits, &target)? + (state - next_state)?.sqr()?.mean_all()?)?;
        opt.backward_step(&loss)
    };
    one().map_err(candle("training step"))?;
    device.synchronize().map_err(candle("synchronising"))?;
    let t = std::time::Instant::now();
    for _ in 0..steps {
        one().map_err(candle("training step"))?;
    }
    device.synchronize().map_err(candle("synchronising"))?;
    Ok(steps as f64 / t.elapsed().as_secs_f64())
}

/// Seeded initial weights: matrices N(0, 0.02) (the residual outputs
/// N(0, 0.02/√(2·layers))), biases zero, layer norms one; embeddings N(0, 0.02·√levels).
pub(crate) fn init(vars: &VarMap, seed: u64) -> candle_core::Result<()> {
    use rand_distr_free::normal;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let data = vars.data().lock().expect("the variables' lock").clone();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let layers = names.iter().filter(|n| n.ends_with("qkv_s.weight")).count().max(1) as f64;
    for name in names {
        let v = &data[name];
        let n = v.elem_count();
        // Adapters' B and the dynamics head's output start at zero: they add nothing until trained.
        let values: Vec<f32> = if name.ends_with(".lora_b") || name == "dynamics.out.weight" {
            vec![0.0; n]
        } else if name.ends_with(".lora_a") {
            let fan_in = v.dims()[1] as f64;
            (0..n).map(|_| (normal(&mut rng) / fan_in.sqrt()) as f32).collect()
        } else if name.starts_with("ln") || name.contains(".ln_") {
            let one = if name.ends_with(".weight") { 1.0 } else { 0.0 };
            vec![one; n]
        } else if name.ends_with(".bias") {
            vec![0.0; n]
        } else {
            let std = if name.ends_with("out_s.weight") || name.ends_with("out_t.weight") || name.ends_with("down.weight") {
                0.02 / (2.0 * layers).sqrt()
            } else if name.starts_with("digits") || name.starts_with("conditions") || name.starts_with("pos_") {
                0.1
            } else {
                0.02
            };
            (0..n).map(|_| (normal(&mut rng) * std) as f32).collect()
        };
        v.set(&Tensor::from_vec(values, v.shape(), v.device())?)?;
    }
    Ok(())
}

/// A standard normal draw (Box–Muller), so that the weights follow the seed alone.
mod rand_distr_free {
    use rand::Rng;

    pub(super) fn normal(rng: &mut impl Rng) -> f64 {
        let u1: f64 = rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = rng.random();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Conditions, Robot, Surface};

    /// Episodes of a toy world: a bright square moving right one position per
    /// step, as fast as the action says; codes 0 (dark) and 63,999 (bright).
    fn toy(seed: u64, frames: usize) -> Episode {
        let g = 4;
        let mut codes = Vec::new();
        let mut actions = Vec::new();
        let mut states = Vec::new();
        let speed = 1 + (seed % 2) as usize;
        for f in 0..frames {
            let x = (f * speed) % g;
            codes.push((0..g * g).map(|p| if p % g == x { 63_999 } else { 0 }).collect());
            let mut a = [0f32; ACTION];
            a[0] = speed as f32 / 2.0;
            actions.push(a);
            // The state slows by 0.02 a step: what the state head must learn.
            let mut s = a;
            s[0] -= 0.02 * f as f32;
            states.push(s);
        }
        Episode {
            source: PathBuf::from(format!("toy{seed}")),
            scenario: "toy".into(),
            seed,
            conditions: Conditions { robot: Robot::Vehicle, surface: Surface::Dry, weather: 0, time: 1 },
            codes,
            actions,
            states,
            stamps: (0..frames as i64).collect(),
            views: Vec::new(),
            objects: None,
        }
    }

    /// A toy car cruising at its commanded speed, then commanded to stop at
    /// a random step: it slows at the surface's grip, μ g (ice 0.1, dry
    /// 0.8), to a standstill. The frames are noise, as hard to predict as a
    /// real camera's and telling nothing of the speed: the state's loss is
    /// small beside the tokens'.
    fn braking(seed: u64, surface: Surface) -> Episode {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed * 7 + 3);
        let (frames, dt) = (16, 0.2f32);
        let mu = if surface == Surface::Icy { 0.1 } else { 0.8 };
        let mut v: f32 = rng.random_range(5.0..14.0);
        let brake_at = rng.random_range(2..6);
        let (mut actions, mut states) = (Vec::new(), Vec::new());
        for f in 0..frames {
            let cmd = if f >= brake_at { 0.0 } else { v };
            let mut a = [0f32; ACTION];
            a[0] = cmd / crate::data::SPEED_SCALE;
            let mut s = [0f32; ACTION];
            s[0] = v / crate::data::SPEED_SCALE;
            actions.push(a);
            states.push(s);
            v = (v - (v - cmd).clamp(0.0, mu * 9.81 * dt)).max(0.0);
        }
        Episode {
            source: PathBuf::from(format!("brake{seed}")),
            scenario: "brake".into(),
            seed,
            conditions: Conditions { robot: Robot::Vehicle, surface, weather: 0, time: 3 },
            codes: (0..frames).map(|_| (0..16).map(|_| rng.random_range(0..64_000u32) as u16).collect()).collect(),
            actions,
            states,
            stamps: (0..frames as i64).collect(),
            views: Vec::new(),
            objects: None,
        }
    }

    #[test]
    fn the_dynamics_head_learns_braking_at_the_surfaces_grip() {
        let dir = tempfile::tempdir().unwrap();
        let episodes: Vec<Episode> = (0..40).map(|s| braking(s, if s % 2 == 0 { Surface::Icy } else { Surface::Dry })).collect();
        let config =
            Config { dim: 16, heads: 2, layers: 1, mlp: 32, context: 3, dynamics: 32, ..Config::new("toy", 4, vec![8, 8, 8, 5, 5, 5]) };
        let out = dir.path().join("d.safetensors");
        let opts = FitOptions {
            data: vec!["brake".into()],
            output: out.clone(),
            base: None,
            config,
            steps: 1500,
            batch: 16,
            lr: 1e-2,
            seed: 2,
            eval_every: 1500,
            fresh: false,
            adapter: 0,
            dynamics: None,
            device: Device::Cpu,
        };
        fit(&episodes, &opts, &mut |_| {}).unwrap();
        let model = checkpoint::load(&out, &Device::Cpu).unwrap().model;
        // Held-out episodes (seeds 9, 19, 29, 39: both surfaces), rolled out from
        // their first three frames: the stopping distance the predicted speeds
        // imply is the true one's within 15 %, on ice (about 8 times longer) as on a dry road.
        // (Without the head, `dynamics: 0`, the same training misses a dry stop by 26 %.)
        for e in episodes.iter().filter(|e| s2r_train::held_out(e.seed)) {
            let p = crate::rollout::rollout(&model, &e.codes[..3], &e.states[..3], &e.actions, e.conditions, 10).unwrap();
            let speeds = |s: &[[f32; ACTION]]| s.iter().map(|x| x[0] * crate::data::SPEED_SCALE).collect::<Vec<f32>>();
            let truth = crate::eval::implied_stopping(&speeds(&e.states[2..13]), 0.2).unwrap();
            let mut pred = speeds(&e.states[2..3]);
            pred.extend(p.speeds());
            let predicted = crate::eval::implied_stopping(&pred, 0.2).unwrap_or(f64::INFINITY);
            assert!(
                (predicted - truth).abs() < 0.15 * truth,
                "seed {} ({:?}): {predicted:.1} m predicted, {truth:.1} m true ({pred:?})",
                e.seed,
                e.conditions.surface
            );
        }
    }

    #[test]
    fn a_base_without_a_dynamics_head_is_post_trained_with_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let episodes: Vec<Episode> = (0..20).map(|s| toy(s, 12)).collect();
        let base = dir.path().join("base.safetensors");
        let config =
            Config { dim: 16, heads: 2, layers: 1, mlp: 32, context: 3, dynamics: 0, ..Config::new("toy", 4, vec![8, 8, 8, 5, 5, 5]) };
        checkpoint::save_untrained(&base, config.clone(), 3).unwrap();
        let opts = FitOptions {
            data: vec!["toy".into()],
            output: dir.path().join("p.safetensors"),
            base: Some(base.clone()),
            config,
            steps: 1,
            batch: 2,
            lr: 1e-9,
            seed: 1,
            eval_every: 1,
            fresh: false,
            adapter: 0,
            dynamics: Some(8),
            device: Device::Cpu,
        };
        fit(&episodes, &opts, &mut |_| {}).unwrap();
        let (rec, c) = checkpoint::read(&opts.output).unwrap();
        assert_eq!(rec.config.dynamics, 8);
        assert_eq!(c.tensors["dynamics.hidden.weight"].dims(), &[8, crate::model::DYNAMICS_INPUTS + 16]);
        // Its output starts at zero: the post-trained network predicts the base's state at first.
        let (b, p) = (checkpoint::load(&base, &Device::Cpu).unwrap().model, checkpoint::load(&opts.output, &Device::Cpu).unwrap().model);
        let e = &episodes[3];
        let r =
            |m: &WorldModel| crate::rollout::rollout(m, &e.codes[..3], &e.states[..3], &e.actions, e.conditions, 1).unwrap().states[0][0];
        assert!((r(&b) - r(&p)).abs() < 1e-4, "{} vs {}", r(&b), r(&p));
        // The post-training resumes (its base has no head; the run's own is not a difference) …
        let mut resumed = None;
        fit(&episodes, &FitOptions { steps: 2, ..opts.clone() }, &mut |p| {
            if let Progress::Resumed(s) = p {
                resumed = Some(s)
            }
        })
        .unwrap();
        assert_eq!(resumed, Some(1));
        // … and so does one with adapters and a new head.
        let ad = FitOptions { output: dir.path().join("a.safetensors"), adapter: 2, ..opts.clone() };
        fit(&episodes, &ad, &mut |_| {}).unwrap();
        fit(&episodes, &FitOptions { steps: 2, ..ad }, &mut |_| {}).unwrap();
        // A base that has one keeps its width: another is refused, naming both.
        let e = fit(
            &episodes,
            &FitOptions { base: Some(opts.output.clone()), output: dir.path().join("q.safetensors"), dynamics: Some(4), ..opts.clone() },
            &mut |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("width 8") && e.contains("not 4"), "{e}");
    }

    #[test]
    fn learns_a_motion_that_copy_last_cannot_predict_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let episodes: Vec<Episode> = (0..20).map(|s| toy(s, 12)).collect();
        let config = Config { dim: 32, heads: 2, layers: 2, mlp: 64, context: 3, ..Config::new("toy", 4, vec![8, 8, 8, 5, 5, 5]) };
        let out = dir.path().join("w.safetensors");
        let opts = FitOptions {
            data: vec!["toy".into()],
            output: out.clone(),
            base: None,
            config,
            steps: 300,
            batch: 8,
            lr: 3e-3,
            seed: 1,
            eval_every: 300,
            fresh: false,
            adapter: 0,
            dynamics: None,
            device: Device::Cpu,
        };
        let mut copy = None;
        let mut acc = None;
        fit(&episodes, &opts, &mut |p| match p {
            Progress::Data { copy_last, .. } => copy = Some(copy_last),
            Progress::HeldOut { accuracy, .. } => acc = Some(accuracy),
            _ => {}
        })
        .unwrap();
        let (copy, acc) = (copy.unwrap(), acc.unwrap());
        // Copying the last frame gets only the dark positions that stay dark right.
        assert!(copy < 0.6, "copy-last {copy}");
        assert!(acc > 0.95, "the model predicts where the square moves ({acc}, copy-last {copy})");
        // Rolled out on a held-out episode, the predicted state keeps slowing as the toy's does.
        let loaded = checkpoint::load(&out, &Device::Cpu).unwrap();
        let e = &episodes[9];
        let p = crate::rollout::rollout(&loaded.model, &e.codes[2..5], &e.states[2..5], &e.actions[2..], e.conditions, 4).unwrap();
        for (k, s) in p.states.iter().enumerate() {
            let truth = e.states[5 + k][0];
            assert!((s[0] - truth).abs() < 0.03, "step {k}: predicted {} for {truth}", s[0]);
        }
        // Resuming at the end does nothing more; a longer run continues from there.
        let mut resumed = None;
        fit(&episodes, &FitOptions { steps: 310, ..opts.clone() }, &mut |p| {
            if let Progress::Resumed(s) = p {
                resumed = Some(s)
            }
        })
        .unwrap();
        assert_eq!(resumed, Some(300));
        // Post-training from it as a base: refused when the data's codec differs, naming both.
        let other = Config::new("dv8x16x16", 16, vec![8, 8, 8, 5, 5, 5]);
        let e = fit(
            &episodes,
            &FitOptions { base: Some(out.clone()), output: dir.path().join("p.safetensors"), config: other, ..opts.clone() },
            &mut |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("toy") && e.contains("dv8x16x16") && e.contains("w.safetensors"), "{e}");
        // And accepted for the same codec, starting from the base's weights.
        let mut from = None;
        let mut acc2 = None;
        fit(
            &episodes,
            &FitOptions {
                base: Some(out.clone()),
                output: dir.path().join("p.safetensors"),
                steps: 1,
                eval_every: 1,
                lr: 3e-4,
                ..opts.clone()
            },
            &mut |p| match p {
                Progress::Base(b) => from = Some(b),
                Progress::HeldOut { accuracy, .. } => acc2 = Some(accuracy),
                _ => {}
            },
        )
        .unwrap();
        assert_eq!(from.as_deref(), Some(out.as_path()));
        assert!(acc2.unwrap() > 0.9, "post-training starts where the base is ({acc2:?})");
        // Low-rank adapters: only they train (fewer scalars than the whole), the base's weights stay.
        let (mut trained, mut total) = (0, 0);
        let ad = dir.path().join("a.safetensors");
        fit(
            &episodes,
            &FitOptions { base: Some(out.clone()), output: ad.clone(), steps: 20, eval_every: 20, adapter: 2, ..opts.clone() },
            &mut |p| {
                if let Progress::Data { trained: t, .. } = p {
                    trained = t
                }
            },
        )
        .unwrap();
        fit(
            &episodes,
            &FitOptions { base: Some(out.clone()), output: dir.path().join("f.safetensors"), steps: 1, ..opts.clone() },
            &mut |p| {
                if let Progress::Data { trained: t, .. } = p {
                    total = t
                }
            },
        )
        .unwrap();
        assert!(trained > 0 && trained * 5 < total, "adapters train {trained} of {total} scalars");
        let (rec, after) = checkpoint::read(&ad).unwrap();
        assert_eq!(rec.config.adapter, 2);
        let (_, before) = checkpoint::read(&out).unwrap();
        for name in ["blocks.0.qkv_s.weight", "blocks.1.down.weight", "digits.weight", "head.weight"] {
            let (a, b) = (&after.tensors[name], &before.tensors[name]);
            let d = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert_eq!(d, 0.0, "{name} is frozen under the adapters");
        }
        let moved = after.tensors["blocks.0.qkv_s.lora_b"].abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(moved > 0.0, "the adapters trained");
        // The adapted network loads and predicts like any checkpoint.
        assert_eq!(checkpoint::load(&ad, &Device::Cpu).unwrap().record.config.adapter, 2);
    }
}
