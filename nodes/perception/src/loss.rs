//! Training targets at the heads' stride and the multi-task loss.
//!
//! Detection follows TTFNet's assignment: each object puts an elliptical
//! Gaussian (σ = 0.54·size/6 per axis) on its class's heat map, peaking at 1
//! in the cell of its centre (penalty-reduced focal loss, CenterNet); every
//! cell under that Gaussian and inside the box regresses the box's edges,
//! weighted by the Gaussian and normalised per object, with a GIoU loss.
//! Where boxes overlap, the smaller one owns the cell. Depth: L1 on log
//! depth in the canonical camera. Segmentation: cross-entropy; padding is ignored.

use candle_core::{DType, Device, Result, Tensor};

use crate::augment::Example;
use crate::model::{Outputs, STRIDE};

/// Objects less visible than this are not taught (and not counted in evaluation).
pub const MIN_VISIBLE: f32 = 0.25;
/// Nor boxes smaller than this on either side, in input pixels.
pub const MIN_SIZE: f32 = 3.0;

/// Whether an object box (input pixels, already clipped) with its visible
/// fraction is one the detector should find.
pub fn taught(b: [f32; 4], visible: f32) -> bool {
    visible >= MIN_VISIBLE && b[2] - b[0] >= MIN_SIZE && b[3] - b[1] >= MIN_SIZE
}

/// A box clipped to a `w`×`h` input, or None when less than 40% of it is left.
pub fn clip_box(b: [f32; 4], w: usize, h: usize) -> Option<[f32; 4]> {
    let c = [b[0].max(0.0), b[1].max(0.0), b[2].min(w as f32), b[3].min(h as f32)];
    let area = |b: [f32; 4]| (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0);
    (area(b) > 0.0 && area(c) >= 0.4 * area(b)).then_some(c)
}

/// A batch's targets as tensors.
#[derive(Debug)]
pub struct Targets {
    heat: Tensor,
    pos: Tensor,
    /// 1 inside an object that is not taught (too hidden or too small, or a
    /// pseudo-label too unsure to teach), in its class's channel: neither a
    /// positive nor background there (as evaluation does not count it).
    ignore: Tensor,
    boxes: Tensor,
    box_weight: Tensor,
    objects: f32,
    depth: Tensor,
    depth_mask: Tensor,
    seg: Tensor,
    seg_mask: Tensor,
    cx: Tensor,
    cy: Tensor,
}

/// The parts of the loss.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Losses {
    /// Heat-map focal loss.
    pub heat: f32,
    /// 1 − GIoU of the boxes.
    pub boxes: f32,
    /// L1 of log depth.
    pub depth: f32,
    /// Segmentation cross-entropy.
    pub seg: f32,
    /// The weighted sum that is minimised.
    pub total: f32,
}

/// Weight of the box loss in the total.
const BOX_WEIGHT: f64 = 2.0;

