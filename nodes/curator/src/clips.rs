//! The streaming curator: frames in (one camera), clips out with their
//! quality verdicts as they close; at the end, deduplication and balance give
//! the final verdicts. Memory stays bounded: a frame is kept as its
//! measurements and hash; only the open clip holds a thumbnail.

use std::collections::{BTreeMap, HashMap};

use crate::balance::{self, Achieved, BalanceError};
use crate::dedup;
use crate::embed::{self, Embedder};
use crate::metrics::{measure, FrameMetrics, Luma};
use crate::params::Params;
use crate::phash;
use s2r_image::Rgb;

/// Why a frame or a clip was rejected. The first eight judge a frame (the
/// image of a rejected frame is left out of its clip's bag), the rest a whole
/// clip; the thresholds are the `Params` fields named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Frame: variance of the Laplacian below `blur_min`.
    Blur,
    /// Frame: more than `clipped_max` of its pixels very dark or very bright.
    Exposure,
    /// Frame: luma standard deviation below `contrast_min` (black, or one
    /// colour); blur and exposure are then not judged.
    BrokenConstant,
    /// Frame: byte-identical to the previous one.
    Frozen,
    /// Frame: its top rows still the previous frame's, the rest new, with a seam across.
    Torn,
    /// Frame: its pHash within `near_duplicate_bits` of a frame seen a second
    /// or more earlier anywhere in the stream, and the two alike on pixels too.
    NearDuplicate,
    /// Frame: the transfer node flagged it, or its boundary recall is below `transfer_min`.
    LabelConsistency,
    /// Frame: a box under a pixel wide or high, or out of the image by more than half a pixel.
    BadBoxes,
    /// Clip: mean motion below `motion_min` grey levels per frame.
    Static,
    /// Clip: fewer distinct classes in its good frames than `min_classes`.
    ClassCoverage,
    /// Clip: fewer good frames than `min_clip_frames`.
    TooShort,
    /// Clip: more than `max_bad_fraction` of its frames rejected; followed by
    /// the frames' most common reason.
    TooManyBadFrames,
    /// Clip, at the end: within `dedup_eps` of a better clip kept (`Clip::duplicate_of`).
    SemanticDuplicate,
    /// Clip, at the end: left out to meet the balance targets.
    Balance,
}

impl Reason {
    /// The snake_case code (`near_duplicate`) that manifests, verdict messages and the report use.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Blur => "blur",
            Reason::Exposure => "exposure",
            Reason::BrokenConstant => "broken_constant",
            Reason::Frozen => "frozen",
            Reason::Torn => "torn",
            Reason::NearDuplicate => "near_duplicate",
            Reason::LabelConsistency => "label_consistency",
            Reason::BadBoxes => "bad_boxes",
            Reason::Static => "static",
            Reason::ClassCoverage => "class_coverage",
            Reason::TooShort => "too_short",
            Reason::TooManyBadFrames => "too_many_bad_frames",
            Reason::SemanticDuplicate => "semantic_duplicate",
            Reason::Balance => "balance",
        }
    }
}

/// A 2-D label of the frame: class and box corners in pixels, from the
/// image's top-left corner.
#[derive(Clone, Debug, PartialEq)]
pub struct BoxLabel {
    /// The class id (empty when the detection has no hypothesis).
    pub class: String,
    /// Left edge.
    pub x0: f32,
    /// Top edge.
    pub y0: f32,
    /// Right edge.
    pub x1: f32,
    /// Bottom edge.
    pub y1: f32,
}

/// One frame of the curated camera.
#[derive(Clone, Debug)]
pub struct FrameIn {
    /// Header stamp in nanoseconds. Frames come in stamp order; a gap of a
    /// second or more (or a stamp going back) starts a new clip.
    pub stamp_ns: i64,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// rgb8, row-major without padding: `width * height * 3` bytes.
    pub rgb: Vec<u8>,
    /// Its 2-D labels: checked for `BadBoxes`, and their classes count for class coverage.
    pub boxes: Vec<BoxLabel>,
    /// The transfer node's score of this frame, when it came through one: (recall, flagged).
    pub transfer: Option<(f32, bool)>,
    /// Tags for balance (weather, time_of_day, scenario, edge_case); a change starts a new clip.
    pub tags: BTreeMap<String, String>,
    /// Where it came from (a bag's name, or "live").
    pub source: String,
}

