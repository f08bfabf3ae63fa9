//! Scoring generated views against the true ones on held-out recordings,
//! per camera, beside the baselines: the camera's mean image over the
//! training set, the source reprojected by depth with its holes black, and
//! the tokenizer's own reconstruction of the true view (the ceiling of any
//! model of its codes); and the flicker of generated and true views over time.

use candle_core::Device;
use s2r_image::quality::{psnr, ssim, Rgb8};
use s2r_train::FrameCodec;
use serde::Serialize;

use crate::data::{Episode, Views};
use crate::fit::episode_rays;
use crate::generate::decode_inputs;
use crate::model::{Input, MultiviewNet};
use crate::rig::Camera;
use crate::MultiviewError;

/// PSNR (dB) and SSIM means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Quality {
    /// PSNR, dB.
    pub psnr: f64,
    /// SSIM.
    pub ssim: f64,
}

/// One camera's figures (or all cameras' means).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Row {
    /// The camera (`all`: the mean over cameras).
    pub camera: String,
    /// Frames scored.
    pub frames: usize,
    /// Mean share of the view the reprojection covers.
    pub coverage: f64,
    /// The model with the reprojection.
    pub model: Quality,
    /// The model without the reprojection (no depth).
    pub model_no_depth: Quality,
    /// The camera's mean training image.
    pub mean_image: Quality,
    /// The reprojection alone, holes black.
    pub reprojection: Quality,
    /// The tokenizer's reconstruction of the true view.
    pub ceiling: Quality,
    /// Positions whose most likely code is the true view's code.
    pub token_accuracy: f64,
    /// Mean absolute luma change between consecutive generated frames after motion compensation (8-bit levels).
    pub flicker_generated: f64,
    /// The same of the true views.
    pub flicker_true: f64,
}

/// Cross-view consistency: of the objects detected in one generated view
/// whose place (the box's centre at its estimated depth) lies in an
/// adjacent generated view, the share that view also detects as the same
/// class within 1.5 m (or 15 % of the range); beside the same on the true views.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct CrossView {
    /// The share among generated views.
    pub generated: f64,
    /// Detections it was measured on (generated).
    pub generated_candidates: usize,
    /// The share among true views.
    pub truth: f64,
    /// Detections it was measured on (true).
    pub truth_candidates: usize,
}

/// An object a detector found in a view.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detected {
    /// Its class.
    pub class: usize,
    /// Its box's centre, view pixels.
    pub centre: [f64; 2],
    /// Its z-depth, metres (e.g. the median of an estimated depth map inside the box).
    pub depth: f64,
}

/// A detector: a view (rgb8, `size`×`size`) and its horizontal focal length (pixels) → its objects.
pub type DetectFn<'a> = &'a dyn Fn(&[u8], usize, f64) -> Result<Vec<Detected>, String>;

/// What the evaluation compares against and how.
pub struct EvalOptions<'a> {
    /// The mean training view of each camera, in the episodes' camera order.
    pub means: &'a [Vec<u8>],
    /// The (episode, instant) drawn in the contact sheet.
    pub sheet_at: (usize, usize),
    /// The detector for cross-view consistency (None: not measured).
    pub detector: Option<DetectFn<'a>>,
}

/// The evaluation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Per camera (the rig's order, the source left out), then `all`.
    pub rows: Vec<Row>,
    /// Held-out recordings scored.
    pub episodes: usize,
    /// Instants scored.
    pub instants: usize,
    /// Cross-view consistency of detections in adjacent views (with a detector).
    pub cross_view: Option<CrossView>,
}

/// Pairs of target cameras (indices ≥ 1) whose optical axes are less than 60° apart: adjacent views that overlap.
pub fn adjacent(cameras: &[Camera]) -> Vec<(usize, usize)> {
    let axis = |c: &Camera| c.ray(c.k[2], c.k[3]);
    let mut out = Vec::new();
    for a in 1..cameras.len() {
        for b in a + 1..cameras.len() {
            if axis(&cameras[a]).angle(&axis(&cameras[b])) < 60f64.to_radians() {
                out.push((a, b));
            }
        }
    }
    out
}

