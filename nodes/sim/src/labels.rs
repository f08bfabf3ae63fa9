//! Ground truth from what was rendered: 2-D boxes from the instance masks
//! (tight by construction), the fraction of each object that is visible, and
//! the objects' 3-D poses.

use std::collections::BTreeMap;
use std::sync::Arc;

use nalgebra::{Isometry3, Point3};

use crate::asset::MeshAsset;
use crate::figures::{posed, Gait};
use crate::render::{cylinder_points, CameraModel, Images, NEAR};
use crate::world::{Object, Shape};

/// The pixels of one instance in one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskBox {
    /// The instance id (`Object::instance`, never 0).
    pub instance: u16,
    /// Class of its pixels (the most frequent one, should they differ).
    pub class: u8,
    /// Leftmost column, inclusive.
    pub x_min: u32,
    /// Top row, inclusive.
    pub y_min: u32,
    /// Rightmost column, inclusive.
    pub x_max: u32,
    /// Bottom row, inclusive.
    pub y_max: u32,
    /// Pixels of the instance in the image: what is visible of it.
    pub pixels: u32,
}

impl MaskBox {
    /// Centre in pixel coordinates (pixel centres at integers) and size in pixels.
    pub(crate) fn center_size(&self) -> (f64, f64, f64, f64) {
        (
            (self.x_min + self.x_max) as f64 / 2.0,
            (self.y_min + self.y_max) as f64 / 2.0,
            (self.x_max - self.x_min + 1) as f64,
            (self.y_max - self.y_min + 1) as f64,
        )
    }
}

/// One box per instance id present in the image (0, the background, excluded),
/// sorted by instance id.
pub fn mask_boxes(img: &Images) -> Vec<MaskBox> {
    let w = img.width as usize;
    let mut boxes: BTreeMap<u16, (MaskBox, [u32; 256])> = BTreeMap::new();
    for (row, (ids, classes)) in img.instance.chunks_exact(w).zip(img.class.chunks_exact(w)).enumerate() {
        let y = row as u32;
        let mut x = 0;
        while x < w {
            let id = ids[x];
            if id == 0 {
                x += 1;
                continue;
            }
            // A run of one id on this row.
            let start = x;
            while x < w && ids[x] == id {
                x += 1;
            }
            let entry = boxes.entry(id).or_insert_with(|| {
                (MaskBox { instance: id, class: 0, x_min: u32::MAX, y_min: u32::MAX, x_max: 0, y_max: 0, pixels: 0 }, [0; 256])
            });
            let b = &mut entry.0;
            b.x_min = b.x_min.min(start as u32);
            b.x_max = b.x_max.max(x as u32 - 1);
            b.y_min = b.y_min.min(y);
            b.y_max = b.y_max.max(y);
            b.pixels += (x - start) as u32;
            for c in &classes[start..x] {
                entry.1[*c as usize] += 1;
            }
        }
    }
    boxes
        .into_values()
        .map(|(mut b, hist)| {
            b.class = (0..256).max_by_key(|&c| hist[c]).unwrap_or(0) as u8;
            b
        })
        .collect()
}

/// Corners and edges of an object's parts, object frame; `meshes` are the
/// world's ([`crate::world::World::meshes`]).
fn outline(o: &Object, gait: Gait, meshes: &[Arc<MeshAsset>]) -> (Vec<Point3<f32>>, Vec<(usize, usize)>) {
    let mut pts = Vec::new();
    let mut edges = Vec::new();
    for part in &o.parts {
        let base = pts.len();
        let offset = posed(part, gait);
        match part.shape {
            Shape::Box(s) => {
                for i in 0..8 {
                    let sx = if i & 1 == 0 { -0.5 } else { 0.5 };
                    let sy = if i & 2 == 0 { -0.5 } else { 0.5 };
                    let sz = if i & 4 == 0 { -0.5 } else { 0.5 };
                    pts.push(offset * Point3::new(sx * s[0], sy * s[1], sz * s[2]));
                }
                for i in 0..8usize {
                    for bit in [1, 2, 4] {
                        if i & bit == 0 {
                            edges.push((base + i, base + (i | bit)));
                        }
                    }
                }
            }
            Shape::Cylinder { diameter, height } => {
                let ring = cylinder_points();
                for p in &ring {
                    pts.push(offset * Point3::new(p[0] * diameter, p[1] * diameter, p[2] * height));
                }
                let n = ring.len() / 2;
                for i in 0..n {
                    let j = (i + 1) % n;
                    edges.push((base + 2 * i, base + 2 * i + 1));
                    edges.push((base + 2 * i, base + 2 * j));
                    edges.push((base + 2 * i + 1, base + 2 * j + 1));
                }
            }
            Shape::Mesh { asset, size } => {
                // The sampled triangles of the mesh, stretched to the part's size.
                let Some(m) = meshes.get(asset as usize) else { continue };
                pts.extend(m.outline.iter().map(|p| offset * Point3::new(p.x * size[0], p.y * size[1], p.z * size[2])));
                for t in 0..m.outline.len() / 3 {
                    let i = base + 3 * t;
                    edges.extend([(i, i + 1), (i + 1, i + 2), (i + 2, i)]);
                }
            }
        }
    }
    (pts, edges)
}

