//! The world of one run: every object of a scenario placed, sized, coloured
//! and given a behaviour, with the seed's randomization applied. Physics and
//! rendering both start from this; it holds no engine state.

use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};

use crate::figures::{self, Body, Joint, PersonLook};
use crate::rng::Rng;
use crate::scenario::{
    ActorKind, ActorSpec, ArmEgo, Behaviour, EgoSpec, Friction, Randomize, Range, Road, Scenario, Table, TimeOfDay, VehicleEgo, WorldSpec,
};

/// Semantic classes: the value of a pixel in the segmentation image is the
/// index in this table (published in `ScenarioInfo.class_names`).
pub const CLASS_NAMES: &[&str] = &[
    "unlabeled",
    "road",
    "sidewalk",
    "lane_marking",
    "building",
    "terrain",
    "vehicle",
    "pedestrian",
    "child",
    "ego_vehicle",
    "floor",
    "table",
    "robot_arm",
    "cup",
    "cyclist",
    "pole",
    "traffic_sign",
    "bin",
    "vegetation",
];

/// The class ids by name: each is its index in [`CLASS_NAMES`], so the value
/// of a pixel in the segmentation image (mono8) and of `Object::class`.
pub mod class {
    /// Nothing drawn there: the sky (depth +inf).
    pub const UNLABELED: u8 = 0;
    /// The carriageway; its friction is `Friction::road`.
    pub const ROAD: u8 = 1;
    /// Raised 0.15 m above the road; friction `Friction::sidewalk`.
    pub const SIDEWALK: u8 = 2;
    /// Edge and lane lines: drawn, but not solid (no collider).
    pub const LANE_MARKING: u8 = 3;
    /// Facades along both sides of the road.
    pub const BUILDING: u8 = 4;
    /// Ground beyond the sidewalks.
    pub const TERRAIN: u8 = 5;
    /// Other vehicles (the ego is `EGO_VEHICLE`).
    pub const VEHICLE: u8 = 6;
    /// An adult; children have a class of their own.
    pub const PEDESTRIAN: u8 = 7;
    /// A child: the run-out edge case, labelled apart from adults.
    pub const CHILD: u8 = 8;
    /// The simulated car itself; left out of the detections.
    pub const EGO_VEHICLE: u8 = 9;
    /// Under the table; a cup that lands on it reports a collision.
    pub const FLOOR: u8 = 10;
    /// The table the arm and the cups stand on.
    pub const TABLE: u8 = 11;
    /// Every link of the arm and its gripper's fingers (one instance id); left out of the detections.
    pub const ROBOT_ARM: u8 = 12;
    /// A free rigid body the arm can push off the table.
    pub const CUP: u8 = 13;
    /// A person riding a bicycle (rider and bicycle one instance).
    pub const CYCLIST: u8 = 14;
    /// Lamp posts and sign posts.
    pub const POLE: u8 = 15;
    /// The plate of a traffic sign.
    pub const TRAFFIC_SIGN: u8 = 16;
    /// Litter bins on the sidewalks.
    pub const BIN: u8 = 17;
    /// Trees along the sidewalks.
    pub const VEGETATION: u8 = 18;
}

/// The geometry of a part, centred on the part's origin; metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// Full size along x, y, z.
    Box([f32; 3]),
    /// Axis z (the cup), drawn as a 24-sided prism.
    Cylinder {
        /// Metres.
        diameter: f32,
        /// Metres, along z.
        height: f32,
    },
    /// A user mesh ([`World::meshes`]) stretched to fill a box.
    Mesh {
        /// Index in [`World::meshes`].
        asset: u16,
        /// Full size along x, y, z, metres.
        size: [f32; 3],
    },
}

/// A piece of an object's look: a shape at an offset in the object frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Part {
    /// What is drawn.
    pub shape: Shape,
    /// The part's centre and orientation in the object frame.
    pub offset: Isometry3<f32>,
    /// Linear RGB, 0 to 1, before lighting.
    pub color: [f32; 3],
    /// The hinges it turns on as its person walks, outer first (hip, then
    /// knee); none for rigid parts.
    pub joints: [Option<Joint>; 2],
}

/// How an object moves.
#[derive(Debug, Clone, PartialEq)]
pub enum Motion {
    /// Never moves (road, buildings, table).
    Fixed,
    /// Moved by its script (other vehicles, pedestrians).
    Scripted(Script),
    /// The ego vehicle: a dynamic body driven by /cmd_vel through the tyre model.
    EgoVehicle,
    /// A free rigid body (the cup).
    Dynamic {
        /// Kilograms.
        mass: f32,
    },
    /// Link `i` (0-based) of the arm.
    ArmLink(usize),
    /// A finger of the arm's parallel-jaw gripper on its last link: 0 on
    /// the flange's +x side, 1 on its −x side.
    ArmFinger(usize),
}

/// Half the width of each of the arm's six links (square in section), metres.
pub const ARM_LINK_RADII: [f32; 6] = [0.07, 0.06, 0.05, 0.045, 0.04, 0.035];
/// Half extents of a gripper finger (closing along x, hanging along z), metres.
pub const FINGER_HALF: [f32; 3] = [0.008, 0.012, 0.035];
/// The widest the gripper opens: the gap between its finger pads, metres.
pub const GRIPPER_MAX_OPENING: f32 = 0.12;

