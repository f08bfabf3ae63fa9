//! Evaluation against the simulator's labels: COCO-style detection AP
//! ([`crate::coco`], the same numbers as pycocotools), depth AbsRel and
//! δ < 1.25, segmentation IoU per class and mIoU. `s2r eval perception` and
//! the held-out figures of training both come from [`evaluate`].

use serde::Serialize;

use crate::coco::{self, CocoSummary, DetBox, GtBox};
use crate::data::{decode_depth, Dataset, Sample};
use crate::frame::View;
use crate::loss::{clip_box, taught};
use crate::predict::{FrameRef, Prediction, Predictor};
use crate::PerceptionError;

/// Objects count in the detection figures when at least this tall at the
/// network's input (12 px of 240, i.e. 24 px at 640×480: KITTI's
/// "moderate" objects are ≥ 25 px tall at 1242×375), taught (visible enough)
/// and not cut by the frame's edge; the others are ignore regions.
pub const MIN_HEIGHT: f32 = 12.0;

/// Depth is scored where the truth is nearer than this (metres); the sky and the far distance are left out.
pub const MAX_DEPTH: f32 = 80.0;

/// Detection figures, overall and per class.
#[derive(Clone, Debug, Serialize)]
pub struct DetectionReport {
    /// AP@[.5:.95].
    pub ap: f64,
    /// AP@0.5.
    pub ap50: f64,
    /// AP@0.75.
    pub ap75: f64,
    /// AR@100.
    pub ar100: f64,
    /// Per class: name, AP@[.5:.95], AP@0.5, AR@100, objects (None where the data has none).
    pub per_class: Vec<ClassReport>,
}

/// One class's detection figures.
#[derive(Clone, Debug, Serialize)]
pub struct ClassReport {
    /// Its name.
    pub class: String,
    /// AP@[.5:.95].
    pub ap: Option<f64>,
    /// AP@0.5.
    pub ap50: Option<f64>,
    /// AR@100.
    pub ar100: Option<f64>,
    /// Objects of it that count.
    pub objects: usize,
}

/// Everything measured on a set of frames.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Frames evaluated.
    pub frames: usize,
    /// Detection.
    pub detection: DetectionReport,
    /// Mean |d − d*| / d* over pixels with truth nearer than [`MAX_DEPTH`] (None without dense outputs).
    pub depth_abs_rel: Option<f64>,
    /// Fraction of those pixels with max(d/d*, d*/d) < 1.25.
    pub depth_delta1: Option<f64>,
    /// Mean IoU over the classes present in the truth (the sky, `unlabeled`, left out).
    pub miou: Option<f64>,
    /// IoU per segmentation class (None where the class is absent from truth and prediction).
    pub iou: Vec<(String, Option<f64>)>,
}

/// Accumulates predictions against truth, frame by frame.
pub struct Scorer {
    det_classes: Vec<String>,
    seg_classes: Vec<String>,
    det_lut: Vec<Option<usize>>,
    gts: Vec<GtBox>,
    dets: Vec<DetBox>,
    abs_rel: f64,
    delta1: u64,
    depth_pixels: u64,
    inter: Vec<u64>,
    union: Vec<u64>,
    truth: Vec<u64>,
    frames: usize,
    dense: bool,
}

impl Scorer {
    /// A scorer for a model's classes; `data` gives the truth's tables.
    pub fn new(det_classes: &[String], seg_classes: &[String], data: &Dataset, dense: bool) -> Scorer {
        // The truth's segmentation classes by the model's names (the data may have been read with another table).
        let det_lut = data.seg_classes.iter().map(|c| det_classes.iter().position(|d| d == c)).collect();
        let k = seg_classes.len();
        Scorer {
            det_classes: det_classes.to_vec(),
            seg_classes: seg_classes.to_vec(),
            det_lut,
            gts: Vec::new(),
            dets: Vec::new(),
            abs_rel: 0.0,
            delta1: 0,
            depth_pixels: 0,
            inter: vec![0; k],
            union: vec![0; k],
            truth: vec![0; k],
            frames: 0,
            dense,
        }
    }

