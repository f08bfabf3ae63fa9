//! The `reason_node` executable: the robot's camera and odometry in, a
//! reasoning chain (`sim2real_msgs/Reasoning`) out at a fixed rate.
//!
//! It subscribes `<camera>/image_raw` (parameter `camera`, default `front`;
//! any colour encoding and resolution, or `/compressed`: parameter
//! `transport`) and `odom`, and publishes `reasoning` (reliable) at `rate`
//! Hz (10): the road's surface as the surface predictor reads it from the
//! newest frame (or as parameter `surface` fixes it: `dry`, `wet`, `snow`,
//! `ice`), the distance the car needs to stop from its speed, whether that
//! stops short of the end of what it can see (`sight`, metres: 60 by default,
//! a car's low beams), and the speed limit that follows, as the constraints
//! `max_speed` and `stop_distance`. Where the model has a hazard predictor
//! (`s2r train reason --hazard-seeds`), the free distance is also bounded by
//! what it reads in the path, and a parked car that may hide someone limits
//! the speed to one that stops before its far end. With no camera frame or no odometry for
//! `stale_ms` (300) it cannot judge the road and publishes the conservative
//! side: a `max_speed` of 0.
//!
//! Parameters: `model` (from `s2r train reason`; empty: the shipped
//! `models/reason/reason.json`), `reaction` (seconds until a command reaches
//! the brakes, 0.1: a 10 Hz control loop).
//!
//! With `robot` `arm` it reasons about the cups on a table instead
//! ([`crate::tabletop`]): it subscribes perception_node's detections
//! (`detections`, default `perception/<camera>/detections`; class `class`,
//! `cup`, at least `min_score`, 0.15), the camera's `camera_info`, its depth
//! image (`depth`, default `<camera>/depth`; empty: none, cups are placed on
//! the table's plane) and `/tf` + `/tf_static` (the camera's optical frame in
//! `table_frame`, `map`, whose origin is the table's middle), merges the cups
//! over looks and publishes at `rate` the chain of the cup most at risk: its
//! distance from the edge, the side whose sweep drops it, the side to approach
//! from, with the constraints `approach_side` and `keep_out`. The table is
//! the robot cell's: `table_size` (length, width; 1.2 × 0.8 m), `table_top`
//! (0.75 m), `arm_base` (x, y: −0.45, 0) and `arm_reach` (how far its fingers
//! reach low over the table: 0.86 m), cup_near_edge's by default. With no
//! detections for `stale_ms` (1000 for an arm) it publishes a stop (`max_speed` 0).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use s2r_image::transport::ImageSubscription;
use s2r_runtime::component::{Component, NodeFuture};
use s2r_runtime::tf::TfBuffer;
use s2r_runtime::{info, warn, Context, Node, Qos, RosArgs};
use sim2real_msgs::nav_msgs::msg::Odometry;
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image};
use sim2real_msgs::sim2real_msgs::msg::{Constraint, Reasoning, ReasoningStep};
use sim2real_msgs::std_msgs::msg::Header;
use sim2real_msgs::tf2_msgs::msg::TFMessage;
use sim2real_msgs::vision_msgs::msg::Detection2DArray;

use crate::chain::{self, Braking};
use crate::hazard::{self, HazardNet};
use crate::model::ReasonModel;
use crate::surface::{self, SurfaceNet, CLASSES, CLASS_MU};
use crate::ReasonError;

/// The node as a component (`reason_node`, `s2r run`, `s2r launch --compose`).
pub const REASON_NODE: Component = Component {
    exec: "reason_node",
    about: "reasons before the robot acts: a car's road surface from the camera, the distance to stop, the speed limit that follows; an arm's cups on the table and the side to approach them from (sim2real_msgs/Reasoning)",
    main: reason_node,
    graceful: false,
};

/// The shipped model, when the package has one.
pub fn shipped_model() -> Option<PathBuf> {
    s2r_runtime::share::find_shared("models/reason", "reason.json")
}

/// The predictors of a model file, ready to reason.
pub struct Reasoner {
    /// The model's record and stopping predictor.
    pub model: ReasonModel,
    path: PathBuf,
    surface: Option<SurfaceNet>,
    hazard: Option<HazardNet>,
    cup: Option<crate::cup::CupNet>,
    device: candle_core::Device,
}