/// A frame's verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameVerdict {
    /// The frame's stamp (ns).
    pub stamp_ns: i64,
    /// Why it was rejected; empty for a good frame.
    pub reasons: Vec<Reason>,
    /// What it measured.
    pub metrics: FrameMetrics,
    /// Its 64-bit perceptual hash.
    pub phash: u64,
}

/// A clip and its verdict.
#[derive(Clone, Debug)]
pub struct Clip {
    /// `<source>_<camera>_<nnnn>`, numbered from 0001 per source; also the
    /// folder of its bag under `clips/`.
    pub id: String,
    /// The source of its frames (`FrameIn::source`).
    pub source: String,
    /// Stamp of its first frame (ns).
    pub start_ns: i64,
    /// Stamp of its last frame (ns).
    pub end_ns: i64,
    /// Every frame's verdict, in stamp order.
    pub frames: Vec<FrameVerdict>,
    /// Its frames' tags (a change of tags closes a clip: they all share them).
    pub tags: BTreeMap<String, String>,
    /// The L2-normalized mean of its good frames' embeddings (zeros when none was good).
    pub embedding: Vec<f32>,
    /// Mean sharpness (variance of the Laplacian) of its good frames.
    pub sharpness: f32,
    /// Mean motion over all its frames: mean absolute luma change from the
    /// previous frame, grey levels (0..255).
    pub motion: f32,
    /// Mean transfer boundary recall (0..1) over its good frames; None when
    /// no good frame came through a transfer node.
    pub transfer: Option<f32>,
    /// The distinct classes of its good frames' boxes, sorted.
    pub classes: Vec<String>,
    /// Why it was rejected as a clip; empty when accepted.
    pub reasons: Vec<Reason>,
    /// The verdict: from `Curator::push`, whether it passed the clip filters;
    /// from `Curator::finish`, final (deduplication and balance may have turned it to false).
    pub accepted: bool,
    /// The id of the kept clip it duplicates, when rejected as a `SemanticDuplicate`.
    pub duplicate_of: Option<String>,
    /// A picture of its first frame, about 64 pixels wide.
    pub thumbnail: Rgb,
}

/// A rejected frame kept as an example for the report.
#[derive(Clone, Debug)]
pub struct Example {
    /// The reason it is an example of (the frame may have others too).
    pub reason: Reason,
    /// The id of its clip.
    pub clip: String,
    /// Its stamp (ns).
    pub stamp_ns: i64,
    /// The frame, about 160 pixels wide.
    pub thumb: Rgb,
}

/// Examples kept per reason (the stream's memory must not grow with them).
const EXAMPLES_PER_REASON: usize = 4;

impl Clip {
    /// Frames no filter rejected.
    pub fn good_frames(&self) -> usize {
        self.frames.iter().filter(|f| f.reasons.is_empty()).count()
    }

    /// A clip's quality for ordering: the share of good frames times its label score.
    pub(crate) fn quality(&self) -> f32 {
        let n = self.frames.len().max(1) as f32;
        self.good_frames() as f32 / n * self.transfer.unwrap_or(1.0)
    }
}

struct Open {
    clip: Clip,
    embed_sum: Vec<f32>,
    embedded: usize,
    changes: Vec<f32>,
}

/// Everything the curation decided.
pub struct Curated {
    /// Every clip, kept or not, in the order they closed, with its final verdict.
    pub clips: Vec<Clip>,
    /// Per targeted tag value, its share before and after balancing (empty without targets).
    pub balance: Vec<Achieved>,
    /// Cluster of each clip in semantic deduplication (None: not clustered, rejected before).
    pub clusters: Vec<Option<usize>>,
    /// A few rejected frames per reason.
    pub examples: Vec<Example>,
}

