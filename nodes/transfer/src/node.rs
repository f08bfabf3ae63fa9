//! The `transfer_node` executable: restyles every camera of a simulation.
//!
//! Subscribes (relative names, so the node's namespace applies) to
//! `sim/<camera>/{image_raw,depth,segmentation,camera_info,detections}`,
//! `sim/detections3d`, `scenario`, `/tf` and `/tf_static` (the colour image
//! raw or as `sim/<camera>/image_raw/compressed`: parameter `transport`,
//! `raw`, `compressed` or `auto`); publishes `<camera>/image_raw` (rgb8, the
//! input's stamp and frame; and/or `<camera>/image_raw/compressed`:
//! `publish_transport`, `compression`, `jpeg_quality`), `<camera>/camera_info`,
//! `<camera>/detections` (the labels, unchanged) and `<camera>/transfer_score`
//! (sim2real_msgs/TransferScore).
//!
//! Parameters: `prompt` (changeable while running), `seed`, `cameras`
//! (comma-separated; empty: every camera found under `sim/`), `preset`
//! (`full` or `fast`), `device` (`cpu`, `gpu` or `auto`: the GPU path when a
//! hardware GPU is present), `model` (an ONNX file: use it instead of the built-in
//! backend), `weights.seg`, `weights.depth`, `weights.edge`, `weights.vis`,
//! `score_threshold`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use s2r_image::transport::{ImagePublisher, ImageSubscription, Publish, Transport};
use s2r_image::Compression;
use s2r_runtime::component::{Component, NodeFuture};
use s2r_runtime::{info, warn, Context, Logger, Node, Publisher, Qos, RosArgs, Subscription};
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image};
use sim2real_msgs::sim2real_msgs::msg::{ScenarioInfo, TransferScore};
use sim2real_msgs::tf2_msgs::msg::TFMessage;
use sim2real_msgs::vision_msgs::msg::{Detection2DArray, Detection3DArray};

use crate::builtin::{Device, Preset};
use crate::input::{decode, CameraMsgs, Scene, Topics};
use crate::onnx::OnnxBackend;
use crate::{parse, score, Backend, Look, Weights};
use s2r_runtime::stamp_ns;

/// The node as a component: the `transfer_node` executable runs it alone,
/// `s2r run` and `s2r launch --compose` in-process (topics and parameters
/// in the module docs).
pub const TRANSFER_NODE: Component = Component {
    exec: "transfer_node",
    about: "restyles simulated camera frames into photoreal ones from a text prompt, keeping geometry and labels",
    main: transfer_node,
    graceful: false,
};

/// A frame whose image is waiting for its controls this long is restyled with what it has.
const WAIT_FOR_CONTROLS: Duration = Duration::from_millis(500);

struct Pending {
    msgs: CameraMsgs,
    since: Instant,
}

struct Camera {
    name: String,
    topics: Topics,
    image: ImageSubscription,
    depth: Subscription<Image>,
    segmentation: Subscription<Image>,
    info: Subscription<CameraInfo>,
    detections: Subscription<Detection2DArray>,
    out_image: ImagePublisher,
    out_info: Publisher<CameraInfo>,
    out_detections: Publisher<Detection2DArray>,
    out_score: Publisher<TransferScore>,
    pending: BTreeMap<i64, Pending>,
    /// Problems already reported (each once).
    said: HashSet<String>,
    frames: u64,
    skipped: u64,
}

impl Camera {
    fn new(node: &Node, name: &str, io: Io) -> Result<Camera, s2r_image::ImageError> {
        let input = |k: &str| format!("sim/{name}/{k}");
        let output = |k: &str| format!("{name}/{k}");
        let q = Qos::reliable().depth(5);
        let resolved = |t: String| node.resolve_topic(&t).unwrap_or(t);
        Ok(Camera {
            name: name.to_string(),
            topics: Topics {
                image: resolved(input("image_raw")),
                depth: resolved(input("depth")),
                segmentation: resolved(input("segmentation")),
                info: resolved(input("camera_info")),
            },
            image: ImageSubscription::new(node, &input("image_raw"), io.transport, q)?,
            depth: node.create_subscription(&input("depth"), q)?,
            segmentation: node.create_subscription(&input("segmentation"), q)?,
            info: node.create_subscription(&input("camera_info"), q)?,
            detections: node.create_subscription(&input("detections"), Qos::reliable().depth(10))?,
            out_image: ImagePublisher::new(node, &output("image_raw"), io.publish, io.compression, q)?,
            out_info: node.create_publisher(&output("camera_info"), q)?,
            out_detections: node.create_publisher(&output("detections"), Qos::reliable().depth(10))?,
            out_score: node.create_publisher(&output("transfer_score"), Qos::reliable().depth(10))?,
            pending: BTreeMap::new(),
            said: HashSet::new(),
            frames: 0,
            skipped: 0,
        })
    }

