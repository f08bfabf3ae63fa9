//! Multiview generation: the reprojection against the simulator's own
//! cameras (bags/dry_day_urban: the 8-camera rig with depth), a tiny
//! dataset trained, evaluated and generated from by the commands, the
//! bad inputs they refuse, and multiview_node publishing the whole rig over
//! DDS with one stamp.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{depth_frame, finish, fresh_domain, loopback, loopback_env, Logged};
use s2r_image::quality::{psnr, Rgb8};
use s2r_multiview::reproject::{view_depth, warp};
use s2r_multiview::rig::Rig;
use s2r_runtime::{Node, Qos, RosArgs, Serialized};
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image};

fn shipped_bag() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bags/dry_day_urban")
}

fn s2r() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_s2r"));
    c.env("XDG_CACHE_HOME", std::env::temp_dir().join(format!("s2r-multiview-test-{}", std::process::id())));
    c
}

/// The codec's view of a frame as the commands take it (the centre square at 256).
fn view(rgb: &[u8], w: usize, h: usize) -> Vec<u8> {
    s2r_tokenizer::metrics::to_rgb8(&s2r_tokenizer::data::square(rgb, w, h, 256), 256)
}

/// Per camera name, its frames (rgb8, w, h) by stamp; and the front camera's depth by stamp.
type Frames = std::collections::HashMap<(String, i64), (Vec<u8>, usize, usize)>;
type Depths = std::collections::HashMap<i64, (Vec<f32>, usize, usize)>;

fn read_rig_frames(bag: &Path) -> (Frames, Depths) {
    let r = s2r_bag::BagReader::open(bag).unwrap();
    let (mut frames, mut depths) = (Frames::new(), Depths::new());
    for m in r.messages() {
        let topic = r.connections[m.connection].topic.clone();
        if let Some(name) = topic.strip_prefix("/sim/").and_then(|t| t.strip_suffix("/image_raw")) {
            let img: Image = Serialized(m.data.clone()).decode().unwrap();
            let rgb = s2r_image::rgb8(&img, &topic).unwrap();
            frames.insert((name.to_string(), s2r_runtime::stamp_ns(&img.header.stamp)), (rgb, img.width as usize, img.height as usize));
        } else if topic == "/sim/front/depth" {
            let img: Image = Serialized(m.data.clone()).decode().unwrap();
            let d = s2r_image::depth_m(&img, &topic).unwrap();
            depths.insert(s2r_runtime::stamp_ns(&img.header.stamp), (d, img.width as usize, img.height as usize));
        }
    }
    (frames, depths)
}

/// PSNR over the pixels a warp covers.
fn covered_psnr(w: &s2r_multiview::reproject::Warp, truth: &[u8]) -> f64 {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (i, v) in w.valid.iter().enumerate() {
        if *v {
            a.extend_from_slice(&w.rgb[i * 3..i * 3 + 3]);
            b.extend_from_slice(&truth[i * 3..i * 3 + 3]);
        }
    }
    let n = a.len() / 3;
    psnr(&Rgb8 { width: n, height: 1, data: &a }, &Rgb8 { width: n, height: 1, data: &b })
}

