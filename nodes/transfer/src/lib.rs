//! transfer_node: restyles the simulator's flat frames into photoreal ones
//! from a text prompt, keeping geometry and therefore every label.
//!
//! The interface follows Cosmos-Transfer1: a frame, its control signals
//! (segmentation, depth, edges, the blurred frame "vis"), one weight per
//! control, and a prompt. Two backends: [`builtin::Builtin`], physically based
//! on the CPU (and the same on the GPU, [`builtin::gpu::GpuBuiltin`]), and [`onnx::OnnxBackend`], any image-to-image model that
//! follows the tensor contract in `onnx.rs`. [`score`] measures on every frame
//! how well the output keeps the label boundaries. [`sheets`] restyles a
//! recording for several prompts into before/after contact sheets (`s2r transfer`).
//! [`restyle::Restyler`] is one frame's messages in, the node's messages out,
//! for drivers that run the stage in-process (`s2r generate`).

#![warn(missing_docs)]

pub mod builtin;
pub mod frame;
pub mod input;
pub mod node;
pub mod onnx;
pub mod restyle;
pub mod score;
pub mod sheets;
pub mod stats;

use std::path::PathBuf;

pub use frame::{Controls, Frame, Intrinsics, Vehicle, Weights};
pub use s2r_look::{parse, Look, Parsed};

/// A restyled frame.
#[derive(Clone, Debug)]
pub struct Restyled {
    /// rgb8 (sRGB-encoded bytes, 3 per pixel), row-major, the input's size.
    pub rgb: Vec<u8>,
    /// Pixels per row; the input frame's width.
    pub width: usize,
    /// Rows; the input frame's height.
    pub height: usize,
    /// The control weights in force (absent controls 0, rescaled to sum ≤ 1).
    pub weights: Weights,
    /// Wall-clock milliseconds per stage, in the order they ran (for
    /// profiling; they vary from run to run, the image does not).
    pub stages: Vec<(&'static str, f64)>,
    /// Extinction of the air the backend put between camera and scene, per
    /// metre (0: none or unknown): label boundaries that fog hides by physics
    /// are not held against the frame's score.
    pub extinction: f32,
}

/// Why a frame could not be restyled or a backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// A frame whose buffers disagree with its size, or weights out of range.
    #[error("bad input frame: {0}")]
    Input(#[from] FrameError),
    /// A camera's messages without a colour image.
    #[error("{0}: no image")]
    NoImage(String),
    /// A colour image that cannot be read.
    #[error(transparent)]
    Image(#[from] s2r_image::ImageError),
    /// A preset other than full or fast.
    #[error("preset '{0}' is not full or fast")]
    Preset(String),
    /// A device other than cpu, gpu or auto.
    #[error("device '{0}' is not cpu, gpu or auto")]
    Device(String),
    /// An ONNX model that cannot be used: the file and what is wrong.
    #[error("model {path}: {problem}")]
    Model {
        /// The model file.
        path: String,
        /// What is wrong with it.
        problem: ModelProblem,
    },
    /// A recording that cannot be read (the bag error names the file).
    #[error("{reason}")]
    Bag {
        /// The bag.
        path: PathBuf,
        /// Why. Part of the message, so not a `source()` (which would repeat it).
        reason: s2r_bag::BagError,
    },
    /// A message in a recording that does not decode.
    #[error("{}: {topic}: {reason}", path.display())]
    Message {
        /// The bag.
        path: PathBuf,
        /// The message's topic.
        topic: String,
        /// Why. Part of the message, so not a `source()`.
        reason: s2r_runtime::raw::CdrError,
    },
    /// A recording without the camera asked for.
    #[error("{}: no camera '{camera}' (image topics: {})", path.display(), topics.join(", "))]
    NoCamera {
        /// The bag.
        path: PathBuf,
        /// The camera asked for.
        camera: String,
        /// The image topics it has.
        topics: Vec<String>,
    },
    /// A recording without any camera.
    #[error("{}: no sensor_msgs/Image topic ending in /image_raw", path.display())]
    NoImageTopic {
        /// The bag.
        path: PathBuf,
    },
    /// A camera topic whose messages cannot be read.
    #[error("{}: {topic} has no readable messages", path.display())]
    EmptyTopic {
        /// The bag.
        path: PathBuf,
        /// The topic.
        topic: String,
    },
    /// A recording without one frame that has all its controls.
    #[error(
        "{}: no complete frame of camera '{camera}' (image, depth, segmentation and camera_info with one stamp)",
        path.display()
    )]
    NoCompleteFrame {
        /// The bag.
        path: PathBuf,
        /// The camera.
        camera: String,
    },
    /// The GPU path cannot run: no adapter, a device that refuses, or an
    /// error the device reported (the adapter and what it said).
    #[error("GPU {adapter}: {problem}")]
    Gpu {
        /// The adapter, "name (backend, device type)", or "none".
        adapter: String,
        /// What went wrong.
        problem: String,
    },
    /// A file or folder for output that cannot be written.
    #[error("{}: {reason}", path.display())]
    Output {
        /// The file or folder.
        path: PathBuf,
        /// Why. Part of the message, so not a `source()`.
        reason: std::io::Error,
    },
}

