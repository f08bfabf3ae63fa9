//! `s2r topic list | info | echo | pub | hz | bw`, like `ros2 topic`.

use std::collections::VecDeque;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Subcommand, ValueEnum};
use s2r_idl::dynamic::{self, EchoOptions, Value};
use s2r_idl::TypeName;
use s2r_runtime::graph::{Endpoint, EndpointKind, NodeWatcher};
use s2r_runtime::{Durability, Qos, Reliability, Serialized};

use crate::discovery::{absolute, await_publishers, publisher_types, session, settle};

#[derive(Subcommand)]
pub enum TopicCmd {
    /// List the topics in the graph.
    List {
        /// Also print each topic's type.
        #[arg(short = 't', long)]
        show_types: bool,
        /// Print only the number of topics.
        #[arg(short = 'c', long)]
        count_topics: bool,
        /// Include topics whose names have a token starting with '_'.
        #[arg(long)]
        include_hidden_topics: bool,
    },
    /// Type, publishers and subscriptions of a topic.
    Info {
        topic: String,
        /// Also list each endpoint with its node, GID and QoS.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Print the messages of a topic as YAML.
    Echo(EchoArgs),
    /// Publish a message given as a YAML literal.
    Pub(PubArgs),
    /// Print the rate at which a topic is published.
    Hz {
        topic: String,
        /// Number of recent messages the statistics cover.
        #[arg(short, long, default_value_t = 10000)]
        window: usize,
    },
    /// Print the bandwidth a topic uses.
    Bw {
        topic: String,
        /// Number of recent messages the statistics cover.
        #[arg(short, long, default_value_t = 100)]
        window: usize,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ReliabilityArg {
    Reliable,
    BestEffort,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DurabilityArg {
    Volatile,
    TransientLocal,
}

#[derive(Args)]
pub struct EchoArgs {
    topic: String,
    /// Message type (pkg/msg/Type); found from the publishers when left out.
    type_name: Option<String>,
    /// Print one message and exit.
    #[arg(long)]
    once: bool,
    /// Print only this field (dotted path, e.g. header.stamp).
    #[arg(long)]
    field: Option<String>,
    /// Arrays and strings longer than this are cut (0: never).
    #[arg(long = "truncate-length", short = 'l', default_value_t = 128)]
    truncate_length: usize,
    /// Print array lengths instead of their contents.
    #[arg(long)]
    no_arr: bool,
    /// Print string lengths instead of their contents.
    #[arg(long)]
    no_str: bool,
    #[arg(long, value_enum)]
    qos_reliability: Option<ReliabilityArg>,
    #[arg(long, value_enum)]
    qos_durability: Option<DurabilityArg>,
    /// Give up after this many seconds without a message (default: wait forever).
    #[arg(long)]
    timeout: Option<f64>,
}

#[derive(Args)]
pub struct PubArgs {
    topic: String,
    /// Message type (pkg/msg/Type).
    type_name: String,
    /// The message as a YAML literal, e.g. "{data: hello}"; missing fields keep their defaults.
    #[arg(default_value = "{}")]
    values: String,
    /// Publishing rate in Hz.
    #[arg(short, long, default_value_t = 1.0)]
    rate: f64,
    /// Publish this many messages, then exit (0: until interrupted).
    #[arg(short, long, default_value_t = 0)]
    times: u64,
    /// Publish one message, then exit.
    #[arg(short = '1', long)]
    once: bool,
    /// Wait for this many matching subscriptions first (default: 1 with --once or --times, else 0).
    #[arg(short = 'w', long = "wait-matching-subscriptions")]
    wait_matching_subscriptions: Option<usize>,
    #[arg(long, value_enum, default_value = "reliable")]
    qos_reliability: ReliabilityArg,
    #[arg(long, value_enum, default_value = "volatile")]
    qos_durability: DurabilityArg,
    #[arg(long, default_value_t = 10)]
    qos_depth: usize,
    /// Seconds to keep the publisher alive after the last message.
    #[arg(long, default_value_t = 0.5)]
    keep_alive: f64,
    /// Print every Nth published message (0: none).
    #[arg(short, long, default_value_t = 1)]
    print: u64,
}

pub async fn run(cmd: TopicCmd) -> Result<()> {
    match cmd {
        TopicCmd::List { show_types, count_topics, include_hidden_topics } => list(show_types, count_topics, include_hidden_topics).await,
        TopicCmd::Info { topic, verbose } => info(&absolute(&topic), verbose).await,
        TopicCmd::Echo(a) => echo(a).await,
        TopicCmd::Pub(a) => publish(a).await,
        TopicCmd::Hz { topic, window } => hz(&absolute(&topic), window).await,
        TopicCmd::Bw { topic, window } => bw(&absolute(&topic), window).await,
    }
}

fn is_hidden(name: &str) -> bool {
    name.split('/').any(|t| t.starts_with('_'))
}

async fn list(show_types: bool, count: bool, hidden: bool) -> Result<()> {
    let s = session("topic")?;
    settle(&s.ctx, Duration::from_secs(1), Duration::from_secs(5)).await;
    let topics: Vec<(String, Vec<String>)> = s
        .ctx
        .topic_names_and_types()
        .into_iter()
        .filter(|(t, _)| hidden || !is_hidden(t))
        .map(|(t, types)| (t, types.into_iter().collect()))
        .collect();
    let mut out = std::io::stdout().lock();
    if count {
        writeln!(out, "{}", topics.len())?;
        return Ok(());
    }
    for (t, types) in topics {
        if show_types {
            writeln!(out, "{t} [{}]", types.join(", "))?;
        } else {
            writeln!(out, "{t}")?;
        }
    }
    Ok(())
}

fn gid_text(gid: &[u8; 16]) -> String {
    gid.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(".")
}

async fn info(topic: &str, verbose: bool) -> Result<()> {
    let s = session("topic")?;
    let watcher = NodeWatcher::start(&s.ctx).map_err(|e| anyhow!(e))?;
    settle(&s.ctx, Duration::from_secs(1), Duration::from_secs(5)).await;
    let eps: Vec<Endpoint> = s.ctx.endpoints().into_iter().filter(|e| e.topic() == Some(topic)).collect();
    if eps.is_empty() {
        bail!("unknown topic '{topic}'");
    }
    let mut types: Vec<&str> = eps.iter().map(|e| e.type_name.as_str()).collect();
    types.sort();
    types.dedup();
    let pubs: Vec<&Endpoint> = eps.iter().filter(|e| e.kind == EndpointKind::Publisher).collect();
    let subs: Vec<&Endpoint> = eps.iter().filter(|e| e.kind == EndpointKind::Subscription).collect();
    println!("Type: {}", types.join("; "));
    if !verbose {
        println!("Publisher count: {}", pubs.len());
        println!("Subscription count: {}", subs.len());
        return Ok(());
    }
    let nodes = watcher.nodes();
    let owner = |gid: &[u8; 16]| {
        nodes
            .iter()
            .find(|n| n.writers.contains(gid) || n.readers.contains(gid))
            .map(|n| (n.name.clone(), n.namespace.clone()))
            .unwrap_or_else(|| ("_NODE_NAME_UNKNOWN_".into(), "_NODE_NAMESPACE_UNKNOWN_".into()))
    };
    for (label, list, kind) in [("Publisher", &pubs, "PUBLISHER"), ("Subscription", &subs, "SUBSCRIPTION")] {
        println!("\n{label} count: {}\n", list.len());
        for e in list.iter() {
            let (name, ns) = owner(&e.gid);
            println!("Node name: {name}");
            println!("Node namespace: {ns}");
            println!("Topic type: {}", e.type_name);
            if let Ok(spec) = sim2real_msgs::registry().lookup(&e.type_name) {
                if let Ok(h) = sim2real_msgs::registry().type_hash(&spec.name) {
                    println!("Topic type hash: {h}");
                }
            }
            println!("Endpoint type: {kind}");
            println!("GID: {}", gid_text(&e.gid));
            println!("QoS profile:");
            println!("  Reliability: {}", if e.reliable { "RELIABLE" } else { "BEST_EFFORT" });
            println!("  Durability: {}", if e.transient_local { "TRANSIENT_LOCAL" } else { "VOLATILE" });
            println!();
        }
    }
    Ok(())
}

/// The QoS a reader should use to hear every publisher of a topic: reliable
/// only if all of them are, transient local only if all of them are.
fn adapted_qos(pubs: &[Endpoint], rel: Option<ReliabilityArg>, dur: Option<DurabilityArg>) -> Qos {
    let all_reliable = !pubs.is_empty() && pubs.iter().all(|e| e.reliable);
    let all_tl = !pubs.is_empty() && pubs.iter().all(|e| e.transient_local);
    let reliability = match rel {
        Some(ReliabilityArg::Reliable) => Reliability::Reliable,
        Some(ReliabilityArg::BestEffort) => Reliability::BestEffort,
        None if all_reliable => Reliability::Reliable,
        None => Reliability::BestEffort,
    };
    let durability = match dur {
        Some(DurabilityArg::TransientLocal) => Durability::TransientLocal,
        Some(DurabilityArg::Volatile) => Durability::Volatile,
        None if all_tl => Durability::TransientLocal,
        None => Durability::Volatile,
    };
    Qos { reliability, durability, depth: 100 }
}

/// Finds the type of `topic` (given, or from its publishers) and checks that
/// sim2real knows it.
async fn resolve_type(s: &crate::discovery::Session, topic: &str, given: Option<&str>) -> Result<(TypeName, Vec<Endpoint>)> {
    let (type_name, pubs) = match given {
        Some(t) => (t.to_string(), publisher_types(&s.ctx, topic, Some(Duration::from_secs(2))).await),
        None => {
            let pubs = await_publishers(&s.ctx, topic).await;
            (pubs[0].type_name.clone(), pubs)
        }
    };
    let reg = sim2real_msgs::registry();
    let spec =
        reg.lookup(&type_name).map_err(|e| anyhow!("cannot decode {topic}: {e}; `s2r interface list` shows the types sim2real knows"))?;
    Ok((spec.name.clone(), pubs))
}

async fn echo(a: EchoArgs) -> Result<()> {
    let topic = absolute(&a.topic);
    let s = session("echo")?;
    let (ty, pubs) = resolve_type(&s, &topic, a.type_name.as_deref()).await?;
    let qos = adapted_qos(&pubs, a.qos_reliability, a.qos_durability);
    let sub = s.node.create_raw_subscription(&topic, &ty.full(), qos)?;
    let reg = sim2real_msgs::registry();
    let opts = EchoOptions { truncate_length: a.truncate_length, no_arr: a.no_arr, no_str: a.no_str };
    if let Some(f) = &a.field {
        let default = dynamic::default_value(reg, &ty)?;
        if default.select(f).is_none() && !f.split('.').any(|p| p.parse::<usize>().is_ok()) {
            bail!("'{f}' is not a field of {}", ty.full());
        }
    }
    let timeout = a.timeout.map(Duration::from_secs_f64);
    loop {
        let next = async {
            match timeout {
                Some(t) => tokio::time::timeout(t, sub.recv()).await.ok(),
                None => Some(sub.recv().await),
            }
        };
        let r = tokio::select! {
            r = next => r,
            _ = s2r_runtime::shutdown::signal() => return Ok(()),
        };
        let Some(r) = r else { bail!("no message on {topic} within {:.1} s", timeout.unwrap().as_secs_f64()) };
        let value = match dynamic::decode(reg, &ty, &r.msg.0) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: {topic}: skipped a message ({} bytes): {e}", r.msg.len());
                continue;
            }
        };
        let shown: &Value = match &a.field {
            Some(f) => match value.select(f) {
                Some(v) => v,
                None => {
                    eprintln!("error: {topic}: the message has no field '{f}'");
                    continue;
                }
            },
            None => &value,
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}---", dynamic::to_yaml(shown, &opts))?;
        out.flush()?;
        if a.once {
            return Ok(());
        }
    }
}

async fn publish(a: PubArgs) -> Result<()> {
    let topic = absolute(&a.topic);
    let reg = sim2real_msgs::registry();
    let spec = reg.lookup(&a.type_name).map_err(|e| anyhow!("{e}; `s2r interface list` shows the types sim2real knows"))?;
    let ty = spec.name.clone();
    let value = dynamic::from_literal(reg, &ty, &a.values).map_err(|e| anyhow!("{}: {e}", ty.full()))?;
    let payload = Serialized(dynamic::encode(&value)?.into());
    if !(a.rate > 0.0 && a.rate.is_finite()) {
        bail!("--rate {} must be a positive number of messages per second", a.rate);
    }
    let times = if a.once { 1 } else { a.times };
    let wait_for = a.wait_matching_subscriptions.unwrap_or(if times > 0 { 1 } else { 0 });

    let s = session("pub")?;
    let qos = Qos {
        reliability: match a.qos_reliability {
            ReliabilityArg::Reliable => Reliability::Reliable,
            ReliabilityArg::BestEffort => Reliability::BestEffort,
        },
        durability: match a.qos_durability {
            DurabilityArg::Volatile => Durability::Volatile,
            DurabilityArg::TransientLocal => Durability::TransientLocal,
        },
        depth: a.qos_depth,
    };
    let publisher = s.node.create_raw_publisher(&topic, &ty.full(), qos).context("creating the publisher")?;
    if wait_for > 0 {
        println!("Waiting for at least {wait_for} matching subscription(s)...");
        loop {
            if publisher.subscription_count() >= wait_for {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = s2r_runtime::shutdown::signal() => return Ok(()),
            }
        }
        // Give the new reader a moment to be matched by the DDS writer too.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    println!("publisher: beginning loop");
    let shown = repr(&ty, &value);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / a.rate));
    let mut count = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = s2r_runtime::shutdown::signal() => return Ok(()),
        }
        publisher.publish(payload.clone())?;
        count += 1;
        if a.print > 0 && count.is_multiple_of(a.print) {
            println!("publishing #{count}: {shown}");
            let _ = std::io::stdout().flush();
        }
        if times > 0 && count >= times {
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(a.keep_alive.max(0.0))).await;
    Ok(())
}

