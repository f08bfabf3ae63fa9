//! tokenizer_node's model: a learned causal video tokenizer after Cosmos
//! Tokenizer, in candle. Haar patchify, finite scalar quantization, the
//! encoder/decoder, training, the shipped checkpoints, quality metrics; and
//! the offline drivers of `s2r train tokenizer` ([`fit`]), `s2r eval
//! tokenizer` ([`eval`]) and `s2r tokens decode` ([`decode`]).

#![warn(missing_docs)]
pub mod codec;
pub mod data;
pub mod decode;
mod error;
pub mod eval;
pub mod fit;
pub mod fsq;
mod haar;
pub use s2r_image::quality as metrics;
pub mod model;
pub mod node;
pub mod onnx;
mod train;

use std::path::{Path, PathBuf};

pub use error::TokenizerError;

/// A checkpoint parameter as a file: a path, or the name of a shipped
/// checkpoint (`cv4x8x8`, `dv8x16x16`) in `models/tokenizer` of the package's
/// data ([`s2r_runtime::share`]). A name found nowhere is returned as given,
/// so that loading it reports the missing file.
pub fn resolve_checkpoint(name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_file() || name.contains('/') || name.ends_with(".safetensors") {
        return p.to_path_buf();
    }
    s2r_runtime::share::find_shared("models/tokenizer", &format!("{name}.safetensors")).unwrap_or_else(|| p.to_path_buf())
}

pub use s2r_runtime::tune_allocator;