/// What the predictors read from one camera frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    /// The surface class and its probability, from the surface predictor
    /// (or as fixed), or from the hazard predictor where that reads a
    /// slipperier road: the lower friction is the conservative side.
    pub surface: (usize, f32),
    /// The hazard predictor's reading, when the model has one.
    pub hazards: Option<hazard::Reading>,
}

impl Reasoner {
    /// Loads a model file and its predictors' weights, where it has them, for the CPU.
    pub fn load(path: &Path) -> Result<Reasoner, ReasonError> {
        Reasoner::load_on(path, &candle_core::Device::Cpu)
    }

    /// The device its networks run on.
    pub fn device(&self) -> &candle_core::Device {
        &self.device
    }

    /// Loads a model file and its predictors' weights onto `device`.
    pub fn load_on(path: &Path, device: &candle_core::Device) -> Result<Reasoner, ReasonError> {
        let model = ReasonModel::load(path)?;
        let surface = match model.surface_weights(path) {
            Some(w) => Some(surface::load_on(&w, device)?),
            None => None,
        };
        let hazard = match model.hazard_weights(path) {
            Some(w) => Some(hazard::load_on(&w, device)?),
            None => None,
        };
        let cup = match model.cup_weights(path) {
            Some(w) => Some(crate::cup::load_on(&w, device)?),
            None => None,
        };
        Ok(Reasoner { model, path: path.into(), surface, hazard, cup, device: device.clone() })
    }

    /// The chain for a cup on a table (None when the model has no cup
    /// outcome predictor): what a sweep from each side would do to it and
    /// the side to approach from ([`crate::chain::cup`]).
    pub fn reason_cup(&self, header: Header, scene: &chain::CupScene) -> Result<Option<(Reasoning, crate::cup::Assessment)>, ReasonError> {
        let Some(net) = &self.cup else { return Ok(None) };
        let a = crate::cup::assess(net, &scene.table, &scene.cup.0)?;
        Ok(Some((chain::cup(&a, scene, header), a)))
    }

    /// Whether it can read the road's surface from a camera (else it must be fixed).
    pub fn reads_surface(&self) -> bool {
        self.surface.is_some() || self.hazard.is_some()
    }

    /// The surface class and its probability for a camera frame.
    pub fn surface_of(&self, img: &Image, topic: &str) -> Result<(usize, f32), ReasonError> {
        let Some(net) = &self.surface else {
            return Err(self.no_surface());
        };
        let x = surface::input(img, topic)?;
        Ok(net.classify(&[x.as_slice()], net.device())?[0])
    }

    /// An error naming the command that trains a cup outcome predictor, where
    /// the model has none (an arm's reasoning needs one).
    pub fn require_cups(&self) -> Result<(), ReasonError> {
        match self.cup {
            Some(_) => Ok(()),
            None => Err(ReasonError::BadModel {
                path: self.path.clone(),
                problem: "it has no cup outcome predictor, which an arm's reasoning needs: train one with `s2r train reason --cup-seeds 1200..13199`".into(),
            }),
        }
    }

    fn no_surface(&self) -> ReasonError {
        ReasonError::BadModel {
            path: self.path.clone(),
            problem: "it has no surface predictor: train one with `s2r train reason --surface DATASET`, or fix the surface with the parameter `surface`".into(),
        }
    }

    /// Everything the predictors read from a frame; `fixed` fixes the surface
    /// class. A hazard predictor that reads motion sees none here (the frame
    /// is its own frame before): [`Reasoner::read_in`] gives it the one before.
    pub fn read(&self, img: &Image, topic: &str, fixed: Option<usize>) -> Result<Reading, ReasonError> {
        self.read_after(img, topic, fixed, None)
    }

    /// Whether its hazard predictor reads motion (the frame before too: [`Reasoner::read_in`]).
    pub fn reads_motion(&self) -> bool {
        self.hazard.as_ref().is_some_and(|h| h.motion)
    }

