//! Recordings as token episodes: every `every`-th frame of the front camera
//! through the tokenizer, with the robot's commands over each step, its
//! state at the frame, and the scene's conditions from `/scenario`.
//!
//! A recording is an `s2r demos` folder (`manifest.yaml`), an `s2r generate`
//! dataset (`dataset.yaml`, its `episodes/`), or one bag. Commands are read
//! from `/cmd_vel` or `/joint_commands` (a demonstrator's, or whoever drove),
//! else `/expert/…` (a generated dataset's expert); state from `/odom` or
//! `/joint_states`. Episodes where the robot crashed stay in: what a crash
//! looks like is part of what a world model must predict.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use s2r_bag::BagReader;
use s2r_image::stored;
use s2r_runtime::{stamp_ns, Serialized};
use sim2real_msgs::arm::arm_joints;
use sim2real_msgs::geometry_msgs::msg::Twist;
use sim2real_msgs::nav_msgs::msg::Odometry;
use sim2real_msgs::sensor_msgs::msg::{Image, JointState};
use sim2real_msgs::sim2real_msgs::msg::ScenarioInfo;
use sim2real_msgs::vision_msgs::msg::Detection3DArray;

use crate::model::{Conditions, Robot, Surface, ACTION, TIMES, WEATHERS};
use crate::{FrameCodec, WorldError};

/// A vehicle's speed per network unit, m/s.
pub const SPEED_SCALE: f32 = 10.0;
/// A vehicle's yaw rate per network unit, rad/s.
pub const YAW_SCALE: f32 = 0.5;
/// An arm's joint command relative to the joint, per network unit, rad.
pub const JOINT_STEP: f32 = 0.2;
/// The gripper's opening per network unit, m.
pub const GRIPPER_SCALE: f32 = 0.05;

/// Which camera frames to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frames {
    /// The simulator's renders (`/sim/<camera>/image_raw`).
    Flat,
    /// transfer_node's restyling (`/<camera>/image_raw`).
    Restyled,
    /// Restyled where a recording has them, else flat (a real robot's bag: its camera).
    Auto,
}

impl std::str::FromStr for Frames {
    type Err = String;
    fn from_str(s: &str) -> Result<Frames, String> {
        match s {
            "flat" => Ok(Frames::Flat),
            "restyled" => Ok(Frames::Restyled),
            "auto" => Ok(Frames::Auto),
            other => Err(format!("'{other}': flat, restyled or auto")),
        }
    }
}

/// How to read recordings.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// The camera.
    pub camera: String,
    /// Which of its frames.
    pub frames: Frames,
    /// Camera frames per token frame.
    pub every: usize,
    /// Keep the codec's view of every token frame ([`Episode::views`]), for scoring pixels.
    pub keep_views: bool,
    /// Where token frames are cached between runs (None: encode every time).
    pub cache: Option<PathBuf>,
}

/// One recording as the world model sees it.
#[derive(Clone, Debug)]
pub struct Episode {
    /// The bag.
    pub source: PathBuf,
    /// Its scenario (`/scenario`; the bag's name when it has none).
    pub scenario: String,
    /// Its seed (0 when it has none).
    pub seed: u64,
    /// Robot, surface, weather, time of day.
    pub conditions: Conditions,
    /// Per token frame, its codes (grid² of them).
    pub codes: Vec<Vec<u16>>,
    /// Per token frame, the commands over the step that follows it (scaled).
    pub actions: Vec<[f32; ACTION]>,
    /// Per token frame, the robot's state at its instant (scaled).
    pub states: Vec<[f32; ACTION]>,
    /// Per token frame, its stamp (ns).
    pub stamps: Vec<i64>,
    /// Per token frame, the codec's view (rgb8), when asked for.
    pub views: Vec<Vec<u8>>,
    /// Where the objects are, read with the views from a recording that has
    /// the simulator's instance ids (`s2r demos --instances`).
    pub objects: Option<Objects>,
}

/// What the simulator knew of each token frame, for scoring what predicted
/// frames show.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    /// Per token frame, the instance id of each pixel of the codec's view
    /// (size × size, row-major; 0 nothing): the camera's instance image at
    /// the camera pixel nearest each view pixel's centre.
    pub ids: Vec<Vec<u16>>,
    /// Per token frame, every cup: its instance id and its height in
    /// base_link (m), from `/sim/detections3d`.
    pub cups: Vec<Vec<(u16, f32)>>,
}

fn data_error(path: &Path, problem: impl Into<String>) -> WorldError {
    WorldError::Data { path: path.into(), problem: problem.into() }
}