/// Of `a`'s detections whose place lands in `b`'s view, how many `b` also detects (same class, within 1.5 m or 15 %
/// of the range): (agreeing, candidates).
pub fn agreement(ca: &Camera, da: &[Detected], cb: &Camera, db: &[Detected]) -> (usize, usize) {
    let place = |c: &Camera, d: &Detected| c.unproject(d.centre[0], d.centre[1], d.depth);
    let (mut agree, mut candidates) = (0, 0);
    for d in da {
        let p = place(ca, d);
        let Some((u, v, _)) = cb.project(&p) else { continue };
        if u < 0.0 || v < 0.0 || u >= cb.width as f64 || v >= cb.height as f64 {
            continue;
        }
        candidates += 1;
        let range = (p - nalgebra::Point3::from(nalgebra::Vector3::from(ca.translation))).norm();
        let tolerance = (0.15 * range).max(1.5);
        agree += db.iter().any(|e| e.class == d.class && (place(cb, e) - p).norm() <= tolerance) as usize;
    }
    (agree, candidates)
}

/// One instant's views for a contact sheet: per camera (the source first), its true view, and for the others
/// the generated view and the reprojection.
pub struct Sheet {
    /// Camera names.
    pub names: Vec<String>,
    /// True views.
    pub truth: Vec<Vec<u8>>,
    /// Generated views (the source's is its true view).
    pub generated: Vec<Vec<u8>>,
    /// Reprojections (the source's is its true view).
    pub reprojected: Vec<Vec<u8>>,
}

fn luma(rgb: &[u8]) -> Vec<f32> {
    rgb.chunks_exact(3).map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32).collect()
}

/// Mean absolute luma difference of two `size`×`size` frames after the best
/// whole-pixel shift of up to `reach` pixels (a global motion compensation),
/// over the pixels both cover.
pub fn flicker(a: &[u8], b: &[u8], size: usize, reach: i64) -> f64 {
    let (la, lb) = (luma(a), luma(b));
    let s = size as i64;
    let mut best = f64::INFINITY;
    for dy in -reach..=reach {
        for dx in -reach..=reach {
            let (mut sum, mut n) = (0f64, 0usize);
            for y in reach..s - reach {
                for x in reach..s - reach {
                    let (xa, ya) = (x + dx, y + dy);
                    sum += (la[(ya * s + xa) as usize] - lb[(y * s + x) as usize]).abs() as f64;
                    n += 1;
                }
            }
            best = best.min(sum / n.max(1) as f64);
        }
    }
    best
}

