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
//!   `cmd_vel` (geometry_msgs/Twist, reliable) out, within `max_speed` (m/s)
//!   and `max_yaw_rate` (rad/s); a stale input commands a stop;
//! - an arm: `joint_states` (sensor_msgs/JointState with joint1..joint6 and
//!   `gripper`, the opening in metres) and `gripper/grasped` (std_msgs/Bool)
//!   in, `joint_commands` (sensor_msgs/JointState, the same names) out,
//!   within `joint_lower`/`joint_upper` (rad, six each) and `max_gripper`
//!   (m); a stale input holds the arm where it is.
//!
//! When no frame or no state arrived for `stale_ms` (300) it says so once per
//! stale spell.
//!
//! With the parameter `reasoning` true (a vehicle), the commands pass the
//! safety filter ([`sim2real_msgs::safety`]) of the newest chain on
//! `reasoning` (sim2real_msgs/Reasoning, from reason_node): the speed comes
//! down to its `max_speed`, the yaw rate with it; each chain that changed a
//! command is published once on `safety_filter` and logged. Without a chain
//! for `stale_ms` the car is stopped (the conservative side).
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
use s2r_runtime::{info, warn, Context, Node, Publisher, Qos, RosArgs, Subscription};
use sim2real_msgs::geometry_msgs::msg::{Twist, Vector3};
use sim2real_msgs::nav_msgs::msg::Odometry;
use sim2real_msgs::safety;
use sim2real_msgs::sensor_msgs::msg::JointState;
use sim2real_msgs::sim2real_msgs::msg::Reasoning;
use sim2real_msgs::std_msgs::msg::Bool;

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
    published: Option<sim2real_msgs::builtin_interfaces::msg::Time>,
    changed: u64,
    blind: bool,
}

impl SafetyFilter {
    /// `out` within the newest chain's constraints; a stop without a fresh chain.
    fn apply(&mut self, out: Twist, stale: Duration, log: &s2r_runtime::Logger) -> Twist {
        while let Some(r) = self.chains.try_recv() {
            self.newest = Some((r, Instant::now()));
        }
        let Some((chain, _)) = self.newest.as_ref().filter(|(_, t)| t.elapsed() <= stale) else {
            if !self.blind {
                warn!(log, "no reasoning for {} ms: commanding a stop", stale.as_millis());
                self.blind = true;
            }
            return Twist::default();
        };
        if self.blind {
            info!(log, "safety filter: reasoning is live");
            self.blind = false;
        }
        let f = safety::filter_twist(out.linear.x, out.angular.z, chain);
        if !f.changed {
            return out;
        }
        self.changed += 1;
        if self.published.as_ref() != Some(&chain.header.stamp) {
            self.published = Some(chain.header.stamp.clone());
            if s2r_runtime::log::worth_logging(self.changed) {
                let why: Vec<&str> = chain.steps.iter().map(|s| s.text.as_str()).collect();
                info!(
                    log,
                    "safety filter: {:.1} -> {:.1} m/s ({}: {}; {} commands changed so far)",
                    out.linear.x,
                    f.linear,
                    chain.situation,
                    why.join("; "),
                    self.changed
                );
            }
            if let Err(e) = self.changed_by.publish((**chain).clone()) {
                warn!(log, "safety_filter: {e}");
            }
        }
        Twist { linear: Vector3 { x: f.linear, ..Default::default() }, angular: Vector3 { z: f.angular, ..Default::default() } }
    }
}

/// The robot's side of the node: its state subscription(s) and its command publisher.
enum Io {
    Vehicle { odom: Subscription<Odometry>, cmd: Publisher<Twist>, max_speed: f32, max_yaw_rate: f32 },
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
        let mut pilot = Pilot::load(Path::new(&ck_param)).map_err(|e| format!("parameter 'checkpoint': {e}"))?;
        let robot = pilot.config().robot;
        let mut watch = s2r_train::CheckpointWatch::new(&ck_param);
        let mut image = ImageSubscription::new(&node, &format!("{camera}/image_raw"), transport, Qos::sensor_data().depth(5))?;
        let io = match robot {
            Robot::Vehicle => Io::Vehicle {
                odom: node.create_subscription::<Odometry>("odom", Qos::sensor_data().depth(10))?,
                cmd: node.create_publisher::<Twist>("cmd_vel", Qos::reliable().depth(10))?,
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
        let mut filter = match (reasoning_on, robot) {
            (false, _) => None,
            (true, Robot::Vehicle) => Some(SafetyFilter {
                chains: node.create_subscription::<Reasoning>("reasoning", Qos::reliable().depth(10))?,
                changed_by: node.create_publisher::<Reasoning>("safety_filter", Qos::reliable().depth(10))?,
                newest: None,
                published: None,
                changed: 0,
                blind: true,
            }),
            (true, Robot::Arm) => {
                return Err(
                    "parameter 'reasoning': reason_node's constraints are for a vehicle (max_speed); this checkpoint drives an arm".into()
                )
            }
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
        let (mut frames, mut refused, mut clamped, mut dropped, mut bad_states) = (0u64, 0u64, 0u64, 0u64, 0u64);
        let mut was_stale = true;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = &mut shutdown => break,
            }
            let wanted = node.parameter::<String>("checkpoint").map(or_shipped).unwrap_or_else(|| watch.current().to_string());
            let before = watch.current().to_string();
            if let Some(path) = watch.due(&wanted) {
                match Pilot::load(Path::new(&path)) {
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
                                        "joint_states without all of {}: ignored ({bad_states} so far)",
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
                    if let Err(e) = cmd.publish(out) {
                        warn!(log, "cmd_vel: {e}");
                    }
                }
                Io::Arm { cmd, lower, upper, .. } => {
                    // Nothing to hold before the first joint state.
                    if last_state.is_none() {
                        continue;
                    }
                    let out = if live {
                        let (j, c) = clamp_joints(&command, &measured, lower, upper);
                        note_clamp(c);
                        j
                    } else {
                        clamp_joints(&measured, &measured, lower, upper).0
                    };
                    if let Err(e) = cmd.publish(out) {
                        warn!(log, "joint_commands: {e}");
                    }
                }
            }
        }
        Ok(())
    })
}
