//! Who drives: the scenario's own script, the privileged expert, or
//! anything else behind [`Driver`] (a learned policy, a node over DDS).

use s2r_policy::model::Robot;
use s2r_sim::autopilot::Autopilot;
use s2r_sim::sim::{Sim, Tick};

use crate::ClosedLoopError;

pub use s2r_sim::autopilot::{joint_command, twist, RobotCommand as Command};

/// A policy's failure as the evaluation's error.
fn policy_err(e: s2r_policy::PolicyError) -> ClosedLoopError {
    ClosedLoopError::Driver { driver: "policy".into(), message: e.to_string() }
}

/// Drives the ego of an episode. Called after every simulator step with what
/// the step produced; a driver answers at its own rate (None keeps the last
/// command, as a robot's controller holds it).
pub trait Driver {
    /// For reports: "scripted", "expert", "policy".
    fn name(&self) -> &str;
    /// Whether it looks through the cameras (the episode renders them then).
    fn needs_cameras(&self) -> bool {
        false
    }
    /// The camera resolution factor it must see a `camera_width`×`camera_height`
    /// camera at, where it has one (a policy: what its input needs); the
    /// episode's own otherwise.
    fn image_scale(&self, _camera_width: u32, _camera_height: u32) -> Option<f64> {
        None
    }
    /// A new episode begins (forget the last one's state).
    fn reset(&mut self, _sim: &Sim) {}
    /// The command for this instant, if any.
    fn act(&mut self, sim: &Sim, tick: &Tick) -> Result<Option<Command>, ClosedLoopError>;
    /// What a teacher would have commanded at this instant, where that is
    /// not what was executed (DAgger): recordings keep it as the label.
    fn label(&self) -> Option<Command> {
        None
    }
    /// What its safety filter did this episode, where it has one.
    fn filter_log(&self) -> Option<crate::reason::FilterLog> {
        None
    }
}

/// The scenario's own behaviour: the vehicle holds its start speed straight
/// ahead, the arm follows its scripted trajectory. Commands nothing.
#[derive(Debug, Default)]
pub struct Scripted;

impl Driver for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    fn act(&mut self, _sim: &Sim, _tick: &Tick) -> Result<Option<Command>, ClosedLoopError> {
        Ok(None)
    }
}

/// The privileged experts ([`s2r_sim::autopilot`]): the driving expert
/// for a vehicle, the manipulation expert for an arm, each deciding at the
/// odometry (joint states) rate, 50 Hz in the shipped scenarios.
#[derive(Debug, Default)]
pub struct Expert {
    autopilot: Autopilot,
}

impl Driver for Expert {
    fn name(&self) -> &str {
        "expert"
    }

    fn reset(&mut self, sim: &Sim) {
        self.autopilot = Autopilot::new(sim);
    }

    fn act(&mut self, sim: &Sim, tick: &Tick) -> Result<Option<Command>, ClosedLoopError> {
        if sim.world.arm.is_some() && sim.scenario.task.is_none() {
            return Err(ClosedLoopError::Scenario(format!("{} has an arm but no task", sim.scenario.name)));
        }
        Ok(self.autopilot.decide(sim, tick))
    }
}

/// A learned policy ([`s2r_policy::pilot::Pilot`]) driving from the camera
/// it was trained on and the robot's state (odometry, or joint states and
/// the gripper's grasp), as policy_node does on a robot: a command per
/// camera frame.
pub struct Policy {
    pilot: s2r_policy::pilot::Pilot,
    /// The robot's state from the last odometry or joint states.
    state: Vec<f32>,
}

impl Policy {
    /// Loads a checkpoint (from `s2r train policy`).
    pub fn load(path: &std::path::Path) -> Result<Policy, ClosedLoopError> {
        let pilot = s2r_policy::pilot::Pilot::load(path).map_err(policy_err)?;
        let state = vec![0.0; pilot.config().robot.state_scale().len()];
        Ok(Policy { pilot, state })
    }
}

impl Driver for Policy {
    fn name(&self) -> &str {
        "policy"
    }

    fn needs_cameras(&self) -> bool {
        true
    }

    fn image_scale(&self, camera_width: u32, camera_height: u32) -> Option<f64> {
        Some(self.pilot.config().image_scale(camera_width, camera_height))
    }

