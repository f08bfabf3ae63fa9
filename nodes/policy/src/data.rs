//! Demonstration sets: per camera frame of each episode, the frame resized
//! to the network's input, the robot's state at that instant (a vehicle's
//! speed and yaw rate from /odom; an arm's joints and gripper from
//! /joint_states and /gripper/grasped), and the next `chunk` commands the
//! demonstrator gave, one per camera period. A set is either `s2r demos`'
//! folder (`manifest.yaml`; commands on /cmd_vel or /joint_commands, flat
//! frames) or an `s2r generate` dataset of a sweep the expert drove
//! (`dataset.yaml` with `driver: expert`; commands on /expert/cmd_vel or
//! /expert/joint_commands, flat and restyled frames).

use std::path::{Path, PathBuf};

use s2r_bag::BagReader;
use s2r_image::Rgb;
use s2r_runtime::{stamp_ns, Serialized};
use serde::Deserialize;
use sim2real_msgs::geometry_msgs::msg::Twist;
use sim2real_msgs::nav_msgs::msg::Odometry;
use sim2real_msgs::sensor_msgs::msg::{Image, JointState};
use sim2real_msgs::std_msgs::msg::Bool;

use crate::model::{Config, Robot};
use crate::PolicyError;

/// The manifest's format tag this reader knows.
const FORMAT: &str = "sim2real.demos/1";

#[derive(Deserialize)]
struct Manifest {
    format: String,
    driver: String,
    action: String,
    episodes: Vec<ManifestEpisode>,
}

#[derive(Deserialize)]
struct ManifestEpisode {
    scenario: String,
    seed: u64,
    bag: String,
    hit_vulnerable: bool,
    outcome: String,
}

/// Which camera frames a policy learns from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frames {
    /// The simulator's own renders (`/sim/<camera>/image_raw`).
    Flat,
    /// transfer_node's photoreal restyling (`/<camera>/image_raw`; datasets of `s2r generate`).
    Restyled,
    /// Both, each frame an example of its own.
    Both,
}

impl std::str::FromStr for Frames {
    type Err = String;
    fn from_str(s: &str) -> Result<Frames, String> {
        match s {
            "flat" => Ok(Frames::Flat),
            "restyled" => Ok(Frames::Restyled),
            "both" => Ok(Frames::Both),
            other => Err(format!("'{other}': flat, restyled or both")),
        }
    }
}

impl Frames {
    fn topics(self, camera: &str) -> Vec<String> {
        let flat = format!("/sim/{camera}/image_raw");
        let restyled = format!("/{camera}/image_raw");
        match self {
            Frames::Flat => vec![flat],
            Frames::Restyled => vec![restyled],
            Frames::Both => vec![flat, restyled],
        }
    }
}

/// `dataset.yaml` of `s2r generate`, the parts a policy needs.
#[derive(Deserialize)]
struct Dataset {
    sweep: DatasetSweep,
    episodes: Vec<DatasetEpisode>,
}

#[derive(Deserialize)]
struct DatasetSweep {
    #[serde(default)]
    driver: Option<String>,
}

#[derive(Deserialize)]
struct DatasetEpisode {
    name: String,
    scenario: String,
    seed: u64,
}

/// A demonstration set of either kind, as episodes to read.
struct DemoSet {
    /// Its manifest or dataset file, for messages.
    file: PathBuf,
    /// The robot, when the set says (demos); a dataset's comes from its bags.
    robot: Option<Robot>,
    /// Where the demonstrator's commands are: "" (/cmd_vel) or "/expert" (/expert/cmd_vel).
    prefix: &'static str,
    /// Whether it has restyled frames.
    restyled: bool,
    episodes: Vec<SetEpisode>,
}

struct SetEpisode {
    scenario: String,
    seed: u64,
    bag: PathBuf,
    /// Nothing to copy: the demonstrator hit someone or dropped a cup.
    skip: bool,
}

