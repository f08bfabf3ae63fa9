//! The causal video tokenizer. Encoder: two Haar levels (a 4×4 patchify) →
//! a strided convolution to 1/8 (and one more to 1/16) → causal temporal
//! mixing per frame → temporal compression 4× or 8× (1×1 convolutions per
//! frame of a group, summed) → residual blocks at the latent rate → a
//! continuous latent, or an FSQ code. The decoder mirrors it: residual
//! blocks at the latent rate → one frame per group slot → causal temporal
//! mixing → convolutions whose outputs are Haar bands, inverted up to full
//! resolution (upsampling without a transposed convolution, which candle's
//! CPU path makes slow).
//!
//! The expensive layers run once per latent frame, not per frame, so that
//! 256×256 video encodes and decodes at ≥ 100 frames/s on two CPU cores.
//!
//! Causality: latent 0 is made from frame 0 alone; latent j ≥ 1 from frames
//! up to j·k (k the temporal factor), through temporal convolutions that pad
//! with the first frame, so nothing ever sees a later frame.
//!
//! `tools/tokenizer_gpu.py` holds the same network in PyTorch (same weight
//! names and layouts) to train on a CUDA machine; keep the two in step.

use candle_core::{Module, Result, Tensor};
use candle_nn::{conv2d, Conv2d, Conv2dConfig, VarBuilder};

use crate::{fsq, haar};

/// Which tokenizer: compression, latent and size of the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Spatial compression: 8 or 16.
    pub spatial: usize,
    /// Temporal compression: 4 or 8.
    pub temporal: usize,
    /// Continuous latent channels (16), or None for FSQ (6 channels, 64,000 codes).
    pub continuous: Option<usize>,
    /// Width of the network.
    pub width: usize,
    /// Residual blocks at the latent rate, in the encoder and in the decoder.
    pub blocks: usize,
}

impl Config {
    /// Continuous 4×8×8 with 16 channels (Cosmos-Tokenizer CV4x8x8's shape).
    pub const CV4X8X8: Config = Config { spatial: 8, temporal: 4, continuous: Some(16), width: 64, blocks: 2 };
    /// Discrete 8×16×16 with FSQ levels 8, 8, 8, 5, 5, 5 ([`fsq::LEVELS`]; Cosmos-Tokenizer DV8x16x16's shape).
    pub const DV8X16X16: Config = Config { spatial: 16, temporal: 8, continuous: None, width: 64, blocks: 2 };

    /// The variant as Cosmos-Tokenizer names it: `c`ontinuous or `d`iscrete,
    /// then temporal × spatial × spatial (`cv4x8x8`, `dv8x16x16`); width and
    /// blocks are not part of it. A TokenFrame's codec is `sim2real/<name>`.
    pub fn name(&self) -> String {
        format!("{}v{}x{}x{}", if self.continuous.is_some() { "c" } else { "d" }, self.temporal, self.spatial, self.spatial)
    }

    /// Channels of a latent frame out of the encoder: the continuous
    /// channels, or 6 FSQ values (one per level) that a code is made from.
    pub fn latent_channels(&self) -> usize {
        self.continuous.unwrap_or(fsq::LEVELS.len())
    }

    /// Latent frames for `frames` input frames (1 + k·temporal).
    pub fn latent_frames(&self, frames: usize) -> usize {
        1 + (frames - 1) / self.temporal
    }

    /// As stored in a checkpoint's `config` tensor.
    pub fn to_vec(&self) -> Vec<u32> {
        [self.spatial, self.temporal, self.continuous.unwrap_or(0), self.width, self.blocks].iter().map(|&v| v as u32).collect()
    }

    /// Back from a `config` tensor; `None` if it is not one this code builds
    /// (another length, spatial not 8 or 16, temporal not 1 to 16, …).
    pub fn from_vec(c: &[u32]) -> Option<Config> {
        let cfg = match *c {
            [s, t, l, w, b] => Config {
                spatial: s as usize,
                temporal: t as usize,
                continuous: (l > 0).then_some(l as usize),
                width: w as usize,
                blocks: b as usize,
            },
            _ => return None,
        };
        let ok = matches!(cfg.spatial, 8 | 16) && matches!(cfg.temporal, 1..=16) && cfg.width > 0 && cfg.blocks < 64;
        ok.then_some(cfg)
    }
}