/// The bags of a recording path: a demos folder's, a dataset's episodes, or the bag itself.
pub fn bags(path: &Path) -> Result<Vec<PathBuf>, WorldError> {
    s2r_train::recordings::bags(path).map_err(|e| match e {
        s2r_train::TrainError::Io { path, source } => WorldError::Io { path, source },
        s2r_train::TrainError::Bad { path, problem } => data_error(&path, problem),
        other => data_error(path, other.to_string()),
    })
}

/// The latest value at or before `t` of a time-sorted series.
fn at<T>(series: &[(i64, T)], t: i64) -> Option<&T> {
    let i = series.partition_point(|(s, _)| *s <= t);
    i.checked_sub(1).map(|i| &series[i].1)
}

/// The conditions of `robot`'s clip from its `/scenario` (dry or a table, clear, day without one).
pub fn conditions_of(info: Option<&ScenarioInfo>, robot: Robot) -> Conditions {
    let find = |list: &[&str], v: &str, default: u8| list.iter().position(|x| *x == v).map_or(default, |i| i as u8);
    match info {
        Some(s) => Conditions {
            robot,
            surface: if robot == Robot::Arm { Surface::Table } else { Surface::of_friction(s.friction) },
            weather: find(&WEATHERS, &s.weather, 0),
            time: find(&TIMES, &s.time_of_day, 1),
        },
        None => Conditions { robot, surface: if robot == Robot::Arm { Surface::Table } else { Surface::Dry }, weather: 0, time: 1 },
    }
}

/// The cache file of `bag`'s token frames for `codec`, `camera topic` and `every`.
fn cache_file(dir: &Path, bag: &Path, codec: &str, topic: &str, every: usize) -> PathBuf {
    let mut h = DefaultHasher::new();
    s2r_train::recordings::fingerprint(bag, &mut h);
    (codec, topic, every).hash(&mut h);
    dir.join(format!("{:016x}.codes", h.finish()))
}

