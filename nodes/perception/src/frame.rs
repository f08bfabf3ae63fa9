//! How a camera frame of any size becomes the network's input, and how
//! predictions go back: a [`View`] maps input pixels to source pixels (a
//! scale, an offset and an optional mirror). Letterboxing (inference and
//! evaluation) and the training crops are both views, so labels and images
//! are always resampled by the same map.

/// Grey of the padding around a letterboxed frame (and of cutouts).
pub const PAD: u8 = 114;

/// A map from a `w`×`h` network input to a source image: input point
/// (u, v) (continuous, pixel edges at integers) is source point
/// (`ox` + k·u', `oy` + k·v) with u' = u, or `w` − u when `flip`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    /// Source pixels per input pixel.
    pub k: f32,
    /// Source x of input x = 0 (before mirroring).
    pub ox: f32,
    /// Source y of input y = 0.
    pub oy: f32,
    /// Mirror left–right.
    pub flip: bool,
    /// Input width.
    pub w: usize,
    /// Input height.
    pub h: usize,
}

impl View {
    /// The whole `sw`×`sh` source fitted into `w`×`h`, centred, aspect kept
    /// (padding above and below, or left and right).
    pub fn letterbox(sw: usize, sh: usize, w: usize, h: usize) -> View {
        let k = (sw as f32 / w as f32).max(sh as f32 / h as f32);
        View { k, ox: (sw as f32 - k * w as f32) / 2.0, oy: (sh as f32 - k * h as f32) / 2.0, flip: false, w, h }
    }

    /// The source point of input point (u, v).
    pub fn to_source(&self, u: f32, v: f32) -> (f32, f32) {
        let u = if self.flip { self.w as f32 - u } else { u };
        (self.ox + self.k * u, self.oy + self.k * v)
    }

    /// The input point of source point (x, y).
    pub fn to_input(&self, x: f32, y: f32) -> (f32, f32) {
        let u = (x - self.ox) / self.k;
        (if self.flip { self.w as f32 - u } else { u }, (y - self.oy) / self.k)
    }

    /// A box [x0, y0, x1, y1] in source pixels as input pixels (corners re-ordered after a mirror).
    pub fn box_to_input(&self, b: [f32; 4]) -> [f32; 4] {
        let (a0, b0) = self.to_input(b[0], b[1]);
        let (a1, b1) = self.to_input(b[2], b[3]);
        [a0.min(a1), b0.min(b1), a0.max(a1), b0.max(b1)]
    }

    /// A box in input pixels as source pixels.
    pub fn box_to_source(&self, b: [f32; 4]) -> [f32; 4] {
        let (a0, b0) = self.to_source(b[0], b[1]);
        let (a1, b1) = self.to_source(b[2], b[3]);
        [a0.min(a1), b0.min(b1), a0.max(a1), b0.max(b1)]
    }

