//! The `safety_node` executable: the one node that publishes to the robot's
//! command topic.
//!
//! It forwards the controller's commands (policy_node's, remapped onto
//! `cmd_vel_in` / `joint_commands_in`) to `cmd_vel` / `joint_commands` the
//! moment they arrive, unless something holds the robot; then it publishes,
//! at `rate` Hz, a stop (a zero geometry_msgs/Twist) or, for an arm, the
//! joint positions measured when the hold began (sensor_msgs/JointState,
//! gripper included). What holds the robot ([`crate::watch::Reason`]):
//! - `e_stop` (std_msgs/Bool from any publisher; a transient-local one's
//!   stop sent before the watchdog started still holds) said true and has
//!   not said false;
//! - no camera frame (`<camera>/image_raw`, or its `/compressed` sibling:
//!   parameter `transport`), no state (`odom` / `joint_states`) or no
//!   command for `stale_ms` (300);
//! - perception's confidence (std_msgs/Float32 on `confidence_topic`, default
//!   `perception/front/confidence`, from perception_node) below
//!   `min_confidence` for `confidence_frames` (3) readings in a row, or not
//!   heard for `confidence_stale_ms` (1000); `min_confidence` 0 (the
//!   default) watches no perception;
//! - a node of `required_nodes` (names, relative ones in this node's
//!   namespace) not in the graph yet, or gone from it.
//!
//! Every change of what holds the robot, and the release, is logged and
//! published on `safety/events` (sim2real_msgs/SafetyEvent, reliable,
//! transient local). Another node publishing on the command topic is named
//! in a warning once: nothing but the watchdog should. On SIGINT/SIGTERM
//! its last message to the robot is a stop.
//!
//! Parameters: `robot` (`vehicle`, `arm`, or `auto`: told by the first
//! message on either's topics, commanding nothing until then), `stamped`
//! (a vehicle's commands in and out as geometry_msgs/TwistStamped, what
//! ros2_control's diff_drive_controller and Nav2 take since Jazzy; the
//! stops it sends are stamped now), `camera` (`front`), `transport`,
//! `rate` (20), `stale_ms`, `min_confidence`, `confidence_topic`,
//! `confidence_frames`, `confidence_stale_ms`, `required_nodes`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use s2r_image::transport::{compressed_topic, Transport};
use s2r_runtime::component::{Component, NodeFuture};
use s2r_runtime::graph::{EndpointKind, NodeWatcher};
use s2r_runtime::{info, warn, Context, Logger, Node, Publisher, Qos, RosArgs, Subscription};
use sim2real_msgs::geometry_msgs::msg::{Twist, TwistStamped};
use sim2real_msgs::nav_msgs::msg::Odometry;
use sim2real_msgs::sensor_msgs::msg::JointState;
use sim2real_msgs::sim2real_msgs::msg::SafetyEvent;
use sim2real_msgs::std_msgs::msg::{Bool, Float32, Header};

use crate::watch::{describe, same_reasons, Config, Reason, Watch};
use crate::SafetyError;

/// The node as a component (`safety_node`, `s2r run`, `s2r launch --compose`).
pub const SAFETY_NODE: Component = Component {
    exec: "safety_node",
    about: "the safety watchdog: the only node that commands the robot; holds it on stale inputs, an emergency stop, a dead node or collapsed perception",
    main: safety_node,
    // It sends the robot a stop on its way out.
    graceful: true,
};

/// What the watchdog commands: a vehicle's velocity or an arm's joints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Robot {
    /// geometry_msgs/Twist on `cmd_vel`; held with zero velocity.
    Vehicle,
    /// sensor_msgs/JointState on `joint_commands`; held where it was.
    Arm,
}

impl Robot {
    /// `vehicle`, `arm`, or `auto` (None: told by the first message that arrives).
    pub fn parse(s: &str) -> Result<Option<Robot>, SafetyError> {
        match s {
            "vehicle" => Ok(Some(Robot::Vehicle)),
            "arm" => Ok(Some(Robot::Arm)),
            "auto" => Ok(None),
            other => Err(SafetyError::Parameter { name: "robot".into(), problem: format!("'{other}' is not vehicle, arm or auto") }),
        }
    }
}