    /// [`Reasoner::read`] of a camera's frame seen at `t` (seconds), the
    /// camera's recent frames in `history` (a motion network compares the
    /// frame with the one [`hazard::GAP`] before); the frame joins them.
    pub fn read_in(
        &self,
        img: &Image,
        topic: &str,
        fixed: Option<usize>,
        t: f64,
        history: &mut hazard::FrameHistory,
    ) -> Result<Reading, ReasonError> {
        if !self.reads_motion() {
            return self.read(img, topic, fixed);
        }
        let now = hazard::input(img, topic)?;
        let reading = self.read_after(img, topic, fixed, Some((&now, history.before(t))));
        history.push(t, now);
        reading
    }

    fn read_after(
        &self,
        img: &Image,
        topic: &str,
        fixed: Option<usize>,
        input: Option<(&[u8], Option<&[u8]>)>,
    ) -> Result<Reading, ReasonError> {
        let hazards = match &self.hazard {
            Some(net) => {
                let own;
                let (now, before) = match input {
                    Some(i) => i,
                    None => {
                        own = hazard::input(img, topic)?;
                        (own.as_slice(), None)
                    }
                };
                Some(net.read(&[hazard::Input { now, before }], net.device())?[0])
            }
            None => None,
        };
        let surface = match (fixed, &self.surface, hazards) {
            (Some(k), _, _) => (k, 1.0),
            (None, Some(_), h) => {
                let s = self.surface_of(img, topic)?;
                // Two readers of the road: keep the slipperier (classes run dry → ice).
                h.map(|h| h.surface).filter(|h| h.0 > s.0).unwrap_or(s)
            }
            (None, None, Some(h)) => h.surface,
            (None, None, None) => return Err(self.no_surface()),
        };
        Ok(Reading { surface, hazards })
    }

    /// The chain for a frame's header, what was read from it, the car's
    /// speed, its reaction time and how far it sees.
    pub fn reason(&self, header: Header, reading: &Reading, speed: f32, reaction: f32, sight: f32) -> Reasoning {
        let mut free = (sight, "the end of what the camera sees".to_string());
        let mut occlusion = None;
        if let Some(h) = reading.hazards {
            if let Some(d) = h.obstacle.filter(|d| *d < sight) {
                free = (d, "something in the path".into());
            }
            occlusion = h.occlusion;
        }
        let b = Braking { speed, mu: (CLASS_MU[reading.surface.0], reading.surface.1), reaction, free, occlusion };
        chain::braking(&self.model.stopping, &b, header)
    }
}

/// The conservative chain when an input is missing: it cannot judge the road, so stop.
pub fn blind(header: Header, what: &str) -> Reasoning {
    blind_to(header, what, "the road ahead")
}

/// The conservative chain when an input is missing: `scene` cannot be judged, so stop.
fn blind_to(header: Header, what: &str, scene: &str) -> Reasoning {
    Reasoning {
        header,
        situation: format!("blind: {what}"),
        steps: vec![ReasoningStep {
            text: format!("{what}: {scene} cannot be judged; stop"),
            quantity: "max_speed".into(),
            value: 0.0,
            unit: "m/s".into(),
            confidence: 1.0,
        }],
        constraints: vec![Constraint { name: "max_speed".into(), value: 0.0, unit: "m/s".into(), confidence: 1.0, ..Default::default() }],
    }
}

