//! Training-time convolution and batch normalisation as fused CPU kernels.
//!
//! candle differentiates `conv2d` through a transposed convolution that its
//! CPU backend computes with direct loops, and batch normalisation as a
//! chain of broadcast operations, each a full pass over the activations (and
//! its gradient several more): a training step of this network spent most
//! of its time in those passes, not in matrix products. Here a convolution
//! is an unfold (im2col) and one batched matrix product, and the unfold's
//! gradient is its fold (col2im); batch normalisation is one kernel forward
//! and one backward. On other devices candle's own operations are used.
//! Inference uses candle's `conv2d` with the batch norm folded in.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `x` [B, C, H, W] convolved with `w` [O, C, k, k] (`k` odd), zero padding
/// `k / 2`, stride `stride`; optional bias [O]. The same values as
/// `x.conv2d(w, k / 2, stride, 1, 1)`.
pub fn conv2d(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, stride: usize) -> Result<Tensor> {
    let (o, _, k, _) = w.dims4()?;
    if !x.device().is_cpu() {
        let y = x.conv2d(w, k / 2, stride, 1, 1)?;
        return match bias {
            Some(b) => y.broadcast_add(&b.reshape((1, o, 1, 1))?),
            None => Ok(y),
        };
    }
    let (b, c, h, wd) = x.dims4()?;
    let geo = Geometry { c, h, w: wd, k, stride, pad: k / 2 };
    let (ho, wo) = geo.out();
    let cols = if k == 1 && stride == 1 { x.reshape((b, c, h * wd))? } else { x.contiguous()?.apply_op1(Unfold(geo))? };
    let y = w.reshape((o, ()))?.broadcast_left(b)?.matmul(&cols)?;
    let y = match bias {
        Some(bias) => y.broadcast_add(&bias.reshape((1, o, 1))?)?,
        None => y,
    };
    y.reshape((b, o, ho, wo))
}

/// A convolution's input size and window.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    pad: usize,
}

impl Geometry {
    fn out(&self) -> (usize, usize) {
        ((self.h + 2 * self.pad - self.k) / self.stride + 1, (self.w + 2 * self.pad - self.k) / self.stride + 1)
    }

    /// For kernel row ky and output row i: the input row, if inside.
    fn row(&self, ky: usize, i: usize) -> Option<usize> {
        (i * self.stride + ky).checked_sub(self.pad).filter(|&y| y < self.h)
    }

    /// For kernel column kx: the output columns [j0, j1) whose input column
    /// x = j·stride + kx − pad is inside, and x at j0.
    fn columns(&self, kx: usize, wo: usize) -> (usize, usize, usize) {
        let s = self.stride;
        let j0 = if kx >= self.pad { 0 } else { (self.pad - kx).div_ceil(s) };
        let j1 = if self.w + self.pad > kx { ((self.w - 1 + self.pad - kx) / s + 1).min(wo) } else { 0 };
        (j0, j1.max(j0), (j0 * s + kx).saturating_sub(self.pad))
    }
}

/// [B, C, H, W] → [B, C·k·k, Ho·Wo] (row c·k² + ky·k + kx, the layout of a conv weight).
struct Unfold(Geometry);

fn f32s<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s.as_slice::<f32>()?[a..b]),
        None => candle_core::bail!("{op}: input not contiguous"),
    }
}

