//! Recordings of a camera rig as the multiview model sees them: at every
//! `every`-th instant where all the rig's cameras have a frame, each
//! camera's codec view and its codes, and for every other camera the source
//! camera's view reprojected into it by depth (the simulator's, or one a
//! depth estimator supplies: perception_node's on a real robot), with its
//! codes and the coverage of each position.
//!
//! A recording is an `s2r generate` dataset (`dataset.yaml`, its
//! `episodes/`) or one bag.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use s2r_bag::BagReader;
use s2r_image::stored;
use s2r_runtime::{stamp_ns, Serialized};
use s2r_train::FrameCodec;
use serde::{Deserialize, Serialize};
use sim2real_msgs::sim2real_msgs::msg::ScenarioInfo;
use sim2real_msgs::std_msgs::msg::Header;

use crate::reproject::{view_depth, warp};
use crate::rig::{Camera, Rig};
use crate::MultiviewError;

/// Which camera frames to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Frames {
    /// The simulator's renders (`/sim/<camera>/image_raw`).
    Flat,
    /// transfer_node's restyling (`/<camera>/image_raw`; a real robot's cameras).
    Restyled,
}

impl Frames {
    /// The raw image topic of `camera`'s frames of this kind.
    pub fn topic(self, camera: &str) -> String {
        match self {
            Frames::Flat => format!("/sim/{camera}/image_raw"),
            Frames::Restyled => format!("/{camera}/image_raw"),
        }
    }

    /// `flat`, `restyled` or `both` → the kinds.
    pub fn parse_list(s: &str) -> Result<Vec<Frames>, String> {
        match s {
            "flat" => Ok(vec![Frames::Flat]),
            "restyled" => Ok(vec![Frames::Restyled]),
            "both" => Ok(vec![Frames::Flat, Frames::Restyled]),
            other => Err(format!("'{other}': flat, restyled or both")),
        }
    }
}

/// An rgb8 frame (`width`×`height`, interleaved) and the horizontal focal
/// length of its camera (pixels) → z-depth per pixel (metres; not finite
/// where nothing is seen).
pub type DepthFn<'a> = &'a dyn Fn(&[u8], usize, usize, f64) -> Result<Vec<f32>, String>;

/// Where the source camera's depth comes from.
#[derive(Clone, Copy)]
pub enum Depth<'a> {
    /// The simulator's `/sim/<source>/depth` (a recording with the depth kept).
    Truth,
    /// Estimated from the frame; the name goes into the cache key.
    Estimated(&'a str, DepthFn<'a>),
    /// No reprojection: the model generates every position.
    None,
}

impl Depth<'_> {
    fn key(&self) -> String {
        match self {
            Depth::Truth => "truth".into(),
            Depth::Estimated(name, _) => format!("estimated:{name}"),
            Depth::None => "none".into(),
        }
    }
}

/// How to read recordings.
#[derive(Clone)]
pub struct ReadOptions<'a> {
    /// The camera the others are generated from.
    pub source: String,
    /// Which frames.
    pub frames: Frames,
    /// Use every this many complete instants.
    pub every: usize,
    /// The source camera's depth, for the reprojection.
    pub depth: Depth<'a>,
    /// Keep every view and reprojection as rgb8 ([`Instant::views`], [`Instant::warps`]), for scoring pixels.
    pub keep_views: bool,
    /// Where codes are cached between runs (None: encode every time).
    pub cache: Option<PathBuf>,
    /// What else the cached codes depend on, for the cache's key: the
    /// tokenizer's and the depth estimator's files as the driver knows them
    /// (their paths, sizes and times), so that a retrained one is not served
    /// another's codes.
    pub cache_tag: String,
}

/// The cache's format and the geometry it was made with: bumped when either
/// changes, so that old caches are not read.
const CACHE_VERSION: u32 = 2;

/// One rgb8 view per camera.
pub type Views = Vec<Vec<u8>>;

/// An instant's codes: per camera its own, the reprojection's (empty where none) and the reprojection's coverage per position.
#[derive(Clone, Debug, Default)]
pub struct Encoded {
    /// Per camera, its codes.
    pub codes: Vec<Vec<u16>>,
    /// Per camera, the reprojection's codes (empty where there is none).
    pub warped: Vec<Vec<u16>>,
    /// Per camera, the reprojection's coverage per position (empty where there is none).
    pub cover: Vec<Vec<f32>>,
}

