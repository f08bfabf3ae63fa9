//! The hazard predictor: how far ahead the road is free, read from one
//! camera frame. It answers what the driving expert knows from the
//! simulator's ground truth (`s2r_sim::expert::hazards`, the labels): the
//! distance to the nearest thing inside the car's path now, and the distance
//! to the far end of the nearest parked vehicle by the kerb, behind which
//! someone may step out. Both are what one frame shows: who is about to step
//! in and how fast a lead car goes are not, and labels that held them (the
//! expert's own free distance) taught it to see obstacles that were not there. With them it reads the road's surface too (a second
//! reader beside [`crate::surface`], trained on the frames it learns from).
//!
//! The network reads the band of the frame from above the horizon to just
//! above the bonnet (rows 30–78 %, where everything within 60 m stands),
//! resized to 256×96, through four 2×2 patch stages ([`s2r_train::PatchStages`]),
//! then a 1×1 squeeze to 16 channels whose 16×6 cells are flattened (where
//! a thing is in the picture says how far and whether it is in the lane), and
//! two dense layers. Distances are learned in log space with a pinball loss
//! at the [`QUANTILE`]: an estimate is nearer than the truth more often than
//! not, the conservative side. No mirror augmentation: the kerb is on one side.
//!
//! A motion network (`s2r train reason --hazard-motion`) also reads the frame
//! [`GAP`] seconds before: its input is the frame and the frame less that one
//! (six channels), so that who moves towards the path can be told from who
//! stands beside it.

use std::path::Path;

use candle_core::{Device, Module, Tensor, D};
use candle_nn::{linear, Linear, VarBuilder};
use rand::Rng;
use s2r_train::PatchStages;
use sim2real_msgs::sensor_msgs::msg::Image;

use crate::surface::{class_of, CLASSES};
use crate::ReasonError;

/// Input width and height.
pub const INPUT: (usize, usize) = (256, 96);
/// The band of the frame's rows it reads (fractions of its height from the top).
pub const ROWS: [f32; 2] = [0.30, 0.78];
/// Metres it judges up to: a distance at or beyond it is "nothing within range".
pub const RANGE: f32 = 60.0;
/// Nearest distance it tells apart, metres.
const NEAREST: f32 = 1.0;
/// The quantile its distances are trained to (below the median: conservative).
pub const QUANTILE: f32 = 0.3;
/// Share of [`RANGE`] from which an estimate counts as "nothing within range".
const NONE_SHARE: f32 = 0.9;
const CHANNELS: [usize; 4] = [16, 32, 64, 96];
const SQUEEZE: usize = 16;
const HIDDEN: usize = 128;
/// Seconds between the frame a motion network reads and the one before it it compares it with.
pub const GAP: f32 = 0.3;
/// Outputs: two log distances, then the surface classes' logits.
const OUTPUTS: usize = 2 + CLASSES.len();

/// One labelled frame.
#[derive(Clone, Debug)]
pub struct Sample {
    /// RGB, [`INPUT`] in size, rows [`ROWS`] of the frame.
    pub image: Vec<u8>,
    /// The same of the frame [`GAP`] seconds before (a motion network's), if recorded.
    pub before: Option<Vec<u8>>,
    /// Metres to the nearest thing inside the path now (None: nothing within [`RANGE`]).
    pub obstacle: Option<f32>,
    /// Metres to the far end of the nearest parked vehicle that may hide someone.
    pub occlusion: Option<f32>,
    /// The friction under the tyres.
    pub mu: f32,
    /// The episode's seed.
    pub seed: u64,
}

/// The recent frames of one camera as the network reads them, so that a
/// motion network gets the one [`GAP`] seconds before the frame it reads.
#[derive(Default)]
pub struct FrameHistory {
    frames: std::collections::VecDeque<(f64, Vec<u8>)>,
}