/// With `robot` `auto`: which robot this is, from the first message on a
/// vehicle's topics (`cmd_vel_in`, `odom`) or an arm's (`joint_commands_in`,
/// `joint_states`). Nothing is commanded meanwhile: there is nothing to forward.
async fn detect(node: &Node, stamped: bool) -> Result<(Robot, String), SafetyError> {
    // The controller's commands, of the type it publishes.
    let (twist, twist_stamped) = if stamped {
        (None, Some(node.create_subscription::<TwistStamped>("cmd_vel_in", Qos::reliable().depth(1))?))
    } else {
        (Some(node.create_subscription::<Twist>("cmd_vel_in", Qos::reliable().depth(1))?), None)
    };
    let vehicle_command = async {
        match (&twist, &twist_stamped) {
            (Some(t), _) => drop(t.recv().await),
            (_, Some(t)) => drop(t.recv().await),
            _ => std::future::pending().await,
        }
    };
    let odom = node.create_subscription::<Odometry>("odom", Qos::sensor_data().depth(1))?;
    let joints_in = node.create_subscription::<JointState>("joint_commands_in", Qos::reliable().depth(1))?;
    let joints = node.create_subscription::<JointState>("joint_states", Qos::sensor_data().depth(1))?;
    let topic = |t: &str| node.resolve_topic(t).unwrap_or_default();
    Ok(tokio::select! {
        _ = vehicle_command => (Robot::Vehicle, topic("cmd_vel_in")),
        _ = odom.recv() => (Robot::Vehicle, topic("odom")),
        _ = joints_in.recv() => (Robot::Arm, topic("joint_commands_in")),
        _ = joints.recv() => (Robot::Arm, topic("joint_states")),
    })
}

/// The command side: what comes in from the controller, what goes to the robot.
enum Commands {
    Vehicle { input: Subscription<Twist>, output: Publisher<Twist>, state: Subscription<Odometry> },
    VehicleStamped { input: Subscription<TwistStamped>, output: Publisher<TwistStamped>, state: Subscription<Odometry> },
    Arm { input: Subscription<JointState>, output: Publisher<JointState>, state: Subscription<JointState>, measured: Option<JointState> },
}

/// The fully qualified name of `name` from a node whose own is `own` (`/ns/safety_node`).
pub fn qualify(name: &str, own: &str) -> String {
    if name.starts_with('/') {
        return name.to_string();
    }
    let ns = own.rsplit_once('/').map(|(ns, _)| ns).unwrap_or("");
    format!("{ns}/{name}")
}

fn parameter(name: &str, problem: String) -> SafetyError {
    SafetyError::Parameter { name: name.into(), problem }
}

/// Reads the parameters into a [`Config`].
fn config(node: &Node) -> Result<Config, SafetyError> {
    let stale_ms: i64 = node.declare_parameter("stale_ms", 300)?;
    let min_confidence: f64 = node.declare_parameter("min_confidence", 0.0)?;
    let confidence_frames: i64 = node.declare_parameter("confidence_frames", 3)?;
    let confidence_stale_ms: i64 = node.declare_parameter("confidence_stale_ms", 1000)?;
    let required: Vec<String> = node.declare_parameter("required_nodes", Vec::<String>::new())?;
    if stale_ms < 1 {
        return Err(parameter("stale_ms", format!("must be at least 1 ms, got {stale_ms}")));
    }
    if !(0.0..=1.0).contains(&min_confidence) {
        return Err(parameter("min_confidence", format!("must be in [0, 1] (0: perception not watched), got {min_confidence}")));
    }
    if confidence_frames < 1 {
        return Err(parameter("confidence_frames", format!("must be at least 1, got {confidence_frames}")));
    }
    if confidence_stale_ms < 1 {
        return Err(parameter("confidence_stale_ms", format!("must be at least 1 ms, got {confidence_stale_ms}")));
    }
    if let Some(bad) = required.iter().find(|n| n.is_empty() || n.ends_with('/')) {
        return Err(parameter("required_nodes", format!("'{bad}' is not a node name")));
    }
    Ok(Config {
        stale: Duration::from_millis(stale_ms as u64),
        min_confidence: min_confidence as f32,
        confidence_frames: confidence_frames as u32,
        confidence_stale: Duration::from_millis(confidence_stale_ms as u64),
        required: required.iter().map(|n| qualify(n, node.fully_qualified_name())).collect(),
    })
}

/// Notes the arrival instant of every frame on a camera topic, without
/// decoding it (a raw subscription: the watchdog only needs to know it came).
/// Tasks that end with the node (composed in one process, a node's future
/// is dropped while the process goes on).
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

