//! transfer_node as users run it, over DDS on loopback: behind sim_node it
//! publishes a restyled frame per simulated frame (same stamp, same size),
//! republishes the labels and scores every frame; fed by hand, it falls back
//! to the controls present, refuses wrong encodings by topic and keeps going;
//! a broken ONNX model stops it at start with the path. Behind a simulator
//! that publishes JPEGs only, it reads them (transport auto) and publishes
//! raw and compressed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fresh_domain, loopback, loopback_env};
use s2r_runtime::{Node, Qos, RosArgs};
use sim2real_msgs::builtin_interfaces::msg::Time;
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, CompressedImage, Image};
use sim2real_msgs::sim2real_msgs::msg::TransferScore;
use sim2real_msgs::std_msgs::msg::Header;
use sim2real_msgs::vision_msgs::msg::Detection2DArray;

fn node_cmd(exe: &str, domain: u16, params: &[&str]) -> Command {
    let mut c = Command::new(exe);
    loopback_env(&mut c, domain);
    c.arg("--ros-args");
    for p in params {
        c.args(["-p", p]);
    }
    c
}

fn ns(t: &Time) -> i64 {
    t.sec as i64 * 1_000_000_000 + t.nanosec as i64
}

const PROMPT: &str = "heavy rain, dusk, street lights";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restyles_every_simulated_frame_and_keeps_the_labels() {
    let domain = fresh_domain();
    let prompt = format!("prompt:={PROMPT}");
    let mut transfer = node_cmd(env!("CARGO_BIN_EXE_transfer_node"), domain, &[&prompt, "cameras:=front", "seed:=3"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "transfer_test", &RosArgs::default()).unwrap();
    let q = Qos::reliable().depth(200);
    let out = node.create_subscription::<Image>("/front/image_raw", q).unwrap();
    let scores = node.create_subscription::<TransferScore>("/front/transfer_score", q).unwrap();
    let dets = node.create_subscription::<Detection2DArray>("/front/detections", q).unwrap();
    let sim_dets = node.create_subscription::<Detection2DArray>("/sim/front/detections", q).unwrap();
    let sim_img = node.create_subscription::<Image>("/sim/front/image_raw", q).unwrap();
    // The simulator waits for a reader of its first camera; ours is there, let transfer_node's be too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut sim = node_cmd(
        env!("CARGO_BIN_EXE_sim_node"),
        domain,
        &[
            "scenario:=icy_night_crossing",
            "seed:=3",
            "image_scale:=0.5",
            "duration:=2.0",
            "real_time_factor:=0.5",
            "wait_for_subscribers:=true",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut outs, mut inputs, mut score_v, mut det_stamps, mut sim_det_stamps) =
        (BTreeMap::new(), BTreeMap::new(), Vec::new(), BTreeSet::new(), BTreeSet::new());
    let mut finished: Option<Instant> = None;
    loop {
        assert!(Instant::now() < deadline, "no end");
        while let Some(i) = out.try_recv() {
            outs.insert(ns(&i.header.stamp), i);
        }
        while let Some(i) = sim_img.try_recv() {
            inputs.insert(ns(&i.header.stamp), i);
        }
        while let Some(s) = scores.try_recv() {
            score_v.push(s);
        }
        while let Some(d) = dets.try_recv() {
            det_stamps.insert(ns(&d.header.stamp));
        }
        while let Some(d) = sim_dets.try_recv() {
            sim_det_stamps.insert(ns(&d.header.stamp));
        }
        if finished.is_none() && sim.try_wait().unwrap().is_some() {
            finished = Some(Instant::now());
        }
        if finished.is_some_and(|t| t.elapsed() > Duration::from_secs(3)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    transfer.kill().ok();
    let mut log = String::new();
    transfer.stderr.take().unwrap().read_to_string(&mut log).ok();
    transfer.wait().ok();
    assert!(inputs.len() >= 19, "the simulator published {} frames", inputs.len());
    assert!(outs.len() * 10 >= inputs.len() * 9, "{} of {} frames restyled; log:\n{log}", outs.len(), inputs.len());
    for (stamp, o) in &outs {
        let i = inputs.get(stamp).unwrap_or_else(|| panic!("output stamp {stamp} is not an input stamp"));
        assert_eq!(
            (o.width, o.height, o.encoding.as_str(), o.header.frame_id.as_str()),
            (i.width, i.height, "rgb8", i.header.frame_id.as_str())
        );
        let diff: u64 = o.data.iter().zip(i.data.iter()).map(|(a, b)| (*a as i64 - *b as i64).unsigned_abs()).sum();
        assert!(diff / o.data.len() as u64 >= 5, "frame {stamp} barely changed");
    }
    assert_eq!(score_v.len(), outs.len(), "one score per restyled frame");
    for s in &score_v {
        assert!(outs.contains_key(&ns(&s.header.stamp)));
        assert_eq!((s.prompt.as_str(), s.seed, s.backend.as_str()), (PROMPT, 3, "builtin"));
        assert!(s.boundary_pixels > 100 && s.boundary_recall >= 0.6 && !s.flagged, "{s:?}");
        assert!(s.weights.iter().sum::<f32>() <= 1.0 + 1e-5);
    }
    assert!(!sim_det_stamps.is_empty());
    assert_eq!(det_stamps, sim_det_stamps, "every label republished with its stamp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_frames_in_raw_and_compressed_out() {
    let domain = fresh_domain();
    let mut transfer = node_cmd(
        env!("CARGO_BIN_EXE_transfer_node"),
        domain,
        &["cameras:=front", "preset:=fast", "device:=gpu", "publish_transport:=both"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // The GPU path builds its pipelines before the node subscribes: start the
    // simulator only once the node says which backend it runs (its log).
    let (said, log_lines) = std::sync::mpsc::channel::<String>();
    let stderr = transfer.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = said.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let started = Instant::now();
    while !log_lines.recv_timeout(Duration::from_secs(60)).unwrap_or_default().contains("backend ") {
        assert!(started.elapsed() < Duration::from_secs(60), "transfer_node did not start");
    }
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "transfer_test", &RosArgs::default()).unwrap();
    let q = Qos::reliable().depth(200);
    let sim_raw = node.create_subscription::<Image>("/sim/front/image_raw", q).unwrap();
    let sim_jpeg = node.create_subscription::<CompressedImage>("/sim/front/image_raw/compressed", q).unwrap();
    let out = node.create_subscription::<Image>("/front/image_raw", q).unwrap();
    let out_jpeg = node.create_subscription::<CompressedImage>("/front/image_raw/compressed", q).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut sim = node_cmd(
        env!("CARGO_BIN_EXE_sim_node"),
        domain,
        &[
            "scenario:=icy_night_crossing",
            "image_scale:=0.5",
            "duration:=1.5",
            "real_time_factor:=0.5",
            "wait_for_subscribers:=true",
            "publish_transport:=compressed",
            "jpeg_quality:=90",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut raw_in, mut jpeg_in, mut outs, mut jpeg_outs) = (0, BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut finished: Option<Instant> = None;
    loop {
        assert!(Instant::now() < deadline, "no end");
        while sim_raw.try_recv().is_some() {
            raw_in += 1;
        }
        while let Some(i) = sim_jpeg.try_recv() {
            jpeg_in.insert(ns(&i.header.stamp), i);
        }
        while let Some(i) = out.try_recv() {
            outs.insert(ns(&i.header.stamp), i);
        }
        while let Some(i) = out_jpeg.try_recv() {
            jpeg_outs.insert(ns(&i.header.stamp), i);
        }
        if finished.is_none() && sim.try_wait().unwrap().is_some() {
            finished = Some(Instant::now());
        }
        if finished.is_some_and(|t| t.elapsed() > Duration::from_secs(3)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    transfer.kill().ok();
    transfer.wait().ok();
    let log = reader.join().unwrap();
    assert_eq!(raw_in, 0, "publish_transport:=compressed publishes no raw frames");
    assert!(jpeg_in.len() >= 10, "the simulator published {} JPEG frames", jpeg_in.len());
    assert!(jpeg_in.values().all(|c| c.format == "rgb8; jpeg compressed bgr8"));
    assert!(outs.len() * 10 >= jpeg_in.len() * 9, "{} of {} frames restyled; log:\n{log}", outs.len(), jpeg_in.len());
    assert!(log.contains("frames arrive compressed on /sim/front/image_raw/compressed"), "{log}");
    assert!(log.contains("backend builtin:fast:gpu"), "device:=gpu restyles on the GPU path; log:\n{log}");
    assert!(outs.keys().all(|s| jpeg_in.contains_key(s)), "every output has an input's stamp");
    // The compressed output is the raw output, JPEG-coded.
    let both: Vec<i64> = outs.keys().filter(|s| jpeg_outs.contains_key(s)).copied().collect();
    assert!(both.len() * 10 >= outs.len() * 9, "{} of {} outputs also compressed", both.len(), outs.len());
    for s in both {
        let dec = s2r_image::decompress(&jpeg_outs[&s], "/front/image_raw/compressed").unwrap();
        let raw = &outs[&s];
        assert_eq!((dec.width, dec.height, dec.encoding.as_str()), (raw.width, raw.height, "rgb8"));
        let mse = dec.data.iter().zip(raw.data.iter()).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum::<f64>() / dec.data.len() as f64;
        assert!(10.0 * (255.0f64.powi(2) / mse.max(1e-9)).log10() > 35.0, "frame {s}: mse {mse}");
    }
}

fn header(sec: i32, frame: &str) -> Header {
    Header { stamp: Time { sec, nanosec: 0 }, frame_id: frame.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_controls_and_wrong_encodings_are_reported_and_survived() {
    let domain = fresh_domain();
    let mut transfer = node_cmd(env!("CARGO_BIN_EXE_transfer_node"), domain, &["cameras:=cam", "prompt:=noon, purple"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "feeder", &RosArgs::default()).unwrap();
    let q = Qos::reliable().depth(20);
    let img = node.create_publisher::<Image>("/sim/cam/image_raw", q).unwrap();
    let depth = node.create_publisher::<Image>("/sim/cam/depth", q).unwrap();
    let info = node.create_publisher::<CameraInfo>("/sim/cam/camera_info", q).unwrap();
    let out = node.create_subscription::<Image>("/cam/image_raw", q).unwrap();
    let t0 = Instant::now();
    while img.subscription_count() == 0 || depth.subscription_count() == 0 || info.subscription_count() == 0 || out.topic().is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(30), "transfer_node did not subscribe");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (w, h) = (64u32, 48u32);
    let k = [60.0, 0.0, 32.0, 0.0, 60.0, 24.0, 0.0, 0.0, 1.0];
    // A frame in an encoding the node does not read.
    img.publish(Image {
        header: header(1, "cam_optical_frame"),
        width: w,
        height: h,
        encoding: "yuv422".into(),
        step: w * 2,
        data: vec![128u8; (w * h * 2) as usize].into(),
        ..Default::default()
    })
    .unwrap();
    // Then good frames with camera info, a depth image of the wrong size, and no segmentation.
    for sec in 2..7 {
        let data: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
        info.publish(CameraInfo { header: header(sec, "cam_optical_frame"), width: w, height: h, k, ..Default::default() }).unwrap();
        depth
            .publish(Image {
                header: header(sec, "cam_optical_frame"),
                width: 8,
                height: 8,
                encoding: "32FC1".into(),
                step: 32,
                data: vec![0u8; 256].into(),
                ..Default::default()
            })
            .unwrap();
        img.publish(Image {
            header: header(sec, "cam_optical_frame"),
            width: w,
            height: h,
            encoding: "bgr8".into(),
            step: w * 3,
            data: data.into(),
            ..Default::default()
        })
        .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut got = BTreeSet::new();
    let t1 = Instant::now();
    while t1.elapsed() < Duration::from_secs(5) && got.len() < 5 {
        while let Some(o) = out.try_recv() {
            assert_eq!((o.width, o.height, o.encoding.as_str()), (w, h, "rgb8"));
            got.insert(o.header.stamp.sec);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    transfer.kill().ok();
    let mut log = String::new();
    transfer.stderr.take().unwrap().read_to_string(&mut log).ok();
    transfer.wait().ok();
    assert_eq!(got, (2..7).collect::<BTreeSet<i32>>(), "every good frame restyled; log:\n{log}");
    assert!(log.contains("purple"), "unknown prompt words reported:\n{log}");
    assert!(log.contains("/sim/cam/image_raw") && log.contains("yuv422"), "wrong encoding named with its topic:\n{log}");
    assert_eq!(log.matches("/sim/cam/depth: 8x8 does not match").count(), 1, "said once:\n{log}");
    assert_eq!(log.matches("restyling with the controls present (edge, vis)").count(), 1, "said once:\n{log}");
}

#[test]
fn a_broken_model_stops_the_node_at_start_with_its_path() {
    let dir = std::env::temp_dir().join(format!("s2r_badmodel_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("broken.onnx");
    std::fs::write(&model, b"\x08\x07garbage").unwrap();
    let mut c = node_cmd(env!("CARGO_BIN_EXE_transfer_node"), fresh_domain(), &[&format!("model:={}", model.display())]);
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("parameter 'model'") && err.contains("broken.onnx"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
    // A device that does not exist.
    let out = node_cmd(env!("CARGO_BIN_EXE_transfer_node"), fresh_domain(), &["device:=tpu"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("parameter 'device'") && err.contains("'tpu' is not cpu, gpu or auto"), "{err}");
}
