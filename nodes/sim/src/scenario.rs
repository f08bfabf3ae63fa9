//! Scenario files (`config/scenarios/*.yaml`): the world, the ego, the actors
//! and their scripted behaviours, the environment, the sensors, and the ranges
//! that domain randomization draws from with the seed. The format is
//! documented in `config/scenarios/README.md`; every error names the file, the
//! line and the key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use s2r_runtime::yaml::{self, Fields, Yaml, YamlError};

use crate::asset::MeshAsset;
use crate::world::CLASS_NAMES;

/// A scenario file that cannot be simulated: where (file, line, key) and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}:{}: '{}': {}", .file.display(), .line, .key, .message)]
pub struct ScenarioError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// The key path (`actors[2].friction`).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// A number, or a `[low, high]` range drawn from per seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range(pub f64, pub f64);

impl Range {
    /// A range that always draws `x`.
    pub(crate) fn fixed(x: f64) -> Range {
        Range(x, x)
    }
}

/// Sets the sun's height and colour, the sky, and whether the ego's
/// headlights and the street lamps are on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeOfDay {
    /// Low warm sun; headlights and street lamps on.
    Dawn,
    /// High sun; no lamps.
    Day,
    /// Low reddish sun; headlights and street lamps on.
    Dusk,
    /// Dim moonlight; headlights and street lamps light the scene.
    Night,
}

impl TimeOfDay {
    /// As the file spells it, and as ScenarioInfo.time_of_day carries it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            TimeOfDay::Dawn => "dawn",
            TimeOfDay::Day => "day",
            TimeOfDay::Dusk => "dusk",
            TimeOfDay::Night => "night",
        }
    }
}

/// A straight road along x, centred on the origin (y = 0 is its middle).
#[derive(Debug, Clone, PartialEq)]
pub struct Road {
    /// In all, half each way; lane 1 is the rightmost (y < 0). At least 1.
    pub lanes: u32,
    /// Metres.
    pub lane_width: f64,
    /// Metres; the road runs from x = −length/2 to +length/2.
    pub length: f64,
    /// Metres, each side; 0: no sidewalks (and no kerb).
    pub sidewalk_width: f64,
    /// Per side, evenly spaced along the road.
    pub buildings: u32,
    /// Metres, drawn per building.
    pub building_height: Range,
}

/// A table centred on the origin, standing on a floor.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Length (x), width (y), height (z) in metres.
    pub size: [f64; 3],
}

/// What the world is made of (`world.kind`).
#[derive(Debug, Clone, PartialEq)]
pub enum WorldSpec {
    /// Driving: a vehicle ego only.
    Road(Road),
    /// Manipulation: an arm ego only.
    Table(Table),
}

/// Tyre-road (or object-table) friction coefficients per surface.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Friction {
    /// Under the tyres on the carriageway: dry asphalt ~0.8, ice ~0.1.
    pub road: f64,
    /// Under the tyres off the road (beyond `road_half_width`).
    pub sidewalk: f64,
    /// Between the table top and what stands on it.
    pub table: f64,
}

/// Light, weather and surfaces (`environment`).
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    /// The scene's lighting.
    pub time_of_day: TimeOfDay,
    /// "clear", "rain", "snow" or "fog" (checked when parsed): a label in
    /// ScenarioInfo that also tints, darkens and fogs the look; it does not
    /// change friction (`friction` does).
    pub weather: String,
    /// 0 to 1.
    pub weather_intensity: f64,
    /// μ per surface, before randomization.
    pub friction: Friction,
}

/// A position and heading on the ground plane (metres, degrees).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pose2 {
    /// Metres, map frame: along the road.
    pub x: f64,
    /// Metres, map frame: to the left of the road's middle.
    pub y: f64,
    /// Heading, degrees counter-clockwise from +x.
    pub yaw_deg: f64,
}

/// A car driven by /cmd_vel (linear.x: the speed asked for, angular.z: the yaw rate).
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleEgo {
    /// Where base_link starts on the road, map frame.
    pub start: Pose2,
    /// Initial and cruise speed (m/s) until /cmd_vel says otherwise.
    pub speed: f64,
    /// Length (x), width (y), height (z), metres.
    pub size: [f64; 3],
    /// Kilograms.
    pub mass: f64,
    /// Largest forward acceleration the powertrain gives (m/s²).
    pub max_accel: f64,
    /// Largest commanded yaw rate (rad/s).
    pub max_yaw_rate: f64,
    /// m/s; /cmd_vel's linear.x is clamped to [−5, max_speed].
    pub max_speed: f64,
}

/// A six-joint arm driven by /joint_commands, publishing /joint_states
/// (joint1..joint6: base yaw, shoulder pitch, elbow pitch, wrist roll, wrist
/// pitch, flange roll).
#[derive(Debug, Clone, PartialEq)]
pub struct ArmEgo {
    /// Base position, metres: x, y in the map frame, z above the table top
    /// (`World::arm` holds it moved up into the map frame).
    pub base: [f64; 3],
    /// Link lengths, six of them.
    pub links: [f64; 6],
    /// Joint limits, radians.
    pub limits: [[f64; 2]; 6],
    /// Joint angles at the start, radians; the trajectory moves on from them at t = 0.
    pub initial: [f64; 6],
    /// Scripted joint targets over time: (sim seconds, six angles in radians),
    /// linearly interpolated; the first accepted /joint_commands message drops it.
    pub trajectory: Vec<(f64, [f64; 6])>,
}

