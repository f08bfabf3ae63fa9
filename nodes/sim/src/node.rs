//! The `sim_node` executable: runs a scenario and publishes it.
//!
//! Parameters: `scenario` (a file, or the name of one in the package's
//! `config/scenarios/`), `seed`, `mode` (`realtime` or `lockstep`),
//! `lockstep_pace` (`free`: the next frame as soon as this one is published,
//! or `acknowledged`: once every reliable subscriber in another process has
//! acknowledged everything of this one, so that a recording over DDS loses
//! nothing however slow it is; its publishers are then made with
//! [`Writer::Acknowledged`] and `ros2 node info` does not list them),
//! `real_time_factor`, `duration` (sim seconds, 0 = run until stopped),
//! `image_scale`, `wait_for_subscribers`; for the colour images
//! `publish_transport` (`raw` (default), `compressed`: on
//! `sim/<camera>/image_raw/compressed` instead, `both`), `compression`
//! (`jpeg`, `png`) and `jpeg_quality` (95).
//!
//! Topics (relative names take the node's namespace):
//! `sim/<camera>/{image_raw,depth,segmentation,instances,camera_info,detections}`,
//! `sim/detections3d`, `sim/collisions`, `odom`, `imu`, `joint_states`, `gripper/grasped`,
//! `scenario` (transient local), `robot_description` (an arm's URDF,
//! transient local), `/tf`, `/tf_static` (transient local),
//! `/clock`; it listens on `cmd_vel` (vehicle) and `joint_commands` (arm).
//! With `driver:=expert` the privileged expert (`autopilot`) drives the
//! robot from inside and publishes what it commands on `expert/cmd_vel` or
//! `expert/joint_commands` (demonstrations recorded over DDS).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use s2r_image::transport::{ImagePublisher, Publish};
use s2r_image::Compression;
use s2r_runtime::component::{Component, NodeFuture};
use s2r_runtime::{info, warn, Context, Node, Publisher, Qos, RosArgs, Writer};
use sim2real_msgs::geometry_msgs::msg::Twist;
use sim2real_msgs::nav_msgs::msg::Odometry;
use sim2real_msgs::rosgraph_msgs::msg::Clock;
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image, Imu, JointState};
use sim2real_msgs::sim2real_msgs::msg::{CollisionEvent, ScenarioInfo};
use sim2real_msgs::std_msgs::msg::{Bool, String as StringMsg};
use sim2real_msgs::tf2_msgs::msg::TFMessage;
use sim2real_msgs::vision_msgs::msg::{Detection2DArray, Detection3DArray};

use crate::autopilot::{Autopilot, RobotCommand};
use crate::scenario::Scenario;
use crate::sim::{Sim, SimOptions, Tick};

/// The `sim_node` component: what the `sim_node` binary runs and what `s2r`
/// lists and launches in-process; its parameters and topics are in this
/// module's docs.
pub const SIM_NODE: Component = Component {
    exec: "sim_node",
    about: "simulates a scenario and publishes cameras, depth, segmentation, labels, odometry, TF and /clock",
    main: sim_node,
    graceful: false,
};

/// Where scenario names are looked up (see [`s2r_runtime::share`]).
const SCENARIOS: &str = "config/scenarios";

/// A scenario parameter as a file: a path that exists, or a name in the
/// scenario directories (with or without `.yaml`).
pub fn resolve_scenario(name: &str) -> Result<PathBuf, UnknownScenario> {
    let p = Path::new(name);
    if p.is_file() {
        return Ok(p.canonicalize().unwrap_or_else(|_| p.to_path_buf()));
    }
    if !name.contains('/') {
        let file = if name.ends_with(".yaml") { name.to_string() } else { format!("{name}.yaml") };
        if let Some(found) = s2r_runtime::share::find_shared(SCENARIOS, &file) {
            return Ok(found);
        }
    }
    let known: Vec<String> = s2r_runtime::share::share_dirs(SCENARIOS)
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".yaml")).map(String::from))
        .collect();
    Err(UnknownScenario { name: name.into(), known })
}