/// Reads one bag into an episode, tokenizing its frames with `codec`.
pub fn read(bag: &Path, codec: &dyn FrameCodec, opts: &ReadOptions) -> Result<Episode, WorldError> {
    let r = BagReader::open(bag).map_err(|e| data_error(bag, e.to_string()))?;
    let has = |t: &str| r.connections.iter().any(|c| c.topic == t);
    let cams = stored::cameras(r.connections.iter().map(|c| (c.topic.as_str(), c.type_name.as_str())));
    let (restyled, flat) = (format!("/{}/image_raw", opts.camera), format!("/sim/{}/image_raw", opts.camera));
    let wanted = match opts.frames {
        Frames::Flat => vec![flat],
        Frames::Restyled => vec![restyled],
        Frames::Auto => vec![restyled, flat],
    };
    let cam = stored::find(&cams, &wanted).ok_or_else(|| data_error(bag, format!("no camera frames on {}", wanted.join(" or "))))?;
    let cmd_topic =
        ["/cmd_vel", "/joint_commands", "/expert/cmd_vel", "/expert/joint_commands"].into_iter().find(|t| has(t)).ok_or_else(|| {
            data_error(bag, "no /cmd_vel or /joint_commands (nor /expert/…): an action-conditioned world model needs the robot's commands")
        })?;
    let robot = if cmd_topic.ends_with("cmd_vel") { Robot::Vehicle } else { Robot::Arm };
    let state_topic = match robot {
        Robot::Vehicle => "/odom",
        Robot::Arm => "/joint_states",
    };
    let mut frames: Vec<Serialized> = Vec::new();
    // A vehicle's speed and yaw rate (the rest zero), or an arm's seven joints; commands likewise.
    let mut states: Vec<(i64, [f32; 7])> = Vec::new();
    let mut cmds: Vec<(i64, [f32; 7])> = Vec::new();
    let mut info: Option<ScenarioInfo> = None;
    // The simulator's instance ids and 3D detections, read for scoring (with the views).
    let ids_topic = format!("/sim/{}/instances", opts.camera);
    let labelled = opts.keep_views && has(&ids_topic) && has("/sim/detections3d");
    let mut id_frames: Vec<(i64, Serialized)> = Vec::new();
    let mut cups: Vec<(i64, Vec<(u16, f32)>)> = Vec::new();
    for m in r.messages() {
        let topic = r.connections[m.connection].topic.as_str();
        let data = Serialized(m.data.clone());
        let bad = |e: s2r_runtime::raw::CdrError| data_error(bag, format!("{topic}: {e}"));
        let joints = |j: &JointState| arm_joints(j).ok_or_else(|| data_error(bag, format!("{topic}: a message without the arm's joints")));
        if topic == cam.topic {
            // The stamp is in the header, the first field: decode it when the frame is used.
            frames.push(data);
        } else if topic == state_topic {
            match robot {
                Robot::Vehicle => {
                    let o: Odometry = data.decode().map_err(bad)?;
                    let t = &o.twist.twist;
                    states.push((stamp_ns(&o.header.stamp), [t.linear.x as f32, t.angular.z as f32, 0.0, 0.0, 0.0, 0.0, 0.0]));
                }
                Robot::Arm => {
                    let j: JointState = data.decode().map_err(bad)?;
                    states.push((stamp_ns(&j.header.stamp), joints(&j)?));
                }
            }
        } else if topic == cmd_topic {
            let c = match robot {
                Robot::Vehicle => {
                    let c: Twist = data.decode().map_err(bad)?;
                    [c.linear.x as f32, c.angular.z as f32, 0.0, 0.0, 0.0, 0.0, 0.0]
                }
                Robot::Arm => joints(&data.decode().map_err(bad)?)?,
            };
            cmds.push((m.log_time as i64, c));
        } else if topic == "/scenario" && info.is_none() {
            info = Some(data.decode().map_err(bad)?);
        } else if labelled && topic == ids_topic {
            id_frames.push((m.log_time as i64, data));
        } else if labelled && topic == "/sim/detections3d" {
            let d: Detection3DArray = data.decode().map_err(bad)?;
            let found = d
                .detections
                .iter()
                .filter(|o| o.results.first().is_some_and(|r| r.hypothesis.class_id == "cup"))
                .filter_map(|o| Some((o.id.parse::<u16>().ok()?, o.bbox.center.position.z as f32)))
                .collect();
            cups.push((stamp_ns(&d.header.stamp), found));
        }
    }
    if states.is_empty() {
        return Err(data_error(bag, format!("no {state_topic}: the world model reads the robot's state")));
    }
    states.sort_by_key(|s| s.0);
    cmds.sort_by_key(|c| c.0);
    let picked: Vec<&Serialized> = frames.iter().step_by(opts.every.max(1)).collect();
    let mut stamps = Vec::with_capacity(picked.len());
    let mut views: Vec<Vec<u8>> = Vec::new();
    let cache = opts.cache.as_ref().map(|d| cache_file(d, bag, &codec.name(), &cam.topic, opts.every));
    let cached: Option<Vec<u16>> = cache.as_ref().and_then(|f| std::fs::read(f).ok()).and_then(|b| {
        (b.len() == picked.len() * codec.grid() * codec.grid() * 2)
            .then(|| b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect())
    });
    for data in &picked {
        let frame = |e: s2r_image::ImageError| data_error(bag, e.to_string());
        let img = cam.decode(data).map_err(frame)?;
        stamps.push(stamp_ns(&img.header.stamp));
        if cached.is_none() || opts.keep_views {
            let rgb = s2r_image::rgb8(&img, &cam.topic).map_err(frame)?;
            views.push(codec.view(&rgb, img.width as usize, img.height as usize));
        }
    }
    let n = codec.grid() * codec.grid();
    let codes: Vec<Vec<u16>> = match cached {
        Some(all) => all.chunks_exact(n).map(|c| c.to_vec()).collect(),
        None => {
            let mut codes = Vec::with_capacity(views.len());
            for chunk in views.chunks(16) {
                codes.extend(codec.encode(chunk).map_err(|problem| WorldError::Codec { path: bag.into(), problem })?);
            }
            if let Some(f) = &cache {
                let bytes: Vec<u8> = codes.iter().flatten().flat_map(|c| c.to_le_bytes()).collect();
                if let Some(dir) = f.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                // A cache that cannot be written only costs time.
                let _ = std::fs::write(f, bytes);
            }
            codes
        }
    };
    // Per token frame: the state at its instant and the mean command over the step after it.
    let period = stamps.windows(2).map(|w| w[1] - w[0]).filter(|d| *d > 0).min().unwrap_or(200_000_000);
    let mut out_states = Vec::with_capacity(stamps.len());
    let mut out_actions = Vec::with_capacity(stamps.len());
    for (i, &t) in stamps.iter().enumerate() {
        let state = *at(&states, t).unwrap_or(&states[0].1);
        let end = stamps.get(i + 1).copied().unwrap_or(t + period);
        let lo = cmds.partition_point(|c| c.0 < t);
        let hi = cmds.partition_point(|c| c.0 < end);
        let window: Vec<&[f32; 7]> = if hi > lo { cmds[lo..hi].iter().map(|c| &c.1).collect() } else { at(&cmds, t).into_iter().collect() };
        let mut action = [0f32; ACTION];
        for c in &window {
            for (a, x) in action.iter_mut().zip(scale_action(robot, c, &state)) {
                *a += x;
            }
        }
        for a in &mut action {
            *a /= window.len().max(1) as f32;
        }
        out_actions.push(action);
        out_states.push(scale_state(robot, &state));
    }
    let objects = if labelled { Some(objects(bag, &ids_topic, &id_frames, &cups, &stamps, codec.size())?) } else { None };
    let conditions = conditions_of(info.as_ref(), robot);
    let name = bag.file_name().and_then(|n| n.to_str()).unwrap_or("bag").to_string();
    Ok(Episode {
        source: bag.into(),
        scenario: info.as_ref().map_or(name, |i| i.scenario.clone()),
        seed: info.as_ref().map_or(0, |i| i.seed),
        conditions,
        codes,
        actions: out_actions,
        states: out_states,
        stamps,
        views: if opts.keep_views { views } else { Vec::new() },
        objects,
    })
}

