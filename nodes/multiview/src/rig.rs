//! A camera rig's calibration: each camera's intrinsics (`camera_info`) and
//! its optical frame's pose in `base_link` (`/tf_static`), and the geometry
//! the model and the reprojection need from it (rays, projections, the
//! codec's square view of a camera).

use std::collections::HashMap;
use std::path::Path;

use nalgebra::{Isometry3, Point3, Quaternion, Translation3, UnitQuaternion, Vector3};
use s2r_bag::BagReader;
use s2r_runtime::Serialized;
use serde::{Deserialize, Serialize};
use sim2real_msgs::sensor_msgs::msg::CameraInfo;
use sim2real_msgs::tf2_msgs::msg::TFMessage;

use crate::MultiviewError;

/// One camera: a pinhole (ROS convention: the centre of pixel (0, 0) is at
/// (0, 0)) and where it sits on the robot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    /// Its name (`front`, `front_left`, …): topics `<name>/image_raw`, frame `<name>_optical_frame`.
    pub name: String,
    /// Pixels per row.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Focal lengths and principal point, pixels: fx, fy, cx, cy (camera_info's K).
    pub k: [f64; 4],
    /// The optical frame's origin in `base_link`, metres.
    pub translation: [f64; 3],
    /// The optical frame's orientation in `base_link` (x, y, z, w): z forward, x right, y down.
    pub rotation: [f64; 4],
}

impl Camera {
    /// The optical frame in `base_link`.
    pub fn pose(&self) -> Isometry3<f64> {
        let [x, y, z, w] = self.rotation;
        Isometry3::from_parts(
            Translation3::new(self.translation[0], self.translation[1], self.translation[2]),
            UnitQuaternion::from_quaternion(Quaternion::new(w, x, y, z)),
        )
    }

    /// The camera as the codec sees it: its centre square (the shorter side)
    /// scaled to `size`×`size`, as `FrameCodec::view` samples it: view pixel
    /// x averages frame coordinates x0 + (x + ¼)·step and x0 + (x + ¾)·step
    /// (bilinear, pixel i's centre at i), so its centre is x0 + (x + ½)·step.
    pub fn view(&self, size: usize) -> Camera {
        let (x0, y0, step) = crate::reproject::square(self.width as usize, self.height as usize, size);
        let [fx, fy, cx, cy] = self.k;
        Camera {
            name: self.name.clone(),
            width: size as u32,
            height: size as u32,
            k: [fx / step, fy / step, (cx - x0) / step - 0.5, (cy - y0) / step - 0.5],
            translation: self.translation,
            rotation: self.rotation,
        }
    }

    /// The same camera delivering frames of `width`×`height` (the image
    /// scaled: focal lengths and principal point scale with it).
    pub fn resized(&self, width: u32, height: u32) -> Camera {
        let (sx, sy) = (width as f64 / self.width as f64, height as f64 / self.height as f64);
        let [fx, fy, cx, cy] = self.k;
        Camera { width, height, k: [fx * sx, fy * sy, (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5], ..self.clone() }
    }

    /// The unit ray through pixel (u, v) in `base_link`.
    pub fn ray(&self, u: f64, v: f64) -> Vector3<f64> {
        let [fx, fy, cx, cy] = self.k;
        let d = Vector3::new((u - cx) / fx, (v - cy) / fy, 1.0);
        self.pose().rotation * d.normalize()
    }

    /// The point at pixel (u, v) and z-depth `z` (metres along the optical axis), in `base_link`.
    pub fn unproject(&self, u: f64, v: f64, z: f64) -> Point3<f64> {
        let [fx, fy, cx, cy] = self.k;
        self.pose() * Point3::new((u - cx) / fx * z, (v - cy) / fy * z, z)
    }

    /// Where a `base_link` point lands: (u, v, z-depth), or None behind the camera.
    pub fn project(&self, p: &Point3<f64>) -> Option<(f64, f64, f64)> {
        let q = self.pose().inverse() * p;
        if q.z <= 1e-3 {
            return None;
        }
        let [fx, fy, cx, cy] = self.k;
        Some((fx * q.x / q.z + cx, fy * q.y / q.z + cy, q.z))
    }
}

/// The cameras of a rig, in the order they were found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rig {
    /// The cameras.
    pub cameras: Vec<Camera>,
}

