//! What the air does: fog and haze by distance (Koschmieder), falling rain
//! and snow as particles that live in the world (consistent from frame to
//! frame, hidden behind nearer surfaces), and light sources seen directly.

use std::ops::Range;

use rayon::prelude::*;

use super::geometry::{dot, project, sub, Pose};
use super::lights::{mix, Environment, Light, Sprite};
use super::noise::{hash3, hash32, unit};
use crate::frame::Intrinsics;
use s2r_look::{Look, Precipitation};

/// Extinction coefficient per metre for a look: haze always, fog and
/// falling precipitation on top. Fog 1 is ~65 m visibility.
pub fn extinction(look: &Look) -> f32 {
    0.0012 + look.fog * 0.06 + look.precipitation_intensity * if look.precipitation == Precipitation::Snow { 0.012 } else { 0.006 }
}

/// Attenuates by distance and adds the airlight.
pub fn fog(hdr: &mut [[f32; 3]], distance: &[f32], beta: f32, env: &Environment, sky_fog: f32) {
    hdr.par_chunks_mut(4096).zip(distance.par_chunks(4096)).for_each(|(c, d)| {
        for (c, d) in c.iter_mut().zip(d) {
            let t = if d.is_finite() { (-beta * d).exp() } else { 1.0 - sky_fog };
            *c = mix(env.airlight, *c, t);
        }
    });
}

/// Light arriving at a point in the air (for particles).
fn light_at(p: [f32; 3], env: &Environment, lights: &[Light]) -> [f32; 3] {
    let mut c = [env.ambient[0] + env.sun[0] * 0.3, env.ambient[1] + env.sun[1] * 0.3, env.ambient[2] + env.sun[2] * 0.3];
    for l in lights {
        let d = sub(l.pos, p);
        let d2 = dot(d, d);
        if d2 > l.radius * l.radius {
            continue;
        }
        let mut k = 1.0 / (d2 + 1.0);
        if l.near > 0.0 {
            k *= d2 / (d2 + l.near * l.near);
        }
        if let Some((axis, inner, outer)) = l.spot {
            let cos = -dot(d, axis) / d2.sqrt().max(1e-4);
            if cos <= outer {
                continue;
            }
            let t = ((cos - outer) / (inner - outer)).clamp(0.0, 1.0);
            k *= t * t;
        }
        c = [c[0] + l.color[0] * k, c[1] + l.color[1] * k, c[2] + l.color[2] * k];
    }
    c
}

#[inline]
fn blend(hdr: &mut [[f32; 3]], w: usize, h: usize, u: i32, v: i32, c: [f32; 3], a: f32) {
    if u < 0 || v < 0 || u as usize >= w || v as usize >= h || a <= 0.0 {
        return;
    }
    let px = &mut hdr[v as usize * w + u as usize];
    *px = mix(*px, c, a.min(1.0));
}

/// What particle drawing needs of the frame.
pub struct ParticleView<'a> {
    pub width: usize,
    pub height: usize,
    pub k: Intrinsics,
    pub camera: Pose,
    /// Depth along the optical axis per pixel (+inf for sky).
    pub depth: Option<&'a [f32]>,
    pub seconds: f64,
    pub seed: u32,
    pub beta: f32,
}

const CELL: f32 = 2.0;

/// Where a look's rain or snow falls around a camera: the world cells
/// (`CELL` metres on a side) that hold particles, how many each holds, how
/// fast they fall, how far from the camera they are drawn, and the time of
/// the fall. The CPU path walks these cells; the GPU path runs one thread
/// per particle of them, in the same order.
pub(crate) struct Fall {
    pub snow: bool,
    pub per_cell: u32,
    /// Metres from the camera beyond which particles are not drawn.
    pub reach: f32,
    /// Falling speed, metres per second (each particle varies it by ±20%).
    pub speed: f32,
    /// Seconds of the frame's stamp modulo an hour.
    pub t: f32,
    pub i: Range<i32>,
    pub j: Range<i32>,
    pub k: Range<i32>,
}

