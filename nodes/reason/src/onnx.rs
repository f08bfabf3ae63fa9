//! The reasoner's networks as ONNX models, for ONNX Runtime and TensorRT
//! deployments (Jetson): `s2r export reason MODEL --onnx PREFIX` writes one
//! file per predictor the model has, each by [`s2r_train::onnx`]:
//! - `PREFIX.surface.onnx`: `image` [1, 96, 192, 3] (the road band, RGB 0
//!   to 1, channels last) → `logits` [1, 4] over [`crate::surface::CLASSES`];
//! - `PREFIX.hazard.onnx`: `image` [1, 96, 256, 3] (a motion network's
//!   [1, 96, 256, 6]: the frame, then the frame less the one before) →
//!   `outputs` [1, 2 + 4]: the two encoded distances (obstacle, occlusion),
//!   then the surface logits;
//! - `PREFIX.cup.onnx`: `push` [1, 11] (a push's description) → `logits`
//!   [1, 3] over [`crate::cup::OUTCOMES`].

use s2r_train::onnx::{Attr, Graph};

use crate::cup::CupNet;
use crate::hazard::HazardNet;
use crate::surface::{SurfaceNet, CLASSES};
use crate::ReasonError;

/// The surface classifier's ONNX model.
pub fn surface(net: &SurfaceNet) -> Result<Vec<u8>, ReasonError> {
    let (w, h) = crate::surface::INPUT;
    let mut g = Graph::default();
    let build = |g: &mut Graph| -> candle_core::Result<()> {
        let x = g.centred("image")?;
        let (x, [gh, gw, c]) = g.patch_stages(&x, &net.stages, [h, w, 3])?;
        let cells = g.reshape(&x, &[1, (gh * gw) as i64, c as i64]);
        let (mean, max) = (g.name("mean"), g.name("max"));
        let axes = || vec![Attr::Ints("axes", vec![1]), Attr::Int("keepdims", 0)];
        g.node("ReduceMean", &[&cells], &[&mean], &axes());
        g.node("ReduceMax", &[&cells], &[&max], &axes());
        let pooled = g.name("pooled");
        g.node("Concat", &[&mean, &max], &[&pooled], &[Attr::Int("axis", 1)]);
        let hidden = g.linear(&pooled, &net.fc1)?;
        let hidden = g.unary("Relu", &hidden);
        let out = g.linear(&hidden, &net.fc2)?;
        g.node("Identity", &[&out], &["logits"], &[]);
        Ok(())
    };
    build(&mut g).map_err(crate::candle("exporting the surface network"))?;
    Ok(g.finish("surface", &[("image", vec![1, h, w, 3])], &[("logits", vec![1, CLASSES.len()])], &[]))
}

/// The hazard network's ONNX model.
pub fn hazard(net: &HazardNet) -> Result<Vec<u8>, ReasonError> {
    let (w, h) = crate::hazard::INPUT;
    let c_in = if net.motion { 6 } else { 3 };
    let mut g = Graph::default();
    let build = |g: &mut Graph| -> candle_core::Result<()> {
        let x = g.centred("image")?;
        let (x, _) = g.patch_stages(&x, &net.stages, [h, w, c_in])?;
        let squeezed = g.linear(&x, &net.squeeze)?;
        let squeezed = g.unary("Relu", &squeezed);
        let flat = g.reshape(&squeezed, &[1, -1]);
        let hidden = g.linear(&flat, &net.fc1)?;
        let hidden = g.unary("Relu", &hidden);
        let out = g.linear(&hidden, &net.fc2)?;
        g.node("Identity", &[&out], &["outputs"], &[]);
        Ok(())
    };
    build(&mut g).map_err(crate::candle("exporting the hazard network"))?;
    Ok(g.finish("hazard", &[("image", vec![1, h, w, c_in])], &[("outputs", vec![1, 2 + CLASSES.len()])], &[]))
}

/// The cup's outcome predictor's ONNX model.
pub fn cup(net: &CupNet) -> Result<Vec<u8>, ReasonError> {
    let mut g = Graph::default();
    let build = |g: &mut Graph| -> candle_core::Result<()> {
        let x = g.linear("push", &net.l1)?;
        let x = g.unary("Relu", &x);
        let x = g.linear(&x, &net.l2)?;
        let x = g.unary("Relu", &x);
        let out = g.linear(&x, &net.out)?;
        g.node("Identity", &[&out], &["logits"], &[]);
        Ok(())
    };
    build(&mut g).map_err(crate::candle("exporting the cup network"))?;
    Ok(g.finish("cup", &[("push", vec![1, crate::cup::INPUTS])], &[("logits", vec![1, crate::cup::OUTCOMES.len()])], &[]))
}
