//! The network: a transformer over two token frames, the source camera's
//! (what the front camera saw) and the target camera's (what is to be
//! generated), attending jointly.
//!
//! Every position of both frames carries its camera ray: the direction of
//! the ray through the position's centre in `base_link` (raw and as Fourier
//! features) and the camera's place on the robot, so the network learns
//! where each target position looks relative to the source, and one model
//! serves any rig. The source's positions enter as the sum of their FSQ
//! digits' embeddings; the target's as the digits of the reprojected front
//! view (weighted by how much of the position the reprojection covers: zero
//! where no camera saw it) plus the coverage itself. p×p positions merge into
//! one transformer token (2: 8×8 tokens a frame); blocks of full attention
//! over both frames' tokens and a GELU MLP (pre-norm residuals); the target's
//! tokens leave as one softmax per digit per position.

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{embedding, linear, Embedding, Linear, VarBuilder};
use s2r_train::nn::{attend, layer_norm, LayerNorm};
use serde::{Deserialize, Serialize};

use crate::rig::Camera;

/// Values per position's ray: direction (3), the camera's place (3, per 2 m)
/// and sin/cos of the direction at three frequencies (18).
pub const RAY: usize = 24;

/// The network's shape and what it reads, saved with every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The tokenizer whose codes it models.
    pub codec: String,
    /// The side of the codec's square view, pixels.
    pub size: usize,
    /// Token positions per side of a frame.
    pub grid: usize,
    /// The codec's FSQ levels, most significant digit first.
    pub levels: Vec<u32>,
    /// Positions merged into one transformer token, per side.
    pub patch: usize,
    /// Width of the features.
    pub dim: usize,
    /// Attention heads.
    pub heads: usize,
    /// Blocks.
    pub layers: usize,
    /// The MLP's hidden width.
    pub mlp: usize,
}

impl Config {
    /// The default network for a codec.
    pub fn new(codec: &str, size: usize, grid: usize, levels: Vec<u32>) -> Config {
        Config { codec: codec.into(), size, grid, levels, patch: 2, dim: 128, heads: 4, layers: 4, mlp: 512 }
    }

    /// For people.
    pub fn summary(&self) -> String {
        format!(
            "{} {}×{} (patch {}), dim {}, {} layers, {} heads, mlp {}",
            self.codec, self.grid, self.grid, self.patch, self.dim, self.layers, self.heads, self.mlp
        )
    }

    /// Transformer tokens per frame side.
    pub fn cells(&self) -> usize {
        self.grid / self.patch.max(1)
    }

    /// Positions per frame.
    pub fn tokens(&self) -> usize {
        self.grid * self.grid
    }

    /// Where each digit's rows start in a digit table, and the table's size.
    pub fn digit_offsets(&self) -> (Vec<u32>, usize) {
        s2r_train::codec::digit_offsets(&self.levels)
    }

    /// The digits of `code` (mixed radix, the first level most significant).
    pub fn digits(&self, code: u16) -> Vec<u32> {
        s2r_train::codec::digits(&self.levels, code)
    }

    /// The code of `digits`.
    pub fn code(&self, digits: &[u32]) -> u16 {
        s2r_train::codec::code(&self.levels, digits)
    }

    /// Per position of a view camera (`size`×`size`), its ray features
    /// ([`RAY`] values each, row-major positions).
    pub fn rays(&self, view: &Camera) -> Vec<f32> {
        let cell = self.size as f64 / self.grid as f64;
        let t = view.translation;
        let mut out = Vec::with_capacity(self.tokens() * RAY);
        for gy in 0..self.grid {
            for gx in 0..self.grid {
                let d = view.ray((gx as f64 + 0.5) * cell - 0.5, (gy as f64 + 0.5) * cell - 0.5);
                let d = [d.x as f32, d.y as f32, d.z as f32];
                out.extend_from_slice(&d);
                out.extend(t.iter().map(|v| *v as f32 / 2.0));
                for f in [1.0f32, 2.0, 4.0] {
                    for v in d {
                        let a = std::f32::consts::PI * f * v;
                        out.push(a.sin());
                        out.push(a.cos());
                    }
                }
            }
        }
        out
    }
}

struct Block {
    ln_a: LayerNorm,
    qkv: Linear,
    out: Linear,
    ln_m: LayerNorm,
    up: Linear,
    down: Linear,
}