    /// Adds one frame. The truth's boxes that detection should find count;
    /// the others (mostly hidden, shorter than [`MIN_HEIGHT`] at the network's
    /// input, cut by the frame's edge) are ignore regions (COCO's crowd):
    /// finding them is neither rewarded nor punished.
    pub fn add(&mut self, sample: &Sample, pred: &Prediction, net_size: (usize, usize)) {
        let l = &sample.labels;
        let image = self.frames;
        self.frames += 1;
        let view = View::letterbox(l.w, l.h, net_size.0, net_size.1);
        for o in &l.objects {
            let Some(class) = self.det_lut.get(o.class).copied().flatten() else { continue };
            let in_net = view.box_to_input(o.bbox);
            let counts = clip_box(in_net, net_size.0, net_size.1).is_some_and(|c| taught(c, o.visible) && c[3] - c[1] >= MIN_HEIGHT);
            let b = o.bbox;
            self.gts.push(GtBox { image, class, bbox: [b[0], b[1], b[2] - b[0], b[3] - b[1]], crowd: !counts });
        }
        for d in &pred.detections {
            let b = d.bbox;
            self.dets.push(DetBox { image, class: d.class, bbox: [b[0], b[1], b[2] - b[0], b[3] - b[1]], score: d.score });
        }
        if self.dense && !pred.depth.is_empty() {
            for (code, p) in l.depth.iter().zip(&pred.depth) {
                let g = decode_depth(*code);
                if g.is_finite() && g > 0.0 && g <= MAX_DEPTH && p.is_finite() {
                    self.abs_rel += ((p - g).abs() / g) as f64;
                    self.delta1 += ((p / g).max(g / p) < 1.25) as u64;
                    self.depth_pixels += 1;
                }
            }
            for (t, p) in l.seg.iter().zip(&pred.seg) {
                let (t, p) = (*t as usize, *p as usize);
                if t >= self.inter.len() {
                    continue;
                }
                self.truth[t] += 1;
                self.union[t] += 1;
                if t == p {
                    self.inter[t] += 1;
                } else if p < self.union.len() {
                    self.union[p] += 1;
                }
            }
        }
    }

    /// The detection problem as scored, in the form other COCO evaluators take
    /// (`tests/peers/coco_peer.py` runs pycocotools on it): `{"classes", "gts", "dets"}`, boxes [x, y, w, h].
    pub fn coco_case(&self) -> serde_json::Value {
        let gts: Vec<_> =
            self.gts.iter().map(|g| serde_json::json!({"image": g.image, "class": g.class, "bbox": g.bbox, "crowd": g.crowd})).collect();
        let dets: Vec<_> =
            self.dets.iter().map(|d| serde_json::json!({"image": d.image, "class": d.class, "bbox": d.bbox, "score": d.score})).collect();
        serde_json::json!({"classes": self.det_classes.len(), "names": self.det_classes, "gts": gts, "dets": dets})
    }

    /// The figures so far.
    pub fn report(&self) -> Report {
        let CocoSummary { ap, ap50, ap75, ar100, per_class, .. } = coco::evaluate(&self.gts, &self.dets, self.det_classes.len());
        let per_class = per_class
            .iter()
            .zip(&self.det_classes)
            .map(|(c, name)| ClassReport { class: name.clone(), ap: c.ap, ap50: c.ap50, ar100: c.ar100, objects: c.gts })
            .collect();
        let iou: Vec<(String, Option<f64>)> = self
            .seg_classes
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), (self.union[i] > 0).then(|| self.inter[i] as f64 / self.union[i] as f64)))
            .collect();
        let present: Vec<f64> =
            iou.iter().enumerate().filter(|(i, _)| *i != 0 && self.truth[*i] > 0).filter_map(|(_, (_, v))| *v).collect();
        let dense = self.dense && self.depth_pixels > 0;
        Report {
            frames: self.frames,
            detection: DetectionReport { ap, ap50, ap75, ar100, per_class },
            depth_abs_rel: dense.then(|| self.abs_rel / self.depth_pixels as f64),
            depth_delta1: dense.then(|| self.delta1 as f64 / self.depth_pixels as f64),
            miou: (self.dense && !present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64),
            iou: if self.dense { iou } else { Vec::new() },
        }
    }
}

/// Runs `pred` over every sample of `data` in batches of `batch` and scores it;
/// `dense` adds depth and segmentation; `each` sees every sample with its prediction (for contact sheets).
pub fn evaluate(
    pred: &Predictor,
    data: &Dataset,
    batch: usize,
    dense: bool,
    each: impl FnMut(&Sample, &Prediction),
) -> Result<Report, PerceptionError> {
    Ok(score(pred, data, batch, dense, each)?.report())
}

