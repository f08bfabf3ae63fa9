//! tokenizer_node over DDS with the shipped cv4x8x8 checkpoint: simulated
//! frames in (bgr8, after one frame of a depth encoding it must refuse by
//! topic), a TokenFrame per chunk out with the stamps it covers, recorded into
//! a bag that `s2r tokens decode` turns back into images close to the input;
//! a missing checkpoint stops it with the path and the command.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{as_bgr8, depth_frame, fresh_domain, loopback, loopback_env};
use s2r_bag::BagReader;
use s2r_runtime::{Node, Qos, RosArgs, Serialized};
use s2r_tokenizer::data::square;
use s2r_tokenizer::metrics::{psnr, to_rgb8, Rgb8};
use sim2real_msgs::builtin_interfaces::msg::Time;
use sim2real_msgs::sensor_msgs::msg::Image;
use sim2real_msgs::sim2real_msgs::msg::TokenFrame;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_become_token_chunks_and_decode_back() {
    let tmp = tempfile::tempdir().unwrap();
    // Ten frames of the front camera of a shipped recording (rgb8, 320x240).
    let sim = BagReader::open(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/bags/icy_night_crossing"))).unwrap();
    let frames: Vec<Image> = sim
        .messages()
        .filter(|m| sim.connections[m.connection].topic == "/sim/front/image_raw")
        .map(|m| Serialized(m.data.clone()).decode::<Image>().unwrap())
        .skip(20)
        .take(10)
        .collect();
    assert_eq!(frames.len(), 10);
    let bag = tmp.path().join("tokens");
    let domain = fresh_domain();
    let mut c = Command::new(env!("CARGO_BIN_EXE_tokenizer_node"));
    loopback_env(&mut c, domain);
    let node_proc = c
        .args(["--ros-args", "-p", "camera:=cam", "-p", &format!("output:={}", bag.display())])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "feeder", &RosArgs::default()).unwrap();
    let img = node.create_publisher::<Image>("/cam/image_raw", Qos::reliable().depth(20)).unwrap();
    let tokens = node.create_subscription::<TokenFrame>("/cam/tokens", Qos::reliable().depth(20)).unwrap();
    let t0 = Instant::now();
    while img.subscription_count() == 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "tokenizer_node did not subscribe");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    // A depth image first: refused (named by topic), the node carries on.
    img.publish(depth_frame("cam")).unwrap();
    for (i, f) in frames.iter().enumerate() {
        // As bgr8, which the node converts.
        img.publish(as_bgr8(f, Time { sec: i as i32 + 1, nanosec: 0 }, "cam")).unwrap();
    }
    let mut got = Vec::new();
    let t1 = Instant::now();
    while got.len() < 2 && t1.elapsed() < Duration::from_secs(20) {
        while let Some(t) = tokens.try_recv() {
            got.push(t);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Command::new("kill").args(["-INT", &node_proc.id().to_string()]).status().unwrap();
    let o = node_proc.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{log}");
    assert!(log.contains("/cam/image_raw") && log.contains("32FC1"), "the refused frame is named by topic and encoding: {log}");
    assert!(log.contains("cv4x8x8.safetensors"), "the shipped checkpoint by default: {log}");
    assert_eq!(got.len(), 2, "two chunks of five frames");
    for (k, t) in got.iter().enumerate() {
        assert_eq!(t.codec, "sim2real/cv4x8x8");
        assert_eq!(t.shape, vec![2, 16, 32, 32], "256x256 frames, 8x8 spatial compression");
        assert_eq!(t.latents.len(), 2 * 16 * 32 * 32);
        let secs: Vec<i32> = t.stamps.iter().map(|s| s.sec).collect();
        assert_eq!(secs, (1 + 5 * k as i32..=5 + 5 * k as i32).collect::<Vec<_>>());
        assert_eq!(t.header.stamp.sec, 5 + 5 * k as i32);
    }
    let out = tmp.path().join("decoded");
    let o = Command::new(env!("CARGO_BIN_EXE_s2r"))
        .args(["tokens", "decode", bag.to_str().unwrap(), "--checkpoint", "cv4x8x8", "-o", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 10, "a PNG per frame");
    let pngs: Vec<_> = (1..=10).map(|i| out.join(format!("cam_tokens_{i}.000000000.png"))).collect();
    // Each decoded frame is close to what went in (center square at 256x256).
    for (f, png_path) in frames.iter().zip(&pngs) {
        let want = to_rgb8(&square(&f.data, f.width as usize, f.height as usize, 256), 256);
        let got = s2r_image::read_png(png_path).unwrap();
        assert_eq!((got.width, got.height), (256, 256));
        let p = psnr(&Rgb8 { width: 256, height: 256, data: &want }, &Rgb8 { width: 256, height: 256, data: &got.data });
        assert!(p > 30.0, "{}: {p:.1} dB", png_path.display());
    }

    // No checkpoint: the path and the command that makes one.
    let mut c = Command::new(env!("CARGO_BIN_EXE_tokenizer_node"));
    loopback_env(&mut c, fresh_domain());
    let o = c.args(["--ros-args", "-p", "checkpoint:=/nowhere/tok.safetensors"]).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(e.contains("/nowhere/tok.safetensors") && e.contains("s2r train tokenizer"), "{e}");
}
