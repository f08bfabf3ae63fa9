//! The sweep file: which episodes `s2r generate` runs (scenarios × seeds ×
//! looks) and what it keeps of them. `config/sweeps/example.yaml` documents
//! every key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use s2r_curator::params::Params;
use serde::{Deserialize, Serialize};

use crate::rng::SplitMix;
use crate::GenerateError;

/// Seeds: an inclusive range (`{from: 1, to: 20}`) or a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Seeds {
    /// `from` to `to`, both included.
    Range {
        /// The first seed.
        from: u64,
        /// The last seed.
        to: u64,
    },
    /// These seeds, in this order.
    List(Vec<u64>),
}

impl Seeds {
    /// The seeds in order.
    pub fn values(&self) -> Vec<u64> {
        match self {
            Seeds::Range { from, to } => (*from..=*to).collect(),
            Seeds::List(v) => v.clone(),
        }
    }
}

/// The looks transfer restyles each (scenario, seed) into: a list of prompts,
/// or `sample` looks drawn from groups of phrases with weights (one phrase per
/// group, an empty phrase leaves the group out).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Looks {
    /// Each prompt is a look.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<String>,
    /// Looks drawn per (scenario, seed) from `from`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sample: usize,
    /// Groups of phrases with their weights: `time_of_day: {night: 3, dusk: 1}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub from: BTreeMap<String, BTreeMap<String, f64>>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What an episode's bag keeps (the curation needs the image it curates and
/// its boxes; the rest is for training).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// The simulator's flat frames (`/sim/<camera>/image_raw`).
    Flat,
    /// The restyled frames and their scores (`/<camera>/image_raw`, `/<camera>/transfer_score`).
    Restyled,
    /// Depth (`/sim/<camera>/depth`, 32FC1 metres).
    Depth,
    /// Segmentation (`/sim/<camera>/segmentation`).
    Segmentation,
    /// Instance ids (`/sim/<camera>/instances`).
    Instances,
    /// 2-D boxes per camera (sim's and, restyled, transfer's topic) and `/sim/detections3d`.
    Boxes,
    /// `/odom`, `/imu`, `/joint_states`, `/tf`.
    Odometry,
}

/// `driver:` of a sweep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepDriver {
    /// The scenario's behaviour (a car at its start speed, the arm's scripted trajectory).
    #[default]
    Scripted,
    /// The privileged expert (`s2r_sim::autopilot`).
    Expert,
}

fn default_keep() -> Vec<Output> {
    vec![Output::Flat, Output::Restyled, Output::Depth, Output::Segmentation, Output::Instances, Output::Boxes, Output::Odometry]
}

fn default_scale() -> f64 {
    1.0
}

fn default_device() -> String {
    "auto".into()
}

fn default_preset() -> String {
    "fast".into()
}

/// Domain randomisation ranges that replace the scenario's own (`randomize:`
/// in the scenario file); a key left out keeps the scenario's value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Randomize {
    /// ± metres on actor start positions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poses: Option<f64>,
    /// ± fraction on actor sizes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizes: Option<f64>,
    /// Vary colours within each class's palette.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colors: Option<bool>,
    /// ± fraction on light intensity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub light: Option<f64>,
    /// ± fraction on friction coefficients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friction: Option<f64>,
    /// ± seconds on trigger times, ± metres on trigger distances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<f64>,
}

/// A sweep file, parsed and checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// Names the dataset.
    pub name: String,
    /// Shipped scenario names or scenario files.
    pub scenarios: Vec<String>,
    /// The seeds each scenario runs with.
    pub seeds: Seeds,
    /// The looks each (scenario, seed) is restyled into.
    pub looks: Looks,
    /// Sim seconds per episode.
    pub duration: f64,
    /// The cameras rendered (by name); empty: every camera of the scenario.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cameras: Vec<String>,
    /// Scale of the scenario's image sizes (0.5: 640×480 becomes 320×240).
    #[serde(default = "default_scale")]
    pub image_scale: f64,
    /// The transfer preset: `fast` or `full`.
    #[serde(default = "default_preset")]
    pub preset: String,
    /// Where the transfer stage runs: `cpu`, `gpu` or `auto` (the GPU when a
    /// hardware one is present; the default).
    #[serde(default = "default_device")]
    pub transfer_device: String,
    /// Who drives the robot: the scenario's own script, or the privileged
    /// expert (its commands recorded on `/expert/cmd_vel` or
    /// `/expert/joint_commands` with the odometry).
    #[serde(default)]
    pub driver: SweepDriver,
    /// Randomisation ranges overriding the scenarios'.
    #[serde(default)]
    pub randomize: Randomize,
    /// The road's friction follows each look's surface (dry 0.8, wet 0.5,
    /// snowy 0.3, icy 0.1; then ± `randomize.friction`) instead of the
    /// scenario's: data in which what the road looks like and how it grips
    /// agree, to learn the surface from the camera.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub friction_from_look: bool,
    /// What the bags keep.
    #[serde(default = "default_keep")]
    pub keep: Vec<Output>,
    /// Curation (the keys of config/curator.params.yaml).
    #[serde(default)]
    pub curation: Params,
    /// The split by seed written once the dataset is complete (an unsharded
    /// run, or `s2r dataset merge`); none: split later with `s2r dataset split`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitSpec>,
}