/// The curation of one camera's stream: frames go in with `push`, in stamp
/// order, possibly from several sources one after the other; `finish` ends it.
pub struct Curator {
    params: Params,
    embedder: Box<dyn Embedder>,
    open: Option<Open>,
    prev: Option<(Vec<u8>, Luma, i64, [f32; 16])>,
    /// Frame hashes seen so far, split in blocks for near-duplicate lookup.
    hashes: Vec<(u64, i64)>,
    /// 16×16 luma of each hashed frame: a hash match is confirmed on pixels
    /// (structured scenes, a road in perspective, share coarse hashes).
    smalls: Vec<[u8; 64]>,
    examples: Vec<Example>,
    blocks: [HashMap<u16, Vec<usize>>; 4],
    closed: Vec<Clip>,
    per_source: HashMap<String, usize>,
}

/// The frame as 8×8 block means, stretched to the full 0..255 range (so that
/// two dark frames of different content still differ).
fn shrink8(l: &Luma) -> [u8; 64] {
    let mut means = [0.0f32; 64];
    for (j, o) in means.iter_mut().enumerate() {
        let (x0, x1) = ((j % 8) * l.w / 8, ((j % 8) + 1) * l.w / 8);
        let (y0, y1) = ((j / 8) * l.h / 8, ((j / 8) + 1) * l.h / 8);
        let (mut s, mut n) = (0.0f32, 0.0f32);
        for y in y0..y1.max(y0 + 1).min(l.h) {
            for x in x0..x1.max(x0 + 1).min(l.w) {
                s += l.px[y * l.w + x];
                n += 1.0;
            }
        }
        *o = s / n.max(1.0);
    }
    let (lo, hi) = means.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let k = 255.0 / (hi - lo).max(1.0);
    let mut out = [0u8; 64];
    for (o, m) in out.iter_mut().zip(means) {
        *o = ((m - lo) * k) as u8;
    }
    out
}

fn histogram(l: &Luma) -> [f32; 16] {
    let mut h = [0.0f32; 16];
    for v in &l.px {
        h[((*v as usize) >> 4).min(15)] += 1.0;
    }
    let n = l.px.len() as f32;
    h.iter_mut().for_each(|x| *x /= n);
    h
}

impl Curator {
    /// A curator with these params, used as they are (only `Params::load`
    /// checks them), comparing clips for semantic deduplication by `embedder`'s vectors.
    pub fn new(params: Params, embedder: Box<dyn Embedder>) -> Curator {
        Curator {
            params,
            embedder,
            open: None,
            prev: None,
            hashes: Vec::new(),
            smalls: Vec::new(),
            examples: Vec::new(),
            blocks: Default::default(),
            closed: Vec::new(),
            per_source: HashMap::new(),
        }
    }

    /// The id of the clip being filled, if any.
    pub fn open_clip_id(&self) -> Option<String> {
        self.open.as_ref().map(|o| o.clip.id.clone())
    }

    /// A frame hash within `bits` of one seen at least a second earlier,
    /// whose stretched 8×8 picture differs by under 2 levels on average.
    fn near_duplicate(&self, h: u64, stamp: i64, small: &[u8; 64]) -> bool {
        let bits = self.params.near_duplicate_bits;
        // Within ≤ 3 differing bits, one of the four 16-bit blocks matches exactly.
        for (b, map) in self.blocks.iter().enumerate() {
            if let Some(list) = map.get(&((h >> (16 * b)) as u16)) {
                if list.iter().any(|&i| {
                    let (o, t) = self.hashes[i];
                    phash::distance(o, h) <= bits
                        && (stamp - t).abs() >= 1_000_000_000
                        && self.smalls[i].iter().zip(small).map(|(a, b)| (*a as i32 - *b as i32).unsigned_abs()).sum::<u32>() < 2 * 64
                }) {
                    return true;
                }
            }
        }
        false
    }

    fn remember(&mut self, h: u64, stamp: i64, small: [u8; 64]) {
        let i = self.hashes.len();
        self.hashes.push((h, stamp));
        self.smalls.push(small);
        for (b, map) in self.blocks.iter_mut().enumerate() {
            map.entry((h >> (16 * b)) as u16).or_default().push(i);
        }
    }