    fn entry(&mut self, stamp: i64) -> &mut CameraMsgs {
        &mut self.pending.entry(stamp).or_insert_with(|| Pending { msgs: CameraMsgs::default(), since: Instant::now() }).msgs
    }

    /// Takes in what arrived; returns true if anything did.
    fn drain(&mut self, log: &Logger) -> bool {
        let mut any = false;
        while let Some(m) = self.image.try_recv() {
            let t = stamp_ns(&m.image.header.stamp);
            self.entry(t).image = Some(Arc::unwrap_or_clone(m.image));
            any = true;
        }
        while let Some(m) = self.depth.try_recv() {
            let t = stamp_ns(&m.header.stamp);
            self.entry(t).depth = Some(Arc::unwrap_or_clone(m));
            any = true;
        }
        while let Some(m) = self.segmentation.try_recv() {
            let t = stamp_ns(&m.header.stamp);
            self.entry(t).segmentation = Some(Arc::unwrap_or_clone(m));
            any = true;
        }
        while let Some(m) = self.info.try_recv() {
            let t = stamp_ns(&m.header.stamp);
            self.entry(t).info = Some(Arc::unwrap_or_clone(m));
            any = true;
        }
        // Labels pass through unchanged: the restyled frame has the same geometry.
        while let Some(m) = self.detections.try_recv() {
            self.out_detections.publish_shared_or_log(m, log);
            any = true;
        }
        // Controls that never find their image are dropped after a while.
        let now = Instant::now();
        self.pending.retain(|_, p| p.msgs.image.is_some() || now - p.since < WAIT_FOR_CONTROLS * 4);
        any
    }

    /// The next frame to restyle: the newest complete one (older ones are
    /// skipped, as a sensor pipeline that cannot keep up must), or an image
    /// whose controls did not come in time.
    fn next(&mut self) -> Option<CameraMsgs> {
        let complete = |m: &CameraMsgs| m.image.is_some() && m.depth.is_some() && m.segmentation.is_some() && m.info.is_some();
        let newest_image = self.pending.iter().rev().find(|(_, p)| p.msgs.image.is_some()).map(|(s, _)| *s)?;
        let ready = self
            .pending
            .iter()
            .rev()
            .find(|(s, p)| complete(&p.msgs) || (p.msgs.image.is_some() && (**s < newest_image || p.since.elapsed() > WAIT_FOR_CONTROLS)))
            .map(|(s, _)| *s)?;
        let older: Vec<i64> = self.pending.range(..ready).filter(|(_, p)| p.msgs.image.is_some()).map(|(s, _)| *s).collect();
        self.skipped += older.len() as u64;
        self.pending = self.pending.split_off(&ready);
        self.pending.remove(&ready).map(|p| p.msgs)
    }

    fn say_once(&mut self, log: &Logger, what: String) {
        if self.said.insert(what.clone()) {
            warn!(log, "{what}");
        }
    }
}

/// How camera images travel in and out (the image_transport parameters).
#[derive(Clone, Copy)]
struct Io {
    transport: Transport,
    publish: Publish,
    compression: Compression,
}

struct Settings {
    prompt: String,
    look: Look,
    seed: u64,
    weights: Weights,
    threshold: f32,
}

fn weights(node: &Node) -> Result<Weights, s2r_runtime::NodeError> {
    let d = Weights::default();
    Ok(Weights {
        seg: node.declare_parameter("weights.seg", d.seg as f64)? as f32,
        depth: node.declare_parameter("weights.depth", d.depth as f64)? as f32,
        edge: node.declare_parameter("weights.edge", d.edge as f64)? as f32,
        vis: node.declare_parameter("weights.vis", d.vis as f64)? as f32,
    })
}

