//! One simulation run as ROS 2 messages: `Sim::tick` advances the physics by
//! one step and returns what is due at the new instant (clock, odometry, IMU,
//! TF, joint states, and at the camera rate every camera's images, camera
//! info and labels, all with the same stamp). It touches no network: the node
//! publishes what it returns, tests and benchmarks look at it directly.
//!
//! Frames (REP-105): `map` → `odom` (identity, static: odometry here is
//! perfect) → `base_link` (the vehicle's centre on the ground, or the arm's
//! base) → `<camera>_link` (x forward) → `<camera>_optical_frame` (z forward,
//! x right, y down), static. Time is sim time from 0, advanced in steps of
//! `physics::DT`, so a run is a function of the scenario and the seed alone.

use std::time::{Duration, Instant};

use nalgebra::{Isometry3, Quaternion, Translation3, UnitQuaternion, Vector3};
use sim2real_msgs::builtin_interfaces::msg::Time;
use sim2real_msgs::geometry_msgs::msg::{
    Point, Pose, PoseWithCovariance, Quaternion as QuatMsg, Transform, TransformStamped, Twist, TwistWithCovariance, Vector3 as Vec3Msg,
};
use sim2real_msgs::nav_msgs::msg::Odometry;
use sim2real_msgs::rosgraph_msgs::msg::Clock;
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image, Imu, JointState};
use sim2real_msgs::sim2real_msgs::msg::{ActorInfo, CollisionEvent, ScenarioInfo};
use sim2real_msgs::std_msgs::msg::{Bool, Header};
use sim2real_msgs::tf2_msgs::msg::TFMessage;
use sim2real_msgs::vision_msgs::msg::{
    BoundingBox2D, BoundingBox3D, Detection2D, Detection2DArray, Detection3D, Detection3DArray, ObjectHypothesis, ObjectHypothesisWithPose,
    Point2D, Pose2D,
};

use crate::figures::{self, Gait};
use crate::labels::{mask_boxes, silhouette_area};
use crate::physics::{Physics, GRAVITY, MAX_REVERSE, STEPS_PER_SECOND};
use crate::render::{instances, scene_uniform, CameraModel, Features, Images, RenderError, Renderer};
use crate::scenario::Scenario;
use crate::world::{class, World, GRIPPER_MAX_OPENING};

/// How far (m) from the ego an object still appears in Detection3DArray.
const DETECTION_RANGE: f32 = 150.0;

/// How to run a scenario; `Default` is seed 0, full resolution, rendering on.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Draws the randomization: the same scenario and seed give the same
    /// messages, byte for byte.
    pub seed: u64,
    /// Multiplies every camera's resolution (0.5: half width and height).
    pub image_scale: f64,
    /// Render cameras (false: physics and poses only).
    pub render: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions { seed: 0, image_scale: 1.0, render: true }
    }
}

/// A camera of the rig and where it sits on the robot.
#[derive(Debug, Clone)]
pub struct CameraMount {
    /// Intrinsics and name, at the scaled resolution.
    pub model: CameraModel,
    /// `<name>_link` in base_link.
    pub link_in_base: Isometry3<f32>,
    /// `<name>_optical_frame` in base_link.
    pub optical_in_base: Isometry3<f32>,
}

/// What one camera saw at one instant, as messages.
#[derive(Debug, Clone)]
pub struct CameraFrame {
    /// The camera's name (`sim/<name>/...`); every header's frame is `<name>_optical_frame`.
    pub name: String,
    /// rgb8.
    pub image: Image,
    /// 32FC1, metres along the optical axis; +inf where nothing was hit.
    pub depth: Image,
    /// mono8 class ids (ScenarioInfo.class_names).
    pub segmentation: Image,
    /// mono16 instance ids (ActorInfo.instance_id; 0 background).
    pub instances: Image,
    /// Pinhole intrinsics, no distortion (plumb_bob with zeros).
    pub info: CameraInfo,
    /// One per instance visible in this camera (the ego and the arm left
    /// out): the tight box of its pixels, its class, its pose in the optical
    /// frame, and as score the fraction of it that is not hidden.
    pub detections: Detection2DArray,
}

