//! The light of a look: sun, sky and ambient by time of day and cloud; the
//! ego's headlights, street lights along the road and other vehicles'
//! headlights as spot and point lights in the world; per-pixel shading
//! (Lambert + Blinn-Phong + sky reflection) with lights culled per tile.

use super::geometry::{dot, normalize, scale, sub, Pose};
use super::materials::Surf;
use crate::frame::Frame;
use s2r_look::{Look, TimeOfDay};

/// Where street lights stand: along the world x axis, alternating sides
/// (only those within 90 m of the camera along x are drawn). Metres, in the
/// world (map) frame, z up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StreetLayout {
    /// Distance along x between consecutive lights (they alternate sides);
    /// under 1 counts as 1.
    pub spacing: f32,
    /// World x of one light (the others are `spacing` apart).
    pub phase: f32,
    /// Lateral distance from the road's centre line (world y = 0).
    pub offset: f32,
    /// Height of the lamp above the ground (world z = 0).
    pub height: f32,
}

impl Default for StreetLayout {
    /// The layout sim_node's road worlds use.
    fn default() -> StreetLayout {
        StreetLayout { spacing: 25.0, phase: 15.0, offset: 5.0, height: 6.0 }
    }
}

/// Sun, sky and exposure.
#[derive(Clone, Copy, Debug)]
pub struct Environment {
    pub sun_dir: [f32; 3],
    pub sun: [f32; 3],
    pub ambient: [f32; 3],
    pub sky_zenith: [f32; 3],
    pub sky_horizon: [f32; 3],
    /// The colour fog scatters towards the camera.
    pub airlight: [f32; 3],
    /// Radiance to sensor scale.
    pub exposure: f32,
}

impl Environment {
    pub fn new(look: &Look) -> Environment {
        let elevation = if look.low_sun { 7.0f32 } else { look.time.sun_elevation() }.to_radians();
        let azimuth = 200.0f32.to_radians();
        let sun_dir = [elevation.cos() * azimuth.cos(), elevation.cos() * azimuth.sin(), elevation.sin()];
        let (sun, ambient, zenith, horizon, exposure) = match look.time {
            TimeOfDay::Noon => ([3.2, 3.1, 2.95], [0.35, 0.42, 0.55], [0.18, 0.35, 0.75], [0.65, 0.75, 0.88], 0.9),
            TimeOfDay::Morning | TimeOfDay::Afternoon => ([2.7, 2.45, 2.0], [0.3, 0.34, 0.45], [0.2, 0.35, 0.7], [0.75, 0.72, 0.7], 1.0),
            TimeOfDay::Dawn => ([1.6, 0.9, 0.5], [0.12, 0.11, 0.14], [0.12, 0.16, 0.35], [0.9, 0.55, 0.35], 2.2),
            TimeOfDay::Dusk => ([0.0; 3], [0.05, 0.045, 0.07], [0.03, 0.05, 0.14], [0.3, 0.17, 0.14], 4.0),
            TimeOfDay::Night => ([0.0; 3], [0.008, 0.009, 0.015], [0.002, 0.003, 0.008], [0.018, 0.015, 0.014], 7.0),
        };
        let (mut sun, mut ambient, mut zenith, mut horizon): ([f32; 3], [f32; 3], [f32; 3], [f32; 3]) = (sun, ambient, zenith, horizon);
        if look.low_sun && !look.time.is_dark() {
            sun = [2.2, 1.4, 0.8];
            horizon = [0.95, 0.7, 0.5];
        }
        // Cloud: the sun goes, its light spreads into a grey sky.
        let o = look.overcast.clamp(0.0, 1.0);
        if o > 0.0 {
            let total = (sun[0] + sun[1] + sun[2]) / 3.0 * 0.25 + (ambient[0] + ambient[1] + ambient[2]) / 3.0;
            let grey = [total * 0.95, total, total * 1.05];
            sun = scale(sun, 1.0 - 0.92 * o);
            ambient = mix(ambient, grey, o);
            let sky_grey = (zenith[0] + zenith[1] + zenith[2] + horizon[0] + horizon[1] + horizon[2]) / 6.0;
            zenith = mix(zenith, [sky_grey * 0.9; 3], o);
            horizon = mix(horizon, [sky_grey * 1.1; 3], o);
        }
        let airlight =
            if look.time.is_dark() { scale(mix(horizon, [0.03, 0.028, 0.025], 0.5), 1.0) } else { mix(horizon, [0.7, 0.72, 0.75], 0.5) };
        Environment { sun_dir, sun, ambient, sky_zenith: zenith, sky_horizon: horizon, airlight, exposure }
    }

