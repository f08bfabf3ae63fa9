//! The world model's commands: `s2r train world` (pre-train, or post-train
//! a base with `--base`), `s2r eval world` (the table per horizon beside
//! copy-last and the tokenizer's ceiling) and `s2r predict` (a recording's
//! next frames as PNGs, a contact sheet, a video and a bag). s2r_world
//! trains and predicts; the tokenizer (s2r_tokenizer) turns frames into its
//! codes and back, joined here.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use candle_core::{Device, Tensor};
use clap::Args;
use s2r_image::Rgb;
use s2r_tokenizer::codec::{Codec, Tokens};
use s2r_tokenizer::data::square;
use s2r_tokenizer::fsq;
use s2r_tokenizer::metrics::to_rgb8;
use s2r_world::data::{Episode, Frames, ReadOptions};
use s2r_world::eval::{evaluate, EvalOptions, Report};
use s2r_world::fit::{fit, FitOptions, Progress};

use crate::job_report::{self, Event};
use s2r_world::model::Config;
use s2r_world::rollout::{rollout, script, Actions};
use s2r_world::FrameCodec;

/// sim2real's discrete tokenizer as the world model's codec.
pub(crate) struct TokenizerCodec {
    codec: Codec,
    size: usize,
}

impl TokenizerCodec {
    pub(crate) fn load(name: &str) -> Result<TokenizerCodec> {
        let codec = Codec::load(&s2r_tokenizer::resolve_checkpoint(name))?;
        if codec.cfg.continuous.is_some() {
            bail!("{name} is a continuous tokenizer ({}): the world model predicts discrete FSQ codes (dv8x16x16)", codec.cfg.name());
        }
        Ok(TokenizerCodec { codec, size: 256 })
    }
}

impl FrameCodec for TokenizerCodec {
    fn name(&self) -> String {
        self.codec.cfg.name()
    }
    fn size(&self) -> usize {
        self.size
    }
    fn grid(&self) -> usize {
        self.size / self.codec.cfg.spatial
    }
    fn levels(&self) -> Vec<u32> {
        fsq::LEVELS.to_vec()
    }
    fn view(&self, rgb: &[u8], width: usize, height: usize) -> Vec<u8> {
        to_rgb8(&square(rgb, width, height, self.size), self.size)
    }
    fn encode(&self, views: &[Vec<u8>]) -> Result<Vec<Vec<u16>>, String> {
        let s = self.size;
        let n = s * s;
        let mut planar = Vec::with_capacity(views.len() * 3 * n);
        for v in views {
            for c in 0..3 {
                planar.extend((0..n).map(|p| v[p * 3 + c] as f32 / 127.5 - 1.0));
            }
        }
        let run = || -> candle_core::Result<Vec<Vec<u16>>> {
            let video = Tensor::from_vec(planar, (views.len(), 1, 3, s, s), &Device::Cpu)?;
            let z = self.codec.model.encoder.forward(&video)?.squeeze(1)?;
            let codes = fsq::codes(&z, &fsq::LEVELS)?;
            let per = codes.len() / views.len().max(1);
            Ok(codes.chunks(per.max(1)).map(|c| c.iter().map(|&x| x as u16).collect()).collect())
        };
        run().map_err(|e| e.to_string())
    }
    fn decode(&self, codes: &[u16]) -> Result<Vec<u8>, String> {
        let g = self.grid();
        let frames = self.codec.decode(&Tokens::Discrete { shape: [1, 1, g, g], codes: codes.to_vec() }).map_err(|e| e.to_string())?;
        Ok(to_rgb8(&frames[0], self.size))
    }
    fn decode_values(&self, values: &[Vec<f32>]) -> Result<Vec<u8>, String> {
        let g = self.grid();
        let c = fsq::LEVELS.len();
        if values.len() != g * g || values.iter().any(|v| v.len() != c) {
            return Err(format!("{} latent positions of {c} values expected for a {g}×{g} frame", g * g));
        }
        let run = || -> candle_core::Result<Vec<u8>> {
            // [1 batch, 1 latent frame, channels, g, g]
            let planar: Vec<f32> = (0..c).flat_map(|k| values.iter().map(move |v| v[k])).collect();
            let latents = Tensor::from_vec(planar, (1, 1, c, g, g), &Device::Cpu)?;
            let video = self.codec.model.decoder.forward(&latents)?.squeeze(0)?;
            Ok(to_rgb8(&video.get(0)?.flatten_all()?.to_vec1::<f32>()?, self.size))
        };
        run().map_err(|e| e.to_string())
    }
}

