//! The multiview model's commands: `s2r train multiview`, `s2r eval
//! multiview` (per camera beside the mean-image and reprojection baselines)
//! and `s2r multiview` (a recording's front camera → all the rig's cameras:
//! a bag, a contact sheet and a video), and multiview_node. s2r_multiview
//! trains and generates; the tokenizer (s2r_tokenizer) turns frames into
//! codes and back, and perception (s2r_perception) estimates the depth the
//! reprojection uses, joined here.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use s2r_image::Rgb;
use s2r_multiview::data::{Depth, DepthFn, Episode, Frames, ReadOptions};
use s2r_multiview::fit::{fit, FitOptions, Progress};
use s2r_multiview::model::Config;
use s2r_multiview::node::DepthEstimator;
use s2r_multiview::rig::Rig;
use s2r_multiview::FrameCodec;
use s2r_perception::predict::{FrameRef, Predictor};

use crate::job_report::{self, Event};
use crate::world_cmd::TokenizerCodec;

/// multiview_node with sim2real's tokenizer and perception's depth (the node's logic is s2r_multiview::node).
pub const MULTIVIEW_NODE: s2r_runtime::component::Component = s2r_runtime::component::Component {
    exec: "multiview_node",
    about: "generates the rig's other cameras from the front camera with the multiview model",
    main: multiview_node,
    graceful: false,
};

fn multiview_node(ctx: s2r_runtime::Context, args: s2r_runtime::RosArgs) -> s2r_runtime::component::NodeFuture {
    s2r_multiview::node::run(
        ctx,
        args,
        |name| {
            s2r_tokenizer::tune_allocator();
            TokenizerCodec::load(name).map(|c| Box::new(c) as Box<dyn FrameCodec + Send + Sync>).map_err(|e| e.to_string())
        },
        |path, device| {
            depth_estimator(if path.is_empty() { None } else { Some(PathBuf::from(path)) }, device).map_err(|e| format!("{e:#}"))
        },
    )
}

/// Perception's depth (the checkpoint given, else the shipped one) as a depth estimator.
fn depth_estimator(perception: Option<PathBuf>, device: &str) -> Result<DepthEstimator> {
    let device = s2r_perception::device(device)?;
    let model = crate::label_cmd::deployed(perception)?;
    let ck = s2r_perception::checkpoint::read(&model)?;
    let predictor = Predictor { net: ck.net(&device)?, device, threshold: 0.5, max_detections: 1, mirror: false };
    Ok(Box::new(move |rgb: &[u8], w: usize, h: usize, fx: f64| -> Result<Vec<f32>, String> {
        let frame = FrameRef { rgb, w, h, fx: Some(fx as f32) };
        let mut p = predictor.predict(&[frame], true).map_err(|e| e.to_string())?;
        Ok(std::mem::take(&mut p[0].depth))
    }))
}

/// A boxed detector for the cross-view measure.
type Detector = Box<dyn Fn(&[u8], usize, f64) -> Result<Vec<s2r_multiview::eval::Detected>, String>>;

/// Perception's detections (score ≥ 0.3), each placed at the median estimated depth inside its box.
fn detector(perception: Option<PathBuf>, device: &str) -> Result<Detector> {
    let device = s2r_perception::device(device)?;
    let model = crate::label_cmd::deployed(perception)?;
    let ck = s2r_perception::checkpoint::read(&model)?;
    let predictor = Predictor { net: ck.net(&device)?, device, threshold: 0.3, max_detections: 50, mirror: false };
    Ok(Box::new(move |rgb: &[u8], size: usize, fx: f64| {
        let frame = FrameRef { rgb, w: size, h: size, fx: Some(fx as f32) };
        let p = predictor.predict(&[frame], true).map_err(|e| e.to_string())?.remove(0);
        Ok(p.detections
            .iter()
            .filter_map(|d| {
                let [x0, y0, x1, y1] = d.bbox.map(|v| (v.max(0.0) as usize).min(size - 1));
                let mut depths: Vec<f32> = (y0..=y1)
                    .flat_map(|y| (x0..=x1).map(move |x| y * size + x))
                    .map(|i| p.depth[i])
                    .filter(|z| z.is_finite() && *z > 0.0)
                    .collect();
                if depths.is_empty() {
                    return None;
                }
                depths.sort_by(f32::total_cmp);
                let c = [(d.bbox[0] + d.bbox[2]) as f64 / 2.0, (d.bbox[1] + d.bbox[3]) as f64 / 2.0];
                Some(s2r_multiview::eval::Detected { class: d.class, centre: c, depth: depths[depths.len() / 2] as f64 })
            })
            .collect())
    }))
}

/// How recordings are read, for every multiview command.
#[derive(Args)]
pub struct MultiviewDataArgs {
    /// The camera the others are generated from.
    #[arg(long, default_value = "front")]
    from: String,
    /// Camera frames: flat, restyled or both.
    #[arg(long, default_value = "both")]
    frames: String,
    /// Use every this many instants of the rig.
    #[arg(long, default_value_t = 2)]
    every: usize,
    /// The source camera's depth for the reprojection: estimated (perception), truth (the simulator's; needs depth kept) or none.
    #[arg(long, default_value = "estimated")]
    depth: String,
    /// The perception checkpoint that estimates depth (default: the shipped one).
    #[arg(long)]
    perception: Option<PathBuf>,
    /// The discrete tokenizer: a shipped name or a file.
    #[arg(long, default_value = "dv8x16x16")]
    tokenizer: String,
    /// Do not cache token instants (in $XDG_CACHE_HOME/sim2real/multiview).
    #[arg(long)]
    no_cache: bool,
}

