//! Reasoning in the loop: [`Reasoned`] puts reason_node's judgement (a
//! [`Reasoner`] reading the driver's own camera and odometry at 10 Hz)
//! between any driver and the car, as the safety filter
//! ([`sim2real_msgs::safety`]) a robot runs; [`HazardFrames`] records the
//! frames a driver sees with the expert's ground truth of what bounds the
//! free road (`s2r_sim::expert::hazards`): the hazard predictor's training data.

use s2r_reason::hazard;
use s2r_reason::node::{blind, Reasoner};
use s2r_sim::expert::{self, DrivingView};
use s2r_sim::sim::{Sim, Tick};
use sim2real_msgs::safety::filter_twist;
use sim2real_msgs::sim2real_msgs::msg::Reasoning;
use sim2real_msgs::std_msgs::msg::Header;

use crate::driver::{twist, Command, Driver};
use crate::ClosedLoopError;

/// The camera the reasoner reads.
pub const CAMERA: &str = "front";
/// The width it wants that camera rendered at (320×240 from 640×480).
pub const WIDTH: u32 = 320;
/// Seconds between reasoning steps (reason_node's 10 Hz).
const PERIOD: f64 = 0.1;
/// Seconds between an arm's looks at the table (cups stand still until touched).
const ARM_PERIOD: f64 = 0.5;

/// The render scale for a camera of `width`×`height` that gives at least
/// [`WIDTH`] pixels across, or what `inner` needs where that is more.
fn scale_for(inner: &dyn Driver, width: u32, height: u32) -> f64 {
    let own = (WIDTH as f64 / width.max(1) as f64).min(1.0);
    inner.image_scale(width, height).map_or(own, |s| s.max(own))
}

/// What the safety filter did in one episode.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct FilterLog {
    /// Reasoning steps taken (an arm's: looks at the table).
    pub steps: u64,
    /// A car's: the steps whose constraints changed the driver's command; an
    /// arm's: the joint commands the filter held or turned into others.
    pub changed: u64,
    /// The lowest speed limit set, m/s.
    pub lowest_limit: Option<f32>,
    /// The chain of the first step that changed a command, as text.
    pub first_change: Option<String>,
}

impl FilterLog {
    /// Counts a command the filter changed at sim time `seconds`, keeping
    /// the first such change's chain (`chain`, where there is one) as text.
    fn changed_by(&mut self, seconds: f64, chain: Option<&Reasoning>) {
        self.changed += 1;
        if let (None, Some(chain)) = (&self.first_change, chain) {
            let steps: Vec<&str> = chain.steps.iter().map(|s| s.text.as_str()).collect();
            self.first_change = Some(format!("{seconds:.1} s, {}: {}", chain.situation, steps.join("; ")));
        }
    }
}

/// A driver whose commands pass through the safety filter of a reasoning
/// chain written from the driver's camera and odometry. A driver that
/// commands nothing (the scripted car holding its cruise speed) is taken to
/// command that speed straight ahead. On an arm the chain is about the cups
/// ([`crate::cups`]) and the filter keeps the fingers out of the side a push
/// would drop a cup from; a driver that commands nothing (the scripted
/// sweep) is taken to command its trajectory's targets.
pub struct Reasoned {
    inner: Box<dyn Driver>,
    reasoner: Reasoner,
    name: String,
    reaction: f32,
    sight: f32,
    speed: f32,
    last_step: Option<f64>,
    chain: Option<Reasoning>,
    held: Option<Command>,
    log: FilterLog,
    locator: Option<crate::cups::CupLocator>,
    arm: crate::cups::ArmReasoning,
    /// The camera's recent frames, for a hazard predictor that reads motion.
    history: hazard::FrameHistory,
}

impl Reasoned {
    /// `inner` filtered by `reasoner`'s chains; `sight` (m) and `reaction` (s) as reason_node's parameters.
    pub fn new(inner: Box<dyn Driver>, reasoner: Reasoner, sight: f32, reaction: f32) -> Reasoned {
        let name = format!("{}+reason", inner.name());
        Reasoned {
            inner,
            reasoner,
            name,
            reaction,
            sight,
            speed: 0.0,
            last_step: None,
            chain: None,
            held: None,
            log: FilterLog::default(),
            history: Default::default(),
            locator: None,
            arm: Default::default(),
        }
    }

    /// Where an arm scenario's cups are found: a perception checkpoint that
    /// detects cups in the camera [`CAMERA`] (without one, the arm's commands
    /// pass unfiltered).
    pub fn with_cup_locator(mut self, locator: crate::cups::CupLocator) -> Reasoned {
        self.locator = Some(locator);
        self
    }

