//! `s2r curate`: recorded bags in, a curated dataset out (a bag per accepted
//! clip, manifest.yaml, report.html).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use s2r_bag::{BagReader, BagWriter, TopicSpec, WriterOptions};
use s2r_image::stored;
use s2r_runtime::Serialized;
use sim2real_msgs::sensor_msgs::msg::Image;
use sim2real_msgs::sim2real_msgs::msg::{ScenarioInfo, TransferScore};
use sim2real_msgs::vision_msgs::msg::Detection2DArray;

use crate::clips::{BoxLabel, Clip, Curated, Curator, FrameIn};
use crate::embed::Builtin;
use crate::params::Params;
use crate::report;
use crate::{CuratorError, Manifest};

use s2r_runtime::stamp_ns;

/// A frame's 2-D labels as boxes (class, corners in pixels).
pub(crate) fn boxes(d: &Detection2DArray) -> Vec<BoxLabel> {
    d.detections
        .iter()
        .map(|x| {
            let b = &x.bbox;
            let (cx, cy, w, h) = (b.center.position.x as f32, b.center.position.y as f32, b.size_x as f32, b.size_y as f32);
            BoxLabel {
                class: x.results.first().map(|r| r.hypothesis.class_id.clone()).unwrap_or_default(),
                x0: cx - w / 2.0,
                y0: cy - h / 2.0,
                x1: cx + w / 2.0,
                y1: cy + h / 2.0,
            }
        })
        .collect()
}

/// The tags a clip is balanced on: `scenario`, `weather`, `time_of_day`,
/// `edge_case` (`true`/`false`) and `seed` from the scenario, with weather and
/// time of day from the transfer prompt, and the `prompt` itself, when the
/// frames were restyled. Empty with neither.
pub fn tags(scenario: Option<&ScenarioInfo>, prompt: Option<&str>) -> BTreeMap<String, String> {
    let mut t = BTreeMap::new();
    if let Some(s) = scenario {
        t.insert("scenario".into(), s.scenario.clone());
        t.insert("weather".into(), s.weather.clone());
        t.insert("time_of_day".into(), s.time_of_day.clone());
        t.insert("edge_case".into(), s.edge_case.to_string());
        t.insert("seed".into(), s.seed.to_string());
    }
    if let Some(p) = prompt {
        t.insert("prompt".into(), p.to_string());
        let look = s2r_look::parse(p).look;
        t.insert("weather".into(), look.weather_tag().into());
        t.insert("time_of_day".into(), look.time_tag().into());
    }
    t
}

/// A frame for the curator from its messages: image, boxes, transfer score
/// (recall, flagged, prompt); the error names the topic when the image cannot be read.
pub(crate) fn frame_in(
    stamp: i64,
    image: &Image,
    boxes: Option<Vec<BoxLabel>>,
    score: Option<&(f32, bool, String)>,
    scenario: Option<&ScenarioInfo>,
    topic: &str,
    source: &str,
) -> Result<FrameIn, CuratorError> {
    Ok(FrameIn {
        stamp_ns: stamp,
        width: image.width as usize,
        height: image.height as usize,
        rgb: s2r_image::rgb8(image, topic)?,
        boxes: boxes.unwrap_or_default(),
        transfer: score.map(|(r, f, _)| (*r, *f)),
        tags: tags(scenario, score.map(|s| s.2.as_str())),
        source: source.into(),
    })
}

/// What one source bag contributed.
#[derive(Clone, Debug, Default)]
pub struct Source {
    /// The bag, as given (`live` for curator_node's stream).
    pub bag: PathBuf,
    /// Its name in clip ids and `Clip::source`: the file or folder name
    /// without `.mcap`, with `_` appended until it is unique.
    pub name: String,
    /// The image topic curated.
    pub image_topic: String,
    /// Frames curated from it (an image that cannot be read is not counted).
    pub frames: usize,
    /// Damage the bag reader found; what was readable was curated.
    pub damage: Vec<String>,
}

struct Pending {
    image: Option<(Image, u64)>,
    boxes: Option<Vec<BoxLabel>>,
    transfer: Option<(f32, bool, String)>,
}