    /// Sky radiance in a world direction.
    #[inline]
    pub fn sky(&self, dir: [f32; 3]) -> [f32; 3] {
        let e = dir[2].clamp(-1.0, 1.0);
        let t = e.max(0.0).sqrt();
        let mut c = mix(self.sky_horizon, self.sky_zenith, t);
        if e < 0.0 {
            c = scale(self.sky_horizon, 0.6);
        }
        let s = dot(dir, self.sun_dir).max(0.0);
        if self.sun[0] > 0.0 {
            let glow = s.powi(64) * 4.0 + s.powi(8) * 0.25;
            c = [c[0] + self.sun[0] * glow, c[1] + self.sun[1] * glow, c[2] + self.sun[2] * glow];
        }
        c
    }
}

#[inline]
pub fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

/// A light in the world.
#[derive(Clone, Copy, Debug)]
pub struct Light {
    pub pos: [f32; 3],
    /// Colour times intensity (radiance × m² at 1 m).
    pub color: [f32; 3],
    /// Spot: axis and the cosines of the full-intensity and the cut-off angle.
    pub spot: Option<([f32; 3], f32, f32)>,
    /// Beyond this distance the light is windowed to zero (for culling).
    pub radius: f32,
    /// A headlight's beam pattern puts its light far down the road: the
    /// near field gets d²/(d² + near²) of the inverse-square law.
    pub near: f32,
}

/// A bright point the camera sees directly (lamp heads, headlights facing it):
/// drawn into the image, mirrored on wet ground, source of glare.
#[derive(Clone, Copy, Debug)]
pub struct Sprite {
    pub pos: [f32; 3],
    pub color: [f32; 3],
    /// Physical radius of the emitter, metres.
    pub size: f32,
}

fn rot_z(yaw: f32, v: [f32; 3]) -> [f32; 3] {
    let (s, c) = yaw.sin_cos();
    [c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]]
}

