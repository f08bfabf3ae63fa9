//! `s2r eval closed-loop`: drivers in the loop with the simulator on held-out
//! seeds, scored per episode and in aggregate, with an HTML report
//! (s2r_closedloop runs and measures; this picks the drivers and prints).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use s2r_closedloop::driver::{Driver, Expert, Scripted};
use s2r_closedloop::episode::EpisodeOptions;
use s2r_closedloop::score::Summary;
use s2r_closedloop::{evaluate, report, EvalOptions};
use s2r_sim::scenario::Scenario;

#[derive(Args)]
pub struct ClosedLoopArgs {
    /// Scenarios (shipped names or files) with a route: each is driven by every driver.
    #[arg(long, required = true, value_delimiter = ',')]
    scenario: Vec<String>,
    /// Seeds, A..B inclusive (held out from training: demonstrations use lower seeds).
    #[arg(long, default_value = "1000..1099")]
    seeds: String,
    /// Drivers: scripted (the scenario's constant speed), expert (privileged).
    #[arg(long, value_delimiter = ',', default_value = "scripted,expert")]
    driver: Vec<String>,
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
}

/// Parses "A..B" (inclusive) or a single seed.
fn seeds(s: &str) -> Result<Vec<u64>> {
    let (a, b) = match s.split_once("..") {
        Some((a, b)) => (a.trim().parse::<u64>(), b.trim().trim_start_matches('=').parse::<u64>()),
        None => (s.trim().parse::<u64>(), s.trim().parse::<u64>()),
    };
    match (a, b) {
        (Ok(a), Ok(b)) if a <= b => Ok((a..=b).collect()),
        _ => bail!("--seeds '{s}': expected A..B with A ≤ B (inclusive), or one seed"),
    }
}

fn driver(name: &str) -> Result<Box<dyn Driver>> {
    Ok(match name {
        "scripted" => Box::new(Scripted),
        "expert" => Box::new(Expert::default()),
        other => bail!("--driver '{other}': known drivers are scripted and expert"),
    })
}

pub fn run(a: ClosedLoopArgs) -> Result<()> {
    let seeds = seeds(&a.seeds)?;
    let mut drivers: Vec<Box<dyn Driver>> = a.driver.iter().map(|d| driver(d)).collect::<Result<_>>()?;
    s2r_sim::render::quiet_headless_vulkan();
    let opts = EvalOptions {
        episode: EpisodeOptions { image_scale: a.image_scale, thumbnail: !a.no_thumbnails, record: None },
        failed_bags: a.failed_bags,
        bags: Some(a.out.join("failed")),
    };
    let mut summaries = Vec::new();
    let mut all = Vec::new();
    for name in &a.scenario {
        let file = s2r_sim::node::resolve_scenario(name)?;
        let scenario = Scenario::load(&file)?;
        for d in drivers.iter_mut() {
            let total = seeds.len();
            let mut n = 0;
            let episodes = evaluate(&scenario, &seeds, d.as_mut(), &opts, &mut |e| {
                n += 1;
                let hits: Vec<String> = e.collisions.iter().map(|h| format!("{} {:.1} m/s", h.class, h.speed)).collect();
                println!(
                    "{} {} seed {} ({n}/{total}): {:?}, route {:.0} %, score {:.3}{}",
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