fn watch_camera(
    node: &Node,
    camera: &str,
    transport: Transport,
    last: Arc<Mutex<Option<Instant>>>,
) -> Result<(Vec<String>, Tasks), SafetyError> {
    // Resolved first, as image_transport does: a remap of the raw topic covers its /compressed sibling.
    let raw = node.resolve_topic(&format!("{camera}/image_raw"))?;
    let (mut topics, mut tasks) = (Vec::new(), Tasks(Vec::new()));
    let mut subscribe = |topic: String, type_name: &str| -> Result<(), SafetyError> {
        let sub = node.create_raw_subscription(&topic, type_name, Qos::sensor_data().depth(2))?;
        topics.push(topic);
        let last = last.clone();
        tasks.0.push(tokio::spawn(async move {
            loop {
                sub.recv().await;
                *last.lock().unwrap() = Some(Instant::now());
            }
        }));
        Ok(())
    };
    if transport != Transport::Compressed {
        subscribe(raw.clone(), "sensor_msgs/msg/Image")?;
    }
    if transport != Transport::Raw {
        subscribe(compressed_topic(&raw), "sensor_msgs/msg/CompressedImage")?;
    }
    Ok((topics, tasks))
}

struct Events {
    publisher: Publisher<SafetyEvent>,
    count: u32,
}

impl Events {
    fn send(&mut self, node: &Node, engaged: bool, reasons: &[Reason]) {
        if engaged {
            self.count += 1;
        }
        let event = SafetyEvent {
            header: Header { stamp: node.now().to_msg(), frame_id: String::new() },
            engaged,
            reasons: reasons.iter().map(|r| r.code().to_string()).collect(),
            detail: if engaged { describe(reasons) } else { "released: the controller's commands pass".into() },
            count: self.count,
        };
        self.publisher.publish_or_log(event, node.logger());
    }
}

/// Warns once about each other node that publishes on the command topic.
struct Bypass {
    topic: String,
    /// This node's fully qualified name: its own writer is not a bypass.
    own: String,
    known: BTreeSet<[u8; 16]>,
}

impl Bypass {
    fn check(&mut self, ctx: &Context, watcher: &NodeWatcher, log: &Logger) {
        let writers: Vec<[u8; 16]> = ctx
            .endpoints()
            .into_iter()
            .filter(|e| e.kind == EndpointKind::Publisher && e.topic() == Some(self.topic.as_str()) && !self.known.contains(&e.gid))
            .map(|e| e.gid)
            .collect();
        if writers.is_empty() {
            return;
        }
        let nodes = watcher.nodes();
        for gid in writers {
            // A writer whose node has not announced itself yet is looked at again next time.
            let Some(node) = nodes.iter().find(|n| n.writers.contains(&gid)) else { continue };
            self.known.insert(gid);
            let who = node.fully_qualified_name();
            if who != self.own {
                warn!(log, "{who} also publishes on {}: commands that do not pass this watchdog reach the robot", self.topic);
            }
        }
    }
}

