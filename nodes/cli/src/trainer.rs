//! trainer_node: runs training jobs asked for over ROS, one at a time by default.
//!
//! - `trainer/train` (sim2real_msgs/srv/Train) queues a job: the kind of
//!   model, its datasets, a base checkpoint to post-train, steps; the answer
//!   says at once whether it was queued and its id, or why not.
//!   `trainer/cancel` (sim2real_msgs/srv/CancelTraining) drops or stops one.
//! - With `auto_kind` set, every dataset the curator announces on
//!   `curator/dataset` (sim2real_msgs/DatasetReady) queues a job of that kind.
//! - Jobs run one at a time (parameter `max_jobs` for more side by side).
//! - A job is `s2r train KIND …` run as a child process (so that a job's
//!   crash is the job's, not the node's), its output in `<jobs_dir>/<id>/log.txt`
//!   and its progress read from the report it writes ([`crate::job_report`]).
//! - `trainer/progress` (sim2real_msgs/TrainProgress): each job's state,
//!   step, loss, held-out figure and time left; `trainer/models`
//!   (sim2real_msgs/ModelUpdate, transient local): each checkpoint a job
//!   finished, for deployed nodes to load. A failed or cancelled job
//!   announces no model.
//! - Every job's record is `<jobs_dir>/<id>/job.json`: a node stopped
//!   mid-job finds it there when started again and runs it on, from the
//!   checkpoint the job last wrote (every `s2r train` resumes its output).

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use s2r_runtime::component::{Component, NodeFuture};
use s2r_runtime::{info, warn, Context, Node, Qos, RosArgs};
use serde::{Deserialize, Serialize};
use sim2real_msgs::builtin_interfaces::msg::Time;
use sim2real_msgs::sim2real_msgs::msg::{DatasetReady, ModelUpdate, TrainProgress};
use sim2real_msgs::sim2real_msgs::srv::{CancelTraining, CancelTraining_Response, Train, Train_Request, Train_Response};

use crate::job_report::{self, Event};

/// `trainer_node`, for `s2r run` and launch files.
pub const TRAINER_NODE: Component = Component {
    exec: "trainer_node",
    about: "runs training jobs asked for over ROS (trainer/train) or by the curator's datasets; publishes progress and new models",
    main: trainer_node,
    graceful: false,
};

/// The kinds of model a job can train, as `s2r train` names them.
pub const KINDS: [&str; 5] = ["world", "perception", "policy", "reason", "tokenizer"];

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting for the jobs before it.
    Queued,
    /// Its `s2r train` runs.
    Running,
    /// Ended well; its model was announced.
    Done,
    /// Ended badly; `message` says why.
    Failed,
    /// Dropped or stopped on request.
    Cancelled,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
        }
    }
}

/// One job, as `job.json` keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    /// Its number, from 1.
    pub id: u64,
    /// What it trains.
    pub kind: String,
    /// Its data.
    pub datasets: Vec<String>,
    /// The checkpoint it post-trains ("" for none).
    pub base: String,
    /// The checkpoint it writes.
    pub output: String,
    /// `s2r train KIND`'s arguments after the kind.
    pub command: Vec<String>,
    /// Where it is.
    pub state: State,
    /// Why it failed, where its model is, …
    pub message: String,
    /// The name of its held-out figure (as its command reports it).
    pub metric: String,
    /// Whether larger values of `metric` are better.
    pub higher_is_better: bool,
    /// The metric's last value.
    pub value: Option<f64>,
    /// The last step reported.
    pub step: u64,
    /// The step it ends at (0 when not known).
    pub steps: u64,
    /// The last loss reported.
    pub loss: Option<f64>,
}

fn err_response(message: String) -> Train_Response {
    Train_Response { accepted: false, job_id: 0, message }
}

/// The step a perception or policy checkpoint has reached (they resume their output).
fn checkpoint_step(kind: &str, path: &Path) -> Result<u64, String> {
    let step = match kind {
        "perception" => s2r_perception::checkpoint::read(path).map(|l| l.meta.step).map_err(|e| e.to_string())?,
        "policy" => s2r_policy::checkpoint::read(path).map(|l| l.meta.step).map_err(|e| e.to_string())?,
        _ => 0,
    };
    Ok(step as u64)
}

