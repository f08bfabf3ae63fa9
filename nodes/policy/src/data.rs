//! Demonstration sets (`s2r demos`): per camera frame of each episode, the
//! frame resized to the network's input, the vehicle's speed and yaw rate at
//! that instant (odometry), and the next `chunk` commands the demonstrator
//! gave (/cmd_vel), one per camera period.

use std::path::{Path, PathBuf};

use s2r_bag::BagReader;
use s2r_image::Rgb;
use s2r_runtime::{stamp_ns, Serialized};
use serde::Deserialize;
use sim2real_msgs::geometry_msgs::msg::Twist;
use sim2real_msgs::nav_msgs::msg::Odometry;
use sim2real_msgs::sensor_msgs::msg::Image;

use crate::model::Config;
use crate::PolicyError;

/// The manifest's format tag this reader knows.
const FORMAT: &str = "sim2real.demos/1";

#[derive(Deserialize)]
struct Manifest {
    format: String,
    driver: String,
    episodes: Vec<ManifestEpisode>,
}

#[derive(Deserialize)]
struct ManifestEpisode {
    scenario: String,
    seed: u64,
    bag: String,
    hit_vulnerable: bool,
}

/// One training example.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The frame, rgb8 at the network's input size.
    pub image: Vec<u8>,
    /// Speed (m/s) and yaw rate (rad/s) from odometry at the frame's instant.
    pub state: [f32; 2],
    /// The demonstrator's next `chunk` commands: speed asked for, yaw rate.
    pub actions: Vec<[f32; 2]>,
    /// The episode's seed (splits are by seed).
    pub seed: u64,
}

/// Demonstrations read into memory.
#[derive(Debug, Default)]
pub struct Demos {
    /// Every example, episode after episode.
    pub samples: Vec<Sample>,
    /// Episodes read, and left out because the demonstrator hit someone.
    pub episodes: usize,
    /// Left out.
    pub skipped: usize,
}

/// Whether a seed belongs to the held-out split: every tenth (seed % 10 == 9).
pub fn held_out(seed: u64) -> bool {
    seed % 10 == 9
}

/// Reads demonstration sets (folders with `manifest.yaml`), every `every`-th
/// camera frame, for the network `config`.
pub fn read(dirs: &[PathBuf], config: &Config, every: usize) -> Result<Demos, PolicyError> {
    let mut demos = Demos::default();
    for dir in dirs {
        let path = dir.join("manifest.yaml");
        let text = std::fs::read_to_string(&path).map_err(|e| PolicyError::Demos {
            path: path.clone(),
            problem: format!("cannot read the demonstrations' manifest ({e}); record some with s2r demos"),
        })?;
        let m: Manifest = serde_yaml_ng::from_str(&text)
            .map_err(|e| PolicyError::Demos { path: path.clone(), problem: format!("not a demos manifest: {e}") })?;
        if m.format != FORMAT {
            return Err(PolicyError::Demos { path, problem: format!("format '{}', this reader knows '{FORMAT}'", m.format) });
        }
        for e in &m.episodes {
            // A demonstrator's crash is nothing to copy; in a DAgger round the
            // labels are the expert's, and the states before a crash are the
            // ones the policy most needs to learn from.
            if e.hit_vulnerable && m.driver != "dagger" {
                demos.skipped += 1;
                continue;
            }
            let before = demos.samples.len();
            episode(&dir.join(&e.bag), e.seed, config, every, &mut demos.samples)?;
            if demos.samples.len() == before {
                return Err(PolicyError::Demos {
                    path: dir.join(&e.bag),
                    problem: format!("{} seed {}: no frames of camera '{}' with commands", e.scenario, e.seed, config.camera),
                });
            }
            demos.episodes += 1;
        }
    }
    if demos.samples.is_empty() {
        return Err(PolicyError::Demos {
            path: dirs.first().cloned().unwrap_or_default(),
            problem: "no usable episodes (every one hit a pedestrian, or none recorded)".into(),
        });
    }
    Ok(demos)
}

/// The latest value at or before `t` of a time-sorted series (the first when none is).
fn at<T: Copy>(series: &[(i64, T)], t: i64) -> Option<T> {
    let i = series.partition_point(|(s, _)| *s <= t);
    series.get(i.saturating_sub(1)).map(|(_, v)| *v)
}

fn episode(bag: &Path, seed: u64, config: &Config, every: usize, out: &mut Vec<Sample>) -> Result<(), PolicyError> {
    let r = BagReader::open(bag).map_err(|e| PolicyError::Demos { path: bag.into(), problem: e.to_string() })?;
    let image_topic = format!("/sim/{}/image_raw", config.camera);
    let mut frames: Vec<(i64, Image)> = Vec::new();
    let mut odom: Vec<(i64, [f32; 2])> = Vec::new();
    let mut cmds: Vec<(i64, [f32; 2])> = Vec::new();
    for m in r.messages() {
        let topic = r.connections[m.connection].topic.as_str();
        let data = Serialized(m.data.clone());
        let bad = |e: s2r_runtime::raw::CdrError| PolicyError::Demos { path: bag.into(), problem: format!("{topic}: {e}") };
        if topic == image_topic {
            let img: Image = data.decode().map_err(bad)?;
            frames.push((stamp_ns(&img.header.stamp), img));
        } else if topic == "/odom" {
            let o: Odometry = data.decode().map_err(bad)?;
            let t = &o.twist.twist;
            odom.push((stamp_ns(&o.header.stamp), [t.linear.x as f32, t.angular.z as f32]));
        } else if topic == "/cmd_vel" {
            let c: Twist = data.decode().map_err(bad)?;
            cmds.push((m.log_time as i64, [c.linear.x as f32, c.angular.z as f32]));
        }
    }
    if cmds.is_empty() {
        return Err(PolicyError::Demos { path: bag.into(), problem: "no /cmd_vel: not a demonstration (no actions)".into() });
    }
    odom.sort_by_key(|o| o.0);
    cmds.sort_by_key(|c| c.0);
    let period = (config.period as f64 * 1e9) as i64;
    for (t, img) in frames.iter().step_by(every.max(1)) {
        let Some(state) = at(&odom, *t) else { continue };
        let actions: Vec<[f32; 2]> = (0..config.chunk).map(|j| at(&cmds, t + j as i64 * period).unwrap_or([state[0], 0.0])).collect();
        out.push(Sample { image: frame(img, &image_topic, config)?, state, actions, seed });
    }
    Ok(())
}

/// A camera frame as rgb8 at the network's input size; any colour encoding
/// `s2r_image::rgb8` reads, any resolution.
pub fn frame(img: &Image, topic: &str, config: &Config) -> Result<Vec<u8>, PolicyError> {
    let data = s2r_image::rgb8(img, topic).map_err(|e| PolicyError::Frame { topic: topic.into(), problem: e.to_string() })?;
    let rgb = Rgb { width: img.width as usize, height: img.height as usize, data };
    if rgb.width < 8 || rgb.height < 8 {
        return Err(PolicyError::Frame { topic: topic.into(), problem: format!("a {}×{} frame is too small", rgb.width, rgb.height) });
    }
    Ok(rgb.resize(config.width, config.height).data)
}
