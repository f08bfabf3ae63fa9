//! `s2r transfer BAG`: restyles frames of a recorded simulation for a set of
//! prompts and writes before/after contact sheets (PNG); s2r_transfer::sheets
//! makes them.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use s2r_transfer::sheets::{contact_sheet, SheetBackend, SheetOptions};

#[derive(Args)]
pub struct TransferArgs {
    /// A bag recorded from sim_node (folder or .mcap).
    bag: PathBuf,
    /// Where the sheets go.
    #[arg(short, long, default_value = "transfer_sheets")]
    output: PathBuf,
    /// A prompt per row (repeat the option); five contrasting ones by default.
    #[arg(short, long)]
    prompt: Vec<String>,
    /// Camera name (sim/<camera>/…); the first one in the bag by default.
    #[arg(long)]
    camera: Option<String>,
    /// Frames per row, evenly spaced over the recording.
    #[arg(long, default_value_t = 4)]
    frames: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// full or fast.
    #[arg(long, default_value = "full")]
    preset: String,
    /// Where the built-in backend runs: cpu, gpu or auto (the GPU when a hardware one is present).
    #[arg(long, default_value = "auto")]
    device: String,
    /// An ONNX model to restyle with instead of the built-in backend.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Shrink every tile by this factor.
    #[arg(long, default_value_t = 1)]
    shrink: usize,
}

pub fn run(a: TransferArgs) -> Result<()> {
    let backend = match a.model {
        Some(m) => SheetBackend::Onnx(m),
        None => SheetBackend::Builtin(a.preset.parse()?, a.device.parse()?),
    };
    let opts = SheetOptions { prompts: a.prompt, camera: a.camera, frames: a.frames, seed: a.seed, backend, shrink: a.shrink };
    let sheet = contact_sheet(&a.bag, &opts, &mut |m| eprintln!("warning: {m}"))?;
    let png = sheet.write(&a.output)?;
    print!("{}", sheet.legend());
    println!("wrote {}", png.display());
    Ok(())
}
