//! The `policy_node` executable: a robot's camera and state in, commands
//! out, at a fixed rate.
//!
//! It subscribes `<camera>/image_raw` (parameter `camera`, default `front`;
//! relative, so the namespace and remapping apply; any colour encoding and
//! resolution, or its `/compressed` sibling: parameter `transport`) and the
//! robot's state, runs the policy on each new frame, and publishes at `rate`
//! Hz (default 20) the ensembled command, clamped to the robot's limits,
//! what was clamped logged with a count. What the checkpoint drives decides
//! the topics:
//! - a vehicle: `odom` (nav_msgs/Odometry: speed and yaw rate) in,
//!   `cmd_vel` (geometry_msgs/Twist, reliable; with `stamped` true
//!   geometry_msgs/TwistStamped, frame `base_link`, stamped now or, with
//!   `stamp` `frame`, with the camera frame's stamp it was computed from:
//!   a latency measure, but a controller that times commands out by their
//!   stamp needs the camera on its clock) out, within `max_speed` (m/s) and
//!   `max_yaw_rate` (rad/s); a stale input commands a stop;
//! - an arm: `joint_states` (sensor_msgs/JointState with joint1..joint6 and
//!   `gripper`, the opening in metres) and `gripper/grasped` (std_msgs/Bool)
//!   in, `joint_commands` (sensor_msgs/JointState, the same names) out,
//!   within `joint_lower`/`joint_upper` (rad, six each) and `max_gripper`
//!   (m); a stale input holds the arm where it is.
//!
//! When no frame or no state arrived for `stale_ms` (300) it says so once per
//! stale spell.
//!
//! With the parameter `reasoning` true, the commands pass the safety filter
//! ([`sim2real_msgs::safety`]) of the newest chain on `reasoning`
//! (sim2real_msgs/Reasoning, from reason_node); each chain that changed a
//! command is published once on `safety_filter` and logged:
//! - a vehicle: the speed comes down to the chain's `max_speed`, the yaw
//!   rate with it; without a chain for `stale_ms` the car is stopped (the
//!   conservative side);
//! - an arm: joint targets that would move a finger low over the table into
//!   a cup from a side the chain keeps out (`keep_out`) are sent without the
//!   base's turn, or the arm is held where it is. The fingers are placed
//!   through the arm's description on `robot_description` (URDF, as
//!   robot_state_publisher reads it; sim_node publishes the simulated
//!   arm's): the chain from its root link to `tool_link` (default `tool0`,
//!   the flange the fingers stand on; its moving joints must be joint1 …
//!   joint6), the root's pose in the chain's frame from /tf and /tf_static,
//!   and fingers `finger_length` long (0.07 m) and `finger_thickness` thick
//!   (0.016 m) either side of the gripper's opening. Without a fresh chain,
//!   on a chain that says stop (reason_node cannot see the table), or while
//!   the description or the transform is missing (said once, naming it),
//!   the arm is held where it is.
//!
//! Parameters: `checkpoint` (from `s2r train policy`; empty: the shipped
//! `models/policy/policy.safetensors` when there is one). A new checkpoint
//! is loaded without a restart when the parameter changes or the file is
//! replaced (as `s2r train policy` does at every evaluation); one for another
//! robot is refused and the running one kept.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use s2r_image::transport::ImageSubscription;
use s2r_runtime::component::{Component, NodeFuture};
use s2r_runtime::tf::TfBuffer;
use s2r_runtime::urdf;
use s2r_runtime::{info, warn, Context, Node, Publisher, Qos, RosArgs, Subscription};
use sim2real_msgs::builtin_interfaces::msg::Time;
use sim2real_msgs::geometry_msgs::msg::{Twist, TwistStamped, Vector3};
use sim2real_msgs::nav_msgs::msg::Odometry;
use sim2real_msgs::safety;
use sim2real_msgs::sensor_msgs::msg::JointState;
use sim2real_msgs::sim2real_msgs::msg::Reasoning;
use sim2real_msgs::std_msgs::msg::{Bool, Header, String as StringMsg};
use sim2real_msgs::tf2_msgs::msg::TFMessage;

use crate::data;
use crate::model::Robot;
use crate::pilot::Pilot;

