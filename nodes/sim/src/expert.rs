//! The privileged driving expert: it reads the simulator's ground truth
//! (every actor's pose and velocity, the friction under the tyres, how far
//! the headlights and the fog let one see) and drives the way a careful
//! driver would, so that its commands can be recorded as demonstrations and
//! its score is the bar a learned policy is held to.
//!
//! The rule it drives by: never go faster than a speed from which the car can
//! stop, on the surface it is on, within the distance it knows to be free —
//! v ≤ √(2·a·d) with a = margin·μ·g. The free distance is the shortest of
//! - what can be seen (sight: headlights at night, fog),
//! - the nearest actor in (or predicted to enter) the ego's corridor,
//! - the end of the nearest parked vehicle by the kerb: someone hidden behind
//!   it may step out there, so the car creeps past occlusions.
//!
//! It steers by pure pursuit towards its lane's centre line.

use nalgebra::{Isometry3, Vector2};

use crate::physics::{GRAVITY, SPEED_GAIN};
use crate::sim::Sim;
use crate::world::{class, Motion, Script};

/// Share of the road's grip the expert plans its speed with (v ≤ √(2·a·d)):
/// the rest is the margin for what it cannot know (a late step out).
const PLAN_GRIP: f32 = 0.5;
/// Share of the grip it brakes with when slowing down: the rest stays
/// available for steering (braking at the limit on ice leaves none).
const BRAKE_GRIP: f32 = 0.8;
/// Metres it keeps between its bumper and whatever it stops for.
const STOP_GAP: f32 = 2.5;
/// How far headlights light the road at night, metres.
const HEADLIGHT_SIGHT: f32 = 60.0;
/// How far one sees by day in clear air, metres.
const DAY_SIGHT: f32 = 150.0;
/// How far ahead (s) it predicts an actor's path at its current velocity.
const HORIZON: f32 = 6.0;
/// Lateral clearance (m) it wants from a moving actor's predicted path.
const MOVING_CLEARANCE: f32 = 0.6;
/// Lateral clearance (m) from a standing object: parked cars leave ~0.3 m.
const STATIC_CLEARANCE: f32 = 0.1;
/// A parked vehicle within this lateral distance (m) of the corridor can hide a pedestrian.
const OCCLUSION_REACH: f32 = 2.5;
/// Distance (m) it wants to be able to stop in when creeping past an occlusion.
const CREEP_STOP: f32 = 1.0;
/// Pure-pursuit look-ahead: this many seconds of travel, at least `MIN_LOOKAHEAD` m.
const LOOKAHEAD_TIME: f32 = 0.8;
const MIN_LOOKAHEAD: f32 = 6.0;
/// How far ahead (m) it plans its line past what stands in the lane.
const LANE_PLAN: f32 = 60.0;

/// One actor as the expert sees it, in the map frame.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenActor {
    /// Semantic class ([`class`]).
    pub class: u8,
    /// Instance id (0 for none).
    pub instance: u16,
    /// Centre on the ground, metres.
    pub position: Vector2<f32>,
    /// m/s.
    pub velocity: Vector2<f32>,
    /// Half extents of its footprint along the map's x and y (rotation folded in).
    pub half: Vector2<f32>,
    /// A vehicle standing by the kerb on purpose (it may hide someone).
    pub parked: bool,
}

/// What a privileged driver knows at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct DrivingView {
    /// Sim seconds.
    pub time: f32,
    /// base_link on the ground, map frame.
    pub position: Vector2<f32>,
    /// Heading, radians counter-clockwise from +x.
    pub yaw: f32,
    /// Speed along the heading, m/s (negative in reverse).
    pub speed: f32,
    /// Half the ego's length and width, metres.
    pub half: Vector2<f32>,
    /// Friction coefficient under the tyres now.
    pub mu: f32,
    /// The lane: a point on its centre line and its direction of travel (unit).
    pub lane_point: Vector2<f32>,
    /// Unit vector of the lane's direction of travel.
    pub lane_dir: Vector2<f32>,
    /// How far the ego may move left (positive) and right (negative) of its
    /// lane's centre line and stay on its side of the road, metres.
    pub room: (f32, f32),
    /// The speed limit (the scenario's cruise speed), m/s.
    pub speed_limit: f32,
    /// How far the driver can see, metres.
    pub sight: f32,
    /// Everyone and everything that moves or may hide someone.
    pub actors: Vec<SeenActor>,
}