fn reason_node(ctx: Context, args: RosArgs) -> NodeFuture {
    Box::pin(async move {
        let node = Node::new(&ctx, "reason_node", &args)?;
        let log = node.logger().clone();
        let shipped = shipped_model().map(|p| p.display().to_string()).unwrap_or_default();
        let mut path: String = node.declare_parameter("model", String::new())?;
        if path.is_empty() {
            path = shipped;
        }
        let camera: String = node.declare_parameter("camera", "front".to_string())?;
        let rate: f64 = node.declare_parameter("rate", 10.0)?;
        let sight: f64 = node.declare_parameter("sight", 60.0)?;
        let reaction: f64 = node.declare_parameter("reaction", 0.1)?;
        let fixed: String = node.declare_parameter("surface", String::new())?;
        let robot: String = node.declare_parameter("robot", "vehicle".to_string())?;
        // An arm's detections come at perception's pace, which a 2-core machine keeps below the camera's.
        let stale_ms: i64 = node.declare_parameter("stale_ms", if robot == "arm" { 1000 } else { 300 })?;
        let transport = s2r_image::transport::declare_input(&node)?;
        if !(rate > 0.0 && rate <= 1000.0) {
            return Err(format!("parameter 'rate' must be in (0, 1000] Hz, got {rate}").into());
        }
        if !(sight > 0.0 && reaction >= 0.0) || stale_ms < 1 {
            return Err("parameters 'sight' must be positive, 'reaction' not negative, 'stale_ms' at least 1".into());
        }
        let fixed = match fixed.as_str() {
            "" => None,
            s => Some(
                CLASSES
                    .iter()
                    .position(|c| *c == s)
                    .ok_or_else(|| format!("parameter 'surface': '{s}' is none of {} (or empty: from the camera)", CLASSES.join(", ")))?,
            ),
        };
        if path.is_empty() {
            return Err("parameter 'model' is empty and no shipped model was found (models/reason/reason.json); train one: `s2r train reason -o reason.json`".into());
        }
        let device: String = node.declare_parameter("device", "cpu".to_string())?;
        let device = s2r_train::device(&device).map_err(|e| format!("parameter 'device': {e}"))?;
        let mut reasoner = Reasoner::load_on(Path::new(&path), &device).map_err(|e| format!("parameter 'model': {e}"))?;
        match robot.as_str() {
            "vehicle" => {}
            "arm" => return arm(node, reasoner, &path, &camera, rate, stale_ms).await,
            other => return Err(format!("parameter 'robot': '{other}' is neither vehicle nor arm").into()),
        }
        if fixed.is_none() && !reasoner.reads_surface() {
            return Err(format!("parameter 'model': {path} has no surface predictor; train one with `s2r train reason --surface DATASET` or set the parameter 'surface'").into());
        }
        let mut image = ImageSubscription::new(&node, &format!("{camera}/image_raw"), transport, Qos::sensor_data().depth(5))?;
        let odom = node.create_subscription::<Odometry>("odom", Qos::sensor_data().depth(10))?;
        let out = node.create_publisher::<Reasoning>("reasoning", Qos::reliable().depth(10))?;
        info!(
            log,
            "{path}: {} + {} -> {} at {rate} Hz, surface {}",
            image.topic(),
            node.resolve_topic("odom").unwrap_or_default(),
            node.resolve_topic("reasoning").unwrap_or_default(),
            fixed.map_or("from the camera".to_string(), |k| format!("fixed: {}", CLASSES[k]))
        );
        let stale = Duration::from_millis(stale_ms as u64);
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut shutdown = std::pin::pin!(s2r_runtime::shutdown::signal());
        let (mut last_frame, mut last_odom): (Option<Instant>, Option<Instant>) = (None, None);
        let mut speed = 0f32;
        let mut seen: Option<(Header, Reading)> = None;
        let mut history = hazard::FrameHistory::default();
        let (mut refused, mut was_blind) = (0u64, true);
        // A new model: the parameter changed (trainer_node's reason models set it) or the file was replaced.
        let mut watch = s2r_train::CheckpointWatch::new(&path);
        let updates = s2r_train::ModelUpdates::new(&node, "reason", "model")?;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = &mut shutdown => break,
            }
            let fits = |r: &Reasoner| match fixed.is_none() && !r.reads_surface() {
                true => Err("it has no surface predictor".to_string()),
                false => Ok(()),
            };
            if let Some(r) = reloaded(&node, &mut watch, &updates, &device, fits) {
                reasoner = r;
            }
            while let Some(o) = odom.try_recv() {
                speed = o.twist.twist.linear.x as f32;
                last_odom = Some(Instant::now());
            }
            let mut newest = None;
            while let Some(f) = image.try_recv() {
                newest = Some(f.image);
            }
            if let Some(img) = newest {
                let topic = image.topic();
                let t = s2r_runtime::stamp_ns(&img.header.stamp) as f64 * 1e-9;
                let judged = tokio::task::block_in_place(|| reasoner.read_in(&img, &topic, fixed, t, &mut history));
                match judged {
                    Ok(s) => {
                        seen = Some((img.header.clone(), s));
                        last_frame = Some(Instant::now());
                    }
                    Err(e) => {
                        refused += 1;
                        if s2r_runtime::log::worth_logging(refused) {
                            warn!(log, "{e}; frame refused ({refused} refused so far)");
                        }
                    }
                }
            }
            let fresh = |t: Option<Instant>| t.is_some_and(|t| t.elapsed() <= stale);
            let missing = if !fresh(last_frame) {
                Some(format!("no camera frame for {stale_ms} ms"))
            } else if !fresh(last_odom) {
                Some(format!("no odometry for {stale_ms} ms"))
            } else {
                None
            };
            let msg = match (&missing, &seen) {
                (None, Some((header, reading))) => {
                    if was_blind {
                        info!(log, "reasoning: camera and odometry are live");
                        was_blind = false;
                    }
                    reasoner.reason(header.clone(), reading, speed, reaction as f32, sight as f32)
                }
                (m, _) => {
                    let what = m.clone().unwrap_or_else(|| "no camera frame yet".into());
                    if !was_blind {
                        warn!(log, "{what}: publishing a stop constraint");
                        was_blind = true;
                    }
                    let header = Header { stamp: node.now().to_msg(), frame_id: "base_link".into() };
                    blind(header, &what)
                }
            };
            if let Err(e) = out.publish(msg) {
                warn!(log, "reasoning: {e}");
            }
        }
        Ok(())
    })
}

