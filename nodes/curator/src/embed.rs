//! The built-in image descriptor for semantic deduplication: a 4×4 grid of
//! mean colours plus 8-bin gradient orientation histograms in 2×2 cells,
//! L2-normalized (80 numbers). Pluggable: anything that maps a frame to a
//! vector (the tokenizer's latent, later) can stand in its place.

use crate::metrics::Luma;

/// Length of the built-in descriptor.
pub(crate) const DIM: usize = 80;

/// What turns a good frame into a vector for semantic deduplication. A clip's
/// vector is the L2-normalized sum of its frames', and clips are compared by
/// cosine distance, so every frame's vector must have the same length.
pub trait Embedder: Send {
    /// The vector of a frame: `rgb` is rgb8, `width * height * 3` bytes;
    /// `luma` is the same frame at half resolution.
    fn embed(&self, rgb: &[u8], width: usize, height: usize, luma: &Luma) -> Vec<f32>;
}

/// The built-in descriptor described above (80 numbers, L2-normalized), the
/// one `s2r curate` and curator_node use; manifests name it
/// `builtin:colour-grid+orientation`.
pub struct Builtin;

impl Embedder for Builtin {
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

/// Scales `v` to unit length; a zero vector stays zero.
pub(crate) fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Cosine distance (1 − cosine similarity) of two normalized vectors.
pub(crate) fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    1.0 - a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>()
}
