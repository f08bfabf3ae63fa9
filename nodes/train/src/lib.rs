//! The pieces of training every model shares (perception, policy, …):
//! [`AdamW`] whose moments go into the checkpoint so that training resumes
//! where it stopped, [`seeded_init`] (the same seed, the same run), and
//! checkpoints as one safetensors file whose metadata holds the model's own
//! record under a key of its own ([`save`], [`read`], [`restore`]); the
//! patch stages networks see camera frames through ([`PatchStages`]); the
//! held-out split by seed ([`held_out`]); new checkpoints from trainer_node
//! taken by deployed nodes ([`ModelUpdates`]); networks written as ONNX
//! models ([`onnx`]); the tokenizer as token models see it ([`FrameCodec`])
//! and the transformer pieces they share ([`nn`]).

#![warn(missing_docs)]

mod adamw;
mod checkpoint;
pub mod codec;
mod init;
pub mod nn;
pub mod onnx;
mod patches;
pub mod recordings;
pub mod updates;
mod watch;

use std::path::PathBuf;

pub use adamw::AdamW;
pub use checkpoint::{load_weights, read, restore, save, Checkpoint};
pub use codec::FrameCodec;
pub use init::seeded_init;
pub use patches::{space_to_depth, PatchStages};
pub use updates::ModelUpdates;
pub use watch::{CheckpointWatch, WATCH_PERIOD};

/// A device by name: `cpu`, `cuda` or `cuda:N`. CUDA needs candle's CUDA
/// backend in the build (this crate's `cuda` feature, which every model
/// crate's and the package's `cuda` feature turn on:
/// `cargo build --release --features cuda`) and an NVIDIA GPU with its
/// driver; otherwise the error says so.
pub fn device(name: &str) -> Result<candle_core::Device, TrainError> {
    let cuda = |i: usize| {
        candle_core::Device::new_cuda(i).map_err(|e| TrainError::Device {
            name: name.to_string(),
            problem: format!("{e} (CUDA needs a build with the `cuda` feature, `cargo build --release --features cuda`, and an NVIDIA GPU with its driver)"),
        })
    };
    match name {
        "cpu" => Ok(candle_core::Device::Cpu),
        "cuda" => cuda(0),
        _ => match name.strip_prefix("cuda:").and_then(|i| i.parse().ok()) {
            Some(i) => cuda(i),
            None => Err(TrainError::Device { name: name.to_string(), problem: "expected cpu, cuda or cuda:N".into() }),
        },
    }
}

/// The learning rate's factor at `step` of `steps`: a linear warm-up over
/// the first `warmup` steps, then a cosine from 1 down to `floor` at the end.
pub fn warmup_cosine(step: usize, steps: usize, warmup: usize, floor: f64) -> f64 {
    let warmup = warmup.max(1);
    if step < warmup {
        (step + 1) as f64 / warmup as f64
    } else {
        let p = (step - warmup) as f64 / (steps.saturating_sub(warmup)).max(1) as f64;
        floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * p.min(1.0)).cos())
    }
}

/// Whether a seed belongs to the held-out split of a demonstration set or
/// dataset: every tenth (seed % 10 == 9), never trained on.
pub fn held_out(seed: u64) -> bool {
    seed % 10 == 9
}

/// A checkpoint that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// No file there.
    #[error("{}: no such checkpoint", .path.display())]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// A file that is not this model's checkpoint, or is damaged.
    #[error("{}: {problem}", .path.display())]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// Reading or writing failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A device name that is not one, or a device that cannot be used.
    #[error("device {name}: {problem}")]
    Device {
        /// The name given.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// A tensor operation failed.
    #[error("{context}: {source}")]
    Candle {
        /// What was being done.
        context: String,
        /// candle's error.
        source: candle_core::Error,
    },
}

#[cfg(test)]
mod tests {
    #[test]
    fn devices_by_name() {
        assert!(matches!(super::device("cpu"), Ok(candle_core::Device::Cpu)));
        let e = super::device("tpu").unwrap_err().to_string();
        assert!(e.contains("device tpu") && e.contains("cpu, cuda or cuda:N"), "{e}");
        if !candle_core::utils::cuda_is_available() {
            let e = super::device("cuda:1").unwrap_err().to_string();
            assert!(e.contains("device cuda:1") && e.contains("`cuda` feature"), "{e}");
        }
    }
}
