//! `s2r bag record | play | info | convert`, like `ros2 bag`, on rosbag2 MCAP bags.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Subcommand};
use regex::Regex;
use s2r_bag::{BagReader, BagWriter, Compression, QosProfile, TopicId, TopicSpec, WriterOptions};
use s2r_runtime::clock::system_now;
use s2r_runtime::graph::{Endpoint, EndpointKind};
use s2r_runtime::{Durability, Qos, RawPublisher, Reliability, Serialized};
use sim2real_msgs::builtin_interfaces::msg::Time;
use sim2real_msgs::rosgraph_msgs::msg::Clock;

use crate::discovery::{absolute, session, Session};
use crate::keyboard::{Key, Keyboard};

#[derive(Subcommand)]
pub enum BagCmd {
    /// Record topics into a bag folder.
    Record(RecordArgs),
    /// Publish the messages of a bag, in time.
    Play(PlayArgs),
    /// Describe a bag: files, size, duration, topics, damage.
    Info {
        /// A bag folder, or a single .mcap file.
        bag: PathBuf,
    },
    /// Copy a bag with its camera images compressed (raw → `<topic>/compressed`,
    /// as image_transport publishes them) or decompressed; every other topic as it is.
    Convert(ConvertArgs),
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("direction").required(true).args(["compress_images", "decompress_images"]))]
pub struct ConvertArgs {
    /// The bag to read (folder or .mcap).
    input: PathBuf,
    /// The bag folder to write (must not exist).
    output: PathBuf,
    /// Compress camera images (Image topics named image*, not depth or labels) with jpeg or png.
    #[arg(long, value_name = "CODEC")]
    compress_images: Option<String>,
    /// JPEG quality, 1–100.
    #[arg(long, default_value_t = 95)]
    quality: i64,
    /// Decompress every `<topic>/compressed` into a raw `<topic>`.
    #[arg(long)]
    decompress_images: bool,
    /// Convert only these topics (repeatable; raw or compressed names).
    #[arg(long = "topic")]
    topics: Vec<String>,
    /// Chunk compression of the output: none, lz4 or zstd.
    #[arg(long, default_value = "zstd")]
    compression_format: String,
}

#[derive(Args)]
pub struct RecordArgs {
    /// Topics to record.
    topics: Vec<String>,
    /// Record every topic.
    #[arg(short = 'a', long)]
    all: bool,
    /// Record topics whose names match this regular expression.
    #[arg(short = 'e', long)]
    regex: Option<String>,
    /// Leave out topics whose names match this regular expression.
    #[arg(short = 'x', long)]
    exclude: Option<String>,
    /// Output folder (default: rosbag2_YYYY_MM_DD-HH_MM_SS).
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// Start a new file after this many bytes.
    #[arg(short = 'b', long)]
    max_bag_size: Option<u64>,
    /// Start a new file after this many seconds.
    #[arg(short = 'd', long)]
    max_bag_duration: Option<f64>,
    /// Chunk compression: none, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression_format: String,
    /// Threads that check and compress finished chunks (a file writer
    /// thread comes on top).
    #[arg(long, default_value_t = WriterOptions::default().threads)]
    compression_threads: usize,
    /// Seconds between flushes (what a crash can lose at most).
    #[arg(long, default_value_t = 1.0)]
    flush_interval: f64,
    /// Also record hidden topics (a name token starting with '_').
    #[arg(long)]
    include_hidden_topics: bool,
}

#[derive(Args)]
pub struct PlayArgs {
    /// A bag folder, or a single .mcap file.
    bag: PathBuf,
    /// Playback rate (2 plays twice as fast).
    #[arg(short, long, default_value_t = 1.0)]
    rate: f64,
    /// Start again at the end.
    #[arg(short, long = "loop")]
    loop_: bool,
    /// Play only these topics.
    #[arg(long, num_args = 1..)]
    topics: Vec<String>,
    /// Publish a topic under another name: --remap /old:=/new (repeatable).
    #[arg(long = "remap", short = 'm', num_args = 1..)]
    remap: Vec<String>,
    /// Publish /clock with the bag's time, at HZ times per second (default 40).
    #[arg(long, num_args = 0..=1, default_missing_value = "40")]
    clock: Option<f64>,
    /// Skip this many seconds of the bag.
    #[arg(long, default_value_t = 0.0)]
    start_offset: f64,
    /// Start paused (space resumes).
    #[arg(short = 'p', long)]
    start_paused: bool,
    /// Seconds to wait after creating the publishers, for subscribers to match.
    #[arg(short = 'd', long, default_value_t = 0.0)]
    delay: f64,
    /// Print what was played when done.
    #[arg(long)]
    report: bool,
    /// Seconds to wait at the end for reliable subscribers to acknowledge
    /// everything (0: do not wait).
    #[arg(long, default_value_t = 10.0)]
    wait_for_all_acked: f64,
}

