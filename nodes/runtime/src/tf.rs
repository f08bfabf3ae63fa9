//! A small TF buffer: static and timed transforms from /tf_static and /tf,
//! looked up between any two connected frames at a stamp (interpolated), for
//! the nodes that place what a camera sees in the world (transfer_node's
//! moving lights, reason_node's cups).

use std::collections::{HashMap, VecDeque};

use crate::stamp_ns;
use nalgebra::{Isometry3, Quaternion, Translation3, UnitQuaternion};
use sim2real_msgs::geometry_msgs::msg::Transform;
use sim2real_msgs::tf2_msgs::msg::TFMessage;

fn isometry(t: &Transform) -> Isometry3<f64> {
    let r = &t.rotation;
    let q = UnitQuaternion::from_quaternion(Quaternion::new(r.w, r.x, r.y, r.z));
    Isometry3::from_parts(Translation3::new(t.translation.x, t.translation.y, t.translation.z), q)
}

struct Timed {
    parent: String,
    samples: VecDeque<(i64, Isometry3<f64>)>,
}

/// Transforms by child frame. Timed ones are kept for `history_ns` (10 s by default).
pub struct TfBuffer {
    statics: HashMap<String, (String, Isometry3<f64>)>,
    timed: HashMap<String, Timed>,
    history_ns: i64,
}

impl Default for TfBuffer {
    fn default() -> TfBuffer {
        TfBuffer::new(10_000_000_000)
    }
}

impl TfBuffer {
    /// An empty buffer keeping timed transforms for `history_ns`.
    pub fn new(history_ns: i64) -> TfBuffer {
        TfBuffer { statics: HashMap::new(), timed: HashMap::new(), history_ns }
    }

    /// Adds a /tf (`is_static` false) or /tf_static message's transforms.
    pub fn insert(&mut self, msg: &TFMessage, is_static: bool) {
        for t in &msg.transforms {
            let iso = isometry(&t.transform);
            let child = t.child_frame_id.trim_start_matches('/').to_string();
            let parent = t.header.frame_id.trim_start_matches('/').to_string();
            if is_static {
                self.statics.insert(child, (parent, iso));
                continue;
            }
            let ns = stamp_ns(&t.header.stamp);
            let e = self.timed.entry(child).or_insert_with(|| Timed { parent: parent.clone(), samples: VecDeque::new() });
            e.parent = parent;
            // Time going backwards (a bag looping, a simulation restarting) starts over.
            if e.samples.back().is_some_and(|(last, _)| ns < *last) {
                e.samples.clear();
            }
            e.samples.push_back((ns, iso));
            while e.samples.front().is_some_and(|(first, _)| ns - first > self.history_ns) {
                e.samples.pop_front();
            }
        }
    }

    /// The transform of `child` in its parent at `ns`: interpolated between
    /// the samples around it, or the nearest one within 0.5 s outside them.
    fn edge(&self, child: &str, ns: i64) -> Option<(&str, Isometry3<f64>)> {
        if let Some((p, iso)) = self.statics.get(child) {
            return Some((p, *iso));
        }
        let t = self.timed.get(child)?;
        let s = &t.samples;
        let i = s.partition_point(|(t, _)| *t <= ns);
        let pick = match (i.checked_sub(1).map(|j| &s[j]), s.get(i)) {
            (Some(a), Some(b)) => {
                let f = (ns - a.0) as f64 / (b.0 - a.0).max(1) as f64;
                a.1.lerp_slerp(&b.1, f)
            }
            (Some(a), None) if ns - a.0 <= 500_000_000 => a.1,
            (None, Some(b)) if b.0 - ns <= 500_000_000 => b.1,
            _ => return None,
        };
        Some((&t.parent, pick))
    }

    /// The chain from a frame up to its root: (root, transform of the frame in the root).
    fn to_root(&self, frame: &str, ns: i64) -> Option<(String, Isometry3<f64>)> {
        let mut iso = Isometry3::identity();
        let mut f = frame.trim_start_matches('/').to_string();
        for _ in 0..64 {
            match self.edge(&f, ns) {
                Some((parent, t)) => {
                    iso = t * iso;
                    f = parent.to_string();
                }
                None => return Some((f, iso)),
            }
        }
        None
    }

    /// The pose of `source` in `target` at `ns` (tf2's lookupTransform(target, source)).
    pub fn lookup(&self, target: &str, source: &str, ns: i64) -> Option<Isometry3<f64>> {
        let (root_s, s) = self.to_root(source, ns)?;
        let (root_t, t) = self.to_root(target, ns)?;
        (root_s == root_t).then(|| t.inverse() * s)
    }

    /// The root of a frame's tree at `ns` ("map" for sim_node's frames).
    pub fn root(&self, frame: &str, ns: i64) -> Option<String> {
        self.to_root(frame, ns).map(|(r, _)| r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim2real_msgs::builtin_interfaces::msg::Time;
    use sim2real_msgs::geometry_msgs::msg::{Quaternion as Q, TransformStamped, Vector3};
    use sim2real_msgs::std_msgs::msg::Header;

    fn edge(parent: &str, child: &str, sec: i32, x: f64, yaw: f64) -> TransformStamped {
        TransformStamped {
            header: Header { stamp: Time { sec, nanosec: 0 }, frame_id: parent.into() },
            child_frame_id: child.into(),
            transform: Transform {
                translation: Vector3 { x, y: 0.0, z: 0.0 },
                rotation: Q { x: 0.0, y: 0.0, z: (yaw / 2.0).sin(), w: (yaw / 2.0).cos() },
            },
        }
    }

    #[test]
    fn chains_of_static_and_timed_transforms_are_looked_up_and_interpolated() {
        let mut tf = TfBuffer::default();
        // map → base_link moves 1 m along x per second; base_link → camera is fixed, turned 90°.
        tf.insert(&TFMessage { transforms: vec![edge("base_link", "camera", 0, 0.5, std::f64::consts::FRAC_PI_2)] }, true);
        tf.insert(&TFMessage { transforms: vec![edge("/map", "base_link", 1, 1.0, 0.0)] }, false);
        tf.insert(&TFMessage { transforms: vec![edge("map", "base_link", 2, 2.0, 0.0)] }, false);
        let ns = |s: f64| (s * 1e9) as i64;
        let cam = tf.lookup("map", "camera", ns(1.5)).unwrap();
        assert!((cam.translation.x - 2.0).abs() < 1e-9, "1.5 m of travel and 0.5 m to the camera: {cam:?}");
        // The camera's x axis points along the map's y.
        let x = cam.rotation * nalgebra::Vector3::x();
        assert!((x.y - 1.0).abs() < 1e-9, "{x:?}");
        // The other way round, and the root of the tree.
        let back = tf.lookup("camera", "map", ns(1.5)).unwrap();
        assert!((back * cam).translation.vector.norm() < 1e-9);
        assert_eq!(tf.root("camera", ns(1.5)).as_deref(), Some("map"));
        // Beyond half a second past the newest sample, or a frame nobody sent: nothing.
        assert!(tf.lookup("map", "camera", ns(3.0)).is_none());
        assert!(tf.lookup("map", "elsewhere", ns(1.5)).is_none());
    }
}
