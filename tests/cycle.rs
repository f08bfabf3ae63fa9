//! `s2r cycle` end to end on the sample recordings: labelled, the training
//! recording restyled into two looks, a copy of the shipped model fine-tuned
//! on both, scored before and after on the held-out recording's ground truth
//! and on the original domain, gated, and announced on trainer/models only
//! when the gate passes (over DDS, on loopback); a gate that cannot pass
//! keeps the deployed model and says why; too few recordings are refused.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use s2r_runtime::{Node, Qos, RosArgs};
use sim2real_msgs::sim2real_msgs::msg::ModelUpdate;

mod common;
use common::{fresh_domain, loopback, loopback_env};

const DRY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bags/dry_day_urban/dry_day_urban_0.mcap");
const ICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bags/icy_night_crossing/icy_night_crossing_0.mcap");

const ARM_POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/policy/arm.safetensors");

fn cycle(domain: u16, out: &Path, extra: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_s2r"));
    loopback_env(&mut c, domain);
    // The flat front camera stands in for a robot's; the recordings' /sim labels are the truth.
    c.args(["cycle", DRY, ICY, "--topic", "/sim/front/image_raw", "--held-out-every", "2"]);
    c.args(["--original", ICY, "--steps", "2", "--batch", "2", "-o", out.to_str().unwrap()]);
    c.args(extra);
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn record(out: &Path) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(out.join("cycle.yaml")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_labels_restyles_fine_tunes_scores_gates_and_announces() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cycle");
    let domain = fresh_domain();
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "deployed", &RosArgs::default()).unwrap();
    let models = node.create_subscription::<ModelUpdate>("trainer/models", Qos::transient_local().depth(10)).unwrap();
    let o = tokio::task::spawn_blocking({
        let out = out.clone();
        move || cycle(domain, &out, &["--truth", "--announce"])
    })
    .await
    .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");

    // Labels, held out by recording: the dry-day recording trains, the icy one is held out.
    let splits = std::fs::read_to_string(out.join("labels/splits.yaml")).unwrap();
    let splits: serde_yaml_ng::Value = serde_yaml_ng::from_str(&splits).unwrap();
    assert_eq!(splits["train"]["clips"][0].as_str(), Some("dry_day_urban_0_000"), "{splits:?}");
    assert_eq!(splits["val"]["clips"][0].as_str(), Some("icy_night_crossing_0_000"), "{splits:?}");
    // Its frames restyled into the two default looks, with the labels unchanged.
    let mut looks: Vec<String> =
        std::fs::read_dir(out.join("augmented/clips")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    looks.sort();
    assert_eq!(looks, ["dry_day_urban_0_000_look0", "dry_day_urban_0_000_look1"]);
    let r = record(&out);
    for a in r["augmented"].as_sequence().unwrap() {
        let (kept, out_) = (a["frames"].as_u64().unwrap(), a["curated_out"].as_u64().unwrap());
        assert_eq!(kept + out_, 10, "{a:?}");
        assert!(a["mean_recall"].as_f64().unwrap() > 0.3, "{a:?}");
    }
    // A copy of the shipped model, two steps on.
    let base =
        s2r_perception::checkpoint::read(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models/perception/perception.safetensors")))
            .unwrap()
            .meta
            .step;
    let tuned = s2r_perception::checkpoint::read(&out.join("perception.safetensors")).unwrap();
    assert_eq!(tuned.meta.step, base + 2);
    // Before and after, on the held-out recording's truth and the original domain.
    let scores = r["scores"].as_sequence().unwrap();
    assert_eq!(scores.len(), 2, "{r:?}");
    assert!(scores[0]["what"].as_str().unwrap().starts_with("robot held-out"), "{r:?}");
    assert_eq!(scores[0]["frames"].as_u64(), Some(40), "the icy recording's front frames: {r:?}");
    for s in scores {
        for when in ["before", "after"] {
            let m = s[when]["miou"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&m), "{s:?}");
        }
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Before and after") && html.matches("<img").count() >= 3, "the frames and their restyles");
    assert!(t.contains("| robot held-out clips"), "the table: {t}");

    // Announced exactly when kept, with the new model's path.
    let kept = r["verdict"].as_str().unwrap().starts_with("kept");
    assert_eq!(r["announced"].as_bool(), Some(kept), "{r:?}");
    let t0 = std::time::Instant::now();
    let mut got = None;
    while t0.elapsed() < Duration::from_secs(if kept { 10 } else { 1 }) {
        if let Some(u) = models.try_recv() {
            got = Some(u);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    match got {
        Some(u) => {
            assert!(kept, "a model the gate refused was announced: {u:?}");
            assert_eq!(u.kind, "perception");
            assert_eq!(Path::new(&u.path), std::fs::canonicalize(out.join("perception.safetensors")).unwrap());
            assert_eq!(u.metric, "miou");
        }
        None => assert!(!kept, "the kept model was not announced:\n{t}"),
    }
}

#[test]
fn a_gate_that_cannot_pass_keeps_the_deployed_model_and_too_few_recordings_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cycle");
    // The original domain must get better by a whole mIoU point: it cannot.
    let o = cycle(fresh_domain(), &out, &["--truth", "--tolerance=-1", "--announce"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let r = record(&out);
    let verdict = r["verdict"].as_str().unwrap();
    assert!(verdict.starts_with("not kept") && verdict.contains("not good enough"), "{verdict}");
    assert_eq!(r["announced"].as_bool(), Some(false));
    assert!(t.contains("not kept"), "{t}");
    // Without ground truth nothing shows the new model better where the robot drives: never kept.
    let o = cycle(fresh_domain(), &tmp.path().join("no_truth"), &["--announce"]);
    assert!(o.status.success(), "{}", text(&o));
    let r = record(&tmp.path().join("no_truth"));
    let verdict = r["verdict"].as_str().unwrap();
    assert!(verdict.starts_with("not kept") && verdict.contains("no --truth"), "{verdict}");
    assert_eq!(r["announced"].as_bool(), Some(false));
    assert_eq!(r["scores"].as_sequence().unwrap().len(), 1, "the original data only: {r:?}");

    // A policy is fine-tuned only on recordings that carry the robot's commands: these carry none.
    let o = cycle(fresh_domain(), &tmp.path().join("no_commands"), &["--policy", ARM_POLICY]);
    assert!(o.status.success(), "{}", text(&o));
    let r = record(&tmp.path().join("no_commands"));
    let verdict = r["policy"]["verdict"].as_str().unwrap();
    assert!(verdict.starts_with("not fine-tuned: 0 of 2 recording(s) carry /joint_commands"), "{verdict}");
    assert!(!tmp.path().join("no_commands/policy.safetensors").exists());
    let o = cycle(fresh_domain(), &tmp.path().join("bad_policy"), &["--policy", "/nonexistent/policy.safetensors"]);
    assert!(!o.status.success() && text(&o).contains("/nonexistent/policy.safetensors"), "{}", text(&o));
    assert!(!tmp.path().join("bad_policy/labels").exists(), "a bad policy stops the cycle before its work");

    let o = Command::new(env!("CARGO_BIN_EXE_s2r"))
        .args(["cycle", DRY, "--topic", "/sim/front/image_raw", "-o", tmp.path().join("one").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).contains("too few"), "{}", text(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_s2r"))
        .args(["cycle", DRY, ICY, "--metric", "speed", "-o", tmp.path().join("m").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).contains("--metric speed"), "{}", text(&o));
}

/// `--policy`: an arm's recordings with the commands it was driven with (two
/// demonstrations: the first trains, the second is held out); a copy of the
/// shipped arm policy fine-tuned on the first, scored on the second's
/// commands before and after, kept only if its error there is lower.
#[test]
fn a_cycle_fine_tunes_the_policy_on_the_recordings_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let demos = tmp.path().join("demos");
    let o = Command::new(env!("CARGO_BIN_EXE_s2r"))
        .args(["demos", "--scenario", "cup_near_edge", "--seeds", "1..2", "-o", demos.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = tmp.path().join("cycle");
    let (a, b) = (demos.join("cup_near_edge_seed1"), demos.join("cup_near_edge_seed2"));
    let o = Command::new(env!("CARGO_BIN_EXE_s2r"))
        .args(["cycle", a.to_str().unwrap(), b.to_str().unwrap(), "--topic", "/sim/front/image_raw", "--held-out-every", "2"])
        .args(["--steps", "2", "--batch", "2", "--policy", ARM_POLICY, "--policy-steps", "3", "-o", out.to_str().unwrap()])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let r = record(&out);
    let p = &r["policy"];
    assert_eq!(p["trained_on"].as_sequence().unwrap().len(), 1, "{p:?}");
    assert!(p["held_out"][0].as_str().unwrap().ends_with("cup_near_edge_seed2"), "{p:?}");
    let base = s2r_policy::checkpoint::read(Path::new(ARM_POLICY)).unwrap().meta.step;
    let tuned = s2r_policy::checkpoint::read(&out.join("policy.safetensors")).unwrap();
    assert_eq!(tuned.meta.step, base + 3);
    assert_eq!(p["steps"][1].as_u64(), Some(base as u64 + 3));
    assert!(p["frames"].as_u64().unwrap() > 20, "the held-out episode's frames: {p:?}");
    let (before, after) = (&p["before"], &p["after"]);
    // Beside the baseline of holding the state.
    for e in [&before[0], &before[1], &after[0], &after[1], &p["hold"][0], &p["hold"][1]] {
        assert!(e.as_f64().unwrap().is_finite() && e.as_f64().unwrap() >= 0.0, "{p:?}");
    }
    // Kept exactly when neither error rose and one fell.
    let (b0, b1, a0, a1) =
        (before[0].as_f64().unwrap(), before[1].as_f64().unwrap(), after[0].as_f64().unwrap(), after[1].as_f64().unwrap());
    let verdict = p["verdict"].as_str().unwrap();
    assert_eq!(verdict.starts_with("kept"), a0 <= b0 && a1 <= b1 && (a0 < b0 || a1 < b1), "{verdict}");
    assert!(verdict.contains("held-out joint error"), "{verdict}");
    assert!(t.contains("| policy, robot held-out recordings |"), "{t}");
    assert!(std::fs::read_to_string(out.join("report.html")).unwrap().contains("<h2>Policy</h2>"));
}
