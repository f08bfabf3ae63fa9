//! Runs a plan: each node its own process (output prefixed with its name, as
//! `ros2 launch` does), or all of sim2real's nodes in this one process sharing
//! one DDS participant and handing each other messages without copies.
//! Respawn after `respawn_delay`; `on_exit: shutdown` ends the launch (with the
//! node's exit code when it failed); SIGINT/SIGTERM stop every node (SIGINT,
//! then SIGTERM after 5 s, then SIGKILL after 5 s more).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use s2r_runtime::component::Component;
use s2r_runtime::{Context, RosArgs};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, watch};

use crate::plan::{LaunchError, LaunchPlan, NodePlan, Output};
use crate::subst::Package;

/// How a node is started.
#[derive(Clone)]
pub enum Target {
    /// One of this program's components.
    Component(&'static Component),
    /// `lib/<pkg>/<exec>` under the package's install prefix.
    Executable(PathBuf),
}

/// How [`run`] starts the nodes.
pub struct RunOptions {
    /// All of sim2real's nodes in this process, sharing one DDS participant;
    /// other executables still run as processes.
    pub compose: bool,
    /// This program, which runs a component with `run <exec>`: how a
    /// component starts as its own process when not composed.
    pub self_exe: PathBuf,
    /// Made if missing; each process appends its output to `<exec>-<n>.log`
    /// there (`n` counts the nodes of one executable from 1).
    pub log_dir: PathBuf,
}

/// Finds each node's executable before anything starts: one [`Target`] per
/// node of the plan, in order.
///
/// A node of `own_package` (or of no package) is the component of
/// `components` named by its `exec`, when there is one; otherwise it is
/// `lib/<pkg>/<exec>` under the prefix `package` finds. Fails, with the
/// `node` action's file and line, for the first node that is neither.
pub fn resolve(
    plan: &LaunchPlan,
    components: &[&'static Component],
    own_package: &str,
    package: &dyn Fn(&str) -> Option<Package>,
) -> Result<Vec<Target>, LaunchError> {
    plan.nodes
        .iter()
        .map(|n| {
            let (file, line) = n.origin.rsplit_once(':').map(|(f, l)| (f.to_string(), l.parse().unwrap_or(0))).unwrap_or_default();
            let ours = n.pkg.is_empty() || n.pkg == own_package;
            if ours {
                if let Some(c) = components.iter().find(|c| c.exec == n.exec) {
                    return Ok(Target::Component(c));
                }
            }
            if let Some(found) = package(&n.pkg) {
                let p = found.prefix.join("lib").join(&n.pkg).join(&n.exec);
                if p.is_file() {
                    return Ok(Target::Executable(p));
                }
            }
            let known: Vec<&str> = components.iter().map(|c| c.exec).collect();
            Err(LaunchError {
                file: file.into(),
                line,
                key: "node.exec".into(),
                message: if ours {
                    format!("no executable '{}' in package '{own_package}' (it has: {})", n.exec, known.join(", "))
                } else {
                    format!(
                        "executable '{}' of package '{}' not found (is the package's install space in AMENT_PREFIX_PATH?)",
                        n.exec, n.pkg
                    )
                },
            })
        })
        .collect()
}

enum Event {
    /// A node that ends the launch has exited (with this code).
    Shutdown(i32),
}

/// Prints a launch message in `ros2 launch`'s style.
fn say(level: &str, who: &str, msg: &str) {
    eprintln!("[{level}] [{who}]: {msg}");
}

/// Why a launch could not start its nodes.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The log folder cannot be made.
    #[error("{}: {source}", .path.display())]
    LogDir {
        /// [`RunOptions::log_dir`].
        path: PathBuf,
        /// The error creating it.
        source: std::io::Error,
    },
    /// The shared DDS participant of a composed launch did not start.
    #[error(transparent)]
    Context(#[from] s2r_runtime::ContextError),
    /// The thread that starts the launch's processes did not start.
    #[error("starting the thread that starts processes: {source}")]
    Launcher {
        /// Why.
        source: std::io::Error,
    },
}

/// Runs the plan until every node is done, a node with `on_exit: shutdown`
/// ends, or SIGINT/SIGTERM. Returns the exit code of the launch.
///
/// `targets` are [`resolve`]'s for this plan. The code is 0 when every node
/// is done or on a signal, whatever their own codes; that of the
/// `on_exit: shutdown` node that ended (128 + the signal when one killed
/// it); 1 as soon as a node cannot be started at all. Needs a Tokio runtime
/// with I/O and time enabled (it spawns tasks, processes and signal
/// handlers).
pub async fn run(plan: &LaunchPlan, targets: Vec<Target>, opts: &RunOptions) -> Result<i32, ExecError> {
    for m in &plan.messages {
        say("INFO", "launch.user", m);
    }
    std::fs::create_dir_all(&opts.log_dir).map_err(|source| ExecError::LogDir { path: opts.log_dir.clone(), source })?;
    say("INFO", "launch", &format!("All log files can be found below {}", opts.log_dir.display()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<Event>();
    let ctx = if opts.compose && targets.iter().any(|t| matches!(t, Target::Component(_))) { Some(Context::from_env()?) } else { None };
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    let launcher = Launcher::start().map_err(|source| ExecError::Launcher { source })?;
    for (node, target) in plan.nodes.iter().zip(targets) {
        let n = counts.entry(node.exec.clone()).or_default();
        *n += 1;
        let label = format!("{}-{n}", node.exec);
        let stop = stop_rx.clone();
        let ev = ev_tx.clone();
        match (&target, &ctx) {
            (Target::Component(c), Some(ctx)) => {
                if !node.env.is_empty() {
                    say("WARN", &label, "env is not applied to a node composed into this process");
                }
                tasks.spawn(supervise_component(node.clone(), c, ctx.clone(), label, stop, ev));
            }
            _ => {
                let (program, mut argv) = match &target {
                    Target::Component(c) => (opts.self_exe.clone(), vec!["run".to_string(), c.exec.to_string()]),
                    Target::Executable(p) => (p.clone(), vec![]),
                };
                argv.extend(node.argv());
                let log = opts.log_dir.join(format!("{label}.log"));
                tasks.spawn(supervise_process(node.clone(), launcher.clone(), Process { program, argv }, label, log, stop, ev));
            }
        }
    }
    drop(ev_tx);
    let code = tokio::select! {
        _ = async { while tasks.join_next().await.is_some() {} } => 0,
        e = ev_rx.recv() => match e {
            Some(Event::Shutdown(code)) => code,
            None => 0,
        },
        _ = s2r_runtime::shutdown::signal() => {
            say("WARN", "launch", "signal received, stopping the nodes");
            0
        }
    };
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(code)
}

/// Waits for the stop signal, or forever when the sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn supervise_component(
    node: NodePlan,
    c: &'static Component,
    ctx: Context,
    label: String,
    mut stop: watch::Receiver<bool>,
    ev: mpsc::UnboundedSender<Event>,
) {
    let mut argv = vec![c.exec.to_string()];
    argv.extend(node.argv());
    loop {
        let args = match RosArgs::parse(argv.clone()) {
            Ok(a) => a,
            Err(e) => {
                say("ERROR", &label, &e.to_string());
                let _ = ev.send(Event::Shutdown(1));
                return;
            }
        };
        say("INFO", &label, &format!("composed into this process ({})", node.origin));
        let mut task = tokio::spawn((c.main)(ctx.clone(), args));
        let abort = task.abort_handle();
        let code = tokio::select! {
            r = &mut task => match r {
                Ok(Ok(())) => { say("INFO", &label, "node finished cleanly"); 0 }
                Ok(Err(e)) => { say("ERROR", &label, &format!("node failed: {e}")); 1 }
                Err(e) if e.is_panic() => { say("ERROR", &label, "node panicked"); 1 }
                Err(_) => 1,
            },
            _ = stopped(&mut stop) => {
                // A graceful node heard the signal too and finishes its work.
                if c.graceful && tokio::time::timeout(s2r_runtime::component::GRACE, &mut task).await.is_ok() {
                    return;
                }
                abort.abort();
                return;
            }
        };
        if node.shutdown_on_exit {
            let _ = ev.send(Event::Shutdown(code));
            return;
        }
        if !node.respawn || !respawn_wait(&node, &label, &mut stop).await {
            return;
        }
    }
}

/// Sleeps `respawn_delay`; false when the launch stops meanwhile.
async fn respawn_wait(node: &NodePlan, label: &str, stop: &mut watch::Receiver<bool>) -> bool {
    say("INFO", label, &format!("respawning in {:.1} s", node.respawn_delay));
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs_f64(node.respawn_delay)) => true,
        _ = stopped(stop) => false,
    }
}

fn open_log(path: &Path) -> Option<Arc<Mutex<std::fs::File>>> {
    std::fs::OpenOptions::new().create(true).append(true).open(path).ok().map(|f| Arc::new(Mutex::new(f)))
}

/// Copies a child's output, line by line, to the terminal (prefixed) and/or its log.
fn forward<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    r: R,
    label: String,
    to_screen: bool,
    stderr: bool,
    log: Option<Arc<Mutex<std::fs::File>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if to_screen {
                if stderr {
                    eprintln!("[{label}] {line}");
                } else {
                    println!("[{label}] {line}");
                }
            }
            if let Some(f) = &log {
                let _ = writeln!(f.lock().unwrap(), "{line}");
            }
        }
    })
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: sends a signal to a child we started.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