/// Everything due at one instant.
#[derive(Debug, Clone, Default)]
pub struct Tick {
    /// Sim time of this instant, the stamp of everything in it.
    pub time: Time,
    /// For /clock, every step.
    pub clock: Clock,
    /// Every camera's frame, at the camera rate; empty when rendering is off.
    pub cameras: Vec<CameraFrame>,
    /// Every object with an instance id within 150 m of base_link (the ego
    /// and the arm left out), in base_link, at the camera rate (also with
    /// rendering off): Some marks a camera instant.
    pub detections3d: Option<Detection3DArray>,
    /// odom → base_link with the body-frame twist, at the odometry rate; vehicles only.
    pub odom: Option<Odometry>,
    /// At the IMU rate: orientation in odom, and in base_link the angular
    /// velocity and the specific force (acceleration minus gravity: +9.81 m/s²
    /// up at rest); an arm's base never moves.
    pub imu: Option<Imu>,
    /// At the odometry rate: odom → base_link for a vehicle, base_link → each
    /// arm link for an arm.
    pub tf: Option<TFMessage>,
    /// joint1..joint6 positions (rad) and velocities (rad/s), then the
    /// gripper's opening (m) and its rate (m/s), at the odometry rate; arms only.
    pub joint_states: Option<JointState>,
    /// Whether the gripper holds something (both fingers touch the same
    /// object), at the odometry rate; arms only (`gripper/grasped`).
    pub grasped: Option<Bool>,
    /// Contacts that began in this step between objects with an instance id
    /// (and the floor).
    pub collisions: Vec<CollisionEvent>,
}

/// Where the time of the run went.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Stepping the physics.
    pub physics: Duration,
    /// Building the draw and submitting it.
    pub render: Duration,
    /// Waiting for the GPU and copying the images out.
    pub readback: Duration,
    /// Boxes, visible fractions and messages.
    pub labels: Duration,
    /// Camera instants rendered.
    pub frames: u64,
    /// Physics steps taken.
    pub steps: u64,
}

/// One run of a scenario with a seed, stepped by `tick`.
pub struct Sim {
    /// The scenario as loaded.
    pub scenario: Scenario,
    /// The world as built: initial poses (`physics` has the current ones).
    pub world: World,
    /// Current poses and velocities of the world's objects.
    pub physics: Physics,
    renderer: Option<Renderer>,
    /// The scenario's cameras in order, at the scaled resolution.
    pub mounts: Vec<CameraMount>,
    tick: u64,
    camera_every: u64,
    imu_every: u64,
    odom_every: u64,
    /// World object index of each instance id.
    by_instance: Vec<Option<usize>>,
    /// Per object: metres walked and where it was at the last camera instant
    /// (people's limbs follow the distance, so the gait matches the speed).
    walked: Vec<(f32, Option<Vector3<f32>>, Gait)>,
    /// Where the time went since `new`.
    pub timings: Timings,
    /// Whether `tick` renders the cameras at their instants (`set_cameras`).
    cameras_on: bool,
}

/// A rate (Hz) as a whole number of physics steps.
fn every(rate: f64) -> u64 {
    ((STEPS_PER_SECOND as f64 / rate).round() as u64).max(1)
}

/// The sim time after `tick` physics steps (whole nanoseconds: 5 ms a step).
fn time_of(tick: u64) -> Time {
    let ns = tick * (1_000_000_000 / STEPS_PER_SECOND as u64);
    Time { sec: (ns / 1_000_000_000) as i32, nanosec: (ns % 1_000_000_000) as u32 }
}

fn header(stamp: &Time, frame: &str) -> Header {
    Header { stamp: stamp.clone(), frame_id: frame.into() }
}

fn quat(q: &UnitQuaternion<f32>) -> QuatMsg {
    QuatMsg { x: q.i as f64, y: q.j as f64, z: q.k as f64, w: q.w as f64 }
}

fn pose_msg(p: &Isometry3<f32>) -> Pose {
    let t = p.translation.vector;
    Pose { position: Point { x: t.x as f64, y: t.y as f64, z: t.z as f64 }, orientation: quat(&p.rotation) }
}

fn vec_msg(v: &Vector3<f32>) -> Vec3Msg {
    Vec3Msg { x: v.x as f64, y: v.y as f64, z: v.z as f64 }
}

fn transform(stamp: &Time, parent: &str, child: &str, p: &Isometry3<f32>) -> TransformStamped {
    let t = p.translation.vector;
    TransformStamped {
        header: header(stamp, parent),
        child_frame_id: child.into(),
        transform: Transform { translation: vec_msg(&t), rotation: quat(&p.rotation) },
    }
}

