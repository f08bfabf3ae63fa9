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

use candle_core::Tensor;
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
    let (mut h, mut w, mut c) = (cfg.height, cfg.width, cfg.channels_in());
    let build = |g: &mut Graph, h: &mut usize, w: &mut usize, c: &mut usize| -> candle_core::Result<()> {
        let half = g.name("half");
        g.constant(&half, &Tensor::new(&[0.5f32], &candle_core::Device::Cpu)?)?;
        let mut x = g.binary("Sub", "image", &half);
        for layer in net.stages.layers() {
            // space_to_depth: each 2×2 block's pixels, row by row, become one position's channels.
            let blocks = g.reshape(&x, &[1, (*h / 2) as i64, 2, (*w / 2) as i64, (2 * *c) as i64]);
            let swapped = g.name("transpose");
            g.node("Transpose", &[&blocks], &[&swapped], &[Attr::Ints("perm", vec![0, 1, 3, 2, 4])]);
            let (hh, ww) = (*h / 2, *w / 2);
            let merged = g.reshape(&swapped, &[1, hh as i64, ww as i64, (4 * *c) as i64]);
            let y = g.linear(&merged, layer)?;
            x = g.unary("Relu", &y);
            (*h, *w, *c) = (hh, ww, layer.weight().dim(0)?);
        }
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
    build(&mut g, &mut h, &mut w, &mut c).map_err(candle)?;
    let meta = serde_json::to_string(cfg).map_err(|e| PolicyError::BadCheckpoint { path: "(export)".into(), problem: e.to_string() })?;
    Ok(g.finish(
        "policy",
        &[("image", vec![1, cfg.height, cfg.width, cfg.channels_in()]), ("state", vec![1, cfg.robot.state_scale().len()])],
        &[("actions", vec![1, cfg.chunk, cfg.robot.action_scale().len()])],
        &[(META_KEY, meta)],
    ))
}