impl Block {
    fn new(cfg: &Config, vb: VarBuilder) -> candle_core::Result<Block> {
        let d = cfg.dim;
        Ok(Block {
            ln_a: layer_norm(d, vb.pp("ln_a"))?,
            qkv: linear(d, 3 * d, vb.pp("qkv"))?,
            out: linear(d, d, vb.pp("out"))?,
            ln_m: layer_norm(d, vb.pp("ln_m"))?,
            up: linear(d, cfg.mlp, vb.pp("up"))?,
            down: linear(cfg.mlp, d, vb.pp("down"))?,
        })
    }

    fn forward(&self, x: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
        let x = (x + attend(&self.ln_a.forward(x)?, &self.qkv, &self.out, heads, None)?)?;
        let h = self.down.forward(&self.up.forward(&self.ln_m.forward(&x)?)?.gelu()?)?;
        x + h
    }
}

/// A batch of (source frame, target camera) pairs for [`MultiviewNet::forward`].
pub struct Batch {
    /// The source frame's digits with each digit's row offset added, u32 [B, N, levels].
    pub source: Tensor,
    /// The source camera's rays, f32 [B, N, RAY].
    pub source_rays: Tensor,
    /// The reprojected view's digits with offsets, u32 [B, N, levels] (anything where `cover` is 0).
    pub warped: Tensor,
    /// How much of each target position the reprojection covers, f32 [B, N] in [0, 1].
    pub cover: Tensor,
    /// The target camera's rays, f32 [B, N, RAY].
    pub target_rays: Tensor,
}

/// One (source frame, target camera) pair, as codes and rays.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The source frame's codes.
    pub source: &'a [u16],
    /// The source camera's rays ([`Config::rays`]).
    pub source_rays: &'a [f32],
    /// The reprojection into the target camera: its codes and per-position coverage (None: no reprojection).
    pub warped: Option<(&'a [u16], &'a [f32])>,
    /// The target camera's rays.
    pub target_rays: &'a [f32],
}

/// What the model makes of one target camera.
#[derive(Clone, Debug)]
pub struct Prediction {
    /// Per position, its most likely code.
    pub codes: Vec<u16>,
    /// Per position, its expected latent values, one per digit in [−1, 1].
    pub values: Vec<Vec<f32>>,
}

/// The multiview model.
pub struct MultiviewNet {
    /// Its shape.
    pub config: Config,
    source_digits: Embedding,
    warped_digits: Embedding,
    merge_source: Linear,
    merge_warped: Linear,
    rays: Linear,
    cover: Linear,
    role: Tensor,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    head: Linear,
    offsets: Tensor,
}

impl MultiviewNet {
    /// A network of `config` with its variables under `vb`.
    pub fn new(config: Config, vb: VarBuilder) -> candle_core::Result<MultiviewNet> {
        let d = config.dim;
        let p = config.patch.max(1);
        if !config.grid.is_multiple_of(p) || config.grid == 0 {
            candle_core::bail!("a patch of {p} does not divide a grid of {}", config.grid);
        }
        if !config.dim.is_multiple_of(config.heads.max(1)) {
            candle_core::bail!("{} heads do not divide a width of {}", config.heads, config.dim);
        }
        let (offsets, rows) = config.digit_offsets();
        let blocks = (0..config.layers).map(|i| Block::new(&config, vb.pp(format!("blocks.{i}")))).collect::<candle_core::Result<_>>()?;
        let init = candle_nn::Init::Randn { mean: 0.0, stdev: 0.02 };
        Ok(MultiviewNet {
            source_digits: embedding(rows, d, vb.pp("source_digits"))?,
            warped_digits: embedding(rows, d, vb.pp("warped_digits"))?,
            merge_source: linear(p * p * d, d, vb.pp("merge_source"))?,
            merge_warped: linear(p * p * d, d, vb.pp("merge_warped"))?,
            rays: linear(p * p * RAY, d, vb.pp("rays"))?,
            cover: linear(p * p, d, vb.pp("cover"))?,
            role: vb.get_with_hints((2, d), "role", init)?,
            blocks,
            ln_f: layer_norm(d, vb.pp("ln_f"))?,
            head: linear(d, p * p * rows, vb.pp("head"))?,
            offsets: Tensor::new(offsets.as_slice(), vb.device())?,
            config,
        })
    }

    /// The device its weights are on.
    pub fn device(&self) -> &Device {
        self.offsets.device()
    }

    /// The digit-table rows of digits [.., levels] (offsets added).
    pub fn offset_digits(&self, digits: &Tensor) -> candle_core::Result<Tensor> {
        digits.broadcast_add(&self.offsets)
    }