    /// Takes a frame; returns the clip it closed, if any, with its quality
    /// verdict: that verdict is not final (`finish` may still reject it as a
    /// duplicate or for balance). The frame itself opens the next clip.
    pub fn push(&mut self, f: FrameIn) -> Option<Clip> {
        let p = self.params.clone();
        let luma = Luma::half(&f.rgb, f.width, f.height);
        let hist = histogram(&luma);
        let prev =
            self.prev.as_ref().filter(|(rgb, _, t, _)| rgb.len() == f.rgb.len() && f.stamp_ns > *t && f.stamp_ns - t < 1_000_000_000);
        let m = measure(&f.rgb, f.width, f.height, &luma, prev.map(|(rgb, l, _, _)| (&rgb[..], l)));
        let scene_change = prev.is_some_and(|(_, _, _, ph)| ph.iter().zip(&hist).map(|(a, b)| (a - b).abs()).sum::<f32>() > p.scene_change);
        let mut closed = None;
        let cut = match &self.open {
            None => false,
            Some(o) => {
                o.clip.tags != f.tags
                    || o.clip.source != f.source
                    || prev.is_none()
                    || scene_change
                    || (f.stamp_ns - o.clip.start_ns) as f64 >= p.clip_seconds * 1e9
            }
        };
        if cut {
            closed = self.close();
        }
        let h = phash::phash(&luma);
        let small = shrink8(&luma);
        let mut reasons = Vec::new();
        if m.contrast < p.contrast_min {
            reasons.push(Reason::BrokenConstant);
        } else {
            if m.clipped > p.clipped_max {
                reasons.push(Reason::Exposure);
            }
            if m.sharpness < p.blur_min {
                reasons.push(Reason::Blur);
            }
        }
        if m.frozen {
            reasons.push(Reason::Frozen);
        } else if m.torn_at.is_some() {
            reasons.push(Reason::Torn);
        } else if self.near_duplicate(h, f.stamp_ns, &small) {
            reasons.push(Reason::NearDuplicate);
        }
        if let Some((recall, flagged)) = f.transfer {
            if flagged || recall < p.transfer_min {
                reasons.push(Reason::LabelConsistency);
            }
        }
        let (w, hgt) = (f.width as f32, f.height as f32);
        if f.boxes
            .iter()
            .any(|b| !(b.x1 - b.x0 >= 1.0 && b.y1 - b.y0 >= 1.0 && b.x0 >= -0.5 && b.y0 >= -0.5 && b.x1 <= w + 0.5 && b.y1 <= hgt + 0.5))
        {
            reasons.push(Reason::BadBoxes);
        }
        if !m.frozen && m.contrast >= p.contrast_min {
            self.remember(h, f.stamp_ns, small);
        }
        if self.open.is_none() {
            let n = self.per_source.entry(f.source.clone()).or_insert(0);
            *n += 1;
            let id = format!("{}_{}_{:04}", f.source, p.camera, *n);
            self.open = Some(Open {
                clip: Clip {
                    id,
                    source: f.source.clone(),
                    start_ns: f.stamp_ns,
                    end_ns: f.stamp_ns,
                    frames: Vec::new(),
                    tags: f.tags.clone(),
                    embedding: Vec::new(),
                    sharpness: 0.0,
                    motion: 0.0,
                    transfer: None,
                    classes: Vec::new(),
                    reasons: Vec::new(),
                    accepted: false,
                    duplicate_of: None,
                    thumbnail: Rgb::thumbnail(&f.rgb, f.width, f.height, 64),
                },
                embed_sum: vec![0.0; embed::DIM],
                embedded: 0,
                changes: Vec::new(),
            });
        }
        let o = self.open.as_mut().unwrap();
        o.clip.end_ns = f.stamp_ns;
        if let Some(c) = m.change {
            o.changes.push(c);
        }
        if reasons.is_empty() {
            let e = self.embedder.embed(&f.rgb, f.width, f.height, &luma);
            if o.embed_sum.len() != e.len() {
                o.embed_sum = vec![0.0; e.len()];
            }
            o.embed_sum.iter_mut().zip(&e).for_each(|(s, x)| *s += x);
            o.embedded += 1;
            o.clip.sharpness += m.sharpness;
            if let Some((r, _)) = f.transfer {
                *o.clip.transfer.get_or_insert(0.0) += r;
            }
            for b in &f.boxes {
                if !o.clip.classes.contains(&b.class) {
                    o.clip.classes.push(b.class.clone());
                }
            }
        } else {
            for &r in &reasons {
                if self.examples.iter().filter(|x| x.reason == r).count() < EXAMPLES_PER_REASON {
                    self.examples.push(Example {
                        reason: r,
                        clip: o.clip.id.clone(),
                        stamp_ns: f.stamp_ns,
                        thumb: Rgb::thumbnail(&f.rgb, f.width, f.height, 160),
                    });
                }
            }
        }
        o.clip.frames.push(FrameVerdict { stamp_ns: f.stamp_ns, reasons, metrics: m, phash: h });
        self.prev = Some((f.rgb, luma, f.stamp_ns, hist));
        closed
    }