    /// Interleaved RGB resampled to the input: bilinear, averaged over
    /// ⌈k⌉² sub-samples per pixel when shrinking (no aliasing); [`PAD`] outside the source.
    pub fn sample_rgb(&self, rgb: &[u8], sw: usize, sh: usize) -> Vec<u8> {
        use rayon::prelude::*;
        let n = (self.k.ceil() as usize).clamp(1, 4);
        // The map is separable: bilinear taps per output column and per
        // output row (for each sub-sample), computed once.
        let taps = |len: usize, src: usize, pos: &dyn Fn(f32) -> f32| -> (Vec<(usize, usize, f32)>, Vec<bool>) {
            let mut t = Vec::with_capacity(len * n);
            let mut inside = Vec::with_capacity(len);
            for o in 0..len {
                let c = pos(o as f32 + 0.5);
                inside.push(c >= 0.0 && c < src as f32);
                for i in 0..n {
                    let d = (i as f32 + 0.5) / n as f32 - 0.5;
                    let x = (pos(o as f32 + 0.5 + d) - 0.5).clamp(0.0, src as f32 - 1.0);
                    let x0 = x as usize;
                    t.push((x0, (x0 + 1).min(src - 1), x - x0 as f32));
                }
            }
            (t, inside)
        };
        let (cols, in_x) = taps(self.w, sw, &|u| self.to_source(u, 0.0).0);
        let (rows, in_y) = taps(self.h, sh, &|v| self.to_source(0.0, v).1);
        let mut out = vec![PAD; self.w * self.h * 3];
        let norm = 1.0 / (n * n) as f32;
        out.par_chunks_mut(self.w * 3).enumerate().for_each(|(v, line)| {
            if !in_y[v] {
                return;
            }
            for u in 0..self.w {
                if !in_x[u] {
                    continue;
                }
                let mut acc = [0f32; 3];
                for &(y0, y1, fy) in &rows[v * n..(v + 1) * n] {
                    let (r0, r1) = (&rgb[y0 * sw * 3..(y0 + 1) * sw * 3], &rgb[y1 * sw * 3..(y1 + 1) * sw * 3]);
                    for &(x0, x1, fx) in &cols[u * n..(u + 1) * n] {
                        for (c, a) in acc.iter_mut().enumerate() {
                            let top = r0[x0 * 3 + c] as f32 * (1.0 - fx) + r0[x1 * 3 + c] as f32 * fx;
                            let bot = r1[x0 * 3 + c] as f32 * (1.0 - fx) + r1[x1 * 3 + c] as f32 * fx;
                            *a += top * (1.0 - fy) + bot * fy;
                        }
                    }
                }
                for c in 0..3 {
                    line[u * 3 + c] = (acc[c] * norm).round() as u8;
                }
            }
        });
        out
    }

    /// A per-pixel label map resampled to the input by nearest neighbour; `fill` outside the source.
    pub fn sample_nearest<T: Copy>(&self, src: &[T], sw: usize, sh: usize, fill: T) -> Vec<T> {
        let mut out = Vec::with_capacity(self.w * self.h);
        for v in 0..self.h {
            for u in 0..self.w {
                let (x, y) = self.to_source(u as f32 + 0.5, v as f32 + 0.5);
                out.push(if x < 0.0 || y < 0.0 || x >= sw as f32 || y >= sh as f32 { fill } else { src[y as usize * sw + x as usize] });
            }
        }
        out
    }
}

/// Interleaved RGB (`w`×`h`) as the network's planar input values:
/// (v/255 − 0.45)/0.25 per channel.
pub fn normalise(rgb: &[u8], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0f32; 3 * w * h];
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * w * h + i] = (px[c] as f32 / 255.0 - 0.45) / 0.25;
        }
    }
    out
}

/// Metres per canonical depth unit for a camera whose focal length at the
/// network's input is `fx_input` pixels, when the network predicts for a
/// canonical focal length `focal` (an object twice as large in the image looks like one half as far).
pub fn depth_scale(fx_input: f32, focal: f32) -> f32 {
    fx_input / focal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_round_trips_and_pads() {
        let v = View::letterbox(640, 360, 320, 240);
        assert_eq!(v.k, 2.0);
        assert_eq!((v.ox, v.oy), (0.0, -60.0));
        let (x, y) = v.to_source(160.0, 120.0);
        assert_eq!((x, y), (320.0, 180.0));
        let b = [100.0, 50.0, 300.0, 200.0];
        let back = v.box_to_source(v.box_to_input(b));
        assert!(b.iter().zip(back).all(|(a, b)| (a - b).abs() < 1e-3));
        let rgb = vec![200u8; 640 * 360 * 3];
        let s = v.sample_rgb(&rgb, 640, 360);
        assert_eq!(s[0], PAD, "the band above the image is padding");
        assert_eq!(s[(120 * 320 + 160) * 3], 200);
    }

    #[test]
    fn a_mirror_moves_boxes_and_pixels_together() {
        let v = View { k: 1.0, ox: 0.0, oy: 0.0, flip: true, w: 8, h: 2 };
        let mut seg = vec![0u8; 16];
        seg[1] = 5; // x = 1, y = 0
        let s = v.sample_nearest(&seg, 8, 2, 255);
        assert_eq!(s[6], 5, "pixel 1 lands at 8 − 1 − 1");
        assert_eq!(v.box_to_input([1.0, 0.0, 2.0, 1.0]), [6.0, 0.0, 7.0, 1.0]);
    }
}
