//! `s2r export perception|policy|world MODEL --onnx FILE` and `s2r export
//! reason|tokenizer MODEL --onnx PREFIX`: trained networks as ONNX models for ONNX
//! Runtime or TensorRT (each model crate's `onnx` module writes them).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum ExportCmd {
    /// The perception network as ONNX (input `image`, outputs heat, ltrb, log_depth, seg).
    Perception(PerceptionExportArgs),
    /// The policy network as ONNX (inputs `image` [1, H, W, C] and `state`, output `actions`).
    Policy(PolicyExportArgs),
    /// The reasoner's networks as ONNX: PREFIX.surface.onnx, PREFIX.hazard.onnx, PREFIX.cup.onnx (those it has).
    Reason(ReasonExportArgs),
    /// The world model as ONNX (inputs `digits`, `steps`, `conditions` over its context window; outputs `logits`, `state`).
    World(WorldExportArgs),
    /// The tokenizer as ONNX, one frame at a time: PREFIX.encoder.onnx (`frame` → `latent`, and `digits` when discrete) and PREFIX.decoder.onnx (`latent` → `frame`).
    Tokenizer(TokenizerExportArgs),
}

#[derive(Args)]
pub struct TokenizerExportArgs {
    /// The checkpoint (from `s2r train tokenizer`; the shipped ones are in models/tokenizer/).
    model: PathBuf,
    /// The files' common prefix (`dv` writes dv.encoder.onnx and dv.decoder.onnx).
    #[arg(long)]
    onnx: PathBuf,
    /// Frame width and height in pixels (a multiple of the spatial compression).
    #[arg(long, default_value_t = 256)]
    size: usize,
}

#[derive(Args)]
pub struct WorldExportArgs {
    /// The checkpoint (from `s2r train world`).
    model: PathBuf,
    /// The ONNX file to write.
    #[arg(long)]
    onnx: PathBuf,
}

#[derive(Args)]
pub struct ReasonExportArgs {
    /// The reason model (reason.json from `s2r train reason`).
    model: PathBuf,
    /// The files' common prefix (`reason` writes reason.surface.onnx, …).
    #[arg(long)]
    onnx: PathBuf,
}

#[derive(Args)]
pub struct PerceptionExportArgs {
    /// The checkpoint (from `s2r train perception`).
    model: PathBuf,
    /// The ONNX file to write.
    #[arg(long)]
    onnx: PathBuf,
}

#[derive(Args)]
pub struct PolicyExportArgs {
    /// The checkpoint (from `s2r train policy`).
    model: PathBuf,
    /// The ONNX file to write.
    #[arg(long)]
    onnx: PathBuf,
}

