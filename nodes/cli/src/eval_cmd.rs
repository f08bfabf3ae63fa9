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
    /// Perception: detection AP (COCO), depth AbsRel and δ<1.25, segmentation mIoU.
    Perception(PerceptionEvalArgs),
    /// Drivers in the loop with the simulator: driving score, collisions, TTC; HTML report.
    #[command(name = "closed-loop")]
    ClosedLoop(crate::closedloop_cmd::ClosedLoopArgs),
    /// Reasoning: the held-out braking questions, beside a baseline that assumes a dry road.
    Reason(crate::reason_cmd::EvalReasonArgs),
    /// The world model per horizon: token accuracy, PSNR/SSIM beside copy-last and the tokenizer's ceiling; action effect; stopping.
    World(crate::world_cmd::EvalWorldArgs),
    /// The multiview model per camera: PSNR/SSIM beside the mean image, the reprojection and the tokenizer's ceiling; flicker.
    Multiview(crate::multiview_cmd::EvalMultiviewArgs),
}

#[derive(Args)]
pub struct PerceptionEvalArgs {
    /// The checkpoint (from `s2r train perception`).
    model: PathBuf,
    /// Datasets from `s2r generate` (the split chosen by --split), curated folders or bags.
    #[arg(required = true)]
    data: Vec<PathBuf>,
    /// The split of datasets that have splits.yaml: train, val, test or all.
    #[arg(long, default_value = "test")]
    split: String,
    /// Renderings to evaluate on: flat, restyled or both.
    #[arg(long, default_value = "restyled")]
    frames: String,
    /// Cameras (default: every camera with labels).
    #[arg(long, value_delimiter = ',')]
    camera: Vec<String>,
    /// Use every n-th frame.
    #[arg(long, default_value_t = 1)]
    every: usize,
    /// Frames per network batch.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Write a PNG contact sheet: predictions, truth, segmentation and depth for a few frames.
    #[arg(long)]
    sheet: Option<PathBuf>,
    /// Frames on the sheet (spread over the data).
    #[arg(long, default_value_t = 6)]
    sheet_frames: usize,
    /// Write the figures as JSON too.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write the truth and the detections as scored, boxes [x, y, w, h] (for other COCO evaluators).
    #[arg(long)]
    coco: Option<PathBuf>,
    /// cpu, or cuda / cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
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
        EvalCmd::Perception(a) => perception(a),
        EvalCmd::ClosedLoop(a) => crate::closedloop_cmd::run(a),
        EvalCmd::Reason(a) => crate::reason_cmd::eval(a),
        EvalCmd::World(a) => crate::world_cmd::eval(a),
        EvalCmd::Multiview(a) => crate::multiview_cmd::eval(a),
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

fn perception(a: PerceptionEvalArgs) -> Result<()> {
    use s2r_perception::data::{self, Frames, LoadOptions, Split};
    use s2r_perception::{checkpoint, eval, predict::Predictor};
    s2r_runtime::tune_allocator();
    let device = s2r_perception::device(&a.device)?;
    let ck = checkpoint::read(&a.model)?;
    let cfg = ck.meta.config.clone();
    let split = Split::parse(&a.split).ok_or_else(|| anyhow::anyhow!("--split {}: expected train, val, test or all", a.split))?;
    let frames = Frames::parse(&a.frames).ok_or_else(|| anyhow::anyhow!("--frames {}: expected flat, restyled or both", a.frames))?;
    let bags = data::bags_of(&a.data, split)?;
    let ds = data::load(&bags, &LoadOptions { cameras: a.camera, every: a.every.max(1), ..LoadOptions::for_model(&cfg, frames) })?;
    if ds.samples.is_empty() {
        anyhow::bail!(
            "no labelled {} frames in the {} split of {}",
            a.frames,
            a.split,
            a.data.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let pred = Predictor { net: ck.net(&device)?, device, threshold: 0.01, max_detections: 100, mirror: false };
    let n = ds.samples.len();
    let pick = a.sheet_frames.max(1).min(n);
    let chosen: Vec<usize> = (0..pick).map(|i| i * n / pick).collect();
    let mut rows = Vec::new();
    let mut index = 0;
    let scorer = eval::score(&pred, &ds, a.batch, true, |s, p| {
        if a.sheet.is_some() && chosen.contains(&index) {
            rows.push(eval::sheet_row(s, p, &cfg.det_classes, &cfg.seg_classes));
        }
        index += 1;
    })?;
    let report = scorer.report();
    print!("{}: {}\n{}", a.model.display(), ck.meta.training.frames, eval::format(&report));
    if let Some(path) = &a.sheet {
        s2r_image::write_png(path, &s2r_image::grid(&rows, 4))?;
        eprintln!("wrote {} (columns: predictions, truth, predicted segmentation, predicted depth)", path.display());
    }
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    if let Some(path) = &a.coco {
        std::fs::write(path, serde_json::to_string(&scorer.coco_case())?)?;
        eprintln!("wrote {} (COCO truth and results)", path.display());
    }
    Ok(())
}
