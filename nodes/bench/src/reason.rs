//! `s2r bench reason`: reason_node's whole step per camera frame (colour
//! conversion, crop and resize → surface network → stopping predictor → the
//! reasoning chain) as p50/p99 latency (the budget: 20 ms on 2
//! cores), and the rate at which the simulator runs the braking trials the
//! stopping predictor learns from.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use s2r_reason::node::{shipped_model, Reasoner};
use s2r_sim::consequences::{braking_situation, braking_trial};
use sim2real_msgs::std_msgs::msg::Header;

use crate::percentile;

/// Options of `s2r bench reason`.
#[derive(Args, Clone)]
pub struct ReasonBenchArgs {
    /// The model file (default: the shipped models/reason/reason.json).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Camera frame size, WIDTHxHEIGHT.
    #[arg(long, default_value = "640x480")]
    size: String,
    /// Steps timed.
    #[arg(long, default_value_t = 300)]
    steps: usize,
    /// Braking trials to time (0 to skip).
    #[arg(long, default_value_t = 100)]
    trials: usize,
}

pub(crate) fn run(a: ReasonBenchArgs) -> Result<()> {
    let (w, h) = crate::parse_size(&a.size)?;
    let path = a.model.clone().or_else(shipped_model).context("no --model and no shipped models/reason/reason.json")?;
    let reasoner = Reasoner::load(&path)?;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("reason benchmark: {w}x{h} bgr8 frames, {}, candle CPU, {threads} cores", path.display());
    let data: Vec<u8> = (0..(w * h) as usize).flat_map(|i| [(i % 251) as u8, (i / 640 % 200) as u8, 90]).collect();
    let img = s2r_image::image_msg(Header::default(), w as usize, h as usize, "bgr8", 3, data);
    let step = || -> Result<()> {
        let reading = reasoner.read(&img, "bench", None)?;
        std::hint::black_box(reasoner.reason(img.header.clone(), &reading, 12.0, 0.1, 60.0));
        Ok(())
    };
    for _ in 0..10 {
        step()?;
    }
    let mut times = Vec::with_capacity(a.steps);
    for _ in 0..a.steps {
        let t = Instant::now();
        step()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
    println!("| step | p50 ms | p99 ms | steps/s |");
    println!("|---|---|---|---|");
    println!("| {w}x{h} frame → reasoning chain | {:.2} | {:.2} | {:.0} |", percentile(&times, 0.5), percentile(&times, 0.99), 1e3 / mean);
    if a.trials > 0 {
        let file = s2r_sim::node::resolve_scenario(&reasoner.model.scenario)?;
        let scenario = s2r_sim::scenario::Scenario::load(&file)?;
        let t = Instant::now();
        for seed in 0..a.trials as u64 {
            let (mu, speed, reaction) = braking_situation(seed);
            braking_trial(&scenario, seed, mu, speed, reaction)?;
        }
        println!("braking trials ({}): {:.0} per second", reasoner.model.scenario, a.trials as f64 / t.elapsed().as_secs_f64());
    }
    Ok(())
}
