//! Training: pairs of (an instant of the rig, one of the other cameras),
//! the target camera's codes predicted from the source camera's, its rays
//! and the reprojection (dropped for a quarter of the pairs, so that the
//! model also works without depth); cross-entropy per FSQ digit; AdamW with
//! warm-up and cosine decay; held-out seeds ([`s2r_train::held_out`])
//! scored as it goes; resumable.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};

use crate::checkpoint::{self, Record};
use crate::data::Episode;
use crate::model::{Batch, Config, Input, MultiviewNet};
use crate::{candle, MultiviewError};

/// How to train.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// The recordings' names, for the record.
    pub data: Vec<String>,
    /// The checkpoint to write (and to resume from when it exists).
    pub output: PathBuf,
    /// A fresh network's shape (ignored when resuming).
    pub config: Config,
    /// Optimisation steps in all.
    pub steps: usize,
    /// Pairs per step.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Draws the initial weights and the batches.
    pub seed: u64,
    /// Score the held-out seeds (and save) every this many steps.
    pub eval_every: usize,
    /// Start afresh even when the output exists.
    pub fresh: bool,
    /// The share of pairs trained without their reprojection.
    pub drop_reprojection: f64,
    /// Where the network trains (`s2r_train::device`: cpu, cuda, cuda:N).
    pub device: Device,
}

/// What training reports as it goes.
#[derive(Clone, Debug)]
pub enum Progress {
    /// The data is split.
    Data {
        /// Training pairs.
        train: usize,
        /// Held-out pairs.
        held_out: usize,
        /// Scalars trained.
        trained: usize,
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
        /// Token accuracy (every digit of a position right).
        accuracy: f32,
        /// Mean cross-entropy per digit.
        loss: f32,
    },
}

/// A pair: an episode, one of its instants and a target camera (≥ 1).
pub type Pair = (usize, usize, usize);

/// Every pair of the episodes `keep` picks.
pub fn pairs(episodes: &[Episode], keep: impl Fn(&Episode) -> bool) -> Vec<Pair> {
    let mut out = Vec::new();
    for (e, ep) in episodes.iter().enumerate() {
        if !keep(ep) {
            continue;
        }
        for i in 0..ep.instants.len() {
            for c in 1..ep.cameras.len() {
                out.push((e, i, c));
            }
        }
    }
    out
}

/// The rays of every episode's cameras ([`Config::rays`]), by episode and camera.
pub fn episode_rays(config: &Config, episodes: &[Episode]) -> Vec<Vec<Vec<f32>>> {
    episodes.iter().map(|e| e.cameras.iter().map(|c| config.rays(c)).collect()).collect()
}

/// The batch of `ps` (reprojections dropped where `drop` says) and the target digits [B, N, levels].
pub fn batch(
    model: &MultiviewNet,
    episodes: &[Episode],
    rays: &[Vec<Vec<f32>>],
    ps: &[Pair],
    drop: &[bool],
    device: &Device,
) -> candle_core::Result<(Batch, Tensor)> {
    let cfg = &model.config;
    let (n, l) = (cfg.tokens(), cfg.levels.len());
    let mut target = Vec::with_capacity(ps.len() * n * l);
    let inputs: Vec<Input> = ps
        .iter()
        .enumerate()
        .map(|(k, &(e, i, c))| {
            let inst = &episodes[e].instants[i];
            target.extend(inst.codes[c].iter().flat_map(|&code| cfg.digits(code)));
            let keep = !drop.get(k).copied().unwrap_or(false);
            Input {
                source: &inst.codes[0],
                source_rays: &rays[e][0],
                warped: keep.then(|| (inst.warped[c].as_slice(), inst.cover[c].as_slice())),
                target_rays: &rays[e][c],
            }
        })
        .collect();
    let batch = model.batch(&inputs, device)?;
    Ok((batch, Tensor::from_vec(target, (ps.len(), n, l), device)?))
}

/// Held-out token accuracy and loss of `model` on `ps` (with their reprojections).
pub fn held_out(
    model: &MultiviewNet,
    episodes: &[Episode],
    rays: &[Vec<Vec<f32>>],
    ps: &[Pair],
    device: &Device,
) -> Result<(f32, f32), MultiviewError> {
    let (mut right, mut total, mut loss, mut batches) = (0usize, 0usize, 0f64, 0usize);
    for chunk in ps.chunks(32) {
        let (b, target) = batch(model, episodes, rays, chunk, &[], device).map_err(candle("held-out batch"))?;
        let logits = model.forward(&b).map_err(candle("held-out forward"))?;
        loss += model.loss(&logits, &target).and_then(|l| l.to_scalar::<f32>()).map_err(candle("held-out loss"))? as f64;
        batches += 1;
        let pred = model.predict(&logits).map_err(candle("held-out prediction"))?;
        for (p, &(e, i, c)) in pred.iter().zip(chunk) {
            let truth = &episodes[e].instants[i].codes[c];
            right += p.codes.iter().zip(truth).filter(|(a, b)| a == b).count();
            total += truth.len();
        }
    }
    Ok((right as f32 / total.max(1) as f32, (loss / batches.max(1) as f64) as f32))
}

