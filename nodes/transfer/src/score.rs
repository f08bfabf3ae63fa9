//! Label preservation: do the output's edges still follow the label
//! boundaries of the frame it came from?
//!
//! Boundary pixels are where the segmentation class changes or the depth
//! jumps (more than 10%), counted only where the flat input itself shows an
//! edge (a boundary between two equally coloured surfaces is not visible in
//! any image). A boundary pixel is kept when the output has, within one pixel,
//! a gradient above both an absolute floor and twice the output's mean
//! gradient away from boundaries (so a heavily textured or noisy output does
//! not pass by having edges everywhere). The score is the kept fraction.

use rayon::prelude::*;

/// The share of a boundary's input gradient the output must keep: a sharp
/// step blurred over 9 pixels keeps about a third of its Sobel response.
const KEEP: f32 = 0.4;

/// The score of one frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// The share of boundary pixels the output kept, 0..1; 1 when there are none.
    pub boundary_recall: f32,
    /// How many boundary pixels were counted (few: a score that says little).
    pub boundary_pixels: u32,
}

/// Luma (BT.601 weights) of an rgb8 image, 0..1.
pub fn luma(rgb: &[u8]) -> Vec<f32> {
    rgb.par_chunks(3 * 1024)
        .flat_map_iter(|px| px.chunks_exact(3).map(|c| (0.299 * c[0] as f32 + 0.587 * c[1] as f32 + 0.114 * c[2] as f32) / 255.0))
        .collect()
}

/// Sobel gradient magnitude (0 at the border).
pub fn gradient(l: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut g = vec![0.0f32; w * h];
    if w < 3 || h < 3 {
        return g;
    }
    g.par_chunks_mut(w).enumerate().skip(1).take(h - 2).for_each(|(v, row)| {
        for u in 1..w - 1 {
            let p = |du: isize, dv: isize| l[(v as isize + dv) as usize * w + (u as isize + du) as usize];
            let gx = p(1, -1) + 2.0 * p(1, 0) + p(1, 1) - p(-1, -1) - 2.0 * p(-1, 0) - p(-1, 1);
            let gy = p(-1, 1) + 2.0 * p(0, 1) + p(1, 1) - p(-1, -1) - 2.0 * p(0, -1) - p(1, -1);
            row[u] = (gx * gx + gy * gy).sqrt() / 4.0;
        }
    });
    g
}

/// Scores `output` against the labels of `input`. `segmentation` and `depth`
/// are optional; without either, the input's own strong edges are the
/// boundaries. `extinction` (per metre, with depth) is the fog the output was
/// given: a boundary's expected contrast is scaled by the air's transmittance,
/// and boundaries fog hides almost entirely (transmittance under 0.25) are not counted.
pub fn score(
    input: &[u8],
    output: &[u8],
    segmentation: Option<&[u8]>,
    depth: Option<&[f32]>,
    extinction: f32,
    w: usize,
    h: usize,
) -> Score {
    let transmittance = |i: usize| match depth {
        Some(d) if extinction > 0.0 => {
            let z = d[i];
            if z.is_finite() && z > 0.0 {
                (-extinction * z).exp()
            } else {
                0.0
            }
        }
        _ => 1.0,
    };
    if w < 3 || h < 3 {
        return Score { boundary_recall: 1.0, boundary_pixels: 0 };
    }
    let (li, lo) = rayon::join(|| luma(input), || luma(output));
    let (gi, go) = rayon::join(|| gradient(&li, w, h), || gradient(&lo, w, h));
    // Per pixel: whether it is a boundary, and the output gradient it should keep there.
    let mut boundary = vec![false; w * h];
    let mut expected = vec![0.0f32; w * h];
    boundary.par_chunks_mut(w).zip(expected.par_chunks_mut(w)).enumerate().skip(1).take(h - 2).for_each(|(v, (brow, erow))| {
        for u in 1..w - 1 {
            let i = v * w + u;
            let mut b = false;
            if let Some(s) = segmentation {
                b |= s[i] != s[i + 1] || s[i] != s[i + w];
            }
            if let Some(d) = depth {
                let jump = |a: f32, c: f32| match (a.is_finite() && a > 0.0, c.is_finite() && c > 0.0) {
                    (true, true) => (a - c).abs() > 0.1 * a.min(c),
                    (false, false) => false,
                    _ => true,
                };
                b |= jump(d[i], d[i + 1]) || jump(d[i], d[i + w]);
            }
            if segmentation.is_none() && depth.is_none() {
                b = gi[i] > 0.15;
            }
            // Fog between: the nearer side of a boundary decides what can be seen of it.
            let t = if b { transmittance(i).max(transmittance(i + 1)).max(transmittance(i + w)) } else { 1.0 };
            brow[u] = b && gi[i] > 0.04 && t >= 0.25;
            if brow[u] {
                erow[u] = KEEP * gi[i] * t;
            }
        }
    });
    // Within two pixels of a boundary: the 5×5 dilation of the boundaries
    // (rows, then columns).
    let mut across = vec![false; w * h];
    across.par_chunks_mut(w).enumerate().for_each(|(v, row)| {
        let b = &boundary[v * w..(v + 1) * w];
        for (u, x) in row.iter_mut().enumerate() {
            *x = b[u.saturating_sub(2)..(u + 3).min(w)].iter().any(|&k| k);
        }
    });
    let mut near = vec![false; w * h];
    near.par_chunks_mut(w).enumerate().for_each(|(v, row)| {
        for (u, x) in row.iter_mut().enumerate() {
            *x = (v.saturating_sub(2)..(v + 3).min(h)).any(|y| across[y * w + u]);
        }
    });
    // The output's texture level: mean gradient two pixels or more from any
    // boundary (summed in pixel order, so the score does not depend on the threads).
    let (mut sum, mut cnt) = (0.0f64, 0u64);
    for i in (0..w * h).step_by(3) {
        if !near[i] {
            sum += go[i] as f64;
            cnt += 1;
        }
    }
    let texture = if cnt > 0 { (sum / cnt as f64) as f32 } else { 0.0 };
    let tau = (2.0 * texture).max(0.03);
    let (kept, total) = (1..h - 1)
        .into_par_iter()
        .map(|v| {
            let (mut kept, mut total) = (0u32, 0u32);
            for u in 1..w - 1 {
                let i = v * w + u;
                if !boundary[i] {
                    continue;
                }
                total += 1;
                let m = (v - 1..=v + 1).flat_map(|y| (u - 1..=u + 1).map(move |x| y * w + x)).map(|j| go[j]).fold(0.0f32, f32::max);
                // Kept: an edge above the texture level, with a good part of the input's contrast.
                if m >= tau && m >= expected[i] {
                    kept += 1;
                }
            }
            (kept, total)
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    Score { boundary_recall: if total > 0 { kept as f32 / total as f32 } else { 1.0 }, boundary_pixels: total }
}
