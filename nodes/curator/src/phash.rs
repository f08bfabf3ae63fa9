//! Perceptual hash (pHash): the signs of the low-frequency DCT coefficients
//! of the frame shrunk to 32×32. Near-duplicates differ in a few bits.

use crate::metrics::Luma;

/// 64-bit pHash of a frame's luma.
pub(crate) fn phash(l: &Luma) -> u64 {
    const N: usize = 32;
    // Box-shrink to 32×32.
    let mut small = [0.0f32; N * N];
    for (j, s) in small.iter_mut().enumerate() {
        let (x0, x1) = ((j % N) * l.w / N, ((j % N) + 1) * l.w / N);
        let (y0, y1) = ((j / N) * l.h / N, ((j / N) + 1) * l.h / N);
        let mut acc = 0.0;
        for y in y0..y1.max(y0 + 1) {
            for x in x0..x1.max(x0 + 1) {
                acc += l.px[y.min(l.h - 1) * l.w + x.min(l.w - 1)];
            }
        }
        *s = acc / ((y1.max(y0 + 1) - y0) * (x1.max(x0 + 1) - x0)) as f32;
    }
    // The 8×8 lowest DCT-II frequencies.
    let cos: Vec<f32> =
        (0..8 * N).map(|i| ((2 * (i % N) + 1) as f32 * (i / N) as f32 * std::f32::consts::PI / (2 * N) as f32).cos()).collect();
    let mut rows = [0.0f32; 8 * N];
    for u in 0..8 {
        for y in 0..N {
            rows[u * N + y] = (0..N).map(|x| small[y * N + x] * cos[u * N + x]).sum();
        }
    }
    let mut coef = [0.0f32; 64];
    for v in 0..8 {
        for u in 0..8 {
            coef[v * 8 + u] = (0..N).map(|y| rows[u * N + y] * cos[v * N + y]).sum();
        }
    }
    // Median of the coefficients without the DC term.
    let mut ac: Vec<f32> = coef[1..].to_vec();
    ac.sort_by(|a, b| a.total_cmp(b));
    let median = ac[ac.len() / 2];
    coef.iter().enumerate().fold(0u64, |h, (i, &c)| if i > 0 && c > median { h | 1 << i } else { h })
}

/// Hamming distance: the bits in which two hashes differ.
pub(crate) fn distance(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}
