//! Labelled frames from the simulator's recordings: a dataset of `s2r
//! generate` (its `splits.yaml` chooses the clips of a split), a curated
//! folder (`clips/*`) or single bags. A frame is a camera image (the
//! simulator's flat render `/sim/<cam>/image_raw` and/or the restyled
//! `/<cam>/image_raw`) with the simulator's labels of the same stamp:
//! `/sim/<cam>/{depth,segmentation,detections,camera_info}`, and the class
//! table of `/scenario`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use s2r_bag::BagReader;
use s2r_image::stored;
use s2r_runtime::{stamp_ns, Serialized};
use serde::Deserialize;
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image};
use sim2real_msgs::sim2real_msgs::msg::ScenarioInfo;
use sim2real_msgs::vision_msgs::msg::{Detection2DArray, LabelInfo};

use crate::PerceptionError;

/// Which renderings of a frame to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frames {
    /// The simulator's flat render only.
    Flat,
    /// The transfer stage's restyled frames only.
    Restyled,
    /// Both, as two samples sharing labels (a pseudo-labelled camera, which has no flat render: its own frames).
    Both,
}

impl Frames {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Frames::Flat => "flat",
            Frames::Restyled => "restyled",
            Frames::Both => "both",
        }
    }

    /// `flat`, `restyled` or `both`.
    pub fn parse(s: &str) -> Option<Frames> {
        match s {
            "flat" => Some(Frames::Flat),
            "restyled" => Some(Frames::Restyled),
            "both" => Some(Frames::Both),
            _ => None,
        }
    }
}

/// An object's box in source pixels with its class (an index into the
/// dataset's detection classes) and the fraction of it that is visible.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    /// Its class: an index into [`Dataset::seg_classes`] ([`Dataset::det_lut`] maps it to a detected class).
    pub class: usize,
    /// [x0, y0, x1, y1] in pixels.
    pub bbox: [f32; 4],
    /// Visible fraction (the simulator's detection score).
    pub visible: f32,
}

/// The labels of one frame, shared by its flat and restyled images.
#[derive(Debug)]
pub struct Labels {
    /// Width of the frame.
    pub w: usize,
    /// Height.
    pub h: usize,
    /// Horizontal focal length in pixels (camera_info's K[0]).
    pub fx: f32,
    /// Depth per pixel, log-encoded ([`encode_depth`]); 0 where there is nothing (the sky).
    pub depth: Vec<u16>,
    /// Segmentation class per pixel: an index into [`Dataset::seg_classes`].
    pub seg: Vec<u8>,
    /// The objects.
    pub objects: Vec<Object>,
}

/// One image of a frame and its labels.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Where it came from: `<bag>@<stamp ns>` and the rendering, for errors and sheets.
    pub source: String,
    /// Interleaved RGB, `labels.w`×`labels.h`.
    pub rgb: Arc<Vec<u8>>,
    /// Whether this is the restyled image (else the flat render).
    pub restyled: bool,
    /// The frame's labels.
    pub labels: Arc<Labels>,
}

/// Samples and the class tables their indices refer to.
#[derive(Debug, Default)]
pub struct Dataset {
    /// The samples.
    pub samples: Vec<Sample>,
    /// Segmentation classes (the union of the recordings' tables, in order of appearance).
    pub seg_classes: Vec<String>,
    /// Detected classes (those with boxes in the data, or the model's).
    pub det_classes: Vec<String>,
}

impl Dataset {
    /// For each segmentation class, its index among the detected classes (by name).
    pub fn det_lut(&self) -> Vec<Option<usize>> {
        self.seg_classes.iter().map(|c| self.det_classes.iter().position(|d| d == c)).collect()
    }
}

/// Smallest and largest depths the encoding keeps (metres).
const DEPTH_RANGE: (f32, f32) = (0.01, 2000.0);