type SpawnRequest = (tokio::process::Command, tokio::sync::oneshot::Sender<std::io::Result<tokio::process::Child>>);

/// Starts a launch's processes from one thread of its own, which lives as
/// long as the launch. The parent-death signal fires when the *thread* that
/// forked a child ends, and tokio's threads come and go (a worker that ran
/// `block_in_place` retires to the blocking pool and ends when idle), so
/// children are never forked from them.
#[derive(Clone)]
struct Launcher(std::sync::mpsc::Sender<SpawnRequest>);

impl Launcher {
    /// The thread, bound to the current runtime (which waits for the children).
    fn start() -> std::io::Result<Launcher> {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnRequest>();
        let runtime = tokio::runtime::Handle::current();
        std::thread::Builder::new().name("s2r-launcher".into()).spawn(move || {
            let _entered = runtime.enter();
            for (mut cmd, reply) in rx {
                let _ = reply.send(cmd.spawn());
            }
        })?;
        Ok(Launcher(tx))
    }

    /// Starts `cmd` from the launcher's thread.
    async fn spawn(&self, cmd: tokio::process::Command) -> std::io::Result<tokio::process::Child> {
        let gone = || std::io::Error::other("the launcher thread is gone");
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.0.send((cmd, reply)).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// A program and its arguments.
struct Process {
    program: PathBuf,
    argv: Vec<String>,
}

async fn supervise_process(
    node: NodePlan,
    launcher: Launcher,
    process: Process,
    label: String,
    log_path: PathBuf,
    mut stop: watch::Receiver<bool>,
    ev: mpsc::UnboundedSender<Event>,
) {
    let Process { program, argv } = process;
    loop {
        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(&argv).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        for (k, v) in &node.env {
            cmd.env(k, v);
        }
        #[cfg(target_os = "linux")]
        {
            let launcher = std::process::id();
            // SAFETY: prctl, getppid and raise only set or read this process's own state; they
            // touch no memory and are async-signal-safe, as a pre_exec hook must be.
            unsafe {
                // A launch killed outright (SIGKILL) takes its nodes with it (SIGTERM: they end as
                // on Ctrl-C) instead of leaving them running, unseen, on the domain. A launch that
                // died between fork and prctl is caught by the parent check.
                cmd.pre_exec(move || {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                    if libc::getppid() as u32 != launcher {
                        libc::raise(libc::SIGTERM);
                    }
                    Ok(())
                });
            }
        }
        let mut child = match launcher.spawn(cmd).await {
            Ok(c) => c,
            Err(e) => {
                say("ERROR", &label, &format!("cannot start {}: {e}", program.display()));
                let _ = ev.send(Event::Shutdown(1));
                return;
            }
        };
        let pid = child.id().unwrap_or(0);
        say("INFO", &label, &format!("process started with pid [{pid}]"));
        let log = open_log(&log_path);
        let screen_out = node.output != Output::Log;
        let out = forward(child.stdout.take().unwrap(), label.clone(), screen_out, false, log.clone());
        let err = forward(child.stderr.take().unwrap(), label.clone(), true, true, log.clone());
        let status = tokio::select! {
            s = child.wait() => s,
            _ = stopped(&mut stop) => {
                // SIGINT, then SIGTERM, then SIGKILL, 5 s apart.
                signal(pid, libc::SIGINT);
                let s = match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
                    Ok(s) => s,
                    Err(_) => {
                        say("WARN", &label, "still running 5 s after SIGINT: SIGTERM");
                        signal(pid, libc::SIGTERM);
                        match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
                            Ok(s) => s,
                            Err(_) => {
                                say("ERROR", &label, "still running 5 s after SIGTERM: SIGKILL");
                                let _ = child.kill().await;
                                child.wait().await
                            }
                        }
                    }
                };
                let _ = (out.await, err.await);
                if let Ok(s) = s {
                    say("INFO", &label, &format!("process has finished [pid {pid}, {s}]"));
                }
                return;
            }
        };
        let _ = (out.await, err.await);
        let code = match &status {
            Ok(s) if s.success() => {
                say("INFO", &label, &format!("process has finished cleanly [pid {pid}]"));
                0
            }
            Ok(s) => {
                use std::os::unix::process::ExitStatusExt;
                let code = s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0));
                say(
                    "ERROR",
                    &label,
                    &format!("process has died [pid {pid}, exit code {code}, cmd '{} {}']", program.display(), argv.join(" ")),
                );
                code
            }
            Err(e) => {
                say("ERROR", &label, &format!("waiting for the process: {e}"));
                1
            }
        };
        if node.shutdown_on_exit {
            let _ = ev.send(Event::Shutdown(code));
            return;
        }
        if !node.respawn || !respawn_wait(&node, &label, &mut stop).await {
            return;
        }
    }
}