#[test]
fn the_front_view_reprojected_by_depth_lands_where_the_other_cameras_see_it() {
    let rig = Rig::from_bag(&shipped_bag()).unwrap();
    assert_eq!(rig.cameras.len(), 8, "{:?}", rig.names());
    // The front-left camera looks 45° left and 10° down (the surround8 rig).
    let fl = rig.camera("front_left").unwrap();
    let axis = fl.ray(fl.k[2], fl.k[3]);
    let (yaw, pitch) = (axis.y.atan2(axis.x).to_degrees(), (-axis.z).asin().to_degrees());
    assert!((yaw - 45.0).abs() < 0.01 && (pitch - 10.0).abs() < 0.01, "front_left looks at yaw {yaw:.2}°, pitch {pitch:.2}°");
    let (frames, depths) = read_rig_frames(&shipped_bag());
    let front = rig.camera("front").unwrap().view(256);
    let mut stamps: Vec<i64> = depths.keys().copied().collect();
    stamps.sort();
    assert!(stamps.len() >= 5);
    for target in ["front_left", "front_right"] {
        let cam = rig.camera(target).unwrap().view(256);
        // A wrong calibration: the other side's camera.
        let other = rig.camera(if target == "front_left" { "front_right" } else { "front_left" }).unwrap();
        let wrong = s2r_multiview::rig::Camera { name: target.into(), ..other.view(256) };
        let (mut right_sum, mut wrong_sum, mut coverage) = (0.0, 0.0, 0.0);
        for &t in &stamps {
            let (rgb, w, h) = &frames[&("front".to_string(), t)];
            let (d, dw, dh) = &depths[&t];
            let (trgb, tw, th) = &frames[&(target.to_string(), t)];
            let src = view(rgb, *w, *h);
            let truth = view(trgb, *tw, *th);
            let dv = view_depth(d, *dw, *dh, 256);
            let good = warp(&front, &src, &dv, &cam);
            let bad = warp(&front, &src, &dv, &wrong);
            coverage += good.coverage() as f64;
            right_sum += covered_psnr(&good, &truth);
            wrong_sum += covered_psnr(&bad, &truth);
        }
        let n = stamps.len() as f64;
        let (right, wrong, coverage) = (right_sum / n, wrong_sum / n, coverage / n);
        println!(
            "{target}: covered {:.0}% of the view; PSNR there {right:.1} dB with its calibration, {wrong:.1} dB with the other side's",
            coverage * 100.0
        );
        // The rig overlaps front and front-left by 55° of their 100°: about a third of the view, less the sky.
        assert!(coverage > 0.15 && coverage < 0.6, "{target}: coverage {coverage}");
        assert!(right > 20.0 && right > wrong + 5.0, "{target}: {right:.1} dB (calibrated) vs {wrong:.1} dB (wrong camera)");
    }
}