impl FrameHistory {
    /// The frame nearest [`GAP`] seconds before `t` (seconds), at least half
    /// of that and at most twice that before; None when there is none (the
    /// start, or after the camera stalled).
    pub fn before(&self, t: f64) -> Option<&[u8]> {
        let (gap, want) = (GAP as f64, t - GAP as f64);
        self.frames
            .iter()
            .filter(|(at, _)| *at <= t - gap / 2.0 && *at >= t - 2.0 * gap)
            .min_by(|a, b| (a.0 - want).abs().total_cmp(&(b.0 - want).abs()))
            .map(|(_, f)| f.as_slice())
    }

    /// Keeps frame `input` seen at `t`; forgets those more than twice [`GAP`]
    /// older, all of them when time goes back (a new episode or bag), and a
    /// frame of the same time (a camera that does not stamp its frames).
    pub fn push(&mut self, t: f64, input: Vec<u8>) {
        if self.frames.back().is_some_and(|(at, _)| *at > t) {
            self.frames.clear();
        }
        if self.frames.back().is_some_and(|(at, _)| *at == t) {
            self.frames.pop_back();
        }
        while self.frames.front().is_some_and(|(at, _)| *at < t - 2.0 * GAP as f64) {
            self.frames.pop_front();
        }
        self.frames.push_back((t, input));
    }

    /// Forgets every frame.
    pub fn clear(&mut self) {
        self.frames.clear();
    }
}

impl Sample {
    /// The frame as the network reads it.
    pub fn input(&self) -> Input<'_> {
        Input { now: &self.image, before: self.before.as_deref() }
    }
}

/// What the network reads from a frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    /// Metres to the nearest thing in the path, if within range.
    pub obstacle: Option<f32>,
    /// Metres to the far end of the nearest parked vehicle that may hide someone, if within range.
    pub occlusion: Option<f32>,
    /// The surface class and its probability.
    pub surface: (usize, f32),
}

/// A camera frame as the network reads it: rows [`ROWS`] resized to [`INPUT`].
pub fn input(img: &Image, topic: &str) -> Result<Vec<u8>, ReasonError> {
    crate::surface::band(img, topic, ROWS, INPUT)
}

/// A distance as the network's target: log-scaled to 0 (≤ 1 m) … 1 (≥ [`RANGE`]).
fn encode(d: Option<f32>) -> f32 {
    let d = d.unwrap_or(RANGE).clamp(NEAREST, RANGE);
    (d / NEAREST).ln() / (RANGE / NEAREST).ln()
}

/// The network's output as metres, None beyond [`NONE_SHARE`] of the range.
fn decode(t: f32) -> Option<f32> {
    let d = NEAREST * ((RANGE / NEAREST).ln() * t.clamp(0.0, 1.0)).exp();
    (d < NONE_SHARE * RANGE).then_some(d)
}

/// A frame as the network reads it: [`input`] of it, and for a motion
/// network [`input`] of the frame [`GAP`] seconds before (None: the same
/// frame, nothing seen to move).
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The frame now.
    pub now: &'a [u8],
    /// The frame before.
    pub before: Option<&'a [u8]>,
}

/// The network.
pub struct HazardNet {
    /// Whether it reads the frame before too.
    pub motion: bool,
    pub(crate) stages: PatchStages,
    pub(crate) squeeze: Linear,
    pub(crate) fc1: Linear,
    pub(crate) fc2: Linear,
}

impl HazardNet {
    /// The network over `vb`'s weights; `motion`: one that reads the frame before too.
    pub fn new(vb: VarBuilder, motion: bool) -> candle_core::Result<HazardNet> {
        let stages = PatchStages::new(if motion { 6 } else { 3 }, &CHANNELS, &vb)?;
        let cells = (INPUT.0 >> CHANNELS.len()) * (INPUT.1 >> CHANNELS.len());
        Ok(HazardNet {
            motion,
            stages,
            squeeze: linear(CHANNELS[3], SQUEEZE, vb.pp("squeeze"))?,
            fc1: linear(SQUEEZE * cells, HIDDEN, vb.pp("fc1"))?,
            fc2: linear(HIDDEN, OUTPUTS, vb.pp("fc2"))?,
        })
    }

