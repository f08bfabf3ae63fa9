//! Nodes as components: one `async` entry point per executable, run either as
//! its own process (`talker`, `ros2 run sim2real talker`) or beside other nodes
//! in one process (`s2r launch --compose`), where they share a [`Context`] and
//! hand each other messages without copies.

use std::future::Future;
use std::pin::Pin;

use crate::{Context, RosArgs};

/// Any error a node ends with; `Send` so that composed nodes can run on
/// tokio's worker threads.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// What [`Component::main`] returns: the node's whole life as one task.
pub type NodeFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

/// One executable's node logic.
pub struct Component {
    /// The executable name (`talker`), as `ros2 run sim2real <exec>` knows it.
    pub exec: &'static str,
    /// What the node does, one lower-case line for readers of the
    /// component list; the runtime itself never reads it.
    pub about: &'static str,
    /// Runs the node until it is done or dropped. The node takes its name,
    /// namespace, parameters and remaps from the arguments.
    pub main: fn(Context, RosArgs) -> NodeFuture,
    /// The node watches SIGINT/SIGTERM itself ([`crate::shutdown::signal`])
    /// and has work to finish when they come (writing a dataset): it is then
    /// left to end on its own instead of being dropped at the signal.
    pub graceful: bool,
}

/// How long a graceful node may take to finish after a shutdown, composed in a launch.
pub const GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// The `main` of a node executable: `--ros-args` from the command line, the
/// ROS environment, until the node ends or SIGINT/SIGTERM. Exits the process.
pub fn run_main(component: &Component) -> ! {
    let code = match run_blocking(component, std::env::args().collect()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("[FATAL] [{}]: {e}", component.exec);
            1
        }
    };
    std::process::exit(code)
}

/// Runs a component on a tokio runtime of its own (2 worker threads) with
/// the given command line, program name first, and the ROS environment;
/// like [`run_main`] but returns the node's error instead of exiting.
pub fn run_blocking(component: &Component, argv: Vec<String>) -> Result<(), BoxError> {
    let args = RosArgs::parse(argv)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async move {
        let ctx = Context::from_env()?;
        if component.graceful {
            return (component.main)(ctx, args).await;
        }
        tokio::select! {
            r = (component.main)(ctx, args) => r,
            _ = crate::shutdown::signal() => Ok(()),
        }
    })
}
