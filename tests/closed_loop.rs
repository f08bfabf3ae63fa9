//! `s2r eval closed-loop` end to end: on held-out seeds of the icy night the
//! scripted 50 km/h drive hits the child and the privileged expert does not;
//! on the table the scripted sweep knocks the cup off and the expert (and
//! the shipped arm policy) puts it down on its spot; the failed episode's bag is readable; the report opens
//! in headless Chromium.

use std::path::Path;
use std::process::Command;

use s2r_bag::BagReader;

mod common;

#[test]
fn scripted_hits_the_child_on_ice_the_expert_stops_and_the_report_shows_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    let o = Command::new(env!("CARGO_BIN_EXE_s2r"))
        .args(["eval", "closed-loop", "--scenario", "icy_night_crossing", "--seeds", "1000..1001", "--driver", "scripted,expert"])
        .args(["--failed-bags", "1", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("| icy_night_crossing | expert | 2 |"), "{stdout}");

    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let summary = |driver: &str| r["summaries"].as_array().unwrap().iter().find(|s| s["driver"] == driver).unwrap().clone();
    let (scripted, expert) = (summary("scripted"), summary("expert"));
    assert_eq!(scripted["episodes"], 2);
    assert_eq!(scripted["vulnerable_collisions"]["value"], 1.0, "the scripted drive hits the child in both: {scripted}");
    assert!(scripted["vulnerable_impact_speed"].as_f64().unwrap() > 10.0, "at speed: {scripted}");
    assert_eq!(expert["vulnerable_collisions"]["value"], 0.0, "{expert}");
    assert_eq!(expert["completed"]["value"], 1.0, "the expert completes the route: {expert}");
    assert!(expert["driving_score"]["value"].as_f64().unwrap() > scripted["driving_score"]["value"].as_f64().unwrap());
    for e in r["episodes"].as_array().unwrap() {
        if e["driver"] == "expert" {
            assert!(e["max_speed"].as_f64().unwrap() > 13.0, "starts at the route's 50 km/h: {e}");
            assert!(e["min_vru_gap"].as_f64().unwrap() > 0.5, "keeps away from the child: {e}");
        }
    }

    // The first failed episode, recorded again with the cameras on.
    let bag = out.join("failed/icy_night_crossing_scripted_seed1000");
    let reader = BagReader::open(&bag).unwrap();
    let topics: Vec<&str> = reader.connections.iter().map(|c| c.topic.as_str()).collect();
    for t in ["/sim/front/image_raw", "/odom", "/sim/collisions", "/scenario"] {
        assert!(topics.contains(&t), "{t} missing from the failed episode's bag: {topics:?}");
    }
    assert!(!out.join("failed/icy_night_crossing_scripted_seed1001").exists(), "--failed-bags 1 records one");

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("data:image/png;base64,") && html.contains("child at"));
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/closed_loop");
    std::fs::create_dir_all(&shot).unwrap();
    let shot = shot.join("report.png");
    common::screenshot(&out.join("report.html"), &shot, "1300,1400");
    assert!(std::fs::metadata(&shot).unwrap().len() > 50_000, "the screenshot is blank");
}

#[test]
fn unknown_drivers_and_bad_seed_ranges_are_named() {
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_s2r")).args(["eval", "closed-loop"]).args(args).output().unwrap();
    let o = run(&["--scenario", "icy_night_crossing", "--driver", "autopilot"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--driver 'autopilot'"));
    let o = run(&["--scenario", "icy_night_crossing", "--seeds", "9..3"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--seeds '9..3'"));
}

#[test]
fn the_scripted_sweep_knocks_the_cup_off_and_the_expert_places_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    let o = Command::new(env!("CARGO_BIN_EXE_s2r"))
        .args(["eval", "closed-loop", "--scenario", "cup_near_edge", "--seeds", "1000..1002", "--driver", "scripted,expert,policy"])
        .arg("--policy")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/policy/arm.safetensors"))
        .args(["--failed-bags", "1", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("| cup_near_edge | expert | 3 |") && stdout.contains("cup placed"), "{stdout}");

    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let summary = |driver: &str| r["summaries"].as_array().unwrap().iter().find(|s| s["driver"] == driver).unwrap().clone();
    let (scripted, expert, policy) = (summary("scripted"), summary("expert"), summary("policy"));
    // The shipped arm policy (85 % placed on 100 held-out seeds) places it in most of these.
    assert!(policy["arm"]["placed"]["value"].as_f64().unwrap() > 0.6, "{policy}");
    assert_eq!(policy["arm"]["dropped"]["value"], 0.0, "{policy}");
    assert_eq!(scripted["arm"]["dropped"]["value"], 1.0, "the sweep knocks the cup off every time: {scripted}");
    assert_eq!(scripted["arm"]["placed"]["value"], 0.0, "{scripted}");
    assert_eq!(expert["arm"]["placed"]["value"], 1.0, "the expert places the cup every time: {expert}");
    assert_eq!(expert["arm"]["dropped"]["value"], 0.0, "{expert}");
    assert!(expert["arm"]["median_place_error_m"].as_f64().unwrap() < 0.04, "{expert}");
    for e in r["episodes"].as_array().unwrap() {
        let arm = &e["arm"];
        match e["driver"].as_str().unwrap() {
            "policy" => {}
            "expert" => {
                assert_eq!(e["outcome"], "completed", "{e}");
                assert_eq!(arm["stage"], "placed", "{e}");
                assert!(e["sim_seconds"].as_f64().unwrap() < 15.0, "placed before the timeout: {e}");
            }
            _ => {
                assert_eq!(e["outcome"], "dropped", "{e}");
                assert_eq!(arm["cups_dropped"], 1, "{e}");
            }
        }
    }
    // The failed sweep, recorded: joint states, the gripper, the camera.
    let reader = BagReader::open(&out.join("failed/cup_near_edge_scripted_seed1000")).unwrap();
    let topics: Vec<&str> = reader.connections.iter().map(|c| c.topic.as_str()).collect();
    for t in ["/sim/front/image_raw", "/joint_states", "/gripper/grasped", "/sim/collisions"] {
        assert!(topics.contains(&t), "{t} missing from the failed episode's bag: {topics:?}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("cup to its spot") && html.contains("cup placed"), "the report has the arm's rows");
}