/// Where a recording of `robot` has the commands it was driven with: the
/// robot's own topic (`/cmd_vel`, `/joint_commands`), or a generated
/// dataset's expert's (`/expert/…`), in that order of preference.
pub fn command_topics(robot: Robot) -> [String; 2] {
    [command_topic(robot, ""), command_topic(robot, "/expert")]
}

/// The command topic of `robot` under `prefix`.
fn command_topic(robot: Robot, prefix: &str) -> String {
    match robot {
        Robot::Vehicle => format!("{prefix}/cmd_vel"),
        Robot::Arm => format!("{prefix}/joint_commands"),
    }
}

fn set(dir: &Path) -> Result<DemoSet, PolicyError> {
    let dataset = dir.join("dataset.yaml");
    // A dataset also holds its curation's manifest.yaml: dataset.yaml decides.
    if dataset.exists() {
        let text = std::fs::read_to_string(&dataset).map_err(|e| PolicyError::Demos { path: dataset.clone(), problem: e.to_string() })?;
        let d: Dataset = serde_yaml_ng::from_str(&text)
            .map_err(|e| PolicyError::Demos { path: dataset.clone(), problem: format!("not an s2r generate dataset: {e}") })?;
        if d.sweep.driver.as_deref() != Some("expert") {
            return Err(PolicyError::Demos {
                path: dataset,
                problem: "its sweep was driven by the scenarios' scripts: no commands to learn from (generate it with `driver: expert`)"
                    .into(),
            });
        }
        let episodes = d
            .episodes
            .into_iter()
            .map(|e| SetEpisode { scenario: e.scenario, seed: e.seed, bag: dir.join("episodes").join(e.name), skip: false })
            .collect();
        return Ok(DemoSet { file: dataset, robot: None, prefix: "/expert", restyled: true, episodes });
    }
    let m = manifest(dir)?;
    let skip_crashes = m.driver != "dagger";
    let episodes = m
        .episodes
        .into_iter()
        .map(|e| SetEpisode {
            // A demonstrator's crash (or a cup it dropped) is nothing to copy;
            // in a DAgger round the labels are the expert's, and the states
            // before a crash are the ones the policy most needs to learn from.
            skip: skip_crashes && (e.hit_vulnerable || e.outcome == "dropped"),
            scenario: e.scenario,
            seed: e.seed,
            bag: dir.join(e.bag),
        })
        .collect();
    Ok(DemoSet { file: dir.join("manifest.yaml"), robot: Robot::of_action(&m.action), prefix: "", restyled: false, episodes })
}

/// The robot an episode's bag demonstrates (by its command topic under `prefix`).
fn bag_robot(bag: &Path, prefix: &str) -> Result<Option<Robot>, PolicyError> {
    let r = BagReader::open(bag).map_err(|e| PolicyError::Demos { path: bag.into(), problem: e.to_string() })?;
    Ok([Robot::Vehicle, Robot::Arm].into_iter().find(|robot| r.connections.iter().any(|c| c.topic == command_topic(*robot, prefix))))
}

/// The robot of a set: its manifest's, or its first episode's.
fn set_robot(s: &DemoSet) -> Result<Robot, PolicyError> {
    if let Some(r) = s.robot {
        return Ok(r);
    }
    let first = s.episodes.first().ok_or_else(|| PolicyError::Demos { path: s.file.clone(), problem: "no episodes".into() })?;
    bag_robot(&first.bag, s.prefix)?.ok_or_else(|| PolicyError::Demos {
        path: first.bag.clone(),
        problem: format!("no {}/cmd_vel or {}/joint_commands: not a demonstration (no actions)", s.prefix, s.prefix),
    })
}

/// One training example.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The frame, rgb8 at the network's input size; with a past frame
    /// ([`Config::past`]) both, pixel by pixel (see [`stack`]).
    pub image: Vec<u8>,
    /// The robot's state at the frame's instant, in its units (see [`Robot::state_scale`]).
    pub state: Vec<f32>,
    /// The demonstrator's next `chunk` commands, in their units (see [`Robot::action_scale`]).
    pub actions: Vec<Vec<f32>>,
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
    /// Episodes of another robot in a dataset, left out.
    pub other_robot: usize,
}

