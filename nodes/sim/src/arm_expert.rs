//! The privileged manipulation expert: it reads the simulator's ground truth
//! (the cups' poses, the arm's joints, what the gripper holds) and picks the
//! task's cup up and puts it down at the task's spot, the way a careful
//! robot programmer would script it, so that its joint commands can be
//! recorded as demonstrations and its success rate is the bar a learned
//! policy is held to.
//!
//! The grasp comes from above, the tool tilted no more than reach needs and
//! leaning outwards from the base: the fingers close across the cup
//! (tangentially), so a late touch pushes the cup sideways along the table
//! rather than towards the edge it stands near. Every phase is a straight
//! line of the grasp point, solved to joint angles by the arm's closed-form
//! inverse kinematics at every command; until the fingers close the line
//! follows the cup wherever it has moved. A grasp that does not hold is let
//! go and tried again from above.

use nalgebra::{Isometry3, Point3, UnitQuaternion, Vector3};

use crate::scenario::{ArmEgo, ArmTask};
use crate::sim::Sim;
use crate::world::{class, Motion, FINGER_HALF, GRIPPER_MAX_OPENING};

/// Distance from the flange to the point between the finger pads the cup
/// is held at, metres (the pads span the flange's last 2·FINGER_HALF[2]).
pub const TOOL_DEPTH: f32 = 2.0 * FINGER_HALF[2] - 0.02;
/// Height above the table top the cup is held at (a 0.10 m cup), metres.
const GRASP_HEIGHT: f32 = 0.055;
/// How far above the grasp the tool hovers before it goes down, metres.
const HOVER: f32 = 0.12;
/// How high the cup is carried, metres above its grasp height.
const CARRY: f32 = 0.12;
/// Tool speeds, m/s: moving in free space, and the last centimetres down.
const FAST: f32 = 0.25;
const SLOW: f32 = 0.08;
/// Speed of the cup's way down onto its spot, m/s (no stop between the
/// carry and the descent: a demonstration that rests where nothing changes
/// teaches a memoryless policy to rest there for ever).
const PLACE_SPEED: f32 = 0.12;
/// Seconds the closed fingers get to settle on the cup before it is lifted.
const SETTLE: f32 = 0.2;
/// Seconds the fingers get to close or open.
const GRIP_TIME: f32 = 0.6;
/// Tilts of the tool from straight down the expert tries, radians, least first.
const TILTS: [f32; 13] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2];
/// Share of the arm's reach it plans within, and that it moves within (the
/// difference is room for where the cup and the fingers really are).
const PLAN_REACH: f32 = 0.95;
const EXECUTE_REACH: f32 = 0.995;
/// Grasps it tries before it gives up.
const ATTEMPTS: u32 = 3;

/// A cup as the expert sees it, in the map frame.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenCup {
    /// Index in `World::objects`.
    pub object: usize,
    /// Centre, map frame.
    pub pose: Isometry3<f32>,
    /// Half extents (radius, radius, half height), metres.
    pub half: Vector3<f32>,
}

/// What a privileged arm controller knows at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmView {
    /// Sim seconds.
    pub time: f32,
    /// The arm: base in the map frame, link lengths, joint limits.
    pub arm: ArmEgo,
    /// Joint angles, radians.
    pub q: [f32; 6],
    /// The gripper's opening, metres between the pads.
    pub opening: f32,
    /// The object the gripper holds (both fingers touch it).
    pub grasped: Option<usize>,
    /// Height of the table top, map frame.
    pub table_top: f32,
    /// Half the table's length and width; the table is centred on the map's origin.
    pub table_half: [f32; 2],
    /// Every cup, in file order.
    pub cups: Vec<SeenCup>,
    /// What to do.
    pub task: ArmTask,
}

