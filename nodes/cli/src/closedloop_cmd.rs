//! `s2r eval closed-loop`: drivers in the loop with the simulator on held-out
//! seeds, scored per episode and in aggregate, with an HTML report; and
//! `s2r demos`: the expert's episodes recorded for behaviour cloning
//! (s2r_closedloop runs and measures; this picks the drivers and prints).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use s2r_closedloop::driver::{Dagger, Driver, Expert, Policy, Scripted};
use s2r_closedloop::episode::EpisodeOptions;
use s2r_closedloop::node_driver::NodeDriver;
use s2r_closedloop::reason::Reasoned;
use s2r_closedloop::score::Summary;
use s2r_closedloop::{evaluate, report, EvalOptions};
use s2r_sim::scenario::Scenario;

#[derive(Args)]
pub struct ClosedLoopArgs {
    /// Scenarios (shipped names or files) with a route or an arm's task: each is run by every driver.
    #[arg(long, required = true, value_delimiter = ',')]
    scenario: Vec<String>,
    /// Seeds, A..B inclusive (held out from training: demonstrations use lower seeds).
    #[arg(long, default_value = "1000..1099")]
    seeds: String,
    /// Drivers: scripted (the scenario's constant speed or the arm's scripted sweep), expert
    /// (privileged), policy (--policy, in process), node (policy_node with --policy over DDS,
    /// loopback only, on $ROS_DOMAIN_ID: what a robot runs, at the node's pace).
    #[arg(long, value_delimiter = ',', default_value = "scripted,expert")]
    driver: Vec<String>,
    /// The policy checkpoint the `policy` and `node` drivers run (from `s2r train policy`).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Report folder: report.html, results.json, bags of failed episodes.
    #[arg(short, long, default_value = "closed_loop")]
    out: PathBuf,
    /// Record a bag of the first N failed episodes of each scenario and driver (under OUT/failed/).
    #[arg(long, default_value_t = 2)]
    failed_bags: usize,
    /// Leave out the thumbnails (no rendering at all for drivers that do not look).
    #[arg(long)]
    no_thumbnails: bool,
    /// Camera resolution factor for thumbnails, recordings and drivers that look.
    #[arg(long, default_value_t = 0.25)]
    image_scale: f64,
    /// Cameras to render (the rest of the rig is left out: faster).
    #[arg(long, value_delimiter = ',', default_value = "front")]
    cameras: Vec<String>,
    /// Reasoning as a safety filter: off (the drivers as they are), on (every driver's commands
    /// through the constraints reason_node writes from the front camera and odometry at 10 Hz),
    /// both (each driver twice, without and with).
    #[arg(long, default_value = "off")]
    reason: String,
    /// The reason model for --reason (default: the shipped models/reason/reason.json).
    #[arg(long)]
    reason_model: Option<PathBuf>,
    /// Metres the reasoner counts on seeing (reason_node's `sight`: a car's low beams).
    #[arg(long, default_value_t = 60.0)]
    sight: f32,
    /// The perception checkpoint that finds an arm scenario's cups for --reason (default: the
    /// shipped models/perception/perception.safetensors).
    #[arg(long)]
    perception: Option<PathBuf>,
}

/// The drivers `names` as --reason asks: plain, filtered by reasoning, or both
/// (`arm`: the scenarios have an arm, whose reasoning finds cups with perception).
fn drivers(a: &ClosedLoopArgs, arm: bool) -> Result<Vec<Box<dyn Driver>>> {
    let (plain, reasoned) = match a.reason.as_str() {
        "off" => (true, false),
        "on" => (false, true),
        "both" => (true, true),
        other => bail!("--reason '{other}': off, on or both"),
    };
    let reasoner = || reasoner(a.reason_model.as_ref(), "--reason: no --reason-model");
    if reasoned && (a.sight.is_nan() || a.sight <= 0.0) {
        bail!("--sight must be positive metres, got {}", a.sight);
    }
    let mut out: Vec<Box<dyn Driver>> = Vec::new();
    for name in &a.driver {
        if plain {
            out.push(driver(name, a.policy.as_ref())?);
        }
        if reasoned {
            let reasoner = reasoner()?;
            if arm {
                reasoner.require_cups().context("--reason on an arm")?;
            }
            let mut r = Reasoned::new(driver(name, a.policy.as_ref())?, reasoner, a.sight, 0.1);
            if arm {
                let path = a
                    .perception
                    .clone()
                    .or_else(s2r_perception::node::shipped_checkpoint)
                    .context("--reason on an arm: no --perception and no shipped models/perception/perception.safetensors")?;
                r = r.with_cup_locator(s2r_closedloop::cups::CupLocator::load(&path)?);
            }
            out.push(Box::new(r));
        }
    }
    Ok(out)
}

