//! The watchdog's decision, apart from DDS: what it has heard and when, and
//! from that, whether the robot must be held and why.
//!
//! Everything is a function of arrival instants (the node's monotonic clock,
//! not message stamps: a robot whose clock jumps must not fool it) and the
//! set of nodes discovery sees, so it is tested without a network.

use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, Instant};

/// What the watchdog watches for.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// A camera frame, a state or a controller command older than this holds the robot.
    pub stale: Duration,
    /// Perception's confidence below this holds the robot; 0 (or less) does
    /// not watch perception at all.
    pub min_confidence: f32,
    /// How many confidence readings in a row must be low before it counts
    /// (one dark frame is not a collapse).
    pub confidence_frames: u32,
    /// Perception's confidence older than this holds the robot (perception
    /// runs slower than the camera; a zero duration takes `stale`).
    pub confidence_stale: Duration,
    /// Fully qualified names of the nodes that must be running (`/policy_node`).
    pub required: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            stale: Duration::from_millis(300),
            min_confidence: 0.0,
            confidence_frames: 3,
            confidence_stale: Duration::from_millis(1000),
            required: Vec::new(),
        }
    }
}

/// One thing that holds the robot.
#[derive(Clone, Debug, PartialEq)]
pub enum Reason {
    /// `e_stop` said true and has not said false since.
    EStop,
    /// No camera frame for this long (None: never one).
    StaleCamera(Option<Duration>),
    /// No odometry / joint state for this long (None: never one).
    StaleState(Option<Duration>),
    /// No command from the controller for this long (None: never one).
    StaleCommand(Option<Duration>),
    /// No confidence reading from perception for this long (None: never one).
    StaleConfidence(Option<Duration>),
    /// Perception's confidence, low this many readings in a row; the last one.
    LowConfidence(f32),
    /// A required node that discovery has not seen yet.
    NodeMissing(String),
    /// A required node that was running and is no longer in the graph.
    NodeGone(String),
}

impl Reason {
    /// The short name published in `SafetyEvent.reasons`.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::EStop => "e_stop",
            Reason::StaleCamera(_) => "stale_camera",
            Reason::StaleState(_) => "stale_state",
            Reason::StaleCommand(_) => "stale_command",
            Reason::StaleConfidence(_) => "stale_confidence",
            Reason::LowConfidence(_) => "low_confidence",
            Reason::NodeMissing(_) => "node_missing",
            Reason::NodeGone(_) => "node_gone",
        }
    }

    /// Two reasons of the same kind about the same thing are one
    /// intervention, however old the input has become meanwhile.
    fn same(&self, other: &Reason) -> bool {
        match (self, other) {
            (Reason::NodeMissing(a), Reason::NodeMissing(b)) | (Reason::NodeGone(a), Reason::NodeGone(b)) => a == b,
            (a, b) => a.code() == b.code(),
        }
    }
}

fn age(d: &Option<Duration>) -> String {
    match d {
        Some(d) => format!("for {} ms", d.as_millis()),
        None => "yet".to_string(),
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::EStop => write!(f, "emergency stop (e_stop true)"),
            Reason::StaleCamera(d) => write!(f, "no camera frame {}", age(d)),
            Reason::StaleState(d) => write!(f, "no robot state {}", age(d)),
            Reason::StaleCommand(d) => write!(f, "no command from the controller {}", age(d)),
            Reason::StaleConfidence(d) => write!(f, "no confidence from perception {}", age(d)),
            Reason::LowConfidence(c) => write!(f, "perception's confidence collapsed ({c:.2})"),
            Reason::NodeMissing(n) => write!(f, "required node {n} not running yet"),
            Reason::NodeGone(n) => write!(f, "required node {n} left the graph"),
        }
    }
}

/// What the watchdog knows: when each input last arrived, the emergency
/// stop, perception's confidence and the required nodes seen so far.
#[derive(Clone, Debug)]
pub struct Watch {
    config: Config,
    camera: Option<Instant>,
    state: Option<Instant>,
    command: Option<Instant>,
    confidence: Option<Instant>,
    low_run: u32,
    last_confidence: f32,
    e_stop: bool,
    seen: BTreeSet<String>,
}

