//! The `curator_node` executable: curates the live stream.
//!
//! Subscribes (relative names) to the curated camera's `<camera>/image_raw`
//! (`image_topic` to change it, e.g. `sim/front/image_raw` without a transfer
//! node) or its `/compressed` sibling (parameter `transport`: `raw`,
//! `compressed`, `auto`; compressed frames are recorded as they came), `<camera>/camera_info`, `<camera>/detections`,
//! `<camera>/transfer_score` and `scenario`. Each clip's verdict goes out on
//! `curator/verdicts` as the clip closes; an accepted clip is written to
//! `<output>/clips/<id>` at once. When the node stops (Ctrl-C, or
//! `duration` seconds of stream time), deduplication and balance run, the
//! clips they drop are removed, final verdicts go out, and `manifest.yaml` and
//! `report.html` are written. Parameters: `output` (the dataset folder),
//! `params_file` (the same file as `s2r curate --params`), `camera`,
//! `image_topic`, `duration`, `idle_stop` (seconds without a frame that end the stream), `transport`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use s2r_bag::{BagWriter, TopicSpec, WriterOptions};
use s2r_image::transport::{compressed_topic, ImageSubscription, ReceivedImage};
use s2r_runtime::component::{Component, NodeFuture};
use s2r_runtime::{info, warn, Context, Node, Qos, RosArgs, Serialized};
use sim2real_msgs::builtin_interfaces::msg::Time;
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, CompressedImage, Image};
use sim2real_msgs::sim2real_msgs::msg::{CurationVerdict, DatasetReady, ScenarioInfo, TransferScore};
use sim2real_msgs::std_msgs::msg::Header;
use sim2real_msgs::vision_msgs::msg::Detection2DArray;

use s2r_runtime::stamp_ns as ns;

use crate::clips::{BoxLabel, Clip, Curator, FrameIn};
use crate::embed::Builtin;
use crate::offline::{self, Source};
use crate::params::Params;
use crate::CuratorError;

/// curator_node, for its executable (`src/bin/curator_node.rs`) and for
/// `s2r run` and composed launches. Graceful: on SIGINT it finishes the
/// dataset (deduplication, balance, manifest, report) before it ends.
pub const CURATOR_NODE: Component = Component {
    exec: "curator_node",
    about: "curates the live stream into clips: filters, deduplication, balance; writes a dataset and publishes verdicts",
    main: curator_node,
    graceful: true,
};

fn time(ns: i64) -> Time {
    Time { sec: ns.div_euclid(1_000_000_000) as i32, nanosec: ns.rem_euclid(1_000_000_000) as u32 }
}

/// The verdict message of a clip.
pub(crate) fn verdict(c: &Clip, frame_id: &str, is_final: bool) -> CurationVerdict {
    CurationVerdict {
        header: Header { stamp: time(c.start_ns), frame_id: frame_id.into() },
        clip_id: c.id.clone(),
        source: c.source.clone(),
        start: time(c.start_ns),
        end: time(c.end_ns),
        frames: c.frames.len() as u32,
        good_frames: c.good_frames() as u32,
        accepted: c.accepted,
        is_final,
        reasons: c.reasons.iter().map(|r| r.code().to_string()).collect(),
        tags: c.tags.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        sharpness: c.sharpness,
        motion: c.motion,
        transfer_recall: c.transfer.unwrap_or(f32::NAN),
        classes: c.classes.clone(),
        duplicate_of: c.duplicate_of.clone().unwrap_or_default(),
    }
}

/// Messages of the open clip, kept until its verdict: (topic, stamp, log time, CDR).
#[derive(Default)]
struct Buffer {
    msgs: Vec<(usize, i64, u64, Serialized)>,
}

const TOPICS: [&str; 5] = ["image", "camera_info", "detections", "transfer_score", "scenario"];

struct Out {
    dir: PathBuf,
    specs: Vec<TopicSpec>,
}