impl Fall {
    /// The fall for a look, around a camera at `camera` (world, metres) at
    /// `seconds`; None without precipitation.
    pub(crate) fn of(look: &Look, camera: [f32; 3], seconds: f64) -> Option<Fall> {
        let snow = match look.precipitation {
            Precipitation::None => return None,
            Precipitation::Snow => true,
            Precipitation::Rain => false,
        };
        let intensity = look.precipitation_intensity.clamp(0.0, 1.0);
        let reach = if snow { 18.0 } else { 22.0 };
        let cells = |c: f32| ((c - reach) / CELL).floor() as i32..((c + reach) / CELL).ceil() as i32;
        Some(Fall {
            snow,
            per_cell: ((if snow { 14.0 } else { 7.0 }) * intensity).ceil() as u32,
            reach,
            speed: if snow { 1.1 } else { 7.5 },
            // Modulo a long period, in f64 first: f32 precision for long runs and epoch stamps.
            t: seconds.rem_euclid(3600.0) as f32,
            i: cells(camera[0]),
            j: cells(camera[1]),
            k: ((camera[2] - 6.0) / CELL).floor().max(-1.0) as i32..((camera[2] + 8.0) / CELL).ceil() as i32,
        })
    }

    /// How many particles the cells hold.
    pub(crate) fn count(&self) -> usize {
        self.i.len() * self.j.len() * self.k.len() * self.per_cell as usize
    }
}

/// Draws falling snow or rain; returns the number of particles drawn.
pub fn particles(hdr: &mut [[f32; 3]], view: &ParticleView, look: &Look, env: &Environment, lights: &[Light]) -> usize {
    let Some(Fall { snow, per_cell, reach, speed: fall, t, i: cells_i, j: cells_j, k: cells_k }) =
        Fall::of(look, view.camera.t, view.seconds)
    else {
        return 0;
    };
    let (w, h) = (view.width, view.height);
    let exposure_s = 1.0 / 60.0;
    let mut drawn = 0;
    for i in cells_i {
        for j in cells_j.clone() {
            for kz in cells_k.clone() {
                let cell_seed = hash3(i, j, view.seed ^ (kz as u32).wrapping_mul(0x9e37_79b9));
                for n in 0..per_cell {
                    let hsh = hash32(cell_seed.wrapping_add(n.wrapping_mul(0x85eb_ca6b)));
                    let (ox, oy, oz) = (unit(hsh), unit(hash32(hsh ^ 1)), unit(hash32(hsh ^ 2)));
                    let speed = fall * (0.8 + 0.4 * unit(hash32(hsh ^ 3)));
                    let phase = unit(hash32(hsh ^ 4)) * std::f32::consts::TAU;
                    let sway = if snow { 0.25 * (t * 1.3 + phase).sin() } else { 0.0 };
                    let z_in_cell = (oz * CELL - speed * t).rem_euclid(CELL);
                    let p = [(i as f32 + ox) * CELL + sway, (j as f32 + oy) * CELL + 0.6 * sway, kz as f32 * CELL + z_in_cell];
                    if p[2] < -0.2 {
                        continue;
                    }
                    let pc = view.camera.apply_inverse(p);
                    let Some((u, v)) = project(&view.k, pc) else { continue };
                    if u < -8.0 || v < -8.0 || u > w as f32 + 8.0 || v > h as f32 + 8.0 || pc[2] > reach {
                        continue;
                    }
                    let (ui, vi) = (u as i32, v as i32);
                    let occluded = |uu: i32, vv: i32| -> bool {
                        if uu < 0 || vv < 0 || uu as usize >= w || vv as usize >= h {
                            return false;
                        }
                        view.depth.is_some_and(|d| {
                            let z = d[vv as usize * w + uu as usize];
                            z.is_finite() && z > 0.0 && z < pc[2]
                        })
                    };
                    if occluded(ui, vi) {
                        continue;
                    }
                    let fog_t = (-view.beta * pc[2]).exp();
                    let lit = light_at(p, env, lights);
                    drawn += 1;
                    if snow {
                        let radius = (0.007 * view.k.fx / pc[2]).clamp(0.5, 5.0);
                        // Out-of-focus flakes near the lens are big and faint.
                        let alpha = (0.85 / (radius * 0.6).max(1.0)) * fog_t;
                        let c = [lit[0] * 0.9, lit[1] * 0.92, lit[2] * 0.95];
                        let r = radius.ceil() as i32;
                        for dv in -r..=r {
                            for du in -r..=r {
                                let d = ((du as f32 + 0.5 - u.fract()).powi(2) + (dv as f32 + 0.5 - v.fract()).powi(2)).sqrt();
                                let cov = (radius + 0.5 - d).clamp(0.0, 1.0);
                                if cov > 0.0 && !occluded(ui + du, vi + dv) {
                                    blend(hdr, w, h, ui + du, vi + dv, c, alpha * cov);
                                }
                            }
                        }
                    } else {
                        // A streak: where the drop was over the exposure.
                        let p0 = [p[0], p[1], p[2] + speed * exposure_s];
                        let Some((u0, v0)) = project(&view.k, view.camera.apply_inverse(p0)) else { continue };
                        let len = ((u - u0).powi(2) + (v - v0).powi(2)).sqrt().max(1.0);
                        let steps = len.ceil().min(80.0) as i32;
                        let alpha = (0.22 * fog_t / (len / 12.0).max(1.0)).min(0.35);
                        let c = [lit[0] * 0.7 + 0.02, lit[1] * 0.72 + 0.02, lit[2] * 0.78 + 0.025];
                        for s in 0..=steps {
                            let f = s as f32 / steps.max(1) as f32;
                            let (uu, vv) = ((u0 + (u - u0) * f) as i32, (v0 + (v - v0) * f) as i32);
                            if !occluded(uu, vv) {
                                blend(hdr, w, h, uu, vv, c, alpha);
                            }
                        }
                    }
                }
            }
        }
    }
    drawn
}

