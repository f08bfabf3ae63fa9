//! The arm's reasoning in the loop: where the cups stand, read from the
//! robot's camera (perception's cup detections, placed on the table top
//! through the camera's calibration), what a sweep from each side would do
//! to each of them (reason_node's cup outcome predictor), and a safety
//! filter that refuses joint commands driving the fingers into a cup from
//! a side that would push it off the table.

use nalgebra::{Isometry3, Point3};
use s2r_perception::predict::{FrameRef, Predictor};
use s2r_reason::cup::{self, Table};
use s2r_reason::node::Reasoner;
use s2r_reason::tabletop::{self, Tabletop, CUP_SIZE};
use s2r_sim::arm_expert::{forward, ArmView, TOOL_DEPTH};
use s2r_sim::sim::{CameraFrame, Sim};
use s2r_sim::world::FINGER_HALF;
use sim2real_msgs::sim2real_msgs::msg::Reasoning;

use crate::ClosedLoopError;

/// Detections of a cup below this confidence are not taken.
const MIN_SCORE: f32 = 0.15;
/// A sighting within this distance (m, on the table) of the arm's base, a joint or its fingers is the arm.
const ARM_CLEARANCE: f32 = 0.10;
/// Finger points below this height above the table top (a cup's top and a margin for the
/// arm's lag behind its targets) can push a cup.
const LOW: f32 = CUP_SIZE[1] + 0.03;
/// A finger's motion counts as a push along a keep-out's heading when at least this share
/// of it is along the heading (within about 45°): the sweep that drops the cup, not a
/// grasp coming down beside it from another side.
const ALONG: f32 = 0.7;
/// Points along the way from the arm's joints to a command's that the filter checks.
const PATH_SAMPLES: usize = 8;

fn err(message: String) -> ClosedLoopError {
    ClosedLoopError::Driver { driver: "reason".into(), message }
}

/// Finds cups in a camera frame with a perception checkpoint.
pub struct CupLocator {
    predictor: Predictor,
    class: usize,
}

impl CupLocator {
    /// Loads a perception checkpoint that detects cups.
    pub fn load(path: &std::path::Path) -> Result<CupLocator, ClosedLoopError> {
        let ck = s2r_perception::checkpoint::read(path).map_err(|e| err(e.to_string()))?;
        let class = ck
            .meta
            .config
            .det_classes
            .iter()
            .position(|c| c == "cup")
            .ok_or_else(|| err(format!("{}: the perception model does not detect cups", path.display())))?;
        let device = candle_core::Device::Cpu;
        let net = ck.net(&device).map_err(|e| err(e.to_string()))?;
        Ok(CupLocator { predictor: Predictor { net, device, threshold: MIN_SCORE, max_detections: 20 }, class })
    }

    /// The cups a frame shows, in the map frame: each box is cast through
    /// the camera's intrinsics (its `camera_info`) and pose `optical_in_map`
    /// to the depth its camera measured there (an RGB-D camera, as arm cells
    /// have: the nearer part of the box's middle, the cup's front), and a
    /// cup's radius beyond; without a depth image, onto the plane half a cup
    /// above the table top `table_top`. Returns (x, y, confidence).
    pub fn locate(
        &self,
        frame: &CameraFrame,
        optical_in_map: &Isometry3<f32>,
        table_top: f32,
    ) -> Result<Vec<([f32; 2], f32)>, ClosedLoopError> {
        let topic = format!("/sim/{}/image_raw", frame.name);
        let rgb = s2r_image::rgb8(&frame.image, &topic).map_err(|e| err(e.to_string()))?;
        let k = &frame.info.k;
        let (fx, fy, cx, cy) = (k[0] as f32, k[4] as f32, k[2] as f32, k[5] as f32);
        let (w, h) = (frame.image.width as usize, frame.image.height as usize);
        let pred = self.predictor.predict(&[FrameRef { rgb: &rgb, w, h, fx: Some(fx) }], false).map_err(|e| err(e.to_string()))?;
        // Metres per pixel (32FC1, or 16UC1 millimetres); unreadable or of another size: none.
        let depth = s2r_image::depth_m(&frame.depth, &format!("/sim/{}/depth", frame.name)).ok();
        let camera = tabletop::Camera { fx, fy, cx, cy, size: (w, h), optical_in_table: *optical_in_map, depth: depth.as_deref() };
        let out = pred
            .into_iter()
            .flat_map(|p| p.detections)
            .filter(|d| d.class == self.class)
            .filter_map(|d| tabletop::place(&camera, &d.bbox, table_top).map(|at| (at, d.score)))
            .collect();
        Ok(out)
    }
}