/// The robot the run is about: base_link is on it (`ego`).
#[derive(Debug, Clone, PartialEq)]
pub enum EgoSpec {
    /// On a road world only.
    Vehicle(VehicleEgo),
    /// On a table world only.
    Arm(ArmEgo),
}

/// What an actor is: its class, default size and palette (`actors[].type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    /// Another car (class `vehicle`), 4.4 × 1.8 × 1.5 m by default.
    Vehicle,
    /// A person (class `pedestrian`), 1.75 m tall by default.
    Adult,
    /// A child (class `child`), 1.15 m tall by default.
    Child,
    /// A cup on the table (class `cup`), a free rigid body of 0.25 kg.
    Cup,
    /// A person riding a bicycle (class `cyclist`), 1.8 × 0.6 × 1.75 m by default.
    Cyclist,
    /// A glTF 2.0 / GLB mesh (`mesh`) with a class of its own (`class`), the
    /// size of its bounding box by default.
    Mesh,
}

impl ActorKind {
    /// As the file spells it; objects are named `<name>_<n>`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ActorKind::Vehicle => "vehicle",
            ActorKind::Adult => "adult",
            ActorKind::Child => "child",
            ActorKind::Cup => "cup",
            ActorKind::Cyclist => "cyclist",
            ActorKind::Mesh => "mesh",
        }
    }
}

/// How an actor moves (`actors[].behaviour`); speeds are drawn once per actor.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// Stays where it was placed (also when the file gives no behaviour).
    Static,
    /// Along its heading at a speed.
    Drive {
        /// m/s.
        speed: Range,
    },
    /// Along the sidewalk at a speed.
    Walk {
        /// m/s.
        speed: Range,
    },
    /// Across the road, starting at a time or when the ego comes within a
    /// distance, whichever comes first (at t = 0 when neither is given).
    Cross {
        /// m/s.
        speed: Range,
        /// Sim seconds.
        trigger_time: Option<Range>,
        /// Metres between the ego and the actor's start.
        trigger_distance: Option<Range>,
        /// `run_out` rather than `cross`: the same motion, faster by default
        /// (2.5–3.5 m/s rather than 1.0–1.5) and named apart in ScenarioInfo.
        run: bool,
    },
}

/// One entry of `actors`: one or more actors of a kind.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorSpec {
    /// What they are.
    pub kind: ActorKind,
    /// How many (placed at random where no start is given).
    pub count: u32,
    /// Map frame (for a cup: x, y on the table); jittered by `randomize.poses`.
    /// None: drawn from the seed (a lane, the kerb, a sidewalk, the table).
    pub start: Option<Pose2>,
    /// Length (x), width (y), height (z), metres; None: the kind's default.
    pub size: Option<[f64; 3]>,
    /// Linear RGB, 0 to 1; None: from the kind's palette.
    pub color: Option<[f64; 3]>,
    /// How they move.
    pub behaviour: Behaviour,
    /// The mesh and its class ([`ActorKind::Mesh`] only).
    pub mesh: Option<MeshActor>,
    /// 1-based line of the entry in the file, for messages.
    pub line: usize,
}

/// What a `mesh` entry places.
#[derive(Debug, Clone, PartialEq)]
pub struct MeshActor {
    /// The mesh drawn, read when the scenario file was.
    pub asset: Arc<MeshAsset>,
    /// Its class name: one of [`CLASS_NAMES`] or a new one, appended to the
    /// scenario's class table.
    pub class: String,
}

/// The class table of actors: [`CLASS_NAMES`], then their meshes' classes
/// that are not among them, in order.
fn class_table(actors: &[ActorSpec]) -> Vec<&str> {
    let mut names: Vec<&str> = CLASS_NAMES.to_vec();
    for m in actors.iter().filter_map(|a| a.mesh.as_ref()) {
        if !names.contains(&m.class.as_str()) {
            names.push(&m.class);
        }
    }
    names
}

/// A camera as the file describes it (pinhole, square pixels, principal
/// point in the middle).
#[derive(Debug, Clone, PartialEq)]
pub struct CameraSpec {
    /// Names its topics (`sim/<name>/...`) and frames (`<name>_link`, `<name>_optical_frame`).
    pub name: String,
    /// Pixels, 1 to 4096, before `SimOptions::image_scale`.
    pub width: u32,
    /// Pixels, 1 to 4096, before `SimOptions::image_scale`.
    pub height: u32,
    /// Horizontal field of view, degrees.
    pub fov_deg: f64,
    /// In the ego frame (base_link): x forward, y left, z up.
    pub position: [f64; 3],
    /// Degrees about z, left positive.
    pub yaw_deg: f64,
    /// Degrees about the camera's y, positive looks down.
    pub pitch_deg: f64,
}

/// What is published and how often (`sensors`); rates are rounded to whole
/// physics steps of 5 ms.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensors {
    /// Camera frames per second (sim time).
    pub rate: f64,
    /// One to eight, names unique; a rig's cameras first.
    pub cameras: Vec<CameraSpec>,
    /// /imu messages per second of sim time.
    pub imu_rate: f64,
    /// /odom, /tf and /joint_states messages per second of sim time.
    pub odom_rate: f64,
}

/// Domain randomization: how far the seed may move things.
#[derive(Debug, Clone, PartialEq)]
pub struct Randomize {
    /// ± metres on actor start positions.
    pub poses: f64,
    /// ± fraction on actor sizes.
    pub sizes: f64,
    /// Vary colours within each class's palette.
    pub colors: bool,
    /// ± fraction on light intensity.
    pub light: f64,
    /// ± fraction on friction coefficients.
    pub friction: f64,
    /// ± seconds on actor trigger times, ± metres on trigger distances.
    pub timing: f64,
}

