//! COCO-style bounding-box evaluation, written to give the same figures as pycocotools 2.0.11's
//! `COCOeval(iouType='bbox')` for the area range "all" and maxDets 1, 10 and 100 (default IoU and
//! recall thresholds). `tests/peers/coco_peer.py` runs pycocotools itself on the same input.
//!
//! What it reproduces, step by step: per (image, class) ground truth is sorted with the ignored
//! (crowd) boxes last and detections by score, highest first, with a stable sort, keeping the first
//! 100; at each IoU threshold every detection in turn takes the unmatched ground-truth box of
//! highest IoU (at least the threshold, capped at 1 - 1e-10), a crowd box may take any number of
//! detections and detections on it are ignored; per class the detections of all images (image ids
//! ascending, each image's first maxDet) are stably sorted by score, precision is made monotone from
//! the right and read at the recall thresholds; means are numpy's (pairwise summation).

use std::collections::BTreeMap;

/// A ground-truth box. `bbox` is [x, y, w, h] in pixels (COCO convention, no +1).
#[derive(Clone, Debug, PartialEq)]
pub struct GtBox {
    /// Image id; images are taken in ascending id order, as pycocotools does.
    pub image: usize,
    /// Class index, 0..classes; boxes of other classes are left out.
    pub class: usize,
    /// [x, y, w, h] in pixels.
    pub bbox: [f32; 4],
    /// A crowd region (COCO `iscrowd`): never missed, and detections on it count neither way.
    pub crowd: bool,
}

/// A detection.
#[derive(Clone, Debug, PartialEq)]
pub struct DetBox {
    /// Image id.
    pub image: usize,
    /// Class index, 0..classes; detections of other classes are left out.
    pub class: usize,
    /// [x, y, w, h] in pixels.
    pub bbox: [f32; 4],
    /// Confidence (finite); higher first, ties kept in input order.
    pub score: f32,
}

/// Per class figures; None where the class has no (non-crowd) ground truth (pycocotools' -1).
#[derive(Clone, Debug, PartialEq)]
pub struct ClassAp {
    /// Precision averaged over the IoU thresholds 0.50:0.05:0.95 and the 101 recall thresholds (maxDets 100).
    pub ap: Option<f64>,
    /// Precision at IoU 0.50 averaged over the recall thresholds.
    pub ap50: Option<f64>,
    /// Precision at IoU 0.75 averaged over the recall thresholds.
    pub ap75: Option<f64>,
    /// Recall (at most 100 detections per image) averaged over the IoU thresholds.
    pub ar100: Option<f64>,
    /// Ground-truth boxes that count for recall (not crowd, area within [0, 1e10]).
    pub gts: usize,
    /// Detections given for the class (before the 100 per image cut).
    pub dets: usize,
}

/// Overall: the mean over classes that have ground truth, as COCOeval.summarize() prints
/// (stats[0], stats[1], stats[2], stats[6], stats[7], stats[8]). Each is -1.0, as in pycocotools, when no class has ground truth.
#[derive(Clone, Debug, PartialEq)]
pub struct CocoSummary {
    /// AP at IoU 0.50:0.95, maxDets 100 (stats[0]).
    pub ap: f64,
    /// AP at IoU 0.50, maxDets 100 (stats[1]).
    pub ap50: f64,
    /// AP at IoU 0.75, maxDets 100 (stats[2]).
    pub ap75: f64,
    /// AR at IoU 0.50:0.95, maxDets 1 (stats[6]).
    pub ar1: f64,
    /// AR at IoU 0.50:0.95, maxDets 10 (stats[7]).
    pub ar10: f64,
    /// AR at IoU 0.50:0.95, maxDets 100 (stats[8]).
    pub ar100: f64,
    /// Figures per class, indexed by class.
    pub per_class: Vec<ClassAp>,
}

const T: usize = 10;
const R: usize = 101;
const MAX_DETS: [usize; 3] = [1, 10, 100];
const AREA_MAX: f64 = 1e10;

/// numpy.linspace(start, stop, n) with the endpoint, bit for bit.
fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    let step = (stop - start) / (n - 1) as f64;
    (0..n).map(|i| if i == n - 1 { stop } else { i as f64 * step + start }).collect()
}