impl CustomOp1 for Unfold {
    fn name(&self) -> &'static str {
        "s2r-unfold"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let x = f32s(s, l, self.name())?;
        let b = l.dims()[0];
        let (ho, wo) = g.out();
        let kk = g.k * g.k;
        let mut out = vec![0f32; b * g.c * kk * ho * wo];
        out.par_chunks_mut(kk * ho * wo).enumerate().for_each(|(bc, rows)| {
            let plane = &x[bc * g.h * g.w..(bc + 1) * g.h * g.w];
            for ky in 0..g.k {
                for kx in 0..g.k {
                    let row = &mut rows[(ky * g.k + kx) * ho * wo..(ky * g.k + kx + 1) * ho * wo];
                    let (j0, j1, x0) = g.columns(kx, wo);
                    for i in 0..ho {
                        let Some(y) = g.row(ky, i) else { continue };
                        let (src, dst) = (&plane[y * g.w..(y + 1) * g.w], &mut row[i * wo..(i + 1) * wo]);
                        if g.stride == 1 {
                            dst[j0..j1].copy_from_slice(&src[x0..x0 + (j1 - j0)]);
                        } else {
                            for (n, d) in dst[j0..j1].iter_mut().enumerate() {
                                *d = src[x0 + n * g.stride];
                            }
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((b, g.c * kk, ho * wo))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&Fold(self.0))?))
    }
}

/// The adjoint of [`Unfold`]: [B, C·k·k, Ho·Wo] → [B, C, H, W], overlapping windows summed.
struct Fold(Geometry);

impl CustomOp1 for Fold {
    fn name(&self) -> &'static str {
        "s2r-fold"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let cols = f32s(s, l, self.name())?;
        let b = l.dims()[0];
        let (ho, wo) = g.out();
        let kk = g.k * g.k;
        let mut out = vec![0f32; b * g.c * g.h * g.w];
        out.par_chunks_mut(g.h * g.w).enumerate().for_each(|(bc, plane)| {
            let rows = &cols[bc * kk * ho * wo..(bc + 1) * kk * ho * wo];
            for ky in 0..g.k {
                for kx in 0..g.k {
                    let row = &rows[(ky * g.k + kx) * ho * wo..(ky * g.k + kx + 1) * ho * wo];
                    let (j0, j1, x0) = g.columns(kx, wo);
                    for i in 0..ho {
                        let Some(y) = g.row(ky, i) else { continue };
                        let (dst, src) = (&mut plane[y * g.w..(y + 1) * g.w], &row[i * wo..(i + 1) * wo]);
                        for (n, v) in src[j0..j1].iter().enumerate() {
                            dst[x0 + n * g.stride] += v;
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((b, g.c, g.h, g.w))))
    }
}

/// Per-channel batch statistics of the last forward pass: mean and 1/σ.
#[derive(Debug, Default)]
pub struct BatchStats {
    /// Mean per channel.
    pub mean: Vec<f32>,
    /// Biased variance per channel.
    pub var: Vec<f32>,
}

/// Training-mode batch norm of `z` [B, C, H, W] with scale `gamma` and shift
/// `beta` [C]; the batch statistics used are left in `stats`.
pub fn batch_norm(z: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64, stats: &Arc<Mutex<BatchStats>>) -> Result<Tensor> {
    z.contiguous()?.apply_op3(gamma, beta, BatchNorm { eps, stats: stats.clone() })
}

struct BatchNorm {
    eps: f64,
    stats: Arc<Mutex<BatchStats>>,
}

/// Per channel, the sum over (B, H·W) of f(channel, flat index) for a contiguous [B, C, H·W] layout.
fn channel_sums(b: usize, c: usize, hw: usize, f: impl Fn(usize, usize) -> f64 + Sync) -> Vec<f64> {
    (0..c).into_par_iter().map(|ch| (0..b).map(|n| (0..hw).map(|i| f(ch, (n * c + ch) * hw + i)).sum::<f64>()).sum()).collect()
}

impl CustomOp3 for BatchNorm {
    fn name(&self) -> &'static str {
        "s2r-batch-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (z, gamma, beta) = (f32s(s1, l1, self.name())?, f32s(s2, l2, self.name())?, f32s(s3, l3, self.name())?);
        let d = l1.dims();
        let (b, c, hw) = (d[0], d[1], d[2..].iter().product::<usize>());
        let n = (b * hw) as f64;
        let mean: Vec<f64> = channel_sums(b, c, hw, |_, i| z[i] as f64).into_iter().map(|s| s / n).collect();
        let var: Vec<f64> = channel_sums(b, c, hw, |ch, i| (z[i] as f64 - mean[ch]).powi(2)).into_iter().map(|s| s / n).collect();
        let a: Vec<f32> = (0..c).map(|ch| (gamma[ch] as f64 / (var[ch] + self.eps).sqrt()) as f32).collect();
        let sh: Vec<f32> = (0..c).map(|ch| beta[ch] - mean[ch] as f32 * a[ch]).collect();
        let mut out = vec![0f32; z.len()];
        out.par_chunks_mut(hw).enumerate().for_each(|(nc, plane)| {
            let ch = nc % c;
            for (o, v) in plane.iter_mut().zip(&z[nc * hw..(nc + 1) * hw]) {
                *o = v * a[ch] + sh[ch];
            }
        });
        let mut st = self.stats.lock().expect("stats lock");
        st.mean = mean.iter().map(|&m| m as f32).collect();
        st.var = var.iter().map(|&v| v as f32).collect();
        Ok((CpuStorage::F32(out), Shape::from(d)))
    }

    fn bwd(
        &self,
        z: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = z.dims().to_vec();
        let (b, c, hw) = (d[0], d[1], d[2..].iter().product::<usize>());
        let zv = z.flatten_all()?.to_vec1::<f32>()?;
        let dy = grad.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let g = gamma.to_vec1::<f32>()?;
        let (mean, inv): (Vec<f32>, Vec<f32>) = {
            let st = self.stats.lock().expect("stats lock");
            (st.mean.clone(), st.var.iter().map(|&v| 1.0 / (v as f64 + self.eps).sqrt() as f32).collect())
        };
        let n = (b * hw) as f64;
        let xhat = |ch: usize, i: usize| (zv[i] - mean[ch]) * inv[ch];
        let sum_dy = channel_sums(b, c, hw, |_, i| dy[i] as f64);
        let sum_dy_xhat = channel_sums(b, c, hw, |ch, i| (dy[i] * xhat(ch, i)) as f64);
        let mut dz = vec![0f32; zv.len()];
        dz.par_chunks_mut(hw).enumerate().for_each(|(nc, plane)| {
            let ch = nc % c;
            let (m1, m2, k) = ((sum_dy[ch] / n) as f32, (sum_dy_xhat[ch] / n) as f32, g[ch] * inv[ch]);
            for (i, o) in plane.iter_mut().enumerate() {
                let idx = nc * hw + i;
                *o = k * (dy[idx] - m1 - xhat(ch, idx) * m2);
            }
        });
        let dev = z.device();
        let dz = Tensor::from_vec(dz, d, dev)?;
        let dgamma = Tensor::from_vec(sum_dy_xhat.iter().map(|&v| v as f32).collect::<Vec<_>>(), c, dev)?;
        let dbeta = Tensor::from_vec(sum_dy.iter().map(|&v| v as f32).collect::<Vec<_>>(), c, dev)?;
        Ok((Some(dz), Some(dgamma), Some(dbeta)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn convolution_matches_candle_values_and_gradients() -> Result<()> {
        let dev = Device::Cpu;
        for (k, stride, h, w) in [(3, 1, 7, 9), (3, 2, 8, 10), (3, 2, 7, 9), (1, 1, 5, 6), (1, 2, 6, 6)] {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, h, w), &dev)?)?;
            let wt = Var::from_tensor(&Tensor::randn(0f32, 1.0, (4, 3, k, k), &dev)?)?;
            let ours = conv2d(x.as_tensor(), wt.as_tensor(), None, stride)?;
            let theirs = x.as_tensor().conv2d(wt.as_tensor(), k / 2, stride, 1, 1)?;
            assert_eq!(ours.dims(), theirs.dims());
            let d = (&ours - &theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(d < 1e-4, "k {k} stride {stride}: values differ by {d}");
            // A loss that weighs every output differently, so that every gradient path counts.
            let weights = Tensor::randn(0f32, 1.0, ours.dims(), &dev)?;
            let g1 = (ours * &weights)?.sum_all()?.backward()?;
            let g2 = (theirs * &weights)?.sum_all()?.backward()?;
            for v in [&x, &wt] {
                let (a, b) = (g1.get(v.as_tensor()).unwrap(), g2.get(v.as_tensor()).unwrap());
                let d = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
                let m = b.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(d < 1e-4 * m.max(1.0), "k {k} stride {stride}: gradients differ by {d}");
            }
        }
        Ok(())
    }

    #[test]
    fn batch_norm_matches_its_definition_and_gradients() -> Result<()> {
        let dev = Device::Cpu;
        let z = Var::from_tensor(&(Tensor::randn(0f32, 2.0, (3, 4, 5, 6), &dev)? + 1.5)?)?;
        let gamma = Var::from_tensor(&Tensor::new(&[1.0f32, 0.5, 2.0, -1.0], &dev)?)?;
        let beta = Var::from_tensor(&Tensor::new(&[0.0f32, 1.0, -1.0, 0.3], &dev)?)?;
        let stats = Arc::new(Mutex::new(BatchStats::default()));
        let ours = batch_norm(z.as_tensor(), gamma.as_tensor(), beta.as_tensor(), 1e-5, &stats)?;
        // The same with candle's operations.
        let zt = z.as_tensor();
        let mean = zt.mean_keepdim((0, 2, 3))?;
        let var = zt.broadcast_sub(&mean)?.sqr()?.mean_keepdim((0, 2, 3))?;
        let theirs = zt
            .broadcast_sub(&mean)?
            .broadcast_div(&(var + 1e-5)?.sqrt()?)?
            .broadcast_mul(&gamma.as_tensor().reshape((1, 4, 1, 1))?)?
            .broadcast_add(&beta.as_tensor().reshape((1, 4, 1, 1))?)?;
        let d = (&ours - &theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-4, "values differ by {d}");
        let weights = Tensor::randn(0f32, 1.0, ours.dims(), &dev)?;
        let g1 = (ours * &weights)?.sum_all()?.backward()?;
        let g2 = (theirs * &weights)?.sum_all()?.backward()?;
        for v in [&z, &gamma, &beta] {
            let (a, b) = (g1.get(v.as_tensor()).unwrap(), g2.get(v.as_tensor()).unwrap());
            let d = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(d < 1e-3, "gradients differ by {d}");
        }
        assert_eq!(stats.lock().unwrap().mean.len(), 4);
        Ok(())
    }
}
