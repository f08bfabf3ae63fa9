//! world_model_node over DDS: the icy night's recorded frames and odometry
//! in, the predicted frames (decoded, stamped at the instants they predict)
//! and the ego's predicted path out; a frame it cannot read refused by
//! topic; a replaced checkpoint reloaded (one of other token frames
//! refused); a missing checkpoint stops it naming the path and the command
//! that trains one.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{depth_frame, finish, fresh_domain, loopback, loopback_env, odometry, recorded_frames, Logged};
use s2r_runtime::{Node, Qos, RosArgs};
use sim2real_msgs::nav_msgs::msg::Path as PathMsg;
use sim2real_msgs::sensor_msgs::msg::Image;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_and_odometry_in_predicted_frames_and_path_out() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("world.safetensors");
    // An untrained network: the node's behaviour is under test, not the model's.
    let cfg = s2r_world::model::Config {
        dim: 32,
        layers: 1,
        mlp: 64,
        ..s2r_world::model::Config::new("dv8x16x16", 16, s2r_tokenizer::fsq::LEVELS.to_vec())
    };
    s2r_world::checkpoint::save_untrained(&ck, cfg.clone(), 3).unwrap();
    let frames = recorded_frames("icy_night_crossing", 12);
    let domain = fresh_domain();
    let mut c = Command::new(env!("CARGO_BIN_EXE_world_model_node"));
    loopback_env(&mut c, domain);
    c.args(["--ros-args", "-p", &format!("checkpoint:={}", ck.display()), "-p", "horizon:=4", "-r", "__ns:=/robot"]);
    let node_proc = Logged::spawn(c);
    let text = || node_proc.text();

    let ctx = loopback(domain);
    let node = Node::new(&ctx, "robot_camera", &RosArgs::default()).unwrap();
    let img = node.create_publisher::<Image>("/robot/front/image_raw", Qos::reliable().depth(20)).unwrap();
    let odom = node.create_publisher("/robot/odom", Qos::reliable().depth(10)).unwrap();
    let predicted = node.create_subscription::<Image>("/robot/front/predicted/image_raw", Qos::reliable().depth(100)).unwrap();
    let path = node.create_subscription::<PathMsg>("/robot/predicted_path", Qos::reliable().depth(20)).unwrap();
    let t0 = Instant::now();
    while img.subscription_count() == 0 {
        assert!(t0.elapsed() < Duration::from_secs(60), "world_model_node did not come up:\n{}", text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Time for the node to match our subscriptions (reliable: nothing is lost once matched).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // A depth image on the camera topic (twice: the node reads every second frame): refused by name.
    img.publish(depth_frame("front_optical_frame")).unwrap();
    img.publish(depth_frame("front_optical_frame")).unwrap();
    let t = Instant::now();
    while !text().contains("/robot/front/image_raw") || !text().contains("refused") {
        assert!(t.elapsed() < Duration::from_secs(20), "the bad frame is not reported:\n{}", text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    odom.publish(odometry(1)).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut stamps = Vec::new();
    for f in &frames {
        stamps.push(s2r_runtime::stamp_ns(&f.header.stamp));
        img.publish(f.clone()).unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let (mut images, mut paths) = (Vec::new(), Vec::new());
    let t = Instant::now();
    while images.len() < 4 || paths.is_empty() {
        assert!(t.elapsed() < Duration::from_secs(60), "{} frames, {} paths predicted:\n{}", images.len(), paths.len(), text());
        images.extend(std::iter::from_fn(|| predicted.try_recv()));
        paths.extend(std::iter::from_fn(|| path.try_recv()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The horizon's frames, the codec's square, each after the frame it was predicted from.
    let first = &images[0];
    assert_eq!((first.width, first.height, first.encoding.as_str()), (256, 256, "rgb8"));
    let from = s2r_runtime::stamp_ns(&paths[0].header.stamp);
    assert!(stamps.contains(&from), "the path is stamped with the camera frame it was predicted from");
    let p = &paths[0];
    assert_eq!(p.poses.len(), 4);
    assert_eq!(p.header.frame_id, "odom");
    // Stamped 0.2 s apart after the frame; the poses start from odometry's pose.
    for (k, pose) in p.poses.iter().enumerate() {
        assert_eq!(s2r_runtime::stamp_ns(&pose.header.stamp), from + (k as i64 + 1) * 200_000_000);
    }
    let o = odometry(1);
    let d = ((p.poses[0].pose.position.x - o.pose.pose.position.x).powi(2) + (p.poses[0].pose.position.y - o.pose.pose.position.y).powi(2))
        .sqrt();
    assert!(d < 10.0, "the first predicted pose is one step from odometry's ({d} m)");

    // The file replaced by one of other token frames (every camera frame): refused, the running one kept;
    // then by a retrained one of the same frames: loaded without a restart.
    let wait_for = |what: &str| {
        let t = Instant::now();
        while !text().contains(what) {
            assert!(t.elapsed() < Duration::from_secs(20), "no '{what}':\n{}", text());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    s2r_world::checkpoint::save_untrained(&ck, s2r_world::model::Config { every: 1, ..cfg.clone() }, 4).unwrap();
    wait_for("models other token frames");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s2r_world::checkpoint::save_untrained(&ck, cfg, 5).unwrap();
    wait_for("loaded checkpoint");
    drop(node_proc);
}

#[test]
fn a_missing_checkpoint_stops_the_node_naming_it() {
    let mut c = Command::new(env!("CARGO_BIN_EXE_world_model_node"));
    loopback_env(&mut c, fresh_domain());
    c.args(["--ros-args", "-p", "checkpoint:=/nonexistent/world.safetensors"]);
    let (o, _) = finish(c, Duration::from_secs(30));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/nonexistent/world.safetensors") && err.contains("s2r train world"), "{err}");
}
