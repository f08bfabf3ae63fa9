//! `s2r bench sim`: lockstep simulation speed for 1 and 8 cameras (RGB,
//! depth, segmentation and instances per camera), where the time goes
//! (physics, rendering, read-back, labels, publishing), with nobody
//! subscribed and with a subscribing process taking every image over DDS on
//! loopback.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use clap::Args;
use s2r_image::transport::Publish;
use s2r_image::Compression;
use s2r_runtime::{Context, ContextOptions, DiscoveryRange, Node, Qos, RosArgs};
use s2r_sim::node::{resolve_scenario, Pubs};
use s2r_sim::physics::STEPS_PER_SECOND;
use s2r_sim::scenario::{surround_rig, EgoSpec, Scenario};
use s2r_sim::sim::{Sim, SimOptions};
use sim2real_msgs::sensor_msgs::msg::Image;

/// Options of `s2r bench sim`.
#[derive(Args, Clone)]
pub struct SimBenchArgs {
    /// Camera counts to measure (cameras of the surround rig, front first).
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    cameras: Vec<usize>,
    /// Resolution of every camera, WIDTHxHEIGHT.
    #[arg(long, default_value = "640x480")]
    size: String,
    /// Rig frames measured per row (after 5 of warm-up).
    #[arg(long, default_value_t = 60)]
    frames: u64,
    /// The scenario whose world is simulated.
    #[arg(long, default_value = "dry_day_urban")]
    scenario: String,
    /// Leave out the rows with a subscribing process.
    #[arg(long)]
    no_subscriber: bool,
    /// DDS domain for the run (kept apart from your graph).
    #[arg(long, default_value_t = 214)]
    domain: u16,
}

/// Options of the hidden `s2r bench sim-sink` (the subscribing process).
#[derive(Args, Clone)]
pub struct SinkArgs {
    #[arg(long)]
    domain: u16,
    /// Camera names to subscribe to.
    #[arg(long, value_delimiter = ',')]
    cameras: Vec<String>,
    /// Stop after this many seconds without an image.
    #[arg(long, default_value_t = 5.0)]
    idle: f64,
}

fn loopback(domain: u16) -> Result<Context> {
    Ok(Context::new(ContextOptions { domain_id: domain, range: DiscoveryRange::Localhost, ..Default::default() })?)
}

struct Row {
    cameras: usize,
    frames: u64,
    wall: f64,
    physics: f64,
    render: f64,
    readback: f64,
    labels: f64,
    publish: f64,
    received: Option<u64>,
}