impl Watch {
    /// Nothing heard yet: everything the robot needs is stale, so it is held.
    pub fn new(config: Config) -> Watch {
        Watch {
            config,
            camera: None,
            state: None,
            command: None,
            confidence: None,
            low_run: 0,
            last_confidence: f32::NAN,
            e_stop: false,
            seen: BTreeSet::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A camera frame arrived at `t`.
    pub fn camera(&mut self, t: Instant) {
        self.camera = Some(t);
    }

    /// An odometry message or joint state arrived at `t`.
    pub fn state(&mut self, t: Instant) {
        self.state = Some(t);
    }

    /// A controller command arrived at `t`.
    pub fn command(&mut self, t: Instant) {
        self.command = Some(t);
    }

    /// Perception's confidence `value` (0–1) arrived at `t`; a NaN counts as low.
    pub fn confidence(&mut self, t: Instant, value: f32) {
        self.confidence = Some(t);
        self.last_confidence = value;
        if value >= self.config.min_confidence {
            self.low_run = 0;
        } else {
            self.low_run = self.low_run.saturating_add(1);
        }
    }

    /// The emergency stop's newest value (latched: it holds until `false`).
    pub fn e_stop(&mut self, on: bool) {
        self.e_stop = on;
    }

    /// Whether the emergency stop is on.
    pub fn e_stopped(&self) -> bool {
        self.e_stop
    }

    /// Everything that holds the robot at `now`, given the nodes discovery
    /// sees (fully qualified names); empty: the controller's commands pass.
    pub fn reasons(&mut self, now: Instant, nodes: &BTreeSet<String>) -> Vec<Reason> {
        let c = &self.config;
        let stale = |t: Option<Instant>, limit: Duration| match t {
            None => Some(None),
            Some(t) => {
                let d = now.saturating_duration_since(t);
                (d > limit).then_some(Some(d))
            }
        };
        let mut out = Vec::new();
        if self.e_stop {
            out.push(Reason::EStop);
        }
        if let Some(d) = stale(self.camera, c.stale) {
            out.push(Reason::StaleCamera(d));
        }
        if let Some(d) = stale(self.state, c.stale) {
            out.push(Reason::StaleState(d));
        }
        if let Some(d) = stale(self.command, c.stale) {
            out.push(Reason::StaleCommand(d));
        }
        if c.min_confidence > 0.0 {
            let limit = if c.confidence_stale.is_zero() { c.stale } else { c.confidence_stale };
            if let Some(d) = stale(self.confidence, limit) {
                out.push(Reason::StaleConfidence(d));
            } else if self.low_run >= c.confidence_frames.max(1) {
                out.push(Reason::LowConfidence(self.last_confidence));
            }
        }
        for n in &c.required {
            if nodes.contains(n) {
                self.seen.insert(n.clone());
            } else if self.seen.contains(n) {
                out.push(Reason::NodeGone(n.clone()));
            } else {
                out.push(Reason::NodeMissing(n.clone()));
            }
        }
        out
    }
}

/// Whether two sets of reasons are the same intervention (same kinds, same
/// nodes), so that an event is published only when what holds the robot changes.
pub fn same_reasons(a: &[Reason], b: &[Reason]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
}

/// The reasons as one sentence for the log and the event's `detail`.
pub fn describe(reasons: &[Reason]) -> String {
    reasons.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn codes(r: &[Reason]) -> Vec<&'static str> {
        r.iter().map(|r| r.code()).collect()
    }

    fn live(w: &mut Watch, t: Instant) {
        w.camera(t);
        w.state(t);
        w.command(t);
    }

    #[test]
    fn nothing_heard_holds_the_robot_and_fresh_inputs_release_it() {
        let t0 = Instant::now();
        let mut w = Watch::new(Config::default());
        let none = BTreeSet::new();
        assert_eq!(codes(&w.reasons(t0, &none)), ["stale_camera", "stale_state", "stale_command"]);
        live(&mut w, t0);
        assert!(w.reasons(t0 + ms(300), &none).is_empty(), "300 ms old is still fresh");
        let r = w.reasons(t0 + ms(301), &none);
        assert_eq!(codes(&r), ["stale_camera", "stale_state", "stale_command"]);
        assert_eq!(r[0], Reason::StaleCamera(Some(ms(301))));
        // Only the camera stops.
        w.state(t0 + ms(400));
        w.command(t0 + ms(400));
        assert_eq!(codes(&w.reasons(t0 + ms(450), &none)), ["stale_camera"]);
    }

    #[test]
    fn the_emergency_stop_is_latched_until_released() {
        let t0 = Instant::now();
        let mut w = Watch::new(Config::default());
        let none = BTreeSet::new();
        live(&mut w, t0);
        w.e_stop(true);
        assert_eq!(codes(&w.reasons(t0, &none)), ["e_stop"]);
        // Fresh inputs do not release it.
        live(&mut w, t0 + ms(100));
        assert_eq!(codes(&w.reasons(t0 + ms(100), &none)), ["e_stop"]);
        w.e_stop(false);
        assert!(w.reasons(t0 + ms(100), &none).is_empty());
    }

    #[test]
    fn confidence_must_stay_low_for_some_readings_and_must_keep_coming() {
        let t0 = Instant::now();
        let cfg = Config { min_confidence: 0.5, confidence_frames: 3, confidence_stale: ms(1000), ..Config::default() };
        let mut w = Watch::new(cfg);
        let none = BTreeSet::new();
        live(&mut w, t0);
        assert_eq!(codes(&w.reasons(t0, &none)), ["stale_confidence"], "perception not heard yet");
        w.confidence(t0, 0.9);
        assert!(w.reasons(t0, &none).is_empty());
        w.confidence(t0, 0.1);
        w.confidence(t0, 0.2);
        assert!(w.reasons(t0, &none).is_empty(), "two low readings are not a collapse");
        w.confidence(t0, f32::NAN);
        assert_eq!(codes(&w.reasons(t0, &none)), ["low_confidence"]);
        w.confidence(t0, 0.7);
        assert!(w.reasons(t0, &none).is_empty(), "one good reading ends it");
        live(&mut w, t0 + ms(1100));
        assert_eq!(w.reasons(t0 + ms(1100), &none), [Reason::StaleConfidence(Some(ms(1100)))]);
    }

    #[test]
    fn a_confidence_of_zero_watches_no_perception() {
        let t0 = Instant::now();
        let mut w = Watch::new(Config::default());
        live(&mut w, t0);
        w.confidence(t0, 0.0);
        assert!(w.reasons(t0, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn required_nodes_missing_then_gone() {
        let t0 = Instant::now();
        let cfg = Config { required: vec!["/policy_node".into(), "/perception_node".into()], ..Config::default() };
        let mut w = Watch::new(cfg);
        live(&mut w, t0);
        let mut nodes: BTreeSet<String> = ["/policy_node".to_string(), "/other".to_string()].into();
        assert_eq!(w.reasons(t0, &nodes), [Reason::NodeMissing("/perception_node".into())]);
        nodes.insert("/perception_node".into());
        assert!(w.reasons(t0, &nodes).is_empty());
        nodes.remove("/policy_node");
        assert_eq!(w.reasons(t0, &nodes), [Reason::NodeGone("/policy_node".into())]);
        nodes.insert("/policy_node".into());
        assert!(w.reasons(t0, &nodes).is_empty(), "a restarted node is welcome back");
    }

    #[test]
    fn reasons_of_the_same_kinds_are_one_intervention() {
        let a = [Reason::StaleCamera(Some(ms(301))), Reason::NodeGone("/a".into())];
        let b = [Reason::StaleCamera(Some(ms(900))), Reason::NodeGone("/a".into())];
        let c = [Reason::StaleCamera(Some(ms(900))), Reason::NodeGone("/b".into())];
        assert!(same_reasons(&a, &b));
        assert!(!same_reasons(&a, &c));
        assert!(!same_reasons(&a, &a[..1]));
        assert_eq!(describe(&a), "no camera frame for 301 ms; required node /a left the graph");
        assert_eq!(Reason::StaleState(None).to_string(), "no robot state yet");
    }
}
