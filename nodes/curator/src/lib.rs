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

pub mod balance;
pub mod clips;
pub mod dedup;
pub mod embed;
pub mod manifest;
pub mod metrics;
pub mod node;
pub mod offline;
pub mod params;
pub mod phash;
pub mod report;

use std::path::PathBuf;

pub use balance::BalanceError;
pub use manifest::Manifest;
pub use params::ParamsError;

/// Why a curation could not be done or written; every variant names its input.
#[derive(Debug, thiserror::Error)]
pub enum CuratorError {
    /// The output folder already holds something.
    #[error("{}: exists and is not empty; curate into a new folder", .0.display())]
    NotEmpty(PathBuf),
    /// A bag that cannot be read or written.
    #[error("{}: {source}", .path.display())]
    Bag {
        /// The bag.
        path: PathBuf,
        /// Why.
        source: s2r_bag::BagError,
    },
    /// A bag without the camera to curate.
    #[error("{}: no camera '{camera}' (/{camera}/image_raw nor /sim/{camera}/image_raw; images: {})", .bag.display(), .images.join(", "))]
    NoCamera {
        /// The bag.
        bag: PathBuf,
        /// The camera asked for.
        camera: String,
        /// The image topics it has.
        images: Vec<String>,
    },
    /// An image that is not a colour image.
    #[error(transparent)]
    Image(#[from] s2r_image::ImageError),
    /// A params file that cannot be used.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// Balance targets that cannot be met.
    #[error("balance: {0}")]
    Balance(#[from] BalanceError),
    /// A file that cannot be written.
    #[error("{}: {source}", .path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file that cannot be read.
    #[error("{}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A manifest that is not one.
    #[error("{}: {source}", .path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What the YAML reader said (with the line).
        source: serde_yaml_ng::Error,
    },
}
