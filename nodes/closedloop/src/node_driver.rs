//! `--driver node`: the deployed policy_node in the loop over DDS, so the
//! evaluation scores what a robot would run — the node's own subscriptions,
//! rate, staleness and clamping, its commands crossing the wire.
//!
//! policy_node runs in this process as its own DDS participant (the same
//! component `policy_node` and `s2r run policy_node` start), under the
//! namespace `/s2r_eval`, on loopback only. The evaluator is another
//! participant: at each of the simulator's odometry (joint state) instants
//! it publishes the robot's state, at each camera frame the image, and then
//! waits for two commands from the node — the node publishes at its rate,
//! and the second command after a frame has seen it — before the simulator
//! steps on. The simulator therefore runs at about the node's pace, not
//! faster than a robot would, and an episode is not bit-for-bit repeatable
//! (the node's timer is wall-clock): that is the price of scoring the node
//! itself.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use s2r_policy::model::Robot;
use s2r_runtime::{Context, ContextOptions, DiscoveryRange, Node, Publisher, Qos, RosArgs, Subscription};
use s2r_sim::sim::{Sim, Tick};
use sim2real_msgs::geometry_msgs::msg::Twist;
use sim2real_msgs::nav_msgs::msg::Odometry;
use sim2real_msgs::sensor_msgs::msg::{Image, JointState};
use sim2real_msgs::std_msgs::msg::Bool;

use crate::driver::{Command, Driver};
use crate::ClosedLoopError;

/// The namespace the node and the evaluator talk in.
pub const NAMESPACE: &str = "/s2r_eval";
/// How long the evaluator waits for the node's commands after a frame.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the node has to come up and match the evaluator's topics.
const START_TIMEOUT: Duration = Duration::from_secs(30);

// One per driver: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Topics {
    Vehicle { odom: Publisher<Odometry>, cmd: Subscription<Twist> },
    Arm { joints: Publisher<JointState>, grasped: Publisher<Bool>, cmd: Subscription<JointState> },
}

/// policy_node over DDS as a [`Driver`].
pub struct NodeDriver {
    checkpoint: PathBuf,
    /// The checkpoint's network config (its camera; what its input needs rendered).
    config: s2r_policy::model::Config,
    // Dropped in this order: the evaluator's endpoints, the node's task, the runtime.
    topics: Topics,
    image: Publisher<Image>,
    _eval: Node,
    node_task: tokio::task::JoinHandle<()>,
    rt: tokio::runtime::Runtime,
    last: Option<Command>,
}

fn node_err(message: String) -> ClosedLoopError {
    ClosedLoopError::Driver { driver: "node".into(), message }
}

