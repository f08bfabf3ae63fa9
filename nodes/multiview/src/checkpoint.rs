//! Multiview checkpoints: the weights, the optimiser's moments and a record
//! (the network's [`Config`], the rig and source camera it was trained on,
//! how far training got, the held-out figures) in one safetensors file (see
//! [`s2r_train::save`]).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use crate::model::{Config, MultiviewNet};
use crate::rig::Rig;
use crate::MultiviewError;

/// The metadata key of the record.
pub const KEY: &str = "sim2real.multiview";

/// What a checkpoint says about itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The network.
    pub config: Config,
    /// The camera it generates from.
    pub source: String,
    /// The rig it was trained on (full-frame calibration): what `s2r multiview` and the node generate when not told another.
    pub rig: Rig,
    /// Steps trained.
    pub step: usize,
    /// Steps asked for.
    pub steps: usize,
    /// The recordings it was trained on.
    pub data: Vec<String>,
    /// Training pairs (instant, target camera) and held-out ones.
    pub pairs: [usize; 2],
    /// Held-out token accuracy (every digit of a position right) at the last evaluation.
    pub held_out_accuracy: Option<f32>,
}

/// A trained network loaded for inference, with its record.
pub struct Loaded {
    /// The network.
    pub model: MultiviewNet,
    /// Its record.
    pub record: Record,
    /// The file.
    pub path: PathBuf,
}

/// Reads a checkpoint's record and tensors.
pub fn read(path: &Path) -> Result<(Record, s2r_train::Checkpoint), MultiviewError> {
    let c = s2r_train::read(path, KEY, "a multiview checkpoint").map_err(|e| match e {
        s2r_train::TrainError::Missing { .. } => MultiviewError::MissingCheckpoint { path: path.into() },
        other => MultiviewError::BadCheckpoint { path: path.into(), problem: other.to_string() },
    })?;
    let record: Record = serde_json::from_str(&c.record)
        .map_err(|e| MultiviewError::BadCheckpoint { path: path.into(), problem: format!("its record: {e}") })?;
    Ok((record, c))
}

/// Loads a checkpoint for inference on `device`.
pub fn load(path: &Path, device: &Device) -> Result<Loaded, MultiviewError> {
    let (record, c) = read(path)?;
    let vars = VarMap::new();
    let model = MultiviewNet::new(record.config.clone(), VarBuilder::from_varmap(&vars, DType::F32, device))
        .map_err(|e| MultiviewError::BadCheckpoint { path: path.into(), problem: e.to_string() })?;
    s2r_train::load_weights(&c, &vars, |_| false)
        .map_err(|e| MultiviewError::BadCheckpoint { path: path.into(), problem: e.to_string() })?;
    Ok(Loaded { model, record, path: path.into() })
}

/// Writes `vars`, the optimiser's state and `record` to `path` (atomically).
pub fn save(path: &Path, vars: &VarMap, opt: Option<&s2r_train::AdamW>, record: &Record) -> Result<(), MultiviewError> {
    let json = serde_json::to_string(record).map_err(|e| MultiviewError::BadCheckpoint { path: path.into(), problem: e.to_string() })?;
    s2r_train::save(path, vars, opt, KEY, &json).map_err(|e| MultiviewError::BadCheckpoint { path: path.into(), problem: e.to_string() })
}

/// The shipped checkpoint, when the package has one.
pub fn shipped() -> Option<PathBuf> {
    s2r_runtime::share::find_shared("models/multiview", "multiview.safetensors")
}

/// Writes a network of `config` with seeded random weights and no training
/// (for tests of the node and the commands: their behaviour, not the model's).
pub fn save_untrained(path: &Path, config: Config, source: &str, rig: Rig, seed: u64) -> Result<(), MultiviewError> {
    let vars = VarMap::new();
    MultiviewNet::new(config.clone(), VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu))
        .map_err(|e| MultiviewError::BadCheckpoint { path: path.into(), problem: e.to_string() })?;
    s2r_train::seeded_init(&vars, seed).map_err(|e| MultiviewError::BadCheckpoint { path: path.into(), problem: e.to_string() })?;
    let record = Record { config, source: source.into(), rig, step: 0, steps: 0, data: Vec::new(), pairs: [0, 0], held_out_accuracy: None };
    save(path, &vars, None, &record)
}
