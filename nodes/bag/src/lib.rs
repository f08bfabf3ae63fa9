//! rosbag2-compatible MCAP bags.
//!
//! - [`BagWriter`]: a bag folder (`metadata.yaml` + `<name>_<n>.mcap`) exactly
//!   as rosbag2 writes it, chunked (none, lz4, zstd) and indexed, split by size
//!   or duration, crash-safe at every flush.
//! - [`BagReader`]: bags from rosbag2 (Humble to Jazzy and later), rosbags, the
//!   mcap libraries, or a bare `.mcap`; damaged files are read up to and past
//!   the damage, which is reported.

#![warn(missing_docs)]

mod format;
mod mcap_out;
pub mod metadata;
pub mod qos;
mod reader;
pub mod scan;
mod writer;

use std::path::{Path, PathBuf};

pub use metadata::{BagMetadata, MetadataError, TopicMetadata};
pub use qos::{QosError, QosProfile};
pub use reader::{BagMessage, BagReader, Connection};
pub use scan::{Damage, Problem};
pub use writer::{BagWriter, Compression, TopicId, TopicSpec, WriterOptions};

/// Everything that can fail in this crate; each variant names the file or
/// folder it is about. Damage inside an MCAP file is not an error: readers
/// report it as [`Damage`] and go on.
#[derive(Debug, thiserror::Error)]
pub enum BagError {
    /// A file or folder that cannot be read, created or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// `metadata.yaml` is not rosbag2's, or names a storage plugin other
    /// than `mcap`.
    #[error("{}: {reason}", .path.display())]
    Metadata {
        /// The metadata file.
        path: PathBuf,
        /// What is wrong with it.
        reason: MetadataError,
    },
    /// A file that is empty or does not start with the MCAP magic
    /// (`\x89MCAP0\r\n`); a damaged MCAP file is not this, it is read with
    /// [`Damage`].
    #[error("{} is not an MCAP file: {reason}", .path.display())]
    NotMcap {
        /// The file.
        path: PathBuf,
        /// Why not: empty, or the first bytes it has instead, in hex.
        reason: String,
    },
    /// A path that does not exist, or a folder with neither `metadata.yaml`
    /// nor `.mcap` files.
    #[error("{} is not a bag: {reason}", .path.display())]
    NotABag {
        /// The path.
        path: PathBuf,
        /// Why not: missing, or what the folder lacks.
        reason: String,
    },
    /// A topic whose type name or schema does not parse, or whose schema is
    /// not `ros2msg`: its messages cannot be decoded (they can still be read
    /// as bytes).
    #[error("{}: the definition of topic {topic} does not parse: {source}", .path.display())]
    Schema {
        /// The bag, as opened (folder or file).
        path: PathBuf,
        /// The topic whose definition it is.
        topic: String,
        /// What is wrong with it.
        source: Box<s2r_idl::RegistryError>,
    },
    /// A request that cannot be carried out: an output folder that already
    /// exists, an unknown compression name, a message that does not serialize.
    #[error("{0}")]
    Usage(String),
}

impl BagError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> BagError {
        BagError::Io { path: path.into(), source }
    }
}