/// Fractions of the seeds held out (see `s2r dataset split`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    /// For validation.
    pub val: f64,
    /// For testing.
    pub test: f64,
}

/// One run of one scenario with one seed and one look.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    /// `<scenario>_s<seed>_l<look>`: its bag's folder under `episodes/`.
    pub name: String,
    /// Its position in the sweep's canonical order (shards take every Nth).
    pub index: usize,
    /// The scenario as named in the sweep.
    pub scenario: String,
    /// Its file.
    pub scenario_file: PathBuf,
    /// The simulator's seed (also the transfer seed).
    pub seed: u64,
    /// Which look of the (scenario, seed).
    pub look: usize,
    /// The prompt.
    pub prompt: String,
}

/// The 1-based line of the first `key:` in `text` (for messages), or 0.
pub(crate) fn line_of(text: &str, key: &str) -> usize {
    text.lines().position(|l| l.trim_start().trim_start_matches("- ").starts_with(&format!("{key}:"))).map_or(0, |i| i + 1)
}

impl Sweep {
    /// Reads and checks a sweep file; errors name the file, the line and the key.
    pub fn load(path: &Path) -> Result<(Sweep, String), GenerateError> {
        let text = std::fs::read_to_string(path).map_err(|source| GenerateError::Io { path: path.into(), source })?;
        let sweep = Sweep::parse(&text, path)?;
        Ok((sweep, text))
    }