fn safety_node(ctx: Context, args: RosArgs) -> NodeFuture {
    Box::pin(async move {
        let node = Node::new(&ctx, "safety_node", &args)?;
        let log = node.logger().clone();
        let robot = Robot::parse(&node.declare_parameter("robot", "vehicle".to_string())?)?;
        let camera: String = node.declare_parameter("camera", "front".to_string())?;
        let transport = s2r_image::transport::declare_input(&node)?;
        let rate: f64 = node.declare_parameter("rate", 20.0)?;
        let confidence_topic: String = node.declare_parameter("confidence_topic", "perception/front/confidence".to_string())?;
        let stamped: bool = node.declare_parameter("stamped", false)?;
        if !(rate > 0.0 && rate <= 1000.0) {
            return Err(parameter("rate", format!("must be in (0, 1000] Hz, got {rate}")).into());
        }
        let cfg = config(&node)?;
        // A graceful node: it watches the signals itself, to send a stop on its way out.
        let mut shutdown = std::pin::pin!(s2r_runtime::shutdown::signal());
        let last_frame: Arc<Mutex<Option<Instant>>> = Arc::default();
        let (camera_topics, _camera_tasks) = watch_camera(&node, &camera, transport, last_frame.clone())?;
        // Latched stops (transient local: one sent before this node started still holds) and
        // stops from any publisher at all (a best-effort volatile reader matches every writer).
        let e_stops = [
            node.create_subscription::<Bool>("e_stop", Qos::transient_local().depth(10))?,
            node.create_subscription::<Bool>("e_stop", Qos::sensor_data().depth(10))?,
        ];
        let confidence = if cfg.min_confidence > 0.0 {
            Some(node.create_subscription::<Float32>(&confidence_topic, Qos::sensor_data().depth(10))?)
        } else {
            None
        };
        let robot = match robot {
            Some(r) => r,
            None => {
                info!(log, "robot auto: waiting for a vehicle's cmd_vel_in or odom, or an arm's joint_commands_in or joint_states");
                let (r, from) = tokio::select! {
                    d = detect(&node, stamped) => d?,
                    _ = &mut shutdown => return Ok(()),
                };
                info!(log, "robot auto: {r:?} (a message on {from})");
                r
            }
        };
        let mut commands = match robot {
            Robot::Vehicle if stamped => Commands::VehicleStamped {
                input: node.create_subscription::<TwistStamped>("cmd_vel_in", Qos::reliable().depth(10))?,
                output: node.create_publisher::<TwistStamped>("cmd_vel", Qos::reliable().depth(10))?,
                state: node.create_subscription::<Odometry>("odom", Qos::sensor_data().depth(10))?,
            },
            Robot::Vehicle => Commands::Vehicle {
                input: node.create_subscription::<Twist>("cmd_vel_in", Qos::reliable().depth(10))?,
                output: node.create_publisher::<Twist>("cmd_vel", Qos::reliable().depth(10))?,
                state: node.create_subscription::<Odometry>("odom", Qos::sensor_data().depth(10))?,
            },
            Robot::Arm => Commands::Arm {
                input: node.create_subscription::<JointState>("joint_commands_in", Qos::reliable().depth(10))?,
                output: node.create_publisher::<JointState>("joint_commands", Qos::reliable().depth(10))?,
                state: node.create_subscription::<JointState>("joint_states", Qos::sensor_data().depth(10))?,
                measured: None,
            },
        };
        let (cmd_in, cmd_out, state_topic) = match robot {
            Robot::Vehicle => ("cmd_vel_in", "cmd_vel", "odom"),
            Robot::Arm => ("joint_commands_in", "joint_commands", "joint_states"),
        };
        let mut events =
            Events { publisher: node.create_publisher::<SafetyEvent>("safety/events", Qos::transient_local().depth(50))?, count: 0 };
        let watcher = NodeWatcher::start(&ctx)?;
        let mut bypass =
            Bypass { topic: node.resolve_topic(cmd_out)?, own: node.fully_qualified_name().to_string(), known: BTreeSet::new() };
        info!(
            log,
            "{} -> {} ({:?}); holds on: e_stop {}, camera {} / {} / {} older than {} ms{}{}",
            node.resolve_topic(cmd_in)?,
            bypass.topic,
            robot,
            node.resolve_topic("e_stop")?,
            camera_topics.join(" or "),
            node.resolve_topic(state_topic)?,
            node.resolve_topic(cmd_in)?,
            cfg.stale.as_millis(),
            if cfg.min_confidence > 0.0 {
                format!(", {} below {} ({} in a row)", node.resolve_topic(&confidence_topic)?, cfg.min_confidence, cfg.confidence_frames)
            } else {
                String::new()
            },
            if cfg.required.is_empty() { String::new() } else { format!(", required nodes {}", cfg.required.join(", ")) }
        );
        let mut watch = Watch::new(cfg);
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut nodes: BTreeSet<String> = BTreeSet::new();
        // What holds the robot now (empty: commands pass), and the arm's hold position.
        let mut holding: Option<Vec<Reason>> = None;
        let mut hold_at: Option<JointState> = None;
        let mut ticks = 0u64;
        loop {
            // A controller command, the tick, or the end.
            let event = match &commands {
                Commands::Vehicle { input, .. } => tokio::select! {
                    _ = ticker.tick() => Event::Tick,
                    c = input.recv() => Event::Command(Command::Twist(c)),
                    _ = &mut shutdown => Event::Shutdown,
                },
                Commands::VehicleStamped { input, .. } => tokio::select! {
                    _ = ticker.tick() => Event::Tick,
                    c = input.recv() => Event::Command(Command::TwistStamped(c)),
                    _ = &mut shutdown => Event::Shutdown,
                },
                Commands::Arm { input, .. } => tokio::select! {
                    _ = ticker.tick() => Event::Tick,
                    c = input.recv() => Event::Command(Command::Joints(c)),
                    _ = &mut shutdown => Event::Shutdown,
                },
            };
            let arrived = match event {
                Event::Tick => None,
                Event::Command(c) => Some(c),
                Event::Shutdown => {
                    // The last word to the robot is a stop: a base without a command timeout
                    // would otherwise keep the last command it was forwarded.
                    commands.pin_hold(&mut hold_at);
                    commands.stop(&node, hold_at.as_ref());
                    info!(log, "shutting down: a stop sent to {}", bypass.topic);
                    return Ok(());
                }
            };
            let now = Instant::now();
            if arrived.is_some() {
                watch.command(now);
            } else {
                ticks += 1;
                if !watch.config().required.is_empty() {
                    nodes = watcher.nodes().iter().map(|n| n.fully_qualified_name()).collect();
                }
                // Who else writes to the robot: every second or so.
                if (ticks - 1).is_multiple_of((rate.ceil() as u64).max(1)) {
                    bypass.check(&ctx, &watcher, &log);
                }
            }
            if let Some(t) = *last_frame.lock().unwrap() {
                watch.camera(t);
            }
            for e_stop in &e_stops {
                while let Some(b) = e_stop.try_recv() {
                    if b.data != watch.e_stopped() {
                        info!(log, "e_stop: {}", if b.data { "on" } else { "off" });
                    }
                    watch.e_stop(b.data);
                }
            }
            if let Some(c) = &confidence {
                while let Some(v) = c.try_recv() {
                    watch.confidence(now, v.data);
                }
            }
            match &mut commands {
                Commands::Vehicle { state, .. } | Commands::VehicleStamped { state, .. } => {
                    while state.try_recv().is_some() {
                        watch.state(now);
                    }
                }
                Commands::Arm { state, measured, .. } => {
                    while let Some(j) = state.try_recv() {
                        if j.position.len() == j.name.len() && !j.name.is_empty() && j.position.iter().all(|p| p.is_finite()) {
                            *measured = Some((*j).clone());
                            watch.state(now);
                        }
                    }
                }
            }
            let reasons = watch.reasons(now, &nodes);
            if reasons.is_empty() {
                if holding.take().is_some() {
                    info!(log, "released: the controller's commands pass to {}", bypass.topic);
                    events.send(&node, false, &[]);
                    hold_at = None;
                }
                match (&commands, arrived) {
                    (Commands::Vehicle { output, .. }, Some(Command::Twist(c))) => output.publish_shared_or_log(c, &log),
                    (Commands::VehicleStamped { output, .. }, Some(Command::TwistStamped(c))) => output.publish_shared_or_log(c, &log),
                    (Commands::Arm { output, .. }, Some(Command::Joints(c))) => output.publish_shared_or_log(c, &log),
                    _ => {}
                }
                continue;
            }
            if !holding.as_ref().is_some_and(|h| same_reasons(h, &reasons)) {
                warn!(log, "holding the robot: {}", describe(&reasons));
                events.send(&node, true, &reasons);
                holding = Some(reasons);
                // The first hold goes out at once, not at the next tick.
            } else if arrived.is_some() {
                continue;
            }
            commands.pin_hold(&mut hold_at);
            commands.stop(&node, hold_at.as_ref());
        }
    })
}