fn conv(i: usize, o: usize, k: usize, stride: usize, vb: VarBuilder) -> Result<Conv> {
    Ok(Conv { inner: conv2d(i, o, k, Conv2dConfig { padding: k / 2, stride, ..Default::default() }, vb)?, gemm: None })
}

/// A convolution: candle's (trainable) or, once [`Conv::prepare`]d for
/// inference, as an explicit im2col + one matrix product (the `gemm` crate
/// runs that about twice as fast as candle 0.11's tiled CPU convolution).
pub(crate) struct Conv {
    pub(crate) inner: Conv2d,
    /// Weights as [out, k·k·in] (index (ky·k + kx)·in + c) and bias as [out, 1].
    gemm: Option<(Tensor, Option<Tensor>)>,
}

impl Conv {
    fn from(inner: Conv2d) -> Conv {
        Conv { inner, gemm: None }
    }

    /// Switches to the im2col path; candle's weights stay, so call it again
    /// after they change.
    fn prepare(&mut self) -> Result<()> {
        let w = self.inner.weight();
        let (o, i, kh, kw) = w.dims4()?;
        let mat = w.permute((0, 2, 3, 1))?.reshape((o, kh * kw * i))?.contiguous()?;
        let bias = self.inner.bias().map(|b| b.reshape((o, 1))).transpose()?;
        self.gemm = Some((mat, bias));
        Ok(())
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let Some((w, bias)) = &self.gemm else {
            return self.inner.forward(x);
        };
        let cfg = self.inner.config();
        let (k, s, p) = (self.inner.weight().dim(2)?, cfg.stride, cfg.padding);
        let (n, c, h, wd) = x.dims4()?;
        let (oh, ow) = ((h + 2 * p - k) / s + 1, (wd + 2 * p - k) / s + 1);
        let cols = if k == 1 && s == 1 && p == 0 {
            x.reshape((n, c, h * wd))?
        } else {
            // Pad to a multiple of the stride, then split rows and columns by
            // phase, so that every tap is a plain window of one phase plane.
            let hp = (h + 2 * p).div_ceil(s) * s;
            let wp = (wd + 2 * p).div_ceil(s) * s;
            let xp = x.pad_with_zeros(2, p, hp - h - p)?.pad_with_zeros(3, p, wp - wd - p)?;
            let x6 = xp.reshape((n, c, hp / s, s, wp / s, s))?;
            let mut taps = Vec::with_capacity(k * k);
            for ky in 0..k {
                for kx in 0..k {
                    let t = x6.narrow(2, ky / s, oh)?.narrow(3, ky % s, 1)?.narrow(4, kx / s, ow)?.narrow(5, kx % s, 1)?;
                    taps.push(t.reshape((n, c, oh * ow))?);
                }
            }
            Tensor::cat(&taps, 1)?
        };
        let y = w.broadcast_matmul(&cols)?;
        let y = match bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        y.reshape((n, w.dim(0)?, oh, ow))
    }
}

fn sum(xs: impl Iterator<Item = Result<Tensor>>) -> Result<Tensor> {
    let mut acc: Option<Tensor> = None;
    for y in xs {
        let y = y?;
        acc = Some(match acc {
            Some(a) => (a + y)?,
            None => y,
        });
    }
    Ok(acc.expect("at least one term"))
}

/// y_t = x_t + silu(Σ_k W_k x_{t−k}), frames before the first replaced by the
/// first: a causal temporal convolution of kernel 3 (as three 1×1
/// convolutions), residual so that it starts near the identity.
pub(crate) struct CausalTime {
    pub(crate) taps: Vec<Conv>,
}

impl CausalTime {
    fn new(c: usize, vb: VarBuilder) -> Result<CausalTime> {
        Ok(CausalTime { taps: (0..3).map(|k| conv(c, c, 1, 1, vb.pp(format!("tap{k}")))).collect::<Result<_>>()? })
    }

    /// `frames`: per frame [B, C, h, w].
    fn forward(&self, frames: &[Tensor]) -> Result<Vec<Tensor>> {
        (0..frames.len())
            .map(|t| {
                let mixed = sum(self.taps.iter().enumerate().map(|(k, tap)| tap.forward(&frames[t.saturating_sub(k)])))?;
                &frames[t] + mixed.silu()?
            })
            .collect()
    }
}

