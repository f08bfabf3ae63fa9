//! Multiview generation: from one camera (the front one) to the whole rig.
//! Given the front camera's frame as a tokenizer's FSQ codes, the model
//! ([`model`]) generates the codes each other camera of the rig would have
//! seen at the same instant, conditioned on that camera's pose (a ray per
//! position, so one model serves any rig) and, where depth places front
//! content into the other camera's field of view, on that content
//! ([`reproject`]): geometry where it is known, the model for what no camera
//! saw.
//!
//! [`rig`] reads a rig's calibration (camera_info and /tf_static), [`data`]
//! reads recordings of a rig into token instants through a [`FrameCodec`]
//! (the tokenizer, supplied by the caller: this crate never decodes pixels
//! itself), [`fit`] trains, [`generate`] makes the other views of a frame,
//! [`eval`] scores them beside the baselines, and [`node`] is
//! multiview_node, live on a robot's front camera.

#![warn(missing_docs)]

use std::path::PathBuf;

pub mod checkpoint;
pub mod data;
pub mod eval;
pub mod fit;
pub mod generate;
pub mod labels;
pub mod model;
pub mod node;
pub mod reproject;
pub mod rig;

pub use s2r_train::FrameCodec;

/// What can go wrong, naming the input.
#[derive(Debug, thiserror::Error)]
pub enum MultiviewError {
    /// No checkpoint at the path.
    #[error("{}: no multiview checkpoint (train one: s2r train multiview DATA… -o {})", .path.display(), .path.display())]
    MissingCheckpoint {
        /// The path.
        path: PathBuf,
    },
    /// A file that is not a multiview checkpoint, or does not fit the network.
    #[error("{}: not a usable multiview checkpoint: {problem}", .path.display())]
    BadCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A checkpoint of another codec than the data's, or another source camera.
    #[error("{}: {problem}", .path.display())]
    Mismatch {
        /// The checkpoint or recording.
        path: PathBuf,
        /// Both sides, named.
        problem: String,
    },
    /// A rig calibration that lacks a camera, or is not one.
    #[error("rig: {problem}")]
    Rig {
        /// What is missing or wrong.
        problem: String,
    },
    /// Recordings that cannot be learned from or generated from.
    #[error("{}: {problem}", .path.display())]
    Data {
        /// The dataset or one of its bags.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The tokenizer failed on a frame.
    #[error("{}: the tokenizer failed: {problem}", .path.display())]
    Codec {
        /// The recording.
        path: PathBuf,
        /// What it said.
        problem: String,
    },
    /// The loss became NaN or infinite; the last good checkpoint is kept.
    #[error("training diverged at step {step} (loss {loss}); the last good checkpoint is kept")]
    Diverged {
        /// The step.
        step: usize,
        /// The loss.
        loss: f32,
    },
    /// Reading or writing a file.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A tensor operation failed.
    #[error("{context}: {source}")]
    Candle {
        /// What was being done.
        context: String,
        /// What candle said.
        source: candle_core::Error,
    },
}

/// Wraps a candle error with what was being done.
pub(crate) fn candle(context: &str) -> impl Fn(candle_core::Error) -> MultiviewError + '_ {
    move |source| MultiviewError::Candle { context: context.to_string(), source }
}