/// Measures every camera count, without and with a subscribing process, and
/// prints a row each.
pub(crate) async fn run(a: SimBenchArgs) -> Result<()> {
    let (w, h) = crate::parse_size(&a.size)?;
    let path = resolve_scenario(&a.scenario).map_err(|e| anyhow!(e))?;
    let base = Scenario::load(&path)?;
    let mut rows = Vec::new();
    let mut adapter = String::new();
    let world = s2r_sim::world::World::build(&base, 0);
    let parts: usize = world.objects.iter().map(|o| o.parts.len()).sum();
    for subscriber in [false, true] {
        if subscriber && a.no_subscriber {
            continue;
        }
        for &n in &a.cameras {
            if !(1..=8).contains(&n) {
                return Err(anyhow!("--cameras takes 1 to 8, got {n}"));
            }
            let mut s = base.clone();
            let size = match &s.ego {
                EgoSpec::Vehicle(v) => v.size,
                EgoSpec::Arm(_) => [0.4, 0.4, 0.4],
            };
            s.sensors.cameras = surround_rig(w, h, 100.0, size).into_iter().take(n).collect();
            let row = measure(&a, s, n, subscriber, &mut adapter).await?;
            rows.push(row);
        }
    }
    println!(
        "sim benchmark: '{}' in lockstep, {}x{} cameras with RGB + depth + segmentation + instances, physics at {} Hz, cameras every {} steps",
        base.name,
        w,
        h,
        STEPS_PER_SECOND,
        (STEPS_PER_SECOND as f64 / base.sensors.rate).round()
    );
    println!(
        "world: {} objects, {parts} drawn parts; renderer: {adapter}; {} CPU cores; DDS on loopback",
        world.objects.len(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!(
        "{:>7}  {:<18} {:>9} {:>15}   ms per rig frame: {:>7} {:>7} {:>9} {:>7} {:>8} {:>7}",
        "cameras", "subscriber", "frames/s", "camera-frames/s", "physics", "render", "read-back", "labels", "publish", "total"
    );
    for r in &rows {
        let per = |x: f64| 1000.0 * x / r.frames as f64;
        let fps = r.frames as f64 / r.wall;
        let sub = match r.received {
            Some(got) => format!("1 process ({:.0}%)", 100.0 * got as f64 / (r.frames * r.cameras as u64 * 4).max(1) as f64),
            None => "none".into(),
        };
        println!(
            "{:>7}  {:<18} {:>9.1} {:>15.1}   {:>24.2} {:>7.2} {:>9.2} {:>7.2} {:>8.2} {:>7.2}",
            r.cameras,
            sub,
            fps,
            fps * r.cameras as f64,
            per(r.physics),
            per(r.render),
            per(r.readback),
            per(r.labels),
            per(r.publish),
            per(r.wall)
        );
    }
    println!("(physics: the steps between two frames; render: building and submitting the draw; read-back: waiting for the GPU and copying the images out; subscriber: share of images it received)");
    Ok(())
}

async fn measure(a: &SimBenchArgs, s: Scenario, n: usize, subscriber: bool, adapter: &mut String) -> Result<Row> {
    let mut sim = tokio::task::block_in_place(|| Sim::new(s, &SimOptions { seed: 0, image_scale: 1.0, render: true }))?;
    *adapter = sim.adapter().unwrap_or_default().to_string();
    let ctx = loopback(a.domain)?;
    let node = Node::new(&ctx, "sim_bench", &RosArgs::default())?;
    let pubs = Pubs::new(&node, &sim, Publish::Raw, Compression::Jpeg { quality: 95 }, s2r_runtime::Writer::Graph)?;
    let mut sink: Option<Child> = None;
    if subscriber {
        let names: Vec<String> = sim.mounts.iter().map(|m| m.model.name.clone()).collect();
        let child = Command::new(std::env::current_exe()?)
            .args(["bench", "sim-sink", "--domain", &a.domain.to_string(), "--cameras", &names.join(",")])
            .env("ROS_LOCALHOST_ONLY", "1")
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the subscribing process")?;
        sink = Some(child);
        let t0 = Instant::now();
        while pubs.min_image_subscribers() == 0 {
            if t0.elapsed() > Duration::from_secs(20) {
                return Err(anyhow!("the subscribing process did not match within 20 s"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let frame = |sim: &mut Sim, pubs: &Pubs| -> Result<Duration> {
        loop {
            let tick = sim.tick()?;
            let last = tick.detections3d.is_some();
            let t0 = Instant::now();
            pubs.publish(tick)?;
            let spent = t0.elapsed();
            if last {
                return Ok(spent);
            }
        }
    };
    for _ in 0..5 {
        tokio::task::block_in_place(|| frame(&mut sim, &pubs))?;
    }
    let before = sim.timings;
    let mut publish = Duration::ZERO;
    let t0 = Instant::now();
    for _ in 0..a.frames {
        publish += tokio::task::block_in_place(|| frame(&mut sim, &pubs))?;
    }
    let wall = t0.elapsed().as_secs_f64();
    let after = sim.timings;
    let received = match sink.take() {
        Some(child) => {
            drop(pubs);
            drop(node);
            let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
            let text = String::from_utf8_lossy(&out.stdout);
            // The images of the warm-up frames arrived too.
            Some(text.trim().parse::<u64>().unwrap_or(0).saturating_sub(5 * n as u64 * 4))
        }
        None => None,
    };
    Ok(Row {
        cameras: n,
        frames: a.frames,
        wall,
        physics: (after.physics - before.physics).as_secs_f64(),
        render: (after.render - before.render).as_secs_f64(),
        readback: (after.readback - before.readback).as_secs_f64(),
        labels: (after.labels - before.labels).as_secs_f64(),
        publish: publish.as_secs_f64(),
        received,
    })
}

/// The subscribing process: takes every image topic of the named cameras and
/// prints how many images it received once they stop coming.
pub(crate) async fn sink(a: SinkArgs) -> Result<()> {
    let ctx = loopback(a.domain)?;
    let node = Node::new(&ctx, "sim_bench_sink", &RosArgs::default())?;
    let mut subs = Vec::new();
    for c in &a.cameras {
        for k in ["image_raw", "depth", "segmentation", "instances"] {
            subs.push(node.create_subscription::<Image>(&format!("sim/{c}/{k}"), Qos::reliable().depth(5))?);
        }
    }
    let mut got = 0u64;
    let mut last = Instant::now();
    loop {
        let mut any = false;
        for s in &subs {
            while s.try_recv().is_some() {
                got += 1;
                any = true;
            }
        }
        if any {
            last = Instant::now();
        } else if got > 0 && last.elapsed().as_secs_f64() > a.idle.min(2.0) || last.elapsed().as_secs_f64() > a.idle * 6.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    println!("{got}");
    Ok(())
}
