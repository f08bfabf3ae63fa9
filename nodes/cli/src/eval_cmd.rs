//! `s2r eval tokenizer HELD_OUT…`: reconstruction quality (PSNR, SSIM) of
//! each tokenizer on held-out recordings, beside ffmpeg's x264 at the same
//! bits per pixel and JPEG at the same bits per frame, in the same run
//! (s2r_tokenizer::eval measures; this prints).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use s2r_tokenizer::eval::{evaluate, CheckpointEval, EvalOptions, Progress};

#[derive(Subcommand)]
pub enum EvalCmd {
    /// Tokenizer reconstruction quality beside x264 and JPEG at the same bits.
    Tokenizer(TokenizerEvalArgs),
}

#[derive(Args)]
pub struct TokenizerEvalArgs {
    /// Held-out recordings (bags or curated datasets) never used in training.
    #[arg(required = true)]
    recordings: Vec<PathBuf>,
    /// Checkpoints: shipped names or files.
    #[arg(long, value_delimiter = ',', default_value = "cv4x8x8,dv8x16x16")]
    checkpoints: Vec<String>,
    #[arg(long, default_value_t = 256)]
    size: usize,
    #[arg(long, default_value = "front")]
    camera: String,
    /// Frame rate given to x264 (the simulator's cameras run at 10 Hz).
    #[arg(long, default_value_t = 10)]
    fps: u32,
    /// Bits per continuous latent value (half precision by default).
    #[arg(long, default_value_t = 16)]
    latent_bits: u32,
    /// Leave out the x264 and JPEG rows (no ffmpeg needed).
    #[arg(long)]
    no_baselines: bool,
    /// Use only the first N frames of each recording (whole chunks of them).
    #[arg(long)]
    frames: Option<usize>,
    /// Write a PNG of a few frames of the first recording: the input, then each tokenizer's reconstruction.
    #[arg(long)]
    sheet: Option<PathBuf>,
}

pub fn run(c: EvalCmd) -> Result<()> {
    match c {
        EvalCmd::Tokenizer(a) => tokenizer(a),
    }
}

/// The last line for a checkpoint: its PSNR against x264's at its bits.
fn verdict(c: &CheckpointEval) -> String {
    let tp = c.tokens.psnr;
    let mut line = format!("{}: {tp:.2} dB", c.info.variant);
    if let Some(x) = &c.x264 {
        line += &format!("; x264 at {:.4} bpp {:.2} dB ({:+.2} dB)", x.bits_per_pixel, x.psnr, tp - x.psnr);
    }
    if let (Some(coded), Some(x)) = (&c.coded, &c.x264_coded) {
        line += &format!("; codes zstd-coded at {:.4} bpp: x264 {:.2} dB ({:+.2} dB)", coded.bits_per_pixel, x.psnr, tp - x.psnr);
    }
    line
}

fn tokenizer(a: TokenizerEvalArgs) -> Result<()> {
    s2r_tokenizer::tune_allocator();
    let opts = EvalOptions {
        recordings: a.recordings,
        checkpoints: a.checkpoints.clone(),
        size: a.size,
        camera: a.camera,
        fps: a.fps,
        latent_bits: a.latent_bits,
        baselines: !a.no_baselines,
        frames: a.frames,
        sheet: a.sheet.is_some(),
    };
    let evaluation = evaluate(&opts, &mut |p| match p {
        Progress::Bags(bags) => {
            println!("held-out recordings: {}", bags.iter().map(|b| b.display().to_string()).collect::<Vec<_>>().join(", "))
        }
        Progress::Checkpoint(c) => {
            println!(
                "\n{} ({}): {} frames, {} recordings, chunks of {}, {}x{}",
                c.variant,
                c.path.display(),
                c.frames,
                c.recordings,
                c.chunk,
                c.size,
                c.size
            );
            println!("| codec | bits/pixel | bytes/frame | PSNR dB | SSIM |");
            println!("|---|---|---|---|---|");
        }
        Progress::Row(r) => {
            println!("| {} | {:.4} | {:.0} | {:.2} | {:.4} |", r.method, r.bits_per_pixel, r.bytes_per_frame, r.psnr, r.ssim)
        }
    })?;
    if let (Some(path), Some(sheet)) = (&a.sheet, &evaluation.sheet) {
        sheet.write_png(path)?;
        println!(
            "\nsheet: {} (rows: input, {}; frames {:?} of the first recording)",
            path.display(),
            a.checkpoints.join(", "),
            sheet.frames
        );
    }
    println!();
    for c in &evaluation.checkpoints {
        println!("{}", verdict(c));
    }
    Ok(())
}