/// The tokenizer, the depth estimator and the frames to read, loaded once.
struct Reader {
    codec: TokenizerCodec,
    estimator: Option<(String, DepthEstimator)>,
    kinds: Vec<Frames>,
    depth: String,
    /// The tokenizer's and the depth estimator's files (path, size, time), for the cache's key.
    cache_tag: String,
}

/// A file as the cache knows it: its path, size and modification time.
fn file_tag(path: &Path) -> String {
    let meta = std::fs::metadata(path).ok();
    format!("{}:{:?}:{:?}", path.display(), meta.as_ref().map(|m| m.len()), meta.and_then(|m| m.modified().ok()))
}

impl Reader {
    fn new(d: &MultiviewDataArgs, device: &str) -> Result<Reader> {
        s2r_tokenizer::tune_allocator();
        let codec = TokenizerCodec::load(&d.tokenizer)?;
        let kinds = Frames::parse_list(&d.frames).map_err(|e| anyhow::anyhow!("--frames {e}"))?;
        let mut cache_tag = file_tag(&s2r_tokenizer::resolve_checkpoint(&d.tokenizer));
        let estimator = match d.depth.as_str() {
            "estimated" => {
                let path = crate::label_cmd::deployed(d.perception.clone())?;
                cache_tag += &format!(" {}", file_tag(&path));
                Some((path.display().to_string(), depth_estimator(Some(path), device)?))
            }
            "truth" | "none" => None,
            other => bail!("--depth '{other}': estimated, truth or none"),
        };
        Ok(Reader { codec, estimator, kinds, depth: d.depth.clone(), cache_tag })
    }

    fn options(&self, d: &MultiviewDataArgs, kind: Frames, views: bool) -> ReadOptions<'_> {
        let depth = match (&self.estimator, self.depth.as_str()) {
            (Some((name, f)), _) => Depth::Estimated(name, f.as_ref() as DepthFn),
            (None, "truth") => Depth::Truth,
            _ => Depth::None,
        };
        ReadOptions {
            source: d.from.clone(),
            frames: kind,
            every: d.every,
            depth,
            keep_views: views,
            cache: if d.no_cache { None } else { crate::world_cmd::cache_dir("multiview") },
            cache_tag: self.cache_tag.clone(),
        }
    }

    /// The episodes of `paths` (only the held-out seeds with `held_out_only`), every kind of frames.
    fn read(&self, d: &MultiviewDataArgs, paths: &[PathBuf], held_out_only: bool, views: bool) -> Result<Vec<Episode>> {
        let mut bags = Vec::new();
        for p in paths {
            bags.extend(s2r_multiview::data::bags(p)?);
        }
        let mut episodes = Vec::new();
        let total = bags.len();
        for (i, b) in bags.iter().enumerate() {
            if held_out_only && !held_out_bag(b)? {
                continue;
            }
            eprint!("\rreading {}/{total}: {}          ", i + 1, b.file_name().and_then(|n| n.to_str()).unwrap_or("bag"));
            let _ = std::io::stderr().flush();
            for &kind in &self.kinds {
                episodes.push(s2r_multiview::data::read(b, &self.codec, &self.options(d, kind, views))?);
            }
        }
        eprintln!();
        if episodes.is_empty() {
            bail!(
                "no {}episodes in {}",
                if held_out_only { "held-out (seed % 10 == 9) " } else { "" },
                paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            );
        }
        Ok(episodes)
    }
}

/// Whether a bag's seed (its `/scenario`) is held out.
fn held_out_bag(bag: &Path) -> Result<bool> {
    let r = s2r_bag::BagReader::open(bag)?;
    for m in r.messages() {
        if r.connections[m.connection].topic == "/scenario" {
            let s: sim2real_msgs::sim2real_msgs::msg::ScenarioInfo = s2r_runtime::Serialized(m.data.clone()).decode()?;
            return Ok(s2r_train::held_out(s.seed));
        }
    }
    Ok(false)
}

#[derive(Args)]
pub struct TrainMultiviewArgs {
    /// Recordings of a rig: s2r generate datasets (config/sweeps/multiview.yaml) or bags; held-out seeds (seed % 10 == 9) are never trained on.
    #[arg(required = true)]
    data: Vec<PathBuf>,
    /// The checkpoint to write; when it exists, training resumes from it (see --fresh).
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    d: MultiviewDataArgs,
    /// A fresh network's width.
    #[arg(long, default_value_t = 128)]
    dim: usize,
    /// A fresh network's blocks.
    #[arg(long, default_value_t = 4)]
    layers: usize,
    #[arg(long, default_value_t = 3000)]
    steps: usize,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 250)]
    eval_every: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The share of training pairs without their reprojection (so the model also works without depth).
    #[arg(long, default_value_t = 0.25)]
    drop_reprojection: f64,
    /// Start from scratch even if the output exists.
    #[arg(long)]
    fresh: bool,
    /// cpu, or cuda / cuda:N (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn train(a: TrainMultiviewArgs) -> Result<()> {
    let reader = Reader::new(&a.d, &a.device)?;
    let episodes = reader.read(&a.d, &a.data, false, false)?;
    let codec = &reader.codec;
    let mut config = Config::new(&codec.name(), codec.size(), codec.grid(), codec.levels());
    config.dim = a.dim;
    config.layers = a.layers;
    config.mlp = 4 * a.dim;
    let opts = FitOptions {
        data: a.data.iter().map(|p| p.display().to_string()).collect(),
        output: a.output.clone(),
        config,
        steps: a.steps,
        batch: a.batch,
        lr: a.lr,
        seed: a.seed,
        eval_every: a.eval_every,
        fresh: a.fresh,
        drop_reprojection: a.drop_reprojection,
        device: s2r_train::device(&a.device)?,
    };
    let instants: usize = episodes.iter().map(|e| e.instants.len()).sum();
    println!(
        "{} recordings ({}), {instants} instants of {} cameras ({}), depth {}",
        episodes.len(),
        a.d.frames,
        episodes[0].cameras.len(),
        episodes[0].cameras.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
        a.d.depth
    );
    let mut line = job_report::StepLine::new(a.steps);
    job_report::emit(Event::Start { steps: a.steps as u64, metric: "token_accuracy".into(), higher_is_better: true });
    let record = fit(&episodes, &opts, &mut |p| match p {
        Progress::Data { train, held_out, trained } => {
            println!("training {trained} scalars on {train} (instant, camera) pairs, {held_out} held out")
        }
        Progress::Resumed(s) => println!("resuming {} at step {s}", a.output.display()),
        Progress::Step { step, loss } => line.step(step, loss),
        Progress::HeldOut { step, accuracy, loss } => line.held_out(step, "token accuracy", accuracy, loss),
    })?;
    println!("wrote {} (step {}/{})", a.output.display(), record.step, record.steps);
    Ok(())
}