impl Targets {
    /// The targets of `examples` (all of the same size) for a network with
    /// `det` detected classes; `det_lut` maps an object's segmentation class
    /// to its detected class; `focal` is the canonical focal length.
    pub fn new(examples: &[Example], det_lut: &[Option<usize>], det: usize, focal: f32, device: &Device) -> Result<Targets> {
        let (w, h) = (examples[0].w, examples[0].h);
        let (gw, gh) = (w / STRIDE, h / STRIDE);
        let b = examples.len();
        let cells = gw * gh;
        let mut heat = vec![0f32; b * det * cells];
        let mut ignore = vec![0f32; b * det * cells];
        let mut boxes = vec![0f32; b * 4 * cells];
        let mut weight = vec![0f32; b * cells];
        let mut depth = vec![0f32; b * cells];
        let mut depth_mask = vec![0f32; b * cells];
        let mut seg = vec![0u32; b * cells];
        let mut seg_mask = vec![0f32; b * cells];
        let mut objects = 0usize;
        for (n, ex) in examples.iter().enumerate() {
            let mut objs: Vec<(usize, [f32; 4])> = Vec::new();
            for &(class, bx, vis) in &ex.objects {
                let Some(k) = det_lut.get(class).copied().flatten() else { continue };
                let Some(c) = clip_box(bx, w, h) else { continue };
                if taught(c, vis) {
                    objs.push((k, c));
                    continue;
                }
                // Not taught: the cells whose centres it covers are not background either.
                for j in 0..gh {
                    for i in 0..gw {
                        let (px, py) = ((i as f32 + 0.5) * STRIDE as f32, (j as f32 + 0.5) * STRIDE as f32);
                        if px >= c[0] && px <= c[2] && py >= c[1] && py <= c[3] {
                            ignore[(n * det + k) * cells + j * gw + i] = 1.0;
                        }
                    }
                }
            }
            // Larger first, so that smaller boxes overwrite the cells they share.
            objs.sort_by(|a, b| area(b.1).total_cmp(&area(a.1)));
            for (k, bx) in objs {
                objects += 1;
                let (bw, bh) = ((bx[2] - bx[0]) / STRIDE as f32, (bx[3] - bx[1]) / STRIDE as f32);
                let (cx, cy) = ((bx[0] + bx[2]) / 2.0 / STRIDE as f32, (bx[1] + bx[3]) / 2.0 / STRIDE as f32);
                let (ci, cj) = ((cx as usize).min(gw - 1), (cy as usize).min(gh - 1));
                let (sx, sy) = ((0.54 * bw / 6.0).max(0.3), (0.54 * bh / 6.0).max(0.3));
                let (rx, ry) = ((3.0 * sx).ceil() as isize, (3.0 * sy).ceil() as isize);
                let mut cells_of: Vec<(usize, f32)> = Vec::new();
                for dj in -ry..=ry {
                    for di in -rx..=rx {
                        let (i, j) = (ci as isize + di, cj as isize + dj);
                        if i < 0 || j < 0 || i >= gw as isize || j >= gh as isize {
                            continue;
                        }
                        let g = (-(di * di) as f32 / (2.0 * sx * sx) - (dj * dj) as f32 / (2.0 * sy * sy)).exp();
                        let cell = j as usize * gw + i as usize;
                        let hi = (n * det + k) * cells + cell;
                        heat[hi] = heat[hi].max(g);
                        let (px, py) = ((i as f32 + 0.5) * STRIDE as f32, (j as f32 + 0.5) * STRIDE as f32);
                        let inside = px > bx[0] && px < bx[2] && py > bx[1] && py < bx[3];
                        if g > 0.01 && (inside || (di == 0 && dj == 0)) {
                            cells_of.push((cell, g));
                        }
                    }
                }
                let total: f32 = cells_of.iter().map(|c| c.1).sum();
                for (cell, g) in cells_of {
                    weight[n * cells + cell] = g / total;
                    for (e, v) in bx.iter().enumerate() {
                        boxes[(n * 4 + e) * cells + cell] = *v;
                    }
                }
            }
            for j in 0..gh {
                for i in 0..gw {
                    let p = (j * STRIDE + STRIDE / 2) * w + i * STRIDE + STRIDE / 2;
                    let d = ex.depth[p];
                    if d.is_finite() && d > 0.0 {
                        depth[n * cells + j * gw + i] = (d * focal / ex.fx).ln();
                        depth_mask[n * cells + j * gw + i] = 1.0;
                    }
                    if ex.seg[p] != 255 {
                        seg[n * cells + j * gw + i] = ex.seg[p] as u32;
                        seg_mask[n * cells + j * gw + i] = 1.0;
                    }
                }
            }
        }
        let pos: Vec<f32> = heat.iter().map(|&v| if v >= 1.0 - 1e-6 { 1.0 } else { 0.0 }).collect();
        let cx: Vec<f32> = (0..gw).map(|i| (i as f32 + 0.5) * STRIDE as f32).collect();
        let cy: Vec<f32> = (0..gh).map(|j| (j as f32 + 0.5) * STRIDE as f32).collect();
        Ok(Targets {
            heat: Tensor::from_vec(heat, (b, det, gh, gw), device)?,
            pos: Tensor::from_vec(pos, (b, det, gh, gw), device)?,
            ignore: Tensor::from_vec(ignore, (b, det, gh, gw), device)?,
            boxes: Tensor::from_vec(boxes, (b, 4, gh, gw), device)?,
            box_weight: Tensor::from_vec(weight, (b, 1, gh, gw), device)?,
            objects: objects as f32,
            depth: Tensor::from_vec(depth, (b, 1, gh, gw), device)?,
            depth_mask: Tensor::from_vec(depth_mask, (b, 1, gh, gw), device)?,
            seg: Tensor::from_vec(seg, (b, 1, gh, gw), device)?,
            seg_mask: Tensor::from_vec(seg_mask, (b, 1, gh, gw), device)?,
            cx: Tensor::from_vec(cx, (1, 1, 1, gw), device)?,
            cy: Tensor::from_vec(cy, (1, 1, gh, 1), device)?,
        })
    }