fn cross(o: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
}

/// Convex hull, counter-clockwise (Andrew's monotone chain).
fn hull(mut p: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    p.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let mut lower: Vec<(f64, f64)> = Vec::new();
    for &q in &p {
        while lower.len() >= 2 && cross(lower[lower.len() - 2], lower[lower.len() - 1], q) <= 0.0 {
            lower.pop();
        }
        lower.push(q);
    }
    let mut upper: Vec<(f64, f64)> = Vec::new();
    for &q in p.iter().rev() {
        while upper.len() >= 2 && cross(upper[upper.len() - 2], upper[upper.len() - 1], q) <= 0.0 {
            upper.pop();
        }
        upper.push(q);
    }
    lower.pop();
    upper.pop();
    lower.extend(upper);
    lower
}

/// Clips a convex polygon to x ∈ [x0, x1], y ∈ [y0, y1] (Sutherland–Hodgman).
fn clip_rect(poly: Vec<(f64, f64)>, x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<(f64, f64)> {
    let mut out = poly;
    let planes: [(usize, f64, f64); 4] = [(0, x0, 1.0), (0, x1, -1.0), (1, y0, 1.0), (1, y1, -1.0)];
    for (axis, at, sign) in planes {
        if out.is_empty() {
            break;
        }
        let inside = |p: &(f64, f64)| sign * ((if axis == 0 { p.0 } else { p.1 }) - at) >= 0.0;
        let mut next = Vec::new();
        for i in 0..out.len() {
            let a = out[i];
            let b = out[(i + 1) % out.len()];
            let (ia, ib) = (inside(&a), inside(&b));
            if ia {
                next.push(a);
            }
            if ia != ib {
                let (va, vb) = if axis == 0 { (a.0, b.0) } else { (a.1, b.1) };
                let t = (at - va) / (vb - va);
                next.push((a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t));
            }
        }
        out = next;
    }
    out
}

fn area(poly: &[(f64, f64)]) -> f64 {
    let n = poly.len();
    (0..n).map(|i| poly[i].0 * poly[(i + 1) % n].1 - poly[(i + 1) % n].0 * poly[i].1).sum::<f64>().abs() / 2.0
}

/// Area in pixels of an object's silhouette within the image, hidden parts
/// included: the convex hull of its outline cut at the near plane, projected,
/// and clipped to the image. `object_in_optical` is the object's pose in the
/// camera's optical frame; `gait` poses its limbs; `meshes` are the world's.
pub(crate) fn silhouette_area(
    o: &Object,
    gait: Gait,
    meshes: &[Arc<MeshAsset>],
    object_in_optical: &Isometry3<f32>,
    cam: &CameraModel,
) -> f64 {
    let (pts, edges) = outline(o, gait, meshes);
    let p: Vec<Point3<f64>> = pts.iter().map(|q| (object_in_optical * q).cast::<f64>()).collect();
    let near = NEAR as f64;
    let mut kept: Vec<Point3<f64>> = p.iter().filter(|q| q.z >= near).copied().collect();
    for &(a, b) in &edges {
        let (pa, pb) = (p[a], p[b]);
        if (pa.z < near) != (pb.z < near) {
            let t = (near - pa.z) / (pb.z - pa.z);
            kept.push(pa + (pb - pa) * t);
        }
    }
    let projected: Vec<(f64, f64)> = kept.iter().filter_map(|q| cam.project(q)).collect();
    let h = hull(projected);
    if h.len() < 3 {
        return 0.0;
    }
    let clipped = clip_rect(h, -0.5, -0.5, cam.width as f64 - 0.5, cam.height as f64 - 0.5);
    area(&clipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hull_and_clip_areas() {
        let square = hull(vec![(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0), (1.0, 1.0)]);
        assert_eq!(square.len(), 4);
        assert!((area(&square) - 4.0).abs() < 1e-12);
        let clipped = clip_rect(square, 1.0, -5.0, 5.0, 5.0);
        assert!((area(&clipped) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn boxes_bound_masks() {
        let (w, h) = (6u32, 4u32);
        let mut instance = vec![0u16; 24];
        let mut class = vec![0u8; 24];
        for (x, y) in [(1, 1), (2, 1), (2, 2), (4, 3)] {
            instance[y * 6 + x] = 7;
            class[y * 6 + x] = 3;
        }
        let img = Images { width: w, height: h, rgb: vec![0; 72], depth: vec![0.0; 24], class, instance };
        let b = mask_boxes(&img);
        assert_eq!(b, vec![MaskBox { instance: 7, class: 3, x_min: 1, y_min: 1, x_max: 4, y_max: 3, pixels: 4 }]);
        assert_eq!(b[0].center_size(), (2.5, 2.0, 4.0, 3.0));
    }
}