/// The rotation from a camera's link frame (x forward, z up) to its optical
/// frame (z forward, x right, y down).
fn optical_rotation() -> UnitQuaternion<f32> {
    UnitQuaternion::from_quaternion(Quaternion::new(0.5, -0.5, 0.5, -0.5))
}

fn image(stamp: &Time, frame: &str, w: u32, h: u32, encoding: &str, bytes_per_pixel: u32, data: Vec<u8>) -> Image {
    s2r_image::image_msg(header(stamp, frame), w as usize, h as usize, encoding, bytes_per_pixel as usize, data)
}

fn camera_info(stamp: &Time, frame: &str, m: &CameraModel) -> CameraInfo {
    CameraInfo {
        header: header(stamp, frame),
        height: m.height,
        width: m.width,
        distortion_model: "plumb_bob".into(),
        d: vec![0.0; 5],
        k: [m.fx, 0.0, m.cx, 0.0, m.fy, m.cy, 0.0, 0.0, 1.0],
        r: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p: [m.fx, 0.0, m.cx, 0.0, 0.0, m.fy, m.cy, 0.0, 0.0, 0.0, 1.0, 0.0],
        ..Default::default()
    }
}

impl Sim {
    /// Builds the world of a scenario with a seed and opens the renderer
    /// (when `options.render`); fails only when the renderer cannot start.
    pub fn new(scenario: Scenario, options: &SimOptions) -> Result<Sim, RenderError> {
        let world = World::build(&scenario, options.seed);
        let physics = Physics::new(&world);
        let mounts: Vec<CameraMount> = scenario
            .sensors
            .cameras
            .iter()
            .map(|c| {
                let w = ((c.width as f64 * options.image_scale).round() as u32).max(1);
                let h = ((c.height as f64 * options.image_scale).round() as u32).max(1);
                let link_in_base = Isometry3::from_parts(
                    Translation3::new(c.position[0] as f32, c.position[1] as f32, c.position[2] as f32),
                    UnitQuaternion::from_axis_angle(&Vector3::z_axis(), c.yaw_deg.to_radians() as f32)
                        * UnitQuaternion::from_axis_angle(&Vector3::y_axis(), c.pitch_deg.to_radians() as f32),
                );
                CameraMount {
                    model: CameraModel::from_fov(&c.name, w, h, c.fov_deg),
                    link_in_base,
                    optical_in_base: link_in_base * Isometry3::from_parts(Translation3::identity(), optical_rotation()),
                }
            })
            .collect();
        let renderer = if options.render {
            Some(Renderer::new(&mounts.iter().map(|m| m.model.clone()).collect::<Vec<_>>(), Features::of(&world), &world.meshes)?)
        } else {
            None
        };
        let max_instance = world.objects.iter().map(|o| o.instance as usize).max().unwrap_or(0);
        let mut by_instance = vec![None; max_instance + 1];
        for (i, o) in world.objects.iter().enumerate() {
            if o.instance != 0 && by_instance[o.instance as usize].is_none() {
                by_instance[o.instance as usize] = Some(i);
            }
        }
        let s = &scenario.sensors;
        Ok(Sim {
            camera_every: every(s.rate),
            imu_every: every(s.imu_rate),
            odom_every: every(s.odom_rate),
            scenario,
            world,
            physics,
            renderer,
            mounts,
            tick: 0,
            by_instance,
            walked: Vec::new(),
            timings: Timings::default(),
            cameras_on: true,
        })
    }

    /// Turns the cameras of `tick` on or off (on by default when rendering):
    /// a run that looks only now and then (a thumbnail) keeps its renderer
    /// and calls `snapshot`.
    pub fn set_cameras(&mut self, on: bool) {
        self.cameras_on = on;
    }

    /// Every camera's frame at this instant, whatever the camera schedule;
    /// fails when the run does not render (`SimOptions::render` off).
    pub fn snapshot(&mut self) -> Result<Vec<CameraFrame>, RenderError> {
        if self.renderer.is_none() {
            return Err(RenderError::Off);
        }
        let base = self.base_pose();
        self.render(&self.time(), &base)
    }

