//! `s2r train reason` fits the stopping predictor to braking trials run in the
//! simulator's physics, and `s2r eval reason` scores it on held-out seeds
//! beside a reasoner that assumes a dry road.

use std::process::Command;

fn s2r(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_s2r")).args(args).output().unwrap()
}

#[test]
fn train_then_eval_beats_the_dry_road_baseline_and_junk_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("reason.json");
    let m = model.to_str().unwrap();
    let o = s2r(&["train", "reason", "-o", m, "--seeds", "0..39", "--held-out", "1000..1029"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("40 braking trials"), "{out}");

    let json = dir.path().join("questions.json");
    let o = s2r(&["eval", "reason", m, "--seeds", "1000..1029", "--json", json.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["questions"].as_array().unwrap().len(), 60);
    let (ours, dry) = (&r["reasoner"], &r["dry_road_baseline"]);
    // Measured by the simulator on seeds it never trained on: within 15 % nearly always.
    assert!(ours["within_15"].as_f64().unwrap() >= 0.9, "{ours}");
    assert!(ours["stop_accuracy"].as_f64().unwrap() >= 0.9, "{ours}");
    // A dry-road assumption says "it stops" on slippery roads where it does not.
    assert!(dry["false_stops"].as_f64().unwrap() > ours["false_stops"].as_f64().unwrap(), "{dry} vs {ours}");
    assert!(dry["within_15"].as_f64().unwrap() < 0.8, "{dry}");

    // Training and question seeds must not overlap.
    let o = s2r(&["train", "reason", "-o", m, "--seeds", "0..39", "--held-out", "30..50"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("share seed 30"));
    // A model file that is not one is refused by path, with the command that makes one.
    std::fs::write(&model, "not json").unwrap();
    let o = s2r(&["eval", "reason", m]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("reason.json") && e.contains("s2r train reason"), "{e}");
}

#[test]
fn the_surface_predictor_learns_from_a_sweep_whose_friction_follows_the_look() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("surface.yaml");
    let text = "name: surface_test\nscenarios: [icy_night_crossing]\nseeds: {from: 1, to: 3}\nlooks:\n  prompts: [\"icy, noon\", \"wet, noon\", \"snowy, noon\", \"dry, noon\"]\nduration: 0.6\ncameras: [front]\nimage_scale: 0.25\npreset: fast\nfriction_from_look: true\nkeep: [restyled]\n";
    std::fs::write(&sweep, text).unwrap();
    let data = dir.path().join("data");
    let o = s2r(&["generate", sweep.to_str().unwrap(), "-o", data.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let model = dir.path().join("reason.json");
    let m = model.to_str().unwrap();
    let d = data.to_str().unwrap();
    let o = s2r(&[
        "train",
        "reason",
        "-o",
        m,
        "--seeds",
        "0..19",
        "--held-out",
        "1000..1009",
        "--surface",
        d,
        "--every",
        "1",
        "--surface-steps",
        "150",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(dir.path().join("reason.surface.safetensors").is_file());
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&model).unwrap()).unwrap();
    assert_eq!(record["surface"]["weights"], "reason.surface.safetensors");

    let json = dir.path().join("eval.json");
    let o = s2r(&["eval", "reason", m, "--seeds", "1000..1009", "--surface", d, "--json", json.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let s = &r["surface"];
    // Four surfaces in equal shares: a dry-road guess is right a quarter of the time.
    assert!((s["dry_road_baseline"].as_f64().unwrap() - 0.25).abs() < 1e-6, "{s}");
    assert!(s["accuracy"].as_f64().unwrap() > 0.5, "{s}");

    // A dataset whose bags lack /scenario cannot be labelled, and says so.
    let bare = dir.path().join("bare");
    std::fs::create_dir(&bare).unwrap();
    let o = s2r(&["train", "reason", "-o", m, "--surface", bare.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no MCAP bags"), "{}", String::from_utf8_lossy(&o.stderr));
}
