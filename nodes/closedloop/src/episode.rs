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
use s2r_sim::arm_expert::ArmView;
use s2r_sim::expert::DrivingView;
use s2r_sim::scenario::{ArmTask, Scenario};
use s2r_sim::sim::{CameraFrame, Sim, SimOptions, GRIPPER_JOINT};
use s2r_sim::world::class;
use serde::Serialize;
use sim2real_msgs::geometry_msgs::msg::Twist;
use sim2real_msgs::nav_msgs::msg::Odometry;
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image, JointState};
use sim2real_msgs::sim2real_msgs::msg::{CollisionEvent, ScenarioInfo};
use sim2real_msgs::std_msgs::msg::Bool;
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
    /// Seconds a recording goes on after the episode has ended, the driver
    /// still driving (what happens next: the cup on the floor, the car
    /// after a collision); the episode's figures are those at its end.
    pub after: f64,
    /// Record each camera's instance ids (`/sim/<camera>/instances`,
    /// mono16) beside its frames: which pixels are which object, to score
    /// what a model's predicted frames show.
    pub instances: bool,
}

impl Default for EpisodeOptions {
    fn default() -> Self {
        EpisodeOptions { image_scale: 0.25, thumbnail: false, record: None, after: 0.0, instances: false }
    }
}

/// How an episode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The route's length covered; for an arm, the cup placed.
    Completed,
    /// Time ran out first.
    Timeout,
    /// A cup fell off the table (arms).
    Dropped,
}

/// How far an arm got with its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The cup not held yet.
    None,
    /// Both fingers on the cup.
    Grasped,
    /// Held clear of the table.
    Lifted,
    /// Held over the spot.
    OverSpot,
    /// Standing upright on the spot, let go.
    Placed,
}

impl Stage {
    /// Share of the task done: 0, ¼, ½, ¾, 1.
    pub fn progress(self) -> f64 {
        match self {
            Stage::None => 0.0,
            Stage::Grasped => 0.25,
            Stage::Lifted => 0.5,
            Stage::OverSpot => 0.75,
            Stage::Placed => 1.0,
        }
    }
}

/// What an arm episode measures on top of the common figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmMeasures {
    /// The furthest stage reached.
    pub stage: Stage,
    /// The task's cup's distance from the spot at the end, metres (on the table top).
    pub place_error_m: f64,
    /// Cups that fell off the table.
    pub cups_dropped: u32,
    /// Cups knocked over (lying on the table).
    pub cups_knocked_over: u32,
    /// Grasps that closed on nothing (the gripper closed, nothing held).
    pub missed_grasps: u32,
}

/// A cup counts as standing upright within this angle of vertical (cos of 15°).
const UPRIGHT_COS: f32 = 0.966;
/// A cup counts as knocked over beyond this angle of vertical (cos of 60°).
const KNOCKED_COS: f32 = 0.5;

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
    /// Arms: the task's cup's distance from the spot, metres.
    pub cup_to_spot: Option<f32>,
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
    /// Arm episodes: the task's stages, the cup's placement, cups dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arm: Option<ArmMeasures>,
    /// What a safety filter between the driver and the car did (`--reason on`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<crate::reason::FilterLog>,
}

impl Episode {
    /// A pedestrian, child or cyclist was hit.
    pub fn hit_vulnerable(&self) -> bool {
        self.collisions.iter().any(Hit::vulnerable)
    }

    /// Failed: something hit, or the route not completed (for an arm: the
    /// cup not placed, or any cup dropped or knocked over).
    pub fn failed(&self) -> bool {
        let arm_fault = self.arm.as_ref().is_some_and(|a| a.cups_dropped + a.cups_knocked_over > 0);
        !self.collisions.is_empty() || self.outcome != Outcome::Completed || arm_fault
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
            m.trace.push(Sample { t: v.time, speed: v.speed, vru_gap: vru, ttc, cup_to_spot: None });
        }
    }
}

