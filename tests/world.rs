//! The world model on the command line: the arm's demonstrations (seeds 8
//! and 9; 9 is held out) tokenized by the shipped dv8x16x16, a short
//! pre-training whose held-out loss falls, a post-training from it (whole,
//! and with low-rank adapters), the
//! evaluation table beside copy-last and the tokenizer's ceiling, a
//! prediction's PNGs, contact sheet and bag; bad input refused by name.

use std::path::Path;
use std::process::{Command, Output};

fn s2r(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_s2r")).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The held-out losses training printed, in order.
fn held_out_losses(out: &str) -> Vec<f64> {
    out.lines()
        .filter_map(|l| l.split("held-out next-frame token accuracy ").nth(1))
        .map(|r| r.split("loss ").nth(1).unwrap().trim().parse().unwrap())
        .collect()
}

#[test]
fn a_world_model_pre_trains_post_trains_evaluates_and_predicts() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s).to_str().unwrap().to_string();
    let o = s2r(&["demos", "--scenario", "cup_near_edge", "--seeds", "8..9", "-o", &p("demos")]);
    assert!(o.status.success(), "{}", text(&o));
    let small = ["--dim", "32", "--layers", "1", "--batch", "4", "--no-cache"];
    let demos = p("demos");
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "world", demos.as_str()];
        args.extend_from_slice(extra);
        s2r(&args)
    };
    let base = p("base.safetensors");
    let mut args = vec!["-o", base.as_str(), "--steps", "60", "--eval-every", "20", "--lr", "3e-3"];
    args.extend_from_slice(&small);
    let o = train(&args);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("copy-last next-frame token accuracy"), "{out}");
    let losses = held_out_losses(&out);
    assert_eq!(losses.len(), 3, "{out}");
    assert!(losses[2] < losses[0], "training lowers the held-out loss: {losses:?}\n{out}");

    // Post-training: the base's network and weights, recorded as the parent.
    let o = train(&["--base", &p("base.safetensors"), "-o", &p("post.safetensors"), "--steps", "10", "--eval-every", "10", "--no-cache"]);
    let out = text(&o);
    assert!(o.status.success() && out.contains("post-training") && out.contains("base.safetensors"), "{out}");
    // Low-rank adapters on the frozen base; without a base they mean nothing.
    let o = train(&["--base", &p("base.safetensors"), "--adapter", "2", "-o", &p("lora.safetensors"), "--steps", "5", "--no-cache"]);
    let out = text(&o);
    assert!(o.status.success() && out.contains("(adapters of rank 2)"), "{out}");
    let o = train(&["--adapter", "2", "-o", &p("nobase.safetensors"), "--steps", "5", "--no-cache"]);
    assert!(!o.status.success() && text(&o).contains("--adapter 2 needs --base"), "{}", text(&o));
    // Resuming it from another base of another architecture is refused, naming both.
    let other = p("other.safetensors");
    assert!(train(&["-o", &other, "--steps", "1", "--dim", "16", "--layers", "1", "--batch", "2", "--no-cache"]).status.success());
    let o = train(&["--base", &p("other.safetensors"), "-o", &p("post.safetensors"), "--steps", "20", "--no-cache"]);
    let e = text(&o);
    assert!(!o.status.success() && e.contains("other.safetensors") && e.contains("post.safetensors") && e.contains("differs"), "{e}");

    // The table: copy-last, the tokenizer's ceiling, both models, per horizon; the action effect.
    let json = p("eval.json");
    let o = s2r(&[
        "eval",
        "world",
        &p("base.safetensors"),
        &p("post.safetensors"),
        "--data",
        &p("demos"),
        "--no-ssim",
        "--no-cache",
        "--json",
        &json,
    ]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for row in ["| copy-last |", "| dv8x16x16 (ceiling) |", "| base |", "| post |", "h=16", "ΔtPSNR"] {
        assert!(out.contains(row), "{row}: {out}");
    }
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = r["rows"].as_array().unwrap();
    let psnr = |i: usize| rows[i]["psnr"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect::<Vec<_>>();
    // The ceiling decodes the true codes: better than copying a frame 16 steps old.
    assert!(psnr(1)[4] > psnr(0)[4], "{out}");
    assert_eq!(rows[1]["accuracy"][0].as_f64(), Some(1.0));

    // --scenario keeps only that scenario's episodes: none of another.
    let o = s2r(&["eval", "world", &p("base.safetensors"), "--data", &p("demos"), "--scenario", "dry_day_urban", "--no-cache"]);
    assert!(!o.status.success() && text(&o).contains("no episodes of dry_day_urban"), "{}", text(&o));

    // A prediction: true | predicted pairs, the sheet, a bag of the predicted frames.
    let o =
        s2r(&["predict", &p("demos/cup_near_edge_seed9"), "-m", &p("post.safetensors"), "--frames", "6", "--no-cache", "-o", &p("pred")]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for f in ["context_000.png", "context_003.png", "pred_004.png", "pred_009.png", "sheet.png"] {
        assert!(Path::new(&p(&format!("pred/{f}"))).is_file(), "{f}: {out}");
    }
    let bag = s2r_bag::BagReader::open(Path::new(&p("pred/bag"))).unwrap();
    assert_eq!(bag.connections[0].topic, "/front/predicted/image_raw");
    assert_eq!(bag.messages().count(), 6);

    // Bad input, named.
    let o = s2r(&["predict", "bags/icy_night_crossing", "-m", &p("post.safetensors"), "--no-cache", "-o", &p("pred2")]);
    let e = text(&o);
    assert!(!o.status.success() && e.contains("icy_night_crossing") && e.contains("no /cmd_vel or /joint_commands"), "{e}");
    let o = s2r(&["predict", &p("demos/cup_near_edge_seed9"), "-m", &p("nope.safetensors"), "-o", &p("pred3")]);
    let e = text(&o);
    assert!(!o.status.success() && e.contains("nope.safetensors") && e.contains("s2r train world"), "{e}");
    let o = s2r(&["predict", &p("demos/cup_near_edge_seed9"), "-m", &p("post.safetensors"), "--actions", "fly", "-o", &p("pred4")]);
    assert!(!o.status.success() && text(&o).contains("steer-left"), "{}", text(&o));
    let o = s2r(&["train", "world", &p("demos"), "-o", &p("cv.safetensors"), "--tokenizer", "cv4x8x8", "--steps", "1"]);
    let e = text(&o);
    assert!(!o.status.success() && e.contains("continuous") && e.contains("dv8x16x16"), "{e}");
}

#[test]
fn the_shipped_world_model_exports_to_onnx() {
    let tmp = tempfile::tempdir().unwrap();
    let onnx = tmp.path().join("world.onnx");
    // The pre-trained model, and the icy one with its dynamics head.
    for name in ["world", "icy"] {
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("models/world/{name}.safetensors"));
        let o = s2r(&["export", "world", model.to_str().unwrap(), "--onnx", onnx.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("inputs digits int64 [1, ") && text(&o).contains("outputs logits [1, "), "{}", text(&o));
        // ONNX Runtime (the Python wheel) runs it on a window of zeros: one
        // output per frame, every value finite.
        let script = "import sys, numpy as np, onnxruntime as ort\n\
s = ort.InferenceSession(sys.argv[1])\n\
feed = {i.name: np.zeros(i.shape, np.int64 if 'int64' in i.type else np.float32) for i in s.get_inputs()}\n\
feed['conditions'][:] = [0, 5, 8, 13]\n\
out = s.run(None, feed)\n\
print([list(o.shape) for o in out], all(np.isfinite(o).all() for o in out))\n";
        let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let r = Command::new(py).args(["-c", script, onnx.to_str().unwrap()]).output().unwrap();
        let said = String::from_utf8_lossy(&r.stdout);
        assert!(r.status.success() && said.trim_end().ends_with("True"), "{name}: {said}{}", String::from_utf8_lossy(&r.stderr));
    }
    let o = s2r(&["export", "world", "/nonexistent/w.safetensors", "--onnx", onnx.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("/nonexistent/w.safetensors"), "{}", text(&o));
}

/// The cup-fall measure: the scripted sweep (the arm nobody commands, its
/// script's targets recorded as its commands) knocks the cup off the table,
/// recorded on past the drop with the simulator's instance ids; the
/// tokenizer's own reconstruction (the ceiling) shows every fall, copying
/// the last context frame none, and neither shows a standing cup gone.
#[test]
fn the_cup_fall_measure_sees_the_sweep_knock_the_cup_off() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s).to_str().unwrap().to_string();
    let o = s2r(&[
        "demos",
        "--scenario",
        "cup_near_edge",
        "--driver",
        "scripted",
        "--seeds",
        "9..9",
        "--image-scale",
        "0.5",
        "--after",
        "3",
        "--instances",
        "-o",
        &p("sweep"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let manifest: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(p("sweep/manifest.yaml")).unwrap()).unwrap();
    let episode = &manifest["episodes"][0];
    assert_eq!(episode["outcome"].as_str(), Some("dropped"), "{manifest:?}");
    assert_eq!(manifest["after"].as_f64(), Some(3.0));
    // The bag goes on 3 s past the drop, with the script's commands and the instance ids.
    let bag = s2r_bag::BagReader::open(Path::new(&p("sweep/cup_near_edge_seed9"))).unwrap();
    let count = |topic: &str| {
        let id = bag.connections.iter().position(|c| c.topic == topic).unwrap_or_else(|| panic!("no {topic}"));
        bag.messages().filter(|m| m.connection == id).count()
    };
    let ended = episode["seconds"].as_f64().unwrap();
    let frames = count("/sim/front/image_raw");
    assert_eq!(count("/sim/front/instances"), frames);
    assert!((frames as f64 / 10.0 - (ended + 3.0)).abs() < 0.25, "{frames} frames at 10 Hz for {ended} s + 3 s");
    assert!(count("/joint_commands") > 100, "the script's targets are the commands");

    let json = p("eval.json");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/world/world.safetensors");
    let o = s2r(&["eval", "world", model.to_str().unwrap(), "--data", &p("sweep"), "--no-ssim", "--no-cache", "--json", &json]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("fell: shown gone"), "{out}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let cups = |row: usize, field: &str| r["rows"][row]["cup_falls"][field].as_u64().unwrap_or_else(|| panic!("{field}: {out}"));
    // Rows: copy-last, the ceiling, the model.
    assert!(cups(1, "falls") >= 1, "{out}");
    assert_eq!(cups(1, "predicted"), cups(1, "falls"), "the true frames decoded show every fall: {out}");
    assert_eq!(cups(0, "predicted"), 0, "copying the context shows no fall: {out}");
    assert!(cups(0, "stays") >= 1, "the other cup stands: {out}");
    assert_eq!(cups(0, "false_alarms") + cups(1, "false_alarms"), 0, "{out}");
}