/// A scripted actor's behaviour with its random draws made.
#[derive(Debug, Clone, PartialEq)]
pub enum Script {
    /// Stands where it was placed (parked cars, people standing).
    Static,
    /// Straight along its heading.
    Drive {
        /// m/s.
        speed: f32,
    },
    /// Along its heading on foot, stepping aside for (or waiting behind)
    /// people and vehicles in its way.
    Walk {
        /// m/s.
        speed: f32,
    },
    /// Starts when sim time reaches `time` or the ego comes within `distance`,
    /// then moves along `direction` (world frame, unit) at `speed` for `length` metres.
    Cross {
        /// m/s.
        speed: f32,
        /// Sim seconds; None: only the distance triggers it.
        time: Option<f32>,
        /// Metres between the ego and the actor's start; None: only the time triggers it.
        distance: Option<f32>,
        /// Unit vector, map frame: across the road, away from the side it starts on.
        direction: Vector3<f32>,
        /// Metres; it stops on the far side.
        length: f32,
    },
}

impl Script {
    /// The behaviour name in `ActorInfo.behaviour`; `run` tells a run-out from a crossing.
    pub(crate) fn name(&self, run: bool) -> &'static str {
        match self {
            Script::Static => "static",
            Script::Drive { .. } => "drive",
            Script::Walk { .. } => "walk",
            Script::Cross { .. } if run => "run_out",
            Script::Cross { .. } => "cross",
        }
    }
}

/// One thing in the world: what it looks like, where it starts and how it moves.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Unique name, also its TF frame name where it has one ("child_0").
    pub name: String,
    /// Semantic class: a [`class`] constant, index into [`CLASS_NAMES`].
    pub class: u8,
    /// Instance id (the value of its pixels in the instance image); 0 for
    /// background ("stuff": road, buildings).
    pub instance: u16,
    /// What is drawn, in the object frame; physics uses `half` (a box) or a
    /// lone cylinder part instead.
    pub parts: Vec<Part>,
    /// Half extents of the bounding box, object frame (origin at its centre).
    pub half: Vector3<f32>,
    /// Initial pose in the world (map) frame.
    pub pose: Isometry3<f32>,
    /// Who moves it: nothing, its script, /cmd_vel, physics or the arm's joints.
    pub motion: Motion,
    /// Whether it takes part in collisions (lane markings do not).
    pub solid: bool,
    /// Friction coefficient μ of its surface (after randomization).
    pub friction: f32,
    /// Behaviour name for `ActorInfo.behaviour` in ScenarioInfo ("static",
    /// "drive", "walk", "cross", "run_out", "ego", "arm").
    pub behaviour: &'static str,
}

/// Lighting of the scene. Colours are linear RGB, intensities folded in
/// (time of day, overcast weather, the seed's light jitter).
#[derive(Debug, Clone, PartialEq)]
pub struct Light {
    /// Direction towards the sun/moon, world frame, unit.
    pub sun_dir: [f32; 3],
    /// Of the sun (the moon at night).
    pub sun_color: [f32; 3],
    /// Light that reaches every surface, shadowed or not.
    pub ambient: [f32; 3],
    /// Background where nothing is hit (before fog).
    pub sky: [f32; 3],
    /// Ego headlights on: at night, dawn and dusk, and in fog.
    pub headlights: bool,
    /// Street lamps along a road, alternating sides every 25 m (map frame,
    /// metres); there are none by day.
    pub lamps: Vec<[f32; 3]>,
    /// Fog density, 1/m; 0 without fog, rain or snow.
    pub fog: f32,
    /// What distant things fade to.
    pub fog_color: [f32; 3],
}

/// Everything placed for one run: the same scenario and seed give the same world.
#[derive(Debug, Clone, PartialEq)]
pub struct World {
    /// Road, markings and buildings (or floor and table) first, then the ego
    /// (or the arm's six links and its two fingers), then the actors in file order.
    pub objects: Vec<Object>,
    /// Index of the ego vehicle in `objects` (driving worlds).
    pub ego: Option<usize>,
    /// The ego vehicle's parameters (driving worlds).
    pub vehicle: Option<VehicleEgo>,
    /// The arm's parameters (table worlds), its base moved up to the table
    /// top: `base` is in the map frame here, not above the table as in the file.
    pub arm: Option<ArmEgo>,
    /// Friction after randomization.
    pub friction: Friction,
    /// The scene's lighting.
    pub light: Light,
    /// Half the road's width, metres: the road spans y from −this to +this; 0 for table worlds.
    pub road_half_width: f32,
    /// The seed the world was drawn with (ScenarioInfo.seed).
    pub seed: u64,
    /// The class table ([`Scenario::class_names`]): `Object::class` indexes it.
    pub class_names: Vec<String>,
    /// The meshes `Shape::Mesh` parts draw ([`Scenario::meshes`]).
    pub meshes: Vec<std::sync::Arc<crate::asset::MeshAsset>>,
}

fn iso(x: f64, y: f64, z: f64, yaw_deg: f64) -> Isometry3<f32> {
    Isometry3::from_parts(
        Translation3::new(x as f32, y as f32, z as f32),
        UnitQuaternion::from_axis_angle(&Vector3::z_axis(), yaw_deg.to_radians() as f32),
    )
}

fn boxed(size: [f32; 3], color: [f32; 3]) -> Part {
    Part { shape: Shape::Box(size), offset: Isometry3::identity(), color, joints: [None, None] }
}