impl ArmView {
    /// The view of an arm scenario's run now; None for a driving scenario.
    pub fn of(sim: &Sim) -> Option<ArmView> {
        let world = &sim.world;
        let arm = world.arm.clone()?;
        let task = sim.scenario.task?;
        let (q, _) = sim.physics.joint_positions()?;
        let (opening, _) = sim.physics.gripper()?;
        let table = world.objects.iter().find(|o| o.class == class::TABLE)?;
        let cups = world
            .objects
            .iter()
            .enumerate()
            .filter(|(_, o)| o.class == class::CUP && matches!(o.motion, Motion::Dynamic { .. }))
            .map(|(i, o)| SeenCup { object: i, pose: sim.physics.pose(world, i), half: o.half })
            .collect();
        Some(ArmView {
            time: sim.seconds() as f32,
            arm,
            q,
            opening,
            grasped: sim.physics.grasped(),
            table_top: table.pose.translation.z + table.half.z,
            table_half: [table.half.x, table.half.y],
            cups,
            task,
        })
    }

    /// The task's cup.
    pub fn target(&self) -> Option<&SeenCup> {
        self.cups.get(self.task.pick as usize)
    }
}

/// Joint targets and the gripper's opening: one /joint_commands message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmCommand {
    /// joint1..joint6, radians.
    pub q: [f32; 6],
    /// Metres between the pads.
    pub gripper: f32,
}

/// Where the grasp point of a tool pose is: a point in the map frame, the
/// tool's tilt from straight down (leaning away from the base) and the
/// flange's roll (the fingers close across the line from the base).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToolPose {
    /// Grasp point, map frame.
    pub point: Point3<f32>,
    /// Radians from straight down.
    pub tilt: f32,
}

/// The arm's forward kinematics: the pose of each link's far end
/// (the flange for the last) in the map frame, for joint angles `q`.
pub fn forward(arm: &ArmEgo, q: &[f32; 6]) -> [Isometry3<f32>; 6] {
    let axes = crate::physics::joint_axes();
    let mut frame = Isometry3::translation(arm.base[0] as f32, arm.base[1] as f32, arm.base[2] as f32);
    let mut out = [Isometry3::identity(); 6];
    for j in 0..6 {
        frame *= UnitQuaternion::from_axis_angle(&axes[j], q[j]);
        frame *= Isometry3::translation(0.0, 0.0, arm.links[j] as f32);
        out[j] = frame;
    }
    out
}

/// The grasp point of joint angles `q`: TOOL_DEPTH beyond the flange along the tool.
pub fn grasp_point(arm: &ArmEgo, q: &[f32; 6]) -> Point3<f32> {
    forward(arm, q)[5] * Point3::new(0.0, 0.0, TOOL_DEPTH)
}

/// Closed-form inverse kinematics for a tool pose: base yaw towards the
/// point, shoulder and elbow (elbow up) put the wrist where the tilted tool
/// needs it, the wrist pitch tilts the tool, the wrist roll stays at 0 and
/// the flange roll turns the fingers to close across the line from the
/// base. None when the point is out of reach or a joint out of its limits.
pub fn inverse(arm: &ArmEgo, tool: &ToolPose) -> Option<[f32; 6]> {
    solve(arm, tool, EXECUTE_REACH)
}

/// [`inverse`] within a share `margin` of the arm's reach.
fn solve(arm: &ArmEgo, tool: &ToolPose, margin: f32) -> Option<[f32; 6]> {
    let l: Vec<f32> = arm.links.iter().map(|x| *x as f32).collect();
    let d = tool.point - Point3::new(arm.base[0] as f32, arm.base[1] as f32, arm.base[2] as f32);
    let yaw = d.y.atan2(d.x);
    let r = d.xy().norm();
    // In the arm's vertical plane: r outwards, z up from the shoulder.
    let z = d.z - l[0];
    // Tool direction at pitch θ from +z towards +r; straight down is π.
    let theta = std::f32::consts::PI - tool.tilt;
    let reach = l[4] + l[5] + TOOL_DEPTH;
    let (wr, wz) = (r - reach * theta.sin(), z - reach * theta.cos());
    let (a, b) = (l[1], l[2] + l[3]);
    let dist = (wr * wr + wz * wz).sqrt();
    if dist > margin * (a + b) || dist < (a - b).abs() + 1e-3 {
        return None;
    }
    let c2 = ((dist * dist - a * a - b * b) / (2.0 * a * b)).clamp(-1.0, 1.0);
    let q2 = c2.acos();
    let q1 = wr.atan2(wz) - (b * q2.sin()).atan2(a + b * q2.cos());
    let q4 = theta - q1 - q2;
    let q = [yaw, q1, q2, 0.0, q4, std::f32::consts::FRAC_PI_2];
    let within = q.iter().zip(&arm.limits).all(|(x, [lo, hi])| (*x as f64) >= *lo && (*x as f64) <= *hi);
    within.then_some(q)
}