/// world_model_node with sim2real's tokenizer (the node's logic is s2r_world::node).
pub const WORLD_MODEL_NODE: s2r_runtime::component::Component = s2r_runtime::component::Component {
    exec: "world_model_node",
    about: "predicts the camera's next frames and the ego's path from its frames, state and commands with the world model",
    main: world_model_node,
    graceful: false,
};

fn world_model_node(ctx: s2r_runtime::Context, args: s2r_runtime::RosArgs) -> s2r_runtime::component::NodeFuture {
    s2r_world::node::run(ctx, args, |name| {
        s2r_tokenizer::tune_allocator();
        TokenizerCodec::load(name).map(|c| Box::new(c) as Box<dyn FrameCodec + Send + Sync>).map_err(|e| e.to_string())
    })
}

/// Where `what`'s token data is cached between runs: $XDG_CACHE_HOME/sim2real/`what` (else ~/.cache/…);
/// the world model's token frames (`world`) and the multiview model's token instants (`multiview`).
pub(crate) fn cache_dir(what: &str) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("sim2real").join(what))
}

/// The camera and the tokenizer every world command reads recordings with.
#[derive(Args)]
pub struct SourceArgs {
    /// The camera.
    #[arg(long, default_value = "front")]
    camera: String,
    /// The discrete tokenizer: a shipped name or a file.
    #[arg(long, default_value = "dv8x16x16")]
    tokenizer: String,
    /// Do not cache token frames (in $XDG_CACHE_HOME/sim2real/world).
    #[arg(long)]
    no_cache: bool,
}

/// The recordings training and evaluation read.
#[derive(Args)]
pub struct DataArgs {
    /// Only episodes of these scenarios (default: all).
    #[arg(long, value_delimiter = ',')]
    scenario: Vec<String>,
    /// Camera frames: flat, restyled, or auto (restyled where there are some).
    #[arg(long, default_value = "auto")]
    frames: String,
    #[command(flatten)]
    source: SourceArgs,
}

/// How to read `frames` (flat, restyled, auto) of `src`'s camera, a token frame every `every`,
/// keeping the frames' views with `views`.
fn read_options(src: &SourceArgs, frames: &str, every: usize, views: bool) -> Result<ReadOptions> {
    let frames: Frames = frames.parse().map_err(|e: String| anyhow!("--frames {e}"))?;
    let cache = if src.no_cache { None } else { cache_dir("world") };
    Ok(ReadOptions { camera: src.camera.clone(), frames, every, keep_views: views, cache })
}

