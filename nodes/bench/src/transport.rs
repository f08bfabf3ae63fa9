//! `s2r bench transport`: camera images at a fixed rate between two processes
//! over DDS and between two nodes of one process, with Cyclone DDS's `ddsperf`
//! on the same payload in the same run. Everything stays on loopback.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use s2r_runtime::clock::system_now;
use s2r_runtime::{Context, ContextOptions, DiscoveryRange, Node, Qos, RosArgs};
use sim2real_msgs::sensor_msgs::msg::Image;

use crate::{parse_size, percentile};

/// Options of `s2r bench transport`.
#[derive(Args, Clone)]
pub struct TransportArgs {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Images per second.
    #[arg(long, default_value_t = 30.0)]
    rate: f64,
    /// Image sizes, WIDTHxHEIGHT (rgb8).
    #[arg(long, value_delimiter = ',', default_value = "640x480,1920x1080")]
    sizes: Vec<String>,
    /// Best-effort instead of reliable QoS.
    #[arg(long)]
    best_effort: bool,
    /// Leave out the ddsperf rows.
    #[arg(long)]
    no_ddsperf: bool,
    /// DDS domain for the run (kept apart from your graph).
    #[arg(long, default_value_t = 213)]
    domain: u16,
    /// Cameras publishing at once between the two processes (one topic
    /// each, all at --rate, published one after another by one task): 8 is
    /// a car's surround rig. With more than one, only that row is measured.
    #[arg(long, default_value_t = 1)]
    cameras: usize,
}

/// Options of the hidden `s2r bench transport-peer` (the subscribing process).
#[derive(Args, Clone)]
pub struct PeerArgs {
    #[arg(long)]
    domain: u16,
    #[arg(long)]
    best_effort: bool,
    /// Stop after this many seconds without an image.
    #[arg(long, default_value_t = 10.0)]
    idle: f64,
    /// Camera topics to subscribe (/bench/image, or /bench/cam<k>/image for more than one).
    #[arg(long, default_value_t = 1)]
    cameras: usize,
}

/// The topic of camera `k` of `n`.
fn camera_topic(k: usize, n: usize) -> String {
    if n <= 1 {
        "/bench/image".into()
    } else {
        format!("/bench/cam{k}/image")
    }
}

fn qos(best_effort: bool) -> Qos {
    if best_effort {
        Qos::sensor_data().depth(10)
    } else {
        Qos::reliable().depth(10)
    }
}

fn loopback(domain: u16) -> Result<Context> {
    Ok(Context::new(ContextOptions { domain_id: domain, range: DiscoveryRange::Localhost, ..Default::default() })?)
}

/// CPU time (user + system) of a process so far, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return f64::NAN };
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // Linux reports in USER_HZ, 100 per second on every mainstream architecture.
    (ticks(11) + ticks(12)) / 100.0
}

fn frame(w: u32, h: u32, seq: u64) -> Image {
    let mut data = vec![0u8; (w * h * 3) as usize];
    // Touch every page, as a camera driver filling a buffer would.
    for (i, b) in data.iter_mut().enumerate().step_by(4096) {
        *b = (i as u64 + seq) as u8;
    }
    Image {
        height: h,
        width: w,
        encoding: "rgb8".into(),
        step: w * 3,
        data: data.into(),
        header: sim2real_msgs::std_msgs::msg::Header { stamp: Default::default(), frame_id: seq.to_string() },
        ..Default::default()
    }
}

#[derive(Default, Debug)]
struct Row {
    size: String,
    path: String,
    sent: u64,
    delivered: u64,
    rate: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_pub: f64,
    cpu_sub: f64,
    note: String,
}

