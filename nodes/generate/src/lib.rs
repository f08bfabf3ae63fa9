//! The synthetic-data factory: `s2r generate` runs a sweep (scenarios × seeds
//! × looks, [`sweep::Sweep`]) through the simulator, the transfer stage and
//! the curator composed in one process in lockstep — no DDS, nothing lost,
//! the same bytes for the same sweep and shard — into a dataset folder
//! ([`dataset`]); it resumes where an interrupted run stopped, scales out as
//! shards of a batch engine's array job ([`run::Shard`]), and
//! `s2r dataset merge | info | split` join, describe and split the results.

#![warn(missing_docs)]

pub mod dataset;
pub mod episode;
mod rng;
pub mod run;
pub mod sweep;

use std::path::PathBuf;

pub use dataset::{DatasetFile, Splits};
pub use run::{generate, merge, Shard, Summary};
pub use sweep::{Episode, Sweep};

/// Why a sweep, a run or a dataset command failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A sweep file that cannot be used: the file, the line, the key and why.
    #[error("{}:{line}: {}{reason}", path.display(), if key.is_empty() { String::new() } else { format!("{key}: ") })]
    Sweep {
        /// The sweep file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// The key at fault (empty when the YAML itself is broken).
        key: String,
        /// Why.
        reason: String,
    },
    /// A `--shard` that is not i/N, auto/N or auto, or out of range.
    #[error("shard '{spec}': {why}")]
    Shard {
        /// As given.
        spec: String,
        /// Why.
        why: String,
    },
    /// A camera the sweep names that a scenario lacks.
    #[error("scenario '{scenario}' has no camera '{camera}' (cameras: {})", have.join(", "))]
    Camera {
        /// The scenario.
        scenario: String,
        /// The camera asked for.
        camera: String,
        /// Its cameras.
        have: Vec<String>,
    },
    /// A scenario file that cannot be loaded.
    #[error(transparent)]
    Scenario(#[from] s2r_sim::scenario::ScenarioError),
    /// The simulator could not render (no graphics adapter, …).
    #[error(transparent)]
    Render(#[from] s2r_sim::render::RenderError),
    /// A frame the transfer stage could not restyle.
    #[error(transparent)]
    Transfer(#[from] s2r_transfer::TransferError),
    /// Curation failed.
    #[error(transparent)]
    Curation(#[from] s2r_curator::CuratorError),
    /// A bag that cannot be written or read.
    #[error("{}: {source}", path.display())]
    Bag {
        /// The bag.
        path: PathBuf,
        /// Why.
        source: s2r_bag::BagError,
    },
    /// A file or folder that cannot be read or written (a full disk says so here).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// A dataset.yaml or splits.yaml that cannot be read or written.
    #[error("{}: {reason}", path.display())]
    Dataset {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An output folder holding a dataset of another sweep or shard.
    #[error("{}: holds a dataset of another sweep or shard; generate into a new folder", dir.display())]
    OtherSweep {
        /// The folder.
        dir: PathBuf,
    },
    /// A merge of datasets made by different sweeps.
    #[error("{}: its sweep differs from {}'s; only shards of one sweep merge", dir.display(), first.display())]
    MergeOtherSweep {
        /// The folder that differs.
        dir: PathBuf,
        /// The first folder.
        first: PathBuf,
    },
    /// A merge with nothing to merge.
    #[error("name the shard folders to merge")]
    NothingToMerge,
    /// An output folder that must be new.
    #[error("{}: exists and is not empty; merge into a new folder", .0.display())]
    NotEmpty(PathBuf),
    /// Split fractions that leave no training set.
    #[error("--val {val} and --test {test}: each in [0, 1) and together under 1")]
    SplitFractions {
        /// Validation fraction.
        val: f64,
        /// Test fraction.
        test: f64,
    },
    /// Stopped by a signal (the episode in progress was dropped).
    #[error("interrupted")]
    Interrupted,
    /// A run that failed in an episode (a full disk, a render error): what
    /// was finished before is kept and listed in dataset.yaml.
    #[error("episode {episode}: {source}; the {kept} episode(s) finished before are kept in {} (dataset.yaml lists them); fix the cause and run the same command to continue", dir.display())]
    Stopped {
        /// The episode that failed.
        episode: String,
        /// Episodes finished and kept.
        kept: usize,
        /// The dataset folder.
        dir: PathBuf,
        /// What went wrong.
        source: Box<GenerateError>,
    },
}