/// The driver's camera resolution factor (a policy's input), else the episode's.
fn scale_for(driver: &dyn Driver, scenario: &Scenario, opts: &EpisodeOptions) -> f64 {
    let camera = scenario.sensors.cameras.first();
    camera.and_then(|c| driver.image_scale(c.width, c.height)).unwrap_or(opts.image_scale)
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
    if let Some(task) = scenario.task {
        return run_arm(scenario, task, seed, driver, opts, started);
    }
    let Some(route) = scenario.route else {
        return Err(ClosedLoopError::Scenario(format!("{} has neither a route nor an arm's task", scenario.name)));
    };
    let name = scenario.name.clone();
    let render_err = |source| ClosedLoopError::Render { scenario: name.clone(), seed, source };
    let looks = driver.needs_cameras() || opts.record.is_some();
    let render = looks || opts.thumbnail;
    let image_scale = scale_for(driver, scenario, opts);
    let mut sim = Sim::new(scenario.on_route(), &SimOptions { seed, image_scale, render }).map_err(render_err)?;
    sim.set_cameras(looks);
    let ego = sim.world.ego.ok_or_else(|| ClosedLoopError::Scenario(format!("{name} has no vehicle")))?;
    let ego_instance = sim.world.objects[ego].instance;
    let mut meter = Meter::new();
    driver.reset(&sim);
    let mut bag = match &opts.record {
        Some(dir) => Some(Recorder::create(dir, &sim, opts.instances)?),
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
            b.write_tick(&tick, recorded_command(driver, command.as_ref(), &sim).as_ref())?;
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
    // The episode's figures are those at its end, before a recording goes on.
    let (sim_seconds, wall_seconds, filter) = (sim.seconds(), started.elapsed().as_secs_f64(), driver.filter_log());
    if let Some(b) = bag {
        b.finish_after(&mut sim, driver, opts.after)?;
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
        sim_seconds,
        distance: m.s as f64,
        max_speed: m.max_speed as f64,
        min_vru_gap: m.min_vru.map(f64::from),
        clamped,
        wall_seconds,
        trace: m.trace,
        thumbnail,
        arm: None,
        filter,
    })
}