    /// The renderer's device (None without rendering), for a consumer that
    /// works on the cameras' images where they were rendered.
    pub fn gpu(&self) -> Option<crate::render::SharedGpu> {
        self.renderer.as_ref().map(|r| r.shared())
    }

    /// The render targets of camera `name` after the last tick that rendered it.
    pub fn render_targets(&self, name: &str) -> Option<crate::render::Targets> {
        let i = self.mounts.iter().position(|m| m.model.name == name)?;
        self.renderer.as_ref()?.targets(i)
    }

    /// The graphics adapter in use, if rendering.
    pub fn adapter(&self) -> Option<&str> {
        self.renderer.as_ref().map(|r| r.adapter.as_str())
    }

    /// Sim time now.
    fn time(&self) -> Time {
        time_of(self.tick)
    }

    /// Sim time now, seconds since the start.
    pub fn seconds(&self) -> f64 {
        self.tick as f64 / STEPS_PER_SECOND as f64
    }

    /// base_link in the world (map) frame now: a vehicle's centre on the
    /// ground, or the arm's base on the table top.
    pub fn base_pose(&self) -> Isometry3<f32> {
        match (self.world.ego, &self.world.arm) {
            (Some(i), _) => {
                let p = self.physics.pose(&self.world, i);
                p * Isometry3::translation(0.0, 0.0, -self.world.objects[i].half.z)
            }
            (None, Some(a)) => Isometry3::translation(a.base[0] as f32, a.base[1] as f32, a.base[2] as f32),
            _ => Isometry3::identity(),
        }
    }

    /// Applies a /cmd_vel command: linear.x is the speed asked for (m/s),
    /// angular.z the yaw rate (rad/s). Returns what was out of range and clamped.
    pub fn command_velocity(&mut self, cmd: &Twist) -> Vec<String> {
        let Some(v) = &self.world.vehicle else {
            return vec!["/cmd_vel ignored: the ego of this scenario is an arm (use /joint_commands)".into()];
        };
        let mut notes = Vec::new();
        let (lo, hi) = (-MAX_REVERSE as f64, v.max_speed);
        let speed = if cmd.linear.x.is_finite() { cmd.linear.x } else { 0.0 };
        let speed_c = speed.clamp(lo, hi);
        if speed_c != cmd.linear.x {
            notes.push(format!("linear.x {} m/s is outside [{lo}, {hi}]; clamped to {speed_c}", cmd.linear.x));
        }
        let yaw = if cmd.angular.z.is_finite() { cmd.angular.z } else { 0.0 };
        let yaw_c = yaw.clamp(-v.max_yaw_rate, v.max_yaw_rate);
        if yaw_c != cmd.angular.z {
            notes.push(format!("angular.z {} rad/s is outside ±{}; clamped to {yaw_c}", cmd.angular.z, v.max_yaw_rate));
        }
        if cmd.linear.y != 0.0 || cmd.linear.z != 0.0 || cmd.angular.x != 0.0 || cmd.angular.y != 0.0 {
            notes.push("a car moves along linear.x and turns about angular.z only; the other components are ignored".into());
        }
        self.physics.set_cmd_vel(speed_c as f32, yaw_c as f32);
        notes
    }

    /// The /joint_commands that would move the arm as its script does over
    /// the next step (joint targets and gripper opening): what a recording
    /// keeps as the commands of an arm nobody commands. None without an arm,
    /// for an arm without a script, or once a command has replaced the script.
    pub fn scripted_command(&self) -> Option<JointState> {
        let (q, gripper) = self.physics.scripted_targets(self.seconds() as f32)?;
        Some(crate::autopilot::joint_command(&q, gripper))
    }

