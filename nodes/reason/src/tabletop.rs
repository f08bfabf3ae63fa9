//! The cups on a table as the arm's camera sees them: a detection box
//! placed on the table through the camera's calibration and the depth it
//! measured there ([`place`]), sightings merged over looks into the cups
//! that stand there ([`Tabletop`]), and for each what a sweep from every
//! side would do to it (the cup outcome predictor) with the chain of the
//! one most at risk. reason_node reasons so live from perception's
//! detections; closed-loop evaluation from the same detections in process.
//!
//! The table frame has its origin at the middle of the table, x along its
//! length, y across, z up (sim_node's `map` in cup_near_edge).

use nalgebra::{Isometry3, Vector3};
use sim2real_msgs::sim2real_msgs::msg::Reasoning;
use sim2real_msgs::std_msgs::msg::Header;

use crate::chain::CupScene;
use crate::cup::{self, Cup, Table};
use crate::node::Reasoner;
use crate::ReasonError;

/// Height above the table top a cup's box centre is taken to lie at (half a 10 cm cup).
pub const CUP_MID: f32 = 0.05;
/// A cup's radius and height as the reasoning assumes them (the scenario's cups, ±10 %).
pub const CUP_SIZE: [f32; 2] = [0.04, 0.10];
/// Two sightings within this distance (m) are the same cup.
pub const SAME_CUP: f32 = 0.06;

/// A camera as [`place`] needs it.
pub struct Camera<'a> {
    /// Focal lengths and principal point, pixels (`camera_info`'s K).
    pub fx: f32,
    /// Vertical focal length, pixels.
    pub fy: f32,
    /// Principal point, x.
    pub cx: f32,
    /// Principal point, y.
    pub cy: f32,
    /// Its image's width and height, pixels.
    pub size: (usize, usize),
    /// Its optical frame (z forward, x right, y down) in the table frame.
    pub optical_in_table: Isometry3<f32>,
    /// The depth it measured, metres along its optical axis per pixel, row by
    /// row at `size` (an RGB-D camera, as arm cells have), when it has one.
    pub depth: Option<&'a [f32]>,
}

/// Where on the table (x, y in the table frame) the cup a detection box
/// (`[x0, y0, x1, y1]`, pixels) shows stands: the box's middle cast through
/// the intrinsics and the camera's pose to the depth measured there (the
/// nearer part of the box's middle: the cup's front), and a cup's radius
/// beyond; without a depth image (or none there), onto the plane half a cup
/// above `table_top`. None when the box's middle looks at or above the
/// horizon without depth.
pub fn place(camera: &Camera, bbox: &[f32; 4], table_top: f32) -> Option<[f32; 2]> {
    let (u, v) = ((bbox[0] + bbox[2]) / 2.0, (bbox[1] + bbox[3]) / 2.0);
    let rotation = camera.optical_in_table.rotation;
    let origin = camera.optical_in_table.translation.vector;
    let ray = rotation * Vector3::new((u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy, 1.0);
    let measured = camera.depth.filter(|d| d.len() == camera.size.0 * camera.size.1).and_then(|d| box_depth(d, camera.size, bbox));
    let p = match measured {
        Some(z) => {
            let front = origin + ray * z;
            let across = Vector3::new(ray.x, ray.y, 0.0).try_normalize(1e-6).unwrap_or_else(Vector3::zeros);
            front + across * CUP_SIZE[0]
        }
        None if ray.z < -1e-4 => origin + ray * ((table_top + CUP_MID - origin.z) / ray.z),
        None => return None,
    };
    Some([p.x, p.y])
}

/// The depth of what a box shows: the nearer third of its middle half's
/// finite depths (the object, not what is seen past its sides).
fn box_depth(z: &[f32], (w, h): (usize, usize), b: &[f32; 4]) -> Option<f32> {
    let (bw, bh) = (b[2] - b[0], b[3] - b[1]);
    let x0 = ((b[0] + bw * 0.25).max(0.0) as usize).min(w.saturating_sub(1));
    let x1 = ((b[2] - bw * 0.25).max(0.0) as usize).min(w.saturating_sub(1));
    let y0 = ((b[1] + bh * 0.25).max(0.0) as usize).min(h.saturating_sub(1));
    let y1 = ((b[3] - bh * 0.25).max(0.0) as usize).min(h.saturating_sub(1));
    let mut v: Vec<f32> = (y0..=y1).flat_map(|y| (x0..=x1).map(move |x| z[y * w + x])).filter(|d| d.is_finite() && *d > 0.0).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    Some(v[v.len() / 3])
}

/// A cup as the arm's reasoning knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct SeenCup {
    /// Where it stands.
    pub cup: Cup,
    /// The detector's highest confidence in it.
    pub score: f32,
    /// The sum of its sightings' confidences (the weight of the mean position).
    pub weight: f32,
    /// Its `keep_out` constraints (`chain::keep_outs`): a region on the table
    /// top for every side whose push likely drops it, with that push's heading.
    pub keep_out: Vec<sim2real_msgs::sim2real_msgs::msg::Constraint>,
}

