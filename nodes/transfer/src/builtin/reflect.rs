//! Reflections in water films and ice on the ground: every point of the scene
//! above the ground plane is mirrored below it and splatted where the camera
//! would see the mirror image (a planar reflection, exact for flat ground,
//! computed at half resolution); missing rays see the mirrored sky. Light
//! sources leave the long streaks that wet roads are known for.

use super::geometry::{dot, project, Geometry};
use super::lights::{Environment, Sprite};
use crate::frame::Intrinsics;

/// A surface's colour with a reflection over it: a water film's Fresnel
/// (0.02 head-on, rising towards grazing), scaled by how much of a mirror it is.
#[inline]
pub fn blend(c: [f32; 3], refl: [f32; 3], mirror: f32, view: [f32; 3], normal: [f32; 3]) -> [f32; 3] {
    let cos = (-dot(view, normal)).clamp(0.0, 1.0);
    let f = (mirror * (0.02 + 0.98 * (1.0 - cos).powi(5))).min(1.0);
    [c[0] * (1.0 - f) + refl[0] * f, c[1] * (1.0 - f) + refl[1] * f, c[2] * (1.0 - f) + refl[2] * f]
}

pub struct Mirror {
    w2: usize,
    h2: usize,
    depth: Vec<f32>,
    color: Vec<[f32; 3]>,
}

fn splat(geo: &Geometry, hdr: &[[f32; 3]], k: &Intrinsics, w: usize, ground: f32, rows: std::ops::Range<usize>, m: &mut Mirror) {
    let cam = &geo.camera;
    for v in rows {
        for u in 0..w {
            let i = v * w + u;
            let p = geo.world[i];
            if !geo.distance[i].is_finite() || p[2] < ground + 0.05 {
                continue;
            }
            let q = cam.apply_inverse([p[0], p[1], 2.0 * ground - p[2]]);
            let Some((x, y)) = project(k, q) else { continue };
            if x < 0.0 || y < 0.0 {
                continue;
            }
            let (x2, y2) = ((x / 2.0) as usize, (y / 2.0) as usize);
            if x2 >= m.w2 || y2 >= m.h2 {
                continue;
            }
            let j = y2 * m.w2 + x2;
            if q[2] < m.depth[j] {
                m.depth[j] = q[2];
                m.color[j] = hdr[i];
            }
        }
    }
}

/// Adds reflections to the pixels with `mirror` > 0. Returns the ground height used.
#[allow(clippy::too_many_arguments)]
pub fn reflect(
    hdr: &mut [[f32; 3]],
    geo: &Geometry,
    mirror: &[f32],
    k: &Intrinsics,
    w: usize,
    h: usize,
    env: &Environment,
    sprites: &[Sprite],
    streaks: bool,
) -> Option<f32> {
    // The ground plane: the mean height of the reflecting pixels.
    let (mut sum, mut n) = (0.0f64, 0usize);
    for (i, &m) in mirror.iter().enumerate() {
        if m > 0.0 && geo.distance[i].is_finite() {
            sum += geo.world[i][2] as f64;
            n += 1;
        }
    }
    if n == 0 {
        return None;
    }
    let ground = (sum / n as f64) as f32;
    let (w2, h2) = (w.div_ceil(2), h.div_ceil(2));
    let fresh = || Mirror { w2, h2, depth: vec![f32::INFINITY; w2 * h2], color: vec![[0.0; 3]; w2 * h2] };
    let (mut a, mut b) = (fresh(), fresh());
    let src: &[[f32; 3]] = hdr;
    rayon::join(|| splat(geo, src, k, w, ground, 0..h / 2, &mut a), || splat(geo, src, k, w, ground, h / 2..h, &mut b));
    for j in 0..a.depth.len() {
        if b.depth[j] < a.depth[j] {
            a.depth[j] = b.depth[j];
            a.color[j] = b.color[j];
        }
    }
    // A rough surface blurs its reflection; the 3×3 mean also fills the splat's holes.
    let sample = |x2: usize, y2: usize| -> Option<[f32; 3]> {
        let (mut c, mut cnt) = ([0.0f32; 3], 0.0f32);
        for yy in y2.saturating_sub(1)..(y2 + 2).min(h2) {
            for xx in x2.saturating_sub(1)..(x2 + 2).min(w2) {
                let j = yy * w2 + xx;
                if a.depth[j].is_finite() {
                    c = [c[0] + a.color[j][0], c[1] + a.color[j][1], c[2] + a.color[j][2]];
                    cnt += 1.0;
                }
            }
        }
        (cnt >= 2.0).then(|| [c[0] / cnt, c[1] / cnt, c[2] / cnt])
    };
    for v in 0..h {
        for u in 0..w {
            let i = v * w + u;
            let m = mirror[i];
            if m <= 0.0 {
                continue;
            }
            let view = geo.view[i];
            let refl = sample(u / 2, v / 2).unwrap_or_else(|| env.sky([view[0], view[1], -view[2]]));
            hdr[i] = blend(hdr[i], refl, m, view, geo.normal[i]);
        }
    }
    if streaks {
        for s in sprites {
            let q = geo.camera.apply_inverse([s.pos[0], s.pos[1], 2.0 * ground - s.pos[2]]);
            let Some((x, y)) = project(k, q) else { continue };
            if x < -2.0 || x > w as f32 + 2.0 || y > h as f32 {
                continue;
            }
            let width = (s.size * k.fx / q[2]).clamp(0.8, 6.0);
            let len = (0.35 * (h as f32 - y)).clamp(6.0, 160.0);
            let top = y.max(0.0) as usize;
            for v in top..((y + len) as usize).min(h) {
                let along = (v as f32 - y) / len;
                let fall = (1.0 - along).max(0.0).powi(2) * 0.06;
                let half = width * (1.0 + along);
                for u in ((x - half).max(0.0) as usize)..((x + half + 1.0).min(w as f32) as usize) {
                    let i = v * w + u;
                    let m = mirror[i];
                    if m <= 0.0 {
                        continue;
                    }
                    let across = 1.0 - ((u as f32 - x).abs() / (half + 0.5)).min(1.0);
                    let k2 = m * fall * across;
                    let c = &mut hdr[i];
                    *c = [c[0] + s.color[0] * k2, c[1] + s.color[1] * k2, c[2] + s.color[2] * k2];
                }
            }
        }
    }
    Some(ground)
}
