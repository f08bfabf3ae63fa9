//! The built-in image descriptor for semantic deduplication: a 4×4 grid of
//! mean colours plus 8-bin gradient orientation histograms in 2×2 cells,
//! L2-normalized (80 numbers). Pluggable: anything that maps a frame to a
//! vector (the tokenizer's latent, later) can stand in its place.

use crate::metrics::Luma;

pub const DIM: usize = 80;

pub trait Embedder: Send {
    fn name(&self) -> &str;
    fn embed(&self, rgb: &[u8], width: usize, height: usize, luma: &Luma) -> Vec<f32>;
}

pub struct Builtin;

impl Embedder for Builtin {
    fn name(&self) -> &str {
        "builtin:colour-grid+orientation"
    }

    fn embed(&self, rgb: &[u8], width: usize, height: usize, l: &Luma) -> Vec<f32> {
        let mut v = vec![0.0f32; DIM];
        // Colour grid, from every 4th pixel.
        let mut counts = [0.0f32; 16];
        for y in (0..height).step_by(4) {
            for x in (0..width).step_by(4) {
                let c = (y * 4 / height) * 4 + x * 4 / width;
                let i = (y * width + x) * 3;
                for k in 0..3 {
                    v[c * 3 + k] += rgb[i + k] as f32 / 255.0;
                }
                counts[c] += 1.0;
            }
        }
        for c in 0..16 {
            for k in 0..3 {
                v[c * 3 + k] /= counts[c].max(1.0);
            }
        }
        // Orientation histograms weighted by gradient magnitude.
        for y in 1..l.h - 1 {
            for x in 1..l.w - 1 {
                let i = y * l.w + x;
                let (gx, gy) = (l.px[i + 1] - l.px[i - 1], l.px[i + l.w] - l.px[i - l.w]);
                let m = (gx * gx + gy * gy).sqrt();
                if m < 4.0 {
                    continue;
                }
                let a = gy.atan2(gx).rem_euclid(std::f32::consts::PI);
                let bin = ((a / std::f32::consts::PI * 8.0) as usize).min(7);
                let cell = (y * 2 / l.h) * 2 + x * 2 / l.w;
                v[48 + cell * 8 + bin] += m / (l.w * l.h) as f32;
            }
        }
        normalize(&mut v);
        v
    }
}

pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Cosine distance (1 − cosine similarity) of two normalized vectors.
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    1.0 - a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>()
}
