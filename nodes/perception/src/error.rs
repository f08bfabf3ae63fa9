//! The perception crate's one error type: every variant names its input.

use std::path::PathBuf;

/// What went wrong reading data or checkpoints, training or evaluating.
#[derive(Debug, thiserror::Error)]
pub enum PerceptionError {
    /// No file at a checkpoint's path.
    #[error("perception checkpoint {} does not exist; train one with `s2r train perception DATASET… -o {}` (DATASET from `s2r generate`)", path.display(), path.display())]
    MissingCheckpoint {
        /// The path.
        path: PathBuf,
    },
    /// A file that is not a perception checkpoint, or one that does not fit the network.
    #[error("{}: {problem}; train one with `s2r train perception DATASET… -o {}`", path.display(), path.display())]
    BadCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A recording that cannot be read (the bag error names the file).
    #[error("{source}")]
    Bag {
        /// The bag.
        path: PathBuf,
        /// Why.
        source: s2r_bag::BagError,
    },
    /// A frame that cannot be read as an image of its kind.
    #[error("{}: {source}", path.display())]
    Frame {
        /// The bag.
        path: PathBuf,
        /// Why.
        source: s2r_image::ImageError,
    },
    /// An input that is not what it should be.
    #[error("{}: {problem}", path.display())]
    Input {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Data that cannot train or evaluate (no frames, a split without clips, no labelled objects).
    #[error("{0}")]
    Data(String),
    /// A file system error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The loss became NaN or infinite.
    #[error("the loss is {value} at step {step}; the last good checkpoint ({}, step {saved}) is kept. Lower --lr or check the data", path.display())]
    Diverged {
        /// The step.
        step: usize,
        /// The loss.
        value: f32,
        /// The checkpoint kept.
        path: PathBuf,
        /// Its step.
        saved: usize,
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

impl From<s2r_train::TrainError> for PerceptionError {
    fn from(e: s2r_train::TrainError) -> Self {
        use s2r_train::TrainError as T;
        match e {
            T::Missing { path } => PerceptionError::MissingCheckpoint { path },
            T::Bad { path, problem } => PerceptionError::BadCheckpoint { path, problem },
            T::Io { path, source } => PerceptionError::Io { path, source },
            T::Candle { context, source } => PerceptionError::Candle { context, source },
            e @ T::Device { .. } => PerceptionError::Data(e.to_string()),
        }
    }
}