/// The episodes of `paths` as `opts` says (those of `scenarios`, all when
/// empty; only the held-out seeds with `held_out_only`), tokenized by `codec`.
fn read(paths: &[PathBuf], codec: &TokenizerCodec, opts: &ReadOptions, scenarios: &[String], held_out_only: bool) -> Result<Vec<Episode>> {
    let mut bags = Vec::new();
    for p in paths {
        bags.extend(s2r_world::data::bags(p)?);
    }
    let mut episodes = Vec::new();
    let total = bags.len();
    for (i, b) in bags.iter().enumerate() {
        // The scenario and seed first (cheap), then the frames of the episodes kept.
        let (scenario, seed) = s2r_world::data::identify(b)?;
        let keep = (scenarios.is_empty() || scenarios.contains(&scenario)) && (!held_out_only || s2r_train::held_out(seed));
        eprint!("\rreading {}/{total}: {scenario} seed {seed}          ", i + 1);
        if keep {
            episodes.push(s2r_world::data::read(b, codec, opts)?);
        }
    }
    eprintln!();
    if episodes.is_empty() {
        bail!(
            "no episodes{} in {}",
            if scenarios.is_empty() { String::new() } else { format!(" of {}", scenarios.join(", ")) },
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(episodes)
}

/// The tokenizer `src` names.
fn tokenizer(src: &SourceArgs) -> Result<TokenizerCodec> {
    s2r_tokenizer::tune_allocator();
    TokenizerCodec::load(&src.tokenizer)
}

/// Refuses a model (at `path`) of other tokens than `codec` makes.
fn same_codec(path: &Path, model: &Config, codec: &TokenizerCodec) -> Result<()> {
    if model.codec != codec.name() {
        bail!("{}: a model of {} tokens; --tokenizer {} makes other codes", path.display(), model.codec, codec.name());
    }
    Ok(())
}

#[derive(Args)]
pub struct TrainWorldArgs {
    /// Recordings: s2r demos folders, s2r generate datasets, or bags (held-out seeds, seed % 10 == 9, are never trained on).
    #[arg(required = true)]
    data: Vec<PathBuf>,
    /// The checkpoint to write; when it exists, training resumes from it (see --fresh).
    #[arg(short, long)]
    output: PathBuf,
    /// Post-train this checkpoint (pre-trained with s2r train world) on the data: its network, its weights.
    #[arg(long)]
    base: Option<PathBuf>,
    /// With --base: train low-rank adapters of this rank on every block's linear maps, the base frozen
    /// (a dynamics head, the base's or a new one, trains with them).
    #[arg(long, default_value_t = 0)]
    adapter: usize,
    /// The dynamics head's hidden width (the state's change from the commands, the state and the
    /// conditions as they are): a fresh network's, default 64 (0: none); with --base, a base without
    /// one gets a new one of this width (a base's own head stays: another width is refused).
    #[arg(long)]
    dynamics: Option<usize>,
    #[command(flatten)]
    d: DataArgs,
    /// Camera frames per token frame (a fresh network's).
    #[arg(long, default_value_t = 2)]
    every: usize,
    /// Token frames a fresh network sees at once.
    #[arg(long, default_value_t = 4)]
    context: usize,
    /// A fresh network's width.
    #[arg(long, default_value_t = 96)]
    dim: usize,
    /// A fresh network's token merging: each PATCH×PATCH block of codes is one transformer token.
    #[arg(long, default_value_t = 2)]
    patch: usize,
    /// A fresh network's blocks.
    #[arg(long, default_value_t = 4)]
    layers: usize,
    #[arg(long, default_value_t = 3000)]
    steps: usize,
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Peak learning rate (warm-up, then cosine decay); default 2e-3, or 5e-4 when post-training.
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long, default_value_t = 250)]
    eval_every: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Start from scratch even if the output exists.
    #[arg(long)]
    fresh: bool,
    /// cpu, or cuda / cuda:N (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn train(a: TrainWorldArgs) -> Result<()> {
    if a.adapter > 0 && a.base.is_none() {
        bail!("--adapter {} needs --base: adapters post-train a pre-trained network", a.adapter);
    }
    // A post-training run reads its base's frame rate, not --every.
    let every = match &a.base {
        Some(b) => s2r_world::checkpoint::read(b)?.0.config.every,
        None => a.every,
    };
    let codec = tokenizer(&a.d.source)?;
    let episodes = read(&a.data, &codec, &read_options(&a.d.source, &a.d.frames, every, false)?, &a.d.scenario, false)?;
    let mut config = Config::new(&codec.name(), codec.grid(), codec.levels());
    config.every = every;
    config.context = a.context;
    config.dim = a.dim;
    config.layers = a.layers;
    config.mlp = 4 * a.dim;
    config.patch = a.patch;
    let opts = FitOptions {
        data: a.data.iter().map(|p| p.display().to_string()).collect(),
        output: a.output.clone(),
        base: a.base.clone(),
        config,
        steps: a.steps,
        batch: a.batch,
        lr: a.lr.unwrap_or(if a.base.is_some() { 5e-4 } else { 2e-3 }),
        seed: a.seed,
        eval_every: a.eval_every,
        fresh: a.fresh,
        adapter: a.adapter,
        dynamics: a.dynamics,
        device: s2r_train::device(&a.device)?,
    };
    let frames: usize = episodes.iter().map(|e| e.codes.len()).sum();
    println!("{} episodes, {frames} token frames ({} scenario(s))", episodes.len(), {
        let mut s: Vec<&str> = episodes.iter().map(|e| e.scenario.as_str()).collect();
        s.sort();
        s.dedup();
        s.len()
    });
    let mut line = job_report::StepLine::new(a.steps);
    job_report::emit(Event::Start { steps: a.steps as u64, metric: "token_accuracy".into(), higher_is_better: true });
    let record = fit(&episodes, &opts, &mut |p| match p {
        Progress::Data { train, held_out, copy_last, start, trained } => {
            println!(
                "training {trained} scalars{}",
                if a.adapter > 0 { format!(" (adapters of rank {})", a.adapter) } else { String::new() }
            );
            let from = if a.base.is_some() || a.output.is_file() && !a.fresh {
                format!(", the network's before this run {:.1}%", start * 100.0)
            } else {
                String::new()
            };
            println!("{train} training windows, {held_out} held-out; copy-last next-frame token accuracy {:.1}%{from}", copy_last * 100.0)
        }
        Progress::Base(b) => println!("post-training {}", b.display()),
        Progress::Resumed(s) => println!("resuming {} at step {s}", a.output.display()),
        Progress::Step { step, loss } => line.step(step, loss),
        Progress::HeldOut { step, accuracy, loss } => line.held_out(step, "next-frame token accuracy", accuracy, loss),
    })?;
    println!("wrote {} (step {}/{})", a.output.display(), record.step, record.steps);
    Ok(())
}