/// A dataset of the rig: two seeds (0 trains, 9 is held out), one second each, flat frames with depth.
fn tiny_dataset(dir: &Path) -> PathBuf {
    let sweep = dir.join("sweep.yaml");
    let text = serde_yaml_ng::to_string(
        &serde_yaml_ng::from_str::<serde_yaml_ng::Value>(
            "name: mv_tiny\nscenarios: [dry_day_urban]\nseeds: [0, 9]\nlooks: {prompts: [\"noon, clear, dry\"]}\nduration: 1.0\n\
         cameras: [front, front_left, front_right, left, right, rear_left, rear_right, rear]\nimage_scale: 0.5\npreset: fast\n\
         keep: [flat, depth, odometry]\ncuration: {camera: front, clip_seconds: 1.0}\n",
        )
        .unwrap(),
    )
    .unwrap();
    std::fs::write(&sweep, text).unwrap();
    let out = dir.join("data");
    let mut c = s2r();
    c.args(["generate", sweep.to_str().unwrap(), "--no-progress", "-o", out.to_str().unwrap()]);
    let (o, _) = finish(c, Duration::from_secs(300));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

#[test]
fn train_eval_and_generate_a_rig_from_its_front_camera() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_dataset(tmp.path());
    let ck = tmp.path().join("mv.safetensors");
    let common_args = ["--frames", "flat", "--depth", "truth", "--every", "2"];
    let mut c = s2r();
    c.args(["train", "multiview", data.to_str().unwrap(), "-o", ck.to_str().unwrap(), "--steps", "40", "--eval-every", "20"]);
    c.args(["--dim", "32", "--layers", "1", "--batch", "8", "--lr", "3e-3"]).args(common_args);
    let (o, _) = finish(c, Duration::from_secs(600));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("instants of 8 cameras") && out.contains("held out") && out.contains("held-out token accuracy"), "{out}");
    // The training loss falls; the held-out loss is below a uniform guess's (the mean of ln L over the digits, 1.844).
    let err = String::from_utf8_lossy(&o.stderr);
    let step_loss = |k: usize| -> f64 {
        let at = err.split('\r').find(|l| l.starts_with(&format!("step {k}/40 loss "))).unwrap_or_else(|| panic!("no step {k}: {err}"));
        at.split("loss ").nth(1).and_then(|x| x.split_whitespace().next()).unwrap().parse().unwrap()
    };
    assert!(step_loss(40) < step_loss(1) - 0.1, "training loss {} → {}", step_loss(1), step_loss(40));
    let held: Vec<f64> = out
        .lines()
        .filter(|l| l.contains("held-out token accuracy"))
        .filter_map(|l| l.split("loss ").nth(1).and_then(|x| x.trim().parse().ok()))
        .collect();
    assert_eq!(held.len(), 2, "{out}");
    assert!(held.iter().all(|&l| l < 1.82), "held-out loss {held:?}");

    // Evaluation: every camera but the source, then all; the reprojection baseline is black beyond the front's view.
    let json = tmp.path().join("eval.json");
    let sheet = tmp.path().join("sheet.png");
    let mut c = s2r();
    c.args(["eval", "multiview", ck.to_str().unwrap(), "--data", data.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    c.args(["--sheet", sheet.to_str().unwrap()]).args(common_args);
    let (o, _) = finish(c, Duration::from_secs(600));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["camera"].as_str().unwrap()).collect();
    assert_eq!(names, ["front_left", "front_right", "left", "right", "rear_left", "rear_right", "rear", "all"]);
    let row = |n: &str| rows.iter().find(|r| r["camera"] == n).unwrap();
    assert!(row("front_left")["coverage"].as_f64().unwrap() > 0.1, "{out}");
    assert_eq!(row("rear")["coverage"].as_f64().unwrap(), 0.0, "nothing of the front lands in the rear camera");
    assert!(row("rear")["reprojection"]["psnr"].as_f64().unwrap() < row("front_left")["reprojection"]["psnr"].as_f64().unwrap());
    for r in rows {
        let ceiling = r["ceiling"]["psnr"].as_f64().unwrap();
        assert!(ceiling > 15.0 && ceiling < 100.0, "the tokenizer reconstructs each view: {r}");
    }
    // Cross-view consistency measured with the shipped perception model, on generated and on true views.
    let cross = &report["cross_view"];
    assert!(cross["generated"].as_f64().is_some() && cross["truth_candidates"].as_u64().is_some(), "{report}");
    assert!(out.contains("cross-view consistency"), "{out}");
    let png = s2r_image::read_png(&sheet).unwrap();
    assert!(png.width > 3 * 128 && png.height > 3 * 128, "the rig's layout: {}×{}", png.width, png.height);

    // From the held-out episode's front camera to the whole rig: a bag of eight cameras, one stamp per instant.
    let episode = std::fs::read_dir(data.join("episodes"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("_s9_"))
        .unwrap();
    let outdir = tmp.path().join("out");
    let mut c = s2r();
    c.args(["multiview", episode.to_str().unwrap(), "--model", ck.to_str().unwrap(), "--frames", "flat", "--depth", "truth"]);
    c.args(["-o", outdir.to_str().unwrap(), "--max-frames", "4"]);
    let (o, _) = finish(c, Duration::from_secs(600));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    let r = s2r_bag::BagReader::open(&outdir.join("bag")).unwrap();
    let mut stamps: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    let mut infos = 0;
    let mut tf = 0;
    for m in r.messages() {
        let topic = &r.connections[m.connection].topic;
        if let Some(name) = topic.strip_suffix("/image_raw") {
            let img: Image = Serialized(m.data.clone()).decode().unwrap();
            assert_eq!((img.width, img.height, img.encoding.as_str()), (256, 256, "rgb8"));
            stamps.entry(name.trim_start_matches('/').to_string()).or_default().push(s2r_runtime::stamp_ns(&img.header.stamp));
        } else if topic.ends_with("/camera_info") {
            let info: CameraInfo = Serialized(m.data.clone()).decode().unwrap();
            assert_eq!((info.width, info.height), (256, 256));
            infos += 1;
        } else if topic == "/tf_static" {
            tf += 1;
        }
    }
    assert_eq!(stamps.len(), 8, "{:?}", stamps.keys());
    let front = stamps["front"].clone();
    assert_eq!(front.len(), 4);
    assert!(stamps.values().all(|s| *s == front), "every camera carries the front frame's stamps");
    assert_eq!((infos, tf), (32, 1));
    // The bag calibrates the rig it carries: its views, placed as the source rig's cameras.
    let written = Rig::from_bag(&outdir.join("bag")).unwrap();
    let source = Rig::from_bag(&episode).unwrap();
    for c in &written.cameras {
        let s = source.camera(&c.name).unwrap();
        assert_eq!(c.translation, s.translation);
        assert!((c.k[0] - s.view(256).k[0]).abs() < 1e-9);
    }
    assert!(outdir.join("sheet.png").is_file() && outdir.join("frames/0003.png").is_file());
    // Labels asked of a recording that kept none: the missing topic named, with how to keep it.
    let mut c = s2r();
    c.args(["multiview", episode.to_str().unwrap(), "--model", ck.to_str().unwrap(), "--frames", "flat", "--depth", "truth", "--labels"]);
    c.args(["-o", outdir.to_str().unwrap(), "--max-frames", "1"]);
    let (o, _) = finish(c, Duration::from_secs(120));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("/sim/front/segmentation") && err.contains("keep"), "{err}");
}

