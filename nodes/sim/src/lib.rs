//! sim_node: stage 1 of the pipeline. A scenario file becomes a world
//! (`world`), simulated with rapier3d (`physics`), rendered headless with wgpu
//! (`render`) into RGB, depth, semantic and instance images, and labelled with
//! exact ground truth (`labels`); `sim` turns each instant into ROS 2 messages
//! and `node` publishes them.

#![warn(missing_docs)]

pub mod arm_expert;
pub mod asset;
pub mod autopilot;
pub mod consequences;
pub mod description;
pub mod expert;
pub mod figures;
pub mod labels;
pub mod node;
pub mod physics;
pub mod render;
pub(crate) mod rng;
pub mod scenario;
pub mod sim;
pub mod world;