#[derive(Args)]
pub struct EvalMultiviewArgs {
    /// The multiview checkpoint.
    model: PathBuf,
    /// Recordings whose held-out seeds (seed % 10 == 9) are scored; their other seeds give the mean-image baseline.
    #[arg(long, required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    #[command(flatten)]
    d: MultiviewDataArgs,
    /// Also write the report as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Skip cross-view consistency (the perception model's detections in adjacent views).
    #[arg(long)]
    no_cross_view: bool,
    /// Write a contact sheet of one held-out instant (the rig's layout: true, generated, reprojected).
    #[arg(long)]
    sheet: Option<PathBuf>,
    /// cpu, or cuda / cuda:N (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Refuses a model of other codes or another source than the reading makes.
fn check_model(path: &Path, loaded: &s2r_multiview::checkpoint::Loaded, codec: &TokenizerCodec, from: &str) -> Result<()> {
    let cfg = &loaded.record.config;
    if cfg.codec != codec.name() {
        bail!("{}: a model of {} tokens; --tokenizer {} makes other codes", path.display(), cfg.codec, codec.name());
    }
    if loaded.record.source != from {
        bail!("{}: a model that generates from '{}', not '{from}' (--from)", path.display(), loaded.record.source);
    }
    Ok(())
}

pub fn eval(a: EvalMultiviewArgs) -> Result<()> {
    let device = s2r_train::device(&a.device)?;
    let loaded = s2r_multiview::checkpoint::load(&a.model, &device)?;
    let reader = Reader::new(&a.d, &a.device)?;
    check_model(&a.model, &loaded, &reader.codec, &a.d.from)?;
    let episodes = reader.read(&a.d, &a.data, true, true)?;
    // The mean-image baseline: each camera's mean view over the training seeds.
    let mut train_bags = Vec::new();
    for p in &a.data {
        for b in s2r_multiview::data::bags(p)? {
            if !held_out_bag(&b)? {
                train_bags.push(b);
            }
        }
    }
    if train_bags.is_empty() {
        bail!(
            "no training seeds in {} for the mean-image baseline",
            a.data.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    eprintln!("mean views of {} training recordings …", train_bags.len());
    let (names, means) = s2r_multiview::data::mean_views(&train_bags, &a.d.from, &reader.kinds, a.d.every, &reader.codec)?;
    let ep_names: Vec<String> = episodes[0].cameras.iter().map(|c| c.name.clone()).collect();
    if names != ep_names {
        bail!("the training recordings' rig ({}) is not the held-out one's ({})", names.join(", "), ep_names.join(", "));
    }
    let detector = if a.no_cross_view { None } else { Some(detector(a.d.perception.clone(), &a.device)?) };
    let opts = s2r_multiview::eval::EvalOptions {
        means: &means,
        sheet_at: (0, 0),
        detector: detector.as_ref().map(|d| d.as_ref() as s2r_multiview::eval::DetectFn),
    };
    let (report, sheet) = s2r_multiview::eval::evaluate(&loaded.model, &reader.codec, &episodes, &opts, &device, &mut |k, n| {
        eprint!("\rinstant {k}/{n}   ");
        let _ = std::io::stderr().flush();
    })?;
    eprintln!();
    println!(
        "{} held-out recordings ({}), {} instants; {} from {} (depth {})",
        report.episodes,
        a.d.frames,
        report.instants,
        model_name(&a.model),
        a.d.from,
        a.d.depth
    );
    print_report(&report);
    if let Some(x) = &report.cross_view {
        println!(
            "\ncross-view consistency (perception's detections in adjacent views: same class, same place): generated {:.1}% of {} detections, true views {:.1}% of {}",
            x.generated * 100.0,
            x.generated_candidates,
            x.truth * 100.0,
            x.truth_candidates
        );
    }
    if let Some(j) = &a.json {
        std::fs::write(j, serde_json::to_string_pretty(&report)?).with_context(|| format!("writing {}", j.display()))?;
    }
    if let (Some(path), Some(s)) = (&a.sheet, sheet) {
        let size = reader.codec.size();
        s2r_image::write_png(path, &rig_sheet(&s.names, &[&s.truth, &s.generated, &s.reprojected], size))?;
        println!("sheet: {} (per camera: true | generated | reprojected)", path.display());
    }
    Ok(())
}

fn model_name(p: &Path) -> String {
    p.file_stem().and_then(|s| s.to_str()).unwrap_or("model").to_string()
}

fn print_report(r: &s2r_multiview::eval::Report) {
    println!("\n| camera | coverage | model PSNR (SSIM) | model, no depth | mean image | reprojection | tokenizer ceiling | token acc. | flicker gen./true |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let q = |x: s2r_multiview::eval::Quality| format!("{:.2} ({:.3})", x.psnr, x.ssim);
    for row in &r.rows {
        println!(
            "| {} | {:.0}% | {} | {} | {} | {} | {} | {:.1}% | {:.2} / {:.2} |",
            row.camera,
            row.coverage * 100.0,
            q(row.model),
            q(row.model_no_depth),
            q(row.mean_image),
            q(row.reprojection),
            q(row.ceiling),
            row.token_accuracy * 100.0,
            row.flicker_generated,
            row.flicker_true
        );
    }
}

/// Where each camera of a surround rig goes in a 3×3 layout (row, column) by
/// its name; cameras of other names fill the free cells in order.
fn layout(names: &[String]) -> Vec<(usize, usize)> {
    let known = |n: &str| match n {
        "front_left" => Some((0, 0)),
        "front" => Some((0, 1)),
        "front_right" => Some((0, 2)),
        "left" => Some((1, 0)),
        "right" => Some((1, 2)),
        "rear_left" => Some((2, 0)),
        "rear" => Some((2, 1)),
        "rear_right" => Some((2, 2)),
        _ => None,
    };
    let used: Vec<(usize, usize)> = names.iter().filter_map(|n| known(n)).collect();
    let mut free = (0..9).map(|i| (i / 3, i % 3)).filter(|c| !used.contains(c) && *c != (1, 1));
    names.iter().map(|n| known(n).unwrap_or_else(|| free.next().unwrap_or((1, 1)))).collect()
}

/// The rig's layout with, per camera, `sets` side by side (e.g. true | generated).
fn rig_sheet(names: &[String], sets: &[&Vec<Vec<u8>>], size: usize) -> Rgb {
    let half = size / 2;
    let blank = Rgb {
        width: half * sets.len() + 2 * (sets.len() - 1),
        height: half,
        data: vec![0; (half * sets.len() + 2 * (sets.len() - 1)) * half * 3],
    };
    let mut cells = vec![vec![blank.clone(); 3]; 3];
    for (k, (r, c)) in layout(names).into_iter().enumerate() {
        let row: Vec<Rgb> = sets.iter().map(|s| Rgb { width: size, height: size, data: s[k].clone() }.resize(half, half)).collect();
        cells[r][c] = s2r_image::grid(&[row], 2);
    }
    s2r_image::grid(&cells, 8)
}

#[derive(Args)]
pub struct MultiviewArgs {
    /// A recording with the source camera (a robot's bag, or an s2r generate episode).
    bag: PathBuf,
    /// The multiview checkpoint (default: the shipped one).
    #[arg(long, short)]
    model: Option<PathBuf>,
    /// The camera the others are generated from.
    #[arg(long, default_value = "front")]
    from: String,
    /// The rig to generate: a rig file (YAML, see --write-rig) or a bag whose camera_info and /tf_static calibrate it
    /// (default: the recording's own calibration when it has the source camera's, else the checkpoint's rig).
    #[arg(long)]
    rig: Option<PathBuf>,
    /// Camera frames of the source: restyled (`/<camera>/image_raw`, a robot's) or flat (`/sim/<camera>/image_raw`).
    #[arg(long, default_value = "restyled")]
    frames: String,
    /// The source's depth for the reprojection: estimated (perception), truth or none.
    #[arg(long, default_value = "estimated")]
    depth: String,
    /// The perception checkpoint that estimates depth (default: the shipped one).
    #[arg(long)]
    perception: Option<PathBuf>,
    /// At most this many frames (0: all).
    #[arg(long, default_value_t = 0)]
    max_frames: usize,
    /// Also write the rig used as a rig file.
    #[arg(long)]
    write_rig: Option<PathBuf>,
    /// Carry the recording's labels (the simulator's `/sim/<camera>/{depth,segmentation,detections}` and `/scenario`)
    /// into the bag, resampled into each camera's view: the generated rig becomes a perception training set. `covered`:
    /// of a generated view only what the reprojection put there (elsewhere depth and classes unknown, boxes as seen
    /// by the share covered).
    #[arg(long, num_args = 0..=1, default_missing_value = "all", value_name = "all|covered")]
    labels: Option<String>,
    #[arg(short, long, default_value = "multiview")]
    output: PathBuf,
    /// cpu, or cuda / cuda:N (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// One source frame read from a bag.
struct SourceFrame {
    stamp: i64,
    rgb: Vec<u8>,
    w: usize,
    h: usize,
    depth: Option<Vec<f32>>,
    /// The other cameras' true frames at this stamp, when the recording has them (name → rgb8 view).
    truth: Vec<(String, Vec<u8>)>,
}

pub fn multiview(a: MultiviewArgs) -> Result<()> {
    s2r_tokenizer::tune_allocator();
    let device = s2r_train::device(&a.device)?;
    let model_path = match &a.model {
        Some(m) => m.clone(),
        None => s2r_multiview::checkpoint::shipped().context("no --model and no shipped models/multiview/multiview.safetensors")?,
    };
    let loaded = s2r_multiview::checkpoint::load(&model_path, &device)?;
    let codec = TokenizerCodec::load(&loaded.record.config.codec)?;
    check_model(&model_path, &loaded, &codec, &a.from)?;
    let kind = match Frames::parse_list(&a.frames).map_err(|e| anyhow::anyhow!("--frames {e}"))?.as_slice() {
        [k] => *k,
        _ => bail!("--frames: flat or restyled (one source stream)"),
    };
    let bags = s2r_multiview::data::bags(&a.bag)?;
    let [bag] = bags.as_slice() else { bail!("{}: one bag (an episode), not a dataset of {}", a.bag.display(), bags.len()) };
    // The rig: given, else the recording's own (when it calibrates the source and other cameras), else the
    // checkpoint's — with the recording's intrinsics of the source camera when it has them.
    let mut rig = match &a.rig {
        Some(p) if p.extension().is_some_and(|e| e == "yaml" || e == "yml") => Rig::load(p)?,
        Some(p) => {
            let from = s2r_multiview::data::bags(p)?;
            Rig::from_bag(from.first().with_context(|| format!("--rig {}: no bag in it", p.display()))?)?
        }
        None => match Rig::from_bag(bag) {
            Ok(r) if r.camera(&a.from).is_ok() && r.cameras.len() > 1 => r,
            own => {
                let mut rig = loaded.record.rig.clone();
                match own {
                    Ok(r) if r.camera(&a.from).is_ok() => {
                        let mine = r.camera(&a.from)?;
                        println!(
                            "{}: calibrates {} alone: the checkpoint's rig, with the recording's intrinsics of {}",
                            a.bag.display(),
                            a.from,
                            a.from
                        );
                        for c in &mut rig.cameras {
                            if c.name == a.from {
                                *c = s2r_multiview::rig::Camera { width: mine.width, height: mine.height, k: mine.k, ..c.clone() };
                            }
                        }
                    }
                    Ok(_) => println!("{}: no calibration of {}: the checkpoint's rig", a.bag.display(), a.from),
                    Err(e) => println!("{}: the checkpoint's rig ({e})", a.bag.display()),
                }
                rig
            }
        },
    };
    rig.camera(&a.from)?;
    let estimator = match a.depth.as_str() {
        "estimated" => Some(depth_estimator(a.perception.clone(), &a.device)?),
        "truth" | "none" => None,
        other => bail!("--depth '{other}': estimated, truth or none"),
    };
    let frames = read_source(bag, &a.from, kind, &rig, a.depth == "truth", &codec, a.max_frames)?;
    let first = frames.first().context("no frames")?;
    let covered_only = match a.labels.as_deref() {
        None | Some("all") => false,
        Some("covered") => true,
        Some(other) => bail!("--labels {other}: all or covered"),
    };
    let mut labels = if a.labels.is_some() {
        // The labels are the recording's cameras': the rig generated must be that one.
        let own = Rig::from_bag(bag).with_context(|| format!("--labels: {} must calibrate its cameras", bag.display()))?;
        for c in &rig.cameras {
            let o = own.camera(&c.name).with_context(|| format!("--labels: {} has no camera '{}' of the rig", bag.display(), c.name))?;
            let o = o.resized(c.width, c.height);
            let same = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6 * (1.0 + x.abs()));
            if !(same(&o.k, &c.k) && same(&o.translation, &c.translation) && same(&o.rotation, &c.rotation)) {
                bail!("--labels: the rig's {} is not the recording's (its labels are of the recording's cameras): leave out --rig", c.name);
            }
        }
        let names: Vec<String> =
            std::iter::once(a.from.clone()).chain(rig.cameras.iter().filter(|c| c.name != a.from).map(|c| c.name.clone())).collect();
        let stamps: Vec<i64> = frames.iter().map(|f| f.stamp).collect();
        Some(read_labels(bag, &names, &stamps, codec.size())?)
    } else {
        None
    };
    let source_cam = rig.camera(&a.from)?.clone();
    if (first.w as u32, first.h as u32) != (source_cam.width, source_cam.height) {
        println!(
            "{}: {}×{} frames, the rig's {} is {}×{}: resampled (intrinsics scaled)",
            a.bag.display(),
            first.w,
            first.h,
            a.from,
            source_cam.width,
            source_cam.height
        );
        for c in &mut rig.cameras {
            if c.name == a.from {
                *c = c.resized(first.w as u32, first.h as u32);
            }
        }
    }
    if let Some(p) = &a.write_rig {
        rig.save(p)?;
    }
    let size = codec.size();
    let cams = s2r_multiview::data::view_cameras(&rig, &a.from, size)?;
    std::fs::create_dir_all(&a.output).with_context(|| format!("creating {}", a.output.display()))?;
    let frames_dir = a.output.join("frames");
    std::fs::create_dir_all(&frames_dir)?;
    let mut all: Vec<(i64, Vec<Vec<u8>>)> = Vec::new();
    let mut sheet = None;
    let t0 = std::time::Instant::now();
    for (i, f) in frames.iter().enumerate() {
        let view = codec.view(&f.rgb, f.w, f.h);
        let depth = match (&estimator, &f.depth) {
            (Some(e), _) => Some(e(&f.rgb, f.w, f.h, rig.camera(&a.from)?.k[0]).map_err(|p| anyhow::anyhow!("depth: {p}"))?),
            (None, Some(d)) => Some(d.clone()),
            _ => None,
        };
        if let Some(d) = &depth {
            if d.len() != f.w * f.h {
                bail!(
                    "{}: a depth map of {} values for {}×{} frames of {} (the depth image must match the camera's)",
                    a.bag.display(),
                    d.len(),
                    f.w,
                    f.h,
                    a.from
                );
            }
        }
        let depth_view = depth.map(|d| s2r_multiview::reproject::view_depth(&d, f.w, f.h, size));
        let views = s2r_multiview::generate::generate(&loaded.model, &codec, &cams, &view, depth_view.as_deref())?;
        if covered_only {
            if let Some(l) = &mut labels {
                let nothing = vec![false; size * size];
                for v in &views {
                    l.keep_covered(f.stamp, &v.name, v.warp.as_ref().map_or(&nothing, |w| &w.valid));
                }
            }
        }
        let mut out = vec![view.clone()];
        out.extend(views.iter().map(|v| v.rgb.clone()));
        // A frame of the layout: generated (with the true views beside, when the recording has them).
        let truth: Vec<Vec<u8>> = cams
            .iter()
            .enumerate()
            .map(|(k, c)| {
                f.truth.iter().find(|(n, _)| *n == c.name).map(|t| t.1.clone()).unwrap_or_else(|| {
                    if k == 0 {
                        view.clone()
                    } else {
                        vec![0; size * size * 3]
                    }
                })
            })
            .collect();
        let names: Vec<String> = cams.iter().map(|c| c.name.clone()).collect();
        let has_truth = !f.truth.is_empty();
        let layout_frame = if has_truth { rig_sheet(&names, &[&truth, &out], size) } else { rig_sheet(&names, &[&out], size) };
        s2r_image::write_png(&frames_dir.join(format!("{i:04}.png")), &layout_frame)?;
        if sheet.is_none() {
            sheet = Some(layout_frame);
        }
        all.push((f.stamp, out));
        eprint!("\rframe {}/{}   ", i + 1, frames.len());
        let _ = std::io::stderr().flush();
    }
    eprintln!();
    let per = t0.elapsed().as_secs_f64() * 1e3 / frames.len().max(1) as f64;
    if let Some(s) = &sheet {
        s2r_image::write_png(&a.output.join("sheet.png"), s)?;
    }
    write_rig_bag(&a.output.join("bag"), &cams, &rig, &all, size, labels.as_ref())?;
    let rate = {
        let d: Vec<i64> = all.windows(2).map(|w| w[1].0 - w[0].0).filter(|d| *d > 0).collect();
        d.iter().min().map_or(10.0, |&m| (1e9 / m as f64).round().max(1.0))
    };
    let video = a.output.join("multiview.mp4");
    let made = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-framerate"])
        .arg(format!("{rate}"))
        .arg("-i")
        .arg(frames_dir.join("%04d.png"))
        .args(["-pix_fmt", "yuv420p", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"])
        .arg(&video)
        .status();
    println!(
        "{}: {} frames of {} → {} cameras ({}), depth {}, {:.0} ms a frame",
        a.bag.display(),
        frames.len(),
        a.from,
        cams.len(),
        cams.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
        a.depth,
        per
    );
    println!(
        "{}: bag/ (every camera's image_raw and camera_info, /tf_static{}), sheet.png and frames/ (the rig's layout{})",
        a.output.display(),
        match (&labels, covered_only) {
            (None, _) => "",
            (Some(_), false) => ", the labels in each view",
            (Some(_), true) => ", the labels in each view (of the generated ones, what the reprojection covers)",
        },
        if frames.first().is_some_and(|f| !f.truth.is_empty()) { ": per camera true | generated" } else { "" }
    );
    match made {
        Ok(s) if s.success() => println!("video: {}", video.display()),
        _ => println!("no video (ffmpeg not found or failed)"),
    }
    Ok(())
}

/// The source camera's frames of `bag` (and the others' views where the recording has them, for the sheet).
fn read_source(
    bag: &Path,
    from: &str,
    kind: Frames,
    rig: &Rig,
    truth_depth: bool,
    codec: &TokenizerCodec,
    max: usize,
) -> Result<Vec<SourceFrame>> {
    use s2r_image::stored;
    let r = s2r_bag::BagReader::open(bag)?;
    let stored_cams = stored::cameras(r.connections.iter().map(|c| (c.topic.as_str(), c.type_name.as_str())));
    let want = kind.topic(from);
    let src = stored::find(&stored_cams, std::slice::from_ref(&want)).with_context(|| format!("{}: no frames on {want}", bag.display()))?;
    let others: Vec<(String, stored::StoredCamera)> = rig
        .cameras
        .iter()
        .filter(|c| c.name != from)
        .filter_map(|c| stored::find(&stored_cams, &[kind.topic(&c.name)]).map(|s| (c.name.clone(), s)))
        .collect();
    let depth_topic = format!("/sim/{from}/depth");
    if truth_depth && !r.connections.iter().any(|c| c.topic == depth_topic) {
        bail!("{}: --depth truth needs {depth_topic}", bag.display());
    }
    let mut frames: Vec<SourceFrame> = Vec::new();
    let mut pending_truth: Vec<(i64, String, Vec<u8>)> = Vec::new();
    let mut depths: Vec<(i64, Vec<f32>)> = Vec::new();
    for m in r.messages() {
        let topic = r.connections[m.connection].topic.as_str();
        let data = s2r_runtime::Serialized(m.data.clone());
        if topic == src.topic {
            if max > 0 && frames.len() >= max {
                continue;
            }
            let img = src.decode(&data)?;
            let rgb = s2r_image::rgb8(&img, &src.topic)?;
            frames.push(SourceFrame {
                stamp: s2r_runtime::stamp_ns(&img.header.stamp),
                w: img.width as usize,
                h: img.height as usize,
                rgb,
                depth: None,
                truth: Vec::new(),
            });
        } else if let Some((name, cam)) = others.iter().find(|(_, c)| c.topic == topic) {
            let img = cam.decode(&data)?;
            let rgb = s2r_image::rgb8(&img, &cam.topic)?;
            pending_truth.push((
                s2r_runtime::stamp_ns(&img.header.stamp),
                name.clone(),
                codec.view(&rgb, img.width as usize, img.height as usize),
            ));
        } else if truth_depth && topic == depth_topic {
            let img: sim2real_msgs::sensor_msgs::msg::Image = data.decode()?;
            depths.push((s2r_runtime::stamp_ns(&img.header.stamp), s2r_image::depth_m(&img, topic)?));
        }
    }
    if frames.is_empty() {
        bail!("{}: no frames on {}", bag.display(), src.topic);
    }
    for f in &mut frames {
        f.truth = pending_truth.iter().filter(|(s, _, _)| *s == f.stamp).map(|(_, n, v)| (n.clone(), v.clone())).collect();
        if truth_depth {
            f.depth = Some(
                depths
                    .iter()
                    .find(|(s, _)| *s == f.stamp)
                    .map(|d| d.1.clone())
                    .with_context(|| format!("{depth_topic}: no depth at {}", f.stamp))?,
            );
        }
    }
    Ok(frames)
}

/// A recording's labels in each camera's view: its `/scenario` (the class table) and, per frame stamp and camera,
/// depth, segmentation and boxes.
struct ViewLabels {
    scenario: sim2real_msgs::sim2real_msgs::msg::ScenarioInfo,
    frames: std::collections::HashMap<(i64, String), FrameLabels>,
}

/// One camera's labels at one instant, in its view.
struct FrameLabels {
    depth: sim2real_msgs::sensor_msgs::msg::Image,
    segmentation: sim2real_msgs::sensor_msgs::msg::Image,
    detections: sim2real_msgs::vision_msgs::msg::Detection2DArray,
}

const LABEL_TOPICS: [&str; 3] = ["depth", "segmentation", "detections"];

impl ViewLabels {
    /// Keeps of `camera`'s labels at `stamp` only what `valid` (its view's covered pixels) shows.
    fn keep_covered(&mut self, stamp: i64, camera: &str, valid: &[bool]) {
        if let Some(l) = self.frames.get_mut(&(stamp, camera.to_string())) {
            s2r_multiview::labels::keep_covered(&mut l.depth, &mut l.segmentation, &mut l.detections, valid);
        }
    }
}

/// The simulator's labels of `cameras` at `stamps` in `bag`, resampled into the `size`×`size` views; a camera without
/// them, or a frame without one of them, is named.
fn read_labels(bag: &Path, cameras: &[String], stamps: &[i64], size: usize) -> Result<ViewLabels> {
    use sim2real_msgs::sensor_msgs::msg::Image;
    use sim2real_msgs::vision_msgs::msg::Detection2DArray;
    let r = s2r_bag::BagReader::open(bag)?;
    let wanted: std::collections::HashSet<i64> = stamps.iter().copied().collect();
    for c in cameras {
        for t in LABEL_TOPICS {
            let topic = format!("/sim/{c}/{t}");
            if !r.connections.iter().any(|k| k.topic == topic) {
                bail!(
                    "{}: --labels needs {topic} (the simulator's labels: s2r generate keeps them with keep: [depth, segmentation, boxes])",
                    bag.display()
                );
            }
        }
    }
    let mut scenario = None;
    let mut sizes: std::collections::HashMap<String, (usize, usize)> = std::collections::HashMap::new();
    // What has arrived of each (stamp, camera): depth, segmentation, boxes (in the frame's coordinates).
    type Partial = (Option<Image>, Option<Image>, Option<Detection2DArray>);
    let mut partial: std::collections::HashMap<(i64, String), Partial> = std::collections::HashMap::new();
    for m in r.messages() {
        let topic = r.connections[m.connection].topic.as_str();
        if topic == "/scenario" {
            if scenario.is_none() {
                let data = s2r_runtime::Serialized(m.data.clone());
                scenario = Some(data.decode().map_err(|e| anyhow::anyhow!("{}: /scenario: {e}", bag.display()))?);
            }
            continue;
        }
        let Some((cam, what)) = topic.strip_prefix("/sim/").and_then(|t| t.rsplit_once('/')) else { continue };
        let Some(slot) = LABEL_TOPICS.iter().position(|t| *t == what) else { continue };
        if !cameras.iter().any(|c| c == cam) {
            continue;
        }
        let data = s2r_runtime::Serialized(m.data.clone());
        let bad = |e: s2r_runtime::raw::CdrError| anyhow::anyhow!("{}: {topic}: {e}", bag.display());
        if slot == 2 {
            let d: Detection2DArray = data.decode().map_err(bad)?;
            let stamp = s2r_runtime::stamp_ns(&d.header.stamp);
            if wanted.contains(&stamp) {
                partial.entry((stamp, cam.to_string())).or_default().2 = Some(d);
            }
        } else {
            let img: Image = data.decode().map_err(bad)?;
            let stamp = s2r_runtime::stamp_ns(&img.header.stamp);
            if !wanted.contains(&stamp) {
                continue;
            }
            sizes.insert(cam.to_string(), (img.width as usize, img.height as usize));
            let view = s2r_multiview::labels::view_nearest(&img, size).with_context(|| {
                format!(
                    "{}: {topic}: a {}×{} {} image of step {} and {} bytes",
                    bag.display(),
                    img.width,
                    img.height,
                    img.encoding,
                    img.step,
                    img.data.len()
                )
            })?;
            let p = partial.entry((stamp, cam.to_string())).or_default();
            if slot == 0 {
                p.0 = Some(view);
            } else {
                p.1 = Some(view);
            }
        }
    }
    let scenario = scenario.with_context(|| format!("{}: --labels needs /scenario (the class table)", bag.display()))?;
    let mut frames = std::collections::HashMap::new();
    for ((stamp, cam), p) in partial {
        let (Some(depth), Some(segmentation), Some(boxes)) = p else {
            let missing = [p.0.is_none(), p.1.is_none(), p.2.is_none()].iter().position(|m| *m).unwrap_or(0);
            bail!("{}: /sim/{cam}/{} has no message at {stamp} (the camera's frame has one)", bag.display(), LABEL_TOPICS[missing]);
        };
        // Boxes are mapped by their camera's frame size (its label images').
        let &(w, h) = sizes.get(&cam).with_context(|| format!("{}: /sim/{cam}/detections without its images", bag.display()))?;
        let detections = s2r_multiview::labels::view_boxes(&boxes, w, h, size);
        frames.insert((stamp, cam), FrameLabels { depth, segmentation, detections });
    }
    if let Some(stamp) = stamps.iter().find(|s| !cameras.iter().all(|c| frames.contains_key(&(**s, c.clone())))) {
        bail!("{}: a frame at {stamp} has no labels for every camera ({})", bag.display(), cameras.join(", "));
    }
    Ok(ViewLabels { scenario, frames })
}

/// Every camera's views as `/<camera>/image_raw` and `/<camera>/camera_info` (the view's intrinsics), and the rig as
/// `/tf_static`; with `labels`, also `/scenario` and each view's `/sim/<camera>/{camera_info,depth,segmentation,detections}`.
fn write_rig_bag(
    dir: &Path,
    cams: &[s2r_multiview::rig::Camera],
    rig: &Rig,
    frames: &[(i64, Vec<Vec<u8>>)],
    size: usize,
    labels: Option<&ViewLabels>,
) -> Result<()> {
    use s2r_bag::{BagWriter, TopicSpec, WriterOptions};
    use sim2real_msgs::geometry_msgs::msg::{Quaternion, Transform, TransformStamped, Vector3};
    use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image};
    use sim2real_msgs::std_msgs::msg::Header;
    use sim2real_msgs::tf2_msgs::msg::TFMessage;
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("replacing {}", dir.display()))?;
    }
    let mut w = BagWriter::create(dir, WriterOptions::default())?;
    let tf_id = w.add_topic(TopicSpec::of::<TFMessage>("/tf_static", Vec::new()))?;
    let mut ids = Vec::new();
    for c in cams {
        let img = w.add_topic(TopicSpec::of::<Image>(&format!("/{}/image_raw", c.name), Vec::new()))?;
        let info = w.add_topic(TopicSpec::of::<CameraInfo>(&format!("/{}/camera_info", c.name), Vec::new()))?;
        ids.push((img, info));
    }
    // Per camera: /sim/<camera>/{camera_info, depth, segmentation, detections}.
    let mut label_ids = Vec::new();
    let t0 = frames.first().map_or(0, |f| f.0);
    if let Some(l) = labels {
        let id = w.add_topic(TopicSpec::of::<sim2real_msgs::sim2real_msgs::msg::ScenarioInfo>("/scenario", Vec::new()))?;
        w.write_message(id, t0.max(0) as u64, &l.scenario)?;
        for c in cams {
            let t = |what: &str| format!("/sim/{}/{what}", c.name);
            label_ids.push([
                w.add_topic(TopicSpec::of::<CameraInfo>(&t("camera_info"), Vec::new()))?,
                w.add_topic(TopicSpec::of::<Image>(&t("depth"), Vec::new()))?,
                w.add_topic(TopicSpec::of::<Image>(&t("segmentation"), Vec::new()))?,
                w.add_topic(TopicSpec::of::<sim2real_msgs::vision_msgs::msg::Detection2DArray>(&t("detections"), Vec::new()))?,
            ]);
        }
    }
    let transforms = rig
        .cameras
        .iter()
        .filter(|c| cams.iter().any(|v| v.name == c.name))
        .map(|c| TransformStamped {
            header: Header { stamp: s2r_runtime::Stamp(t0).to_msg(), frame_id: "base_link".into() },
            child_frame_id: format!("{}_optical_frame", c.name),
            transform: Transform {
                translation: Vector3 { x: c.translation[0], y: c.translation[1], z: c.translation[2] },
                rotation: Quaternion { x: c.rotation[0], y: c.rotation[1], z: c.rotation[2], w: c.rotation[3] },
            },
        })
        .collect();
    w.write_message(tf_id, t0.max(0) as u64, &TFMessage { transforms })?;
    for (stamp, views) in frames {
        for (k, c) in cams.iter().enumerate() {
            let header = Header { stamp: s2r_runtime::Stamp(*stamp).to_msg(), frame_id: format!("{}_optical_frame", c.name) };
            w.write_message(ids[k].1, (*stamp).max(0) as u64, &s2r_multiview::node::camera_info(header.clone(), c))?;
            w.write_message(ids[k].0, (*stamp).max(0) as u64, &s2r_image::rgb8_msg(header.clone(), size, size, views[k].clone()))?;
            let Some(l) = labels else { continue };
            let f = l.frames.get(&(*stamp, c.name.clone())).with_context(|| format!("no labels of {} at {stamp}", c.name))?;
            let at = (*stamp).max(0) as u64;
            let [info, depth, segmentation, detections] = label_ids[k];
            w.write_message(info, at, &s2r_multiview::node::camera_info(header, c))?;
            w.write_message(depth, at, &f.depth)?;
            w.write_message(segmentation, at, &f.segmentation)?;
            w.write_message(detections, at, &f.detections)?;
        }
    }
    w.finish()?;
    Ok(())
}
