//! Consequences of actions, run in the simulator's own physics: the
//! (situation, action, outcome) records reason_node's predictors learn from
//! instead of hand-set constants.
//!
//! A braking trial puts the scenario's car alone on its road at a speed, on a
//! road of a given friction (the world's per-seed draw is what is recorded),
//! keeps that speed for a reaction time (the decision reaches the wheels a
//! control period later) and then asks for a stop, recording how far and how
//! long it takes and its speed along the way.
//!
//! A push trial puts one cup on the arm scenario's table where the situation
//! says, brings the arm's closed fingers down beside it and drives them
//! through it in a straight line (from a side, at a height, speed and lateral
//! offset, some distance past the cup's centre), lifts them away and lets
//! the cup settle: it stays upright on the table, tips over on it, or falls
//! off the edge ([`CupOutcome`]).

use nalgebra::{Point3, Vector2};
use sim2real_msgs::geometry_msgs::msg::{Twist, Vector3};

use crate::arm_expert::{grasp_point, inverse, ArmView, ToolPose};
use crate::autopilot::joint_command;
use crate::physics::STEPS_PER_SECOND;
use crate::render::RenderError;
use crate::rng::Rng;
use crate::scenario::{ActorKind, EgoSpec, Pose2, Scenario, WorldSpec};
use crate::sim::{Sim, SimOptions};

/// Below this speed (m/s) the car counts as stopped.
const STOPPED: f32 = 0.05;
/// A trial that has not stopped after this many seconds ends there.
const MAX_SECONDS: f64 = 60.0;
/// Seconds between two samples of a trial's profile.
const PROFILE_PERIOD: f64 = 0.05;

/// What one braking trial measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BrakingTrial {
    /// Friction under the tyres (the world's draw for the seed).
    pub mu: f32,
    /// Speed when the stop was decided, m/s.
    pub speed: f32,
    /// Seconds between the decision and the stop command.
    pub reaction: f32,
    /// Metres travelled from the decision to standstill.
    pub distance: f32,
    /// Seconds from the decision to standstill.
    pub time: f32,
    /// (metres travelled, speed m/s) every 0.05 s from the decision on.
    pub profile: Vec<(f32, f32)>,
}

