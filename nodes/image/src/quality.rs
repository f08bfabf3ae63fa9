//! Image quality: PSNR and SSIM of 8-bit RGB frames (what a viewer of the
//! decoded video gets), the measures Cosmos-Tokenizer reports.

/// An 8-bit RGB frame, interleaved, borrowed (no copy to measure one).
pub struct Rgb8<'a> {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// R, G, B per pixel, row by row: 3·width·height bytes.
    pub data: &'a [u8],
}

/// Planar RGB in [−1, 1] (the tokenizer's frames, `size`×`size`) →
/// interleaved rgb8, rounded and clamped.
pub fn to_rgb8(planar: &[f32], size: usize) -> Vec<u8> {
    let n = size * size;
    let mut out = vec![0u8; 3 * n];
    for c in 0..3 {
        for p in 0..n {
            out[p * 3 + c] = ((planar[c * n + p] + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// Mean squared error over all channels, in 8-bit levels squared. Panics if
/// the frames differ in size.
pub fn mse(a: &Rgb8, b: &Rgb8) -> f64 {
    assert_eq!((a.width, a.height, a.data.len()), (b.width, b.height, b.data.len()));
    a.data.iter().zip(b.data).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>() / a.data.len() as f64
}

/// PSNR in dB, peak 255; identical frames give 100 dB. Panics if the frames
/// differ in size.
pub fn psnr(a: &Rgb8, b: &Rgb8) -> f64 {
    let m = mse(a, b);
    if m <= 1e-10 {
        100.0
    } else {
        10.0 * (255.0f64 * 255.0 / m).log10()
    }
}

/// SSIM (Wang et al. 2004): 11×11 Gaussian window, σ 1.5, K1 0.01, K2 0.03,
/// L 255, on each RGB channel over the valid window positions, averaged;
/// 1 for identical frames. Frames of 10 pixels or fewer a side score 1 if
/// identical, else 0. Panics if the frames differ in size.
pub fn ssim(a: &Rgb8, b: &Rgb8) -> f64 {
    assert_eq!((a.width, a.height, a.data.len()), (b.width, b.height, b.data.len()));
    let (w, h) = (a.width, a.height);
    const R: usize = 5;
    if w <= 2 * R || h <= 2 * R {
        return if a.data == b.data { 1.0 } else { 0.0 };
    }
    let g: Vec<f64> = {
        let k: Vec<f64> = (0..=2 * R).map(|i| (-((i as f64 - R as f64).powi(2)) / (2.0 * 1.5 * 1.5)).exp()).collect();
        let s: f64 = k.iter().sum();
        k.into_iter().map(|v| v / s).collect()
    };
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (ow, oh) = (w - 2 * R, h - 2 * R);
    // Separable filter: rows, then columns, of x, y, x², y², xy.
    let filter = |f: &dyn Fn(usize) -> f64| -> Vec<f64> {
        let mut rows = vec![0f64; ow * h];
        for y in 0..h {
            for x in 0..ow {
                rows[y * ow + x] = (0..=2 * R).map(|k| g[k] * f(y * w + x + k)).sum();
            }
        }
        let mut out = vec![0f64; ow * oh];
        for y in 0..oh {
            for x in 0..ow {
                out[y * ow + x] = (0..=2 * R).map(|k| g[k] * rows[(y + k) * ow + x]).sum();
            }
        }
        out
    };
    let mut total = 0.0;
    for c in 0..3 {
        let x = |p: usize| a.data[p * 3 + c] as f64;
        let y = |p: usize| b.data[p * 3 + c] as f64;
        let mx = filter(&x);
        let my = filter(&y);
        let sxx = filter(&|p| x(p) * x(p));
        let syy = filter(&|p| y(p) * y(p));
        let sxy = filter(&|p| x(p) * y(p));
        let mut sum = 0.0;
        for i in 0..mx.len() {
            let (vx, vy, cxy) = (sxx[i] - mx[i] * mx[i], syy[i] - my[i] * my[i], sxy[i] - mx[i] * my[i]);
            sum += ((2.0 * mx[i] * my[i] + c1) * (2.0 * cxy + c2)) / ((mx[i] * mx[i] + my[i] * my[i] + c1) * (vx + vy + c2));
        }
        total += sum / mx.len() as f64;
    }
    total / 3.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(w: usize, h: usize, mut f: impl FnMut(usize, usize, usize) -> f64) -> Vec<u8> {
        let mut v = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    v[(y * w + x) * 3 + c] = f(x, y, c).round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        v
    }

    #[test]
    fn psnr_and_ssim_rank_distortions() {
        let (w, h) = (48, 40);
        let base = img(w, h, |x, y, c| 128.0 + 60.0 * ((x as f64 * 0.3 + c as f64).sin() * (y as f64 * 0.2).cos()));
        let a = Rgb8 { width: w, height: h, data: &base };
        assert_eq!(psnr(&a, &a), 100.0);
        assert!((ssim(&a, &a) - 1.0).abs() < 1e-12);
        // A constant offset of 4: MSE 16 → 10·log10(255²/16) = 36.09 dB.
        let off = img(w, h, |x, y, c| base[(y * w + x) * 3 + c] as f64 + 4.0);
        assert!((psnr(&a, &Rgb8 { width: w, height: h, data: &off }) - 36.09).abs() < 0.01);
        // Noise lowers SSIM more than the same-MSE offset does (structure vs luminance).
        let mut s = 1u32;
        let noisy = img(w, h, |x, y, c| {
            s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
            base[(y * w + x) * 3 + c] as f64 + if (s >> 16) & 1 == 0 { 4.0 } else { -4.0 }
        });
        let n = Rgb8 { width: w, height: h, data: &noisy };
        let o = Rgb8 { width: w, height: h, data: &off };
        assert!((psnr(&a, &n) - psnr(&a, &o)).abs() < 0.2);
        assert!(ssim(&a, &n) < ssim(&a, &o) - 0.02, "{} vs {}", ssim(&a, &n), ssim(&a, &o));
        assert!(ssim(&a, &o) > 0.99 && ssim(&a, &n) < 0.99);
        // Symmetric.
        assert!((ssim(&a, &n) - ssim(&n, &a)).abs() < 1e-12);
    }

    #[test]
    fn planar_to_rgb8() {
        assert_eq!(to_rgb8(&[-1.0, 0.0, 1.0], 1), vec![0, 128, 255]);
        // 2×2: planar R plane, G plane, B plane → interleaved, clamped.
        let p = [1.0, -1.0, -1.0, -1.0, 2.0, 0.0, 0.0, 0.0, -3.0, 0.0, 0.0, 1.0];
        assert_eq!(to_rgb8(&p, 2), vec![255, 255, 0, 0, 128, 128, 0, 128, 128, 0, 128, 255]);
    }
}