/// Writes an exported model, naming the file on failure.
fn write_onnx(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// `PREFIX.part.onnx`, for the commands that write several networks.
fn part_path(prefix: &Path, part: &str) -> PathBuf {
    PathBuf::from(format!("{}.{part}.onnx", prefix.display()))
}

pub fn run(c: ExportCmd) -> Result<()> {
    match c {
        ExportCmd::Perception(a) => {
            let ck = s2r_perception::checkpoint::read(&a.model)?;
            let net = ck.net(&candle_core::Device::Cpu)?;
            let bytes = s2r_perception::onnx::export(&net)?;
            write_onnx(&a.onnx, &bytes)?;
            let cfg = &net.cfg;
            eprintln!(
                "wrote {} ({} bytes): input image [1, 3, {}, {}]; outputs heat, ltrb, log_depth, seg at stride 4",
                a.onnx.display(),
                bytes.len(),
                cfg.height,
                cfg.width
            );
            Ok(())
        }
        ExportCmd::Policy(a) => {
            let net = s2r_policy::checkpoint::read(&a.model)?.net(&candle_core::Device::Cpu)?;
            let bytes = s2r_policy::onnx::export(&net)?;
            write_onnx(&a.onnx, &bytes)?;
            let cfg = &net.config;
            eprintln!(
                "wrote {} ({} bytes, {:?}): inputs image [1, {}, {}, {}] (RGB 0..1, rows {}..{} of the frame) and state [1, {}]; output actions [1, {}, {}]",
                a.onnx.display(),
                bytes.len(),
                cfg.robot,
                cfg.height,
                cfg.width,
                cfg.channels_in(),
                cfg.rows[0],
                cfg.rows[1],
                cfg.robot.state_scale().len(),
                cfg.chunk,
                cfg.robot.action_scale().len()
            );
            Ok(())
        }
        ExportCmd::Tokenizer(a) => {
            let codec = s2r_tokenizer::codec::Codec::load(&a.model)?;
            let context = |e: candle_core::Error| anyhow::anyhow!("{}: {e}", a.model.display());
            let parts = [
                ("encoder", s2r_tokenizer::onnx::encoder(&codec.model, a.size).map_err(context)?),
                ("decoder", s2r_tokenizer::onnx::decoder(&codec.model, a.size).map_err(context)?),
            ];
            let cfg = codec.cfg;
            let (c, h) = (cfg.latent_channels(), a.size / cfg.spatial);
            for (part, bytes) in parts {
                let path = part_path(&a.onnx, part);
                write_onnx(&path, &bytes)?;
                eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
            }
            eprintln!(
                "{}: encoder frame [1, 3, {s}, {s}] (RGB in [-1, 1]) -> latent [1, {c}, {h}, {h}]{}; decoder latent -> frame [1, 3, {s}, {s}]",
                cfg.name(),
                if cfg.continuous.is_none() { format!(" and digits int64 [1, {c}, {h}, {h}]") } else { String::new() },
                s = a.size
            );
            Ok(())
        }
        ExportCmd::World(a) => {
            let loaded = s2r_world::checkpoint::load(&a.model, &candle_core::Device::Cpu)?;
            let bytes = s2r_world::onnx::export(&loaded.model)?;
            write_onnx(&a.onnx, &bytes)?;
            let cfg = &loaded.model.config;
            let (t, n, l) = (cfg.context, cfg.tokens(), cfg.levels.len());
            eprintln!(
                "wrote {} ({} bytes; {}): inputs digits int64 [1, {t}, {n}, {l}] (with digit offsets), steps [1, {t}, {}], conditions int64 [1, 4]; outputs logits [1, {t}, {n}, {}], state [1, {t}, {}]",
                a.onnx.display(),
                bytes.len(),
                cfg.summary(),
                2 * s2r_world::model::ACTION,
                cfg.digit_offsets().1,
                s2r_world::model::ACTION
            );
            Ok(())
        }
        ExportCmd::Reason(a) => {
            let model = s2r_reason::model::ReasonModel::load(&a.model)?;
            let mut written = Vec::new();
            let mut write = |part: &str, bytes: Vec<u8>| -> Result<()> {
                let path = part_path(&a.onnx, part);
                write_onnx(&path, &bytes)?;
                written.push(format!("{} ({} bytes)", path.display(), bytes.len()));
                Ok(())
            };
            if let Some(p) = model.surface_weights(&a.model) {
                write("surface", s2r_reason::onnx::surface(&s2r_reason::surface::load(&p)?)?)?;
            }
            if let Some(p) = model.hazard_weights(&a.model) {
                write("hazard", s2r_reason::onnx::hazard(&s2r_reason::hazard::load(&p)?)?)?;
            }
            if let Some(p) = model.cup_weights(&a.model) {
                write("cup", s2r_reason::onnx::cup(&s2r_reason::cup::load(&p)?)?)?;
            }
            if written.is_empty() {
                anyhow::bail!("{}: no networks to export (its surface, hazard and cup predictors are all untrained)", a.model.display());
            }
            eprintln!("wrote {}", written.join(", "));
            Ok(())
        }
    }
}
