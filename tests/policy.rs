//! The policies end to end on the command line: the expert's
//! demonstrations recorded (driving and the arm's pick-and-place), a short
//! behaviour-cloning run that lowers the held-out action error below the
//! untrained network's, the policy in closed loop, and bad input (no
//! actions, another robot's action space) refused by name.

use std::path::Path;
use std::process::{Command, Output};

fn s2r(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_s2r")).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `s2r eval closed-loop` of held-out seed 1000 of the icy night driven by `policy`, with `extra` arguments.
fn closed_loop(policy: &str, extra: &[&str]) -> Output {
    let mut args =
        vec!["eval", "closed-loop", "--scenario", "icy_night_crossing", "--seeds", "1000", "--driver", "policy", "--policy", policy];
    args.extend_from_slice(extra);
    s2r(&args)
}

/// The speed errors of the held-out lines, in order.
fn held_out_errors(out: &str) -> Vec<f64> {
    out.lines()
        .filter_map(|l| l.split("held-out error of the next command ").nth(1))
        .map(|r| r.split(" m/s").next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn demonstrations_train_a_policy_that_drives_in_closed_loop() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s).to_str().unwrap().to_string();
    // Seeds 8 and 9: 9 is held out (seed % 10 == 9).
    let o = s2r(&["demos", "--scenario", "icy_night_crossing", "--seeds", "8..9", "-o", &p("demos")]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(Path::new(&p("demos/icy_night_crossing_seed9/metadata.yaml")).is_file());
    let manifest = std::fs::read_to_string(p("demos/manifest.yaml")).unwrap();
    assert!(manifest.contains("format: sim2real.demos/1") && manifest.contains("hit_vulnerable: false"), "{manifest}");

    let o = s2r(&[
        "train",
        "policy",
        &p("demos"),
        "-o",
        &p("policy.safetensors"),
        "--steps",
        "150",
        "--batch",
        "16",
        "--eval-every",
        "150",
        "--every",
        "2",
    ]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let errors = held_out_errors(&out);
    assert_eq!(errors.len(), 2, "step 0 and step 150: {out}");
    assert!(errors[1] < 0.6 * errors[0], "training lowers the held-out speed error: {errors:?}\n{out}");

    let o = s2r(&["eval", "closed-loop", "--scenario", "icy_night_crossing", "--seeds", "1000", "--driver", "policy"]);
    assert!(!o.status.success() && text(&o).contains("--driver policy needs --policy"), "{}", text(&o));
    // One held-out episode driven by a checkpoint: its record in results.json.
    let drive = |policy: &str, report: &str| {
        let o = closed_loop(policy, &["--failed-bags", "0", "-o", report]);
        assert!(o.status.success(), "{}", text(&o));
        let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(Path::new(report).join("results.json")).unwrap()).unwrap();
        r["episodes"][0].clone()
    };
    let e = drive(&p("policy.safetensors"), &p("report"));
    assert_eq!(e["driver"], "policy");
    assert!(e["distance"].as_f64().unwrap() > 5.0, "the policy drives: {e}");

    // A network of another shape: a band of the rows, a past frame beside each frame.
    let (shaped, demos) = (p("shaped.safetensors"), p("demos"));
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "policy", &demos, "-o", &shaped, "--steps", "10", "--batch", "8", "--every", "4"];
        args.extend_from_slice(extra);
        s2r(&args)
    };
    let o = train(&["--input", "64x32", "--rows", "0.25..0.75", "--past", "0.2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(drive(&shaped, &p("report2"))["driver"], "policy");
    // Resuming keeps the network's shape; asking for another is refused by name.
    let o = train(&["--input", "128x96"]);
    assert!(!o.status.success() && text(&o).contains("shaped.safetensors") && text(&o).contains("64x32"), "{}", text(&o));
    let o = train(&["--fresh", "--rows", "0.8..0.2"]);
    assert!(!o.status.success() && text(&o).contains("TOP..BOTTOM"), "{}", text(&o));
    let o = train(&["--fresh", "--input", "100x30"]);
    assert!(!o.status.success() && text(&o).contains("multiples of 16"), "{}", text(&o));
}

#[test]
fn missing_checkpoints_and_demonstrations_without_actions_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s).to_str().unwrap().to_string();
    let o = closed_loop(&p("nope.safetensors"), &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("nope.safetensors") && text(&o).contains("s2r train policy"), "{}", text(&o));
    // The scripted drive commands nothing: no actions to learn from.
    let o = s2r(&["demos", "--scenario", "dry_day_urban", "--seeds", "1000", "--driver", "scripted", "-o", &p("scripted")]);
    assert!(o.status.success(), "{}", text(&o));
    let o = s2r(&["train", "policy", &p("scripted"), "-o", &p("x.safetensors"), "--steps", "1"]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("no /cmd_vel") && t.contains("dry_day_urban_seed1000"), "{t}");
    let o = s2r(&["train", "policy", &p("empty"), "-o", &p("x.safetensors")]);
    assert!(text(&o).contains("manifest.yaml") && text(&o).contains("s2r demos"), "{}", text(&o));
}