/// Draws the light sources the camera sees directly; returns how many.
pub fn sprites(hdr: &mut [[f32; 3]], view: &ParticleView, sprites: &[Sprite]) -> usize {
    let (w, h) = (view.width, view.height);
    let mut n = 0;
    for s in sprites {
        let pc = view.camera.apply_inverse(s.pos);
        let Some((u, v)) = project(&view.k, pc) else { continue };
        if u < -4.0 || v < -4.0 || u > w as f32 + 4.0 || v > h as f32 + 4.0 || pc[2] > 300.0 {
            continue;
        }
        let (ui, vi) = (u as i32, v as i32);
        if ui >= 0 && vi >= 0 && (ui as usize) < w && (vi as usize) < h {
            if let Some(d) = view.depth {
                let z = d[vi as usize * w + ui as usize];
                if z.is_finite() && z > 0.0 && z < pc[2] - 0.3 {
                    continue;
                }
            }
        }
        let fog_t = (-view.beta * pc[2]).exp();
        let radius = (s.size * view.k.fx / pc[2]).clamp(0.7, 12.0);
        // Energy spread over the disc: a small far light stays as bright in total.
        let energy = (s.size * view.k.fx / pc[2] / radius).powi(2).max(0.05);
        let r = radius.ceil() as i32;
        for dv in -r..=r {
            for du in -r..=r {
                let d = ((du as f32).powi(2) + (dv as f32).powi(2)).sqrt();
                let cov = (radius + 0.5 - d).clamp(0.0, 1.0);
                let (x, y) = (ui + du, vi + dv);
                if cov > 0.0 && x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
                    let px = &mut hdr[y as usize * w + x as usize];
                    let k = cov * fog_t * energy;
                    *px = [px[0] + s.color[0] * k, px[1] + s.color[1] * k, px[2] + s.color[2] * k];
                }
            }
        }
        n += 1;
    }
    n
}
