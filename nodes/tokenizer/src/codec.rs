//! A trained tokenizer loaded from its checkpoint, encoding frames into
//! tokens and decoding them back.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::fsq;
use crate::model::{Config, Tokenizer};
use crate::TokenizerError;

/// A checkpoint ready for inference on a device (the CPU by default), one chunk of 1 + k·temporal
/// frames at a time (tokenizer_node's unit). Its Haar transforms are folded
/// into the convolutions ([`Tokenizer::fold_haar`]), so it is not for training.
pub struct Codec {
    /// The architecture the checkpoint names: compression, latent, width.
    pub cfg: Config,
    /// The loaded network, for whole batches [B, T, 3, H, W] rather than one chunk.
    pub model: Tokenizer,
    vars: VarMap,
    device: Device,
}

/// Tokens of one chunk, as a `sim2real_msgs/TokenFrame` carries them
/// ([`crate::node::token_frame`]). For 1 + k·temporal frames of S×S there are
/// 1 + k latent frames of S/spatial × S/spatial positions.
#[derive(Clone, Debug, PartialEq)]
pub enum Tokens {
    /// A continuous tokenizer's latents.
    Continuous {
        /// [latent frames, channels (the config's `continuous`: 16), h, w].
        shape: [usize; 4],
        /// The latents in that order (row-major), unbounded f32.
        values: Vec<f32>,
    },
    /// A discrete tokenizer's FSQ codes.
    Discrete {
        /// [latent frames, 1, h, w].
        shape: [usize; 4],
        /// One code per position, row-major, each below 64,000 (the
        /// [`fsq::vocabulary`] of [`fsq::LEVELS`]; [`fsq::codes`] says how a code is made).
        codes: Vec<u16>,
    },
}

/// The architecture a checkpoint was saved with (its `config` tensor); errors name the path.
pub fn checkpoint_config(path: &Path) -> Result<Config, TokenizerError> {
    let t = candle_core::safetensors::load(path, &Device::Cpu)
        .map_err(|e| TokenizerError::NotSafetensors { path: path.into(), source: Box::new(e) })?;
    t.get("config")
        .and_then(|c| c.to_vec1::<u32>().ok())
        .and_then(|c| Config::from_vec(&c))
        .ok_or_else(|| TokenizerError::NoConfig { path: path.into() })
}

impl Codec {
    /// Loads a checkpoint written by `s2r train tokenizer` for the CPU; errors name the path and how to make one.
    pub fn load(path: &Path) -> Result<Codec, TokenizerError> {
        Codec::load_on(path, &Device::Cpu)
    }

    /// Loads a checkpoint for inference on `device`.
    pub fn load_on(path: &Path, device: &Device) -> Result<Codec, TokenizerError> {
        if !path.is_file() {
            return Err(TokenizerError::MissingCheckpoint { path: path.into() });
        }
        let cfg = checkpoint_config(path)?;
        let mut vars = VarMap::new();
        let mut model = Tokenizer::new(cfg, VarBuilder::from_varmap(&vars, DType::F32, device))?;
        vars.load(path).map_err(|e| TokenizerError::Mismatch { path: path.into(), variant: cfg.name(), source: Box::new(e) })?;
        model.fold_haar()?;
        Ok(Codec { cfg, model, vars, device: device.clone() })
    }

    /// Number of weights (scalars) in the encoder and decoder.
    pub fn parameters(&self) -> usize {
        self.vars.all_vars().iter().map(|v| v.elem_count()).sum()
    }

    /// Frames (planar RGB in [−1, 1], `size`×`size`, 1 + k·temporal of them) → tokens.
    /// Fails on another number of frames, frames of other than 3·`size`²
    /// values, or a `size` the spatial compression does not divide. Needs at
    /// least one frame.
    pub fn encode(&self, frames: &[Vec<f32>], size: usize) -> candle_core::Result<Tokens> {
        let t = frames.len();
        let flat: Vec<f32> = frames.iter().flatten().copied().collect();
        let video = Tensor::from_vec(flat, (1, t, 3, size, size), &self.device)?;
        let z = self.model.encoder.forward(&video)?.squeeze(0)?;
        let (n, c, h, w) = z.dims4()?;
        Ok(match self.cfg.continuous {
            Some(_) => Tokens::Continuous { shape: [n, c, h, w], values: z.flatten_all()?.to_vec1()? },
            None => {
                let codes = fsq::codes(&z, &fsq::LEVELS)?.into_iter().map(|x| x as u16).collect();
                Tokens::Discrete { shape: [n, 1, h, w], codes }
            }
        })
    }