pub async fn run(cmd: BagCmd) -> Result<()> {
    match cmd {
        BagCmd::Record(a) => record(a).await,
        BagCmd::Play(a) => play(a).await,
        BagCmd::Info { bag } => info(&bag),
        BagCmd::Convert(a) => convert(a),
    }
}

// ----------------------------------------------------------------- convert

fn convert(a: ConvertArgs) -> Result<()> {
    use s2r_image::convert::{ConvertOptions, Direction};
    if a.output.exists() {
        bail!("{}: exists; convert into a new folder", a.output.display());
    }
    let direction = match &a.compress_images {
        Some(codec) => Direction::Compress(s2r_image::Compression::parse(codec, a.quality)?),
        None => Direction::Decompress,
    };
    let writer = WriterOptions { compression: Compression::parse(&a.compression_format)?, ..Default::default() };
    let started = Instant::now();
    let report = s2r_image::convert::convert(&a.input, &a.output, &ConvertOptions { direction, topics: a.topics, writer })?;
    for d in &report.damage {
        eprintln!("{}: damaged: {d}; converted what is readable", a.input.display());
    }
    println!("{:<44} {:<50} {:>9} {:>11} {:>11} {:>7}", "topic", "written as", "messages", "MB in", "MB out", "ratio");
    let (mut bytes_in, mut bytes_out) = (0u64, 0u64);
    for t in &report.topics {
        bytes_in += t.bytes_in;
        bytes_out += t.bytes_out;
        let ratio = if t.bytes_out > 0 { t.bytes_in as f64 / t.bytes_out as f64 } else { 0.0 };
        println!(
            "{:<44} {:<50} {:>9} {:>11.2} {:>11.2} {:>7.2}",
            t.from,
            t.to,
            t.messages,
            t.bytes_in as f64 / 1e6,
            t.bytes_out as f64 / 1e6,
            ratio
        );
        if t.skipped > 0 {
            eprintln!("{}: {} message(s) skipped; the first: {}", t.from, t.skipped, t.note.as_deref().unwrap_or("?"));
        }
    }
    println!(
        "{} -> {}: {:.1} MB -> {:.1} MB of messages in {:.1} s",
        a.input.display(),
        a.output.display(),
        bytes_in as f64 / 1e6,
        bytes_out as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

// ------------------------------------------------------------------ record

enum ToWriter {
    Topic(TopicSpec, std::sync::mpsc::Sender<Result<TopicId, String>>),
    Message(TopicId, u64, u64, Serialized),
    Flush,
}

fn default_folder() -> PathBuf {
    let t = civil(system_now().0);
    PathBuf::from(format!("rosbag2_{:04}_{:02}_{:02}-{:02}_{:02}_{:02}", t.year, t.month, t.day, t.hour, t.minute, t.second))
}

/// What the publishers of a topic offer, as rosbag2 records it (depth and
/// history are not discovered, so they are recorded as unknown).
fn offered(pubs: &[&Endpoint]) -> Vec<QosProfile> {
    pubs.iter()
        .map(|e| {
            let mut q = QosProfile::new(e.reliable, e.transient_local, 0);
            q.history = s2r_bag::qos::History::Unknown;
            q
        })
        .collect()
}

async fn record(a: RecordArgs) -> Result<()> {
    let compression = Compression::parse(&a.compression_format)?;
    let include = a.regex.as_deref().map(Regex::new).transpose().context("--regex")?;
    let exclude = a.exclude.as_deref().map(Regex::new).transpose().context("--exclude")?;
    if !a.all && include.is_none() && a.topics.is_empty() {
        bail!("name the topics to record, or use -a (all) or --regex");
    }
    if a.flush_interval.is_nan() || a.flush_interval <= 0.0 {
        bail!("--flush-interval must be positive");
    }
    if a.compression_threads == 0 {
        bail!("--compression-threads must be at least 1");
    }
    let wanted: BTreeSet<String> = a.topics.iter().map(|t| absolute(t)).collect();
    let dir = a.output.clone().unwrap_or_else(default_folder);
    let opts = WriterOptions {
        compression,
        max_file_size: a.max_bag_size,
        max_file_duration_ns: a.max_bag_duration.map(|s| (s * 1e9) as u64),
        threads: a.compression_threads,
        ..Default::default()
    };
    let mut writer = BagWriter::create(&dir, opts)?;
    let s = session("bag_record")?;
    let log = s.node.logger().clone();

    // The writer runs on a thread of its own: disk I/O never stalls the
    // receiving tasks, and a bounded queue between them gives back-pressure.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ToWriter>(4096);
    let written = Arc::new(AtomicU64::new(0));
    let written2 = written.clone();
    let writer_thread = std::thread::spawn(move || -> Result<s2r_bag::BagMetadata, s2r_bag::BagError> {
        while let Some(cmd) = rx.blocking_recv() {
            match cmd {
                ToWriter::Topic(spec, reply) => {
                    let _ = reply.send(writer.add_topic(spec).map_err(|e| e.to_string()));
                }
                ToWriter::Message(id, log_time, pub_time, data) => {
                    writer.write_bytes(id, log_time, pub_time, data.0)?;
                    written2.fetch_add(1, Ordering::Relaxed);
                }
                ToWriter::Flush => writer.flush()?,
            }
        }
        writer.finish()
    });

    log.info(format!("Writing to {}", dir.display()));
    let mut subscribed: BTreeMap<String, tokio::task::JoinHandle<()>> = BTreeMap::new();
    let mut skipped: BTreeSet<String> = BTreeSet::new();
    let mut flush = tokio::time::interval(Duration::from_secs_f64(a.flush_interval));
    let mut discover = tokio::time::interval(Duration::from_millis(500));
    let mut announced_waiting = false;
    let reg = sim2real_msgs::registry();
    loop {
        tokio::select! {
            _ = flush.tick() => {
                if tx.send(ToWriter::Flush).await.is_err() { break; }
            }
            _ = discover.tick() => {
                let eps = s.ctx.endpoints();
                let mut topics: BTreeMap<String, Vec<&Endpoint>> = BTreeMap::new();
                for e in eps.iter().filter(|e| e.kind == EndpointKind::Publisher) {
                    if let Some(t) = e.topic() {
                        topics.entry(t.to_string()).or_default().push(e);
                    }
                }
                for (topic, pubs) in topics {
                    if subscribed.contains_key(&topic) {
                        continue;
                    }
                    let hidden = topic.split('/').any(|t| t.starts_with('_'));
                    let selected = wanted.contains(&topic)
                        || ((a.all && (!hidden || a.include_hidden_topics))
                            || include.as_ref().is_some_and(|r| r.is_match(&topic)))
                            && !exclude.as_ref().is_some_and(|r| r.is_match(&topic));
                    if !selected {
                        continue;
                    }
                    let type_name = pubs[0].type_name.clone();
                    let (schema, hash) = match reg.lookup(&type_name) {
                        Ok(spec) => (reg.schema_text(&spec.name)?, reg.type_hash(&spec.name)?),
                        Err(_) => {
                            // Without its definition in the bag no reader could decode it
                            // (rosbag2 likewise skips topics whose type it lacks).
                            if skipped.insert(topic.clone()) {
                                log.warn(format!("no definition of {type_name} is compiled in: not recording {topic}"));
                            }
                            continue;
                        }
                    };
                    let qos = Qos {
                        reliability: if pubs.iter().all(|e| e.reliable) { Reliability::Reliable } else { Reliability::BestEffort },
                        durability: if pubs.iter().all(|e| e.transient_local) { Durability::TransientLocal } else { Durability::Volatile },
                        depth: 1000,
                    };
                    let spec = TopicSpec { name: topic.clone(), type_name: type_name.clone(), schema, type_hash: hash, qos: offered(&pubs) };
                    let (rtx, rrx) = std::sync::mpsc::channel();
                    if tx.send(ToWriter::Topic(spec, rtx)).await.is_err() { break; }
                    let id = rrx.recv().map_err(|_| anyhow!("the bag writer stopped"))?.map_err(|e| anyhow!(e))?;
                    let sub = s.node.create_raw_subscription(&topic, &type_name, qos)?;
                    let tx2 = tx.clone();
                    let task = tokio::spawn(async move {
                        loop {
                            let r = sub.recv().await;
                            let log_time = r.info.received.0 as u64;
                            let pub_time = r.info.source_stamp.map(|t| t.0 as u64).unwrap_or(log_time);
                            if tx2.send(ToWriter::Message(id, log_time, pub_time, (*r.msg).clone())).await.is_err() {
                                break;
                            }
                        }
                    });
                    log.info(format!("Subscribed to topic '{topic}'"));
                    subscribed.insert(topic, task);
                }
                let missing: Vec<&String> = wanted.iter().filter(|t| !subscribed.contains_key(*t)).collect();
                if !missing.is_empty() && !announced_waiting {
                    log.info(format!("Waiting for publishers of {}", missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")));
                    announced_waiting = true;
                }
            }
            _ = s2r_runtime::shutdown::signal() => break,
        }
    }
    for (_, task) in subscribed {
        task.abort();
    }
    drop(tx);
    let meta = tokio::task::spawn_blocking(move || writer_thread.join()).await?.map_err(|_| anyhow!("the bag writer panicked"))??;
    log.info(format!("Recorded {} messages on {} topics into {}", written.load(Ordering::Relaxed), meta.topics.len(), dir.display()));
    Ok(())
}

// ------------------------------------------------------------------ play

/// Bytes a played topic may have unacknowledged before playback waits.
const FLOW_WINDOW: usize = 8 * 1024 * 1024;

/// Playback position: bag time maps to wall time from an anchor, moved on
/// pause, resume and rate changes.
struct Timeline {
    anchor_wall: Instant,
    anchor_bag: u64,
    rate: f64,
    paused: bool,
    /// Bag time of the last message published.
    now_bag: u64,
}

impl Timeline {
    fn bag_now(&self) -> u64 {
        if self.paused {
            return self.anchor_bag;
        }
        self.anchor_bag + (self.anchor_wall.elapsed().as_secs_f64() * self.rate * 1e9) as u64
    }

    fn wall_for(&self, bag: u64) -> Instant {
        let dt = bag.saturating_sub(self.anchor_bag) as f64 / 1e9 / self.rate;
        self.anchor_wall + Duration::from_secs_f64(dt)
    }

    fn reanchor(&mut self, bag: u64) {
        self.anchor_wall = Instant::now();
        self.anchor_bag = bag;
    }
}

fn parse_remaps(v: &[String]) -> Result<BTreeMap<String, String>> {
    v.iter()
        .map(|r| {
            let (a, b) = r.split_once(":=").ok_or_else(|| anyhow!("--remap '{r}': expected old:=new"))?;
            Ok((absolute(a), absolute(b)))
        })
        .collect()
}

async fn play(a: PlayArgs) -> Result<()> {
    if !(a.rate > 0.0 && a.rate.is_finite()) {
        bail!("--rate {} must be a positive number", a.rate);
    }
    let reader = BagReader::open(&a.bag)?;
    for d in reader.damage() {
        eprintln!("WARNING: {d}; playing what is readable");
    }
    for p in &reader.problems {
        eprintln!("WARNING: {p}");
    }
    let remap = parse_remaps(&a.remap)?;
    let only: BTreeSet<String> = a.topics.iter().map(|t| absolute(t)).collect();
    let s = session("bag_play")?;
    let publishers = make_publishers(&s, &reader, &only, &remap)?;
    let clock = match a.clock {
        Some(hz) if hz > 0.0 => Some((s.node.create_publisher::<Clock>("/clock", Qos::sensor_data())?, hz)),
        Some(hz) => bail!("--clock {hz} must be positive"),
        None => None,
    };
    if a.delay > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(a.delay)).await;
    }
    let start = reader.start_time().unwrap_or(0) + (a.start_offset.max(0.0) * 1e9) as u64;
    let timeline = Arc::new(Mutex::new(Timeline {
        anchor_wall: Instant::now(),
        anchor_bag: start,
        rate: a.rate,
        paused: a.start_paused,
        now_bag: start,
    }));
    let step = Arc::new(tokio::sync::Notify::new());
    let quit = Arc::new(AtomicBool::new(false));
    // None when stdin is not a terminal; the raw mode ends with `_raw`.
    let (_raw, keys) = match Keyboard::start() {
        Some((raw, keys)) => (Some(raw), Some(keys)),
        None => (None, None),
    };
    if keys.is_some() {
        eprintln!("Keys: space pause/resume, s step (while paused), up/down rate, q quit");
    }
    if a.start_paused {
        eprintln!("[PAUSED]");
    }
    let clock_task = clock.map(|(publisher, hz)| {
        let tl = timeline.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / hz));
            loop {
                tick.tick().await;
                let now = tl.lock().unwrap().bag_now();
                let t = s2r_runtime::Stamp(now as i64).to_msg();
                let _ = publisher.publish(Clock { clock: Time { sec: t.sec, nanosec: t.nanosec } });
            }
        })
    });
    let key_task = keys.map(|mut kb| {
        let (tl, step, quit) = (timeline.clone(), step.clone(), quit.clone());
        tokio::task::spawn_blocking(move || {
            while let Some(key) = kb.next_key() {
                let mut t = tl.lock().unwrap();
                match key {
                    Key::Char(' ') => {
                        let now = t.bag_now().max(t.now_bag);
                        t.paused = !t.paused;
                        t.reanchor(now);
                        eprintln!("{}", if t.paused { "[PAUSED]" } else { "[RUNNING]" });
                    }
                    Key::Char('s') | Key::Right if t.paused => step.notify_one(),
                    Key::Up | Key::Down => {
                        let now = t.bag_now();
                        t.rate *= if key == Key::Up { 1.1 } else { 1.0 / 1.1 };
                        t.reanchor(now);
                        eprintln!("rate {:.3}", t.rate);
                    }
                    Key::Char('q') => {
                        quit.store(true, Ordering::Relaxed);
                        step.notify_one();
                        break;
                    }
                    _ => {}
                }
            }
        })
    });

    let played = Arc::new(AtomicU64::new(0));
    let begun = Instant::now();
    let run = {
        let (timeline, step, quit, played) = (timeline.clone(), step.clone(), quit.clone(), played.clone());
        let reader = &reader;
        let publishers = &publishers;
        async move {
            let mut in_flight = vec![0usize; publishers.len()];
            loop {
                for m in reader.messages() {
                    if m.log_time < start {
                        continue;
                    }
                    let Some(p) = &publishers[m.connection] else { continue };
                    loop {
                        if quit.load(Ordering::Relaxed) {
                            return Ok::<(), anyhow::Error>(());
                        }
                        let (paused, due) = {
                            let t = timeline.lock().unwrap();
                            (t.paused, t.wall_for(m.log_time))
                        };
                        if paused {
                            // Wait for resume or a step (checked every 50 ms for resume).
                            tokio::select! {
                                _ = step.notified() => { break; }
                                _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                            }
                        }
                        let now = Instant::now();
                        if due <= now {
                            break;
                        }
                        tokio::time::sleep((due - now).min(Duration::from_millis(50))).await;
                    }
                    p.publish(Serialized(m.data.clone()))?;
                    played.fetch_add(1, Ordering::Relaxed);
                    // Flow control: faster than real time, large messages can
                    // outrun the transport; keep at most a window of bytes
                    // unacknowledged by reliable subscribers.
                    in_flight[m.connection] += m.data.len();
                    if in_flight[m.connection] > FLOW_WINDOW {
                        in_flight[m.connection] = 0;
                        tokio::task::block_in_place(|| p.wait_for_acknowledgments(Duration::from_secs(2)));
                    }
                    let mut t = timeline.lock().unwrap();
                    t.now_bag = m.log_time;
                    if t.paused {
                        t.anchor_bag = m.log_time;
                    }
                }
                if !a.loop_ {
                    return Ok(());
                }
                timeline.lock().unwrap().reanchor(start);
            }
        }
    };
    tokio::select! {
        r = run => r?,
        _ = s2r_runtime::shutdown::signal() => {}
    }
    if let Some(t) = clock_task {
        t.abort();
    }
    drop(key_task);
    let elapsed = begun.elapsed().as_secs_f64();
    let n = played.load(Ordering::Relaxed);
    if a.report {
        println!("Played {n} messages in {elapsed:.3} s ({:.1} messages/s)", n as f64 / elapsed.max(1e-9));
    }
    // Reliable subscribers may still be taking the last messages.
    let wait = Duration::from_secs_f64(a.wait_for_all_acked.max(0.0));
    let acked = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + wait;
        publishers.iter().flatten().all(|p| p.wait_for_acknowledgments(deadline.saturating_duration_since(Instant::now())))
    })
    .await?;
    if !acked && !wait.is_zero() {
        eprintln!("WARNING: not every subscriber acknowledged every message within {:.1} s", wait.as_secs_f64());
    }
    Ok(())
}