/// The node as a component (`policy_node`, `s2r run`, `s2r launch --compose`).
pub const POLICY_NODE: Component = Component {
    exec: "policy_node",
    about: "drives the robot (a vehicle or an arm) from its camera and state with a policy learned from the expert's demonstrations",
    main: policy_node,
    graceful: false,
};

/// The shipped checkpoint, when the package has one.
pub fn shipped_checkpoint() -> Option<PathBuf> {
    s2r_runtime::share::find_shared("models/policy", "policy.safetensors")
}

/// A command within the limits, and whether it had to be clamped.
pub fn clamp(speed: f32, yaw_rate: f32, max_speed: f32, max_yaw_rate: f32) -> (Twist, bool) {
    let s = if speed.is_finite() { speed.clamp(0.0, max_speed) } else { 0.0 };
    let w = if yaw_rate.is_finite() { yaw_rate.clamp(-max_yaw_rate, max_yaw_rate) } else { 0.0 };
    let twist = Twist { linear: Vector3 { x: s as f64, ..Default::default() }, angular: Vector3 { z: w as f64, ..Default::default() } };
    (twist, s != speed || w != yaw_rate)
}

/// An arm's command within the limits (`lower`/`upper`: six joints then the
/// gripper's opening), and whether it had to be clamped. NaN entries hold
/// `hold` (the arm's measured position).
pub fn clamp_joints(cmd: &[f32], hold: &[f32; 7], lower: &[f32; 7], upper: &[f32; 7]) -> (JointState, bool) {
    let mut clamped = false;
    let mut position = Vec::with_capacity(7);
    for k in 0..7 {
        let x = cmd.get(k).copied().unwrap_or(f32::NAN);
        let c = if x.is_finite() { x.clamp(lower[k], upper[k]) } else { hold[k] };
        clamped |= c != x;
        position.push(c as f64);
    }
    let names = data::ARM_JOINTS.iter().map(|s| s.to_string()).collect();
    (JointState { name: names, position, ..Default::default() }, clamped)
}

/// The safety filter's side of the node (parameter `reasoning`).
struct SafetyFilter {
    chains: Subscription<Reasoning>,
    changed_by: Publisher<Reasoning>,
    newest: Option<(std::sync::Arc<Reasoning>, Instant)>,
    /// The stamp of the last chain published on `safety_filter`.
    published: Option<Time>,
    changed: u64,
    blind: bool,
}

impl SafetyFilter {
    fn new(node: &Node) -> Result<SafetyFilter, s2r_runtime::NodeError> {
        Ok(SafetyFilter {
            chains: node.create_subscription::<Reasoning>("reasoning", Qos::reliable().depth(10))?,
            changed_by: node.create_publisher::<Reasoning>("safety_filter", Qos::reliable().depth(10))?,
            newest: None,
            published: None,
            changed: 0,
            blind: true,
        })
    }

    /// The newest chain if it is fresh; None (said once per blind spell) when there is none.
    fn fresh(&mut self, stale: Duration, log: &s2r_runtime::Logger, blind: &str) -> Option<std::sync::Arc<Reasoning>> {
        while let Some(r) = self.chains.try_recv() {
            self.newest = Some((r, Instant::now()));
        }
        let Some((chain, _)) = self.newest.as_ref().filter(|(_, t)| t.elapsed() <= stale) else {
            if !self.blind {
                warn!(log, "no reasoning for {} ms: {blind}", stale.as_millis());
                self.blind = true;
            }
            return None;
        };
        if self.blind {
            info!(log, "safety filter: reasoning is live");
            self.blind = false;
        }
        Some(chain.clone())
    }

    /// Counts a command the chain changed; logs it (`what`: from what to what) and
    /// publishes the chain on `safety_filter`, once per chain.
    fn changed(&mut self, chain: &Reasoning, what: &str, log: &s2r_runtime::Logger) {
        self.changed += 1;
        if self.published.as_ref() == Some(&chain.header.stamp) {
            return;
        }
        self.published = Some(chain.header.stamp.clone());
        if s2r_runtime::log::worth_logging(self.changed) {
            let why: Vec<&str> = chain.steps.iter().map(|s| s.text.as_str()).collect();
            info!(log, "safety filter: {what} ({}: {}; {} commands changed so far)", chain.situation, why.join("; "), self.changed);
        }
        if let Err(e) = self.changed_by.publish(chain.clone()) {
            warn!(log, "safety_filter: {e}");
        }
    }