/// The reason model `model`, or the shipped one; `missing` says which option
/// would have named one, for the error when there is neither.
pub(crate) fn reasoner(model: Option<&PathBuf>, missing: &str) -> Result<s2r_reason::node::Reasoner> {
    let path = model
        .cloned()
        .or_else(s2r_reason::node::shipped_model)
        .with_context(|| format!("{missing} and no shipped models/reason/reason.json"))?;
    Ok(s2r_reason::node::Reasoner::load(&path)?)
}

/// Loads a scenario by name or path with only `cameras` of its rig.
pub(crate) fn load(name: &str, cameras: &[String]) -> Result<Scenario> {
    let file = s2r_sim::node::resolve_scenario(name)?;
    let mut s = Scenario::load(&file)?;
    let have: Vec<String> = s.sensors.cameras.iter().map(|c| c.name.clone()).collect();
    if let Some(missing) = cameras.iter().find(|c| !have.contains(c)) {
        bail!("--cameras: {} has no camera '{missing}' (it has {})", s.name, have.join(", "));
    }
    s.sensors.cameras.retain(|c| cameras.contains(&c.name));
    Ok(s)
}

/// Parses "A..B" (inclusive) or a single seed.
pub(crate) fn seeds(s: &str) -> Result<Vec<u64>> {
    let (a, b) = match s.split_once("..") {
        Some((a, b)) => (a.trim().parse::<u64>(), b.trim().trim_start_matches('=').parse::<u64>()),
        None => (s.trim().parse::<u64>(), s.trim().parse::<u64>()),
    };
    match (a, b) {
        (Ok(a), Ok(b)) if a <= b => Ok((a..=b).collect()),
        _ => bail!("--seeds '{s}': expected A..B with A ≤ B (inclusive), or one seed"),
    }
}

pub(crate) fn driver(name: &str, policy: Option<&PathBuf>) -> Result<Box<dyn Driver>> {
    Ok(match name {
        "scripted" => Box::new(Scripted),
        "expert" => Box::new(Expert::default()),
        "policy" => match policy {
            Some(p) => Box::new(Policy::load(p)?),
            None => bail!("--driver policy needs --policy CHECKPOINT (train one with s2r train policy)"),
        },
        "dagger" => match policy {
            Some(p) => Box::new(Dagger::load(p)?),
            None => bail!("--driver dagger needs --policy CHECKPOINT: the policy drives, the expert labels"),
        },
        "node" => match policy {
            Some(p) => {
                // Loopback only, on the environment's domain (0 without one).
                let domain = std::env::var("ROS_DOMAIN_ID").ok().and_then(|d| d.trim().parse::<u16>().ok()).unwrap_or(0);
                Box::new(NodeDriver::start(p, domain)?)
            }
            None => bail!("--driver node needs --policy CHECKPOINT: the policy_node it runs over DDS loads it"),
        },
        other => bail!("--driver '{other}': known drivers are scripted, expert, policy, dagger and node"),
    })
}

pub fn run(a: ClosedLoopArgs) -> Result<()> {
    let seeds = seeds(&a.seeds)?;
    let scenarios = a.scenario.iter().map(|n| load(n, &a.cameras)).collect::<Result<Vec<_>>>()?;
    let arm = scenarios.iter().any(|s| matches!(s.ego, s2r_sim::scenario::EgoSpec::Arm(_)));
    let mut drivers = drivers(&a, arm)?;
    s2r_sim::render::quiet_headless_vulkan();
    let opts = EvalOptions {
        episode: EpisodeOptions { image_scale: a.image_scale, thumbnail: !a.no_thumbnails, record: None, ..Default::default() },
        failed_bags: a.failed_bags,
        bags: Some(a.out.join("failed")),
    };
    let mut summaries = Vec::new();
    let mut all = Vec::new();
    for scenario in &scenarios {
        for d in drivers.iter_mut() {
            let total = seeds.len();
            let mut n = 0;
            let episodes = evaluate(scenario, &seeds, d.as_mut(), &opts, &mut |e| {
                n += 1;
                if let Some(arm) = &e.arm {
                    println!(
                        "{} {} seed {} ({n}/{total}): {:?}, reached {:?}, score {:.3}, cup {:.1} cm from the spot{}{}{}",
                        e.scenario,
                        e.driver,
                        e.seed,
                        e.outcome,
                        arm.stage,
                        e.driving_score,
                        arm.place_error_m * 100.0,
                        if arm.cups_dropped > 0 { format!(", {} cup(s) off the table", arm.cups_dropped) } else { String::new() },
                        if arm.cups_knocked_over > 0 { format!(", {} knocked over", arm.cups_knocked_over) } else { String::new() },
                        e.filter
                            .as_ref()
                            .map_or(String::new(), |f| format!("; the filter held {} commands over {} looks", f.changed, f.steps)),
                    );
                    return;
                }
                let hits: Vec<String> = e.collisions.iter().map(|h| format!("{} {:.1} m/s", h.class, h.speed)).collect();
                let filter = e.filter.as_ref().map_or(String::new(), |f| {
                    format!(
                        "; the filter changed {} of {} commands{}",
                        f.changed,
                        f.steps,
                        f.lowest_limit.map_or(String::new(), |l| format!(", lowest limit {l:.1} m/s"))
                    )
                });
                println!(
                    "{} {} seed {} ({n}/{total}): {:?}, route {:.0} %, score {:.3}{}{filter}",
                    e.scenario,
                    e.driver,
                    e.seed,
                    e.outcome,
                    e.route_completion * 100.0,
                    e.driving_score,
                    if hits.is_empty() { String::new() } else { format!(", hit {}", hits.join(", ")) }
                );
            })
            .with_context(|| format!("evaluating {} on {}", d.name(), scenario.name))?;
            summaries.push(Summary::of(&episodes));
            all.extend(episodes);
        }
    }
    report::write(&a.out, &summaries, &all)?;
    println!("\n{}", report::markdown(&summaries));
    for m in &summaries {
        println!("{} {}: {:.1} episodes/min", m.scenario, m.driver, m.episodes_per_minute);
    }
    println!("report: {}", a.out.join("report.html").display());
    Ok(())
}

