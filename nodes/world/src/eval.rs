//! Scoring predictions on held-out recordings, per horizon, beside the
//! floor (copy the last context frame) and the ceiling (the tokenizer's
//! reconstruction of the true frame): token accuracy, and PSNR/SSIM of the
//! decoded frames against the true ones; the action effect (Genie's ΔtPSNR:
//! PSNR with the true actions minus with another clip's); and for a
//! vehicle slowing down, the stopping distance the predicted speeds imply
//! beside the simulator's; and where a recording has the simulator's
//! instance ids, whether the predicted frames show a cup falling off the
//! table when it did ([`CupFalls`]).

use s2r_image::quality::{psnr, ssim, Rgb8};
use serde::Serialize;

use crate::data::{Episode, Objects};
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
    /// Cups falling and standing, where the recordings have instance ids.
    pub cup_falls: Option<CupFalls>,
}

/// Whether a predictor's frames show a cup gone from its place when it fell
/// off the table, and in its place when it did not. A cup in sight at the
/// last context frame is judged at the token frame after the one where the
/// simulator has it fallen (its centre 10 cm below where it stood), else at
/// the horizon's end: its place (its pixels at the last context frame) shows
/// it when those pixels stand out from their surroundings (a ring around
/// them) by at least half as much as in the context (as the codec shows it);
/// a fallen cup's place shown empty must also look more like the true
/// frame's than like the context's ([`gone`]). Only cups whose true frame
/// shows what happened count (a cup hidden by the arm does not), and only
/// those the codec keeps in the context.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CupFalls {
    /// Cups that fell within the horizon (the true frame shows their place empty).
    pub falls: usize,
    /// Of them, those whose place the predictor shows empty.
    pub predicted: usize,
    /// Cups that stayed (the true frame shows them).
    pub stays: usize,
    /// Of them, those the predictor shows gone.
    pub false_alarms: usize,
    /// Cups in sight that the codec loses from the last context frame (not judged).
    pub lost: usize,
}

impl CupFalls {
    /// The share of falls predicted, when there are falls.
    pub fn recall(&self) -> Option<f64> {
        (self.falls > 0).then(|| self.predicted as f64 / self.falls as f64)
    }

    fn count(&mut self, fell: bool, shown_empty: bool) {
        match fell {
            true => {
                self.falls += 1;
                self.predicted += shown_empty as usize;
            }
            false => {
                self.stays += 1;
                self.false_alarms += shown_empty as usize;
            }
        }
    }
}

/// A cup in sight at a clip's last context frame.
struct CupPlace {
    /// Its view pixels then.
    pixels: Vec<usize>,
    /// What surrounds them: the box around them grown by [`RING`] pixels,
    /// less any cup's pixels.
    ring: Vec<usize>,
    /// The token frame it is judged at.
    at: usize,
    /// Whether it fell within the horizon (by `at`, which follows the fall).
    fell: bool,
}

/// Fewest view pixels of a cup to judge it by.
const MIN_CUP_PIXELS: usize = 12;
/// The ring around a cup's place, view pixels.
const RING: usize = 3;
/// A cup this far below where it first stood has fallen, metres.
const FALL_DROP: f32 = 0.1;
/// A place shows its cup while it stands out at least this share of its contrast in the context.
const SHOWN: f64 = 0.5;
/// Least contrast of a cup against its surroundings in the context (levels of 255) to judge it by.
const MIN_CONTRAST: f64 = 8.0;