/// A frame that cannot be restyled as it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameError {
    /// No pixels.
    #[error("empty frame {width}x{height}")]
    Empty {
        /// Its width.
        width: usize,
        /// Its height.
        height: usize,
    },
    /// An rgb buffer of another size than the frame.
    #[error("rgb has {len} bytes, {width}x{height} rgb8 needs {needed}")]
    Rgb {
        /// Bytes it has.
        len: usize,
        /// The frame's width.
        width: usize,
        /// The frame's height.
        height: usize,
        /// Bytes it needs.
        needed: usize,
    },
    /// A control (depth, segmentation) of another size than the image.
    #[error("{control} has {len} pixels, the image {pixels}")]
    Control {
        /// depth or segmentation.
        control: &'static str,
        /// Pixels it has.
        len: usize,
        /// Pixels of the image.
        pixels: usize,
    },
    /// A control weight outside 0..1 (or not a number).
    #[error("control weight '{name}' is {value}; weights run from 0 to 1")]
    Weight {
        /// The control.
        name: &'static str,
        /// Its weight.
        value: f32,
    },
}

/// What is wrong with an ONNX model, or with running it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelProblem {
    /// No file at the path.
    #[error("no such file")]
    Missing,
    /// ONNX Runtime could not be loaded.
    #[error(transparent)]
    Runtime(#[from] onnx::RuntimeError),
    /// ONNX Runtime refused the file (what it said).
    #[error("not a model ONNX Runtime can run: {0}")]
    NotAModel(String),
    /// An input the tensor contract does not have.
    #[error("input '{name}' is not in the tensor contract (inputs: {contract})")]
    UnknownInput {
        /// The input.
        name: String,
        /// The contract's inputs.
        contract: String,
    },
    /// An input of another element type or rank than the contract's.
    #[error("input '{name}' is {found}; the contract says float32 of rank {rank}")]
    InputType {
        /// The input.
        name: String,
        /// Its type.
        found: String,
        /// The contract's rank.
        rank: usize,
    },
    /// No output.
    #[error("the model has no output")]
    NoOutput,
    /// An output that is not float32 [1, 3, H, W].
    #[error("output '{name}' is {found}; the contract says float32 [1, 3, H, W]")]
    OutputType {
        /// The output.
        name: String,
        /// Its type.
        found: String,
    },
    /// Running the model failed (what ONNX Runtime said, and where).
    #[error("{stage}: {reason}")]
    Run {
        /// input '…', inference or output.
        stage: String,
        /// What ONNX Runtime said.
        reason: String,
    },
    /// An output of another shape than the frame.
    #[error("output has shape {shape:?}; the frame needs [1, 3, {height}, {width}]")]
    OutputShape {
        /// Its shape.
        shape: Vec<i64>,
        /// The frame's height.
        height: usize,
        /// The frame's width.
        width: usize,
    },
}

/// A restyling backend.
pub trait Backend: Send {
    /// `builtin`, `builtin:fast` or `onnx:<file name>`, as logs, contact
    /// sheets and TransferScore's `backend` report it.
    fn name(&self) -> String;
    /// Restyles `frame` into `look`, following each control as far as its
    /// weight asks (rescaled by [`Weights::effective`]; not range-checked
    /// here, see [`Weights::validate`]). `seed` picks the random variation
    /// (particles, noise, which paint a car gets); the built-in backend gives
    /// the same bytes for the same frame, stamp, look, weights and seed.
    /// Fails when the frame's buffers disagree with its size
    /// ([`TransferError::Input`]) or a model cannot run on it
    /// ([`TransferError::Model`]).
    fn restyle(&mut self, frame: &Frame, look: &Look, weights: &Weights, seed: u64) -> Result<Restyled, TransferError>;

    /// Restyles `frame` whose images are also on a GPU device (a renderer's
    /// targets, [`builtin::gpu::DeviceFrame`]): a backend on that device reads
    /// them in place instead of uploading `frame`'s copies; the others (the
    /// default) restyle `frame`. Same output as [`Backend::restyle`].
    fn restyle_on_device(
        &mut self,
        frame: &Frame,
        on_device: &builtin::gpu::DeviceFrame,
        look: &Look,
        weights: &Weights,
        seed: u64,
    ) -> Result<Restyled, TransferError> {
        let _ = on_device;
        self.restyle(frame, look, weights, seed)
    }
}