fn print_header(a: &TransportArgs) {
    println!(
        "transport benchmark: sensor_msgs/Image rgb8 at {} Hz for {} s per row, {} QoS, loopback, {} CPU cores",
        a.rate,
        a.seconds,
        if a.best_effort { "best-effort" } else { "reliable" },
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!(
        "{:<10} {:<28} {:>6} {:>9} {:>8} {:>6} {:>9} {:>9} {:>8} {:>8}  note",
        "size", "path", "sent", "delivered", "rate Hz", "loss", "p50 us", "p99 us", "CPU pub", "CPU sub"
    );
}

fn print_row(r: &Row) {
    let pct = |x: f64| if x.is_nan() { "-".to_string() } else { format!("{:.1}%", x * 100.0) };
    let num = |x: f64| if x.is_nan() { "-".to_string() } else { format!("{x:.0}") };
    let loss = if r.sent == 0 { "-".to_string() } else { (r.sent.saturating_sub(r.delivered)).to_string() };
    println!(
        "{:<10} {:<28} {:>6} {:>9} {:>8.2} {:>6} {:>9} {:>9} {:>8} {:>8}  {}",
        r.size,
        r.path,
        r.sent,
        r.delivered,
        r.rate,
        loss,
        num(r.p50_us),
        num(r.p99_us),
        pct(r.cpu_pub),
        pct(r.cpu_sub),
        r.note
    );
    let _ = std::io::stdout().flush();
}

pub(crate) async fn transport(a: TransportArgs) -> Result<()> {
    if !(a.rate > 0.0 && a.seconds > 0.0) {
        bail!("--rate and --seconds must be positive");
    }
    if a.cameras == 0 {
        bail!("--cameras must be at least 1");
    }
    let sizes = a.sizes.iter().map(|s| parse_size(s)).collect::<Result<Vec<_>>>()?;
    print_header(&a);
    for (w, h) in sizes {
        let size = format!("{w}x{h}");
        print_row(&over_dds(&a, w, h).await.with_context(|| format!("{size} over DDS"))?);
        if a.cameras > 1 {
            // The rows below are of one camera.
            continue;
        }
        print_row(&intra_process(&a, w, h).await.with_context(|| format!("{size} intra-process"))?);
        if !a.no_ddsperf {
            for r in ddsperf(&a, w, h).await.with_context(|| format!("{size} ddsperf"))? {
                print_row(&r);
            }
        }
    }
    Ok(())
}

/// Publishes at the configured rate for the configured time; returns the count.
async fn publish_loop(a: &TransportArgs, w: u32, h: u32, mut send: impl FnMut(Image) -> Result<()>) -> Result<u64> {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / a.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let end = Instant::now() + Duration::from_secs_f64(a.seconds);
    let mut seq = 0;
    while Instant::now() < end {
        tick.tick().await;
        let mut img = frame(w, h, seq);
        img.header.stamp = system_now().to_msg();
        send(img)?;
        seq += 1;
    }
    Ok(seq)
}

async fn over_dds(a: &TransportArgs, w: u32, h: u32) -> Result<Row> {
    let exe = std::env::current_exe()?;
    let n = a.cameras.max(1);
    let mut child = Command::new(exe)
        .args(["bench", "transport-peer", "--domain", &a.domain.to_string(), "--cameras", &n.to_string()])
        .args(if a.best_effort { vec!["--best-effort"] } else { vec![] })
        .env("ROS_LOCALHOST_ONLY", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the subscriber process")?;
    let ctx = loopback(a.domain)?;
    let node = Node::new(&ctx, "bench_pub", &RosArgs::default())?;
    let publishers =
        (0..n).map(|k| node.create_publisher::<Image>(&camera_topic(k, n), qos(a.best_effort))).collect::<Result<Vec<_>, _>>()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !publishers.iter().all(|p| p.has_remote_subscribers()) {
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("the subscriber process was not discovered within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = std::process::id();
    let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
    let a2 = a.clone();
    // One image per camera per tick (sharing the pixel buffer: DDS serializes
    // each anyway), each stamped just before its own publish, so a camera's
    // latency does not include publishing the ones before it.
    let sent = tokio::spawn(async move {
        publish_loop(&a2, w, h, |img| {
            for p in &publishers {
                let mut one = img.clone();
                one.header.stamp = system_now().to_msg();
                p.publish(one)?;
            }
            Ok(())
        })
        .await
    })
    .await??
        * n as u64;
    let cpu_pub = (cpu_seconds(pid) - cpu0) / t0.elapsed().as_secs_f64();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("RESULT ")).ok_or_else(|| anyhow!("the subscriber printed no result: {text}"))?;
    let v: Vec<f64> = line[7..].split_whitespace().map(|x| x.parse().unwrap_or(f64::NAN)).collect();
    let (delivered, p50, p99, cpu_sub, span) = (v[0] as u64, v[1], v[2], v[3], v[4]);
    // Under a second between the first and the last image says nothing about the subscriber's CPU.
    let cpu_sub = if span >= 1.0 { cpu_sub } else { f64::NAN };
    Ok(Row {
        size: format!("{w}x{h}"),
        path: if n == 1 { "s2r DDS, 2 processes".into() } else { format!("s2r DDS, 2 proc., {n} cameras") },
        sent,
        delivered,
        rate: if span > 0.0 { delivered.saturating_sub(n as u64) as f64 / span / n as f64 } else { f64::NAN },
        p50_us: p50,
        p99_us: p99,
        cpu_pub,
        cpu_sub,
        note: if n == 1 { "latency: publish to receive, one way" } else { "latency: publish to receive, one way; rate per camera" }.into(),
    })
}

/// The subscribing process: measures one-way latency from the header stamps.
pub(crate) async fn peer(a: PeerArgs) -> Result<()> {
    // Receive in a task of the runtime, as a node's loop runs, not on the
    // thread that blocks on the runtime.
    tokio::spawn(peer_loop(a)).await?
}

async fn peer_loop(a: PeerArgs) -> Result<()> {
    let ctx = loopback(a.domain)?;
    let node = Node::new(&ctx, "bench_sub", &RosArgs::default())?;
    let n = a.cameras.max(1);
    // Each camera's subscription in a task of its own, all reporting (camera, image) here.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Arc<Image>, s2r_runtime::Stamp)>();
    let mut tasks = Vec::new();
    for k in 0..n {
        let sub = node.create_subscription::<Image>(&camera_topic(k, n), qos(a.best_effort))?;
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let img = sub.recv().await;
                if tx.send((k, img, system_now())).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let mut lat = Vec::new();
    let mut seqs = BTreeSet::new();
    let pid = std::process::id();
    let mut first: Option<(f64, Instant)> = None;
    let mut last = Instant::now();
    let idle = Duration::from_secs_f64(a.idle);
    loop {
        let waited = if first.is_some() { idle } else { Duration::from_secs(60) };
        let Ok(Some((k, img, now))) = tokio::time::timeout(waited, rx.recv()).await else { break };
        last = Instant::now();
        if first.is_none() {
            first = Some((cpu_seconds(pid), last));
        }
        let sent = s2r_runtime::Stamp::from_msg(&img.header.stamp);
        lat.push((now.0 - sent.0) as f64 / 1000.0);
        seqs.insert((k, img.header.frame_id.clone()));
    }
    for t in tasks {
        t.abort();
    }
    let (cpu_sub, span) = match first {
        Some((c0, t0)) => ((cpu_seconds(pid) - c0) / (last - t0).as_secs_f64().max(1e-9), (last - t0).as_secs_f64()),
        None => (f64::NAN, 0.0),
    };
    lat.sort_by(|x, y| x.partial_cmp(y).unwrap());
    println!("RESULT {} {:.1} {:.1} {:.4} {:.3}", seqs.len(), percentile(&lat, 0.5), percentile(&lat, 0.99), cpu_sub, span);
    Ok(())
}

async fn intra_process(a: &TransportArgs, w: u32, h: u32) -> Result<Row> {
    let ctx = loopback(a.domain + 1)?;
    let pub_node = Node::new(&ctx, "bench_pub", &RosArgs::default())?;
    let sub_node = Node::new(&ctx, "bench_sub", &RosArgs::default())?;
    let publ = pub_node.create_publisher::<Image>("/bench/image", qos(a.best_effort))?;
    let sub = sub_node.create_subscription::<Image>("/bench/image", qos(a.best_effort))?;
    let buffers: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let seen = buffers.clone();
    let reader = tokio::spawn(async move {
        let mut lat = Vec::new();
        let mut copies = 0u64;
        let mut n = 0u64;
        while let Ok(img) = tokio::time::timeout(Duration::from_secs(3), sub.recv()).await {
            let now = system_now();
            lat.push((now.0 - s2r_runtime::Stamp::from_msg(&img.header.stamp).0) as f64 / 1000.0);
            if seen.lock().unwrap().remove(&img.header.frame_id) != Some(img.data.as_ptr() as usize) {
                copies += 1;
            }
            n += 1;
        }
        (lat, copies, n)
    });
    let pid = std::process::id();
    let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
    // The publishing loop is a task of the runtime, as a composed node's is.
    let a2 = a.clone();
    let sent = tokio::spawn(async move {
        publish_loop(&a2, w, h, |img| {
            buffers.lock().unwrap().insert(img.header.frame_id.clone(), img.data.as_ptr() as usize);
            Ok(publ.publish(img)?)
        })
        .await
    })
    .await??;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = (cpu_seconds(pid) - cpu0) / wall;
    let (mut lat, copies, n) = reader.await?;
    lat.sort_by(|x, y| x.partial_cmp(y).unwrap());
    Ok(Row {
        size: format!("{w}x{h}"),
        path: "s2r intra-process".into(),
        sent,
        delivered: n,
        rate: n as f64 / wall,
        p50_us: percentile(&lat, 0.5),
        p99_us: percentile(&lat, 0.99),
        cpu_pub: cpu,
        cpu_sub: f64::NAN,
        note: format!("one process (CPU of both nodes); pixel buffers copied: {copies}"),
    })
}

const CYCLONE_LOOPBACK: &str = "<CycloneDDS><Domain id='any'><General><Interfaces><NetworkInterface name='lo'/></Interfaces>\
<AllowMulticast>false</AllowMulticast></General><Discovery><ParticipantIndex>auto</ParticipantIndex>\
<MaxAutoParticipantIndex>60</MaxAutoParticipantIndex><Peers><Peer Address='127.0.0.1'/></Peers></Discovery>\
<Internal><SocketReceiveBufferSize min='4MB'/></Internal></Domain></CycloneDDS>";

fn ddsperf_cmd(domain: u16, seconds: f64, best_effort: bool) -> Command {
    let mut c = Command::new("ddsperf");
    c.env("CYCLONEDDS_URI", CYCLONE_LOOPBACK).args(["-i", &domain.to_string(), "-D", &format!("{}", seconds.ceil() as u64)]);
    if best_effort {
        c.arg("-u");
    }
    c
}

/// Values after `key` in ddsperf's per-second lines, e.g. "50%" → microseconds.
fn ddsperf_field(line: &str, key: &str) -> Option<f64> {
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == key {
            let v = words.next()?;
            let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
            let x: f64 = num.parse().ok()?;
            return Some(match unit {
                "ns" => x / 1000.0,
                "ms" => x * 1000.0,
                "s" => x * 1e6,
                _ => x,
            });
        }
    }
    None
}

async fn ddsperf(a: &TransportArgs, w: u32, h: u32) -> Result<Vec<Row>> {
    let size = (w * h * 3).to_string();
    let rate = format!("{}Hz", a.rate);
    let domain = a.domain + 2;
    // Latency: ping/pong round trips at the same rate and size.
    let mut pong = ddsperf_cmd(domain, a.seconds + 5.0, a.best_effort)
        .arg("pong")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting ddsperf (Debian package cyclonedds-tools)")?;
    let ping = ddsperf_cmd(domain, a.seconds, a.best_effort).args(["ping", &rate, "size", &size]).output();
    let ping = tokio::task::spawn_blocking(move || ping).await??;
    let _ = pong.kill();
    let _ = pong.wait();
    let text = String::from_utf8_lossy(&ping.stdout);
    let (mut n, mut p50_sum, mut p99_max) = (0.0, 0.0, 0.0f64);
    for l in text.lines().filter(|l| l.contains(" size ") && l.contains(" 50% ")) {
        let cnt = ddsperf_field(l, "cnt").unwrap_or(0.0);
        if let (Some(p50), Some(p99)) = (ddsperf_field(l, "50%"), ddsperf_field(l, "99%")) {
            p50_sum += p50 * cnt;
            n += cnt;
            p99_max = p99_max.max(p99);
        }
    }
    let latency = Row {
        size: format!("{w}x{h}"),
        path: "ddsperf ping/pong".into(),
        sent: 0,
        delivered: n as u64,
        rate: n / a.seconds,
        p50_us: if n > 0.0 { p50_sum / n / 2.0 } else { f64::NAN },
        p99_us: p99_max / 2.0,
        cpu_pub: f64::NAN,
        cpu_sub: f64::NAN,
        note: "latency: round trip / 2 (p50 weighted over seconds, p99 worst second)".into(),
    };

    // Delivery and CPU: pub/sub at the same rate and size.
    let sub = ddsperf_cmd(domain, a.seconds + 3.0, a.best_effort).arg("sub").stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let sub_pid = sub.id();
    let mut publ = ddsperf_cmd(domain, a.seconds, a.best_effort)
        .args(["pub", &rate, "size", &size])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pub_pid = publ.id();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (c_pub0, c_sub0, t0) = (cpu_seconds(pub_pid), cpu_seconds(sub_pid), Instant::now());
    tokio::time::sleep(Duration::from_secs_f64((a.seconds - 2.0).max(1.0))).await;
    let (c_pub1, c_sub1, wall) = (cpu_seconds(pub_pid), cpu_seconds(sub_pid), t0.elapsed().as_secs_f64());
    let _ = tokio::task::spawn_blocking(move || publ.wait()).await?;
    let out = tokio::task::spawn_blocking(move || sub.wait_with_output()).await??;
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().rfind(|l| l.contains(" total ")).unwrap_or("");
    let total = ddsperf_field(last, "total").unwrap_or(f64::NAN);
    let lost = ddsperf_field(last, "lost").unwrap_or(f64::NAN);
    let delivery = Row {
        size: format!("{w}x{h}"),
        path: "ddsperf pub/sub".into(),
        sent: (total + lost) as u64,
        delivered: total as u64,
        rate: total / a.seconds,
        p50_us: f64::NAN,
        p99_us: f64::NAN,
        cpu_pub: (c_pub1 - c_pub0) / wall,
        cpu_sub: (c_sub1 - c_sub0) / wall,
        note: "delivery and CPU".into(),
    };
    Ok(vec![latency, delivery])
}