#[derive(Args)]
pub struct EvalWorldArgs {
    /// World-model checkpoints to score side by side (e.g. the base and its post-trained child).
    #[arg(required = true)]
    models: Vec<PathBuf>,
    /// Recordings whose held-out seeds (seed % 10 == 9) are scored.
    #[arg(long, required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    #[command(flatten)]
    d: DataArgs,
    /// Token frames between two clips' starts.
    #[arg(long, default_value_t = 8)]
    clip_stride: usize,
    /// Skip SSIM (faster).
    #[arg(long)]
    no_ssim: bool,
    /// Also write the report as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// cpu, or cuda / cuda:N (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
}

fn model_name(p: &Path) -> String {
    p.file_stem().and_then(|s| s.to_str()).unwrap_or("model").to_string()
}

pub fn eval(a: EvalWorldArgs) -> Result<()> {
    let device = s2r_train::device(&a.device)?;
    let loaded: Vec<s2r_world::checkpoint::Loaded> =
        a.models.iter().map(|m| s2r_world::checkpoint::load(m, &device)).collect::<Result<_, _>>()?;
    let every = loaded[0].record.config.every;
    for l in &loaded[1..] {
        if l.record.config.every != every || l.record.config.codec != loaded[0].record.config.codec {
            bail!("{} and {} model different token frames (codec, frames per step)", loaded[0].path.display(), l.path.display());
        }
    }
    let codec = tokenizer(&a.d.source)?;
    for l in &loaded {
        same_codec(&l.path, &l.record.config, &codec)?;
    }
    let episodes = read(&a.data, &codec, &read_options(&a.d.source, &a.d.frames, every, true)?, &a.d.scenario, true)?;
    let models: Vec<(String, &s2r_world::model::WorldModel)> =
        a.models.iter().zip(&loaded).map(|(p, l)| (model_name(p), &l.model)).collect();
    let opts = EvalOptions { ssim: !a.no_ssim, clip_stride: a.clip_stride, ..EvalOptions::default() };
    let report = evaluate(&models, &episodes, &codec, &opts, &mut |k, n| eprint!("\rclip {k}/{n}   "))?;
    eprintln!();
    print_report(&report, &episodes);
    if let Some(j) = &a.json {
        std::fs::write(j, serde_json::to_string_pretty(&report)?).with_context(|| format!("writing {}", j.display()))?;
    }
    Ok(())
}