/// One instant of the rig.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Instant {
    /// Its stamp, ns.
    pub stamp: i64,
    /// Per camera ([`Episode::cameras`] order), its codes.
    pub codes: Vec<Vec<u16>>,
    /// Per camera, the source's reprojection's codes (empty where it covers nothing, and for the source).
    pub warped: Vec<Vec<u16>>,
    /// Per camera, how much of each position the reprojection covers (empty as `warped`).
    pub cover: Vec<Vec<f32>>,
    /// Per camera, its codec view (rgb8), when asked for.
    #[serde(skip)]
    pub views: Vec<Vec<u8>>,
    /// Per camera, the reprojection's view (rgb8, holes black; empty for the source), when asked for.
    #[serde(skip)]
    pub warps: Vec<Vec<u8>>,
}

/// One recording of a rig.
#[derive(Clone, Debug)]
pub struct Episode {
    /// The bag.
    pub source: PathBuf,
    /// Its seed (`/scenario`; 0 without one).
    pub seed: u64,
    /// Which frames.
    pub frames: Frames,
    /// The rig as the recording calibrates it (full frames).
    pub rig: Rig,
    /// The cameras' codec views, the source first, then the rig's others in its order.
    pub cameras: Vec<Camera>,
    /// The instants.
    pub instants: Vec<Instant>,
}

fn data_error(path: &Path, problem: impl Into<String>) -> MultiviewError {
    MultiviewError::Data { path: path.into(), problem: problem.into() }
}

/// The bags of a recording path: a dataset's episodes, a demos folder's, or the bag itself.
pub fn bags(path: &Path) -> Result<Vec<PathBuf>, MultiviewError> {
    s2r_train::recordings::bags(path).map_err(|e| match e {
        s2r_train::TrainError::Io { path, source } => MultiviewError::Io { path, source },
        s2r_train::TrainError::Bad { path, problem } => data_error(&path, problem),
        other => data_error(path, other.to_string()),
    })
}

/// The rig's cameras as views of the codec's `size`, `source` first.
pub fn view_cameras(rig: &Rig, source: &str, size: usize) -> Result<Vec<Camera>, MultiviewError> {
    let src = rig.camera(source)?.view(size);
    Ok(std::iter::once(src).chain(rig.cameras.iter().filter(|c| c.name != source).map(|c| c.view(size))).collect())
}

#[derive(Serialize, Deserialize)]
struct Cached {
    instants: Vec<Instant>,
}

fn cache_file(dir: &Path, bag: &Path, codec: &str, opts: &ReadOptions) -> PathBuf {
    let mut h = DefaultHasher::new();
    s2r_train::recordings::fingerprint(bag, &mut h);
    (CACHE_VERSION, codec, &opts.source, opts.frames, opts.every, opts.depth.key(), &opts.cache_tag).hash(&mut h);
    dir.join(format!("{:016x}.json", h.finish()))
}

/// Below this share of a view, a reprojection is not worth a position's conditioning.
const MIN_COVER: f32 = 0.002;

/// Reprojects the source view into each other camera: per camera (the
/// source's entry empty) the warp, when it covers anything.
pub fn reprojections(cameras: &[Camera], source_view: &[u8], depth_view: Option<&[f32]>) -> Vec<Option<crate::reproject::Warp>> {
    let mut out = vec![None];
    for cam in &cameras[1..] {
        out.push(depth_view.map(|d| warp(&cameras[0], source_view, d, cam)).filter(|w| w.coverage() >= MIN_COVER));
    }
    out
}

/// Encodes an instant's views and reprojections: codes per camera, warped
/// codes and coverage per camera (empty where there is no reprojection).
pub fn encode_instant(codec: &dyn FrameCodec, views: &[Vec<u8>], warps: &[Option<crate::reproject::Warp>]) -> Result<Encoded, String> {
    let mut batch: Vec<Vec<u8>> = views.to_vec();
    batch.extend(warps.iter().flatten().map(|w| w.rgb.clone()));
    let mut codes = Vec::with_capacity(batch.len());
    for chunk in batch.chunks(16) {
        codes.extend(codec.encode(chunk)?);
    }
    let mut rest = codes.split_off(views.len()).into_iter();
    let mut warped = Vec::with_capacity(warps.len());
    let mut cover = Vec::with_capacity(warps.len());
    for w in warps {
        match w {
            Some(w) => {
                warped.push(rest.next().unwrap_or_default());
                cover.push(w.cell_coverage(codec.grid()));
            }
            None => {
                warped.push(Vec::new());
                cover.push(Vec::new());
            }
        }
    }
    Ok(Encoded { codes, warped, cover })
}

