//! The `perception_node` executable: a robot's camera in, detections,
//! metric depth and segmentation out.
//!
//! For each camera in `cameras` (comma-separated; default `front`) it
//! subscribes `<camera>/image_raw` (relative, so remapping and the node's
//! namespace apply; rgb8, bgr8, rgba8, bgra8 or mono8 at any resolution; or
//! its `/compressed` sibling: parameter `transport`) with sensor-data QoS,
//! and `<camera>/camera_info` (its K[0] makes the depth metric for that
//! camera; without it the canonical camera's field of view is assumed). It
//! publishes under `output` (default `perception`):
//! - `<output>/<camera>/detections` (vision_msgs/Detection2DArray: the
//!   class name in `class_id`, the confidence in `score`, boxes in the
//!   image's pixels, the image's header);
//! - `<output>/<camera>/depth` (32FC1, metres), `<output>/<camera>/segmentation`
//!   (mono8 class ids) and `<output>/<camera>/label_info` (vision_msgs/LabelInfo,
//!   transient local: what the ids mean);
//! - `<output>/<camera>/overlay` (rgb8: the frame with boxes and labels drawn);
//! - `<output>/<camera>/confidence` (std_msgs/Float32, one per frame: how
//!   sure the network is of the scene, [`crate::predict::Prediction::confidence`];
//!   safety_node holds the robot when it collapses).
//!
//! Behind a camera it takes the newest frame and counts the ones it drops.
//! Parameters: `checkpoint` (a file from `s2r train perception`; default the
//! shipped `models/perception/perception.safetensors`, also when empty), `threshold` (0.3),
//! `max_detections` (100), `depth`, `segmentation`, `overlay` (publish those
//! outputs; true), `device` (`cpu`, `cuda:N`). A new checkpoint is loaded
//! without a restart when the `checkpoint` parameter changes or the file is
//! replaced (as `s2r train perception` does at every evaluation).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use s2r_image::image_msg;
use s2r_image::transport::{ImageSubscription, Transport};
use s2r_runtime::component::{Component, NodeFuture};
use s2r_runtime::{info, warn, Context, Logger, Node, Publisher, Qos, RosArgs, Subscription};
use sim2real_msgs::geometry_msgs::msg::PoseWithCovariance;
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image};
use sim2real_msgs::std_msgs::msg::{Float32, Header};
use sim2real_msgs::vision_msgs::msg::{
    BoundingBox2D, Detection2D, Detection2DArray, LabelInfo, ObjectHypothesis, ObjectHypothesisWithPose, Point2D, Pose2D, VisionClass,
};

use crate::checkpoint;
use crate::overlay::{draw_detections, Canvas};
use crate::predict::{FrameRef, Prediction, Predictor};
use crate::PerceptionError;

/// The node as a component (`perception_node`, `s2r run`, `s2r launch --compose`).
pub const PERCEPTION_NODE: Component = Component {
    exec: "perception_node",
    about: "detects objects and estimates metric depth and segmentation in camera frames with a network trained on synthetic data",
    main: perception_node,
    graceful: false,
};

/// The shipped checkpoint, found in the package's share folder.
pub fn shipped_checkpoint() -> Option<PathBuf> {
    s2r_runtime::share::find_shared("models/perception", "perception.safetensors")
}

/// A loaded checkpoint and where it came from.
struct Model {
    predictor: Predictor,
    path: PathBuf,
}

fn load(path: &Path, device: &candle_core::Device, threshold: f32, max: usize) -> Result<Model, PerceptionError> {
    let ck = checkpoint::read(path)?;
    let net = ck.net(device)?;
    Ok(Model {
        predictor: Predictor { net, device: device.clone(), threshold, max_detections: max, mirror: false },
        path: path.to_path_buf(),
    })
}

struct Camera {
    name: String,
    image: ImageSubscription,
    info: Subscription<CameraInfo>,
    fx: Option<f32>,
    detections: Publisher<Detection2DArray>,
    depth: Publisher<Image>,
    segmentation: Publisher<Image>,
    overlay: Publisher<Image>,
    confidence: Publisher<Float32>,
    labels: Publisher<LabelInfo>,
    frames: u64,
    dropped: u64,
    refused: u64,
}

/// Which outputs to publish.
#[derive(Clone, Copy)]
struct Outputs {
    depth: bool,
    segmentation: bool,
    overlay: bool,
}