/// x + c2(silu(c1(silu(x)))), 3×3 convolutions.
pub(crate) struct Block {
    pub(crate) c1: Conv,
    pub(crate) c2: Conv,
}

impl Block {
    fn new(w: usize, vb: VarBuilder) -> Result<Block> {
        Ok(Block { c1: conv(w, w, 3, 1, vb.pp("c1"))?, c2: conv(w, w, 3, 1, vb.pp("c2"))? })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x + self.c2.forward(&self.c1.forward(&x.silu()?)?.silu()?)?
    }
}

/// Frames → latent frames at 1/`spatial` the resolution, causally: latent
/// frame 0 from frame 0 alone, latent frame j from frames up to j·`temporal`.
pub struct Encoder {
    pub(crate) cfg: Config,
    /// The Haar levels are folded into the adjacent convolutions ([`Tokenizer::fold_haar`]).
    pub(crate) folded: bool,
    pub(crate) stem: Conv,
    pub(crate) down: Vec<Conv>,
    pub(crate) time: CausalTime,
    pub(crate) first: Conv,
    pub(crate) group: Vec<Conv>,
    pub(crate) blocks: Vec<Block>,
    pub(crate) out: Conv,
}

/// Latent frames → frames, mirroring the [`Encoder`]: the first latent
/// frame gives one frame, each later one `temporal` frames.
pub struct Decoder {
    pub(crate) cfg: Config,
    pub(crate) folded: bool,
    pub(crate) input: Conv,
    pub(crate) blocks: Vec<Block>,
    pub(crate) first: Conv,
    pub(crate) group: Vec<Conv>,
    pub(crate) time: CausalTime,
    pub(crate) up: Vec<Conv>,
    pub(crate) out: Conv,
}

/// Strided steps after the stem (which reaches 1/8).
fn downs(cfg: &Config) -> usize {
    (cfg.spatial / 8).trailing_zeros() as usize
}

impl Encoder {
    fn new(cfg: Config, vb: VarBuilder) -> Result<Encoder> {
        let w = cfg.width;
        Ok(Encoder {
            cfg,
            folded: false,
            stem: conv(48, w, 3, 2, vb.pp("stem"))?,
            down: (0..downs(&cfg)).map(|i| conv(w, w, 3, 2, vb.pp(format!("down{i}")))).collect::<Result<_>>()?,
            time: CausalTime::new(w, vb.pp("time"))?,
            first: conv(w, w, 1, 1, vb.pp("first"))?,
            group: (0..cfg.temporal).map(|k| conv(w, w, 1, 1, vb.pp(format!("group{k}")))).collect::<Result<_>>()?,
            blocks: (0..cfg.blocks).map(|i| Block::new(w, vb.pp(format!("block{i}")))).collect::<Result<_>>()?,
            out: conv(w, cfg.latent_channels(), 1, 1, vb.pp("out"))?,
        })
    }

    /// [B, T, 3, H, W] in [−1, 1], T = 1 + k·temporal → [B, latent frames, C, H/s, W/s]
    /// (continuous values, or FSQ values in [−1, 1]). Errors on another T, or
    /// H and W that are not multiples of spatial.
    pub fn forward(&self, video: &Tensor) -> Result<Tensor> {
        let (b, t, c, h, w) = video.dims5()?;
        let k = self.cfg.temporal;
        if (t - 1) % k != 0 {
            candle_core::bail!("{t} frames: a clip has 1 + n·{k} frames");
        }
        if h % self.cfg.spatial != 0 || w % self.cfg.spatial != 0 {
            candle_core::bail!("{w}x{h}: width and height must be multiples of {}", self.cfg.spatial);
        }
        let x = video.reshape((b * t, c, h, w))?;
        let patches = if self.folded { space_to_depth(&x, 4)? } else { haar::forward(&haar::forward(&x)?)? };
        let mut x = self.stem.forward(&patches)?.silu()?;
        for d in &self.down {
            x = d.forward(&x)?.silu()?;
        }
        let (_, ch, hh, ww) = x.dims4()?;
        let x = x.reshape((b, t, ch, hh, ww))?;
        let frames: Vec<Tensor> = (0..t).map(|i| x.get_on_dim(1, i)).collect::<Result<_>>()?;
        let frames = self.time.forward(&frames)?;
        let mut latents = vec![self.first.forward(&frames[0])?];
        for j in 0..(t - 1) / k {
            latents.push(sum(self.group.iter().enumerate().map(|(i, g)| g.forward(&frames[1 + j * k + i])))?);
        }
        // All latent frames of the batch through the blocks at once.
        let n = latents.len();
        let mut z = Tensor::stack(&latents, 1)?.reshape((b * n, ch, hh, ww))?;
        for blk in &self.blocks {
            z = blk.forward(&z)?;
        }
        let z = self.out.forward(&z.silu()?)?;
        let z = match self.cfg.continuous {
            Some(_) => z,
            None => fsq::quantize(&z, &fsq::LEVELS)?,
        };
        z.reshape((b, n, self.cfg.latent_channels(), hh, ww))
    }
}

