//! The cup's outcome predictor: what a push of the arm's fingers does to a
//! cup on a table (it stays upright, tips over, or falls off the edge),
//! learned from the simulator's push trials (`s2r_sim::consequences`).
//!
//! It reads the push in the cup's own terms, the same whichever way the
//! table is turned: how much table lies ahead of the cup along the push and
//! to either side of it, how far past the cup's centre the fingers go, how
//! far off its centre and how high up they meet it, and how fast; and how
//! the push lies to the arm (how far out the cup stands, so how the tool
//! leans, and across or along the arm the fingers move, so how wide they
//! meet it). A small
//! dense network (two hidden layers of 64) turns that into the three
//! outcomes' probabilities.
//!
//! From it follow the reasoning's answers for a cup: which way a push drops
//! it ([`assess`]), the side to approach it from (the one whose push keeps
//! it on the table most surely), and the keep-out region beside it (where
//! fingers would start a push that drops it).

use std::path::Path;

use candle_core::{Device, Module, Tensor, D};
use candle_nn::{linear, Linear, VarBuilder};
use rand::Rng;
use serde::{Deserialize, Serialize};

pub use crate::fit::{FitOptions, Trained};
use crate::ReasonError;

/// The outcomes, in the network's output order.
pub const OUTCOMES: [&str; 3] = ["stays", "tips", "falls"];
/// Index of "falls" in [`OUTCOMES`].
pub const FALLS: usize = 2;
/// Index of "tips" in [`OUTCOMES`].
pub const TIPS: usize = 1;
/// Metres of table ahead (or beside) it tells apart; more is "far".
const FAR: f32 = 0.6;
/// What the network reads per push (its input width).
pub const INPUTS: usize = 11;
const HIDDEN: usize = 64;

/// A table seen from above: centred on the map's origin, axis-aligned, with
/// the arm that works on it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Half its length (x) and width (y), metres.
    pub half: [f32; 2],
    /// The arm's base on it (x, y), metres: where its pushes come from.
    pub arm: [f32; 2],
    /// How far from its base the arm's fingers reach, low over the table, metres.
    pub reach: f32,
}

impl Table {
    /// The same table as if it went on for ever (its edges a kilometre away):
    /// what a reasoner blind to the edge sees.
    pub fn without_edges(self) -> Table {
        Table { half: [1e3, 1e3], ..self }
    }

    /// Metres from `from` to the table's edge along the unit direction `dir`
    /// (0 outside the table).
    pub fn ray(&self, from: [f32; 2], dir: [f32; 2]) -> f32 {
        let mut t = f32::INFINITY;
        for k in 0..2 {
            if dir[k].abs() > 1e-6 {
                let bound = if dir[k] > 0.0 { self.half[k] } else { -self.half[k] };
                t = t.min((bound - from[k]) / dir[k]);
            }
        }
        t.max(0.0)
    }

    /// The nearest edge of a point: metres to it and its name as a person
    /// facing +x from the arm's base says it ("far", "near", "left", "right").
    pub fn nearest_edge(&self, at: [f32; 2]) -> (f32, &'static str) {
        [(self.half[0] - at[0], "far"), (self.half[0] + at[0], "near"), (self.half[1] - at[1], "left"), (self.half[1] + at[1], "right")]
            .into_iter()
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .expect("four edges")
    }
}

/// A cup on the table, as known (from the simulator, or estimated).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cup {
    /// Its centre: x, y on the table top, map frame, metres.
    pub at: [f32; 2],
    /// Its radius and height, metres.
    pub size: [f32; 2],
}

/// A push of the arm's closed fingers through a cup.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Push {
    /// Heading in the map frame, radians counter-clockwise from +x.
    pub heading: f32,
    /// Sideways offset of the line from the cup's centre, metres (left positive).
    pub offset: f32,
    /// Height of the grasp point above the table top, metres.
    pub height: f32,
    /// m/s.
    pub speed: f32,
    /// Metres past the cup's centre the fingers go.
    pub travel: f32,
}

/// One record: a push trial of the simulator and what became of the cup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The table.
    pub table: Table,
    /// The cup before the push.
    pub cup: Cup,
    /// The push.
    pub push: Push,
    /// Index in [`OUTCOMES`].
    pub outcome: usize,
    /// The trial's seed (held-out sets are split by it).
    pub seed: u64,
}

