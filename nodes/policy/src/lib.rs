//! policy_node: a driving policy learned from the privileged expert's
//! demonstrations by behaviour cloning.
//!
//! The network ([`model`]) sees what a real robot has — the front camera and
//! its own speed and yaw rate from odometry — and predicts the next
//! [`model::Config::chunk`] commands at the camera's rate (action chunking,
//! as ACT does); [`pilot::Pilot`] executes them with temporal ensembling
//! (every command is the weighted mean of what the recent chunks said for
//! that instant). [`data`] reads demonstration sets (`s2r demos`), [`fit`]
//! trains with held-out seeds, [`checkpoint`] saves and reads the weights
//! with their config.

#![warn(missing_docs)]

use std::path::PathBuf;

pub mod checkpoint;
pub mod data;
pub mod fit;
pub mod model;
pub mod node;
pub mod onnx;
pub mod pilot;

/// What can go wrong, naming the input.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// No checkpoint at the path.
    #[error("{}: no policy checkpoint (train one: s2r demos --scenario icy_night_crossing -o demos && s2r train policy demos -o {})", .path.display(), .path.display())]
    MissingCheckpoint {
        /// The path.
        path: PathBuf,
    },
    /// A file that is not a policy checkpoint, or does not fit the network.
    #[error("{}: not a usable policy checkpoint: {problem}", .path.display())]
    BadCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A demonstration set that cannot be learned from.
    #[error("{}: {problem}", .path.display())]
    Demos {
        /// The set, its manifest or one of its bags.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A camera frame the policy cannot read (encoding, size).
    #[error("{topic}: {problem}")]
    Frame {
        /// The topic it came from.
        topic: String,
        /// What is wrong.
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

impl From<s2r_train::TrainError> for PolicyError {
    fn from(e: s2r_train::TrainError) -> Self {
        use s2r_train::TrainError as T;
        match e {
            T::Missing { path } => PolicyError::MissingCheckpoint { path },
            T::Bad { path, problem } => PolicyError::BadCheckpoint { path, problem },
            T::Io { path, source } => PolicyError::Io { path, source },
            T::Candle { context, source } => PolicyError::Candle { context, source },
            T::Device { name, problem } => {
                PolicyError::Candle { context: format!("device {name}"), source: candle_core::Error::Msg(problem) }
            }
        }
    }
}

/// Maps a candle error into [`PolicyError::Candle`] with what was being done.
pub(crate) fn candle(context: &str) -> impl Fn(candle_core::Error) -> PolicyError + '_ {
    move |source| PolicyError::Candle { context: context.to_string(), source }
}
