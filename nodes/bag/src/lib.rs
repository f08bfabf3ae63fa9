//! rosbag2-compatible MCAP bags.
//!
//! - [`BagWriter`]: a bag folder (`metadata.yaml` + `<name>_<n>.mcap`) exactly
//!   as rosbag2 writes it, chunked (none, lz4, zstd) and indexed, split by size
//!   or duration, crash-safe at every flush.
//! - [`BagReader`]: bags from rosbag2 (Humble to Jazzy and later), rosbags, the
//!   mcap libraries, or a bare `.mcap`; damaged files are read up to and past
//!   the damage, which is reported.

pub mod metadata;
pub mod qos;
pub mod reader;
pub mod scan;
mod tail;
pub mod writer;

use std::path::{Path, PathBuf};

pub use metadata::{BagMetadata, MetadataError, TopicMetadata};
pub use qos::{QosError, QosProfile};
pub use reader::{BagMessage, BagReader, Connection};
pub use scan::{Damage, Problem};
pub use writer::{BagWriter, Compression, TopicId, TopicSpec, WriterOptions};

/// Errors name the file and what was wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum BagError {
    /// A file or folder that cannot be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The MCAP library refused to write.
    #[error("{}: {source}", .path.display())]
    Mcap {
        /// The file.
        path: PathBuf,
        /// What the MCAP library said.
        source: Box<mcap::McapError>,
    },
    /// `metadata.yaml` is unreadable.
    #[error("{}: {reason}", .path.display())]
    Metadata {
        /// The metadata file.
        path: PathBuf,
        /// What is wrong with it.
        reason: MetadataError,
    },
    /// A file that is not MCAP at all.
    #[error("{} is not an MCAP file: {reason}", .path.display())]
    NotMcap {
        /// The file.
        path: PathBuf,
        /// What it starts with instead.
        reason: String,
    },
    /// A path that is not a bag.
    #[error("{} is not a bag: {reason}", .path.display())]
    NotABag {
        /// The path.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// A message definition in a bag that does not parse.
    #[error("{}: the definition of topic {topic} does not parse: {source}", .path.display())]
    Schema {
        /// The file.
        path: PathBuf,
        /// The topic whose definition it is.
        topic: String,
        /// What is wrong with it.
        source: Box<s2r_idl::RegistryError>,
    },
    /// A request that cannot be carried out (an existing output folder, …).
    #[error("{0}")]
    Usage(String),
}

impl BagError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> BagError {
        BagError::Io { path: path.into(), source }
    }

    pub(crate) fn mcap(path: &Path, e: mcap::McapError) -> BagError {
        BagError::Mcap { path: path.into(), source: Box::new(e) }
    }
}
