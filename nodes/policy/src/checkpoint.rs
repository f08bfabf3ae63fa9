//! Policy checkpoints: the weights and optimiser state in a safetensors
//! file, the [`Meta`] record under `sim2real.policy` in its metadata.

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use crate::model::{Config, Net};
use crate::PolicyError;

/// The metadata key of the record.
pub const META_KEY: &str = "sim2real.policy";

/// What a checkpoint says about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// The network.
    pub config: Config,
    /// Optimisation steps taken.
    pub step: usize,
    /// The demonstration sets (as given).
    pub data: Vec<String>,
    /// Training examples, and held-out ones.
    pub samples: (usize, usize),
    /// Steps planned, images per step, peak learning rate.
    pub schedule: (usize, usize, f64),
    /// Held-out mean absolute error of the first command: a vehicle's speed
    /// (m/s) and yaw rate (rad/s); an arm's joint targets (rad, mean of six)
    /// and gripper opening (m).
    pub held_out: Option<(f32, f32)>,
    /// The quantile of the demonstrator's speed it learnt (None: the median;
    /// see [`crate::fit::FitOptions::speed_quantile`]).
    #[serde(default)]
    pub speed_quantile: Option<f32>,
    /// The software version that trained it.
    pub software: String,
}

/// A network with its variables, for training.
pub struct Trainable {
    /// The variables.
    pub varmap: VarMap,
    /// The network over them.
    pub net: Net,
}

impl Trainable {
    /// A fresh network drawn from `seed`.
    pub fn new(config: Config, device: &Device, seed: u64) -> Result<Trainable, PolicyError> {
        let varmap = VarMap::new();
        let net = Net::new(config, VarBuilder::from_varmap(&varmap, DType::F32, device)).map_err(crate::candle("building the network"))?;
        s2r_train::seeded_init(&varmap, seed).map_err(crate::candle("drawing the initial weights"))?;
        Ok(Trainable { varmap, net })
    }
}

/// Writes a checkpoint atomically.
pub fn save(path: &Path, t: &Trainable, opt: Option<&s2r_train::AdamW>, meta: &Meta) -> Result<(), PolicyError> {
    let json = serde_json::to_string(meta).expect("Meta serialises");
    Ok(s2r_train::save(path, &t.varmap, opt, META_KEY, &json)?)
}

/// Writes a checkpoint of an untrained network drawn from `seed` (for
/// benchmarks and tests of the node's behaviour, where the weights do not matter).
pub fn save_untrained(path: &Path, config: Config, seed: u64) -> Result<(), PolicyError> {
    let t = Trainable::new(config.clone(), &Device::Cpu, seed)?;
    let meta = Meta {
        config,
        step: 0,
        data: vec![],
        samples: (0, 0),
        schedule: (0, 0, 0.0),
        held_out: None,
        speed_quantile: None,
        software: format!("sim2real {}", env!("CARGO_PKG_VERSION")),
    };
    save(path, &t, None, &meta)
}

/// A checkpoint read back.
pub struct Loaded {
    /// Its record.
    pub meta: Meta,
    /// The file's tensors.
    pub checkpoint: s2r_train::Checkpoint,
}

/// Reads a policy checkpoint, naming the path and how to train one when it is missing or wrong.
pub fn read(path: &Path) -> Result<Loaded, PolicyError> {
    let checkpoint = s2r_train::read(path, META_KEY, "a policy checkpoint")?;
    let meta: Meta = serde_json::from_str(&checkpoint.record)
        .map_err(|e| PolicyError::BadCheckpoint { path: path.into(), problem: format!("its `{META_KEY}` record does not parse: {e}") })?;
    Ok(Loaded { meta, checkpoint })
}

impl Loaded {
    /// The network for inference on `device`.
    pub fn net(&self, device: &Device) -> Result<Net, PolicyError> {
        let vb = VarBuilder::from_tensors(self.checkpoint.tensors.clone(), DType::F32, device);
        Net::new(self.meta.config.clone(), vb).map_err(|e| PolicyError::BadCheckpoint {
            path: self.checkpoint.path.clone(),
            problem: format!("its weights do not fit the network its config describes: {e}"),
        })
    }
}