/// The cups seen so far, the chains written for them and the filter that
/// applies their keep-out regions to joint commands.
#[derive(Default)]
pub struct ArmReasoning {
    /// The cups, merged over looks, with their keep-out regions.
    pub table: Tabletop,
    /// How far the arm reaches low over the table, found at the first look
    /// (the arm and the table do not change within an episode).
    reach: Option<f32>,
}

impl ArmReasoning {
    /// Merges a look's sightings into the cups known (a cup not seen this
    /// time, perhaps behind the arm, is kept where it was last seen) and
    /// reasons about each; returns the chain of the cup most at risk.
    pub fn look(
        &mut self,
        reasoner: &Reasoner,
        sightings: &[([f32; 2], f32)],
        view: &ArmView,
        header: sim2real_msgs::std_msgs::msg::Header,
    ) -> Result<Option<Reasoning>, ClosedLoopError> {
        // Not the arm itself: a sighting beside its base, a joint or its fingers (their
        // positions from its joint states) is a part of it, or a cup half hidden by it.
        let base = Point3::new(view.arm.base[0] as f32, view.arm.base[1] as f32, view.arm.base[2] as f32);
        let frames = forward(&view.arm, &view.q);
        let tool = [frames[5] * Point3::new(0.0, 0.0, TOOL_DEPTH), frames[5] * Point3::new(0.0, 0.0, TOOL_DEPTH + 0.02)];
        let joints: Vec<Point3<f32>> = std::iter::once(base).chain(frames.iter().map(|f| f * Point3::origin())).chain(tool).collect();
        let own = |at: &[f32; 2]| joints.iter().any(|j| dist([j.x, j.y], *at) < ARM_CLEARANCE);
        let reach = *self.reach.get_or_insert_with(|| s2r_sim::consequences::reach(view, view.table_top + 0.05));
        let table = Table { half: view.table_half, arm: [view.arm.base[0] as f32, view.arm.base[1] as f32], reach };
        self.table.merge(sightings, &table, |at| !own(at));
        self.table.reason(reasoner, &table, view.table_top, header).map_err(|e| err(e.to_string()))
    }