fn parse_logged(log: &Logger, prompt: &str) -> Look {
    let p = parse(prompt);
    if !p.unknown.is_empty() {
        warn!(log, "prompt: not in the vocabulary, ignored: {} (see the transfer section of the README)", p.unknown.join(", "));
    }
    info!(log, "prompt \"{prompt}\" -> {}", p.look);
    p.look
}

fn transfer_node(ctx: Context, args: RosArgs) -> NodeFuture {
    Box::pin(async move {
        let node = Node::new(&ctx, "transfer_node", &args)?;
        let log = node.logger().clone();
        let prompt: String =
            node.declare_parameter("prompt", "icy road, night, wet reflections, headlight glare, light snowfall".to_string())?;
        let seed: i64 = node.declare_parameter("seed", 0)?;
        let cameras: String = node.declare_parameter("cameras", String::new())?;
        let preset: String = node.declare_parameter("preset", "full".to_string())?;
        let device: String = node.declare_parameter("device", "auto".to_string())?;
        let model: String = node.declare_parameter("model", String::new())?;
        let w = weights(&node)?;
        let transport = s2r_image::transport::declare_input(&node)?;
        let (publish, compression) = s2r_image::transport::declare_output(&node)?;
        let io = Io { transport, publish, compression };
        let threshold: f64 = node.declare_parameter("score_threshold", 0.6)?;
        w.validate().map_err(|e| format!("parameter {e}"))?;
        if seed < 0 {
            return Err(format!("parameter 'seed' must not be negative, got {seed}").into());
        }
        let preset: Preset = preset.parse().map_err(|e| format!("parameter 'preset': {e}"))?;
        let device: Device = device.parse().map_err(|e| format!("parameter 'device': {e}"))?;
        let mut backend: Box<dyn Backend> = if model.is_empty() {
            crate::builtin::open(preset, device).map_err(|e| format!("parameter 'device': {e}"))?
        } else {
            Box::new(OnnxBackend::load(std::path::Path::new(&model)).map_err(|e| format!("parameter 'model': {e}"))?)
        };
        let mut s = Settings { look: parse_logged(&log, &prompt), prompt, seed: seed as u64, weights: w, threshold: threshold as f32 };

        let scenario = node.create_subscription::<ScenarioInfo>("scenario", Qos::transient_local())?;
        let tf = node.create_subscription::<TFMessage>("/tf", Qos::reliable().depth(100))?;
        let tf_static = node.create_subscription::<TFMessage>("/tf_static", Qos::transient_local())?;
        let det3d = node.create_subscription::<Detection3DArray>("sim/detections3d", Qos::reliable().depth(10))?;
        let mut scene = Scene::default();
        let mut cams: Vec<Camera> = Vec::new();
        let fixed: Vec<String> = cameras.split(',').map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect();
        for c in &fixed {
            cams.push(Camera::new(&node, c, io)?);
        }
        info!(
            log,
            "backend {}, cameras: {}",
            backend.name(),
            if fixed.is_empty() {
                format!("every camera under {}/", node.resolve_topic("sim").unwrap_or_default())
            } else {
                fixed.join(", ")
            }
        );
        let sim_prefix = format!("{}/", node.resolve_topic("sim")?);
        let mut last_discovery: Option<Instant> = None;
        let mut shutdown = std::pin::pin!(s2r_runtime::shutdown::signal());
        let mut report = Instant::now();
        loop {
            if fixed.is_empty() && last_discovery.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                last_discovery = Some(Instant::now());
                for topic in ctx.topic_names_and_types().into_keys() {
                    let Some(cam) = topic.strip_prefix(&sim_prefix).and_then(|r| r.strip_suffix("/image_raw")) else { continue };
                    if !cam.contains('/') && !cams.iter().any(|c| c.name == cam) {
                        info!(log, "restyling camera '{cam}'");
                        cams.push(Camera::new(&node, cam, io)?);
                    }
                }
            }
            let mut busy = false;
            while let Some(m) = scenario.try_recv() {
                scene.scenario = Some(Arc::unwrap_or_clone(m));
            }
            while let Some(m) = tf_static.try_recv() {
                scene.tf(&m, true);
            }
            while let Some(m) = tf.try_recv() {
                scene.tf(&m, false);
            }
            while let Some(m) = det3d.try_recv() {
                scene.detections3d = Some(Arc::unwrap_or_clone(m));
            }
            if let Some(p) = node.parameter::<String>("prompt") {
                if p != s.prompt {
                    s.look = parse_logged(&log, &p);
                    s.prompt = p;
                }
            }
            for cam in cams.iter_mut() {
                busy |= cam.drain(&log);
                if let Some(msgs) = cam.next() {
                    busy = true;
                    tokio::task::block_in_place(|| restyle_one(cam, msgs, &scene, backend.as_mut(), &s, &log));
                }
            }
            if report.elapsed() > Duration::from_secs(10) && cams.iter().any(|c| c.frames > 0) {
                report = Instant::now();
                let parts: Vec<String> = cams.iter().map(|c| format!("{} {} restyled, {} skipped", c.name, c.frames, c.skipped)).collect();
                info!(log, "{}", parts.join("; "));
            }
            if !busy {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(2)) => {}
                    _ = &mut shutdown => break,
                }
            }
        }
        Ok(())
    })
}

