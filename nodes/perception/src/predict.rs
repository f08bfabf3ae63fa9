//! Inference: frames of any size in, detections (source pixels), metric
//! depth and a class per pixel (at the frame's resolution) out. What
//! perception_node, `s2r eval perception` and the held-out evaluation of
//! training all run.

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use crate::frame::{depth_scale, normalise, View};
use crate::model::{Net, Outputs, STRIDE};
use crate::PerceptionError;

/// One detected object.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// Index into the model's detected classes.
    pub class: usize,
    /// Confidence in [0, 1].
    pub score: f32,
    /// [x0, y0, x1, y1] in the frame's pixels.
    pub bbox: [f32; 4],
}

/// A camera frame to look at.
#[derive(Clone, Copy, Debug)]
pub struct FrameRef<'a> {
    /// Interleaved RGB.
    pub rgb: &'a [u8],
    /// Width.
    pub w: usize,
    /// Height.
    pub h: usize,
    /// Horizontal focal length in pixels, when known (camera_info's K[0]);
    /// without it the depth assumes the canonical camera's field of view.
    pub fx: Option<f32>,
}

/// What the network sees in a frame.
#[derive(Clone, Debug, Default)]
pub struct Prediction {
    /// Detections, best first.
    pub detections: Vec<Detection>,
    /// Metres per frame pixel (empty unless dense outputs were asked for).
    pub depth: Vec<f32>,
    /// Segmentation class per frame pixel (empty unless asked for).
    pub seg: Vec<u8>,
    /// The probability of each pixel's class in `seg` (the softmax of the
    /// head's logits, interpolated like them; empty unless asked for with
    /// [`Predictor::predict_with_probabilities`]).
    pub seg_prob: Vec<f32>,
    /// How sure perception is of the scene, 0–1: the segmentation head's
    /// most likely class's probability averaged over the grid cells the
    /// frame covers, times the evidence in the frame ([`evidence`]: none in
    /// a frame without contrast). The network alone stays sure of itself on
    /// a black or a white frame (measured: 0.72–0.77, as sure as on a real
    /// dry-day frame); the product falls to 0 there and to about 0.2 for a
    /// frame at an eighth of its brightness, while the shipped recordings
    /// score 0.70–0.91 (a frame of noise: 0.58). What safety_node reads as
    /// perception's confidence collapsing.
    pub confidence: f32,
}

/// A loaded network and its decoding settings.
pub struct Predictor {
    /// The network (batch norms folded).
    pub net: Net,
    /// Where it runs.
    pub device: Device,
    /// Detections below this confidence are dropped.
    pub threshold: f32,
    /// At most this many detections per frame.
    pub max_detections: usize,
    /// Also run each frame mirrored left to right and average the two
    /// (test-time augmentation): steadier outputs, twice the compute. What
    /// `s2r label --mirror` teaches with.
    pub mirror: bool,
}

impl Predictor {
    /// Runs `frames` as one batch; `dense` also resamples depth and
    /// segmentation to each frame's resolution.
    pub fn predict(&self, frames: &[FrameRef], dense: bool) -> Result<Vec<Prediction>, PerceptionError> {
        self.run(frames, dense, false)
    }

    /// [`Predictor::predict`] with dense outputs and each segmented pixel's
    /// probability ([`Prediction::seg_prob`]): what pseudo-labels are cut from.
    pub fn predict_with_probabilities(&self, frames: &[FrameRef]) -> Result<Vec<Prediction>, PerceptionError> {
        self.run(frames, true, true)
    }

