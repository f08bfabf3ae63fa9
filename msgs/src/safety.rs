//! The safety filter: a command projected onto what a reasoning chain's
//! constraints (`sim2real_msgs/Reasoning`) allow, so that any driver (a
//! learned policy, a script, a person at the keyboard) keeps to them: a
//! vehicle's velocity onto its `max_speed` ([`filter_twist`]), an arm's
//! joint targets onto its `keep_out` regions ([`filter_joints`]).
//!
//! ```
//! use sim2real_msgs::safety::filter_twist;
//! use sim2real_msgs::sim2real_msgs::msg::{Constraint, Reasoning};
//! let r = Reasoning {
//!     situation: "creeping past a parked car on ice".into(),
//!     constraints: vec![Constraint { name: "max_speed".into(), value: 4.0, unit: "m/s".into(), confidence: 0.9, ..Default::default() }],
//!     ..Default::default()
//! };
//! let f = filter_twist(10.0, 0.2, &r);
//! assert_eq!(f.linear, 4.0);
//! assert!((f.angular - 0.08).abs() < 1e-12, "the same curvature, slower");
//! assert!(f.changed);
//! ```

use crate::sim2real_msgs::msg::Reasoning;

/// A command after the filter.
#[derive(Clone, Debug, PartialEq)]
pub struct Filtered {
    /// Forward speed, m/s.
    pub linear: f64,
    /// Yaw rate, rad/s.
    pub angular: f64,
    /// Whether the filter changed the command.
    pub changed: bool,
}

/// The speed limit a chain sets (its `max_speed` constraint; the lowest if several).
pub fn max_speed(r: &Reasoning) -> Option<f64> {
    r.constraints.iter().filter(|c| c.name == "max_speed" && c.value.is_finite()).map(|c| c.value as f64).reduce(f64::min)
}

/// `linear` (m/s) and `angular` (rad/s) within the chain's `max_speed`:
/// forward speed above the limit comes down to it and the yaw rate with it in
/// proportion, so that the car keeps to the path it was steering (the same
/// curvature, driven slower). Reversing and commands within the limit pass
/// unchanged.
pub fn filter_twist(linear: f64, angular: f64, r: &Reasoning) -> Filtered {
    match max_speed(r) {
        Some(limit) if linear > limit.max(0.0) => {
            let limit = limit.max(0.0);
            Filtered { linear: limit, angular: angular * limit / linear, changed: true }
        }
        _ => Filtered { linear, angular, changed: false },
    }
}

/// A finger point's motion counts as a push along a keep-out's heading when
/// at least this share of it is along the heading (within about 45°): the
/// sweep that drops the cup, not a grasp coming down beside it from another side.
const ALONG: f32 = 0.7;
/// Points along the way from the arm's joints to a command's that the filter checks.
const PATH_SAMPLES: usize = 8;
/// Metres above the protected object's top (the arm's lag behind its
/// targets) below which a finger can still push it.
const ABOVE: f32 = 0.03;
/// Metres beside the object's edge a finger point counts as over it.
const OVER: f32 = 0.01;

/// Whether a point (x, y) lies inside a convex region given counter-clockwise.
pub fn inside(region: &[[f32; 2]], at: [f32; 2]) -> bool {
    region.len() >= 3
        && (0..region.len()).all(|i| {
            let (a, b) = (region[i], region[(i + 1) % region.len()]);
            (b[0] - a[0]) * (at[1] - a[1]) - (b[1] - a[1]) * (at[0] - a[0]) >= 0.0
        })
}

/// The points of a parallel-jaw gripper that push, as [`filter_joints`]
/// takes them: each finger's tip and the point 2 cm above it, the fingers
/// `thickness` thick either side of the `opening` (metres), hanging
/// `length` from the flange along its z and closing along its x. `place`
/// puts a point of the flange's frame into the chain's frame.
pub fn finger_points(opening: f32, thickness: f32, length: f32, place: impl Fn([f32; 3]) -> [f32; 3]) -> Vec<[f32; 3]> {
    let side = opening / 2.0 + thickness / 2.0;
    [-side, side].into_iter().flat_map(|x| [[x, 0.0, length - 0.02], [x, 0.0, length]]).map(place).collect()
}

/// A chain's `keep_out` constraint as the joint filter reads it.
struct KeepOut {
    region: Vec<[f32; 2]>,
    /// The object's centre on the ground, its radius, and the height below which a finger pushes it.
    at: [f32; 2],
    radius: f32,
    low: f32,
    heading: [f32; 2],
}