impl Decoder {
    fn new(cfg: Config, vb: VarBuilder) -> Result<Decoder> {
        let w = cfg.width;
        Ok(Decoder {
            cfg,
            folded: false,
            input: conv(cfg.latent_channels(), w, 1, 1, vb.pp("input"))?,
            blocks: (0..cfg.blocks).map(|i| Block::new(w, vb.pp(format!("block{i}")))).collect::<Result<_>>()?,
            first: conv(w, w, 1, 1, vb.pp("first"))?,
            group: (0..cfg.temporal).map(|k| conv(w, w, 1, 1, vb.pp(format!("group{k}")))).collect::<Result<_>>()?,
            time: CausalTime::new(w, vb.pp("time"))?,
            up: (0..downs(&cfg)).map(|i| conv(w, 4 * w, 3, 1, vb.pp(format!("up{i}")))).collect::<Result<_>>()?,
            out: conv(w, 192, 3, 1, vb.pp("out"))?,
        })
    }

    /// [B, latent frames, C, h, w] → [B, T, 3, H, W], T = 1 + (latent
    /// frames − 1)·temporal, H = h·spatial: planar RGB meant to lie in
    /// [−1, 1] but not clamped to it.
    pub fn forward(&self, latents: &Tensor) -> Result<Tensor> {
        let (b, n, c, h, w) = latents.dims5()?;
        let mut z = self.input.forward(&latents.reshape((b * n, c, h, w))?)?;
        for blk in &self.blocks {
            z = blk.forward(&z)?;
        }
        let z = z.silu()?.reshape((b, n, self.cfg.width, h, w))?;
        let mut frames = Vec::new();
        for j in 0..n {
            let zj = z.get_on_dim(1, j)?;
            if j == 0 {
                frames.push(self.first.forward(&zj)?);
            } else {
                for g in &self.group {
                    frames.push(g.forward(&zj)?);
                }
            }
        }
        let frames = self.time.forward(&frames)?;
        let t = frames.len();
        let mut x = Tensor::stack(&frames, 1)?.reshape((b * t, self.cfg.width, h, w))?;
        for u in &self.up {
            let y = u.forward(&x)?;
            x = if self.folded { depth_to_space(&y, 2)? } else { haar::inverse(&y)? }.silu()?;
        }
        let y = self.out.forward(&x)?;
        let x = if self.folded { depth_to_space(&y, 8)? } else { haar::inverse(&haar::inverse(&haar::inverse(&y)?)?)? };
        let (_, c, hh, ww) = x.dims4()?;
        x.reshape((b, t, c, hh, ww))
    }
}

/// Encoder and decoder, weights under `encoder.*` and `decoder.*`.
pub struct Tokenizer {
    /// The architecture both halves were built for.
    pub cfg: Config,
    /// Frames → latents (continuous, or FSQ values; [`crate::fsq::codes`] makes codes of them).
    pub encoder: Encoder,
    /// Latents → frames.
    pub decoder: Decoder,
}