    /// Parses and checks a sweep's text (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Sweep, GenerateError> {
        let sweep: Sweep = serde_yaml_ng::from_str(text).map_err(|e| GenerateError::Sweep {
            path: path.into(),
            line: e.location().map_or(0, |l| l.line()),
            key: String::new(),
            reason: e.to_string(),
        })?;
        let bad = |key: &str, reason: String| GenerateError::Sweep { path: path.into(), line: line_of(text, key), key: key.into(), reason };
        if sweep.name.trim().is_empty() || sweep.name.contains('/') {
            return Err(bad("name", format!("'{}' is not a dataset name (no '/', not empty)", sweep.name)));
        }
        if sweep.scenarios.is_empty() {
            return Err(bad("scenarios", "lists no scenario".into()));
        }
        for s in &sweep.scenarios {
            s2r_sim::node::resolve_scenario(s).map_err(|e| bad("scenarios", e.to_string()))?;
        }
        if sweep.seeds.values().is_empty() {
            return Err(bad("seeds", "give at least one seed ({from: 1, to: 20} or a list)".into()));
        }
        if !(sweep.duration > 0.0 && sweep.duration.is_finite()) {
            return Err(bad("duration", format!("{} is not a positive number of sim seconds", sweep.duration)));
        }
        if !(sweep.image_scale > 0.0 && sweep.image_scale <= 4.0) {
            return Err(bad("image_scale", format!("{} is not in (0, 4]", sweep.image_scale)));
        }
        if sweep.preset != "fast" && sweep.preset != "full" {
            return Err(bad("preset", format!("'{}' is not fast or full", sweep.preset)));
        }
        if let Err(e) = sweep.transfer_device.parse::<s2r_transfer::builtin::Device>() {
            return Err(bad("transfer_device", e.to_string()));
        }
        let l = &sweep.looks;
        match (l.prompts.is_empty(), l.sample == 0, l.from.is_empty()) {
            (false, true, true) => {
                for p in &l.prompts {
                    check_words(p).map_err(|r| bad("prompts", r))?;
                }
            }
            (true, false, false) => {
                for (group, phrases) in &l.from {
                    if phrases.is_empty() || phrases.values().any(|w| !(*w >= 0.0 && w.is_finite())) || phrases.values().sum::<f64>() <= 0.0
                    {
                        return Err(bad(group, "needs phrases with weights ≥ 0, not all 0".into()));
                    }
                    for p in phrases.keys() {
                        check_words(p).map_err(|r| bad(group, r))?;
                    }
                }
            }
            _ => return Err(bad("looks", "give either `prompts: [...]` or `sample: N` with `from: {group: {phrase: weight}}`".into())),
        }
        if sweep.keep.is_empty() || !(sweep.keep.contains(&Output::Flat) || sweep.keep.contains(&Output::Restyled)) {
            return Err(bad("keep", "keeps no camera frames: list flat, restyled or both".into()));
        }
        sweep.curation.check().map_err(|e| bad("curation", e.to_string()))?;
        if let Some(SplitSpec { val, test }) = sweep.split {
            if !(0.0..1.0).contains(&val) || !(0.0..1.0).contains(&test) || val + test >= 1.0 {
                return Err(bad("split", format!("val {val} and test {test} must be fractions in [0, 1) with val + test < 1")));
            }
        }
        if !sweep.cameras.is_empty() && !sweep.cameras.contains(&sweep.curation.camera) {
            return Err(bad(
                "curation",
                format!(
                    "curates camera '{}', which `cameras` leaves out ({}); set curation.camera",
                    sweep.curation.camera,
                    sweep.cameras.join(", ")
                ),
            ));
        }
        Ok(sweep)
    }

    /// Every episode in canonical order: scenarios, then seeds, then looks.
    pub fn episodes(&self) -> Vec<Episode> {
        let mut out = Vec::new();
        for (si, s) in self.scenarios.iter().enumerate() {
            let file = s2r_sim::node::resolve_scenario(s).unwrap_or_else(|_| PathBuf::from(s));
            let stem = file.file_stem().and_then(|x| x.to_str()).unwrap_or(s).to_string();
            for seed in self.seeds.values() {
                for (k, prompt) in self.prompts_for(si, seed).into_iter().enumerate() {
                    out.push(Episode {
                        name: format!("{stem}_s{seed}_l{k}"),
                        index: out.len(),
                        scenario: s.clone(),
                        scenario_file: file.clone(),
                        seed,
                        look: k,
                        prompt,
                    });
                }
            }
        }
        out
    }

    /// The prompts of one (scenario, seed): the list, or drawn from the groups
    /// (the same sweep always draws the same).
    fn prompts_for(&self, scenario: usize, seed: u64) -> Vec<String> {
        if !self.looks.prompts.is_empty() {
            return self.looks.prompts.clone();
        }
        let mut rng = SplitMix::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (scenario as u64) << 48);
        (0..self.looks.sample)
            .map(|_| {
                let parts: Vec<&str> = self
                    .looks
                    .from
                    .values()
                    .map(|phrases| {
                        let total: f64 = phrases.values().sum();
                        let mut x = rng.unit() * total;
                        let mut pick = phrases.keys().next_back().map(String::as_str).unwrap_or("");
                        for (p, w) in phrases {
                            if x < *w {
                                pick = p;
                                break;
                            }
                            x -= w;
                        }
                        pick
                    })
                    .filter(|p| !p.trim().is_empty())
                    .collect();
                parts.join(", ")
            })
            .collect()
    }
}