    /// The batch of `inputs` on `device`.
    pub fn batch(&self, inputs: &[Input], device: &Device) -> candle_core::Result<Batch> {
        let cfg = &self.config;
        let (n, l) = (cfg.tokens(), cfg.levels.len());
        let b = inputs.len();
        let mut source = Vec::with_capacity(b * n * l);
        let mut warped = Vec::with_capacity(b * n * l);
        let mut cover = Vec::with_capacity(b * n);
        let mut source_rays = Vec::with_capacity(b * n * RAY);
        let mut target_rays = Vec::with_capacity(b * n * RAY);
        for x in inputs {
            if x.source.len() != n || x.source_rays.len() != n * RAY || x.target_rays.len() != n * RAY {
                candle_core::bail!("an input of {} codes for a model of {n} positions", x.source.len());
            }
            source.extend(x.source.iter().flat_map(|&c| cfg.digits(c)));
            match x.warped {
                Some((codes, c)) if codes.len() == n && c.len() == n => {
                    warped.extend(codes.iter().flat_map(|&c| cfg.digits(c)));
                    cover.extend_from_slice(c);
                }
                _ => {
                    warped.extend(std::iter::repeat_n(0u32, n * l));
                    cover.extend(std::iter::repeat_n(0f32, n));
                }
            }
            source_rays.extend_from_slice(x.source_rays);
            target_rays.extend_from_slice(x.target_rays);
        }
        Ok(Batch {
            source: self.offset_digits(&Tensor::from_vec(source, (b, n, l), device)?)?,
            source_rays: Tensor::from_vec(source_rays, (b, n, RAY), device)?,
            warped: self.offset_digits(&Tensor::from_vec(warped, (b, n, l), device)?)?,
            cover: Tensor::from_vec(cover, (b, n), device)?,
            target_rays: Tensor::from_vec(target_rays, (b, n, RAY), device)?,
        })
    }