/// Trains on `episodes` (split by seed) as `opts` says; returns the last record.
pub fn fit(episodes: &[Episode], opts: &FitOptions, progress: &mut dyn FnMut(Progress)) -> Result<Record, MultiviewError> {
    let device = opts.device.clone();
    let first = episodes.first().ok_or_else(|| MultiviewError::Data { path: opts.output.clone(), problem: "no recordings".into() })?;
    let source = first.cameras[0].name.clone();
    let resume = (!opts.fresh && opts.output.is_file()).then(|| checkpoint::read(&opts.output)).transpose()?;
    let config = match &resume {
        Some((r, _)) => {
            if r.config.codec != opts.config.codec || r.source != source {
                return Err(MultiviewError::Mismatch {
                    path: opts.output.clone(),
                    problem: format!(
                        "a model of {} codes from '{}', but the data is {} codes from '{source}' (--fresh starts it anew)",
                        r.config.codec, r.source, opts.config.codec
                    ),
                });
            }
            r.config.clone()
        }
        None => opts.config.clone(),
    };
    let vars = VarMap::new();
    let model =
        MultiviewNet::new(config.clone(), VarBuilder::from_varmap(&vars, DType::F32, &device)).map_err(candle("building the network"))?;
    init(&vars, opts.seed).map_err(candle("initial weights"))?;
    let mut opt = s2r_train::AdamW::new(&vars, opts.lr, 0.01).map_err(candle("optimiser"))?;
    let mut step = 0;
    if let Some((r, c)) = &resume {
        s2r_train::restore(c, &vars, &mut opt)
            .map_err(|e| MultiviewError::BadCheckpoint { path: opts.output.clone(), problem: e.to_string() })?;
        step = r.step;
        progress(Progress::Resumed(step));
    }
    let rays = episode_rays(&config, episodes);
    let train = pairs(episodes, |e| !s2r_train::held_out(e.seed));
    let mut val = pairs(episodes, |e| s2r_train::held_out(e.seed));
    if train.is_empty() {
        return Err(MultiviewError::Data {
            path: opts.output.clone(),
            problem: "no training pairs (every seed is held out: seeds ending in 9 are, or no instant has all cameras)".into(),
        });
    }
    if val.len() > 512 {
        let k = val.len() / 512;
        val = val.into_iter().step_by(k).take(512).collect();
    }
    progress(Progress::Data { train: train.len(), held_out: val.len(), trained: opt.trained() });
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed ^ (step as u64).wrapping_mul(0x9E37_79B9));
    let mut record = Record {
        config: config.clone(),
        source,
        rig: first.rig.clone(),
        step,
        steps: opts.steps,
        data: opts.data.clone(),
        pairs: [train.len(), val.len()],
        held_out_accuracy: resume.as_ref().and_then(|(r, _)| r.held_out_accuracy),
    };
    let warmup = (opts.steps / 20).clamp(1, 200);
    while step < opts.steps {
        opt.lr = opts.lr * s2r_train::warmup_cosine(step, opts.steps, warmup, 0.05);
        let ps: Vec<Pair> = (0..opts.batch).map(|_| train[rng.random_range(0..train.len())]).collect();
        let drop: Vec<bool> = ps.iter().map(|_| rng.random_bool(opts.drop_reprojection.clamp(0.0, 1.0))).collect();
        let (b, target) = batch(&model, episodes, &rays, &ps, &drop, &device).map_err(candle("batch"))?;
        let logits = model.forward(&b).map_err(candle("forward"))?;
        let loss = model.loss(&logits, &target).map_err(candle("loss"))?;
        let l = loss.to_scalar::<f32>().map_err(candle("loss"))?;
        if !l.is_finite() {
            return Err(MultiviewError::Diverged { step, loss: l });
        }
        opt.backward_step(&loss).map_err(candle("backward"))?;
        step += 1;
        progress(Progress::Step { step, loss: l });
        if step % opts.eval_every.max(1) == 0 || step == opts.steps {
            if !val.is_empty() {
                let (accuracy, loss) = held_out(&model, episodes, &rays, &val, &device)?;
                record.held_out_accuracy = Some(accuracy);
                progress(Progress::HeldOut { step, accuracy, loss });
            }
            record.step = step;
            checkpoint::save(&opts.output, &vars, Some(&opt), &record)?;
        }
    }
    Ok(record)
}

