//! What a restyling takes in: the flat rendered frame, its control signals
//! (depth, segmentation), the camera model and where the camera and the
//! vehicles around it are; and the control weights.

use nalgebra::{Isometry3, Point3};

use crate::FrameError;

/// Pinhole intrinsics in pixels (CameraInfo's K; its distortion is not modelled).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Intrinsics {
    /// Focal length along x (image right), pixels.
    pub fx: f32,
    /// Focal length along y (image down), pixels.
    pub fy: f32,
    /// Principal point, x (column), pixels.
    pub cx: f32,
    /// Principal point, y (row), pixels.
    pub cy: f32,
}

impl Intrinsics {
    /// A camera of a horizontal field of view in degrees, square pixels,
    /// principal point at the image centre.
    pub fn from_fov(width: usize, height: usize, hfov_deg: f32) -> Intrinsics {
        let fx = width as f32 / 2.0 / (hfov_deg.to_radians() / 2.0).tan();
        Intrinsics { fx, fy: fx, cx: width as f32 / 2.0, cy: height as f32 / 2.0 }
    }
}

/// Another vehicle, for its headlights and tail lights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Vehicle {
    /// Centre of its bounding box in the world (map) frame, metres.
    pub center: Point3<f32>,
    /// Heading about the world z axis, radians (REP-103: 0 along +x, counter-clockwise).
    pub yaw: f32,
    /// Length, width and height in metres (along its x, y, z).
    pub size: [f32; 3],
}

/// One camera frame and its controls. Images are row-major, `width × height`.
#[derive(Clone, Debug)]
pub struct Frame<'a> {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// rgb8 (sRGB-encoded), 3 bytes per pixel.
    pub rgb: &'a [u8],
    /// Depth along the optical axis in metres; not finite or ≤ 0 where nothing is (sky).
    pub depth: Option<&'a [f32]>,
    /// Semantic class id per pixel; names in `class_names`.
    pub segmentation: Option<&'a [u8]>,
    /// Class names by id (ScenarioInfo.class_names): they pick each class's
    /// material; ids without a name get a generic one.
    pub class_names: &'a [String],
    /// The camera model, for this image's resolution.
    pub intrinsics: Intrinsics,
    /// The optical frame (x right, y down, z forward) in the world (map) frame.
    /// Without it, textures are anchored to the camera and lights to the image.
    pub camera_to_world: Option<Isometry3<f64>>,
    /// The same, one shutter interval earlier (for motion blur).
    pub camera_to_world_before: Option<Isometry3<f64>>,
    /// The ego vehicle's base_link in the world (for its headlights).
    pub ego_to_world: Option<Isometry3<f64>>,
    /// Ego vehicle size (length, width, height); its headlights sit at the front.
    pub ego_size: [f32; 3],
    /// Other vehicles in the world frame (their headlights at night).
    pub vehicles: Vec<Vehicle>,
    /// Frame stamp in nanoseconds: particles and sensor noise are functions of it.
    pub stamp_ns: i64,
}

impl<'a> Frame<'a> {
    /// A frame with only its colour image; add controls with the fields.
    pub fn new(width: usize, height: usize, rgb: &'a [u8], intrinsics: Intrinsics) -> Frame<'a> {
        Frame {
            width,
            height,
            rgb,
            depth: None,
            segmentation: None,
            class_names: &[],
            intrinsics,
            camera_to_world: None,
            camera_to_world_before: None,
            ego_to_world: None,
            ego_size: [4.5, 1.8, 1.5],
            vehicles: Vec::new(),
            stamp_ns: 0,
        }
    }

    /// Checks that the buffers have the sizes the frame says.
    pub fn validate(&self) -> Result<(), FrameError> {
        let n = self.width * self.height;
        if n == 0 {
            return Err(FrameError::Empty { width: self.width, height: self.height });
        }
        if self.rgb.len() != n * 3 {
            return Err(FrameError::Rgb { len: self.rgb.len(), width: self.width, height: self.height, needed: n * 3 });
        }
        if let Some(d) = self.depth {
            if d.len() != n {
                return Err(FrameError::Control { control: "depth", len: d.len(), pixels: n });
            }
        }
        if let Some(s) = self.segmentation {
            if s.len() != n {
                return Err(FrameError::Control { control: "segmentation", len: s.len(), pixels: n });
            }
        }
        Ok(())
    }

    /// The controls present, by their Cosmos-Transfer names.
    pub fn controls(&self) -> Controls {
        Controls { seg: self.segmentation.is_some(), depth: self.depth.is_some(), edge: true, vis: true }
    }
}

/// Which controls a frame has. Edge and vis (blur) derive from the colour image
/// itself, so they are always there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Controls {
    /// A segmentation image came with the frame.
    pub seg: bool,
    /// A depth image came with the frame.
    pub depth: bool,
    /// Always true: edges are computed from the colour image.
    pub edge: bool,
    /// Always true: the colour image itself, blurred.
    pub vis: bool,
}