/// Why a trial could not run.
#[derive(Debug, thiserror::Error)]
pub enum TrialError {
    /// The scenario drives an arm.
    #[error("scenario {0}: braking trials need a vehicle ego")]
    NotAVehicle(String),
    /// The car never stopped within a minute (it left the road, or the friction is ~0).
    #[error("scenario {scenario} seed {seed}: the car did not stop within {MAX_SECONDS} s (from {speed} m/s at μ {mu})")]
    NoStop {
        /// The scenario.
        scenario: String,
        /// The seed.
        seed: u64,
        /// Its speed at the decision.
        speed: f32,
        /// The friction.
        mu: f32,
    },
    /// The scenario has no arm, or no cup on its table.
    #[error("scenario {0}: push trials need an arm scenario with a cup and a task")]
    NotAnArmWithACup(String),
    /// The arm cannot reach the push's line.
    #[error("seed {seed}: the arm cannot reach a push from {from:?} to {to:?}")]
    Unreachable {
        /// The seed.
        seed: u64,
        /// Where the push starts (grasp point, map frame).
        from: [f32; 3],
        /// Where it ends.
        to: [f32; 3],
    },
    /// The cup moved before the push began (the arm's way down touched it).
    #[error("seed {seed}: the cup moved {moved:.3} m before the push began")]
    Disturbed {
        /// The seed.
        seed: u64,
        /// Metres.
        moved: f32,
    },
    /// The simulator failed to start.
    #[error(transparent)]
    Sim(#[from] RenderError),
}

/// The situation of braking trial `seed`: road friction 0.08–0.9 (ice to
/// dry asphalt), speed 2–20 m/s, reaction 0.05–0.5 s, drawn from the seed
/// the same way on every machine.
pub fn braking_situation(seed: u64) -> (f64, f64, f64) {
    let mut r = Rng::new(seed).fork(0xB4A6E);
    let mu = 0.08 + 0.82 * r.unit();
    let speed = 2.0 + 18.0 * r.unit();
    let reaction = 0.05 + 0.45 * r.unit();
    (mu, speed, reaction)
}

/// Runs one braking trial of `scenario`'s car (on its route's start when it
/// has one, with every actor removed) at `speed` m/s on a road of friction
/// `mu` (before the seed's randomisation), deciding to stop at once and
/// commanding it `reaction` s later.
pub fn braking_trial(scenario: &Scenario, seed: u64, mu: f64, speed: f64, reaction: f64) -> Result<BrakingTrial, TrialError> {
    let mut s = scenario.on_route();
    let EgoSpec::Vehicle(v) = &mut s.ego else {
        return Err(TrialError::NotAVehicle(s.name.clone()));
    };
    v.speed = speed;
    v.max_speed = v.max_speed.max(speed);
    s.actors.clear();
    s.environment.friction.road = mu;
    s.environment.friction.sidewalk = mu;
    let mut sim = Sim::new(s, &SimOptions { seed, image_scale: 1.0, render: false })?;
    let ego = sim.world.ego.expect("a vehicle scenario has an ego");
    let mu_drawn = sim.world.friction.road as f32;
    let cmd = |x: f64| Twist { linear: Vector3 { x, y: 0.0, z: 0.0 }, angular: Vector3::default() };
    sim.command_velocity(&cmd(speed));
    let start = sim.base_pose().translation.vector;
    let t0 = sim.seconds();
    let every = ((PROFILE_PERIOD * STEPS_PER_SECOND as f64).round() as u64).max(1);
    let mut profile = Vec::new();
    let mut braking = false;
    let mut n = 0u64;
    loop {
        let t = sim.seconds() - t0;
        if !braking && t >= reaction {
            sim.command_velocity(&cmd(0.0));
            braking = true;
        }
        let travelled = (sim.base_pose().translation.vector - start).xy().norm();
        let (vel, _) = sim.physics.velocity(ego);
        let v_now = vel.xy().norm();
        if n.is_multiple_of(every) {
            profile.push((travelled, v_now));
        }
        if braking && v_now < STOPPED {
            return Ok(BrakingTrial {
                mu: mu_drawn,
                speed: speed as f32,
                reaction: reaction as f32,
                distance: travelled,
                time: t as f32,
                profile,
            });
        }
        if t > MAX_SECONDS {
            return Err(TrialError::NoStop { scenario: sim.scenario_info().scenario, seed, speed: speed as f32, mu: mu_drawn });
        }
        sim.tick()?;
        n += 1;
    }
}

/// What became of a pushed cup once it settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CupOutcome {
    /// Upright on the table (perhaps moved).
    Stays,
    /// Lying on the table.
    Tips,
    /// Off the table.
    Falls,
}

impl CupOutcome {
    /// Every outcome, in index order.
    pub const ALL: [CupOutcome; 3] = [CupOutcome::Stays, CupOutcome::Tips, CupOutcome::Falls];

    /// "stays", "tips" or "falls".
    pub fn name(self) -> &'static str {
        match self {
            CupOutcome::Stays => "stays",
            CupOutcome::Tips => "tips",
            CupOutcome::Falls => "falls",
        }
    }

    /// Its place in [`CupOutcome::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A push of a cup by the arm's closed fingers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Push {
    /// Where the cup stands: x, y on the table top, map frame, metres.
    pub cup: [f32; 2],
    /// The push's heading in the map frame, radians counter-clockwise from +x
    /// (a push "from the right" of the table, from −y, heads along +y, π/2).
    pub heading: f32,
    /// Sideways offset of the line from the cup's centre, metres (left of the heading positive).
    pub offset: f32,
    /// Height of the grasp point above the table top, metres (the fingertips are 2 cm lower).
    pub height: f32,
    /// Speed along the line, m/s.
    pub speed: f32,
    /// How far past the cup's centre the line goes, metres.
    pub travel: f32,
}

/// What one push trial measured.
#[derive(Debug, Clone, PartialEq)]
pub struct PushTrial {
    /// The push.
    pub push: Push,
    /// Where the cup stood when the push began (x, y, map frame).
    pub start: [f32; 2],
    /// The cup's radius and height, metres (the seed's size draw).
    pub size: [f32; 2],
    /// The table's half length and half width; it is centred on the map's origin.
    pub table_half: [f32; 2],
    /// The arm's base (x, y, map frame).
    pub arm: [f32; 2],
    /// How far from its base (m, horizontally) the fingers reach at the push's height.
    pub reach: f32,
    /// What became of it.
    pub outcome: CupOutcome,
    /// Where it came to rest (x, y, z, map frame).
    pub end: [f32; 3],
}

