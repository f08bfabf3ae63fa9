//! perception_node's model: one small multi-task network (2D detection,
//! metric depth, semantic segmentation) trained from scratch with candle on
//! the simulator's labelled frames; the offline drivers of `s2r train
//! perception` ([`fit`]) and `s2r eval perception` ([`eval`]); and the node
//! ([`node`]).

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
pub mod loss;
pub mod model;
pub mod node;
pub mod onnx;
pub mod overlay;
pub mod predict;

pub use error::PerceptionError;

/// A device by name: `cpu`, `cuda` or `cuda:N`. CUDA needs a build with the
/// `cuda` feature (`cargo build --release --features s2r-perception/cuda`).
pub fn device(name: &str) -> Result<candle_core::Device, PerceptionError> {
    let cuda = |i: usize| {
        candle_core::Device::new_cuda(i).map_err(|e| {
            PerceptionError::Data(format!(
                "device {name}: {e} (CUDA needs a build with `--features s2r-perception/cuda` on a machine with the CUDA toolkit)"
            ))
        })
    };
    match name {
        "cpu" => Ok(candle_core::Device::Cpu),
        "cuda" => cuda(0),
        _ => match name.strip_prefix("cuda:").and_then(|i| i.parse().ok()) {
            Some(i) => cuda(i),
            None => Err(PerceptionError::Data(format!("device {name}: expected cpu, cuda or cuda:N"))),
        },
    }
}