/// A scenario file, checked: everything a run needs but the seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Tags the data (ScenarioInfo.scenario); a shipped file is named after it.
    pub name: String,
    /// Free text (ScenarioInfo.description).
    pub description: String,
    /// A rare, safety-critical situation (ScenarioInfo.edge_case).
    pub edge_case: bool,
    /// Free labels the curator can balance on (ScenarioInfo.tags).
    pub tags: Vec<String>,
    /// Road or table.
    pub world: WorldSpec,
    /// Light, weather, friction.
    pub environment: Environment,
    /// The robot: a vehicle or an arm.
    pub ego: EgoSpec,
    /// Everything else that is placed or moves, in file order.
    pub actors: Vec<ActorSpec>,
    /// Cameras and rates.
    pub sensors: Sensors,
    /// How far the seed moves things.
    pub randomize: Randomize,
    /// The route closed-loop evaluation drives (driving scenarios).
    pub route: Option<Route>,
    /// What closed-loop evaluation asks of the arm (arm scenarios).
    pub task: Option<ArmTask>,
    /// Where it was read from, for messages.
    pub file: PathBuf,
}

/// What closed-loop evaluation (`s2r eval closed-loop`) asks of a driver:
/// start here, cover `length` metres along the lane within `timeout`.
/// Datasets start the ego at `ego.start`; a route may start further back so
/// that a careful driver has room to slow down before the scenario's event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Route {
    /// Where base_link starts, map frame.
    pub start: Pose2,
    /// Metres along the start heading.
    pub length: f64,
    /// Sim seconds.
    pub timeout: f64,
    /// m/s at the start.
    pub speed: f64,
}

/// What closed-loop evaluation (`s2r eval closed-loop`) asks of an arm:
/// pick up a cup and put it down, upright, at a spot on the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmTask {
    /// Which cup, counting the scenario's cups from 0 in file order.
    pub pick: u32,
    /// Where it goes: x, y on the table top (map frame), metres.
    pub place: [f64; 2],
    /// How close (m, on the table top) counts as placed there.
    pub tolerance: f64,
    /// Sim seconds.
    pub timeout: f64,
}

impl Scenario {
    /// The scenario as closed-loop evaluation runs it: the vehicle at its
    /// route's start and speed (an arm scenario as it is).
    pub fn on_route(&self) -> Scenario {
        let mut s = self.clone();
        if let (EgoSpec::Vehicle(v), Some(r)) = (&mut s.ego, &self.route) {
            v.start = r.start;
            v.speed = r.speed;
        }
        s
    }

    /// The class table of a run (`ScenarioInfo.class_names`; a segmentation
    /// pixel is an index into it): [`CLASS_NAMES`], then the classes of the
    /// scenario's meshes that are not among them, in file order.
    pub fn class_names(&self) -> Vec<String> {
        class_table(&self.actors).into_iter().map(String::from).collect()
    }

    /// Every distinct mesh the scenario places, in file order (a mesh's index
    /// here is its asset id in the world).
    pub fn meshes(&self) -> Vec<Arc<MeshAsset>> {
        let mut meshes: Vec<Arc<MeshAsset>> = Vec::new();
        for m in self.actors.iter().filter_map(|a| a.mesh.as_ref()) {
            if !meshes.iter().any(|k| Arc::ptr_eq(k, &m.asset)) {
                meshes.push(m.asset.clone());
            }
        }
        meshes
    }
}

/// The eight cameras of a surround rig, at a resolution, around a vehicle of
/// the given size: front, front-left, front-right, left, right, rear-left,
/// rear-right, rear. They sit 0.1 m above the roof (`size` in metres,
/// base_link on the ground), pitched 10° down; `fov_deg` is horizontal.
pub fn surround_rig(width: u32, height: u32, fov_deg: f64, size: [f64; 3]) -> Vec<CameraSpec> {
    let (l, w, h) = (size[0] / 2.0, size[1] / 2.0, size[2]);
    let z = h + 0.1;
    [
        ("front", [l * 0.6, 0.0, z], 0.0),
        ("front_left", [l * 0.5, w, z], 45.0),
        ("front_right", [l * 0.5, -w, z], -45.0),
        ("left", [0.0, w, z], 90.0),
        ("right", [0.0, -w, z], -90.0),
        ("rear_left", [-l * 0.5, w, z], 135.0),
        ("rear_right", [-l * 0.5, -w, z], -135.0),
        ("rear", [-l * 0.6, 0.0, z], 180.0),
    ]
    .into_iter()
    .map(|(name, position, yaw)| CameraSpec { name: name.into(), width, height, fov_deg, position, yaw_deg: yaw, pitch_deg: 10.0 })
    .collect()
}

fn range(f: &mut Fields<'_>, key: &str) -> Result<Option<Range>, YamlError> {
    let Some(y) = f.get(key) else { return Ok(None) };
    let num = |s: &str| s.parse::<f64>().ok().filter(|x| x.is_finite());
    match y {
        Yaml::Scalar(s, ..) => num(s).map(|x| Some(Range::fixed(x))).ok_or_else(|| f.err(key, format!("'{s}' is not a number"))),
        Yaml::Seq(items, _) if items.len() == 2 => {
            let lo = items[0].scalar().and_then(num);
            let hi = items[1].scalar().and_then(num);
            match (lo, hi) {
                (Some(lo), Some(hi)) if lo <= hi => Ok(Some(Range(lo, hi))),
                _ => Err(f.err(key, "a range is [low, high] with low ≤ high")),
            }
        }
        _ => Err(f.err(key, "expected a number or a [low, high] range")),
    }
}

