//! The world model (the post-training stage): given the last few frames of a
//! camera as a tokenizer's FSQ codes, the robot's actions and state, and the
//! scene's conditions (surface, weather, time of day), it predicts the next
//! token frame and the robot's next state; rolled out, it shows what happens
//! next.
//!
//! The network ([`model`]) is a spatio-temporal transformer (Genie's ST
//! blocks: attention within each frame, then causal attention across frames
//! at each position) over token frames whose codes enter as the sum of
//! their FSQ digits' embeddings and leave as one softmax per digit. [`data`]
//! reads recordings (demonstration sets, generated datasets, bags) into
//! token episodes through a [`FrameCodec`] (the tokenizer, supplied by the
//! caller: this crate never decodes pixels itself), [`fit`] pre-trains and
//! post-trains ([`fit::FitOptions::base`]), [`rollout`] predicts
//! autoregressively with recorded or scripted actions, and [`eval`] scores
//! predictions per horizon beside copy-last and the tokenizer's own ceiling;
//! [`node`] is world_model_node, live on a robot's topics.

#![warn(missing_docs)]

use std::path::PathBuf;

pub mod checkpoint;
pub mod data;
pub mod eval;
pub mod fit;
pub mod model;
pub mod node;
pub mod onnx;
pub mod rollout;

/// A tokenizer as the world model uses it (shared with the other token models).
pub use s2r_train::FrameCodec;

/// What can go wrong, naming the input.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// No checkpoint at the path.
    #[error("{}: no world-model checkpoint (train one: s2r train world DATA… -o {})", .path.display(), .path.display())]
    MissingCheckpoint {
        /// The path.
        path: PathBuf,
    },
    /// A file that is not a world-model checkpoint, or does not fit the network.
    #[error("{}: not a usable world-model checkpoint: {problem}", .path.display())]
    BadCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A post-training base of another architecture, or tokens of another codec.
    #[error("{}: {problem}", .path.display())]
    Mismatch {
        /// The checkpoint or recording.
        path: PathBuf,
        /// Both sides, named.
        problem: String,
    },
    /// Recordings that cannot be learned from or predicted.
    #[error("{}: {problem}", .path.display())]
    Data {
        /// The set, its manifest or one of its bags.
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
pub(crate) fn candle(context: &str) -> impl Fn(candle_core::Error) -> WorldError + '_ {
    move |source| WorldError::Candle { context: context.to_string(), source }
}
