//! transfer_node: restyles the simulator's flat frames into photoreal ones
//! from a text prompt, keeping geometry and therefore every label.
//!
//! The interface follows Cosmos-Transfer1: a frame, its control signals
//! (segmentation, depth, edges, the blurred frame "vis"), one weight per
//! control, and a prompt. Two backends: [`builtin::Builtin`], physically based
//! on the CPU, and [`onnx::OnnxBackend`], any image-to-image model that
//! follows the tensor contract in `onnx.rs`. [`score`] measures on every frame
//! how well the output keeps the label boundaries.

pub mod builtin;
pub mod frame;
pub mod input;
pub mod node;
pub mod onnx;
pub mod score;
pub mod stats;
pub mod tf;

pub use frame::{Controls, Frame, Intrinsics, Vehicle, Weights};
pub use s2r_look::{parse, Look, Parsed};

/// A restyled frame.
#[derive(Clone, Debug)]
pub struct Restyled {
    /// rgb8, row-major.
    pub rgb: Vec<u8>,
    pub width: usize,
    pub height: usize,
    /// The control weights in force (absent controls 0, rescaled to sum ≤ 1).
    pub weights: Weights,
    /// Milliseconds per stage, in order.
    pub stages: Vec<(&'static str, f64)>,
    /// Extinction of the air the backend put between camera and scene, per
    /// metre (0: none or unknown): label boundaries that fog hides by physics
    /// are not held against the frame's score.
    pub extinction: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("bad input frame: {0}")]
    Input(String),
    #[error("model {path}: {message}")]
    Model { path: String, message: String },
}

/// A restyling backend.
pub trait Backend: Send {
    /// "builtin", "builtin:fast" or "onnx:<file>".
    fn name(&self) -> String;
    fn restyle(&mut self, frame: &Frame, look: &Look, weights: &Weights, seed: u64) -> Result<Restyled, TransferError>;
}
