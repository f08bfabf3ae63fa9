//! The training loop the reason crate's networks share: seeded weights,
//! AdamW with a cosine learning rate down to 5 % of its peak, a check that the
//! loss stays finite, and the mean loss of the last 100 steps; and how their
//! weights files are written and read.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::ReasonError;

/// How to train.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Steps.
    pub steps: usize,
    /// Frames per step.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Draws the weights, the batches and the augmentation.
    pub seed: u64,
    /// Where the network trains (the CPU, or a GPU with the `cuda` feature).
    pub device: Device,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions { steps: 1500, batch: 32, lr: 2e-3, seed: 0, device: Device::Cpu }
    }
}

/// A trained network with its variables (to save).
pub struct Trained<N> {
    /// The variables.
    pub varmap: VarMap,
    /// The network over them.
    pub net: N,
    /// The last 100 steps' mean loss.
    pub loss: f32,
}

/// Builds a network with `build`, draws its weights from `opts.seed` and
/// trains it for `opts.steps`, each step's loss from `loss` (given the network
/// and the random source that draws batches and augmentation); `what` names
/// the predictor in errors, `progress` gets (step, loss).
pub(crate) fn train<N>(
    what: &'static str,
    opts: &FitOptions,
    build: impl FnOnce(VarBuilder) -> candle_core::Result<N>,
    mut loss: impl FnMut(&N, &mut StdRng) -> Result<Tensor, ReasonError>,
    progress: &mut dyn FnMut(usize, f32),
) -> Result<Trained<N>, ReasonError> {
    let varmap = VarMap::new();
    let net = build(VarBuilder::from_varmap(&varmap, DType::F32, &opts.device)).map_err(crate::candle("building the network"))?;
    s2r_train::seeded_init(&varmap, opts.seed).map_err(crate::candle("drawing the initial weights"))?;
    let mut opt = s2r_train::AdamW::new(&varmap, opts.lr, 1e-4).map_err(crate::candle("building the optimiser"))?;
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut recent = Vec::new();
    for step in 0..opts.steps {
        let p = step as f64 / opts.steps.max(1) as f64;
        opt.lr = opts.lr * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()));
        let loss = loss(&net, &mut rng)?;
        let l = loss.to_scalar::<f32>().map_err(crate::candle("reading the loss"))?;
        if !l.is_finite() {
            return Err(ReasonError::Records { what, problem: format!("the loss diverged at step {step} ({l})") });
        }
        opt.backward_step(&loss).map_err(crate::candle("backward"))?;
        recent.push(l);
        if recent.len() > 100 {
            recent.remove(0);
        }
        progress(step + 1, l);
    }
    let loss = recent.iter().sum::<f32>() / recent.len().max(1) as f32;
    Ok(Trained { varmap, net, loss })
}

/// Writes a network's weights (safetensors, with `record` under the metadata key `key`).
pub(crate) fn save(path: &Path, varmap: &VarMap, key: &str, record: &str) -> Result<(), ReasonError> {
    s2r_train::save(path, varmap, None, key, record).map_err(|e| ReasonError::BadModel { path: path.into(), problem: e.to_string() })
}

/// Reads a weights file written under `key` into the network `build` makes
/// on `device` (`what`: "a hazard predictor"; `network`: "the hazard
/// network", for errors).
pub(crate) fn load<N>(
    path: &Path,
    (key, what, network): (&str, &str, &str),
    device: &Device,
    build: impl FnOnce(VarBuilder) -> candle_core::Result<N>,
) -> Result<N, ReasonError> {
    let bad = |problem: String| ReasonError::BadModel { path: path.into(), problem };
    let c = s2r_train::read(path, key, what).map_err(|e| bad(e.to_string()))?;
    build(VarBuilder::from_tensors(c.tensors, DType::F32, device)).map_err(|e| bad(format!("its weights do not fit {network}: {e}")))
}
