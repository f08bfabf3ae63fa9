//! One episode: the simulator in lockstep, every camera frame restyled by the
//! transfer stage in the same process, everything the sweep keeps written to
//! one rosbag2 bag with the simulation's time as log time — deterministic, so
//! the same episode gives the same bytes on any machine.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

use s2r_bag::{BagError, BagWriter, TopicSpec, WriterOptions};
use s2r_idl::Message;
use s2r_sim::autopilot::{Autopilot, RobotCommand};
use s2r_sim::scenario::Scenario;
use s2r_sim::sim::{Sim, SimOptions};
use s2r_transfer::builtin::gpu::{DeviceFrame, GpuBuiltin};
use s2r_transfer::builtin::{Builtin, Device, Preset};
use s2r_transfer::input::{CameraMsgs, Scene, Topics};
use s2r_transfer::restyle::Restyler;
use s2r_transfer::Backend;
use sim2real_msgs::geometry_msgs::msg::Twist;
use sim2real_msgs::nav_msgs::msg::Odometry;
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image, Imu, JointState};
use sim2real_msgs::sim2real_msgs::msg::{ScenarioInfo, TransferScore};
use sim2real_msgs::std_msgs::msg::Bool;
use sim2real_msgs::tf2_msgs::msg::TFMessage;
use sim2real_msgs::vision_msgs::msg::{Detection2DArray, Detection3DArray};

use crate::sweep::{Episode, Output, Sweep, SweepDriver};
use crate::GenerateError;

/// What an episode produced, and where its time went (wall clock; the
/// bytes do not depend on it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EpisodeStats {
    /// Camera frames (one per camera per instant).
    pub frames: u64,
    /// Frames the transfer stage flagged (boundary recall under its threshold).
    pub flagged: u64,
    /// Simulating and rendering.
    pub sim: Duration,
    /// Restyling and scoring.
    pub transfer: Duration,
    /// Serialising the messages for the bag (its writer thread compresses and writes them).
    pub write: Duration,
}

/// What the episode loop hands the bag's writer thread, in order.
enum ToWriter {
    Topic(TopicSpec),
    Message(usize, u64, Vec<u8>),
}

/// An episode's bag, written on a thread of its own (chunk compression off the
/// simulation's and the transfer's critical path); topics are added in the
/// order they first appear, so the bytes do not depend on the run.
struct EpisodeBag {
    tx: Option<SyncSender<ToWriter>>,
    names: Vec<String>,
    thread: Option<JoinHandle<Result<(), BagError>>>,
}

impl EpisodeBag {
    fn create(dir: &Path) -> Result<EpisodeBag, BagError> {
        let mut writer = BagWriter::create(dir, WriterOptions { compression: s2r_bag::Compression::Zstd, ..Default::default() })?;
        let (tx, rx) = sync_channel::<ToWriter>(64);
        let thread = std::thread::spawn(move || {
            let mut ids = Vec::new();
            for m in rx {
                match m {
                    ToWriter::Topic(spec) => ids.push(writer.add_topic(spec)?),
                    ToWriter::Message(i, t, data) => writer.write(ids[i], t, t, &data)?,
                }
            }
            writer.finish().map(|_| ())
        });
        Ok(EpisodeBag { tx: Some(tx), names: Vec::new(), thread: Some(thread) })
    }

    /// The writer's own error once it stopped taking messages.
    fn failed(&mut self) -> BagError {
        self.tx = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            _ => BagError::Usage("the bag writer stopped".into()),
        }
    }

    fn write<M: Message>(&mut self, name: &str, t: u64, msg: &M) -> Result<(), BagError> {
        let i = match self.names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.names.push(name.to_string());
                self.send(ToWriter::Topic(TopicSpec::of::<M>(name, Vec::new())))?;
                self.names.len() - 1
            }
        };
        let data = s2r_idl::dynamic::serialize(msg).map_err(|e| BagError::Usage(format!("serializing {}: {e}", M::TYPE_NAME)))?;
        self.send(ToWriter::Message(i, t, data))
    }

    fn send(&mut self, m: ToWriter) -> Result<(), BagError> {
        match self.tx.as_ref().map(|tx| tx.send(m)) {
            Some(Ok(())) => Ok(()),
            _ => Err(self.failed()),
        }
    }

    /// Waits for everything to be written and the bag finished.
    fn finish(mut self) -> Result<(), BagError> {
        self.tx = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => Err(BagError::Usage("the bag writer panicked".into())),
        }
    }
}

