//! Images as every sim2real stage handles them: `sensor_msgs/Image` messages
//! to and from plain buffers ([`rgb8`], [`depth_m`], [`classes`], [`ids`],
//! [`rgb8_msg`]), compressed images as image_transport's `compressed` plugin
//! publishes them ([`compress`], [`decompress`]) and camera topics read and
//! published raw or compressed as image_transport does ([`transport`]) and
//! stored in bags either way ([`stored`], [`convert`]), an rgb8 buffer with the operations the tools need
//! ([`Rgb`], [`grid`]), image quality (PSNR, SSIM: [`quality`]), and PNG files ([`write_png`], [`read_png`],
//! [`encode_png`]).
//!
//! Errors name the input (the topic of a message, the path of a file) and
//! what was wrong with it.

#![warn(missing_docs)]

mod codec;
pub mod convert;
pub mod html;
mod png_io;
pub mod quality;
mod rgb;
mod ros;
pub mod stored;
pub mod transport;
pub mod view;

use std::path::PathBuf;

pub use codec::{compress, decompress, Compression};
pub use png_io::{encode_png, read_png, write_png};
pub use rgb::{grid, Rgb};
pub use ros::{classes, depth_m, ids, image_msg, rgb8, rgb8_msg};

/// What was wrong with an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A message with no pixels.
    #[error("{topic}: empty image {width}x{height}")]
    Empty {
        /// Where the message came from.
        topic: String,
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
    },
    /// `step` is shorter than a row of pixels.
    #[error("{topic}: step {step} is shorter than a row of {width} {encoding} pixels ({row} bytes)")]
    Step {
        /// Where the message came from.
        topic: String,
        /// The message's step.
        step: usize,
        /// Its width.
        width: usize,
        /// Its encoding.
        encoding: String,
        /// Bytes in a row of pixels.
        row: usize,
    },
    /// Less data than width, height and step need.
    #[error("{topic}: {len} bytes of data, a {width}x{height} {encoding} image with step {step} needs {needed}")]
    Truncated {
        /// Where the message came from.
        topic: String,
        /// Bytes the message has.
        len: usize,
        /// Its width.
        width: usize,
        /// Its height.
        height: usize,
        /// Its encoding.
        encoding: String,
        /// Its step.
        step: usize,
        /// Bytes it needs.
        needed: usize,
    },
    /// An encoding the reader does not take.
    #[error("{topic}: encoding '{encoding}' is not {expected}")]
    Encoding {
        /// Where the message came from.
        topic: String,
        /// The message's encoding.
        encoding: String,
        /// What the reader takes.
        expected: &'static str,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A PNG file or stream that could not be encoded or decoded.
    #[error("{path}: {message}")]
    Png {
        /// The file (or a description of the stream).
        path: PathBuf,
        /// What the PNG codec said.
        message: String,
    },
    /// A compression codec that is neither jpeg nor png.
    #[error("compression '{0}' is not jpeg or png")]
    Codec(String),
    /// A JPEG quality outside 1–100.
    #[error("JPEG quality {0} is not 1 to 100")]
    Quality(i64),
    /// The encoder failed.
    #[error("{topic}: {codec} compression failed: {message}")]
    Compress {
        /// Where the image came from.
        topic: String,
        /// jpeg or png.
        codec: &'static str,
        /// What the encoder said.
        message: String,
    },
    /// A `CompressedImage.format` this reader does not take.
    #[error("{topic}: format '{format}': {why}")]
    Format {
        /// Where the message came from.
        topic: String,
        /// The message's format.
        format: String,
        /// What was expected.
        why: &'static str,
    },
    /// The data is not what the format says (a PNG claiming to be a JPEG).
    #[error("{topic}: format '{format}' but the data ({len} bytes) is {found}")]
    NotWhatFormatSays {
        /// Where the message came from.
        topic: String,
        /// The message's format.
        format: String,
        /// What the data's first bytes are.
        found: &'static str,
        /// Bytes of data.
        len: usize,
    },
    /// A JPEG or PNG that could not be decoded (truncated, corrupt).
    #[error("{topic}: {what} cannot be decoded: {message}")]
    Decode {
        /// Where the message came from.
        topic: String,
        /// JPEG or PNG.
        what: &'static str,
        /// What the decoder said.
        message: String,
    },
    /// A node parameter with a value it does not take.
    #[error("parameter '{name}': '{value}' is not {expected}")]
    Parameter {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it takes.
        expected: &'static str,
    },
    /// Creating a subscription or publisher failed.
    #[error(transparent)]
    Node(#[from] s2r_runtime::NodeError),
    /// A stored or received message that is not valid CDR of its type.
    #[error("{topic}: {source}")]
    Cdr {
        /// Its topic.
        topic: String,
        /// What the CDR decoder said.
        source: s2r_runtime::raw::CdrError,
    },
}