    /// The device its weights are on.
    pub fn device(&self) -> &Device {
        self.fc2.weight().device()
    }

    /// Images `[B, H, W, 3]` (0 to 1; a motion network's `[B, H, W, 6]`: the
    /// frame, and the frame less the one before) → `[B, 2 + classes]`: the two
    /// encoded distances, the surface logits.
    pub fn forward(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        let x = self.stages.forward(&(images - 0.5)?)?;
        let x = self.squeeze.forward(&x)?.relu()?.flatten_from(1)?;
        self.fc2.forward(&self.fc1.forward(&x)?.relu()?)
    }

    /// The batch of `inputs` as [`HazardNet::forward`] takes it, augmented with `rng`.
    fn batch(&self, inputs: &[Input], device: &Device, rng: Option<&mut rand::rngs::StdRng>) -> candle_core::Result<Tensor> {
        let now: Vec<&[u8]> = inputs.iter().map(|i| i.now).collect();
        if !self.motion {
            return crate::surface::batch(&now, INPUT, device, rng, false);
        }
        let before: Vec<&[u8]> = inputs.iter().map(|i| i.before.unwrap_or(i.now)).collect();
        let v = crate::surface::batch_of(&[&now, &before], INPUT, device, rng, false)?;
        Tensor::cat(&[&v[0], &(&v[0] - &v[1])?], 3)
    }

    /// What the network reads from each input (RGB bytes of [`INPUT`] size).
    pub fn read(&self, inputs: &[Input], device: &Device) -> Result<Vec<Reading>, ReasonError> {
        let x = self.batch(inputs, device, None).map_err(crate::candle("a hazard batch"))?;
        let y = self.forward(&x).map_err(crate::candle("the hazard network"))?;
        let p = candle_nn::ops::softmax(&y.narrow(1, 2, CLASSES.len()).map_err(crate::candle("the hazard output"))?, D::Minus1)
            .and_then(|p| p.to_vec2::<f32>())
            .map_err(crate::candle("the surface probabilities"))?;
        let d = y.narrow(1, 0, 2).and_then(|d| d.to_vec2::<f32>()).map_err(crate::candle("the hazard distances"))?;
        Ok(d.iter()
            .zip(p)
            .map(|(d, p)| Reading { obstacle: decode(d[0]), occlusion: decode(d[1]), surface: crate::surface::most_likely(&p) })
            .collect())
    }
}

pub use crate::fit::FitOptions;

/// A trained network with its variables (to save).
pub type Trained = crate::fit::Trained<HazardNet>;

/// The pinball loss at `q` of predictions `p` against targets `t` (same shape), averaged.
fn pinball(p: &Tensor, t: &Tensor, q: f32) -> candle_core::Result<Tensor> {
    // Under-estimates (t > p) cost q per unit, over-estimates 1 − q.
    let e = (t - p)?;
    let under = e.relu()?;
    let over = e.neg()?.relu()?;
    ((under * q as f64)? + (over * (1.0 - q) as f64)?)?.mean_all()
}