/// Metres as a 16-bit log code (relative precision ≈ 2·10⁻⁴); 0 for none (∞, NaN, ≤ 0).
pub fn encode_depth(d: f32) -> u16 {
    if !d.is_finite() || d <= 0.0 {
        return 0;
    }
    let (lo, hi) = (DEPTH_RANGE.0.ln(), DEPTH_RANGE.1.ln());
    let t = ((d.clamp(DEPTH_RANGE.0, DEPTH_RANGE.1).ln() - lo) / (hi - lo)).clamp(0.0, 1.0);
    1 + (t * 65534.0).round() as u16
}

/// The metres of a code of [`encode_depth`]; NaN for 0.
pub fn decode_depth(c: u16) -> f32 {
    if c == 0 {
        return f32::NAN;
    }
    let (lo, hi) = (DEPTH_RANGE.0.ln(), DEPTH_RANGE.1.ln());
    (lo + (c - 1) as f32 / 65534.0 * (hi - lo)).exp()
}

/// Which part of a dataset with `splits.yaml` to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Training clips.
    Train,
    /// Validation clips.
    Val,
    /// Held-out test clips.
    Test,
    /// Every accepted clip.
    All,
}

impl Split {
    /// `train`, `val`, `test` or `all`.
    pub fn parse(s: &str) -> Option<Split> {
        match s {
            "train" => Some(Split::Train),
            "val" => Some(Split::Val),
            "test" => Some(Split::Test),
            "all" => Some(Split::All),
            _ => None,
        }
    }
}

/// The part of `splits.yaml` (written by `s2r generate` / `s2r dataset split`) read here.
#[derive(Deserialize)]
struct SplitsFile {
    train: SplitClips,
    val: SplitClips,
    test: SplitClips,
}

#[derive(Deserialize)]
struct SplitClips {
    clips: Vec<String>,
}

/// The bags under `paths` for `split`; a path that does not exist is refused by name.
pub fn bags_of(paths: &[PathBuf], split: Split) -> Result<Vec<PathBuf>, PerceptionError> {
    let mut v = Vec::new();
    for p in paths {
        if !p.exists() {
            return Err(PerceptionError::Input { path: p.clone(), problem: "no such file or folder".into() });
        }
        v.extend(bags_in(p, split)?);
    }
    Ok(v)
}

/// The bags under `path` for `split`: a dataset's clips of that split (all
/// of `clips/` without `splits.yaml`, or for [`Split::All`]), a folder of
/// bag folders, or one bag.
fn bags_in(path: &Path, split: Split) -> Result<Vec<PathBuf>, PerceptionError> {
    let clips = path.join("clips");
    let splits = path.join("splits.yaml");
    if clips.is_dir() && splits.is_file() && split != Split::All {
        let text = std::fs::read_to_string(&splits).map_err(|source| PerceptionError::Io { path: splits.clone(), source })?;
        let s: SplitsFile = serde_yaml_ng::from_str(&text)
            .map_err(|e| PerceptionError::Input { path: splits.clone(), problem: format!("not a splits file: {e}") })?;
        let part = match split {
            Split::Train => s.train,
            Split::Val => s.val,
            Split::Test => s.test,
            Split::All => unreachable!("handled above"),
        };
        return Ok(part.clips.iter().map(|c| clips.join(c)).collect());
    }
    let dir = if clips.is_dir() { clips } else { path.to_path_buf() };
    if dir.is_dir() && !dir.join("metadata.yaml").is_file() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|source| PerceptionError::Io { path: dir.clone(), source })?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "mcap"))
            .collect();
        v.sort();
        return Ok(v);
    }
    Ok(vec![path.to_path_buf()])
}

/// What to read.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Renderings.
    pub frames: Frames,
    /// Cameras by name; empty for every camera with labels.
    pub cameras: Vec<String>,
    /// Keep every n-th frame of a camera (consecutive frames are near copies).
    pub every: usize,
    /// The detection classes to keep, or `None` to take those in the data.
    pub det_classes: Option<Vec<String>>,
    /// The segmentation table to map onto, or `None` to build it from the data.
    pub seg_classes: Option<Vec<String>>,
}