impl DrivingView {
    /// The view of a vehicle scenario's run now; None for an arm scenario.
    pub fn of(sim: &Sim) -> Option<DrivingView> {
        let world = &sim.world;
        let ego = world.ego?;
        let spec = world.vehicle.as_ref()?;
        let base = sim.base_pose();
        let (v, _) = sim.physics.velocity(ego);
        let yaw = base.rotation.euler_angles().2;
        let heading = Vector2::new(yaw.cos(), yaw.sin());
        let position = base.translation.vector.xy();
        let mu = if position.y.abs() <= world.road_half_width { world.friction.road } else { world.friction.sidewalk } as f32;
        let start_yaw = (spec.start.yaw_deg as f32).to_radians();
        let light = &world.light;
        let mut sight = if light.headlights { HEADLIGHT_SIGHT } else { DAY_SIGHT };
        if light.fog > 0.0 {
            // Koschmieder: contrast falls to 5 % over 3 / extinction.
            sight = sight.min(3.0 / light.fog);
        }
        let actors = world
            .objects
            .iter()
            .enumerate()
            .filter(|(_, o)| o.instance != 0 && o.class != class::EGO_VEHICLE && o.class != class::ROBOT_ARM && o.solid)
            .filter(|(_, o)| matches!(o.motion, Motion::Scripted(_) | Motion::Dynamic { .. }))
            .map(|(i, o)| {
                let pose: Isometry3<f32> = sim.physics.pose(world, i);
                let (vel, _) = sim.physics.velocity(i);
                let a = pose.rotation.euler_angles().2;
                let (c, s) = (a.cos().abs(), a.sin().abs());
                SeenActor {
                    class: o.class,
                    instance: o.instance,
                    position: pose.translation.vector.xy(),
                    velocity: vel.xy(),
                    half: Vector2::new(c * o.half.x + s * o.half.y, s * o.half.x + c * o.half.y),
                    parked: o.class == class::VEHICLE && matches!(o.motion, Motion::Scripted(Script::Static)),
                }
            })
            .collect();
        let lane_point = Vector2::new(spec.start.x as f32, spec.start.y as f32);
        let lane_dir = Vector2::new(start_yaw.cos(), start_yaw.sin());
        // The road runs along x with its centre line at y = 0: the lane's
        // side is the half it starts in, kerb to centre line.
        let left_of = Vector2::new(-lane_dir.y, lane_dir.x);
        let centre_line = -lane_point.dot(&left_of);
        let kerb = if centre_line > 0.0 { centre_line - world.road_half_width } else { centre_line + world.road_half_width };
        let room = (centre_line.max(kerb), centre_line.min(kerb));
        Some(DrivingView {
            time: sim.seconds() as f32,
            position,
            yaw,
            speed: v.xy().dot(&heading),
            half: Vector2::new(spec.size[0] as f32, spec.size[1] as f32) / 2.0,
            mu,
            lane_point,
            lane_dir,
            room,
            speed_limit: spec.speed as f32,
            sight,
            actors,
        })
    }
}

/// Why the expert chose its speed: the binding constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Because {
    /// Nothing closer than the limit: cruising.
    SpeedLimit,
    /// Sight (night, fog) on this surface.
    Sight,
    /// Something in, or about to enter, its path (instance id).
    Obstacle(u16),
    /// A parked vehicle that may hide someone (its instance id).
    Occlusion(u16),
}

impl Because {
    /// A short phrase for logs and reasoning traces.
    pub fn describe(&self) -> String {
        match self {
            Because::SpeedLimit => "cruising at the speed limit".into(),
            Because::Sight => "slow enough to stop within what the lights show".into(),
            Because::Obstacle(i) => format!("yielding to actor {i} in or entering the lane"),
            Because::Occlusion(i) => format!("creeping: parked vehicle {i} may hide someone"),
        }
    }
}

/// One driving decision: a /cmd_vel and its reason.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// Speed asked for, m/s (linear.x).
    pub speed: f32,
    /// Yaw rate asked for, rad/s (angular.z).
    pub yaw_rate: f32,
    /// The constraint that set the speed.
    pub because: Because,
    /// The free distance it planned with, metres ahead of its bumper.
    pub free: f32,
}

/// An actor in lane coordinates: `s` along the lane, `l` to its left (of
/// its centre), its half extents along and across, its velocity likewise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InLane {
    /// Metres along the lane from its start point.
    pub s: f32,
    /// Metres to the left of the lane's centre line.
    pub l: f32,
    /// Half extent along the lane.
    pub half_s: f32,
    /// Half extent across the lane.
    pub half_l: f32,
    /// Velocity along the lane, m/s.
    pub vs: f32,
    /// Velocity across the lane (to the left), m/s.
    pub vl: f32,
    /// Faster than 0.2 m/s.
    pub moving: bool,
    /// Its instance id.
    pub instance: u16,
    /// A vehicle parked at the kerb (it may hide someone).
    pub parked: bool,
}