/// What reason_node needs to place a detection box on the table.
struct ArmInputs {
    tf: TfBuffer,
    info: Option<CameraInfo>,
    depth: Option<(Vec<f32>, (usize, usize))>,
}

impl ArmInputs {
    /// The sightings ((x, y) on the table, confidence) of `class` at `min_score` in `d`.
    fn sightings(
        &self,
        d: &Detection2DArray,
        class: &str,
        min_score: f64,
        table_frame: &str,
        table_top: f32,
    ) -> Result<Vec<([f32; 2], f32)>, String> {
        let cups: Vec<_> = d
            .detections
            .iter()
            .filter_map(|det| {
                let h = det.results.iter().find(|r| r.hypothesis.class_id == class && r.hypothesis.score >= min_score)?;
                let (c, (w, ht)) = (&det.bbox.center.position, (det.bbox.size_x, det.bbox.size_y));
                Some((
                    [(c.x - w / 2.0) as f32, (c.y - ht / 2.0) as f32, (c.x + w / 2.0) as f32, (c.y + ht / 2.0) as f32],
                    h.hypothesis.score as f32,
                ))
            })
            .collect();
        if cups.is_empty() {
            return Ok(Vec::new());
        }
        let info = self.info.as_ref().ok_or("no camera_info yet: the boxes cannot be placed")?;
        let frame = d.header.frame_id.trim_start_matches('/');
        let pose = self
            .tf
            .lookup(table_frame, frame, s2r_runtime::stamp_ns(&d.header.stamp))
            .ok_or_else(|| format!("no transform from the detections' frame '{frame}' to '{table_frame}' (/tf, /tf_static)"))?;
        let size = (info.width as usize, info.height as usize);
        let k = &info.k;
        let camera = crate::tabletop::Camera {
            fx: k[0] as f32,
            fy: k[4] as f32,
            cx: k[2] as f32,
            cy: k[5] as f32,
            size,
            optical_in_table: pose.cast::<f32>(),
            // A depth image of the camera's size (another size is not the same pixels).
            depth: self.depth.as_ref().filter(|(_, s)| *s == size).map(|(d, _)| d.as_slice()),
        };
        Ok(cups.into_iter().filter_map(|(b, score)| crate::tabletop::place(&camera, &b, table_top).map(|at| (at, score))).collect())
    }
}