/// Reads one bag's `opts.frames` of its rig (calibrated by the bag itself)
/// into an episode, tokenizing with `codec`.
pub fn read(bag: &Path, codec: &dyn FrameCodec, opts: &ReadOptions) -> Result<Episode, MultiviewError> {
    read_episode(bag, codec, opts, true)
}

/// [`read`], tokenizing (`encode`) or with the views alone (no codes, nothing cached).
fn read_episode(bag: &Path, codec: &dyn FrameCodec, opts: &ReadOptions, encode: bool) -> Result<Episode, MultiviewError> {
    let rig = Rig::from_bag(bag)?;
    let cams = view_cameras(&rig, &opts.source, codec.size())?;
    let full: Vec<Camera> = cams.iter().map(|c| rig.camera(&c.name).cloned()).collect::<Result<_, _>>()?;
    let r = BagReader::open(bag).map_err(|e| data_error(bag, e.to_string()))?;
    let stored = stored::cameras(r.connections.iter().map(|c| (c.topic.as_str(), c.type_name.as_str())));
    let mut topics = Vec::new();
    for c in &cams {
        let want = opts.frames.topic(&c.name);
        let found = stored::find(&stored, std::slice::from_ref(&want))
            .ok_or_else(|| data_error(bag, format!("no frames of camera '{}' on {want}", c.name)))?;
        topics.push(found);
    }
    let depth_topic = format!("/sim/{}/depth", opts.source);
    if matches!(opts.depth, Depth::Truth) && !r.connections.iter().any(|c| c.topic == depth_topic) {
        return Err(data_error(bag, format!("no {depth_topic}: the true depth needs a recording that kept it (keep: [depth])")));
    }
    // Every camera's frames by stamp.
    let mut frames: HashMap<i64, Vec<Option<Serialized>>> = HashMap::new();
    let mut depths: HashMap<i64, Serialized> = HashMap::new();
    let mut info: Option<ScenarioInfo> = None;
    for m in r.messages() {
        let topic = r.connections[m.connection].topic.as_str();
        let data = || Serialized(m.data.clone());
        if let Some(k) = topics.iter().position(|t| t.topic == topic) {
            let data = data();
            // Images and compressed images begin with their header: its stamp alone, the pixels when used.
            let header: Header = data.decode().map_err(|e| data_error(bag, format!("{topic}: {e}")))?;
            frames.entry(stamp_ns(&header.stamp)).or_insert_with(|| vec![None; cams.len()])[k] = Some(data);
        } else if topic == depth_topic && matches!(opts.depth, Depth::Truth) {
            let data = data();
            let header: Header = data.decode().map_err(|e| data_error(bag, format!("{topic}: {e}")))?;
            depths.insert(stamp_ns(&header.stamp), data);
        } else if topic == "/scenario" && info.is_none() {
            info = Some(data().decode().map_err(|e| data_error(bag, format!("{topic}: {e}")))?);
        }
    }
    let mut stamps: Vec<i64> = frames.iter().filter(|(_, f)| f.iter().all(|x| x.is_some())).map(|(s, _)| *s).collect();
    stamps.sort();
    let stamps: Vec<i64> = stamps.into_iter().step_by(opts.every.max(1)).collect();
    if stamps.is_empty() {
        return Err(data_error(
            bag,
            format!("no instant where all of {} have a frame", cams.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")),
        ));
    }
    let cache = opts.cache.as_ref().map(|d| cache_file(d, bag, &codec.name(), opts));
    let cached: Option<Vec<Instant>> = cache
        .as_ref()
        .and_then(|f| std::fs::read(f).ok())
        .and_then(|b| serde_json::from_slice::<Cached>(&b).ok())
        .map(|c| c.instants)
        .filter(|c| c.len() == stamps.len() && c.iter().zip(&stamps).all(|(i, s)| i.stamp == *s));
    let need_pixels = cached.is_none() || opts.keep_views;
    let mut instants = Vec::with_capacity(stamps.len());
    for (i, &stamp) in stamps.iter().enumerate() {
        let mut inst = cached.as_ref().map(|c| c[i].clone()).unwrap_or_default();
        inst.stamp = stamp;
        if need_pixels {
            let mut views = Vec::with_capacity(cams.len());
            let mut source_frame: Option<(Vec<u8>, usize, usize)> = None;
            for (k, t) in topics.iter().enumerate() {
                let data = frames[&stamp][k].as_ref().expect("complete instant");
                let bad = |e: s2r_image::ImageError| data_error(bag, e.to_string());
                let img = t.decode(data).map_err(bad)?;
                let rgb = s2r_image::rgb8(&img, &t.topic).map_err(bad)?;
                let (w, h) = (img.width as usize, img.height as usize);
                if (w as u32, h as u32) != (full[k].width, full[k].height) {
                    return Err(data_error(
                        bag,
                        format!("{}: {w}×{h} frames but camera_info says {}×{}", t.topic, full[k].width, full[k].height),
                    ));
                }
                views.push(codec.view(&rgb, w, h));
                if k == 0 {
                    source_frame = Some((rgb, w, h));
                }
            }
            let (rgb, w, h) = source_frame.expect("the source camera");
            let depth = match opts.depth {
                Depth::None => None,
                Depth::Truth => {
                    let data = depths.get(&stamp).ok_or_else(|| data_error(bag, format!("{depth_topic}: no depth at stamp {stamp}")))?;
                    let img: sim2real_msgs::sensor_msgs::msg::Image = data.decode().map_err(|e| data_error(bag, e.to_string()))?;
                    let d = s2r_image::depth_m(&img, &depth_topic).map_err(|e| data_error(bag, e.to_string()))?;
                    Some(view_depth(&d, img.width as usize, img.height as usize, codec.size()))
                }
                Depth::Estimated(name, f) => {
                    let d = f(&rgb, w, h, full[0].k[0]).map_err(|p| data_error(bag, format!("depth from {name}: {p}")))?;
                    Some(view_depth(&d, w, h, codec.size()))
                }
            };
            let warps = reprojections(&cams, &views[0], depth.as_deref());
            if cached.is_none() && encode {
                let e = encode_instant(codec, &views, &warps).map_err(|problem| MultiviewError::Codec { path: bag.into(), problem })?;
                inst.codes = e.codes;
                inst.warped = e.warped;
                inst.cover = e.cover;
            }
            if opts.keep_views {
                inst.warps = warps.iter().map(|w| w.as_ref().map(|w| w.rgb.clone()).unwrap_or_else(|| vec![0; views[0].len()])).collect();
                inst.warps[0].clear();
                inst.views = views;
            }
        }
        instants.push(inst);
    }
    if let (Some(f), None, true) = (&cache, &cached, encode) {
        let stored: Vec<Instant> = instants.iter().map(|i| Instant { views: Vec::new(), warps: Vec::new(), ..i.clone() }).collect();
        if let Ok(bytes) = serde_json::to_vec(&Cached { instants: stored }) {
            if let Some(dir) = f.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            // A cache that cannot be written only costs time.
            let _ = std::fs::write(f, bytes);
        }
    }
    Ok(Episode { source: bag.into(), seed: info.map_or(0, |i| i.seed), frames: opts.frames, rig, cameras: cams, instants })
}

/// Per camera of the rig (`source` first, as [`read`] orders them), the
/// mean of its codec views over the `frames` of `bags` (every `every`-th
/// complete instant): the mean-image baseline.
pub fn mean_views(
    bags: &[PathBuf],
    source: &str,
    frames: &[Frames],
    every: usize,
    codec: &dyn FrameCodec,
) -> Result<(Vec<String>, Vec<Vec<u8>>), MultiviewError> {
    let mut sums: Vec<Vec<f64>> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut n = 0usize;
    for bag in bags {
        for &kind in frames {
            let opts = ReadOptions {
                source: source.into(),
                frames: kind,
                every,
                depth: Depth::None,
                keep_views: true,
                cache: None,
                cache_tag: String::new(),
            };
            let ep = read_views(bag, codec, &opts)?;
            if names.is_empty() {
                names = ep.0.clone();
                sums = vec![vec![0.0; codec.size() * codec.size() * 3]; names.len()];
            } else if names != ep.0 {
                return Err(data_error(bag, format!("cameras {} where the first recording had {}", ep.0.join(", "), names.join(", "))));
            }
            for views in &ep.1 {
                for (s, v) in sums.iter_mut().zip(views) {
                    s.iter_mut().zip(v).for_each(|(a, &b)| *a += b as f64);
                }
                n += 1;
            }
        }
    }
    let n = n.max(1) as f64;
    Ok((names, sums.into_iter().map(|s| s.into_iter().map(|v| (v / n).round() as u8).collect()).collect()))
}

/// The views alone (no depth, no codes) of a bag's instants.
fn read_views(bag: &Path, codec: &dyn FrameCodec, opts: &ReadOptions) -> Result<(Vec<String>, Vec<Views>), MultiviewError> {
    let ep = read_episode(bag, codec, opts, false)?;
    Ok((ep.cameras.iter().map(|c| c.name.clone()).collect(), ep.instants.into_iter().map(|i| i.views).collect()))
}