    /// An arm's step: a look at the table through the camera when one is
    /// due (the cups, and a chain for the one most at risk), then the
    /// driver's joint targets (or the scenario's scripted ones) through the
    /// keep-out filter.
    fn act_arm(&mut self, sim: &Sim, tick: &Tick, command: Option<Command>) -> Result<Option<Command>, ClosedLoopError> {
        let Some(locator) = &self.locator else { return Ok(command) };
        let Some(view) = s2r_sim::arm_expert::ArmView::of(sim) else { return Ok(command) };
        let now = sim.seconds();
        let due = self.last_step.is_none_or(|t| now - t >= ARM_PERIOD - 1e-6);
        // A cup in the gripper is not one on the table: no looks while it holds one.
        let holding = tick.grasped.as_ref().is_some_and(|g| g.data);
        if let (true, false, Some(frame)) = (due, holding, tick.cameras.iter().find(|c| c.name == CAMERA)) {
            let pose = crate::cups::optical_in_map(sim, CAMERA).ok_or_else(|| ClosedLoopError::Driver {
                driver: self.name.clone(),
                message: format!("{} has no camera '{CAMERA}'", sim.scenario.name),
            })?;
            let sightings = locator.locate(frame, &pose, view.table_top)?;
            let header = Header { stamp: tick.time.clone(), frame_id: "map".into() };
            if let Some(chain) = self.arm.look(&self.reasoner, &sightings, &view, header)? {
                self.chain = Some(chain);
            }
            self.last_step = Some(now);
            self.log.steps += 1;
        }
        if command.is_some() {
            self.held = command;
        }
        // What the driver asks for: its last command, or the scripted trajectory's targets now.
        let (asked, gripper) = match &self.held {
            Some(Command::Joints(j)) => match s2r_sim::sim::joint_targets(j, &view.q) {
                Ok(t) => (t.q, t.gripper.map(|g| g as f32)),
                // A command the simulator refuses goes on as it is, to be refused there by name.
                Err(_) => return Ok(self.held.clone()),
            },
            Some(other) => return Ok(Some(other.clone())),
            None => match &sim.world.arm {
                Some(arm) => {
                    let initial = arm.initial.map(|x| x as f32);
                    (s2r_sim::physics::trajectory_at(arm, &initial, now as f32), None)
                }
                None => return Ok(None),
            },
        };
        let (q, changed) = crate::cups::ArmReasoning::filter(&view, asked, self.chain.as_ref());
        if changed {
            self.log.changed_by(now, self.chain.as_ref());
        }
        Ok(Some(Command::Joints(crate::driver::joint_command(&q, gripper.unwrap_or(view.opening)))))
    }

    /// The last episode's log (so far, during one).
    pub fn log(&self) -> &FilterLog {
        &self.log
    }

    /// The chain of the last reasoning step.
    pub fn chain(&self) -> Option<&Reasoning> {
        self.chain.as_ref()
    }

    /// Reasons on this tick's frame when a step is due; true when it wrote a new chain.
    fn step(&mut self, sim: &Sim, tick: &Tick) -> Result<bool, ClosedLoopError> {
        let now = sim.seconds();
        if self.last_step.is_some_and(|t| now - t < PERIOD - 1e-6) {
            return Ok(false);
        }
        let Some(frame) = tick.cameras.iter().find(|c| c.name == CAMERA) else {
            return Ok(false);
        };
        let topic = format!("/sim/{CAMERA}/image_raw");
        let reading = self
            .reasoner
            .read_in(&frame.image, &topic, None, now, &mut self.history)
            .map_err(|e| ClosedLoopError::Driver { driver: self.name.clone(), message: e.to_string() })?;
        let chain = self.reasoner.reason(frame.image.header.clone(), &reading, self.speed, self.reaction, self.sight);
        self.last_step = Some(now);
        self.log.steps += 1;
        if let Some(limit) = sim2real_msgs::safety::max_speed(&chain) {
            let limit = limit as f32;
            self.log.lowest_limit = Some(self.log.lowest_limit.map_or(limit, |l| l.min(limit)));
        }
        self.chain = Some(chain);
        Ok(true)
    }
}

impl Driver for Reasoned {
    fn name(&self) -> &str {
        &self.name
    }

    fn needs_cameras(&self) -> bool {
        true
    }

    fn image_scale(&self, camera_width: u32, camera_height: u32) -> Option<f64> {
        Some(scale_for(self.inner.as_ref(), camera_width, camera_height))
    }

    fn reset(&mut self, sim: &Sim) {
        self.inner.reset(sim);
        self.speed = 0.0;
        self.last_step = None;
        self.chain = None;
        self.held = None;
        self.log = FilterLog::default();
        self.arm = Default::default();
        self.history.clear();
    }

    fn act(&mut self, sim: &Sim, tick: &Tick) -> Result<Option<Command>, ClosedLoopError> {
        let command = self.inner.act(sim, tick)?;
        if sim.world.arm.is_some() {
            return self.act_arm(sim, tick, command);
        }
        if let Some(o) = &tick.odom {
            self.speed = o.twist.twist.linear.x as f32;
        }
        let fresh_chain = self.step(sim, tick)?;
        let new_command = command.is_some();
        if new_command {
            self.held = command;
        }
        if !fresh_chain && !new_command {
            return Ok(None); // the car keeps the last filtered command
        }
        // What the driver asks for now: its last command, or its cruise speed straight ahead.
        let cruise = sim.world.vehicle.as_ref().map_or(0.0, |v| v.speed);
        let asked = match &self.held {
            Some(Command::Velocity(t)) => (t.linear.x, t.angular.z),
            Some(other) => return Ok(Some(other.clone())),
            None => (cruise, 0.0),
        };
        let no_chain;
        let chain = match &self.chain {
            Some(c) => c,
            None => {
                no_chain = blind(Header { stamp: tick.time.clone(), frame_id: "base_link".into() }, "no camera frame yet");
                &no_chain
            }
        };
        let f = filter_twist(asked.0, asked.1, chain);
        if f.changed && fresh_chain {
            self.log.changed_by(sim.seconds(), Some(chain));
        }
        Ok(Some(Command::Velocity(twist(f.linear, f.angular))))
    }

