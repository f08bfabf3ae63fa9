//! The `policy_node` executable: a robot's camera and odometry in, velocity
//! commands out, at a fixed rate.
//!
//! It subscribes `<camera>/image_raw` (parameter `camera`, default `front`;
//! relative, so the namespace and remapping apply; any colour encoding and
//! resolution, or its `/compressed` sibling: parameter `transport`) and
//! `odom` (nav_msgs/Odometry: speed and yaw rate), runs the policy on each
//! new frame, and publishes `cmd_vel` (geometry_msgs/Twist, reliable) at
//! `rate` Hz (default 20): the ensembled command, clamped to `max_speed`
//! (m/s) and `max_yaw_rate` (rad/s), what was clamped logged with a count.
//! When no frame or no odometry arrived for `stale_ms` (300) it commands a
//! stop, and says so once per stale spell.
//!
//! Parameters: `checkpoint` (from `s2r train policy`; empty: the shipped
//! `models/policy/policy.safetensors` when there is one). A new checkpoint
//! is loaded without a restart when the parameter changes or the file is
//! replaced (as `s2r train policy` does at every evaluation).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use s2r_image::transport::ImageSubscription;
use s2r_runtime::component::{Component, NodeFuture};
use s2r_runtime::{info, warn, Context, Node, Qos, RosArgs};
use sim2real_msgs::geometry_msgs::msg::{Twist, Vector3};
use sim2real_msgs::nav_msgs::msg::Odometry;

use crate::pilot::Pilot;

/// The node as a component (`policy_node`, `s2r run`, `s2r launch --compose`).
pub const POLICY_NODE: Component = Component {
    exec: "policy_node",
    about: "drives the robot from its camera and odometry with a policy learned from the expert's demonstrations",
    main: policy_node,
    graceful: false,
};

/// The shipped checkpoint, when the package has one.
pub fn shipped_checkpoint() -> Option<PathBuf> {
    s2r_runtime::share::find_shared("models/policy", "policy.safetensors")
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// A command within the limits, and whether it had to be clamped.
pub fn clamp(speed: f32, yaw_rate: f32, max_speed: f32, max_yaw_rate: f32) -> (Twist, bool) {
    let s = if speed.is_finite() { speed.clamp(0.0, max_speed) } else { 0.0 };
    let w = if yaw_rate.is_finite() { yaw_rate.clamp(-max_yaw_rate, max_yaw_rate) } else { 0.0 };
    let twist = Twist { linear: Vector3 { x: s as f64, ..Default::default() }, angular: Vector3 { z: w as f64, ..Default::default() } };
    (twist, s != speed || w != yaw_rate)
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
        let stale_ms: i64 = node.declare_parameter("stale_ms", 300)?;
        let transport = s2r_image::transport::declare_input(&node)?;
        if !(rate > 0.0 && rate <= 1000.0) {
            return Err(format!("parameter 'rate' must be in (0, 1000] Hz, got {rate}").into());
        }
        if !(max_speed >= 0.0 && max_yaw_rate >= 0.0) || stale_ms < 1 {
            return Err("parameters 'max_speed' and 'max_yaw_rate' must not be negative, 'stale_ms' at least 1".into());
        }
        if ck_param.is_empty() {
            return Err("parameter 'checkpoint' is empty and no shipped policy was found (models/policy/policy.safetensors); \
                        record demonstrations and train one: `s2r demos --scenario icy_night_crossing -o demos && s2r train policy demos -o policy.safetensors`"
                .into());
        }
        let mut pilot = Pilot::load(Path::new(&ck_param)).map_err(|e| format!("parameter 'checkpoint': {e}"))?;
        let mut ck_now = ck_param.clone();
        let mut ck_time = modified(Path::new(&ck_now));
        let mut image = ImageSubscription::new(&node, &format!("{camera}/image_raw"), transport, Qos::sensor_data().depth(5))?;
        let odom = node.create_subscription::<Odometry>("odom", Qos::sensor_data().depth(10))?;
        let cmd = node.create_publisher::<Twist>("cmd_vel", Qos::reliable().depth(10))?;
        info!(
            log,
            "{} ({}x{} input, camera '{}'): {} + {} -> {} at {rate} Hz",
            ck_now,
            pilot.config().width,
            pilot.config().height,
            pilot.config().camera,
            image.topic(),
            node.resolve_topic("odom").unwrap_or_default(),
            node.resolve_topic("cmd_vel").unwrap_or_default()
        );
        let stale = Duration::from_millis(stale_ms as u64);
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut shutdown = std::pin::pin!(s2r_runtime::shutdown::signal());
        let (mut last_frame, mut last_odom): (Option<Instant>, Option<Instant>) = (None, None);
        let mut state = (0f32, 0f32);
        let mut command: (f32, f32) = (0.0, 0.0);
        let (mut frames, mut refused, mut clamped, mut dropped) = (0u64, 0u64, 0u64, 0u64);
        let mut was_stale = true;
        let mut checked = Instant::now();
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = &mut shutdown => break,
            }
            if checked.elapsed() > Duration::from_secs(1) {
                checked = Instant::now();
                let wanted = node.parameter::<String>("checkpoint").map(or_shipped).unwrap_or_else(|| ck_now.clone());
                if wanted != ck_now || modified(Path::new(&wanted)) != ck_time {
                    match Pilot::load(Path::new(&wanted)) {
                        Ok(p) => {
                            info!(log, "loaded checkpoint {wanted}");
                            pilot = p;
                        }
                        Err(e) => warn!(log, "checkpoint not reloaded, keeping {ck_now}: {e}"),
                    }
                    ck_now = wanted;
                    ck_time = modified(Path::new(&ck_now));
                }
            }
            while let Some(o) = odom.try_recv() {
                state = (o.twist.twist.linear.x as f32, o.twist.twist.angular.z as f32);
                last_odom = Some(Instant::now());
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
                match tokio::task::block_in_place(|| pilot.act(t, &img, &topic, state.0, state.1)) {
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
            let out = if fresh(last_frame) && fresh(last_odom) {
                if was_stale {
                    info!(log, "driving: camera and odometry are live");
                    was_stale = false;
                }
                let (twist, c) = clamp(command.0, command.1, max_speed as f32, max_yaw_rate as f32);
                if c {
                    clamped += 1;
                    if s2r_runtime::log::worth_logging(clamped) {
                        warn!(log, "command ({:.2} m/s, {:.3} rad/s) outside the limits, clamped ({clamped} so far)", command.0, command.1);
                    }
                }
                twist
            } else {
                if !was_stale {
                    warn!(log, "no camera frame or odometry for {stale_ms} ms: commanding a stop ({frames} frames driven, {dropped} dropped behind)");
                    was_stale = true;
                    pilot.reset();
                }
                Twist::default()
            };
            if let Err(e) = cmd.publish(out) {
                warn!(log, "cmd_vel: {e}");
            }
        }
        Ok(())
    })
}
