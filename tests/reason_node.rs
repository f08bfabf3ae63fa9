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
