//! curator_node's logic: frames in, clips out with verdicts.
//!
//! After NeMo Curator's video pipeline: the stream is split into clips (by
//! length, at scene and scenario changes), every frame is measured (blur,
//! exposure, broken, frozen, torn, near-duplicate, labels) and every clip
//! (motion, class coverage); clips are then deduplicated by their embeddings
//! (k-means, then members within a cosine distance of a kept one dropped) and
//! selected to reach a target distribution over tags. Nothing here touches
//! DDS or files: `node` (curator_node) and `offline` (`s2r curate`) feed it
//! and write what it decides.

#![warn(missing_docs)]

pub mod balance;
pub mod clips;
mod dedup;
pub mod embed;
pub mod manifest;
pub mod metrics;
pub mod node;
pub mod offline;
pub mod params;
mod phash;
mod report;

use std::path::PathBuf;

pub use balance::BalanceError;
pub use manifest::Manifest;
pub use params::ParamsError;

/// Why a curation could not be done or written; every variant names its input.
#[derive(Debug, thiserror::Error)]
pub enum CuratorError {
    /// The output folder already holds something: a dataset is only ever
    /// written into a new or empty folder, never over another one.
    #[error("{}: exists and is not empty; curate into a new folder", .0.display())]
    NotEmpty(PathBuf),
    /// A source bag that cannot be opened, or a clip bag that cannot be written.
    #[error("{source}")]
    Bag {
        /// The source bag (folder or `.mcap` file) or the clip's bag folder.
        path: PathBuf,
        /// What the bag layer said.
        source: s2r_bag::BagError,
    },
    /// A source bag without the camera to curate: neither its transfer
    /// output nor the simulator's image topic.
    #[error("{}: no camera '{camera}' (/{camera}/image_raw nor /sim/{camera}/image_raw; images: {})", .bag.display(), .images.join(", "))]
    NoCamera {
        /// The bag.
        bag: PathBuf,
        /// The camera asked for (`Params::camera`).
        camera: String,
        /// The camera image topics it does have (raw or compressed), to pick from.
        images: Vec<String>,
    },
    /// A frame whose image cannot be turned into rgb8 (an unsupported
    /// encoding); `offline::curate` and curator_node skip such a frame rather than stop.
    #[error(transparent)]
    Image(#[from] s2r_image::ImageError),
    /// A params file that cannot be used; for callers that read one with
    /// `Params::load` and curate in one function (`curate` takes params already read).
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// Balance targets that are malformed or that the clips left cannot meet.
    #[error("balance: {0}")]
    Balance(#[from] BalanceError),
    /// A manifest.yaml that does not parse.
    #[error("{}: {reason}", .path.display())]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What the YAML parser said.
        reason: String,
    },
    /// A dataset file or folder (`clips/`, `manifest.yaml`, `report.html`) that cannot be read or written.
    #[error("{}: {source}", .path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
}
