//! Compressed camera images as real robots record them
//! (sensor_msgs/CompressedImage on `<camera>/image_raw/compressed`), made by
//! peers nobody here wrote: Pillow's JPEGs published by Cyclone DDS into
//! tokenizer_node and curator_node, and a rosbags bag with only a compressed
//! camera topic, which the offline commands read as they read its raw twin.
//! `s2r bag convert` both ways, checked by the Python mcap reader and Pillow.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{fresh_domain, loopback_env, peers_dir, python, Peer};
use s2r_bag::BagReader;
use s2r_runtime::Serialized;
use sim2real_msgs::sensor_msgs::msg::{CompressedImage, Image};
use sim2real_msgs::sim2real_msgs::msg::TokenFrame;

fn s2r(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_s2r")).args(args).output().unwrap();
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "s2r {}: {out}", args.join(" "));
    out
}

fn sample_bag() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bags/icy_night_crossing")
}

/// Every message of `topic` in a bag, as stored.
fn stored(bag: &Path, topic: &str) -> (String, Vec<Serialized>) {
    let r = BagReader::open(bag).unwrap();
    let c = r.connections.iter().position(|c| c.topic == topic).unwrap_or_else(|| panic!("{}: no {topic}", bag.display()));
    let ty = r.connections[c].type_name.clone();
    (ty, r.messages().filter(|m| m.connection == c).map(|m| Serialized(m.data.clone())).collect())
}

/// A bag that rosbags writes with only `/front/image_raw/compressed`: the
/// sample bag's 40 front frames as Pillow JPEGs.
fn robot_bag(out: &Path) {
    let o = Command::new(python())
        .arg(peers_dir().join("compressed_peer.py"))
        .args(["bag", out.to_str().unwrap(), sample_bag().to_str().unwrap(), "/front/image_raw/compressed"])
        .output()
        .unwrap();
    assert!(o.status.success(), "rosbags writer: {}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "WROTE 40");
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse = a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>() / a.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10()
}

#[test]
fn convert_compresses_cameras_only_and_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let (jpeg, png, back, back_png) =
        (tmp.path().join("jpeg"), tmp.path().join("png"), tmp.path().join("back"), tmp.path().join("back_png"));
    let src = sample_bag();
    let out = s2r(&["bag", "convert", src.to_str().unwrap(), jpeg.to_str().unwrap(), "--compress-images", "jpeg", "--quality", "95"]);
    assert!(out.contains("/sim/front/image_raw/compressed"), "{out}");
    s2r(&["bag", "convert", src.to_str().unwrap(), png.to_str().unwrap(), "--compress-images", "png"]);
    s2r(&["bag", "convert", jpeg.to_str().unwrap(), back.to_str().unwrap(), "--decompress-images"]);
    s2r(&["bag", "convert", png.to_str().unwrap(), back_png.to_str().unwrap(), "--decompress-images"]);

    // Camera images compressed; depth, segmentation, instances and everything else as they were.
    let r = BagReader::open(&jpeg).unwrap();
    let topics: Vec<(&str, &str)> = r.connections.iter().map(|c| (c.topic.as_str(), c.type_name.as_str())).collect();
    assert!(topics.contains(&("/sim/front/image_raw/compressed", "sensor_msgs/msg/CompressedImage")), "{topics:?}");
    assert!(!topics.iter().any(|(t, _)| *t == "/sim/front/image_raw"), "{topics:?}");
    for t in ["/sim/front/depth", "/sim/front/segmentation", "/odom", "/tf_static"] {
        let (ty_a, a) = stored(&src, t);
        let (ty_b, b) = stored(&jpeg, t);
        assert_eq!(ty_a, ty_b);
        assert!(a.iter().zip(&b).all(|(x, y)| x.0 == y.0) && a.len() == b.len(), "{t} copied byte for byte");
    }
    let (_, comp) = stored(&jpeg, "/sim/front/image_raw/compressed");
    let c: CompressedImage = comp[0].decode().unwrap();
    assert_eq!(c.format, "rgb8; jpeg compressed bgr8");

    // Raw → JPEG 95 → raw keeps ≥ 40 dB; PNG is exact; stamps and order kept.
    let (_, orig) = stored(&src, "/sim/front/image_raw");
    let (_, jb) = stored(&back, "/sim/front/image_raw");
    let (_, pb) = stored(&back_png, "/sim/front/image_raw");
    assert_eq!((orig.len(), jb.len(), pb.len()), (40, 40, 40));
    for ((o, j), p) in orig.iter().zip(&jb).zip(&pb) {
        let (o, j, p): (Image, Image, Image) = (o.decode().unwrap(), j.decode().unwrap(), p.decode().unwrap());
        assert_eq!((j.header.clone(), j.encoding.as_str(), j.width, j.height), (o.header.clone(), "rgb8", o.width, o.height));
        let db = psnr(&o.data, &j.data);
        assert!(db >= 40.0, "JPEG at quality 95: {db:.1} dB");
        assert_eq!(p, o, "PNG round trip is bit-exact");
    }

    // Readers nobody here wrote: the Python mcap reader decodes the compressed
    // bag with its own CDR code, and Pillow opens each frame.
    let script = r#"
import io, sys
from mcap_ros2.reader import read_ros2_messages
from PIL import Image
n = 0
for m in read_ros2_messages(sys.argv[1], topics=["/sim/front/image_raw/compressed"]):
    img = Image.open(io.BytesIO(bytes(m.ros_msg.data)))
    img.load()
    assert img.format == "JPEG" and img.mode == "RGB", (img.format, img.mode)
    assert m.ros_msg.format == "rgb8; jpeg compressed bgr8"
    n += 1
print(n, img.size[0], img.size[1])
"#;
    let mcap = std::fs::read_dir(&jpeg).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "mcap")).unwrap();
    let o = Command::new(python()).args(["-c", script, mcap.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let first: Image = orig[0].decode().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), format!("40 {} {}", first.width, first.height));

    // Asking for a topic that is not there names what is.
    let o = Command::new(env!("CARGO_BIN_EXE_s2r"))
        .args(["bag", "convert", src.to_str().unwrap(), tmp.path().join("x").to_str().unwrap(), "--compress-images", "jpeg"])
        .args(["--topic", "/rear/image_raw"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("/rear/image_raw") && e.contains("/sim/front/image_raw"), "{e}");
}