/// The arguments of `s2r train` for a request, the output filled in. Checks
/// what can be checked before the job runs: the kind, the datasets, the base.
pub fn command_of(req: &Train_Request, output: &Path) -> Result<Vec<String>, String> {
    let kind = req.kind.as_str();
    if !KINDS.contains(&kind) {
        return Err(format!("unknown kind '{kind}': the known kinds are {}", KINDS.join(", ")));
    }
    if req.datasets.is_empty() && kind != "reason" {
        return Err(format!("a {kind} job needs datasets"));
    }
    for d in &req.datasets {
        if !Path::new(d).exists() {
            return Err(format!("dataset {d}: no such file or folder"));
        }
    }
    if !req.base.is_empty() && !Path::new(&req.base).is_file() {
        return Err(format!("base {}: no such checkpoint", req.base));
    }
    let out = output.display().to_string();
    let mut cmd = vec!["train".to_string(), kind.to_string()];
    if kind == "reason" {
        // Its braking trials come from the simulator; datasets train the surface classifier.
        cmd.extend(["-o".into(), out]);
        if !req.datasets.is_empty() {
            cmd.push("--surface".into());
            cmd.extend(req.datasets.iter().cloned());
        }
    } else {
        cmd.extend(req.datasets.iter().cloned());
        cmd.extend(["-o".into(), out]);
    }
    // How each starts from a base. Perception and policy resume their output: the base is
    // copied there when the job starts, and the steps asked for count on from the base's.
    let mut from = 0;
    if !req.base.is_empty() {
        match kind {
            "world" => cmd.extend(["--base".into(), req.base.clone()]),
            "reason" => cmd.extend(["--from".into(), req.base.clone()]),
            "tokenizer" => return Err("a tokenizer job trains from scratch (or resumes its own output): it takes no base".into()),
            _ => from = checkpoint_step(kind, Path::new(&req.base)).map_err(|e| format!("base: {e}"))?,
        }
    }
    if req.steps > 0 {
        let flag = if kind == "reason" { "--surface-steps" } else { "--steps" };
        cmd.extend([flag.into(), (from + req.steps as u64).to_string()]);
    }
    cmd.extend(req.args.iter().cloned());
    Ok(cmd)
}

/// The running job's process; killed when dropped (the node stopping stops it).
struct Running {
    id: u64,
    child: Child,
    report: PathBuf,
    read: u64,
    started: Option<(Instant, u64)>,
    rate: Option<f64>,
    /// Seconds to its end at the current rate.
    eta: Option<f64>,
    /// When its progress last went out.
    published: Instant,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The jobs and their queue.
pub struct Jobs {
    dir: PathBuf,
    jobs: BTreeMap<u64, Job>,
    queue: VecDeque<u64>,
    cancel: Vec<u64>,
    changed: Vec<u64>,
}

impl Jobs {
    /// The jobs recorded in `dir` (made when missing); those queued or
    /// running when the node stopped are queued again, in order.
    pub fn open(dir: &Path) -> Result<Jobs, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let dir = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut jobs = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?.flatten() {
            let file = entry.path().join("job.json");
            let Ok(text) = std::fs::read_to_string(&file) else { continue };
            match serde_json::from_str::<Job>(&text) {
                Ok(j) => {
                    jobs.insert(j.id, j);
                }
                Err(e) => eprintln!("warning: {}: {e}; job left out", file.display()),
            }
        }
        let queue: VecDeque<u64> = jobs.values().filter(|j| matches!(j.state, State::Queued | State::Running)).map(|j| j.id).collect();
        for id in &queue {
            jobs.get_mut(id).expect("queued jobs exist").state = State::Queued;
        }
        Ok(Jobs { dir, jobs, queue, cancel: Vec::new(), changed: Vec::new() })
    }

    /// The jobs queued again at start.
    pub fn queued(&self) -> Vec<u64> {
        self.queue.iter().copied().collect()
    }