/// Seconds the cup gets to settle after the fingers left it.
const SETTLE_SECONDS: f64 = 1.0;
/// Speeds of the fingers' way to the push's start, m/s: in free space, and down.
const TO_START: f32 = 0.3;
const DOWN: f32 = 0.15;
/// How far behind the cup's centre the push starts, metres (radius, finger and a gap).
const RUN_UP: f32 = 0.10;
/// How high above the push's start the fingers come down from, metres.
const ABOVE: f32 = 0.15;

/// The push of trial `seed`: a cup where the arm can reach it (0.30–0.65 m
/// from its base, its centre at least 5 cm inside the table's edges), a heading
/// from any side, an offset within ±5 cm, fingers 3–8 cm above the table,
/// 0.1–0.5 m/s, 5–35 cm past the centre; drawn from the seed the same way on
/// every machine. `base` is the arm's base (x, y) and `table_half` the
/// table's half length and width.
pub fn push_situation(seed: u64, base: [f32; 2], table_half: [f32; 2]) -> Push {
    let mut r = Rng::new(seed).fork(0xC0F);
    let cup = loop {
        let a = -1.2 + 2.4 * r.unit() as f32;
        let d = 0.30 + 0.35 * r.unit() as f32;
        let c = [base[0] + d * a.cos(), base[1] + d * a.sin()];
        if c[0].abs() <= table_half[0] - 0.05 && c[1].abs() <= table_half[1] - 0.05 {
            break c;
        }
    };
    Push {
        cup,
        heading: std::f32::consts::TAU * r.unit() as f32,
        offset: -0.05 + 0.10 * r.unit() as f32,
        height: 0.03 + 0.05 * r.unit() as f32,
        speed: 0.1 + 0.4 * r.unit() as f32,
        travel: 0.05 + 0.30 * r.unit() as f32,
    }
}