#[test]
fn a_robots_compressed_bag_is_curated_and_evaluated_as_its_raw_twin() {
    let tmp = tempfile::tempdir().unwrap();
    let robot = tmp.path().join("robot");
    robot_bag(&robot);
    let twin = tmp.path().join("twin");
    s2r(&["bag", "convert", robot.to_str().unwrap(), twin.to_str().unwrap(), "--decompress-images"]);
    let (ty, frames) = stored(&twin, "/front/image_raw");
    assert_eq!((ty.as_str(), frames.len()), ("sensor_msgs/msg/Image", 40));

    // Curated the same: the same frames, clips, verdicts and metrics.
    let manifest = |bag: &Path, name: &str| {
        let out = tmp.path().join(name);
        let log = s2r(&["curate", bag.to_str().unwrap(), "-o", out.to_str().unwrap(), "--camera", "front"]);
        assert!(log.contains("40 frames of"), "{log}");
        let m: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(out.join("manifest.yaml")).unwrap()).unwrap();
        let clips: Vec<String> = m["clips"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|c| format!("{:?} {:?} {:?} {:?} {:?}", c["verdict"], c["reasons"], c["frames"], c["start_ns"], c["scores"]))
            .collect();
        (m["sources"][0]["image_topic"].as_str().unwrap().to_string(), clips)
    };
    let (topic_r, clips_r) = manifest(&robot, "cur_robot");
    let (topic_t, clips_t) = manifest(&twin, "cur_twin");
    assert_eq!((topic_r.as_str(), topic_t.as_str()), ("/front/image_raw/compressed", "/front/image_raw"));
    assert!(!clips_r.is_empty());
    assert_eq!(clips_r, clips_t, "the compressed bag curates as its raw twin");

    // Evaluated the same by the tokenizer.
    let eval = |bag: &Path| {
        let out = s2r(&["eval", "tokenizer", bag.to_str().unwrap(), "--checkpoints", "cv4x8x8", "--frames", "10", "--no-baselines"]);
        out.lines().filter(|l| l.starts_with("| cv4x8x8")).map(str::to_string).collect::<Vec<_>>()
    };
    let (e_r, e_t) = (eval(&robot), eval(&twin));
    assert_eq!(e_r.len(), 1, "{e_r:?}");
    assert_eq!(e_r, e_t);
}

/// `kill -INT`, then the process's stderr once it has ended.
fn interrupt(child: std::process::Child) -> String {
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let o = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{log}");
    log
}