/// What the node's loop waits for.
enum Event {
    Tick,
    Command(Command),
    Shutdown,
}

impl Commands {
    /// An arm's hold position: kept once set (released holds clear it), else
    /// the joints measured now, the first time there are some.
    fn pin_hold(&self, hold_at: &mut Option<JointState>) {
        if let (None, Commands::Arm { measured, .. }) = (&hold_at, self) {
            *hold_at = measured.clone();
        }
    }

    /// A stop to the robot: zero velocity, or the arm at `hold` (nothing
    /// without a measured position to hold it at).
    fn stop(&self, node: &Node, hold: Option<&JointState>) {
        let log = node.logger();
        match self {
            Commands::Vehicle { output, .. } => output.publish_or_log(Twist::default(), log),
            Commands::VehicleStamped { output, .. } => output.publish_or_log(
                TwistStamped { header: Header { stamp: node.now().to_msg(), frame_id: "base_link".into() }, twist: Twist::default() },
                log,
            ),
            Commands::Arm { output, .. } => {
                if let Some(h) = hold {
                    let mut hold = h.clone();
                    hold.header.stamp = node.now().to_msg();
                    hold.velocity.clear();
                    hold.effort.clear();
                    output.publish_or_log(hold, log);
                }
            }
        }
    }
}

/// A command that arrived from the controller.
enum Command {
    Twist(Arc<Twist>),
    TwistStamped(Arc<TwistStamped>),
    Joints(Arc<JointState>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_names_resolve_in_the_namespace() {
        assert_eq!(qualify("policy_node", "/robot/safety_node"), "/robot/policy_node");
        assert_eq!(qualify("policy_node", "/safety_node"), "/policy_node");
        assert_eq!(qualify("/other/x", "/robot/safety_node"), "/other/x");
        assert!(Robot::parse("boat").unwrap_err().to_string().contains("'boat' is not vehicle, arm or auto"));
        assert_eq!(Robot::parse("auto").unwrap(), None);
    }
}