    /// Applies a /joint_commands message: target positions by joint name
    /// (joint1..joint6 in radians, `gripper` as the opening between the
    /// finger pads in metres), or in that order when it names none (six
    /// positions, or seven with the gripper). Returns what was clamped to the
    /// limits, or why the whole command was refused.
    pub fn command_joints(&mut self, cmd: &JointState) -> Result<Vec<String>, JointCommandError> {
        let Some(spec) = self.physics.arm_spec().cloned() else {
            return Err(JointCommandError::NoArm);
        };
        let (current, _) = self.physics.joint_positions().unwrap_or(([0.0; 6], [0.0; 6]));
        let JointTargets { mut q, set, gripper } = joint_targets(cmd, &current)?;
        let mut notes = Vec::new();
        if let Some(g) = gripper {
            if !g.is_finite() {
                return Err(JointCommandError::NotANumber(GRIPPER_JOINT));
            }
            let max = GRIPPER_MAX_OPENING as f64;
            let c = g.clamp(0.0, max);
            if c != g {
                notes.push(format!("{GRIPPER_JOINT} opening {g} m is outside [0, {max:.3}]; clamped to {c:.3}"));
            }
            self.physics.set_gripper(c as f32);
        }
        for j in 0..6 {
            if !set[j] {
                continue;
            }
            if !q[j].is_finite() {
                return Err(JointCommandError::NotANumber(JOINT_NAMES[j]));
            }
            let [lo, hi] = spec.limits[j];
            let c = (q[j] as f64).clamp(lo, hi) as f32;
            if c != q[j] {
                notes.push(format!("{} target {} rad is outside [{lo}, {hi}]; clamped to {c}", JOINT_NAMES[j], q[j]));
                q[j] = c;
            }
        }
        self.physics.override_trajectory();
        self.physics.set_joint_targets(q);
        Ok(notes)
    }

    /// The static transforms: map→odom, base_link→cameras (and odom→base_link
    /// for a fixed arm).
    pub fn tf_static(&self) -> TFMessage {
        let stamp = Time::default();
        let mut t = vec![transform(&stamp, "map", "odom", &Isometry3::identity())];
        if self.world.ego.is_none() {
            t.push(transform(&stamp, "odom", "base_link", &self.base_pose()));
        }
        for m in &self.mounts {
            let link = format!("{}_link", m.model.name);
            t.push(transform(&stamp, "base_link", &link, &m.link_in_base));
            t.push(transform(
                &stamp,
                &link,
                &format!("{}_optical_frame", m.model.name),
                &Isometry3::from_parts(Translation3::identity(), optical_rotation()),
            ));
        }
        TFMessage { transforms: t }
    }

    /// The scenario as run: for /scenario.
    pub fn scenario_info(&self) -> ScenarioInfo {
        let s = &self.scenario;
        let actors = self
            .world
            .instances()
            .map(|o| ActorInfo {
                instance_id: o.instance,
                class_name: self.world.class_names[o.class as usize].clone(),
                behaviour: o.behaviour.into(),
                start_pose: pose_msg(&o.pose),
                size: vec_msg(&(o.half * 2.0)),
            })
            .collect();
        ScenarioInfo {
            header: header(&Time::default(), "map"),
            seed: self.world.seed,
            scenario: s.name.clone(),
            weather: s.environment.weather.clone(),
            weather_intensity: s.environment.weather_intensity as f32,
            time_of_day: s.environment.time_of_day.name().into(),
            friction: self.world.friction.road,
            tags: s.tags.clone(),
            description: s.description.clone(),
            edge_case: s.edge_case,
            class_names: self.world.class_names.clone(),
            actors,
        }
    }

    /// Advances one physics step (5 ms of sim time) and returns what is due
    /// at the new instant. Fails only when rendering a camera instant fails.
    pub fn tick(&mut self) -> Result<Tick, RenderError> {
        let t0 = Instant::now();
        let collisions = self.physics.step(self.seconds() as f32);
        self.tick += 1;
        self.timings.physics += t0.elapsed();
        self.timings.steps += 1;
        let stamp = self.time();
        let mut out = Tick { time: stamp.clone(), clock: Clock { clock: stamp.clone() }, ..Default::default() };
        out.collisions = collisions
            .into_iter()
            .map(|c| {
                let (a, b) = (&self.world.objects[c.a], &self.world.objects[c.b]);
                CollisionEvent {
                    header: header(&stamp, "map"),
                    instance_a: a.instance,
                    instance_b: b.instance,
                    class_a: self.world.class_names[a.class as usize].clone(),
                    class_b: self.world.class_names[b.class as usize].clone(),
                    relative_speed: c.relative_speed as f64,
                }
            })
            .collect();
        let base = self.base_pose();
        if self.tick.is_multiple_of(self.odom_every) {
            self.odometry(&mut out, &base);
        }
        if self.tick.is_multiple_of(self.imu_every) {
            out.imu = Some(self.imu(&stamp, &base));
        }
        if self.tick.is_multiple_of(self.camera_every) {
            if self.renderer.is_some() && self.cameras_on {
                out.cameras = self.render(&stamp, &base)?;
            }
            out.detections3d = Some(self.detections3d(&stamp, &base));
        }
        Ok(out)
    }