/// Scores `model` on `episodes` (read with their views kept), `means` the
/// mean training view of each camera in the episodes' camera order;
/// `sheet_at` picks the (episode, instant) for the contact sheet.
pub fn evaluate(
    model: &MultiviewNet,
    codec: &dyn FrameCodec,
    episodes: &[Episode],
    opts: &EvalOptions,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Report, Option<Sheet>), MultiviewError> {
    let (means, sheet_at) = (opts.means, opts.sheet_at);
    // Cross-view agreement: (agreeing, candidates) on generated and on true views.
    let mut cross = [(0usize, 0usize); 2];
    let size = codec.size();
    let q = |a: &[u8], b: &[u8]| {
        let (a, b) = (Rgb8 { width: size, height: size, data: a }, Rgb8 { width: size, height: size, data: b });
        Quality { psnr: psnr(&a, &b), ssim: ssim(&a, &b) }
    };
    let cams = episodes.first().map_or(0, |e| e.cameras.len());
    let names: Vec<String> = episodes.first().map(|e| e.cameras.iter().map(|c| c.name.clone()).collect()).unwrap_or_default();
    let mut sums = vec![Row::default(); cams];
    let mut flicker_pairs = vec![0usize; cams];
    let rays = episode_rays(&model.config, episodes);
    let total: usize = episodes.iter().map(|e| e.instants.len()).sum();
    let (mut done, mut sheet) = (0usize, None);
    let add = |into: &mut Quality, x: Quality| {
        into.psnr += x.psnr;
        into.ssim += x.ssim;
    };
    for (e, ep) in episodes.iter().enumerate() {
        if ep.cameras.iter().map(|c| &c.name).ne(names.iter()) {
            return Err(MultiviewError::Data {
                path: ep.source.clone(),
                problem: format!("another rig than the first recording's ({})", names.join(", ")),
            });
        }
        // The last instant's generated and true views.
        let mut previous: Option<[Views; 2]> = None;
        for (i, inst) in ep.instants.iter().enumerate() {
            if inst.views.len() != cams {
                return Err(MultiviewError::Data { path: ep.source.clone(), problem: "read without its views".into() });
            }
            let inputs = |with_depth: bool| -> Vec<Input> {
                (1..cams)
                    .map(|c| Input {
                        source: &inst.codes[0],
                        source_rays: &rays[e][0],
                        warped: (with_depth && !inst.warped[c].is_empty()).then(|| (inst.warped[c].as_slice(), inst.cover[c].as_slice())),
                        target_rays: &rays[e][c],
                    })
                    .collect()
            };
            let with = decode_inputs(model, codec, &inputs(true), device)?;
            let without = decode_inputs(model, codec, &inputs(false), device)?;
            let mut generated = vec![inst.views[0].clone()];
            for c in 1..cams {
                let truth = &inst.views[c];
                let row = &mut sums[c];
                row.frames += 1;
                add(&mut row.model, q(&with[c - 1].rgb, truth));
                add(&mut row.model_no_depth, q(&without[c - 1].rgb, truth));
                add(&mut row.mean_image, q(&means[c], truth));
                add(&mut row.reprojection, q(&inst.warps[c], truth));
                let ceiling = codec.decode(&inst.codes[c]).map_err(|problem| MultiviewError::Codec { path: ep.source.clone(), problem })?;
                add(&mut row.ceiling, q(&ceiling, truth));
                row.coverage += inst.cover[c].iter().map(|&v| v as f64).sum::<f64>() / inst.codes[c].len().max(1) as f64;
                row.token_accuracy +=
                    with[c - 1].codes.iter().zip(&inst.codes[c]).filter(|(a, b)| a == b).count() as f64 / inst.codes[c].len().max(1) as f64;
                generated.push(with[c - 1].rgb.clone());
            }
            if let Some([prev_gen, prev_true]) = &previous {
                for c in 1..cams {
                    sums[c].flicker_generated += flicker(&prev_gen[c], &generated[c], size, 4);
                    sums[c].flicker_true += flicker(&prev_true[c], &inst.views[c], size, 4);
                    flicker_pairs[c] += 1;
                }
            }
            if let Some(detect) = opts.detector {
                let cams = &ep.cameras;
                for (k, views) in [&generated, &inst.views].into_iter().enumerate() {
                    let found: Vec<Vec<Detected>> = (0..cams.len())
                        .map(|c| if c == 0 { Ok(Vec::new()) } else { detect(&views[c], size, cams[c].k[0]) })
                        .collect::<Result<_, _>>()
                        .map_err(|problem| MultiviewError::Data { path: ep.source.clone(), problem: format!("the detector: {problem}") })?;
                    for &(a, b) in &adjacent(cams) {
                        for (x, y) in [(a, b), (b, a)] {
                            let (agree, n) = agreement(&cams[x], &found[x], &cams[y], &found[y]);
                            cross[k].0 += agree;
                            cross[k].1 += n;
                        }
                    }
                }
            }
            if (e, i) == sheet_at {
                let mut reprojected = inst.warps.clone();
                reprojected[0] = inst.views[0].clone();
                sheet = Some(Sheet { names: names.clone(), truth: inst.views.clone(), generated: generated.clone(), reprojected });
            }
            previous = Some([generated, inst.views.clone()]);
            done += 1;
            progress(done, total);
        }
    }
    let mut rows = Vec::new();
    let mean = |x: Quality, n: f64| Quality { psnr: x.psnr / n, ssim: x.ssim / n };
    for (c, mut r) in sums.into_iter().enumerate().skip(1) {
        let n = r.frames.max(1) as f64;
        r.camera = names[c].clone();
        r.model = mean(r.model, n);
        r.model_no_depth = mean(r.model_no_depth, n);
        r.mean_image = mean(r.mean_image, n);
        r.reprojection = mean(r.reprojection, n);
        r.ceiling = mean(r.ceiling, n);
        r.coverage /= n;
        r.token_accuracy /= n;
        let f = flicker_pairs[c].max(1) as f64;
        r.flicker_generated /= f;
        r.flicker_true /= f;
        rows.push(r);
    }
    if !rows.is_empty() {
        let k = rows.len() as f64;
        let avg = |f: &dyn Fn(&Row) -> f64| rows.iter().map(f).sum::<f64>() / k;
        let avg_q = |f: &dyn Fn(&Row) -> Quality| Quality { psnr: avg(&|r| f(r).psnr), ssim: avg(&|r| f(r).ssim) };
        let all = Row {
            camera: "all".into(),
            frames: rows.iter().map(|r| r.frames).sum(),
            coverage: avg(&|r| r.coverage),
            model: avg_q(&|r| r.model),
            model_no_depth: avg_q(&|r| r.model_no_depth),
            mean_image: avg_q(&|r| r.mean_image),
            reprojection: avg_q(&|r| r.reprojection),
            ceiling: avg_q(&|r| r.ceiling),
            token_accuracy: avg(&|r| r.token_accuracy),
            flicker_generated: avg(&|r| r.flicker_generated),
            flicker_true: avg(&|r| r.flicker_true),
        };
        rows.push(all);
    }
    let cross_view = opts.detector.map(|_| CrossView {
        generated: cross[0].0 as f64 / cross[0].1.max(1) as f64,
        generated_candidates: cross[0].1,
        truth: cross[1].0 as f64 / cross[1].1.max(1) as f64,
        truth_candidates: cross[1].1,
    });
    Ok((Report { rows, episodes: episodes.len(), instants: total, cross_view }, sheet))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detections_agree_where_both_views_place_the_same_object() {
        use crate::rig::tests::level_camera;
        let a = level_camera("front_left", 64, 64, 90.0, [1.0, 0.5, 1.5], 45.0);
        let b = level_camera("left", 64, 64, 90.0, [0.0, 0.5, 1.5], 90.0);
        assert_eq!(adjacent(&[a.clone(), a.clone(), b.clone()]), vec![(1, 2)]);
        // An object 10 m out at 60° left: in both views.
        let p = nalgebra::Point3::new(1.0 + 10.0 * 60f64.to_radians().cos(), 0.5 + 10.0 * 60f64.to_radians().sin(), 1.5);
        let det = |c: &Camera, class: usize| {
            let (u, v, z) = c.project(&p).unwrap();
            Detected { class, centre: [u, v], depth: z }
        };
        assert_eq!(agreement(&a, &[det(&a, 2)], &b, &[det(&b, 2)]), (1, 1));
        assert_eq!(agreement(&a, &[det(&a, 2)], &b, &[det(&b, 3)]), (0, 1), "another class does not agree");
        assert_eq!(agreement(&a, &[det(&a, 2)], &b, &[]), (0, 1), "a miss does not agree");
        // An object straight ahead of the front-left camera's right edge region that the left camera cannot see.
        let q = nalgebra::Point3::new(11.0, -2.0, 1.5);
        let (u, v, z) = a.project(&q).unwrap();
        assert_eq!(agreement(&a, &[Detected { class: 2, centre: [u, v], depth: z }], &b, &[]), (0, 0), "not a candidate");
    }

    #[test]
    fn flicker_compensates_a_shift_and_sees_a_change() {
        let size = 32;
        let frame = |shift: usize, bright: u8| -> Vec<u8> {
            (0..size * size)
                .flat_map(|p| {
                    let x = p % size;
                    let v = if (x + shift) % 8 < 4 { bright } else { 0 };
                    [v, v, v]
                })
                .collect()
        };
        assert!(flicker(&frame(0, 200), &frame(2, 200), size, 4) < 1e-6, "a shift is motion, not flicker");
        assert!(flicker(&frame(0, 200), &frame(0, 100), size, 4) > 40.0, "a change of brightness is flicker");
    }
}