/// Seeded initial weights: matrices N(0, 0.02) (the residual outputs
/// N(0, 0.02/√(2·layers))), biases zero, layer norms one, embeddings N(0, 0.1).
fn init(vars: &VarMap, seed: u64) -> candle_core::Result<()> {
    use rand_distr::{Distribution, Normal};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let data = vars.data().lock().expect("the variables' lock").clone();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let layers = names.iter().filter(|n| n.ends_with("qkv.weight")).count().max(1) as f64;
    for name in names {
        let v = &data[name];
        let n = v.elem_count();
        let values: Vec<f32> = if name.starts_with("ln") || name.contains(".ln_") {
            vec![if name.ends_with(".weight") { 1.0 } else { 0.0 }; n]
        } else if name.ends_with(".bias") {
            vec![0.0; n]
        } else {
            let std = if name.ends_with("out.weight") || name.ends_with("down.weight") {
                0.02 / (2.0 * layers).sqrt()
            } else if name.ends_with("digits.weight") || name == "role" {
                0.1
            } else {
                0.02
            };
            let normal = Normal::new(0.0, std).expect("a positive std");
            (0..n).map(|_| normal.sample(&mut rng) as f32).collect()
        };
        v.set(&Tensor::from_vec(values, v.shape(), v.device())?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Frames, Instant};
    use crate::model::tests::tiny;
    use crate::rig::tests::level_camera;
    use crate::rig::Rig;

    /// A toy rig world: the side camera sees the front's code shifted by one, where the reprojection says so.
    fn toy(seed: u64, instants: usize) -> Episode {
        let cfg = tiny();
        let n = cfg.tokens();
        let cams =
            vec![level_camera("front", 32, 32, 90.0, [1.0, 0.0, 1.5], 0.0), level_camera("left", 32, 32, 90.0, [0.0, 0.5, 1.5], 90.0)];
        let insts = (0..instants)
            .map(|i| {
                let front: Vec<u16> = (0..n).map(|p| ((p * 7 + i * 13 + seed as usize * 3) % 50) as u16).collect();
                let left: Vec<u16> = front.iter().map(|c| c + 1).collect();
                Instant {
                    stamp: i as i64,
                    codes: vec![front, left],
                    warped: vec![vec![], vec![]],
                    cover: vec![vec![], vec![]],
                    ..Default::default()
                }
            })
            .collect();
        Episode { source: "toy".into(), seed, frames: Frames::Flat, rig: Rig { cameras: cams.clone() }, cameras: cams, instants: insts }
    }

    #[test]
    fn training_lowers_the_loss_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let episodes: Vec<Episode> = (0..10).map(|s| toy(s, 6)).collect();
        let opts = FitOptions {
            data: vec!["toy".into()],
            output: dir.path().join("mv.safetensors"),
            config: tiny(),
            steps: 60,
            batch: 8,
            lr: 3e-3,
            seed: 1,
            eval_every: 30,
            fresh: false,
            drop_reprojection: 0.25,
            device: Device::Cpu,
        };
        let mut losses = Vec::new();
        let mut held = Vec::new();
        let r = fit(&episodes, &opts, &mut |p| match p {
            Progress::Step { loss, .. } => losses.push(loss),
            Progress::HeldOut { accuracy, .. } => held.push(accuracy),
            _ => {}
        })
        .unwrap();
        assert_eq!(r.step, 60);
        let first: f32 = losses[..5].iter().sum::<f32>() / 5.0;
        let last: f32 = losses[losses.len() - 5..].iter().sum::<f32>() / 5.0;
        assert!(last < first * 0.8, "loss {first} → {last}");
        assert_eq!(held.len(), 2, "seed 9 is held out and scored");
        // Resuming at the end trains no further; more steps continue from 60.
        let more = FitOptions { steps: 70, ..opts.clone() };
        let mut resumed = None;
        let r2 = fit(&episodes, &more, &mut |p| {
            if let Progress::Resumed(s) = p {
                resumed = Some(s)
            }
        })
        .unwrap();
        assert_eq!((resumed, r2.step), (Some(60), 70));
        let loaded = checkpoint::load(&opts.output, &Device::Cpu).unwrap();
        assert_eq!(loaded.record.source, "front");
        assert_eq!(loaded.record.rig.cameras.len(), 2);
    }
}
