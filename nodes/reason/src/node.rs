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

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use s2r_image::transport::ImageSubscription;
use s2r_runtime::component::{Component, NodeFuture};
use s2r_runtime::{info, warn, Context, Node, Qos, RosArgs};
use sim2real_msgs::nav_msgs::msg::Odometry;
use sim2real_msgs::sensor_msgs::msg::Image;
use sim2real_msgs::sim2real_msgs::msg::{Constraint, Reasoning, ReasoningStep};
use sim2real_msgs::std_msgs::msg::Header;

use crate::chain::{self, Braking};
use crate::hazard::{self, HazardNet};
use crate::model::ReasonModel;
use crate::surface::{self, SurfaceNet, CLASSES, CLASS_MU};
use crate::ReasonError;

/// The node as a component (`reason_node`, `s2r run`, `s2r launch --compose`).
pub const REASON_NODE: Component = Component {
    exec: "reason_node",
    about: "reasons about the road before the car acts: its surface from the camera, the distance to stop, the speed limit that follows (sim2real_msgs/Reasoning)",
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
    /// Loads a model file and its predictors' weights, where it has them.
    pub fn load(path: &Path) -> Result<Reasoner, ReasonError> {
        let model = ReasonModel::load(path)?;
        let surface = match model.surface_weights(path) {
            Some(w) => Some(surface::load(&w)?),
            None => None,
        };
        let hazard = match model.hazard_weights(path) {
            Some(w) => Some(hazard::load(&w)?),
            None => None,
        };
        let cup = match model.cup_weights(path) {
            Some(w) => Some(crate::cup::load(&w)?),
            None => None,
        };
        Ok(Reasoner { model, path: path.into(), surface, hazard, cup })
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
        Ok(net.classify(&[x.as_slice()], &candle_core::Device::Cpu)?[0])
    }

    fn no_surface(&self) -> ReasonError {
        ReasonError::BadModel {
            path: self.path.clone(),
            problem: "it has no surface predictor: train one with `s2r train reason --surface DATASET`, or fix the surface with the parameter `surface`".into(),
        }
    }

    /// Everything the predictors read from a frame; `fixed` fixes the surface class.
    pub fn read(&self, img: &Image, topic: &str, fixed: Option<usize>) -> Result<Reading, ReasonError> {
        let hazards = match &self.hazard {
            Some(net) => Some(net.read(&[hazard::input(img, topic)?.as_slice()], &candle_core::Device::Cpu)?[0]),
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
    Reasoning {
        header,
        situation: format!("blind: {what}"),
        steps: vec![ReasoningStep {
            text: format!("{what}: the road ahead cannot be judged; stop"),
            quantity: "max_speed".into(),
            value: 0.0,
            unit: "m/s".into(),
            confidence: 1.0,
        }],
        constraints: vec![Constraint { name: "max_speed".into(), value: 0.0, unit: "m/s".into(), confidence: 1.0, region: vec![] }],
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
        let stale_ms: i64 = node.declare_parameter("stale_ms", 300)?;
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
        let reasoner = Reasoner::load(Path::new(&path)).map_err(|e| format!("parameter 'model': {e}"))?;
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
        let (mut refused, mut was_blind) = (0u64, true);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = &mut shutdown => break,
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
                let judged = tokio::task::block_in_place(|| reasoner.read(&img, &topic, fixed));
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
