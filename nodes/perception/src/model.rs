//! The network: one convolutional backbone and neck shared by three heads.
//!
//! Backbone: a stride-2 stem, then three stages that halve the resolution
//! (strides 4, 8, 16), each a strided 3×3 convolution and residual blocks,
//! batch-normalised. Neck: a small feature pyramid back to stride 4
//! (nearest upsampling + 1×1 laterals + a 3×3 fuse; candle's CPU transposed
//! convolution is slow). Heads at stride 4, on two 3×3 trunks:
//! - detection (CenterNet/TTFNet style): a heat map per detected class
//!   (logits; peaks are object centres) and, per cell, the distances to the
//!   box's left, top, right and bottom edges in pixels;
//! - dense: log depth in a canonical camera (focal length
//!   [`Config::focal`] pixels; [`crate::depth_scale`] turns it into metres
//!   for the actual camera, so one network serves any intrinsics), and
//!   per-class segmentation logits.
//!
//! Inference folds every batch norm into its convolution ([`Net::fold`]).

use std::sync::{Arc, Mutex};

use candle_core::{Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::conv::BatchStats;

/// The network's shape and what it predicts, as stored in a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Input width in pixels (a multiple of 16); frames are letterboxed into it.
    pub width: usize,
    /// Input height (a multiple of 16).
    pub height: usize,
    /// Channels of the backbone's four levels (strides 2, 4, 8, 16).
    pub channels: [usize; 4],
    /// Residual blocks in the stages at strides 4, 8 and 16.
    pub blocks: [usize; 3],
    /// Channels of the stride-4 features the heads read.
    pub neck: usize,
    /// Channels of each head's 3×3 trunk.
    pub head: usize,
    /// Focal length (pixels, at the network's input) of the canonical camera
    /// the depth head predicts for.
    pub focal: f32,
    /// The detected classes, in heat-map channel order.
    pub det_classes: Vec<String>,
    /// The segmentation classes (the simulator's class table), in logit order.
    pub seg_classes: Vec<String>,
}

/// Output stride of every head.
pub const STRIDE: usize = 4;

impl Config {
    /// The default network for `det` detected and `seg` segmented classes:
    /// 320×240 input, ≈0.6 M parameters.
    pub fn small(det_classes: Vec<String>, seg_classes: Vec<String>) -> Config {
        Config {
            width: 320,
            height: 240,
            channels: [16, 32, 64, 128],
            blocks: [1, 1, 2],
            neck: 48,
            head: 32,
            focal: 280.0,
            det_classes,
            seg_classes,
        }
    }

    /// The focal length, in pixels of a `w`×`h` frame, of the canonical
    /// camera the network assumes for a frame that comes without intrinsics
    /// ([`Config::focal`] at the input, scaled by the letterbox).
    pub fn frame_focal(&self, w: usize, h: usize) -> f32 {
        self.focal * crate::frame::View::letterbox(w, h, self.width, self.height).k
    }

    /// The output grid (width, height) for an input of `w`×`h`.
    pub fn grid(w: usize, h: usize) -> (usize, usize) {
        (w / STRIDE, h / STRIDE)
    }
}

/// A convolution layer applied: through [`crate::conv`] when training (fast
/// gradients), candle's own otherwise.
fn conv(layer: &Conv2d, x: &Tensor, train: bool) -> Result<Tensor> {
    if train || x.device().is_cpu() {
        crate::conv::conv2d(x, layer.weight(), layer.bias(), layer.config().stride)
    } else {
        layer.forward(x)
    }
}

/// Batch normalisation: batch statistics while training (the fused kernel
/// of [`crate::conv::batch_norm`] on the CPU), the running ones otherwise.
#[derive(Clone, Debug)]
struct Norm {
    gamma: Tensor,
    beta: Tensor,
    mean: candle_core::Var,
    var: candle_core::Var,
    stats: Arc<Mutex<BatchStats>>,
}

const NORM_EPS: f64 = 1e-5;
const NORM_MOMENTUM: f64 = 0.05;

impl Norm {
    fn new(c: usize, vb: VarBuilder) -> Result<Norm> {
        let gamma = vb.get_with_hints(c, "weight", candle_nn::Init::Const(1.0))?;
        let beta = vb.get_with_hints(c, "bias", candle_nn::Init::Const(0.0))?;
        let mean = vb.get_with_hints(c, "running_mean", candle_nn::Init::Const(0.0))?;
        let var = vb.get_with_hints(c, "running_var", candle_nn::Init::Const(1.0))?;
        Ok(Norm {
            gamma,
            beta,
            mean: candle_core::Var::from_tensor(&mean)?,
            var: candle_core::Var::from_tensor(&var)?,
            stats: Default::default(),
        })
    }