#[test]
fn cyclone_camera_driver_feeds_tokenizer_and_curator_compressed() {
    let tmp = tempfile::tempdir().unwrap();
    let domain = fresh_domain();
    let tokens = tmp.path().join("tokens");
    let curated = tmp.path().join("curated");
    let params = tmp.path().join("curator.yaml");
    // Labels are not on this stream: the class filter is off, clips are short.
    std::fs::write(&params, "camera: cam\nmin_classes: 0\nmotion_min: 0.0\n").unwrap();
    let spawn = |exe: &str, args: &[String]| {
        let mut c = Command::new(exe);
        loopback_env(&mut c, domain);
        c.arg("--ros-args").args(args.iter().flat_map(|a| ["-p", a.as_str()])).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
    };
    let tokenizer = spawn(env!("CARGO_BIN_EXE_tokenizer_node"), &["camera:=cam".into(), format!("output:={}", tokens.display())]);
    let curator = spawn(
        env!("CARGO_BIN_EXE_curator_node"),
        &[format!("params_file:={}", params.display()), format!("output:={}", curated.display()), "transport:=compressed".into()],
    );
    let mut peer = Command::new(python());
    peer.arg(peers_dir().join("compressed_peer.py")).args(["pub", "/cam/image_raw/compressed", sample_bag().to_str().unwrap(), "20", "2"]);
    loopback_env(&mut peer, domain);
    let mut peer = Peer::spawn(peer, "compressed_peer.py (cyclonedds, Pillow)");
    peer.expect_line("SENT 20", Duration::from_secs(120));
    peer.wait_success(Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    let tok_log = interrupt(tokenizer);
    let cur_log = interrupt(curator);

    // Each bad frame skipped by topic, once per topic with its count; the node carried on.
    for log in [&tok_log, &cur_log] {
        assert!(log.contains("/cam/image_raw/compressed: JPEG cannot be decoded: truncated"), "{log}");
        assert!(log.contains("(1 skipped on this topic so far)") && !log.contains("(2 skipped"), "{log}");
    }
    assert!(tok_log.contains("transport auto: frames arrive compressed on /cam/image_raw/compressed"), "{tok_log}");

    // tokenizer_node: 20 good frames, four chunks of five with their stamps.
    let (_, chunks) = stored(&tokens, "/cam/tokens");
    let chunks: Vec<TokenFrame> = chunks.iter().map(|c| c.decode().unwrap()).collect();
    let stamps: Vec<i64> = chunks.iter().flat_map(|c| c.stamps.iter().map(s2r_runtime::stamp_ns)).collect();
    assert_eq!(stamps, (0..20).map(|k| 1_000_000_000 + k * 100_000_000).collect::<Vec<_>>(), "{tok_log}");

    // curator_node: 20 frames curated; its clips hold the frames as they came, compressed.
    let m: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(curated.join("manifest.yaml")).unwrap()).unwrap();
    assert_eq!(m["sources"][0]["frames"].as_u64(), Some(20), "{cur_log}");
    let accepted: Vec<&str> = m["clips"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"].as_str() == Some("accepted"))
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(!accepted.is_empty(), "{m:?}");
    let clip = curated.join("clips").join(accepted[0]);
    let (ty, frames) = stored(&clip, "/cam/image_raw/compressed");
    assert_eq!(ty, "sensor_msgs/msg/CompressedImage");
    let first: CompressedImage = frames[0].decode().unwrap();
    assert_eq!(first.format, "rgb8; jpeg compressed bgr8");
    assert!(first.data.starts_with(&[0xff, 0xd8]), "the driver's JPEG, unchanged");
}

#[test]
fn a_compressed_bag_plays_into_tokenizer_and_records_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let robot = tmp.path().join("robot");
    robot_bag(&robot);
    let domain = fresh_domain();
    let (rec, tokens) = (tmp.path().join("rec"), tmp.path().join("tokens"));
    let mut c = Command::new(env!("CARGO_BIN_EXE_s2r"));
    loopback_env(&mut c, domain);
    let recorder = c
        .args(["bag", "record", "/front/image_raw/compressed", "-o", rec.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_tokenizer_node"));
    loopback_env(&mut c, domain);
    let tokenizer = c
        .args(["--ros-args", "-p", "camera:=front", "-p", &format!("output:={}", tokens.display())])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_s2r"));
    loopback_env(&mut c, domain);
    let o = c.args(["bag", "play", robot.to_str().unwrap(), "--delay", "5", "--rate", "2"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::thread::sleep(Duration::from_secs(2));
    interrupt(recorder);
    let tok_log = interrupt(tokenizer);

    // Recorded as any topic: the driver's messages unchanged (DDS may pad a
    // serialized sample to 4 bytes, so they are compared decoded).
    let (ty_in, played) = stored(&robot, "/front/image_raw/compressed");
    let (ty_out, recorded) = stored(&rec, "/front/image_raw/compressed");
    assert_eq!(ty_in, ty_out);
    assert_eq!(recorded.len(), 40);
    for (a, b) in played.iter().zip(&recorded) {
        assert_eq!(a.decode::<CompressedImage>().unwrap(), b.decode::<CompressedImage>().unwrap());
    }
    // tokenizer_node (transport auto) read the compressed frames: 8 chunks of 5.
    let (_, chunks) = stored(&tokens, "/front/tokens");
    assert_eq!(chunks.len(), 8, "{tok_log}");
}
