//! What every graph command needs: a hidden node of its own, and a short wait
//! for discovery to settle (there is no daemon holding the graph for us).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use s2r_runtime::graph::Endpoint;
use s2r_runtime::{Context, Node, RosArgs};

/// `chatter` → `/chatter`: the CLI takes names relative to the root namespace.
pub fn absolute(name: &str) -> String {
    if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/{name}")
    }
}

pub struct Session {
    pub ctx: Context,
    pub node: Node,
}

/// Joins the graph (per ROS_DOMAIN_ID etc.) as a hidden node `_s2r_<verb>_<pid>`,
/// like the ros2 CLI's `_ros2cli_<pid>` nodes.
pub fn session(verb: &str) -> Result<Session> {
    let ctx = Context::from_env().context("joining the ROS graph")?;
    let args = RosArgs::parse(["s2r", "--ros-args", "--disable-rosout-logs"]).expect("fixed arguments");
    let node = Node::new(&ctx, &format!("_s2r_{verb}_{}", std::process::id()), &args)?;
    Ok(Session { ctx, node })
}

fn snapshot(ctx: &Context) -> BTreeSet<(String, [u8; 16])> {
    ctx.endpoints().into_iter().map(|e: Endpoint| (format!("{:?}", e.name), e.gid)).collect()
}

/// Waits until discovery has gone quiet: at least `min`, then until the set of
/// endpoints has not changed for half a second, at most `max`.
pub async fn settle(ctx: &Context, min: Duration, max: Duration) {
    let start = Instant::now();
    let mut last = snapshot(ctx);
    let mut stable_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = snapshot(ctx);
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
        let elapsed = start.elapsed();
        if elapsed >= max || (elapsed >= min && stable_since.elapsed() >= Duration::from_millis(500)) {
            return;
        }
    }
}

/// The publishers of `topic`: waits up to two seconds for discovery, then, if
/// there are none, says so and waits for the first one.
pub async fn await_publishers(ctx: &Context, topic: &str) -> Vec<Endpoint> {
    let pubs = publisher_types(ctx, topic, Some(Duration::from_secs(2))).await;
    if !pubs.is_empty() {
        return pubs;
    }
    eprintln!("WARNING: topic [{topic}] does not appear to be published yet");
    publisher_types(ctx, topic, None).await
}

/// The publishers of `topic`, waiting up to `max` for one to appear.
pub async fn publisher_types(ctx: &Context, topic: &str, max: Option<Duration>) -> Vec<Endpoint> {
    let start = Instant::now();
    loop {
        let pubs: Vec<Endpoint> = ctx
            .endpoints()
            .into_iter()
            .filter(|e| e.kind == s2r_runtime::graph::EndpointKind::Publisher && e.topic() == Some(topic))
            .collect();
        if !pubs.is_empty() || max.is_some_and(|m| start.elapsed() >= m) {
            return pubs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