    /// The per-channel scale and shift [C] of the running statistics:
    /// γ/√(σ² + ε) and β − μ·γ/√(σ² + ε) (inference, and the fold into a convolution).
    fn scale_shift(&self) -> Result<(Tensor, Tensor)> {
        let a = (&self.gamma * (self.var.as_tensor() + NORM_EPS)?.sqrt()?.recip()?)?;
        let b = (&self.beta - (self.mean.as_tensor() * &a)?)?;
        Ok((a, b))
    }

    fn forward(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        let c = self.gamma.dim(0)?;
        let shape = (1, c, 1, 1);
        if !train {
            let (a, b) = self.scale_shift()?;
            return z.broadcast_mul(&a.reshape(shape)?)?.broadcast_add(&b.reshape(shape)?);
        }
        let n = (z.elem_count() / c) as f64;
        let (y, mean, var) = if z.device().is_cpu() {
            let y = crate::conv::batch_norm(z, &self.gamma, &self.beta, NORM_EPS, &self.stats)?;
            let st = self.stats.lock().expect("stats lock");
            (y, Tensor::new(st.mean.as_slice(), z.device())?, Tensor::new(st.var.as_slice(), z.device())?)
        } else {
            let mean = z.mean_keepdim((0, 2, 3))?;
            let var = z.broadcast_sub(&mean)?.sqr()?.mean_keepdim((0, 2, 3))?;
            let a = self.gamma.reshape(shape)?.broadcast_div(&(&var + NORM_EPS)?.sqrt()?)?;
            let y = z.broadcast_sub(&mean)?.broadcast_mul(&a)?.broadcast_add(&self.beta.reshape(shape)?)?;
            (y, mean.flatten_all()?.detach(), var.flatten_all()?.detach())
        };
        self.mean.set(&((self.mean.as_tensor() * (1.0 - NORM_MOMENTUM))? + (mean * NORM_MOMENTUM)?)?)?;
        self.var.set(&((self.var.as_tensor() * (1.0 - NORM_MOMENTUM))? + (var * (NORM_MOMENTUM * n / (n - 1.0).max(1.0)))?)?)?;
        Ok(y)
    }
}

/// A convolution followed by batch norm (folded away for inference).
#[derive(Clone, Debug)]
pub(crate) struct ConvBn {
    pub(crate) conv: Conv2d,
    bn: Option<Norm>,
}

impl ConvBn {
    fn new(cin: usize, cout: usize, k: usize, stride: usize, vb: VarBuilder) -> Result<ConvBn> {
        let cfg = Conv2dConfig { padding: k / 2, stride, ..Default::default() };
        let conv = candle_nn::conv2d_no_bias(cin, cout, k, cfg, vb.pp("conv"))?;
        Ok(ConvBn { conv, bn: Some(Norm::new(cout, vb.pp("bn"))?) })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let z = conv(&self.conv, x, train)?;
        match &self.bn {
            Some(bn) => bn.forward(&z, train),
            None => Ok(z),
        }
    }

    /// Whether batch norm is folded in (inference form).
    pub(crate) fn folded(&self) -> bool {
        self.bn.is_none()
    }

    /// The same layer as one convolution with a bias: w' = w·a, b' = b (the running statistics' [`Norm::scale_shift`]).
    fn fold(&self) -> Result<ConvBn> {
        let Some(bn) = &self.bn else { return Ok(self.clone()) };
        let (a, b) = bn.scale_shift()?;
        let w = self.conv.weight().broadcast_mul(&a.reshape(((), 1, 1, 1))?)?;
        Ok(ConvBn { conv: Conv2d::new(w, Some(b), *self.conv.config()), bn: None })
    }
}

/// Two 3×3 convolutions with a skip connection.
#[derive(Clone, Debug)]
pub(crate) struct Residual {
    pub(crate) a: ConvBn,
    pub(crate) b: ConvBn,
}

impl Residual {
    fn new(c: usize, vb: VarBuilder) -> Result<Residual> {
        Ok(Residual { a: ConvBn::new(c, c, 3, 1, vb.pp("a"))?, b: ConvBn::new(c, c, 3, 1, vb.pp("b"))? })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let y = self.a.forward(x, train)?.relu()?;
        (self.b.forward(&y, train)? + x)?.relu()
    }

    fn fold(&self) -> Result<Residual> {
        Ok(Residual { a: self.a.fold()?, b: self.b.fold()? })
    }
}

/// A strided convolution and residual blocks.
#[derive(Clone, Debug)]
pub(crate) struct Stage {
    pub(crate) down: ConvBn,
    pub(crate) blocks: Vec<Residual>,
}

