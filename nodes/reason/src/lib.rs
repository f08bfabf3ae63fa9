//! reason_node's judgement, learned from simulated consequences (the Cosmos
//! Reason stage): predictors trained on the simulator's (situation, action,
//! outcome) records, a held-out question set that checks them against the
//! simulator, and the reasoning chains (`sim2real_msgs/Reasoning`) written
//! from their outputs, so that every number in the text is a model output.
//!
//! - [`stopping`]: how far a car travels before it stops, from its speed, the
//!   road's friction and its reaction time, fitted to braking trials.
//! - [`surface`]: which surface the camera sees (dry, wet, snow, ice), so
//!   the friction the stopping predictor needs, learned from restyled frames.
//! - [`hazard`]: how far the road ahead is free (the nearest thing in the
//!   path, a parked car that may hide someone), learned from the camera with
//!   the driving expert's ground truth as labels.
//! - [`cup`]: what a push of the arm's fingers does to a cup on a table
//!   (stays, tips, falls off the edge), learned from push trials.
//! - [`tabletop`]: where the cups on a table stand, from a camera's
//!   detections, calibration and depth, and which of them is most at risk.
//! - [`questions`]: the held-out questions and their scores.
//! - [`chain`]: the reasoning chain and constraints for a car braking.
//! - [`model`]: the model file.
//! - [`node`]: reason_node, which publishes the chain live from a robot's camera and odometry.
//!
//! The safety filter that applies a chain's constraints to a command is
//! [`sim2real_msgs::safety`], shared with the drivers.

#![warn(missing_docs)]

use std::path::PathBuf;

pub mod chain;
pub mod cup;
mod fit;
pub mod hazard;
pub mod model;
pub mod node;
pub mod onnx;
pub mod questions;
pub mod stopping;
pub mod surface;
pub mod tabletop;

/// What can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum ReasonError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A model file that is not one, or is broken.
    #[error("{path}: not a usable reason model: {problem} (train one with `s2r train reason -o {path}`)")]
    BadModel {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A dataset or bag that cannot be learned from.
    #[error("{path}: {problem}")]
    Data {
        /// The dataset or bag.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A camera frame that cannot be read.
    #[error("{topic}: {problem}")]
    Frame {
        /// Its topic.
        topic: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The tensor library failed.
    #[error("{what}: {source}")]
    Candle {
        /// What was being done.
        what: &'static str,
        /// The cause.
        source: candle_core::Error,
    },
    /// Training records that cannot fit a model.
    #[error("the training records cannot fit the {what} predictor: {problem}")]
    Records {
        /// Which predictor.
        what: &'static str,
        /// What is wrong with them.
        problem: String,
    },
}

/// Maps a candle error to [`ReasonError::Candle`] with what was being done.
pub(crate) fn candle(what: &'static str) -> impl Fn(candle_core::Error) -> ReasonError {
    move |source| ReasonError::Candle { what, source }
}
