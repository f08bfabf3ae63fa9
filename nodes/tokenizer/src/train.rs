//! Training: reconstruction loss (MSE in [−1, 1]) with AdamW; checkpoints
//! as safetensors (the weights by name, plus `trainer.step`), resumable.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};

use crate::model::{Config, Tokenizer};

/// A model, its optimizer and its step count ([`crate::fit`] drives it).
pub(crate) struct Trainer {
    varmap: VarMap,
    pub(crate) model: Tokenizer,
    opt: AdamW,
    pub(crate) step: usize,
}

/// PSNR in dB of two videos in [−1, 1] (peak-to-peak 2).
fn psnr(a: &Tensor, b: &Tensor) -> Result<f32> {
    let mse = (a - b)?.sqr()?.mean_all()?.to_scalar::<f32>()?;
    Ok(10.0 * (4.0 / mse.max(1e-12)).log10())
}

impl Trainer {
    pub(crate) fn new(cfg: Config, lr: f64, device: &Device) -> Result<Trainer> {
        let varmap = VarMap::new();
        let model = Tokenizer::new(cfg, VarBuilder::from_varmap(&varmap, DType::F32, device))?;
        let opt = AdamW::new(varmap.all_vars(), ParamsAdamW { lr, weight_decay: 0.0, ..Default::default() })?;
        Ok(Trainer { varmap, model, opt, step: 0 })
    }

    pub(crate) fn set_lr(&mut self, lr: f64) {
        self.opt.set_learning_rate(lr);
    }

    /// One optimisation step on a batch [B, T, 3, H, W]; returns the loss.
    pub(crate) fn step(&mut self, batch: &Tensor) -> Result<f32> {
        let out = self.model.reconstruct(batch)?;
        let loss = (out - batch)?.sqr()?.mean_all()?;
        self.opt.backward_step(&loss)?;
        self.step += 1;
        loss.to_scalar::<f32>()
    }

    /// PSNR of the model's reconstruction of `video`, dB.
    pub(crate) fn evaluate(&self, video: &Tensor) -> Result<f32> {
        psnr(&self.model.reconstruct(video)?, video)
    }

    /// Writes the weights, `trainer.step` and `config` (what [`crate::codec::Codec::load`] reads).
    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        let data = self.varmap.data().lock().unwrap();
        let mut all: HashMap<String, Tensor> = data.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
        all.insert("trainer.step".into(), Tensor::new(&[self.step as u32], &Device::Cpu)?);
        let c = &self.model.cfg;
        all.insert("config".into(), Tensor::new(c.to_vec().as_slice(), &Device::Cpu)?);
        candle_core::safetensors::save(&all, path)
    }

    /// Loads weights (and the step) saved by [`Trainer::save`] into this model.
    pub(crate) fn load(&mut self, path: &Path) -> Result<()> {
        self.varmap.load(path)?;
        let t = candle_core::safetensors::load(path, &Device::Cpu)?;
        if let Some(s) = t.get("trainer.step") {
            self.step = s.to_vec1::<u32>()?[0] as usize;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth moving pattern: what a tokenizer should learn quickly.
    fn clip(t: usize, s: usize, phase: f32) -> Result<Tensor> {
        let mut v = Vec::with_capacity(t * 3 * s * s);
        for f in 0..t {
            for c in 0..3 {
                for y in 0..s {
                    for x in 0..s {
                        let u = (x as f32 + 2.0 * f as f32 + phase) / s as f32 * 6.0;
                        v.push(0.6 * (u + c as f32).sin() * ((y as f32) / s as f32 * 3.0).cos());
                    }
                }
            }
        }
        Tensor::from_vec(v, (1, t, 3, s, s), &Device::Cpu)
    }

    #[test]
    fn training_lowers_the_loss_and_checkpoints_resume() -> Result<()> {
        let cfg = Config { width: 16, blocks: 1, ..Config::CV4X8X8 };
        let mut tr = Trainer::new(cfg, 3e-3, &Device::Cpu)?;
        let train = clip(5, 32, 0.0)?;
        let before = tr.evaluate(&train)?;
        let mut losses = Vec::new();
        for _ in 0..60 {
            losses.push(tr.step(&train)?);
        }
        let after = tr.evaluate(&train)?;
        assert!(losses[59] < losses[0] * 0.5, "loss {} -> {}", losses[0], losses[59]);
        assert!(after > before + 3.0, "PSNR {before:.1} -> {after:.1} dB");
        let dir = std::env::temp_dir().join(format!("s2r_tok_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ck = dir.join("ck.safetensors");
        tr.save(&ck)?;
        let mut again = Trainer::new(cfg, 3e-3, &Device::Cpu)?;
        again.load(&ck)?;
        assert_eq!(again.step, 60);
        assert!((again.evaluate(&train)? - after).abs() < 1e-3, "the checkpoint restores the model");
        std::fs::remove_dir_all(&dir).ok();
        Ok(())
    }
}
