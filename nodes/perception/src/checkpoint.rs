//! Checkpoints: one safetensors file with the weights by name, the
//! optimiser's moments (so training resumes where it stopped) and, in the
//! file's metadata under `sim2real.perception`, the [`Meta`] record: the
//! network's config with its class tables, the step, and what it was trained on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
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
}

/// AdamW with decoupled weight decay on convolution weights only; its
/// moments are saved with the weights.
pub struct AdamW {
    vars: Vec<(String, Var, Tensor, Tensor)>,
    /// Steps taken (bias correction).
    pub t: usize,
    /// Learning rate.
    pub lr: f64,
    /// Weight decay.
    pub weight_decay: f64,
}

const BETAS: (f64, f64) = (0.9, 0.999);
const EPS: f64 = 1e-8;

impl AdamW {
    /// An optimiser for every trainable variable of `varmap` (batch-norm
    /// running statistics are variables without gradients and are left alone).
    pub fn new(varmap: &VarMap, lr: f64, weight_decay: f64) -> candle_core::Result<AdamW> {
        let data = varmap.data().lock().expect("varmap lock");
        let mut vars: Vec<(String, Var, Tensor, Tensor)> =
            data.iter().map(|(k, v)| Ok((k.clone(), v.clone(), v.zeros_like()?, v.zeros_like()?))).collect::<candle_core::Result<_>>()?;
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(AdamW { vars, t: 0, lr, weight_decay })
    }

    /// One step from the gradients of `loss`.
    pub fn backward_step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        let grads = loss.backward()?;
        self.t += 1;
        let (b1, b2) = BETAS;
        let c1 = 1.0 - b1.powi(self.t as i32);
        let c2 = 1.0 - b2.powi(self.t as i32);
        for (name, var, m, v) in &mut self.vars {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            *m = ((&*m * b1)? + (g * (1.0 - b1))?)?;
            *v = ((&*v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let step = ((&*m / c1)? / ((&*v / c2)?.sqrt()? + EPS)?)?;
            let decay = if name.ends_with(".weight") && !name.contains(".bn.") { self.weight_decay } else { 0.0 };
            let w = var.as_tensor();
            let next = ((w * (1.0 - self.lr * decay))? - (step * self.lr)?)?;
            var.set(&next)?;
        }
        Ok(())
    }
}

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
        use rand::{Rng, SeedableRng};
        use rand_distr::{Distribution, Normal};
        let t = Trainable::new(cfg, device)?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let vars = t.varmap.data().lock().expect("the variables' lock").clone();
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        let fan_in = |w: &str| vars.get(w).map(|v| v.dims()[1..].iter().product::<usize>());
        for name in names {
            let v = &vars[name];
            let n = v.elem_count();
            let values: Vec<f32> = if let (Some(f), true) = (fan_in(name), v.rank() == 4) {
                let normal = Normal::new(0.0, (2.0 / f as f64).sqrt()).expect("a positive std");
                (0..n).map(|_| normal.sample(&mut rng) as f32).collect()
            } else if let Some(f) =
                name.strip_suffix(".bias").and_then(|layer| fan_in(&format!("{layer}.weight"))).filter(|_| !name.contains(".bn."))
            {
                let b = 1.0 / (f as f64).sqrt();
                (0..n).map(|_| rng.random_range(-b..b) as f32).collect()
            } else {
                continue;
            };
            v.set(&Tensor::from_vec(values, v.shape(), device)?)?;
        }
        t.net.init_biases()?;
        Ok(t)
    }
}

/// Writes weights, optimiser state and `meta` to `path` atomically (a
/// temporary file renamed over it: an interrupted save leaves the last one).
pub fn save(path: &Path, t: &Trainable, opt: Option<&AdamW>, meta: &Meta) -> Result<(), PerceptionError> {
    let candle = |e: candle_core::Error| PerceptionError::Candle { context: format!("saving {}", path.display()), source: e };
    let mut tensors: Vec<(String, Tensor)> = {
        let data = t.varmap.data().lock().expect("varmap lock");
        data.iter()
            .map(|(k, v)| Ok((k.clone(), v.as_tensor().to_device(&Device::Cpu)?)))
            .collect::<candle_core::Result<_>>()
            .map_err(candle)?
    };
    if let Some(o) = opt {
        for (name, _, m, v) in &o.vars {
            tensors.push((format!("optim.m.{name}"), m.to_device(&Device::Cpu).map_err(candle)?));
            tensors.push((format!("optim.v.{name}"), v.to_device(&Device::Cpu).map_err(candle)?));
        }
        tensors.push(("optim.t".into(), Tensor::new(&[o.t as u32], &Device::Cpu).map_err(candle)?));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let json = serde_json::to_string(meta).expect("Meta serialises");
    let info: HashMap<String, String> = [(META_KEY.to_string(), json)].into();
    let tmp = path.with_extension("safetensors.partial");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| PerceptionError::Io { path: dir.to_path_buf(), source })?;
    }
    safetensors::serialize_to_file(tensors.iter().map(|(k, v)| (k.as_str(), v)), Some(info), &tmp)
        .map_err(|e| PerceptionError::Input { path: tmp.clone(), problem: format!("cannot write: {e}") })?;
    std::fs::rename(&tmp, path).map_err(|source| PerceptionError::Io { path: path.to_path_buf(), source })
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
    if !path.is_file() {
        return Err(PerceptionError::MissingCheckpoint { path: path.to_path_buf() });
    }
    let bytes = std::fs::read(path).map_err(|source| PerceptionError::Io { path: path.to_path_buf(), source })?;
    let bad = |problem: String| PerceptionError::BadCheckpoint { path: path.to_path_buf(), problem };
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| bad(format!("a safetensors file without the `{META_KEY}` record: not a perception checkpoint")))?;
    let meta: Meta = serde_json::from_str(json).map_err(|e| bad(format!("its `{META_KEY}` record does not parse: {e}")))?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| bad(e.to_string()))?;
    Ok(Loaded { meta, tensors, path: path.to_path_buf() })
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

    /// Copies the weights into `t` and the optimiser state into `opt` (to resume training).
    pub fn restore(&self, t: &Trainable, opt: &mut AdamW) -> Result<(), PerceptionError> {
        let bad = |problem: String| PerceptionError::BadCheckpoint { path: self.path.clone(), problem };
        let data = t.varmap.data().lock().expect("varmap lock");
        for (name, var) in data.iter() {
            let w = self.tensors.get(name).ok_or_else(|| bad(format!("no tensor `{name}`")))?;
            var.set(&w.to_device(var.device()).map_err(|e| bad(e.to_string()))?).map_err(|e| bad(format!("`{name}`: {e}")))?;
        }
        for (name, var, m, v) in &mut opt.vars {
            if let (Some(a), Some(b)) = (self.tensors.get(&format!("optim.m.{name}")), self.tensors.get(&format!("optim.v.{name}"))) {
                *m = a.to_device(var.device()).map_err(|e| bad(e.to_string()))?;
                *v = b.to_device(var.device()).map_err(|e| bad(e.to_string()))?;
            }
        }
        if let Some(s) = self.tensors.get("optim.t") {
            opt.t = s.to_vec1::<u32>().map_err(|e| bad(e.to_string()))?[0] as usize;
        }
        Ok(())
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
