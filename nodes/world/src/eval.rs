//! Scoring predictions on held-out recordings, per horizon, beside the
//! floor (copy the last context frame) and the ceiling (the tokenizer's
//! reconstruction of the true frame): token accuracy, and PSNR/SSIM of the
//! decoded frames against the true ones; the action effect (Genie's ΔtPSNR:
//! PSNR with the true actions minus with another clip's); and for a
//! vehicle slowing down, the stopping distance the predicted speeds imply
//! beside the simulator's.

use s2r_image::quality::{psnr, ssim, Rgb8};
use serde::Serialize;

use crate::data::Episode;
use crate::model::{Robot, WorldModel};
use crate::rollout::{rollout, Predicted};
use crate::{FrameCodec, WorldError};

/// How to score.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Horizons, in latent steps.
    pub horizons: Vec<usize>,
    /// Frames between the starts of two clips of an episode.
    pub clip_stride: usize,
    /// The horizon of the action effect (ΔtPSNR).
    pub action_horizon: usize,
    /// Score SSIM too (slower).
    pub ssim: bool,
}

impl Default for EvalOptions {
    fn default() -> EvalOptions {
        EvalOptions { horizons: vec![1, 2, 4, 8, 16], clip_stride: 8, action_horizon: 8, ssim: true }
    }
}

/// One row of the table: a predictor's figures at each horizon.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// "copy-last", "tokenizer (ceiling)", or a model's name.
    pub name: String,
    /// Per horizon: mean token accuracy (every code right).
    pub accuracy: Vec<f64>,
    /// Per horizon: mean PSNR of the decoded frame against the true view, dB.
    pub psnr: Vec<f64>,
    /// Per horizon: mean SSIM (0 when not scored).
    pub ssim: Vec<f64>,
}

/// A model's action effect and physics.
#[derive(Clone, Debug, Serialize)]
pub struct ModelFigures {
    /// The model's name.
    pub name: String,
    /// PSNR at the action horizon with the true actions minus with another clip's, dB.
    pub delta_t_psnr: f64,
    /// Vehicle clips slowing down: (true, predicted) stopping distance implied by the speeds, metres.
    pub stopping: Vec<(f64, f64)>,
}

/// What an evaluation found.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Horizons, latent steps.
    pub horizons: Vec<usize>,
    /// Seconds per latent step.
    pub step_seconds: f32,
    /// Clips scored.
    pub clips: usize,
    /// The table.
    pub rows: Vec<Row>,
    /// Per model, action effect and physics.
    pub models: Vec<ModelFigures>,
}

impl ModelFigures {
    /// Mean absolute relative error of the predicted stopping distances, when there are clips.
    pub fn stopping_error(&self) -> Option<f64> {
        (!self.stopping.is_empty())
            .then(|| self.stopping.iter().map(|(t, p)| ((p - t) / t.max(1e-6)).abs()).sum::<f64>() / self.stopping.len() as f64)
    }
}

/// The stopping distance implied by a speed profile over `dt`-second steps:
/// the deceleration over the profile (first to last) carried on to a stop,
/// v₀² / 2a; None when it does not slow down by at least 0.5 m/s.
pub fn implied_stopping(speeds: &[f32], dt: f32) -> Option<f64> {
    let (v0, v1) = (*speeds.first()? as f64, *speeds.last()? as f64);
    let t = (speeds.len() - 1) as f64 * dt as f64;
    if v0 - v1 < 0.5 || t <= 0.0 {
        return None;
    }
    let a = (v0 - v1) / t;
    Some(v0 * v0 / (2.0 * a))
}

struct Sums {
    acc: Vec<f64>,
    psnr: Vec<f64>,
    ssim: Vec<f64>,
}

impl Sums {
    fn new(h: usize) -> Sums {
        Sums { acc: vec![0.0; h], psnr: vec![0.0; h], ssim: vec![0.0; h] }
    }
    fn row(&self, name: &str, n: usize) -> Row {
        let m = |v: &[f64]| v.iter().map(|x| x / n.max(1) as f64).collect();
        Row { name: name.into(), accuracy: m(&self.acc), psnr: m(&self.psnr), ssim: m(&self.ssim) }
    }
}

fn accuracy(a: &[u16], b: &[u16]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len().max(1) as f64
}

