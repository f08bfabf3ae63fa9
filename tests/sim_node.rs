//! sim_node as users run it: its topics over DDS (on loopback), /cmd_vel
//! driving the car, broken scenario files refused with file, line and key, and
//! the sample recordings in bags/ read by rosbags and the Python mcap reader.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bag_peer, fresh_domain, loopback, loopback_env, peers_dir, python, Peer};
use s2r_bag::BagReader;
use s2r_runtime::{Node, Qos, RosArgs, Serialized};
use sha2::{Digest, Sha256};
use sim2real_msgs::geometry_msgs::msg::Twist;
use sim2real_msgs::nav_msgs::msg::Odometry;
use sim2real_msgs::rosgraph_msgs::msg::Clock;
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image, JointState};
use sim2real_msgs::sim2real_msgs::msg::ScenarioInfo;
use sim2real_msgs::tf2_msgs::msg::TFMessage;
use sim2real_msgs::vision_msgs::msg::Detection2DArray;

fn sim_node(domain: u16, params: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sim_node"));
    loopback_env(&mut c, domain);
    c.arg("--ros-args");
    for p in params {
        c.args(["-p", p]);
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_node_publishes_its_topics_and_obeys_cmd_vel() {
    let domain = fresh_domain();
    let mut child = sim_node(
        domain,
        &[
            "scenario:=icy_night_crossing",
            "seed:=4",
            "image_scale:=0.25",
            "duration:=3.0",
            "real_time_factor:=2.0",
            "wait_for_subscribers:=true",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "sim_test", &RosArgs::default()).unwrap();
    let depth = Qos::reliable().depth(200);
    let odom = node.create_subscription::<Odometry>("/odom", depth).unwrap();
    let clock = node.create_subscription::<Clock>("/clock", Qos::reliable().depth(1000)).unwrap();
    let info = node.create_subscription::<CameraInfo>("/sim/front/camera_info", depth).unwrap();
    let det = node.create_subscription::<Detection2DArray>("/sim/front/detections", depth).unwrap();
    let depth_img = node.create_subscription::<Image>("/sim/front/depth", depth).unwrap();
    let seg = node.create_subscription::<Image>("/sim/front/segmentation", depth).unwrap();
    let inst = node.create_subscription::<Image>("/sim/front/instances", depth).unwrap();
    let cmd = node.create_publisher::<Twist>("/cmd_vel", Qos::reliable()).unwrap();
    // Subscribed last: the node waits for a reader of the first camera.
    let rgb = node.create_subscription::<Image>("/sim/front/image_raw", depth).unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut odoms = Vec::new();
    let mut images = Vec::new();
    let mut sent_stop = false;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "sim_node did not finish");
        while let Some(o) = odom.try_recv() {
            if !sent_stop {
                // Brake to a standstill: on ice (mu about 0.1) the car slows by about 1 m/s².
                while cmd.subscription_count() == 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                cmd.publish(Twist::default()).unwrap();
                sent_stop = true;
            }
            odoms.push(o);
        }
        while let Some(i) = rgb.try_recv() {
            images.push(i);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(child.wait().unwrap().success(), "{stderr}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Some(o) = odom.try_recv() {
        odoms.push(o);
    }
    while let Some(i) = rgb.try_recv() {
        images.push(i);
    }

    assert!(images.len() >= 25, "{} images of 30", images.len());
    let first = &images[0];
    assert_eq!((first.width, first.height, first.encoding.as_str()), (160, 120, "rgb8"));
    assert_eq!(first.header.frame_id, "front_optical_frame");
    // The other outputs of the camera, stamped like its colour image.
    let stamps: Vec<_> = images.iter().map(|i| i.header.stamp.clone()).collect();
    let mut n = 0;
    while let Some(d) = depth_img.try_recv() {
        assert_eq!(d.encoding, "32FC1");
        assert!(stamps.contains(&d.header.stamp));
        n += 1;
    }
    assert!(n >= 25);
    let s = seg.try_recv().unwrap();
    assert_eq!((s.encoding.as_str(), s.step), ("mono8", 160));
    let i = inst.try_recv().unwrap();
    assert_eq!((i.encoding.as_str(), i.step), ("mono16", 320));
    let ci = info.try_recv().unwrap();
    assert_eq!((ci.width, ci.height), (160, 120));
    assert!(ci.k[0] > 0.0 && (ci.k[2] - 79.5).abs() < 1e-9);
    assert!(det.try_recv().is_some());
    // Sim time from 0 in 5 ms steps.
    let mut last = -1.0;
    let mut ticks = 0;
    while let Some(c) = clock.try_recv() {
        let t = c.clock.sec as f64 + c.clock.nanosec as f64 * 1e-9;
        assert!(t > last);
        last = t;
        ticks += 1;
    }
    assert!(ticks > 300 && (last - 3.0).abs() < 1e-6, "{ticks} clock messages, last {last}");
    // The stop command slowed the car down.
    let v0 = odoms.first().unwrap().twist.twist.linear.x;
    let v1 = odoms.last().unwrap().twist.twist.linear.x;
    assert!(v0 > 13.0 && v1 < v0 - 1.5, "speed {v0} -> {v1}");
    assert!(stderr.contains("done: 3.00 s simulated"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_subscribers_get_the_scenario_and_static_transforms() {
    let domain = fresh_domain();
    let mut child = sim_node(domain, &["scenario:=cup_near_edge", "image_scale:=0.1", "duration:=30.0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "late", &RosArgs::default()).unwrap();
    let scenario = node.create_subscription::<ScenarioInfo>("/scenario", Qos::transient_local()).unwrap();
    let tf_static = node.create_subscription::<TFMessage>("/tf_static", Qos::transient_local()).unwrap();
    let description =
        node.create_subscription::<sim2real_msgs::std_msgs::msg::String>("/robot_description", Qos::transient_local()).unwrap();
    let s = tokio::time::timeout(Duration::from_secs(20), scenario.recv()).await.expect("/scenario");
    let tf = tokio::time::timeout(Duration::from_secs(20), tf_static.recv()).await.expect("/tf_static");
    let urdf = tokio::time::timeout(Duration::from_secs(20), description.recv()).await.expect("/robot_description");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(s.scenario, "cup_near_edge");
    assert!(s.edge_case);
    assert_eq!(s.class_names[0], "unlabeled");
    assert!(s.actors.iter().any(|a| a.class_name == "cup"));
    let frames: Vec<(&str, &str)> = tf.transforms.iter().map(|t| (t.header.frame_id.as_str(), t.child_frame_id.as_str())).collect();
    for want in [("map", "odom"), ("odom", "base_link"), ("base_link", "front_link"), ("front_link", "front_optical_frame")] {
        assert!(frames.contains(&want), "{want:?} in {frames:?}");
    }
    // The arm's description: from base_link to the flange through the six joints the joint states name.
    let robot = s2r_runtime::urdf::Robot::from_urdf(&urdf.data).unwrap();
    let chain = robot.chain("base_link", "tool0").unwrap();
    assert_eq!(chain.moving(), ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6"]);
    // Straight up: the flange as high above the base as the links are long (cup_near_edge: 1.07 m).
    let up = chain.forward(&[0.0; 6]).unwrap().translation.vector;
    assert!(up.x.abs() < 1e-9 && up.y.abs() < 1e-9 && (up.z - 1.07).abs() < 1e-9, "{up}");
}

/// Runs sim_node in lockstep for 2 s of the icy crossing (front camera at
/// 10 Hz: 20 frames) with a slow Cyclone DDS recorder on the front camera;
/// the image stamps the recorder got, in order.
fn record_slowly(pace: &str) -> Vec<(i32, u32)> {
    let domain = fresh_domain();
    let mut cmd = Command::new(python());
    cmd.arg(peers_dir().join("cyclone_peer.py")).args(["slow", "/sim/front/image_raw", "150"]);
    loopback_env(&mut cmd, domain);
    let mut peer = Peer::spawn(cmd, "the Cyclone DDS peer");
    peer.expect_line("READY", Duration::from_secs(30));
    let out = sim_node(
        domain,
        &[
            "scenario:=icy_night_crossing",
            "image_scale:=0.25",
            "duration:=2.0",
            "mode:=lockstep",
            &format!("lockstep_pace:={pace}"),
            "wait_for_subscribers:=true",
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "sim_node: {}", String::from_utf8_lossy(&out.stderr));
    peer.wait_success(Duration::from_secs(90));
    peer.log
        .iter()
        .filter_map(|l| l.strip_prefix("STAMP "))
        .map(|l| {
            let (s, ns) = l.split_once(' ').unwrap();
            (s.parse().unwrap(), ns.parse().unwrap())
        })
        .collect()
}

#[test]
fn lockstep_acknowledged_loses_nothing_to_a_slow_recorder() {
    let got = record_slowly("acknowledged");
    let want: Vec<(i32, u32)> = (1..=20).map(|k| (k / 10, (k % 10) as u32 * 100_000_000)).collect();
    // Free pace, for the record: the simulator finishes long before the
    // recorder (one frame per 150 ms) has taken everything, and what was not
    // yet delivered when it exits is lost.
    let free = record_slowly("free");
    eprintln!("slow recorder got {} of 20 frames at free pace, {} acknowledged", free.len(), got.len());
    assert_eq!(got, want, "every frame, in order, once");
}

#[test]
fn broken_scenarios_are_refused_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/scenarios/icy_night_crossing.yaml"))
        .unwrap()
        .replace("friction: {road: 0.1, sidewalk: 0.3}", "friction: {road: -0.1, sidewalk: 0.3}");
    std::fs::File::create(&path).unwrap().write_all(text.as_bytes()).unwrap();
    let line = text.lines().position(|l| l.contains("road: -0.1")).unwrap() + 1;
    let out = sim_node(fresh_domain(), &[&format!("scenario:={}", path.display())]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{}:{line}: 'environment.friction.road': friction must not be negative", path.display())), "{err}");

    let out = sim_node(fresh_domain(), &["scenario:=no_such_scenario"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("'no_such_scenario'") && err.contains("cup_near_edge"), "{err}");

    let out = sim_node(fresh_domain(), &["mode:=fastest"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("realtime or lockstep"));
    let out = sim_node(fresh_domain(), &["mode:=lockstep", "lockstep_pace:=slow"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("'lockstep_pace' is 'slow'; it is free or acknowledged"));
    let out = sim_node(fresh_domain(), &["lockstep_pace:=acknowledged"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("the pace applies to mode lockstep"));
}

/// Per topic: messages, and the digests of the images in log-time order.
type Summary = BTreeMap<String, (u64, Vec<String>)>;

#[test]
fn sample_bags_are_read_by_rosbags_and_mcap() {
    for (name, cameras) in [("icy_night_crossing", 2), ("dry_day_urban", 8), ("cup_near_edge", 2)] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bags").join(name);
        let r = BagReader::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(r.damage().is_empty() && r.problems.is_empty(), "{name}: {:?}", r.problems);
        let mut ours = Summary::new();
        let mut msgs: Vec<_> = r.messages().collect();
        msgs.sort_by_key(|m| m.log_time);
        for m in &msgs {
            let c = &r.connections[m.connection];
            let e = ours.entry(c.topic.clone()).or_default();
            e.0 += 1;
            if c.type_name == "sensor_msgs/msg/Image" {
                let img: Image = Serialized(m.data.clone()).decode().unwrap();
                e.1.push(format!("{:x}", Sha256::digest(&img.data[..])));
            }
            if c.topic == "/scenario" {
                let s: ScenarioInfo = Serialized(m.data.clone()).decode().unwrap();
                assert_eq!(s.scenario, name);
            }
        }
        let images = ours.keys().filter(|t| t.starts_with("/sim/") && t.ends_with("/image_raw")).count();
        assert_eq!(images, cameras, "{name}: {:?}", ours.keys());
        for t in ["/clock", "/tf_static", "/scenario", "/sim/detections3d"] {
            assert!(ours.contains_key(t), "{name}: no {t}");
        }
        assert!(ours["/sim/detections3d"].0 >= 8, "{name}");

        let mut theirs: BTreeMap<String, Summary> = BTreeMap::new();
        let mut lines = bag_peer(&["summary", path.to_str().unwrap()]);
        lines.sort_by_key(|l| l["log_time"].as_u64().unwrap());
        for l in lines {
            let reader = l["reader"].as_str().unwrap().to_string();
            let e = theirs.entry(reader).or_default().entry(l["topic"].as_str().unwrap().into()).or_default();
            e.0 += 1;
            if let Some(d) = l.get("data_sha256") {
                e.1.push(d.as_str().unwrap().into());
            }
        }
        for reader in ["rosbags", "mcap"] {
            assert_eq!(theirs.get(reader), Some(&ours), "{name}: {reader} reads other messages than we do");
        }
    }
}

/// `driver:=expert`: the privileged expert picks the cup up from inside the
/// simulator, and what it commands goes out on expert/joint_commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expert_drives_the_arm_from_inside_and_publishes_its_commands() {
    let domain = fresh_domain();
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "expert_listener", &RosArgs::default()).unwrap();
    let cmds = node.create_subscription::<JointState>("/expert/joint_commands", Qos::reliable().depth(1000)).unwrap();
    let grasped = node.create_subscription::<sim2real_msgs::std_msgs::msg::Bool>("/gripper/grasped", Qos::reliable().depth(1000)).unwrap();
    // sim_node waits for a subscriber on its first camera.
    let _camera = node.create_subscription::<Image>("/sim/front/image_raw", Qos::sensor_data()).unwrap();
    let out = sim_node(
        domain,
        &["scenario:=cup_near_edge", "image_scale:=0.1", "duration:=9.0", "mode:=lockstep", "driver:=expert", "wait_for_subscribers:=true"],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("the privileged expert drives"), "{stderr}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent: Vec<_> = std::iter::from_fn(|| cmds.try_recv()).collect();
    assert!(sent.len() > 100, "{} expert commands", sent.len());
    assert_eq!(sent[0].name.last().map(String::as_str), Some("gripper"));
    let min = sent.iter().map(|c| c.position[6]).fold(f64::INFINITY, f64::min);
    assert!(min < 0.01, "the expert closes the gripper: {} commands, narrowest {min}\n{stderr}", sent.len());
    assert!(std::iter::from_fn(|| grasped.try_recv()).any(|g| g.data), "and holds the cup by 9 s");
    let bad = sim_node(domain, &["scenario:=cup_near_edge", "driver:=autopilot", "duration:=0.1"]).output().unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("'driver' is 'autopilot'"));
}

/// The arm's description as sim_node publishes it is a URDF that urdfdom,
/// the parser robot_state_publisher and RViz use, reads: one tree from
/// base_link through link1 … link6 to tool0.
#[test]
fn urdfdom_reads_the_arms_description() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let scenario = s2r_sim::scenario::Scenario::load(&root.join("config/scenarios/cup_near_edge.yaml")).unwrap();
    let s2r_sim::scenario::EgoSpec::Arm(arm) = scenario.ego.clone() else { panic!("cup_near_edge has an arm") };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("arm.urdf");
    std::fs::write(&path, s2r_sim::description::arm(&arm).to_urdf().unwrap()).unwrap();
    let out = Command::new("check_urdf").arg(&path).output().expect("check_urdf (Debian's liburdfdom-tools; tests/run installs it)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("robot name is: sim2real_arm") && text.contains("root Link: base_link has 1 child(ren)"), "{text}");
    let chain: Vec<&str> = text.lines().filter_map(|l| l.trim().strip_prefix("child(1):").map(str::trim)).collect();
    assert_eq!(chain, ["link1", "link2", "link3", "link4", "link5", "link6", "tool0"], "{text}");
}