impl Rig {
    /// The camera called `name`; an error names it and the rig's cameras.
    pub fn camera(&self, name: &str) -> Result<&Camera, MultiviewError> {
        self.cameras
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| MultiviewError::Rig { problem: format!("no camera '{name}' in the rig (it has {})", self.names().join(", ")) })
    }

    /// The cameras' names.
    pub fn names(&self) -> Vec<String> {
        self.cameras.iter().map(|c| c.name.clone()).collect()
    }

    /// Checks that every camera of `wanted` is in the rig; the error names each missing one.
    pub fn require(&self, wanted: &[String]) -> Result<(), MultiviewError> {
        let missing: Vec<&str> = wanted.iter().filter(|w| !self.cameras.iter().any(|c| &c.name == *w)).map(|w| w.as_str()).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(MultiviewError::Rig {
                problem: format!("the rig's calibration has no {} (it has {})", missing.join(", "), self.names().join(", ")),
            })
        }
    }

    /// The rig a recording calibrates: every `<camera>/camera_info` (the
    /// simulator's `/sim/<camera>/…` or a robot's `/<camera>/…`; the first of
    /// each) placed by `/tf_static` (the chain from `base_link` to the
    /// camera_info's frame). A camera whose frame `/tf_static` does not reach
    /// from `base_link` is named.
    pub fn from_bag(path: &Path) -> Result<Rig, MultiviewError> {
        let bad = |problem: String| MultiviewError::Data { path: path.into(), problem };
        let r = BagReader::open(path).map_err(|e| bad(e.to_string()))?;
        let mut infos: Vec<(String, CameraInfo)> = Vec::new();
        let mut parents: HashMap<String, (String, Isometry3<f64>)> = HashMap::new();
        for m in r.messages() {
            let topic = r.connections[m.connection].topic.as_str();
            if topic == "/tf_static" {
                let tf: TFMessage = Serialized(m.data.clone()).decode().map_err(|e| bad(format!("{topic}: {e}")))?;
                for t in tf.transforms {
                    let (tr, q) = (&t.transform.translation, &t.transform.rotation);
                    let iso = Isometry3::from_parts(
                        Translation3::new(tr.x, tr.y, tr.z),
                        UnitQuaternion::from_quaternion(Quaternion::new(q.w, q.x, q.y, q.z)),
                    );
                    parents.insert(
                        t.child_frame_id.trim_start_matches('/').to_string(),
                        (t.header.frame_id.trim_start_matches('/').to_string(), iso),
                    );
                }
            } else if let Some(name) = topic.strip_suffix("/camera_info") {
                let name = name.trim_start_matches("/sim/").trim_start_matches('/').to_string();
                if !infos.iter().any(|(n, _)| *n == name) {
                    let info: CameraInfo = Serialized(m.data.clone()).decode().map_err(|e| bad(format!("{topic}: {e}")))?;
                    infos.push((name, info));
                }
            }
        }
        if infos.is_empty() {
            return Err(bad("no <camera>/camera_info: the rig's calibration comes from camera_info and /tf_static".into()));
        }
        let mut cameras = Vec::new();
        for (name, info) in infos {
            let frame = info.header.frame_id.trim_start_matches('/').to_string();
            let mut pose = Isometry3::identity();
            let mut at = frame.clone();
            let mut hops = 0;
            while at != "base_link" {
                let Some((parent, iso)) = parents.get(&at) else {
                    return Err(bad(format!(
                        "camera '{name}': /tf_static does not reach its frame '{frame}' from base_link (stuck at '{at}')"
                    )));
                };
                pose = iso * pose;
                at = parent.clone();
                hops += 1;
                if hops > 32 {
                    return Err(bad(format!("camera '{name}': /tf_static has a loop above '{frame}'")));
                }
            }
            let q = pose.rotation.quaternion();
            cameras.push(Camera {
                name,
                width: info.width,
                height: info.height,
                k: [info.k[0], info.k[4], info.k[2], info.k[5]],
                translation: [pose.translation.x, pose.translation.y, pose.translation.z],
                rotation: [q.i, q.j, q.k, q.w],
            });
        }
        Ok(Rig { cameras })
    }

    /// Reads a rig file (YAML, as [`Rig::save`] writes it).
    pub fn load(path: &Path) -> Result<Rig, MultiviewError> {
        let text = std::fs::read_to_string(path).map_err(|source| MultiviewError::Io { path: path.into(), source })?;
        serde_yaml_ng::from_str(&text).map_err(|e| MultiviewError::Data { path: path.into(), problem: format!("not a rig file: {e}") })
    }

    /// Writes the rig as YAML.
    pub fn save(&self, path: &Path) -> Result<(), MultiviewError> {
        let text = serde_yaml_ng::to_string(self).map_err(|e| MultiviewError::Data { path: path.into(), problem: e.to_string() })?;
        std::fs::write(path, text).map_err(|source| MultiviewError::Io { path: path.into(), source })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A camera at (x, y, z) in base_link looking along yaw (left positive), level.
    pub(crate) fn level_camera(name: &str, w: u32, h: u32, fov_deg: f64, pos: [f64; 3], yaw_deg: f64) -> Camera {
        let fx = w as f64 / 2.0 / (fov_deg.to_radians() / 2.0).tan();
        // base_link: x forward, y left, z up; optical: z forward, x right, y down.
        let optical = UnitQuaternion::from_matrix(&nalgebra::Matrix3::new(0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0, -1.0, 0.0));
        let r = UnitQuaternion::from_axis_angle(&Vector3::z_axis(), yaw_deg.to_radians()) * optical;
        let q = r.quaternion();
        Camera {
            name: name.into(),
            width: w,
            height: h,
            k: [fx, fx, (w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0],
            translation: pos,
            rotation: [q.i, q.j, q.k, q.w],
        }
    }

    #[test]
    fn a_point_projects_back_to_its_pixel() {
        let c = level_camera("left", 64, 48, 90.0, [0.0, 1.0, 1.5], 90.0);
        // Straight ahead of the left camera: +y in base_link.
        let ray = c.ray(c.k[2], c.k[3]);
        assert!((ray - Vector3::y()).norm() < 1e-9, "{ray}");
        let p = c.unproject(10.0, 7.0, 4.0);
        let (u, v, z) = c.project(&p).unwrap();
        assert!((u - 10.0).abs() < 1e-9 && (v - 7.0).abs() < 1e-9 && (z - 4.0).abs() < 1e-9);
        // A point behind it is not projected.
        assert!(c.project(&Point3::new(0.0, -3.0, 1.5)).is_none());
    }

    #[test]
    fn the_view_sees_what_the_frame_sees() {
        let c = level_camera("front", 640, 480, 100.0, [1.5, 0.0, 1.6], 0.0);
        let v = c.view(256);
        let step = 480.0 / 256.0;
        // View pixel (x, y)'s centre is frame coordinate 80 + (x + ½)·step (pixel centres at integers).
        for (x, y) in [(0.0, 0.0), (100.0, 37.0), (255.0, 255.0)] {
            let (fu, fv) = (80.0 + (x + 0.5) * step, (y + 0.5) * step);
            assert!((v.ray(x, y) - c.ray(fu, fv)).norm() < 1e-9);
        }
    }
}