fn restyle_one(cam: &mut Camera, msgs: CameraMsgs, scene: &Scene, backend: &mut dyn Backend, s: &Settings, log: &Logger) {
    let missing: Vec<&str> =
        [(msgs.depth.is_none(), "depth"), (msgs.segmentation.is_none(), "segmentation"), (msgs.info.is_none(), "camera_info")]
            .into_iter()
            .filter(|(m, _)| *m)
            .map(|(_, n)| n)
            .collect();
    let header = msgs.image.as_ref().map(|i| i.header.clone()).unwrap_or_default();
    let info = msgs.info.clone();
    let d = match decode(&msgs, &cam.topics) {
        Ok(d) => d,
        Err(e) => {
            cam.say_once(log, format!("{e}; frames of this kind are not restyled"));
            return;
        }
    };
    for n in &d.notes {
        cam.say_once(log, n.clone());
    }
    let f = d.frame(scene);
    if !missing.is_empty() {
        let c = f.controls();
        let present: Vec<&str> = [(c.seg, "seg"), (c.depth, "depth"), (c.edge, "edge"), (c.vis, "vis")]
            .into_iter()
            .filter(|(p, _)| *p)
            .map(|(_, n)| n)
            .collect();
        cam.say_once(
            log,
            format!(
                "camera '{}': no {} arrived with the image; restyling with the controls present ({})",
                cam.name,
                missing.join(", "),
                present.join(", ")
            ),
        );
    }
    if scene.scenario.is_none() && f.segmentation.is_some() {
        cam.say_once(log, "no /scenario yet: segmentation classes have no names, every class gets the generic material".into());
    }
    if f.camera_to_world.is_none() {
        cam.say_once(
            log,
            format!("camera '{}': TF does not place frame '{}' in a world; textures and lights follow the camera", cam.name, d.frame_id),
        );
    }
    let t0 = Instant::now();
    let r = match backend.restyle(&f, &s.look, &s.weights, s.seed) {
        Ok(r) => r,
        Err(e) => {
            cam.say_once(log, format!("camera '{}': {e}", cam.name));
            return;
        }
    };
    let sc = score::score(&d.rgb, &r.rgb, f.segmentation, f.depth, r.extinction, d.width, d.height);
    let ms = t0.elapsed().as_secs_f32() * 1e3;
    cam.out_image.publish_or_log(s2r_image::rgb8_msg(header.clone(), d.width, d.height, r.rgb));
    if let Some(info) = info {
        cam.out_info.publish_or_log(info, log);
    }
    cam.out_score.publish_or_log(
        TransferScore {
            header,
            boundary_recall: sc.boundary_recall,
            boundary_pixels: sc.boundary_pixels,
            threshold: s.threshold,
            flagged: sc.boundary_recall < s.threshold,
            prompt: s.prompt.clone(),
            seed: s.seed,
            backend: backend.name(),
            controls: Weights::NAMES.iter().map(|n| n.to_string()).collect(),
            weights: r.weights.as_array().to_vec(),
            processing_ms: ms,
        },
        log,
    );
    cam.frames += 1;
}