fn positive(f: &Fields<'_>, key: &str, x: f64) -> Result<f64, YamlError> {
    if x > 0.0 {
        Ok(x)
    } else {
        Err(f.err(key, format!("must be positive, got {x}")))
    }
}

fn non_negative(f: &Fields<'_>, key: &str, x: f64) -> Result<f64, YamlError> {
    if x >= 0.0 {
        Ok(x)
    } else {
        Err(f.err(key, format!("must not be negative, got {x}")))
    }
}

fn pose2(f: &mut Fields<'_>, key: &str) -> Result<Option<Pose2>, YamlError> {
    let Some(mut p) = f.map(key)? else { return Ok(None) };
    let pose = Pose2 { x: p.f64("x")?.unwrap_or(0.0), y: p.f64("y")?.unwrap_or(0.0), yaw_deg: p.f64("yaw")?.unwrap_or(0.0) };
    p.finish(&["x", "y", "yaw"])?;
    Ok(Some(pose))
}

fn vec3(f: &mut Fields<'_>, key: &str) -> Result<Option<[f64; 3]>, YamlError> {
    Ok(f.f64_list(key, Some(3))?.map(|v| [v[0], v[1], v[2]]))
}

fn vec6(f: &mut Fields<'_>, key: &str) -> Result<Option<[f64; 6]>, YamlError> {
    Ok(f.f64_list(key, Some(6))?.map(|v| [v[0], v[1], v[2], v[3], v[4], v[5]]))
}

impl Scenario {
    /// Reads a scenario file. A file that cannot be read is an error with line 0.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: path.into(),
            line: 0,
            key: String::new(),
            message: format!("cannot read the scenario file: {e}"),
        })?;
        Self::parse(path, &text)
    }

    /// Parses scenario text; `path` only names the file in errors. Fails on
    /// invalid YAML, a missing required key, an unknown key or a value out of
    /// range.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let wrap = |e: YamlError| ScenarioError { file: path.into(), line: e.line, key: e.key, message: e.message };
        let doc = yaml::parse(text).map_err(|(line, m)| ScenarioError {
            file: path.into(),
            line,
            key: String::new(),
            message: format!("not valid YAML: {m}"),
        })?;
        Self::from_yaml(path, &doc).map_err(wrap)
    }

    /// The sections in the order of the file format, each read, checked and
    /// finished (unknown keys refused) before the next: the first problem is
    /// the one reported.
    fn from_yaml(path: &Path, doc: &Yaml) -> Result<Scenario, YamlError> {
        let mut top = doc.fields("")?;
        let name = top.req_str("scenario")?;
        let description = top.str("description")?.unwrap_or_default();
        let edge_case = top.bool("edge_case")?.unwrap_or(false);
        let tags = top.str_list("tags")?.unwrap_or_default();
        let world = world_spec(required(&mut top, "world")?)?;
        let environment = environment(required(&mut top, "environment")?)?;
        let ego = ego(required(&mut top, "ego")?, &world)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let actors = actors(top.list("actors")?.unwrap_or(&[]), dir)?;
        let sensors = sensors(required(&mut top, "sensors")?, &ego)?;
        let randomize = match top.map("randomize")? {
            Some(r) => randomize(r)?,
            None => Randomize { poses: 0.0, sizes: 0.0, colors: false, light: 0.0, friction: 0.0, timing: 0.0 },
        };
        let route = match (top.map("route")?, &ego) {
            (Some(r), EgoSpec::Vehicle(v)) => Some(route(r, v)?),
            (Some(_), EgoSpec::Arm(_)) => return Err(top.err("route", "a route is driven by a vehicle; an arm scenario has none")),
            (None, EgoSpec::Vehicle(v)) => Some(Route { start: v.start, length: 150.0, timeout: 60.0, speed: v.speed }),
            (None, EgoSpec::Arm(_)) => None,
        };
        let task = match (top.map("task")?, &ego) {
            (Some(t), EgoSpec::Arm(_)) => Some(task(t, &actors)?),
            (Some(_), EgoSpec::Vehicle(_)) => return Err(top.err("task", "a task is for an arm; a vehicle scenario has a route")),
            (None, EgoSpec::Arm(_)) => {
                Some(ArmTask { pick: 0, place: [0.0, 0.0], tolerance: DEFAULT_PLACE_TOLERANCE, timeout: DEFAULT_TASK_TIMEOUT })
            }
            (None, EgoSpec::Vehicle(_)) => None,
        };
        top.finish(&[
            "scenario",
            "description",
            "edge_case",
            "tags",
            "world",
            "environment",
            "ego",
            "actors",
            "sensors",
            "randomize",
            "route",
            "task",
        ])?;
        Ok(Scenario {
            name,
            description,
            edge_case,
            tags,
            world,
            environment,
            ego,
            actors,
            sensors,
            randomize,
            route,
            task,
            file: path.into(),
        })
    }
}

/// A section the file must have.
fn required<'y>(f: &mut Fields<'y>, key: &str) -> Result<Fields<'y>, YamlError> {
    f.map(key)?.ok_or_else(|| f.err(key, format!("'{key}' is required")))
}