/// The keep-out regions of a chain that name the object they protect
/// (`target_radius` > 0, a region of three points or more).
fn keep_outs(r: &Reasoning) -> Vec<KeepOut> {
    r.constraints
        .iter()
        .filter(|c| c.name == "keep_out" && c.target_radius > 0.0 && c.region.len() >= 3 && c.heading.is_finite())
        .map(|c| {
            let top = c.region[0].z as f32;
            KeepOut {
                region: c.region.iter().map(|p| [p.x as f32, p.y as f32]).collect(),
                at: [c.target.x as f32, c.target.y as f32],
                radius: c.target_radius,
                // The target is the object's centre: its top is as far above it as the region is below.
                low: top + 2.0 * (c.target.z as f32 - top).max(0.0) + ABOVE,
                heading: [c.heading.cos(), c.heading.sin()],
            }
        })
        .collect()
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// An arm's joint targets `cmd` within a chain's `keep_out` constraints.
///
/// `fingers` gives the points of the gripper that can push
/// ([`finger_points`]), in the chain header's frame, for joint angles `q`; `now` are
/// the arm's measured joint angles. The command is refused when, on the way
/// there, a finger point low over the table (below the protected object's
/// top and a margin) would move towards the object from a kept-out side:
/// into its footprint from the side, or on from inside the keep-out region,
/// mostly along the constraint's `heading`, on a line that meets the object
/// (`margin`: how far beside its edge a finger still meets it). The joints
/// do not arrive together, so the way is checked as a straight line in
/// joint space and with the base (joint 0) turning first, the way a low
/// sweep knocks a cup over. A refused command is projected: sent without
/// the base's turn when that way is clear, else the arm is held at `now`.
/// Coming down on the object from above, moving away from it and motion
/// high over the table pass; finger points that cannot be placed (none, or
/// not finite numbers) count as a push, the conservative side. Returns the
/// targets to send and whether the filter changed them.
pub fn filter_joints(
    now: &[f32; 6],
    cmd: [f32; 6],
    r: &Reasoning,
    margin: f32,
    fingers: impl Fn(&[f32; 6]) -> Vec<[f32; 3]>,
) -> ([f32; 6], bool) {
    let keep = keep_outs(r);
    if keep.is_empty() {
        return (cmd, false);
    }
    let towards = |before: &[[f32; 3]], after: &[[f32; 3]]| {
        after.iter().zip(before).any(|(p, b)| {
            let moved = [p[0] - b[0], p[1] - b[1]];
            let step = (moved[0] * moved[0] + moved[1] * moved[1]).sqrt();
            step > 0.0005
                && keep.iter().any(|k| {
                    let (d, was) = (dist([p[0], p[1]], k.at), dist([b[0], b[1]], k.at));
                    let over = |d: f32| d < k.radius + OVER;
                    // Into the footprint from the side (not from above), or on inside the band.
                    let into = over(d) && !over(was) && b[2] < k.low;
                    // Where the finger's way, carried on, passes the centre: a push only if it meets the object.
                    let dir = [moved[0] / step, moved[1] / step];
                    let to = [k.at[0] - p[0], k.at[1] - p[1]];
                    let miss = (dir[0] * to[1] - dir[1] * to[0]).abs();
                    let meets = dir[0] * to[0] + dir[1] * to[1] > 0.0 && miss < k.radius + margin;
                    let along = (moved[0] * k.heading[0] + moved[1] * k.heading[1]) / step;
                    p[2] < k.low && (into || (!over(d) && inside(&k.region, [p[0], p[1]]))) && meets && d < was - 0.0005 && along > ALONG
                })
        })
    };
    // Where the fingers are now: the start of every way checked.
    let start = fingers(now);
    let pushes_to = |q: &[f32; 6]| {
        let straight = |s: f32| -> [f32; 6] { std::array::from_fn(|j| now[j] + (q[j] - now[j]) * s) };
        let base_first = |s: f32| -> [f32; 6] {
            let (turn, rest) = ((2.0 * s).min(1.0), (2.0 * s - 1.0).max(0.0));
            std::array::from_fn(|j| now[j] + (q[j] - now[j]) * if j == 0 { turn } else { rest })
        };
        let ways: [&dyn Fn(f32) -> [f32; 6]; 2] = [&straight, &base_first];
        let placed = |p: &[[f32; 3]]| !p.is_empty() && p.iter().flatten().all(|v| v.is_finite());
        ways.iter().any(|way| {
            let mut before = start.clone();
            (1..=PATH_SAMPLES).any(|k| {
                let after = fingers(&way(k as f32 / PATH_SAMPLES as f32));
                let hit = !placed(&before) || !placed(&after) || before.len() != after.len() || towards(&before, &after);
                before = after;
                hit
            })
        })
    };
    if !pushes_to(&cmd) {
        return (cmd, false);
    }
    let mut unturned = cmd;
    unturned[0] = now[0];
    if !pushes_to(&unturned) {
        return (unturned, true);
    }
    (*now, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim2real_msgs::msg::Constraint;

    fn chain(limits: &[f32]) -> Reasoning {
        Reasoning {
            constraints: limits
                .iter()
                .map(|v| Constraint { name: "max_speed".into(), value: *v, unit: "m/s".into(), confidence: 1.0, ..Default::default() })
                .chain([Constraint { name: "stop_distance".into(), value: 1.0, unit: "m".into(), confidence: 1.0, ..Default::default() }])
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn speed_comes_down_to_the_lowest_limit_keeping_the_curvature() {
        let f = filter_twist(12.0, 0.3, &chain(&[6.0, 3.0]));
        assert_eq!(f.linear, 3.0);
        assert!((f.angular / f.linear - 0.3 / 12.0).abs() < 1e-12);
        assert!(f.changed);
    }

    #[test]
    fn commands_within_the_limit_reversing_and_chains_without_one_pass() {
        assert!(!filter_twist(2.0, 0.3, &chain(&[6.0])).changed);
        assert!(!filter_twist(-1.0, 0.3, &chain(&[0.0])).changed);
        assert!(!filter_twist(20.0, 0.3, &chain(&[])).changed);
        assert!(!filter_twist(20.0, 0.3, &chain(&[f32::NAN])).changed);
        // A stop constraint stops: no forward motion, no turning on the spot.
        let f = filter_twist(5.0, 0.4, &chain(&[0.0]));
        assert_eq!((f.linear, f.angular), (0.0, 0.0));
    }

    /// A toy arm: the base turns (joint 0), the finger reaches out (joint 1) and rises (joint 2).
    fn finger(q: &[f32; 6]) -> Vec<[f32; 3]> {
        vec![[q[1] * q[0].cos(), q[1] * q[0].sin(), q[2]]]
    }

    /// Joint angles putting the toy's finger at (x, y, z).
    fn at(x: f32, y: f32, z: f32) -> [f32; 6] {
        [y.atan2(x), x.hypot(y), z, 0.0, 0.0, 0.0]
    }

    /// A chain keeping pushes along +y off a 10 cm cup of radius 4 cm at (0.5, 0.2) on a table at z 0.
    fn cup_chain(radius: f32) -> Reasoning {
        use crate::geometry_msgs::msg::Point;
        let p = |x: f64, y: f64| Point { x, y, z: 0.0 };
        Reasoning {
            constraints: vec![Constraint {
                name: "keep_out".into(),
                value: 0.99,
                confidence: 0.9,
                // Behind the cup along the push: y from 0.05 to 0.2, counter-clockwise.
                region: vec![p(0.58, 0.05), p(0.58, 0.2), p(0.42, 0.2), p(0.42, 0.05)],
                target: Point { x: 0.5, y: 0.2, z: 0.05 },
                target_radius: radius,
                heading: std::f32::consts::FRAC_PI_2,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn an_arm_is_kept_from_pushing_a_cup_from_the_kept_out_side() {
        let r = cup_chain(0.04);
        // Low on the cup's kept-out side, asked to sweep through it: sent without the base's turn.
        let (now, through) = (at(0.5, 0.10, 0.05), at(0.5, 0.24, 0.05));
        let (q, changed) = filter_joints(&now, through, &r, 0.018, finger);
        assert!(changed && q[0] == now[0] && q[1] == through[1], "{q:?}");
        // Away from it, above it, and coming down on it from above: let be.
        for (from, to) in [(now, at(0.5, 0.02, 0.05)), (at(0.5, 0.10, 0.30), at(0.5, 0.24, 0.30)), (at(0.5, 0.2, 0.30), at(0.5, 0.2, 0.06))]
        {
            assert_eq!(filter_joints(&from, to, &r, 0.018, finger), (to, false), "{from:?} -> {to:?}");
        }
        // Reaching out through the cup along the push, with no turn to leave out: held where it is.
        let (now, out) = (at(0.0, 0.1, 0.05), at(0.0, 0.3, 0.05));
        let r2 = Reasoning {
            constraints: vec![Constraint {
                region: [[0.08, 0.05], [0.08, 0.2], [-0.08, 0.2], [-0.08, 0.05]]
                    .iter()
                    .map(|[x, y]| crate::geometry_msgs::msg::Point { x: *x, y: *y, z: 0.0 })
                    .collect(),
                target: crate::geometry_msgs::msg::Point { x: 0.0, y: 0.2, z: 0.05 },
                ..r.constraints[0].clone()
            }],
            ..Default::default()
        };
        assert_eq!(filter_joints(&now, out, &r2, 0.018, finger), (now, true));
        // Fingers that cannot be placed: held.
        assert_eq!(filter_joints(&now, out, &r2, 0.018, |_| vec![[f32::NAN, 0.0, 0.0]]), (now, true));
        assert_eq!(filter_joints(&now, out, &r2, 0.018, |_| Vec::new()), (now, true));
        // A keep-out that names no object, or a chain without one, constrains no joints.
        assert_eq!(filter_joints(&now, through, &cup_chain(0.0), 0.018, finger), (through, false));
        assert_eq!(filter_joints(&now, through, &chain(&[1.0]), 0.018, finger), (through, false));
    }
}