    fn run(&self, frames: &[FrameRef], dense: bool, probabilities: bool) -> Result<Vec<Prediction>, PerceptionError> {
        let cfg = &self.net.cfg;
        let (w, h) = (cfg.width, cfg.height);
        let candle = |e: candle_core::Error| PerceptionError::Candle { context: "running the perception network".into(), source: e };
        let views: Vec<View> = frames.iter().map(|f| View::letterbox(f.w, f.h, w, h)).collect();
        let mut input = Vec::with_capacity(frames.len() * 3 * w * h * if self.mirror { 2 } else { 1 });
        for (f, v) in frames.iter().zip(&views) {
            input.extend(normalise(&v.sample_rgb(f.rgb, f.w, f.h), w, h));
        }
        let batch = if self.mirror {
            // The mirror images after the frames: each row of each plane reversed.
            let mirrored: Vec<f32> = input.chunks_exact(w).flat_map(|row| row.iter().rev().copied()).collect();
            input.extend(mirrored);
            2 * frames.len()
        } else {
            frames.len()
        };
        let x = Tensor::from_vec(input, (batch, 3, h, w), &self.device).map_err(candle)?;
        let out = self.net.forward(&x, false).map_err(candle)?;
        let mut grids = Grids::of(&out).map_err(candle)?;
        if self.mirror {
            grids.fold_mirrored(frames.len());
        }
        let mut preds = Vec::with_capacity(frames.len());
        for (i, (f, v)) in frames.iter().zip(&views).enumerate() {
            let mut p = Prediction {
                detections: grids.detections(i, v, f, self.threshold, self.max_detections),
                confidence: grids.confidence(i, v, f) * evidence(f.rgb),
                ..Default::default()
            };
            if dense {
                let fx_input = f.fx.map_or(cfg.focal, |fx| fx / v.k);
                p.depth = grids.depth(i, v, f, depth_scale(fx_input, cfg.focal));
                p.seg = grids.segmentation(i, v, f);
                if probabilities {
                    p.seg_prob = grids.probabilities(i, v, f, &p.seg);
                }
            }
            preds.push(p);
        }
        Ok(preds)
    }
}

/// How much a frame shows, 0–1: the standard deviation of its luma (0–255)
/// over 16, capped at 1 (every 7th pixel is enough). A covered lens, a
/// dead sensor or a frame washed out by glare has next to none; the
/// simulator's frames have 34–44, night included.
pub fn evidence(rgb: &[u8]) -> f32 {
    let (mut n, mut sum, mut sq) = (0f64, 0f64, 0f64);
    for p in rgb.chunks_exact(3).step_by(7) {
        let l = 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64;
        n += 1.0;
        sum += l;
        sq += l * l;
    }
    if n == 0.0 {
        return 0.0;
    }
    let var = (sq / n - (sum / n).powi(2)).max(0.0);
    (var.sqrt() / 16.0).min(1.0) as f32
}

/// The heads' outputs of a batch as plain numbers.
struct Grids {
    heat: Vec<f32>,
    ltrb: Vec<f32>,
    log_depth: Vec<f32>,
    seg: Vec<f32>,
    det: usize,
    classes: usize,
    gw: usize,
    gh: usize,
}

impl Grids {
    fn of(out: &Outputs) -> candle_core::Result<Grids> {
        let (_, det, gh, gw) = out.heat.dims4()?;
        let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
        Ok(Grids {
            heat: flat(&candle_nn::ops::sigmoid(&out.heat)?)?,
            ltrb: flat(&out.ltrb)?,
            log_depth: flat(&out.log_depth)?,
            seg: flat(&out.seg)?,
            det,
            classes: out.seg.dim(1)?,
            gw,
            gh,
        })
    }