/// A small untrained network from the front camera on the shipped recording's rig, written to `path`: for tests
/// of the commands' and the node's behaviour, not the model's.
fn untrained(path: &Path) {
    let cfg = s2r_multiview::model::Config {
        dim: 16,
        heads: 2,
        layers: 1,
        mlp: 32,
        ..s2r_multiview::model::Config::new("dv8x16x16", 256, 16, s2r_tokenizer::fsq::LEVELS.to_vec())
    };
    s2r_multiview::checkpoint::save_untrained(path, cfg, "front", Rig::from_bag(&shipped_bag()).unwrap(), 1).unwrap();
}

/// The share of a frame's boxes (visible at least half, 6 px or more a side) whose box holds at least 15% pixels of
/// its class in the frame's segmentation, and how many were counted.
fn boxes_on_their_class(labels: &s2r_perception::data::Labels) -> (usize, usize) {
    let mut agree = 0;
    let mut counted = 0;
    for o in labels.objects.iter().filter(|o| o.visible >= 0.5) {
        let [x0, y0, x1, y1] = o.bbox.map(|v| v.max(0.0) as usize);
        let (x1, y1) = (x1.min(labels.w), y1.min(labels.h));
        if x1 < x0 + 6 || y1 < y0 + 6 {
            continue;
        }
        let mine =
            (y0..y1).flat_map(|y| (x0..x1).map(move |x| (x, y))).filter(|&(x, y)| labels.seg[y * labels.w + x] as usize == o.class).count();
        counted += 1;
        agree += usize::from(mine * 100 >= 15 * (x1 - x0) * (y1 - y0));
    }
    (agree, counted)
}