    fn odometry(&self, out: &mut Tick, base: &Isometry3<f32>) {
        let stamp = &out.time;
        if let Some(i) = self.world.ego {
            let (v, w) = self.physics.velocity(i);
            let inv = base.rotation.inverse();
            out.odom = Some(Odometry {
                header: header(stamp, "odom"),
                child_frame_id: "base_link".into(),
                pose: PoseWithCovariance { pose: pose_msg(base), covariance: [0.0; 36] },
                twist: TwistWithCovariance {
                    twist: Twist { linear: vec_msg(&(inv * v)), angular: vec_msg(&(inv * w)) },
                    covariance: [0.0; 36],
                },
            });
            out.tf = Some(TFMessage { transforms: vec![transform(stamp, "odom", "base_link", base)] });
        }
        if let (Some((q, qd)), Some((opening, rate))) = (self.physics.joint_positions(), self.physics.gripper()) {
            out.joint_states = Some(JointState {
                header: header(stamp, "base_link"),
                name: JOINT_NAMES.iter().chain([&GRIPPER_JOINT]).map(|s| s.to_string()).collect(),
                position: q.iter().chain([&opening]).map(|x| *x as f64).collect(),
                velocity: qd.iter().chain([&rate]).map(|x| *x as f64).collect(),
                effort: vec![],
            });
            out.grasped = Some(Bool { data: self.physics.grasped().is_some() });
            let inv = base.inverse();
            let transforms = self
                .world
                .objects
                .iter()
                .enumerate()
                .filter(|(_, o)| o.class == class::ROBOT_ARM)
                .map(|(i, o)| transform(stamp, "base_link", &o.name, &(inv * self.physics.pose(&self.world, i))))
                .collect();
            out.tf = Some(TFMessage { transforms });
        }
    }

    fn imu(&self, stamp: &Time, base: &Isometry3<f32>) -> Imu {
        let inv = base.rotation.inverse();
        let (w, a) = match self.world.ego {
            Some(i) => (self.physics.velocity(i).1, self.physics.ego_accel()),
            None => (Vector3::zeros(), Vector3::zeros()),
        };
        // An accelerometer measures specific force: acceleration minus gravity.
        let f = inv * (a + Vector3::new(0.0, 0.0, GRAVITY));
        let mut cov = [0.0; 9];
        cov[0] = 1e-6;
        cov[4] = 1e-6;
        cov[8] = 1e-6;
        Imu {
            header: header(stamp, "base_link"),
            orientation: quat(&base.rotation),
            orientation_covariance: cov,
            angular_velocity: vec_msg(&(inv * w)),
            angular_velocity_covariance: cov,
            linear_acceleration: vec_msg(&f),
            linear_acceleration_covariance: cov,
        }
    }

    fn poses(&self) -> Vec<Isometry3<f32>> {
        (0..self.world.objects.len()).map(|i| self.physics.pose(&self.world, i)).collect()
    }

    /// Moves every jointed object's gait on by the distance it covered since
    /// the last camera instant.
    fn update_gaits(&mut self, poses: &[Isometry3<f32>]) {
        let dt = self.camera_every as f32 / STEPS_PER_SECOND as f32;
        if self.walked.len() != poses.len() {
            self.walked = vec![(0.0, None, Gait::default()); poses.len()];
        }
        for ((o, pose), w) in self.world.objects.iter().zip(poses).zip(&mut self.walked) {
            if o.parts.iter().all(|p| p.joints.iter().all(Option::is_none)) {
                continue;
            }
            let at = pose.translation.vector;
            let step = w.1.map_or(0.0, |last| (at - last).xy().norm());
            w.0 += step;
            w.1 = Some(at);
            let stride = if o.class == class::CYCLIST { figures::CYCLIST_STRIDE } else { figures::stride(2.0 * o.half.z) };
            // A cyclist's legs turn with the pedals at any speed; a walker's swing grows with it.
            let amount = if o.class == class::CYCLIST {
                if step > 0.0 {
                    1.0
                } else {
                    0.0
                }
            } else {
                figures::gait_amount(step / dt)
            };
            w.2 = Gait { phase: std::f32::consts::TAU * w.0 / stride, amount };
        }
    }