    /// `out` within the newest chain's constraints; a stop without a fresh chain.
    fn apply(&mut self, out: Twist, stale: Duration, log: &s2r_runtime::Logger) -> Twist {
        let Some(chain) = self.fresh(stale, log, "commanding a stop") else {
            return Twist::default();
        };
        let f = safety::filter_twist(out.linear.x, out.angular.z, &chain);
        if !f.changed {
            return out;
        }
        self.changed(&chain, &format!("{:.1} -> {:.1} m/s", out.linear.x, f.linear), log);
        Twist { linear: Vector3 { x: f.linear, ..Default::default() }, angular: Vector3 { z: f.angular, ..Default::default() } }
    }

    /// An arm's joint targets `cmd` within the newest chain's keep-out
    /// regions ([`safety::filter_joints`]), the fingers placed by `arm`; the
    /// arm held at `measured` without a fresh chain, on a chain that says
    /// stop (`max_speed` 0: reason_node cannot see the table) or while
    /// `arm` cannot place the fingers.
    fn apply_joints(
        &mut self,
        cmd: [f32; 7],
        measured: &[f32; 7],
        arm: &mut ArmGeometry,
        stale: Duration,
        log: &s2r_runtime::Logger,
    ) -> [f32; 7] {
        let Some(chain) = self.fresh(stale, log, "holding the arm where it is") else {
            return *measured;
        };
        if safety::max_speed(&chain).is_some_and(|v| v <= 0.0) {
            if cmd != *measured {
                self.changed(&chain, "holding the arm where it is", log);
            }
            return *measured;
        }
        let margin = arm.finger_thickness / 2.0 + 0.01;
        let Some(fingers) = arm.fingers(&chain, measured[6], log) else {
            return *measured;
        };
        let (now, asked): ([f32; 6], [f32; 6]) = (std::array::from_fn(|j| measured[j]), std::array::from_fn(|j| cmd[j]));
        let (q, changed) = safety::filter_joints(&now, asked, &chain, margin, fingers);
        if !changed {
            return cmd;
        }
        let how = if q == now { "holding the arm where it is" } else { "the joints without the base's turn" };
        self.changed(&chain, &format!("{how}: a finger would push a cup from a kept-out side"), log);
        std::array::from_fn(|j| if j < 6 { q[j] } else { cmd[6] })
    }
}

/// Where an arm's fingers are for joint angles, as its safety filter needs
/// them: the kinematic chain from the robot's description
/// (`robot_description`, URDF, from its root link to `tool_link`), the
/// root's pose in the chain's frame (/tf, /tf_static) and the fingers'
/// size (parameters `finger_length`, `finger_thickness`).
struct ArmGeometry {
    description: Subscription<StringMsg>,
    tf: Subscription<TFMessage>,
    tf_static: Subscription<TFMessage>,
    buffer: TfBuffer,
    /// The chain to the tool and the link it starts at.
    chain: Option<(urdf::Chain, String)>,
    tool_link: String,
    finger_length: f32,
    finger_thickness: f32,
    /// What is missing, said once until it changes.
    missing: Option<String>,
}

impl ArmGeometry {
    fn new(node: &Node, tool_link: String, finger_length: f32, finger_thickness: f32) -> Result<ArmGeometry, s2r_runtime::NodeError> {
        Ok(ArmGeometry {
            description: node.create_subscription::<StringMsg>("robot_description", Qos::transient_local())?,
            tf: node.create_subscription::<TFMessage>("/tf", Qos::reliable().depth(100))?,
            tf_static: node.create_subscription::<TFMessage>("/tf_static", Qos::transient_local().depth(100))?,
            buffer: TfBuffer::default(),
            chain: None,
            tool_link,
            finger_length,
            finger_thickness,
            missing: None,
        })
    }

