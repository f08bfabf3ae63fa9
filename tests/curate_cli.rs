//! `s2r curate` on the sample bags: a balanced dataset from a skewed input,
//! an impossible target and a broken params file refused by name, a damaged
//! bag curated up to the damage, and the report looked at in headless Chromium.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

fn s2r(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_s2r")).args(args).output().unwrap()
}

fn bags() -> Vec<String> {
    ["icy_night_crossing", "dry_day_urban", "cup_near_edge"].iter().map(|b| format!("{}/bags/{b}", env!("CARGO_MANIFEST_DIR"))).collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn artifacts() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/curator");
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn balances_the_sample_bags_and_writes_a_readable_report() {
    let tmp = tempfile::tempdir().unwrap();
    let params = tmp.path().join("curator.params.yaml");
    // Clips per scenario in the sample bags: 2 icy, 1 dry, 2 cup; a third each is the target.
    std::fs::write(
        &params,
        "curator_node:\n  ros__parameters:\n    balance:\n      scenario: {icy_night_crossing: 0.3334, dry_day_urban: 0.3333, cup_near_edge: 0.3333}\n",
    )
    .unwrap();
    let out = tmp.path().join("dataset");
    let mut args = vec!["curate"];
    let b = bags();
    args.extend(b.iter().map(String::as_str));
    args.extend(["-o", out.to_str().unwrap(), "--params", params.to_str().unwrap()]);
    let o = s2r(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    println!("{stdout}");
    let manifest = std::fs::read_to_string(out.join("manifest.yaml")).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&manifest).unwrap();
    for a in doc["balance"].as_sequence().unwrap() {
        let (t, after) = (a["target"].as_f64().unwrap(), a["after"].as_f64().unwrap());
        assert!((after - t).abs() <= 0.05, "balance {a:?} off by more than 5 percentage points");
    }
    let clips = doc["clips"].as_sequence().unwrap();
    let accepted: Vec<&serde_yaml_ng::Value> = clips.iter().filter(|c| c["verdict"] == "accepted").collect();
    assert_eq!(accepted.len(), 3, "one clip per scenario:\n{manifest}");
    assert!(
        clips.iter().any(|c| c["reasons"].as_sequence().unwrap().iter().any(|r| r == "balance")),
        "the extra clips are dropped for balance"
    );
    for c in &accepted {
        assert!(out.join(c["bag"].as_str().unwrap()).join("metadata.yaml").is_file());
    }
    // The report, as a browser shows it.
    let report = out.join("report.html");
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("Distributions before and after") && html.contains("<svg") && html.contains("data:image/png;base64,"));
    let shot = artifacts().join("report.png");
    common::screenshot(&report, &shot, "1200,2400");
    assert!(std::fs::metadata(&shot).unwrap().len() > 20_000, "the screenshot is blank");
}

#[test]
fn a_recording_curated_twice_is_a_set_of_semantic_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let b = bags();
    let copy = tmp.path().join("icy_again");
    std::fs::create_dir(&copy).unwrap();
    for f in std::fs::read_dir(&b[0]).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, copy.join(f.file_name().unwrap())).unwrap();
    }
    let out = tmp.path().join("d");
    let o = s2r(&["curate", &b[0], copy.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(out.join("manifest.yaml")).unwrap()).unwrap();
    let clips = doc["clips"].as_sequence().unwrap();
    let (first, again): (Vec<_>, Vec<_>) = clips.iter().partition(|c| c["source"] == "icy_night_crossing");
    assert_eq!(first.len(), again.len());
    assert!(first.iter().all(|c| c["verdict"] == "accepted"));
    for c in &again {
        assert_eq!(c["verdict"], "rejected");
        assert!(c["reasons"].as_sequence().unwrap().iter().any(|r| r == "semantic_duplicate"), "{c:?}");
        assert!(c["duplicate_of"].as_str().unwrap().starts_with("icy_night_crossing_front_"));
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("dropped: icy_again_front_0001"), "the duplicate group is in the report");
}

#[test]
fn impossible_targets_broken_params_and_damaged_bags() {
    let tmp = tempfile::tempdir().unwrap();
    let b = bags();
    // A target no clip can meet names the tag and what is there.
    let params = tmp.path().join("fog.yaml");
    std::fs::write(&params, "balance:\n  weather: {clear: 0.5, fog: 0.5}\n").unwrap();
    let o = s2r(&["curate", &b[0], &b[1], "-o", tmp.path().join("a").to_str().unwrap(), "--params", params.to_str().unwrap()]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(e.contains("weather=fog") && e.contains("no clip has weather 'fog'") && e.contains("clear, snow"), "{e}");
    // An unknown key: file, line and key.
    let broken = tmp.path().join("broken.yaml");
    std::fs::write(&broken, "clip_seconds: 2.0\nblur_minimum: 3\n").unwrap();
    let o = s2r(&["curate", &b[0], "-o", tmp.path().join("b").to_str().unwrap(), "--params", broken.to_str().unwrap()]);
    let e = text(&o.stderr);
    assert!(!o.status.success() && e.contains("broken.yaml") && e.contains("blur_minimum") && e.contains("line 2"), "{e}");
    // A bag cut short: curated up to the damage, and the damage reported.
    let cut = tmp.path().join("cut");
    std::fs::create_dir(&cut).unwrap();
    for f in std::fs::read_dir(&b[0]).unwrap() {
        let f = f.unwrap().path();
        let dst = cut.join(f.file_name().unwrap());
        std::fs::copy(&f, &dst).unwrap();
        if dst.extension().is_some_and(|e| e == "mcap") {
            let len = std::fs::metadata(&dst).unwrap().len();
            std::fs::OpenOptions::new().write(true).open(&dst).unwrap().set_len(len * 6 / 10).unwrap();
        }
    }
    let out = tmp.path().join("c");
    let o = s2r(&["curate", cut.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    let e = text(&o.stderr);
    assert!(o.status.success(), "{e}");
    assert!(e.contains("damaged"), "{e}");
    let manifest = std::fs::read_to_string(out.join("manifest.yaml")).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&manifest).unwrap();
    let frames = doc["sources"][0]["frames"].as_u64().unwrap();
    assert!(frames > 5 && frames < 40, "frames up to the damage: {frames}");
    assert!(!doc["sources"][0]["damage"].as_sequence().unwrap().is_empty());
    assert!(doc["clips_accepted"].as_u64().unwrap() >= 1);
}