/// `world`: a road or a table, with the format's defaults.
fn world_spec(mut w: Fields<'_>) -> Result<WorldSpec, YamlError> {
    let kind = w.req_str("kind")?;
    match kind.as_str() {
        "road" => {
            let road = Road {
                lanes: w.u32("lanes")?.unwrap_or(2).max(1),
                lane_width: pos(&mut w, "lane_width", 3.5)?,
                length: pos(&mut w, "length", 200.0)?,
                sidewalk_width: nonneg(&mut w, "sidewalk_width", 2.5)?,
                buildings: w.u32("buildings")?.unwrap_or(10),
                building_height: range(&mut w, "building_height")?.unwrap_or(Range(8.0, 25.0)),
            };
            w.finish(&["kind", "lanes", "lane_width", "length", "sidewalk_width", "buildings", "building_height"])?;
            Ok(WorldSpec::Road(road))
        }
        "table" => {
            let size = vec3(&mut w, "table_size")?.unwrap_or([1.2, 0.8, 0.75]);
            for s in size {
                positive(&w, "table_size", s)?;
            }
            w.finish(&["kind", "table_size"])?;
            Ok(WorldSpec::Table(Table { size }))
        }
        other => Err(w.err("kind", format!("unknown world kind '{other}' (road or table)"))),
    }
}

/// `environment`: time of day, weather and its intensity, friction.
fn environment(mut e: Fields<'_>) -> Result<Environment, YamlError> {
    let time = e.str("time_of_day")?.unwrap_or_else(|| "day".into());
    let time_of_day = match time.as_str() {
        "dawn" => TimeOfDay::Dawn,
        "day" => TimeOfDay::Day,
        "dusk" => TimeOfDay::Dusk,
        "night" => TimeOfDay::Night,
        other => return Err(e.err("time_of_day", format!("'{other}' is not dawn, day, dusk or night"))),
    };
    let weather = e.str("weather")?.unwrap_or_else(|| "clear".into());
    if !["clear", "rain", "snow", "fog"].contains(&weather.as_str()) {
        return Err(e.err("weather", format!("'{weather}' is not clear, rain, snow or fog")));
    }
    let weather_intensity = e.f64("weather_intensity")?.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&weather_intensity) {
        return Err(e.err("weather_intensity", "must be from 0 to 1"));
    }
    let friction = match e.map("friction")? {
        Some(fr) => friction(fr)?,
        None => Friction { road: 0.8, sidewalk: 0.7, table: 0.5 },
    };
    e.finish(&["time_of_day", "weather", "weather_intensity", "friction"])?;
    Ok(Environment { time_of_day, weather, weather_intensity, friction })
}

/// `environment.friction`: μ per surface, none negative.
fn friction(mut fr: Fields<'_>) -> Result<Friction, YamlError> {
    let mut get = |k: &str, d: f64| -> Result<f64, YamlError> {
        let v = fr.f64(k)?.unwrap_or(d);
        if v < 0.0 {
            return Err(fr.err(k, format!("friction must not be negative, got {v}")));
        }
        Ok(v)
    };
    let f = Friction { road: get("road", 0.8)?, sidewalk: get("sidewalk", 0.7)?, table: get("table", 0.5)? };
    fr.finish(&["road", "sidewalk", "table"])?;
    Ok(f)
}

/// `ego`: a vehicle on a road world, an arm on a table world.
fn ego(mut eg: Fields<'_>, world: &WorldSpec) -> Result<EgoSpec, YamlError> {
    let ego_kind = eg.req_str("kind")?;
    match (world, ego_kind.as_str()) {
        (WorldSpec::Road(_), "arm") | (WorldSpec::Table(_), "vehicle") => {
            return Err(eg.err("kind", "a vehicle drives on a road world, an arm stands on a table world"))
        }
        _ => {}
    }
    match ego_kind.as_str() {
        "vehicle" => Ok(EgoSpec::Vehicle(vehicle(eg)?)),
        "arm" => Ok(EgoSpec::Arm(arm(eg)?)),
        other => Err(eg.err("kind", format!("unknown ego kind '{other}' (vehicle or arm)"))),
    }
}

/// `route`: start (default the ego's), length (150 m), timeout (60 s), speed (the ego's).
fn route(mut r: Fields<'_>, v: &VehicleEgo) -> Result<Route, YamlError> {
    let route = Route {
        start: pose2(&mut r, "start")?.unwrap_or(v.start),
        length: pos(&mut r, "length", 150.0)?,
        timeout: pos(&mut r, "timeout", 60.0)?,
        speed: nonneg(&mut r, "speed", v.speed)?,
    };
    r.finish(&["start", "length", "timeout", "speed"])?;
    Ok(route)
}

const DEFAULT_PLACE_TOLERANCE: f64 = 0.04;
const DEFAULT_TASK_TIMEOUT: f64 = 20.0;

/// `task`: pick (the first cup), place ([0, 0]), tolerance (0.04 m), timeout (20 s).
fn task(mut t: Fields<'_>, actors: &[ActorSpec]) -> Result<ArmTask, YamlError> {
    let cups: u32 = actors.iter().filter(|a| a.kind == ActorKind::Cup).map(|a| a.count).sum();
    let pick = t.u32("pick")?.unwrap_or(0);
    if pick >= cups {
        return Err(t.err("pick", format!("cup {pick} does not exist: the scenario has {cups} cup(s), counted from 0")));
    }
    let place = t.f64_list("place", Some(2))?.map(|v| [v[0], v[1]]).unwrap_or([0.0, 0.0]);
    let task = ArmTask {
        pick,
        place,
        tolerance: pos(&mut t, "tolerance", DEFAULT_PLACE_TOLERANCE)?,
        timeout: pos(&mut t, "timeout", DEFAULT_TASK_TIMEOUT)?,
    };
    t.finish(&["pick", "place", "tolerance", "timeout"])?;
    Ok(task)
}

