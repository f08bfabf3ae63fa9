//! world_model_node: live, from a robot's camera, state and commands, the
//! world model's prediction of what comes next.
//!
//! It subscribes `<camera>/image_raw` (parameter `camera`, default `front`;
//! raw or compressed: parameter `transport`), the robot's state and commands
//! (parameter `robot`: `vehicle` reads `odom` and `cmd_vel`, `arm` reads
//! `joint_states` and `joint_commands`) and `/scenario` (the conditions:
//! surface, weather, time of day; dry, clear, day without one). Every
//! `every`-th camera frame (the checkpoint's latent step) it tokenizes the
//! frame, and from the last `context` token frames, holding the newest
//! command (or, before any, the state: a car keeps its speed, an arm where
//! it is), predicts `horizon` steps and publishes
//! - `<camera>/predicted/image_raw`: the predicted frames decoded (rgb8, the
//!   codec's square), stamped at the instants they predict (parameter
//!   `decode`: how many of them, default all; 0 for none);
//! - `predicted_path` (nav_msgs/Path, a vehicle): the ego's poses over the
//!   horizon, integrated from the newest odometry pose with the predicted
//!   speeds and yaw rates, in odometry's frame.
//!
//! A new checkpoint is loaded without a restart when the parameter
//! `checkpoint` changes or its file is replaced (as `s2r train world` does at
//! every evaluation); one of other token frames is refused and the running
//! one kept. A prediction runs on the newest frame; frames that arrive meanwhile are
//! dropped (counted in the log). A frame it cannot read is refused by topic
//! and the node carries on. trainer_node's world models (`trainer/models`)
//! set the parameter `checkpoint` when their held-out token accuracy passes
//! `update_threshold`. The parameter `device` (cpu, cuda, cuda:N) says
//! where the network runs.

use std::time::Duration;

use s2r_image::transport::ImageSubscription;
use s2r_runtime::component::NodeFuture;
use s2r_runtime::{info, warn, Context, Node, Qos, RosArgs};
use sim2real_msgs::geometry_msgs::msg::{Point, Pose, PoseStamped, Quaternion, Twist};
use sim2real_msgs::nav_msgs::msg::{Odometry, Path as PathMsg};
use sim2real_msgs::sensor_msgs::msg::{Image, JointState};
use sim2real_msgs::sim2real_msgs::msg::ScenarioInfo;
use sim2real_msgs::std_msgs::msg::Header;

use crate::data::{conditions_of, scale_action, scale_state, YAW_SCALE};
use crate::model::{Robot, ACTION};
use crate::rollout::rollout;
use crate::FrameCodec;

/// Loads the tokenizer a checkpoint names (the driver that runs the node supplies it).
pub type CodecLoader = fn(&str) -> Result<Box<dyn FrameCodec + Send + Sync>, String>;

/// The shipped checkpoint, when the package has one.
pub fn shipped_checkpoint() -> Option<std::path::PathBuf> {
    s2r_runtime::share::find_shared("models/world", "world.safetensors")
}

/// One prediction: the decoded frames, and the predicted speeds and yaw rates.
type Prediction = (Vec<Image>, Vec<f32>, Vec<f32>);

/// A yaw angle as a quaternion about z.
fn yaw_quaternion(yaw: f64) -> Quaternion {
    Quaternion { x: 0.0, y: 0.0, z: (yaw / 2.0).sin(), w: (yaw / 2.0).cos() }
}

/// The poses a vehicle reaches from `pose` (x, y, yaw) at `speeds` (m/s) and
/// `yaw_rates` (rad/s), each held for `dt` seconds.
pub fn integrate(pose: (f64, f64, f64), speeds: &[f32], yaw_rates: &[f32], dt: f64) -> Vec<(f64, f64, f64)> {
    let (mut x, mut y, mut yaw) = pose;
    speeds
        .iter()
        .zip(yaw_rates)
        .map(|(&v, &w)| {
            yaw += w as f64 * dt / 2.0;
            x += v as f64 * dt * yaw.cos();
            y += v as f64 * dt * yaw.sin();
            yaw += w as f64 * dt / 2.0;
            (x, y, yaw)
        })
        .collect()
}