impl Camera {
    fn new(node: &Node, name: &str, out: &str, transport: Transport) -> Result<Camera, Box<dyn std::error::Error + Send + Sync>> {
        let o = |k: &str| format!("{out}/{name}/{k}");
        Ok(Camera {
            name: name.to_string(),
            image: ImageSubscription::new(node, &format!("{name}/image_raw"), transport, Qos::sensor_data().depth(10))?,
            info: node.create_subscription(&format!("{name}/camera_info"), Qos::sensor_data().depth(2))?,
            fx: None,
            detections: node.create_publisher(&o("detections"), Qos::reliable().depth(10))?,
            depth: node.create_publisher(&o("depth"), Qos::sensor_data().depth(2))?,
            segmentation: node.create_publisher(&o("segmentation"), Qos::sensor_data().depth(2))?,
            overlay: node.create_publisher(&o("overlay"), Qos::sensor_data().depth(2))?,
            confidence: node.create_publisher(&o("confidence"), Qos::sensor_data().depth(10))?,
            labels: node.create_publisher(&o("label_info"), Qos::transient_local())?,
            frames: 0,
            dropped: 0,
            refused: 0,
        })
    }

    /// The newest waiting frame; older ones are counted as dropped.
    fn newest(&mut self) -> Option<Arc<Image>> {
        while let Some(i) = self.info.try_recv() {
            if i.k[0] > 0.0 {
                self.fx = Some(i.k[0] as f32);
            }
        }
        let mut last = None;
        while let Some(f) = self.image.try_recv() {
            if last.is_some() {
                self.dropped += 1;
            }
            last = Some(f.image);
        }
        last
    }

    fn publish_labels(&self, m: &Model, log: &Logger) {
        let cfg = &m.predictor.net.cfg;
        let class_map =
            cfg.seg_classes.iter().enumerate().map(|(i, n)| VisionClass { class_id: i as u16, class_name: n.clone() }).collect();
        let msg = LabelInfo { header: Header::default(), class_map, threshold: m.predictor.threshold };
        if let Err(e) = self.labels.publish(msg) {
            warn!(log, "{}: label_info: {e}", self.name);
        }
    }
}

/// The Detection2DArray of a prediction, with the image's header.
pub fn detections_msg(header: &Header, pred: &Prediction, classes: &[String]) -> Detection2DArray {
    let detections = pred
        .detections
        .iter()
        .map(|d| Detection2D {
            header: header.clone(),
            results: vec![ObjectHypothesisWithPose {
                hypothesis: ObjectHypothesis { class_id: classes[d.class].clone(), score: d.score as f64 },
                pose: PoseWithCovariance::default(),
            }],
            bbox: BoundingBox2D {
                center: Pose2D {
                    position: Point2D { x: ((d.bbox[0] + d.bbox[2]) / 2.0) as f64, y: ((d.bbox[1] + d.bbox[3]) / 2.0) as f64 },
                    theta: 0.0,
                },
                size_x: (d.bbox[2] - d.bbox[0]) as f64,
                size_y: (d.bbox[3] - d.bbox[1]) as f64,
            },
            id: String::new(),
        })
        .collect();
    Detection2DArray { header: header.clone(), detections }
}