/// Curates bags into `out`, a new or empty folder: a bag per accepted clip
/// under `clips/`, `manifest.yaml` and `report.html`. The bags are one stream
/// in the order given (near-duplicates and semantic duplicates are found
/// across them); `log` gets progress lines (damage found, frames per bag).
/// Returns the curation and the sources. Fails on a bag that cannot be opened
/// or lacks the camera (before anything is written), on balance targets that
/// cannot be met, and on a file that cannot be written.
pub fn curate(bags: &[PathBuf], out: &Path, params: &Params, log: &mut dyn FnMut(String)) -> Result<(Curated, Vec<Source>), CuratorError> {
    if out.exists() && std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(false) {
        return Err(CuratorError::NotEmpty(out.into()));
    }
    let mut curator = Curator::new(params.clone(), Box::new(Builtin));
    let mut sources = Vec::new();
    // Per source: the log times of rejected frames' images, and each clip's log-time range.
    let mut frame_log: BTreeMap<(usize, i64), u64> = BTreeMap::new();
    let mut names = HashSet::new();
    let cam = &params.camera;
    for (si, bag) in bags.iter().enumerate() {
        let reader = BagReader::open(bag).map_err(|source| CuratorError::Bag { path: bag.clone(), source })?;
        let mut name = bag.file_name().and_then(|n| n.to_str()).unwrap_or("bag").trim_end_matches(".mcap").to_string();
        while !names.insert(name.clone()) {
            name.push('_');
        }
        let damage: Vec<String> = reader.damage().iter().map(|d| d.to_string()).chain(reader.problems.iter().cloned()).collect();
        for d in &damage {
            log(format!("{}: damaged: {d}; curating what is readable", bag.display()));
        }
        let stored = stored::cameras(reader.connections.iter().map(|c| (c.topic.as_str(), c.type_name.as_str())));
        let Some(camera) = stored::find(&stored, &[format!("/{cam}/image_raw"), format!("/sim/{cam}/image_raw")]) else {
            let images = stored.iter().map(|c| c.topic.clone()).collect();
            return Err(CuratorError::NoCamera { bag: bag.clone(), camera: cam.clone(), images });
        };
        let image_topic = camera.topic.clone();
        let det_topic = if camera.raw.starts_with("/sim/") { format!("/sim/{cam}/detections") } else { format!("/{cam}/detections") };
        let score_topic = format!("/{cam}/transfer_score");
        let mut scenario: Option<ScenarioInfo> = None;
        let mut pending: BTreeMap<i64, Pending> = BTreeMap::new();
        let mut frames = 0usize;
        let mut bad_frames = 0u64;
        let push_ready = |pending: &mut BTreeMap<i64, Pending>,
                          upto: Option<i64>,
                          scenario: &Option<ScenarioInfo>,
                          curator: &mut Curator,
                          frames: &mut usize,
                          frame_log: &mut BTreeMap<(usize, i64), u64>| {
            let ready: Vec<i64> =
                pending.iter().filter(|(s, p)| p.image.is_some() && upto.is_none_or(|u| **s < u)).map(|(s, _)| *s).collect();
            for s in ready {
                let p = pending.remove(&s).unwrap();
                let (img, log_time) = p.image.unwrap();
                let Ok(f) = frame_in(s, &img, p.boxes, p.transfer.as_ref(), scenario.as_ref(), &image_topic, &name) else { continue };
                frame_log.insert((si, s), log_time);
                *frames += 1;
                curator.push(f);
            }
            // Controls that lost their image are dropped.
            if let Some(u) = upto {
                pending.retain(|s, p| p.image.is_some() || *s >= u - 2_000_000_000);
            }
        };
        for m in reader.messages() {
            let c = &reader.connections[m.connection];
            let data = Serialized(m.data.clone());
            if c.type_name == "sim2real_msgs/msg/ScenarioInfo" {
                scenario = data.decode().ok();
            } else if c.topic == image_topic {
                let img = match camera.decode(&data) {
                    Ok(img) => img,
                    Err(e) => {
                        bad_frames += 1;
                        if s2r_runtime::log::worth_logging(bad_frames) {
                            log(format!("{}: {e}; frame skipped ({bad_frames} on this topic so far)", bag.display()));
                        }
                        continue;
                    }
                };
                let s = stamp_ns(&img.header.stamp);
                // Labels come after their image: the frame before this one is complete now.
                push_ready(&mut pending, Some(s), &scenario, &mut curator, &mut frames, &mut frame_log);
                pending.entry(s).or_insert(Pending { image: None, boxes: None, transfer: None }).image = Some((img, m.log_time));
            } else if c.topic == det_topic {
                if let Ok(d) = data.decode::<Detection2DArray>() {
                    pending.entry(stamp_ns(&d.header.stamp)).or_insert(Pending { image: None, boxes: None, transfer: None }).boxes =
                        Some(boxes(&d));
                }
            } else if c.topic == score_topic {
                if let Ok(t) = data.decode::<TransferScore>() {
                    pending.entry(stamp_ns(&t.header.stamp)).or_insert(Pending { image: None, boxes: None, transfer: None }).transfer =
                        Some((t.boundary_recall, t.flagged, t.prompt));
                }
            }
        }
        push_ready(&mut pending, None, &scenario, &mut curator, &mut frames, &mut frame_log);
        log(format!("{}: {frames} frames of {image_topic}", bag.display()));
        sources.push(Source { bag: bag.clone(), name, image_topic, frames, damage });
    }
    let curated = curator.finish()?;
    std::fs::create_dir_all(out.join("clips")).map_err(|source| CuratorError::Write { path: out.into(), source })?;
    for (si, src) in sources.iter().enumerate() {
        write_clips(src, si, &curated.clips, &frame_log, out)?;
    }
    write_dataset(out, &curated, &sources, params)?;
    Ok((curated, sources))
}