fn print_report(r: &Report, episodes: &[Episode]) {
    let mut seeds: Vec<String> = episodes.iter().map(|e| format!("{} {}", e.scenario, e.seed)).collect();
    seeds.dedup();
    println!("{} clips from {} held-out episodes; a latent step is {:.1} s", r.clips, episodes.len(), r.step_seconds);
    let hs: Vec<String> = r.horizons.iter().map(|h| format!("h={h}")).collect();
    println!("\n| token accuracy | {} |", hs.join(" | "));
    println!("|---|{}", "---|".repeat(hs.len()));
    for row in &r.rows {
        println!("| {} | {} |", row.name, row.accuracy.iter().map(|x| format!("{:.1}%", x * 100.0)).collect::<Vec<_>>().join(" | "));
    }
    println!("\n| PSNR dB (SSIM) | {} |", hs.join(" | "));
    println!("|---|{}", "---|".repeat(hs.len()));
    for row in &r.rows {
        println!(
            "| {} | {} |",
            row.name,
            row.psnr.iter().zip(&row.ssim).map(|(p, s)| format!("{p:.2} ({s:.3})")).collect::<Vec<_>>().join(" | ")
        );
    }
    if r.rows.iter().any(|row| row.cup_falls.is_some()) {
        println!("\n| cups (instance ids of the simulator) | fell: shown gone | stayed: shown gone (false alarms) |");
        println!("|---|---|---|");
        for row in &r.rows {
            if let Some(c) = &row.cup_falls {
                let share = |k: usize, n: usize| {
                    if n == 0 {
                        "–".to_string()
                    } else {
                        format!("{k} of {n} ({:.0}%)", 100.0 * k as f64 / n as f64)
                    }
                };
                println!("| {} | {} | {} |", row.name, share(c.predicted, c.falls), share(c.false_alarms, c.stays));
            }
        }
        if let Some(c) = r.rows.iter().find_map(|row| row.cup_falls.as_ref()).filter(|c| c.lost > 0) {
            let (cups, them) = if c.lost == 1 { ("cup", "it") } else { ("cups", "them") };
            println!("({} {cups} in sight not judged: the tokenizer's context frame does not show {them})", c.lost);
        }
    }
    println!();
    for m in &r.models {
        let stop = match (m.stopping_error(), m.stopping_median(), m.stopping_within(0.15)) {
            (Some(mean), Some(median), Some(within)) => format!(
                "stopping distance implied by the predicted speeds within 15% of the simulator's in {:.0}% of {} slowing clips (error median {:.1}%, mean {:.1}%; true mean {:.1} m)",
                within * 100.0,
                m.stopping.len(),
                median * 100.0,
                mean * 100.0,
                m.stopping.iter().map(|s| s.0).sum::<f64>() / m.stopping.len() as f64
            ),
            _ => "no slowing vehicle clips".into(),
        };
        println!("{}: ΔtPSNR {:+.2} dB (true actions minus another clip's, h=8); {stop}", m.name, m.delta_t_psnr);
    }
}

