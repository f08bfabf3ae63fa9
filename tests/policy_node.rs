//! policy_node over DDS: simulator frames (from the icy night's recording)
//! and odometry in, cmd_vel out at its rate and within its limits (what it
//! clamps logged); a frame it cannot read refused by topic; no frames for
//! 300 ms and it commands a stop; a missing checkpoint stops it naming the
//! path and the command that trains one.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{depth_frame, finish, fresh_domain, loopback, loopback_env, odometry, recorded_frames, Logged};
use s2r_runtime::{Node, Qos, RosArgs};
use sim2real_msgs::geometry_msgs::msg::Twist;
use sim2real_msgs::sensor_msgs::msg::{Image, JointState};

/// An untrained checkpoint: the node's behaviour is under test, not its driving.
fn checkpoint(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("policy.safetensors");
    s2r_policy::checkpoint::save_untrained(&path, s2r_policy::model::Config::small("front", s2r_policy::model::Robot::Vehicle), 7).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_frames_and_odometry_in_cmd_vel_out() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = checkpoint(tmp.path());
    let frames = recorded_frames("icy_night_crossing", 10);
    assert!(!frames.is_empty());
    let domain = fresh_domain();
    let mut c = Command::new(env!("CARGO_BIN_EXE_policy_node"));
    loopback_env(&mut c, domain);
    c.args(["--ros-args", "-p", &format!("checkpoint:={}", ck.display()), "-p", "max_yaw_rate:=0.0", "-p", "rate:=20.0"]);
    c.args(["-r", "__ns:=/robot"]);
    let node_proc = Logged::spawn(c);
    let text = || node_proc.text();

    let ctx = loopback(domain);
    let node = Node::new(&ctx, "robot_driver", &RosArgs::default()).unwrap();
    let img = node.create_publisher::<Image>("/robot/front/image_raw", Qos::reliable().depth(10)).unwrap();
    let odom = node.create_publisher("/robot/odom", Qos::reliable().depth(10)).unwrap();
    let cmd = node.create_subscription::<Twist>("/robot/cmd_vel", Qos::reliable().depth(200)).unwrap();
    let t0 = Instant::now();
    while img.subscription_count() == 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "policy_node did not come up:\n{}", text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Before any frame: stopped.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before: Vec<Arc<Twist>> = std::iter::from_fn(|| cmd.try_recv()).collect();
    assert!(!before.is_empty(), "it publishes at its rate even without input");
    assert!(before.iter().all(|t| t.linear.x == 0.0 && t.angular.z == 0.0), "no input, no motion");

    // A depth image on the camera topic: refused by name, the node carries on.
    img.publish(depth_frame("front_optical_frame")).unwrap();
    let t = Instant::now();
    while !text().contains("/robot/front/image_raw") || !text().contains("refused") {
        assert!(t.elapsed() < Duration::from_secs(10), "the bad frame is not reported:\n{}", text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Ten frames at 10 Hz with odometry: commands within the limits.
    for (k, f) in frames.iter().enumerate() {
        odom.publish(odometry(k as i32)).unwrap();
        img.publish(f.clone()).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let driving: Vec<Arc<Twist>> = std::iter::from_fn(|| cmd.try_recv()).collect();
    assert!(driving.len() >= 12, "about 20 Hz over a second: {}", driving.len());
    assert!(driving.iter().all(|t| t.linear.x >= 0.0 && t.linear.x <= 15.0 && t.angular.z == 0.0), "clamped to max_yaw_rate 0");
    assert!(text().contains("driving: camera and odometry are live"), "{}", text());
    assert!(text().contains("clamped"), "the clamping is logged:\n{}", text());

    // The camera goes quiet: a stop within the stale time (and a rate's slack).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let _: Vec<Arc<Twist>> = std::iter::from_fn(|| cmd.try_recv()).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after: Vec<Arc<Twist>> = std::iter::from_fn(|| cmd.try_recv()).collect();
    assert!(!after.is_empty() && after.iter().all(|t| t.linear.x == 0.0 && t.angular.z == 0.0), "stale input, stop: {after:?}");
    assert!(text().contains("commanding a stop"), "{}", text());
}

#[test]
fn a_missing_checkpoint_stops_the_node_naming_it() {
    let mut c = Command::new(env!("CARGO_BIN_EXE_policy_node"));
    loopback_env(&mut c, fresh_domain());
    c.args(["--ros-args", "-p", "checkpoint:=/nonexistent/policy.safetensors"]);
    let (o, _) = finish(c, Duration::from_secs(30));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/nonexistent/policy.safetensors") && err.contains("s2r train policy"), "{err}");
}

/// `s2r launch launch/drive.launch.yaml`: the simulator and policy_node
/// over DDS; the policy sees the simulator's camera and odometry and its
/// /cmd_vel reaches the simulator; the launch ends with the simulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drive_launch_file_closes_the_loop_over_dds() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = checkpoint(tmp.path());
    let domain = fresh_domain();
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "drive_launch_test", &RosArgs::default()).unwrap();
    let cmd = node.create_subscription::<Twist>("/cmd_vel", Qos::reliable().depth(1000)).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_s2r"));
    c.args(["launch", "launch/drive.launch.yaml", "duration:=4.0", &format!("checkpoint:={}", ck.display())]);
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    loopback_env(&mut c, domain);
    let (out, _) = tokio::task::spawn_blocking(move || finish(c, Duration::from_secs(240))).await.unwrap();
    let t = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the launch ends by itself: {t}");
    assert!(t.contains("driving: camera and odometry are live"), "the policy saw frames and odometry: {t}");
    let sent: Vec<Arc<Twist>> = std::iter::from_fn(|| cmd.try_recv()).collect();
    assert!(sent.iter().any(|c| c.linear.x != 0.0 || c.angular.z != 0.0), "the policy commanded the car: {} commands\n{t}", sent.len());
}

/// The same launch with an arm: policy_node sees the table camera, the
/// joint states and the grasp, and its /joint_commands (joint1..joint6 and
/// the gripper, within the limits) reach the simulator's arm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arm_policy_commands_the_joints_over_dds() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("arm.safetensors");
    s2r_policy::checkpoint::save_untrained(&ck, s2r_policy::model::Config::small("front", s2r_policy::model::Robot::Arm), 7).unwrap();
    let domain = fresh_domain();
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "arm_launch_test", &RosArgs::default()).unwrap();
    let cmd = node.create_subscription::<JointState>("/joint_commands", Qos::reliable().depth(1000)).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_s2r"));
    c.args(["launch", "launch/drive.launch.yaml", "scenario:=cup_near_edge", "duration:=4.0", &format!("checkpoint:={}", ck.display())]);
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    loopback_env(&mut c, domain);
    let (out, _) = tokio::task::spawn_blocking(move || finish(c, Duration::from_secs(240))).await.unwrap();
    let t = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the launch ends by itself: {t}");
    assert!(t.contains("(Arm, 128x96 input") && t.contains("-> /joint_commands"), "{t}");
    assert!(t.contains("driving: camera and joint states are live"), "the policy saw frames and joint states: {t}");
    let sent: Vec<Arc<JointState>> = std::iter::from_fn(|| cmd.try_recv()).collect();
    assert!(sent.len() > 10, "the policy commanded the arm: {} commands\n{t}", sent.len());
    let limits = [3.1, 1.9, 2.6, 3.1, 2.0, 3.1, 0.12];
    for c in &sent {
        assert_eq!(c.name, ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "gripper"]);
        assert!(c.position.iter().zip(limits).all(|(x, l)| x.abs() <= l + 1e-6), "within the limits: {:?}", c.position);
        assert!(c.position[6] >= 0.0);
    }
}