    fn folder(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:04}"))
    }

    fn save(&mut self, id: u64) {
        let job = &self.jobs[&id];
        let dir = self.folder(id);
        let write = std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::write(dir.join("job.json.tmp"), serde_json::to_vec_pretty(job).expect("jobs serialize")))
            .and_then(|_| std::fs::rename(dir.join("job.json.tmp"), dir.join("job.json")));
        if let Err(e) = write {
            eprintln!("warning: {}: {e}", dir.join("job.json").display());
        }
        self.changed.push(id);
    }

    /// Queues the job `req` asks for, or says why not.
    pub fn submit(&mut self, req: &Train_Request) -> Train_Response {
        let id = self.jobs.keys().next_back().copied().unwrap_or(0) + 1;
        let ext = if req.kind == "reason" { "json" } else { "safetensors" };
        let output = if req.output.is_empty() {
            self.folder(id).join(format!("{}.{ext}", req.kind))
        } else {
            std::path::absolute(&req.output).unwrap_or_else(|_| PathBuf::from(&req.output))
        };
        let command = match command_of(req, &output) {
            Ok(c) => c,
            Err(e) => return err_response(e),
        };
        let job = Job {
            id,
            kind: req.kind.clone(),
            datasets: req.datasets.clone(),
            base: req.base.clone(),
            output: output.display().to_string(),
            command,
            state: State::Queued,
            message: String::new(),
            metric: String::new(),
            higher_is_better: true,
            value: None,
            step: 0,
            steps: 0,
            loss: None,
        };
        self.jobs.insert(id, job);
        self.queue.push_back(id);
        self.save(id);
        let ahead = self.queue.len() - 1 + self.jobs.values().filter(|j| j.state == State::Running).count();
        Train_Response { accepted: true, job_id: id, message: format!("job {id} queued ({ahead} ahead); it writes {}", output.display()) }
    }

    /// Drops a queued job or marks a running one to be stopped.
    pub fn cancel(&mut self, id: u64) -> CancelTraining_Response {
        let Some(job) = self.jobs.get_mut(&id) else {
            return CancelTraining_Response { cancelled: false, message: format!("no job {id}") };
        };
        match job.state {
            State::Queued => {
                job.state = State::Cancelled;
                job.message = "cancelled before it started".into();
                self.queue.retain(|q| *q != id);
                self.save(id);
                CancelTraining_Response { cancelled: true, message: format!("job {id} dropped from the queue") }
            }
            State::Running => {
                self.cancel.push(id);
                CancelTraining_Response { cancelled: true, message: format!("job {id} is being stopped") }
            }
            s => CancelTraining_Response { cancelled: false, message: format!("job {id} is {} already", s.as_str()) },
        }
    }

    fn progress(&self, id: u64, eta: Option<f64>, stamp: Time) -> TrainProgress {
        let j = &self.jobs[&id];
        TrainProgress {
            stamp,
            job_id: id,
            kind: j.kind.clone(),
            state: j.state.as_str().into(),
            step: j.step,
            steps: j.steps,
            loss: j.loss.unwrap_or(f64::NAN),
            metric: j.metric.clone(),
            value: j.value.unwrap_or(f64::NAN),
            eta_s: eta.unwrap_or(f64::NAN),
            message: j.message.clone(),
        }
    }
}

/// The `s2r` program: this one when it is `s2r`, else `s2r` beside it, else on PATH.
fn s2r_program() -> PathBuf {
    let me = std::env::current_exe().ok();
    if let Some(me) = &me {
        if me.file_stem().and_then(|s| s.to_str()) == Some("s2r") {
            return me.clone();
        }
        let beside = me.with_file_name("s2r");
        if beside.is_file() {
            return beside;
        }
    }
    PathBuf::from("s2r")
}

/// The last line of a job's log that says what went wrong.
fn failure_reason(log: &Path, status: std::process::ExitStatus) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().flat_map(|l| l.split('\r')).map(str::trim).filter(|l| !l.is_empty()).collect();
    let line = lines.iter().rev().find(|l| l.starts_with("error")).or(lines.last()).copied().unwrap_or("");
    format!("{status}: {line}")
}