/// A scenario parameter that names neither a file nor a shipped scenario.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scenario '{name}' is neither a file nor a known scenario (known: {})", if .known.is_empty() { "none".to_string() } else { .known.join(", ") })]
pub struct UnknownScenario {
    /// The name given.
    pub name: String,
    /// The scenarios there are.
    pub known: Vec<String>,
}

/// The publishers of one camera's topics.
struct CameraPubs {
    image: ImagePublisher,
    depth: Publisher<Image>,
    segmentation: Publisher<Image>,
    instances: Publisher<Image>,
    info: Publisher<CameraInfo>,
    detections: Publisher<Detection2DArray>,
}

/// The publishers of everything a tick carries.
pub struct Pubs {
    cameras: Vec<CameraPubs>,
    detections3d: Publisher<Detection3DArray>,
    collisions: Publisher<CollisionEvent>,
    odom: Publisher<Odometry>,
    imu: Publisher<Imu>,
    joint_states: Publisher<JointState>,
    grasped: Publisher<Bool>,
    tf: Publisher<TFMessage>,
    clock: Publisher<Clock>,
}

impl Pubs {
    /// The publishers of a simulation's topics on a node.
    pub fn new(node: &Node, sim: &Sim, publish: Publish, how: Compression, writer: Writer) -> Result<Pubs, s2r_image::ImageError> {
        let image_qos = Qos::reliable().depth(5);
        let mut cameras = Vec::new();
        for m in &sim.mounts {
            let t = |k: &str| format!("sim/{}/{k}", m.model.name);
            cameras.push(CameraPubs {
                image: ImagePublisher::new_with(node, &t("image_raw"), publish, how, image_qos, writer)?,
                depth: node.create_publisher_with(&t("depth"), image_qos, writer)?,
                segmentation: node.create_publisher_with(&t("segmentation"), image_qos, writer)?,
                instances: node.create_publisher_with(&t("instances"), image_qos, writer)?,
                info: node.create_publisher_with(&t("camera_info"), image_qos, writer)?,
                detections: node.create_publisher_with(&t("detections"), Qos::reliable(), writer)?,
            });
        }
        Ok(Pubs {
            cameras,
            detections3d: node.create_publisher_with("sim/detections3d", Qos::reliable(), writer)?,
            collisions: node.create_publisher_with("sim/collisions", Qos::reliable().depth(100), writer)?,
            odom: node.create_publisher_with("odom", Qos::reliable().depth(50), writer)?,
            imu: node.create_publisher_with("imu", Qos::reliable().depth(100), writer)?,
            joint_states: node.create_publisher_with("joint_states", Qos::reliable().depth(50), writer)?,
            grasped: node.create_publisher_with("gripper/grasped", Qos::reliable().depth(50), writer)?,
            tf: node.create_publisher_with("/tf", Qos::reliable().depth(100), writer)?,
            clock: node.create_publisher_with("/clock", Qos::reliable().depth(10), writer)?,
        })
    }

    /// Subscribers matched on the image topics, fewest first.
    pub fn min_image_subscribers(&self) -> usize {
        self.cameras
            .iter()
            .flat_map(|c| {
                [
                    c.image.subscription_count(),
                    c.depth.subscription_count(),
                    c.segmentation.subscription_count(),
                    c.instances.subscription_count(),
                ]
            })
            .min()
            .unwrap_or(0)
    }

