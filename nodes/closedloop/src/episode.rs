//! One episode: the scenario on its route with a seed, the driver in the
//! loop, measured as it goes. Deterministic: the same scenario, seed and
//! driver give the same episode.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nalgebra::Vector2;
use s2r_bag::{BagWriter, Compression, TopicId, TopicSpec, WriterOptions};
use s2r_idl::Message;
use s2r_image::Rgb;
use s2r_sim::expert::DrivingView;
use s2r_sim::scenario::Scenario;
use s2r_sim::sim::{CameraFrame, Sim, SimOptions};
use s2r_sim::world::class;
use serde::Serialize;
use sim2real_msgs::geometry_msgs::msg::Twist;
use sim2real_msgs::nav_msgs::msg::Odometry;
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image};
use sim2real_msgs::sim2real_msgs::msg::{CollisionEvent, ScenarioInfo};
use sim2real_msgs::tf2_msgs::msg::TFMessage;
use sim2real_msgs::vision_msgs::msg::Detection3DArray;

use crate::driver::{Command, Driver};
use crate::score::{self, Penalties};
use crate::ClosedLoopError;

/// Deceleration (m/s²) above which a slowdown counts as hard braking.
pub const HARD_BRAKE: f32 = 4.0;
/// How far ahead (s) time-to-collision looks.
const TTC_HORIZON: f32 = 10.0;

/// How to run an episode.
#[derive(Debug, Clone)]
pub struct EpisodeOptions {
    /// Camera resolution factor when anything renders (a driver that looks,
    /// thumbnails, a recording).
    pub image_scale: f64,
    /// Keep a picture of the front camera at the first collision (or the end).
    pub thumbnail: bool,
    /// Record the episode into a rosbag2 bag at this folder (cameras,
    /// odometry, TF, the driver's commands, collisions).
    pub record: Option<PathBuf>,
}

impl Default for EpisodeOptions {
    fn default() -> Self {
        EpisodeOptions { image_scale: 0.25, thumbnail: false, record: None }
    }
}

/// How an episode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The route's length covered.
    Completed,
    /// Time ran out first.
    Timeout,
}

/// A collision of the ego with something.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// Sim seconds.
    pub time: f64,
    /// What was hit (its class name).
    pub class: String,
    /// Its instance id.
    pub instance: u16,
    /// Relative speed at the contact, m/s.
    pub speed: f64,
}

impl Hit {
    /// A pedestrian, a child or a cyclist: a vulnerable road user.
    pub fn vulnerable(&self) -> bool {
        matches!(self.class.as_str(), "pedestrian" | "child" | "cyclist")
    }
}

/// The state at one instant, for the report's plots (10 Hz).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Sim seconds.
    pub t: f32,
    /// Ego speed, m/s.
    pub speed: f32,
    /// Gap (m) between the ego's footprint and the nearest pedestrian, child or cyclist.
    pub vru_gap: Option<f32>,
    /// Time-to-collision with anything at constant velocities, seconds.
    pub ttc: Option<f32>,
}

/// One episode, measured.
#[derive(Debug, Clone, Serialize)]
pub struct Episode {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Who drove.
    pub driver: String,
    /// Completed or timed out.
    pub outcome: Outcome,
    /// Share of the route covered on the road, 0 to 1 (metres off the road do not count).
    pub route_completion: f64,
    /// Everything the ego hit, once per object.
    pub collisions: Vec<Hit>,
    /// Smallest time-to-collision seen before any collision, seconds.
    pub min_ttc: Option<f64>,
    /// Times the ego decelerated harder than [`HARD_BRAKE`].
    pub hard_brakes: u32,
    /// Times the ego's footprint crossed the centre line or the kerb.
    pub lane_infractions: u32,
    /// Metres driven with the ego's centre off its side of the road.
    pub offroad_m: f64,
    /// Product of the infraction penalties.
    pub penalty: f64,
    /// Route completion × penalty (the CARLA leaderboard's driving score), 0 to 1.
    pub driving_score: f64,
    /// Sim seconds the episode lasted.
    pub sim_seconds: f64,
    /// Metres along the route.
    pub distance: f64,
    /// Highest speed, m/s.
    pub max_speed: f64,
    /// Smallest gap to a pedestrian, child or cyclist, metres.
    pub min_vru_gap: Option<f64>,
    /// Commands the simulator clamped to the vehicle's limits.
    pub clamped: u32,
    /// Wall-clock seconds it took.
    pub wall_seconds: f64,
    /// 10 Hz samples for the plots.
    #[serde(skip)]
    pub trace: Vec<Sample>,
    /// The front camera at the first collision, or at the end.
    #[serde(skip)]
    pub thumbnail: Option<Rgb>,
}