    /// Takes in a new description and transforms.
    fn update(&mut self, log: &s2r_runtime::Logger) {
        while let Some(m) = self.tf_static.try_recv() {
            self.buffer.insert(&m, true);
        }
        while let Some(m) = self.tf.try_recv() {
            self.buffer.insert(&m, false);
        }
        while let Some(d) = self.description.try_recv() {
            match arm_chain(&d.data, &self.tool_link) {
                Ok((chain, root)) => {
                    info!(
                        log,
                        "robot_description: the fingers on '{}', placed from '{root}' through {}",
                        self.tool_link,
                        chain.moving().join(", ")
                    );
                    self.chain = Some((chain, root));
                }
                Err(e) => {
                    warn!(log, "{e}; the arm is held until a usable description arrives");
                    self.chain = None;
                }
            }
        }
    }

    /// The finger points (two along each finger: its tip and 2 cm above) for
    /// joint angles, in `chain`'s frame, the gripper open `opening` metres;
    /// None (what is missing said once) without a description or a transform.
    fn fingers<'a>(
        &'a mut self,
        chain: &Reasoning,
        opening: f32,
        log: &s2r_runtime::Logger,
    ) -> Option<impl Fn(&[f32; 6]) -> Vec<[f32; 3]> + 'a> {
        let frame = chain.header.frame_id.trim_start_matches('/');
        let found = match &self.chain {
            None => Err("no robot_description yet: the fingers cannot be placed".to_string()),
            Some((_, root)) => self
                .buffer
                .lookup(frame, root, s2r_runtime::stamp_ns(&chain.header.stamp))
                .ok_or_else(|| format!("no transform from the arm's '{root}' to the reasoning's '{frame}' (/tf, /tf_static)")),
        };
        let pose = match found {
            Ok(p) => {
                self.missing = None;
                p
            }
            Err(e) => {
                if self.missing.as_ref() != Some(&e) {
                    warn!(log, "safety filter: {e}; holding the arm where it is");
                    self.missing = Some(e);
                }
                return None;
            }
        };
        let (kin, _) = self.chain.as_ref()?;
        let (thickness, length) = (self.finger_thickness, self.finger_length);
        Some(move |q: &[f32; 6]| {
            let Ok(flange) = kin.forward(&q.map(|x| x as f64)) else { return Vec::new() };
            let flange = pose * flange;
            safety::finger_points(opening, thickness, length, |[x, y, z]| {
                let p = flange * nalgebra::Point3::new(x as f64, y as f64, z as f64);
                [p.x as f32, p.y as f32, p.z as f32]
            })
        })
    }
}

/// The kinematic chain of a URDF from its root link to `tool_link`, whose
/// moving joints must be the policy's six (`joint1` … `joint6`, in order).
fn arm_chain(xml: &str, tool_link: &str) -> Result<(urdf::Chain, String), String> {
    let robot = urdf::Robot::from_urdf(xml).map_err(|e| e.to_string())?;
    let root = robot
        .root_of(tool_link)
        .ok_or_else(|| format!("robot_description: no link '{tool_link}' below a root link (parameter 'tool_link')"))?;
    let chain = robot.chain(&root, tool_link).map_err(|e| format!("{e} (parameter 'tool_link')"))?;
    if chain.moving() != data::ARM_JOINTS[..6] {
        return Err(format!(
            "robot_description: the chain from '{root}' to '{tool_link}' moves {}, not the policy's {}",
            chain.moving().join(", "),
            data::ARM_JOINTS[..6].join(", ")
        ));
    }
    Ok((chain, root))
}

/// A vehicle's command topic: geometry_msgs/Twist, or with `stamped`
/// geometry_msgs/TwistStamped (what ros2_control's diff_drive_controller
/// and Nav2 take since Jazzy), stamped with the camera frame it was
/// computed from.
pub enum VehicleCommand {
    /// `cmd_vel` as geometry_msgs/Twist.
    Plain(Publisher<Twist>),
    /// `cmd_vel` as geometry_msgs/TwistStamped, `frame_id` in its header.
    Stamped(Publisher<TwistStamped>, String),
}

impl VehicleCommand {
    /// Publishes `twist`, stamped `stamp` when stamped.
    pub fn publish(&self, twist: Twist, stamp: &Time) -> Result<(), s2r_runtime::PublishError> {
        match self {
            VehicleCommand::Plain(p) => p.publish(twist),
            VehicleCommand::Stamped(p, frame) => {
                p.publish(TwistStamped { header: Header { stamp: stamp.clone(), frame_id: frame.clone() }, twist })
            }
        }
    }
}