/// Vehicle paints for unrandomised scenes, by actor number (randomised ones follow [`figures::paint`]).
const VEHICLE_COLORS: &[[f32; 3]] =
    &[[0.70, 0.08, 0.08], [0.10, 0.20, 0.60], [0.85, 0.85, 0.85], [0.08, 0.08, 0.08], [0.55, 0.57, 0.60], [0.15, 0.40, 0.20]];
const CHILD_CLOTHES: &[[f32; 3]] = &[[0.95, 0.75, 0.10], [0.90, 0.30, 0.50], [0.20, 0.70, 0.80]];
const FACADES: &[[f32; 3]] = &[[0.72, 0.66, 0.55], [0.60, 0.32, 0.25], [0.55, 0.55, 0.58], [0.80, 0.78, 0.70]];
const CUPS: &[[f32; 3]] = &[[0.92, 0.92, 0.90], [0.80, 0.15, 0.12], [0.15, 0.35, 0.75]];

fn pick(rng: &mut Rng, palette: &[[f32; 3]], randomize: bool, fallback: usize) -> [f32; 3] {
    if randomize {
        palette[rng.below(palette.len())]
    } else {
        palette[fallback % palette.len()]
    }
}

fn light_for(s: &Scenario, rng: &mut Rng) -> Light {
    let scale = rng.jitter(1.0, s.randomize.light).max(0.05) as f32;
    let (elev, azim, sun, ambient, sky): (f32, f32, [f32; 3], [f32; 3], [f32; 3]) = match s.environment.time_of_day {
        TimeOfDay::Day => (55.0, 40.0, [1.0, 0.97, 0.92], [0.38, 0.40, 0.45], [0.52, 0.68, 0.90]),
        TimeOfDay::Dawn => (8.0, 100.0, [1.0, 0.70, 0.45], [0.22, 0.20, 0.24], [0.85, 0.60, 0.45]),
        TimeOfDay::Dusk => (6.0, -80.0, [1.0, 0.55, 0.35], [0.18, 0.16, 0.22], [0.55, 0.35, 0.40]),
        TimeOfDay::Night => (35.0, 20.0, [0.10, 0.11, 0.16], [0.035, 0.035, 0.05], [0.012, 0.015, 0.03]),
    };
    let (e, a) = (elev.to_radians(), azim.to_radians());
    let dir = [e.cos() * a.cos(), e.cos() * a.sin(), e.sin()];
    let mul = |c: [f32; 3], k: f32| [c[0] * k, c[1] * k, c[2] * k];
    let night = s.environment.time_of_day == TimeOfDay::Night;
    let w = s.environment.weather_intensity as f32;
    let (fog, fog_color) = match s.environment.weather.as_str() {
        "fog" => (0.002 + 0.05 * w, if night { [0.03, 0.03, 0.035] } else { [0.7, 0.72, 0.75] }),
        "snow" => (0.004 + 0.02 * w, if night { [0.05, 0.05, 0.06] } else { [0.8, 0.82, 0.85] }),
        "rain" => (0.002 + 0.01 * w, if night { [0.02, 0.02, 0.03] } else { [0.5, 0.52, 0.55] }),
        _ => (0.0, sky),
    };
    let overcast = if s.environment.weather == "clear" { 1.0 } else { 1.0 - 0.5 * w };
    Light {
        sun_dir: dir,
        sun_color: mul(sun, scale * overcast),
        ambient: mul(ambient, scale),
        sky: mul(sky, if night { 1.0 } else { scale * overcast.max(0.7) }),
        headlights: night || matches!(s.environment.time_of_day, TimeOfDay::Dusk | TimeOfDay::Dawn) || s.environment.weather == "fog",
        lamps: Vec::new(),
        fog,
        fog_color,
    }
}

impl World {
    /// Places every object of the scenario, drawing what is random from the
    /// seed. Each part draws from a stream of its own (`Rng::fork`), so adding
    /// an actor does not move the others.
    pub fn build(s: &Scenario, seed: u64) -> World {
        let root = Rng::new(seed);
        let friction = randomized_friction(s, &mut root.fork(1));
        let light = light_for(s, &mut root.fork(2));
        let mut w = World {
            objects: Vec::new(),
            ego: None,
            vehicle: None,
            arm: None,
            friction,
            light,
            road_half_width: 0.0,
            seed,
            class_names: s.class_names(),
            meshes: s.meshes(),
        };
        let mut ids = InstanceIds(1);
        match &s.world {
            WorldSpec::Road(road) => w.place_road(s, road, &root),
            WorldSpec::Table(t) => w.place_table(t, &mut ids),
        }
        match &s.ego {
            EgoSpec::Vehicle(v) => w.place_vehicle(v, &mut ids),
            EgoSpec::Arm(a) => w.place_arm(s, a, &mut ids),
        }
        w.place_actors(s, &root, &mut ids);
        w
    }

    /// The road world: carriageway, sidewalks and terrain, lane markings,
    /// buildings (stream 3) and, but by day, street lamps.
    fn place_road(&mut self, s: &Scenario, road: &Road, root: &Rng) {
        let lanes = road.lanes as f64;
        let half_w = lanes * road.lane_width / 2.0;
        self.road_half_width = half_w as f32;
        let tint = snow_tint(s);
        self.place_ground(s, road, half_w, &tint);
        self.place_markings(road, half_w, &tint);
        self.place_buildings(road, half_w, &mut root.fork(3));
        if s.environment.time_of_day != TimeOfDay::Day {
            self.place_lamps(road, half_w);
        }
        self.place_furniture(road, half_w, &mut root.fork(0xF0_2417));
    }