    /// Renders every camera at this instant and labels what they saw.
    fn render(&mut self, stamp: &Time, base: &Isometry3<f32>) -> Result<Vec<CameraFrame>, RenderError> {
        let images = self.render_images(base)?;
        let t0 = Instant::now();
        let poses = self.poses();
        let frames = self.mounts.iter().zip(images).map(|(m, img)| self.frame(stamp, m, base, &poses, img)).collect();
        self.timings.labels += t0.elapsed();
        self.timings.frames += 1;
        Ok(frames)
    }

    /// The raw images of every camera now.
    fn render_images(&mut self, base: &Isometry3<f32>) -> Result<Vec<Images>, RenderError> {
        let t0 = Instant::now();
        let poses = self.poses();
        self.update_gaits(&poses);
        let gaits: Vec<Gait> = self.walked.iter().map(|w| w.2).collect();
        let cams: Vec<Isometry3<f32>> = self.mounts.iter().map(|m| base * m.optical_in_base).collect();
        let eyes: Vec<nalgebra::Point3<f32>> = cams.iter().map(|c| c.translation.vector.into()).collect();
        let (inst, groups) = instances(&self.world, &poses, &gaits, &eyes);
        let ego = self.world.ego.map(|i| (poses[i], self.world.objects[i].half));
        let scene = scene_uniform(&self.world, ego);
        let sky =
            if self.world.light.fog > 0.0 { mix(self.world.light.sky, self.world.light.fog_color, 0.8) } else { self.world.light.sky };
        let r = self.renderer.as_mut().ok_or(RenderError::Off)?;
        r.draw(&inst, &groups, &cams, &scene, sky);
        let t1 = Instant::now();
        self.timings.render += t1 - t0;
        let images = r.read()?;
        self.timings.readback += t1.elapsed();
        Ok(images)
    }

    fn frame(&self, stamp: &Time, m: &CameraMount, base: &Isometry3<f32>, poses: &[Isometry3<f32>], img: Images) -> CameraFrame {
        let name = &m.model.name;
        let frame = format!("{name}_optical_frame");
        let optical = base * m.optical_in_base;
        let to_optical = optical.inverse();
        let mut detections = Vec::new();
        for b in mask_boxes(&img) {
            let Some(Some(oi)) = self.by_instance.get(b.instance as usize) else { continue };
            let o = &self.world.objects[*oi];
            if o.class == class::EGO_VEHICLE || o.class == class::ROBOT_ARM {
                continue;
            }
            let in_optical = to_optical * poses[*oi];
            let gait = self.walked.get(*oi).map_or(Gait::default(), |w| w.2);
            let silhouette = silhouette_area(o, gait, &self.world.meshes, &in_optical, &m.model);
            let visible = if silhouette > 0.0 { (b.pixels as f64 / silhouette).min(1.0) } else { 1.0 };
            let (cx, cy, sx, sy) = b.center_size();
            detections.push(Detection2D {
                header: header(stamp, &frame),
                results: vec![ObjectHypothesisWithPose {
                    hypothesis: ObjectHypothesis { class_id: self.world.class_names[o.class as usize].clone(), score: visible },
                    pose: PoseWithCovariance { pose: pose_msg(&in_optical), covariance: [0.0; 36] },
                }],
                bbox: BoundingBox2D { center: Pose2D { position: Point2D { x: cx, y: cy }, theta: 0.0 }, size_x: sx, size_y: sy },
                id: o.instance.to_string(),
            });
        }
        let (w, h) = (img.width, img.height);
        let depth: Vec<u8> = img.depth.iter().flat_map(|d| d.to_le_bytes()).collect();
        let instances: Vec<u8> = img.instance.iter().flat_map(|i| i.to_le_bytes()).collect();
        CameraFrame {
            name: name.clone(),
            image: image(stamp, &frame, w, h, "rgb8", 3, img.rgb),
            depth: image(stamp, &frame, w, h, "32FC1", 4, depth),
            segmentation: image(stamp, &frame, w, h, "mono8", 1, img.class),
            instances: image(stamp, &frame, w, h, "mono16", 2, instances),
            info: camera_info(stamp, &frame, &m.model),
            detections: Detection2DArray { header: header(stamp, &frame), detections },
        }
    }