/// An arm's episode: the task's cup picked up and put down upright on the
/// spot ends it (completed), a cup off the table ends it (dropped), else the
/// task's timeout. Its score is the task's progress (¼ per stage) times a
/// penalty of 0.5 per cup dropped and 0.65 per cup knocked over.
fn run_arm(
    scenario: &Scenario,
    task: ArmTask,
    seed: u64,
    driver: &mut dyn Driver,
    opts: &EpisodeOptions,
    started: Instant,
) -> Result<Episode, ClosedLoopError> {
    let name = scenario.name.clone();
    let render_err = |source| ClosedLoopError::Render { scenario: name.clone(), seed, source };
    let looks = driver.needs_cameras() || opts.record.is_some();
    let render = looks || opts.thumbnail;
    let image_scale = scale_for(driver, scenario, opts);
    let mut sim = Sim::new(scenario.clone(), &SimOptions { seed, image_scale, render }).map_err(render_err)?;
    sim.set_cameras(looks);
    driver.reset(&sim);
    let mut bag = match &opts.record {
        Some(dir) => Some(Recorder::create(dir, &sim, opts.instances)?),
        None => None,
    };
    let spot = Vector2::new(task.place[0] as f32, task.place[1] as f32);
    let mut stage = Stage::None;
    let mut dropped = BTreeSet::new();
    let mut knocked = BTreeSet::new();
    let mut missed = 0u32;
    let mut closing = false;
    let mut held_while_closed = false;
    let mut clamped = 0u32;
    let mut outcome = Outcome::Timeout;
    let mut trace = Vec::new();
    let mut last_tool: Option<(f32, nalgebra::Point3<f32>)> = None;
    let mut max_speed = 0f32;
    let mut error = f32::NAN;
    let mut ticks = 0u64;
    while sim.seconds() < task.timeout {
        let tick = sim.tick().map_err(render_err)?;
        let command = driver.act(&sim, &tick)?;
        if let Some(c) = &command {
            clamped += apply(&mut sim, c) as u32;
            if let Command::Joints(j) = c {
                // A gripper told to close (under a cup's width) that holds nothing is a missed grasp.
                if let Some(g) = j.name.iter().zip(&j.position).find(|(n, _)| *n == GRIPPER_JOINT).map(|(_, x)| *x) {
                    let wants_closed = g < 0.05;
                    if closing && !wants_closed && !held_while_closed {
                        missed += 1;
                    }
                    if wants_closed && !closing {
                        held_while_closed = false;
                    }
                    closing = wants_closed;
                }
            }
        }
        if let Some(b) = bag.as_mut() {
            b.write_tick(&tick, recorded_command(driver, command.as_ref(), &sim).as_ref())?;
        }
        if tick.joint_states.is_none() {
            continue;
        }
        ticks += 1;
        let Some(v) = ArmView::of(&sim) else {
            return Err(ClosedLoopError::Scenario(format!("{name} has a task but no arm")));
        };
        let Some(cup) = v.target() else {
            return Err(ClosedLoopError::Scenario(format!("{name}: the task's cup {} is not in the world", task.pick)));
        };
        let held = v.grasped == Some(cup.object);
        let at = cup.pose.translation.vector;
        let up = (cup.pose.rotation * nalgebra::Vector3::z()).z;
        error = (at.xy() - spot).norm();
        let on_table = (at.z - v.table_top - cup.half.z).abs() < 0.01;
        let resting = sim.physics.velocity(cup.object).0.norm() < 0.02;
        let reached = if held && at.z > v.table_top + cup.half.z + 0.03 && error < 2.0 * task.tolerance as f32 {
            Stage::OverSpot
        } else if held && at.z > v.table_top + cup.half.z + 0.03 {
            Stage::Lifted
        } else if held {
            Stage::Grasped
        } else if stage >= Stage::Grasped && on_table && resting && up > UPRIGHT_COS && error < task.tolerance as f32 {
            Stage::Placed
        } else {
            Stage::None
        };
        stage = stage.max(reached);
        held_while_closed |= closing && held;
        for c in &v.cups {
            let z = c.pose.translation.z;
            if z < v.table_top - 0.05 {
                dropped.insert(c.object);
            } else if (c.pose.rotation * nalgebra::Vector3::z()).z < KNOCKED_COS && z < v.table_top + c.half.z + 0.02 {
                knocked.insert(c.object);
            }
        }
        let tool = s2r_sim::arm_expert::grasp_point(&v.arm, &v.q);
        let speed = last_tool.map_or(0.0, |(t, p)| (tool - p).norm() / (v.time - t).max(1e-6));
        last_tool = Some((v.time, tool));
        max_speed = max_speed.max(speed);
        if ticks.is_multiple_of(5) {
            trace.push(Sample { t: v.time, speed, vru_gap: None, ttc: None, cup_to_spot: Some(error) });
        }
        if !dropped.is_empty() {
            outcome = Outcome::Dropped;
            break;
        }
        if stage == Stage::Placed {
            outcome = Outcome::Completed;
            break;
        }
    }
    if closing && !held_while_closed {
        missed += 1;
    }
    let thumbnail = if opts.thumbnail { picture(&sim.snapshot().map_err(render_err)?) } else { None };
    // The episode's figures are those at its end, before a recording goes on.
    let (sim_seconds, wall_seconds, filter) = (sim.seconds(), started.elapsed().as_secs_f64(), driver.filter_log());
    if let Some(b) = bag {
        b.finish_after(&mut sim, driver, opts.after)?;
    }
    let penalty = 0.5f64.powi(dropped.len() as i32) * 0.65f64.powi(knocked.len() as i32);
    let progress = stage.progress();
    Ok(Episode {
        scenario: name,
        seed,
        driver: driver.name().to_string(),
        outcome,
        route_completion: progress,
        collisions: Vec::new(),
        min_ttc: None,
        hard_brakes: 0,
        lane_infractions: 0,
        offroad_m: 0.0,
        penalty,
        driving_score: score::driving_score(progress, penalty),
        sim_seconds,
        distance: 0.0,
        max_speed: max_speed as f64,
        min_vru_gap: None,
        clamped,
        wall_seconds,
        trace,
        thumbnail,
        arm: Some(ArmMeasures {
            stage,
            place_error_m: error as f64,
            cups_dropped: dropped.len() as u32,
            cups_knocked_over: knocked.len() as u32,
            missed_grasps: missed,
        }),
        filter,
    })
}