    /// Closes the open clip: its clip-level verdict.
    fn close(&mut self) -> Option<Clip> {
        let o = self.open.take()?;
        let p = &self.params;
        let mut c = o.clip;
        let good = c.good_frames();
        if good > 0 {
            c.sharpness /= good as f32;
            c.transfer = c.transfer.map(|t| t / good as f32);
        }
        c.motion = if o.changes.is_empty() { 0.0 } else { o.changes.iter().sum::<f32>() / o.changes.len() as f32 };
        let mut e = o.embed_sum;
        embed::normalize(&mut e);
        c.embedding = e;
        c.classes.sort();
        let bad = 1.0 - good as f32 / c.frames.len().max(1) as f32;
        if bad > p.max_bad_fraction {
            c.reasons.push(Reason::TooManyBadFrames);
            // And the frames' most common reason.
            let mut count: BTreeMap<Reason, usize> = BTreeMap::new();
            for f in &c.frames {
                for r in &f.reasons {
                    *count.entry(*r).or_default() += 1;
                }
            }
            if let Some((r, _)) = count.into_iter().max_by_key(|(_, n)| *n) {
                c.reasons.push(r);
            }
        }
        if good < p.min_clip_frames {
            c.reasons.push(Reason::TooShort);
        }
        if c.frames.len() > 1 && c.motion < p.motion_min {
            c.reasons.push(Reason::Static);
        }
        if c.classes.len() < p.min_classes {
            c.reasons.push(Reason::ClassCoverage);
        }
        c.reasons.dedup();
        c.accepted = c.reasons.is_empty();
        self.closed.push(c.clone());
        Some(c)
    }

    /// Ends the stream: closes the last clip, deduplicates and balances.
    /// Fails when the balance targets are malformed or the clips left cannot meet them.
    pub fn finish(mut self) -> Result<Curated, BalanceError> {
        self.close();
        self.prev = None;
        let mut clips = self.closed;
        let p = &self.params;
        let candidates: Vec<usize> = (0..clips.len()).filter(|&i| clips[i].accepted).collect();
        let quality: Vec<f32> = clips.iter().map(Clip::quality).collect();
        let emb: Vec<Vec<f32>> = candidates.iter().map(|&i| clips[i].embedding.clone()).collect();
        let q: Vec<f32> = candidates.iter().map(|&i| quality[i]).collect();
        let (dups, assign) = dedup::dedup(&emb, &q, p.clusters, p.dedup_eps, p.seed);
        let mut clusters = vec![None; clips.len()];
        for (k, &i) in candidates.iter().enumerate() {
            clusters[i] = Some(assign[k]);
            if let Some(j) = dups[k] {
                let of = clips[candidates[j]].id.clone();
                let c = &mut clips[i];
                c.reasons.push(Reason::SemanticDuplicate);
                c.duplicate_of = Some(of);
                c.accepted = false;
            }
        }
        let survivors: Vec<usize> = (0..clips.len()).filter(|&i| clips[i].accepted).collect();
        let tags: Vec<BTreeMap<String, String>> = clips.iter().map(|c| c.tags.clone()).collect();
        let (selected, achieved) = balance::select(&p.balance, &tags, &survivors, &quality)?;
        for i in survivors {
            if !selected.contains(&i) {
                clips[i].reasons.push(Reason::Balance);
                clips[i].accepted = false;
            }
        }
        Ok(Curated { clips, balance: achieved, clusters, examples: self.examples })
    }
}