/// A message in the form `ros2 topic pub` prints: `pkg.msg.Type(field=value, …)`.
pub fn repr(ty: &TypeName, v: &Value) -> String {
    fn go(reg: &s2r_idl::Registry, ty: Option<&TypeName>, v: &Value, out: &mut String) {
        match v {
            Value::Struct(fields) => {
                if let Some(t) = ty {
                    out.push_str(&format!("{}.msg.{}(", t.package, t.name));
                }
                let spec = ty.and_then(|t| reg.get(t));
                for (i, (name, fv)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(name);
                    out.push('=');
                    let nested = spec.and_then(|s| s.fields.iter().find(|f| &f.name == name)).and_then(|f| match &f.ty.base {
                        s2r_idl::parse::BaseType::Nested(t) => Some(t.clone()),
                        _ => None,
                    });
                    go(reg, nested.as_ref(), fv, out);
                }
                out.push(')');
            }
            Value::String(s) | Value::WString(s) => out.push_str(&format!("'{}'", s.replace('\'', "\\'"))),
            Value::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
            Value::Bytes(b) => out.push_str(&format!("{:?}", &b[..b.len().min(16)])),
            Value::Array(items) | Value::Seq(items) => {
                out.push('[');
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    go(reg, ty, it, out);
                }
                out.push(']');
            }
            other => out.push_str(dynamic::to_yaml(other, &EchoOptions::default()).trim_end()),
        }
    }
    let mut out = String::new();
    go(sim2real_msgs::registry(), Some(ty), v, &mut out);
    out
}