    /// Waits until every reliable reader in other processes has acknowledged
    /// everything published, or `max` passes; `Ok(false)` on time-out. Needs
    /// publishers made with [`Writer::Acknowledged`].
    pub fn wait_for_acknowledgments(&self, max: Duration) -> Result<bool, s2r_runtime::PublishError> {
        let deadline = Instant::now() + max;
        let left = || deadline.saturating_duration_since(Instant::now());
        let mut all = true;
        for c in &self.cameras {
            all &= c.image.wait_for_acknowledgments(left())?;
            all &= c.depth.wait_for_acknowledgments(left())?;
            all &= c.segmentation.wait_for_acknowledgments(left())?;
            all &= c.instances.wait_for_acknowledgments(left())?;
            all &= c.info.wait_for_acknowledgments(left())?;
            all &= c.detections.wait_for_acknowledgments(left())?;
        }
        all &= self.detections3d.wait_for_acknowledgments(left())?;
        all &= self.collisions.wait_for_acknowledgments(left())?;
        all &= self.odom.wait_for_acknowledgments(left())?;
        all &= self.imu.wait_for_acknowledgments(left())?;
        all &= self.joint_states.wait_for_acknowledgments(left())?;
        all &= self.grasped.wait_for_acknowledgments(left())?;
        all &= self.tf.wait_for_acknowledgments(left())?;
        all &= self.clock.wait_for_acknowledgments(left())?;
        Ok(all)
    }

    /// Publishes everything of one tick.
    pub fn publish(&self, tick: Tick) -> Result<(), s2r_runtime::PublishError> {
        self.clock.publish(tick.clock)?;
        if let Some(m) = tick.odom {
            self.odom.publish(m)?;
        }
        if let Some(m) = tick.tf {
            self.tf.publish(m)?;
        }
        if let Some(m) = tick.imu {
            self.imu.publish(m)?;
        }
        if let Some(m) = tick.joint_states {
            self.joint_states.publish(m)?;
        }
        if let Some(m) = tick.grasped {
            self.grasped.publish(m)?;
        }
        for (f, p) in tick.cameras.into_iter().zip(&self.cameras) {
            p.info.publish(f.info)?;
            p.image.publish(f.image)?;
            p.depth.publish(f.depth)?;
            p.segmentation.publish(f.segmentation)?;
            p.instances.publish(f.instances)?;
            p.detections.publish(f.detections)?;
        }
        if let Some(m) = tick.detections3d {
            self.detections3d.publish(m)?;
        }
        for c in tick.collisions {
            self.collisions.publish(c)?;
        }
        Ok(())
    }
}

/// How long `lockstep_pace: acknowledged` waits for a frame's acknowledgments
/// before it gives up on a subscriber that has gone quiet.
const ACK_WAIT: Duration = Duration::from_secs(10);

/// Logs at most once per `every` per kind of message.
struct Throttle {
    last: Option<Instant>,
    every: Duration,
    suppressed: u64,
}

impl Throttle {
    fn new(every: Duration) -> Throttle {
        Throttle { last: None, every, suppressed: 0 }
    }

