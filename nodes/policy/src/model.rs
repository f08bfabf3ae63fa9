//! The network: the camera frame cut into patches stage by stage (2×2
//! space-to-depth, then a per-position linear layer and ReLU, four times:
//! each feature sees a 16×16 patch), the robot's state joined in (a
//! vehicle's speed and yaw rate; an arm's joint angles, gripper opening and
//! whether it holds something), and an MLP over the whole feature map that
//! predicts the next `chunk` commands (a vehicle's speed and yaw rate; an
//! arm's joint targets and gripper opening).
//!
//! The stages are [`s2r_train::PatchStages`]: every layer a matrix product
//! on a reshaped tensor, which candle trains fast on a CPU.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{linear, Linear, VarBuilder};
use s2r_train::PatchStages;
use serde::{Deserialize, Serialize};

/// Metres per second per unit of the network's speed outputs and inputs.
pub const SPEED_SCALE: f32 = 10.0;
/// Radians per second per unit of its yaw-rate outputs and inputs.
pub const YAW_SCALE: f32 = 0.5;
/// Metres per unit of an arm's gripper opening.
pub const GRIPPER_SCALE: f32 = 0.1;
/// Radians per unit of an arm's joint command relative to its joint angle.
pub const JOINT_STEP: f32 = 0.25;

/// What the policy drives: its state in, its commands out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Robot {
    /// A car: odometry's speed and yaw rate in, /cmd_vel out.
    #[default]
    Vehicle,
    /// A 6-joint arm with a parallel gripper: /joint_states (joint1..joint6,
    /// gripper) and /gripper/grasped in, /joint_commands out.
    Arm,
}

impl Robot {
    /// The demonstration manifests' `action` of this robot.
    pub fn action(self) -> &'static str {
        match self {
            Robot::Vehicle => "/cmd_vel geometry_msgs/msg/Twist",
            Robot::Arm => "/joint_commands sensor_msgs/msg/JointState",
        }
    }

    /// The robot a manifest's `action` belongs to.
    pub fn of_action(action: &str) -> Option<Robot> {
        [Robot::Vehicle, Robot::Arm].into_iter().find(|r| r.action() == action)
    }

    /// Units per network unit of each state entry (vehicle: speed, yaw rate;
    /// arm: six joint angles, gripper opening, grasped 0/1).
    pub fn state_scale(self) -> &'static [f32] {
        match self {
            Robot::Vehicle => &[SPEED_SCALE, YAW_SCALE],
            Robot::Arm => &[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, GRIPPER_SCALE, 1.0],
        }
    }

    /// Units per network unit of each command entry (vehicle: speed, yaw
    /// rate; arm: six joint targets in radians *relative to the joint
    /// angles at the frame* — the network predicts motion, not where the arm
    /// already is, whose copy error would drown the motion —, then the
    /// gripper's opening in metres).
    pub fn action_scale(self) -> &'static [f32] {
        match self {
            Robot::Vehicle => &[SPEED_SCALE, YAW_SCALE],
            Robot::Arm => &[JOINT_STEP, JOINT_STEP, JOINT_STEP, JOINT_STEP, JOINT_STEP, JOINT_STEP, GRIPPER_SCALE],
        }
    }
}

/// The network's shape and what it reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Input width, pixels (a multiple of 16; frames of any size are resized to it).
    pub width: usize,
    /// Input height (a multiple of 16).
    pub height: usize,
    /// The camera it looks through (`<camera>/image_raw`).
    pub camera: String,
    /// Commands predicted per frame, one per camera period.
    pub chunk: usize,
    /// Seconds between two commands of a chunk (the camera period it was trained at).
    pub period: f32,
    /// Channels after each of the four patch stages.
    pub channels: [usize; 4],
    /// Width of the hidden layer.
    pub hidden: usize,
    /// What it drives (checkpoints from before arms drove vehicles).
    #[serde(default)]
    pub robot: Robot,
    /// The band of the camera frame it reads, as fractions of the frame's
    /// height from the top: `[0.25, 0.75]` keeps the middle half around the
    /// horizon and spends the input's pixels there (cropped, then resized).
    #[serde(default = "whole_frame")]
    pub rows: [f32; 2],
    /// Seconds before each frame of a second, earlier frame of the same
    /// camera it reads beside it (what moves, and how fast it closes in);
    /// None: the one frame.
    #[serde(default)]
    pub past: Option<f32>,
}

fn whole_frame() -> [f32; 2] {
    [0.0, 1.0]
}

impl Config {
    /// The default: 128×96 input, chunks of 10 commands 0.1 s apart.
    pub fn small(camera: &str, robot: Robot) -> Config {
        Config {
            width: 128,
            height: 96,
            camera: camera.into(),
            chunk: 10,
            period: 0.1,
            channels: [24, 48, 64, 64],
            hidden: 256,
            robot,
            rows: whole_frame(),
            past: None,
        }
    }

    /// Frames it reads per step: the current one, and an earlier one with [`Config::past`].
    pub fn frames(&self) -> usize {
        1 + usize::from(self.past.is_some())
    }