#[test]
fn arm_demonstrations_train_a_joint_command_policy_and_robots_do_not_mix() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s).to_str().unwrap().to_string();
    let o = s2r(&["demos", "--scenario", "cup_near_edge", "--seeds", "8..9", "-o", &p("arm")]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("reached Placed"), "the expert places the cup: {out}");
    let manifest = std::fs::read_to_string(p("arm/manifest.yaml")).unwrap();
    assert!(manifest.contains("action: /joint_commands sensor_msgs/msg/JointState") && manifest.contains("stage: placed"), "{manifest}");

    let o = s2r(&[
        "train",
        "policy",
        &p("arm"),
        "-o",
        &p("arm.safetensors"),
        "--steps",
        "150",
        "--batch",
        "16",
        "--eval-every",
        "150",
        "--every",
        "2",
    ]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("of Arm demonstrations"), "{out}");
    let errors: Vec<f64> = out
        .lines()
        .filter_map(|l| l.split("held-out error of the next command ").nth(1))
        .map(|r| r.split(" rad").next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(errors.len(), 2, "step 0 and step 150: {out}");
    assert!(errors[1] < 0.6 * errors[0], "training lowers the held-out joint error: {errors:?}\n{out}");

    // The arm's policy in the loop: it commands the joints (and says how far it got).
    let o = s2r(&[
        "eval",
        "closed-loop",
        "--scenario",
        "cup_near_edge",
        "--seeds",
        "1000",
        "--driver",
        "policy",
        "--policy",
        &p("arm.safetensors"),
        "--failed-bags",
        "0",
        "-o",
        &p("report"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p("report/results.json")).unwrap()).unwrap();
    let e = &r["episodes"][0];
    assert_eq!(e["driver"], "policy");
    assert!(e["max_speed"].as_f64().unwrap() > 0.05, "the arm moves under the policy: {e}");
    // An arm's policy on a road, and a vehicle's set mixed with an arm's, are refused by name.
    let o = s2r(&[
        "eval",
        "closed-loop",
        "--scenario",
        "dry_day_urban",
        "--seeds",
        "1000",
        "--driver",
        "policy",
        "--policy",
        &p("arm.safetensors"),
    ]);
    assert!(!o.status.success() && text(&o).contains("it drives Arm; dry_day_urban has a vehicle"), "{}", text(&o));
    let o = s2r(&["demos", "--scenario", "dry_day_urban", "--seeds", "1", "-o", &p("car")]);
    assert!(o.status.success(), "{}", text(&o));
    let o = s2r(&["train", "policy", &p("arm"), &p("car"), "-o", &p("mixed.safetensors"), "--steps", "1"]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("car/manifest.yaml") && t.contains("one policy drives one robot"), "{t}");
    let o = s2r(&["train", "policy", &p("car"), "-o", &p("arm.safetensors"), "--steps", "200"]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("another robot's action space"), "{t}");
}

/// `s2r export policy`: the shipped checkpoint as an ONNX file with its
/// inputs named (nodes/policy/tests/onnx.rs runs it in ONNX Runtime); a
/// missing checkpoint is named.
#[test]
fn the_shipped_policy_exports_to_onnx() {
    let tmp = tempfile::tempdir().unwrap();
    let onnx = tmp.path().join("policy.onnx");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/policy/policy.safetensors");
    let o = s2r(&["export", "policy", model.to_str().unwrap(), "--onnx", onnx.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("inputs image [1, ") && text(&o).contains("output actions [1, 10, 2]"), "{}", text(&o));
    assert!(std::fs::metadata(&onnx).unwrap().len() > 500_000, "the weights are in the file");
    let o = s2r(&["export", "policy", "/nonexistent/p.safetensors", "--onnx", onnx.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("/nonexistent/p.safetensors"), "{}", text(&o));
}
