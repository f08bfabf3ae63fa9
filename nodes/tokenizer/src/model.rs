//! The causal video tokenizer: Haar patchify → spatial convolutions down to
//! 1/8 or 1/16 → causal temporal mixing → temporal compression 4× or 8× →
//! a continuous latent, or an FSQ code; the decoder mirrors it with nearest
//! upsampling + convolution (candle's CPU transposed convolution is slow) and
//! the inverse Haar.
//!
//! Causality: latent 0 is made from frame 0 alone; latent j ≥ 1 from frames
//! up to j·k (k the temporal factor), through temporal convolutions that pad
//! with the first frame, so nothing ever sees a later frame.

use candle_core::{Module, Result, Tensor};
use candle_nn::{conv2d, Conv2d, Conv2dConfig, VarBuilder};

use crate::{fsq, haar};

/// Which tokenizer: compression and latent.
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
}

impl Config {
    /// Continuous 4×8×8 with 16 channels (Cosmos-Tokenizer CV4x8x8's shape).
    pub const CV4X8X8: Config = Config { spatial: 8, temporal: 4, continuous: Some(16), width: 64 };
    /// Discrete 8×16×16 with FSQ levels [8,8,8,5,5,5] (Cosmos-Tokenizer DV8x16x16's shape).
    pub const DV8X16X16: Config = Config { spatial: 16, temporal: 8, continuous: None, width: 64 };

    pub fn name(&self) -> String {
        format!("{}v{}x{}x{}", if self.continuous.is_some() { "c" } else { "d" }, self.temporal, self.spatial, self.spatial)
    }

    pub fn latent_channels(&self) -> usize {
        self.continuous.unwrap_or(fsq::LEVELS.len())
    }

    /// Latent frames for `frames` input frames (1 + k·temporal).
    pub fn latent_frames(&self, frames: usize) -> usize {
        1 + (frames - 1) / self.temporal
    }
}

fn conv(i: usize, o: usize, k: usize, stride: usize, vb: VarBuilder) -> Result<Conv2d> {
    conv2d(i, o, k, Conv2dConfig { padding: k / 2, stride, ..Default::default() }, vb)
}

/// y_t = Σ_k W_k x_{t−k}, frames before the first replaced by the first: a
/// causal temporal convolution of kernel 3 as three 1×1 convolutions.
struct CausalTime {
    taps: Vec<Conv2d>,
}

impl CausalTime {
    fn new(c: usize, vb: VarBuilder) -> Result<CausalTime> {
        Ok(CausalTime { taps: (0..3).map(|k| conv(c, c, 1, 1, vb.pp(format!("tap{k}")))).collect::<Result<_>>()? })
    }

    /// `frames`: per frame [B, C, h, w].
    fn forward(&self, frames: &[Tensor]) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(frames.len());
        for t in 0..frames.len() {
            let mut acc: Option<Tensor> = None;
            for (k, tap) in self.taps.iter().enumerate() {
                let x = &frames[t.saturating_sub(k)];
                let y = tap.forward(x)?;
                acc = Some(match acc {
                    Some(a) => (a + y)?,
                    None => y,
                });
            }
            // Residual, so that the temporal path starts as the identity.
            out.push((&frames[t] + acc.unwrap().silu()?)?);
        }
        Ok(out)
    }
}

pub struct Encoder {
    cfg: Config,
    stem: Conv2d,
    down: Vec<Conv2d>,
    mid: Conv2d,
    time: CausalTime,
    first: Conv2d,
    group: Vec<Conv2d>,
    out: Conv2d,
}

pub struct Decoder {
    cfg: Config,
    input: Conv2d,
    first: Conv2d,
    group: Vec<Conv2d>,
    time: CausalTime,
    up: Vec<Conv2d>,
    mid: Conv2d,
    out: Conv2d,
}