/// The lights and sprites of a frame.
pub fn scene_lights(frame: &Frame, look: &Look, layout: &StreetLayout, has_road: bool, camera: &Pose) -> (Vec<Light>, Vec<Sprite>) {
    let mut lights = Vec::new();
    let mut sprites = Vec::new();
    let dark = look.time.is_dark();
    let beam = |pos: [f32; 3], axis: [f32; 3], power: f32| Light {
        pos,
        color: scale([1.0, 0.96, 0.88], power),
        spot: Some((normalize(axis), 14f32.to_radians().cos(), 34f32.to_radians().cos())),
        radius: 90.0,
        near: 12.0,
    };
    if look.headlights {
        match &frame.ego_to_world {
            Some(ego) => {
                let e = Pose::from_isometry(ego);
                let front = e.apply([frame.ego_size[0] / 2.0 + 0.05, 0.0, 0.68]);
                lights.push(beam(front, e.rotate([1.0, 0.0, -0.03]), 60.0));
            }
            // No ego pose: a lamp beside the camera, along its axis.
            None => lights.push(beam(camera.apply([0.0, 0.5, -0.3]), camera.rotate([0.0, 0.03, 1.0]), 60.0)),
        }
    }
    if has_road && (look.street_lights || dark) {
        let (cx, cy) = (camera.t[0], camera.t[1]);
        let _ = cy;
        let s = layout.spacing.max(1.0);
        let first = ((cx - 90.0 - layout.phase) / s).ceil() as i64;
        let last = ((cx + 90.0 - layout.phase) / s).floor() as i64;
        for k in first..=last {
            let x = layout.phase + k as f32 * s;
            let side = if k.rem_euclid(2) == 1 { 1.0 } else { -1.0 };
            let pos = [x, side * layout.offset, layout.height];
            lights.push(Light {
                pos,
                color: [95.0, 70.0, 42.0],
                spot: Some(([0.0, 0.0, -1.0], 40f32.to_radians().cos(), 75f32.to_radians().cos())),
                radius: 32.0,
                near: 0.0,
            });
            sprites.push(Sprite { pos: [x, side * layout.offset, layout.height - 0.1], color: [60.0, 44.0, 26.0], size: 0.25 });
        }
    }
    if dark || look.headlights {
        for v in &frame.vehicles {
            let c = [v.center.x, v.center.y, v.center.z];
            let at = |local: [f32; 3]| {
                let r = rot_z(v.yaw, local);
                [c[0] + r[0], c[1] + r[1], c[2] + r[2]]
            };
            let (l, w, h) = (v.size[0], v.size[1], v.size[2]);
            let heading = rot_z(v.yaw, [1.0, 0.0, -0.05]);
            lights.push(beam(at([l / 2.0 + 0.05, 0.0, -h / 2.0 + 0.68]), heading, 80.0));
            for side in [-1.0, 1.0] {
                sprites.push(Sprite {
                    pos: at([l / 2.0 + 0.02, side * (w / 2.0 - 0.25), -h / 2.0 + 0.68]),
                    color: [35.0, 34.0, 31.0],
                    size: 0.12,
                });
                sprites.push(Sprite {
                    pos: at([-l / 2.0 - 0.02, side * (w / 2.0 - 0.2), -h / 2.0 + 0.8]),
                    color: [14.0, 0.8, 0.5],
                    size: 0.08,
                });
            }
        }
    }
    (lights, sprites)
}

/// Radiance reflected by a surface towards the camera, without its emission.
#[inline]
pub fn shade(
    surf: &Surf,
    p: [f32; 3],
    n: [f32; 3],
    to_eye: [f32; 3],
    env: &Environment,
    lights: &[&Light],
    depth_strength: f32,
) -> [f32; 3] {
    let a = surf.albedo;
    let hemi = 0.55 + 0.45 * n[2];
    let flat_amb = scale(env.ambient, 0.8);
    let amb = mix(flat_amb, scale(env.ambient, hemi), depth_strength);
    let mut diffuse = amb;
    let mut spec = [0.0f32; 3];
    let norm = (surf.gloss + 8.0) / 25.0;
    let mut add = |l: [f32; 3], radiance: [f32; 3]| {
        let ndl_raw = dot(n, l);
        let ndl = ndl_raw.max(0.0) * depth_strength + (1.0 - depth_strength) * 0.6;
        if ndl <= 0.0 {
            return;
        }
        diffuse = [diffuse[0] + radiance[0] * ndl, diffuse[1] + radiance[1] * ndl, diffuse[2] + radiance[2] * ndl];
        if surf.f0 > 0.0 && ndl_raw > 0.0 {
            let h = normalize([l[0] + to_eye[0], l[1] + to_eye[1], l[2] + to_eye[2]]);
            let x = dot(n, h).max(0.0);
            let s = surf.f0 * norm * (x / (surf.gloss - surf.gloss * x + x)) * ndl_raw;
            spec = [spec[0] + radiance[0] * s, spec[1] + radiance[1] * s, spec[2] + radiance[2] * s];
        }
    };
    if env.sun[0] > 0.0 {
        add(env.sun_dir, env.sun);
    }
    for l in lights {
        let d = sub(l.pos, p);
        let d2 = dot(d, d);
        let r2 = l.radius * l.radius;
        if d2 >= r2 {
            continue;
        }
        let dist = d2.sqrt();
        let dir = scale(d, 1.0 / dist.max(1e-4));
        let window = {
            let q = d2 / r2;
            let w = (1.0 - q * q).max(0.0);
            w * w
        };
        let mut k = window / (d2 + 1.0);
        if l.near > 0.0 {
            k *= d2 / (d2 + l.near * l.near);
        }
        if let Some((axis, inner, outer)) = l.spot {
            let c = -dot(dir, axis);
            if c <= outer {
                continue;
            }
            let t = ((c - outer) / (inner - outer)).clamp(0.0, 1.0);
            k *= t * t;
        }
        add(dir, scale(l.color, k));
    }
    let mut c = [a[0] * diffuse[0] + spec[0], a[1] * diffuse[1] + spec[1], a[2] * diffuse[2] + spec[2]];
    if surf.f0 > 0.0 && surf.gloss > 30.0 {
        // Glossy surfaces mirror the sky (car paint, glass).
        let ndv = dot(n, to_eye).clamp(0.0, 1.0);
        let fresnel = surf.f0 + (1.0 - surf.f0) * (1.0 - ndv).powi(5);
        let r = [2.0 * ndv * n[0] - to_eye[0], 2.0 * ndv * n[1] - to_eye[1], 2.0 * ndv * n[2] - to_eye[2]];
        let sky = env.sky(r);
        let k = fresnel * ((surf.gloss - 30.0) / 200.0).min(1.0) * 0.8;
        c = [c[0] + sky[0] * k, c[1] + sky[1] * k, c[2] + sky[2] * k];
    }
    c
}