/// A vehicle ego, with the format's defaults (a 1500 kg car).
fn vehicle(mut eg: Fields<'_>) -> Result<VehicleEgo, YamlError> {
    let v = VehicleEgo {
        start: pose2(&mut eg, "start")?.unwrap_or_default(),
        speed: nonneg(&mut eg, "speed", 0.0)?,
        size: vec3(&mut eg, "size")?.unwrap_or([4.5, 1.8, 1.5]),
        mass: pos(&mut eg, "mass", 1500.0)?,
        max_accel: pos(&mut eg, "max_accel", 3.0)?,
        max_yaw_rate: pos(&mut eg, "max_yaw_rate", 0.8)?,
        max_speed: pos(&mut eg, "max_speed", 30.0)?,
    };
    eg.finish(&["kind", "start", "speed", "size", "mass", "max_accel", "max_yaw_rate", "max_speed"])?;
    Ok(v)
}

/// An arm ego: base, six links, joint limits, initial angles, trajectory.
fn arm(mut eg: Fields<'_>) -> Result<ArmEgo, YamlError> {
    let base = vec3(&mut eg, "base")?.unwrap_or([0.0, 0.0, 0.0]);
    let links = vec6(&mut eg, "links")?.unwrap_or([0.15, 0.3, 0.3, 0.1, 0.1, 0.08]);
    let limits = joint_limits(&mut eg)?;
    let initial = vec6(&mut eg, "initial")?.unwrap_or([0.0; 6]);
    let trajectory = trajectory(&mut eg)?;
    eg.finish(&["kind", "base", "links", "limits", "initial", "trajectory"])?;
    Ok(ArmEgo { base, links, limits, initial, trajectory })
}

/// `ego.limits`: six [low, high] pairs in radians, low < high; a typical
/// 6-DoF arm's without the key.
fn joint_limits(eg: &mut Fields<'_>) -> Result<[[f64; 2]; 6], YamlError> {
    let mut limits = [[-3.1, 3.1], [-1.9, 1.9], [-2.6, 2.6], [-3.1, 3.1], [-2.0, 2.0], [-3.1, 3.1]];
    if let Some(items) = eg.list("limits")? {
        if items.len() != 6 {
            return Err(eg.err("limits", format!("expected 6 [low, high] pairs, found {}", items.len())));
        }
        for (i, it) in items.iter().enumerate() {
            let pair: Option<Vec<f64>> = match it {
                Yaml::Seq(v, _) => v.iter().map(|x| x.scalar().and_then(|s| s.parse().ok())).collect(),
                _ => None,
            };
            match pair.as_deref() {
                Some([lo, hi]) if lo < hi => limits[i] = [*lo, *hi],
                _ => return Err(eg.err("limits", format!("joint {} needs [low, high] with low < high", i + 1))),
            }
        }
    }
    Ok(limits)
}

/// `ego.trajectory`: points of a time t ≥ 0 (seconds) and six angles q.
fn trajectory(eg: &mut Fields<'_>) -> Result<Vec<(f64, [f64; 6])>, YamlError> {
    let mut trajectory = Vec::new();
    if let Some(items) = eg.list("trajectory")? {
        for it in items {
            let mut tf = it.fields("ego.trajectory")?;
            let t = tf.req_f64("t")?;
            let t = non_negative(&tf, "t", t)?;
            let q = vec6(&mut tf, "q")?.ok_or_else(|| tf.err("q", "'q' (six joint angles) is required"))?;
            tf.finish(&["t", "q"])?;
            trajectory.push((t, q));
        }
    }
    Ok(trajectory)
}

/// `actors`: every entry in file order; mesh paths are relative to `dir`,
/// and one file placed by several entries is read once.
fn actors(items: &[Yaml], dir: &Path) -> Result<Vec<ActorSpec>, YamlError> {
    let mut actors: Vec<ActorSpec> = Vec::new();
    for (i, a) in items.iter().enumerate() {
        actors.push(actor(a.fields(&format!("actors[{i}]"))?, dir, &actors)?);
    }
    Ok(actors)
}