#[derive(Args)]
pub struct DemosArgs {
    /// Scenarios (shipped names or files) with a route, or arm scenarios with a task (one kind per set).
    #[arg(long, required = true, value_delimiter = ',')]
    scenario: Vec<String>,
    /// Seeds, A..B inclusive (keep them apart from the evaluation's, 1000 and up).
    #[arg(long, default_value = "1..100")]
    seeds: String,
    /// Who demonstrates: expert; dagger (--policy drives, the expert's commands are recorded as
    /// the labels: a DAgger round); scripted (no commands: a baseline's data).
    #[arg(long, default_value = "expert")]
    driver: String,
    /// The policy a `dagger` round runs.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Output folder: one bag per episode and manifest.yaml.
    #[arg(short, long, default_value = "demos")]
    out: PathBuf,
    /// Camera resolution factor of the recorded frames (0.25: 160×120 from 640×480).
    #[arg(long, default_value_t = 0.25)]
    image_scale: f64,
    /// Cameras to record (the rest of the rig is left out).
    #[arg(long, value_delimiter = ',', default_value = "front")]
    cameras: Vec<String>,
    /// Pulses of other commands in the driver's (braking, speeding up, steering for about a
    /// second every few seconds), recorded as executed: data for a world model to learn what
    /// commands do, not for a policy to imitate.
    #[arg(long)]
    perturb: bool,
    /// Seconds recorded after each episode ends, the driver still driving: what follows a
    /// dropped cup or a collision, for a world model to learn (the figures stay those at the end).
    #[arg(long, default_value_t = 0.0)]
    after: f64,
    /// Record each camera's instance ids (/sim/<camera>/instances) beside its frames: which
    /// pixels are which object, what `s2r eval world` scores a predicted cup fall against.
    #[arg(long)]
    instances: bool,
}

pub fn demos(a: DemosArgs) -> Result<()> {
    let seeds = seeds(&a.seeds)?;
    if !(a.after.is_finite() && a.after >= 0.0) {
        bail!("--after must be seconds, 0 or more; got {}", a.after);
    }
    let mut d = driver(&a.driver, a.policy.as_ref())?;
    if a.perturb {
        d = Box::new(s2r_closedloop::driver::Perturbed::new(d));
    }
    let scenarios: Vec<Scenario> = a.scenario.iter().map(|n| load(n, &a.cameras)).collect::<Result<_>>()?;
    let total = seeds.len() * scenarios.len();
    let mut n = 0;
    let m = s2r_closedloop::demos::record(
        &scenarios,
        &seeds,
        d.as_mut(),
        &a.out,
        &EpisodeOptions { image_scale: a.image_scale, after: a.after, instances: a.instances, ..Default::default() },
        &mut |e| {
            n += 1;
            let progress = match e.stage {
                Some(stage) => format!("reached {stage:?}"),
                None => format!("route {:.0} %", e.route_completion * 100.0),
            };
            println!(
                "{} seed {} ({n}/{total}): {:?}, {:.1} s, {progress}{}",
                e.scenario,
                e.seed,
                e.outcome,
                e.seconds,
                if e.collisions > 0 { format!(", {} collisions", e.collisions) } else { String::new() }
            );
        },
    )?;
    let clean = m.episodes.iter().filter(|e| e.collisions == 0).count();
    println!("{} episodes ({clean} without a collision) in {}", m.episodes.len(), a.out.join("manifest.yaml").display());
    Ok(())
}
