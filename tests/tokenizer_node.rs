//! tokenizer_node over DDS: frames in, a TokenFrame per chunk out with the
//! stamps it covers, recorded into a bag that `s2r tokens decode` turns back
//! into images; a missing checkpoint stops it with the path and the command.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use candle_core::Device;
use common::{fresh_domain, loopback, loopback_env};
use s2r_runtime::{Node, Qos, RosArgs};
use s2r_tokenizer::model::Config;
use s2r_tokenizer::train::Trainer;
use sim2real_msgs::builtin_interfaces::msg::Time;
use sim2real_msgs::sensor_msgs::msg::Image;
use sim2real_msgs::sim2real_msgs::msg::TokenFrame;
use sim2real_msgs::std_msgs::msg::Header;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_become_token_chunks_and_decode_back() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("cv.safetensors");
    Trainer::new(Config { width: 8, ..Config::CV4X8X8 }, 1e-3, &Device::Cpu).unwrap().save(&ck).unwrap();
    let bag = tmp.path().join("tokens");
    let domain = fresh_domain();
    let mut c = Command::new(env!("CARGO_BIN_EXE_tokenizer_node"));
    loopback_env(&mut c, domain);
    let mut node_proc = c
        .args(["--ros-args", "-p", &format!("checkpoint:={}", ck.display()), "-p", "camera:=cam", "-p", "size:=64", "-p", &format!("output:={}", bag.display())])
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
    let (w, h) = (96u32, 72u32);
    for i in 1..=10 {
        let data: Vec<u8> = (0..w * h * 3).map(|p| ((p / 3 % w + i * 3) % 256) as u8).collect();
        img.publish(Image { header: Header { stamp: Time { sec: i as i32, nanosec: 0 }, frame_id: "cam".into() }, width: w, height: h, encoding: "bgr8".into(), step: w * 3, data: data.into(), ..Default::default() }).unwrap();
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
    let status = node_proc.wait().unwrap();
    assert!(status.success());
    assert_eq!(got.len(), 2, "two chunks of five frames");
    for (k, t) in got.iter().enumerate() {
        assert_eq!(t.codec, "sim2real/cv4x8x8");
        assert_eq!(t.shape, vec![2, 16, 8, 8]);
        assert_eq!(t.latents.len(), 2 * 16 * 8 * 8);
        let secs: Vec<i32> = t.stamps.iter().map(|s| s.sec).collect();
        assert_eq!(secs, (1 + 5 * k as i32..=5 + 5 * k as i32).collect::<Vec<_>>());
        assert_eq!(t.header.stamp.sec, 5 + 5 * k as i32);
    }
    let out = tmp.path().join("decoded");
    let o = Command::new(env!("CARGO_BIN_EXE_s2r")).args(["tokens", "decode", bag.to_str().unwrap(), "--checkpoint", ck.to_str().unwrap(), "-o", out.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 10, "a PNG per frame");

    // No checkpoint: the path and the command that makes one.
    let mut c = Command::new(env!("CARGO_BIN_EXE_tokenizer_node"));
    loopback_env(&mut c, fresh_domain());
    let o = c.args(["--ros-args", "-p", "checkpoint:=/nowhere/tok.safetensors"]).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(e.contains("/nowhere/tok.safetensors") && e.contains("s2r train tokenizer"), "{e}");
}