impl Episode {
    /// A pedestrian, child or cyclist was hit.
    pub fn hit_vulnerable(&self) -> bool {
        self.collisions.iter().any(Hit::vulnerable)
    }

    /// Failed: something hit, or the route not completed.
    pub fn failed(&self) -> bool {
        !self.collisions.is_empty() || self.outcome != Outcome::Completed
    }
}

/// Time until two boxes moving at constant velocities first overlap, along
/// two axes: relative position `p`, relative velocity `w`, half-extent sums
/// `h`. Zero when they overlap now; None when not within `horizon`.
pub fn time_to_collision(p: Vector2<f32>, w: Vector2<f32>, h: Vector2<f32>, horizon: f32) -> Option<f32> {
    let mut lo = 0.0f32;
    let mut hi = horizon;
    for k in 0..2 {
        if w[k].abs() < 1e-6 {
            if p[k].abs() >= h[k] {
                return None;
            }
            continue;
        }
        let (a, b) = ((-h[k] - p[k]) / w[k], (h[k] - p[k]) / w[k]);
        lo = lo.max(a.min(b));
        hi = hi.min(a.max(b));
    }
    (lo < hi).then_some(lo)
}

/// Gap between two axis-aligned boxes (0 when they touch or overlap).
fn box_gap(p: Vector2<f32>, h: Vector2<f32>) -> f32 {
    let d = Vector2::new((p.x.abs() - h.x).max(0.0), (p.y.abs() - h.y).max(0.0));
    d.norm()
}

/// What the evaluator measures from the ground truth at each odometry instant.
struct Meter {
    last: Option<(f32, f32, f32)>, // t, s, speed
    braking: bool,
    /// Some of the car is over the centre line or the kerb.
    over: bool,
    /// Its centre is off its side of the road.
    off: bool,
    m: Measures,
}

#[derive(Default)]
struct Measures {
    s: f32,
    max_speed: f32,
    min_ttc: Option<f32>,
    min_vru: Option<f32>,
    hard_brakes: u32,
    lane_infractions: u32,
    offroad: f32,
    trace: Vec<Sample>,
}

impl Meter {
    fn new() -> Meter {
        Meter { last: None, braking: false, over: false, off: false, m: Measures::default() }
    }

    fn measure(&mut self, v: &DrivingView, sample: bool, collided: bool) {
        let (s, l) = v.to_lane(v.position);
        let m = &mut self.m;
        m.max_speed = m.max_speed.max(v.speed);
        if let Some((t0, s0, v0)) = self.last {
            let dt = (v.time - t0).max(1e-6);
            let hard = (v0 - v.speed) / dt > HARD_BRAKE;
            if hard && !self.braking {
                m.hard_brakes += 1;
            }
            self.braking = hard;
            if self.off {
                m.offroad += (s - s0).max(0.0);
            }
        }
        self.last = Some((v.time, s, v.speed));
        m.s = s;
        // Over the centre line or the kerb with any part of the car.
        let (left, right) = v.room;
        let over = l + v.half.y > left || l - v.half.y < right;
        if over && !self.over {
            m.lane_infractions += 1;
        }
        self.over = over;
        // Off the road counts from the centre (CARLA: route completion off-road is lost).
        self.off = l > left || l < right;

        let yaw_rel = v.yaw - v.lane_dir.y.atan2(v.lane_dir.x);
        let ego_v = Vector2::new(v.speed * yaw_rel.cos(), v.speed * yaw_rel.sin());
        let mut ttc: Option<f32> = None;
        let mut vru: Option<f32> = None;
        for a in &v.actors {
            let a_lane = v.in_lane(a);
            let p = Vector2::new(a_lane.s - s, a_lane.l - l);
            let h = Vector2::new(a_lane.half_s, a_lane.half_l) + v.half;
            if matches!(a.class, class::PEDESTRIAN | class::CHILD | class::CYCLIST) {
                let g = box_gap(p, h);
                vru = Some(vru.map_or(g, |x| x.min(g)));
            }
            let av = Vector2::new(a_lane.vs, a_lane.vl);
            if let Some(t) = time_to_collision(p, av - ego_v, h, TTC_HORIZON) {
                ttc = Some(ttc.map_or(t, |x| x.min(t)));
            }
        }
        if let Some(g) = vru {
            m.min_vru = Some(m.min_vru.map_or(g, |x| x.min(g)));
        }
        if !collided {
            if let Some(t) = ttc {
                m.min_ttc = Some(m.min_ttc.map_or(t, |x| x.min(t)));
            }
        }
        if sample {
            m.trace.push(Sample { t: v.time, speed: v.speed, vru_gap: vru, ttc });
        }
    }
}

