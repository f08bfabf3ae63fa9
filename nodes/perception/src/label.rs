//! Pseudo-labels (`s2r label`): a camera's own frames, from a robot's
//! recording with no ground truth, labelled by a perception model, written
//! as a dataset `s2r train perception` trains on: the first step of the
//! virtuous cycle (the robot's data → labels → a better model).
//!
//! Only what the model is sure of is kept. A frame whose confidence
//! ([`Prediction::confidence`]) is below the floor is left out whole;
//! segmentation pixels whose class probability is below the pixel floor are
//! written as 255 (ignored by the loss), and so is their depth (unknown),
//! with the sky's; boxes at or above the score floor are taught, boxes
//! between the lower floor and it are written as not taught (their visible
//! fraction 0: neither objects nor background, as the loss and evaluation
//! treat any untaught object), weaker ones are dropped. A frame that cannot be read is skipped and counted.
//! Clips are split where the camera's stamps have a gap (or go back), one
//! bag each: `OUT/clips/<bag>_<k>/`, with the camera's frames on
//! `/<camera>/image_raw` and the labels on `/perception/<camera>/…`
//! (segmentation, depth, detections, camera_info, and the class table on
//! `label_info`, a `vision_msgs/LabelInfo`), and a report, `OUT/labels.yaml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use s2r_bag::{BagReader, BagWriter, TopicId, TopicSpec, WriterOptions};
use s2r_image::stored::{self, StoredCamera};
use s2r_runtime::{stamp_ns, Serialized};
use serde::Serialize;
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image};
use sim2real_msgs::std_msgs::msg::Header;
use sim2real_msgs::vision_msgs::msg::{Detection2DArray, LabelInfo, VisionClass};

use crate::predict::{FrameRef, Predictor};
use crate::PerceptionError;

/// How sure the labels must be, and where clips split.
#[derive(Clone, Debug, Serialize)]
pub struct LabelOptions {
    /// The camera's image topic (raw, or `<raw>/compressed`); `None`: the
    /// recording's one camera outside `/sim/`.
    pub topic: Option<String>,
    /// The camera's name in the dataset; `None`: from the topic (`/front/image_raw` → `front`).
    pub camera: Option<String>,
    /// Frames less sure than this ([`crate::predict::Prediction::confidence`]) are left out.
    pub min_confidence: f32,
    /// Boxes at least this sure are taught.
    pub min_score: f32,
    /// Boxes between this and `min_score` are written as not taught; weaker ones are dropped.
    pub uncertain_score: f32,
    /// Segmentation pixels less sure than this are ignored (255), their depth unknown.
    pub min_pixel: f32,
    /// A gap longer than this between two frames (seconds) starts a new clip.
    pub max_gap: f64,
    /// Label every n-th frame.
    pub every: usize,
}

impl Default for LabelOptions {
    fn default() -> Self {
        LabelOptions {
            topic: None,
            camera: None,
            min_confidence: 0.5,
            min_score: 0.5,
            uncertain_score: 0.25,
            min_pixel: 0.6,
            max_gap: 0.5,
            every: 1,
        }
    }
}

/// What labelling did, written to `labels.yaml`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LabelReport {
    /// The perception checkpoint that labelled.
    pub model: String,
    /// Whether each frame's prediction was averaged with its mirror image's
    /// ([`crate::predict::Predictor::mirror`]).
    pub mirrored: bool,
    /// The floors.
    pub options: Option<LabelOptions>,
    /// Per recording.
    pub bags: Vec<BagReport>,
}

