//! `s2r export perception MODEL --onnx FILE`: a trained network as an ONNX
//! model for ONNX Runtime or TensorRT (s2r_perception::onnx writes it).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum ExportCmd {
    /// The perception network as ONNX (input `image`, outputs heat, ltrb, log_depth, seg).
    Perception(PerceptionExportArgs),
}

#[derive(Args)]
pub struct PerceptionExportArgs {
    /// The checkpoint (from `s2r train perception`).
    model: PathBuf,
    /// The ONNX file to write.
    #[arg(long)]
    onnx: PathBuf,
}

pub fn run(c: ExportCmd) -> Result<()> {
    match c {
        ExportCmd::Perception(a) => {
            let ck = s2r_perception::checkpoint::read(&a.model)?;
            let net = ck.net(&candle_core::Device::Cpu)?;
            let bytes = s2r_perception::onnx::export(&net)?;
            std::fs::write(&a.onnx, &bytes).map_err(|e| anyhow::anyhow!("{}: {e}", a.onnx.display()))?;
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
    }
}