/// An episode given up (interrupted, or failed) still waits for its writer
/// thread: the caller removes the partial bag next, and a writer still
/// finishing its file in that folder would race the removal and leave it
/// half-deleted.
impl Drop for EpisodeBag {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The scenario of an episode with the sweep's cameras and randomisation.
pub(crate) fn scenario_of(ep: &Episode, sweep: &Sweep) -> Result<Scenario, GenerateError> {
    let mut scenario = Scenario::load(&ep.scenario_file)?;
    if !sweep.cameras.is_empty() {
        let have: Vec<String> = scenario.sensors.cameras.iter().map(|c| c.name.clone()).collect();
        if let Some(missing) = sweep.cameras.iter().find(|c| !have.contains(c)) {
            return Err(GenerateError::Camera { scenario: ep.scenario.clone(), camera: missing.clone(), have });
        }
        scenario.sensors.cameras.retain(|c| sweep.cameras.contains(&c.name));
    }
    let r = &sweep.randomize;
    let d = &mut scenario.randomize;
    d.poses = r.poses.unwrap_or(d.poses);
    d.sizes = r.sizes.unwrap_or(d.sizes);
    d.colors = r.colors.unwrap_or(d.colors);
    d.light = r.light.unwrap_or(d.light);
    d.friction = r.friction.unwrap_or(d.friction);
    d.timing = r.timing.unwrap_or(d.timing);
    if sweep.friction_from_look {
        scenario.environment.friction.road = s2r_look::parse(&ep.prompt).look.surface.friction();
    }
    Ok(scenario)
}

/// Runs `ep` into a new bag at `dir`; `frame` is called after each camera
/// frame (progress); stops early (returning [`GenerateError::Interrupted`])
/// when `stop` is set.
pub fn run_episode(
    ep: &Episode,
    sweep: &Sweep,
    dir: &Path,
    stop: &AtomicBool,
    frame: &mut dyn FnMut(),
) -> Result<EpisodeStats, GenerateError> {
    let keep = |o: Output| sweep.keep.contains(&o);
    let scenario = scenario_of(ep, sweep)?;
    let mut sim = Sim::new(scenario, &SimOptions { seed: ep.seed, image_scale: sweep.image_scale, render: true })?;
    let bag_err = |source| GenerateError::Bag { path: dir.into(), source };
    let mut bag = EpisodeBag::create(dir).map_err(bag_err)?;
    let preset = if sweep.preset == "full" { Preset::Full } else { Preset::Fast };
    // The GPU path runs on the simulator's own device and reads its render
    // targets in place: with `gpu`, or with `auto` when the simulator renders
    // on a hardware GPU (falling back to the CPU path). A sweep that keeps no
    // restyled frames opens nothing.
    let device: Device = sweep.transfer_device.parse()?;
    let on_sim_gpu = match (device, sim.gpu().filter(|_| keep(Output::Restyled))) {
        (Device::Gpu, Some(g)) => Some(GpuBuiltin::on_device(g.device, g.queue, &g.adapter, preset)?),
        (Device::Auto, Some(g)) if g.hardware => GpuBuiltin::on_device(g.device, g.queue, &g.adapter, preset).ok(),
        _ => None,
    };
    let in_place = on_sim_gpu.is_some();
    let backend: Box<dyn Backend> = match on_sim_gpu {
        Some(g) => Box::new(g),
        None => Box::new(Builtin::new(preset)),
    };
    let mut restyler = Restyler::new(backend, &ep.prompt, ep.seed);
    let mut scene = Scene::default();
    let info = sim.scenario_info();
    let tf_static = sim.tf_static();
    scene.scenario = Some(info.clone());
    scene.tf(&tf_static, true);
    let mut stats = EpisodeStats::default();
    let mut autopilot = (sweep.driver == SweepDriver::Expert).then(|| Autopilot::new(&sim));
    bag.write::<ScenarioInfo>("/scenario", 0, &info).map_err(bag_err)?;
    bag.write::<TFMessage>("/tf_static", 0, &tf_static).map_err(bag_err)?;
    while sim.seconds() < sweep.duration {
        if stop.load(Ordering::Relaxed) {
            return Err(GenerateError::Interrupted);
        }
        let started = Instant::now();
        let tick = sim.tick()?;
        let command = autopilot.as_mut().and_then(|a| a.drive(&mut sim, &tick));
        let simulated = started.elapsed();
        stats.sim += simulated;
        let mut restyling = Duration::ZERO;
        let t = s2r_runtime::stamp_ns(&tick.time).max(0) as u64;
        if let Some(tf) = &tick.tf {
            scene.tf(tf, false);
            if keep(Output::Odometry) {
                bag.write::<TFMessage>("/tf", t, tf).map_err(bag_err)?;
            }
        }
        if keep(Output::Odometry) {
            if let Some(m) = &tick.odom {
                bag.write::<Odometry>("/odom", t, m).map_err(bag_err)?;
            }
            if let Some(m) = &tick.imu {
                bag.write::<Imu>("/imu", t, m).map_err(bag_err)?;
            }
            if let Some(m) = &tick.joint_states {
                bag.write::<JointState>("/joint_states", t, m).map_err(bag_err)?;
            }
            if let Some(m) = &tick.grasped {
                bag.write::<Bool>("/gripper/grasped", t, m).map_err(bag_err)?;
            }
            match &command {
                Some(RobotCommand::Velocity(c)) => bag.write::<Twist>("/expert/cmd_vel", t, c).map_err(bag_err)?,
                Some(RobotCommand::Joints(c)) => bag.write::<JointState>("/expert/joint_commands", t, c).map_err(bag_err)?,
                None => {}
            }
        }
        if let Some(d) = &tick.detections3d {
            scene.detections3d = Some(d.clone());
            if keep(Output::Boxes) {
                bag.write::<Detection3DArray>("/sim/detections3d", t, d).map_err(bag_err)?;
            }
        }
        for cam in tick.cameras {
            let sim_t = |k: &str| format!("/sim/{}/{k}", cam.name);
            let out_t = |k: &str| format!("/{}/{k}", cam.name);
            bag.write::<CameraInfo>(&sim_t("camera_info"), t, &cam.info).map_err(bag_err)?;
            if keep(Output::Flat) {
                bag.write::<Image>(&sim_t("image_raw"), t, &cam.image).map_err(bag_err)?;
            }
            if keep(Output::Depth) {
                bag.write::<Image>(&sim_t("depth"), t, &cam.depth).map_err(bag_err)?;
            }
            if keep(Output::Segmentation) {
                bag.write::<Image>(&sim_t("segmentation"), t, &cam.segmentation).map_err(bag_err)?;
            }
            if keep(Output::Instances) {
                bag.write::<Image>(&sim_t("instances"), t, &cam.instances).map_err(bag_err)?;
            }
            if keep(Output::Boxes) {
                bag.write::<Detection2DArray>(&sim_t("detections"), t, &cam.detections).map_err(bag_err)?;
            }
            if keep(Output::Restyled) {
                let topics = Topics::sim("/sim", &cam.name);
                let msgs = CameraMsgs {
                    image: Some(cam.image),
                    depth: Some(cam.depth),
                    segmentation: Some(cam.segmentation),
                    info: Some(cam.info.clone()),
                };
                let t1 = Instant::now();
                let targets = if in_place { sim.render_targets(&cam.name) } else { None };
                let r = match &targets {
                    Some(t) => {
                        let on = DeviceFrame { color: &t.color, depth: Some(&t.depth), class: Some(&t.class) };
                        restyler.restyle_on_device(&msgs, &topics, &scene, &on)?
                    }
                    None => restyler.restyle(&msgs, &topics, &scene)?,
                };
                restyling += t1.elapsed();
                stats.flagged += r.score.flagged as u64;
                bag.write::<Image>(&out_t("image_raw"), t, &r.image).map_err(bag_err)?;
                bag.write::<CameraInfo>(&out_t("camera_info"), t, &cam.info).map_err(bag_err)?;
                bag.write::<TransferScore>(&out_t("transfer_score"), t, &r.score).map_err(bag_err)?;
                if keep(Output::Boxes) {
                    bag.write::<Detection2DArray>(&out_t("detections"), t, &cam.detections).map_err(bag_err)?;
                }
            }
            stats.frames += 1;
            frame();
        }
        stats.transfer += restyling;
        stats.write += started.elapsed().saturating_sub(simulated + restyling);
    }
    bag.finish().map_err(bag_err)?;
    Ok(stats)
}