/// The command a recording keeps for this instant: the teacher's label where
/// there is one (DAgger), else what was executed, else, for an arm nobody
/// commands, its script's targets (what moves it).
fn recorded_command(driver: &dyn Driver, executed: Option<&Command>, sim: &Sim) -> Option<Command> {
    driver.label().or_else(|| executed.cloned()).or_else(|| sim.scripted_command().map(Command::Joints))
}

/// Applies a command as the simulator's topics would; true when something was clamped.
fn apply(sim: &mut Sim, c: &Command) -> bool {
    match c {
        Command::Velocity(t) => !sim.command_velocity(t).is_empty(),
        Command::Joints(j) => sim.command_joints(j).map(|n| !n.is_empty()).unwrap_or(true),
    }
}

/// An episode's recording: the topics sim_node would publish (front camera
/// at the evaluation's resolution), plus /cmd_vel or /joint_commands as the
/// driver sent it (or, in a DAgger round, as the teacher would have).
struct Recorder {
    dir: PathBuf,
    instances: bool,
    writer: BagWriter,
    topics: Vec<(String, TopicId)>,
}

impl Recorder {
    /// A new recording at `dir`, replacing an older one there (an episode run again).
    fn create(dir: &Path, sim: &Sim, instances: bool) -> Result<Recorder, ClosedLoopError> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| ClosedLoopError::Write { path: dir.into(), message: e.to_string() })?;
        }
        let writer = BagWriter::create(dir, WriterOptions { compression: Compression::Zstd, ..Default::default() })
            .map_err(|e| ClosedLoopError::Write { path: dir.into(), message: e.to_string() })?;
        let mut r = Recorder { dir: dir.into(), instances, writer, topics: Vec::new() };
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
            if self.instances {
                self.write::<Image>(&format!("/sim/{}/instances", cam.name), t, &cam.instances)?;
            }
        }
        if let Some(m) = &tick.joint_states {
            self.write::<JointState>("/joint_states", t, m)?;
        }
        if let Some(m) = &tick.grasped {
            self.write::<Bool>("/gripper/grasped", t, m)?;
        }
        match command {
            Some(Command::Velocity(tw)) => self.write::<Twist>("/cmd_vel", t, tw)?,
            Some(Command::Joints(j)) => self.write::<JointState>("/joint_commands", t, j)?,
            None => {}
        }
        Ok(())
    }

    /// Steps `sim` on for `seconds` more, `driver` driving, recording as
    /// during the episode (the script's targets for an arm it leaves to
    /// its script), then finishes the bag.
    fn finish_after(mut self, sim: &mut Sim, driver: &mut dyn Driver, seconds: f64) -> Result<(), ClosedLoopError> {
        let end = sim.seconds() + seconds;
        while sim.seconds() < end {
            let tick = sim.tick().map_err(|source| ClosedLoopError::Render {
                scenario: sim.scenario.name.clone(),
                seed: sim.world.seed,
                source,
            })?;
            let command = driver.act(sim, &tick)?;
            if let Some(c) = &command {
                apply(sim, c);
            }
            self.write_tick(&tick, recorded_command(driver, command.as_ref(), sim).as_ref())?;
        }
        self.finish()
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
