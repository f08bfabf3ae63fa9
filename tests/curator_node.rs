//! curator_node on the live stream of sim_node (over DDS on loopback), and
//! `s2r curate` on a recording of the same stream: the same clips with the
//! same verdicts; verdicts published per clip; a dataset written.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{fresh_domain, loopback, loopback_env};
use s2r_curator::params::Params;
use s2r_runtime::{Node, Qos, RosArgs};
use sim2real_msgs::sim2real_msgs::msg::CurationVerdict;

fn cmd(exe: &str, domain: u16) -> Command {
    let mut c = Command::new(exe);
    loopback_env(&mut c, domain);
    c
}

fn interrupt(c: &Child) {
    Command::new("kill").args(["-INT", &c.id().to_string()]).status().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_and_offline_curation_agree() {
    let domain = fresh_domain();
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("live");
    let bag = tmp.path().join("recording");
    let mut curator = cmd(env!("CARGO_BIN_EXE_curator_node"), domain)
        .args(["--ros-args", "-p", &format!("output:={}", live.display()), "-p", "image_topic:=sim/front/image_raw", "-p", "camera:=front"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut recorder = cmd(env!("CARGO_BIN_EXE_s2r"), domain)
        .args([
            "bag",
            "record",
            "-o",
            bag.to_str().unwrap(),
            "/sim/front/image_raw",
            "/sim/front/camera_info",
            "/sim/front/detections",
            "/scenario",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "verdict_listener", &RosArgs::default()).unwrap();
    let verdicts = node.create_subscription::<CurationVerdict>("/curator/verdicts", Qos::reliable().depth(100)).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut sim = cmd(env!("CARGO_BIN_EXE_sim_node"), domain)
        .args([
            "--ros-args",
            "-p",
            "scenario:=icy_night_crossing",
            "-p",
            "seed:=2",
            "-p",
            "image_scale:=0.5",
            "-p",
            "duration:=3.0",
            "-p",
            "wait_for_subscribers:=true",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "sim_node did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    interrupt(&recorder);
    interrupt(&curator);
    let mut got = Vec::new();
    let t0 = Instant::now();
    while curator.try_wait().unwrap().is_none() || t0.elapsed() < Duration::from_secs(1) {
        assert!(t0.elapsed() < Duration::from_secs(30), "curator_node did not stop");
        while let Some(v) = verdicts.try_recv() {
            got.push(v);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while let Some(v) = verdicts.try_recv() {
        got.push(v);
    }
    recorder.wait().unwrap();
    let status = curator.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut curator.stderr.take().unwrap(), &mut err).ok();
    assert!(status.success(), "curator_node: {err}");

    // The node's dataset.
    let manifest = std::fs::read_to_string(live.join("manifest.yaml")).unwrap();
    assert!(live.join("report.html").is_file());
    let live_final: Vec<&CurationVerdict> = got.iter().filter(|v| v.is_final).map(|v| &**v).collect();
    let live_first: Vec<&CurationVerdict> = got.iter().filter(|v| !v.is_final).map(|v| &**v).collect();
    assert!(live_final.len() >= 2, "a 3 s stream in 2 s clips: {got:?}\n{err}");
    assert!(live_first.len() + 1 >= live_final.len(), "a first verdict as each clip closed (the last closes at the end)");
    for v in &live_final {
        assert_eq!(
            live.join("clips").join(&v.clip_id).is_dir(),
            v.accepted,
            "{}: bag written exactly for accepted clips\n{manifest}",
            v.clip_id
        );
    }

    // The same stream, recorded, curated offline.
    let offline = tmp.path().join("offline");
    let (curated, sources) = s2r_curator::offline::curate(std::slice::from_ref(&bag), &offline, &Params::default(), &mut |_| {}).unwrap();
    assert_eq!(sources[0].frames, 30, "the recording has every frame");
    let key = |start: i64, end: i64, accepted: bool, reasons: Vec<String>| (start, end, accepted, reasons);
    let off: Vec<_> = curated
        .clips
        .iter()
        .map(|c| key(c.start_ns, c.end_ns, c.accepted, c.reasons.iter().map(|r| r.code().to_string()).collect()))
        .collect();
    let ns = |t: &sim2real_msgs::builtin_interfaces::msg::Time| t.sec as i64 * 1_000_000_000 + t.nanosec as i64;
    let on: Vec<_> = live_final.iter().map(|v| key(ns(&v.start), ns(&v.end), v.accepted, v.reasons.clone())).collect();
    assert_eq!(on, off, "live and offline verdicts differ");
    for c in curated.clips.iter().filter(|c| c.accepted) {
        let r = s2r_bag::BagReader::open(&offline.join("clips").join(&c.id)).unwrap();
        let images = r.connections.iter().find(|x| x.topic == "/sim/front/image_raw").unwrap().count as usize;
        assert_eq!(images, c.good_frames(), "{}: the clip bag holds its good frames", c.id);
        assert!(r.connections.iter().any(|x| x.topic == "/scenario" && x.count == 1), "each clip carries the scenario");
    }
}