    fn reset(&mut self, _sim: &Sim) {
        self.pilot.reset();
        self.state.iter_mut().for_each(|x| *x = 0.0);
    }

    fn act(&mut self, sim: &Sim, tick: &Tick) -> Result<Option<Command>, ClosedLoopError> {
        let robot = self.pilot.config().robot;
        let wrong_robot = |has: &str| ClosedLoopError::Driver {
            driver: "policy".into(),
            message: format!("it drives {robot:?}; {} has {has}", sim.scenario.name),
        };
        match robot {
            Robot::Vehicle if sim.world.arm.is_some() => return Err(wrong_robot("an arm")),
            Robot::Arm if sim.world.arm.is_none() => return Err(wrong_robot("a vehicle")),
            _ => {}
        }
        if let Some(o) = &tick.odom {
            self.state = vec![o.twist.twist.linear.x as f32, o.twist.twist.angular.z as f32];
        }
        if let Some(q) = tick.joint_states.as_ref().and_then(s2r_policy::data::arm_joints) {
            self.state[..7].copy_from_slice(&q);
        }
        if let Some(g) = &tick.grasped {
            self.state[7] = if g.data { 1.0 } else { 0.0 };
        }
        let camera = &self.pilot.config().camera;
        let Some(frame) = tick.cameras.iter().find(|c| &c.name == camera) else {
            if !tick.cameras.is_empty() {
                return Err(ClosedLoopError::Driver {
                    driver: "policy".into(),
                    message: format!("it looks through camera '{camera}', which {} does not have", sim.scenario.name),
                });
            }
            return Ok(None);
        };
        let topic = format!("/sim/{camera}/image_raw");
        let c = self.pilot.act(sim.seconds(), &frame.image, &topic, &self.state).map_err(policy_err)?;
        Ok(Some(match robot {
            Robot::Vehicle => Command::Velocity(twist(c[0] as f64, c[1] as f64)),
            Robot::Arm => Command::Joints(joint_command(&[c[0], c[1], c[2], c[3], c[4], c[5]], c[6])),
        }))
    }
}

/// DAgger's driver: the policy drives, the expert labels every state the
/// policy visits with what it would have done (recorded as /cmd_vel), so the
/// next round of training sees the policy's own mistakes and their fixes.
pub struct Dagger {
    policy: Policy,
    expert: Expert,
}

impl Dagger {
    /// The policy from a checkpoint, labelled by the privileged expert.
    pub fn load(path: &std::path::Path) -> Result<Dagger, ClosedLoopError> {
        Ok(Dagger { policy: Policy::load(path)?, expert: Expert::default() })
    }
}

impl Driver for Dagger {
    fn name(&self) -> &str {
        "dagger"
    }

    fn needs_cameras(&self) -> bool {
        true
    }

    fn image_scale(&self, camera_width: u32, camera_height: u32) -> Option<f64> {
        self.policy.image_scale(camera_width, camera_height)
    }

    fn reset(&mut self, sim: &Sim) {
        self.policy.reset(sim);
        self.expert.reset(sim);
    }

    fn act(&mut self, sim: &Sim, tick: &Tick) -> Result<Option<Command>, ClosedLoopError> {
        self.expert.act(sim, tick)?;
        self.policy.act(sim, tick)
    }

    fn label(&self) -> Option<Command> {
        self.expert.autopilot.last().cloned()
    }
}

/// Another driver's commands with pulses of others in between: every 1.5–4 s
/// of sim time, for 0.6–1.5 s, a vehicle's speed asked for drops (braking,
/// to a stop at most), rises by up to 4 m/s, or the car steers at up to
/// ±0.35 rad/s (alone or while braking); the driver takes over again after
/// each. Drawn from the episode's seed: the same episode, the same pulses.
/// Recordings keep the commands executed: data for a world model to learn
/// what commands do, not demonstrations for a policy to imitate. An arm's
/// commands pass unchanged.
pub struct Perturbed {
    inner: Box<dyn Driver>,
    rng: u64,
    next: f64,
    until: f64,
    /// (factor on the speed asked for, m/s added, rad/s of yaw rate added).
    pulse: (f64, f64, f64),
}

