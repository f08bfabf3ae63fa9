//! perception_node over DDS: simulated camera frames in (bgr8 at the
//! recording's resolution, after one frame of an encoding it must refuse by
//! topic), detections, depth, segmentation and an overlay out with each
//! frame's stamp, the class table on a transient-local topic; a burst of
//! frames is met by working on the newest and counting the rest; a replaced
//! checkpoint is loaded without a restart; a missing checkpoint stops the node
//! naming the path and the command that trains one.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{as_bgr8, depth_frame, finish, fresh_domain, loopback, loopback_env, Logged};
use s2r_bag::BagReader;
use s2r_runtime::{Node, Qos, RosArgs, Serialized};
use sim2real_msgs::builtin_interfaces::msg::Time;
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image};
use sim2real_msgs::std_msgs::msg::Header;
use sim2real_msgs::vision_msgs::msg::{Detection2DArray, LabelInfo};

/// A few-step checkpoint trained on a shipped recording (the node's
/// behaviour, not its accuracy, is under test here).
fn checkpoint(dir: &Path, name: &str, steps: usize) -> std::path::PathBuf {
    let out = dir.join(name);
    let bag = Path::new(env!("CARGO_MANIFEST_DIR")).join("bags/dry_day_urban");
    let o = Command::new(env!("CARGO_BIN_EXE_s2r"))
        .args(["train", "perception", &bag.display().to_string(), "-o", &out.display().to_string(), "--frames", "flat"])
        .args(["--steps", &steps.to_string(), "--batch", "2", "--crop", "128x96", "--eval-every", "1000"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_in_predictions_out_with_their_stamps() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = checkpoint(tmp.path(), "a.safetensors", 5);
    let sim = BagReader::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("bags/dry_day_urban")).unwrap();
    let frames: Vec<Image> = sim
        .messages()
        .filter(|m| sim.connections[m.connection].topic == "/sim/front/image_raw")
        .map(|m| Serialized(m.data.clone()).decode::<Image>().unwrap())
        .take(6)
        .collect();
    let info: CameraInfo = sim
        .messages()
        .find(|m| sim.connections[m.connection].topic == "/sim/front/camera_info")
        .map(|m| Serialized(m.data.clone()).decode().unwrap())
        .unwrap();
    let domain = fresh_domain();
    let mut c = Command::new(env!("CARGO_BIN_EXE_perception_node"));
    loopback_env(&mut c, domain);
    c.args(["--ros-args", "-p", &format!("checkpoint:={}", ck.display()), "-p", "cameras:=cam", "-p", "threshold:=0.0"]).args([
        "-p",
        "max_detections:=5",
        "-r",
        "__ns:=/robot",
    ]);
    let node_proc = Logged::spawn(c);
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "camera", &RosArgs::default()).unwrap();
    let img = node.create_publisher::<Image>("/robot/cam/image_raw", Qos::reliable().depth(20)).unwrap();
    let cam_info = node.create_publisher::<CameraInfo>("/robot/cam/camera_info", Qos::reliable().depth(5)).unwrap();
    let dets = node.create_subscription::<Detection2DArray>("/robot/perception/cam/detections", Qos::reliable().depth(20)).unwrap();
    let depth = node.create_subscription::<Image>("/robot/perception/cam/depth", Qos::sensor_data().depth(20)).unwrap();
    let seg = node.create_subscription::<Image>("/robot/perception/cam/segmentation", Qos::sensor_data().depth(20)).unwrap();
    let overlay = node.create_subscription::<Image>("/robot/perception/cam/overlay", Qos::sensor_data().depth(20)).unwrap();
    let labels = node.create_subscription::<LabelInfo>("/robot/perception/cam/label_info", Qos::transient_local()).unwrap();
    let t0 = Instant::now();
    while img.subscription_count() == 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "perception_node did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    cam_info.publish(info.clone()).unwrap();
    // A depth image on the camera topic: refused by name, the node carries on.
    img.publish(depth_frame("cam")).unwrap();
    node_proc.wait_for("32FC1", Duration::from_secs(10)).await;
    let mut sent = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let stamp = Time { sec: 100 + i as i32, nanosec: 5 };
        sent.push(stamp.clone());
        img.publish(as_bgr8(f, stamp, "cam_optical")).unwrap();
        // One frame at a time: this test is about each frame's outputs, not about dropping when behind.
        let t = Instant::now();
        loop {
            if let Some(d) = dets.try_recv() {
                assert_eq!(d.header.stamp, sent[i], "detections carry their frame's stamp");
                assert_eq!(d.header.frame_id, "cam_optical");
                assert!(d.detections.len() <= 5, "max_detections");
                for det in &d.detections {
                    let h = &det.results[0].hypothesis;
                    assert!(!h.class_id.is_empty() && (0.0..=1.0).contains(&h.score));
                    assert!(det.bbox.size_x >= 0.0 && det.bbox.center.position.x <= f.width as f64);
                }
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(20), "no detections for frame {i}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let t = Instant::now();
    let (mut n_depth, mut n_seg, mut n_overlay) = (0, 0, 0);
    // (Counted below: one of each per frame, before the burst.)
    let expect = frames.len();
    while (n_depth < frames.len() || n_seg < frames.len() || n_overlay < frames.len()) && t.elapsed() < Duration::from_secs(10) {
        while let Some(d) = depth.try_recv() {
            assert_eq!((d.encoding.as_str(), d.width, d.height), ("32FC1", frames[0].width, frames[0].height));
            assert!(sent.contains(&d.header.stamp));
            let m: Vec<f32> = d.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            assert!(m.iter().all(|v| v.is_finite() && *v > 0.0), "depth in metres everywhere");
            n_depth += 1;
        }
        while let Some(s) = seg.try_recv() {
            assert_eq!((s.encoding.as_str(), s.width, s.height), ("mono8", frames[0].width, frames[0].height));
            n_seg += 1;
        }
        while let Some(o) = overlay.try_recv() {
            assert_eq!((o.encoding.as_str(), o.width), ("rgb8", frames[0].width));
            n_overlay += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!((n_depth, n_seg, n_overlay), (expect, expect, expect));

    // A burst faster than the network: the node works on the newest frame and counts the others as dropped.
    while dets.try_recv().is_some() {}
    for k in 0..12 {
        let f = &frames[k % frames.len()];
        img.publish(Image {
            header: Header { stamp: Time { sec: 200 + k as i32, nanosec: 0 }, frame_id: "cam_optical".into() },
            width: f.width,
            height: f.height,
            encoding: "rgb8".into(),
            step: f.width * 3,
            data: f.data.clone(),
            ..Default::default()
        })
        .unwrap();
    }
    // The node reports every 10 s; wait for a report that counts drops.
    let t = Instant::now();
    let counted = |log: &str| log.lines().any(|l| l.contains("dropped behind") && !l.contains(" 0 dropped behind"));
    while !counted(&node_proc.text()) {
        assert!(t.elapsed() < Duration::from_secs(25), "no drops reported:\n{}", node_proc.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut processed = 0;
    while let Some(d) = dets.try_recv() {
        assert!(d.header.stamp.sec >= 200);
        processed += 1;
    }
    assert!(processed < 12, "{processed} of a 12-frame burst processed: the node did not skip to the newest");

    let l = labels.try_recv().expect("the class table, transient local");
    assert!(l.class_map.iter().any(|c| c.class_name == "road"));

    // A new checkpoint over the old file is picked up without a restart.
    let b = checkpoint(tmp.path(), "b.safetensors", 3);
    std::fs::rename(&b, &ck).unwrap();
    node_proc.wait_for("loaded checkpoint", Duration::from_secs(15)).await;
    let err = node_proc.text();
    assert!(err.contains("/robot/cam/image_raw") && err.contains("32FC1"), "the refused frame is named by topic:\n{err}");
}

#[test]
fn a_missing_checkpoint_stops_the_node_with_the_fix() {
    let domain = fresh_domain();
    let mut c = Command::new(env!("CARGO_BIN_EXE_perception_node"));
    loopback_env(&mut c, domain);
    let o = c.args(["--ros-args", "-p", "checkpoint:=/nowhere/p.safetensors"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("/nowhere/p.safetensors") && err.contains("s2r train perception"), "{err}");
}

/// `s2r launch launch/perception.launch.yaml`: the simulator, transfer_node
/// and perception_node with the shipped checkpoint (the launch passes an
/// empty `checkpoint`), detections of the restyled front camera on
/// `/perception/front/detections` in the camera's frame, and the launch
/// ending by itself when the simulation's duration is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_launch_file_runs_the_shipped_checkpoint_on_restyled_frames() {
    let domain = fresh_domain();
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "perception_launch_test", &RosArgs::default()).unwrap();
    let dets = node.create_subscription::<Detection2DArray>("/perception/front/detections", Qos::reliable().depth(100)).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_s2r"));
    c.args(["launch", "launch/perception.launch.yaml", "duration:=3.0"]).current_dir(env!("CARGO_MANIFEST_DIR"));
    loopback_env(&mut c, domain);
    let (out, _) = tokio::task::spawn_blocking(move || finish(c, Duration::from_secs(240))).await.unwrap();
    let t = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the launch ends by itself: {t}");
    assert!(t.contains("models/perception/perception.safetensors"), "the shipped checkpoint is loaded: {t}");
    let mut n = 0;
    while let Some(d) = dets.try_recv() {
        assert_eq!(d.header.frame_id, "front_optical_frame", "{t}");
        n += 1;
    }
    assert!(n > 0, "no detections on /perception/front/detections: {t}");
}
