//! From ROS messages to a [`Frame`]: one camera's image and controls, decoded
//! (with conversions and refusals that name the topic), and the scene state
//! shared by all cameras (TF, the scenario, the 3-D boxes of other vehicles).

use nalgebra::Point3;
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image};
use sim2real_msgs::sim2real_msgs::msg::ScenarioInfo;
use sim2real_msgs::tf2_msgs::msg::TFMessage;
use sim2real_msgs::vision_msgs::msg::Detection3DArray;

use crate::frame::{Frame, Intrinsics, Vehicle};
use crate::TransferError;
use s2r_runtime::stamp_ns;
use s2r_runtime::tf::TfBuffer;

/// The shutter interval motion blur integrates over (1/60 s).
pub const SHUTTER_NS: i64 = 16_666_667;

/// What all cameras share: the latest of each message, fed in as it arrives.
#[derive(Default)]
pub struct Scene {
    pub(crate) tf: TfBuffer,
    /// The latest `scenario`: class names (materials by class) and the ego vehicle's size.
    pub scenario: Option<ScenarioInfo>,
    /// The latest `sim/detections3d`: the other vehicles, whose headlights are drawn at night.
    pub detections3d: Option<Detection3DArray>,
}

impl Scene {
    /// Takes in a /tf (`is_static` false) or /tf_static message. Timed
    /// transforms are kept for 10 s; one stamped earlier than the last of its
    /// child frame (a bag looping, a simulation restarting) drops that child's
    /// history.
    pub fn tf(&mut self, msg: &TFMessage, is_static: bool) {
        self.tf.insert(msg, is_static);
    }

    /// Class names by segmentation id, from the scenario; empty before one arrived.
    pub fn class_names(&self) -> &[String] {
        self.scenario.as_ref().map(|s| &s.class_names[..]).unwrap_or(&[])
    }
}

/// One camera's messages of one stamp.
#[derive(Clone, Debug, Default)]
pub struct CameraMsgs {
    /// The colour image, in an encoding [`s2r_image::rgb8`] reads; required.
    pub image: Option<Image>,
    /// Depth along the optical axis ([`s2r_image::depth_m`]: 32FC1 metres or 16UC1 millimetres).
    pub depth: Option<Image>,
    /// Class id per pixel ([`s2r_image::classes`]: mono8 or 8UC1).
    pub segmentation: Option<Image>,
    /// The calibration; without it a 90° horizontal field of view is assumed.
    pub info: Option<CameraInfo>,
}

/// A camera frame decoded into plain buffers.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// rgb8, row-major, whatever the image's encoding was.
    pub rgb: Vec<u8>,
    /// Metres along the optical axis per pixel; `None` when absent, unreadable
    /// or of another size than the image (see `notes`).
    pub depth: Option<Vec<f32>>,
    /// Class id per pixel; `None` when absent, unreadable or of another size.
    pub segmentation: Option<Vec<u8>>,
    /// From CameraInfo, scaled to the image's resolution, or assumed (see `notes`).
    pub intrinsics: Intrinsics,
    /// The image's optical frame (header.frame_id), looked up in TF.
    pub frame_id: String,
    /// The image's stamp, nanoseconds.
    pub stamp_ns: i64,
    /// Controls dropped or guessed, each naming the topic and why.
    pub notes: Vec<String>,
}

/// Topic names of one camera's inputs, for messages.
pub struct Topics {
    /// The colour image's (sim_node: `<prefix>/<camera>/image_raw`).
    pub image: String,
    /// The depth image's (`…/depth`).
    pub depth: String,
    /// The segmentation's (`…/segmentation`).
    pub segmentation: String,
    /// The CameraInfo's (`…/camera_info`).
    pub info: String,
}

impl Topics {
    /// sim_node's topics of a camera under a prefix ("/sim").
    pub fn sim(prefix: &str, camera: &str) -> Topics {
        let t = |k: &str| format!("{prefix}/{camera}/{k}");
        Topics { image: t("image_raw"), depth: t("depth"), segmentation: t("segmentation"), info: t("camera_info") }
    }
}