impl Tokenizer {
    /// A network of `cfg`'s shape with its weights from `vb` (a `VarMap`'s
    /// builder creates them freshly initialised; load a checkpoint into the
    /// map afterwards), named as tools/tokenizer_gpu.py names them.
    pub fn new(cfg: Config, vb: VarBuilder) -> Result<Tokenizer> {
        Ok(Tokenizer { cfg, encoder: Encoder::new(cfg, vb.pp("encoder"))?, decoder: Decoder::new(cfg, vb.pp("decoder"))? })
    }

    /// Encodes and decodes `video` ([B, T, 3, H, W] in [−1, 1], T = 1 + k·temporal,
    /// H and W multiples of spatial): the output the training loss compares
    /// with the input, in the same shape.
    pub fn reconstruct(&self, video: &Tensor) -> Result<Tensor> {
        self.decoder.forward(&self.encoder.forward(video)?)
    }

    /// For inference: folds the Haar transforms into the convolutions next
    /// to them (they are linear and act within each patch), leaving plain
    /// space-to-depth / depth-to-space rearrangements. The same function,
    /// fewer passes over memory. Training keeps the Haar parametrization.
    pub fn fold_haar(&mut self) -> Result<()> {
        if self.encoder.folded {
            return Ok(());
        }
        let dev = self.encoder.stem.inner.weight().device().clone();
        // Encoder: Haar²(x) = H·s2d4(x) per position, so stem∘Haar² = (W·H)∘s2d4.
        let basis = Tensor::eye(48, candle_core::DType::F32, &dev)?.reshape((48, 3, 4, 4))?;
        let h = haar::forward(&haar::forward(&basis)?)?.reshape((48, 48))?; // [s2d index, Haar channel]
        let w = self.encoder.stem.inner.weight();
        let (o, i, kh, kw) = w.dims4()?;
        let folded = w
            .permute((0, 2, 3, 1))?
            .reshape((o * kh * kw, i))?
            .matmul(&h.t()?)?
            .reshape((o, kh, kw, i))?
            .permute((0, 3, 1, 2))?
            .contiguous()?;
        let stem = &self.encoder.stem.inner;
        self.encoder.stem = Conv::from(Conv2d::new(folded, stem.bias().cloned(), *stem.config()));
        self.encoder.folded = true;
        // Decoder: Haar⁻ᴸ(y) = d2s(M·y) per position, so Haar⁻ᴸ∘conv = d2s∘(Mᵀ-mixed conv).
        let fold_out = |c: &Conv, levels: usize| -> Result<Conv> {
            let c = &c.inner;
            let w = c.weight();
            let (o, i, kh, kw) = w.dims4()?;
            let mut m = Tensor::eye(o, candle_core::DType::F32, &dev)?.reshape((o, o, 1, 1))?;
            for _ in 0..levels {
                m = haar::inverse(&m)?;
            }
            let m = m.reshape((o, o))?; // [input channel, d2s index]
            let wf = m.t()?.matmul(&w.reshape((o, i * kh * kw))?)?.reshape((o, i, kh, kw))?;
            let bf = c.bias().map(|b| m.t()?.matmul(&b.reshape((o, 1))?)?.reshape(o)).transpose()?;
            Ok(Conv::from(Conv2d::new(wf, bf, *c.config())))
        };
        for u in self.decoder.up.iter_mut() {
            *u = fold_out(u, 1)?;
        }
        self.decoder.out = fold_out(&self.decoder.out, 3)?;
        self.decoder.folded = true;
        for c in self.convs() {
            c.prepare()?;
        }
        Ok(())
    }

    fn convs(&mut self) -> Vec<&mut Conv> {
        let (e, d) = (&mut self.encoder, &mut self.decoder);
        let mut v: Vec<&mut Conv> = vec![&mut e.stem, &mut e.first, &mut e.out, &mut d.input, &mut d.first, &mut d.out];
        v.extend(e.down.iter_mut().chain(e.group.iter_mut()).chain(e.time.taps.iter_mut()));
        v.extend(d.up.iter_mut().chain(d.group.iter_mut()).chain(d.time.taps.iter_mut()));
        for b in e.blocks.iter_mut().chain(d.blocks.iter_mut()) {
            v.push(&mut b.c1);
            v.push(&mut b.c2);
        }
        v
    }
}

/// [N, C, H, W] → [N, C·r², H/r, W/r], channel c·r² + i·r + j holding pixel (r·y + i, r·x + j).
fn space_to_depth(x: &Tensor, r: usize) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    x.reshape((n, c, h / r, r, w / r, r))?.permute((0, 1, 3, 5, 2, 4))?.reshape((n, c * r * r, h / r, w / r))
}