fn start(jobs: &mut Jobs, id: u64, program: &Path) -> Result<Running, String> {
    let dir = jobs.folder(id);
    let job = jobs.jobs.get_mut(&id).expect("queued jobs exist");
    // A base for a kind that resumes its output goes there first (once: a restarted job resumes its own).
    if !job.base.is_empty() && matches!(job.kind.as_str(), "perception" | "policy") && !Path::new(&job.output).exists() {
        std::fs::copy(&job.base, &job.output).map_err(|e| format!("copying base {} to {}: {e}", job.base, job.output))?;
    }
    let mut command = job.command.clone();
    if job.kind == "tokenizer" && Path::new(&job.output).exists() {
        command.push("--resume".into());
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("log.txt")).map_err(|e| format!("log.txt: {e}"))?;
    let report = dir.join("report.jsonl");
    let read = std::fs::metadata(&report).map(|m| m.len()).unwrap_or(0);
    let mut cmd = Command::new(program);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl only sets this process's parent-death signal; it touches no memory and is
        // async-signal-safe, as a pre_exec hook must be.
        unsafe {
            cmd.pre_exec(|| {
                // The job ends with the node, even when the node is killed outright.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    let child = cmd
        .args(&command)
        .env(job_report::ENV, &report)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", program.display()))?;
    job.state = State::Running;
    job.message = format!("{} {}", program.display(), command.join(" "));
    jobs.save(id);
    Ok(Running { id, child, report, read, started: None, rate: None, eta: None, published: Instant::now() })
}

/// Reads the running job's new report lines into its record; whether any came.
fn follow(jobs: &mut Jobs, run: &mut Running) -> bool {
    let (events, at) = job_report::read_from(&run.report, run.read);
    run.read = at;
    let job = jobs.jobs.get_mut(&run.id).expect("running jobs exist");
    for e in &events {
        match e {
            Event::Start { steps, metric, higher_is_better } => {
                job.steps = *steps;
                job.metric = metric.clone();
                job.higher_is_better = *higher_is_better;
            }
            Event::Step { step, loss } => {
                job.step = *step;
                job.loss = Some(*loss);
                match run.started {
                    None => run.started = Some((Instant::now(), *step)),
                    Some((t, s)) if *step > s => run.rate = Some((*step - s) as f64 / t.elapsed().as_secs_f64().max(1e-3)),
                    _ => {}
                }
            }
            Event::HeldOut { step, value } => {
                job.step = job.step.max(*step);
                job.value = Some(*value);
            }
        }
    }
    !events.is_empty()
}

fn trainer_node(ctx: Context, args: RosArgs) -> NodeFuture {
    Box::pin(async move {
        let node = Node::new(&ctx, "trainer_node", &args)?;
        let log = node.logger().clone();
        let dir: String = node.declare_parameter("jobs_dir", "trainer_jobs".to_string())?;
        let auto_kind: String = node.declare_parameter("auto_kind", String::new())?;
        let auto_base: String = node.declare_parameter("auto_base", String::new())?;
        let auto_steps: i64 = node.declare_parameter("auto_steps", 0)?;
        let auto_args: String = node.declare_parameter("auto_args", String::new())?;
        let program: String = node.declare_parameter("s2r", String::new())?;
        // Jobs run side by side (one on a 2-core machine; more where a GPU or many cores can take them).
        let max_jobs: i64 = node.declare_parameter("max_jobs", 1)?;
        if max_jobs < 1 {
            return Err(format!("parameter 'max_jobs': {max_jobs}; at least 1 job must be able to run").into());
        }
        let max_jobs = max_jobs as usize;
        let program = if program.is_empty() { s2r_program() } else { PathBuf::from(program) };
        if !auto_kind.is_empty() && !KINDS.contains(&auto_kind.as_str()) {
            return Err(format!("parameter 'auto_kind': unknown kind '{auto_kind}': the known kinds are {}", KINDS.join(", ")).into());
        }
        let jobs = Jobs::open(Path::new(&dir)).map_err(|e| format!("parameter 'jobs_dir': {e}"))?;
        let requeued = jobs.queued();
        if !requeued.is_empty() {
            info!(log, "jobs {requeued:?} were queued or running when the node last stopped: queued again (they resume their checkpoints)");
        }
        let jobs = Arc::new(Mutex::new(jobs));
        let progress = node.create_publisher::<TrainProgress>("trainer/progress", Qos::reliable().depth(100))?;
        let models = node.create_publisher::<ModelUpdate>("trainer/models", Qos::transient_local().depth(10))?;
        let datasets = node.create_subscription::<DatasetReady>("curator/dataset", Qos::transient_local().depth(10))?;
        let j = jobs.clone();
        let l = log.clone();
        let _train = node.create_service::<Train, _>("trainer/train", move |req| {
            let r = j.lock().unwrap().submit(&req);
            match r.accepted {
                true => info!(l, "{} job {}: {}", req.kind, r.job_id, req.datasets.join(" ")),
                false => warn!(l, "refused a {} job: {}", req.kind, r.message),
            }
            r
        })?;
        let j = jobs.clone();
        let _cancel = node.create_service::<CancelTraining, _>("trainer/cancel", move |req| j.lock().unwrap().cancel(req.job_id))?;
        info!(
            log,
            "jobs in {}, trained by {}; auto: {}",
            jobs.lock().unwrap().dir.display(),
            program.display(),
            if auto_kind.is_empty() { "off" } else { &auto_kind }
        );

        let mut running: Vec<Running> = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            while let Some(d) = datasets.try_recv() {
                if auto_kind.is_empty() {
                    continue;
                }
                let req = Train_Request {
                    kind: auto_kind.clone(),
                    datasets: vec![d.path.clone()],
                    base: auto_base.clone(),
                    steps: auto_steps.clamp(0, u32::MAX as i64) as u32,
                    output: String::new(),
                    args: auto_args.split_whitespace().map(String::from).collect(),
                };
                let r = jobs.lock().unwrap().submit(&req);
                match r.accepted {
                    true => info!(log, "dataset {} ({} clips): {auto_kind} job {}", d.path, d.clips, r.job_id),
                    false => warn!(log, "dataset {}: no job: {}", d.path, r.message),
                }
            }
            let mut j = jobs.lock().unwrap();
            let mut ended = Vec::new();
            for run in running.iter_mut() {
                let fresh = follow(&mut j, run);
                let job = &j.jobs[&run.id];
                run.eta = run.rate.filter(|_| job.steps > job.step).map(|r| (job.steps - job.step) as f64 / r);
                if fresh && run.published.elapsed() > Duration::from_millis(500) {
                    progress.publish_or_log(j.progress(run.id, run.eta, node.now().to_msg()), &log);
                    run.published = Instant::now();
                }
                let id = run.id;
                if j.cancel.contains(&id) {
                    j.cancel.retain(|c| *c != id);
                    ended.push(id); // killed on drop
                    let job = j.jobs.get_mut(&id).unwrap();
                    job.state = State::Cancelled;
                    job.message = format!("stopped at step {}; its checkpoint so far is {}", job.step, job.output);
                    j.save(id);
                    info!(log, "job {id} cancelled");
                    continue;
                }
                match run.child.try_wait() {
                    Ok(None) => {}
                    Ok(Some(status)) => {
                        follow(&mut j, run);
                        let folder = j.folder(id);
                        let job = j.jobs.get_mut(&id).unwrap();
                        if status.success() && Path::new(&job.output).exists() {
                            job.state = State::Done;
                            job.message = format!("wrote {}", job.output);
                            let update = ModelUpdate {
                                stamp: node.now().to_msg(),
                                job_id: id,
                                kind: job.kind.clone(),
                                path: job.output.clone(),
                                parent: job.base.clone(),
                                datasets: job.datasets.clone(),
                                metric: job.metric.clone(),
                                value: job.value.unwrap_or(f64::NAN),
                                higher_is_better: job.higher_is_better,
                            };
                            info!(log, "job {id} done: {} ({} {:.4})", job.output, job.metric, update.value);
                            models.publish_or_log(update, &log);
                        } else {
                            job.state = State::Failed;
                            job.message = failure_reason(&folder.join("log.txt"), status);
                            warn!(log, "job {id} failed: {}", job.message);
                        }
                        j.save(id);
                        ended.push(id);
                    }
                    Err(e) => warn!(log, "job {id}: {e}"),
                }
            }
            running.retain(|r| !ended.contains(&r.id));
            while running.len() < max_jobs {
                let Some(id) = j.queue.pop_front() else { break };
                match start(&mut j, id, &program) {
                    Ok(r) => {
                        info!(log, "job {id} runs: {}", j.jobs[&id].message);
                        running.push(r);
                    }
                    Err(e) => {
                        let job = j.jobs.get_mut(&id).unwrap();
                        job.state = State::Failed;
                        job.message = e;
                        warn!(log, "job {id} failed to start: {}", job.message);
                        j.save(id);
                    }
                }
            }
            let mut changed: Vec<u64> = std::mem::take(&mut j.changed);
            changed.sort_unstable();
            changed.dedup();
            for id in changed {
                let eta = running.iter().find(|r| r.id == id).and_then(|r| r.eta);
                progress.publish_or_log(j.progress(id, eta, node.now().to_msg()), &log);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(kind: &str, datasets: &[&str]) -> Train_Request {
        Train_Request { kind: kind.into(), datasets: datasets.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    #[test]
    fn requests_become_commands_or_are_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().to_str().unwrap();
        let out = Path::new("/o/m.safetensors");
        let e = command_of(&req("dance", &[data]), out).unwrap_err();
        assert!(e.contains("unknown kind 'dance'") && e.contains("world, perception, policy, reason, tokenizer"), "{e}");
        let e = command_of(&req("world", &["/no/such/data"]), out).unwrap_err();
        assert!(e.contains("/no/such/data"), "{e}");
        assert!(command_of(&req("world", &[]), out).unwrap_err().contains("needs datasets"));
        let mut r = req("world", &[data]);
        r.steps = 5;
        r.args = vec!["--dim".into(), "32".into()];
        assert_eq!(command_of(&r, out).unwrap(), ["train", "world", data, "-o", "/o/m.safetensors", "--steps", "5", "--dim", "32"]);
        r.base = "/no/base.safetensors".into();
        assert!(command_of(&r, out).unwrap_err().contains("base /no/base.safetensors"));
        let mut t = req("tokenizer", &[data]);
        t.base = tmp.path().join("x").to_str().unwrap().into();
        std::fs::write(&t.base, b"x").unwrap();
        assert!(command_of(&t, out).unwrap_err().contains("takes no base"));
        let r = req("reason", &[]);
        assert_eq!(command_of(&r, Path::new("/o/r.json")).unwrap(), ["train", "reason", "-o", "/o/r.json"]);
    }

    #[test]
    fn jobs_are_recorded_and_queued_again_after_a_restart() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().to_str().unwrap().to_string();
        let dir = tmp.path().join("jobs");
        let mut jobs = Jobs::open(&dir).unwrap();
        let a = jobs.submit(&req("world", &[&data]));
        let b = jobs.submit(&req("world", &[&data]));
        assert!(a.accepted && b.accepted && (a.job_id, b.job_id) == (1, 2), "{} {}", a.message, b.message);
        assert!(!jobs.submit(&req("dance", &[&data])).accepted);
        assert!(jobs.cancel(2).cancelled);
        assert!(!jobs.cancel(2).cancelled, "cancelled already");
        assert!(!jobs.cancel(7).cancelled);
        let again = Jobs::open(&dir).unwrap();
        assert_eq!(again.queued(), vec![1], "job 1 waits again; job 2 was cancelled");
        assert_eq!(again.jobs[&1].output, dir.canonicalize().unwrap().join("0001/world.safetensors").display().to_string());
        let c = Jobs::open(&dir).unwrap().submit(&req("world", &[&data]));
        assert_eq!(c.job_id, 3, "numbers go on after the recorded jobs");
    }
}
