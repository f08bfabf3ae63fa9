//! `s2r bench deploy`: the deployed stack (launch/robot.launch.yaml:
//! perception, reason, policy and the safety watchdog, each its own
//! process, started by `s2r launch`) on this machine, fed as a robot feeds
//! it: camera frames at 10 Hz from a recording, odometry at 50 Hz. What it
//! measures is the latency from a frame's publication to the command
//! computed from it reaching the robot's `cmd_vel` (the stack runs with
//! `stamped:=true stamp:=frame`: policy_node stamps each command with its frame, and the
//! watchdog forwards it), p50/p99 against the budget (p99 ≤ 100 ms at 10
//! Hz), how many frames led to a command, and whether the latency grows
//! over the run (a queue building up behind a slow node).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use s2r_runtime::{Context, ContextOptions, DiscoveryRange, Node, Qos, RosArgs};
use sim2real_msgs::geometry_msgs::msg::{Twist, TwistStamped, TwistWithCovariance, Vector3};
use sim2real_msgs::nav_msgs::msg::Odometry;
use sim2real_msgs::sensor_msgs::msg::Image;
use sim2real_msgs::sim2real_msgs::msg::SafetyEvent;

use crate::percentile;

/// Options of `s2r bench deploy`.
#[derive(Args, Clone)]
pub struct DeployBenchArgs {
    /// Seconds measured (after a warm-up of 5 s).
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// Camera frames per second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// The recording whose frames are played, looped (default: the shipped bags/icy_night_crossing).
    #[arg(long)]
    bag: Option<PathBuf>,
    /// The camera topic in it.
    #[arg(long, default_value = "/sim/front/image_raw")]
    topic: String,
    /// Resize the frames to WIDTHxHEIGHT (a robot's camera; default: as recorded).
    #[arg(long)]
    size: Option<String>,
    /// The launch file (default: the package's launch/robot.launch.yaml).
    #[arg(long)]
    launch: Option<PathBuf>,
    /// More launch arguments, NAME:=VALUE.
    #[arg(long = "arg")]
    args: Vec<String>,
    /// DDS domain for the run (kept apart from your graph).
    #[arg(long, default_value_t = 77)]
    domain: u16,
}

fn frames(bag: &Path, topic: &str) -> Result<Vec<Image>> {
    let reader = s2r_bag::BagReader::open(bag).with_context(|| format!("{}", bag.display()))?;
    let frames: Vec<Image> = reader
        .messages()
        .filter(|m| reader.connections[m.connection].topic == topic)
        .filter_map(|m| s2r_runtime::Serialized(m.data.clone()).decode::<Image>().ok())
        .collect();
    if frames.is_empty() {
        bail!("{}: no sensor_msgs/Image on {topic}", bag.display());
    }
    Ok(frames)
}

/// The launch, ended as Ctrl-C does when dropped (also when the benchmark fails).
struct Launch(Child);

impl Drop for Launch {
    fn drop(&mut self) {
        // SAFETY: kill only sends a signal to the process we started.
        unsafe {
            libc::kill(self.0.id() as libc::pid_t, libc::SIGINT);
        }
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) async fn run(a: DeployBenchArgs) -> Result<()> {
    let bag = match &a.bag {
        Some(b) => b.clone(),
        None => s2r_runtime::share::find_shared("bags/icy_night_crossing", "metadata.yaml")
            .and_then(|m| m.parent().map(PathBuf::from))
            .ok_or_else(|| anyhow!("no bags/icy_night_crossing (the source tree's sample recording): give --bag"))?,
    };
    let launch_file = match &a.launch {
        Some(l) => l.clone(),
        None => s2r_runtime::share::find_shared("launch", "robot.launch.yaml")
            .ok_or_else(|| anyhow!("no launch/robot.launch.yaml: give --launch"))?,
    };
    if !(a.rate > 0.0 && a.seconds > 0.0) {
        bail!("--rate and --seconds must be positive");
    }
    let mut frames = frames(&bag, &a.topic)?;
    if let Some(size) = &a.size {
        let (w, h) = crate::parse_size(size)?;
        for f in frames.iter_mut() {
            let rgb = s2r_image::rgb8(f, &a.topic)?;
            let resized = s2r_image::Rgb { width: f.width as usize, height: f.height as usize, data: rgb }.resize(w as usize, h as usize);
            *f = s2r_image::rgb8_msg(f.header.clone(), resized.width, resized.height, resized.data);
        }
    }
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "deploy benchmark: {} ({}x{} {} frames from {} {}) at {} Hz, odometry at 50 Hz, for {} s; {} cores, loopback, domain {}",
        launch_file.display(),
        frames[0].width,
        frames[0].height,
        frames[0].encoding,
        bag.display(),
        a.topic,
        a.rate,
        a.seconds,
        threads,
        a.domain
    );
    let mut launch = Command::new(std::env::current_exe()?);
    launch.arg("launch").arg(&launch_file).args(["stamped:=true", "stamp:=frame"]).args(&a.args);
    launch
        .env("ROS_DOMAIN_ID", a.domain.to_string())
        .env("ROS_LOCALHOST_ONLY", "1")
        .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _launch = Launch(launch.spawn().context("starting s2r launch")?);
    measure(&a, &frames).await
}