/// Spatial steps of 2 after the two Haar levels (which give 4×).
fn downs(cfg: &Config) -> usize {
    (cfg.spatial / 4).trailing_zeros() as usize
}

impl Encoder {
    pub fn new(cfg: Config, vb: VarBuilder) -> Result<Encoder> {
        let w = cfg.width;
        Ok(Encoder {
            cfg,
            stem: conv(48, w, 3, 1, vb.pp("stem"))?,
            down: (0..downs(&cfg)).map(|i| conv(w, w, 3, 2, vb.pp(format!("down{i}")))).collect::<Result<_>>()?,
            mid: conv(w, w, 3, 1, vb.pp("mid"))?,
            time: CausalTime::new(w, vb.pp("time"))?,
            first: conv(w, w, 1, 1, vb.pp("first"))?,
            group: (0..cfg.temporal).map(|k| conv(w, w, 1, 1, vb.pp(format!("group{k}")))).collect::<Result<_>>()?,
            out: conv(w, cfg.latent_channels(), 1, 1, vb.pp("out"))?,
        })
    }

    /// [B, T, 3, H, W] in [−1, 1], T = 1 + k·temporal → per latent frame [B, C, H/s, W/s]
    /// (continuous values, or FSQ values in [−1, 1]).
    pub fn forward(&self, video: &Tensor) -> Result<Vec<Tensor>> {
        let (b, t, c, h, w) = video.dims5()?;
        if (t - 1) % self.cfg.temporal != 0 {
            candle_core::bail!("{t} frames: a clip has 1 + k·{} frames", self.cfg.temporal);
        }
        if h % self.cfg.spatial != 0 || w % self.cfg.spatial != 0 {
            candle_core::bail!("{w}x{h}: width and height must be multiples of {}", self.cfg.spatial);
        }
        let x = video.reshape((b * t, c, h, w))?;
        let mut x = haar::forward(&haar::forward(&x)?)?;
        x = self.stem.forward(&x)?.silu()?;
        for d in &self.down {
            x = d.forward(&x)?.silu()?;
        }
        x = (&x + self.mid.forward(&x)?.silu()?)?;
        let (_, ch, hh, ww) = x.dims4()?;
        let x = x.reshape((b, t, ch, hh, ww))?;
        let frames: Vec<Tensor> = (0..t).map(|i| x.narrow(1, i, 1)?.squeeze(1)).collect::<Result<_>>()?;
        let frames = self.time.forward(&frames)?;
        let mut latents = vec![self.first.forward(&frames[0])?];
        for j in 0..(t - 1) / self.cfg.temporal {
            let mut acc: Option<Tensor> = None;
            for (k, g) in self.group.iter().enumerate() {
                let y = g.forward(&frames[1 + j * self.cfg.temporal + k])?;
                acc = Some(match acc {
                    Some(a) => (a + y)?,
                    None => y,
                });
            }
            latents.push(acc.unwrap());
        }
        latents
            .into_iter()
            .map(|z| {
                let z = self.out.forward(&z.silu()?)?;
                match self.cfg.continuous {
                    Some(_) => Ok(z),
                    None => fsq::quantize(&z, &fsq::LEVELS),
                }
            })
            .collect()
    }
}

impl Decoder {
    pub fn new(cfg: Config, vb: VarBuilder) -> Result<Decoder> {
        let w = cfg.width;
        Ok(Decoder {
            cfg,
            input: conv(cfg.latent_channels(), w, 1, 1, vb.pp("input"))?,
            first: conv(w, w, 1, 1, vb.pp("first"))?,
            group: (0..cfg.temporal).map(|k| conv(w, w, 1, 1, vb.pp(format!("group{k}")))).collect::<Result<_>>()?,
            time: CausalTime::new(w, vb.pp("time"))?,
            up: (0..downs(&cfg)).map(|i| conv(w, w, 3, 1, vb.pp(format!("up{i}")))).collect::<Result<_>>()?,
            mid: conv(w, w, 3, 1, vb.pp("mid"))?,
            out: conv(w, 48, 3, 1, vb.pp("out"))?,
        })
    }