/// The instance ids in the view and the cups at each token frame's stamp
/// (`id_frames` by log time, which the simulator's recordings give the
/// frame's stamp).
fn objects(
    bag: &Path,
    topic: &str,
    id_frames: &[(i64, Serialized)],
    cups: &[(i64, Vec<(u16, f32)>)],
    stamps: &[i64],
    size: usize,
) -> Result<Objects, WorldError> {
    let mut out = Objects::default();
    let mut pixels: Option<(usize, usize, Vec<usize>)> = None;
    for &t in stamps {
        let i = id_frames.partition_point(|f| f.0 < t);
        let Some((_, data)) = id_frames.get(i).filter(|f| f.0 == t) else {
            return Err(data_error(bag, format!("{topic}: no instance image at the frame stamped {t} ns")));
        };
        let img: Image = data.decode().map_err(|e| data_error(bag, format!("{topic}: {e}")))?;
        let ids = s2r_image::ids(&img, topic).map_err(|e| data_error(bag, e.to_string()))?;
        let (w, h) = (img.width as usize, img.height as usize);
        if pixels.as_ref().is_none_or(|p| (p.0, p.1) != (w, h)) {
            // The camera pixel nearest each view pixel's centre, as the codec's view samples the frame.
            pixels = Some((w, h, s2r_image::view::nearest_pixels(w, h, size).map(|(x, y)| y * w + x).collect()));
        }
        let map = &pixels.as_ref().expect("set above").2;
        out.ids.push(map.iter().map(|&k| ids[k]).collect());
        out.cups.push(at(cups, t).cloned().unwrap_or_default());
    }
    Ok(out)
}

/// A command in its units → the network's action: a vehicle's speed and yaw
/// rate scaled; an arm's joint targets relative to its joints `state`, and
/// the gripper's opening.
pub fn scale_action(robot: Robot, cmd: &[f32; 7], state: &[f32; 7]) -> [f32; ACTION] {
    let mut out = [0f32; ACTION];
    match robot {
        Robot::Vehicle => {
            out[0] = cmd[0] / SPEED_SCALE;
            out[1] = cmd[1] / YAW_SCALE;
        }
        Robot::Arm => {
            for k in 0..6 {
                out[k] = (cmd[k] - state[k]) / JOINT_STEP;
            }
            out[6] = cmd[6] / GRIPPER_SCALE;
        }
    }
    out
}

/// A state in its units → the network's.
pub fn scale_state(robot: Robot, s: &[f32; 7]) -> [f32; ACTION] {
    let mut out = [0f32; ACTION];
    match robot {
        Robot::Vehicle => {
            out[0] = s[0] / SPEED_SCALE;
            out[1] = s[1] / YAW_SCALE;
        }
        Robot::Arm => {
            out[..6].copy_from_slice(&s[..6]);
            out[6] = s[6] / GRIPPER_SCALE;
        }
    }
    out
}

/// A bag's scenario and seed (from `/scenario`; its name and 0 without one), read without its frames.
pub fn identify(bag: &Path) -> Result<(String, u64), WorldError> {
    let r = BagReader::open(bag).map_err(|e| data_error(bag, e.to_string()))?;
    let name = bag.file_name().and_then(|n| n.to_str()).unwrap_or("bag").to_string();
    let Some(id) = r.connections.iter().position(|c| c.topic == "/scenario") else { return Ok((name, 0)) };
    for m in r.messages() {
        if m.connection == id {
            let info: ScenarioInfo = Serialized(m.data.clone()).decode().map_err(|e| data_error(bag, format!("/scenario: {e}")))?;
            return Ok((info.scenario, info.seed));
        }
    }
    Ok((name, 0))
}