/// Type and reader QoS for a topic of any type (hz and bw never decode).
async fn wait_type(s: &crate::discovery::Session, topic: &str) -> (String, Qos) {
    let pubs = await_publishers(&s.ctx, topic).await;
    (pubs[0].type_name.clone(), adapted_qos(&pubs, None, None))
}

async fn hz(topic: &str, window: usize) -> Result<()> {
    let s = session("hz")?;
    let (ty, qos) = wait_type(&s, topic).await;
    let sub = s.node.create_raw_subscription(topic, &ty, qos.depth(1000))?;
    let mut times: VecDeque<Instant> = VecDeque::new();
    let mut report = tokio::time::interval(Duration::from_secs(1));
    report.tick().await;
    loop {
        tokio::select! {
            _ = sub.recv() => {
                times.push_back(Instant::now());
                while times.len() > window.max(2) + 1 {
                    times.pop_front();
                }
            }
            _ = report.tick() => {
                if times.len() < 2 {
                    println!("no new messages");
                    continue;
                }
                let deltas: Vec<f64> = times.iter().zip(times.iter().skip(1)).map(|(a, b)| (*b - *a).as_secs_f64()).collect();
                let n = deltas.len() as f64;
                let mean = deltas.iter().sum::<f64>() / n;
                let min = deltas.iter().cloned().fold(f64::INFINITY, f64::min);
                let max = deltas.iter().cloned().fold(0.0, f64::max);
                let std = (deltas.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n).sqrt();
                println!("average rate: {:.3}", 1.0 / mean);
                println!("\tmin: {min:.3}s max: {max:.3}s std dev: {std:.5}s window: {}", deltas.len() + 1);
                let _ = std::io::stdout().flush();
            }
            _ = s2r_runtime::shutdown::signal() => return Ok(()),
        }
    }
}

