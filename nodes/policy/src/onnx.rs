//! The policy network as an ONNX model, for ONNX Runtime and TensorRT
//! deployments (Jetson): `s2r export policy MODEL --onnx FILE`.
//!
//! Inputs: `image` [1, H, W, C] (the band of rows the policy reads, resized
//! to its input, RGB from 0 to 1, channels last; with a past frame, its three
//! channels after the current frame's) and `state` [1, S] (each entry over
//! its [`crate::model::Robot::state_scale`]). Output: `actions` [1, chunk, A]
//! (each over its [`crate::model::Robot::action_scale`]; an arm's joints are
//! relative to its joint angles now), which [`crate::pilot`] scales and
//! ensembles over time. The model's metadata holds the checkpoint's config
//! (`sim2real.policy`). Written by [`s2r_train::onnx`].

use s2r_train::onnx::{Attr, Graph};

use crate::model::Net;
use crate::PolicyError;

/// The metadata key of the config in an exported model.
pub const META_KEY: &str = "sim2real.policy";

/// The ONNX model of `net`.
pub fn export(net: &Net) -> Result<Vec<u8>, PolicyError> {
    let cfg = &net.config;
    let candle = |source| PolicyError::Candle { context: "exporting to ONNX".into(), source };
    let mut g = Graph::default();
    let build = |g: &mut Graph| -> candle_core::Result<()> {
        let x = g.centred("image")?;
        let (x, _) = g.patch_stages(&x, &net.stages, [cfg.height, cfg.width, cfg.channels_in()])?;
        let squeezed = g.linear(&x, &net.squeeze)?;
        let squeezed = g.unary("Relu", &squeezed);
        let flat = g.reshape(&squeezed, &[1, -1]);
        let joined = g.name("concat");
        g.node("Concat", &[&flat, "state"], &[&joined], &[Attr::Int("axis", 1)]);
        let hidden = g.linear(&joined, &net.fc1)?;
        let hidden = g.unary("Relu", &hidden);
        let out = g.linear(&hidden, &net.fc2)?;
        let shape = g.name("shape");
        g.int64s(&shape, &[1, cfg.chunk as i64, cfg.robot.action_scale().len() as i64]);
        g.node("Reshape", &[&out, &shape], &["actions"], &[]);
        Ok(())
    };
    build(&mut g).map_err(candle)?;
    let meta = serde_json::to_string(cfg).map_err(|e| PolicyError::BadCheckpoint { path: "(export)".into(), problem: e.to_string() })?;
    Ok(g.finish(
        "policy",
        &[("image", vec![1, cfg.height, cfg.width, cfg.channels_in()]), ("state", vec![1, cfg.robot.state_scale().len()])],
        &[("actions", vec![1, cfg.chunk, cfg.robot.action_scale().len()])],
        &[(META_KEY, meta)],
    ))
}