fn manifest(dir: &Path) -> Result<Manifest, PolicyError> {
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
    if Robot::of_action(&m.action).is_none() {
        return Err(PolicyError::Demos {
            path,
            problem: format!("action '{}': a policy learns '{}' or '{}'", m.action, Robot::Vehicle.action(), Robot::Arm.action()),
        });
    }
    Ok(m)
}

/// The robot demonstration sets were recorded with (their manifests'
/// `action`, a dataset's first episode); sets of different robots are
/// refused, naming the first that differs.
pub fn robot_of(dirs: &[PathBuf]) -> Result<Robot, PolicyError> {
    let mut robot = None;
    for dir in dirs {
        let s = set(dir)?;
        let r = set_robot(&s)?;
        match robot {
            None => robot = Some((r, dir)),
            Some((first, first_dir)) if first != r => {
                return Err(PolicyError::Demos {
                    path: s.file,
                    problem: format!(
                        "its action is '{}' but {} has '{}': one policy drives one robot",
                        r.action(),
                        first_dir.display(),
                        first.action()
                    ),
                })
            }
            Some(_) => {}
        }
    }
    robot.map(|(r, _)| r).ok_or_else(|| PolicyError::Demos { path: PathBuf::new(), problem: "no demonstration sets given".into() })
}

/// Reads demonstration sets (`s2r demos` folders or expert-driven `s2r
/// generate` datasets), every `every`-th camera frame of `frames`, for the
/// network `config` (whose robot they must be of; a dataset's episodes of
/// another robot are left out).
pub fn read(dirs: &[PathBuf], config: &Config, every: usize, frames: Frames) -> Result<Demos, PolicyError> {
    let mut demos = Demos::default();
    for dir in dirs {
        let set = set(dir)?;
        if let Some(r) = set.robot.filter(|r| *r != config.robot) {
            return Err(PolicyError::Demos {
                path: set.file,
                problem: format!(
                    "its action is '{}'; this policy publishes '{}' (another robot's action space)",
                    r.action(),
                    config.robot.action()
                ),
            });
        }
        if frames != Frames::Flat && !set.restyled {
            return Err(PolicyError::Demos {
                path: set.file,
                problem: "s2r demos records flat frames only: train with --frames flat, or on an s2r generate dataset for restyled ones"
                    .into(),
            });
        }
        let topics = frames.topics(&config.camera);
        let cmd = command_topic(config.robot, set.prefix);
        for e in &set.episodes {
            if e.skip {
                demos.skipped += 1;
                continue;
            }
            if set.robot.is_none() && bag_robot(&e.bag, set.prefix)? != Some(config.robot) {
                demos.other_robot += 1;
                continue;
            }
            let before = demos.samples.len();
            episode(&e.bag, e.seed, config, every, &topics, &cmd, &mut demos.samples)?;
            if demos.samples.len() == before {
                return Err(PolicyError::Demos {
                    path: e.bag.clone(),
                    problem: format!("{} seed {}: no frames on {} with commands", e.scenario, e.seed, topics.join(" or ")),
                });
            }
            demos.episodes += 1;
        }
    }
    if demos.samples.is_empty() {
        return Err(PolicyError::Demos {
            path: dirs.first().cloned().unwrap_or_default(),
            problem: "no usable episodes (in every one the demonstrator hit someone or dropped a cup, or none recorded)".into(),
        });
    }
    Ok(demos)
}