fn perception_node(ctx: Context, args: RosArgs) -> NodeFuture {
    Box::pin(async move {
        s2r_runtime::tune_allocator();
        let node = Node::new(&ctx, "perception_node", &args)?;
        let log = node.logger().clone();
        // Empty (the default, and what launch files pass when not told) is the shipped checkpoint.
        let shipped = shipped_checkpoint().map(|p| p.display().to_string()).unwrap_or_default();
        let or_shipped = |p: String| if p.is_empty() { shipped.clone() } else { p };
        let ck_param = or_shipped(node.declare_parameter("checkpoint", String::new())?);
        let cameras: String = node.declare_parameter("cameras", "front".to_string())?;
        let output: String = node.declare_parameter("output", "perception".to_string())?;
        let threshold: f64 = node.declare_parameter("threshold", 0.3)?;
        let max: i64 = node.declare_parameter("max_detections", 100)?;
        let outputs = Outputs {
            depth: node.declare_parameter("depth", true)?,
            segmentation: node.declare_parameter("segmentation", true)?,
            overlay: node.declare_parameter("overlay", true)?,
        };
        let device: String = node.declare_parameter("device", "cpu".to_string())?;
        let transport = s2r_image::transport::declare_input(&node)?;
        if !(0.0..=1.0).contains(&threshold) {
            return Err(format!("parameter 'threshold' must be in [0, 1], got {threshold}").into());
        }
        if max < 1 {
            return Err(format!("parameter 'max_detections' must be at least 1, got {max}").into());
        }
        if ck_param.is_empty() {
            return Err("parameter 'checkpoint' is empty and no shipped checkpoint was found (models/perception/perception.safetensors); \
                        train one with `s2r train perception DATASET… -o perception.safetensors`"
                .into());
        }
        let device = crate::device(&device).map_err(|e| format!("parameter 'device': {e}"))?;
        let mut model =
            load(Path::new(&ck_param), &device, threshold as f32, max as usize).map_err(|e| format!("parameter 'checkpoint': {e}"))?;
        let mut watch = s2r_train::CheckpointWatch::new(&ck_param);
        // trainer_node's new perception models (trainer/models) set the checkpoint parameter.
        let updates = s2r_train::ModelUpdates::new(&node, "perception", "checkpoint")?;
        let names: Vec<String> = cameras.split(',').map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect();
        if names.is_empty() {
            return Err("parameter 'cameras' names no camera".into());
        }
        let mut cams = Vec::new();
        for n in &names {
            let c = Camera::new(&node, n, &output, transport)?;
            c.publish_labels(&model, &log);
            cams.push(c);
        }
        let cfg = &model.predictor.net.cfg;
        info!(
            log,
            "{} ({}x{} input, classes: {}): {} -> {}/",
            model.path.display(),
            cfg.width,
            cfg.height,
            cfg.det_classes.join(", "),
            cams.iter().map(|c| c.image.topic()).collect::<Vec<_>>().join(", "),
            node.resolve_topic(&output).unwrap_or_default()
        );
        let mut shutdown = std::pin::pin!(s2r_runtime::shutdown::signal());
        let mut report = Instant::now();
        loop {
            updates.poll(&node);
            let wanted = node.parameter::<String>("checkpoint").map(or_shipped).unwrap_or_else(|| watch.current().to_string());
            if let Some(path) = watch.due(&wanted) {
                match load(Path::new(&path), &device, threshold as f32, max as usize) {
                    Ok(m) => {
                        info!(log, "loaded checkpoint {}", m.path.display());
                        model = m;
                        for c in &cams {
                            c.publish_labels(&model, &log);
                        }
                    }
                    Err(e) => warn!(log, "checkpoint not reloaded, keeping {}: {e}", model.path.display()),
                }
            }
            let mut busy = false;
            for cam in cams.iter_mut() {
                let Some(img) = cam.newest() else { continue };
                busy = true;
                tokio::task::block_in_place(|| step(cam, &img, &model, outputs, &log));
            }
            if report.elapsed() > Duration::from_secs(10) && cams.iter().any(|c| c.frames > 0) {
                report = Instant::now();
                let parts: Vec<String> = cams
                    .iter()
                    .map(|c| format!("{}: {} frames, {} dropped behind, {} refused", c.name, c.frames, c.dropped, c.refused))
                    .collect();
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

/// One frame of one camera: predict and publish.
fn step(cam: &mut Camera, img: &Image, model: &Model, outputs: Outputs, log: &Logger) {
    let topic = cam.image.topic();
    let rgb = match s2r_image::rgb8(img, &topic) {
        Ok(rgb) => rgb,
        Err(e) => {
            cam.refused += 1;
            if s2r_runtime::log::worth_logging(cam.refused) {
                warn!(log, "{e}; frame refused ({} refused on this topic so far)", cam.refused);
            }
            return;
        }
    };
    let (w, h) = (img.width as usize, img.height as usize);
    let dense = outputs.depth || outputs.segmentation;
    let frame = FrameRef { rgb: &rgb, w, h, fx: cam.fx };
    let mut pred = match model.predictor.predict(&[frame], dense) {
        Ok(mut p) => p.remove(0),
        Err(e) => {
            warn!(log, "{}: {e}", cam.name);
            return;
        }
    };
    cam.frames += 1;
    let cfg = &model.predictor.net.cfg;
    let header = &img.header;
    let publish = |r: Result<(), s2r_runtime::PublishError>, what: &str| {
        if let Err(e) = r {
            warn!(log, "{}: {what}: {e}", cam.name);
        }
    };
    publish(cam.detections.publish(detections_msg(header, &pred, &cfg.det_classes)), "detections");
    publish(cam.confidence.publish(Float32 { data: pred.confidence }), "confidence");
    if outputs.depth {
        let data: Vec<u8> = pred.depth.iter().flat_map(|d| d.to_le_bytes()).collect();
        publish(cam.depth.publish(image_msg(header.clone(), w, h, "32FC1", 4, data)), "depth");
    }
    if outputs.segmentation {
        publish(cam.segmentation.publish(image_msg(header.clone(), w, h, "mono8", 1, std::mem::take(&mut pred.seg))), "segmentation");
    }
    if outputs.overlay {
        let mut canvas_rgb = rgb;
        let boxes: Vec<_> = pred.detections.iter().map(|d| (d.class, cfg.det_classes[d.class].as_str(), Some(d.score), d.bbox)).collect();
        draw_detections(&mut Canvas { rgb: &mut canvas_rgb, w, h }, &boxes);
        publish(cam.overlay.publish(s2r_image::rgb8_msg(header.clone(), w, h, canvas_rgb)), "overlay");
    }
}