/// The inverse of [`space_to_depth`] (ONNX DepthToSpace in CRD mode, PyTorch's pixel_shuffle).
fn depth_to_space(x: &Tensor, r: usize) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    x.reshape((n, c / (r * r), r, r, h, w))?.permute((0, 1, 4, 2, 5, 3))?.reshape((n, c / (r * r), h * r, w * r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn shapes_and_causality() -> Result<()> {
        for cfg in [Config { width: 16, blocks: 1, ..Config::CV4X8X8 }, Config { width: 16, blocks: 1, ..Config::DV8X16X16 }] {
            let vm = VarMap::new();
            let tok = Tokenizer::new(cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu))?;
            let t = 1 + 2 * cfg.temporal;
            let video = Tensor::randn(0f32, 0.5, (1, t, 3, 32, 32), &Device::Cpu)?;
            let z = tok.encoder.forward(&video)?;
            let n = cfg.latent_frames(t);
            assert_eq!(z.dims(), &[1, n, cfg.latent_channels(), 32 / cfg.spatial, 32 / cfg.spatial]);
            let out = tok.decoder.forward(&z)?;
            assert_eq!(out.dims(), video.dims());
            // Change the last frame: the latents before its group stay exactly the same.
            let changed = Tensor::cat(&[video.narrow(1, 0, t - 1)?, Tensor::randn(0f32, 0.5, (1, 1, 3, 32, 32), &Device::Cpu)?], 1)?;
            let z2 = tok.encoder.forward(&changed)?;
            for j in 0..n - 1 {
                let d = (z.get_on_dim(1, j)? - z2.get_on_dim(1, j)?)?.abs()?.sum_all()?.to_scalar::<f32>()?;
                assert_eq!(d, 0.0, "{}: latent {j} saw a later frame", cfg.name());
            }
            let out2 = tok.decoder.forward(&z2)?;
            // And the decoded frames before that group too.
            let keep = 1 + (n - 2) * cfg.temporal;
            let d = (out.narrow(1, 0, keep)? - out2.narrow(1, 0, keep)?)?.abs()?.sum_all()?.to_scalar::<f32>()?;
            assert_eq!(d, 0.0, "{}: decoded frames depend on a later latent", cfg.name());
        }
        Ok(())
    }

    #[test]
    fn folding_the_haar_transforms_keeps_the_function() -> Result<()> {
        for cfg in [Config { width: 16, blocks: 1, ..Config::CV4X8X8 }, Config { width: 16, blocks: 1, ..Config::DV8X16X16 }] {
            let vm = VarMap::new();
            let mut tok = Tokenizer::new(cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu))?;
            let t = 1 + cfg.temporal;
            let video = Tensor::randn(0f32, 0.5, (1, t, 3, 32, 48), &Device::Cpu)?;
            let z = tok.encoder.forward(&video)?;
            let out = tok.decoder.forward(&z)?;
            tok.fold_haar()?;
            let z2 = tok.encoder.forward(&video)?;
            let out2 = tok.decoder.forward(&z)?;
            let dz = (&z - &z2)?.abs()?.max_all()?.to_scalar::<f32>()?;
            let dout = (&out - &out2)?.abs()?.max_all()?.to_scalar::<f32>()?;
            let scale = out.abs()?.max_all()?.to_scalar::<f32>()?;
            // FSQ may round a value sitting on a level boundary the other way: compare continuous exactly only.
            if cfg.continuous.is_some() {
                assert!(dz < 1e-4, "{}: latents differ by {dz}", cfg.name());
            }
            assert!(dout < 1e-4 * scale.max(1.0), "{}: decoded frames differ by {dout} (scale {scale})", cfg.name());
        }
        // The rearrangements are inverse to each other.
        let x = Tensor::randn(0f32, 1.0, (2, 3, 16, 24), &Device::Cpu)?;
        let back = depth_to_space(&space_to_depth(&x, 4)?, 4)?;
        assert_eq!((x - back)?.abs()?.max_all()?.to_scalar::<f32>()?, 0.0);
        Ok(())
    }
}
