//! `s2r bench world`: one latent frame predicted by the world model (the
//! issue's budget: 100 ms on 2 cores at 256×256) as p50/p99 latency, the
//! tokenizer's decode of it to pixels, and training steps per second.

use std::path::PathBuf;

use anyhow::Result;
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use clap::Args;
use s2r_tokenizer::codec::{Codec, Tokens};
use s2r_world::model::{Conditions, Config, Robot, Surface, WorldModel, ACTION};
use s2r_world::rollout::rollout;

use crate::{percentile, timed};

/// Options of `s2r bench world`.
#[derive(Args, Clone)]
pub struct WorldBenchArgs {
    /// A world-model checkpoint (default: the default network with untrained weights: the same cost).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Predictions timed.
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Training steps timed (batch 8; 0 to skip).
    #[arg(long, default_value_t = 10)]
    train_steps: usize,
}

pub(crate) fn run(a: WorldBenchArgs) -> Result<()> {
    s2r_tokenizer::tune_allocator();
    let vars = VarMap::new();
    let (model, name) = match &a.model {
        Some(p) => {
            let l = s2r_world::checkpoint::load(p, &Device::Cpu)?;
            (l.model, p.display().to_string())
        }
        None => {
            let cfg = Config::new("dv8x16x16", 16, s2r_tokenizer::fsq::LEVELS.to_vec());
            (WorldModel::new(cfg, VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu))?, "the default network".to_string())
        }
    };
    let cfg = model.config.clone();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("world benchmark: {name} ({}), candle CPU, {threads} cores", cfg.summary());
    let n = cfg.tokens();
    let c = cfg.context;
    let codes: Vec<Vec<u16>> = (0..c).map(|f| (0..n).map(|p| ((p * 131 + f * 7) % 64_000) as u16).collect()).collect();
    let states = vec![[0.5f32; ACTION]; c];
    let actions = vec![[0.5f32; ACTION]; c + 1];
    let cond = Conditions { robot: Robot::Vehicle, surface: Surface::Icy, weather: 2, time: 3 };
    let step = || rollout(&model, &codes, &states, &actions, cond, 1).map(drop);
    for _ in 0..3 {
        step()?;
    }
    let times = timed(a.steps, &|| Ok(step()?))?;
    println!("| step | p50 ms | p99 ms | per second |");
    println!("|---|---|---|---|");
    let row = |what: &str, t: &[f64]| {
        println!(
            "| {what} | {:.1} | {:.1} | {:.1} |",
            percentile(t, 0.5),
            percentile(t, 0.99),
            1e3 * t.len() as f64 / t.iter().sum::<f64>()
        )
    };
    row(&format!("next token frame ({}×{} codes) from {c} frames", cfg.grid, cfg.grid), &times);
    if let Ok(codec) = Codec::load(&s2r_tokenizer::resolve_checkpoint(&cfg.codec)) {
        let tokens = Tokens::Discrete { shape: [1, 1, cfg.grid, cfg.grid], codes: codes[0].clone() };
        let decode = timed(a.steps, &|| Ok(codec.decode(&tokens).map(drop)?))?;
        row("its decode to 256×256 pixels (tokenizer)", &decode);
    }
    if a.train_steps > 0 {
        let train = s2r_world::fit::bench_steps(&cfg, 8, a.train_steps, &Device::Cpu)?;
        println!("training: {:.2} steps/s at batch 8 ({:.1} windows/s)", train, train * 8.0);
    }
    Ok(())
}
