//! Per-frame measurements, on luma at half resolution (enough for every
//! measure here, and four times cheaper).

/// Luma of an rgb8 image at half resolution (2×2 means), 0..255.
#[derive(Clone, Debug)]
pub struct Luma {
    /// Width: half the frame's, rounded down.
    pub w: usize,
    /// Height: half the frame's, rounded down.
    pub h: usize,
    /// `w * h` grey levels, row-major.
    pub px: Vec<f32>,
}

impl Luma {
    /// The luma of an rgb8 frame (weights 77, 150, 29 of 256); an odd last row or column is dropped.
    pub(crate) fn half(rgb: &[u8], width: usize, height: usize) -> Luma {
        let (w, h) = (width / 2, height / 2);
        let mut px = Vec::with_capacity(w * h);
        let l = |x: usize, y: usize| {
            let i = (y * width + x) * 3;
            77 * rgb[i] as u32 + 150 * rgb[i + 1] as u32 + 29 * rgb[i + 2] as u32
        };
        for y in 0..h {
            for x in 0..w {
                let s = l(2 * x, 2 * y) + l(2 * x + 1, 2 * y) + l(2 * x, 2 * y + 1) + l(2 * x + 1, 2 * y + 1);
                px.push(s as f32 / 1024.0);
            }
        }
        Luma { w, h, px }
    }
}

/// What one frame measures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FrameMetrics {
    /// Variance of the Laplacian (sharpness; blurred frames score low).
    pub sharpness: f32,
    /// Fraction of pixels clipped dark (luma < 6) or bright (> 249).
    pub clipped: f32,
    /// Standard deviation of luma (a constant frame has ~0).
    pub contrast: f32,
    /// Mean luma, grey levels (0..255).
    pub mean: f32,
    /// Mean absolute luma change from the previous frame, grey levels (None
    /// without one: the first frame, or one after a gap of a second or more).
    pub change: Option<f32>,
    /// Rows from the top that are byte-identical to the previous frame, when
    /// the rest is not (a frame torn between two updates), as a fraction of the height.
    pub torn_at: Option<f32>,
    /// The whole frame equals the previous one.
    pub frozen: bool,
}

/// Measures a frame (and its change against the previous one, when given).
pub(crate) fn measure(rgb: &[u8], width: usize, height: usize, luma: &Luma, prev: Option<(&[u8], &Luma)>) -> FrameMetrics {
    let (w, h, l) = (luma.w, luma.h, &luma.px);
    let n = (w * h) as f32;
    let mean = l.iter().sum::<f32>() / n;
    let var = l.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let clipped = l.iter().filter(|&&v| !(6.0..=249.0).contains(&v)).count() as f32 / n;
    let (mut s, mut s2, mut m) = (0.0f64, 0.0f64, 0.0f64);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let i = y * w + x;
            let lap = (l[i - 1] + l[i + 1] + l[i - w] + l[i + w] - 4.0 * l[i]) as f64;
            s += lap;
            s2 += lap * lap;
            m += 1.0;
        }
    }
    let sharpness = if m > 0.0 { (s2 / m - (s / m).powi(2)) as f32 } else { 0.0 };
    let mut out = FrameMetrics { sharpness, clipped, contrast: var.sqrt(), mean, ..Default::default() };
    if let Some((prev_rgb, prev_l)) = prev {
        if prev_l.px.len() == l.len() {
            out.change = Some(l.iter().zip(&prev_l.px).map(|(a, b)| (a - b).abs()).sum::<f32>() / n);
        }
        if prev_rgb.len() == rgb.len() {
            out.frozen = prev_rgb == rgb;
            if !out.frozen {
                // Torn: the rows above a line are the previous frame's, those
                // below are new, and the line is a seam that neither frame's
                // content has there (a static background above a moving arm is not torn).
                let row = width * 3;
                let same = (0..height).take_while(|&y| rgb[y * row..(y + 1) * row] == prev_rgb[y * row..(y + 1) * row]).count();
                let f = same as f32 / height as f32;
                if (0.1..0.9).contains(&f) {
                    // The seam runs across the image: in most columns the row
                    // jumps where the previous frame's did not (an object's
                    // top edge under a static background covers only its width).
                    let jump = |img: &[u8], x: usize| -> u32 {
                        (0..3).map(|c| (img[same * row + x * 3 + c] as i32 - img[(same - 1) * row + x * 3 + c] as i32).unsigned_abs()).sum()
                    };
                    let seam = (0..width).filter(|&x| jump(rgb, x) > 24 && jump(prev_rgb, x) < 12).count();
                    if seam * 10 > width * 3 {
                        out.torn_at = Some(f);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(w: usize, h: usize, k: u32) -> Vec<u8> {
        (0..w * h * 3).map(|i| ((i as u32 / 3 % w as u32 / 4 + i as u32 / 3 / w as u32 / 4 + k) % 2 * 200 + 20) as u8).collect()
    }

    #[test]
    fn measures_tell_sharp_from_blurred_and_black_and_torn() {
        let (w, h) = (64, 48);
        let sharp = pattern(w, h, 0);
        let ls = Luma::half(&sharp, w, h);
        let m = measure(&sharp, w, h, &ls, None);
        let black = vec![0u8; w * h * 3];
        let mb = measure(&black, w, h, &Luma::half(&black, w, h), None);
        assert!(m.sharpness > 100.0 && mb.sharpness == 0.0);
        assert!(mb.clipped == 1.0 && mb.contrast == 0.0);
        let frozen = measure(&sharp, w, h, &ls, Some((&sharp, &ls)));
        assert!(frozen.frozen && frozen.change == Some(0.0));
        // The top 22 rows from the previous frame, the rest shifted: a seam at row 22.
        let mut torn = pattern(w, h, 1);
        torn[..w * 3 * 22].copy_from_slice(&sharp[..w * 3 * 22]);
        let t = measure(&torn, w, h, &Luma::half(&torn, w, h), Some((&sharp, &ls)));
        assert!(!t.frozen && (t.torn_at.unwrap() - 22.0 / 48.0).abs() < 1e-6);
        // A static top over a changing bottom, without a seam, is not torn.
        let mut moving = sharp.clone();
        for v in &mut moving[w * 3 * 30..] {
            *v = v.saturating_add(3);
        }
        let mv = measure(&moving, w, h, &Luma::half(&moving, w, h), Some((&sharp, &ls)));
        assert_eq!(mv.torn_at, None);
    }
}
