//! Reprojection: the front view's pixels placed, by their depth, where
//! another camera of the rig sees them. What no camera saw stays a hole;
//! the model fills it.

use crate::rig::Camera;

/// Another camera's view built from the source view's pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Warp {
    /// rgb8, `size`×`size`; holes black.
    pub rgb: Vec<u8>,
    /// Per pixel whether a source pixel landed there (or a hole between them was closed).
    pub valid: Vec<bool>,
    /// The side, pixels.
    pub size: usize,
}

impl Warp {
    /// The fraction of pixels covered.
    pub fn coverage(&self) -> f32 {
        self.valid.iter().filter(|v| **v).count() as f32 / self.valid.len().max(1) as f32
    }

    /// The fraction of covered pixels in each cell of a `grid`×`grid`
    /// partition of the view (row-major): how much of each token position
    /// the reprojection supplies.
    pub fn cell_coverage(&self, grid: usize) -> Vec<f32> {
        let cell = self.size / grid.max(1);
        let mut out = vec![0f32; grid * grid];
        for y in 0..grid * cell {
            for x in 0..grid * cell {
                if self.valid[y * self.size + x] {
                    out[(y / cell) * grid + x / cell] += 1.0;
                }
            }
        }
        let n = (cell * cell).max(1) as f32;
        out.iter_mut().for_each(|v| *v /= n);
        out
    }
}

/// The codec's view geometry, shared with the other stages (`s2r_image::view`).
pub(crate) use s2r_image::view::{nearest_pixels, view_square as square};

/// A frame's depth (`w`×`h`, metres along the optical axis) sampled where
/// the codec's `size`×`size` view of the frame has its pixel centres (the
/// nearest frame pixel, [`nearest_pixels`]: depth is not averaged across
/// object edges).
pub fn view_depth(depth: &[f32], w: usize, h: usize, size: usize) -> Vec<f32> {
    nearest_pixels(w, h, size).map(|(x, y)| depth[y * w + x]).collect()
}