    /// Filters joint targets `q`: refused (the arm held where it is) when,
    /// on the way from where it is to them, a finger point low over the table
    /// would move towards a cup inside that cup's keep-out region or its
    /// footprint: the start of a push from the side that drops it. Coming
    /// down on a cup from above, and moving away from it, are let be.
    /// Returns the targets to send and whether they were changed.
    pub fn filter(&mut self, view: &ArmView, q: [f32; 6]) -> ([f32; 6], bool) {
        // The fingers: the middle of the pads and their tips, each finger (across the flange's x).
        let side = view.opening / 2.0 + FINGER_HALF[0];
        let points = |q: &[f32; 6]| {
            let flange = forward(&view.arm, q)[5];
            let tip = 2.0 * FINGER_HALF[2];
            [-side, side].map(|x| [flange * Point3::new(x, 0.0, TOOL_DEPTH), flange * Point3::new(x, 0.0, tip)])
        };
        let points = |q: &[f32; 6]| {
            let [a, b] = points(q);
            [a[0], a[1], b[0], b[1]]
        };
        let towards = |before: &[Point3<f32>; 4], after: &[Point3<f32>; 4]| {
            after.iter().zip(before).any(|(p, b)| {
                let moved = [p.x - b.x, p.y - b.y];
                let step = (moved[0] * moved[0] + moved[1] * moved[1]).sqrt();
                p.z < view.table_top + LOW
                    && step > 0.0005
                    && self.table.cups.iter().any(|c| {
                        let (d, was) = (dist([p.x, p.y], c.cup.at), dist([b.x, b.y], c.cup.at));
                        let over = |d: f32| d < c.cup.size[0] + 0.01;
                        // Into the footprint from the side (not from above), or on inside a band.
                        let into = over(d) && !over(was) && b.z < view.table_top + LOW;
                        // Where the finger's way, carried on, passes the cup's centre: a push only if it meets the cup.
                        let dir = [moved[0] / step, moved[1] / step];
                        let to = [c.cup.at[0] - p.x, c.cup.at[1] - p.y];
                        let miss = (dir[0] * to[1] - dir[1] * to[0]).abs();
                        let meets = dir[0] * to[0] + dir[1] * to[1] > 0.0 && miss < c.cup.size[0] + FINGER_HALF[0] + 0.01;
                        c.keep_out.iter().any(|(r, heading)| {
                            let along = (moved[0] * heading.cos() + moved[1] * heading.sin()) / step;
                            (into || (!over(d) && cup::inside(r, [p.x, p.y]))) && meets && d < was - 0.0005 && along > ALONG
                        })
                    })
            })
        };
        // The arm's joints do not arrive together: the way is checked as a straight line in
        // joint space and with the base turning first (the arm swinging round low before it
        // lifts, the way a sweep knocks a cup over).
        let pushes_to = |q: &[f32; 6]| {
            let straight = |s: f32| -> [f32; 6] { std::array::from_fn(|j| view.q[j] + (q[j] - view.q[j]) * s) };
            let base_first = |s: f32| -> [f32; 6] {
                let (turn, rest) = ((2.0 * s).min(1.0), (2.0 * s - 1.0).max(0.0));
                std::array::from_fn(|j| view.q[j] + (q[j] - view.q[j]) * if j == 0 { turn } else { rest })
            };
            let ways: [&dyn Fn(f32) -> [f32; 6]; 2] = [&straight, &base_first];
            ways.iter().any(|way| {
                let mut before = points(&view.q);
                (1..=PATH_SAMPLES).any(|k| {
                    let after = points(&way(k as f32 / PATH_SAMPLES as f32));
                    let hit = towards(&before, &after);
                    before = after;
                    hit
                })
            })
        };
        if !pushes_to(&q) {
            return (q, false);
        }
        // Projected: the command without the base's turn (the fingers still come down and
        // reach out, they do not sweep), else the arm held where it is.
        let mut unturned = q;
        unturned[0] = view.q[0];
        if !pushes_to(&unturned) {
            return (unturned, true);
        }
        (view.q, true)
    }
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// Where camera `name`'s optical frame is in the map.
pub fn optical_in_map(sim: &Sim, name: &str) -> Option<Isometry3<f32>> {
    sim.mounts.iter().find(|m| m.model.name == name).map(|m| sim.base_pose() * m.optical_in_base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use s2r_reason::cup::Cup;
    use s2r_reason::tabletop::SeenCup;
    use s2r_sim::arm_expert::{inverse, ToolPose};
    use s2r_sim::scenario::Scenario;
    use s2r_sim::sim::SimOptions;

    fn view() -> ArmView {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/scenarios/cup_near_edge.yaml");
        let sim = Sim::new(Scenario::load(&path).unwrap(), &SimOptions { seed: 1, image_scale: 1.0, render: false }).unwrap();
        ArmView::of(&sim).unwrap()
    }

    /// Joint angles that put the grasp point at (x, y), `z` above the table.
    fn at(v: &ArmView, x: f32, y: f32, z: f32) -> [f32; 6] {
        [0.0, 0.2, 0.4, 0.6]
            .iter()
            .find_map(|t| inverse(&v.arm, &ToolPose { point: Point3::new(x, y, v.table_top + z), tilt: *t }))
            .unwrap_or_else(|| panic!("({x}, {y}, {z}) out of reach"))
    }

    #[test]
    fn the_filter_holds_a_sweep_from_the_kept_out_side_and_lets_the_rest_be() {
        let mut v = view();
        // A cup 6 cm from the left edge (+y), kept out of from the right: a push along +y drops it.
        let cup = Cup { at: [0.1, 0.30], size: CUP_SIZE };
        let heading = std::f32::consts::FRAC_PI_2;
        let seen = SeenCup { cup, score: 0.9, weight: 0.9, keep_out: vec![(cup::keep_out(&cup, heading).to_vec(), heading)] };
        let mut arm = ArmReasoning { table: Tabletop { cups: vec![seen] }, ..Default::default() };
        // Fingers low on its right, asked to sweep through it: held (or sent without the turn).
        v.q = at(&v, 0.1, 0.19, 0.05);
        let through = at(&v, 0.1, 0.34, 0.05);
        let (q, changed) = arm.filter(&v, through);
        assert!(changed && q != through, "{q:?}");
        // Away from it, along −y: let be.
        assert_eq!(arm.filter(&v, at(&v, 0.1, 0.12, 0.05)), (at(&v, 0.1, 0.12, 0.05), false));
        // High above the table the same sweep touches nothing.
        v.q = at(&v, 0.1, 0.19, 0.20);
        let over = at(&v, 0.1, 0.34, 0.20);
        assert_eq!(arm.filter(&v, over), (over, false));
        // Coming down on it from above (a grasp) is let be.
        v.q = at(&v, 0.1, 0.30, 0.20);
        let down = at(&v, 0.1, 0.30, 0.06);
        assert_eq!(arm.filter(&v, down), (down, false));
        // A cup with no kept-out side constrains nothing.
        arm.table.cups[0].keep_out.clear();
        v.q = at(&v, 0.1, 0.19, 0.05);
        assert_eq!(arm.filter(&v, through), (through, false));
    }
}
