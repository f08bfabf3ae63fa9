//! Closed-loop evaluation: the simulator in lockstep with a driver in one
//! process, deterministic, scored episode by episode.
//!
//! A [`driver::Driver`] (the scenario's own script, the privileged expert,
//! or a learned policy behind the same trait) commands the ego at every
//! instant it asks for; [`episode::run`] steps the simulator, applies the
//! commands through the same clamping /cmd_vel gets, and measures what
//! happened (route completion, collisions and their impact speed, minimum
//! time-to-collision, hard braking, lane infractions); [`score`] turns that
//! into a driving score in the CARLA leaderboard's form and aggregates
//! episodes with confidence intervals; [`report`] writes the HTML report.

#![warn(missing_docs)]

use std::path::PathBuf;

pub mod cups;
pub mod demos;
pub mod driver;
pub mod episode;
pub mod node_driver;
pub mod reason;
pub mod report;
pub mod score;

/// What can stop an evaluation, naming the input.
#[derive(Debug, thiserror::Error)]
pub enum ClosedLoopError {
    /// The simulator's renderer failed (thumbnails, or a driver that looks).
    #[error("rendering {scenario} seed {seed}: {source}")]
    Render {
        /// The scenario's name.
        scenario: String,
        /// The episode's seed.
        seed: u64,
        /// The renderer's error.
        source: s2r_sim::render::RenderError,
    },
    /// A scenario this evaluation cannot score.
    #[error("{0}")]
    Scenario(String),
    /// The driver failed (a policy's network, its checkpoint).
    #[error("driver {driver}: {message}")]
    Driver {
        /// The driver's name.
        driver: String,
        /// What went wrong.
        message: String,
    },
    /// Writing the report, a thumbnail or a bag.
    #[error("writing {}: {message}", .path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// How to evaluate a driver on a scenario.
#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    /// For each episode.
    pub episode: episode::EpisodeOptions,
    /// Record a bag of each of the first this-many failed episodes (run
    /// again, deterministically, with the cameras on) under `bags`.
    pub failed_bags: usize,
    /// Where failed episodes' bags go: `<bags>/<scenario>_<driver>_seed<N>`.
    pub bags: Option<PathBuf>,
}

/// Runs `driver` on `scenario` for every seed; `done` sees each episode as it
/// ends (progress).
pub fn evaluate(
    scenario: &s2r_sim::scenario::Scenario,
    seeds: &[u64],
    driver: &mut dyn driver::Driver,
    opts: &EvalOptions,
    done: &mut dyn FnMut(&episode::Episode),
) -> Result<Vec<episode::Episode>, ClosedLoopError> {
    let mut out = Vec::with_capacity(seeds.len());
    let mut recorded = 0;
    for &seed in seeds {
        let e = episode::run(scenario, seed, driver, &opts.episode)?;
        if let (true, Some(dir)) = (e.failed() && recorded < opts.failed_bags, &opts.bags) {
            recorded += 1;
            let bag = dir.join(format!("{}_{}_seed{seed}", scenario.name, driver.name()));
            let again = episode::EpisodeOptions { record: Some(bag), thumbnail: false, ..opts.episode.clone() };
            episode::run(scenario, seed, driver, &again)?;
        }
        done(&e);
        out.push(e);
    }
    Ok(out)
}