/// [`evaluate`], returning the scorer (its boxes as well as its report).
pub fn score(
    pred: &Predictor,
    data: &Dataset,
    batch: usize,
    dense: bool,
    mut each: impl FnMut(&Sample, &Prediction),
) -> Result<Scorer, PerceptionError> {
    let cfg = &pred.net.cfg;
    let mut scorer = Scorer::new(&cfg.det_classes, &cfg.seg_classes, data, dense);
    for chunk in data.samples.chunks(batch.max(1)) {
        let frames: Vec<FrameRef> =
            chunk.iter().map(|s| FrameRef { rgb: &s.rgb, w: s.labels.w, h: s.labels.h, fx: Some(s.labels.fx) }).collect();
        let preds = pred.predict(&frames, dense)?;
        for (s, p) in chunk.iter().zip(&preds) {
            scorer.add(s, p, (cfg.width, cfg.height));
            each(s, p);
        }
    }
    Ok(scorer)
}

/// The report as a table for a terminal.
pub fn format(r: &Report) -> String {
    let pct = |v: Option<f64>| v.map_or("    –".to_string(), |v| format!("{:5.3}", v));
    let mut s = format!(
        "{} frames\ndetection  AP@[.5:.95] {:.3}  AP@0.5 {:.3}  AP@0.75 {:.3}  AR@100 {:.3}\n",
        r.frames, r.detection.ap, r.detection.ap50, r.detection.ap75, r.detection.ar100
    );
    s += &format!("  {:<16} {:>7} {:>7} {:>7} {:>8}\n", "class", "AP", "AP@0.5", "AR@100", "objects");
    for c in &r.detection.per_class {
        s += &format!("  {:<16} {:>7} {:>7} {:>7} {:>8}\n", c.class, pct(c.ap), pct(c.ap50), pct(c.ar100), c.objects);
    }
    if let (Some(a), Some(d)) = (r.depth_abs_rel, r.depth_delta1) {
        s += &format!("depth      AbsRel {a:.3}  δ<1.25 {d:.3}  (truth nearer than {MAX_DEPTH} m)\n");
    }
    if let Some(m) = r.miou {
        s += &format!("segmentation  mIoU {m:.3}\n");
        for (name, v) in r.iou.iter().filter(|(_, v)| v.is_some()) {
            s += &format!("  {:<16} {}\n", name, pct(*v));
        }
    }
    s
}

/// One row of a contact sheet for `sample`: the prediction's boxes over the
/// frame, the truth's boxes, the predicted segmentation tinted over the
/// frame, and the predicted depth (near bright, far dark, 1–80 m on a log scale).
pub fn sheet_row(sample: &Sample, pred: &Prediction, det_classes: &[String], seg_classes: &[String]) -> Vec<s2r_image::Rgb> {
    use crate::overlay::{draw_detections, Canvas};
    let (w, h) = (sample.labels.w, sample.labels.h);
    let tile = |f: &dyn Fn(&mut Canvas)| {
        let mut rgb = sample.rgb.to_vec();
        f(&mut Canvas { rgb: &mut rgb, w, h });
        s2r_image::Rgb { width: w, height: h, data: rgb }
    };
    let predicted = tile(&|c| {
        let boxes: Vec<_> = pred
            .detections
            .iter()
            .filter(|d| d.score >= 0.3)
            .map(|d| (d.class, det_classes[d.class].as_str(), Some(d.score), d.bbox))
            .collect();
        draw_detections(c, &boxes);
    });
    let truth = tile(&|c| {
        let boxes: Vec<_> = sample
            .labels
            .objects
            .iter()
            .filter(|o| o.visible >= crate::loss::MIN_VISIBLE)
            .filter_map(|o| {
                let name = seg_classes.get(o.class)?;
                let k = det_classes.iter().position(|d| d == name)?;
                Some((k, name.as_str(), None, o.bbox))
            })
            .collect();
        draw_detections(c, &boxes);
    });
    let seg = tile(&|c| c.tint(&pred.seg, 0.55));
    let depth = if pred.depth.is_empty() {
        s2r_image::Rgb { width: w, height: h, data: vec![0; w * h * 3] }
    } else {
        let grey: Vec<u8> = pred.depth.iter().map(|&d| (255.0 * (1.0 - d.clamp(1.0, MAX_DEPTH).ln() / MAX_DEPTH.ln())) as u8).collect();
        s2r_image::Rgb::from_gray(w, h, &grey)
    };
    vec![predicted, truth, seg, depth]
}