/// Runs the node with `load` for the tokenizer.
pub fn run(ctx: Context, args: RosArgs, load: CodecLoader) -> NodeFuture {
    Box::pin(async move {
        let node = Node::new(&ctx, "world_model_node", &args)?;
        let log = node.logger().clone();
        let shipped = shipped_checkpoint().map(|p| p.display().to_string()).unwrap_or_default();
        let mut ck: String = node.declare_parameter("checkpoint", String::new())?;
        if ck.is_empty() {
            ck = shipped;
        }
        let camera: String = node.declare_parameter("camera", "front".to_string())?;
        let robot_name: String = node.declare_parameter("robot", "vehicle".to_string())?;
        let horizon: i64 = node.declare_parameter("horizon", 8)?;
        let decode: i64 = node.declare_parameter("decode", -1)?;
        let transport = s2r_image::transport::declare_input(&node)?;
        let robot = match robot_name.as_str() {
            "vehicle" => Robot::Vehicle,
            "arm" => Robot::Arm,
            other => return Err(format!("parameter 'robot': '{other}', not vehicle or arm").into()),
        };
        if !(1..=256).contains(&horizon) {
            return Err(format!("parameter 'horizon' must be 1 to 256 latent steps, got {horizon}").into());
        }
        if ck.is_empty() {
            return Err("parameter 'checkpoint' is empty and no shipped world model was found (models/world/world.safetensors); \
                        train one: `s2r demos --scenario icy_night_crossing -o demos && s2r train world demos -o world.safetensors`"
                .into());
        }
        let device =
            s2r_train::device(&node.declare_parameter("device", "cpu".to_string())?).map_err(|e| format!("parameter 'device': {e}"))?;
        let mut loaded = crate::checkpoint::load(std::path::Path::new(&ck), &device).map_err(|e| format!("parameter 'checkpoint': {e}"))?;
        let mut watch = s2r_train::CheckpointWatch::new(&ck);
        // trainer_node's new world models (trainer/models) set the checkpoint parameter.
        let updates = s2r_train::ModelUpdates::new(&node, "world", "checkpoint")?;
        let cfg = loaded.record.config.clone();
        let codec = load(&cfg.codec).map_err(|e| format!("the tokenizer {} the checkpoint names: {e}", cfg.codec))?;
        if codec.grid() != cfg.grid || codec.levels() != cfg.levels {
            return Err(format!(
                "{ck}: a model of {}×{} codes, levels {:?}; the tokenizer {} makes {}×{}, levels {:?}",
                cfg.grid,
                cfg.grid,
                cfg.levels,
                cfg.codec,
                codec.grid(),
                codec.grid(),
                codec.levels()
            )
            .into());
        }
        let mut image = ImageSubscription::new(&node, &format!("{camera}/image_raw"), transport, Qos::sensor_data().depth(5))?;
        let odom = node.create_subscription::<Odometry>("odom", Qos::sensor_data().depth(10))?;
        let cmd_vel = node.create_subscription::<Twist>("cmd_vel", Qos::reliable().depth(10))?;
        let joints = node.create_subscription::<JointState>("joint_states", Qos::sensor_data().depth(10))?;
        let joint_cmd = node.create_subscription::<JointState>("joint_commands", Qos::reliable().depth(10))?;
        let scenario = node.create_subscription::<ScenarioInfo>("/scenario", Qos::transient_local())?;
        let frames_out = node.create_publisher::<Image>(&format!("{camera}/predicted/image_raw"), Qos::reliable().depth(20))?;
        let path_out = node.create_publisher::<PathMsg>("predicted_path", Qos::reliable().depth(5))?;
        info!(
            log,
            "{ck} ({}): {} every {} frames -> {} steps of {:.1} s on {} and predicted_path",
            cfg.summary(),
            image.topic(),
            cfg.every,
            horizon,
            cfg.step_seconds(),
            node.resolve_topic(&format!("{camera}/predicted/image_raw")).unwrap_or_default()
        );
        let mut conditions = conditions_of(None, robot);
        // History: codes, state and the action after each token frame.
        let mut codes: Vec<Vec<u16>> = Vec::new();
        let mut states: Vec<[f32; ACTION]> = Vec::new();
        let mut actions: Vec<[f32; ACTION]> = Vec::new();
        let mut raw_state = [0f32; 7];
        let mut pose = (0.0f64, 0.0f64, 0.0f64);
        let mut odom_frame = "odom".to_string();
        let mut command: Option<[f32; 7]> = None;
        let (mut seen, mut dropped, mut refused, mut predictions) = (0u64, 0u64, 0u64, 0u64);
        let mut shutdown = std::pin::pin!(s2r_runtime::shutdown::signal());
        let mut ticker = tokio::time::interval(Duration::from_millis(10));
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = &mut shutdown => break,
            }
            // A new checkpoint (the parameter changed, or the file was replaced, as training does): the
            // same tokens and steps, else refused and the running one kept.
            updates.poll(&node);
            let wanted = node.parameter::<String>("checkpoint").filter(|p| !p.is_empty()).unwrap_or_else(|| watch.current().to_string());
            if let Some(path) = watch.due(&wanted) {
                match crate::checkpoint::load(std::path::Path::new(&path), &device) {
                    Ok(l)
                        if l.record.config.codec != cfg.codec || l.record.config.grid != cfg.grid || l.record.config.every != cfg.every =>
                    {
                        warn!(
                            log,
                            "checkpoint {path} ({}) models other token frames than the running one ({}): not loaded",
                            l.record.config.summary(),
                            cfg.summary()
                        )
                    }
                    Ok(l) => {
                        info!(log, "loaded checkpoint {path} ({})", l.record.config.summary());
                        loaded = l;
                        codes.clear();
                        states.clear();
                        actions.clear();
                    }
                    Err(e) => warn!(log, "checkpoint not reloaded, keeping the running one: {e}"),
                }
            }
            while let Some(s) = scenario.try_recv() {
                conditions = conditions_of(Some(&s), robot);
                info!(log, "conditions from /scenario ({}): {}", s.scenario, conditions.describe());
            }
            while let Some(o) = odom.try_recv() {
                let t = &o.twist.twist;
                raw_state[0] = t.linear.x as f32;
                raw_state[1] = t.angular.z as f32;
                let q = &o.pose.pose.orientation;
                let yaw = (2.0 * (q.w * q.z + q.x * q.y)).atan2(1.0 - 2.0 * (q.y * q.y + q.z * q.z));
                pose = (o.pose.pose.position.x, o.pose.pose.position.y, yaw);
                odom_frame = o.header.frame_id.clone();
            }
            while let Some(c) = cmd_vel.try_recv() {
                command = Some([c.linear.x as f32, c.angular.z as f32, 0.0, 0.0, 0.0, 0.0, 0.0]);
            }
            while let Some(j) = joints.try_recv() {
                if let Some(q) = sim2real_msgs::arm::arm_joints(&j) {
                    raw_state = q;
                }
            }
            while let Some(j) = joint_cmd.try_recv() {
                if let Some(q) = sim2real_msgs::arm::arm_joints(&j) {
                    command = Some(q);
                }
            }
            let mut newest = None;
            while let Some(f) = image.try_recv() {
                seen += 1;
                if seen % cfg.every as u64 != 0 {
                    continue;
                }
                if newest.is_some() {
                    dropped += 1;
                }
                newest = Some(f.image);
            }
            let Some(img) = newest else { continue };
            let topic = image.topic();
            let rgb = match s2r_image::rgb8(&img, &topic) {
                Ok(rgb) => rgb,
                Err(e) => {
                    refused += 1;
                    if s2r_runtime::log::worth_logging(refused) {
                        warn!(log, "{e}; frame refused ({refused} refused so far)");
                    }
                    continue;
                }
            };
            // The command now, scaled as the model learnt it: the newest, or hold what the robot does.
            let action = scale_action(robot, &command.unwrap_or(raw_state), &raw_state);
            let stamp = img.header.stamp.clone();
            let t0 = s2r_runtime::stamp_ns(&stamp);
            let result = tokio::task::block_in_place(|| -> Result<Prediction, String> {
                let view = codec.view(&rgb, img.width as usize, img.height as usize);
                let code = codec.encode(&[view])?.remove(0);
                codes.push(code);
                states.push(scale_state(robot, &raw_state));
                actions.push(action);
                if codes.len() > loaded.model.config.context {
                    codes.remove(0);
                    states.remove(0);
                    actions.remove(0);
                }
                let h = horizon as usize;
                let mut future = actions.clone();
                future.extend(std::iter::repeat_n(action, h));
                let pred = rollout(&loaded.model, &codes, &states, &future, conditions, h).map_err(|e| e.to_string())?;
                let n = if decode < 0 { h } else { (decode as usize).min(h) };
                let step_ns = cfg.step_ns();
                let mut frames = Vec::with_capacity(n);
                for (k, c) in pred.codes.iter().take(n).enumerate() {
                    let rgb = codec.decode(c)?;
                    let header =
                        Header { stamp: s2r_runtime::Stamp(t0 + (k as i64 + 1) * step_ns).to_msg(), frame_id: img.header.frame_id.clone() };
                    frames.push(s2r_image::rgb8_msg(header, codec.size(), codec.size(), rgb));
                }
                let speeds = pred.speeds();
                let yaw_rates = pred.states.iter().map(|s| s[1] * YAW_SCALE).collect();
                Ok((frames, speeds, yaw_rates))
            });
            let (frames, speeds, yaw_rates) = match result {
                Ok(r) => r,
                Err(e) => {
                    refused += 1;
                    warn!(log, "{topic}: no prediction: {e}");
                    continue;
                }
            };
            for f in frames {
                if let Err(e) = frames_out.publish(f) {
                    warn!(log, "predicted frames: {e}");
                }
            }
            if robot == Robot::Vehicle {
                let dt = cfg.step_seconds() as f64;
                let step_ns = cfg.step_ns();
                let poses = integrate(pose, &speeds, &yaw_rates, dt)
                    .into_iter()
                    .enumerate()
                    .map(|(k, (x, y, yaw))| PoseStamped {
                        header: Header { stamp: s2r_runtime::Stamp(t0 + (k as i64 + 1) * step_ns).to_msg(), frame_id: odom_frame.clone() },
                        pose: Pose { position: Point { x, y, z: 0.0 }, orientation: yaw_quaternion(yaw) },
                    })
                    .collect();
                let path = PathMsg { header: Header { stamp, frame_id: odom_frame.clone() }, poses };
                if let Err(e) = path_out.publish(path) {
                    warn!(log, "predicted_path: {e}");
                }
            }
            predictions += 1;
            if s2r_runtime::log::worth_logging(predictions) {
                info!(log, "{predictions} predictions ({dropped} frames dropped behind, {refused} refused)");
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_integrates_speed_and_yaw_rate() {
        // 10 m/s straight for 1 s, then a quarter turn at π/2 rad/s for 1 s.
        let p = integrate((0.0, 0.0, 0.0), &[10.0, 10.0], &[0.0, std::f32::consts::FRAC_PI_2], 1.0);
        assert!((p[0].0 - 10.0).abs() < 1e-9 && p[0].1.abs() < 1e-9);
        assert!((p[1].2 - std::f64::consts::FRAC_PI_2).abs() < 1e-6);
        // The midpoint rule: a quarter turn's chord at 45°.
        assert!((p[1].0 - (10.0 + 10.0 * (std::f64::consts::FRAC_PI_4).cos())).abs() < 1e-6, "{p:?}");
    }
}