/// The cups seen on a table so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tabletop {
    /// The cups, merged over looks.
    pub cups: Vec<SeenCup>,
}

impl Tabletop {
    /// Merges a look's sightings ((x, y), confidence) into the cups known:
    /// only those on `table` and that `keep` keeps (the arm's own parts are
    /// not cups); a sighting within [`SAME_CUP`] of a known cup moves it to
    /// the confidence-weighted mean of its sightings (a cup stands still
    /// until touched), any other is a new cup. A cup not seen this time,
    /// perhaps behind the arm, stays where it was last seen.
    pub fn merge(&mut self, sightings: &[([f32; 2], f32)], table: &Table, keep: impl Fn(&[f32; 2]) -> bool) {
        let on_table = |at: &[f32; 2]| at[0].abs() <= table.half[0] && at[1].abs() <= table.half[1];
        for (at, score) in sightings.iter().filter(|(at, _)| on_table(at) && keep(at)) {
            match self.cups.iter_mut().find(|c| dist(c.cup.at, *at) < SAME_CUP) {
                Some(c) => {
                    let w = c.weight + score;
                    c.cup.at = [(c.cup.at[0] * c.weight + at[0] * score) / w, (c.cup.at[1] * c.weight + at[1] * score) / w];
                    c.weight = w;
                    c.score = c.score.max(*score);
                }
                None => {
                    self.cups.push(SeenCup { cup: Cup { at: *at, size: CUP_SIZE }, score: *score, weight: *score, keep_out: Vec::new() })
                }
            }
        }
    }