    /// Lamp posts (where the lamps hang, lit or not), signs, bins and trees
    /// along the sidewalks: background classes of their own, not solid.
    fn place_furniture(&mut self, road: &Road, half_w: f64, rng: &mut Rng) {
        let (len, sw) = (road.length, road.sidewalk_width);
        if sw <= 0.0 {
            return;
        }
        let mut items = Vec::new();
        let (mut x, mut side) = (-len / 2.0 + 10.0, 1.0);
        while x < len / 2.0 {
            items.push(figures::lamp_post([x as f32, (side * (half_w + 0.5)) as f32], -side as f32));
            x += 25.0;
            side = -side;
        }
        let (mut x, mut side) = (-len / 2.0 + 35.0, -1.0);
        while x < len / 2.0 {
            items.extend(figures::sign([x as f32, (side * (half_w + 0.35)) as f32], -side as f32, rng));
            x += 70.0;
            side = -side;
        }
        let (mut x, mut side) = (-len / 2.0 + 20.0, 1.0);
        while x < len / 2.0 {
            items.push(figures::bin([rng.jitter(x, 5.0) as f32, (side * (half_w + sw - 0.45)) as f32], rng));
            x += 45.0;
            side = -side;
        }
        if sw >= 2.5 {
            for side in [-1.0, 1.0] {
                let mut x = -len / 2.0 + 6.0;
                while x < len / 2.0 {
                    items.push(figures::tree([rng.jitter(x, 2.5) as f32, (side * (half_w + sw - 0.8)) as f32], rng));
                    x += 12.0;
                }
            }
        }
        for (k, f) in items.into_iter().enumerate() {
            let z = 0.15 + f.lift as f64 + f.half[2] as f64;
            self.objects.push(Object {
                name: format!("{}_{k}", CLASS_NAMES[f.class as usize]),
                class: f.class,
                instance: 0,
                parts: f.parts,
                half: Vector3::new(f.half[0], f.half[1], f.half[2]),
                pose: iso(f.at[0] as f64, f.at[1] as f64, z, 0.0),
                motion: Motion::Fixed,
                solid: false,
                friction: 0.6,
                behaviour: "static",
            });
        }
    }

    /// The carriageway (darker when wet), the sidewalks on their kerb and
    /// 60 m of terrain beyond them, on both sides.
    fn place_ground(&mut self, s: &Scenario, road: &Road, half_w: f64, tint: &impl Fn([f32; 3]) -> [f32; 3]) {
        let len = road.length;
        let friction = self.friction;
        let wet = if s.environment.weather == "rain" { 1.0 - 0.35 * s.environment.weather_intensity as f32 } else { 1.0 };
        let road_color = tint([0.22 * wet, 0.22 * wet, 0.23 * wet]);
        self.objects.push(fixed(
            "road".into(),
            class::ROAD,
            [len as f32, 2.0 * half_w as f32, 0.2],
            iso(0.0, 0.0, -0.1, 0.0),
            road_color,
            true,
            friction.road,
        ));
        let sw = road.sidewalk_width;
        if sw > 0.0 {
            for side in [-1.0, 1.0] {
                let y = side * (half_w + sw / 2.0);
                self.objects.push(fixed(
                    format!("sidewalk_{}", if side < 0.0 { "right" } else { "left" }),
                    class::SIDEWALK,
                    [len as f32, sw as f32, 0.35],
                    iso(0.0, y, 0.15 - 0.175, 0.0),
                    tint([0.58, 0.57, 0.55]),
                    true,
                    friction.sidewalk,
                ));
            }
        }
        let terrain_w = 60.0;
        for side in [-1.0, 1.0] {
            let y = side * (half_w + sw + terrain_w / 2.0);
            self.objects.push(fixed(
                format!("terrain_{}", if side < 0.0 { "right" } else { "left" }),
                class::TERRAIN,
                [len as f32, terrain_w as f32, 0.2],
                iso(0.0, y, -0.1, 0.0),
                tint([0.25, 0.33, 0.18]),
                true,
                0.6,
            ));
        }
    }

    /// Lane markings: solid edge lines, dashed lines between lanes.
    fn place_markings(&mut self, road: &Road, half_w: f64, tint: &impl Fn([f32; 3]) -> [f32; 3]) {
        let len = road.length;
        let friction = self.friction;
        let mark = tint([0.9, 0.9, 0.88]);
        for side in [-1.0, 1.0] {
            let y = side * (half_w - 0.25);
            self.objects.push(fixed(
                format!("edge_line_{}", if side < 0.0 { "right" } else { "left" }),
                class::LANE_MARKING,
                [len as f32, 0.15, 0.01],
                iso(0.0, y, 0.005, 0.0),
                mark,
                false,
                friction.road,
            ));
        }
        for lane in 1..road.lanes {
            let y = -half_w + lane as f64 * road.lane_width;
            let mut x = -len / 2.0 + 1.5;
            let mut n = 0;
            while x < len / 2.0 {
                self.objects.push(fixed(
                    format!("lane_line_{lane}_{n}"),
                    class::LANE_MARKING,
                    [3.0, 0.12, 0.01],
                    iso(x, y, 0.005, 0.0),
                    mark,
                    false,
                    friction.road,
                ));
                x += 9.0;
                n += 1;
            }
        }
    }