    /// The loss of `out` against these targets: the total as a tensor (to
    /// differentiate) and every part as a number.
    pub fn loss(&self, out: &Outputs) -> Result<(Tensor, Losses)> {
        // Penalty-reduced focal loss.
        let p = candle_nn::ops::sigmoid(&out.heat)?.clamp(1e-4, 1.0 - 1e-4)?;
        let one_minus_p = p.affine(-1.0, 1.0)?;
        let pos_term = (p.log()? * one_minus_p.sqr()?)?.mul(&self.pos)?.sum_all()?;
        let neg_w = ((self.heat.affine(-1.0, 1.0)?.powf(4.0)? * self.pos.affine(-1.0, 1.0)?)? * self.ignore.affine(-1.0, 1.0)?)?;
        let neg_term = (one_minus_p.log()? * p.sqr()?)?.mul(&neg_w)?.sum_all()?;
        let npos = self.pos.sum_all()?.to_scalar::<f32>()?.max(1.0);
        let heat = ((pos_term + neg_term)? / -(npos as f64))?;

        // GIoU of the boxes each assigned cell predicts.
        let edge = |t: &Tensor, i: usize| t.narrow(1, i, 1);
        let (l, t, r, b) = (edge(&out.ltrb, 0)?, edge(&out.ltrb, 1)?, edge(&out.ltrb, 2)?, edge(&out.ltrb, 3)?);
        let px0 = self.cx.broadcast_sub(&l)?;
        let py0 = self.cy.broadcast_sub(&t)?;
        let px1 = self.cx.broadcast_add(&r)?;
        let py1 = self.cy.broadcast_add(&b)?;
        let (tx0, ty0, tx1, ty1) = (edge(&self.boxes, 0)?, edge(&self.boxes, 1)?, edge(&self.boxes, 2)?, edge(&self.boxes, 3)?);
        let iw = (px1.minimum(&tx1)? - px0.maximum(&tx0)?)?.relu()?;
        let ih = (py1.minimum(&ty1)? - py0.maximum(&ty0)?)?.relu()?;
        let inter = (iw * ih)?;
        let area_p = ((&l + &r)? * (&t + &b)?)?;
        let area_t = ((&tx1 - &tx0)? * (&ty1 - &ty0)?)?;
        let union = ((area_p + area_t)? - &inter)?;
        let cw = (px1.maximum(&tx1)? - px0.minimum(&tx0)?)?;
        let ch = (py1.maximum(&ty1)? - py0.minimum(&ty0)?)?;
        let hull = (cw * ch)?;
        let giou = ((inter / &union)? - ((&hull - &union)? / &hull)?)?;
        let boxes = (giou.affine(-1.0, 1.0)? * &self.box_weight)?.sum_all()?.affine(1.0 / self.objects.max(1.0) as f64, 0.0)?;

        let masked_mean = |v: Tensor, m: &Tensor| -> Result<Tensor> {
            let n = m.sum_all()?.to_scalar::<f32>()?.max(1.0);
            (v * m)?.sum_all()?.affine(1.0 / n as f64, 0.0)
        };
        let depth = masked_mean((&out.log_depth - &self.depth)?.abs()?, &self.depth_mask)?;
        let logp = candle_nn::ops::log_softmax(&out.seg, 1)?.gather(&self.seg, 1)?;
        let seg = masked_mean(logp.neg()?, &self.seg_mask)?;

        let total = (((&heat + boxes.affine(BOX_WEIGHT, 0.0)?)? + &depth)? + &seg)?;
        let v = |t: &Tensor| t.to_dtype(DType::F32)?.to_scalar::<f32>();
        let parts = Losses { heat: v(&heat)?, boxes: v(&boxes)?, depth: v(&depth)?, seg: v(&seg)?, total: v(&total)? };
        Ok((total, parts))
    }
}