/// The robot's side of the node: its state subscription(s) and its command publisher.
enum Io {
    Vehicle { odom: Subscription<Odometry>, cmd: VehicleCommand, max_speed: f32, max_yaw_rate: f32 },
    Arm { joints: Subscription<JointState>, grasped: Subscription<Bool>, cmd: Publisher<JointState>, lower: [f32; 7], upper: [f32; 7] },
}

fn policy_node(ctx: Context, args: RosArgs) -> NodeFuture {
    Box::pin(async move {
        let node = Node::new(&ctx, "policy_node", &args)?;
        let log = node.logger().clone();
        let shipped = shipped_checkpoint().map(|p| p.display().to_string()).unwrap_or_default();
        let or_shipped = |p: String| if p.is_empty() { shipped.clone() } else { p };
        let ck_param = or_shipped(node.declare_parameter("checkpoint", String::new())?);
        let camera: String = node.declare_parameter("camera", "front".to_string())?;
        let rate: f64 = node.declare_parameter("rate", 20.0)?;
        let max_speed: f64 = node.declare_parameter("max_speed", 15.0)?;
        let max_yaw_rate: f64 = node.declare_parameter("max_yaw_rate", 0.8)?;
        let joint_lower: Vec<f64> = node.declare_parameter("joint_lower", vec![-3.1, -1.9, -2.6, -3.1, -2.0, -3.1])?;
        let joint_upper: Vec<f64> = node.declare_parameter("joint_upper", vec![3.1, 1.9, 2.6, 3.1, 2.0, 3.1])?;
        let max_gripper: f64 = node.declare_parameter("max_gripper", 0.12)?;
        let stale_ms: i64 = node.declare_parameter("stale_ms", 300)?;
        let reasoning_on: bool = node.declare_parameter("reasoning", false)?;
        let tool_link: String = node.declare_parameter("tool_link", "tool0".to_string())?;
        let finger_length: f64 = node.declare_parameter("finger_length", 0.07)?;
        let finger_thickness: f64 = node.declare_parameter("finger_thickness", 0.016)?;
        let stamped: bool = node.declare_parameter("stamped", false)?;
        let stamp_with: String = node.declare_parameter("stamp", "now".to_string())?;
        let stamp_frames = match stamp_with.as_str() {
            "now" => false,
            "frame" => true,
            other => return Err(format!("parameter 'stamp' must be now or frame, got '{other}'").into()),
        };
        let transport = s2r_image::transport::declare_input(&node)?;
        if !(rate > 0.0 && rate <= 1000.0) {
            return Err(format!("parameter 'rate' must be in (0, 1000] Hz, got {rate}").into());
        }
        if !(max_speed >= 0.0 && max_yaw_rate >= 0.0 && max_gripper >= 0.0) || stale_ms < 1 {
            return Err("parameters 'max_speed', 'max_yaw_rate' and 'max_gripper' must not be negative, 'stale_ms' at least 1".into());
        }
        if joint_lower.len() != 6
            || joint_upper.len() != 6
            || joint_lower.iter().zip(&joint_upper).any(|(l, u)| l.partial_cmp(u).is_none_or(|o| o.is_gt()))
        {
            return Err(format!(
                "parameters 'joint_lower' and 'joint_upper' must be six radians each, lower ≤ upper; got {joint_lower:?} and {joint_upper:?}"
            )
            .into());
        }
        if ck_param.is_empty() {
            return Err("parameter 'checkpoint' is empty and no shipped policy was found (models/policy/policy.safetensors); \
                        record demonstrations and train one: `s2r demos --scenario icy_night_crossing -o demos && s2r train policy demos -o policy.safetensors`"
                .into());
        }
        let device: String = node.declare_parameter("device", "cpu".to_string())?;
        let device = s2r_train::device(&device).map_err(|e| format!("parameter 'device': {e}"))?;
        let mut pilot = Pilot::load_on(Path::new(&ck_param), &device).map_err(|e| format!("parameter 'checkpoint': {e}"))?;
        let robot = pilot.config().robot;
        let mut watch = s2r_train::CheckpointWatch::new(&ck_param);
        // trainer_node's new policy models (trainer/models) set the checkpoint parameter.
        let updates = s2r_train::ModelUpdates::new(&node, "policy", "checkpoint")?;
        let mut image = ImageSubscription::new(&node, &format!("{camera}/image_raw"), transport, Qos::sensor_data().depth(5))?;
        let io = match robot {
            Robot::Vehicle => Io::Vehicle {
                odom: node.create_subscription::<Odometry>("odom", Qos::sensor_data().depth(10))?,
                cmd: if stamped {
                    VehicleCommand::Stamped(node.create_publisher("cmd_vel", Qos::reliable().depth(10))?, "base_link".into())
                } else {
                    VehicleCommand::Plain(node.create_publisher("cmd_vel", Qos::reliable().depth(10))?)
                },
                max_speed: max_speed as f32,
                max_yaw_rate: max_yaw_rate as f32,
            },
            Robot::Arm => {
                let mut lower = [0f32; 7];
                let mut upper = [0f32; 7];
                for k in 0..6 {
                    lower[k] = joint_lower[k] as f32;
                    upper[k] = joint_upper[k] as f32;
                }
                upper[6] = max_gripper as f32;
                Io::Arm {
                    joints: node.create_subscription::<JointState>("joint_states", Qos::sensor_data().depth(10))?,
                    grasped: node.create_subscription::<Bool>("gripper/grasped", Qos::sensor_data().depth(10))?,
                    cmd: node.create_publisher::<JointState>("joint_commands", Qos::reliable().depth(10))?,
                    lower,
                    upper,
                }
            }
        };
        let mut filter = if reasoning_on { Some(SafetyFilter::new(&node)?) } else { None };
        let mut arm_geometry = match (reasoning_on, robot) {
            (true, Robot::Arm) => {
                if !(finger_length > 0.0 && finger_thickness >= 0.0) {
                    return Err(format!(
                        "parameters 'finger_length' and 'finger_thickness' must be a positive length and a thickness, got {finger_length} and {finger_thickness}"
                    )
                    .into());
                }
                Some(ArmGeometry::new(&node, tool_link.clone(), finger_length as f32, finger_thickness as f32)?)
            }
            _ => None,
        };
        let (state_topic, cmd_topic, state_what) = match robot {
            Robot::Vehicle => ("odom", "cmd_vel", "odometry"),
            Robot::Arm => ("joint_states", "joint_commands", "joint states"),
        };
        info!(
            log,
            "{} ({:?}, {}x{} input, camera '{}'): {} + {} -> {} at {rate} Hz",
            ck_param,
            robot,
            pilot.config().width,
            pilot.config().height,
            pilot.config().camera,
            image.topic(),
            node.resolve_topic(state_topic).unwrap_or_default(),
            node.resolve_topic(cmd_topic).unwrap_or_default()
        );
        let stale = Duration::from_millis(stale_ms as u64);
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut shutdown = std::pin::pin!(s2r_runtime::shutdown::signal());
        let (mut last_frame, mut last_state): (Option<Instant>, Option<Instant>) = (None, None);
        let mut state: Vec<f32> = vec![0.0; robot.state_scale().len()];
        let mut measured = [0f32; 7];
        let mut command: Vec<f32> = vec![0.0; robot.action_scale().len()];
        // The stamp of the camera frame the command was computed from.
        let mut command_stamp = Time::default();
        let (mut frames, mut refused, mut clamped, mut dropped, mut bad_states) = (0u64, 0u64, 0u64, 0u64, 0u64);
        let mut was_stale = true;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = &mut shutdown => break,
            }
            updates.poll(&node);
            let wanted = node.parameter::<String>("checkpoint").map(or_shipped).unwrap_or_else(|| watch.current().to_string());
            let before = watch.current().to_string();
            if let Some(path) = watch.due(&wanted) {
                match Pilot::load_on(Path::new(&path), &device) {
                    Ok(p) if p.config().robot != robot => {
                        warn!(log, "checkpoint {path} drives {:?}, this node {robot:?}: not loaded, keeping {before}", p.config().robot)
                    }
                    Ok(p) => {
                        info!(log, "loaded checkpoint {path}");
                        pilot = p;
                    }
                    Err(e) => warn!(log, "checkpoint not reloaded, keeping {before}: {e}"),
                }
            }
            match &io {
                Io::Vehicle { odom, .. } => {
                    while let Some(o) = odom.try_recv() {
                        state = vec![o.twist.twist.linear.x as f32, o.twist.twist.angular.z as f32];
                        last_state = Some(Instant::now());
                    }
                }
                Io::Arm { joints, grasped, .. } => {
                    while let Some(j) = joints.try_recv() {
                        match data::arm_joints(&j) {
                            Some(q) => {
                                measured = q;
                                state[..7].copy_from_slice(&q);
                                last_state = Some(Instant::now());
                            }
                            None => {
                                bad_states += 1;
                                if s2r_runtime::log::worth_logging(bad_states) {
                                    warn!(
                                        log,
                                        "joint_states without a finite position for each of {}: ignored ({bad_states} so far)",
                                        data::ARM_JOINTS.join(", ")
                                    );
                                }
                            }
                        }
                    }
                    while let Some(g) = grasped.try_recv() {
                        state[7] = if g.data { 1.0 } else { 0.0 };
                    }
                }
            }
            let mut newest = None;
            while let Some(f) = image.try_recv() {
                if newest.is_some() {
                    dropped += 1;
                }
                newest = Some(f.image);
            }
            if let Some(img) = newest {
                let t = s2r_runtime::stamp_ns(&img.header.stamp) as f64 * 1e-9;
                let topic = image.topic();
                match tokio::task::block_in_place(|| pilot.act(t, &img, &topic, &state)) {
                    Ok(c) => {
                        command = c;
                        command_stamp = img.header.stamp.clone();
                        frames += 1;
                        last_frame = Some(Instant::now());
                    }
                    Err(e) => {
                        refused += 1;
                        if s2r_runtime::log::worth_logging(refused) {
                            warn!(log, "{e}; frame refused ({refused} refused so far)");
                        }
                    }
                }
            }
            let fresh = |t: Option<Instant>| t.is_some_and(|t| t.elapsed() <= stale);
            let live = fresh(last_frame) && fresh(last_state);
            if live && was_stale {
                info!(log, "driving: camera and {state_what} are live");
                was_stale = false;
            } else if !live && !was_stale {
                warn!(
                    log,
                    "no camera frame or {state_what} for {stale_ms} ms: {} ({frames} frames driven, {dropped} dropped behind)",
                    match robot {
                        Robot::Vehicle => "commanding a stop",
                        Robot::Arm => "holding the arm where it is",
                    }
                );
                was_stale = true;
                pilot.reset();
            }
            let mut note_clamp = |c: bool| {
                if c {
                    clamped += 1;
                    if s2r_runtime::log::worth_logging(clamped) {
                        warn!(log, "command {command:?} outside the limits, clamped ({clamped} so far)");
                    }
                }
            };
            match &io {
                Io::Vehicle { cmd, max_speed, max_yaw_rate, .. } => {
                    let mut out = if live {
                        let (twist, c) = clamp(command[0], command[1], *max_speed, *max_yaw_rate);
                        note_clamp(c);
                        twist
                    } else {
                        Twist::default()
                    };
                    if let Some(f) = filter.as_mut() {
                        out = f.apply(out, stale, &log);
                    }
                    let stamp = if live && stamp_frames { command_stamp.clone() } else { node.now().to_msg() };
                    if let Err(e) = cmd.publish(out, &stamp) {
                        warn!(log, "cmd_vel: {e}");
                    }
                }
                Io::Arm { cmd, lower, upper, .. } => {
                    // Nothing to hold before the first joint state.
                    if last_state.is_none() {
                        continue;
                    }
                    let mut out = if live {
                        let (j, c) = clamp_joints(&command, &measured, lower, upper);
                        note_clamp(c);
                        j
                    } else {
                        clamp_joints(&measured, &measured, lower, upper).0
                    };
                    if let (Some(f), Some(arm)) = (filter.as_mut(), arm_geometry.as_mut()) {
                        arm.update(&log);
                        let asked: [f32; 7] = std::array::from_fn(|k| out.position[k] as f32);
                        let q = f.apply_joints(asked, &measured, arm, stale, &log);
                        if q != asked {
                            out = clamp_joints(&q, &measured, lower, upper).0;
                        }
                    }
                    if let Err(e) = cmd.publish(out) {
                        warn!(log, "joint_commands: {e}");
                    }
                }
            }
        }
        Ok(())
    })
}