/// The least tilt from straight down (from [`TILTS`]) at which every point
/// can be reached, with the joint angles at the first.
fn tilt_for(arm: &ArmEgo, points: impl Fn(f32) -> Vec<Point3<f32>>) -> Option<f32> {
    TILTS.iter().copied().find(|t| points(*t).iter().all(|p| solve(arm, &ToolPose { point: *p, tilt: *t }, PLAN_REACH).is_some()))
}

/// Where the expert is in its task.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Not started.
    Idle,
    /// To above the cup (straight in joint space, then a line down).
    Approach,
    /// Down to the grasp, following the cup.
    Descend,
    /// Closing the fingers.
    Close,
    /// Up with the cup.
    Lift,
    /// Across to above the spot.
    Carry,
    /// Down onto the table.
    Lower,
    /// Letting go.
    Release,
    /// Up and away.
    Retreat,
    /// Done (or given up): holds still.
    Done,
}

/// The manipulation expert: call [`ArmExpert::act`] at the command rate.
#[derive(Debug, Clone)]
pub struct ArmExpert {
    phase: Phase,
    /// When the phase began, sim seconds.
    since: f32,
    /// The grasp point and the joint angles the phase started from.
    from: Point3<f32>,
    from_q: [f32; 6],
    /// The tool's tilt for this attempt.
    tilt: f32,
    attempts: u32,
    last: Option<ArmCommand>,
}

impl Default for ArmExpert {
    fn default() -> Self {
        ArmExpert { phase: Phase::Idle, since: 0.0, from: Point3::origin(), from_q: [0.0; 6], tilt: 0.0, attempts: 0, last: None }
    }
}