/// One entry of `actors`: type, count, start, size (positive), colour,
/// behaviour, and for a mesh its file and class.
fn actor(mut af: Fields<'_>, dir: &Path, before: &[ActorSpec]) -> Result<ActorSpec, YamlError> {
    let kind = match af.req_str("type")?.as_str() {
        "vehicle" => ActorKind::Vehicle,
        "adult" => ActorKind::Adult,
        "child" => ActorKind::Child,
        "cup" => ActorKind::Cup,
        "cyclist" => ActorKind::Cyclist,
        "mesh" => ActorKind::Mesh,
        other => return Err(af.err("type", format!("unknown actor type '{other}' (vehicle, adult, child, cyclist, cup, mesh)"))),
    };
    let mesh = if kind == ActorKind::Mesh {
        let file = dir.join(af.req_str("mesh")?);
        let asset = match before.iter().filter_map(|a| a.mesh.as_ref()).find(|m| m.asset.file == file) {
            Some(m) => m.asset.clone(),
            None => Arc::new(MeshAsset::load(&file).map_err(|e| af.err("mesh", e.to_string()))?),
        };
        let class = af.req_str("class")?;
        let valid = !class.is_empty()
            && class.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && class.starts_with(|c: char| c.is_ascii_lowercase());
        if !valid {
            return Err(af.err("class", format!("'{class}' is not a class name (lower-case letters, digits and _, a letter first)")));
        }
        // Segmentation images are mono8: 256 classes at most.
        let known = class_table(before);
        if !known.contains(&class.as_str()) && known.len() >= 256 {
            return Err(af.err("class", "a scenario has at most 256 classes (segmentation images are mono8)"));
        }
        Some(MeshActor { asset, class })
    } else {
        None
    };
    let count = af.u32("count")?.unwrap_or(1);
    let start = pose2(&mut af, "start")?;
    let size = vec3(&mut af, "size")?;
    if let Some(s) = size {
        for x in s {
            positive(&af, "size", x)?;
        }
    }
    let color = vec3(&mut af, "color")?;
    let behaviour = match af.map("behaviour")? {
        None => Behaviour::Static,
        Some(b) => behaviour(b)?,
    };
    let line = af.line();
    if kind == ActorKind::Mesh {
        af.finish(&["type", "count", "start", "size", "color", "behaviour", "mesh", "class"])?;
    } else {
        af.finish(&["type", "count", "start", "size", "color", "behaviour"])?;
    }
    Ok(ActorSpec { kind, count, start, size, color, behaviour, mesh, line })
}

/// `actors[].behaviour`: its kind, with each kind's default speed (m/s,
/// not negative), and for a crossing its triggers.
fn behaviour(mut b: Fields<'_>) -> Result<Behaviour, YamlError> {
    let kind = b.req_str("kind")?;
    let speed = range(&mut b, "speed")?;
    let bh = match kind.as_str() {
        "static" => Behaviour::Static,
        "drive" => Behaviour::Drive { speed: speed.unwrap_or(Range::fixed(8.0)) },
        "walk" => Behaviour::Walk { speed: speed.unwrap_or(Range(1.0, 1.6)) },
        "cross" | "run_out" => Behaviour::Cross {
            speed: speed.unwrap_or(if kind == "run_out" { Range(2.5, 3.5) } else { Range(1.0, 1.5) }),
            trigger_time: range(&mut b, "trigger_time")?,
            trigger_distance: range(&mut b, "trigger_distance")?,
            run: kind == "run_out",
        },
        other => return Err(b.err("kind", format!("unknown behaviour '{other}' (static, drive, walk, cross, run_out)"))),
    };
    if let Behaviour::Drive { speed } | Behaviour::Walk { speed } | Behaviour::Cross { speed, .. } = &bh {
        non_negative(&b, "speed", speed.0)?;
    }
    b.finish(&["kind", "speed", "trigger_time", "trigger_distance"])?;
    Ok(bh)
}

/// `sensors`: rates, and one to eight cameras (a rig's, then the listed
/// ones), their names unique.
fn sensors(mut s: Fields<'_>, ego: &EgoSpec) -> Result<Sensors, YamlError> {
    let rate = pos(&mut s, "rate", 10.0)?;
    let mut cameras = match s.map("rig")? {
        Some(rig) => rig_cameras(rig, ego)?,
        None => Vec::new(),
    };
    for (i, c) in s.list("cameras")?.unwrap_or(&[]).iter().enumerate() {
        let camera = camera(c.fields(&format!("sensors.cameras[{i}]"))?)?;
        if cameras.iter().any(|c: &CameraSpec| c.name == camera.name) {
            return Err(s.err("cameras", format!("two cameras are called '{}'", camera.name)));
        }
        cameras.push(camera);
    }
    if cameras.is_empty() {
        return Err(s.err("cameras", "at least one camera (or a rig) is needed"));
    }
    if cameras.len() > 8 {
        return Err(s.err("cameras", format!("{} cameras; the rig holds at most 8", cameras.len())));
    }
    let imu_rate = pos(&mut s, "imu_rate", 100.0)?;
    let odom_rate = pos(&mut s, "odom_rate", 50.0)?;
    s.finish(&["rate", "rig", "cameras", "imu_rate", "odom_rate"])?;
    Ok(Sensors { rate, cameras, imu_rate, odom_rate })
}

/// `sensors.rig`: the eight cameras of a surround rig around the ego (an
/// arm counts as a 0.4 m cube).
fn rig_cameras(mut rig: Fields<'_>, ego: &EgoSpec) -> Result<Vec<CameraSpec>, YamlError> {
    let kind = rig.req_str("kind")?;
    if kind != "surround8" {
        return Err(rig.err("kind", format!("unknown rig '{kind}' (surround8)")));
    }
    let width = rig.u32("width")?.ok_or_else(|| rig.err("width", "a camera needs a resolution: 'width' is missing"))?;
    let height = rig.u32("height")?.ok_or_else(|| rig.err("height", "a camera needs a resolution: 'height' is missing"))?;
    let fov = rig.f64("fov")?.unwrap_or(100.0);
    rig.finish(&["kind", "width", "height", "fov"])?;
    let size = match ego {
        EgoSpec::Vehicle(v) => v.size,
        EgoSpec::Arm(_) => [0.4, 0.4, 0.4],
    };
    Ok(surround_rig(width, height, fov, size))
}

