//! The patch stages the policy and the surface predictor see through:
//! 2×2 space-to-depth, then a per-position linear layer and ReLU, stage by
//! stage (after four stages each feature sees a 16×16 patch). Every layer is
//! a matrix product on a reshaped tensor: candle's CPU convolutions train
//! slowly (their input gradients go through its transposed convolution),
//! matrix products do not.

use candle_core::{Module, Result, Tensor};
use candle_nn::{linear, Linear, VarBuilder};

/// `[B, H, W, C]` → `[B, H/2, W/2, 4C]`: each 2×2 block of positions side by side.
pub fn space_to_depth(x: &Tensor) -> Result<Tensor> {
    let (b, h, w, c) = x.dims4()?;
    x.reshape((b, h / 2, 2, w / 2, 2 * c))?.permute((0, 1, 3, 2, 4))?.contiguous()?.reshape((b, h / 2, w / 2, 4 * c))
}

/// Patch stages with their weights under `stage0`, `stage1`, ….
pub struct PatchStages {
    stages: Vec<Linear>,
}

impl PatchStages {
    /// Stages from `c_in` channels to each of `channels` in turn, weights from `vb`.
    pub fn new(c_in: usize, channels: &[usize], vb: &VarBuilder) -> Result<PatchStages> {
        let mut stages = Vec::new();
        let mut c_in = c_in;
        for (i, &c) in channels.iter().enumerate() {
            stages.push(linear(4 * c_in, c, vb.pp(format!("stage{i}")))?);
            c_in = c;
        }
        Ok(PatchStages { stages })
    }

    /// The stages' per-position linear layers, first to last (each after a 2×2 [`space_to_depth`], then ReLU).
    pub fn layers(&self) -> &[Linear] {
        &self.stages
    }

    /// `[B, H, W, C]` → `[B, H/2ⁿ, W/2ⁿ, last channels]` (n stages).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        for s in &self.stages {
            x = s.forward(&space_to_depth(&x)?)?.relu()?;
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn space_to_depth_keeps_each_block_together() {
        // One image 2x4, one channel: values 0..8 row by row.
        let x = Tensor::arange(0f32, 8.0, &Device::Cpu).unwrap().reshape((1, 2, 4, 1)).unwrap();
        let y = space_to_depth(&x).unwrap();
        assert_eq!(y.dims(), &[1, 1, 2, 4]);
        let v: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        // Block (0,0): pixels 0, 1 (top row) and 4, 5 (bottom row).
        assert_eq!(v, [0.0, 1.0, 4.0, 5.0, 2.0, 3.0, 6.0, 7.0]);
    }
}