    /// Tokens → frames (planar RGB in [−1, 1], 1 + (latent frames − 1)·temporal
    /// of them, each 3·H·W with H = h·spatial). Tokens of the other kind, of
    /// another channel count or with a code outside the vocabulary are refused
    /// with an error, not decoded.
    pub fn decode(&self, tokens: &Tokens) -> candle_core::Result<Vec<Vec<f32>>> {
        let (shape, channels) = match tokens {
            Tokens::Continuous { shape, .. } => (shape, self.cfg.continuous),
            Tokens::Discrete { shape, codes } => {
                let vocab = fsq::vocabulary(&fsq::LEVELS);
                if let Some(c) = codes.iter().find(|&&c| c as u64 >= vocab) {
                    candle_core::bail!("code {c} is outside the {vocab}-code vocabulary");
                }
                (shape, self.cfg.continuous.is_none().then_some(1))
            }
        };
        if Some(shape[1]) != channels || shape.contains(&0) {
            candle_core::bail!("tokens of shape {shape:?} do not fit a {} tokenizer", self.cfg.name());
        }
        let latents: Tensor = match tokens {
            Tokens::Continuous { shape, values } => {
                Tensor::from_vec(values.clone(), (1, shape[0], shape[1], shape[2], shape[3]), &self.device)?
            }
            Tokens::Discrete { shape, codes } => {
                let codes: Vec<u32> = codes.iter().map(|&c| c as u32).collect();
                let vals = fsq::values(&codes, &fsq::LEVELS);
                let (n, h, w) = (shape[0], shape[2], shape[3]);
                let mut v = vec![0f32; n * 6 * h * w];
                for j in 0..n {
                    for p in 0..h * w {
                        for c in 0..6 {
                            v[(j * 6 + c) * h * w + p] = vals[j * h * w + p][c];
                        }
                    }
                }
                Tensor::from_vec(v, (1, n, 6, h, w), &self.device)?
            }
        };
        let video = self.model.decoder.forward(&latents)?.squeeze(0)?;
        let t = video.dim(0)?;
        (0..t).map(|i| video.get(i)?.flatten_all()?.to_vec1::<f32>()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::Trainer;

    #[test]
    fn checkpoints_load_and_tokens_decode_like_the_model() {
        let dir = std::env::temp_dir().join(format!("s2r_codec_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for cfg in [Config { width: 8, blocks: 1, ..Config::CV4X8X8 }, Config { width: 8, blocks: 1, ..Config::DV8X16X16 }] {
            let tr = Trainer::new(cfg, 1e-3, &Device::Cpu).unwrap();
            let path = dir.join(format!("{}.safetensors", cfg.name()));
            tr.save(&path).unwrap();
            let codec = Codec::load(&path).unwrap();
            assert_eq!(codec.cfg, cfg);
            let t = 1 + cfg.temporal;
            let frames: Vec<Vec<f32>> =
                (0..t).map(|f| (0..3 * 32 * 32).map(|i| ((i + f * 7) as f32 * 0.01).sin() * 0.5).collect()).collect();
            let tokens = codec.encode(&frames, 32).unwrap();
            match (&tokens, cfg.continuous) {
                (Tokens::Continuous { shape, .. }, Some(c)) => assert_eq!(shape, &[2, c, 32 / cfg.spatial, 32 / cfg.spatial]),
                (Tokens::Discrete { shape, codes }, None) => {
                    assert_eq!(shape, &[2, 1, 2, 2]);
                    assert!(codes.iter().all(|&c| (c as u64) < fsq::vocabulary(&fsq::LEVELS)));
                }
                other => panic!("{other:?}"),
            }
            let decoded = codec.decode(&tokens).unwrap();
            let flat: Vec<f32> = frames.iter().flatten().copied().collect();
            let video = Tensor::from_vec(flat, (1, t, 3, 32, 32), &Device::Cpu).unwrap();
            let direct = tr.model.reconstruct(&video).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let via: Vec<f32> = decoded.into_iter().flatten().collect();
            let err = direct.iter().zip(&via).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(err < 1e-4, "{}: tokens decode to the model's reconstruction ({err})", cfg.name());
        }
        let missing = Codec::load(&dir.join("nope.safetensors")).err().unwrap().to_string();
        assert!(missing.contains("nope.safetensors") && missing.contains("s2r train tokenizer"), "{missing}");
        std::fs::write(dir.join("junk.safetensors"), b"junk").unwrap();
        let junk = Codec::load(&dir.join("junk.safetensors")).err().unwrap().to_string();
        assert!(junk.contains("junk.safetensors") && junk.contains("not a safetensors"), "{junk}");
        // A checkpoint whose weights do not fit its config: the path, the mismatch, the command.
        let dv = dir.join("dv8x16x16.safetensors");
        let mut t = candle_core::safetensors::load(&dv, &Device::Cpu).unwrap();
        t.insert(
            "config".into(),
            Tensor::new(Config { width: 8, blocks: 1, ..Config::CV4X8X8 }.to_vec().as_slice(), &Device::Cpu).unwrap(),
        );
        let bad = dir.join("mismatched.safetensors");
        candle_core::safetensors::save(&t, &bad).unwrap();
        let e = Codec::load(&bad).err().unwrap().to_string();
        assert!(e.contains("mismatched.safetensors") && e.contains("does not match a cv4x8x8") && e.contains("s2r train tokenizer"), "{e}");
        // No config at all (not one of ours).
        t.remove("config");
        candle_core::safetensors::save(&t, &bad).unwrap();
        let e = Codec::load(&bad).err().unwrap().to_string();
        assert!(e.contains("no tokenizer config"), "{e}");
        // Tokens that do not fit the model are refused, not decoded.
        let codec = Codec::load(&dv).unwrap();
        let e = codec.decode(&Tokens::Discrete { shape: [1, 1, 2, 2], codes: vec![64000, 0, 0, 0] }).unwrap_err().to_string();
        assert!(e.contains("64000") && e.contains("vocabulary"), "{e}");
        let e = codec.decode(&Tokens::Continuous { shape: [1, 16, 2, 2], values: vec![0.0; 64] }).unwrap_err().to_string();
        assert!(e.contains("do not fit a dv8x16x16"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