/// Trains a fresh network on `samples`; `progress` gets (step, loss). Half
/// of each batch is drawn from frames with a hazard within range.
pub fn fit(samples: &[Sample], opts: &FitOptions, progress: &mut dyn FnMut(usize, f32)) -> Result<Trained, ReasonError> {
    let hazardous: Vec<&Sample> = samples.iter().filter(|s| s.obstacle.is_some() || s.occlusion.is_some()).collect();
    if samples.is_empty() || hazardous.is_empty() {
        return Err(ReasonError::Records {
            what: "hazard",
            problem: format!(
                "{} frames, {} with anything in the path or a parked car ahead: nothing to learn distances from",
                samples.len(),
                hazardous.len()
            ),
        });
    }
    let motion = samples[0].before.is_some();
    if samples.iter().any(|s| s.before.is_some() != motion) {
        return Err(ReasonError::Records {
            what: "hazard",
            problem: "some frames have the frame before them and some not: record them all one way".into(),
        });
    }
    let device = opts.device.clone();
    let step = |net: &HazardNet, rng: &mut rand::rngs::StdRng| {
        let picks: Vec<&Sample> = (0..opts.batch)
            .map(
                |i| if i % 2 == 0 { hazardous[rng.random_range(0..hazardous.len())] } else { &samples[rng.random_range(0..samples.len())] },
            )
            .collect();
        let inputs: Vec<Input> = picks.iter().map(|s| s.input()).collect();
        let targets: Vec<f32> = picks.iter().flat_map(|s| [encode(s.obstacle), encode(s.occlusion)]).collect();
        let classes: Vec<u32> = picks.iter().map(|s| class_of(s.mu) as u32).collect();
        let x = net.batch(&inputs, &device, Some(rng)).map_err(crate::candle("a hazard batch"))?;
        (|| {
            let y = net.forward(&x)?;
            let t = Tensor::from_vec(targets, (picks.len(), 2), &device)?;
            let k = Tensor::new(classes.as_slice(), &device)?;
            let distance = pinball(&y.narrow(1, 0, 2)?, &t, QUANTILE)?;
            let surface = candle_nn::loss::cross_entropy(&y.narrow(1, 2, CLASSES.len())?, &k)?;
            // The distance loss is ~0.05 where the class loss is ~0.5: weigh them alike.
            (distance * 10.0)? + surface
        })()
        .map_err(crate::candle("the hazard loss"))
    };
    crate::fit::train("hazard", opts, |vb| HazardNet::new(vb, motion), step, progress)
}

/// How well the network reads held-out frames.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    /// Frames scored.
    pub frames: usize,
    /// Frames with something in the path within range: the share it sees (any estimate within range).
    pub obstacle_seen: Option<f32>,
    /// The median of |estimate − truth| / truth where both are within range.
    pub obstacle_error: Option<f32>,
    /// Frames with an occluding parked car within range: the share it sees.
    pub occlusion_seen: Option<f32>,
    /// The median relative error where both are within range.
    pub occlusion_error: Option<f32>,
    /// Of the frames with nothing in the path, the share it says something is (a needless brake).
    pub obstacle_false: Option<f32>,
    /// Share of estimates beyond the truth (the unsafe side), both kinds, where both are within range.
    pub beyond_truth: Option<f32>,
    /// Surface class accuracy.
    pub surface_accuracy: Option<f32>,
}