    /// [B, g·g, k] per position → [B, c·c, p·p·k] per token (p×p blocks of positions).
    fn to_tokens(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, _, k) = x.dims3()?;
        let (c, p) = (self.config.cells(), self.config.patch.max(1));
        x.reshape((b, c, p, c, p, k))?.permute((0, 1, 3, 2, 4, 5))?.reshape((b, c * c, p * p * k))
    }

    /// Logits of the target frame's digits, [B, N, Σ levels].
    pub fn forward(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        let (b, n, _) = batch.source.dims3()?;
        let (g, p, c) = (self.config.grid, self.config.patch.max(1), self.config.cells());
        if n != g * g {
            candle_core::bail!("{n} positions for a model of {g}×{g}");
        }
        let src = self.merge_source.forward(&self.to_tokens(&self.source_digits.forward(&batch.source)?.sum(2)?)?)?;
        let src = (src + self.rays.forward(&self.to_tokens(&batch.source_rays)?)?)?.broadcast_add(&self.role.get(0)?)?;
        let cover = batch.cover.unsqueeze(2)?;
        let warped = self.warped_digits.forward(&batch.warped)?.sum(2)?.broadcast_mul(&cover)?;
        let dst = self.merge_warped.forward(&self.to_tokens(&warped)?)?;
        let dst = (dst + self.rays.forward(&self.to_tokens(&batch.target_rays)?)?)?;
        let dst = (dst + self.cover.forward(&self.to_tokens(&cover)?)?)?.broadcast_add(&self.role.get(1)?)?;
        let mut x = Tensor::cat(&[&src, &dst], 1)?;
        for blk in &self.blocks {
            x = blk.forward(&x, self.config.heads)?;
        }
        let x = self.ln_f.forward(&x.narrow(1, c * c, c * c)?)?;
        let rows = self.head.forward(&x)?;
        let k = rows.dim(2)? / (p * p);
        rows.reshape((b, c, c, p, p, k))?.permute((0, 1, 3, 2, 4, 5))?.reshape((b, g * g, k))
    }

    /// Cross-entropy of `logits` [B, N, Σ levels] against the true digits [B, N, levels] (without offsets), averaged over digits.
    pub fn loss(&self, logits: &Tensor, target: &Tensor) -> candle_core::Result<Tensor> {
        let (b, n, _) = logits.dims3()?;
        let (offsets, _) = self.config.digit_offsets();
        let mut total: Option<Tensor> = None;
        for (i, (&o, &l)) in offsets.iter().zip(&self.config.levels).enumerate() {
            let li = logits.narrow(2, o as usize, l as usize)?.reshape((b * n, l as usize))?;
            let ti = target.narrow(2, i, 1)?.reshape(b * n)?;
            let ce = candle_nn::loss::cross_entropy(&li, &ti)?;
            total = Some(match total {
                Some(s) => (s + ce)?,
                None => ce,
            });
        }
        total.expect("at least one level") / self.config.levels.len() as f64
    }

    /// Per sample, its most likely codes (one per position) and its expected
    /// latent values (per position one value per digit in [−1, 1]: the
    /// softmax-weighted mean of the digit's levels, what the decoder turns
    /// into the mean of the frames the model finds likely).
    pub fn predict(&self, logits: &Tensor) -> candle_core::Result<Vec<Prediction>> {
        let (b, n, _) = logits.dims3()?;
        let (offsets, _) = self.config.digit_offsets();
        let levels = &self.config.levels;
        let mut codes = vec![vec![vec![0u32; levels.len()]; n]; b];
        let mut values = vec![vec![vec![0f32; levels.len()]; n]; b];
        for (i, (&o, &l)) in offsets.iter().zip(levels).enumerate() {
            let li = logits.narrow(2, o as usize, l as usize)?;
            let probs = candle_nn::ops::softmax(&li, D::Minus1)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            for s in 0..b {
                for p in 0..n {
                    let row = &probs[(s * n + p) * l as usize..(s * n + p + 1) * l as usize];
                    let (mut best, mut mean) = (0usize, 0f32);
                    for (k, &q) in row.iter().enumerate() {
                        if q > row[best] {
                            best = k;
                        }
                        mean += q * s2r_train::codec::digit_value(k as f32, l);
                    }
                    codes[s][p][i] = best as u32;
                    values[s][p][i] = mean;
                }
            }
        }
        Ok(codes
            .into_iter()
            .zip(values)
            .map(|(c, values)| Prediction { codes: c.iter().map(|d| self.config.code(d)).collect(), values })
            .collect())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_nn::VarMap;

    pub(crate) fn tiny() -> Config {
        Config { dim: 16, heads: 2, layers: 1, mlp: 32, ..Config::new("test", 32, 4, vec![8, 8, 8, 5, 5, 5]) }
    }

    #[test]
    fn codes_and_digits_round_trip() {
        let c = tiny();
        for code in [0u16, 1, 5, 124, 63_999, 31_337] {
            assert_eq!(c.code(&c.digits(code)), code);
        }
    }

    #[test]
    fn certain_logits_predict_their_codes_and_levels() {
        let cfg = tiny();
        let vars = VarMap::new();
        let m = MultiviewNet::new(cfg.clone(), VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu)).unwrap();
        let (offsets, rows) = cfg.digit_offsets();
        let n = cfg.tokens();
        let code = 31_337u16;
        let digits = cfg.digits(code);
        let mut v = vec![-30f32; n * rows];
        for p in 0..n {
            for (i, &d) in digits.iter().enumerate() {
                v[p * rows + offsets[i] as usize + d as usize] = 30.0;
            }
        }
        let logits = Tensor::from_vec(v, (1, n, rows), &Device::Cpu).unwrap();
        let out = m.predict(&logits).unwrap();
        assert!(out[0].codes.iter().all(|&c| c == code));
        for (i, (&d, &l)) in digits.iter().zip(&cfg.levels).enumerate() {
            let want = s2r_train::codec::digit_value(d as f32, l);
            assert!((out[0].values[3][i] - want).abs() < 1e-4, "digit {i}");
        }
    }

    #[test]
    fn the_target_depends_on_the_source_and_the_rays() {
        let cfg = tiny();
        let vars = VarMap::new();
        let m = MultiviewNet::new(cfg.clone(), VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu)).unwrap();
        let n = cfg.tokens();
        let dev = Device::Cpu;
        let digits = |d: u32| m.offset_digits(&Tensor::from_vec(vec![d; n * 6], (1, n, 6), &dev).unwrap()).unwrap();
        let rays =
            |s: f32| Tensor::from_vec((0..n * RAY).map(|i| (i as f32 * 0.01 * s).sin()).collect::<Vec<_>>(), (1, n, RAY), &dev).unwrap();
        let cover = Tensor::zeros((1, n), DType::F32, &dev).unwrap();
        let run = |src: u32, warped: u32, r: f32| {
            let b =
                Batch { source: digits(src), source_rays: rays(1.0), warped: digits(warped), cover: cover.clone(), target_rays: rays(r) };
            m.forward(&b).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        let base = run(1, 1, 1.0);
        assert_ne!(base, run(3, 1, 1.0), "the source frame matters");
        assert_ne!(base, run(1, 1, 2.0), "the target's rays matter");
        // Uncovered positions: what the reprojection says there is ignored.
        assert_eq!(base, run(1, 4, 1.0));
    }
}