impl Out {
    fn write_clip(&self, c: &Clip, buf: &Buffer, scenario: Option<&Serialized>, rejected: &[i64]) -> Result<(), CuratorError> {
        let dir = self.dir.join("clips").join(&c.id);
        let write = || -> Result<(), s2r_bag::BagError> {
            let mut w = BagWriter::create(&dir, WriterOptions { compression: s2r_bag::Compression::Zstd, ..Default::default() })?;
            let ids: Vec<_> = self.specs.iter().map(|s| w.add_topic(s.clone())).collect::<Result<_, _>>()?;
            let first = buf.msgs.iter().map(|m| m.2).min().unwrap_or(0);
            if let Some(s) = scenario {
                w.write(ids[4], first, first, &s.0)?;
            }
            for (t, stamp, log, data) in &buf.msgs {
                if *stamp < c.start_ns || *stamp > c.end_ns || (*t == 0 && rejected.contains(stamp)) {
                    continue;
                }
                w.write(ids[*t], *log, *log, &data.0)?;
            }
            w.finish().map(|_| ())
        };
        write().map_err(|source| CuratorError::Bag { path: dir.clone(), source })
    }
}

fn curator_node(ctx: Context, args: RosArgs) -> NodeFuture {
    Box::pin(async move {
        let node = Node::new(&ctx, "curator_node", &args)?;
        let log = node.logger().clone();
        let output: String = node.declare_parameter("output", "curated".to_string())?;
        let params_file: String = node.declare_parameter("params_file", String::new())?;
        let camera: String = node.declare_parameter("camera", String::new())?;
        let image_topic: String = node.declare_parameter("image_topic", String::new())?;
        let duration: f64 = node.declare_parameter("duration", 0.0)?;
        // Seconds without a frame, once frames came, after which the stream counts as ended (0: never).
        let idle_stop: f64 = node.declare_parameter("idle_stop", 0.0)?;
        let transport = s2r_image::transport::declare_input(&node)?;
        let mut params = if params_file.is_empty() {
            Params::default()
        } else {
            Params::load(Path::new(&params_file)).map_err(|e| format!("parameter 'params_file': {e}"))?
        };
        if !camera.is_empty() {
            params.camera = camera;
        }
        let cam = params.camera.clone();
        let image_topic = if image_topic.is_empty() { format!("{cam}/image_raw") } else { image_topic };
        let out_dir = PathBuf::from(&output);
        if out_dir.exists() && std::fs::read_dir(&out_dir).map(|mut d| d.next().is_some()).unwrap_or(false) {
            return Err(format!("parameter 'output': {}", CuratorError::NotEmpty(out_dir)).into());
        }
        std::fs::create_dir_all(out_dir.join("clips")).map_err(|e| format!("parameter 'output': {}: {e}", out_dir.display()))?;
        let q = Qos::reliable().depth(50);
        let det_topic = image_topic.trim_end_matches("/image_raw").to_string() + "/detections";
        let info_topic = image_topic.trim_end_matches("/image_raw").to_string() + "/camera_info";
        let mut images = ImageSubscription::new(&node, &image_topic, transport, q)?;
        let infos = node.create_subscription::<CameraInfo>(&info_topic, q)?;
        let dets = node.create_subscription::<Detection2DArray>(&det_topic, q)?;
        let scores = node.create_subscription::<TransferScore>(&format!("{cam}/transfer_score"), q)?;
        let scenario_sub = node.create_subscription::<ScenarioInfo>("scenario", Qos::transient_local())?;
        let verdicts = node.create_publisher::<CurationVerdict>("curator/verdicts", Qos::reliable().depth(100))?;
        // The finished dataset, for trainer_node (transient local: a trainer started later still hears of it).
        let ready = node.create_publisher::<DatasetReady>("curator/dataset", Qos::transient_local().depth(10))?;
        let names = [image_topic.clone(), info_topic.clone(), det_topic.clone(), format!("{cam}/transfer_score"), "scenario".to_string()];
        let resolved: Vec<String> = names.iter().map(|n| node.resolve_topic(n).unwrap_or_else(|_| n.clone())).collect();
        let mut out = Out {
            dir: out_dir.clone(),
            specs: vec![
                TopicSpec::of::<Image>(&resolved[0], Vec::new()),
                TopicSpec::of::<CameraInfo>(&resolved[1], Vec::new()),
                TopicSpec::of::<Detection2DArray>(&resolved[2], Vec::new()),
                TopicSpec::of::<TransferScore>(&resolved[3], Vec::new()),
                TopicSpec::of::<ScenarioInfo>(&resolved[4], Vec::new()),
            ],
        };
        let _ = TOPICS;
        info!(log, "curating {} into {} (clips of {} s)", resolved[0], out_dir.display(), params.clip_seconds);

        let mut curator = Curator::new(params.clone(), Box::new(Builtin));
        let mut scenario: Option<ScenarioInfo> = None;
        let mut scenario_cdr: Option<Serialized> = None;
        let mut pending: BTreeMap<i64, Part> = BTreeMap::new();
        let mut buf = Buffer::default();
        let mut frames = 0usize;
        let mut frame_id = String::new();
        let mut first_stamp: Option<i64> = None;
        let mut shutdown = std::pin::pin!(s2r_runtime::shutdown::signal());
        let now_ns = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        let mut stop = false;
        let mut recording_compressed = false;
        let mut last_frame: Option<std::time::Instant> = None;
        while !stop {
            let mut busy = false;
            while let Some(s) = scenario_sub.try_recv() {
                scenario_cdr = Serialized::encode(&*s).ok();
                scenario = Some(Arc::unwrap_or_clone(s));
                busy = true;
            }
            while let Some(d) = dets.try_recv() {
                let s = ns(&d.header.stamp);
                if let Ok(c) = Serialized::encode(&*d) {
                    buf.msgs.push((2, s, now_ns(), c));
                }
                pending.entry(s).or_default().1 = Some(offline::boxes(&d));
                busy = true;
            }
            while let Some(t) = scores.try_recv() {
                let s = ns(&t.header.stamp);
                if let Ok(c) = Serialized::encode(&*t) {
                    buf.msgs.push((3, s, now_ns(), c));
                }
                pending.entry(s).or_default().2 = Some((t.boundary_recall, t.flagged, t.prompt.clone()));
                busy = true;
            }
            while let Some(i) = infos.try_recv() {
                if let Ok(c) = Serialized::encode(&*i) {
                    buf.msgs.push((1, ns(&i.header.stamp), now_ns(), c));
                }
                busy = true;
            }
            let mut arrived = Vec::new();
            while let Some(img) = images.try_recv() {
                arrived.push(img);
            }
            for ReceivedImage { image: img, compressed } in arrived {
                busy = true;
                last_frame = Some(std::time::Instant::now());
                let s = ns(&img.header.stamp);
                frame_id = img.header.frame_id.clone();
                // Frames are recorded as they came: a compressed stream stays compressed.
                let cdr = match &compressed {
                    Some(c) => {
                        if !recording_compressed {
                            out.specs[0] = TopicSpec::of::<CompressedImage>(&compressed_topic(&resolved[0]), Vec::new());
                            recording_compressed = true;
                        }
                        Serialized::encode(&**c)
                    }
                    None => Serialized::encode(&*img),
                };
                if let Ok(c) = cdr {
                    buf.msgs.push((0, s, now_ns(), c));
                }
                // Labels come after their image: frames before this one are complete.
                let ready: Vec<i64> = pending.iter().filter(|(t, p)| **t < s && p.0.is_some()).map(|(t, _)| *t).collect();
                for t in ready {
                    let Some(f) = frame_in(t, pending.remove(&t).unwrap(), scenario.as_ref(), &resolved[0], &log) else { continue };
                    frames += 1;
                    if let Some(c) = curator.push(f) {
                        close(&c, &mut buf, &out, scenario_cdr.as_ref(), &verdicts, &frame_id, &log);
                    }
                }
                pending.retain(|t, _| *t >= s - 2_000_000_000);
                pending.entry(s).or_default().0 = Some(img);
                let first = *first_stamp.get_or_insert(s);
                if duration > 0.0 && (s - first) as f64 >= duration * 1e9 {
                    stop = true;
                }
            }
            if idle_stop > 0.0 && last_frame.is_some_and(|t| t.elapsed().as_secs_f64() > idle_stop) {
                info!(log, "no frame for {idle_stop} s: the stream has ended");
                stop = true;
            }
            if !busy && !stop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                    _ = &mut shutdown => stop = true,
                }
            }
        }
        // The last frames, then the whole-stream decisions.
        let rest: Vec<i64> = pending.iter().filter(|(_, p)| p.0.is_some()).map(|(t, _)| *t).collect();
        for t in rest {
            let Some(f) = frame_in(t, pending.remove(&t).unwrap(), scenario.as_ref(), &resolved[0], &log) else { continue };
            frames += 1;
            if let Some(c) = curator.push(f) {
                close(&c, &mut buf, &out, scenario_cdr.as_ref(), &verdicts, &frame_id, &log);
            }
        }
        let last_open = curator.open_clip_id();
        let curated = match curator.finish() {
            Ok(c) => c,
            Err(e) => return Err(format!("balance: {e}").into()),
        };
        // The last clip closed in finish(): write it if it passed the filters.
        if let Some(id) = last_open {
            if let Some(c) = curated.clips.iter().find(|c| c.id == id) {
                let pre = c.accepted
                    || c.reasons.iter().all(|r| matches!(r, crate::clips::Reason::SemanticDuplicate | crate::clips::Reason::Balance));
                if pre {
                    let rejected: Vec<i64> = c.frames.iter().filter(|f| !f.reasons.is_empty()).map(|f| f.stamp_ns).collect();
                    if let Err(e) = out.write_clip(c, &buf, scenario_cdr.as_ref(), &rejected) {
                        warn!(log, "clip {}: {e}", c.id);
                    }
                }
            }
        }
        for c in &curated.clips {
            if !c.accepted {
                let dir = out_dir.join("clips").join(&c.id);
                if dir.exists() {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
            verdicts.publish_or_log(verdict(c, &frame_id, true), &log);
        }
        let sources =
            vec![Source { bag: PathBuf::from("live"), name: "live".into(), image_topic: resolved[0].clone(), frames, damage: Vec::new() }];
        offline::write_dataset(&out_dir, &curated, &sources, &params)?;
        let accepted = curated.clips.iter().filter(|c| c.accepted).count();
        info!(log, "{frames} frames, {} clips: {accepted} accepted; wrote {}", curated.clips.len(), out_dir.display());
        let path = std::fs::canonicalize(&out_dir).unwrap_or_else(|_| out_dir.clone());
        let stamp = node.now().to_msg();
        ready.publish_or_log(DatasetReady { stamp, path: path.display().to_string(), clips: accepted as u32, frames: frames as u32 }, &log);
        // Let the final verdicts reach their subscribers.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(())
    })
}