    /// Buildings along both sides, one per slot of the road's length, each
    /// drawing its width, depth, height and facade.
    fn place_buildings(&mut self, road: &Road, half_w: f64, brng: &mut Rng) {
        let (len, sw) = (road.length, road.sidewalk_width);
        for side in [-1.0, 1.0] {
            let count = road.buildings as usize;
            let slot = len / count.max(1) as f64;
            for i in 0..count {
                let width = slot * brng.uniform(0.6, 0.9);
                let depth = brng.uniform(8.0, 14.0);
                let height = brng.range(road.building_height);
                let x = -len / 2.0 + slot * (i as f64 + 0.5);
                let y = side * (half_w + sw + 1.0 + depth / 2.0);
                let color = FACADES[brng.below(FACADES.len())];
                self.objects.push(fixed(
                    format!("building_{}_{i}", if side < 0.0 { "right" } else { "left" }),
                    class::BUILDING,
                    [width as f32, depth as f32, height as f32],
                    iso(x, y, height / 2.0, 0.0),
                    color,
                    true,
                    0.6,
                ));
            }
        }
    }

    /// Street lamps 6 m up, every 25 m, alternating sides.
    fn place_lamps(&mut self, road: &Road, half_w: f64) {
        let len = road.length;
        let mut x = -len / 2.0 + 10.0;
        let mut side = 1.0;
        while x < len / 2.0 {
            self.light.lamps.push([x as f32, (side * (half_w + 0.5)) as f32, 6.0]);
            x += 25.0;
            side = -side;
        }
    }

    /// The table world: a floor (background) and the table on it.
    fn place_table(&mut self, t: &Table, ids: &mut InstanceIds) {
        let size = [t.size[0] as f32, t.size[1] as f32, t.size[2] as f32];
        self.objects.push(Object {
            name: "floor".into(),
            class: class::FLOOR,
            instance: 0,
            half: Vector3::new(5.0, 5.0, 0.05),
            parts: vec![boxed([10.0, 10.0, 0.1], [0.45, 0.33, 0.22])],
            pose: iso(0.0, 0.0, -0.05, 0.0),
            motion: Motion::Fixed,
            solid: true,
            friction: 0.6,
            behaviour: "static",
        });
        self.objects.push(Object {
            name: "table".into(),
            class: class::TABLE,
            instance: ids.next_id(),
            half: Vector3::new(size[0], size[1], size[2]) / 2.0,
            parts: table_parts(size),
            pose: iso(0.0, 0.0, t.size[2] / 2.0, 0.0),
            motion: Motion::Fixed,
            solid: true,
            friction: self.friction.table as f32,
            behaviour: "static",
        });
    }

    /// The ego vehicle, on the road at its start.
    fn place_vehicle(&mut self, v: &VehicleEgo, ids: &mut InstanceIds) {
        let size = [v.size[0] as f32, v.size[1] as f32, v.size[2] as f32];
        self.ego = Some(self.objects.len());
        self.objects.push(Object {
            name: "ego".into(),
            class: class::EGO_VEHICLE,
            instance: ids.next_id(),
            half: Vector3::new(size[0], size[1], size[2]) / 2.0,
            parts: figures::vehicle_parts(Body::of_size(size), size, [0.12, 0.16, 0.30]),
            pose: iso(v.start.x, v.start.y, v.size[2] / 2.0 + 0.01, v.start.yaw_deg),
            motion: Motion::EgoVehicle,
            solid: true,
            friction: 0.0,
            behaviour: "ego",
        });
        self.vehicle = Some(v.clone());
    }

    /// The arm's six links and the gripper's two fingers (one instance id),
    /// standing straight up from its base on the table top; physics bends
    /// them into the initial joint angles.
    fn place_arm(&mut self, s: &Scenario, a: &ArmEgo, ids: &mut InstanceIds) {
        let arm_instance = ids.next_id();
        let table_top = match &s.world {
            WorldSpec::Table(t) => t.size[2],
            WorldSpec::Road(_) => 0.0,
        };
        for (i, len) in a.links.iter().enumerate() {
            let len = *len as f32;
            let r = ARM_LINK_RADII[i];
            self.objects.push(Object {
                name: format!("arm_link{}", i + 1),
                class: class::ROBOT_ARM,
                instance: arm_instance,
                half: Vector3::new(r, r, len / 2.0),
                parts: vec![boxed([2.0 * r, 2.0 * r, len], if i % 2 == 0 { [0.95, 0.45, 0.08] } else { [0.30, 0.30, 0.32] })],
                // Placed by physics from the joint angles; this is the straight-up pose.
                pose: Isometry3::translation(
                    a.base[0] as f32,
                    a.base[1] as f32,
                    table_top as f32 + a.base[2] as f32 + a.links[..i].iter().sum::<f64>() as f32 + len / 2.0,
                ),
                motion: Motion::ArmLink(i),
                solid: true,
                friction: 0.8,
                behaviour: "arm",
            });
        }
        // The gripper's fingers stand on the flange, wide open.
        let flange = table_top as f32 + a.base[2] as f32 + a.links.iter().sum::<f64>() as f32;
        let h = FINGER_HALF;
        for (k, side) in [1.0f32, -1.0].into_iter().enumerate() {
            self.objects.push(Object {
                name: format!("arm_finger_{}", ["left", "right"][k]),
                class: class::ROBOT_ARM,
                instance: arm_instance,
                half: Vector3::new(h[0], h[1], h[2]),
                parts: vec![boxed([2.0 * h[0], 2.0 * h[1], 2.0 * h[2]], [0.12, 0.12, 0.13])],
                pose: Isometry3::translation(a.base[0] as f32 + side * (GRIPPER_MAX_OPENING / 2.0 + h[0]), a.base[1] as f32, flange + h[2]),
                motion: Motion::ArmFinger(k),
                solid: true,
                friction: 1.0,
                behaviour: "arm",
            });
        }
        let mut a = a.clone();
        a.base[2] += table_top;
        self.arm = Some(a);
    }