    /// Averages each of the first `n` images' outputs with those of its
    /// mirror image (images `n..2n`) flipped back, and drops the mirrors. A
    /// stride-4 cell i of a frame W wide is cell W/4 − 1 − i of its mirror
    /// (the same centre), and the mirror's left and right box extents are
    /// the frame's right and left. Heat as probabilities, depth as logs and
    /// segmentation as logits are averaged.
    fn fold_mirrored(&mut self, n: usize) {
        let (gw, gh) = (self.gw, self.gh);
        let cells = gw * gh;
        let fold = |v: &mut Vec<f32>, channels: usize, swap: &dyn Fn(usize) -> usize| {
            for b in 0..n {
                for c in 0..channels {
                    let (dst, src) = ((b * channels + c) * cells, ((n + b) * channels + swap(c)) * cells);
                    for j in 0..gh {
                        for i in 0..gw {
                            let m = v[src + j * gw + (gw - 1 - i)];
                            let o = &mut v[dst + j * gw + i];
                            *o = 0.5 * (*o + m);
                        }
                    }
                }
            }
            v.truncate(n * channels * cells);
        };
        let same = |c: usize| c;
        fold(&mut self.heat, self.det, &same);
        fold(&mut self.ltrb, 4, &|c: usize| [2, 1, 0, 3][c]);
        fold(&mut self.log_depth, 1, &same);
        fold(&mut self.seg, self.classes, &same);
    }