impl DrivingView {
    /// The unit vector to the left of the lane's direction.
    pub fn lane_left(&self) -> Vector2<f32> {
        Vector2::new(-self.lane_dir.y, self.lane_dir.x)
    }

    /// A map point in lane coordinates: (along, to the left of the centre line).
    pub fn to_lane(&self, p: Vector2<f32>) -> (f32, f32) {
        let r = p - self.lane_point;
        (r.dot(&self.lane_dir), r.dot(&self.lane_left()))
    }

    /// An actor in lane coordinates.
    pub fn in_lane(&self, a: &SeenActor) -> InLane {
        let (dir, normal) = (self.lane_dir, self.lane_left());
        let (s, l) = self.to_lane(a.position);
        InLane {
            s,
            l,
            half_s: (a.half.x * dir.x).abs() + (a.half.y * dir.y).abs(),
            half_l: (a.half.x * normal.x).abs() + (a.half.y * normal.y).abs(),
            vs: a.velocity.dot(&dir),
            vl: a.velocity.dot(&normal),
            moving: a.velocity.norm() > 0.2,
            instance: a.instance,
            parked: a.parked,
        }
    }
}

/// The lateral offset (lane frame) to drive at: the lane's centre, moved
/// over within the lane's room to pass what stands into it (a van parked
/// wide) with `STATIC_CLEARANCE` to spare, over the centre line when the
/// lane is too narrow and nothing comes the other way.
fn lateral_target(view: &DrivingView, s_ego: f32, actors: &[InLane]) -> Option<f32> {
    let (left, right) = view.room;
    let lo = right + view.half.y + 0.1;
    let hi = left - view.half.y - 0.1;
    let mut target = 0.0f32;
    let pass = 0.3;
    for a in actors.iter().filter(|a| !a.moving && a.s + a.half_s > s_ego - view.half.x && a.s - a.half_s < s_ego + LANE_PLAN) {
        let need = view.half.y + a.half_l + pass;
        if (a.l - target).abs() >= need {
            continue;
        }
        target = if a.l < target { a.l + need } else { a.l - need };
    }
    if target <= hi {
        return Some(target.max(lo));
    }
    // A wide vehicle parked into the lane: pass it over the centre line when
    // nothing comes the other way (a lane infraction, but no standstill).
    let oncoming = actors.iter().any(|a| a.moving && a.l > left && a.s > s_ego - 10.0 && a.s < s_ego + LANE_PLAN);
    if oncoming {
        Some(hi)
    } else {
        Some(target.min(left + view.half.y + 1.0))
    }
}

/// What bounds the distance a car can count on being free, as the expert
/// sees it: the nearest thing in (or about to enter) its path and the far end
/// of the nearest parked vehicle that may hide someone. These are also the
/// labels reason_node's hazard predictor learns to read from the camera.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hazards {
    /// Metres from the front bumper the car may travel before it reaches the
    /// nearest actor in its path (a lead vehicle's own stopping distance
    /// added), and that actor's instance id.
    pub obstacle: Option<(f32, u16)>,
    /// Metres from the front bumper to the far end of the nearest parked
    /// vehicle by the kerb ahead (someone hidden behind it steps out there at
    /// the latest), and its instance id.
    pub occlusion: Option<(f32, u16)>,
    /// Metres from the front bumper to the nearest actor inside the car's
    /// path now (no prediction of who will step in, no lead vehicle's own
    /// stopping distance), and its id: what one camera frame shows.
    pub in_path: Option<(f32, u16)>,
}

/// The hazards ahead of the ego in a view.
pub fn hazards(view: &DrivingView) -> Hazards {
    let (s_ego, l_ego) = view.to_lane(view.position);
    let actors: Vec<InLane> = view.actors.iter().map(|a| view.in_lane(a)).collect();
    let target_l = lateral_target(view, s_ego, &actors).unwrap_or(0.0);
    hazards_in_lane(view, s_ego, l_ego, target_l, &actors)
}