/// `s2r eval closed-loop --driver node`: the evaluation scores policy_node
/// itself, its commands crossing DDS (loopback, a domain of its own), for a
/// vehicle and for an arm.
#[test]
fn closed_loop_evaluation_scores_the_node_over_dds() {
    let tmp = tempfile::tempdir().unwrap();
    let arm = tmp.path().join("arm.safetensors");
    s2r_policy::checkpoint::save_untrained(&arm, s2r_policy::model::Config::small("front", s2r_policy::model::Robot::Arm), 7).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/policy/policy.safetensors");
    for (scenario, ck) in [("dry_day_urban", shipped), ("cup_near_edge", arm)] {
        let out = tmp.path().join(scenario);
        let mut c = Command::new(env!("CARGO_BIN_EXE_s2r"));
        c.args([
            "eval",
            "closed-loop",
            "--scenario",
            scenario,
            "--seeds",
            "1000",
            "--driver",
            "node",
            "--failed-bags",
            "0",
            "--no-thumbnails",
        ]);
        c.arg("--policy").arg(&ck).arg("-o").arg(&out);
        loopback_env(&mut c, fresh_domain());
        let (o, _) = finish(c, Duration::from_secs(300));
        let t = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "{t}");
        assert!(t.contains("[s2r_eval.policy_node]: driving: camera and"), "policy_node ran and saw its inputs: {t}");
        let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
        let e = &r["episodes"][0];
        assert_eq!(e["driver"], "node", "{e}");
        assert!(e["max_speed"].as_f64().unwrap() > 0.05, "the node's commands moved the robot: {e}");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_s2r"))
        .args(["eval", "closed-loop", "--scenario", "dry_day_urban", "--seeds", "1000", "--driver", "node"])
        .output()
        .unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--driver node needs --policy"));
}