/// Scores `net` on `samples` (a share or median is None where nothing was there to score).
pub fn evaluate(net: &HazardNet, samples: &[Sample]) -> Result<Scores, ReasonError> {
    let mut readings = Vec::with_capacity(samples.len());
    for chunk in samples.chunks(64) {
        let inputs: Vec<Input> = chunk.iter().map(|s| s.input()).collect();
        readings.extend(net.read(&inputs, net.device())?);
    }
    let within = |d: Option<f32>| d.filter(|d| *d < NONE_SHARE * RANGE);
    let median = |mut v: Vec<f32>| {
        v.sort_by(f32::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let share = |n: usize, of: usize| (of > 0).then(|| n as f32 / of as f32);
    let (mut beyond, mut pairs) = (0usize, 0usize);
    let mut kind = |truth: &dyn Fn(&Sample) -> Option<f32>, est: &dyn Fn(&Reading) -> Option<f32>| {
        let (mut present, mut seen, mut errors) = (0usize, 0usize, Vec::new());
        for (s, r) in samples.iter().zip(&readings) {
            if let Some(t) = within(truth(s)) {
                present += 1;
                if let Some(e) = est(r) {
                    seen += 1;
                    errors.push((e - t).abs() / t.max(NEAREST));
                    pairs += 1;
                    beyond += (e > t) as usize;
                }
            }
        }
        (share(seen, present), median(errors))
    };
    let (obstacle_seen, obstacle_error) = kind(&|s| s.obstacle, &|r| r.obstacle);
    let (occlusion_seen, occlusion_error) = kind(&|s| s.occlusion, &|r| r.occlusion);
    let clear: Vec<&Reading> = samples.iter().zip(&readings).filter(|(s, _)| within(s.obstacle).is_none()).map(|(_, r)| r).collect();
    let right = samples.iter().zip(&readings).filter(|(s, r)| class_of(s.mu) == r.surface.0).count();
    Ok(Scores {
        frames: samples.len(),
        obstacle_seen,
        obstacle_error,
        occlusion_seen,
        occlusion_error,
        obstacle_false: share(clear.iter().filter(|r| r.obstacle.is_some()).count(), clear.len()),
        beyond_truth: share(beyond, pairs),
        surface_accuracy: share(right, samples.len()),
    })
}

/// The metadata key of the weights file's record.
pub const META_KEY: &str = "sim2real.hazard";

/// Writes the weights (safetensors, with `record` under [`META_KEY`]).
pub fn save(path: &Path, t: &Trained, record: &str) -> Result<(), ReasonError> {
    crate::fit::save(path, &t.varmap, META_KEY, record)
}

/// Reads a weights file (a motion network's first stage takes twice the channels).
pub fn load(path: &Path) -> Result<HazardNet, ReasonError> {
    load_on(path, &Device::Cpu)
}

/// Reads a hazard predictor's weights onto `device`.
pub fn load_on(path: &Path, device: &Device) -> Result<HazardNet, ReasonError> {
    crate::fit::load(path, (META_KEY, "a hazard predictor", "the hazard network"), device, |vb| {
        let motion = vb.get_unchecked("stage0.weight").is_ok_and(|w| w.dims().last() == Some(&(4 * 6)));
        HazardNet::new(vb, motion)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_round_trip_through_the_encoding() {
        for d in [1.0f32, 2.5, 10.0, 33.0, 50.0] {
            let back = decode(encode(Some(d))).unwrap();
            assert!((back - d).abs() < 1e-3 * d, "{d} -> {back}");
        }
        assert_eq!(decode(encode(None)), None);
        assert_eq!(decode(encode(Some(200.0))), None);
        assert_eq!(decode(encode(Some(0.2))), Some(NEAREST));
    }

    #[test]
    fn pinball_costs_under_and_over_estimates_by_the_quantile() {
        let d = Device::Cpu;
        let t = Tensor::new(&[1f32, 1.0], &d).unwrap();
        let low = Tensor::new(&[0f32, 0.0], &d).unwrap();
        let high = Tensor::new(&[2f32, 2.0], &d).unwrap();
        let l = |p: &Tensor| pinball(p, &t, 0.3).unwrap().to_scalar::<f32>().unwrap();
        assert!((l(&low) - 0.3).abs() < 1e-6 && (l(&high) - 0.7).abs() < 1e-6);
    }

    /// A dark frame with a bright block whose row says how far the obstacle is.
    fn toy(n: usize) -> Vec<Sample> {
        (0..n)
            .map(|i| {
                let d = 4.0 + (i % 8) as f32 * 6.0;
                let row = INPUT.1 - 8 - (d as usize) * (INPUT.1 - 16) / 50;
                let mut image = vec![20u8; INPUT.0 * INPUT.1 * 3];
                for y in row.saturating_sub(6)..row + 6 {
                    for x in 100..156 {
                        image[(y * INPUT.0 + x) * 3..(y * INPUT.0 + x) * 3 + 3].copy_from_slice(&[230, 200, 40]);
                    }
                }
                let mu = if i % 3 == 0 { 0.1 } else { 0.8 };
                if mu < 0.5 {
                    image.iter_mut().step_by(3).for_each(|r| *r = r.saturating_add(30));
                }
                Sample { image, before: None, obstacle: Some(d), occlusion: None, mu, seed: i as u64 }
            })
            .collect()
    }

    #[test]
    fn training_learns_distances_from_where_things_are_and_saves_and_loads() {
        let data = toy(48);
        let t = fit(&data, &FitOptions { steps: 150, batch: 16, lr: 3e-3, seed: 1, ..Default::default() }, &mut |_, _| {}).unwrap();
        let s = evaluate(&t.net, &data).unwrap();
        assert!(s.obstacle_seen.unwrap() > 0.9 && s.obstacle_error.unwrap() < 0.3, "{s:?}");
        assert_eq!(s.occlusion_seen, None, "no occlusions in the data: {s:?}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hazard.safetensors");
        save(&path, &t, "{}").unwrap();
        assert_eq!(evaluate(&load(&path).unwrap(), &data).unwrap(), s);
        // Nothing hazardous to learn from is named.
        let clear: Vec<Sample> = data.iter().map(|s| Sample { obstacle: None, ..s.clone() }).collect();
        let e = fit(&clear, &FitOptions::default(), &mut |_, _| {}).err().unwrap().to_string();
        assert!(e.contains("hazard") && e.contains("nothing to learn"), "{e}");
    }

    /// Frames identical now, told apart only by where the block was before:
    /// moving right (towards the path) it is 5 m ahead, moving left it is not there.
    fn moving(n: usize) -> Vec<Sample> {
        let block = |x0: usize| {
            let mut image = vec![20u8; INPUT.0 * INPUT.1 * 3];
            for y in 40..60 {
                for x in x0..x0 + 24 {
                    image[(y * INPUT.0 + x) * 3..(y * INPUT.0 + x) * 3 + 3].copy_from_slice(&[230, 200, 40]);
                }
            }
            image
        };
        (0..n)
            .map(|i| {
                let towards = i % 2 == 0;
                let before = block(if towards { 96 } else { 136 });
                Sample {
                    image: block(116),
                    before: Some(before),
                    obstacle: towards.then_some(5.0),
                    occlusion: None,
                    mu: 0.8,
                    seed: i as u64,
                }
            })
            .collect()
    }

    #[test]
    fn a_motion_network_tells_who_moves_towards_the_path_and_loads_as_one() {
        let data = moving(32);
        let t = fit(&data, &FitOptions { steps: 200, batch: 16, lr: 3e-3, seed: 2, ..Default::default() }, &mut |_, _| {}).unwrap();
        assert!(t.net.motion);
        let s = evaluate(&t.net, &data).unwrap();
        assert!(s.obstacle_seen.unwrap() > 0.9 && s.obstacle_false.unwrap() < 0.1, "{s:?}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hazard.safetensors");
        save(&path, &t, "{}").unwrap();
        let back = load(&path).unwrap();
        assert!(back.motion);
        assert_eq!(evaluate(&back, &data).unwrap(), s);
        // Frames recorded both ways are refused.
        let mut mixed = data.clone();
        mixed[0].before = None;
        let e = fit(&mixed, &FitOptions::default(), &mut |_, _| {}).err().unwrap().to_string();
        assert!(e.contains("frame before"), "{e}");
    }

    #[test]
    fn the_history_gives_the_frame_a_gap_before_and_forgets_old_ones() {
        let mut h = FrameHistory::default();
        assert_eq!(h.before(1.0), None);
        for k in 0..10 {
            h.push(k as f64 * 0.1, vec![k as u8]);
        }
        // At 1.0 s: the frame of 0.7 s (0.3 s before); none newer than half the gap.
        assert_eq!(h.before(1.0), Some(&[7u8][..]));
        assert_eq!(h.before(0.92), Some(&[6u8][..]));
        assert_eq!(h.before(0.1), None);
        // Frames more than two gaps old are forgotten, or not given; time going back starts afresh.
        h.push(1.5, vec![15]);
        assert_eq!(h.before(1.8), Some(&[15u8][..]));
        assert_eq!(h.before(2.5), None, "after a stall, no frame from long before");
        h.push(1.5, vec![16]);
        assert_eq!(h.frames.len(), 2, "a frame of the same time replaces the last");
        h.push(0.2, vec![2]);
        assert_eq!(h.before(0.6), Some(&[2u8][..]));
        assert_eq!(h.frames.len(), 1);
    }
}