/// One recording's labelling.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BagReport {
    /// The recording.
    pub path: PathBuf,
    /// The camera topic read.
    pub topic: String,
    /// The camera's name in the dataset (its topics `/<camera>/image_raw`, `/perception/<camera>/…`).
    pub camera: String,
    /// Frames read (every n-th).
    pub frames: usize,
    /// Frames written with their labels.
    pub kept: usize,
    /// Frames left out: the model was not sure enough of them.
    pub low_confidence: usize,
    /// Frames that could not be read (skipped), and the first one's error.
    pub unreadable: usize,
    /// The first unreadable frame's error.
    pub unreadable_error: Option<String>,
    /// The clips written, each a bag under `clips/`.
    pub clips: Vec<ClipReport>,
    /// Where the stamps broke: (the stamp before, ns; seconds to the next frame, negative when they went back).
    pub gaps: Vec<(i64, f64)>,
    /// Taught boxes per class.
    pub boxes: BTreeMap<String, usize>,
    /// Boxes written as not taught.
    pub uncertain_boxes: usize,
    /// The share of the kept frames' pixels whose segmentation is ignored.
    pub ignored_pixels: f64,
}

/// One clip.
#[derive(Clone, Debug, Serialize)]
pub struct ClipReport {
    /// Its folder's name under `clips/`.
    pub name: String,
    /// Frames in it.
    pub frames: usize,
    /// Its first and last stamps, ns.
    pub stamps: (i64, i64),
}

/// The camera topics a robot's recording may have (not the simulator's, not
/// labels or depth), by raw name.
fn camera_candidates(cams: &[StoredCamera]) -> Vec<&StoredCamera> {
    cams.iter()
        .filter(|c| {
            let t = c.raw.as_str();
            !t.starts_with("/sim/")
                && !t.starts_with("/perception/")
                && !["depth", "segmentation", "instances", "overlay", "predicted"].iter().any(|w| t.contains(w))
        })
        .collect()
}

/// The dataset's name of a camera topic: `/front/image_raw` → `front`,
/// `/camera/color/image_raw` → `camera/color`, `/sim/front/image_raw` → `front`.
pub fn camera_name(raw: &str) -> String {
    let t = raw.trim_start_matches('/');
    let t = t.strip_prefix("sim/").unwrap_or(t);
    let t = match t.rsplit_once('/') {
        Some((dir, last)) if last.starts_with("image") => dir,
        None if t.starts_with("image") => "",
        _ => t,
    };
    if t.is_empty() {
        "camera".into()
    } else {
        t.to_string()
    }
}

/// A clip's bag being written.
struct ClipWriter {
    name: String,
    writer: BagWriter,
    topics: [TopicId; 5],
    frames: usize,
    stamps: (i64, i64),
}

impl ClipWriter {
    fn create(dir: &Path, name: String, camera: &str, table: &LabelInfo, stamp: i64) -> Result<ClipWriter, PerceptionError> {
        let bag_err = |source| PerceptionError::Bag { path: dir.to_path_buf(), source };
        let mut writer = BagWriter::create(dir, WriterOptions::default()).map_err(bag_err)?;
        let p = format!("/perception/{camera}");
        let info = writer.add_topic(TopicSpec::of::<LabelInfo>(&format!("{p}/label_info"), vec![])).map_err(bag_err)?;
        let topics = [
            writer.add_topic(TopicSpec::of::<Image>(&format!("/{camera}/image_raw"), vec![])).map_err(bag_err)?,
            writer.add_topic(TopicSpec::of::<Image>(&format!("{p}/segmentation"), vec![])).map_err(bag_err)?,
            writer.add_topic(TopicSpec::of::<Image>(&format!("{p}/depth"), vec![])).map_err(bag_err)?,
            writer.add_topic(TopicSpec::of::<Detection2DArray>(&format!("{p}/detections"), vec![])).map_err(bag_err)?,
            writer.add_topic(TopicSpec::of::<CameraInfo>(&format!("{p}/camera_info"), vec![])).map_err(bag_err)?,
        ];
        // The class table first: the loader needs it before the frames.
        writer.write_message(info, stamp.max(0) as u64, table).map_err(bag_err)?;
        Ok(ClipWriter { name, writer, topics, frames: 0, stamps: (stamp, stamp) })
    }
}