/// Writes a bag per accepted clip of one source: every message in the clip's
/// time span, without the images of rejected frames, with the scenario and
/// static transforms first (they are transient-local: a clip needs them).
fn write_clips(src: &Source, si: usize, clips: &[Clip], frame_log: &BTreeMap<(usize, i64), u64>, out: &Path) -> Result<(), CuratorError> {
    let mine: Vec<&Clip> = clips.iter().filter(|c| c.accepted && c.source == src.name).collect();
    if mine.is_empty() {
        return Ok(());
    }
    let reader = BagReader::open(&src.bag).map_err(|source| CuratorError::Bag { path: src.bag.clone(), source })?;
    let log_of = |s: i64| frame_log.get(&(si, s)).copied();
    struct W {
        dir: PathBuf,
        start: u64,
        end: u64,
        skip: BTreeSet<u64>,
        writer: BagWriter,
        topics: BTreeMap<usize, s2r_bag::TopicId>,
    }
    let mut writers = Vec::new();
    for c in mine {
        let (Some(start), Some(end)) = (log_of(c.start_ns), log_of(c.end_ns)) else { continue };
        let skip = c.frames.iter().filter(|f| !f.reasons.is_empty()).filter_map(|f| log_of(f.stamp_ns)).collect();
        let dir = out.join("clips").join(&c.id);
        let writer = BagWriter::create(&dir, WriterOptions { compression: s2r_bag::Compression::Zstd, ..Default::default() })
            .map_err(|source| CuratorError::Bag { path: dir.clone(), source })?;
        writers.push(W { dir, start, end: end + 50_000_000, skip, writer, topics: BTreeMap::new() });
    }
    let latched: Vec<usize> = (0..reader.connections.len())
        .filter(|&i| reader.connections[i].type_name == "sim2real_msgs/msg/ScenarioInfo" || reader.connections[i].topic == "/tf_static")
        .collect();
    let mut last_latched: BTreeMap<usize, s2r_bag::BagMessage> = BTreeMap::new();
    for m in reader.messages() {
        let ci = m.connection;
        if latched.contains(&ci) {
            last_latched.insert(ci, m.clone());
        }
        for w in writers.iter_mut() {
            if m.log_time < w.start || m.log_time > w.end {
                continue;
            }
            if reader.connections[ci].topic == src.image_topic && w.skip.contains(&m.log_time) {
                continue;
            }
            if w.topics.is_empty() {
                // The clip's first message: the latched state before it.
                for (lci, lm) in &last_latched {
                    let id = topic(&mut w.writer, &mut w.topics, &reader, *lci).map_err(bag_err(&w.dir))?;
                    w.writer.write(id, lm.log_time.max(w.start), lm.publish_time, &lm.data).map_err(bag_err(&w.dir))?;
                }
            }
            let id = topic(&mut w.writer, &mut w.topics, &reader, ci).map_err(bag_err(&w.dir))?;
            w.writer.write_bytes(id, m.log_time, m.publish_time, m.data.clone()).map_err(bag_err(&w.dir))?;
        }
    }
    for w in writers {
        w.writer.finish().map_err(bag_err(&w.dir))?;
    }
    Ok(())
}

fn bag_err(path: &Path) -> impl Fn(s2r_bag::BagError) -> CuratorError + '_ {
    move |source| CuratorError::Bag { path: path.into(), source }
}

fn topic(
    w: &mut BagWriter,
    topics: &mut BTreeMap<usize, s2r_bag::TopicId>,
    r: &BagReader,
    ci: usize,
) -> Result<s2r_bag::TopicId, s2r_bag::BagError> {
    if let Some(id) = topics.get(&ci) {
        return Ok(*id);
    }
    let c = &r.connections[ci];
    let id = w.add_topic(TopicSpec::from(c))?;
    topics.insert(ci, id);
    Ok(id)
}

/// Writes a curation's `manifest.yaml` and `report.html` into `out`.
pub(crate) fn write_dataset(out: &Path, curated: &Curated, sources: &[Source], params: &Params) -> Result<(), CuratorError> {
    Manifest::of(curated, sources, params).write(out)?;
    let report = out.join("report.html");
    std::fs::write(&report, report::html(curated, sources, params)).map_err(|source| CuratorError::Write { path: report, source })
}
