//! trainer_node over DDS: a Cyclone DDS client (the Python peer, speaking
//! rmw_cyclonedds's service mapping) asks for a world-model job; the job runs,
//! reports its progress and announces its checkpoint, which a running
//! world_model_node takes. A request for an unknown kind is refused listing
//! the known ones; a job that fails is reported with its reason and announces
//! no model. A Fast DDS client (C++, rmw_fastrtps's mapping: the reply names
//! its request by sample identity in inline QoS) is answered too. Over rclcpp's mapping (Fast DDS's, the default): a queue,
//! a job resumed from its checkpoint after its node was killed, a job cancelled.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{fastdds_peer, fresh_domain, loopback, loopback_env, peers_dir, python, Logged};
use s2r_runtime::{Node, Qos, RosArgs};
use sim2real_msgs::sim2real_msgs::msg::{ModelUpdate, TrainProgress};
use sim2real_msgs::sim2real_msgs::srv::{CancelTraining, CancelTraining_Request, Train, Train_Request};

fn s2r(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_s2r")).args(args).env("XDG_CACHE_HOME", cache).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Demonstrations of the cup (seeds 8 and 9) and a small world model
/// trained on them for jobs to post-train; their token frames cached in `cache`.
fn fixture(dir: &Path) -> (String, String, std::path::PathBuf) {
    let p = |s: &str| dir.join(s).to_str().unwrap().to_string();
    let cache = dir.join("cache");
    let o = s2r(&["demos", "--scenario", "cup_near_edge", "--seeds", "8..9", "-o", &p("demos")], &cache);
    assert!(o.status.success(), "{}", text(&o));
    let (demos, base) = (p("demos"), p("base.safetensors"));
    let mut args = vec!["train", "world", demos.as_str(), "-o", base.as_str(), "--steps", "2"];
    args.extend_from_slice(&["--dim", "32", "--layers", "1", "--batch", "4"]);
    let o = s2r(&args, &cache);
    assert!(o.status.success(), "{}", text(&o));
    (demos, base, cache)
}

/// The Cyclone DDS client: `train KIND BASE STEPS DATASET… -- ARG…`.
fn cyclone_train(domain: u16, args: &[&str]) -> String {
    let mut c = Command::new(python());
    c.arg(peers_dir().join("cyclone_peer.py")).arg("train").args(args);
    loopback_env(&mut c, domain);
    let o = c.output().unwrap();
    let out = text(&o);
    assert!(o.status.success(), "the peer failed:\n{out}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cyclone_dds_client_asks_for_a_job_and_a_deployed_node_takes_its_model() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s).to_str().unwrap().to_string();
    let (demos, base, cache) = fixture(tmp.path());
    let domain = fresh_domain();
    let mut c = Command::new(env!("CARGO_BIN_EXE_trainer_node"));
    loopback_env(&mut c, domain);
    c.env("RMW_IMPLEMENTATION", "rmw_cyclonedds_cpp").env("XDG_CACHE_HOME", &cache);
    c.args(["--ros-args", "-p", &format!("jobs_dir:={}", p("jobs"))]);
    let trainer = Logged::spawn(c);
    let mut c = Command::new(env!("CARGO_BIN_EXE_world_model_node"));
    loopback_env(&mut c, domain);
    c.args(["--ros-args", "-p", &format!("checkpoint:={base}")]);
    let deployed = Logged::spawn(c);
    trainer.wait_for("jobs in", Duration::from_secs(60)).await;
    deployed.wait_for("base.safetensors", Duration::from_secs(60)).await;

    // The job, asked for as a ROS 2 client on Cyclone DDS would.
    let out =
        tokio::task::block_in_place(|| cyclone_train(domain, &["world", &base, "4", &demos, "--", "--batch", "4", "--eval-every", "2"]));
    assert!(out.contains("ACCEPTED 1"), "{out}\ntrainer:\n{}", trainer.text());
    assert!(out.contains("PROGRESS running"), "{out}");
    let model = out.lines().find_map(|l| l.strip_prefix("MODEL ")).unwrap_or_else(|| panic!("no model:\n{out}\n{}", trainer.text()));
    let fields: Vec<&str> = model.split_whitespace().collect();
    let path = fields[0];
    assert!(path.ends_with("jobs/0001/world.safetensors") && Path::new(path).is_file(), "{out}");
    assert_eq!(fields[1], "token_accuracy", "{out}");
    let accuracy: f64 = fields[2].parse().unwrap();
    assert!((0.0..=1.0).contains(&accuracy), "a held-out accuracy: {out}");
    let job: serde_json::Value = serde_json::from_slice(&std::fs::read(p("jobs/0001/job.json")).unwrap()).unwrap();
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["base"], base.as_str(), "{job}");

    // The deployed world model takes it.
    deployed.wait_for("model update from job 1", Duration::from_secs(20)).await;
    deployed.wait_for(&format!("loaded checkpoint {path}"), Duration::from_secs(20)).await;

    // An unknown kind: refused, the known ones listed.
    let out = tokio::task::block_in_place(|| cyclone_train(domain, &["dance", "", "1", &demos]));
    assert!(out.contains("REFUSED unknown kind 'dance': the known kinds are world, perception, policy, reason, tokenizer"), "{out}");
    // A job that fails (a folder without demonstrations): its reason, no model.
    std::fs::create_dir(p("empty")).unwrap();
    let out = tokio::task::block_in_place(|| cyclone_train(domain, &["world", "", "2", &p("empty")]));
    assert!(out.contains("ACCEPTED 2"), "{out}");
    let failed = out.lines().find_map(|l| l.strip_prefix("FAILED ")).unwrap_or_else(|| panic!("{out}\n{}", trainer.text()));
    assert!(failed.contains("exit status: 1") && failed.contains("error"), "{failed}");
    assert!(!out.contains("MODEL"), "{out}");
    assert!(!Path::new(&p("jobs/0002/world.safetensors")).exists());
}

fn trainer(domain: u16, jobs: &str, cache: &Path) -> Logged {
    trainer_with(domain, jobs, cache, &[])
}

fn trainer_with(domain: u16, jobs: &str, cache: &Path, params: &[&str]) -> Logged {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trainer_node"));
    loopback_env(&mut c, domain);
    c.env("XDG_CACHE_HOME", cache).args(["--ros-args", "-p", &format!("jobs_dir:={jobs}")]);
    for p in params {
        c.args(["-p", p]);
    }
    Logged::spawn(c)
}

/// Waits for a progress message of `job` that `pred` accepts.
async fn progress_of(
    sub: &s2r_runtime::Subscription<TrainProgress>,
    job: u64,
    pred: impl Fn(&TrainProgress) -> bool,
    what: &str,
) -> TrainProgress {
    let t0 = std::time::Instant::now();
    loop {
        while let Some(m) = sub.try_recv() {
            if m.job_id == job && pred(&m) {
                return (*m).clone();
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(300), "job {job} never {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_queue_resume_after_their_node_is_killed_and_cancel() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s).to_str().unwrap().to_string();
    let (demos, base, cache) = fixture(tmp.path());
    let domain = fresh_domain();
    let jobs = p("jobs");
    let first = trainer(domain, &jobs, &cache);
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "operator", &RosArgs::default()).unwrap();
    let progress = node.create_subscription::<TrainProgress>("trainer/progress", Qos::reliable().depth(1000)).unwrap();
    let models = node.create_subscription::<ModelUpdate>("trainer/models", Qos::transient_local().depth(10)).unwrap();
    let train = node.create_client::<Train>("trainer/train").unwrap();
    let job = |steps: u32| Train_Request {
        kind: "world".into(),
        datasets: vec![demos.clone()],
        base: base.clone(),
        steps,
        args: ["--batch", "4", "--eval-every", "5"].map(String::from).to_vec(),
        ..Default::default()
    };
    let long = train.call(job(100_000), Duration::from_secs(60)).await.unwrap();
    let short = train.call(job(3), Duration::from_secs(10)).await.unwrap();
    assert!(long.accepted && long.job_id == 1, "{}", long.message);
    assert!(short.accepted && short.job_id == 2 && short.message.contains("1 ahead"), "{}", short.message);
    // Job 1 runs past its first checkpoint (step 5); then its node is killed outright.
    progress_of(&progress, 1, |m| m.state == "running" && m.step >= 7, "ran past step 7").await;
    drop(first);
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(p("jobs/0001/job.json")).unwrap()).unwrap();
    assert_eq!(record["state"], "running");

    // Started again, the node runs job 1 on from its checkpoint, job 2 still queued behind it.
    let second = trainer(domain, &jobs, &cache);
    second.wait_for("jobs [1, 2] were queued or running", Duration::from_secs(60)).await;
    progress_of(&progress, 1, |m| m.state == "running" && m.step > 0, "ran again").await;
    let log = std::fs::read_to_string(p("jobs/0001/log.txt")).unwrap();
    assert!(log.contains("resuming") && log.contains("at step"), "{log}");
    // Cancelled: stopped, no model; the queue goes on with job 2.
    let cancel = node.create_client::<CancelTraining>("trainer/cancel").unwrap();
    let r = cancel.call(CancelTraining_Request { job_id: 1 }, Duration::from_secs(10)).await.unwrap();
    assert!(r.cancelled, "{}", r.message);
    progress_of(&progress, 1, |m| m.state == "cancelled", "was cancelled").await;
    progress_of(&progress, 2, |m| m.state == "done", "ended").await;
    let t0 = std::time::Instant::now();
    let update = loop {
        if let Some(u) = models.try_recv() {
            break u;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "no model announced:\n{}", second.text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((update.job_id, update.kind.as_str(), update.parent.as_str()), (2, "world", base.as_str()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(models.try_recv().is_none(), "the cancelled job announced nothing");
    let r = cancel.call(CancelTraining_Request { job_id: 2 }, Duration::from_secs(10)).await.unwrap();
    assert!(!r.cancelled && r.message.contains("done already"), "{}", r.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_dds_client_is_answered_in_its_mapping() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s).to_str().unwrap().to_string();
    let domain = fresh_domain();
    let node = trainer(domain, &p("jobs"), &tmp.path().join("cache"));
    node.wait_for("jobs in", Duration::from_secs(60)).await;
    let call = |kind: &str, dataset: &str| {
        let mut c = Command::new(fastdds_peer());
        c.args(["train", kind, dataset]);
        loopback_env(&mut c, domain);
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    };
    let out = tokio::task::block_in_place(|| call("dance", &p("")));
    assert!(out.contains("REFUSED unknown kind 'dance': the known kinds are world"), "{out}");
    std::fs::create_dir(p("empty")).unwrap();
    let out = tokio::task::block_in_place(|| call("world", &p("empty")));
    assert!(out.contains("ACCEPTED 1 job 1 queued"), "{out}");
    assert!(!out.contains("UNMATCHED"), "{out}");
    node.wait_for("job 1 failed", Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_jobs_runs_jobs_side_by_side() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s).to_str().unwrap().to_string();
    let (demos, base, cache) = fixture(tmp.path());
    // Not a number of jobs: refused by name.
    let mut c = Command::new(env!("CARGO_BIN_EXE_trainer_node"));
    c.args(["--ros-args", "-p", &format!("jobs_dir:={}", p("bad")), "-p", "max_jobs:=0"]);
    loopback_env(&mut c, fresh_domain());
    let (o, _) = common::finish(c, Duration::from_secs(30));
    assert!(!o.status.success() && text(&o).contains("parameter 'max_jobs'"), "{}", text(&o));

    let domain = fresh_domain();
    let _node = trainer_with(domain, &p("jobs"), &cache, &["max_jobs:=2"]);
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "operator", &RosArgs::default()).unwrap();
    let progress = node.create_subscription::<TrainProgress>("trainer/progress", Qos::reliable().depth(1000)).unwrap();
    let train = node.create_client::<Train>("trainer/train").unwrap();
    let cancel = node.create_client::<CancelTraining>("trainer/cancel").unwrap();
    let job = Train_Request {
        kind: "world".into(),
        datasets: vec![demos.clone()],
        base: base.clone(),
        steps: 100_000,
        args: ["--batch", "2"].map(String::from).to_vec(),
        ..Default::default()
    };
    for id in [1, 2] {
        let r = train.call(job.clone(), Duration::from_secs(60)).await.unwrap();
        assert!(r.accepted && r.job_id == id, "{}", r.message);
    }
    // Both train at once.
    progress_of(&progress, 1, |m| m.state == "running" && m.step > 0, "trained").await;
    progress_of(&progress, 2, |m| m.state == "running" && m.step > 0, "trained beside job 1").await;
    for id in [1, 2] {
        let r = cancel.call(CancelTraining_Request { job_id: id }, Duration::from_secs(10)).await.unwrap();
        assert!(r.cancelled, "{}", r.message);
        progress_of(&progress, id, |m| m.state == "cancelled", "was cancelled").await;
    }
}