/// Labels `bags` with `predictor` into the dataset folder `out` (which must
/// not exist yet); `progress` hears of each bag and clip.
pub fn label(
    bags: &[PathBuf],
    predictor: &Predictor,
    model: &str,
    opts: &LabelOptions,
    out: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<LabelReport, PerceptionError> {
    if out.exists() {
        return Err(PerceptionError::Input { path: out.into(), problem: "already exists: labels go to a new folder".into() });
    }
    if !(0.0..=1.0).contains(&opts.min_confidence) || opts.uncertain_score > opts.min_score || !(0.0..=1.0).contains(&opts.min_pixel) {
        return Err(PerceptionError::Data(format!(
            "floors must lie in 0..1 with the uncertain score below the box score; got confidence {}, box {} / {}, pixel {}",
            opts.min_confidence, opts.min_score, opts.uncertain_score, opts.min_pixel
        )));
    }
    let cfg = &predictor.net.cfg;
    let table = LabelInfo {
        header: Header::default(),
        class_map: cfg.seg_classes.iter().enumerate().map(|(i, c)| VisionClass { class_id: i as u16, class_name: c.clone() }).collect(),
        threshold: opts.min_score,
    };
    let sky = cfg.seg_classes.iter().position(|c| c == "sky");
    let mut report = LabelReport { model: model.into(), mirrored: predictor.mirror, options: Some(opts.clone()), bags: Vec::new() };
    std::fs::create_dir_all(out.join("clips")).map_err(|source| PerceptionError::Io { path: out.join("clips"), source })?;
    let mut stems: Vec<String> = Vec::new();
    for (i, bag) in bags.iter().enumerate() {
        // Clip names from the recording's name; two recordings of one name get their index too.
        let mut stem = bag.file_stem().and_then(|s| s.to_str()).unwrap_or("bag").replace(['/', ' '], "_");
        if stems.contains(&stem) {
            stem = format!("{stem}_{i}");
        }
        stems.push(stem.clone());
        let r = label_bag((bag, &stem), predictor, opts, &table, sky, out, progress)?;
        report.bags.push(r);
        // Written after each bag: an interrupted run keeps the report of what is on disk.
        write_report(out, &report)?;
    }
    Ok(report)
}

fn write_report(out: &Path, report: &LabelReport) -> Result<(), PerceptionError> {
    let path = out.join("labels.yaml");
    let text = serde_yaml_ng::to_string(report).map_err(|e| PerceptionError::Data(format!("writing {}: {e}", path.display())))?;
    std::fs::write(&path, text).map_err(|source| PerceptionError::Io { path, source })
}

/// One recording, its clips named `<stem>_<k>`.
fn label_bag(
    (bag, stem): (&Path, &str),
    predictor: &Predictor,
    opts: &LabelOptions,
    table: &LabelInfo,
    sky: Option<usize>,
    out: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<BagReport, PerceptionError> {
    let input = |problem: String| PerceptionError::Input { path: bag.to_path_buf(), problem };
    let r = BagReader::open(bag).map_err(|source| PerceptionError::Bag { path: bag.to_path_buf(), source })?;
    let topics: Vec<(&str, &str)> = r.connections.iter().map(|c| (c.topic.as_str(), c.type_name.as_str())).collect();
    let cams = stored::cameras(topics.iter().copied());
    let names = || cams.iter().map(|c| c.topic.as_str()).collect::<Vec<_>>().join(", ");
    let cam = match &opts.topic {
        Some(t) => cams.iter().find(|c| c.raw == *t || c.topic == *t).ok_or_else(|| {
            input(format!("no image topic {t} in it (its image topics: {})", if cams.is_empty() { "none".into() } else { names() }))
        })?,
        None => match camera_candidates(&cams).as_slice() {
            [one] => *one,
            [] => {
                return Err(input(format!(
                "no camera topic in it (sensor_msgs/Image or CompressedImage outside /sim/; its image topics: {}); name one with --topic",
                if cams.is_empty() { "none".into() } else { names() }
            )))
            }
            many => {
                let list: Vec<&str> = many.iter().map(|c| c.topic.as_str()).collect();
                return Err(input(format!("several cameras in it ({}); choose one with --topic", list.join(", "))));
            }
        },
    };
    let camera = opts.camera.clone().unwrap_or_else(|| camera_name(&cam.raw));
    let info_topic = cam.raw.rsplit_once('/').map(|(dir, _)| format!("{dir}/camera_info")).unwrap_or_default();
    progress(&format!("{}: labelling {} as camera '{camera}'", bag.display(), cam.topic));

    let mut rep = BagReport { path: bag.to_path_buf(), topic: cam.topic.clone(), camera: camera.clone(), ..Default::default() };
    let mut clip: Option<ClipWriter> = None;
    let mut last: Option<i64> = None;
    let mut fx: Option<f32> = None;
    let mut count = 0usize;
    let (mut ignored, mut pixels) = (0usize, 0usize);
    let finish = |c: ClipWriter, rep: &mut BagReport, progress: &mut dyn FnMut(&str)| -> Result<(), PerceptionError> {
        let dir = out.join("clips").join(&c.name);
        c.writer.finish().map_err(|source| PerceptionError::Bag { path: dir, source })?;
        progress(&format!("  clip {}: {} frames", c.name, c.frames));
        rep.clips.push(ClipReport { name: c.name, frames: c.frames, stamps: c.stamps });
        Ok(())
    };
    // The frames; on an error the clip being written is finished first (what is on disk stays readable).
    let mut each = || -> Result<(), PerceptionError> {
        for m in r.messages() {
            let topic = r.connections[m.connection].topic.as_str();
            let data = Serialized(m.data.clone());
            if topic == info_topic {
                if let Ok(i) = data.decode::<CameraInfo>() {
                    fx = (i.k[0] > 0.0).then_some(i.k[0] as f32);
                }
                continue;
            }
            if topic != cam.topic {
                continue;
            }
            let img = match cam.decode(&data) {
                Ok(img) => img,
                Err(e) => {
                    rep.unreadable += 1;
                    rep.unreadable_error.get_or_insert(e.to_string());
                    continue;
                }
            };
            let stamp = stamp_ns(&img.header.stamp);
            // A gap (or stamps going back) ends the clip.
            if let Some(prev) = last {
                let dt = (stamp - prev) as f64 * 1e-9;
                if dt > opts.max_gap || dt <= 0.0 {
                    rep.gaps.push((prev, dt));
                    if let Some(c) = clip.take() {
                        finish(c, &mut rep, progress)?;
                    }
                }
            }
            last = Some(stamp);
            count += 1;
            if !(count - 1).is_multiple_of(opts.every.max(1)) {
                continue;
            }
            let rgb = match s2r_image::rgb8(&img, &cam.topic) {
                Ok(rgb) => rgb,
                Err(e) => {
                    rep.unreadable += 1;
                    rep.unreadable_error.get_or_insert(e.to_string());
                    continue;
                }
            };
            rep.frames += 1;
            let (w, h) = (img.width as usize, img.height as usize);
            let p = predictor.predict_with_probabilities(&[FrameRef { rgb: &rgb, w, h, fx }])?.remove(0);
            if p.confidence < opts.min_confidence {
                rep.low_confidence += 1;
                continue;
            }
            // The labels the model is sure of.
            let seg: Vec<u8> = p.seg.iter().zip(&p.seg_prob).map(|(&c, &q)| if q >= opts.min_pixel { c } else { 255 }).collect();
            ignored += seg.iter().filter(|&&c| c == 255).count();
            pixels += seg.len();
            let depth: Vec<f32> =
                p.depth.iter().zip(&seg).map(|(&d, &c)| if c == 255 || Some(c as usize) == sky { f32::NAN } else { d }).collect();
            let dets = crate::predict::Prediction {
                detections: p.detections.iter().filter(|d| d.score >= opts.uncertain_score).cloned().collect(),
                ..Default::default()
            };
            let header = img.header.clone();
            let mut boxes = crate::node::detections_msg(&header, &dets, &predictor.net.cfg.det_classes);
            for d in &mut boxes.detections {
                let hyp = &mut d.results[0].hypothesis;
                if hyp.score >= f64::from(opts.min_score) {
                    *rep.boxes.entry(hyp.class_id.clone()).or_default() += 1;
                    hyp.score = 1.0;
                } else {
                    rep.uncertain_boxes += 1;
                    hyp.score = 0.0;
                }
            }
            let f = fx.unwrap_or_else(|| predictor.net.cfg.frame_focal(w, h)) as f64;
            let info = CameraInfo {
                header: header.clone(),
                width: w as u32,
                height: h as u32,
                k: [f, 0.0, w as f64 / 2.0, 0.0, f, h as f64 / 2.0, 0.0, 0.0, 1.0],
                ..Default::default()
            };
            let c = match &mut clip {
                Some(c) => c,
                None => {
                    let name = format!("{stem}_{:03}", rep.clips.len());
                    clip.insert(ClipWriter::create(&out.join("clips").join(&name), name, &camera, table, stamp)?)
                }
            };
            let t = stamp.max(0) as u64;
            let dir = out.join("clips").join(&c.name);
            let bag_err = |source| PerceptionError::Bag { path: dir.clone(), source };
            let depth_bytes: Vec<u8> = depth.iter().flat_map(|d| d.to_le_bytes()).collect();
            // The intrinsics first: a reader of the clip has them before the frame.
            c.writer.write_message(c.topics[4], t, &info).map_err(bag_err)?;
            c.writer.write_message(c.topics[0], t, &img).map_err(bag_err)?;
            c.writer.write_message(c.topics[1], t, &s2r_image::image_msg(header.clone(), w, h, "mono8", 1, seg)).map_err(bag_err)?;
            c.writer
                .write_message(c.topics[2], t, &s2r_image::image_msg(header.clone(), w, h, "32FC1", 4, depth_bytes))
                .map_err(bag_err)?;
            c.writer.write_message(c.topics[3], t, &boxes).map_err(bag_err)?;
            c.frames += 1;
            c.stamps.1 = stamp;
            rep.kept += 1;
        }
        Ok(())
    };
    let result = each();
    let finished = match clip.take() {
        Some(c) => finish(c, &mut rep, progress),
        None => Ok(()),
    };
    result?;
    finished?;
    if count == 0 && rep.unreadable == 0 {
        return Err(input(format!("no frames on {}", cam.topic)));
    }
    if rep.frames == 0 {
        let e = rep.unreadable_error.clone().unwrap_or_default();
        return Err(input(format!("none of the {} frames of {} could be read: {e}", rep.unreadable, cam.topic)));
    }
    rep.ignored_pixels = if pixels == 0 { 0.0 } else { ignored as f64 / pixels as f64 };
    progress(&format!(
        "{}: {} of {} frames kept ({} below the confidence floor), {} clips, {} gaps",
        bag.display(),
        rep.kept,
        rep.frames,
        rep.low_confidence,
        rep.clips.len(),
        rep.gaps.len()
    ));
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::camera_name;

    #[test]
    fn cameras_are_named_from_their_topics() {
        assert_eq!(camera_name("/front/image_raw"), "front");
        assert_eq!(camera_name("/camera/color/image_raw"), "camera/color");
        assert_eq!(camera_name("/sim/front/image_raw"), "front");
        assert_eq!(camera_name("/image_raw"), "camera");
        assert_eq!(camera_name("/robot1/cam"), "robot1/cam");
    }
}