impl Stage {
    fn new(cin: usize, cout: usize, blocks: usize, vb: VarBuilder) -> Result<Stage> {
        let down = ConvBn::new(cin, cout, 3, 2, vb.pp("down"))?;
        let blocks = (0..blocks).map(|i| Residual::new(cout, vb.pp(format!("block{i}")))).collect::<Result<_>>()?;
        Ok(Stage { down, blocks })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut y = self.down.forward(x, train)?.relu()?;
        for b in &self.blocks {
            y = b.forward(&y, train)?;
        }
        Ok(y)
    }

    fn fold(&self) -> Result<Stage> {
        Ok(Stage { down: self.down.fold()?, blocks: self.blocks.iter().map(Residual::fold).collect::<Result<_>>()? })
    }
}

/// A 3×3 trunk and a 1×1 output layer (with bias).
#[derive(Clone, Debug)]
pub(crate) struct Head {
    pub(crate) trunk: ConvBn,
    pub(crate) out: Conv2d,
}

impl Head {
    fn new(cin: usize, hidden: usize, cout: usize, vb: VarBuilder) -> Result<Head> {
        Ok(Head {
            trunk: ConvBn::new(cin, hidden, 3, 1, vb.pp("trunk"))?,
            out: candle_nn::conv2d(hidden, cout, 1, Default::default(), vb.pp("out"))?,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        conv(&self.out, &self.trunk.forward(x, train)?.relu()?, train)
    }

    fn fold(&self) -> Result<Head> {
        Ok(Head { trunk: self.trunk.fold()?, out: self.out.clone() })
    }
}

/// What the network predicts for a batch, all at stride [`STRIDE`].
#[derive(Debug)]
pub struct Outputs {
    /// Heat-map logits [B, det classes, h, w].
    pub heat: Tensor,
    /// Box edges as distances from each cell's centre [B, 4, h, w]: left,
    /// top, right, bottom, in input pixels (positive).
    pub ltrb: Tensor,
    /// Log depth in the canonical camera [B, 1, h, w].
    pub log_depth: Tensor,
    /// Segmentation logits [B, seg classes, h, w].
    pub seg: Tensor,
}

/// The multi-task network.
#[derive(Clone, Debug)]
pub struct Net {
    /// Its configuration.
    pub cfg: Config,
    pub(crate) stem: ConvBn,
    pub(crate) stages: Vec<Stage>,
    pub(crate) lat16: ConvBn,
    pub(crate) lat8: ConvBn,
    pub(crate) fuse8: ConvBn,
    pub(crate) lat4: ConvBn,
    pub(crate) top4: ConvBn,
    pub(crate) fuse4: ConvBn,
    pub(crate) det: Head,
    pub(crate) dense: Head,
}

/// The largest log-distance the box head may output (e^6 strides ≈ 1600 px).
pub(crate) const MAX_LOG_EDGE: f64 = 6.0;

impl Net {
    /// The network with the variables of `vb` (fresh ones from a `VarMap`, or a checkpoint's).
    pub fn new(cfg: Config, vb: VarBuilder) -> Result<Net> {
        let [c1, c2, c3, c4] = cfg.channels;
        let n = cfg.neck;
        let stem = ConvBn::new(3, c1, 3, 2, vb.pp("stem"))?;
        let stages = vec![
            Stage::new(c1, c2, cfg.blocks[0], vb.pp("stage4"))?,
            Stage::new(c2, c3, cfg.blocks[1], vb.pp("stage8"))?,
            Stage::new(c3, c4, cfg.blocks[2], vb.pp("stage16"))?,
        ];
        let neck = vb.pp("neck");
        let lat16 = ConvBn::new(c4, c3, 1, 1, neck.pp("lat16"))?;
        let lat8 = ConvBn::new(c3, c3, 1, 1, neck.pp("lat8"))?;
        let fuse8 = ConvBn::new(c3, c3, 3, 1, neck.pp("fuse8"))?;
        let lat4 = ConvBn::new(c2, n, 1, 1, neck.pp("lat4"))?;
        let top4 = ConvBn::new(c3, n, 1, 1, neck.pp("top4"))?;
        let fuse4 = ConvBn::new(n, n, 3, 1, neck.pp("fuse4"))?;
        let det = Head::new(n, cfg.head, cfg.det_classes.len() + 4, vb.pp("det"))?;
        let dense = Head::new(n, cfg.head, 1 + cfg.seg_classes.len(), vb.pp("dense"))?;
        Ok(Net { cfg, stem, stages, lat16, lat8, fuse8, lat4, top4, fuse4, det, dense })
    }

    /// Sets the heat map's bias so that every cell starts at probability
    /// 0.01 (focal-loss practice: the first steps are not swamped by
    /// background), and the depth bias at the log of 10 m.
    pub fn init_biases(&self) -> Result<()> {
        let set = |conv: &Conv2d, values: Vec<f32>| -> Result<()> {
            let b = conv.bias().expect("output layers have a bias");
            let var = candle_core::Var::from_tensor(b)?;
            var.set(&Tensor::from_vec(values, b.dims(), b.device())?)
        };
        let k = self.cfg.det_classes.len();
        let mut det = vec![(0.01f32 / 0.99).ln(); k];
        det.extend([0.0; 4]);
        set(&self.det.out, det)?;
        let mut dense = vec![10f32.ln()];
        dense.extend(vec![0.0; self.cfg.seg_classes.len()]);
        set(&self.dense.out, dense)
    }

    /// Runs a batch [B, 3, H, W] of normalised frames ([`crate::frame::normalise`]).
    /// `train` uses batch statistics (and updates the running ones).
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Outputs> {
        let x2 = self.stem.forward(x, train)?.relu()?;
        let x4 = self.stages[0].forward(&x2, train)?;
        let x8 = self.stages[1].forward(&x4, train)?;
        let x16 = self.stages[2].forward(&x8, train)?;
        let (h8, w8) = (x8.dim(2)?, x8.dim(3)?);
        let p8 = (self.lat16.forward(&x16, train)?.upsample_nearest2d(h8, w8)? + self.lat8.forward(&x8, train)?)?.relu()?;
        let p8 = self.fuse8.forward(&p8, train)?.relu()?;
        let (h4, w4) = (x4.dim(2)?, x4.dim(3)?);
        let p4 = (self.top4.forward(&p8, train)?.upsample_nearest2d(h4, w4)? + self.lat4.forward(&x4, train)?)?.relu()?;
        let p4 = self.fuse4.forward(&p4, train)?.relu()?;
        let k = self.cfg.det_classes.len();
        let det = self.det.forward(&p4, train)?;
        let heat = det.narrow(1, 0, k)?;
        let ltrb = (det.narrow(1, k, 4)?.clamp(-4.0, MAX_LOG_EDGE)?.exp()? * STRIDE as f64)?;
        let dense = self.dense.forward(&p4, train)?;
        let log_depth = dense.narrow(1, 0, 1)?;
        let seg = dense.narrow(1, 1, self.cfg.seg_classes.len())?;
        Ok(Outputs { heat, ltrb, log_depth, seg })
    }

    /// The same network with every batch norm folded into its convolution:
    /// identical outputs in inference, fewer passes over memory.
    pub fn fold(&self) -> Result<Net> {
        Ok(Net {
            cfg: self.cfg.clone(),
            stem: self.stem.fold()?,
            stages: self.stages.iter().map(Stage::fold).collect::<Result<_>>()?,
            lat16: self.lat16.fold()?,
            lat8: self.lat8.fold()?,
            fuse8: self.fuse8.fold()?,
            lat4: self.lat4.fold()?,
            top4: self.top4.fold()?,
            fuse4: self.fuse4.fold()?,
            det: self.det.fold()?,
            dense: self.dense.fold()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn shapes_and_folding_keep_outputs() -> Result<()> {
        let vm = VarMap::new();
        let cfg = Config::small(vec!["vehicle".into(), "pedestrian".into()], (0..5).map(|i| format!("c{i}")).collect());
        let net = Net::new(cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu))?;
        net.init_biases()?;
        let x = Tensor::randn(0f32, 1.0, (2, 3, 64, 96), &Device::Cpu)?;
        // A few training passes move the running statistics away from (0, 1).
        for _ in 0..3 {
            net.forward(&x, true)?;
        }
        let a = net.forward(&x, false)?;
        assert_eq!(a.heat.dims(), &[2, 2, 16, 24]);
        assert_eq!(a.ltrb.dims(), &[2, 4, 16, 24]);
        assert_eq!(a.log_depth.dims(), &[2, 1, 16, 24]);
        assert_eq!(a.seg.dims(), &[2, 5, 16, 24]);
        let b = net.fold()?.forward(&x, false)?;
        for (p, q) in [(&a.heat, &b.heat), (&a.ltrb, &b.ltrb), (&a.log_depth, &b.log_depth), (&a.seg, &b.seg)] {
            let d = (p - q)?.abs()?.max_all()?.to_scalar::<f32>()?;
            let m = p.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(d <= 1e-4 * m.max(1.0), "folded output differs by {d}");
        }
        Ok(())
    }
}