#[derive(Args)]
pub struct PredictArgs {
    /// A bag (a demos episode, a dataset episode or a recording) with the camera, the robot's commands and state.
    bag: PathBuf,
    /// The world-model checkpoint.
    #[arg(long, short)]
    model: PathBuf,
    /// Token frames of the recording to start from.
    #[arg(long, default_value_t = 4)]
    context: usize,
    /// Token frames to predict.
    #[arg(long, default_value_t = 50)]
    frames: usize,
    /// recorded, brake, steer-left, steer-right or hold.
    #[arg(long, default_value = "recorded")]
    actions: String,
    /// Where in the recording the context starts, seconds from its first frame.
    #[arg(long, default_value_t = 0.0)]
    start: f64,
    /// Camera frames: flat, restyled, or auto (restyled where there are some).
    #[arg(long, default_value = "auto")]
    rendering: String,
    #[command(flatten)]
    source: SourceArgs,
    #[arg(short, long, default_value = "predicted")]
    output: PathBuf,
    /// cpu, or cuda / cuda:N (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn predict(a: PredictArgs) -> Result<()> {
    let how: Actions = a.actions.parse().map_err(|e: String| anyhow!("--actions {e}"))?;
    let loaded = s2r_world::checkpoint::load(&a.model, &s2r_train::device(&a.device)?)?;
    let cfg = loaded.record.config.clone();
    let codec = tokenizer(&a.source)?;
    same_codec(&a.model, &cfg, &codec)?;
    let mut episodes = read(std::slice::from_ref(&a.bag), &codec, &read_options(&a.source, &a.rendering, cfg.every, true)?, &[], false)?;
    let e = episodes.remove(0);
    let first = e.stamps[0];
    let s = e.stamps.iter().position(|&t| (t - first) as f64 / 1e9 >= a.start).unwrap_or(e.stamps.len());
    let c = a.context.max(1);
    if s + c > e.codes.len() {
        bail!("{}: {} token frames; a context of {c} from {:.1} s does not fit", a.bag.display(), e.codes.len(), a.start);
    }
    // Actions beyond the recording: its last, carried on (scripted ones replace them anyway).
    let mut actions = e.actions[s..].to_vec();
    while actions.len() < c + a.frames {
        actions.push(*actions.last().expect("a frame"));
    }
    let actions = script(how, e.conditions.robot, &actions, c - 1);
    let t0 = std::time::Instant::now();
    let pred = rollout(&loaded.model, &e.codes[s..s + c], &e.states[s..s + c], &actions, e.conditions, a.frames)?;
    let per = t0.elapsed().as_secs_f64() * 1e3 / a.frames.max(1) as f64;
    std::fs::create_dir_all(&a.output).with_context(|| format!("creating {}", a.output.display()))?;
    let size = codec.size();
    let rgb = |v: Vec<u8>| Rgb { width: size, height: size, data: v };
    let blank = || rgb(vec![0u8; size * size * 3]);
    let mut sheet_true = Vec::new();
    let mut sheet_pred = Vec::new();
    let mut predicted_frames = Vec::new();
    for i in 0..c + a.frames {
        let truth = e.views.get(s + i).cloned().map(rgb).unwrap_or_else(blank);
        let (shown, tag) = if i < c {
            (rgb(codec.decode(&e.codes[s + i]).map_err(|p| anyhow!("decoding: {p}"))?), "context")
        } else {
            (rgb(codec.decode(&pred.codes[i - c]).map_err(|p| anyhow!("decoding: {p}"))?), "pred")
        };
        let pair = s2r_image::grid(&[vec![truth.clone(), shown.clone()]], 4);
        s2r_image::write_png(&a.output.join(format!("{tag}_{i:03}.png")), &pair)?;
        // The sheet: every frame up to 10, then every 5th.
        if i < 10 || i % 5 == 0 {
            sheet_true.push(truth.resize(size / 2, size / 2));
            sheet_pred.push(shown.resize(size / 2, size / 2));
        }
        if i >= c {
            predicted_frames.push(shown);
        }
    }
    let per_row = 10;
    let mut rows = Vec::new();
    for (t, p) in sheet_true.chunks(per_row).zip(sheet_pred.chunks(per_row)) {
        rows.push(t.to_vec());
        rows.push(p.to_vec());
    }
    let sheet = s2r_image::grid(&rows, 4);
    s2r_image::write_png(&a.output.join("sheet.png"), &sheet)?;
    write_bag(&a.output.join("bag"), &a.source.camera, &e, s + c, &predicted_frames, cfg.step_ns())?;
    let video = a.output.join("predicted.mp4");
    let made = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-framerate"])
        .arg(format!("{}", (1.0 / cfg.step_seconds()).round()))
        .args(["-start_number", &format!("{c}"), "-i"])
        .arg(a.output.join("pred_%03d.png"))
        .args(["-pix_fmt", "yuv420p", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"])
        .arg(&video)
        .status();
    println!(
        "{} ({}, seed {}; {}): {c} context + {} predicted token frames ({:.1} s each, {:.0} ms per frame), actions {}",
        a.bag.display(),
        e.scenario,
        e.seed,
        e.conditions.describe(),
        a.frames,
        cfg.step_seconds(),
        per,
        a.actions
    );
    if e.conditions.robot == s2r_world::model::Robot::Vehicle {
        let v: Vec<String> = pred.speeds().iter().step_by(5).map(|v| format!("{v:.1}")).collect();
        println!("predicted speed every 5 steps, m/s: {}", v.join(" "));
    }
    println!("{}: pairs (true | predicted) as PNGs, sheet.png (rows: true, then context + predicted), bag/", a.output.display());
    match made {
        Ok(s) if s.success() => println!("video: {}", video.display()),
        _ => println!("no video (ffmpeg not found or failed)"),
    }
    Ok(())
}

/// The predicted frames as `<camera>/predicted/image_raw` (rgb8), stamped from the first predicted instant on.
fn write_bag(dir: &Path, camera: &str, e: &Episode, from: usize, frames: &[Rgb], step_ns: i64) -> Result<()> {
    use s2r_bag::{BagWriter, TopicSpec, WriterOptions};
    use sim2real_msgs::sensor_msgs::msg::Image;
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("replacing {}", dir.display()))?;
    }
    let mut w = BagWriter::create(dir, WriterOptions::default())?;
    let topic = format!("/{camera}/predicted/image_raw");
    let id = w.add_topic(TopicSpec::of::<Image>(&topic, Vec::new()))?;
    let t0 = e.stamps.get(from).copied().unwrap_or_else(|| e.stamps.last().copied().unwrap_or(0));
    for (i, f) in frames.iter().enumerate() {
        let t = t0 + i as i64 * step_ns;
        let header = sim2real_msgs::std_msgs::msg::Header { stamp: s2r_runtime::Stamp(t).to_msg(), frame_id: format!("{camera}_optical") };
        let msg = s2r_image::rgb8_msg(header, f.width, f.height, f.data.clone());
        w.write_message(id, t.max(0) as u64, &msg)?;
    }
    w.finish()?;
    Ok(())
}