impl ArmExpert {
    /// Whether it has finished (placed the cup, or given up).
    pub fn done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// What it is doing, in a word (for logs): idle, approach, descend,
    /// close, lift, carry, lower, release, retreat or done.
    pub fn phase(&self) -> &'static str {
        match self.phase {
            Phase::Idle => "idle",
            Phase::Approach => "approach",
            Phase::Descend => "descend",
            Phase::Close => "close",
            Phase::Lift => "lift",
            Phase::Carry => "carry",
            Phase::Lower => "lower",
            Phase::Release => "release",
            Phase::Retreat => "retreat",
            Phase::Done => "done",
        }
    }

    /// The next joint targets and gripper opening.
    pub fn act(&mut self, v: &ArmView) -> ArmCommand {
        let hold = self.last.unwrap_or(ArmCommand { q: v.q, gripper: v.opening });
        let Some(cup) = v.target().cloned() else {
            self.phase = Phase::Done;
            return hold;
        };
        let top = v.table_top;
        let grasp_at = |c: &SeenCup| Point3::new(c.pose.translation.x, c.pose.translation.y, top + GRASP_HEIGHT);
        let place = Point3::new(v.task.place[0] as f32, v.task.place[1] as f32, top + GRASP_HEIGHT + 0.003);
        let up = Vector3::z() * CARRY;
        let now = v.time;
        let here = grasp_point(&v.arm, &v.q);
        let cmd = loop {
            let elapsed = now - self.since;
            match self.phase {
                Phase::Idle => {
                    let g = grasp_at(&cup);
                    let points = |t: f32| vec![g, g + hover_dir(v, g, t), g + up, place + up, place, place + hover_dir(v, place, t)];
                    let Some(tilt) = tilt_for(&v.arm, points) else {
                        self.phase = Phase::Done;
                        break hold;
                    };
                    self.tilt = tilt;
                    self.begin(Phase::Approach, now, here, v.q);
                }
                Phase::Approach => {
                    let g = grasp_at(&cup);
                    let hover = g + hover_dir(v, g, self.tilt);
                    let Some(goal) = inverse(&v.arm, &ToolPose { point: hover, tilt: self.tilt }) else {
                        self.phase = Phase::Done;
                        break hold;
                    };
                    // Joint space from wherever it was, at about FAST at the tool.
                    let span = ((hover - self.from).norm() / FAST).max(1.0);
                    let k = smooth(elapsed / span);
                    if k >= 1.0 && settled(&v.q, &goal, 0.03) {
                        self.begin(Phase::Descend, now, hover, goal);
                        continue;
                    }
                    let mut q = [0.0; 6];
                    for j in 0..6 {
                        q[j] = self.from_q[j] + (goal[j] - self.from_q[j]) * k;
                    }
                    break ArmCommand { q, gripper: GRIPPER_MAX_OPENING };
                }
                Phase::Descend => {
                    let g = grasp_at(&cup);
                    let t_line = (g - self.from).norm() / SLOW;
                    let arrived = elapsed >= t_line && (here - g).norm() < 0.008 || elapsed >= t_line + 1.0;
                    match self.line(v, self.from, g, SLOW, true, elapsed, GRIPPER_MAX_OPENING) {
                        Some(c) if !arrived => break c,
                        Some(_) => self.begin(Phase::Close, now, g, v.q),
                        None => {
                            self.phase = Phase::Done;
                            break hold;
                        }
                    }
                }
                Phase::Close => {
                    let q = self.last.map_or(v.q, |c| c.q);
                    // Up as soon as the fingers hold (and have settled): a
                    // demonstration that waits where nothing changes teaches a
                    // policy without memory to wait for ever.
                    if v.grasped == Some(cup.object) && elapsed >= SETTLE {
                        self.begin(Phase::Lift, now, here, v.q);
                        continue;
                    }
                    if elapsed < GRIP_TIME {
                        break ArmCommand { q, gripper: 0.0 };
                    }
                    // Missed: open, back up, try again from the cup's pose now.
                    self.attempts += 1;
                    self.phase = if self.attempts >= ATTEMPTS { Phase::Done } else { Phase::Idle };
                    self.since = now;
                    if self.phase == Phase::Done {
                        break ArmCommand { q, gripper: GRIPPER_MAX_OPENING };
                    }
                }
                Phase::Lift => match self.line(v, self.from, self.from + up, FAST, true, elapsed, 0.0) {
                    Some(c) if elapsed * FAST < CARRY => break c,
                    Some(_) => self.begin(Phase::Carry, now, self.from + up, v.q),
                    None => {
                        self.phase = Phase::Done;
                        break hold;
                    }
                },
                Phase::Carry => {
                    let to = place + up;
                    let t_line = (to - self.from).norm() / FAST;
                    let arrived = elapsed >= t_line && (here - to).norm() < 0.01 || elapsed >= t_line + 1.0;
                    match self.line(v, self.from, to, FAST, false, elapsed, 0.0) {
                        Some(c) if !arrived => break c,
                        Some(_) => self.begin(Phase::Lower, now, to, v.q),
                        None => {
                            self.phase = Phase::Done;
                            break hold;
                        }
                    }
                }
                Phase::Lower => {
                    let t_line = (place - self.from).norm() / PLACE_SPEED;
                    let arrived = elapsed >= t_line && (here - place).norm() < 0.008 || elapsed >= t_line + 1.0;
                    match self.line(v, self.from, place, PLACE_SPEED, false, elapsed, 0.0) {
                        Some(c) if !arrived => break c,
                        Some(_) => self.begin(Phase::Release, now, place, v.q),
                        None => {
                            self.phase = Phase::Done;
                            break hold;
                        }
                    }
                }
                Phase::Release => {
                    let q = self.last.map_or(v.q, |c| c.q);
                    if elapsed < GRIP_TIME {
                        break ArmCommand { q, gripper: GRIPPER_MAX_OPENING };
                    }
                    let from = self.from;
                    self.begin(Phase::Retreat, now, from, v.q);
                }
                Phase::Retreat => {
                    let to = self.from + hover_dir(v, self.from, self.tilt);
                    match self.line(v, self.from, to, FAST, true, elapsed, GRIPPER_MAX_OPENING) {
                        Some(c) if elapsed * FAST < HOVER + 0.2 => break c,
                        _ => {
                            self.phase = Phase::Done;
                            self.since = now;
                        }
                    }
                }
                Phase::Done => break hold,
            }
        };
        self.last = Some(cmd);
        cmd
    }

    fn begin(&mut self, phase: Phase, now: f32, from: Point3<f32>, from_q: [f32; 6]) {
        self.phase = phase;
        self.since = now;
        self.from = from;
        self.from_q = from_q;
    }

    /// The joint angles `elapsed` seconds along the line from `a` to `b` at `speed`.
    /// Eased lines start and stop at rest; the others keep `speed`
    /// throughout, so that the carry runs straight on into the descent.
    #[allow(clippy::too_many_arguments)]
    fn line(&self, v: &ArmView, a: Point3<f32>, b: Point3<f32>, speed: f32, eased: bool, elapsed: f32, gripper: f32) -> Option<ArmCommand> {
        let len = (b - a).norm();
        let k = if len < 1e-6 { 1.0 } else { (elapsed * speed / len).clamp(0.0, 1.0) };
        let k = if eased { smooth(k) } else { k };
        let p = a + (b - a) * k;
        inverse(&v.arm, &ToolPose { point: p, tilt: self.tilt }).map(|q| ArmCommand { q, gripper })
    }
}