impl Perturbed {
    /// `inner` with pulses.
    pub fn new(inner: Box<dyn Driver>) -> Perturbed {
        Perturbed { inner, rng: 0, next: 0.0, until: 0.0, pulse: (1.0, 0.0, 0.0) }
    }

    /// A uniform draw in [lo, hi) (splitmix64).
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        lo + (hi - lo) * (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A new episode of `seed`: the first pulse 1–3 s in.
    fn start(&mut self, seed: u64) {
        self.rng = seed ^ 0x5045_5254_5552_4221;
        let first = self.uniform(1.0, 3.0);
        (self.next, self.until) = (first, 0.0);
    }

    /// The command at sim time `now` (s): the driver's, or within a pulse the pulse's.
    fn adjust(&mut self, now: f64, command: Option<Command>) -> Option<Command> {
        if now >= self.next {
            self.draw(now);
        }
        match command {
            Some(Command::Velocity(mut t)) if now < self.until => {
                let (factor, add, yaw) = self.pulse;
                t.linear.x = (t.linear.x * factor + add).max(0.0);
                t.angular.z += yaw;
                Some(Command::Velocity(t))
            }
            other => other,
        }
    }

    fn draw(&mut self, now: f64) {
        let yaw = self.uniform(0.15, 0.35) * if self.uniform(0.0, 1.0) < 0.5 { -1.0 } else { 1.0 };
        self.pulse = match (self.uniform(0.0, 5.0)) as usize {
            0 => (self.uniform(0.0, 0.4), 0.0, 0.0),
            1 => (1.0, self.uniform(1.5, 4.0), 0.0),
            2 | 3 => (1.0, 0.0, yaw),
            _ => (self.uniform(0.2, 0.6), 0.0, yaw),
        };
        self.until = now + self.uniform(0.6, 1.5);
        self.next = self.until + self.uniform(1.5, 4.0);
    }
}

impl Driver for Perturbed {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn needs_cameras(&self) -> bool {
        self.inner.needs_cameras()
    }

    fn image_scale(&self, camera_width: u32, camera_height: u32) -> Option<f64> {
        self.inner.image_scale(camera_width, camera_height)
    }

    fn reset(&mut self, sim: &Sim) {
        self.inner.reset(sim);
        self.start(sim.world.seed);
    }

    fn act(&mut self, sim: &Sim, tick: &Tick) -> Result<Option<Command>, ClosedLoopError> {
        let command = self.inner.act(sim, tick)?;
        Ok(self.adjust(s2r_runtime::stamp_ns(&tick.time) as f64 * 1e-9, command))
    }

    fn label(&self) -> Option<Command> {
        None
    }

    fn filter_log(&self) -> Option<crate::reason::FilterLog> {
        self.inner.filter_log()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The commands of 20 s at 50 Hz, the driver's always 10 m/s straight ahead.
    fn drive(seed: u64) -> Vec<(f64, f64)> {
        let mut p = Perturbed::new(Box::new(Scripted));
        p.start(seed);
        (0..1000)
            .map(|i| match p.adjust(i as f64 * 0.02, Some(Command::Velocity(twist(10.0, 0.0)))) {
                Some(Command::Velocity(t)) => (t.linear.x, t.angular.z),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn pulses_come_from_the_seed_and_the_driver_drives_between_them() {
        let a = drive(7);
        assert_eq!(a, drive(7), "the same seed, the same pulses");
        assert_ne!(a, drive(8));
        let pulsed = a.iter().filter(|c| **c != (10.0, 0.0)).count();
        // Pulses of 0.6–1.5 s every 2.1–5.5 s: between a tenth and three quarters of the time.
        assert!((100..750).contains(&pulsed), "{pulsed} of 1000 commands pulsed");
        assert!(a.iter().any(|c| c.1 != 0.0) && a.iter().any(|c| c.0 < 10.0), "steering and braking both come");
        assert!(a.iter().all(|c| c.0 >= 0.0 && c.1.abs() <= 0.35));
        let mut p = Perturbed::new(Box::new(Scripted));
        p.start(7);
        let joints = Command::Joints(joint_command(&[0.1; 6], 0.02));
        for i in 0..500 {
            assert!(matches!(p.adjust(i as f64 * 0.02, Some(joints.clone())), Some(Command::Joints(_))), "an arm's pass");
        }
    }
}
