//! reason_node's judgement, learned from simulated consequences (the Cosmos
//! Reason stage): predictors trained on the simulator's (situation, action,
//! outcome) records, a held-out question set that checks them against the
//! simulator, and the reasoning chains (`sim2real_msgs/Reasoning`) written
//! from their outputs, so that every number in the text is a model output.
//!
//! - [`stopping`]: how far a car travels before it stops, from its speed, the
//!   road's friction and its reaction time, fitted to braking trials.
//! - [`questions`]: the held-out questions and their scores.
//! - [`chain`]: the reasoning chain and constraints for a car braking.
//! - [`model`]: the model file.

#![warn(missing_docs)]

use std::path::PathBuf;

pub mod chain;
pub mod model;
pub mod questions;
pub mod stopping;

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
    /// Training records that cannot fit a model.
    #[error("the training records cannot fit the {what} predictor: {problem}")]
    Records {
        /// Which predictor.
        what: &'static str,
        /// What is wrong with them.
        problem: String,
    },
}
