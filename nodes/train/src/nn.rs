//! Transformer pieces the token models share, built from differentiable
//! tensor operations.

use candle_core::{Module, Tensor, D};
use candle_nn::VarBuilder;

/// Layer normalization over the last dimension (candle's fused layer norm
/// has no backward pass: gradients would stop at it).
pub struct LayerNorm {
    /// The scale, one per feature.
    pub weight: Tensor,
    /// The shift, one per feature.
    pub bias: Tensor,
}

/// A layer norm of `d` features under `vb` (`weight` 1, `bias` 0).
pub fn layer_norm(d: usize, vb: VarBuilder) -> candle_core::Result<LayerNorm> {
    Ok(LayerNorm {
        weight: vb.get_with_hints(d, "weight", candle_nn::Init::Const(1.0))?,
        bias: vb.get_with_hints(d, "bias", candle_nn::Init::Const(0.0))?,
    })
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + 1e-5)?.sqrt()?)?;
        normed.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)
    }
}

/// Multi-head self-attention over `x` [M, L, d] with `heads` heads: `qkv`
/// maps d → 3d (queries, keys, values), `out` d → d; `mask` [L, L] is added
/// to the scores (a large negative number hides a key).
pub fn attend(x: &Tensor, qkv: &impl Module, out: &impl Module, heads: usize, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
    let (m, l, d) = x.dims3()?;
    let dh = d / heads;
    let qkv = qkv.forward(x)?.reshape((m, l, 3, heads, dh))?.permute((2, 0, 3, 1, 4))?;
    let q = qkv.get(0)?.contiguous()?;
    let k = qkv.get(1)?.contiguous()?;
    let v = qkv.get(2)?.contiguous()?;
    let att = (q.matmul(&k.t()?.contiguous()?)? * (1.0 / (dh as f64).sqrt()))?;
    let att = match mask {
        Some(mask) => att.broadcast_add(mask)?,
        None => att,
    };
    let att = candle_nn::ops::softmax(&att, D::Minus1)?;
    let y = att.matmul(&v)?.transpose(1, 2)?.reshape((m, l, d))?;
    out.forward(&y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn layer_norm_centres_and_scales() {
        let vars = VarMap::new();
        let ln = layer_norm(4, VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu)).unwrap();
        let x = Tensor::new(&[[1f32, 2., 3., 4.], [10., 10., 10., 14.]], &Device::Cpu).unwrap();
        let y = ln.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        for row in y {
            let mean: f32 = row.iter().sum::<f32>() / 4.0;
            let var: f32 = row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4.0;
            assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3, "{row:?}");
        }
    }
}
