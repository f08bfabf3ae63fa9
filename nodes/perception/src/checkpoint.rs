//! Checkpoints: one safetensors file with the weights by name, the
//! optimiser's moments (so training resumes where it stopped) and, in the
//! file's metadata under `sim2real.perception`, the [`Meta`] record: the
//! network's config with its class tables, the step, and what it was trained on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use crate::model::{Config, Net};
use crate::PerceptionError;

/// The metadata key of the [`Meta`] record.
pub const META_KEY: &str = "sim2real.perception";

/// What a checkpoint says about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// The network.
    pub config: Config,
    /// Optimisation steps taken.
    pub step: usize,
    /// The training run's settings, for resuming and for the model card.
    pub training: Training,
}

/// How a checkpoint was trained.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Training {
    /// The datasets (as given).
    pub data: Vec<String>,
    /// `flat`, `restyled` or `both`.
    pub frames: String,
    /// Training samples.
    pub samples: usize,
    /// Steps planned.
    pub steps: usize,
    /// Images per step.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// The software version that trained it.
    pub software: String,
    /// Held-out figures at the last evaluation, by name (`ap50`, …).
    pub held_out: Vec<(String, f64)>,
    /// The checkpoint fine-tuned from (`--base`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
}

/// The optimiser: AdamW with decay on convolution weights, its moments saved with them.
pub use s2r_train::AdamW;

/// A network and its variables, for training and saving.
pub struct Trainable {
    /// The variables.
    pub varmap: VarMap,
    /// The network over them.
    pub net: Net,
}

impl Trainable {
    /// A fresh network.
    pub fn new(cfg: Config, device: &Device) -> candle_core::Result<Trainable> {
        let varmap = VarMap::new();
        let net = Net::new(cfg, VarBuilder::from_varmap(&varmap, DType::F32, device))?;
        net.init_biases()?;
        Ok(Trainable { varmap, net })
    }

    /// A fresh network whose initial weights come from `seed` (candle draws
    /// them from an unseeded generator): the same seed, the same run. The
    /// same distributions as candle's layers: convolution weights Kaiming
    /// normal (std √(2 / fan-in)), their biases uniform in ±1/√fan-in.
    pub fn seeded(cfg: Config, device: &Device, seed: u64) -> candle_core::Result<Trainable> {
        let t = Trainable::new(cfg, device)?;
        s2r_train::seeded_init(&t.varmap, seed)?;
        t.net.init_biases()?;
        Ok(t)
    }
}

/// Writes weights, optimiser state and `meta` to `path` atomically (a
/// temporary file renamed over it: an interrupted save leaves the last one).
pub fn save(path: &Path, t: &Trainable, opt: Option<&AdamW>, meta: &Meta) -> Result<(), PerceptionError> {
    let json = serde_json::to_string(meta).expect("Meta serialises");
    Ok(s2r_train::save(path, &t.varmap, opt, META_KEY, &json)?)
}

/// A checkpoint read back: its record and tensors.
pub struct Loaded {
    /// Its metadata.
    pub meta: Meta,
    /// Every tensor by name.
    pub tensors: HashMap<String, Tensor>,
    /// The file.
    pub path: PathBuf,
}

/// Reads `path`, refusing anything that is not a perception checkpoint with
/// a message that says how to get one.
pub fn read(path: &Path) -> Result<Loaded, PerceptionError> {
    let c = s2r_train::read(path, META_KEY, "a perception checkpoint")?;
    let meta: Meta = serde_json::from_str(&c.record).map_err(|e| PerceptionError::BadCheckpoint {
        path: path.to_path_buf(),
        problem: format!("its `{META_KEY}` record does not parse: {e}"),
    })?;
    Ok(Loaded { meta, tensors: c.tensors, path: c.path })
}

impl Loaded {
    /// The network for inference on `device`, batch norms folded.
    pub fn net(&self, device: &Device) -> Result<Net, PerceptionError> {
        let vb = VarBuilder::from_tensors(self.tensors.clone(), DType::F32, device);
        let net = Net::new(self.meta.config.clone(), vb).and_then(|n| n.fold()).map_err(|e| PerceptionError::BadCheckpoint {
            path: self.path.clone(),
            problem: format!("its weights do not fit the network its config describes: {e}"),
        })?;
        Ok(net)
    }

    /// Copies its weights (and batch-norm statistics) into `t`, not its
    /// optimiser state: the start of a fine-tuning run.
    pub fn load_weights(&self, t: &Trainable) -> Result<(), PerceptionError> {
        Ok(s2r_train::load_weights(&self.as_checkpoint(), &t.varmap, |_| false)?)
    }

    /// Copies its weights and optimiser state into `t` and `opt` (to resume).
    pub fn restore(&self, t: &Trainable, opt: &mut AdamW) -> Result<(), PerceptionError> {
        Ok(s2r_train::restore(&self.as_checkpoint(), &t.varmap, opt)?)
    }

    /// Its tensors as the shared training code reads a checkpoint.
    fn as_checkpoint(&self) -> s2r_train::Checkpoint {
        s2r_train::Checkpoint { record: String::new(), tensors: self.tensors.clone(), path: self.path.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(t: &Trainable) -> Vec<f32> {
        let vars = t.varmap.data().lock().unwrap().clone();
        let mut names: Vec<_> = vars.keys().cloned().collect();
        names.sort();
        names.iter().flat_map(|n| vars[n].flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
    }

    #[test]
    fn a_seed_fixes_the_initial_weights() {
        let cfg = Config::small(vec!["car".into()], vec!["unlabeled".into(), "road".into()]);
        let a = weights(&Trainable::seeded(cfg.clone(), &Device::Cpu, 3).unwrap());
        let b = weights(&Trainable::seeded(cfg.clone(), &Device::Cpu, 3).unwrap());
        let c = weights(&Trainable::seeded(cfg, &Device::Cpu, 4).unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Kaiming-normal scale: the stem's 27 inputs per output give std √(2/27) ≈ 0.27.
        let spread = a.iter().map(|v| v * v).sum::<f32>() / a.len() as f32;
        assert!(spread > 0.001 && spread < 1.0, "{spread}");
    }
}