/// Per-control weights, 0 to 1, as in Cosmos-Transfer1: how strongly the
/// output follows the segmentation (materials per class), the depth
/// (relighting, fog, reflections), the edges (the flat frame's structure kept)
/// and the blurred colour image ("vis": the flat frame's colours kept).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weights {
    /// Segmentation: how far class materials replace the flat colours.
    pub seg: f32,
    /// Depth: how far lighting, fog and reflections follow the 3-D shape.
    pub depth: f32,
    /// Edges: how much of the flat frame's fine structure is added back.
    pub edge: f32,
    /// Vis: how much of the flat frame's hues the materials keep.
    pub vis: f32,
}

impl Default for Weights {
    fn default() -> Weights {
        Weights { seg: 1.0, depth: 1.0, edge: 0.5, vis: 0.3 }
    }
}

impl Weights {
    /// The controls' Cosmos-Transfer names, in the order of [`Weights::as_array`]
    /// (and of TransferScore's `controls` and `weights`).
    pub const NAMES: [&'static str; 4] = ["seg", "depth", "edge", "vis"];

    /// The weights in the order of [`Weights::NAMES`].
    pub fn as_array(&self) -> [f32; 4] {
        [self.seg, self.depth, self.edge, self.vis]
    }

    /// Refuses weights outside 0..1 or not numbers.
    pub fn validate(&self) -> Result<(), FrameError> {
        for (n, w) in Self::NAMES.iter().zip(self.as_array()) {
            if !(0.0..=1.0).contains(&w) {
                return Err(FrameError::Weight { name: n, value: w });
            }
        }
        Ok(())
    }

    /// The weights in force for the controls present: absent controls get 0,
    /// and weights that sum over 1 are divided by their sum (Cosmos-Transfer1's rule).
    pub fn effective(&self, present: Controls) -> Weights {
        let w = Weights {
            seg: if present.seg { self.seg } else { 0.0 },
            depth: if present.depth { self.depth } else { 0.0 },
            edge: if present.edge { self.edge } else { 0.0 },
            vis: if present.vis { self.vis } else { 0.0 },
        };
        let sum: f32 = w.as_array().iter().sum();
        if sum > 1.0 {
            Weights { seg: w.seg / sum, depth: w.depth / sum, edge: w.edge / sum, vis: w.vis / sum }
        } else {
            w
        }
    }

    /// Each weight relative to the largest: the builtin backend applies the
    /// strongest control fully and the others in proportion.
    pub fn relative(&self) -> Weights {
        let m = self.as_array().into_iter().fold(0.0f32, f32::max);
        if m <= 0.0 {
            return Weights { seg: 0.0, depth: 0.0, edge: 0.0, vis: 0.0 };
        }
        Weights { seg: self.seg / m, depth: self.depth / m, edge: self.edge / m, vis: self.vis / m }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_over_one_are_rescaled_and_absent_controls_dropped() {
        let all = Controls { seg: true, depth: true, edge: true, vis: true };
        let w = Weights { seg: 1.0, depth: 1.0, edge: 0.5, vis: 0.5 }.effective(all);
        assert!((w.as_array().iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((w.seg - 1.0 / 3.0).abs() < 1e-6);
        let w = Weights { seg: 0.2, depth: 0.3, edge: 0.1, vis: 0.1 }.effective(all);
        assert_eq!(w, Weights { seg: 0.2, depth: 0.3, edge: 0.1, vis: 0.1 }, "sums under 1 stay");
        let w = Weights::default().effective(Controls { depth: false, ..all });
        assert_eq!(w.depth, 0.0);
        assert!((w.seg - 1.0 / 1.8).abs() < 1e-6);
        assert!(Weights { seg: 1.5, ..Weights::default() }.validate().unwrap_err().to_string().contains("'seg'"));
    }
}