/// One publisher per connection (None where the topic is not played), with
/// the QoS the recorded publishers offered.
fn make_publishers(
    s: &Session,
    reader: &BagReader,
    only: &BTreeSet<String>,
    remap: &BTreeMap<String, String>,
) -> Result<Vec<Option<RawPublisher>>> {
    reader
        .connections
        .iter()
        .map(|c| {
            if !only.is_empty() && !only.contains(&c.topic) {
                return Ok(None);
            }
            if c.message_encoding != "cdr" {
                eprintln!("WARNING: {} is encoded as '{}', not cdr: not played", c.topic, c.message_encoding);
                return Ok(None);
            }
            let reliable = c.qos.is_empty() || c.qos.iter().all(QosProfile::is_reliable);
            let transient = !c.qos.is_empty() && c.qos.iter().all(QosProfile::is_transient_local);
            let depth = c.qos.iter().map(|q| q.depth as usize).max().unwrap_or(0).max(10);
            let qos = Qos {
                reliability: if reliable { Reliability::Reliable } else { Reliability::BestEffort },
                durability: if transient { Durability::TransientLocal } else { Durability::Volatile },
                depth,
            };
            let topic = remap.get(&c.topic).cloned().unwrap_or_else(|| c.topic.clone());
            Ok(Some(s.node.create_raw_publisher(&topic, &c.type_name, qos).with_context(|| format!("publishing {topic}"))?))
        })
        .collect()
}

