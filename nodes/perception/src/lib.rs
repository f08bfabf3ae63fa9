//! perception_node's model: one small multi-task network (2D detection,
//! metric depth, semantic segmentation) trained from scratch with candle on
//! the simulator's labelled frames; the offline drivers of `s2r train
//! perception` ([`fit`]) and `s2r eval perception` ([`eval`]); pseudo-labels
//! of a robot's own frames (`s2r label`, [`label`]); and the node ([`node`]).

#![warn(missing_docs)]
pub mod augment;
pub mod checkpoint;
pub mod coco;
mod conv;
pub mod data;
mod error;
pub mod eval;
pub mod fit;
pub mod frame;
pub mod label;
pub mod loss;
pub mod model;
pub mod node;
pub mod onnx;
pub mod overlay;
pub mod predict;

pub use error::PerceptionError;

/// A device by name: `cpu`, `cuda` or `cuda:N` ([`s2r_train::device`]). CUDA
/// needs a build with the `cuda` feature (`cargo build --release --features cuda`).
pub fn device(name: &str) -> Result<candle_core::Device, PerceptionError> {
    s2r_train::device(name).map_err(|e| PerceptionError::Data(e.to_string()))
}