/// The push as the network reads it.
pub fn features(table: &Table, cup: &Cup, push: &Push) -> [f32; INPUTS] {
    let d = [push.heading.cos(), push.heading.sin()];
    let ahead = table.ray(cup.at, d) - cup.size[0];
    let left = table.ray(cup.at, [-d[1], d[0]]) - cup.size[0];
    let right = table.ray(cup.at, [d[1], -d[0]]) - cup.size[0];
    let m = |x: f32| x.min(FAR) / 0.3;
    let out = [cup.at[0] - table.arm[0], cup.at[1] - table.arm[1]];
    let reach = (out[0] * out[0] + out[1] * out[1]).sqrt();
    let across = push.heading - out[1].atan2(out[0]);
    [
        m(ahead),
        m(left),
        m(right),
        push.travel / 0.3,
        (push.travel - ahead).clamp(-FAR, FAR) / 0.3,
        push.offset / cup.size[0].max(0.01),
        push.height / cup.size[1].max(0.01),
        push.speed / 0.5,
        across.cos(),
        across.sin(),
        reach / 0.6,
    ]
}

/// The network.
pub struct CupNet {
    pub(crate) l1: Linear,
    pub(crate) l2: Linear,
    pub(crate) out: Linear,
}

impl CupNet {
    /// Builds it over `vb`'s variables.
    pub fn new(vb: VarBuilder) -> candle_core::Result<CupNet> {
        Ok(CupNet {
            l1: linear(INPUTS, HIDDEN, vb.pp("l1"))?,
            l2: linear(HIDDEN, HIDDEN, vb.pp("l2"))?,
            out: linear(HIDDEN, OUTCOMES.len(), vb.pp("out"))?,
        })
    }

    /// The device its weights are on.
    pub fn device(&self) -> &Device {
        self.out.weight().device()
    }

    /// Pushes `[B, INPUTS]` → outcome logits `[B, 3]` in [`OUTCOMES`] order.
    pub fn logits(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.out.forward(&self.l2.forward(&self.l1.forward(x)?.relu()?)?.relu()?)
    }

    /// The outcomes' probabilities for each push, in [`OUTCOMES`] order.
    pub fn predict(&self, pushes: &[[f32; INPUTS]]) -> Result<Vec<[f32; 3]>, ReasonError> {
        if pushes.is_empty() {
            return Ok(Vec::new());
        }
        let flat: Vec<f32> = pushes.iter().flatten().copied().collect();
        let p = (|| {
            let x = Tensor::from_vec(flat, (pushes.len(), INPUTS), self.device())?;
            candle_nn::ops::softmax(&self.logits(&x)?, D::Minus1)?.to_vec2::<f32>()
        })()
        .map_err(crate::candle("predicting a push"))?;
        Ok(p.into_iter().map(|r| [r[0], r[1], r[2]]).collect())
    }
}

/// Trains the network on `records` (cross-entropy, batches drawn at random).
pub fn train(records: &[Record], opts: &FitOptions, progress: &mut dyn FnMut(usize, f32)) -> Result<Trained<CupNet>, ReasonError> {
    if records.len() < 16 || OUTCOMES.iter().enumerate().any(|(k, _)| !records.iter().any(|r| r.outcome == k)) {
        let counts: Vec<usize> = (0..OUTCOMES.len()).map(|k| records.iter().filter(|r| r.outcome == k).count()).collect();
        return Err(ReasonError::Records {
            what: "cup outcome",
            problem: format!("{} push trials (stays, tips, falls: {counts:?}); at least 16 with every outcome are needed", records.len()),
        });
    }
    let x: Vec<[f32; INPUTS]> = records.iter().map(|r| features(&r.table, &r.cup, &r.push)).collect();
    let step = |net: &CupNet, rng: &mut rand::rngs::StdRng| {
        let idx: Vec<usize> = (0..opts.batch).map(|_| rng.random_range(0..records.len())).collect();
        let flat: Vec<f32> = idx.iter().flat_map(|&i| x[i]).collect();
        let y: Vec<u32> = idx.iter().map(|&i| records[i].outcome as u32).collect();
        (|| {
            let xs = Tensor::from_vec(flat, (idx.len(), INPUTS), &opts.device)?;
            let ys = Tensor::from_vec(y, idx.len(), &opts.device)?;
            candle_nn::loss::cross_entropy(&net.logits(&xs)?, &ys)
        })()
        .map_err(crate::candle("the cup outcome loss"))
    };
    crate::fit::train("cup outcome", opts, CupNet::new, step, progress)
}

/// The metadata key of the weights file's record.
pub const META_KEY: &str = "sim2real.cup";

/// Writes the weights (safetensors, with `record` under [`META_KEY`]).
pub fn save(path: &Path, t: &Trained<CupNet>, record: &str) -> Result<(), ReasonError> {
    crate::fit::save(path, &t.varmap, META_KEY, record)
}

/// Reads a weights file.
pub fn load(path: &Path) -> Result<CupNet, ReasonError> {
    load_on(path, &Device::Cpu)
}