/// Lights per tile of `TILE`×`TILE` pixels: those whose sphere of influence
/// meets the tile's world bounding box.
pub const TILE: usize = 16;

pub fn cull<'a>(lights: &'a [Light], world: &[[f32; 3]], distance: &[f32], width: usize, height: usize) -> Vec<Vec<&'a Light>> {
    let tx = width.div_ceil(TILE);
    let ty = height.div_ceil(TILE);
    let mut out = Vec::with_capacity(tx * ty);
    for j in 0..ty {
        for i in 0..tx {
            let (mut lo, mut hi) = ([f32::MAX; 3], [f32::MIN; 3]);
            for v in j * TILE..((j + 1) * TILE).min(height) {
                for u in i * TILE..((i + 1) * TILE).min(width) {
                    let k = v * width + u;
                    if !distance[k].is_finite() {
                        continue;
                    }
                    for a in 0..3 {
                        lo[a] = lo[a].min(world[k][a]);
                        hi[a] = hi[a].max(world[k][a]);
                    }
                }
            }
            let mut list = Vec::new();
            if lo[0] <= hi[0] {
                for l in lights {
                    let mut d2 = 0.0;
                    for a in 0..3 {
                        let e = (lo[a] - l.pos[a]).max(0.0) + (l.pos[a] - hi[a]).max(0.0);
                        d2 += e * e;
                    }
                    if d2 >= l.radius * l.radius {
                        continue;
                    }
                    if let Some((axis, _, outer)) = l.spot {
                        // The tile's bounding sphere against the cone.
                        let c = [(lo[0] + hi[0]) * 0.5, (lo[1] + hi[1]) * 0.5, (lo[2] + hi[2]) * 0.5];
                        let r = 0.5 * dot(sub(hi, lo), sub(hi, lo)).sqrt();
                        let v = sub(c, l.pos);
                        let dist = dot(v, v).sqrt();
                        if dist > r {
                            let half = outer.clamp(-1.0, 1.0).acos() + (r / dist).min(1.0).asin();
                            if half < std::f32::consts::PI && dot(v, axis) / dist < half.cos() {
                                continue;
                            }
                        }
                    }
                    list.push(l);
                }
            }
            out.push(list);
        }
    }
    out
}