    /// Every actor of the scenario in file order, each drawing from a stream
    /// of its own (100 + 1000 × entry + k), named `<kind>_<n>` per kind (a
    /// mesh: `<class>_<n>` per class).
    fn place_actors(&mut self, s: &Scenario, root: &Rng, ids: &mut InstanceIds) {
        let site = Site::of(s, self);
        let mut counters: std::collections::HashMap<&str, usize> = Default::default();
        for (ai, spec) in s.actors.iter().enumerate() {
            let mesh = spec.mesh.as_ref().map(|m| MeshRef {
                asset: self.meshes.iter().position(|k| std::sync::Arc::ptr_eq(k, &m.asset)).expect("the scenario's meshes") as u16,
                size: m.asset.size,
                class: self.class_names.iter().position(|k| *k == m.class).expect("the scenario's classes") as u8,
            });
            let stem = spec.mesh.as_ref().map_or(spec.kind.name(), |m| m.class.as_str());
            for k in 0..spec.count {
                let mut rng = root.fork(100 + (ai as u64) * 1000 + k as u64);
                let n = counters.entry(stem).or_default();
                let mut object = actor(spec, *n, mesh, ids.next_id(), &site, &mut rng);
                object.name = format!("{stem}_{n}");
                *n += 1;
                self.objects.push(object);
            }
        }
    }

    /// Objects that carry an instance id, once each (the arm's links share one).
    pub(crate) fn instances(&self) -> impl Iterator<Item = &Object> {
        let mut seen = std::collections::HashSet::new();
        self.objects.iter().filter(move |o| o.instance != 0 && seen.insert(o.instance))
    }
}

/// Every friction coefficient of the scenario moved by up to
/// ±`randomize.friction` of itself, never below 0.
fn randomized_friction(s: &Scenario, rng: &mut Rng) -> Friction {
    let fr = s.randomize.friction;
    let mut vary = |mu: f64| (mu * rng.jitter(1.0, fr)).max(0.0);
    Friction {
        road: vary(s.environment.friction.road),
        sidewalk: vary(s.environment.friction.sidewalk),
        table: vary(s.environment.friction.table),
    }
}

/// Hands out instance ids from 1 in placement order (0 is the background).
struct InstanceIds(u16);

impl InstanceIds {
    fn next_id(&mut self) -> u16 {
        let i = self.0;
        self.0 += 1;
        i
    }
}

/// Whitens a colour as far as the snow's intensity says (no change in other weather).
fn snow_tint(s: &Scenario) -> impl Fn([f32; 3]) -> [f32; 3] {
    let snow = if s.environment.weather == "snow" { s.environment.weather_intensity as f32 } else { 0.0 };
    move |c: [f32; 3]| [c[0] + (0.85 - c[0]) * snow * 0.6, c[1] + (0.87 - c[1]) * snow * 0.6, c[2] + (0.9 - c[2]) * snow * 0.6]
}

/// A fixed box of the background ("stuff": no instance id).
fn fixed(name: String, class: u8, size: [f32; 3], pose: Isometry3<f32>, color: [f32; 3], solid: bool, friction: f64) -> Object {
    Object {
        name,
        class,
        instance: 0,
        half: Vector3::new(size[0], size[1], size[2]) / 2.0,
        parts: vec![boxed(size, color)],
        pose,
        motion: Motion::Fixed,
        solid,
        friction: friction as f32,
        behaviour: "static",
    }
}

/// What placing an actor needs of the scenario and of the world around it.
struct Site<'a> {
    randomize: &'a Randomize,
    /// Half the road's width as the world holds it (f32), 0 on a table.
    half_w: f64,
    /// Each sidewalk's width, 0 on a table.
    sidewalk: f64,
    /// 0 on a table.
    lane_width: f64,
    /// 0 on a table.
    road_len: f64,
    /// The table's size, zeros on a road.
    table: [f64; 3],
    /// μ of the table top after randomization, for cups.
    table_mu: f32,
}