/// The front camera's (or the first camera's) picture as RGB.
fn picture(frames: &[CameraFrame]) -> Option<Rgb> {
    let f = frames.iter().find(|f| f.name == "front").or(frames.first())?;
    let data = s2r_image::rgb8(&f.image, "thumbnail").ok()?;
    Some(Rgb { width: f.image.width as usize, height: f.image.height as usize, data })
}

/// Runs `scenario` on its route with `seed` and `driver` until the route is
/// completed or its timeout passes.
pub fn run(scenario: &Scenario, seed: u64, driver: &mut dyn Driver, opts: &EpisodeOptions) -> Result<Episode, ClosedLoopError> {
    let started = Instant::now();
    let Some(route) = scenario.route else {
        return Err(ClosedLoopError::Scenario(format!(
            "{} has an arm: closed-loop evaluation drives vehicle scenarios (the arm's needs the gripper)",
            scenario.name
        )));
    };
    let name = scenario.name.clone();
    let render_err = |source| ClosedLoopError::Render { scenario: name.clone(), seed, source };
    let looks = driver.needs_cameras() || opts.record.is_some();
    let render = looks || opts.thumbnail;
    let mut sim = Sim::new(scenario.on_route(), &SimOptions { seed, image_scale: opts.image_scale, render }).map_err(render_err)?;
    sim.set_cameras(looks);
    let ego = sim.world.ego.ok_or_else(|| ClosedLoopError::Scenario(format!("{name} has no vehicle")))?;
    let ego_instance = sim.world.objects[ego].instance;
    let mut meter = Meter::new();
    driver.reset(&sim);
    let mut bag = match &opts.record {
        Some(dir) => Some(Recorder::create(dir, &sim)?),
        None => None,
    };

    let mut hits: Vec<Hit> = Vec::new();
    let mut hit_ids = BTreeSet::new();
    let mut thumbnail = None;
    let mut clamped = 0u32;
    let mut odom_ticks = 0u64;
    let mut outcome = Outcome::Timeout;
    while sim.seconds() < route.timeout {
        let tick = sim.tick().map_err(render_err)?;
        for c in &tick.collisions {
            let (other, class_name) = if c.instance_a == ego_instance {
                (c.instance_b, &c.class_b)
            } else if c.instance_b == ego_instance {
                (c.instance_a, &c.class_a)
            } else {
                continue;
            };
            if hit_ids.insert(other) {
                hits.push(Hit { time: sim.seconds(), class: class_name.clone(), instance: other, speed: c.relative_speed });
                if opts.thumbnail && thumbnail.is_none() {
                    thumbnail = picture(&sim.snapshot().map_err(render_err)?);
                }
            }
        }
        let command = driver.act(&sim, &tick)?;
        if let Some(c) = &command {
            clamped += apply(&mut sim, c) as u32;
        }
        if let Some(b) = bag.as_mut() {
            // The teacher's label where there is one (DAgger), else what was executed.
            let label = driver.label().or_else(|| command.clone());
            b.write_tick(&tick, label.as_ref())?;
        }
        if tick.odom.is_some() {
            odom_ticks += 1;
            if let Some(v) = DrivingView::of(&sim) {
                meter.measure(&v, odom_ticks.is_multiple_of(5), !hits.is_empty());
            }
            if meter.m.s >= route.length as f32 {
                outcome = Outcome::Completed;
                break;
            }
        }
    }
    if opts.thumbnail && thumbnail.is_none() {
        thumbnail = picture(&sim.snapshot().map_err(render_err)?);
    }
    if let Some(b) = bag {
        b.finish()?;
    }
    let m = meter.m;
    let length = route.length as f32;
    let route_completion = (((m.s.min(length)) - m.offroad).max(0.0) / length) as f64;
    let penalty = Penalties::default().of(&hits, m.lane_infractions);
    Ok(Episode {
        scenario: name,
        seed,
        driver: driver.name().to_string(),
        outcome,
        route_completion,
        collisions: hits,
        min_ttc: m.min_ttc.map(f64::from),
        hard_brakes: m.hard_brakes,
        lane_infractions: m.lane_infractions,
        offroad_m: m.offroad as f64,
        penalty,
        driving_score: score::driving_score(route_completion, penalty),
        sim_seconds: sim.seconds(),
        distance: m.s as f64,
        max_speed: m.max_speed as f64,
        min_vru_gap: m.min_vru.map(f64::from),
        clamped,
        wall_seconds: started.elapsed().as_secs_f64(),
        trace: m.trace,
        thumbnail,
    })
}