/// The cups in sight at token frame `k0` and how each ends within `hmax` frames.
fn cup_places(objects: &Objects, size: usize, k0: usize, hmax: usize) -> Vec<CupPlace> {
    let stood = |id: u16| objects.cups.iter().find_map(|c| c.iter().find(|x| x.0 == id)).map(|x| x.1);
    let fallen = |t: usize, id: u16, z0: f32| objects.cups[t].iter().any(|x| x.0 == id && x.1 < z0 - FALL_DROP);
    let ids = &objects.ids[k0];
    let is_cup = |v: u16| v != 0 && objects.cups[k0].iter().any(|x| x.0 == v);
    let mut out = Vec::new();
    for &(id, _) in &objects.cups[k0] {
        let Some(z0) = stood(id) else { continue };
        let pixels: Vec<usize> = (0..ids.len()).filter(|&p| ids[p] == id).collect();
        if pixels.len() < MIN_CUP_PIXELS || fallen(k0, id, z0) {
            continue;
        }
        let (mut x0, mut y0, mut x1, mut y1) = (size, size, 0, 0);
        for &p in &pixels {
            let (x, y) = (p % size, p / size);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
        let (x0, y0, x1, y1) = (x0.saturating_sub(RING), y0.saturating_sub(RING), (x1 + RING).min(size - 1), (y1 + RING).min(size - 1));
        let ring = (y0..=y1).flat_map(|y| (x0..=x1).map(move |x| y * size + x)).filter(|&p| !is_cup(ids[p])).collect();
        let fall = (k0 + 1..=k0 + hmax).find(|&t| fallen(t, id, z0));
        let at = fall.map_or(k0 + hmax, |f| (f + 1).min(k0 + hmax));
        out.push(CupPlace { pixels, ring, at, fell: fall.is_some() });
    }
    out
}

/// How much a cup's place stands out in an rgb8 view of `size` columns:
/// the mean distance (per channel, levels) of each of its pixels from the
/// mean colour of the ring's pixels in the same row (what lies left and
/// right of it: a table's edge or a wall behind runs across the view, so an
/// empty place matches its row), the whole ring's for a row without any.
fn presence(view: &[u8], size: usize, place: &CupPlace) -> f64 {
    let mean = |pixels: &mut dyn Iterator<Item = usize>| {
        let (mut m, mut n) = ([0f64; 3], 0usize);
        for p in pixels {
            for c in 0..3 {
                m[c] += view[p * 3 + c] as f64;
            }
            n += 1;
        }
        (n > 0).then(|| m.map(|x| x / n as f64))
    };
    let all = mean(&mut place.ring.iter().copied()).unwrap_or([0.0; 3]);
    let mut rows: std::collections::HashMap<usize, [f64; 3]> = std::collections::HashMap::new();
    let d: f64 = place
        .pixels
        .iter()
        .map(|&p| {
            let y = p / size;
            let m = *rows.entry(y).or_insert_with(|| mean(&mut place.ring.iter().copied().filter(|q| q / size == y)).unwrap_or(all));
            (0..3).map(|c| (view[p * 3 + c] as f64 - m[c]).abs()).sum::<f64>() / 3.0
        })
        .sum();
    d / place.pixels.len().max(1) as f64
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
    /// The absolute relative errors of the predicted stopping distances, ascending.
    fn stopping_errors(&self) -> Vec<f64> {
        let mut e: Vec<f64> = self.stopping.iter().map(|(t, p)| ((p - t) / t.max(1e-6)).abs()).collect();
        e.sort_by(f64::total_cmp);
        e
    }

    /// Mean absolute relative error of the predicted stopping distances, when there are clips.
    pub fn stopping_error(&self) -> Option<f64> {
        (!self.stopping.is_empty()).then(|| self.stopping_errors().iter().sum::<f64>() / self.stopping.len() as f64)
    }

    /// Median absolute relative error of the predicted stopping distances, when there are clips.
    pub fn stopping_median(&self) -> Option<f64> {
        let e = self.stopping_errors();
        match e.len() {
            0 => None,
            n if n % 2 == 1 => Some(e[n / 2]),
            n => Some((e[n / 2 - 1] + e[n / 2]) / 2.0),
        }
    }

    /// The share of clips whose predicted stopping distance is within `tolerance` (0.15: 15 %) of the true one.
    pub fn stopping_within(&self, tolerance: f64) -> Option<f64> {
        let e = self.stopping_errors();
        (!e.is_empty()).then(|| e.iter().filter(|&&x| x <= tolerance).count() as f64 / e.len() as f64)
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

/// The mean distance (per channel, levels) between two rgb8 views over a cup's place.
fn distance(a: &[u8], b: &[u8], place: &CupPlace) -> f64 {
    let d: f64 = place.pixels.iter().map(|&p| (0..3).map(|c| (a[p * 3 + c] as f64 - b[p * 3 + c] as f64).abs()).sum::<f64>() / 3.0).sum();
    d / place.pixels.len().max(1) as f64
}

/// Whether `view` shows a cup's place empty: it no longer stands out from
/// its surroundings (less than [`SHOWN`] of the context's `contrast`), and,
/// where the cup fell, it looks more like the true frame's empty place
/// (`truth`, as the codec shows it) than like the context's cup (`context`):
/// not the arm smeared over it.
fn gone(view: &[u8], place: &CupPlace, contrast: f64, truth: &[u8], context: &[u8], size: usize) -> bool {
    presence(view, size, place) < SHOWN * contrast && (!place.fell || distance(view, truth, place) < distance(view, context, place))
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
    fn row(&self, name: &str, n: usize, cup_falls: Option<&CupFalls>) -> Row {
        let m = |v: &[f64]| v.iter().map(|x| x / n.max(1) as f64).collect();
        Row { name: name.into(), accuracy: m(&self.acc), psnr: m(&self.psnr), ssim: m(&self.ssim), cup_falls: cup_falls.cloned() }
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
    // Cups: copy-last, the ceiling, then each model; None while no recording has instance ids.
    let mut cups: Option<Vec<CupFalls>> = None;
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
        // The cups in sight, judged where the true frame shows what happened; a
        // predictor's frames against the context as the codec shows it (a
        // cup the codec loses from the context no predictor can show).
        let k0 = s + c - 1;
        let mut places: Vec<(CupPlace, f64, Vec<u8>)> = Vec::new();
        let mut lost = 0;
        for p in e.objects.as_ref().map(|o| cup_places(o, size, k0, hmax)).unwrap_or_default() {
            let contrast = presence(&e.views[k0], size, &p);
            if contrast < MIN_CONTRAST || (presence(&e.views[p.at], size, &p) >= SHOWN * contrast) == p.fell {
                continue;
            }
            let coded = presence(&copy_view, size, &p);
            if coded < MIN_CONTRAST {
                lost += 1;
                continue;
            }
            let truth = decode(&e.codes[p.at], e)?;
            places.push((p, coded, truth));
        }
        if e.objects.is_some() {
            let tally = cups.get_or_insert_with(|| vec![CupFalls::default(); models.len() + 2]);
            tally.iter_mut().for_each(|t| t.lost += lost);
            for (p, contrast, truth) in &places {
                tally[0].count(p.fell, gone(&copy_view, p, *contrast, truth, &copy_view, size));
                tally[1].count(p.fell, gone(truth, p, *contrast, truth, &copy_view, size));
            }
        }
        for (m, (_, model)) in models.iter().enumerate() {
            let ctx = s..s + c;
            let pred: Predicted = rollout(model, &e.codes[ctx.clone()], &e.states[ctx.clone()], &e.actions[s..], e.conditions, hmax)?;
            for (p, contrast, truth) in &places {
                let shown_gone = gone(&decode(&pred.codes[p.at - k0 - 1], e)?, p, *contrast, truth, &copy_view, size);
                cups.as_mut().expect("set with the places")[m + 2].count(p.fell, shown_gone);
            }
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
    let cup = |i: usize| cups.as_ref().map(|c| &c[i]);
    let mut rows = vec![copy.row("copy-last", n, cup(0)), ceiling.row(&format!("{} (ceiling)", codec.name()), n, cup(1))];
    rows.extend(models.iter().zip(&sums).enumerate().map(|(m, ((name, _), s))| s.row(name, n, cup(m + 2))));
    Ok(Report { horizons: opts.horizons.clone(), step_seconds: cfg.step_seconds(), clips: n, rows, models: figures })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopping_errors_summarised() {
        let m = ModelFigures { name: "m".into(), delta_t_psnr: 0.0, stopping: vec![(10.0, 11.0), (10.0, 5.0), (20.0, 21.0), (10.0, 30.0)] };
        // Errors 0.05, 0.1, 0.5, 2.0.
        assert!((m.stopping_error().unwrap() - 0.6625).abs() < 1e-9);
        assert!((m.stopping_median().unwrap() - 0.3).abs() < 1e-9);
        assert_eq!(m.stopping_within(0.15), Some(0.5));
        let none = ModelFigures { stopping: Vec::new(), ..m };
        assert_eq!((none.stopping_error(), none.stopping_median(), none.stopping_within(0.15)), (None, None, None));
    }

    #[test]
    fn stopping_distance_from_a_speed_profile() {
        // 10 m/s slowing at 1 m/s² over 2 s in 0.2 s steps: 50 m to a stop.
        let v: Vec<f32> = (0..=10).map(|i| 10.0 - 0.2 * i as f32).collect();
        assert!((implied_stopping(&v, 0.2).unwrap() - 50.0).abs() < 1e-3);
        assert_eq!(implied_stopping(&[5.0, 5.0, 4.9], 0.2), None);
    }

    /// A 16×16 view: a wall above row 8, a table below, and a white 4×4
    /// cup across the table's edge when `cup`.
    fn view(cup: bool) -> Vec<u8> {
        (0..256)
            .flat_map(|p| {
                let (x, y) = (p % 16, p / 16);
                if cup && (6..10).contains(&x) && (6..10).contains(&y) {
                    [255, 255, 255]
                } else if y < 8 {
                    [100, 70, 40]
                } else {
                    [220, 170, 110]
                }
            })
            .collect()
    }

    /// Six token frames of cup 7 standing three frames, then off the table.
    fn falling() -> Objects {
        let ids =
            |cup: bool| (0..256).map(|p| if cup && (6..10).contains(&(p % 16)) && (6..10).contains(&(p / 16)) { 7 } else { 0 }).collect();
        Objects {
            ids: (0..6).map(|t| ids(t < 3)).collect(),
            cups: [0.05, 0.05, 0.05, 0.0, -0.3, -0.5].iter().map(|&z| vec![(7, z)]).collect(),
        }
    }

    #[test]
    fn a_cup_place_is_judged_after_its_fall_or_at_the_horizon() {
        let o = falling();
        let places = cup_places(&o, 16, 1, 4);
        assert_eq!(places.len(), 1);
        let p = &places[0];
        assert_eq!(p.pixels.len(), 16);
        // Fallen (10 cm below where it stood) at frame 4, judged one frame later.
        assert!(p.fell);
        assert_eq!(p.at, 5);
        // The ring: the box grown by 3 pixels, less the cup.
        assert_eq!(p.ring.len(), 10 * 10 - 16);
        // Within a shorter horizon it has not fallen: judged at the horizon's end.
        let p = &cup_places(&o, 16, 1, 2)[0];
        assert!(!p.fell);
        assert_eq!(p.at, 3);
        // Gone from the ids at the last context frame: nothing to judge.
        assert!(cup_places(&o, 16, 3, 2).is_empty());
    }

    #[test]
    fn an_empty_place_matches_its_rows_and_a_cup_stands_out() {
        let p = &cup_places(&falling(), 16, 1, 4)[0];
        // Row by row the empty place is the wall or the table beside it.
        assert_eq!(presence(&view(false), 16, p), 0.0);
        // The white cup: (155+185+215)/3 from the wall, (35+85+145)/3 from the table.
        let expected = ((155.0 + 185.0 + 215.0) / 3.0 + (35.0 + 85.0 + 145.0) / 3.0) / 2.0;
        assert!((presence(&view(true), 16, p) - expected).abs() < 1e-9);
    }

    #[test]
    fn a_fallen_cup_is_shown_gone_by_an_empty_place_not_by_a_smear_over_it() {
        let p = &cup_places(&falling(), 16, 1, 4)[0];
        let (context, truth) = (view(true), view(false));
        let contrast = presence(&context, 16, p);
        assert!(gone(&truth, p, contrast, &truth, &context, 16));
        assert!(!gone(&context, p, contrast, &truth, &context, 16), "the cup still there");
        // Something light grey smeared over the cup and its surroundings: nothing stands out, but it
        // looks more like the cup than like the empty table and wall.
        let mut smear = truth.clone();
        for q in p.pixels.iter().chain(&p.ring) {
            smear[q * 3..q * 3 + 3].copy_from_slice(&[210, 210, 210]);
        }
        assert!(presence(&smear, 16, p) < 1e-9);
        assert!(!gone(&smear, p, contrast, &truth, &context, 16));
    }

    #[test]
    fn cup_falls_count_predictions_of_falls_and_false_alarms() {
        let mut c = CupFalls::default();
        assert_eq!(c.recall(), None);
        c.count(true, true);
        c.count(true, false);
        c.count(false, true);
        c.count(false, false);
        c.count(false, false);
        assert_eq!((c.falls, c.predicted, c.stays, c.false_alarms), (2, 1, 3, 1));
        assert_eq!(c.recall(), Some(0.5));
    }
}