/// Reads a cup outcome predictor's weights onto `device`.
pub fn load_on(path: &Path, device: &Device) -> Result<CupNet, ReasonError> {
    crate::fit::load(path, (META_KEY, "a cup outcome predictor", "the cup outcome network"), device, CupNet::new)
}

/// The four sides a cup can be approached from, as a person facing +x from
/// the arm's base names them, with the heading a push from there moves in.
pub const SIDES: [(&str, f32); 4] = [
    ("the near side", 0.0),
    ("the far side", std::f32::consts::PI),
    ("the right", std::f32::consts::FRAC_PI_2),
    ("the left", -std::f32::consts::FRAC_PI_2),
];

/// The fastest path's sweep (through the cup's centre, low, at the arm's
/// free-space speed, 30 cm past it), heading along +x.
pub const SWEEP: Push = Push { heading: 0.0, offset: 0.0, height: 0.05, speed: 0.3, travel: 0.3 };

/// The push the reasoning weighs from every side: the [`SWEEP`] along
/// `heading`. A push outwards from the arm's base (within 60° of straight out)
/// ends where the arm's reach on `table` does; one across the arm goes on,
/// the base turning.
pub fn sweep(table: &Table, cup: &Cup, heading: f32) -> Push {
    let (d, o) = ([heading.cos(), heading.sin()], [cup.at[0] - table.arm[0], cup.at[1] - table.arm[1]]);
    let out = (o[0] * o[0] + o[1] * o[1]).sqrt().max(1e-6);
    let b = o[0] * d[0] + o[1] * d[1];
    let travel = if b / out > 0.5 {
        // The farthest t with |cup + t·d − arm| ≤ reach.
        let c = out * out - table.reach * table.reach;
        ((b * b - c).max(0.0).sqrt() - b).clamp(0.02, SWEEP.travel)
    } else {
        SWEEP.travel
    };
    Push { heading, travel, ..SWEEP }
}

/// What a push from each side would do to a cup.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    /// Per side of [`SIDES`]: the outcomes' probabilities of its [`sweep`].
    pub sides: [[f32; 3]; 4],
    /// The side to approach from: the least likely to drop it (then to tip it).
    pub best: usize,
    /// The side whose push most likely drops it.
    pub worst: usize,
}

/// Of pushes' outcome probabilities, the index of the one least likely to
/// drop the cup (a tip counting half as bad); None when there are none.
pub fn safest(pushes: &[[f32; 3]]) -> Option<usize> {
    let risk = |s: &[f32; 3]| s[FALLS] + 0.5 * s[TIPS];
    (0..pushes.len()).min_by(|&a, &b| risk(&pushes[a]).total_cmp(&risk(&pushes[b])))
}

/// Weighs a sweep from every side of `cup` on `table`.
pub fn assess(net: &CupNet, table: &Table, cup: &Cup) -> Result<Assessment, ReasonError> {
    let x: Vec<[f32; INPUTS]> = SIDES.iter().map(|(_, h)| features(table, cup, &sweep(table, cup, *h))).collect();
    let p = net.predict(&x)?;
    let sides = [p[0], p[1], p[2], p[3]];
    let best = safest(&sides).expect("four sides");
    let worst = (0..4).max_by(|&a, &b| sides[a][FALLS].total_cmp(&sides[b][FALLS])).expect("four sides");
    Ok(Assessment { sides, best, worst })
}

/// Where fingers must not come down beside a cup, on the table top (map
/// frame, counter-clockwise): the band a push that drops it starts from,
/// behind the cup as seen along the push's `heading`, as wide as the cup
/// and a finger either side.
pub fn keep_out(cup: &Cup, heading: f32) -> [[f32; 2]; 4] {
    let d = [heading.cos(), heading.sin()];
    let l = [-d[1], d[0]];
    let w = cup.size[0] + 0.04;
    let (near, far) = (-0.15f32, 0.0f32);
    let p = |a: f32, s: f32| [cup.at[0] + d[0] * a + l[0] * s, cup.at[1] + d[1] * a + l[1] * s];
    [p(near, -w), p(far, -w), p(far, w), p(near, w)]
}

pub use sim2real_msgs::safety::inside;

/// How well the predictor answers held-out push questions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Pushes scored.
    pub pushes: usize,
    /// Share whose outcome (stays, tips, falls) it names right.
    pub outcome_accuracy: f32,
    /// Share it answers "will it fall?" right.
    pub falls_accuracy: f32,
    /// Of the pushes that dropped the cup, the share it said would.
    pub falls_recall: f32,
}