fn area(b: [f32; 4]) -> f32 {
    (b[2] - b[0]) * (b[3] - b[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Example {
        let (w, h) = (64, 48);
        Example {
            rgb: vec![0; w * h * 3],
            w,
            h,
            depth: vec![10.0; w * h],
            seg: vec![1; w * h],
            objects: vec![(2, [10.0, 10.0, 30.0, 40.0], 1.0), (2, [50.0, 5.0, 52.0, 7.0], 1.0), (3, [0.0, 0.0, 8.0, 8.0], 0.1)],
            fx: 100.0,
        }
    }

    #[test]
    fn targets_put_a_peak_per_taught_object_and_boxes_under_it() -> Result<()> {
        let lut = vec![None, None, Some(0), Some(1)];
        let t = Targets::new(&[example()], &lut, 2, 100.0, &Device::Cpu)?;
        // The 2×2 box is too small and the third object too hidden: one peak.
        assert_eq!(t.pos.sum_all()?.to_scalar::<f32>()?, 1.0);
        assert_eq!(t.objects, 1.0);
        let w = t.box_weight.sum_all()?.to_scalar::<f32>()?;
        assert!((w - 1.0).abs() < 1e-5, "weights of one object sum to 1, got {w}");
        // The centre cell (20, 25)/4 = (5, 6) regresses the box.
        let bx: Vec<f32> = (0..4).map(|e| t.boxes.get(0)?.get(e)?.get(6)?.get(5)?.to_scalar::<f32>()).collect::<Result<_>>()?;
        assert_eq!(bx, vec![10.0, 10.0, 30.0, 40.0]);
        // Depth 10 m with fx = focal is ln 10.
        let d = t.depth.get(0)?.get(0)?.get(0)?.get(0)?.to_scalar::<f32>()?;
        assert!((d - 10f32.ln()).abs() < 1e-5);
        Ok(())
    }

    #[test]
    fn a_perfect_prediction_has_no_box_loss() -> Result<()> {
        let lut = vec![None, None, Some(0), Some(1)];
        let t = Targets::new(&[example()], &lut, 2, 100.0, &Device::Cpu)?;
        let (gh, gw) = (12, 16);
        // ltrb from each cell centre to the target box: exact where weighted.
        let l = t.cx.broadcast_sub(&t.boxes.narrow(1, 0, 1)?)?;
        let tt = t.cy.broadcast_sub(&t.boxes.narrow(1, 1, 1)?)?;
        let r = t.boxes.narrow(1, 2, 1)?.broadcast_sub(&t.cx)?;
        let b = t.boxes.narrow(1, 3, 1)?.broadcast_sub(&t.cy)?;
        let ltrb = Tensor::cat(&[l, tt, r, b], 1)?.relu()?.affine(1.0, 1e-3)?;
        let out = Outputs {
            heat: Tensor::zeros((1, 2, gh, gw), DType::F32, &Device::Cpu)?,
            ltrb,
            log_depth: t.depth.clone(),
            seg: Tensor::zeros((1, 4, gh, gw), DType::F32, &Device::Cpu)?,
        };
        let (_, parts) = t.loss(&out)?;
        assert!(parts.boxes < 1e-3, "box loss {}", parts.boxes);
        assert!(parts.depth < 1e-6);
        assert!((parts.seg - 4f32.ln()).abs() < 1e-4, "uniform logits over 4 classes");
        assert!(parts.heat > 0.0);
        Ok(())
    }

    #[test]
    fn untaught_objects_are_neither_objects_nor_background() -> Result<()> {
        let lut = vec![None, None, Some(0), Some(1)];
        let t = Targets::new(&[example()], &lut, 2, 100.0, &Device::Cpu)?;
        // The hidden object (class 1's channel, 0..8 × 0..8): its 4 cells; the 2×2 one: 1 cell of class 0.
        assert_eq!(t.ignore.get(0)?.get(1)?.sum_all()?.to_scalar::<f32>()?, 4.0);
        assert_eq!(t.ignore.get(0)?.get(0)?.sum_all()?.to_scalar::<f32>()?, 1.0);
        // A confident detection there costs nothing; the same elsewhere does.
        let (gh, gw) = (12, 16);
        let mut heat = vec![-10f32; 2 * gh * gw];
        let loss_with = |heat: &[f32]| -> Result<f32> {
            let out = Outputs {
                heat: Tensor::from_vec(heat.to_vec(), (1, 2, gh, gw), &Device::Cpu)?,
                ltrb: Tensor::ones((1, 4, gh, gw), DType::F32, &Device::Cpu)?,
                log_depth: t.depth.clone(),
                seg: Tensor::zeros((1, 4, gh, gw), DType::F32, &Device::Cpu)?,
            };
            Ok(t.loss(&out)?.1.heat)
        };
        let base = loss_with(&heat)?;
        heat[gh * gw] = 10.0; // class 1, cell (0, 0): inside the hidden object
        assert!((loss_with(&heat)? - base).abs() < 1e-6);
        heat[gh * gw] = -10.0;
        heat[gh * gw + 8 * gw + 12] = 10.0; // class 1, cell (12, 8): background
        assert!(loss_with(&heat)? > base + 1.0);
        Ok(())
    }
}