impl NodeDriver {
    /// Starts policy_node with `checkpoint` on DDS domain `domain` (loopback
    /// only) and the evaluator's publishers and subscription beside it.
    pub fn start(checkpoint: &Path, domain: u16) -> Result<NodeDriver, ClosedLoopError> {
        // The checkpoint's robot and camera decide the topics (and a bad one is named now).
        let loaded = s2r_policy::checkpoint::read(checkpoint).map_err(|e| node_err(e.to_string()))?;
        let (robot, camera) = (loaded.meta.config.robot, loaded.meta.config.camera.clone());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| node_err(format!("starting the runtime: {e}")))?;
        let _guard = rt.enter();
        let options = ContextOptions { domain_id: domain, range: DiscoveryRange::Localhost, ..Default::default() };
        let dds = |who: &str| Context::new(options.clone()).map_err(|e| node_err(format!("DDS participant for {who}: {e}")));
        let (node_ctx, eval_ctx) = (dds("policy_node")?, dds("the evaluator")?);
        let args = RosArgs::parse([
            "policy_node".to_string(),
            "--ros-args".into(),
            "-r".into(),
            format!("__ns:={NAMESPACE}"),
            "-p".into(),
            format!("checkpoint:={}", checkpoint.display()),
            "-p".into(),
            format!("camera:={camera}"),
        ])
        .map_err(|e| node_err(e.to_string()))?;
        let main = s2r_policy::node::POLICY_NODE.main;
        let node_task = rt.spawn(async move {
            if let Err(e) = main(node_ctx, args).await {
                eprintln!("[ERROR] [policy_node]: {e}");
            }
        });
        let eval = Node::new(&eval_ctx, "closed_loop_eval", &RosArgs::default()).map_err(|e| node_err(e.to_string()))?;
        let t = |name: &str| format!("{NAMESPACE}/{name}");
        let e = |e: s2r_runtime::NodeError| node_err(e.to_string());
        let image = eval.create_publisher::<Image>(&t(&format!("{camera}/image_raw")), Qos::reliable().depth(5)).map_err(e)?;
        let topics = match robot {
            Robot::Vehicle => Topics::Vehicle {
                odom: eval.create_publisher(&t("odom"), Qos::reliable().depth(10)).map_err(e)?,
                cmd: eval.create_subscription(&t("cmd_vel"), Qos::reliable().depth(100)).map_err(e)?,
            },
            Robot::Arm => Topics::Arm {
                joints: eval.create_publisher(&t("joint_states"), Qos::reliable().depth(10)).map_err(e)?,
                grasped: eval.create_publisher(&t("gripper/grasped"), Qos::reliable().depth(10)).map_err(e)?,
                cmd: eval.create_subscription(&t("joint_commands"), Qos::reliable().depth(100)).map_err(e)?,
            },
        };
        let config = loaded.meta.config;
        let d = NodeDriver { checkpoint: checkpoint.into(), config, topics, image, _eval: eval, node_task, rt, last: None };
        d.wait_for_node()?;
        Ok(d)
    }

    /// Until the node subscribes the camera and the robot's state.
    fn wait_for_node(&self) -> Result<(), ClosedLoopError> {
        let t0 = Instant::now();
        let state_subscribers = || match &self.topics {
            Topics::Vehicle { odom, .. } => odom.subscription_count(),
            Topics::Arm { joints, .. } => joints.subscription_count(),
        };
        while self.image.subscription_count() == 0 || state_subscribers() == 0 {
            if self.node_task.is_finished() {
                return Err(node_err(format!("policy_node with {} ended at start (its error is above)", self.checkpoint.display())));
            }
            if t0.elapsed() > START_TIMEOUT {
                return Err(node_err(format!("policy_node did not come up on {NAMESPACE} within {START_TIMEOUT:?}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Drains the command queue: how many arrived, and the newest.
    fn drain(&mut self) -> usize {
        let mut n = 0;
        match &self.topics {
            Topics::Vehicle { cmd, .. } => {
                while let Some(c) = cmd.try_recv() {
                    self.last = Some(Command::Velocity((*c).clone()));
                    n += 1;
                }
            }
            Topics::Arm { cmd, .. } => {
                while let Some(c) = cmd.try_recv() {
                    self.last = Some(Command::Joints((*c).clone()));
                    n += 1;
                }
            }
        }
        n
    }
}

impl Drop for NodeDriver {
    fn drop(&mut self) {
        self.node_task.abort();
    }
}

impl Driver for NodeDriver {
    fn name(&self) -> &str {
        "node"
    }

    fn needs_cameras(&self) -> bool {
        true
    }

    fn image_scale(&self, camera_width: u32, camera_height: u32) -> Option<f64> {
        Some(self.config.image_scale(camera_width, camera_height))
    }

    fn reset(&mut self, _sim: &Sim) {
        self.drain();
        self.last = None;
    }

    fn act(&mut self, sim: &Sim, tick: &Tick) -> Result<Option<Command>, ClosedLoopError> {
        let _guard = self.rt.enter();
        let publish_err = |e: s2r_runtime::PublishError| node_err(format!("publishing to policy_node: {e}"));
        match &self.topics {
            Topics::Vehicle { odom, .. } => {
                if sim.world.arm.is_some() {
                    return Err(node_err(format!("the checkpoint drives a vehicle; {} has an arm", sim.scenario.name)));
                }
                if let Some(o) = &tick.odom {
                    odom.publish(o.clone()).map_err(publish_err)?;
                }
            }
            Topics::Arm { joints, grasped, .. } => {
                if sim.world.arm.is_none() {
                    return Err(node_err(format!("the checkpoint drives an arm; {} has a vehicle", sim.scenario.name)));
                }
                if let Some(j) = &tick.joint_states {
                    joints.publish(j.clone()).map_err(publish_err)?;
                }
                if let Some(g) = &tick.grasped {
                    grasped.publish(g.clone()).map_err(publish_err)?;
                }
            }
        }
        let Some(frame) = tick.cameras.iter().find(|c| c.name == self.config.camera) else {
            self.drain();
            return Ok(self.last.clone());
        };
        self.drain();
        self.image.publish(frame.image.clone()).map_err(publish_err)?;
        let t0 = Instant::now();
        // The first frame also waits for the node's command publisher to match.
        let limit = if self.last.is_none() { START_TIMEOUT } else { REPLY_TIMEOUT };
        let mut got = 0;
        while got < 2 {
            got += self.drain();
            if got >= 2 {
                break;
            }
            if self.node_task.is_finished() {
                return Err(node_err("policy_node ended (its error is above)".into()));
            }
            if t0.elapsed() > limit {
                return Err(node_err(format!("no command from policy_node within {limit:?} of a frame")));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(self.last.clone())
    }
}