/// Back along the tool from a grasp point: HOVER metres up the tool's axis.
fn hover_dir(v: &ArmView, g: Point3<f32>, tilt: f32) -> Vector3<f32> {
    let out = g.coords.xy() - nalgebra::Vector2::new(v.arm.base[0] as f32, v.arm.base[1] as f32);
    let out = if out.norm() > 1e-6 { out.normalize() } else { nalgebra::Vector2::x() };
    // The tool points down and outwards; back along it is up and inwards.
    Vector3::new(-out.x * tilt.sin(), -out.y * tilt.sin(), tilt.cos()) * HOVER
}

/// Eases 0..1 in and out (zero velocity at both ends).
fn smooth(k: f32) -> f32 {
    let k = k.clamp(0.0, 1.0);
    k * k * (3.0 - 2.0 * k)
}

/// Whether every joint is within `tol` radians of its goal.
fn settled(q: &[f32; 6], goal: &[f32; 6], tol: f32) -> bool {
    q.iter().zip(goal).all(|(a, b)| (a - b).abs() < tol)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm() -> ArmEgo {
        ArmEgo {
            base: [-0.45, 0.0, 0.75],
            links: [0.20, 0.35, 0.30, 0.08, 0.08, 0.06],
            limits: [[-3.1, 3.1], [-1.9, 1.9], [-2.6, 2.6], [-3.1, 3.1], [-2.0, 2.0], [-3.1, 3.1]],
            initial: [0.0; 6],
            trajectory: vec![],
        }
    }

    #[test]
    fn inverse_kinematics_puts_the_grasp_point_where_asked() {
        let a = arm();
        for (x, y, z) in [(0.25, 0.30, 0.81), (-0.1, 0.12, 0.81), (0.0, -0.3, 0.95), (0.2, 0.0, 0.9)] {
            let point = Point3::new(x, y, z);
            let tilt = tilt_for(&a, |_| vec![point]).expect("reachable");
            let q = inverse(&a, &ToolPose { point, tilt }).unwrap();
            let got = grasp_point(&a, &q);
            assert!((got - point).norm() < 1e-4, "{point} → {q:?} → {got}");
            // The tool points down, tilted by `tilt`.
            let axis = forward(&a, &q)[5] * Vector3::z();
            assert!((axis.z + tilt.cos()).abs() < 1e-4, "tool axis {axis} for tilt {tilt}");
            // The fingers close horizontally.
            let close = forward(&a, &q)[5] * Vector3::x();
            assert!(close.z.abs() < 1e-4, "closing axis {close}");
        }
    }

    #[test]
    fn out_of_reach_is_none() {
        let a = arm();
        assert!(inverse(&a, &ToolPose { point: Point3::new(1.5, 0.0, 0.8), tilt: 0.0 }).is_none());
        assert!(tilt_for(&a, |_| vec![Point3::new(1.5, 0.0, 0.8)]).is_none());
    }
}