/// A robot's own recordings as demonstrations (`s2r cycle --policy`): each
/// bag's camera (its `/<camera>/image_raw`, else the simulator's
/// `/sim/<camera>/image_raw`), its state and the commands it was driven
/// with (`/cmd_vel` or `/joint_commands` for the network's robot, else a
/// generated dataset's `/expert/…`), every `every`-th frame, with the seed
/// given beside each bag (splits are by seed). A bag without the camera or
/// the commands is named.
pub fn read_recordings(bags: &[(PathBuf, u64)], config: &Config, every: usize) -> Result<Demos, PolicyError> {
    let mut demos = Demos::default();
    for (bag, seed) in bags {
        let r = BagReader::open(bag).map_err(|e| PolicyError::Demos { path: bag.clone(), problem: e.to_string() })?;
        let has = |t: &str| r.connections.iter().any(|c| c.topic == t);
        let camera = [format!("/{}/image_raw", config.camera), format!("/sim/{}/image_raw", config.camera)];
        let Some(image) = camera.iter().find(|t| has(t)) else {
            return Err(PolicyError::Demos { path: bag.clone(), problem: format!("no camera frames on {}", camera.join(" or ")) });
        };
        let commands = command_topics(config.robot);
        let Some(cmd) = commands.iter().find(|t| has(t)) else {
            return Err(PolicyError::Demos {
                path: bag.clone(),
                problem: format!("no {}: the robot's commands are what a policy learns from", commands.join(" or ")),
            });
        };
        let before = demos.samples.len();
        episode(bag, *seed, config, every, std::slice::from_ref(image), cmd, &mut demos.samples)?;
        if demos.samples.len() == before {
            return Err(PolicyError::Demos { path: bag.clone(), problem: format!("no frames on {image} with the robot's state") });
        }
        demos.episodes += 1;
    }
    Ok(demos)
}

/// The latest value at or before `t` of a time-sorted series (the first when none is).
fn at<T>(series: &[(i64, T)], t: i64) -> Option<&T> {
    let i = series.partition_point(|(s, _)| *s <= t);
    series.get(i.saturating_sub(1)).map(|(_, v)| v)
}

