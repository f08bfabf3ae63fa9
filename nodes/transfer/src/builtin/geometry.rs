//! Per-pixel geometry from depth: the camera-space point, its world position
//! and the surface normal (from the depth gradient, taking on each axis the
//! neighbour on the same surface).

use rayon::prelude::*;

use crate::frame::{Frame, Intrinsics};

/// A rigid transform as f32 rows, for per-pixel work: maps points of a
/// child frame (a camera's optical frame: x right, y down, z forward) into
/// its parent (the world), `p' = r·p + t`.
#[derive(Clone, Copy, Debug)]
pub struct Pose {
    /// The rotation matrix, row-major.
    pub r: [[f32; 3]; 3],
    /// The translation in metres: the child frame's origin in the parent.
    pub t: [f32; 3],
}

impl Pose {
    /// The transform that changes nothing (what a camera without a known
    /// pose gets: the world is its own frame).
    pub const IDENTITY: Pose = Pose { r: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], t: [0.0; 3] };

    /// The same transform, rounded to f32 (about 1 mm of precision 10 km
    /// from the origin). For a camera, pass the optical frame's pose in the
    /// world ([`Frame::camera_to_world`](crate::Frame::camera_to_world)).
    pub fn from_isometry(iso: &nalgebra::Isometry3<f64>) -> Pose {
        let m = iso.rotation.to_rotation_matrix();
        let m = m.matrix();
        let mut r = [[0.0f32; 3]; 3];
        for (i, row) in r.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = m[(i, j)] as f32;
            }
        }
        let t = iso.translation.vector;
        Pose { r, t: [t.x as f32, t.y as f32, t.z as f32] }
    }

    /// A direction into the parent frame (rotation only).
    #[inline]
    pub fn rotate(&self, v: [f32; 3]) -> [f32; 3] {
        let r = &self.r;
        [
            r[0][0] * v[0] + r[0][1] * v[1] + r[0][2] * v[2],
            r[1][0] * v[0] + r[1][1] * v[1] + r[1][2] * v[2],
            r[2][0] * v[0] + r[2][1] * v[1] + r[2][2] * v[2],
        ]
    }

    /// A point into the parent frame.
    #[inline]
    pub fn apply(&self, v: [f32; 3]) -> [f32; 3] {
        let p = self.rotate(v);
        [p[0] + self.t[0], p[1] + self.t[1], p[2] + self.t[2]]
    }

    /// A point of the parent frame into the child frame (the inverse transform).
    #[inline]
    pub fn apply_inverse(&self, p: [f32; 3]) -> [f32; 3] {
        let d = [p[0] - self.t[0], p[1] - self.t[1], p[2] - self.t[2]];
        let r = &self.r;
        [
            r[0][0] * d[0] + r[1][0] * d[1] + r[2][0] * d[2],
            r[0][1] * d[0] + r[1][1] * d[1] + r[2][1] * d[2],
            r[0][2] * d[0] + r[1][2] * d[1] + r[2][2] * d[2],
        ]
    }
}

#[inline]
pub(crate) fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

#[inline]
pub(crate) fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

#[inline]
pub(crate) fn scale(a: [f32; 3], s: f32) -> [f32; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}

#[inline]
pub(crate) fn normalize(a: [f32; 3]) -> [f32; 3] {
    let l = dot(a, a).sqrt();
    if l > 0.0 {
        scale(a, 1.0 / l)
    } else {
        a
    }
}

#[inline]
pub(crate) fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

/// Projects a camera-frame point to pixel coordinates (None behind the camera).
#[inline]
pub(crate) fn project(k: &Intrinsics, p: [f32; 3]) -> Option<(f32, f32)> {
    if p[2] <= 0.05 {
        return None;
    }
    Some((k.fx * p[0] / p[2] + k.cx, k.fy * p[1] / p[2] + k.cy))
}