/// maskUtils.iou for two [x, y, w, h] boxes; for a crowd ground truth the union is the detection's area.
fn iou(d: [f64; 4], g: [f64; 4], crowd: bool) -> f64 {
    let w = (d[2] + d[0]).min(g[2] + g[0]) - d[0].max(g[0]);
    let h = (d[3] + d[1]).min(g[3] + g[1]) - d[1].max(g[1]);
    if w <= 0.0 || h <= 0.0 {
        return 0.0;
    }
    let (i, da) = (w * h, d[2] * d[3]);
    i / if crowd { da } else { da + g[2] * g[3] - i }
}

/// numpy's pairwise summation of a contiguous float64 array, so that means agree to the last bit.
fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |s, x| s + x)
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let full = n - n % 8;
        for chunk in a[8..full].chunks_exact(8) {
            r.iter_mut().zip(chunk).for_each(|(r, x)| *r += x);
        }
        let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        a[full..].iter().fold(res, |s, x| s + x)
    } else {
        let n2 = n / 2 - (n / 2) % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// np.mean(s[s > -1]), None where nothing is left.
fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let kept: Vec<f64> = values.filter(|&v| v > -1.0).collect();
    (!kept.is_empty()).then(|| pairwise_sum(&kept) / kept.len() as f64)
}

/// One image and class after matching (evaluateImg): per kept detection its score, and per IoU
/// threshold whether it matched and whether it is ignored.
struct ImageEval {
    scores: Vec<f64>,
    matched: Vec<[bool; T]>,
    ignored: Vec<[bool; T]>,
    counted_gts: usize,
}

/// The ground truth and detections of one (class, image), in input order.
type Cell<'a> = (Vec<&'a GtBox>, Vec<&'a DetBox>);

fn evaluate_image(gts: &[&GtBox], dets: &[&DetBox], iou_thrs: &[f64]) -> ImageEval {
    let f64box = |b: [f32; 4]| b.map(f64::from);
    let out_of_range = |b: [f64; 4]| b[2] * b[3] < 0.0 || b[2] * b[3] > AREA_MAX;
    let mut gts: Vec<(bool, [f64; 4], bool)> =
        gts.iter().map(|g| (g.crowd || out_of_range(f64box(g.bbox)), f64box(g.bbox), g.crowd)).collect();
    gts.sort_by_key(|g| g.0);
    let mut dets: Vec<&DetBox> = dets.to_vec();
    dets.sort_by(|a, b| b.score.partial_cmp(&a.score).unwrap_or(std::cmp::Ordering::Equal));
    dets.truncate(MAX_DETS[2]);
    let ious: Vec<Vec<f64>> = dets.iter().map(|d| gts.iter().map(|g| iou(f64box(d.bbox), g.1, g.2)).collect()).collect();
    let (mut matched, mut ignored) = (vec![[false; T]; dets.len()], vec![[false; T]; dets.len()]);
    for (t, &thr) in iou_thrs.iter().enumerate() {
        let mut gt_taken = vec![false; gts.len()];
        for (di, row) in ious.iter().enumerate() {
            let (mut best, mut m) = (thr.min(1.0 - 1e-10), None::<usize>);
            for (gi, g) in gts.iter().enumerate() {
                if gt_taken[gi] && !g.2 {
                    continue;
                }
                if m.is_some_and(|m| !gts[m].0) && g.0 {
                    break;
                }
                if row[gi] >= best {
                    (best, m) = (row[gi], Some(gi));
                }
            }
            if let Some(gi) = m {
                (matched[di][t], ignored[di][t], gt_taken[gi]) = (true, gts[gi].0, true);
            }
        }
    }
    for (d, (m, ig)) in dets.iter().zip(matched.iter().zip(ignored.iter_mut())) {
        let out = out_of_range(f64box(d.bbox));
        (0..T).for_each(|t| ig[t] |= !m[t] && out);
    }
    let counted_gts = gts.iter().filter(|g| !g.0).count();
    ImageEval { scores: dets.iter().map(|d| f64::from(d.score)).collect(), matched, ignored, counted_gts }
}

