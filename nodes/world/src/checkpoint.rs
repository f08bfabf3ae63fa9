//! World-model checkpoints: the weights, the optimiser's moments and a
//! record (the network's [`Config`], how far training got, the parent
//! checkpoint it was post-trained from, the held-out figures) in one
//! safetensors file (see [`s2r_train::save`]).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use crate::model::{Config, WorldModel};
use crate::WorldError;

/// The metadata key of the record.
pub const KEY: &str = "sim2real.world";

/// What a checkpoint says about itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The network.
    pub config: Config,
    /// Steps trained in this run (from the base when post-training).
    pub step: usize,
    /// Steps this run was asked for.
    pub steps: usize,
    /// The checkpoint it was post-trained from (None: pre-trained from scratch).
    pub base: Option<String>,
    /// The recordings it was trained on.
    pub data: Vec<String>,
    /// Training examples (token windows) and held-out ones.
    pub windows: [usize; 2],
    /// Held-out next-frame token accuracy at the last evaluation (teacher forcing).
    pub held_out_accuracy: Option<f32>,
}

/// A trained network loaded for inference, with its record.
pub struct Loaded {
    /// The network.
    pub model: WorldModel,
    /// Its variables.
    pub vars: VarMap,
    /// Its record.
    pub record: Record,
    /// The file.
    pub path: PathBuf,
}

fn train_error(path: &Path, e: s2r_train::TrainError) -> WorldError {
    match e {
        s2r_train::TrainError::Missing { .. } => WorldError::MissingCheckpoint { path: path.into() },
        other => WorldError::BadCheckpoint { path: path.into(), problem: other.to_string() },
    }
}

/// Reads a checkpoint's record and tensors.
pub fn read(path: &Path) -> Result<(Record, s2r_train::Checkpoint), WorldError> {
    let c = s2r_train::read(path, KEY, "a world-model checkpoint").map_err(|e| train_error(path, e))?;
    let record: Record = serde_json::from_str(&c.record)
        .map_err(|e| WorldError::BadCheckpoint { path: path.into(), problem: format!("its record: {e}") })?;
    Ok((record, c))
}

/// Loads a checkpoint for inference on `device`.
pub fn load(path: &Path, device: &Device) -> Result<Loaded, WorldError> {
    let (record, c) = read(path)?;
    let vars = VarMap::new();
    let model = WorldModel::new(record.config.clone(), VarBuilder::from_varmap(&vars, DType::F32, device))
        .map_err(|e| WorldError::BadCheckpoint { path: path.into(), problem: e.to_string() })?;
    copy_weights(&c, &vars, false)?;
    Ok(Loaded { model, vars, record, path: path.into() })
}

/// Copies a checkpoint's weights (not its optimiser state) into `vars`;
/// adapters it does not have keep theirs (a base under new adapters), and so
/// does the dynamics head when `new_dynamics` (a base without one).
pub fn copy_weights(c: &s2r_train::Checkpoint, vars: &VarMap, new_dynamics: bool) -> Result<(), WorldError> {
    let may_lack = |name: &str| crate::model::is_adapter(name) || (new_dynamics && crate::model::is_dynamics(name));
    s2r_train::load_weights(c, vars, may_lack).map_err(|e| WorldError::BadCheckpoint {
        path: c.path.clone(),
        problem: match e {
            s2r_train::TrainError::Bad { problem, .. } => problem,
            other => other.to_string(),
        },
    })
}

/// Writes an untrained network of `config` (seeded weights) to `path`: what
/// the node and tools load when the behaviour under test is theirs, not the model's.
pub fn save_untrained(path: &Path, config: Config, seed: u64) -> Result<(), WorldError> {
    let vars = VarMap::new();
    WorldModel::new(config.clone(), VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu))
        .map_err(|e| WorldError::BadCheckpoint { path: path.into(), problem: e.to_string() })?;
    crate::fit::init(&vars, seed).map_err(crate::candle("initial weights"))?;
    let record = Record { config, step: 0, steps: 0, base: None, data: Vec::new(), windows: [0, 0], held_out_accuracy: None };
    save(path, &vars, None, &record)
}

/// Writes the variables, the optimiser's state and `record` to `path` atomically.
pub fn save(path: &Path, vars: &VarMap, opt: Option<&s2r_train::AdamW>, record: &Record) -> Result<(), WorldError> {
    let text = serde_json::to_string(record).expect("a record serializes");
    s2r_train::save(path, vars, opt, KEY, &text).map_err(|e| train_error(path, e))
}