    /// Some(count of messages suppressed since the last one) when it is time to log.
    fn ready(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|t| now - t < self.every) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

fn sim_node(ctx: Context, args: RosArgs) -> NodeFuture {
    Box::pin(async move {
        let node = Node::new(&ctx, "sim_node", &args)?;
        let log = node.logger().clone();
        let scenario_name: String = node.declare_parameter("scenario", "dry_day_urban".to_string())?;
        let seed: i64 = node.declare_parameter("seed", 0)?;
        let mode: String = node.declare_parameter("mode", "realtime".to_string())?;
        let rtf: f64 = node.declare_parameter("real_time_factor", 1.0)?;
        let duration: f64 = node.declare_parameter("duration", 0.0)?;
        let image_scale: f64 = node.declare_parameter("image_scale", 1.0)?;
        let wait: bool = node.declare_parameter("wait_for_subscribers", false)?;
        let pace: String = node.declare_parameter("lockstep_pace", "free".to_string())?;
        let driver: String = node.declare_parameter("driver", "external".to_string())?;
        let expert = match driver.as_str() {
            "external" => false,
            "expert" => true,
            other => return Err(format!("parameter 'driver' is '{other}'; it is external (cmd_vel / joint_commands) or expert").into()),
        };
        let (publish, how) = s2r_image::transport::declare_output(&node)?;
        let lockstep = match mode.as_str() {
            "realtime" => false,
            "lockstep" => true,
            other => return Err(format!("parameter 'mode' is '{other}'; it is realtime or lockstep").into()),
        };
        let acknowledged = match pace.as_str() {
            "free" => false,
            "acknowledged" => true,
            other => return Err(format!("parameter 'lockstep_pace' is '{other}'; it is free or acknowledged").into()),
        };
        if acknowledged && !lockstep {
            return Err("parameter 'lockstep_pace' is 'acknowledged' but 'mode' is 'realtime': the pace applies to mode lockstep".into());
        }
        if !(rtf > 0.0 && rtf.is_finite()) {
            return Err(format!("parameter 'real_time_factor' must be positive, got {rtf}").into());
        }
        if !(image_scale > 0.0 && image_scale <= 4.0) {
            return Err(format!("parameter 'image_scale' must be in (0, 4], got {image_scale}").into());
        }
        if !(duration >= 0.0 && duration.is_finite()) {
            return Err(format!("parameter 'duration' must be 0 (run until stopped) or positive seconds, got {duration}").into());
        }
        if seed < 0 {
            return Err(format!("parameter 'seed' must not be negative, got {seed}").into());
        }
        let path = resolve_scenario(&scenario_name)?;
        let scenario = Scenario::load(&path)?;
        let options = SimOptions { seed: seed as u64, image_scale, render: true };
        let mut sim = tokio::task::block_in_place(|| Sim::new(scenario, &options))?;
        info!(
            log,
            "scenario '{}' ({}), seed {seed}, {} camera(s), {mode}; rendering on {}",
            sim.scenario.name,
            path.display(),
            sim.mounts.len(),
            sim.adapter().unwrap_or("nothing")
        );

        let writer = if acknowledged { Writer::Acknowledged } else { Writer::Graph };
        let pubs = Pubs::new(&node, &sim, publish, how, writer)?;
        let tf_static = node.create_publisher::<TFMessage>("/tf_static", Qos::transient_local())?;
        let scenario_pub = node.create_publisher::<ScenarioInfo>("scenario", Qos::transient_local())?;
        let cmd_vel = node.create_subscription::<Twist>("cmd_vel", Qos::reliable())?;
        let joint_cmd = node.create_subscription::<JointState>("joint_commands", Qos::reliable())?;
        tf_static.publish(sim.tf_static())?;
        scenario_pub.publish(sim.scenario_info())?;
        // An arm's description, as robot_state_publisher publishes one (latched: the
        // publisher lives as long as the node).
        let _description = match &sim.world.arm {
            Some(a) => {
                let p = node.create_publisher::<StringMsg>("robot_description", Qos::transient_local())?;
                p.publish(StringMsg { data: crate::description::arm(a).to_urdf()? })?;
                Some(p)
            }
            None => None,
        };
        // driver:=expert: the privileged expert drives from inside and says what it commanded.
        let mut autopilot = expert.then(|| Autopilot::new(&sim));
        let expert_cmd_vel = node.create_publisher::<Twist>("expert/cmd_vel", Qos::reliable().depth(50))?;
        let expert_joints = node.create_publisher::<JointState>("expert/joint_commands", Qos::reliable().depth(50))?;
        if expert {
            info!(log, "the privileged expert drives (its commands on expert/cmd_vel or expert/joint_commands)");
        }

        if wait {
            info!(log, "waiting for a subscriber on {}", if pubs.cameras.is_empty() { "odom" } else { "the first camera" });
            loop {
                let n = match pubs.cameras.first() {
                    Some(c) => c.image.subscription_count(),
                    None => pubs.odom.subscription_count(),
                };
                if n > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Let reliable writers match the new readers before the first message.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }

        let mut clamp_log = Throttle::new(Duration::from_secs(1));
        let mut ack_log = Throttle::new(Duration::from_secs(10));
        let started = Instant::now();
        let mut ticks = 0u64;
        let mut collisions = 0u64;
        loop {
            while let Some(cmd) = cmd_vel.try_recv() {
                let notes = sim.command_velocity(&cmd);
                if !notes.is_empty() {
                    if let Some(suppressed) = clamp_log.ready() {
                        warn!(
                            log,
                            "cmd_vel: {}{}",
                            notes.join("; "),
                            if suppressed > 0 { format!(" ({suppressed} more since)") } else { String::new() }
                        );
                    }
                }
            }
            while let Some(cmd) = joint_cmd.try_recv() {
                match sim.command_joints(&cmd) {
                    Ok(notes) if notes.is_empty() => {}
                    Ok(notes) => {
                        if let Some(suppressed) = clamp_log.ready() {
                            warn!(
                                log,
                                "joint_commands: {}{}",
                                notes.join("; "),
                                if suppressed > 0 { format!(" ({suppressed} more since)") } else { String::new() }
                            );
                        }
                    }
                    Err(e) => warn!(log, "joint_commands: refused: {e}"),
                }
            }
            let tick = tokio::task::block_in_place(|| sim.tick())?;
            ticks += 1;
            if let Some(a) = autopilot.as_mut() {
                let before = a.phase();
                let command = a.drive(&mut sim, &tick);
                if a.phase() != before {
                    info!(log, "expert at {:.2} s: {} -> {}", sim.seconds(), before.unwrap_or(""), a.phase().unwrap_or(""));
                }
                match command {
                    Some(RobotCommand::Velocity(t)) => expert_cmd_vel.publish(t)?,
                    Some(RobotCommand::Joints(j)) => expert_joints.publish(j)?,
                    None => {}
                }
            }
            for c in &tick.collisions {
                collisions += 1;
                info!(
                    log,
                    "collision at {:.2} s: {} {} and {} {}, {:.2} m/s",
                    sim.seconds(),
                    c.class_a,
                    c.instance_a,
                    c.class_b,
                    c.instance_b,
                    c.relative_speed
                );
            }
            pubs.publish(tick)?;
            let t = sim.seconds();
            if acknowledged && !tokio::task::block_in_place(|| pubs.wait_for_acknowledgments(ACK_WAIT))? {
                if let Some(suppressed) = ack_log.ready() {
                    warn!(
                        log,
                        "a subscriber has not acknowledged the frame at {t:.3} s within {} s; going on without it{}",
                        ACK_WAIT.as_secs(),
                        if suppressed > 0 { format!(" ({suppressed} more since)") } else { String::new() }
                    );
                }
            }
            if duration > 0.0 && t >= duration - 1e-9 {
                break;
            }
            if !lockstep {
                let due = started + Duration::from_secs_f64(t / rtf);
                let now = Instant::now();
                if due > now {
                    tokio::time::sleep(due - now).await;
                }
            } else if ticks.is_multiple_of(64) {
                tokio::task::yield_now().await;
            }
        }
        let wall = started.elapsed().as_secs_f64();
        let tm = sim.timings;
        info!(
            log,
            "done: {:.2} s simulated in {:.2} s ({:.2}x real time), {} frames, {collisions} collision(s); physics {:.2} s, render {:.2} s, read-back {:.2} s, labels {:.2} s",
            sim.seconds(),
            wall,
            sim.seconds() / wall.max(1e-9),
            tm.frames,
            tm.physics.as_secs_f64(),
            tm.render.as_secs_f64(),
            tm.readback.as_secs_f64(),
            tm.labels.as_secs_f64()
        );
        // Let the last messages reach remote subscribers before the node goes.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(())
    })
}
