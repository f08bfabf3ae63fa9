//! The arm's reasoning in the loop: where the cups stand, read from the
//! robot's camera (perception's cup detections, placed on the table top
//! through the camera's calibration), what a sweep from each side would do
//! to each of them (reason_node's cup outcome predictor), and a safety
//! filter that refuses joint commands driving the fingers into a cup from
//! a side that would push it off the table.

use nalgebra::{Isometry3, Point3};
use s2r_perception::predict::{FrameRef, Predictor};
use s2r_reason::cup::Table;
use s2r_reason::node::Reasoner;
use s2r_reason::tabletop::{self, Tabletop};
use s2r_sim::arm_expert::{forward, ArmView, TOOL_DEPTH};
use s2r_sim::sim::{CameraFrame, Sim};
use s2r_sim::world::FINGER_HALF;
use sim2real_msgs::sim2real_msgs::msg::Reasoning;

use crate::ClosedLoopError;

/// Detections of a cup below this confidence are not taken.
const MIN_SCORE: f32 = 0.15;
/// A sighting within this distance (m, on the table) of the arm's base, a joint or its fingers is the arm.
const ARM_CLEARANCE: f32 = 0.10;

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
        Ok(CupLocator { predictor: Predictor { net, device, threshold: MIN_SCORE, max_detections: 20, mirror: false }, class })
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

    /// Filters joint targets `q` through the keep-out regions of `chain`
    /// (every cup's, [`Tabletop::reason`]) with the shared safety filter
    /// ([`sim2real_msgs::safety::filter_joints`]), the fingers' pads and
    /// tips placed by the simulated arm's kinematics. Returns the targets to
    /// send and whether they were changed.
    pub fn filter(view: &ArmView, q: [f32; 6], chain: Option<&Reasoning>) -> ([f32; 6], bool) {
        let Some(chain) = chain else { return (q, false) };
        sim2real_msgs::safety::filter_joints(&view.q, q, chain, FINGER_HALF[0] + 0.01, |q| fingers(view, q))
    }
}

/// The points of the simulated gripper that push (each finger's tip and the
/// point 2 cm above it, the fingers either side of the flange's x) at joint
/// angles `q`, in the map frame.
pub fn fingers(view: &ArmView, q: &[f32; 6]) -> Vec<[f32; 3]> {
    let flange = forward(&view.arm, q)[5];
    sim2real_msgs::safety::finger_points(view.opening, 2.0 * FINGER_HALF[0], 2.0 * FINGER_HALF[2], |[x, y, z]| {
        let p = flange * Point3::new(x, y, z);
        [p.x, p.y, p.z]
    })
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
    use s2r_reason::tabletop::CUP_SIZE;
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
        let falls_from_the_right = [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]];
        let chain =
            Reasoning { constraints: s2r_reason::chain::keep_outs(&cup, &falls_from_the_right, 0.9, v.table_top), ..Default::default() };
        let filter = |v: &ArmView, q| ArmReasoning::filter(v, q, Some(&chain));
        // Fingers low on its right, asked to sweep through it: held (or sent without the turn).
        v.q = at(&v, 0.1, 0.19, 0.05);
        let through = at(&v, 0.1, 0.34, 0.05);
        let (q, changed) = filter(&v, through);
        assert!(changed && q != through, "{q:?}");
        // Away from it, along −y: let be.
        assert_eq!(filter(&v, at(&v, 0.1, 0.12, 0.05)), (at(&v, 0.1, 0.12, 0.05), false));
        // High above the table the same sweep touches nothing.
        v.q = at(&v, 0.1, 0.19, 0.20);
        let over = at(&v, 0.1, 0.34, 0.20);
        assert_eq!(filter(&v, over), (over, false));
        // Coming down on it from above (a grasp) is let be.
        v.q = at(&v, 0.1, 0.30, 0.20);
        let down = at(&v, 0.1, 0.30, 0.06);
        assert_eq!(filter(&v, down), (down, false));
        // Without a chain, or a cup with no kept-out side, nothing is constrained.
        v.q = at(&v, 0.1, 0.19, 0.05);
        assert_eq!(ArmReasoning::filter(&v, through, None), (through, false));
        let safe =
            Reasoning { constraints: s2r_reason::chain::keep_outs(&cup, &[[1.0, 0.0, 0.0]; 4], 0.9, v.table_top), ..Default::default() };
        assert_eq!(ArmReasoning::filter(&v, through, Some(&safe)), (through, false));
    }
}