/// A chain as reason_node publishes it, limiting the speed to `limit`.
fn chain(k: i32, limit: f32) -> sim2real_msgs::sim2real_msgs::msg::Reasoning {
    use sim2real_msgs::sim2real_msgs::msg::{Constraint, Reasoning, ReasoningStep};
    let mut h = odometry(k).header;
    h.frame_id = "base_link".into();
    Reasoning {
        header: h,
        situation: "creeping past a parked car on ice".into(),
        steps: vec![ReasoningStep {
            text: format!("limit speed to {limit:.1} m/s"),
            quantity: "max_speed".into(),
            value: limit,
            unit: "m/s".into(),
            confidence: 0.9,
        }],
        constraints: vec![Constraint { name: "max_speed".into(), value: limit, unit: "m/s".into(), confidence: 0.9, region: vec![] }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_reasoning_the_commands_keep_to_the_chains_limit_and_stop_without_one() {
    use sim2real_msgs::sim2real_msgs::msg::Reasoning;
    let ck = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/policy/policy.safetensors");
    let frames = recorded_frames("icy_night_crossing", 20);
    let domain = fresh_domain();
    let mut c = Command::new(env!("CARGO_BIN_EXE_policy_node"));
    loopback_env(&mut c, domain);
    c.args(["--ros-args", "-p", &format!("checkpoint:={}", ck.display()), "-p", "reasoning:=true", "-p", "rate:=20.0"]);
    let node_proc = Logged::spawn(c);
    let text = || node_proc.text();
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "robot_driver", &RosArgs::default()).unwrap();
    let img = node.create_publisher::<Image>("/front/image_raw", Qos::reliable().depth(10)).unwrap();
    let odom = node.create_publisher("/odom", Qos::reliable().depth(10)).unwrap();
    let reasoning = node.create_publisher::<Reasoning>("/reasoning", Qos::reliable().depth(10)).unwrap();
    let cmd = node.create_subscription::<Twist>("/cmd_vel", Qos::reliable().depth(200)).unwrap();
    let changed = node.create_subscription::<Reasoning>("/safety_filter", Qos::reliable().depth(50)).unwrap();
    let t0 = Instant::now();
    while img.subscription_count() == 0 || reasoning.subscription_count() == 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "policy_node did not come up:\n{}", text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Camera and odometry but no reasoning: the conservative side, a stop.
    for (k, f) in frames[..10].iter().enumerate() {
        odom.publish(odometry(k as i32)).unwrap();
        img.publish(f.clone()).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let blind: Vec<Arc<Twist>> = std::iter::from_fn(|| cmd.try_recv()).collect();
    assert!(blind.len() >= 10 && blind.iter().all(|t| t.linear.x == 0.0), "no reasoning, no motion: {blind:?}");
    // Chains limiting the car to 0.5 m/s: the policy's speed comes down to it.
    for (k, f) in frames[10..].iter().enumerate() {
        let k = 10 + k as i32;
        reasoning.publish(chain(k, 0.5)).unwrap();
        odom.publish(odometry(k)).unwrap();
        img.publish(f.clone()).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let filtered: Vec<Arc<Twist>> = std::iter::from_fn(|| cmd.try_recv()).collect();
    assert!(filtered.iter().all(|t| t.linear.x <= 0.5 + 1e-9), "within the chain's limit: {filtered:?}");
    assert!(filtered.iter().any(|t| (t.linear.x - 0.5).abs() < 1e-9), "the policy asks for more and gets the limit: {filtered:?}");
    let t = Instant::now();
    let mut published = Vec::new();
    while published.is_empty() {
        published.extend(std::iter::from_fn(|| changed.try_recv()));
        assert!(t.elapsed() < Duration::from_secs(5), "no chain on /safety_filter:\n{}", text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(published[0].situation, "creeping past a parked car on ice");
    assert!(text().contains("safety filter: ") && text().contains("-> 0.5 m/s (creeping past a parked car on ice"), "{}", text());
}