    /// Input channels: RGB of each frame it reads, the current one first.
    pub fn channels_in(&self) -> usize {
        3 * self.frames()
    }

    /// Checks what a user may set: the input a multiple of 16 each way, the
    /// band of rows inside the frame and not empty.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.width == 0 || self.height == 0 || !self.width.is_multiple_of(16) || !self.height.is_multiple_of(16) {
            return Err(format!("the input {}x{} is not a multiple of 16 each way", self.width, self.height));
        }
        let [top, bottom] = self.rows;
        if !(0.0..1.0).contains(&top) || !(top..=1.0).contains(&bottom) || bottom - top < 0.05 {
            return Err(format!("rows {top}..{bottom}: expected 0 <= top < bottom <= 1 (fractions of the frame's height)"));
        }
        if let Some(p) = self.past.filter(|p| !(p.is_finite() && *p > 0.0 && *p <= 2.0)) {
            return Err(format!("a past frame {p} s before: expected more than 0 and at most 2 s"));
        }
        Ok(())
    }

    /// What a simulated `camera_width`×`camera_height` camera should be
    /// rendered at for this policy: the smallest of the resolution factors
    /// 1/4, 1/2 and 1 (those `s2r demos --image-scale` records at) at which
    /// its band of rows is at least the input's size, else 1.
    pub fn image_scale(&self, camera_width: u32, camera_height: u32) -> f64 {
        let band = f64::from(self.rows[1] - self.rows[0]);
        let fits = |k: f64| {
            f64::from(camera_width) * k >= self.width as f64 - 0.5 && f64::from(camera_height) * k * band >= self.height as f64 - 0.5
        };
        [0.25, 0.5].into_iter().find(|&k| fits(k)).unwrap_or(1.0)
    }
}

/// The policy network.
pub struct Net {
    /// Its config.
    pub config: Config,
    pub(crate) stages: PatchStages,
    pub(crate) squeeze: Linear,
    pub(crate) fc1: Linear,
    pub(crate) fc2: Linear,
}

impl Net {
    /// The network with weights from `vb` (fresh or loaded).
    pub fn new(config: Config, vb: VarBuilder) -> Result<Net> {
        if let Err(problem) = config.check() {
            candle_core::bail!("{problem}");
        }
        let stages = PatchStages::new(config.channels_in(), &config.channels, &vb)?;
        let squeeze = linear(config.channels[3], 16, vb.pp("squeeze"))?;
        let cells = (config.width / 16) * (config.height / 16);
        let fc1 = linear(16 * cells + config.robot.state_scale().len(), config.hidden, vb.pp("fc1"))?;
        let fc2 = linear(config.hidden, config.robot.action_scale().len() * config.chunk, vb.pp("fc2"))?;
        Ok(Net { config, stages, squeeze, fc1, fc2 })
    }

    /// Images `[B, H, W, C]` (0 to 1, channels last: [`Config::channels_in`]) and states `[B, S]`
    /// (each entry over its [`Robot::state_scale`]) → commands `[B, chunk, A]`
    /// (each over its [`Robot::action_scale`]).
    pub fn forward(&self, images: &Tensor, state: &Tensor) -> Result<Tensor> {
        let x = self.stages.forward(&(images - 0.5)?)?;
        let x = self.squeeze.forward(&x)?.relu()?.flatten_from(1)?;
        let x = Tensor::cat(&[&x, state], D::Minus1)?;
        let x = self.fc1.forward(&x)?.relu()?;
        let b = x.dim(0)?;
        self.fc2.forward(&x)?.reshape((b, self.config.chunk, self.config.robot.action_scale().len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_from_before_rows_read_the_whole_frame() {
        let mut old = serde_json::to_value(Config::small("front", Robot::Vehicle)).unwrap();
        old.as_object_mut().unwrap().remove("rows");
        let c: Config = serde_json::from_value(old).unwrap();
        assert_eq!(c.rows, [0.0, 1.0]);
        assert_eq!(c, Config::small("front", Robot::Vehicle));
    }

    #[test]
    fn the_render_scale_is_the_least_that_feeds_the_input() {
        let mut c = Config::small("front", Robot::Vehicle);
        // 128x96 from a 640x480 camera: a quarter (160x120) suffices.
        assert_eq!(c.image_scale(640, 480), 0.25);
        // 256x96 from the middle half of the rows: 320x120 at a half.
        (c.width, c.height, c.rows) = (256, 96, [0.25, 0.75]);
        assert_eq!(c.image_scale(640, 480), 0.5);
        // More than the camera has: its full resolution.
        c.width = 1024;
        assert_eq!(c.image_scale(640, 480), 1.0);
    }

    #[test]
    fn bad_inputs_and_bands_are_refused() {
        let mut c = Config::small("front", Robot::Vehicle);
        assert!(c.check().is_ok());
        c.width = 100;
        assert!(c.check().unwrap_err().contains("multiple of 16"));
        c.width = 128;
        for rows in [[0.5, 0.5], [0.6, 0.4], [-0.1, 0.5], [0.2, 1.2]] {
            c.rows = rows;
            assert!(c.check().unwrap_err().contains("rows"), "{rows:?} accepted");
        }
    }
}