/// How far from its base (horizontally, m) the arm reaches a point at
/// height `z` with its fingers pointing down or leaning out (up to 0.8 rad):
/// the far end of the first span of reachable distances out from the base
/// (an arm cannot fold onto its own base either), 0 where it reaches none.
pub fn reach(v: &ArmView, z: f32) -> f32 {
    let base = Point3::new(v.arm.base[0] as f32, v.arm.base[1] as f32, z);
    let ok = |r: f32| {
        [0.0f32, 0.2, 0.4, 0.6, 0.8]
            .iter()
            .any(|t| inverse(&v.arm, &ToolPose { point: base + nalgebra::Vector3::x() * r, tilt: *t }).is_some())
    };
    // The first reachable distance, in 1 cm steps out to 2 m.
    let Some(mut lo) = (5..=200).map(|cm| cm as f32 / 100.0).find(|r| ok(*r)) else {
        return 0.0;
    };
    // Out from there until the arm no longer reaches, then bisected.
    let mut hi = lo + 0.01;
    while ok(hi) && hi < 2.0 {
        lo = hi;
        hi += 0.01;
    }
    for _ in 0..20 {
        let mid = 0.5 * (lo + hi);
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The push of trial `seed` in `scenario` ([`push_situation`] for its arm and table).
pub fn scenario_push(scenario: &Scenario, seed: u64) -> Result<Push, TrialError> {
    match (&scenario.ego, &scenario.world) {
        (EgoSpec::Arm(arm), WorldSpec::Table(t)) => {
            Ok(push_situation(seed, [arm.base[0] as f32, arm.base[1] as f32], [t.size[0] as f32 / 2.0, t.size[1] as f32 / 2.0]))
        }
        _ => Err(TrialError::NotAnArmWithACup(scenario.name.clone())),
    }
}

/// Runs one push trial in `scenario` (an arm scenario with a cup): its
/// first cup alone on the table at `push.cup` (the seed draws its size),
/// the fingers closed, brought down beside it and driven through it as
/// `push` says (the line shortened to where the arm reaches; the trial's
/// `push.travel` is what ran), lifted straight up and the cup left a second
/// to settle.
pub fn push_trial(scenario: &Scenario, seed: u64, push: &Push) -> Result<PushTrial, TrialError> {
    let not_arm = || TrialError::NotAnArmWithACup(scenario.name.clone());
    let mut s = scenario.clone();
    if !matches!(s.ego, EgoSpec::Arm(_)) || s.task.is_none() {
        return Err(not_arm());
    }
    let mut cup = s.actors.iter().find(|a| a.kind == ActorKind::Cup).cloned().ok_or_else(not_arm)?;
    cup.count = 1;
    cup.start = Some(Pose2 { x: push.cup[0] as f64, y: push.cup[1] as f64, yaw_deg: 0.0 });
    s.actors = vec![cup];
    s.randomize.poses = 0.0;
    if let Some(t) = &mut s.task {
        t.pick = 0;
    }
    let mut sim = Sim::new(s, &SimOptions { seed, image_scale: 1.0, render: false })?;
    let v = ArmView::of(&sim).ok_or_else(not_arm)?;
    let c0 = v.cups.first().ok_or_else(not_arm)?.clone();
    let start_xy = c0.pose.translation.vector.xy();
    let top = v.table_top;
    let dir = Vector2::new(push.heading.cos(), push.heading.sin());
    let left = Vector2::new(-dir.y, dir.x);
    let at = |xy: Vector2<f32>, z: f32| Point3::new(xy.x, xy.y, z);
    let line = start_xy + left * push.offset;
    let from = at(line - dir * RUN_UP, top + push.height);
    let above = from + nalgebra::Vector3::z() * ABOVE;
    let reachable = |p: &Point3<f32>, tilt: f32| inverse(&v.arm, &ToolPose { point: *p, tilt }).is_some();
    // The line ends where it was asked to or, out of the arm's reach, where the
    // arm's reach ends (at least 2 cm past the centre); the trial records it.
    let mut plan = None;
    'travel: for travel in (2..=(push.travel * 100.0).round() as i32).rev().map(|cm| cm as f32 / 100.0) {
        let to = at(line + dir * travel, top + push.height);
        for tilt in [0.0f32, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8] {
            if !(reachable(&above, tilt) && reachable(&from, tilt) && reachable(&to, tilt)) {
                continue;
            }
            if let Some(lift) = [ABOVE, 0.10, 0.06].into_iter().find(|l| reachable(&(to + nalgebra::Vector3::z() * *l), tilt)) {
                plan = Some((travel, to, tilt, to + nalgebra::Vector3::z() * lift));
                break 'travel;
            }
        }
    }
    let far = at(line + dir * push.travel, top + push.height);
    let unreachable = || TrialError::Unreachable { seed, from: from.coords.into(), to: far.coords.into() };
    let (travel, to, tilt, lifted) = plan.ok_or_else(unreachable)?;
    let legs = [(grasp_point(&v.arm, &v.q), above, TO_START), (above, from, DOWN), (from, to, push.speed), (to, lifted, DOWN)];
    for (leg, (a, b, speed)) in legs.into_iter().enumerate() {
        if leg == 2 {
            let moved = (ArmView::of(&sim).ok_or_else(not_arm)?.cups[0].pose.translation.vector.xy() - start_xy).norm();
            if moved > 0.005 {
                return Err(TrialError::Disturbed { seed, moved });
            }
        }
        let t0 = sim.seconds();
        let length = (b - a).norm().max(1e-6);
        let duration = length / speed;
        loop {
            let t = (sim.seconds() - t0) as f32;
            let k = (t / duration).min(1.0);
            // The way to the start is a move of the joints (a straight line of
            // the fingers from wherever they are may leave the arm's reach);
            // from there on the fingers follow straight lines.
            let q = if leg == 0 {
                let goal = inverse(&v.arm, &ToolPose { point: b, tilt }).ok_or_else(unreachable)?;
                std::array::from_fn(|j| v.q[j] + (goal[j] - v.q[j]) * k)
            } else {
                inverse(&v.arm, &ToolPose { point: a + (b - a) * k, tilt }).ok_or_else(unreachable)?
            };
            sim.command_joints(&joint_command(&q, 0.0)).map_err(|_| not_arm())?;
            sim.tick()?;
            let now = ArmView::of(&sim).ok_or_else(not_arm)?;
            if t >= duration && ((grasp_point(&now.arm, &now.q) - b).norm() < 0.01 || t > duration + 0.5) {
                break;
            }
        }
    }
    let t0 = sim.seconds();
    while sim.seconds() - t0 < SETTLE_SECONDS {
        sim.tick()?;
    }
    let end = ArmView::of(&sim).ok_or_else(not_arm)?;
    let c = &end.cups[0];
    let z = c.pose.translation.z;
    let up = (c.pose.rotation * nalgebra::Vector3::z()).z;
    let outcome = if z < top - 0.05 {
        CupOutcome::Falls
    } else if up < 0.5 {
        CupOutcome::Tips
    } else {
        CupOutcome::Stays
    };
    Ok(PushTrial {
        push: Push { travel, ..*push },
        start: start_xy.into(),
        size: [c0.half.x, 2.0 * c0.half.z],
        table_half: v.table_half,
        arm: [v.arm.base[0] as f32, v.arm.base[1] as f32],
        reach: reach(&v, top + push.height),
        outcome,
        end: c.pose.translation.vector.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shipped scenario by name.
    fn scenario(name: &str) -> Scenario {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../config/scenarios/{name}.yaml"));
        Scenario::load(&path).unwrap()
    }

    #[test]
    fn a_car_stops_in_the_distance_physics_says() {
        let s = scenario("icy_night_crossing");
        // Dry asphalt from 14 m/s after 0.1 s: 1.4 m + v²/(2μg) ≈ 12.5 m at μ 0.8.
        let dry = braking_trial(&s, 1, 0.8, 14.0, 0.1).unwrap();
        let formula = 14.0 * 0.1 + 14.0f32.powi(2) / (2.0 * dry.mu * 9.81);
        assert!((dry.distance - formula).abs() < 0.06 * formula, "{} m vs {formula} m", dry.distance);
        // Ice: the same car needs several times as far.
        let ice = braking_trial(&s, 1, 0.1, 14.0, 0.1).unwrap();
        assert!(ice.distance > 5.0 * dry.distance, "ice {} m, dry {} m", ice.distance, dry.distance);
        assert!(ice.time > dry.time);
        // The profile starts at the decision's speed and ends near standstill, travelling forward.
        assert!((ice.profile[0].1 - 14.0).abs() < 0.2);
        assert!(ice.profile.windows(2).all(|w| w[1].0 >= w[0].0));
        assert!(ice.profile.last().unwrap().1 < 0.5);
    }

    #[test]
    fn the_arm_reaches_out_to_where_its_links_end_and_no_further() {
        let s = scenario("cup_near_edge");
        let sim = Sim::new(s, &SimOptions { seed: 1, image_scale: 1.0, render: false }).unwrap();
        let v = ArmView::of(&sim).unwrap();
        let z = v.table_top + 0.05;
        let r = reach(&v, z);
        let links: f32 = v.arm.links[1..].iter().map(|l| *l as f32).sum::<f32>() + crate::arm_expert::TOOL_DEPTH;
        assert!(r > 0.5 && r < links, "reach {r} of links {links}");
        // Just inside it a pose exists, just beyond none (an arm cannot fold onto its base either).
        let at = |d: f32| Point3::new(v.arm.base[0] as f32 + d, v.arm.base[1] as f32, z);
        let any = |d: f32| [0.0f32, 0.2, 0.4, 0.6, 0.8].iter().any(|t| inverse(&v.arm, &ToolPose { point: at(d), tilt: *t }).is_some());
        assert!(any(r - 0.01) && !any(r + 0.01), "{r}");
    }

    #[test]
    fn a_cup_pushed_towards_the_near_edge_falls_and_pushed_away_stays() {
        let s = scenario("cup_near_edge");
        // 6 cm from the +y edge (at 0.4 m), 55 cm from the base.
        let towards = Push { cup: [0.05, 0.34], heading: std::f32::consts::FRAC_PI_2, offset: 0.0, height: 0.04, speed: 0.3, travel: 0.25 };
        let t = push_trial(&s, 1, &towards).unwrap();
        assert_eq!(t.outcome, CupOutcome::Falls, "{t:?}");
        let away = Push { heading: -std::f32::consts::FRAC_PI_2, ..towards };
        let t = push_trial(&s, 1, &away).unwrap();
        assert_ne!(t.outcome, CupOutcome::Falls, "{t:?}");
        assert!(t.end[1] < 0.30, "pushed 25 cm along −y, it moved: {t:?}");
        // The arm reaches out beyond the farthest cup a trial draws (65 cm), not to the far edge (1.05 m).
        assert!(t.reach > 0.7 && t.reach < 1.0, "{t:?}");
        // The draw keeps the cup on the table and within the arm's reach.
        for seed in 0..50 {
            let p = push_situation(seed, [-0.45, 0.0], [0.6, 0.4]);
            assert!(p.cup[0].abs() <= 0.55 && p.cup[1].abs() <= 0.35, "{p:?}");
        }
    }
}