/// The geometry of one frame, per pixel.
#[derive(Default)]
pub(crate) struct Geometry {
    /// World position (camera frame when the camera pose is unknown).
    pub world: Vec<[f32; 3]>,
    /// World normal, facing the camera; for sky pixels minus the view direction.
    pub normal: Vec<[f32; 3]>,
    /// Unit view direction from the camera to the pixel, world frame.
    pub view: Vec<[f32; 3]>,
    /// Distance from the camera in metres, +inf for sky.
    pub distance: Vec<f32>,
    pub camera: Pose,
}

impl Default for Pose {
    fn default() -> Pose {
        Pose::IDENTITY
    }
}

#[inline]
fn valid(z: f32) -> bool {
    z.is_finite() && z > 0.0 && z < 1.0e4
}

impl Geometry {
    pub(crate) fn compute(&mut self, f: &Frame) {
        let (w, h) = (f.width, f.height);
        let n = w * h;
        let k = f.intrinsics;
        self.camera = f.camera_to_world.as_ref().map(Pose::from_isometry).unwrap_or(Pose::IDENTITY);
        let cam = self.camera;
        self.world.resize(n, [0.0; 3]);
        self.normal.resize(n, [0.0; 3]);
        self.view.resize(n, [0.0; 3]);
        self.distance.resize(n, 0.0);
        let depth = f.depth;
        let (ifx, ify) = (1.0 / k.fx, 1.0 / k.fy);
        let ray = |u: usize, v: usize| [(u as f32 + 0.5 - k.cx) * ifx, (v as f32 + 0.5 - k.cy) * ify, 1.0];
        let z_at = |u: usize, v: usize| depth.map(|d| d[v * w + u]).filter(|z| valid(*z));
        let point = |u: usize, v: usize| z_at(u, v).map(|z| scale(ray(u, v), z));
        self.world
            .par_chunks_mut(w)
            .zip(self.normal.par_chunks_mut(w))
            .zip(self.view.par_chunks_mut(w))
            .zip(self.distance.par_chunks_mut(w))
            .enumerate()
            .for_each(|(v, (((wr, nr), vr), dr))| {
                for u in 0..w {
                    let r = ray(u, v);
                    let dir_c = normalize(r);
                    let dir = cam.rotate(dir_c);
                    vr[u] = dir;
                    match point(u, v) {
                        Some(p) => {
                            wr[u] = cam.apply(p);
                            dr[u] = dot(p, p).sqrt();
                            // One-sided differences, each towards the neighbour nearer in depth.
                            let pick = |a: Option<[f32; 3]>, b: Option<[f32; 3]>| -> Option<[f32; 3]> {
                                match (a, b) {
                                    (Some(a), Some(b)) => {
                                        Some(if (a[2] - p[2]).abs() <= (b[2] - p[2]).abs() { sub(a, p) } else { sub(p, b) })
                                    }
                                    (Some(a), None) => Some(sub(a, p)),
                                    (None, Some(b)) => Some(sub(p, b)),
                                    (None, None) => None,
                                }
                            };
                            let dx = pick(if u + 1 < w { point(u + 1, v) } else { None }, if u > 0 { point(u - 1, v) } else { None });
                            let dy = pick(if v + 1 < h { point(u, v + 1) } else { None }, if v > 0 { point(u, v - 1) } else { None });
                            let mut nc = match (dx, dy) {
                                (Some(dx), Some(dy)) => normalize(cross(dy, dx)),
                                _ => scale(dir_c, -1.0),
                            };
                            if dot(nc, dir_c) > 0.0 {
                                nc = scale(nc, -1.0);
                            }
                            nr[u] = cam.rotate(nc);
                        }
                        None => {
                            wr[u] = cam.apply(scale(dir_c, 1.0e4));
                            dr[u] = f32::INFINITY;
                            nr[u] = scale(dir, -1.0);
                        }
                    }
                }
            });
    }
}
