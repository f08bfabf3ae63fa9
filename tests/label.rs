//! `s2r label`: a camera's recording without ground truth, pseudo-labelled
//! by the shipped perception model into a dataset that `s2r eval
//! perception` and `s2r train perception` read; clips split at gaps; frames
//! the model is not sure of left out; recordings without a camera or with an
//! encoding it cannot read refused by name.

use std::path::Path;
use std::process::{Command, Output};

use s2r_bag::{BagReader, BagWriter, TopicSpec, WriterOptions};
use sim2real_msgs::builtin_interfaces::msg::Time;
use sim2real_msgs::sensor_msgs::msg::Image;
use sim2real_msgs::std_msgs::msg::Header;

fn s2r(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_s2r")).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn report(dir: &Path) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(dir.join("labels.yaml")).unwrap()).unwrap()
}

/// The figure after `key` on the line that starts with `line` (`mIoU 0.912` → 0.912).
fn figure(out: &str, line: &str, key: &str) -> f64 {
    let l = out.lines().find(|l| l.starts_with(line)).unwrap_or_else(|| panic!("no '{line}' line in\n{out}"));
    l.split(key).nth(1).and_then(|r| r.split_whitespace().next()).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{key} in {l}"))
}

#[test]
fn a_recording_is_pseudo_labelled_into_a_dataset_perception_reads_and_trains_on() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("labelled");
    let bag = concat!(env!("CARGO_MANIFEST_DIR"), "/bags/dry_day_urban/dry_day_urban_0.mcap");
    // The simulator's flat front camera stands in for a robot's: only its frames are read.
    let o = s2r(&["label", bag, "--topic", "/sim/front/image_raw", "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let r = report(&out);
    let b = &r["bags"][0];
    assert_eq!(b["topic"].as_str(), Some("/sim/front/image_raw"));
    assert_eq!(b["frames"].as_u64(), Some(10), "{r:?}");
    let kept = b["kept"].as_u64().unwrap();
    assert!(kept >= 5, "the shipped model is sure of most of these frames: {r:?}");
    assert_eq!(kept + b["low_confidence"].as_u64().unwrap(), 10);
    let clips = b["clips"].as_sequence().unwrap();
    assert_eq!(clips.len(), 1, "no gap in this recording: {r:?}");

    // The clip: the camera's frames and the labels, the class table first.
    let clip = out.join("clips").join(clips[0]["name"].as_str().unwrap());
    let reader = BagReader::open(&clip).unwrap();
    let mut topics: Vec<&str> = reader.connections.iter().map(|c| c.topic.as_str()).collect();
    topics.sort();
    assert_eq!(
        topics,
        [
            "/front/image_raw",
            "/perception/front/camera_info",
            "/perception/front/depth",
            "/perception/front/detections",
            "/perception/front/label_info",
            "/perception/front/segmentation"
        ]
    );
    let first = reader.messages().next().unwrap();
    assert_eq!(reader.connections[first.connection].topic, "/perception/front/label_info");
    assert!(!reader.connections.iter().any(|c| c.topic.contains("/sim/")), "no ground truth is carried over");

    // Its own labels: the model agrees with them wherever they were kept.
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/models/perception/perception.safetensors");
    let o = s2r(&["eval", "perception", model, out.to_str().unwrap(), "--frames", "restyled"]);
    let e = text(&o);
    assert!(o.status.success(), "{e}");
    assert!(figure(&e, "segmentation", "mIoU") > 0.9, "{e}");
    assert!(figure(&e, "depth", "AbsRel") < 0.05, "{e}");
    // And training reads them.
    let ck = tmp.path().join("p.safetensors");
    let args = ["train", "perception", out.to_str().unwrap(), "--frames", "restyled", "--steps", "2", "--eval-every", "2", "--batch", "2"];
    let o = s2r(&[&args[..], &["--eval-frames", "4", "-o", ck.to_str().unwrap()]].concat());
    assert!(o.status.success() && ck.is_file(), "{}", text(&o));
    assert!(text(&o).contains(&format!("{kept} training images (restyled)")), "{}", text(&o));

    // Labels go to a new folder only.
    let o = s2r(&["label", bag, "--topic", "/sim/front/image_raw", "-o", out.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("already exists"), "{}", text(&o));

    // A mirror-averaged teacher: said in the report, and as sure of these frames.
    assert_eq!(r["mirrored"].as_bool(), Some(false));
    let mirrored = tmp.path().join("mirrored");
    let o = s2r(&["label", bag, "--topic", "/sim/front/image_raw", "--mirror", "-o", mirrored.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let m = report(&mirrored);
    assert_eq!(m["mirrored"].as_bool(), Some(true));
    assert!(m["bags"][0]["kept"].as_u64().unwrap() >= 5, "{m:?}");
}

/// A `/cam/image_raw` recording of `frames` (stamp in ms, a texture or none) in `encoding`.
fn recording(dir: &Path, frames: &[(i64, bool)], encoding: &str, topic: &str) {
    let mut w = BagWriter::create(dir, WriterOptions::default()).unwrap();
    let t = w.add_topic(TopicSpec::of::<Image>(topic, vec![])).unwrap();
    let (width, height) = (160usize, 120usize);
    let mut seed = 1u32;
    for &(ms, textured) in frames {
        let data: Vec<u8> = (0..width * height * 3)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                if textured {
                    (seed >> 24) as u8
                } else {
                    0
                }
            })
            .collect();
        let stamp = Time { sec: (ms / 1000) as i32, nanosec: (ms % 1000 * 1_000_000) as u32 };
        let header = Header { stamp, frame_id: "cam".into() };
        let img = s2r_image::image_msg(header, width, height, encoding, 3, data);
        w.write_message(t, (ms * 1_000_000) as u64, &img).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn gaps_split_clips_unsure_frames_are_left_out_and_bad_recordings_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let bag = tmp.path().join("robot");
    // 10 Hz, a 2 s gap after the fourth frame, and a black frame at the end (nothing to be sure of).
    let mut frames: Vec<(i64, bool)> = (0..4).map(|k| (1000 + k * 100, true)).collect();
    frames.extend((0..3).map(|k| (3400 + k * 100, true)));
    frames.push((3700, false));
    recording(&bag, &frames, "rgb8", "/cam/image_raw");
    let out = tmp.path().join("labelled");
    let o = s2r(&["label", bag.to_str().unwrap(), "--min-confidence", "0.3", "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let r = report(&out);
    let b = &r["bags"][0];
    assert_eq!(b["frames"].as_u64(), Some(8), "{r:?}");
    assert_eq!(b["low_confidence"].as_u64(), Some(1), "the black frame: {r:?}");
    assert_eq!(b["kept"].as_u64(), Some(7), "{r:?}");
    let clips: Vec<u64> = b["clips"].as_sequence().unwrap().iter().map(|c| c["frames"].as_u64().unwrap()).collect();
    assert_eq!(clips, [4, 3], "{r:?}");
    assert_eq!(b["gaps"].as_sequence().unwrap().len(), 1, "{r:?}");
    assert!(out.join("clips/robot_000").is_dir() && out.join("clips/robot_001").is_dir());

    // No camera: named, with what the recording has.
    let odom = tmp.path().join("odom_only");
    let mut w = BagWriter::create(&odom, WriterOptions::default()).unwrap();
    let t = w.add_topic(TopicSpec::of::<Header>("/odom_header", vec![])).unwrap();
    w.write_message(t, 1, &Header::default()).unwrap();
    w.finish().unwrap();
    let o = s2r(&["label", odom.to_str().unwrap(), "-o", tmp.path().join("x").to_str().unwrap()]);
    let e = text(&o);
    assert!(!o.status.success() && e.contains("odom_only") && e.contains("no camera topic"), "{e}");
    // An encoding no colour reader takes: the topic and the encoding named.
    let yuv = tmp.path().join("yuv");
    recording(&yuv, &[(0, true)], "yuv422", "/cam/image_raw");
    let o = s2r(&["label", yuv.to_str().unwrap(), "-o", tmp.path().join("y").to_str().unwrap()]);
    let e = text(&o);
    assert!(!o.status.success() && e.contains("/cam/image_raw") && e.contains("yuv422"), "{e}");
    // A topic that is not there.
    let o = s2r(&["label", bag.to_str().unwrap(), "--topic", "/left/image_raw", "-o", tmp.path().join("z").to_str().unwrap()]);
    let e = text(&o);
    assert!(!o.status.success() && e.contains("/left/image_raw") && e.contains("/cam/image_raw"), "{e}");
}
