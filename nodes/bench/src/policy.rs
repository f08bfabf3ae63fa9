//! `s2r bench policy`: policy_node's whole step per frame (colour
//! conversion and resize → network → temporal ensembling) at a camera
//! resolution, as p50/p99 latency (the budget: 10 ms on 2 cores);
//! training throughput (examples/s of forward, backward and optimiser
//! step); and closed-loop evaluation speed (episodes per minute of the
//! expert without cameras and of the policy with its camera).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use candle_core::Device;
use clap::Args;
use s2r_closedloop::driver::{Expert, Policy};
use s2r_closedloop::episode::{self, EpisodeOptions};
use s2r_policy::checkpoint;
use s2r_policy::model::{Config, Robot};
use s2r_policy::pilot::Pilot;
use sim2real_msgs::std_msgs::msg::Header;

use crate::percentile;

/// Options of `s2r bench policy`.
#[derive(Args, Clone)]
pub struct PolicyBenchArgs {
    /// A checkpoint (default: an untrained network of the default shape:
    /// speed does not depend on the weights).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Camera frame size, WIDTHxHEIGHT.
    #[arg(long, default_value = "640x480")]
    size: String,
    /// Steps timed.
    #[arg(long, default_value_t = 300)]
    steps: usize,
    /// Closed-loop episodes per driver to time (icy_night_crossing, or
    /// cup_near_edge for an arm; 0 to skip).
    #[arg(long, default_value_t = 3)]
    episodes: usize,
    /// The robot of the untrained default network: vehicle or arm.
    #[arg(long, default_value = "vehicle")]
    robot: String,
}

pub(crate) fn run(a: PolicyBenchArgs) -> Result<()> {
    let (w, h) = crate::parse_size(&a.size)?;
    let tmp = std::env::temp_dir().join(format!("s2r-bench-policy-{}.safetensors", std::process::id()));
    let path = match &a.checkpoint {
        Some(p) => p.clone(),
        None => {
            let robot = match a.robot.as_str() {
                "vehicle" => Robot::Vehicle,
                "arm" => Robot::Arm,
                other => anyhow::bail!("--robot '{other}': vehicle or arm"),
            };
            checkpoint::save_untrained(&tmp, Config::small("front", robot), 0)?;
            tmp.clone()
        }
    };
    let mut pilot = Pilot::load(&path)?;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let cfg = pilot.config().clone();
    println!(
        "policy benchmark: {w}x{h} bgr8 frames, {} ({:?}, {}x{} input from rows {}..{}, {} frame(s), chunks of {}), candle CPU, {threads} cores",
        path.display(),
        cfg.robot,
        cfg.width,
        cfg.height,
        cfg.rows[0],
        cfg.rows[1],
        cfg.frames(),
        cfg.chunk
    );
    let data: Vec<u8> = (0..(w * h) as usize).flat_map(|i| [(i % 251) as u8, (i / 640 % 200) as u8, 90]).collect();
    let img = s2r_image::image_msg(Header::default(), w as usize, h as usize, "bgr8", 3, data);
    // A car at 5 m/s, or an arm at rest.
    let mut state = vec![0f32; cfg.robot.state_scale().len()];
    state[0] = if cfg.robot == Robot::Vehicle { 5.0 } else { 0.0 };
    for k in 0..10 {
        pilot.act(k as f64 * 0.1, &img, "bench", &state)?;
    }
    let mut times = Vec::with_capacity(a.steps);
    for k in 0..a.steps {
        let t = Instant::now();
        std::hint::black_box(pilot.act(1.0 + k as f64 * 0.1, &img, "bench", &state)?);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!("| step | p50 ms | p99 ms | steps/s |");
    println!("|---|---|---|---|");
    let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
    println!("| {w}x{h} frame → command | {:.2} | {:.2} | {:.0} |", percentile(&times, 0.5), percentile(&times, 0.99), 1e3 / mean);

    // Training throughput at batch 32.
    {
        use crate::models::Bench as _;
        let rate = crate::models::Policy::of(cfg.clone(), &Device::Cpu)?.train_rate(10, &Device::Cpu)?;
        println!("training: {:.0} examples/s (batch 32, forward + backward + AdamW)", 32.0 * rate);
    }

    if a.episodes > 0 {
        let name = if cfg.robot == Robot::Arm { "cup_near_edge" } else { "icy_night_crossing" };
        let file = s2r_sim::node::resolve_scenario(name)?;
        let mut scenario = s2r_sim::scenario::Scenario::load(&file)?;
        scenario.sensors.cameras.retain(|c| c.name == cfg.camera);
        let opts = EpisodeOptions::default();
        let mut expert = Expert::default();
        let t = Instant::now();
        for seed in 0..a.episodes as u64 {
            episode::run(&scenario, 1000 + seed, &mut expert, &opts)?;
        }
        println!("closed loop on {name}, expert (no cameras): {:.1} episodes/min", a.episodes as f64 * 60.0 / t.elapsed().as_secs_f64());
        let mut policy = Policy::load(&path)?;
        let camera = scenario.sensors.cameras.first().map_or((0, 0), |c| {
            let k = cfg.image_scale(c.width, c.height);
            ((f64::from(c.width) * k).round() as u32, (f64::from(c.height) * k).round() as u32)
        });
        let t = Instant::now();
        let mut sim_s = 0.0;
        for seed in 0..a.episodes as u64 {
            sim_s += episode::run(&scenario, 1000 + seed, &mut policy, &opts)?.sim_seconds;
        }
        let wall = t.elapsed().as_secs_f64();
        println!(
            "closed loop on {name}, policy (front camera at {}x{}): {:.1} episodes/min, {:.1}× real time",
            camera.0,
            camera.1,
            a.episodes as f64 * 60.0 / wall,
            sim_s / wall
        );
    }
    let _ = std::fs::remove_file(&tmp);
    Ok(())
}
