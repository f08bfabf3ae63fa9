//! A small TF buffer: static and timed transforms from /tf_static and /tf,
//! looked up between any two connected frames at a stamp (interpolated).

use std::collections::{HashMap, VecDeque};

use nalgebra::{Isometry3, Quaternion, Translation3, UnitQuaternion};
use s2r_runtime::stamp_ns;
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

/// Transforms by child frame. Timed ones are kept for `history_ns`.
pub(crate) struct TfBuffer {
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
    pub(crate) fn new(history_ns: i64) -> TfBuffer {
        TfBuffer { statics: HashMap::new(), timed: HashMap::new(), history_ns }
    }

    pub(crate) fn insert(&mut self, msg: &TFMessage, is_static: bool) {
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
    pub(crate) fn lookup(&self, target: &str, source: &str, ns: i64) -> Option<Isometry3<f64>> {
        let (root_s, s) = self.to_root(source, ns)?;
        let (root_t, t) = self.to_root(target, ns)?;
        (root_s == root_t).then(|| t.inverse() * s)
    }

    /// The root of a frame's tree at `ns` ("map" for sim_node's frames).
    pub(crate) fn root(&self, frame: &str, ns: i64) -> Option<String> {
        self.to_root(frame, ns).map(|(r, _)| r)
    }
}