fn human_bytes(b: f64) -> String {
    if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.2} KB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

async fn bw(topic: &str, window: usize) -> Result<()> {
    let s = session("bw")?;
    let (ty, qos) = wait_type(&s, topic).await;
    let sub = s.node.create_raw_subscription(topic, &ty, qos.depth(1000))?;
    println!("Subscribed to [{topic}]");
    let mut samples: VecDeque<(Instant, usize)> = VecDeque::new();
    let mut report = tokio::time::interval(Duration::from_secs(1));
    report.tick().await;
    loop {
        tokio::select! {
            r = sub.recv() => {
                samples.push_back((Instant::now(), r.msg.len()));
                while samples.len() > window.max(2) {
                    samples.pop_front();
                }
            }
            _ = report.tick() => {
                if samples.len() < 2 {
                    continue;
                }
                let span = (samples.back().unwrap().0 - samples.front().unwrap().0).as_secs_f64().max(1e-9);
                let sizes: Vec<usize> = samples.iter().map(|(_, s)| *s).collect();
                let total: usize = sizes.iter().sum();
                let mean = total as f64 / sizes.len() as f64;
                println!("{}/s from {} messages", human_bytes(total as f64 / span), sizes.len());
                println!(
                    "\tMessage size mean: {} min: {} max: {}",
                    human_bytes(mean),
                    human_bytes(*sizes.iter().min().unwrap() as f64),
                    human_bytes(*sizes.iter().max().unwrap() as f64)
                );
                let _ = std::io::stdout().flush();
            }
            _ = s2r_runtime::shutdown::signal() => return Ok(()),
        }
    }
}
