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

use crate::{percentile, timed};

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
    /// Arm looks to time (0 to skip): a cup_near_edge frame (front camera, 320×240, with its
    /// depth) → perception's cup detections placed on the table → the cup predictor's chain.
    #[arg(long, default_value_t = 50)]
    looks: usize,
    /// The perception checkpoint the arm's look runs (default: the shipped one).
    #[arg(long)]
    perception: Option<PathBuf>,
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
    let times = timed(a.steps, &|| step())?;
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
    if a.looks > 0 {
        arm_looks(&a, &reasoner)?;
    }
    Ok(())
}

/// The arm's reasoning step (a look at the table) on a rendered cup_near_edge frame, and the
/// rate of the push trials the cup predictor learns from.
fn arm_looks(a: &ReasonBenchArgs, reasoner: &Reasoner) -> Result<()> {
    use s2r_closedloop::cups::{optical_in_map, ArmReasoning, CupLocator};
    let Some(cup) = &reasoner.model.cup else {
        println!("arm looks: the model has no cup predictor (s2r train reason --cup-seeds)");
        return Ok(());
    };
    let path = a
        .perception
        .clone()
        .or_else(s2r_perception::node::shipped_checkpoint)
        .context("no --perception and no shipped perception model")?;
    let locator = CupLocator::load(&path)?;
    s2r_sim::render::quiet_headless_vulkan();
    let mut scenario = s2r_sim::scenario::Scenario::load(&s2r_sim::node::resolve_scenario(&cup.scenario)?)?;
    scenario.sensors.cameras.retain(|c| c.name == "front");
    let mut sim = s2r_sim::sim::Sim::new(scenario.clone(), &s2r_sim::sim::SimOptions { seed: 1000, image_scale: 0.5, render: true })?;
    let frame = sim.snapshot()?.into_iter().next().context("no front camera frame")?;
    let view = s2r_sim::arm_expert::ArmView::of(&sim).context("not an arm scenario")?;
    let pose = optical_in_map(&sim, "front").context("no front camera")?;
    let seen = locator.locate(&frame, &pose, view.table_top)?;
    let chains = || -> Result<usize> {
        let mut arm = ArmReasoning::default();
        std::hint::black_box(arm.look(reasoner, &seen, &view, Header::default())?);
        Ok(arm.table.cups.len())
    };
    let whole = || -> Result<usize> {
        let seen = locator.locate(&frame, &pose, view.table_top)?;
        let mut arm = ArmReasoning::default();
        std::hint::black_box(arm.look(reasoner, &seen, &view, Header::default())?);
        Ok(arm.table.cups.len())
    };
    let cups = whole()?;
    let row = |what: String, times: &[f64]| {
        let rate = 1e3 * times.len() as f64 / times.iter().sum::<f64>();
        println!("| {what} | {:.2} | {:.2} | {rate:.1} |", percentile(times, 0.5), percentile(times, 0.99));
    };
    row(format!("cups on the table ({cups}) → cup chains and keep-outs"), &timed(a.looks, &|| chains().map(drop))?);
    row(
        format!("{}x{} frame and depth → perception → cups on the table → cup chains", frame.image.width, frame.image.height),
        &timed(a.looks, &|| whole().map(drop))?,
    );
    let t = Instant::now();
    let n = 50u64;
    for seed in 0..n {
        let push = s2r_sim::consequences::scenario_push(&scenario, seed)?;
        match s2r_sim::consequences::push_trial(&scenario, seed, &push) {
            Ok(_) | Err(s2r_sim::consequences::TrialError::Unreachable { .. } | s2r_sim::consequences::TrialError::Disturbed { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    println!("push trials ({}): {:.0} per second", cup.scenario, n as f64 / t.elapsed().as_secs_f64());
    Ok(())
}