impl LoadOptions {
    /// `frames` of every labelled camera, every frame, mapped onto the class
    /// tables of the network `cfg` (what evaluating a checkpoint reads).
    pub fn for_model(cfg: &crate::model::Config, frames: Frames) -> LoadOptions {
        LoadOptions {
            frames,
            cameras: Vec::new(),
            every: 1,
            det_classes: Some(cfg.det_classes.clone()),
            seg_classes: Some(cfg.seg_classes.clone()),
        }
    }
}

/// What a camera topic of a recording carries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Flat,
    Restyled,
    Depth,
    Seg,
    Dets,
    Info,
}

/// One frame's messages gathered by stamp.
#[derive(Default)]
struct Pending {
    flat: Option<Image>,
    restyled: Option<Image>,
    depth: Option<Image>,
    seg: Option<Image>,
    dets: Option<Detection2DArray>,
    info: Option<CameraInfo>,
}

/// Reads the labelled frames of `bags`.
pub fn load(bags: &[PathBuf], opts: &LoadOptions) -> Result<Dataset, PerceptionError> {
    let mut ds = Dataset {
        seg_classes: opts.seg_classes.clone().unwrap_or_default(),
        det_classes: opts.det_classes.clone().unwrap_or_default(),
        samples: Vec::new(),
    };
    let fixed_seg = opts.seg_classes.is_some();
    for bag in bags {
        load_bag(bag, opts, fixed_seg, &mut ds)?;
    }
    if opts.det_classes.is_none() {
        // The classes with boxes in the data, in the order of the segmentation table.
        let seen: std::collections::BTreeSet<usize> = ds.samples.iter().flat_map(|s| s.labels.objects.iter().map(|o| o.class)).collect();
        ds.det_classes = seen.into_iter().map(|i| ds.seg_classes[i].clone()).collect();
    }
    Ok(ds)
}

