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

use std::fmt;
use std::path::{Path, PathBuf};

pub use metadata::{BagMetadata, TopicMetadata};
pub use qos::QosProfile;
pub use reader::{BagMessage, BagReader, Connection};
pub use scan::Damage;
pub use writer::{BagWriter, Compression, TopicId, TopicSpec, WriterOptions};

/// Errors name the file and what was wrong with it.
#[derive(Debug)]
pub enum BagError {
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The MCAP library refused to write.
    Mcap {
        path: PathBuf,
        reason: String,
    },
    /// `metadata.yaml` is unreadable.
    Metadata {
        path: PathBuf,
        reason: String,
    },
    /// A file that is not MCAP at all.
    NotMcap {
        path: PathBuf,
        reason: String,
    },
    /// A path that is not a bag.
    NotABag {
        path: PathBuf,
        reason: String,
    },
    /// A message definition in a bag that does not parse.
    Schema {
        path: PathBuf,
        topic: String,
        reason: String,
    },
    /// A request that cannot be carried out (an existing output folder, …).
    Usage(String),
}

impl BagError {
    pub(crate) fn io(path: &Path, error: std::io::Error) -> BagError {
        BagError::Io { path: path.into(), error }
    }

    pub(crate) fn mcap(path: &Path, e: mcap::McapError) -> BagError {
        BagError::Mcap { path: path.into(), reason: e.to_string() }
    }
}

impl fmt::Display for BagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BagError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            BagError::Mcap { path, reason } => write!(f, "{}: {reason}", path.display()),
            BagError::Metadata { path, reason } => write!(f, "{}: {reason}", path.display()),
            BagError::NotMcap { path, reason } => write!(f, "{} is not an MCAP file: {reason}", path.display()),
            BagError::NotABag { path, reason } => write!(f, "{} is not a bag: {reason}", path.display()),
            BagError::Schema { path, topic, reason } => {
                write!(f, "{}: the definition of topic {topic} does not parse: {reason}", path.display())
            }
            BagError::Usage(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for BagError {}
