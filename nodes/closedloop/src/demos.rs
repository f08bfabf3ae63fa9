//! Demonstrations (`s2r demos`): episodes of a driver (the privileged
//! expert) recorded as rosbag2 bags — camera frames, odometry or joint
//! states, TF, the driver's commands on /cmd_vel or /joint_commands,
//! collisions — with a manifest that says per episode how it ended, for
//! behaviour cloning.

use std::path::Path;

use serde::Serialize;

use crate::driver::Driver;
use crate::episode::{self, EpisodeOptions, Outcome, Stage};
use crate::ClosedLoopError;

/// The manifest's format tag.
pub const FORMAT: &str = "sim2real.demos/1";

/// One recorded episode.
#[derive(Debug, Clone, Serialize)]
pub struct DemoEpisode {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// The bag folder, relative to the manifest.
    pub bag: String,
    /// Completed (route driven, cup placed), timed out, or dropped (a cup off the table).
    pub outcome: Outcome,
    /// Share of the route covered.
    pub route_completion: f64,
    /// Objects the ego hit.
    pub collisions: usize,
    /// Whether a pedestrian, child or cyclist was among them (such an episode is no demonstration to copy).
    pub hit_vulnerable: bool,
    /// The episode's driving score.
    pub driving_score: f64,
    /// Sim seconds to the episode's end (its bag goes on `after` seconds more).
    pub seconds: f64,
    /// Arms: how far the task got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
}

/// `manifest.yaml` of a demonstration set.
#[derive(Debug, Clone, Serialize)]
pub struct DemoManifest {
    /// [`FORMAT`].
    pub format: String,
    /// Who drove.
    pub driver: String,
    /// The robot's command topic and type: what a policy learns to publish.
    pub action: String,
    /// Camera resolution factor the frames were rendered at.
    pub image_scale: f64,
    /// Seconds recorded after each episode's end (`s2r demos --after`).
    pub after: f64,
    /// Whether each camera's instance ids are recorded (`s2r demos --instances`).
    pub instances: bool,
    /// The episodes, in the order recorded.
    pub episodes: Vec<DemoEpisode>,
}

/// Records `driver` on `scenario` for every seed into `out`, one bag per
/// episode as `recording` says (its camera scale, the seconds past each
/// end, instance ids; its `record` folder is each episode's own), and
/// writes (rewrites) `out/manifest.yaml` after each.
pub fn record(
    scenarios: &[s2r_sim::scenario::Scenario],
    seeds: &[u64],
    driver: &mut dyn Driver,
    out: &Path,
    recording: &EpisodeOptions,
    done: &mut dyn FnMut(&DemoEpisode),
) -> Result<DemoManifest, ClosedLoopError> {
    let write_err = |path: &Path, e: &dyn std::fmt::Display| ClosedLoopError::Write { path: path.into(), message: e.to_string() };
    std::fs::create_dir_all(out).map_err(|e| write_err(out, &e))?;
    let arms = scenarios.iter().filter(|s| s.task.is_some()).count();
    if arms != 0 && arms != scenarios.len() {
        return Err(ClosedLoopError::Scenario(
            "a demonstration set is of one robot: give arm scenarios and driving scenarios to separate sets".into(),
        ));
    }
    let mut manifest = DemoManifest {
        format: FORMAT.into(),
        driver: driver.name().into(),
        action: if arms > 0 { "/joint_commands sensor_msgs/msg/JointState" } else { "/cmd_vel geometry_msgs/msg/Twist" }.into(),
        image_scale: recording.image_scale,
        after: recording.after,
        instances: recording.instances,
        episodes: Vec::new(),
    };
    for scenario in scenarios {
        for &seed in seeds {
            let name = format!("{}_seed{seed}", scenario.name);
            let opts = EpisodeOptions { thumbnail: false, record: Some(out.join(&name)), ..recording.clone() };
            let e = episode::run(scenario, seed, driver, &opts)?;
            let d = DemoEpisode {
                scenario: e.scenario.clone(),
                seed,
                bag: name,
                outcome: e.outcome,
                route_completion: e.route_completion,
                collisions: e.collisions.len(),
                hit_vulnerable: e.hit_vulnerable(),
                driving_score: e.driving_score,
                seconds: e.sim_seconds,
                stage: e.arm.as_ref().map(|a| a.stage),
            };
            done(&d);
            manifest.episodes.push(d);
            let path = out.join("manifest.yaml");
            let text = serde_yaml_ng::to_string(&manifest).map_err(|e| write_err(&path, &e))?;
            std::fs::write(&path, text).map_err(|e| write_err(&path, &e))?;
        }
    }
    Ok(manifest)
}
