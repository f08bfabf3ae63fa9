//! The camera: motion blur over the shutter, exposure, bloom and glare around
//! bright lights (with lens dirt), chromatic aberration, vignetting, sensor
//! noise and grain, filmic tone mapping, sRGB encoding.

use rayon::prelude::*;

use super::geometry::{project, Geometry, Pose};
use super::noise::hash32;
use crate::frame::Intrinsics;

/// Blurs along each pixel's image motion between the shutter's opening (the
/// camera pose `before`) and now.
#[allow(clippy::too_many_arguments)]
pub fn motion_blur(
    hdr: &[[f32; 3]],
    out: &mut Vec<[f32; 3]>,
    geo: &Geometry,
    before: &Pose,
    k: &Intrinsics,
    w: usize,
    h: usize,
    amount: f32,
) {
    out.resize(w * h, [0.0; 3]);
    const TAPS: usize = 6;
    out.par_chunks_mut(w).enumerate().for_each(|(v, row)| {
        for (u, o) in row.iter_mut().enumerate() {
            let i = v * w + u;
            let q = before.apply_inverse(geo.world[i]);
            let Some((x0, y0)) = project(k, q) else {
                *o = hdr[i];
                continue;
            };
            let (du, dv) = (((u as f32 + 0.5) - x0) * amount, ((v as f32 + 0.5) - y0) * amount);
            if du.abs() + dv.abs() < 0.5 {
                *o = hdr[i];
                continue;
            }
            let mut c = [0.0f32; 3];
            for t in 0..TAPS {
                let f = t as f32 / (TAPS - 1) as f32;
                let x = (u as f32 - du * f).clamp(0.0, (w - 1) as f32) as usize;
                let y = (v as f32 - dv * f).clamp(0.0, (h - 1) as f32) as usize;
                let s = hdr[y * w + x];
                c = [c[0] + s[0], c[1] + s[1], c[2] + s[2]];
            }
            *o = [c[0] / TAPS as f32, c[1] / TAPS as f32, c[2] / TAPS as f32];
        }
    });
}

/// A small image at 1/`f` resolution.
pub struct Small {
    pub w: usize,
    pub h: usize,
    pub f: usize,
    pub px: Vec<[f32; 3]>,
}

fn blur_1d(src: &[[f32; 3]], w: usize, h: usize, radius: usize, horizontal: bool) -> Vec<[f32; 3]> {
    let mut out = vec![[0.0f32; 3]; w * h];
    let sigma = radius as f32 / 2.0;
    let weights: Vec<f32> = (0..=radius).map(|d| (-(d as f32).powi(2) / (2.0 * sigma * sigma)).exp()).collect();
    let norm: f32 = weights[0] + 2.0 * weights[1..].iter().sum::<f32>();
    out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        for (x, o) in row.iter_mut().enumerate() {
            let mut c = [0.0f32; 3];
            for (d, wt) in weights.iter().enumerate() {
                let taps: &[i64] = if d == 0 { &[0] } else { &[-(d as i64), d as i64] };
                for &off in taps {
                    let (xx, yy) = if horizontal {
                        ((x as i64 + off).clamp(0, w as i64 - 1) as usize, y)
                    } else {
                        (x, (y as i64 + off).clamp(0, h as i64 - 1) as usize)
                    };
                    let s = src[yy * w + xx];
                    c = [c[0] + s[0] * wt, c[1] + s[1] * wt, c[2] + s[2] * wt];
                }
            }
            *o = [c[0] / norm, c[1] / norm, c[2] / norm];
        }
    });
    out
}

/// The light above the sensor's clipping point, at 1/f resolution.
pub fn bright_pass(hdr: &[[f32; 3]], w: usize, h: usize, f: usize, threshold: f32) -> Small {
    let (sw, sh) = (w.div_ceil(f), h.div_ceil(f));
    let mut px = vec![[0.0f32; 3]; sw * sh];
    px.par_chunks_mut(sw).enumerate().for_each(|(y, row)| {
        for (x, o) in row.iter_mut().enumerate() {
            let mut c = [0.0f32; 3];
            let mut n = 0.0;
            for yy in y * f..((y + 1) * f).min(h) {
                for xx in x * f..((x + 1) * f).min(w) {
                    let s = hdr[yy * w + xx];
                    c = [c[0] + (s[0] - threshold).max(0.0), c[1] + (s[1] - threshold).max(0.0), c[2] + (s[2] - threshold).max(0.0)];
                    n += 1.0;
                }
            }
            *o = [c[0] / n, c[1] / n, c[2] / n];
        }
    });
    Small { w: sw, h: sh, f, px }
}