    /// Heat-map peaks (a cell no lower than its 8 neighbours) above `threshold`, best first.
    fn detections(&self, n: usize, view: &View, f: &FrameRef, threshold: f32, max: usize) -> Vec<Detection> {
        let (gw, gh) = (self.gw, self.gh);
        let cells = gw * gh;
        let mut found = Vec::new();
        for k in 0..self.det {
            let map = &self.heat[(n * self.det + k) * cells..(n * self.det + k + 1) * cells];
            for j in 0..gh {
                for i in 0..gw {
                    let s = map[j * gw + i];
                    if s < threshold {
                        continue;
                    }
                    let mut peak = true;
                    'n: for dj in -1i32..=1 {
                        for di in -1i32..=1 {
                            let (x, y) = (i as i32 + di, j as i32 + dj);
                            if (di, dj) != (0, 0) && x >= 0 && y >= 0 && x < gw as i32 && y < gh as i32 {
                                let o = map[y as usize * gw + x as usize];
                                // Ties go to the first cell in scan order.
                                if o > s || (o == s && (dj < 0 || (dj == 0 && di < 0))) {
                                    peak = false;
                                    break 'n;
                                }
                            }
                        }
                    }
                    if peak {
                        found.push((s, k, j * gw + i));
                    }
                }
            }
        }
        found.sort_by(|a, b| b.0.total_cmp(&a.0));
        found.truncate(max);
        found
            .into_iter()
            .map(|(score, class, cell)| {
                let (i, j) = (cell % gw, cell / gw);
                let (cx, cy) = ((i as f32 + 0.5) * STRIDE as f32, (j as f32 + 0.5) * STRIDE as f32);
                let e = |c: usize| self.ltrb[(n * 4 + c) * cells + cell];
                let b = view.box_to_source([cx - e(0), cy - e(1), cx + e(2), cy + e(3)]);
                let bbox =
                    [b[0].clamp(0.0, f.w as f32), b[1].clamp(0.0, f.h as f32), b[2].clamp(0.0, f.w as f32), b[3].clamp(0.0, f.h as f32)];
                Detection { class, score, bbox }
            })
            .collect()
    }

    /// The mean over the cells whose centre falls inside the frame (not the
    /// letterbox's padding) of the segmentation's top class probability.
    fn confidence(&self, n: usize, view: &View, f: &FrameRef) -> f32 {
        let (cells, k) = (self.gw * self.gh, self.classes);
        let logits = &self.seg[n * k * cells..(n + 1) * k * cells];
        let (mut sum, mut count) = (0f64, 0usize);
        for j in 0..self.gh {
            for i in 0..self.gw {
                let (x, y) = view.to_source((i as f32 + 0.5) * STRIDE as f32, (j as f32 + 0.5) * STRIDE as f32);
                if !(x >= 0.0 && y >= 0.0 && x < f.w as f32 && y < f.h as f32) {
                    continue;
                }
                let c = j * self.gw + i;
                let max = (0..k).map(|a| logits[a * cells + c]).fold(f32::NEG_INFINITY, f32::max);
                let total: f32 = (0..k).map(|a| (logits[a * cells + c] - max).exp()).sum();
                sum += (1.0 / total) as f64;
                count += 1;
            }
        }
        if count == 0 || !sum.is_finite() {
            return f32::NAN;
        }
        (sum / count as f64) as f32
    }

    /// For frame pixel (x, y): the four grid cells around it and their bilinear weights.
    fn taps(&self, view: &View, x: usize, y: usize) -> [(usize, f32); 4] {
        let (u, v) = view.to_input(x as f32 + 0.5, y as f32 + 0.5);
        let gu = (u / STRIDE as f32 - 0.5).clamp(0.0, (self.gw - 1) as f32);
        let gv = (v / STRIDE as f32 - 0.5).clamp(0.0, (self.gh - 1) as f32);
        let (i0, j0) = (gu as usize, gv as usize);
        let (i1, j1) = ((i0 + 1).min(self.gw - 1), (j0 + 1).min(self.gh - 1));
        let (fx, fy) = (gu - i0 as f32, gv - j0 as f32);
        [
            (j0 * self.gw + i0, (1.0 - fx) * (1.0 - fy)),
            (j0 * self.gw + i1, fx * (1.0 - fy)),
            (j1 * self.gw + i0, (1.0 - fx) * fy),
            (j1 * self.gw + i1, fx * fy),
        ]
    }

    /// Metres per frame pixel: bilinear in log depth.
    fn depth(&self, n: usize, view: &View, f: &FrameRef, scale: f32) -> Vec<f32> {
        let cells = self.gw * self.gh;
        let d = &self.log_depth[n * cells..(n + 1) * cells];
        let mut out = vec![0f32; f.w * f.h];
        out.par_chunks_mut(f.w).enumerate().for_each(|(y, line)| {
            for (x, o) in line.iter_mut().enumerate() {
                let l: f32 = self.taps(view, x, y).iter().map(|&(c, wt)| d[c] * wt).sum();
                *o = l.exp() * scale;
            }
        });
        out
    }

    /// The softmax probability of `seg`'s class at each frame pixel, interpolated between cells.
    fn probabilities(&self, n: usize, view: &View, f: &FrameRef, seg: &[u8]) -> Vec<f32> {
        let (cells, k) = (self.gw * self.gh, self.classes);
        let logits = &self.seg[n * k * cells..(n + 1) * k * cells];
        // Per cell: log of the softmax's denominator.
        let lse: Vec<f32> = (0..cells)
            .map(|c| {
                let m = (0..k).map(|a| logits[a * cells + c]).fold(f32::NEG_INFINITY, f32::max);
                m + (0..k).map(|a| (logits[a * cells + c] - m).exp()).sum::<f32>().ln()
            })
            .collect();
        let mut out = vec![0f32; f.w * f.h];
        out.par_chunks_mut(f.w).enumerate().for_each(|(y, line)| {
            for (x, o) in line.iter_mut().enumerate() {
                let class = seg[y * f.w + x] as usize;
                *o = self.taps(view, x, y).iter().map(|&(c, wt)| wt * (logits[class * cells + c] - lse[c]).exp()).sum();
            }
        });
        out
    }

    /// The class per frame pixel: where the four cells around a pixel agree,
    /// theirs; elsewhere the argmax of the bilinearly interpolated logits.
    fn segmentation(&self, n: usize, view: &View, f: &FrameRef) -> Vec<u8> {
        let (cells, k) = (self.gw * self.gh, self.classes);
        let logits = &self.seg[n * k * cells..(n + 1) * k * cells];
        let best: Vec<u8> = (0..cells)
            .map(|c| (0..k).max_by(|&a, &b| logits[a * cells + c].total_cmp(&logits[b * cells + c])).unwrap_or(0) as u8)
            .collect();
        let mut out = vec![0u8; f.w * f.h];
        out.par_chunks_mut(f.w).enumerate().for_each(|(y, line)| {
            for (x, o) in line.iter_mut().enumerate() {
                let taps = self.taps(view, x, y);
                let first = best[taps[0].0];
                if taps.iter().all(|&(c, _)| best[c] == first) {
                    *o = first;
                    continue;
                }
                let score = |class: usize| -> f32 { taps.iter().map(|&(c, wt)| logits[class * cells + c] * wt).sum() };
                *o = taps.iter().map(|&(c, _)| best[c] as usize).max_by(|&a, &b| score(a).total_cmp(&score(b))).unwrap_or(0) as u8;
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Config;
    use candle_core::DType;
    use candle_nn::{VarBuilder, VarMap};

    /// Averaged with its mirror image, a prediction is mirror-symmetric: the
    /// mirrored frame gets the mirrored segmentation, depth and boxes. An
    /// untrained network alone is not.
    #[test]
    fn mirrored_predictions_are_mirror_symmetric() {
        let vm = VarMap::new();
        let cfg = Config::small(vec!["vehicle".into(), "pedestrian".into()], (0..5).map(|i| format!("c{i}")).collect());
        let (w, h) = (cfg.width, cfg.height);
        let net = Net::new(cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
        // Seeded weights: with fresh random ones each run, two boxes now and then tie for the top.
        s2r_train::seeded_init(&vm, 7).unwrap();
        net.init_biases().unwrap();
        let mut p = Predictor { net: net.fold().unwrap(), device: Device::Cpu, threshold: 0.0, max_detections: 5, mirror: false };
        let rgb: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                [((x * 7 + y * 3) % 256) as u8, ((x * x + y) % 251) as u8, if x < w / 3 { 200 } else { 30 }]
            })
            .collect();
        let mirrored: Vec<u8> =
            rgb.chunks_exact(3 * w).flat_map(|row| row.chunks_exact(3).rev().flatten().copied().collect::<Vec<_>>()).collect();
        fn frame(rgb: &[u8], w: usize, h: usize) -> [FrameRef<'_>; 1] {
            [FrameRef { rgb, w, h, fx: None }]
        }
        for mirror in [false, true] {
            p.mirror = mirror;
            let a = p.predict(&frame(&rgb, w, h), true).unwrap().remove(0);
            let b = p.predict(&frame(&mirrored, w, h), true).unwrap().remove(0);
            let flip = |x: usize| (x / w) * w + (w - 1 - x % w);
            let depth = (0..w * h).map(|i| (a.depth[i] - b.depth[flip(i)]).abs() / a.depth[i].abs().max(1e-3)).fold(0.0, f32::max);
            let seg = (0..w * h).filter(|&i| a.seg[i] == b.seg[flip(i)]).count() as f32 / (w * h) as f32;
            // Each frame's top box is among the other's boxes, mirrored (the weights are
            // random: two boxes may tie for the top to rounding, in either order).
            let same = |da: &Detection, db: &Detection| {
                da.class == db.class
                    && (da.score - db.score).abs() < 1e-5
                    && [w as f32 - db.bbox[2], db.bbox[1], w as f32 - db.bbox[0], db.bbox[3]]
                        .iter()
                        .zip(&da.bbox)
                        .all(|(x, y)| (x - y).abs() < 1e-2)
            };
            let boxes =
                b.detections.iter().any(|db| same(&a.detections[0], db)) && a.detections.iter().any(|da| same(da, &b.detections[0]));
            if mirror {
                assert!(depth < 1e-4 && seg > 0.995 && boxes, "mirrored: depth differs by {depth}, seg agrees on {seg}, boxes {boxes}");
            } else {
                assert!(depth > 1e-3, "an untrained network is not mirror-symmetric (depth differs by {depth})");
            }
        }
    }
}