#[test]
fn a_generated_rig_carries_the_recordings_labels_into_each_view() {
    use s2r_perception::data::{load, Frames, LoadOptions};
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("mv.safetensors");
    let rig = Rig::from_bag(&shipped_bag()).unwrap();
    untrained(&ck);
    let out = tmp.path().join("out");
    let mut c = s2r();
    c.args(["multiview", shipped_bag().to_str().unwrap(), "--model", ck.to_str().unwrap(), "--frames", "flat", "--depth", "none"]);
    c.args(["--labels", "--max-frames", "3", "-o", out.to_str().unwrap()]);
    let (o, _) = finish(c, Duration::from_secs(300));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{said}{}", String::from_utf8_lossy(&o.stderr));
    assert!(said.contains("the labels in each view"), "{said}");
    // Perception reads the generated rig as a training set: every camera's three frames, labelled in its view.
    let opts = |frames| LoadOptions { frames, cameras: Vec::new(), every: 1, det_classes: None, seg_classes: None };
    let ds = load(&[out.join("bag")], &opts(Frames::Restyled)).unwrap();
    assert_eq!(ds.samples.len(), 8 * 3, "{:?}", ds.samples.iter().map(|s| &s.source).collect::<Vec<_>>());
    // The default `--frames both` does not wait for flat renders the generated rig has none of.
    assert_eq!(load(&[out.join("bag")], &opts(Frames::Both)).unwrap().samples.len(), 8 * 3);
    let original = load(&[shipped_bag()], &opts(Frames::Flat)).unwrap();
    for s in &ds.samples {
        let l = &s.labels;
        assert_eq!((l.w, l.h, s.rgb.len()), (256, 256, 256 * 256 * 3));
        assert!(l.objects.iter().all(|o| o.bbox[0] >= -0.5 && o.bbox[1] >= -0.5 && o.bbox[2] <= 255.5 && o.bbox[3] <= 255.5));
        // Metric depth stays metric: the view's focal length goes with it.
        assert!(rig.cameras.iter().any(|c| (c.view(256).k[0] - l.fx as f64).abs() < 1e-3), "fx {}", l.fx);
        assert!(rig.cameras.iter().all(|c| (c.k[0] - l.fx as f64).abs() > 1.0), "fx {} is a frame's", l.fx);
    }
    // Boxes and segmentation moved by the same geometry: boxes lie on their class in the views as in the frames.
    let share = |samples: &[s2r_perception::data::Sample]| {
        let (a, n) = samples.iter().map(|s| boxes_on_their_class(&s.labels)).fold((0, 0), |t, x| (t.0 + x.0, t.1 + x.1));
        (a as f64 / n.max(1) as f64, n)
    };
    let (in_views, n) = share(&ds.samples);
    let (in_frames, m) = share(&original.samples);
    assert!(n >= 5 && m >= n, "boxes counted: {n} in the views, {m} in the frames");
    assert!(
        in_views >= 0.9 && in_views >= in_frames - 0.05,
        "boxes on their class: {in_views:.2} in the views, {in_frames:.2} in the frames"
    );
    // `--labels covered`: of a generated view only what the front's reprojection (by the simulator's depth) put
    // there; the rest unknown (class 255, depth 0) and boxes seen only by the share covered.
    let covered = tmp.path().join("covered");
    let mut c = s2r();
    c.args(["multiview", shipped_bag().to_str().unwrap(), "--model", ck.to_str().unwrap(), "--frames", "flat", "--depth", "truth"]);
    c.args(["--labels", "covered", "--max-frames", "2", "-o", covered.to_str().unwrap()]);
    let (o, _) = finish(c, Duration::from_secs(300));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = s2r_bag::BagReader::open(&covered.join("bag")).unwrap();
    let mut unknown: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let mut rear_boxes = Vec::new();
    for m in r.messages() {
        let topic = r.connections[m.connection].topic.as_str();
        let Some(cam) = topic.strip_prefix("/sim/") else { continue };
        if let Some(cam) = cam.strip_suffix("/segmentation") {
            let img: Image = Serialized(m.data.clone()).decode().unwrap();
            let e = unknown.entry(cam.to_string()).or_default();
            e.0 += img.data.iter().filter(|&&c| c == 255).count();
            e.1 += img.data.len();
        } else if cam == "rear/detections" {
            let d: sim2real_msgs::vision_msgs::msg::Detection2DArray = Serialized(m.data.clone()).decode().unwrap();
            rear_boxes.extend(d.detections.iter().map(|d| d.results[0].hypothesis.score));
        }
    }
    let share = |cam: &str| unknown[cam].0 as f64 / unknown[cam].1 as f64;
    assert_eq!(share("front"), 0.0, "the source keeps its labels");
    assert_eq!(share("rear"), 1.0, "nothing of the front lands in the rear camera");
    assert!(share("front_left") > 0.4 && share("front_left") < 0.9, "front_left unknown: {}", share("front_left"));
    assert!(rear_boxes.iter().all(|&v| v == 0.0), "{rear_boxes:?}");
    // Labels of the recording's cameras on another rig would be wrong: refused, naming the camera.
    let mut other = rig.clone();
    other.cameras[1].translation[1] += 0.3;
    let rig_file = tmp.path().join("other.yaml");
    other.save(&rig_file).unwrap();
    let mut c = s2r();
    c.args(["multiview", shipped_bag().to_str().unwrap(), "--model", ck.to_str().unwrap(), "--frames", "flat", "--depth", "none"]);
    c.args(["--labels", "--max-frames", "1", "--rig", rig_file.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    let (o, _) = finish(c, Duration::from_secs(120));
    let err = String::from_utf8_lossy(&o.stderr);
    let name = &other.cameras[1].name;
    assert!(!o.status.success() && err.contains(&format!("rig's {name} is not the recording's")), "{err}");
}

#[test]
fn bad_inputs_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    // An unknown checkpoint: named, with the command that trains one.
    let mut c = s2r();
    c.args(["multiview", shipped_bag().to_str().unwrap(), "--model", "/nonexistent/mv.safetensors", "--frames", "flat"]);
    let (o, _) = finish(c, Duration::from_secs(60));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("/nonexistent/mv.safetensors") && err.contains("s2r train multiview"), "{err}");
    // A rig calibration without the source camera names it and the cameras it has.
    let mut rig = Rig::from_bag(&shipped_bag()).unwrap();
    rig.cameras.retain(|c| c.name != "front");
    let rig_file = tmp.path().join("rig.yaml");
    rig.save(&rig_file).unwrap();
    let ck = tmp.path().join("mv.safetensors");
    untrained(&ck);
    let mut c = s2r();
    c.args(["multiview", shipped_bag().to_str().unwrap(), "--model", ck.to_str().unwrap(), "--frames", "flat", "--depth", "none"]);
    c.args(["--rig", rig_file.to_str().unwrap(), "-o", tmp.path().join("out").to_str().unwrap()]);
    let (o, _) = finish(c, Duration::from_secs(60));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("no camera 'front'") && err.contains("front_left"), "{err}");
    // A front stream of another resolution than the rig's: resampled, said once.
    let mut big = Rig::from_bag(&shipped_bag()).unwrap();
    for cam in &mut big.cameras {
        *cam = cam.resized(cam.width * 2, cam.height * 2);
    }
    big.save(&rig_file).unwrap();
    let mut c = s2r();
    c.args(["multiview", shipped_bag().to_str().unwrap(), "--model", ck.to_str().unwrap(), "--frames", "flat", "--depth", "none"]);
    c.args(["--rig", rig_file.to_str().unwrap(), "--max-frames", "2", "-o", tmp.path().join("out").to_str().unwrap()]);
    let (o, _) = finish(c, Duration::from_secs(120));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(out.matches("resampled").count(), 1, "{out}");
    // Training data without the camera asked for: named.
    let mut c = s2r();
    c.args([
        "train",
        "multiview",
        shipped_bag().to_str().unwrap(),
        "-o",
        ck.to_str().unwrap(),
        "--from",
        "roof",
        "--frames",
        "flat",
        "--depth",
        "none",
    ]);
    let (o, _) = finish(c, Duration::from_secs(60));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("no camera 'roof'"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiview_node_publishes_the_whole_rig_with_the_front_frames_stamp() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("mv.safetensors");
    // An untrained network: the node's behaviour is under test, not the model's.
    untrained(&ck);
    let rig = Rig::from_bag(&shipped_bag()).unwrap();
    let frames = common::recorded_frames("dry_day_urban", 4);
    let domain = fresh_domain();
    let mut c = Command::new(env!("CARGO_BIN_EXE_multiview_node"));
    loopback_env(&mut c, domain);
    c.args(["--ros-args", "-p", &format!("checkpoint:={}", ck.display()), "-r", "__ns:=/robot"]);
    let node_proc = Logged::spawn(c);
    let text = || node_proc.text();
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "robot_camera", &RosArgs::default()).unwrap();
    let img = node.create_publisher::<Image>("/robot/front/image_raw", Qos::reliable().depth(20)).unwrap();
    let subs: Vec<_> = rig
        .names()
        .iter()
        .map(|n| {
            (
                n.clone(),
                node.create_subscription::<Image>(&format!("/robot/multiview/{n}/image_raw"), Qos::reliable().depth(50)).unwrap(),
                node.create_subscription::<CameraInfo>(&format!("/robot/multiview/{n}/camera_info"), Qos::reliable().depth(50)).unwrap(),
            )
        })
        .collect();
    let t0 = Instant::now();
    while img.subscription_count() == 0 {
        assert!(t0.elapsed() < Duration::from_secs(60), "multiview_node did not come up:\n{}", text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // A depth image on the camera topic: refused by name, the node carries on.
    img.publish(depth_frame("front_optical_frame")).unwrap();
    let t = Instant::now();
    while !text().contains("/robot/front/image_raw") || !text().contains("refused") {
        assert!(t.elapsed() < Duration::from_secs(20), "the bad frame is not reported:\n{}", text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut sent = Vec::new();
    for f in &frames {
        sent.push(s2r_runtime::stamp_ns(&f.header.stamp));
        img.publish(f.clone()).unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let mut got: std::collections::BTreeMap<String, Vec<(i64, u32, String)>> = Default::default();
    let mut infos: std::collections::BTreeMap<String, usize> = Default::default();
    let t = Instant::now();
    loop {
        for (n, s, i) in &subs {
            got.entry(n.clone()).or_default().extend(
                std::iter::from_fn(|| s.try_recv()).map(|m| (s2r_runtime::stamp_ns(&m.header.stamp), m.width, m.header.frame_id.clone())),
            );
            *infos.entry(n.clone()).or_default() += std::iter::from_fn(|| i.try_recv()).count();
        }
        if got.values().all(|v| v.len() >= 2) && got.len() == 8 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "{:?}:\n{}", got.iter().map(|(k, v)| (k, v.len())).collect::<Vec<_>>(), text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Eight cameras, 256-pixel views in their own optical frames, each instant with the front frame's stamp.
    let front: Vec<i64> = got["front"].iter().map(|x| x.0).collect();
    assert!(front.iter().all(|s| sent.contains(s)), "stamps {front:?} of frames {sent:?}");
    for (n, v) in &got {
        for (stamp, width, frame) in v {
            assert_eq!((*width, frame.as_str()), (256, format!("{n}_optical_frame").as_str()));
            assert!(sent.contains(stamp), "{n}: stamp {stamp} is no front frame's ({sent:?})");
        }
        // The first two instants reached every camera with the same stamps.
        assert_eq!(v.iter().take(2).map(|x| x.0).collect::<Vec<_>>(), front[..2], "{n}");
        assert!(infos[n] >= 1, "{n}: no camera_info");
    }
    assert!(text().contains("estimated"), "depth from perception by default:\n{}", text());
    drop(node_proc);
}

#[test]
fn a_missing_checkpoint_stops_the_node_naming_it() {
    let mut c = Command::new(env!("CARGO_BIN_EXE_multiview_node"));
    loopback_env(&mut c, fresh_domain());
    c.args(["--ros-args", "-p", "checkpoint:=/nonexistent/mv.safetensors"]);
    let (o, _) = finish(c, Duration::from_secs(30));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/nonexistent/mv.safetensors") && err.contains("s2r train multiview"), "{err}");
}

#[test]
fn the_launch_file_runs_the_rig_and_multiview_node_on_its_front_camera() {
    let mut c = s2r();
    c.args([
        "launch",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("launch/multiview.launch.yaml").to_str().unwrap(),
        "depth:=false",
        "--print",
    ]);
    let (o, _) = finish(c, Duration::from_secs(60));
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{plan}{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        plan.contains("s2r run sim_node") && plan.contains("scenario:=dry_day_urban") && plan.contains("s2r run transfer_node"),
        "{plan}"
    );
    assert!(plan.contains("s2r run multiview_node") && plan.contains("camera:=front") && plan.contains("depth:=false"), "{plan}");
}

#[test]
fn the_view_geometry_is_the_tokenizers_sampling() {
    // A 64×48 frame whose red channel is 4 × its column and green 4 × its row: the codec's 32×32 view of it
    // says, at each of its pixels, which frame coordinate it averaged (bilinear: exact on a ramp).
    let (w, h, size) = (64usize, 48usize, 32usize);
    let frame: Vec<u8> = (0..w * h).flat_map(|p| [((p % w) * 4) as u8, ((p / w) * 4) as u8, 0]).collect();
    let v = s2r_tokenizer::metrics::to_rgb8(&s2r_tokenizer::data::square(&frame, w, h, size), size);
    let cam = s2r_multiview::rig::Camera {
        name: "front".into(),
        width: w as u32,
        height: h as u32,
        k: [40.0, 40.0, 31.5, 23.5],
        translation: [1.0, 0.0, 1.5],
        rotation: [-0.5, 0.5, -0.5, 0.5],
    };
    let view = cam.view(size);
    for (x, y) in [(0usize, 0usize), (5, 20), (31, 31), (16, 9)] {
        let i = (y * size + x) * 3;
        let (u, vv) = (v[i] as f64 / 4.0, v[i + 1] as f64 / 4.0);
        // The ray through the view pixel is the ray through the frame coordinate it shows (to a quarter pixel).
        let angle = view.ray(x as f64, y as f64).angle(&cam.ray(u, vv));
        assert!(angle < (0.3f64 / 40.0), "view pixel ({x}, {y}) shows frame ({u}, {vv}); rays {:.3}° apart", angle.to_degrees());
    }
}