/// The source view `rgb` (interleaved, `src`'s size) with its z-depth
/// `depth` (metres; not finite or ≤ 0 where nothing was hit: sky) seen from
/// `dst` (a view of the same size): each source pixel goes to the
/// destination pixel its point projects into, the nearest point winning;
/// one-pixel cracks between landed pixels (a surface seen at a slant) are
/// closed from their nearest neighbour.
pub fn warp(src: &Camera, rgb: &[u8], depth: &[f32], dst: &Camera) -> Warp {
    let (sw, sh) = (src.width as usize, src.height as usize);
    let (dw, dh) = (dst.width as usize, dst.height as usize);
    assert_eq!(sw, dw, "the reprojection works between views of one size");
    assert_eq!(sh, dh, "the reprojection works between views of one size");
    let size = dw;
    let mut zbuf = vec![f32::INFINITY; dw * dh];
    let mut out = vec![0u8; dw * dh * 3];
    // Both poses once: every pixel shares them.
    let to_base = src.pose();
    let to_dst = dst.pose().inverse() * to_base;
    let [sfx, sfy, scx, scy] = src.k;
    let [dfx, dfy, dcx, dcy] = dst.k;
    for y in 0..sh {
        for x in 0..sw {
            let z = depth[y * sw + x];
            if !z.is_finite() || z <= 0.0 {
                continue;
            }
            let z = z as f64;
            let p = nalgebra::Point3::new((x as f64 - scx) / sfx * z, (y as f64 - scy) / sfy * z, z);
            let q = to_dst * p;
            if q.z <= 0.05 {
                continue;
            }
            let (u, v) = (dfx * q.x / q.z + dcx, dfy * q.y / q.z + dcy);
            let (ui, vi) = (u.round(), v.round());
            if ui < 0.0 || vi < 0.0 || ui >= dw as f64 || vi >= dh as f64 {
                continue;
            }
            let i = vi as usize * dw + ui as usize;
            if (q.z as f32) < zbuf[i] {
                zbuf[i] = q.z as f32;
                out[i * 3..i * 3 + 3].copy_from_slice(&rgb[(y * sw + x) * 3..(y * sw + x) * 3 + 3]);
            }
        }
    }
    let mut valid: Vec<bool> = zbuf.iter().map(|z| z.is_finite()).collect();
    // Close one-pixel cracks: a hole with landed pixels on both sides (left and
    // right, or above and below) takes the nearer of its neighbours.
    let landed = valid.clone();
    for y in 1..dh.saturating_sub(1) {
        for x in 1..dw.saturating_sub(1) {
            let i = y * dw + x;
            if landed[i] {
                continue;
            }
            let pairs = [(i - 1, i + 1), (i - dw, i + dw)];
            let mut best: Option<usize> = None;
            for (a, b) in pairs {
                if landed[a] && landed[b] {
                    for n in [a, b] {
                        if best.is_none_or(|m| zbuf[n] < zbuf[m]) {
                            best = Some(n);
                        }
                    }
                }
            }
            if let Some(n) = best {
                out.copy_within(n * 3..n * 3 + 3, i * 3);
                valid[i] = true;
            }
        }
    }
    Warp { rgb: out, valid, size }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rig::tests::level_camera;

    /// A flat wall 10 m ahead of the rig's front, coloured by position.
    fn wall(cam: &Camera) -> (Vec<u8>, Vec<f32>) {
        let s = cam.width as usize;
        let mut rgb = vec![0u8; s * s * 3];
        let mut depth = vec![f32::INFINITY; s * s];
        for y in 0..s {
            for x in 0..s {
                let ray = cam.ray(x as f64, y as f64);
                if ray.x <= 1e-6 {
                    continue;
                }
                // The wall is the plane x = 10 in base_link.
                let t = (10.0 - cam.translation[0]) / ray.x;
                let p = nalgebra::Point3::from(nalgebra::Vector3::from(cam.translation)) + ray * t;
                let (_, _, z) = cam.project(&p).unwrap();
                depth[y * s + x] = z as f32;
                // The colour says where on the wall: red along it (y), green up it (z).
                let (r, g) = ((128.0 + 12.0 * p.y).clamp(0.0, 255.0), (12.0 * p.z + 40.0).clamp(0.0, 255.0));
                rgb[(y * s + x) * 3..(y * s + x) * 3 + 3].copy_from_slice(&[r.round() as u8, g.round() as u8, 90]);
            }
        }
        (rgb, depth)
    }

    #[test]
    fn a_wall_seen_from_a_turned_camera_lands_where_that_camera_sees_it() {
        let front = level_camera("front", 96, 96, 90.0, [1.0, 0.0, 1.5], 0.0);
        let side = level_camera("front_left", 96, 96, 90.0, [0.8, 0.5, 1.5], 30.0);
        let (rgb, depth) = wall(&front);
        let (truth, _) = wall(&side);
        let w = warp(&front, &rgb, &depth, &side);
        // The overlap: a third of the side view or more, and every landed pixel shows the place on the wall
        // the side camera sees there (to within the half pixel that rounding moves it: 12 levels a metre,
        // about 0.2 m a pixel here).
        assert!(w.coverage() > 0.3, "coverage {}", w.coverage());
        let (mut err, mut worst, mut n) = (0f64, 0i32, 0);
        for i in 0..96 * 96 {
            if w.valid[i] {
                n += 1;
                for c in 0..2 {
                    let d = (w.rgb[i * 3 + c] as i32 - truth[i * 3 + c] as i32).abs();
                    err += d as f64;
                    worst = worst.max(d);
                }
            }
        }
        let mean = err / (2 * n) as f64;
        assert!(mean < 1.0 && worst <= 4, "landed pixels off by {mean:.2} levels on average, {worst} at worst, over {n}");
        // The side camera's left part looks past the front camera's field of view: holes there.
        assert!(!w.valid[48 * 96 + 2], "the far left of the side view is not seen by the front camera");
        // A camera looking backwards gets nothing.
        let rear = level_camera("rear", 96, 96, 90.0, [-1.0, 0.0, 1.5], 180.0);
        assert_eq!(warp(&front, &rgb, &depth, &rear).coverage(), 0.0);
        // Cell coverage: (nearly) full cells on the right, empty on the left.
        let cells = w.cell_coverage(4);
        assert!(cells[4 + 2] > 0.9 && cells[4 + 3] > 0.8 && cells[4] < 0.1, "{cells:?}");
    }

    #[test]
    fn the_view_depth_samples_the_centre_square() {
        // 8×4 frame: the view of side 2 samples columns 2..6.
        let depth: Vec<f32> = (0..32).map(|i| i as f32).collect();
        assert_eq!(view_depth(&depth, 8, 4, 2), vec![11.0, 13.0, 27.0, 29.0]);
        // 640×480 into 256: view pixel 0's centre is frame column 80 + ½·1.875 = 80.94, nearest 81.
        let columns: Vec<f32> = (0..640 * 480).map(|i| (i % 640) as f32).collect();
        let v = view_depth(&columns, 640, 480, 256);
        assert_eq!((v[0], v[255]), (81.0, 559.0));
    }
}