/// One episode's examples: every `every`-th frame of `image_topics`, the
/// robot's state at its stamp, and the next `chunk` commands on `cmd_topic`.
fn episode(
    bag: &Path,
    seed: u64,
    config: &Config,
    every: usize,
    image_topics: &[String],
    cmd_topic: &str,
    out: &mut Vec<Sample>,
) -> Result<(), PolicyError> {
    let robot = config.robot;
    let r = BagReader::open(bag).map_err(|e| PolicyError::Demos { path: bag.into(), problem: e.to_string() })?;
    let state_topic = match robot {
        Robot::Vehicle => "/odom",
        Robot::Arm => "/joint_states",
    };
    let mut frames: Vec<(i64, Image, usize)> = Vec::new();
    // A vehicle's speed and yaw rate, or an arm's seven joints; the arm's grasp apart.
    let mut states: Vec<(i64, Vec<f32>)> = Vec::new();
    let mut grasped: Vec<(i64, f32)> = Vec::new();
    let mut cmds: Vec<(i64, Vec<f32>)> = Vec::new();
    for m in r.messages() {
        let topic = r.connections[m.connection].topic.as_str();
        let data = Serialized(m.data.clone());
        let bad = |e: s2r_runtime::raw::CdrError| PolicyError::Demos { path: bag.into(), problem: format!("{topic}: {e}") };
        let missing =
            || PolicyError::Demos { path: bag.into(), problem: format!("{topic}: a message without all of {}", ARM_JOINTS.join(", ")) };
        if let Some(k) = image_topics.iter().position(|t| t == topic) {
            let img: Image = data.decode().map_err(bad)?;
            frames.push((stamp_ns(&img.header.stamp), img, k));
        } else if topic == state_topic {
            let (stamp, state) = match robot {
                Robot::Vehicle => {
                    let o: Odometry = data.decode().map_err(bad)?;
                    let t = &o.twist.twist;
                    (stamp_ns(&o.header.stamp), vec![t.linear.x as f32, t.angular.z as f32])
                }
                Robot::Arm => {
                    let j: JointState = data.decode().map_err(bad)?;
                    (stamp_ns(&j.header.stamp), arm_joints(&j).ok_or_else(missing)?.to_vec())
                }
            };
            states.push((stamp, state));
        } else if topic == "/gripper/grasped" && robot == Robot::Arm {
            let g: Bool = data.decode().map_err(bad)?;
            grasped.push((m.log_time as i64, if g.data { 1.0 } else { 0.0 }));
        } else if topic == cmd_topic {
            let c = match robot {
                Robot::Vehicle => {
                    let c: Twist = data.decode().map_err(bad)?;
                    vec![c.linear.x as f32, c.angular.z as f32]
                }
                Robot::Arm => {
                    let c: JointState = data.decode().map_err(bad)?;
                    arm_joints(&c).ok_or_else(missing)?.to_vec()
                }
            };
            cmds.push((m.log_time as i64, c));
        }
    }
    if cmds.is_empty() {
        return Err(PolicyError::Demos { path: bag.into(), problem: format!("no {cmd_topic}: not a demonstration (no actions)") });
    }
    states.sort_by_key(|o| o.0);
    grasped.sort_by_key(|o| o.0);
    cmds.sort_by_key(|c| c.0);
    let period = (config.period as f64 * 1e9) as i64;
    // Each camera stream's stamps in order, for the past frames.
    let streams: Vec<Vec<(i64, &Image)>> = (0..image_topics.len())
        .map(|k| {
            let mut v: Vec<(i64, &Image)> = frames.iter().filter(|f| f.2 == k).map(|(t, img, _)| (*t, img)).collect();
            v.sort_by_key(|f| f.0);
            v
        })
        .collect();
    for (t, img, k) in every_nth(&frames, image_topics.len(), every) {
        let Some(now) = at(&states, *t) else { continue };
        let (state, hold) = match robot {
            // Before the first command a car keeps its speed straight on.
            Robot::Vehicle => (now.clone(), vec![now[0], 0.0]),
            // An arm's state adds its grasp; before the first command it holds where it is.
            Robot::Arm => (now.iter().copied().chain([at(&grasped, *t).copied().unwrap_or(0.0)]).collect(), now.clone()),
        };
        let actions = (0..config.chunk)
            .map(|j| {
                let c = at(&cmds, t + j as i64 * period).unwrap_or(&hold);
                match robot {
                    Robot::Vehicle => c.clone(),
                    // Joint commands relative to the joint angles at the frame (the gripper's opening as is).
                    Robot::Arm => c.iter().zip(now).enumerate().map(|(k, (c, q))| if k < 6 { c - q } else { *c }).collect(),
                }
            })
            .collect();
        let topic = &image_topics[*k];
        let image = match config.past {
            None => frame(img, topic, config)?,
            Some(past) => {
                let before = past_frame(&streams[*k], *t, past).copied().unwrap_or(img);
                stack(&[&frame(img, topic, config)?, &frame(before, topic, config)?])
            }
        };
        out.push(Sample { image, state, actions, seed });
    }
    Ok(())
}

/// The frame of a time-sorted stream taken `past` seconds before `t` (the
/// latest at or before that instant, give or take 10 ms); None before the
/// stream has one (the first frames of an episode read themselves twice,
/// as the robot does at start).
pub fn past_frame<T>(stream: &[(i64, T)], t: i64, past: f32) -> Option<&T> {
    let want = t - (past as f64 * 1e9) as i64 + 10_000_000;
    let i = stream.partition_point(|(s, _)| *s <= want);
    if i == 0 {
        return None;
    }
    Some(&stream[i - 1].1)
}

/// Frames of the same size side by side per pixel: RGB of the first, RGB
/// of the second, … (the network's channels-last input).
pub fn stack(frames: &[&[u8]]) -> Vec<u8> {
    let n = frames.first().map_or(0, |f| f.len() / 3);
    let mut out = Vec::with_capacity(n * 3 * frames.len());
    for i in 0..n {
        for f in frames {
            out.extend_from_slice(&f[i * 3..i * 3 + 3]);
        }
    }
    out
}

pub use sim2real_msgs::arm::{arm_joints, ARM_JOINTS};