    fn label(&self) -> Option<Command> {
        self.inner.label()
    }

    fn filter_log(&self) -> Option<FilterLog> {
        Some(self.log.clone())
    }
}

/// Which of the expert's distances the hazard predictor learns as "something in the path".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HazardLabels {
    /// The expert's own bound ([`expert::Hazards::obstacle`]): who is in the path or will
    /// step into it within its horizon at their present velocity, a lead car's stopping
    /// distance added. What the shipped predictor learned.
    Free,
    /// Only who is inside the path now, the bare gap ([`expert::Hazards::in_path`]): what one
    /// frame shows.
    InPath,
}

/// Speed (m/s) below which [`HazardFrames`] counts the car as standing still.
const STILL: f32 = 0.3;

/// A driver that records, every `every`-th camera frame (one a second while the car stands still), what the hazard
/// predictor learns from: the frame as it reads it and the driving expert's
/// ground truth of the hazards ahead and the friction under the tyres.
pub struct HazardFrames {
    inner: Box<dyn Driver>,
    labels: HazardLabels,
    every: usize,
    seen: usize,
    seed: u64,
    /// Sim time of the last frame recorded while standing still (None while moving).
    last_still: Option<f32>,
    /// Whether each frame is recorded with the one [`hazard::GAP`] before it (a motion network's).
    motion: bool,
    history: hazard::FrameHistory,
    /// The frames recorded so far.
    pub samples: Vec<hazard::Sample>,
}

impl HazardFrames {
    /// Records what `inner` sees, labelled by `labels`.
    pub fn new(inner: Box<dyn Driver>, every: usize, labels: HazardLabels) -> HazardFrames {
        HazardFrames {
            inner,
            labels,
            every: every.max(1),
            seen: 0,
            seed: 0,
            last_still: None,
            motion: false,
            history: Default::default(),
            samples: Vec::new(),
        }
    }

    /// Records each frame with the one [`hazard::GAP`] seconds before it (the first frames of
    /// an episode with themselves), for a hazard predictor that reads motion.
    pub fn with_motion(mut self) -> HazardFrames {
        self.motion = true;
        self
    }
}

impl Driver for HazardFrames {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn needs_cameras(&self) -> bool {
        true
    }

    fn image_scale(&self, camera_width: u32, camera_height: u32) -> Option<f64> {
        Some(scale_for(self.inner.as_ref(), camera_width, camera_height))
    }

    fn reset(&mut self, sim: &Sim) {
        self.inner.reset(sim);
        self.seed = sim.world.seed;
        self.seen = 0;
        self.last_still = None;
        self.history.clear();
    }

    fn act(&mut self, sim: &Sim, tick: &Tick) -> Result<Option<Command>, ClosedLoopError> {
        if let (Some(frame), Some(view)) = (tick.cameras.iter().find(|c| c.name == CAMERA), DrivingView::of(sim)) {
            self.seen += 1;
            // Standing still, the frames barely change: one a second (a filter
            // that stops the car for nothing would otherwise fill the set with one view).
            let still = view.speed.abs() < STILL;
            let due = !still || self.last_still.is_none_or(|t| view.time - t >= 1.0);
            let record = due && (self.seen - 1).is_multiple_of(self.every);
            let input = || {
                hazard::input(&frame.image, CAMERA)
                    .map_err(|e| ClosedLoopError::Driver { driver: "hazard frames".into(), message: e.to_string() })
            };
            // A motion network's frames need every frame's band, recorded or not.
            let seen_now = if self.motion { Some(input()?) } else { None };
            if record {
                self.last_still = if still { Some(view.time) } else { None };
                let h = expert::hazards(&view);
                let within = |d: Option<(f32, u16)>| d.map(|(d, _)| d).filter(|d| *d < hazard::RANGE);
                let image = match &seen_now {
                    Some(i) => i.clone(),
                    None => input()?,
                };
                let before = self.motion.then(|| self.history.before(view.time as f64).unwrap_or(&image).to_vec());
                self.samples.push(hazard::Sample {
                    image,
                    before,
                    obstacle: within(match self.labels {
                        HazardLabels::Free => h.obstacle,
                        HazardLabels::InPath => h.in_path,
                    }),
                    occlusion: within(h.occlusion),
                    mu: view.mu,
                    seed: self.seed,
                });
            }
            if let Some(i) = seen_now {
                self.history.push(view.time as f64, i);
            }
        }
        self.inner.act(sim, tick)
    }
}