fn load_bag(bag: &Path, opts: &LoadOptions, fixed_seg: bool, ds: &mut Dataset) -> Result<(), PerceptionError> {
    let r = BagReader::open(bag).map_err(|source| PerceptionError::Bag { path: bag.to_path_buf(), source })?;
    let topics: Vec<(&str, &str)> = r.connections.iter().map(|c| (c.topic.as_str(), c.type_name.as_str())).collect();
    let stored_cams = stored::cameras(topics.iter().copied());
    // Cameras with labels: the simulator's (/sim/<cam>/segmentation), else
    // pseudo-labels of a camera's own frames (/perception/<cam>/segmentation, `s2r label`).
    let labelled = |prefix: &str| -> Vec<String> {
        topics
            .iter()
            .filter_map(|(t, _)| t.strip_prefix(prefix).and_then(|t| t.strip_suffix("/segmentation")).map(str::to_string))
            .collect()
    };
    let mut cams: Vec<(String, &str)> = labelled("/sim/").into_iter().map(|c| (c, "/sim")).collect();
    for c in labelled("/perception/") {
        if !cams.iter().any(|(s, _)| *s == c) {
            cams.push((c, "/perception"));
        }
    }
    cams.sort();
    cams.dedup();
    if !opts.cameras.is_empty() {
        cams.retain(|(c, _)| opts.cameras.contains(c));
    }
    if cams.is_empty() {
        return Err(PerceptionError::Input {
            path: bag.to_path_buf(),
            problem: "no labelled camera in it (no /sim/<camera>/segmentation topic, no /perception/<camera>/segmentation): \
                      perception trains on the simulator's recordings (`s2r generate` keeps them with `keep: [flat, restyled, \
                      depth, segmentation, boxes]`) or on a camera's frames pseudo-labelled by `s2r label`"
                .into(),
        });
    }
    // Pseudo-labelled cameras have no flat rendering: their frames are the camera's own; so
    // have cameras of a recording that kept no flat frames of them (a rig `s2r multiview
    // --labels` generated).
    let no_flat: Vec<bool> = cams
        .iter()
        .map(|(c, prefix)| *prefix == "/perception" || !stored_cams.iter().any(|s| s.raw == format!("/sim/{c}/image_raw")))
        .collect();
    // Local class id → dataset class id.
    let mut seg_map: Vec<u8> = (0..=255).collect();
    let mut have_table = false;
    let mut pending: BTreeMap<(usize, i64), Pending> = BTreeMap::new();
    // Every topic of a labelled camera: (camera index, what it carries).
    let mut kinds: HashMap<String, (usize, Kind)> = HashMap::new();
    let mut tables: HashMap<String, usize> = HashMap::new();
    for (i, (c, prefix)) in cams.iter().enumerate() {
        for (suffix, kind) in [("depth", Kind::Depth), ("segmentation", Kind::Seg), ("detections", Kind::Dets), ("camera_info", Kind::Info)]
        {
            kinds.insert(format!("{prefix}/{c}/{suffix}"), (i, kind));
        }
        if *prefix == "/perception" {
            tables.insert(format!("/perception/{c}/label_info"), i);
        }
        // The colour images raw, or compressed where only that is stored.
        for (raw, kind) in [(format!("/sim/{c}/image_raw"), Kind::Flat), (format!("/{c}/image_raw"), Kind::Restyled)] {
            if let Some(s) = stored_cams.iter().find(|s| s.raw == raw) {
                kinds.insert(s.topic.clone(), (i, kind));
            }
        }
    }
    let name = bag.file_name().and_then(|n| n.to_str()).unwrap_or("bag").to_string();
    let mut count = vec![0usize; cams.len()];
    for m in r.messages() {
        let topic = r.connections[m.connection].topic.as_str();
        let data = Serialized(m.data.clone());
        let msg_err = |e: String| PerceptionError::Input { path: bag.to_path_buf(), problem: format!("{topic}: {e}") };
        // The class table: the simulator's, or the labeller's (vision_msgs/LabelInfo).
        let table: Option<Vec<(usize, String)>> = if topic == "/scenario" {
            let info: ScenarioInfo = data.decode().map_err(|e| msg_err(e.to_string()))?;
            Some(info.class_names.into_iter().enumerate().collect())
        } else if tables.contains_key(topic) {
            let info: LabelInfo = data.decode().map_err(|e| msg_err(e.to_string()))?;
            Some(info.class_map.into_iter().map(|c| (c.class_id as usize, c.class_name)).collect())
        } else {
            None
        };
        if let Some(table) = table {
            for (local, class) in table.iter().filter(|(local, _)| *local < 256) {
                let local = *local;
                let id = match ds.seg_classes.iter().position(|c| c == class) {
                    Some(i) => i,
                    None if !fixed_seg && ds.seg_classes.len() < 255 => {
                        ds.seg_classes.push(class.clone());
                        ds.seg_classes.len() - 1
                    }
                    None => 255,
                };
                seg_map[local] = id as u8;
            }
            have_table = true;
            continue;
        }
        let Some(&(ci, kind)) = kinds.get(topic) else { continue };
        let decode_err = |e: s2r_runtime::raw::CdrError| msg_err(e.to_string());
        let image = || -> Result<Image, PerceptionError> {
            match stored_cams.iter().find(|s| s.topic == topic) {
                Some(c) => c.decode(&data).map_err(|source| PerceptionError::Frame { path: bag.to_path_buf(), source }),
                None => data.decode::<Image>().map_err(decode_err),
            }
        };
        // Each message goes to its frame, found by its stamp.
        let (stamp, p) = match kind {
            Kind::Dets => {
                let d: Detection2DArray = data.decode().map_err(decode_err)?;
                let stamp = stamp_ns(&d.header.stamp);
                let p = pending.entry((ci, stamp)).or_default();
                p.dets = Some(d);
                (stamp, p)
            }
            Kind::Info => {
                let i: CameraInfo = data.decode().map_err(decode_err)?;
                let stamp = stamp_ns(&i.header.stamp);
                let p = pending.entry((ci, stamp)).or_default();
                p.info = Some(i);
                (stamp, p)
            }
            _ => {
                let img = image()?;
                let stamp = stamp_ns(&img.header.stamp);
                let p = pending.entry((ci, stamp)).or_default();
                let slot = match kind {
                    Kind::Depth => &mut p.depth,
                    Kind::Seg => &mut p.seg,
                    Kind::Flat => &mut p.flat,
                    _ => &mut p.restyled,
                };
                *slot = Some(img);
                (stamp, p)
            }
        };
        let complete = p.depth.is_some()
            && p.seg.is_some()
            && p.dets.is_some()
            && p.info.is_some()
            && (opts.frames == Frames::Restyled || p.flat.is_some() || no_flat[ci])
            && (opts.frames == Frames::Flat || p.restyled.is_some());
        if complete {
            if !have_table {
                return Err(PerceptionError::Input {
                    path: bag.to_path_buf(),
                    problem: "no /scenario message (nor /perception/<camera>/label_info) before its frames: the class table of \
                              its segmentation is unknown"
                        .into(),
                });
            }
            let p = pending.remove(&(ci, stamp)).expect("just filled");
            count[ci] += 1;
            if (count[ci] - 1).is_multiple_of(opts.every.max(1)) {
                let source = format!("{name}@{stamp}");
                add_frame(p, &source, bag, &seg_map, ds, opts)?;
            }
        }
    }
    Ok(())
}