    /// Weighs a sweep from each side of every cup with `reasoner`'s cup
    /// outcome predictor, keeps out of the sides that likely drop it
    /// (p ≥ [`crate::chain::KEEP_OUT_P`]), and returns the chain of the cup most at risk:
    /// the likeliest to fall, and of cups about as likely (within a few
    /// hundredths) the nearer an edge; its situation says how many cups
    /// stand there, and its constraints hold every cup's keep-out regions.
    /// None without cups, or when the model has no cup predictor.
    pub fn reason(&mut self, reasoner: &Reasoner, table: &Table, table_top: f32, header: Header) -> Result<Option<Reasoning>, ReasonError> {
        let mut most: Option<(f32, usize, Reasoning)> = None;
        for (i, c) in self.cups.iter_mut().enumerate() {
            let scene = CupScene { table: *table, cup: (c.cup, c.score), table_top };
            let Some((chain, a)) = reasoner.reason_cup(header.clone(), &scene)? else {
                return Ok(None);
            };
            c.keep_out = crate::chain::keep_outs(&c.cup, &a.sides, c.score, table_top);
            // A tenth of a unit of probability per metre from the edge.
            let risk = a.sides[a.worst][cup::FALLS] - 0.1 * table.nearest_edge(c.cup.at).0;
            if most.as_ref().is_none_or(|(r, _, _)| risk > *r) {
                most = Some((risk, i, chain));
            }
        }
        let n = self.cups.len();
        Ok(most.map(|(_, i, mut c)| {
            if n > 1 {
                c.situation = format!("{n} cups on the table, the one most at risk {}", c.situation.trim_start_matches("a cup "));
            }
            // Every cup's keep-outs bind the arm, not only the one the chain is about.
            for (k, other) in self.cups.iter().enumerate() {
                if k != i {
                    c.constraints.extend(other.keep_out.iter().cloned());
                }
            }
            c
        }))
    }
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Translation3, UnitQuaternion};

    /// A camera 2 m above the table's middle looking straight down (optical x along +x, y along −y).
    fn overhead(depth: Option<&[f32]>) -> Camera<'_> {
        let down = UnitQuaternion::from_axis_angle(&Vector3::x_axis(), std::f32::consts::PI);
        Camera {
            fx: 500.0,
            fy: 500.0,
            cx: 320.0,
            cy: 240.0,
            size: (640, 480),
            optical_in_table: Isometry3::from_parts(Translation3::new(0.0, 0.0, 2.0), down),
            depth,
        }
    }

    /// The box a cup of radius r at (x, y), top `top` above the camera's plane, shows.
    fn bbox(x: f32, y: f32, z: f32) -> [f32; 4] {
        let (u, v) = (320.0 + 500.0 * x / z, 240.0 - 500.0 * y / z);
        [u - 15.0, v - 15.0, u + 15.0, v + 15.0]
    }

    #[test]
    fn a_box_is_placed_through_the_depth_or_on_the_table_plane() {
        let table_top = 0.75;
        // Without depth: on the plane half a cup above the table (1.2 m below the camera).
        let at = place(&overhead(None), &bbox(0.1, 0.3, 2.0 - table_top - CUP_MID), table_top).unwrap();
        assert!((at[0] - 0.1).abs() < 1e-4 && (at[1] - 0.3).abs() < 1e-4, "{at:?}");
        // With depth: the measured front, a radius beyond it (away from the camera, across).
        let z = 1.15;
        let depth = vec![z; 640 * 480];
        let at = place(&overhead(Some(&depth)), &bbox(0.1, 0.3, z), table_top).unwrap();
        let r = (0.1f32.powi(2) + 0.3f32.powi(2)).sqrt();
        let expected = [0.1 * (1.0 + CUP_SIZE[0] / r), 0.3 * (1.0 + CUP_SIZE[0] / r)];
        assert!((at[0] - expected[0]).abs() < 1e-3 && (at[1] - expected[1]).abs() < 1e-3, "{at:?} vs {expected:?}");
        // A depth image of another size is not used (the plane instead); nor are non-finite depths.
        let wrong = vec![z; 10];
        let on_plane = place(&overhead(Some(&wrong)), &bbox(0.1, 0.3, 1.2), table_top).unwrap();
        assert!((on_plane[1] - 0.3).abs() < 1e-4);
        let holes = vec![f32::NAN; 640 * 480];
        assert!((place(&overhead(Some(&holes)), &bbox(0.1, 0.3, 1.2), table_top).unwrap()[1] - 0.3).abs() < 1e-4);
        // A camera looking up sees no table.
        let mut up = overhead(None);
        up.optical_in_table = Isometry3::translation(0.0, 0.0, 2.0);
        assert_eq!(place(&up, &bbox(0.0, 0.0, 1.0), table_top), None);
    }

    #[test]
    fn sightings_merge_into_cups_on_the_table() {
        let table = Table { half: [0.6, 0.4], arm: [-0.45, 0.0], reach: 0.7 };
        let mut t = Tabletop::default();
        t.merge(&[([0.1, 0.3], 0.9), ([0.12, 0.3], 0.3), ([0.0, 0.5], 0.9), ([-0.3, 0.0], 0.8)], &table, |at| at[0] > -0.25);
        // One cup (the two near sightings weighed by confidence); off the table and the excluded left out.
        assert_eq!(t.cups.len(), 1, "{t:?}");
        assert!((t.cups[0].cup.at[0] - 0.105).abs() < 1e-5 && (t.cups[0].weight - 1.2).abs() < 1e-6);
        assert_eq!(t.cups[0].score, 0.9);
        // A later look elsewhere adds a second cup and keeps the first.
        t.merge(&[([-0.2, -0.2], 0.5)], &table, |_| true);
        assert_eq!(t.cups.len(), 2);
    }

    #[test]
    fn the_chain_is_the_cup_nearest_its_fall() {
        // cup_near_edge's two cups of seed 1000: one 5 cm from the left edge, one 18 cm from the right.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/reason/reason.json");
        let reasoner = Reasoner::load(&path).unwrap();
        let table = Table { half: [0.6, 0.4], arm: [-0.45, 0.0], reach: 0.86 };
        let mut t = Tabletop::default();
        t.merge(&[([0.05, -0.18], 0.9), ([0.27, 0.31], 0.4)], &table, |_| true);
        let chain = t.reason(&reasoner, &table, 0.75, Header::default()).unwrap().unwrap();
        assert!(chain.situation.starts_with("2 cups on the table, the one most at risk near the table's left edge"), "{}", chain.situation);
        assert!(chain.steps[0].text.contains("5 cm from the table's left edge"), "{chain:?}");
        // Each cup has its keep-out: the side a sweep drops it from (towards its near edge).
        let near = t.cups.iter().find(|c| c.cup.at[1] > 0.0).unwrap();
        assert!(near.keep_out.iter().any(|k| (k.heading - std::f32::consts::FRAC_PI_2).abs() < 1e-6), "{near:?}");
        // The chain, about the other cup, carries this one's keep-outs too.
        assert!(chain.constraints.iter().any(|k| k.name == "keep_out" && (k.target.y - 0.31).abs() < 1e-6), "{chain:?}");
        // Alone, a cup's chain says nothing of others.
        let mut one = Tabletop::default();
        one.merge(&[([0.27, 0.31], 0.4)], &table, |_| true);
        assert!(one.reason(&reasoner, &table, 0.75, Header::default()).unwrap().unwrap().situation.starts_with("a cup near"));
    }
}
