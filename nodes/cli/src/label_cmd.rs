//! `s2r label`: a robot's recordings pseudo-labelled by a perception model
//! into a dataset `s2r train perception` trains on ([`s2r_perception::label`]).

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;
use s2r_perception::label::{label, LabelOptions};
use s2r_perception::{checkpoint, predict::Predictor};

/// Options of `s2r label`.
#[derive(Args)]
pub struct LabelArgs {
    /// Recordings of a camera (rosbag2 MCAP folders or .mcap files); ground truth is not needed.
    #[arg(required = true)]
    bags: Vec<PathBuf>,
    /// The dataset folder to write (clips/ and labels.yaml); must not exist.
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    teacher: TeacherArgs,
    /// The camera's name in the dataset (default: from the topic, /front/image_raw → front).
    #[arg(long)]
    camera: Option<String>,
    /// Boxes at least this sure are taught.
    #[arg(long, default_value_t = 0.5)]
    min_score: f32,
    /// Boxes between this and --min-score are kept untaught (neither object nor background in training); weaker ones are dropped.
    #[arg(long, default_value_t = 0.25)]
    uncertain_score: f32,
    /// A gap between frames longer than this (seconds) starts a new clip.
    #[arg(long, default_value_t = 0.5)]
    max_gap: f64,
    /// Label every n-th frame.
    #[arg(long, default_value_t = 1)]
    every: usize,
}

/// The deployed model as the teacher of a robot's frames: what `s2r label`
/// and `s2r cycle` both take.
#[derive(Args)]
pub struct TeacherArgs {
    /// The perception checkpoint that labels (default: the shipped one).
    #[arg(long)]
    pub perception: Option<PathBuf>,
    /// The camera's image topic, raw or …/compressed (default: the recording's one camera outside /sim/).
    #[arg(long)]
    pub topic: Option<String>,
    /// Frames the model is less sure of than this (its confidence, 0–1) are left out.
    #[arg(long, default_value_t = 0.5)]
    pub min_confidence: f32,
    /// Segmentation pixels less sure than this are ignored in training (and their depth).
    #[arg(long, default_value_t = 0.6)]
    pub min_pixel: f32,
    /// Average each frame's prediction with its mirror image's (left to right): a steadier teacher at twice the compute
    /// (in `s2r cycle`, for the labels and the restyles' controls; the "before" is scored as deployed, unmirrored).
    #[arg(long)]
    pub mirror: bool,
    /// cpu, cuda or cuda:N (CUDA needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl TeacherArgs {
    /// The checkpoint (given, else the shipped one), read, and its predictor
    /// on the device keeping boxes down to `threshold`.
    pub fn load(&self, threshold: f32) -> Result<(PathBuf, checkpoint::Loaded, Predictor)> {
        let device = s2r_perception::device(&self.device)?;
        let model = deployed(self.perception.clone())?;
        let ck = checkpoint::read(&model)?;
        let predictor = Predictor { net: ck.net(&device)?, device, threshold, max_detections: 100, mirror: self.mirror };
        Ok((model, ck, predictor))
    }
}

/// The perception checkpoint given, else the shipped one (what `s2r label` and `s2r cycle` start from).
pub(crate) fn deployed(perception: Option<PathBuf>) -> Result<PathBuf> {
    perception
        .or_else(s2r_perception::node::shipped_checkpoint)
        .context("no --perception and no shipped models/perception/perception.safetensors")
}

pub fn run(a: LabelArgs) -> Result<()> {
    s2r_runtime::tune_allocator();
    let (model, _, predictor) = a.teacher.load(a.uncertain_score.min(a.min_score))?;
    let opts = LabelOptions {
        topic: a.teacher.topic,
        camera: a.camera,
        min_confidence: a.teacher.min_confidence,
        min_score: a.min_score,
        uncertain_score: a.uncertain_score,
        min_pixel: a.teacher.min_pixel,
        max_gap: a.max_gap,
        every: a.every.max(1),
    };
    let report = label(&a.bags, &predictor, &model.display().to_string(), &opts, &a.output, &mut |m| eprintln!("{m}"))?;
    let kept: usize = report.bags.iter().map(|b| b.kept).sum();
    let frames: usize = report.bags.iter().map(|b| b.frames).sum();
    let clips: usize = report.bags.iter().map(|b| b.clips.len()).sum();
    println!(
        "wrote {}: {kept} of {frames} frames labelled in {clips} clips (report: {}); train on it with `s2r train perception {} --frames restyled`",
        a.output.display(),
        a.output.join("labels.yaml").display(),
        a.output.display()
    );
    Ok(())
}