/// Scores `net` on held-out `records`; with `ignore_edge` it reasons as if
/// the table had no edge (the baseline).
pub fn score(net: &CupNet, records: &[Record], ignore_edge: bool) -> Result<Scores, ReasonError> {
    let x: Vec<[f32; INPUTS]> = records
        .iter()
        .map(|r| if ignore_edge { features(&r.table.without_edges(), &r.cup, &r.push) } else { features(&r.table, &r.cup, &r.push) })
        .collect();
    let p = net.predict(&x)?;
    let argmax = |p: &[f32; 3]| (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).expect("three outcomes");
    let n = records.len().max(1) as f32;
    let right = records.iter().zip(&p).filter(|(r, p)| argmax(p) == r.outcome).count();
    let falls_right = records.iter().zip(&p).filter(|(r, p)| (argmax(p) == FALLS) == (r.outcome == FALLS)).count();
    let fell: Vec<&[f32; 3]> = records.iter().zip(&p).filter(|(r, _)| r.outcome == FALLS).map(|(_, p)| p).collect();
    Ok(Scores {
        pushes: records.len(),
        outcome_accuracy: right as f32 / n,
        falls_accuracy: falls_right as f32 / n,
        falls_recall: fell.iter().filter(|p| argmax(p) == FALLS).count() as f32 / fell.len().max(1) as f32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: Table = Table { half: [0.6, 0.4], arm: [-0.45, 0.0], reach: 2.0 };

    #[test]
    fn rays_and_edges_measure_the_table() {
        assert!((TABLE.ray([0.0, 0.3], [0.0, 1.0]) - 0.1).abs() < 1e-6);
        assert!((TABLE.ray([0.0, 0.3], [0.0, -1.0]) - 0.7).abs() < 1e-6);
        let diag = std::f32::consts::FRAC_1_SQRT_2;
        assert!((TABLE.ray([0.5, 0.0], [diag, diag]) - 0.1 / diag).abs() < 1e-5);
        assert_eq!(TABLE.nearest_edge([0.1, 0.33]).1, "left");
        assert!((TABLE.nearest_edge([0.1, 0.33]).0 - 0.07).abs() < 1e-6);
        assert_eq!(TABLE.nearest_edge([-0.55, 0.0]).1, "near");
    }

    #[test]
    fn the_keep_out_lies_behind_the_cup_along_the_push() {
        let cup = Cup { at: [0.1, 0.3], size: [0.04, 0.1] };
        // A push along +y drops it over the left edge: the band is on its −y side.
        let r = keep_out(&cup, std::f32::consts::FRAC_PI_2);
        assert!(inside(&r, [0.1, 0.22]));
        assert!(!inside(&r, [0.1, 0.38]), "not beyond the cup");
        assert!(!inside(&r, [0.25, 0.22]), "not beside it");
    }

    /// Records a push rule a table makes plain (falls when the fingers go
    /// past the edge ahead, tips when pushed high, else stays): the network
    /// learns it from 2,000 draws, and the baseline without the edge cannot.
    #[test]
    fn it_learns_when_a_push_takes_the_cup_over_the_edge() {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
        let mut draw = |seed: u64| {
            let cup = Cup { at: [rng.random_range(-0.5..0.5), rng.random_range(-0.35..0.35)], size: [0.04, 0.1] };
            let push = Push {
                heading: rng.random_range(0.0..std::f32::consts::TAU),
                offset: 0.0,
                height: rng.random_range(0.03..0.08),
                speed: 0.3,
                travel: rng.random_range(0.05..0.35),
            };
            let ahead = TABLE.ray(cup.at, [push.heading.cos(), push.heading.sin()]);
            let outcome = if push.travel > ahead {
                FALLS
            } else if push.height > 0.065 {
                TIPS
            } else {
                0
            };
            Record { table: TABLE, cup, push, outcome, seed }
        };
        let train_set: Vec<Record> = (0..2000).map(&mut draw).collect();
        let held: Vec<Record> = (2000..2400).map(&mut draw).collect();
        let t = train(&train_set, &FitOptions { steps: 1500, batch: 64, lr: 3e-3, seed: 0, ..Default::default() }, &mut |_, _| {}).unwrap();
        let s = score(&t.net, &held, false).unwrap();
        let base = score(&t.net, &held, true).unwrap();
        assert!(s.outcome_accuracy > 0.9 && s.falls_recall > 0.85, "{s:?}");
        assert!(base.falls_recall < 0.5, "{base:?}");
        // Its answer for a cup 5 cm from the left edge: approach from the left, not the right.
        let cup = Cup { at: [0.0, 0.35], size: [0.04, 0.1] };
        let a = assess(&t.net, &TABLE, &cup).unwrap();
        assert_eq!(SIDES[a.worst].0, "the right", "{a:?}");
        assert_ne!(SIDES[a.best].0, "the right", "{a:?}");
        assert!(a.sides[a.worst][FALLS] > 0.5 && a.sides[a.best][FALLS] < 0.5, "{a:?}");
    }
}