/// A frame by stamp as it comes together: image, boxes, transfer score (recall, flagged, prompt).
type Part = (Option<Arc<Image>>, Option<Vec<BoxLabel>>, Option<(f32, bool, String)>);

/// A complete frame for the curator; None (said) when its image cannot be read.
fn frame_in(
    stamp: i64,
    (im, boxes, score): Part,
    scenario: Option<&ScenarioInfo>,
    topic: &str,
    log: &s2r_runtime::Logger,
) -> Option<FrameIn> {
    let im = im?;
    match offline::frame_in(stamp, &im, boxes, score.as_ref(), scenario, topic, "live") {
        Ok(f) => Some(f),
        Err(e) => {
            warn!(log, "{e}; frame skipped");
            None
        }
    }
}

fn close(
    c: &Clip,
    buf: &mut Buffer,
    out: &Out,
    scenario: Option<&Serialized>,
    verdicts: &s2r_runtime::Publisher<CurationVerdict>,
    frame_id: &str,
    log: &s2r_runtime::Logger,
) {
    verdicts.publish_or_log(verdict(c, frame_id, false), log);
    if c.accepted {
        let rejected: Vec<i64> = c.frames.iter().filter(|f| !f.reasons.is_empty()).map(|f| f.stamp_ns).collect();
        if let Err(e) = out.write_clip(c, buf, scenario, &rejected) {
            warn!(log, "clip {}: {e}", c.id);
        }
    }
    // What belongs to the closed clip is done with.
    buf.msgs.retain(|m| m.1 > c.end_ns);
}