/// Scores `models` (name, network) on `episodes` (read with their views).
pub fn evaluate(
    models: &[(String, &WorldModel)],
    episodes: &[Episode],
    codec: &dyn FrameCodec,
    opts: &EvalOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report, WorldError> {
    let first = models.first().map(|m| m.1).ok_or_else(|| WorldError::Data { path: "".into(), problem: "no model to score".into() })?;
    let cfg = &first.config;
    let c = cfg.context;
    let hmax = *opts.horizons.iter().max().unwrap_or(&1);
    let size = codec.size();
    let quality = |a: &[u8], b: &[u8]| -> (f64, f64) {
        let (x, y) = (Rgb8 { width: size, height: size, data: a }, Rgb8 { width: size, height: size, data: b });
        (psnr(&x, &y), if opts.ssim { ssim(&x, &y) } else { 0.0 })
    };
    let decode = |codes: &[u16], e: &Episode| codec.decode(codes).map_err(|problem| WorldError::Codec { path: e.source.clone(), problem });
    // Clips: (episode, first context frame).
    let mut clips = Vec::new();
    for (i, e) in episodes.iter().enumerate() {
        if e.views.len() != e.codes.len() {
            return Err(WorldError::Data {
                path: e.source.clone(),
                problem: "read without its frames' views: nothing to score pixels on".into(),
            });
        }
        let mut s = 0;
        while s + c + hmax <= e.codes.len() {
            clips.push((i, s));
            s += opts.clip_stride.max(1);
        }
    }
    if clips.is_empty() {
        return Err(WorldError::Data {
            path: episodes.first().map(|e| e.source.clone()).unwrap_or_default(),
            problem: format!("no held-out clip of {} + {hmax} token frames", c),
        });
    }
    let nh = opts.horizons.len();
    let mut copy = Sums::new(nh);
    let mut ceiling = Sums::new(nh);
    let mut sums: Vec<Sums> = models.iter().map(|_| Sums::new(nh)).collect();
    let mut figures: Vec<ModelFigures> =
        models.iter().map(|(name, _)| ModelFigures { name: name.clone(), delta_t_psnr: 0.0, stopping: Vec::new() }).collect();
    let mut dt_sum = vec![0f64; models.len()];
    let ha = opts.action_horizon.min(hmax).max(1);
    for (k, &(ei, s)) in clips.iter().enumerate() {
        let e = &episodes[ei];
        let last = &e.codes[s + c - 1];
        let copy_view = decode(last, e)?;
        for (j, &h) in opts.horizons.iter().enumerate() {
            let truth = &e.codes[s + c - 1 + h];
            let view = &e.views[s + c - 1 + h];
            copy.acc[j] += accuracy(last, truth);
            let (p, q) = quality(&copy_view, view);
            copy.psnr[j] += p;
            copy.ssim[j] += q;
            let (p, q) = quality(&decode(truth, e)?, view);
            ceiling.acc[j] += 1.0;
            ceiling.psnr[j] += p;
            ceiling.ssim[j] += q;
        }
        // Another clip's actions, for the action effect: the next clip of another episode (else the next clip).
        let (oi, os) = clips[(k + 1..clips.len()).chain(0..k).find(|&o| clips[o].0 != ei).unwrap_or((k + 1) % clips.len())];
        // The same context under that clip's actions (its states stay: only what is done changes);
        // every clip has hmax ≥ ha actions after its context.
        let mut other_actions = e.actions[s..s + c - 1].to_vec();
        other_actions.extend_from_slice(&episodes[oi].actions[os + c - 1..os + c - 1 + ha]);
        // A vehicle slowing down in the clip: the stopping distance its true speeds imply.
        let dt = cfg.step_seconds();
        let true_speeds: Vec<f32> = e.states[s + c - 1..s + c + hmax].iter().map(|x| x[0] * crate::data::SPEED_SCALE).collect();
        let true_stop = (e.conditions.robot == Robot::Vehicle).then(|| implied_stopping(&true_speeds, dt)).flatten();
        for (m, (_, model)) in models.iter().enumerate() {
            let ctx = s..s + c;
            let pred: Predicted = rollout(model, &e.codes[ctx.clone()], &e.states[ctx.clone()], &e.actions[s..], e.conditions, hmax)?;
            let mut at_ha = 0.0;
            for (j, &h) in opts.horizons.iter().enumerate() {
                let truth = &e.codes[s + c - 1 + h];
                let view = &e.views[s + c - 1 + h];
                sums[m].acc[j] += accuracy(&pred.codes[h - 1], truth);
                let (p, q) = quality(&decode(&pred.codes[h - 1], e)?, view);
                sums[m].psnr[j] += p;
                sums[m].ssim[j] += q;
                if h == ha {
                    at_ha = p;
                }
            }
            if !opts.horizons.contains(&ha) {
                at_ha = quality(&decode(&pred.codes[ha - 1], e)?, &e.views[s + c - 1 + ha]).0;
            }
            let shuffled = rollout(model, &e.codes[ctx.clone()], &e.states[ctx], &other_actions, e.conditions, ha)?;
            dt_sum[m] += at_ha - quality(&decode(&shuffled.codes[ha - 1], e)?, &e.views[s + c - 1 + ha]).0;
            if let Some(t) = true_stop {
                let mut p = vec![true_speeds[0]];
                p.extend(pred.speeds());
                // A prediction that does not slow down implies no stop: count it as the clip's whole distance and more.
                let predicted = implied_stopping(&p, dt).unwrap_or(f64::INFINITY).min(10.0 * t);
                figures[m].stopping.push((t, predicted));
            }
        }
        progress(k + 1, clips.len());
    }
    let n = clips.len();
    for (f, d) in figures.iter_mut().zip(&dt_sum) {
        f.delta_t_psnr = d / n as f64;
    }
    let mut rows = vec![copy.row("copy-last", n), ceiling.row(&format!("{} (ceiling)", codec.name()), n)];
    rows.extend(models.iter().zip(&sums).map(|((name, _), s)| s.row(name, n)));
    Ok(Report { horizons: opts.horizons.clone(), step_seconds: cfg.step_seconds(), clips: n, rows, models: figures })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopping_distance_from_a_speed_profile() {
        // 10 m/s slowing at 1 m/s² over 2 s in 0.2 s steps: 50 m to a stop.
        let v: Vec<f32> = (0..=10).map(|i| 10.0 - 0.2 * i as f32).collect();
        assert!((implied_stopping(&v, 0.2).unwrap() - 50.0).abs() < 1e-3);
        assert_eq!(implied_stopping(&[5.0, 5.0, 4.9], 0.2), None);
    }
}