impl Small {
    pub fn blurred(&self, radius: usize) -> Small {
        let a = blur_1d(&self.px, self.w, self.h, radius, true);
        Small { w: self.w, h: self.h, f: self.f, px: blur_1d(&a, self.w, self.h, radius, false) }
    }

    /// A horizontal streak (anamorphic glare).
    pub fn streaked(&self, radius: usize) -> Small {
        Small { w: self.w, h: self.h, f: self.f, px: blur_1d(&self.px, self.w, self.h, radius, true) }
    }

    /// Bilinear sample at a full-resolution pixel.
    #[inline]
    pub fn at(&self, u: usize, v: usize) -> [f32; 3] {
        let x = ((u as f32 + 0.5) / self.f as f32 - 0.5).clamp(0.0, (self.w - 1) as f32);
        let y = ((v as f32 + 0.5) / self.f as f32 - 0.5).clamp(0.0, (self.h - 1) as f32);
        let (x0, y0) = (x as usize, y as usize);
        let (x1, y1) = ((x0 + 1).min(self.w - 1), (y0 + 1).min(self.h - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let p = |xx: usize, yy: usize| self.px[yy * self.w + xx];
        let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
        let mut o = [0.0; 3];
        for k in 0..3 {
            let top = a[k] + (b[k] - a[k]) * fx;
            let bot = c[k] + (d[k] - c[k]) * fx;
            o[k] = top + (bot - top) * fy;
        }
        o
    }
}

/// Everything the final per-pixel pass applies.
pub struct Finish<'a> {
    pub exposure: f32,
    /// Bloom, glare and lens dirt together, at low resolution ([`glow`]).
    pub glow: Option<&'a Small>,
    /// Lateral colour shift at the image corner, pixels.
    pub aberration: f32,
    pub vignette: f32,
    /// Noise: shot-noise gain and read-noise sigma (linear units).
    pub shot: f32,
    pub read: f32,
    pub seed: u32,
    /// The flat frame's luminance high-pass and how much of it to add (edge control).
    pub edges: Option<(&'a [f32], f32)>,
}

/// ACES filmic curve (Narkowicz's fit).
#[inline]
fn aces(x: f32) -> f32 {
    let x = x.max(0.0);
    ((x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14)).clamp(0.0, 1.0)
}

pub struct Encoder {
    lut: Vec<u8>,
}

const LUT: usize = 65536;

/// Exposed linear values up to this are tabulated (ACES maps it to white).
const LUT_MAX: f32 = 16.0;

fn srgb(l: f32) -> f32 {
    if l <= 0.003_130_8 {
        12.92 * l
    } else {
        1.055 * l.powf(1.0 / 2.4) - 0.055
    }
}

impl Default for Encoder {
    /// ACES and the sRGB curve in one table over 0..LUT_MAX (steps of
    /// 0.00025, under one grey level even in the deepest shadows).
    fn default() -> Encoder {
        let lut = (0..LUT)
            .map(|i| {
                let v = i as f32 / (LUT - 1) as f32 * LUT_MAX;
                (srgb(aces(v)) * 255.0 + 0.5).clamp(0.0, 255.0) as u8
            })
            .collect();
        Encoder { lut }
    }
}

impl Encoder {
    /// The table's entry `i` (< 65536), for the GPU path's copy.
    pub(crate) fn entry(&self, i: usize) -> u8 {
        self.lut[i]
    }

    /// An exposed linear value, tone-mapped, as an sRGB byte.
    #[inline]
    pub fn tonemap(&self, v: f32) -> u8 {
        self.lut[((v.max(0.0) * ((LUT - 1) as f32 / LUT_MAX)) as usize).min(LUT - 1)]
    }
}

fn dirt(u: f32, v: f32, seed: u32) -> f32 {
    // A few soft smudges, fixed on the lens.
    let mut d = 0.15;
    for s in 0..6u32 {
        let h = hash32(seed ^ (s * 0x2545_f491));
        let (cx, cy) = ((h & 0xffff) as f32 / 65535.0, (h >> 16) as f32 / 65535.0);
        let r = 0.08 + 0.1 * ((hash32(h) & 0xff) as f32 / 255.0);
        let dd = ((u - cx).powi(2) + (v - cy).powi(2)).sqrt();
        d += (1.0 - dd / r).max(0.0) * 0.8;
    }
    d
}

/// Light scattered in the lens: bloom (scaled by `bloom`), a horizontal
/// glare streak (scaled by `glare`), both brighter where the lens is dirty.
pub fn glow(bloom: &Small, bloom_k: f32, glare: Option<(&Small, f32)>, lens_dirt: f32, lens_seed: u32) -> Small {
    let mut px = bloom.px.clone();
    for (i, p) in px.iter_mut().enumerate() {
        let mut c = [p[0] * bloom_k, p[1] * bloom_k, p[2] * bloom_k];
        if let Some((g, k)) = glare {
            let s = g.px[i];
            c = [c[0] + s[0] * k, c[1] + s[1] * k * 0.95, c[2] + s[2] * k * 1.1];
        }
        if lens_dirt > 0.0 {
            let d = 1.0 + lens_dirt * 6.0 * dirt((i % bloom.w) as f32 / bloom.w as f32, (i / bloom.w) as f32 / bloom.h as f32, lens_seed);
            c = [c[0] * d, c[1] * d, c[2] * d];
        }
        *p = c;
    }
    Small { w: bloom.w, h: bloom.h, f: bloom.f, px }
}

/// Aberration, glow, vignetting, noise, tone mapping and encoding into rgb8.
pub fn finish(hdr: &[[f32; 3]], out: &mut [u8], w: usize, h: usize, k: &Intrinsics, f: &Finish, enc: &Encoder) {
    let diag = ((w * w + h * h) as f32).sqrt() / 2.0;
    out.par_chunks_mut(w * 3).enumerate().for_each(|(v, row)| {
        for u in 0..w {
            let i = v * w + u;
            let (dx, dy) = (u as f32 + 0.5 - k.cx, v as f32 + 0.5 - k.cy);
            let r = (dx * dx + dy * dy).sqrt() / diag;
            let mut c = if f.aberration > 0.0 && r > 0.05 {
                let s = f.aberration * r * r / (r * diag).max(1.0);
                let at = |sc: f32, ch: usize| {
                    let x = (u as f32 + dx * sc).clamp(0.0, (w - 1) as f32) as usize;
                    let y = (v as f32 + dy * sc).clamp(0.0, (h - 1) as f32) as usize;
                    hdr[y * w + x][ch]
                };
                [at(s, 0), hdr[i][1], at(-s, 2)]
            } else {
                hdr[i]
            };
            c = [c[0] * f.exposure, c[1] * f.exposure, c[2] * f.exposure];
            if let Some(b) = f.glow {
                let bl = b.at(u, v);
                c = [c[0] + bl[0] * f.exposure, c[1] + bl[1] * f.exposure, c[2] + bl[2] * f.exposure];
            }
            if f.vignette > 0.0 {
                let t = (dx * dx + dy * dy) / (k.fx * k.fx);
                let cos4 = 1.0 / ((1.0 + t) * (1.0 + t));
                let vg = 1.0 - f.vignette * (1.0 - cos4);
                c = [c[0] * vg, c[1] * vg, c[2] * vg];
            }
            if f.shot > 0.0 || f.read > 0.0 {
                // Three roughly Gaussian numbers from two hashes: sums of byte pairs.
                let a = hash32(f.seed ^ (i as u32).wrapping_mul(0x9e37_79b9));
                let b = hash32(a);
                let g = |x: u32, y: u32| ((x & 0xff) + (y & 0xff)) as f32 * (2.449 / 255.0) - 2.449;
                let gs = [g(a, b), g(a >> 8, b >> 8), g(a >> 16, b >> 16)];
                // One sigma from the green channel (the sensor's luminance).
                let sigma = (f.shot * c[1].max(0.0) + f.read * f.read).sqrt();
                for (x, n) in c.iter_mut().zip(gs) {
                    *x += sigma * n;
                }
            }
            match f.edges {
                Some((hp, s)) => {
                    // The edge control adds the flat frame's high-pass in display space.
                    let e = hp[i] * s;
                    for ch in 0..3 {
                        let d = enc.tonemap(c[ch]) as f32 / 255.0;
                        row[u * 3 + ch] = ((d + e).clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
                    }
                }
                None => {
                    row[u * 3] = enc.tonemap(c[0]);
                    row[u * 3 + 1] = enc.tonemap(c[1]);
                    row[u * 3 + 2] = enc.tonemap(c[2]);
                }
            }
        }
    });
}
