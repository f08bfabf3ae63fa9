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

/// `stamped`: cmd_vel as geometry_msgs/TwistStamped, each command stamped
/// with the camera frame it was computed from (what a latency budget is
/// measured by, and what ros2_control's diff_drive_controller takes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stamped_commands_carry_their_frames_stamp() {
    use sim2real_msgs::geometry_msgs::msg::TwistStamped;
    let tmp = tempfile::tempdir().unwrap();
    let ck = checkpoint(tmp.path());
    let frames = recorded_frames("icy_night_crossing", 10);
    let domain = fresh_domain();
    let mut c = Command::new(env!("CARGO_BIN_EXE_policy_node"));
    loopback_env(&mut c, domain);
    c.args(["--ros-args", "-p", &format!("checkpoint:={}", ck.display()), "-p", "stamped:=true", "-p", "stamp:=frame"]);
    let node_proc = Logged::spawn(c);
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "stamped_driver", &RosArgs::default()).unwrap();
    let img = node.create_publisher::<Image>("/front/image_raw", Qos::reliable().depth(10)).unwrap();
    let odom = node.create_publisher("/odom", Qos::reliable().depth(10)).unwrap();
    let cmd = node.create_subscription::<TwistStamped>("/cmd_vel", Qos::reliable().depth(200)).unwrap();
    let t0 = Instant::now();
    while img.subscription_count() == 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "policy_node did not come up:\n{}", node_proc.text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut stamps = std::collections::BTreeSet::new();
    for (k, f) in frames.iter().enumerate() {
        let mut f = f.clone();
        f.header.stamp.sec = 5000 + k as i32;
        stamps.insert(f.header.stamp.sec);
        odom.publish(odometry(k as i32)).unwrap();
        img.publish(f).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got: Vec<Arc<TwistStamped>> = std::iter::from_fn(|| cmd.try_recv()).collect();
    let from_frames: std::collections::BTreeSet<i32> = got.iter().map(|c| c.header.stamp.sec).filter(|s| stamps.contains(s)).collect();
    assert!(from_frames.len() >= 8, "commands stamped with their frames: {from_frames:?} of {stamps:?}\n{}", node_proc.text());
    assert!(got.iter().all(|c| c.header.frame_id == "base_link"), "{got:?}");
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
/// commands reach the simulator's /cmd_vel through safety_node; the launch
/// ends with the simulator.
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
    assert!(t.contains("robot auto: Vehicle"), "the commands reach the car through safety_node: {t}");
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
    assert!(t.contains("robot auto: Arm"), "the commands reach the arm through safety_node: {t}");
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
        constraints: vec![Constraint { name: "max_speed".into(), value: limit, unit: "m/s".into(), confidence: 0.9, ..Default::default() }],
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

/// The arm's safety filter over DDS: policy_node reads the arm's kinematics
/// from `robot_description` (sim_node's URDF of cup_near_edge's arm) and
/// its base from /tf_static, lets the policy's joint targets pass a chain
/// with no keep-out, and refuses them when a chain keeps a finger's way out
/// (publishing that chain on /safety_filter); without the description, or
/// on a chain that says stop, the arm is held where it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arm_is_kept_from_pushing_a_cup_from_a_kept_out_side() {
    use nalgebra::{Isometry3, Point3};
    use sim2real_msgs::geometry_msgs::msg::{Point, Quaternion, Transform, TransformStamped, Vector3};
    use sim2real_msgs::sim2real_msgs::msg::{Constraint, Reasoning};
    use sim2real_msgs::std_msgs::msg::{Bool, Header, String as StringMsg};
    use sim2real_msgs::tf2_msgs::msg::TFMessage;

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scenario = s2r_sim::scenario::Scenario::load(&root.join("config/scenarios/cup_near_edge.yaml")).unwrap();
    let s2r_sim::scenario::EgoSpec::Arm(arm) = scenario.ego.clone() else { panic!("cup_near_edge has an arm") };
    let description = s2r_sim::description::arm(&arm);
    let chain_to_tool = description.chain("base_link", "tool0").unwrap();
    // base_link on the table top (0.75 m), where the scenario puts the arm.
    let base = Isometry3::translation(arm.base[0], arm.base[1], 0.75 + arm.base[2]);
    let opening = 0.10f32;
    // The simulated fingers: their tips and 2 cm above, either side of the opening.
    let fingers = |q: &[f64]| -> Vec<[f64; 3]> {
        let flange = base * chain_to_tool.forward(q).unwrap();
        sim2real_msgs::safety::finger_points(opening, 0.016, 0.07, |[x, y, z]| {
            let p = flange * Point3::new(x as f64, y as f64, z as f64);
            [p.x as f32, p.y as f32, p.z as f32]
        })
        .into_iter()
        .map(|p| p.map(|v| v as f64))
        .collect()
    };
    let measured: Vec<f64> = arm.initial.iter().copied().chain([opening as f64]).collect();

    let ck = root.join("models/policy/arm.safetensors");
    let frames = recorded_frames("cup_near_edge", 5);
    let domain = fresh_domain();
    let mut c = Command::new(env!("CARGO_BIN_EXE_policy_node"));
    loopback_env(&mut c, domain);
    c.args([
        "--ros-args",
        "-p",
        &format!("checkpoint:={}", ck.display()),
        "-p",
        "reasoning:=true",
        "-p",
        "rate:=20.0",
        "-p",
        "stale_ms:=1000",
    ]);
    let node_proc = Logged::spawn(c);
    let text = || node_proc.text();
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "arm_cell", &RosArgs::default()).unwrap();
    let img = node.create_publisher::<Image>("/front/image_raw", Qos::reliable().depth(10)).unwrap();
    let joints = node.create_publisher::<JointState>("/joint_states", Qos::reliable().depth(10)).unwrap();
    let grasped = node.create_publisher::<Bool>("/gripper/grasped", Qos::reliable().depth(10)).unwrap();
    let urdf = node.create_publisher::<StringMsg>("/robot_description", Qos::transient_local()).unwrap();
    let tf_static = node.create_publisher::<TFMessage>("/tf_static", Qos::transient_local()).unwrap();
    let reasoning = node.create_publisher::<Reasoning>("/reasoning", Qos::reliable().depth(10)).unwrap();
    let cmd = node.create_subscription::<JointState>("/joint_commands", Qos::reliable().depth(500)).unwrap();
    let changed = node.create_subscription::<Reasoning>("/safety_filter", Qos::reliable().depth(50)).unwrap();
    let t0 = Instant::now();
    while img.subscription_count() == 0 || reasoning.subscription_count() == 0 || joints.subscription_count() == 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "policy_node did not come up:\n{}", text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let header = |k: usize| Header { stamp: frames[k % frames.len()].header.stamp.clone(), frame_id: "map".into() };
    let state = |k: usize| JointState {
        header: header(k),
        name: ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "gripper"].map(String::from).to_vec(),
        position: measured.clone(),
        ..Default::default()
    };
    let approach_only = |k: usize| Reasoning {
        header: header(k),
        situation: "a cup on the table, away from its edges".into(),
        constraints: vec![Constraint {
            name: "approach_side".into(),
            value: 0.0,
            unit: "rad".into(),
            confidence: 0.9,
            ..Default::default()
        }],
        ..Default::default()
    };
    // Two seconds of the same look: the frames, the joints, and a chain.
    let run = |chain: &dyn Fn(usize) -> Reasoning| {
        let (img, joints, grasped, reasoning) = (&img, &joints, &grasped, &reasoning);
        let (chains, frame) = ((0..20).map(chain).collect::<Vec<_>>(), frames[0].clone());
        let st = state(0);
        async move {
            for c in chains {
                reasoning.publish(c).unwrap();
                joints.publish(st.clone()).unwrap();
                grasped.publish(Bool { data: false }).unwrap();
                img.publish(frame.clone()).unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let drain = || -> Vec<Vec<f64>> { std::iter::from_fn(|| cmd.try_recv()).map(|j| j.position.clone()).collect() };
    let held = |sent: &[Vec<f64>]| sent.iter().all(|p| p.iter().zip(&measured).all(|(a, b)| (a - b).abs() < 1e-4));

    // No description yet: the fingers cannot be placed, the arm is held.
    run(&approach_only).await;
    let sent = drain();
    assert!(sent.len() >= 10 && held(&sent), "held without a description: {sent:?}\n{}", text());
    assert!(text().contains("no robot_description yet"), "{}", text());

    // The description and the base's pose: a chain with no keep-out lets the policy's targets pass.
    urdf.publish(StringMsg { data: description.to_urdf().unwrap() }).unwrap();
    let t = base.translation.vector;
    let to_base = TransformStamped {
        header: Header { frame_id: "map".into(), ..Default::default() },
        child_frame_id: "base_link".into(),
        transform: Transform { translation: Vector3 { x: t.x, y: t.y, z: t.z }, rotation: Quaternion { w: 1.0, ..Default::default() } },
    };
    tf_static.publish(TFMessage { transforms: vec![to_base] }).unwrap();
    run(&approach_only).await;
    let sent = drain();
    assert!(text().contains("robot_description: the fingers on 'tool0', placed from 'base_link' through joint1"), "{}", text());
    assert!(sent.len() >= 10, "commands with the description: {sent:?}\n{}", text());
    let asked = sent.last().expect("commands").clone();
    assert!(!held(&sent[sent.len() - 5..]), "the policy moves the arm: {asked:?}\n{}", text());

    // A keep-out just beyond the finger that moves most, along its way: the same targets are refused.
    let (before, after) = (fingers(&measured[..6]), fingers(&asked[..6]));
    let (b, a) = before
        .iter()
        .zip(&after)
        .max_by(|x, y| {
            x.0[..2]
                .iter()
                .zip(&x.1[..2])
                .map(|(p, q)| (p - q).powi(2))
                .sum::<f64>()
                .total_cmp(&y.0[..2].iter().zip(&y.1[..2]).map(|(p, q)| (p - q).powi(2)).sum::<f64>())
        })
        .unwrap();
    let way = [a[0] - b[0], a[1] - b[1]];
    let len = way[0].hypot(way[1]);
    // (A few millimetres: the policy steps towards the cup a command at a time.)
    assert!(len > 0.004, "the policy's targets move a finger {len} m across the table");
    let dir = [way[0] / len, way[1] / len];
    let cup = Point { x: a[0] + 0.05 * dir[0], y: a[1] + 0.05 * dir[1], z: 2.0 };
    // The region: a square a metre around the finger's way (counter-clockwise), on a plane
    // a metre below, so that the cup (centre 2 m up) rises over every finger point.
    let corner = |sx: f64, sy: f64| Point { x: b[0] + sx, y: b[1] + sy, z: -1.0 };
    let keep_out = Constraint {
        name: "keep_out".into(),
        value: 0.99,
        confidence: 0.9,
        region: vec![corner(-1.0, -1.0), corner(1.0, -1.0), corner(1.0, 1.0), corner(-1.0, 1.0)],
        target: cup,
        target_radius: 0.02,
        heading: dir[1].atan2(dir[0]) as f32,
        ..Default::default()
    };
    let guarded = |k: usize| Reasoning {
        situation: "a cup near the table's edge: keep out of its side".into(),
        constraints: vec![keep_out.clone()],
        ..approach_only(k)
    };
    run(&guarded).await;
    let sent = drain();
    assert!(sent.len() >= 10, "commands under the keep-out: {sent:?}\n{}", text());
    let moved_like_asked = |p: &Vec<f64>| p[..6].iter().zip(&asked[..6]).all(|(x, y)| (x - y).abs() < 1e-3);
    assert!(sent[sent.len() - 10..].iter().all(|p| !moved_like_asked(p)), "refused: {sent:?} (asked {asked:?})\n{}", text());
    let published: Vec<Arc<Reasoning>> = std::iter::from_fn(|| changed.try_recv()).collect();
    assert!(published.iter().any(|r| r.situation.starts_with("a cup near the table's edge")), "{published:?}");
    assert!(text().contains("a finger would push a cup from a kept-out side"), "{}", text());

    // A chain that says stop (reason_node cannot see the table): held.
    let stop = |k: usize| Reasoning {
        constraints: vec![Constraint { name: "max_speed".into(), value: 0.0, unit: "m/s".into(), confidence: 1.0, ..Default::default() }],
        ..approach_only(k)
    };
    run(&stop).await;
    let sent = drain();
    assert!(sent.len() >= 10 && held(&sent[sent.len() - 10..]), "held on a stop: {sent:?}");
}
