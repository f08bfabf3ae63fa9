//! Image statistics for the benchmark: temporal flicker not explained by
//! motion, and natural-image statistics (spectral slope, local contrast).

use crate::builtin::geometry::{project, Pose};
use crate::frame::Intrinsics;
use crate::score::luma;

/// Mean absolute luma change (0..1) between `cur` and `prev` warped into it by
/// depth and the two camera poses: what motion does not explain. `depth` is
/// the current frame's (metres along the optical axis), `cam` and `cam_prev`
/// the optical frame's pose in the world at each frame, `k` both frames'
/// intrinsics. Pixels without depth or that come from outside the previous
/// image are skipped; 0 when none is left. Moving objects count as flicker.
#[allow(clippy::too_many_arguments)]
pub fn reprojection_residual(
    prev: &[u8],
    cur: &[u8],
    depth: &[f32],
    k: &Intrinsics,
    cam: &Pose,
    cam_prev: &Pose,
    w: usize,
    h: usize,
) -> f32 {
    let (lp, lc) = (luma(prev), luma(cur));
    let (mut sum, mut n) = (0.0f64, 0u64);
    for v in 0..h {
        for u in 0..w {
            let z = depth[v * w + u];
            if !(z.is_finite() && z > 0.0) {
                continue;
            }
            let pc = [(u as f32 + 0.5 - k.cx) / k.fx * z, (v as f32 + 0.5 - k.cy) / k.fy * z, z];
            let q = cam_prev.apply_inverse(cam.apply(pc));
            let Some((x, y)) = project(k, q) else { continue };
            if x < 0.0 || y < 0.0 || x >= w as f32 || y >= h as f32 {
                continue;
            }
            sum += (lc[v * w + u] - lp[y as usize * w + x as usize]).abs() as f64;
            n += 1;
        }
    }
    if n == 0 {
        0.0
    } else {
        (sum / n as f64) as f32
    }
}

/// Slope of the radially averaged power spectrum in log-log (natural images: about −2),
/// over the central 128×128 pixels of the luma (fewer in a smaller image).
pub fn spectral_slope(rgb: &[u8], w: usize, h: usize) -> f32 {
    const N: usize = 128;
    let l = luma(rgb);
    let (x0, y0) = ((w.saturating_sub(N)) / 2, (h.saturating_sub(N)) / 2);
    let n = N.min(w).min(h);
    let hann = |i: usize| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / (n - 1) as f32).cos();
    let mean: f32 = (0..n).flat_map(|y| (0..n).map(move |x| (x, y))).map(|(x, y)| l[(y0 + y) * w + x0 + x]).sum::<f32>() / (n * n) as f32;
    let img: Vec<f32> = (0..n * n).map(|i| (l[(y0 + i / n) * w + x0 + i % n] - mean) * hann(i % n) * hann(i / n)).collect();
    // Separable DFT: rows, then columns.
    let tw: Vec<(f32, f32)> = (0..n).map(|k| (2.0 * std::f32::consts::PI * k as f32 / n as f32).sin_cos()).collect();
    let mut rows = vec![(0.0f32, 0.0f32); n * n];
    for y in 0..n {
        for k in 0..n {
            let (mut re, mut im) = (0.0, 0.0);
            for x in 0..n {
                let (s, c) = tw[(k * x) % n];
                re += img[y * n + x] * c;
                im -= img[y * n + x] * s;
            }
            rows[y * n + k] = (re, im);
        }
    }
    let mut power = vec![0.0f64; n / 2];
    let mut count = vec![0u32; n / 2];
    for kx in 0..n {
        for ky in 0..n {
            let (mut re, mut im) = (0.0f32, 0.0f32);
            for y in 0..n {
                let (s, c) = tw[(ky * y) % n];
                let (a, b) = rows[y * n + kx];
                re += a * c + b * s;
                im += b * c - a * s;
            }
            let fx = if kx <= n / 2 { kx as f32 } else { kx as f32 - n as f32 };
            let fy = if ky <= n / 2 { ky as f32 } else { ky as f32 - n as f32 };
            let r = (fx * fx + fy * fy).sqrt().round() as usize;
            if r > 0 && r < n / 2 {
                power[r] += (re * re + im * im) as f64;
                count[r] += 1;
            }
        }
    }
    let pts: Vec<(f64, f64)> =
        (3..n / 2 - 4).filter(|&r| count[r] > 0 && power[r] > 0.0).map(|r| ((r as f64).ln(), (power[r] / count[r] as f64).ln())).collect();
    let m = pts.len() as f64;
    let (sx, sy) = pts.iter().fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1));
    let (mx, my) = (sx / m, sy / m);
    let (num, den) = pts.iter().fold((0.0, 0.0), |a, p| (a.0 + (p.0 - mx) * (p.1 - my), a.1 + (p.0 - mx).powi(2)));
    (num / den) as f32
}

/// Mean RMS contrast of the luma (0..1) in 8×8 blocks; 0 for an image under 8×8.
pub fn local_contrast(rgb: &[u8], w: usize, h: usize) -> f32 {
    let l = luma(rgb);
    let (mut sum, mut n) = (0.0f64, 0u64);
    for by in 0..h / 8 {
        for bx in 0..w / 8 {
            let (mut s, mut s2) = (0.0f32, 0.0f32);
            for y in 0..8 {
                for x in 0..8 {
                    let v = l[(by * 8 + y) * w + bx * 8 + x];
                    s += v;
                    s2 += v * v;
                }
            }
            let mean = s / 64.0;
            sum += (s2 / 64.0 - mean * mean).max(0.0).sqrt() as f64;
            n += 1;
        }
    }
    (sum / n.max(1) as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spectral_slope_tells_noise_from_smooth() {
        let (w, h) = (160, 160);
        let mut white = vec![0u8; w * h * 3];
        let mut s = 12345u32;
        for p in white.chunks_exact_mut(3) {
            s = crate::builtin::noise::hash32(s);
            p.fill((s >> 24) as u8);
        }
        let smooth: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let (x, y) = ((i % w) as f32, (i / w) as f32);
                let v = (128.0 + 60.0 * (x / 23.0).sin() * (y / 31.0).cos() + 30.0 * (x / 7.0 + y / 11.0).sin()) as u8;
                [v, v, v]
            })
            .collect();
        let (sw, ss) = (spectral_slope(&white, w, h), spectral_slope(&smooth, w, h));
        assert!(sw.abs() < 0.5, "white noise is flat: {sw}");
        assert!(ss < -2.0, "smooth images fall off: {ss}");
        assert!(local_contrast(&white, w, h) > local_contrast(&smooth, w, h));
    }
}