/// Applies a command as the simulator's topics would; true when something was clamped.
fn apply(sim: &mut Sim, c: &Command) -> bool {
    match c {
        Command::Velocity(t) => !sim.command_velocity(t).is_empty(),
        Command::Joints(j) => sim.command_joints(j).map(|n| !n.is_empty()).unwrap_or(true),
    }
}

/// An episode's recording: the topics sim_node would publish (front camera
/// at the evaluation's resolution), plus /cmd_vel as the driver sent it.
struct Recorder {
    dir: PathBuf,
    writer: BagWriter,
    topics: Vec<(String, TopicId)>,
}

impl Recorder {
    /// A new recording at `dir`, replacing an older one there (an episode run again).
    fn create(dir: &Path, sim: &Sim) -> Result<Recorder, ClosedLoopError> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| ClosedLoopError::Write { path: dir.into(), message: e.to_string() })?;
        }
        let writer = BagWriter::create(dir, WriterOptions { compression: Compression::Zstd, ..Default::default() })
            .map_err(|e| ClosedLoopError::Write { path: dir.into(), message: e.to_string() })?;
        let mut r = Recorder { dir: dir.into(), writer, topics: Vec::new() };
        r.write::<ScenarioInfo>("/scenario", 0, &sim.scenario_info())?;
        r.write::<TFMessage>("/tf_static", 0, &sim.tf_static())?;
        Ok(r)
    }

    fn write<M: Message>(&mut self, topic: &str, t: u64, msg: &M) -> Result<(), ClosedLoopError> {
        let err = |e: s2r_bag::BagError| ClosedLoopError::Write { path: self.dir.clone(), message: e.to_string() };
        let id = match self.topics.iter().find(|(n, _)| n == topic) {
            Some((_, id)) => *id,
            None => {
                let id = self.writer.add_topic(TopicSpec::of::<M>(topic, Vec::new())).map_err(err)?;
                self.topics.push((topic.to_string(), id));
                id
            }
        };
        self.writer.write_message(id, t, msg).map_err(err)
    }

    fn write_tick(&mut self, tick: &s2r_sim::sim::Tick, command: Option<&Command>) -> Result<(), ClosedLoopError> {
        let t = s2r_runtime::stamp_ns(&tick.time).max(0) as u64;
        if let Some(m) = &tick.odom {
            self.write::<Odometry>("/odom", t, m)?;
        }
        if let Some(m) = &tick.tf {
            self.write::<TFMessage>("/tf", t, m)?;
        }
        if let Some(m) = &tick.detections3d {
            self.write::<Detection3DArray>("/sim/detections3d", t, m)?;
        }
        for c in &tick.collisions {
            self.write::<CollisionEvent>("/sim/collisions", t, c)?;
        }
        for cam in &tick.cameras {
            self.write::<Image>(&format!("/sim/{}/image_raw", cam.name), t, &cam.image)?;
            self.write::<CameraInfo>(&format!("/sim/{}/camera_info", cam.name), t, &cam.info)?;
        }
        if let Some(Command::Velocity(tw)) = command {
            self.write::<Twist>("/cmd_vel", t, tw)?;
        }
        Ok(())
    }

    fn finish(self) -> Result<(), ClosedLoopError> {
        let dir = self.dir.clone();
        self.writer.finish().map(|_| ()).map_err(|e| ClosedLoopError::Write { path: dir, message: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_to_collision_of_boxes_closing_head_on_and_passing_by() {
        let h = Vector2::new(3.0, 1.5);
        // 20 m ahead closing at 10 m/s: overlap once the 14 m gap is gone.
        let t = time_to_collision(Vector2::new(20.0, 0.0), Vector2::new(-10.0, 0.0), h, 10.0).unwrap();
        assert!((t - 1.7).abs() < 1e-5, "{t}");
        // Side by side in the next lane: never.
        assert_eq!(time_to_collision(Vector2::new(20.0, 3.5), Vector2::new(-10.0, 0.0), h, 10.0), None);
        // Crossing from the side, arriving after the ego has passed: never.
        assert_eq!(time_to_collision(Vector2::new(5.0, 6.0), Vector2::new(-10.0, -1.0), h, 10.0), None);
        // Crossing in front in time: the later of the two axes' entries.
        let t = time_to_collision(Vector2::new(10.0, 4.0), Vector2::new(-5.0, -2.0), h, 10.0).unwrap();
        assert!((t - 1.4).abs() < 1e-5, "{t}");
        // Overlapping now.
        assert_eq!(time_to_collision(Vector2::zeros(), Vector2::new(1.0, 0.0), h, 10.0), Some(0.0));
        assert_eq!(box_gap(Vector2::new(5.0, 0.0), h), 2.0);
    }
}