/// Decodes a camera's messages. Fails only without a usable colour image;
/// a control of the wrong encoding or size is dropped with a note.
pub fn decode(m: &CameraMsgs, topics: &Topics) -> Result<Decoded, TransferError> {
    let img = m.image.as_ref().ok_or_else(|| TransferError::NoImage(topics.image.clone()))?;
    let rgb = s2r_image::rgb8(img, &topics.image)?;
    let (w, h) = (img.width as usize, img.height as usize);
    let mut notes = Vec::new();
    let size_ok = |o: &Image, topic: &str, notes: &mut Vec<String>| {
        let ok = o.width as usize == w && o.height as usize == h;
        if !ok {
            notes.push(format!("{topic}: {}x{} does not match the image's {w}x{h}; not used", o.width, o.height));
        }
        ok
    };
    let depth = match &m.depth {
        Some(d) if size_ok(d, &topics.depth, &mut notes) => {
            s2r_image::depth_m(d, &topics.depth).map_err(|e| notes.push(format!("{e}; not used"))).ok()
        }
        _ => None,
    };
    let segmentation = match &m.segmentation {
        Some(s) if size_ok(s, &topics.segmentation, &mut notes) => {
            s2r_image::classes(s, &topics.segmentation).map_err(|e| notes.push(format!("{e}; not used"))).ok()
        }
        _ => None,
    };
    let intrinsics = match m.info.as_ref().map(|i| (i, intrinsics(i))) {
        Some((i, Some(k))) if i.width as usize == w && i.height as usize == h => k,
        Some((i, Some(k))) if i.width > 0 => {
            // CameraInfo of another resolution (image_scale): scale K.
            let (sx, sy) = (w as f32 / i.width as f32, h as f32 / i.height as f32);
            Intrinsics { fx: k.fx * sx, fy: k.fy * sy, cx: k.cx * sx, cy: k.cy * sy }
        }
        _ => {
            notes.push(format!("{}: no calibrated CameraInfo; assuming a 90° horizontal field of view", topics.info));
            Intrinsics::from_fov(w, h, 90.0)
        }
    };
    Ok(Decoded {
        width: w,
        height: h,
        rgb,
        depth,
        segmentation,
        intrinsics,
        frame_id: img.header.frame_id.clone(),
        stamp_ns: stamp_ns(&img.header.stamp),
        notes,
    })
}

impl Decoded {
    /// The frame, placed in the world by TF (when TF knows the camera): the
    /// world is the root of the camera's TF tree at the image's stamp (`map`
    /// for sim_node), and the other vehicles are the scene's 3-D detections
    /// of class `vehicle`.
    pub fn frame<'a>(&'a self, scene: &'a Scene) -> Frame<'a> {
        let mut f = Frame::new(self.width, self.height, &self.rgb, self.intrinsics);
        f.depth = self.depth.as_deref();
        f.segmentation = self.segmentation.as_deref();
        f.class_names = scene.class_names();
        f.stamp_ns = self.stamp_ns;
        let t = self.stamp_ns;
        if let Some(root) = scene.tf.root(&self.frame_id, t).filter(|r| *r != self.frame_id) {
            f.camera_to_world = scene.tf.lookup(&root, &self.frame_id, t);
            f.camera_to_world_before = scene.tf.lookup(&root, &self.frame_id, t - SHUTTER_NS);
            f.ego_to_world = scene.tf.lookup(&root, "base_link", t);
            if let Some(d3) = &scene.detections3d {
                if let Some(to_world) = scene.tf.lookup(&root, &d3.header.frame_id, t) {
                    for d in &d3.detections {
                        if !d.results.iter().any(|r| r.hypothesis.class_id == "vehicle") {
                            continue;
                        }
                        let c = &d.bbox.center;
                        let p = to_world * Point3::new(c.position.x, c.position.y, c.position.z);
                        let q = to_world.rotation
                            * nalgebra::UnitQuaternion::from_quaternion(nalgebra::Quaternion::new(
                                c.orientation.w,
                                c.orientation.x,
                                c.orientation.y,
                                c.orientation.z,
                            ));
                        let (_, _, yaw) = q.euler_angles();
                        f.vehicles.push(Vehicle {
                            center: Point3::new(p.x as f32, p.y as f32, p.z as f32),
                            yaw: yaw as f32,
                            size: [d.bbox.size.x as f32, d.bbox.size.y as f32, d.bbox.size.z as f32],
                        });
                    }
                }
            }
        }
        if let Some(ego) = scene.scenario.as_ref().and_then(|s| s.actors.iter().find(|a| a.class_name == "ego_vehicle")) {
            f.ego_size = [ego.size.x as f32, ego.size.y as f32, ego.size.z as f32];
        }
        f
    }
}

/// Intrinsics from CameraInfo's K; None for an uncalibrated (all-zero) K.
pub fn intrinsics(info: &CameraInfo) -> Option<Intrinsics> {
    let k = &info.k;
    (k[0] > 0.0 && k[4] > 0.0).then(|| Intrinsics { fx: k[0] as f32, fy: k[4] as f32, cx: k[2] as f32, cy: k[5] as f32 })
}