    fn detections3d(&self, stamp: &Time, base: &Isometry3<f32>) -> Detection3DArray {
        let inv = base.inverse();
        let detections = self
            .world
            .instances()
            .filter(|o| o.class != class::EGO_VEHICLE && o.class != class::ROBOT_ARM)
            .filter_map(|o| {
                let i = self.by_instance[o.instance as usize]?;
                let p = inv * self.physics.pose(&self.world, i);
                (p.translation.vector.norm() <= DETECTION_RANGE).then(|| Detection3D {
                    header: header(stamp, "base_link"),
                    results: vec![ObjectHypothesisWithPose {
                        hypothesis: ObjectHypothesis { class_id: self.world.class_names[o.class as usize].clone(), score: 1.0 },
                        pose: PoseWithCovariance { pose: pose_msg(&p), covariance: [0.0; 36] },
                    }],
                    bbox: BoundingBox3D { center: pose_msg(&p), size: vec_msg(&(o.half * 2.0)) },
                    id: o.instance.to_string(),
                })
            })
            .collect();
        Detection3DArray { header: header(stamp, "base_link"), detections }
    }
}

fn mix(a: [f32; 3], b: [f32; 3], k: f32) -> [f32; 3] {
    [a[0] + (b[0] - a[0]) * k, a[1] + (b[1] - a[1]) * k, a[2] + (b[2] - a[2]) * k]
}

/// What a /joint_commands message asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JointTargets {
    /// joint1..joint6 targets, radians: the message's, the current angle for a joint it leaves out.
    pub q: [f32; 6],
    /// Which joints the message set.
    pub set: [bool; 6],
    /// The gripper's opening, metres between the pads, when it asks for one.
    pub gripper: Option<f64>,
}

/// Reads a /joint_commands message: positions by joint name (joint1..joint6,
/// `gripper`), or in that order when it names none (six, or seven with the
/// gripper); joints it leaves out keep their `current` angles. Not checked
/// against the limits (see [`Sim::command_joints`]).
pub fn joint_targets(cmd: &JointState, current: &[f32; 6]) -> Result<JointTargets, JointCommandError> {
    let mut t = JointTargets { q: *current, set: [false; 6], gripper: None };
    if cmd.name.is_empty() {
        if cmd.position.len() != 6 && cmd.position.len() != 7 {
            return Err(JointCommandError::Unnamed(cmd.position.len()));
        }
        for (j, x) in cmd.position.iter().take(6).enumerate() {
            t.q[j] = *x as f32;
            t.set[j] = true;
        }
        t.gripper = cmd.position.get(6).copied();
    } else {
        if cmd.name.len() != cmd.position.len() {
            return Err(JointCommandError::Lengths { names: cmd.name.len(), positions: cmd.position.len() });
        }
        for (n, x) in cmd.name.iter().zip(&cmd.position) {
            if n == GRIPPER_JOINT {
                t.gripper = Some(*x);
                continue;
            }
            let j = JOINT_NAMES.iter().position(|k| k == n).ok_or_else(|| JointCommandError::UnknownJoint(n.clone()))?;
            t.q[j] = *x as f32;
            t.set[j] = true;
        }
    }
    Ok(t)
}

/// Names of the arm's joints in /joint_states and /joint_commands.
pub const JOINT_NAMES: [&str; 6] = ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6"];
/// The gripper's entry in /joint_states and /joint_commands: its opening,
/// metres between the finger pads (0..[`GRIPPER_MAX_OPENING`]).
pub const GRIPPER_JOINT: &str = "gripper";

/// A `/joint_commands` message the arm cannot follow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JointCommandError {
    /// The scenario's ego is a vehicle.
    #[error("/joint_commands ignored: the ego of this scenario is a vehicle (use /cmd_vel)")]
    NoArm,
    /// Positions without names, and not one per joint.
    #[error("a command without names needs 6 positions (7 with the gripper's opening), got {0}")]
    Unnamed(usize),
    /// Names and positions of different lengths.
    #[error("{names} names but {positions} positions")]
    Lengths {
        /// Names given.
        names: usize,
        /// Positions given.
        positions: usize,
    },
    /// A joint the arm does not have.
    #[error("unknown joint '{0}' (joint1..joint6, gripper)")]
    UnknownJoint(String),
    /// A position that is NaN or infinite.
    #[error("{0} position is not a number")]
    NotANumber(&'static str),
}