/// One camera of `sensors.cameras`: 1×1 to 4096×4096 pixels, a field of
/// view from 1° to 170°.
fn camera(mut cf: Fields<'_>) -> Result<CameraSpec, YamlError> {
    let name = cf.req_str("name")?;
    let width = cf.u32("width")?.ok_or_else(|| cf.err("width", "a camera needs a resolution: 'width' is missing"))?;
    let height = cf.u32("height")?.ok_or_else(|| cf.err("height", "a camera needs a resolution: 'height' is missing"))?;
    if width == 0 || height == 0 || width > 4096 || height > 4096 {
        return Err(cf.err("width", format!("{width}x{height} is not a resolution from 1x1 to 4096x4096")));
    }
    let fov_deg = cf.f64("fov")?.unwrap_or(90.0);
    if !(1.0..=170.0).contains(&fov_deg) {
        return Err(cf.err("fov", format!("{fov_deg}° is not from 1 to 170")));
    }
    let position = vec3(&mut cf, "position")?.unwrap_or([0.0, 0.0, 1.5]);
    let yaw_deg = cf.f64("yaw")?.unwrap_or(0.0);
    let pitch_deg = cf.f64("pitch")?.unwrap_or(0.0);
    cf.finish(&["name", "width", "height", "fov", "position", "yaw", "pitch"])?;
    Ok(CameraSpec { name, width, height, fov_deg, position, yaw_deg, pitch_deg })
}

/// `randomize`: every spread ≥ 0.
fn randomize(mut r: Fields<'_>) -> Result<Randomize, YamlError> {
    let rz = Randomize {
        poses: nonneg(&mut r, "poses", 0.0)?,
        sizes: nonneg(&mut r, "sizes", 0.0)?,
        colors: r.bool("colors")?.unwrap_or(false),
        light: nonneg(&mut r, "light", 0.0)?,
        friction: nonneg(&mut r, "friction", 0.0)?,
        timing: nonneg(&mut r, "timing", 0.0)?,
    };
    r.finish(&["poses", "sizes", "colors", "light", "friction", "timing"])?;
    Ok(rz)
}

/// An optional positive number with a default.
fn pos(f: &mut Fields<'_>, key: &str, default: f64) -> Result<f64, YamlError> {
    let x = f.f64(key)?.unwrap_or(default);
    positive(f, key, x)
}

/// An optional number ≥ 0 with a default.
fn nonneg(f: &mut Fields<'_>, key: &str, default: f64) -> Result<f64, YamlError> {
    let x = f.f64(key)?.unwrap_or(default);
    non_negative(f, key, x)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "scenario: t
world: {kind: road}
environment: {time_of_day: night, friction: {road: 0.1}}
ego: {kind: vehicle, speed: 10}
actors:
  - type: child
    behaviour: {kind: run_out, trigger_distance: [15, 20]}
sensors:
  cameras:
    - {name: front, width: 64, height: 48}
";

    fn err(text: &str) -> ScenarioError {
        Scenario::parse(Path::new("bad.yaml"), text).unwrap_err()
    }

    #[test]
    fn shipped_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/scenarios");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                let s = Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(Some(s.name.as_str()), p.file_stem().and_then(|s| s.to_str()), "the scenario is named after its file");
                n += 1;
            }
        }
        assert!(n >= 3);
        let s = Scenario::parse(Path::new("t.yaml"), GOOD).unwrap();
        assert_eq!(s.environment.friction.road, 0.1);
        assert!(matches!(s.actors[0].behaviour, Behaviour::Cross { run: true, trigger_distance: Some(Range(15.0, 20.0)), .. }));
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = err(&GOOD.replace("type: child", "type: dragon"));
        assert_eq!((e.line, e.key.as_str()), (6, "actors[0].type"), "{e}");
        assert!(e.to_string().starts_with("bad.yaml:6: 'actors[0].type': unknown actor type 'dragon'"), "{e}");

        let e = err(&GOOD.replace("road: 0.1", "road: -0.3"));
        assert_eq!((e.line, e.key.as_str()), (3, "environment.friction.road"), "{e}");
        assert!(e.message.contains("must not be negative"), "{e}");

        let e = err(&GOOD.replace("{name: front, width: 64, height: 48}", "{name: front, width: 64}"));
        assert_eq!((e.line, e.key.as_str()), (10, "sensors.cameras[0].height"), "{e}");
        assert!(e.message.contains("needs a resolution"), "{e}");

        let e = err(&GOOD.replace("time_of_day: night", "time_of_day: noon"));
        assert_eq!(e.key, "environment.time_of_day");
        let e = err(&GOOD.replace("kind: run_out", "kind: teleport"));
        assert!(e.message.contains("unknown behaviour 'teleport'"), "{e}");
        let e = err(&GOOD.replace("speed: 10}", "speed: 10, wings: 2}"));
        assert_eq!(e.key, "ego.wings", "{e}");
        let e = err(&GOOD.replace("kind: vehicle", "kind: arm"));
        assert!(e.message.contains("arm stands on a table"), "{e}");
        let e = err(&format!("{GOOD}tags: [night, {{weather: snow}}]\n"));
        assert_eq!((e.line, e.key.as_str()), (11, "tags[1]"), "{e}");
        assert!(e.message.contains("expected a value, found a mapping"), "{e}");
        let e = err("scenario: [unclosed");
        assert!(e.message.contains("not valid YAML"), "{e}");
        let e = Scenario::load(Path::new("/nonexistent/x.yaml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.yaml") && e.message.contains("cannot read"), "{e}");
    }
}