async fn measure(a: &DeployBenchArgs, frames: &[Image]) -> Result<()> {
    let ctx = Context::new(ContextOptions { domain_id: a.domain, range: DiscoveryRange::Localhost, ..Default::default() })?;
    let node = Node::new(&ctx, "deploy_bench", &RosArgs::default())?;
    let camera = node.create_publisher::<Image>("/camera/image_raw", Qos::sensor_data())?;
    let odom = node.create_publisher::<Odometry>("/odom", Qos::sensor_data())?;
    let cmd = node.create_subscription::<TwistStamped>("/cmd_vel", Qos::reliable().depth(1000))?;
    let events = node.create_subscription::<SafetyEvent>("/safety/events", Qos::transient_local().depth(50))?;
    let t = Instant::now();
    while camera.subscription_count() < 4 {
        if t.elapsed() > Duration::from_secs(90) {
            bail!("the stack's four camera readers did not come up within 90 s ({} did)", camera.subscription_count());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("stack up after {:.1} s", t.elapsed().as_secs_f64());
    let period = Duration::from_secs_f64(1.0 / a.rate);
    let odom_every = Duration::from_millis(20);
    let warm = Duration::from_secs(5);
    let total = warm + Duration::from_secs_f64(a.seconds);
    let start = Instant::now();
    let measuring_from = s2r_runtime::stamp_ns(&node.now().to_msg()) + warm.as_nanos() as i64;
    let (mut next_frame, mut next_odom) = (start, start);
    let mut sent: HashMap<(i32, u32), (Instant, bool)> = HashMap::new();
    let mut seen: HashSet<(i32, u32)> = HashSet::new();
    let mut latencies: Vec<(f64, f64)> = Vec::new();
    let (mut published, mut commands, mut stops) = (0usize, 0usize, 0usize);
    let mut k = 0usize;
    while start.elapsed() < total {
        let now = Instant::now();
        if now >= next_frame {
            let mut f = frames[k % frames.len()].clone();
            k += 1;
            f.header.stamp = node.now().to_msg();
            let measured = start.elapsed() >= warm;
            sent.insert((f.header.stamp.sec, f.header.stamp.nanosec), (Instant::now(), measured));
            camera.publish(f)?;
            published += measured as usize;
            next_frame += period;
        }
        if now >= next_odom {
            let twist = TwistWithCovariance {
                twist: Twist { linear: Vector3 { x: 5.0, ..Default::default() }, ..Default::default() },
                ..Default::default()
            };
            odom.publish(Odometry { twist, ..Default::default() })?;
            next_odom += odom_every;
        }
        while let Some(c) = cmd.try_recv() {
            let arrived = Instant::now();
            if start.elapsed() < warm {
                continue;
            }
            commands += 1;
            // A command from a frame: its first arrival; stops the watchdog sends are stamped now.
            let stamp = (c.header.stamp.sec, c.header.stamp.nanosec);
            match sent.remove(&stamp) {
                Some((t, measured)) => {
                    seen.insert(stamp);
                    if measured {
                        latencies.push(((t - start).as_secs_f64(), (arrived - t).as_secs_f64() * 1e3));
                    }
                }
                // The policy's rate repeats a frame's command; the watchdog's stops are stamped now.
                None if seen.contains(&stamp) => {}
                None => stops += 1,
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let interventions: Vec<Arc<SafetyEvent>> = std::iter::from_fn(|| events.try_recv()).filter(|e| e.engaged).collect();
    if latencies.is_empty() {
        bail!("no command computed from a frame reached /cmd_vel ({commands} commands, {stops} stops from the watchdog)");
    }
    let mut ms: Vec<f64> = latencies.iter().map(|l| l.1).collect();
    ms.sort_by(f64::total_cmp);
    let third = latencies.len() / 3;
    let p50 = |v: &[(f64, f64)]| {
        let mut m: Vec<f64> = v.iter().map(|l| l.1).collect();
        m.sort_by(f64::total_cmp);
        percentile(&m, 0.5)
    };
    println!("| frames published | frames that became a command | p50 | p90 | p99 | max | p50 first third | p50 last third |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| {published} | {} ({:.0} %) | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
        latencies.len(),
        100.0 * latencies.len() as f64 / published.max(1) as f64,
        percentile(&ms, 0.5),
        percentile(&ms, 0.9),
        percentile(&ms, 0.99),
        ms[ms.len() - 1],
        p50(&latencies[..third.max(1)]),
        p50(&latencies[latencies.len() - third.max(1)..])
    );
    let during: Vec<&Arc<SafetyEvent>> =
        interventions.iter().filter(|e| s2r_runtime::stamp_ns(&e.header.stamp) >= measuring_from).collect();
    println!(
        "commands at the robot: {commands} ({} from frames, the rest the policy's 20 Hz repeating them, {stops} stops from the watchdog); \
         watchdog interventions: {} while the stack started, {} while measuring{}",
        latencies.len(),
        interventions.len() - during.len(),
        during.len(),
        during.iter().map(|e| format!("; {}", e.detail)).collect::<String>()
    );
    println!("budget: p99 ≤ 100 ms at 10 Hz: {}", if percentile(&ms, 0.99) <= 100.0 { "met" } else { "not met" });
    Ok(())
}