/// Every `every`-th frame of each of `topics` camera streams.
fn every_nth(frames: &[(i64, Image, usize)], topics: usize, every: usize) -> impl Iterator<Item = &(i64, Image, usize)> {
    let mut seen = vec![0usize; topics];
    frames.iter().filter(move |(_, _, k)| {
        seen[*k] += 1;
        (seen[*k] - 1).is_multiple_of(every.max(1))
    })
}

/// A camera frame as rgb8 at the network's input size: its band of rows
/// ([`Config::rows`]) cropped, then resized; any colour encoding
/// `s2r_image::rgb8` reads, any resolution.
pub fn frame(img: &Image, topic: &str, config: &Config) -> Result<Vec<u8>, PolicyError> {
    let data = s2r_image::rgb8(img, topic).map_err(|e| PolicyError::Frame { topic: topic.into(), problem: e.to_string() })?;
    let (width, height) = (img.width as usize, img.height as usize);
    let [top, bottom] = config.rows;
    let (y0, y1) = ((top * height as f32).round() as usize, ((bottom * height as f32).round() as usize).min(height));
    if width < 8 || y1 < y0 + 8 {
        return Err(PolicyError::Frame {
            topic: topic.into(),
            problem: format!("a {width}×{height} frame is too small (rows {top}..{bottom} of it are read)"),
        });
    }
    let rgb = Rgb { width, height: y1 - y0, data: data[y0 * width * 3..y1 * width * 3].to_vec() };
    Ok(rgb.resize(config.width, config.height).data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_band_of_rows_is_cropped_before_resizing() {
        // 32x32: the top half red, the bottom half blue.
        let (w, h) = (32usize, 32usize);
        let data: Vec<u8> = (0..w * h).flat_map(|i| if i / w < h / 2 { [255, 0, 0] } else { [0, 0, 255] }).collect();
        let img = Image {
            width: w as u32,
            height: h as u32,
            encoding: "rgb8".into(),
            step: 3 * w as u32,
            data: data.into(),
            ..Default::default()
        };
        let mut c = Config::small("front", Robot::Vehicle);
        (c.width, c.height) = (16, 16);
        c.rows = [0.5, 1.0];
        let px = frame(&img, "/front/image_raw", &c).unwrap();
        assert_eq!(px.len(), 16 * 16 * 3);
        assert!(px.chunks(3).all(|p| p == [0, 0, 255]), "the top half leaked in");
        c.rows = [0.0, 1.0];
        let px = frame(&img, "/front/image_raw", &c).unwrap();
        assert_eq!(&px[..3], &[255, 0, 0]);
        // A band too thin to read is refused by topic.
        c.rows = [0.9, 1.0];
        let e = frame(&img, "/front/image_raw", &c).unwrap_err().to_string();
        assert!(e.contains("/front/image_raw") && e.contains("too small"), "{e}");
    }

    #[test]
    fn past_frames_are_the_latest_at_or_before_the_instant_asked() {
        let ms = 1_000_000i64;
        let stream: Vec<(i64, u32)> = (0..10).map(|k| (k * 100 * ms, k as u32)).collect();
        // 0.2 s before 0.5 s: the frame of 0.3 s; 0.25 s before: 0.2 s's (0.25 is not there yet).
        assert_eq!(past_frame(&stream, 500 * ms, 0.2), Some(&3));
        assert_eq!(past_frame(&stream, 500 * ms, 0.25), Some(&2));
        // A stamp a few ms late still counts as the frame asked for.
        assert_eq!(past_frame(&stream, 505 * ms, 0.2), Some(&3));
        // Before the stream has one.
        assert_eq!(past_frame(&stream, 100 * ms, 0.2), None);
    }

    #[test]
    fn stacked_frames_sit_side_by_side_per_pixel() {
        let a = vec![1, 2, 3, 4, 5, 6];
        let b = vec![11, 12, 13, 14, 15, 16];
        assert_eq!(stack(&[&a, &b]), [1, 2, 3, 11, 12, 13, 4, 5, 6, 14, 15, 16]);
    }
}