fn hazards_in_lane(view: &DrivingView, s_ego: f32, l_ego: f32, target_l: f32, actors: &[InLane]) -> Hazards {
    let front = s_ego + view.half.x;
    let brake = PLAN_GRIP * view.mu * GRAVITY;
    let mut h = Hazards { obstacle: None, occlusion: None, in_path: None };
    for a in actors {
        if a.s + a.half_s < s_ego - view.half.x {
            continue; // behind
        }
        let gap = a.s - a.half_s - front;
        let clearance = if a.moving { MOVING_CLEARANCE } else { STATIC_CLEARANCE };
        let band = view.half.y + a.half_l + clearance;
        // Where the ego will be when it gets there: still where it is for
        // what is close, on its planned line beyond.
        let (from, to) = if gap < 2.0 * view.half.x { (l_ego, target_l) } else { (target_l, target_l) };
        let (lo, hi) = (from.min(to) - band, from.max(to) + band);
        let inside = |l: f32| lo < l && l < hi;
        // In it now, or crossing into it within the horizon (constant velocity).
        let l_then = a.l + a.vl * HORIZON;
        if inside(a.l) && h.in_path.is_none_or(|(o, _)| gap < o) {
            h.in_path = Some((gap.max(0.0), a.instance));
        }
        let in_path = inside(a.l) || (a.moving && a.vl.abs() > 0.2 && a.l.min(l_then) < hi && a.l.max(l_then) > lo);
        if in_path {
            // A lead vehicle going our way keeps moving while we brake.
            let lead = if a.vs > 0.0 { a.vs * a.vs / (2.0 * brake) } else { 0.0 };
            let d = gap + lead;
            if h.obstacle.is_none_or(|(o, _)| d < o) {
                h.obstacle = Some((d, a.instance));
            }
        } else if a.parked && (a.l.abs() - a.half_l - view.half.y) < OCCLUSION_REACH {
            // Someone hidden behind it steps out at its far end at the latest.
            let far = a.s + a.half_s - front;
            if far > 0.0 && h.occlusion.is_none_or(|(d, _)| far < d) {
                h.occlusion = Some((far, a.instance));
            }
        }
    }
    h
}

/// The driving expert's decision for a view (stateless: the same view gives
/// the same command).
pub fn drive(view: &DrivingView) -> Decision {
    let (dir, normal) = (view.lane_dir, view.lane_left());
    let (s_ego, l_ego) = view.to_lane(view.position);
    let brake = PLAN_GRIP * view.mu * GRAVITY;
    let actors: Vec<InLane> = view.actors.iter().map(|a| view.in_lane(a)).collect();
    let target_l = lateral_target(view, s_ego, &actors).unwrap_or(0.0);

    let mut free = view.sight;
    let mut because = Because::Sight;
    let h = hazards_in_lane(view, s_ego, l_ego, target_l, &actors);
    if let Some((d, i)) = h.obstacle {
        if d - STOP_GAP < free {
            free = d - STOP_GAP;
            because = Because::Obstacle(i);
        }
    }
    let hidden = h.occlusion;
    let v_stop = |d: f32| (2.0 * brake * d.max(0.0)).sqrt();
    let mut speed = v_stop(free);
    if let Some((d, i)) = hidden {
        let creep = v_stop(CREEP_STOP);
        let v = v_stop(d).max(creep);
        if v < speed {
            speed = v;
            because = Because::Occlusion(i);
        }
    }
    if view.speed_limit <= speed {
        speed = view.speed_limit;
        because = Because::SpeedLimit;
    }
    // Slow down at BRAKE_GRIP, which leaves the tyres grip to steer with;
    // brake at the limit only when that would not stop it in time.
    let bound = match because {
        Because::Occlusion(_) => hidden.map_or(free, |(d, _)| d),
        _ => free,
    };
    let controlled = BRAKE_GRIP * view.mu * GRAVITY;
    let stopping = view.speed.max(0.0).powi(2) / (2.0 * controlled);
    if stopping <= bound + 1.0 || !matches!(because, Because::Obstacle(_)) {
        speed = speed.max(view.speed - controlled / SPEED_GAIN);
    }

    // Pure pursuit towards the planned line.
    let v = view.speed.max(1.0);
    let look = (LOOKAHEAD_TIME * v).max(MIN_LOOKAHEAD);
    let target = view.lane_point + dir * (s_ego + look) + normal * target_l;
    let to = target - view.position;
    let alpha = wrap(to.y.atan2(to.x) - view.yaw);
    let yaw_rate = 2.0 * view.speed * alpha.sin() / look;
    Decision { speed, yaw_rate, because, free }
}

fn wrap(a: f32) -> f32 {
    let tau = std::f32::consts::TAU;
    (a + std::f32::consts::PI).rem_euclid(tau) - std::f32::consts::PI
}
