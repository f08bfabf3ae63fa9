//! reason_node over DDS: simulator frames and odometry in, a reasoning chain
//! out at its rate whose numbers are the shipped predictors' outputs; a frame
//! it cannot read refused by topic; no frames for 300 ms and it publishes a
//! stop constraint; a missing model stops it naming the path and the command
//! that trains one.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{depth_frame, finish, fresh_domain, loopback, loopback_env, odometry, recorded_frames, Logged};
use s2r_runtime::{Node, Qos, RosArgs};
use sim2real_msgs::sensor_msgs::msg::Image;
use sim2real_msgs::sim2real_msgs::msg::Reasoning;

fn shipped() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/reason/reason.json")
}

fn step(r: &Reasoning, quantity: &str) -> f32 {
    r.steps.iter().find(|s| s.quantity == quantity).unwrap_or_else(|| panic!("no {quantity} step in {r:?}")).value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_and_odometry_in_a_reasoning_chain_out() {
    let frames = recorded_frames("icy_night_crossing", 8);
    assert!(!frames.is_empty());
    let domain = fresh_domain();
    let mut c = Command::new(env!("CARGO_BIN_EXE_reason_node"));
    loopback_env(&mut c, domain);
    c.args(["--ros-args", "-p", &format!("model:={}", shipped().display()), "-p", "sight:=40.0", "-r", "__ns:=/robot"]);
    let node_proc = Logged::spawn(c);
    let text = || node_proc.text();

    let ctx = loopback(domain);
    let node = Node::new(&ctx, "robot_camera", &RosArgs::default()).unwrap();
    let img = node.create_publisher::<Image>("/robot/front/image_raw", Qos::reliable().depth(10)).unwrap();
    let odom = node.create_publisher("/robot/odom", Qos::reliable().depth(10)).unwrap();
    let out = node.create_subscription::<Reasoning>("/robot/reasoning", Qos::reliable().depth(200)).unwrap();
    let t0 = Instant::now();
    while img.subscription_count() == 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "reason_node did not come up:\n{}", text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Before any frame: blind, so stop.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before: Vec<Arc<Reasoning>> = std::iter::from_fn(|| out.try_recv()).collect();
    assert!(!before.is_empty(), "it publishes at its rate even without input");
    assert!(before.iter().all(|r| r.constraints.iter().any(|c| c.name == "max_speed" && c.value == 0.0)), "{before:?}");

    // A depth image on the camera topic: refused by name, the node carries on.
    img.publish(depth_frame("front_optical_frame")).unwrap();
    let t = Instant::now();
    while !text().contains("/robot/front/image_raw") || !text().contains("refused") {
        assert!(t.elapsed() < Duration::from_secs(10), "the bad frame is not reported:\n{}", text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Frames at 10 Hz with odometry (1.5 m/s): chains whose numbers are the model's.
    for (k, f) in frames.iter().enumerate() {
        odom.publish(odometry(k as i32)).unwrap();
        img.publish(f.clone()).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let live: Vec<Arc<Reasoning>> = std::iter::from_fn(|| out.try_recv()).filter(|r| !r.situation.starts_with("blind")).collect();
    assert!(live.len() >= 4, "about 10 Hz: {} live chains\n{}", live.len(), text());
    let model = s2r_reason::model::ReasonModel::load(&shipped()).unwrap();
    for r in &live {
        let mu = step(r, "surface_mu");
        assert!(s2r_reason::surface::CLASS_MU.contains(&mu), "the friction of one of its classes: {mu}");
        let stop = step(r, "stopping_distance");
        assert!((stop - model.stopping.distance(1.5, mu, 0.1)).abs() < 1e-3, "{stop} for 1.5 m/s at μ {mu}");
        // The limit: stopping short of the free distance (the sight, 40 m, or what the hazard
        // predictor reads in the path, 2.5 m to spare) on half the grip, and before the far end
        // of a parked car that may hide someone, when it reads one.
        let limit = r.constraints.iter().find(|c| c.name == "max_speed").unwrap().value;
        let room = r.constraints.iter().find(|c| c.name == "stop_distance").unwrap().value;
        assert!(room <= 40.0 - 2.5 + 1e-3, "{room}");
        let mut expected = model.stopping.max_speed(room, mu * s2r_reason::chain::PLAN_GRIP, 0.1);
        if let Some(s) = r.steps.iter().find(|s| s.quantity == "occlusion_speed") {
            expected = expected.min(s.value);
        }
        assert!((limit - expected).abs() < 1e-3, "{limit} vs {expected}: {r:?}");
        assert_eq!(step(r, "max_speed"), limit);
        assert!(r.header.frame_id == frames[0].header.frame_id, "the frame's header");
    }
    assert!(text().contains("reasoning: camera and odometry are live"), "{}", text());

    // The camera goes quiet: a stop constraint within the stale time (and a rate's slack).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let _: Vec<Arc<Reasoning>> = std::iter::from_fn(|| out.try_recv()).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after: Vec<Arc<Reasoning>> = std::iter::from_fn(|| out.try_recv()).collect();
    assert!(!after.is_empty(), "still publishing");
    for r in &after {
        assert!(r.steps[0].text.contains("no camera frame for 300 ms"), "{r:?}");
        assert_eq!(r.constraints[0].value, 0.0);
    }
}

#[test]
fn a_missing_model_stops_the_node_naming_it() {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reason_node"));
    loopback_env(&mut c, fresh_domain());
    c.args(["--ros-args", "-p", "model:=/nonexistent/reason.json"]);
    let (o, _) = finish(c, Duration::from_secs(30));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/nonexistent/reason.json") && err.contains("s2r train reason"), "{err}");
}

/// An arm cell: a camera 2 m above the table's middle looking straight down,
/// its depth image, and perception's detection of a cup 4 cm from the table's
/// left edge (+y): the chain says so, keeps out of the side whose sweep drops
/// it, names another to approach from; detections in a frame with no
/// transform are refused by name; without detections it publishes a stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arm_reasons_about_the_cup_perception_detects() {
    use sim2real_msgs::geometry_msgs::msg::{Quaternion, Transform, TransformStamped, Vector3};
    use sim2real_msgs::sensor_msgs::msg::CameraInfo;
    use sim2real_msgs::std_msgs::msg::Header;
    use sim2real_msgs::tf2_msgs::msg::TFMessage;
    use sim2real_msgs::vision_msgs::msg::{
        BoundingBox2D, Detection2D, Detection2DArray, ObjectHypothesis, ObjectHypothesisWithPose, Point2D, Pose2D,
    };

    let domain = fresh_domain();
    let mut c = Command::new(env!("CARGO_BIN_EXE_reason_node"));
    loopback_env(&mut c, domain);
    c.args(["--ros-args", "-p", &format!("model:={}", shipped().display()), "-p", "robot:=arm", "-p", "stale_ms:=700", "-p", "rate:=5.0"]);
    let node_proc = Logged::spawn(c);
    let text = || node_proc.text();

    let ctx = loopback(domain);
    let node = Node::new(&ctx, "arm_cell", &RosArgs::default()).unwrap();
    let tf = node.create_publisher::<TFMessage>("/tf_static", Qos::transient_local().depth(10)).unwrap();
    let info = node.create_publisher::<CameraInfo>("/front/camera_info", Qos::reliable().depth(10)).unwrap();
    let depth = node.create_publisher::<Image>("/front/depth", Qos::reliable().depth(10)).unwrap();
    let dets = node.create_publisher::<Detection2DArray>("/perception/front/detections", Qos::reliable().depth(10)).unwrap();
    let out = node.create_subscription::<Reasoning>("/reasoning", Qos::reliable().depth(200)).unwrap();
    let t0 = Instant::now();
    while dets.subscription_count() == 0 || info.subscription_count() == 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "reason_node did not come up:\n{}", text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let header = |frame: &str| Header { frame_id: frame.into(), ..Default::default() };
    // The optical frame (z forward, y down) turned half a turn about x: looking down, image up = +y.
    tf.publish(TFMessage {
        transforms: vec![TransformStamped {
            header: header("map"),
            child_frame_id: "front_optical".into(),
            transform: Transform {
                translation: Vector3 { x: 0.0, y: 0.0, z: 2.0 },
                rotation: Quaternion { x: 1.0, y: 0.0, z: 0.0, w: 0.0 },
            },
        }],
    })
    .unwrap();
    let k = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0];
    let cam = CameraInfo { header: header("front_optical"), width: 640, height: 480, k, ..Default::default() };
    // The cup's front 1.15 m below the camera (its top, 10 cm above the 0.75 m table) at (0.1, 0.28).
    let z = 1.15f32;
    let plane: Vec<u8> = std::iter::repeat_n(z.to_le_bytes(), 640 * 480).flatten().collect();
    let depth_img = Image {
        header: header("front_optical"),
        width: 640,
        height: 480,
        encoding: "32FC1".into(),
        step: 640 * 4,
        data: plane.into(),
        ..Default::default()
    };
    let detection = |class: &str, x: f32, y: f32| Detection2D {
        results: vec![ObjectHypothesisWithPose {
            hypothesis: ObjectHypothesis { class_id: class.into(), score: 0.8 },
            ..Default::default()
        }],
        bbox: BoundingBox2D {
            center: Pose2D { position: Point2D { x: (320.0 + 500.0 * x / z) as f64, y: (240.0 - 500.0 * y / z) as f64 }, theta: 0.0 },
            size_x: 30.0,
            size_y: 30.0,
        },
        ..Default::default()
    };
    let looks = |frame: &str| Detection2DArray {
        header: header(frame),
        detections: vec![detection("cup", 0.1, 0.28), detection("person", -0.2, 0.0)],
    };
    // Detections in a frame the transforms do not reach: refused, naming it.
    info.publish(cam.clone()).unwrap();
    dets.publish(looks("elsewhere")).unwrap();
    let t = Instant::now();
    while !text().contains("'elsewhere'") {
        assert!(t.elapsed() < Duration::from_secs(10), "the frame without a transform is not named:\n{}", text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Looks at 5 Hz.
    let _: Vec<Arc<Reasoning>> = std::iter::from_fn(|| out.try_recv()).collect();
    for _ in 0..10 {
        info.publish(cam.clone()).unwrap();
        depth.publish(depth_img.clone()).unwrap();
        dets.publish(looks("front_optical")).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let live: Vec<Arc<Reasoning>> = std::iter::from_fn(|| out.try_recv()).filter(|r| !r.situation.starts_with("blind")).collect();
    assert!(live.len() >= 4, "{} live chains:\n{}", live.len(), text());
    let r = live.last().unwrap();
    assert_eq!(r.header.frame_id, "map");
    // Its centre a radius beyond the front: (0.1135, 0.3177), 4 cm from the edge at y 0.4.
    assert_eq!(step(r, "edge_distance_cm"), 4.0, "{r:?}");
    assert!(r.steps[0].text.contains("4 cm from the table's left edge"), "{r:?}");
    let keep_out: Vec<_> = r.constraints.iter().filter(|c| c.name == "keep_out").collect();
    assert!(!keep_out.is_empty(), "a sweep towards the near edge drops it: {r:?}");
    for k in &keep_out {
        assert!(k.region.len() >= 3 && k.region.iter().all(|p| (p.z - 0.75).abs() < 1e-6), "{k:?}");
        let (cx, cy) = (
            k.region.iter().map(|p| p.x).sum::<f64>() / k.region.len() as f64,
            k.region.iter().map(|p| p.y).sum::<f64>() / k.region.len() as f64,
        );
        assert!(((cx - 0.1135).powi(2) + (cy - 0.3177).powi(2)).sqrt() < 0.25, "beside the cup: {k:?}");
    }
    let approach = r.constraints.iter().find(|c| c.name == "approach_side").expect("an approach side");
    assert!((approach.value - std::f32::consts::FRAC_PI_2).abs() > 0.5, "not pushing it towards the near edge: {r:?}");
    assert!(text().contains("reasoning: detections are live"), "{}", text());

    // Perception goes quiet: a stop.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let _: Vec<Arc<Reasoning>> = std::iter::from_fn(|| out.try_recv()).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after: Vec<Arc<Reasoning>> = std::iter::from_fn(|| out.try_recv()).collect();
    assert!(!after.is_empty());
    for r in &after {
        assert!(r.steps[0].text.contains("no detections for 700 ms") && r.steps[0].text.contains("the table"), "{r:?}");
        assert_eq!(r.constraints[0].value, 0.0);
    }
}

#[test]
fn an_arm_model_without_a_cup_predictor_is_refused() {
    // A model file with only the stopping predictor (the JSON without its networks).
    let dir = tempfile::tempdir().unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(shipped()).unwrap()).unwrap();
    for k in ["surface", "hazard", "cup"] {
        m.as_object_mut().unwrap().remove(k);
    }
    let path = dir.path().join("reason.json");
    std::fs::write(&path, serde_json::to_string(&m).unwrap()).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_reason_node"));
    loopback_env(&mut c, fresh_domain());
    c.args(["--ros-args", "-p", &format!("model:={}", path.display()), "-p", "robot:=arm"]);
    let (o, _) = finish(c, Duration::from_secs(30));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no cup outcome predictor") && err.contains("--cup-seeds"), "{err}");
}