    /// Latent frames → [B, T, 3, H, W].
    pub fn forward(&self, latents: &[Tensor]) -> Result<Tensor> {
        let mut frames = Vec::new();
        for (j, z) in latents.iter().enumerate() {
            let z = self.input.forward(z)?.silu()?;
            if j == 0 {
                frames.push(self.first.forward(&z)?);
            } else {
                for g in &self.group {
                    frames.push(g.forward(&z)?);
                }
            }
        }
        let frames = self.time.forward(&frames)?;
        let t = frames.len();
        let mut x = Tensor::stack(&frames, 1)?;
        let (b, _, c, h, w) = x.dims5()?;
        x = x.reshape((b * t, c, h, w))?;
        x = (&x + self.mid.forward(&x)?.silu()?)?;
        for u in &self.up {
            let (_, _, h, w) = x.dims4()?;
            x = u.forward(&x.upsample_nearest2d(h * 2, w * 2)?)?.silu()?;
        }
        let x = haar::inverse(&haar::inverse(&self.out.forward(&x)?)?)?;
        let (_, c, h, w) = x.dims4()?;
        let _ = self.cfg;
        x.reshape((b, t, c, h, w))
    }
}

/// Encoder and decoder, weights under `encoder.*` and `decoder.*`.
pub struct Tokenizer {
    pub cfg: Config,
    pub encoder: Encoder,
    pub decoder: Decoder,
}

impl Tokenizer {
    pub fn new(cfg: Config, vb: VarBuilder) -> Result<Tokenizer> {
        Ok(Tokenizer { cfg, encoder: Encoder::new(cfg, vb.pp("encoder"))?, decoder: Decoder::new(cfg, vb.pp("decoder"))? })
    }

    pub fn reconstruct(&self, video: &Tensor) -> Result<Tensor> {
        self.decoder.forward(&self.encoder.forward(video)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn shapes_and_causality() -> Result<()> {
        for cfg in [Config { width: 16, ..Config::CV4X8X8 }, Config { width: 16, ..Config::DV8X16X16 }] {
            let vm = VarMap::new();
            let tok = Tokenizer::new(cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu))?;
            let t = 1 + 2 * cfg.temporal;
            let video = Tensor::randn(0f32, 0.5, (1, t, 3, 32, 32), &Device::Cpu)?;
            let z = tok.encoder.forward(&video)?;
            assert_eq!(z.len(), cfg.latent_frames(t));
            assert_eq!(z[0].dims(), &[1, cfg.latent_channels(), 32 / cfg.spatial, 32 / cfg.spatial]);
            let out = tok.decoder.forward(&z)?;
            assert_eq!(out.dims(), video.dims());
            // Change the last frame: the latents before its group stay exactly the same.
            let changed = Tensor::cat(&[video.narrow(1, 0, t - 1)?, Tensor::randn(0f32, 0.5, (1, 1, 3, 32, 32), &Device::Cpu)?], 1)?;
            let z2 = tok.encoder.forward(&changed)?;
            for j in 0..z.len() - 1 {
                let d = (&z[j] - &z2[j])?.abs()?.sum_all()?.to_scalar::<f32>()?;
                assert_eq!(d, 0.0, "{}: latent {j} saw a later frame", cfg.name());
            }
            let out2 = tok.decoder.forward(&z2)?;
            // And the decoded frames before that group too.
            let keep = 1 + (z.len() - 2) * cfg.temporal;
            let d = (out.narrow(1, 0, keep)? - out2.narrow(1, 0, keep)?)?.abs()?.sum_all()?.to_scalar::<f32>()?;
            assert_eq!(d, 0.0, "{}: decoded frames depend on a later latent", cfg.name());
        }
        Ok(())
    }
}