/// Evaluates `dets` against `gts` for classes 0..classes.
pub fn evaluate(gts: &[GtBox], dets: &[DetBox], classes: usize) -> CocoSummary {
    let (iou_thrs, rec_thrs) = (linspace(0.5, 0.95, T), linspace(0.0, 1.0, R));
    let mut cells: BTreeMap<(usize, usize), Cell> = BTreeMap::new();
    gts.iter().filter(|g| g.class < classes).for_each(|g| cells.entry((g.class, g.image)).or_default().0.push(g));
    dets.iter().filter(|d| d.class < classes).for_each(|d| cells.entry((d.class, d.image)).or_default().1.push(d));
    // eval['precision'][t, r, k, 0, m] and eval['recall'][t, k, 0, m], -1 where not set.
    let mut precision = vec![-1.0; T * R * classes * 3];
    let mut recall = vec![-1.0; T * classes * 3];
    let mut per_class = Vec::with_capacity(classes);
    for k in 0..classes {
        let evals: Vec<ImageEval> = cells.range((k, 0)..=(k, usize::MAX)).map(|(_, (g, d))| evaluate_image(g, d, &iou_thrs)).collect();
        let npig = evals.iter().map(|e| e.counted_gts).sum::<usize>();
        let ndets = dets.iter().filter(|d| d.class == k).count();
        // No counted ground truth: pycocotools leaves the -1 entries.
        for (mi, &max_det) in MAX_DETS.iter().enumerate().filter(|_| npig > 0) {
            let mut all: Vec<(f64, &[bool; T], &[bool; T])> = Vec::new();
            for e in &evals {
                let n = e.scores.len().min(max_det);
                all.extend((0..n).map(|i| (e.scores[i], &e.matched[i], &e.ignored[i])));
            }
            all.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
            for t in 0..T {
                let (mut tp, mut fp) = (0.0f64, 0.0f64);
                let (mut rc, mut pr) = (Vec::with_capacity(all.len()), Vec::with_capacity(all.len()));
                for (_, m, ig) in &all {
                    tp += (m[t] && !ig[t]) as u8 as f64;
                    fp += (!m[t] && !ig[t]) as u8 as f64;
                    rc.push(tp / npig as f64);
                    pr.push(tp / (fp + tp + f64::EPSILON));
                }
                recall[(t * classes + k) * 3 + mi] = rc.last().copied().unwrap_or(0.0);
                for i in (1..pr.len()).rev() {
                    if pr[i] > pr[i - 1] {
                        pr[i - 1] = pr[i];
                    }
                }
                for (r, &thr) in rec_thrs.iter().enumerate() {
                    let i = rc.partition_point(|&x| x < thr);
                    precision[((t * R + r) * classes + k) * 3 + mi] = pr.get(i).copied().unwrap_or(0.0);
                }
            }
        }
        let p = |t: usize, r: usize| precision[((t * R + r) * classes + k) * 3 + 2];
        per_class.push(ClassAp {
            ap: mean((0..T).flat_map(|t| (0..R).map(move |r| (t, r))).map(|(t, r)| p(t, r))),
            ap50: mean((0..R).map(|r| p(0, r))),
            ap75: mean((0..R).map(|r| p(5, r))),
            ar100: mean((0..T).map(|t| recall[(t * classes + k) * 3 + 2])),
            gts: npig,
            dets: ndets,
        });
    }
    let precision = &precision;
    let ap_at = |ts: &[usize]| mean(ts.iter().flat_map(|&t| (0..R * classes).map(move |rk| precision[(t * R * classes + rk) * 3 + 2])));
    let ap_at = |ts: &[usize]| ap_at(ts).unwrap_or(-1.0); // stats[0..3]: t-major, then recall threshold, then class
    let ar = |mi: usize| mean((0..T * classes).map(|tk| recall[tk * 3 + mi])).unwrap_or(-1.0);
    let all_t: Vec<usize> = (0..T).collect();
    CocoSummary { ap: ap_at(&all_t), ap50: ap_at(&[0]), ap75: ap_at(&[5]), ar1: ar(0), ar10: ar(1), ar100: ar(2), per_class }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gt(image: usize, class: usize, bbox: [f32; 4], crowd: bool) -> GtBox {
        GtBox { image, class, bbox, crowd }
    }
    fn det(image: usize, class: usize, bbox: [f32; 4], score: f32) -> DetBox {
        DetBox { image, class, bbox, score }
    }

    #[test]
    fn thresholds_are_numpys() {
        let t = linspace(0.5, 0.95, T);
        assert_eq!((t[5], t[8], t[9]), (0.75, 0.8999999999999999, 0.95));
        assert_eq!(linspace(0.0, 1.0, R)[57], 0.5700000000000001);
    }

    #[test]
    fn perfect_detections_score_one() {
        let gts = [gt(0, 0, [10.0, 10.0, 20.0, 20.0], false), gt(1, 0, [0.0, 0.0, 5.0, 8.0], false)];
        let dets = [det(0, 0, [10.0, 10.0, 20.0, 20.0], 0.9), det(1, 0, [0.0, 0.0, 5.0, 8.0], 0.5)];
        let s = evaluate(&gts, &dets, 1);
        assert_eq!((s.ap, s.ap50, s.ap75, s.ar1, s.ar10, s.ar100), (1.0, 1.0, 1.0, 1.0, 1.0, 1.0));
        assert_eq!(s.per_class[0], ClassAp { ap: Some(1.0), ap50: Some(1.0), ap75: Some(1.0), ar100: Some(1.0), gts: 2, dets: 2 });
    }

    #[test]
    fn false_positive_above_true_positive() {
        // Ranked FP then TP: precision 1/2 at recall 1, so every recall threshold reads 0.5.
        let gts = [gt(0, 0, [0.0, 0.0, 10.0, 10.0], false)];
        let dets = [det(0, 0, [50.0, 50.0, 10.0, 10.0], 0.9), det(0, 0, [0.0, 0.0, 10.0, 10.0], 0.8)];
        let s = evaluate(&gts, &dets, 1);
        assert!((s.ap - 0.5).abs() < 1e-12 && (s.ap50 - 0.5).abs() < 1e-12);
        // One detection per image: only the FP is kept.
        assert_eq!((s.ar1, s.ar10, s.ar100), (0.0, 1.0, 1.0));
    }

    #[test]
    fn crowd_region_swallows_detections() {
        // Three detections inside the crowd box are ignored; the real box is found: AP 1.
        let gts = [gt(0, 0, [0.0, 0.0, 100.0, 100.0], true), gt(0, 0, [200.0, 200.0, 10.0, 10.0], false)];
        let mut dets: Vec<DetBox> = (0..3).map(|i| det(0, 0, [i as f32 * 10.0, 5.0, 10.0, 10.0], 0.9)).collect();
        dets.push(det(0, 0, [200.0, 200.0, 10.0, 10.0], 0.1));
        let s = evaluate(&gts, &dets, 1);
        // tp / (tp + fp + eps) with one tp is 1 - 2^-52, not 1, in pycocotools too.
        assert_eq!((s.ap, s.ar100, s.per_class[0].gts, s.per_class[0].dets), (1.0 / (1.0 + f64::EPSILON), 1.0, 1, 4));
        // Only crowd ground truth: the class counts as absent.
        let s = evaluate(&gts[..1], &dets, 1);
        assert_eq!((s.ap, s.per_class[0].ap), (-1.0, None));
    }

    #[test]
    fn class_without_ground_truth_is_none() {
        let gts = [gt(0, 0, [0.0, 0.0, 10.0, 10.0], false)];
        let dets = [det(0, 0, [0.0, 0.0, 10.0, 10.0], 0.7), det(3, 1, [0.0, 0.0, 10.0, 10.0], 0.9)];
        let s = evaluate(&gts, &dets, 2);
        assert_eq!(s.per_class[1], ClassAp { ap: None, ap50: None, ap75: None, ar100: None, gts: 0, dets: 1 });
        assert!((s.ap - 1.0).abs() < 1e-12);
        assert_eq!(evaluate(&[], &[], 3).ap, -1.0);
    }

    #[test]
    fn tied_scores_keep_input_order() {
        // Equal scores: the FP given first ranks first (stable sort), as in pycocotools.
        let gts = [gt(0, 0, [0.0, 0.0, 10.0, 10.0], false)];
        let fp_first = [det(0, 0, [50.0, 50.0, 10.0, 10.0], 0.5), det(0, 0, [0.0, 0.0, 10.0, 10.0], 0.5)];
        assert!((evaluate(&gts, &fp_first, 1).ap - 0.5).abs() < 1e-12);
        let tp_first = [fp_first[1].clone(), fp_first[0].clone()];
        assert!((evaluate(&gts, &tp_first, 1).ap - 1.0).abs() < 1e-12);
        // Across images too: image ids ascending decide the tie.
        let gts = [gt(0, 0, [0.0, 0.0, 10.0, 10.0], false), gt(1, 0, [0.0, 0.0, 10.0, 10.0], false)];
        let dets = [det(1, 0, [0.0, 0.0, 10.0, 10.0], 0.5), det(0, 0, [50.0, 50.0, 10.0, 10.0], 0.5)];
        // Image 0's FP first: precision 1/2 at recall 1/2, then 0 beyond.
        assert!((evaluate(&gts, &dets, 1).ap50 - 51.0 * 0.5 / 101.0).abs() < 1e-12);
    }
}
