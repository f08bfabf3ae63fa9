//! Consequences of actions, run in the simulator's own physics: the
//! (situation, action, outcome) records reason_node's predictors learn from
//! instead of hand-set constants.
//!
//! A braking trial puts the scenario's car alone on its road at a speed, on a
//! road of a given friction (the world's per-seed draw is what is recorded),
//! keeps that speed for a reaction time (the decision reaches the wheels a
//! control period later) and then asks for a stop, recording how far and how
//! long it takes and its speed along the way.

use sim2real_msgs::geometry_msgs::msg::{Twist, Vector3};

use crate::physics::STEPS_PER_SECOND;
use crate::render::RenderError;
use crate::rng::Rng;
use crate::scenario::{EgoSpec, Scenario};
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

#[cfg(test)]
mod tests {
    use super::*;

    fn icy() -> Scenario {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/scenarios/icy_night_crossing.yaml");
        Scenario::load(&path).unwrap()
    }

    #[test]
    fn a_car_stops_in_the_distance_physics_says() {
        let s = icy();
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
}