/// The model to run from now on, if any: the parameter `model` changed
/// (trainer_node's reason models set it, through `updates`) or its file was
/// replaced, and the new one loads and `fits` the running node; else `None`,
/// the reason logged and the running model kept.
fn reloaded(
    node: &Node,
    watch: &mut s2r_train::CheckpointWatch,
    updates: &s2r_train::ModelUpdates,
    device: &candle_core::Device,
    fits: impl Fn(&Reasoner) -> Result<(), String>,
) -> Option<Reasoner> {
    updates.poll(node);
    let wanted = node.parameter::<String>("model").filter(|p| !p.is_empty()).unwrap_or_else(|| watch.current().to_string());
    let path = watch.due(&wanted)?;
    let log = node.logger();
    match Reasoner::load_on(Path::new(&path), device).map_err(|e| e.to_string()).and_then(|r| fits(&r).map(|()| r)) {
        Ok(r) => {
            info!(log, "loaded model {path}");
            Some(r)
        }
        Err(e) => {
            warn!(log, "model {path} not loaded, keeping the running one: {e}");
            None
        }
    }
}

/// reason_node for an arm: perception's cup detections, the camera's
/// calibration, depth and pose in, the chain of the cup most at risk out.
async fn arm(
    node: Node,
    mut reasoner: Reasoner,
    path: &str,
    camera: &str,
    rate: f64,
    stale_ms: i64,
) -> Result<(), s2r_runtime::component::BoxError> {
    let device = reasoner.device().clone();
    let log = node.logger().clone();
    reasoner.require_cups().map_err(|e| format!("parameter 'model': {e}"))?;
    let detections: String = node.declare_parameter("detections", format!("perception/{camera}/detections"))?;
    let depth_topic: String = node.declare_parameter("depth", format!("{camera}/depth"))?;
    let class: String = node.declare_parameter("class", "cup".to_string())?;
    let min_score: f64 = node.declare_parameter("min_score", 0.15)?;
    let table_frame: String = node.declare_parameter("table_frame", "map".to_string())?;
    let table_size: Vec<f64> = node.declare_parameter("table_size", vec![1.2, 0.8])?;
    let table_top: f64 = node.declare_parameter("table_top", 0.75)?;
    let arm_base: Vec<f64> = node.declare_parameter("arm_base", vec![-0.45, 0.0])?;
    let arm_reach: f64 = node.declare_parameter("arm_reach", 0.86)?;
    if table_size.len() != 2 || !table_size.iter().all(|v| v.is_finite() && *v > 0.0) {
        return Err(format!("parameter 'table_size': [length, width] in metres, both positive; got {table_size:?}").into());
    }
    let reach_ok = arm_reach.is_finite() && arm_reach > 0.0;
    if arm_base.len() != 2 || arm_base.iter().any(|v| !v.is_finite()) || !reach_ok || !table_top.is_finite() {
        return Err(format!("parameters 'arm_base' ([x, y] in metres: {arm_base:?}), 'arm_reach' (positive metres: {arm_reach}) and 'table_top' ({table_top}) are not a robot cell").into());
    }
    let table = crate::cup::Table {
        half: [table_size[0] as f32 / 2.0, table_size[1] as f32 / 2.0],
        arm: [arm_base[0] as f32, arm_base[1] as f32],
        reach: arm_reach as f32,
    };
    // Best effort: matches a camera driver's sensor-data publishers and reliable ones alike.
    let dets = node.create_subscription::<Detection2DArray>(&detections, Qos::sensor_data().depth(10))?;
    let info_sub = node.create_subscription::<CameraInfo>(&format!("{camera}/camera_info"), Qos::sensor_data().depth(5))?;
    let depth_sub = match depth_topic.as_str() {
        "" => None,
        t => Some(node.create_subscription::<Image>(t, Qos::sensor_data().depth(2))?),
    };
    let tf = node.create_subscription::<TFMessage>("/tf", Qos::reliable().depth(100))?;
    let tf_static = node.create_subscription::<TFMessage>("/tf_static", Qos::transient_local().depth(100))?;
    let out = node.create_publisher::<Reasoning>("reasoning", Qos::reliable().depth(10))?;
    info!(
        log,
        "{path}: {} ({class}) + {} -> {} at {rate} Hz, a {:.2} × {:.2} m table in '{table_frame}'",
        node.resolve_topic(&detections).unwrap_or_default(),
        if depth_topic.is_empty() { "no depth".to_string() } else { node.resolve_topic(&depth_topic).unwrap_or_default() },
        node.resolve_topic("reasoning").unwrap_or_default(),
        table_size[0],
        table_size[1]
    );
    let stale = Duration::from_millis(stale_ms as u64);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut shutdown = std::pin::pin!(s2r_runtime::shutdown::signal());
    let mut inputs = ArmInputs { tf: TfBuffer::default(), info: None, depth: None };
    let mut cups = crate::tabletop::Tabletop::default();
    // The chain of the newest look and when it came: republished at the rate until it goes stale.
    let mut live: Option<(Instant, Reasoning)> = None;
    let (mut refused, mut was_blind) = (0u64, true);
    // A new model: the parameter changed (trainer_node's reason models set it) or the file was replaced.
    let mut watch = s2r_train::CheckpointWatch::new(path);
    let updates = s2r_train::ModelUpdates::new(&node, "reason", "model")?;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut shutdown => break,
        }
        if let Some(r) = reloaded(&node, &mut watch, &updates, &device, |r| r.require_cups().map_err(|e| e.to_string())) {
            reasoner = r;
        }
        while let Some(m) = tf_static.try_recv() {
            inputs.tf.insert(&m, true);
        }
        while let Some(m) = tf.try_recv() {
            inputs.tf.insert(&m, false);
        }
        while let Some(i) = info_sub.try_recv() {
            inputs.info = Some((*i).clone());
        }
        let mut newest_depth = None;
        while let Some(d) = depth_sub.as_ref().and_then(|s| s.try_recv()) {
            newest_depth = Some(d);
        }
        if let Some(d) = newest_depth {
            match s2r_image::depth_m(&d, &depth_topic) {
                Ok(z) => inputs.depth = Some((z, (d.width as usize, d.height as usize))),
                Err(e) => {
                    refused += 1;
                    if s2r_runtime::log::worth_logging(refused) {
                        warn!(log, "{e}; depth image refused ({refused} inputs refused so far)");
                    }
                }
            }
        }
        let mut newest = None;
        while let Some(d) = dets.try_recv() {
            newest = Some(d);
        }
        if let Some(d) = newest {
            match inputs.sightings(&d, &class, min_score, &table_frame, table_top as f32) {
                Ok(seen) => {
                    // Sightings at the arm's own parts would need its kinematics: every cup on the table counts.
                    cups.merge(&seen, &table, |_| true);
                    let header = Header { stamp: d.header.stamp.clone(), frame_id: table_frame.clone() };
                    let chain = tokio::task::block_in_place(|| cups.reason(&reasoner, &table, table_top as f32, header.clone()))?;
                    let chain = chain.unwrap_or_else(|| Reasoning {
                        header,
                        situation: "no cup on the table".into(),
                        steps: vec![ReasoningStep {
                            text: "no cup is seen on the table".into(),
                            quantity: "cups".into(),
                            value: 0.0,
                            unit: String::new(),
                            confidence: 1.0,
                        }],
                        constraints: vec![],
                    });
                    live = Some((Instant::now(), chain));
                }
                Err(e) => {
                    refused += 1;
                    if s2r_runtime::log::worth_logging(refused) {
                        warn!(
                            log,
                            "{}: {e}; detections refused ({refused} inputs refused so far)",
                            node.resolve_topic(&detections).unwrap_or_default()
                        );
                    }
                }
            }
        }
        let msg = match live.as_ref().filter(|(t, _)| t.elapsed() <= stale) {
            Some((_, chain)) => {
                if was_blind {
                    info!(log, "reasoning: detections are live");
                    was_blind = false;
                }
                chain.clone()
            }
            None => {
                let what = if live.is_some() { format!("no detections for {stale_ms} ms") } else { "no detections yet".to_string() };
                if !was_blind {
                    warn!(log, "{what}: publishing a stop constraint");
                    was_blind = true;
                }
                blind_to(Header { stamp: node.now().to_msg(), frame_id: table_frame.clone() }, &what, "the table")
            }
        };
        if let Err(e) = out.publish(msg) {
            warn!(log, "reasoning: {e}");
        }
    }
    Ok(())
}