impl<'a> Site<'a> {
    fn of(s: &'a Scenario, w: &World) -> Site<'a> {
        let (sidewalk, lane_width, road_len, table) = match &s.world {
            WorldSpec::Road(r) => (r.sidewalk_width, r.lane_width, r.length, [0.0; 3]),
            WorldSpec::Table(t) => (0.0, 0.0, 0.0, t.size),
        };
        Site {
            randomize: &s.randomize,
            half_w: w.road_half_width as f64,
            sidewalk,
            lane_width,
            road_len,
            table,
            table_mu: w.friction.table as f32,
        }
    }
}

/// A mesh entry's asset, natural size and class id.
#[derive(Clone, Copy)]
struct MeshRef {
    asset: u16,
    size: [f32; 3],
    class: u8,
}

/// One actor of an entry, the `n`-th of its kind (named by the caller): its
/// size, start, script and colour drawn in this order.
fn actor(spec: &ActorSpec, n: usize, mesh: Option<MeshRef>, instance: u16, site: &Site, rng: &mut Rng) -> Object {
    // The look draws from a stream of its own, so positions and scripts do not depend on it.
    let mut look = rng.fork(0x100C);
    let body = (spec.kind == ActorKind::Vehicle && spec.size.is_none()).then(|| Body::draw(&mut look));
    let natural = mesh.map(|m| m.size.map(|x| x as f64));
    let base = spec.size.or(body.map(|b| b.1)).or(natural).unwrap_or(default_size(spec.kind));
    let scale = rng.jitter(1.0, site.randomize.sizes).max(0.3);
    let scaled = [base[0] * scale, base[1] * scale, base[2] * scale];
    let size = [scaled[0] as f32, scaled[1] as f32, scaled[2] as f32];
    let start = actor_start(spec, scaled[1], site, rng);
    let pose = iso(start.0, start.1, ground_under(spec.kind, start.1, site) + size[2] as f64 / 2.0 + 0.002, start.2);
    let script = actor_script(&spec.behaviour, start.1, site, rng);
    let color = actor_color(spec, n, site.randomize.colors, rng);
    let run = matches!(spec.behaviour, Behaviour::Cross { run: true, .. });
    let behaviour = script.name(run);
    let standing = script == Script::Static;
    let (class, parts, motion) = match spec.kind {
        ActorKind::Vehicle => {
            let paint = if spec.color.is_none() && site.randomize.colors { figures::paint(&mut look) } else { color };
            let body = body.map_or(Body::of_size(size), |b| b.0);
            (class::VEHICLE, figures::vehicle_parts(body, size, paint), Motion::Scripted(script))
        }
        ActorKind::Adult => {
            let parts = figures::person_parts(size, false, &PersonLook::draw(color, standing, &mut look));
            (class::PEDESTRIAN, parts, Motion::Scripted(script))
        }
        ActorKind::Child => {
            let parts = figures::person_parts(size, true, &PersonLook::draw(color, standing, &mut look));
            (class::CHILD, parts, Motion::Scripted(script))
        }
        ActorKind::Cyclist => {
            let parts = figures::cyclist_parts(size, &PersonLook::draw(color, false, &mut look), figures::paint(&mut look));
            (class::CYCLIST, parts, Motion::Scripted(script))
        }
        ActorKind::Cup => (
            class::CUP,
            vec![Part {
                shape: Shape::Cylinder { diameter: size[0], height: size[2] },
                offset: Isometry3::identity(),
                color,
                joints: [None, None],
            }],
            Motion::Dynamic { mass: 0.25 },
        ),
        ActorKind::Mesh => {
            let m = mesh.expect("a mesh entry has its mesh");
            // The file's colours, tinted by the entry's `color` when it gives one.
            let tint = spec.color.map_or([1.0; 3], |c| c.map(|x| x as f32));
            let part =
                Part { shape: Shape::Mesh { asset: m.asset, size }, offset: Isometry3::identity(), color: tint, joints: [None, None] };
            (m.class, vec![part], Motion::Scripted(script))
        }
    };
    Object {
        name: String::new(),
        class,
        instance,
        half: Vector3::new(size[0], size[1], size[2]) / 2.0,
        parts,
        pose,
        motion,
        solid: true,
        friction: if spec.kind == ActorKind::Cup { site.table_mu } else { 0.5 },
        behaviour,
    }
}

/// Length, width, height in metres of an actor whose entry gives no size.
fn default_size(kind: ActorKind) -> [f64; 3] {
    match kind {
        ActorKind::Vehicle => [4.4, 1.8, 1.5],
        // People's depth covers a walking stride (their limbs swing within it).
        ActorKind::Adult => [0.9, 0.42, 1.75],
        ActorKind::Child => [0.6, 0.3, 1.15],
        ActorKind::Cyclist => [1.8, 0.6, 1.75],
        ActorKind::Cup => [0.08, 0.08, 0.10],
        // Not used: a mesh's size is its bounding box (`MeshRef::size`) unless the entry gives one.
        ActorKind::Mesh => [1.0, 1.0, 1.0],
    }
}

/// Where an actor starts (x, y, yaw in degrees): the entry's start jittered,
/// or drawn: parked at the kerb, in a lane facing its traffic, on a
/// sidewalk, on the table. `width` is its drawn width, metres.
fn actor_start(spec: &ActorSpec, width: f64, site: &Site, rng: &mut Rng) -> (f64, f64, f64) {
    let (half_w, road_len, lane_width, table) = (site.half_w, site.road_len, site.lane_width, site.table);
    match spec.start {
        Some(p) => {
            let j = site.randomize.poses;
            // Vehicles keep their lane: mostly moved along it.
            let across = match spec.kind {
                ActorKind::Cup => j,
                ActorKind::Vehicle => j * 0.2,
                _ => j,
            };
            (rng.jitter(p.x, j), rng.jitter(p.y, across), p.yaw_deg)
        }
        None => match spec.kind {
            ActorKind::Vehicle if spec.behaviour == Behaviour::Static => {
                // Parked at the kerb, either side.
                let side = if rng.unit() < 0.5 { -1.0 } else { 1.0 };
                let x = rng.uniform(-road_len / 2.0 + 10.0, road_len / 2.0 - 10.0);
                (x, side * (half_w - width / 2.0 - 0.1), if side < 0.0 { 0.0 } else { 180.0 })
            }
            ActorKind::Vehicle => {
                let lane = rng.below(((2.0 * half_w / lane_width).round() as usize).max(1));
                let y = -half_w + lane_width * (lane as f64 + 0.5);
                let x = rng.uniform(-road_len / 2.0 + 10.0, road_len / 2.0 - 10.0);
                (x, y, if y < 0.0 { 0.0 } else { 180.0 })
            }
            ActorKind::Mesh if table[2] > 0.0 => {
                (rng.uniform(-table[0] / 3.0, table[0] / 3.0), rng.uniform(-table[1] / 3.0, table[1] / 3.0), 0.0)
            }
            ActorKind::Adult | ActorKind::Child | ActorKind::Mesh => {
                let side = if rng.unit() < 0.5 { -1.0 } else { 1.0 };
                let y = side * (half_w + site.sidewalk * rng.uniform(0.25, 0.75));
                let x = rng.uniform(-road_len / 2.0 + 5.0, road_len / 2.0 - 5.0);
                (x, y, if rng.unit() < 0.5 { 0.0 } else { 180.0 })
            }
            ActorKind::Cyclist => {
                // By the kerb, with the traffic of its side.
                let side = if rng.unit() < 0.5 { -1.0 } else { 1.0 };
                let x = rng.uniform(-road_len / 2.0 + 10.0, road_len / 2.0 - 10.0);
                (x, side * (half_w - 0.9), if side < 0.0 { 0.0 } else { 180.0 })
            }
            ActorKind::Cup => (rng.uniform(-table[0] / 3.0, table[0] / 3.0), rng.uniform(-table[1] / 3.0, table[1] / 3.0), 0.0),
        },
    }
}

/// Height of what an actor at `y` stands on: the table top for a cup, the
/// kerb on a sidewalk, else the road.
fn ground_under(kind: ActorKind, y: f64, site: &Site) -> f64 {
    match kind {
        ActorKind::Cup => site.table[2],
        ActorKind::Mesh if site.table[2] > 0.0 => site.table[2],
        _ if site.sidewalk > 0.0 && y.abs() > site.half_w => 0.15,
        _ => 0.0,
    }
}

/// An actor's script with its draws made: the speed, and for a crossing its
/// triggers (jittered by `randomize.timing`; at t = 0 when it has none).
fn actor_script(behaviour: &Behaviour, start_y: f64, site: &Site, rng: &mut Rng) -> Script {
    let timing = site.randomize.timing;
    match behaviour {
        Behaviour::Static => Script::Static,
        Behaviour::Drive { speed } => Script::Drive { speed: rng.range(*speed) as f32 },
        Behaviour::Walk { speed } => Script::Walk { speed: rng.range(*speed) as f32 },
        Behaviour::Cross { speed, trigger_time, trigger_distance, .. } => {
            // Across the road, away from the side it starts on.
            let dir_y = if start_y > 0.0 { -1.0 } else { 1.0 };
            let length = (start_y.abs() + site.half_w + site.sidewalk * 0.5) as f32;
            let draw = |rng: &mut Rng, r: &Option<Range>| r.map(|r| rng.range(r) as f32);
            let mut time = draw(rng, trigger_time);
            let mut distance = draw(rng, trigger_distance);
            if let Some(t) = time.as_mut() {
                *t = (rng.jitter(*t as f64, timing).max(0.0)) as f32;
            }
            if let Some(d) = distance.as_mut() {
                *d = (rng.jitter(*d as f64, timing).max(0.0)) as f32;
            }
            if time.is_none() && distance.is_none() {
                time = Some(0.0);
            }
            Script::Cross { speed: rng.range(*speed) as f32, time, distance, direction: Vector3::new(0.0, dir_y, 0.0), length }
        }
    }
}

/// The entry's colour, or one of the kind's palette: drawn when colours are
/// randomized, else the `n`-th.
fn actor_color(spec: &ActorSpec, n: usize, randomize: bool, rng: &mut Rng) -> [f32; 3] {
    if let Some(c) = spec.color {
        return [c[0] as f32, c[1] as f32, c[2] as f32];
    }
    let palette = match spec.kind {
        ActorKind::Vehicle => VEHICLE_COLORS,
        ActorKind::Adult => figures::TOPS,
        ActorKind::Child => CHILD_CLOTHES,
        ActorKind::Cyclist => figures::TOPS,
        ActorKind::Cup => CUPS,
        ActorKind::Mesh => return [1.0; 3],
    };
    pick(rng, palette, randomize, n)
}

fn table_parts(size: [f32; 3]) -> Vec<Part> {
    let top = 0.04;
    let leg = 0.06;
    let wood = [0.72, 0.56, 0.38];
    let mut parts = vec![Part {
        shape: Shape::Box([size[0], size[1], top]),
        offset: Isometry3::translation(0.0, 0.0, size[2] / 2.0 - top / 2.0),
        color: wood,
        joints: [None, None],
    }];
    for (sx, sy) in [(-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0)] {
        parts.push(Part {
            shape: Shape::Box([leg, leg, size[2] - top]),
            offset: Isometry3::translation(sx * (size[0] / 2.0 - leg), sy * (size[1] / 2.0 - leg), -top / 2.0),
            color: [0.50, 0.38, 0.26],
            joints: [None, None],
        });
    }
    parts
}