fn add_frame(p: Pending, source: &str, bag: &Path, seg_map: &[u8], ds: &mut Dataset, opts: &LoadOptions) -> Result<(), PerceptionError> {
    let frame_err = |source| PerceptionError::Frame { path: bag.to_path_buf(), source };
    let (depth, seg, dets, info) =
        (p.depth.expect("complete"), p.seg.expect("complete"), p.dets.expect("complete"), p.info.expect("complete"));
    let (w, h) = (seg.width as usize, seg.height as usize);
    let depth_m = s2r_image::depth_m(&depth, "depth").map_err(frame_err)?;
    let classes = s2r_image::classes(&seg, "segmentation").map_err(frame_err)?;
    if depth_m.len() != w * h || depth.width != seg.width || depth.height != seg.height {
        return Err(PerceptionError::Input {
            path: bag.to_path_buf(),
            problem: format!("{source}: depth {}×{} and segmentation {w}×{h} differ", depth.width, depth.height),
        });
    }
    let mut objects = Vec::new();
    for d in &dets.detections {
        let Some(hyp) = d.results.first() else { continue };
        let Some(class) = ds.seg_classes.iter().position(|c| *c == hyp.hypothesis.class_id) else { continue };
        let (cx, cy) = (d.bbox.center.position.x as f32, d.bbox.center.position.y as f32);
        let (sx, sy) = (d.bbox.size_x as f32, d.bbox.size_y as f32);
        objects.push(Object {
            class,
            bbox: [cx - sx / 2.0, cy - sy / 2.0, cx + sx / 2.0, cy + sy / 2.0],
            visible: hyp.hypothesis.score as f32,
        });
    }
    let labels = Arc::new(Labels {
        w,
        h,
        fx: info.k[0] as f32,
        depth: depth_m.iter().map(|&d| encode_depth(d)).collect(),
        seg: classes.iter().map(|&c| seg_map[c as usize]).collect(),
        objects,
    });
    for (img, restyled) in [(p.flat, false), (p.restyled, true)] {
        let Some(img) = img else { continue };
        if (restyled && opts.frames == Frames::Flat) || (!restyled && opts.frames == Frames::Restyled) {
            continue;
        }
        if img.width as usize != w || img.height as usize != h {
            return Err(PerceptionError::Input {
                path: bag.to_path_buf(),
                problem: format!("{source}: image {}×{} and labels {w}×{h} differ", img.width, img.height),
            });
        }
        let rgb = s2r_image::rgb8(&img, "image").map_err(frame_err)?;
        let tag = if restyled { "restyled" } else { "flat" };
        ds.samples.push(Sample { source: format!("{source} ({tag})"), rgb: Arc::new(rgb), restyled, labels: labels.clone() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_codes_keep_four_digits() {
        for d in [0.05f32, 0.5, 1.0, 7.3, 42.0, 180.0] {
            let back = decode_depth(encode_depth(d));
            assert!((back - d).abs() / d < 3e-4, "{d} -> {back}");
        }
        assert_eq!(encode_depth(f32::INFINITY), 0);
        assert!(decode_depth(0).is_nan());
    }
}