// ------------------------------------------------------------------ info

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

/// UTC calendar date and time of a nanosecond timestamp (days-from-civil inverse).
fn civil(ns: i64) -> Civil {
    let secs = ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil { year, month, day, hour: (sod / 3600) as u32, minute: (sod % 3600 / 60) as u32, second: (sod % 60) as u32 }
}

fn format_time(ns: u64) -> String {
    let c = civil(ns as i64);
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{} {:>2} {} {:02}:{:02}:{:02}.{:03} UTC ({}.{:09})",
        MONTHS[(c.month - 1) as usize],
        c.day,
        c.year,
        c.hour,
        c.minute,
        c.second,
        (ns % 1_000_000_000) / 1_000_000,
        ns / 1_000_000_000,
        ns % 1_000_000_000
    )
}

fn human_size(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = b as f64;
    let mut i = 0;
    while x >= 1024.0 && i < units.len() - 1 {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{x:.1} {}", units[i])
    }
}

fn info(bag: &Path) -> Result<()> {
    let r = BagReader::open(bag)?;
    let files: Vec<String> =
        r.files.iter().map(|f| f.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()).collect();
    let label = |l: &str| format!("{:<19}", format!("{l}:"));
    println!("{}{}", label("Files"), files.join("\n                   "));
    println!("{}{}", label("Bag size"), human_size(r.size()));
    println!("{}mcap", label("Storage id"));
    if let Some(m) = &r.metadata {
        if !m.ros_distro.is_empty() {
            println!("{}{}", label("ROS Distro"), m.ros_distro);
        }
    }
    let (start, end) = (r.start_time(), r.end_time());
    let duration = match (start, end) {
        (Some(s), Some(e)) => e - s,
        _ => 0,
    };
    println!("{}{}.{:09}s", label("Duration"), duration / 1_000_000_000, duration % 1_000_000_000);
    if let (Some(s), Some(e)) = (start, end) {
        println!("{}{}", label("Start"), format_time(s));
        println!("{}{}", label("End"), format_time(e));
    }
    println!("{}{}", label("Messages"), r.message_count());
    let topics: Vec<String> = r
        .connections
        .iter()
        .map(|c| format!("Topic: {} | Type: {} | Count: {} | Serialization Format: {}", c.topic, c.type_name, c.count, c.message_encoding))
        .collect();
    println!("{}{}", label("Topic information"), topics.join("\n                   "));
    let compressions: BTreeSet<String> = r
        .files
        .iter()
        .flat_map(|f| f.summary.compressions.iter().cloned())
        .map(|c| if c.is_empty() { "none".to_string() } else { c })
        .collect();
    let compression = compressions.into_iter().collect::<Vec<_>>().join(", ");
    println!("{}{} (per chunk)", label("Compression"), if compression.is_empty() { "none".into() } else { compression });
    let incomplete: Vec<&str> = r.files.iter().filter(|f| !f.summary.complete).map(|f| f.path.to_str().unwrap_or("")).collect();
    if !incomplete.is_empty() {
        println!("{}{} (no summary: the recording did not finish; contents found by scanning)", label("Unfinished"), incomplete.join(", "));
    }
    let mut damage: Vec<String> = r.damage().iter().map(|d| d.to_string()).collect();
    damage.extend(r.problems.iter().cloned());
    if !damage.is_empty() {
        println!("{}{}", label("Damage"), damage.join("\n                   "));
    }
    Ok(())
}
