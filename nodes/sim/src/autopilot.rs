//! The privileged experts driving the simulator's own robot from inside the
//! simulator process (sim_node's `driver:=expert`, `s2r generate` sweeps
//! with `driver: expert`, closed-loop evaluation's `expert`): the driving
//! expert ([`crate::expert`]) for a vehicle, the manipulation expert
//! ([`crate::arm_expert`]) for an arm, each deciding at the odometry (joint
//! states) rate. What they command is returned as the message a robot's
//! controller would have received, so that recordings carry it as the label.

use sim2real_msgs::geometry_msgs::msg::{Twist, Vector3};
use sim2real_msgs::sensor_msgs::msg::JointState;

use crate::arm_expert::{ArmExpert, ArmView};
use crate::expert::{self, DrivingView};
use crate::sim::{Sim, Tick, GRIPPER_JOINT, JOINT_NAMES};

/// A command as the robot's topics carry it.
#[derive(Debug, Clone, PartialEq)]
pub enum RobotCommand {
    /// /cmd_vel: linear.x the speed asked for, angular.z the yaw rate.
    Velocity(Twist),
    /// /joint_commands: joint1..joint6 targets (rad) and the gripper's opening (m).
    Joints(JointState),
}

/// A /cmd_vel from a speed (m/s) and a yaw rate (rad/s).
pub fn twist(speed: f64, yaw_rate: f64) -> Twist {
    Twist { linear: Vector3 { x: speed, ..Default::default() }, angular: Vector3 { z: yaw_rate, ..Default::default() } }
}

/// A /joint_commands of joint targets (rad) and a gripper opening (m),
/// named joint1..joint6, gripper.
pub fn joint_command(q: &[f32; 6], gripper: f32) -> JointState {
    JointState {
        name: JOINT_NAMES.iter().chain([&GRIPPER_JOINT]).map(|s| s.to_string()).collect(),
        position: q.iter().chain([&gripper]).map(|x| *x as f64).collect(),
        ..Default::default()
    }
}

/// The expert for a run's robot.
#[derive(Debug, Clone, Default)]
pub struct Autopilot {
    arm: Option<ArmExpert>,
    last: Option<RobotCommand>,
}

impl Autopilot {
    /// The expert for `sim`'s robot (a fresh plan for an arm).
    pub fn new(sim: &Sim) -> Autopilot {
        Autopilot { arm: sim.world.arm.as_ref().map(|_| ArmExpert::default()), last: None }
    }

    /// What the arm's expert is doing, in a word (None for a vehicle).
    pub fn phase(&self) -> Option<&'static str> {
        self.arm.as_ref().map(ArmExpert::phase)
    }

    /// What it commanded last.
    pub fn last(&self) -> Option<&RobotCommand> {
        self.last.as_ref()
    }

    /// Its decision at this instant: a new command at the odometry (joint
    /// states) instants and at the first call, None in between (the last
    /// one holds). None as well for an arm scenario without a task.
    pub fn decide(&mut self, sim: &Sim, tick: &Tick) -> Option<RobotCommand> {
        let due = self.last.is_none() || tick.odom.is_some() || tick.joint_states.is_some();
        if !due {
            return None;
        }
        let c = match &mut self.arm {
            Some(arm) => {
                let c = arm.act(&ArmView::of(sim)?);
                RobotCommand::Joints(joint_command(&c.q, c.gripper))
            }
            None => {
                let d = expert::drive(&DrivingView::of(sim)?);
                RobotCommand::Velocity(twist(d.speed as f64, d.yaw_rate as f64))
            }
        };
        self.last = Some(c.clone());
        Some(c)
    }

    /// [`Autopilot::decide`], then the command applied to the simulator
    /// (clamped to the robot's limits as its topics would be).
    pub fn drive(&mut self, sim: &mut Sim, tick: &Tick) -> Option<RobotCommand> {
        let c = self.decide(sim, tick)?;
        match &c {
            RobotCommand::Velocity(t) => {
                sim.command_velocity(t);
            }
            RobotCommand::Joints(j) => {
                // The expert's targets are within the limits by construction.
                let _ = sim.command_joints(j);
            }
        }
        Some(c)
    }
}
