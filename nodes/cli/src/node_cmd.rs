//! `s2r node list | info`, like `ros2 node`.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use s2r_runtime::graph::{EndpointKind, NodeWatcher, RosName};

use crate::discovery::{absolute, session, settle};

#[derive(Subcommand)]
pub enum NodeCmd {
    /// List the nodes in the graph.
    List {
        /// Include hidden nodes (names starting with '_').
        #[arg(short, long)]
        all: bool,
        /// Print only the number of nodes.
        #[arg(short = 'c', long)]
        count_nodes: bool,
    },
    /// The publishers, subscriptions and services of a node.
    Info {
        /// Fully qualified node name, e.g. /talker.
        node: String,
    },
}

pub async fn run(cmd: NodeCmd) -> Result<()> {
    let s = session("node")?;
    let watcher = NodeWatcher::start(&s.ctx).map_err(|e| anyhow!(e))?;
    settle(&s.ctx, Duration::from_millis(1500), Duration::from_secs(5)).await;
    let nodes = watcher.nodes();
    match cmd {
        NodeCmd::List { all, count_nodes } => {
            let names: BTreeSet<String> =
                nodes.iter().filter(|n| all || !n.name.starts_with('_')).map(|n| n.fully_qualified_name()).collect();
            if count_nodes {
                println!("{}", names.len());
            } else {
                for n in names {
                    println!("{n}");
                }
            }
        }
        NodeCmd::Info { node } => {
            let wanted = absolute(&node);
            let Some(info) = nodes.iter().find(|n| n.fully_qualified_name() == wanted) else {
                bail!("unable to find node '{wanted}' (`s2r node list` shows the nodes)");
            };
            let eps = s.ctx.endpoints();
            let mut subs = BTreeSet::new();
            let mut pubs = BTreeSet::new();
            let mut servers = BTreeSet::new();
            let mut clients = BTreeSet::new();
            for e in &eps {
                let mine_r = e.kind == EndpointKind::Subscription && info.readers.contains(&e.gid);
                let mine_w = e.kind == EndpointKind::Publisher && info.writers.contains(&e.gid);
                if !(mine_r || mine_w) {
                    continue;
                }
                let entry = |n: &str| format!("{n}: {}", e.type_name);
                match (&e.name, mine_r) {
                    (RosName::Topic(t), true) => subs.insert(entry(t)),
                    (RosName::Topic(t), false) => pubs.insert(entry(t)),
                    (RosName::ServiceRequest(sv), true) => servers.insert(entry(sv)),
                    (RosName::ServiceRequest(sv), false) => clients.insert(entry(sv)),
                    (RosName::ServiceReply(_), _) => false,
                };
            }
            println!("{wanted}");
            for (label, set) in [
                ("Subscribers", &subs),
                ("Publishers", &pubs),
                ("Service Servers", &servers),
                ("Service Clients", &clients),
                ("Action Servers", &BTreeSet::new()),
                ("Action Clients", &BTreeSet::new()),
            ] {
                println!("  {label}:");
                for item in set.iter() {
                    println!("    {item}");
                }
            }
        }
    }
    Ok(())
}