/// Refuses a prompt with words outside the transfer vocabulary.
fn check_words(prompt: &str) -> Result<(), String> {
    let parsed = s2r_look::parse(prompt);
    if parsed.unknown.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "\"{prompt}\": not in the transfer vocabulary: {} (the vocabulary is in the README's transfer section)",
            parsed.unknown.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_roads_friction_follows_the_looks_surface_when_asked() {
        let text = "name: t\nscenarios: [icy_night_crossing]\nseeds: {from: 1, to: 1}\nlooks:\n  prompts: [\"icy road, night\", \"noon, dry\", \"heavy rain\", \"snowy\"]\nduration: 1.0\nfriction_from_look: true\n";
        let sweep = parse(text).unwrap();
        let roads: Vec<f64> =
            sweep.episodes().iter().map(|e| crate::episode::scenario_of(e, &sweep).unwrap().environment.friction.road).collect();
        assert_eq!(roads, [0.1, 0.8, 0.5, 0.3], "rain wets the road; each surface has its grip");
        // Without the key the scenario keeps its own friction.
        let own = parse(&text.replace("friction_from_look: true\n", "")).unwrap();
        let e = &own.episodes()[1];
        assert_eq!(crate::episode::scenario_of(e, &own).unwrap().environment.friction.road, 0.1, "icy_night_crossing's own ice");
    }

    use super::*;

    const SWEEP: &str = "name: t\nscenarios: [icy_night_crossing, cup_near_edge]\nseeds: {from: 3, to: 5}\nlooks:\n  sample: 4\n  from:\n    time: {night: 1, noon: 1}\n    weather: {\"light snowfall\": 1, \"\": 1}\nduration: 1.0\n";

    fn parse(text: &str) -> Result<Sweep, GenerateError> {
        Sweep::parse(text, Path::new("sweep.yaml"))
    }

    #[test]
    fn episodes_in_canonical_order_with_sampled_looks_drawn_the_same_every_time() {
        let s = parse(SWEEP).unwrap();
        let eps = s.episodes();
        assert_eq!(eps.len(), 2 * 3 * 4);
        assert_eq!(eps[0].name, "icy_night_crossing_s3_l0");
        assert_eq!(eps[5].name, "icy_night_crossing_s4_l1");
        assert_eq!(eps[23].name, "cup_near_edge_s5_l3");
        assert!(eps.iter().enumerate().all(|(i, e)| e.index == i));
        assert_eq!(eps, parse(SWEEP).unwrap().episodes(), "the same sweep draws the same looks");
        for e in &eps {
            assert!(e.prompt.starts_with("night") || e.prompt.starts_with("noon"), "{}", e.prompt);
            assert!(s2r_look::parse(&e.prompt).unknown.is_empty());
        }
        let distinct: std::collections::BTreeSet<&str> = eps.iter().map(|e| e.prompt.as_str()).collect();
        assert!(distinct.len() >= 3, "looks vary: {distinct:?}");
        assert_eq!(s.keep.len(), 7, "everything kept by default");
    }

    #[test]
    fn broken_sweeps_name_file_line_and_key() {
        for (text, says) in [
            (
                SWEEP.replace("icy_night_crossing", "icy_nite"),
                "sweep.yaml:2: scenarios: scenario 'icy_nite' is neither a file nor a known scenario (known: ",
            ),
            (SWEEP.replace("night: 1", "nite: 1"), "sweep.yaml:7: time: \"nite\": not in the transfer vocabulary: nite"),
            (SWEEP.replace("duration: 1.0", "duration: -2"), "sweep.yaml:9: duration: -2 is not a positive"),
            (SWEEP.replace("duration: 1.0", "duration: 1.0\nkeep: [actions]"), "sweep.yaml:10"),
            (SWEEP.replace("duration: 1.0", "duration: 1.0\nkeep: [depth]"), "sweep.yaml:10: keep: keeps no camera frames"),
            (SWEEP.replace("duration: 1.0", "duration: 1.0\ncolour: red"), "unknown field `colour`"),
            (
                SWEEP.replace("duration: 1.0", "duration: 1.0\ntransfer_device: tpu"),
                "sweep.yaml:10: transfer_device: device 'tpu' is not cpu, gpu or auto",
            ),
            (SWEEP.replace("seeds: {from: 3, to: 5}", "seeds: []"), "sweep.yaml:3: seeds: give at least one seed"),
            (SWEEP.replace("  sample: 4\n", "  sample: 4\n  prompts: [night]\n"), "sweep.yaml:4: looks: give either"),
            (SWEEP.replace("duration: 1.0", "duration: 1.0\ncuration: {clip_seconds: 0}"), "sweep.yaml:10: curation: "),
            (
                SWEEP.replace("duration: 1.0", "duration: 1.0\ncameras: [front_left]"),
                "curates camera 'front', which `cameras` leaves out (front_left)",
            ),
        ] {
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(says), "{says}\n  got: {e}");
        }
        let e = parse("name: t\nscenarios: [\n").unwrap_err().to_string();
        assert!(e.starts_with("sweep.yaml:"), "{e}");
    }
}
