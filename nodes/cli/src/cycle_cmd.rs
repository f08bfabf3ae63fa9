//! `s2r cycle`: one turn of the virtuous cycle, from a robot's recordings to
//! a better deployed perception model.
//!
//! 1. **Label** the robot's frames with the deployed model (`s2r label`:
//!    only what it is sure of), clips split at gaps; every n-th recording is
//!    held out of training (whole recordings: neighbouring frames of one
//!    drive are near copies).
//! 2. **Augment**: each training frame restyled into new weather and times of
//!    day by the transfer stage's built-in backend, with the model's own depth
//!    and segmentation of the frame as the controls (the way Cosmos-Transfer
//!    computes its controls from video alone); a restyle that loses the
//!    frame's boundaries (the label-preservation score below `--min-recall`)
//!    is curated out.
//! 3. **Fine-tune** a copy of the deployed checkpoint on both (resuming its
//!    step and optimiser at its own peak learning rate, whose cosine schedule,
//!    stretched over the extra steps, keeps it low: 5–9 % of the peak), with
//!    `--replay` data of its own domain.
//! 4. **Evaluate** before and after: on the held-out clips against their
//!    ground truth where the recordings have it (`--truth`), and on
//!    `--original` held-out data of the model's own domain.
//! 5. **Gate**: the new model is kept only if it is better on the robot's
//!    held-out recordings (which needs their ground truth, `--truth`) and no
//!    worse (beyond `--tolerance`) on the original data; then, with
//!    `--announce`, it is announced on `trainer/models`, which deployed
//!    perception nodes take (hot swap).
//! 6. **Report**: `cycle.yaml` and `report.html` (figures, frames and their restyles).
//!
//! With `--policy`, where the recordings carry the commands the robot was
//! driven with, a copy of the deployed policy is fine-tuned on the training
//! recordings (frames, state, commands) and kept, and announced, only if its
//! error on the held-out recordings' commands is lower.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use s2r_bag::{BagReader, BagWriter, TopicId, TopicSpec, WriterOptions};
use s2r_image::Rgb;
use s2r_perception::data::{self, Frames, LoadOptions, Split};
use s2r_perception::eval::{self, Report};
use s2r_perception::label::{label, BagReport, LabelOptions, LabelReport};
use s2r_perception::predict::{FrameRef, Predictor};
use s2r_perception::{checkpoint, fit};
use s2r_runtime::{stamp_ns, Serialized};
use s2r_transfer::builtin::{Builtin, Preset};
use s2r_transfer::{Backend, Frame, Intrinsics, Weights};
use serde::Serialize;
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image};
use sim2real_msgs::sim2real_msgs::msg::ModelUpdate;
use sim2real_msgs::vision_msgs::msg::{Detection2DArray, LabelInfo};

/// Options of `s2r cycle`.
#[derive(Args)]
pub struct CycleArgs {
    /// The robot's recordings of its camera (no ground truth needed).
    #[arg(required = true)]
    bags: Vec<PathBuf>,
    /// The cycle's folder (labels/, augmented/, perception.safetensors, cycle.yaml, report.html); must not exist.
    #[arg(short, long)]
    output: PathBuf,
    /// The deployed model, the teacher of the labels (and the restyles' controls); the "before" is scored as
    /// deployed, not mirrored.
    #[command(flatten)]
    teacher: crate::label_cmd::TeacherArgs,
    /// Looks the training frames are restyled into (each a prompt; repeat the option).
    #[arg(long = "prompt", default_values_t = ["heavy rain, dusk, street lights".to_string(), "snowy road, overcast, light snowfall".to_string()])]
    prompts: Vec<String>,
    /// Every n-th recording is held out of training, for the before/after figures.
    #[arg(long, default_value_t = 3)]
    held_out_every: usize,
    /// The recordings carry the ground truth of the frames read (a simulator's /sim/<camera>/ labels):
    /// the held-out clips are scored against it.
    #[arg(long)]
    truth: bool,
    /// Held-out data of the model's own domain, scored before and after: it must not get worse.
    #[arg(long)]
    original: Vec<PathBuf>,
    /// Training data of the model's own domain, mixed into the fine-tuning.
    #[arg(long)]
    replay: Vec<PathBuf>,
    /// Fine-tuning steps.
    #[arg(long, default_value_t = 300)]
    steps: usize,
    /// Images per step.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// The figure the gate compares: miou, ap50 or abs_rel.
    #[arg(long, default_value = "miou")]
    metric: String,
    /// How much worse the original held-out figure may get.
    #[arg(long, default_value_t = 0.02)]
    tolerance: f64,
    /// How much better the robot's held-out figure must get (the metric's units: 0.01 is a point
    /// of mIoU or AP@0.5, or AbsRel 0.01 lower): a smaller change is what a few hundred held-out
    /// frames cannot tell from noise, and does not replace the deployed model.
    #[arg(long, default_value_t = 0.01)]
    min_gain: f64,
    /// How far the restyle replaces the camera's own materials by the class materials of the
    /// segmentation (0: the frame's own surfaces kept, only weather, light and sensor added;
    /// 1: as a flat simulator render is restyled).
    #[arg(long, default_value_t = 0.0)]
    seg_weight: f32,
    /// Restyles keeping less than this share of the frame's boundaries are left out.
    #[arg(long, default_value_t = 0.3)]
    min_recall: f32,
    /// Announce a model that passes the gate on trainer/models (deployed nodes load it).
    #[arg(long)]
    announce: bool,
    /// The deployed policy: where the recordings carry the commands the robot was driven with
    /// (/cmd_vel with /odom, or /joint_commands with /joint_states; a generated dataset's
    /// /expert/…), a copy is fine-tuned on the training recordings and kept only if its error on
    /// the held-out recordings' commands is lower.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The policy's fine-tuning steps.
    #[arg(long, default_value_t = 300)]
    policy_steps: usize,
}

/// Before and after on one held-out set.
#[derive(Clone, Debug, Serialize)]
struct Scores {
    what: String,
    frames: usize,
    before: Figures,
    after: Figures,
}

/// The figures of one evaluation.
#[derive(Clone, Copy, Debug, Serialize)]
struct Figures {
    ap50: f64,
    abs_rel: Option<f64>,
    miou: Option<f64>,
}

impl Figures {
    fn of(r: &Report) -> Figures {
        Figures { ap50: r.detection.ap50, abs_rel: r.depth_abs_rel, miou: r.miou }
    }

    /// The gate's metric, oriented so that higher is better.
    fn metric(&self, name: &str) -> Option<f64> {
        match name {
            "miou" => self.miou,
            "ap50" => (self.ap50 >= 0.0).then_some(self.ap50),
            "abs_rel" => self.abs_rel.map(|a| -a),
            _ => None,
        }
    }
}

/// What restyling did per prompt.
#[derive(Clone, Debug, Default, Serialize)]
struct Augmented {
    prompt: String,
    frames: usize,
    curated_out: usize,
    mean_recall: f64,
}

/// The policy's turn: fine-tuned on the robot's own commands, where its
/// recordings carry them.
#[derive(Debug, Default, Serialize)]
struct PolicyTurn {
    /// The deployed policy.
    model: String,
    /// The fine-tuned copy, when there was one.
    fine_tuned: Option<String>,
    /// Recordings with the robot's commands: trained on, and held out.
    trained_on: Vec<String>,
    held_out: Vec<String>,
    /// Recordings without them.
    without_commands: Vec<String>,
    /// Steps before and after.
    steps: (usize, usize),
    /// Held-out frames scored.
    frames: usize,
    /// Held-out error of the first command, before and after: a car's speed (m/s) and yaw rate
    /// (rad/s); an arm's joints (rad, mean) and gripper (m).
    before: Option<(f32, f32)>,
    after: Option<(f32, f32)>,
    /// The same error of holding the state (the speed and yaw rate it has; the joints where
    /// they are, the gripper as open as it is): the baseline.
    hold: Option<(f32, f32)>,
    announced: bool,
    verdict: String,
}

/// The cycle's record (cycle.yaml).
#[derive(Debug, Serialize)]
struct Record {
    model: String,
    labels: LabelReport,
    held_out_clips: Vec<String>,
    augmented: Vec<Augmented>,
    fine_tuned: String,
    steps: (usize, usize),
    scores: Vec<Scores>,
    metric: String,
    announced: bool,
    verdict: String,
    /// With `--policy`.
    policy: Option<PolicyTurn>,
}

/// The message type of a labelled clip's topic, by its type name.
fn spec(topic: &str, type_name: &str) -> Result<TopicSpec> {
    Ok(match type_name {
        "sensor_msgs/msg/Image" => TopicSpec::of::<Image>(topic, vec![]),
        "sensor_msgs/msg/CameraInfo" => TopicSpec::of::<CameraInfo>(topic, vec![]),
        "vision_msgs/msg/Detection2DArray" => TopicSpec::of::<Detection2DArray>(topic, vec![]),
        "vision_msgs/msg/LabelInfo" => TopicSpec::of::<LabelInfo>(topic, vec![]),
        other => bail!("{topic}: {other} is not a topic `s2r label` writes"),
    })
}

/// Restyles the training clips `clips` of `labels` (a `s2r label` dataset;
/// each clip with its camera) into one clip per prompt under `out/clips/`,
/// labels unchanged.
fn augment(
    (labels, clips): (&Path, &[(String, String)]),
    (prompts, weights): (&[String], Weights),
    predictor: &Predictor,
    min_recall: f32,
    out: &Path,
    sheet: &mut Vec<Vec<Rgb>>,
) -> Result<Vec<Augmented>> {
    let cfg = &predictor.net.cfg;
    let looks: Vec<_> = prompts.iter().map(|p| s2r_look::parse(p).look).collect();
    let mut stats: Vec<Augmented> = prompts.iter().map(|p| Augmented { prompt: p.clone(), ..Default::default() }).collect();
    let mut recall_sum = vec![0f64; prompts.len()];
    let mut backend = Builtin::new(Preset::Full);
    for (ci, (clip, camera)) in clips.iter().enumerate() {
        let image_topic = format!("/{camera}/image_raw");
        let src = labels.join("clips").join(clip);
        let r = BagReader::open(&src).with_context(|| format!("reading {}", src.display()))?;
        let mut writers: Vec<(BagWriter, Vec<TopicId>)> = Vec::new();
        for k in 0..prompts.len() {
            let dir = out.join("clips").join(format!("{clip}_look{k}"));
            let mut w = BagWriter::create(&dir, WriterOptions::default())?;
            let ids = r.connections.iter().map(|c| Ok(w.add_topic(spec(&c.topic, &c.type_name)?)?)).collect::<Result<Vec<_>>>()?;
            writers.push((w, ids));
        }
        let mut fx: Option<f32> = None;
        let mut first = true;
        for m in r.messages() {
            let c = &r.connections[m.connection];
            if c.topic.ends_with("/camera_info") {
                if let Ok(i) = Serialized(m.data.clone()).decode::<CameraInfo>() {
                    fx = Some(i.k[0] as f32);
                }
            }
            if c.topic != image_topic {
                for (w, ids) in &mut writers {
                    w.write_bytes(ids[m.connection], m.log_time, m.publish_time, m.data.clone())?;
                }
                continue;
            }
            let img: Image = Serialized(m.data.clone()).decode().with_context(|| format!("{}: {}", src.display(), c.topic))?;
            let rgb = s2r_image::rgb8(&img, &c.topic)?;
            let (w, h) = (img.width as usize, img.height as usize);
            // The controls: the model's own depth and segmentation of the frame, unmasked
            // (the clip's camera_info, written before each frame, gives its focal length).
            let f = fx.unwrap_or_else(|| cfg.frame_focal(w, h));
            let p = predictor.predict(&[FrameRef { rgb: &rgb, w, h, fx: Some(f) }], true)?.remove(0);
            let mut frame = Frame::new(w, h, &rgb, Intrinsics { fx: f, fy: f, cx: w as f32 / 2.0, cy: h as f32 / 2.0 });
            frame.depth = Some(&p.depth);
            frame.segmentation = Some(&p.seg);
            frame.class_names = &cfg.seg_classes;
            frame.stamp_ns = stamp_ns(&img.header.stamp);
            let mut row = vec![Rgb { width: w, height: h, data: rgb.clone() }];
            for (kk, look) in looks.iter().enumerate() {
                let out = backend.restyle(&frame, look, &weights, ci as u64 * 1000 + kk as u64)?;
                let score = s2r_transfer::score::score(&rgb, &out.rgb, Some(&p.seg), Some(&p.depth), out.extinction, w, h);
                recall_sum[kk] += f64::from(score.boundary_recall);
                if score.boundary_recall < min_recall {
                    stats[kk].curated_out += 1;
                    continue;
                }
                if first && sheet.len() < 3 {
                    row.push(Rgb { width: w, height: h, data: out.rgb.clone() });
                }
                let restyled = s2r_image::rgb8_msg(img.header.clone(), w, h, out.rgb);
                let (wr, ids) = &mut writers[kk];
                wr.write_message(ids[m.connection], m.log_time, &restyled)?;
                stats[kk].frames += 1;
            }
            if first && sheet.len() < 3 && row.len() == prompts.len() + 1 {
                sheet.push(row);
            }
            first = false;
        }
        for (w, _) in writers {
            w.finish()?;
        }
    }
    for (s, sum) in stats.iter_mut().zip(recall_sum) {
        let n = s.frames + s.curated_out;
        s.mean_recall = if n == 0 { 0.0 } else { sum / n as f64 };
    }
    Ok(stats)
}

/// Every frame of the held-out recordings, with the ground truth they carry
/// for the camera that was labelled (whole recordings: frames the model was
/// unsure of count too).
fn held_out_truth(held: &[&BagReport], predictor: &Predictor) -> Result<data::Dataset> {
    let cfg = &predictor.net.cfg;
    let mut all = data::Dataset { samples: Vec::new(), seg_classes: cfg.seg_classes.clone(), det_classes: cfg.det_classes.clone() };
    for b in held {
        // The simulator's flat camera, or the restyled one a robot's stands for.
        let frames = if b.topic.starts_with("/sim/") { Frames::Flat } else { Frames::Restyled };
        let opts = LoadOptions { cameras: vec![b.camera.clone()], ..LoadOptions::for_model(cfg, frames) };
        let ds = data::load(std::slice::from_ref(&b.path), &opts)?;
        if ds.samples.is_empty() {
            bail!("--truth: {} has no ground truth for camera '{}' (no /sim/{}/ labels)", b.path.display(), b.camera, b.camera);
        }
        all.samples.extend(ds.samples);
    }
    Ok(all)
}

fn evaluate(predictor: &Predictor, ds: &data::Dataset) -> Result<Figures> {
    Ok(Figures::of(&eval::evaluate(predictor, ds, 4, true, |_, _| {})?))
}

pub fn run(a: CycleArgs) -> Result<()> {
    s2r_runtime::tune_allocator();
    if a.output.exists() {
        bail!("{}: already exists: a cycle writes a new folder", a.output.display());
    }
    if !["miou", "ap50", "abs_rel"].contains(&a.metric.as_str()) {
        bail!("--metric {}: miou, ap50 or abs_rel", a.metric);
    }
    if a.prompts.is_empty() || a.held_out_every < 2 {
        bail!("at least one --prompt, and --held-out-every of at least 2");
    }
    // A policy to fine-tune is read first: a bad one stops the cycle before its work.
    if let Some(p) = &a.policy {
        s2r_policy::checkpoint::read(p)?;
    }
    // The deployed model: it labels (its boxes above the uncertain score are
    // kept), gives the restyles their controls (both mirrored with --mirror),
    // and is the "before" (as deployed, not mirrored).
    let (base, ck, mut before) = a.teacher.load(0.01)?;
    let device = before.device.clone();

    // 1. Label.
    let labels_dir = a.output.join("labels");
    let t = &a.teacher;
    let opts = LabelOptions { topic: t.topic.clone(), min_confidence: t.min_confidence, min_pixel: t.min_pixel, ..Default::default() };
    eprintln!("1/5 labelling {} recording(s) with {}", a.bags.len(), base.display());
    let labels = label(&a.bags, &before, &base.display().to_string(), &opts, &labels_dir, &mut |m| eprintln!("  {m}"))?;
    // Whole recordings are held out, also one whose frames were all too unsure to label.
    let held_bags: Vec<&BagReport> =
        labels.bags.iter().enumerate().filter(|(i, _)| i % a.held_out_every == a.held_out_every - 1).map(|(_, b)| b).collect();
    let held: Vec<String> = held_bags.iter().flat_map(|b| b.clips.iter().map(|c| c.name.clone())).collect();
    // Each training clip with its recording's camera.
    let train: Vec<(String, String)> = labels
        .bags
        .iter()
        .flat_map(|b| b.clips.iter().filter(|c| !held.contains(&c.name)).map(|c| (c.name.clone(), b.camera.clone())))
        .collect();
    let train_names: Vec<&String> = train.iter().map(|(c, _)| c).collect();
    if train.is_empty() || held_bags.is_empty() {
        bail!(
            "{} recording(s) gave {} clip(s): too few to hold every {}th recording out and train on the rest (more \
             recordings, or a lower --held-out-every)",
            labels.bags.len(),
            held.len() + train.len(),
            a.held_out_every
        );
    }
    let splits = serde_yaml_ng::to_string(&serde_json::json!({
        "train": {"clips": train_names}, "val": {"clips": held}, "test": {"clips": held}
    }))?;
    std::fs::write(labels_dir.join("splits.yaml"), splits)?;

    // 2. Augment.
    eprintln!("2/5 restyling {} training clip(s) into {} look(s)", train.len(), a.prompts.len());
    let aug_dir = a.output.join("augmented");
    let mut sheet = Vec::new();
    // A camera's frame is not a flat render: its own surfaces are kept (edges and hues in full).
    let weights = Weights { seg: a.seg_weight.clamp(0.0, 1.0), depth: 1.0, edge: 1.0, vis: 1.0 };
    let augmented = augment((&labels_dir, &train), (&a.prompts, weights), &before, a.min_recall, &aug_dir, &mut sheet)?;
    for s in &augmented {
        eprintln!("  '{}': {} frames, {} curated out, boundary recall {:.2}", s.prompt, s.frames, s.curated_out, s.mean_recall);
    }

    // 3. Fine-tune a copy of the deployed model.
    let tuned = a.output.join("perception.safetensors");
    std::fs::copy(&base, &tuned).with_context(|| format!("copying {}", base.display()))?;
    let mut f = fit::FitOptions::new([vec![labels_dir.clone(), aug_dir.clone()], a.replay.clone()].concat(), tuned.clone());
    f.frames = Frames::Both;
    f.steps = ck.meta.step + a.steps;
    f.lr = ck.meta.training.lr;
    f.batch = a.batch;
    f.eval_every = a.steps;
    f.eval_frames = 50;
    f.device = device.clone();
    eprintln!("3/5 fine-tuning steps {}..{} on the labels, their restyles and {} replay set(s)", ck.meta.step, f.steps, a.replay.len());
    fit::fit(&f, |m| eprintln!("  {m}"))?;
    let after_ck = checkpoint::read(&tuned)?;
    let after = Predictor { net: after_ck.net(&device)?, device: device.clone(), threshold: 0.01, max_detections: 100, mirror: false };

    // 4. Evaluate.
    eprintln!("4/5 evaluating before and after");
    before.mirror = false;
    let mut scores = Vec::new();
    if a.truth {
        let ds = held_out_truth(&held_bags, &before)?;
        scores.push(Scores {
            what: format!("robot held-out clips ({}), ground truth", held.join(", ")),
            frames: ds.samples.len(),
            before: evaluate(&before, &ds)?,
            after: evaluate(&after, &ds)?,
        });
    }
    for o in &a.original {
        // Held-out data as given: all of it (an evaluation sweep is all one split).
        let bags = data::bags_of(std::slice::from_ref(o), Split::All)?;
        let cfg = &before.net.cfg;
        // Both renderings where it has them, else its flat frames.
        let load = |frames| -> Result<data::Dataset> { Ok(data::load(&bags, &LoadOptions::for_model(cfg, frames))?) };
        let mut ds = load(Frames::Both)?;
        if ds.samples.is_empty() {
            ds = load(Frames::Flat)?;
        }
        if ds.samples.is_empty() {
            bail!("--original {}: no labelled frames in it", o.display());
        }
        scores.push(Scores {
            what: format!("original held-out: {}", o.display()),
            frames: ds.samples.len(),
            before: evaluate(&before, &ds)?,
            after: evaluate(&after, &ds)?,
        });
    }

    // 5. Gate, announce, report.
    let (verdict, pass) = gate(&scores, &a.metric, [a.tolerance, a.min_gain], a.truth);
    eprintln!("5/5 {verdict}");
    let value = scores.first().and_then(|s| s.after.metric(&a.metric)).unwrap_or(f64::NAN);
    let update = ModelUpdate {
        kind: "perception".into(),
        path: std::fs::canonicalize(&tuned)?.display().to_string(),
        parent: base.display().to_string(),
        datasets: [&labels_dir, &aug_dir].iter().map(|d| d.display().to_string()).collect(),
        metric: a.metric.clone(),
        value: if a.metric == "abs_rel" { -value } else { value },
        higher_is_better: a.metric != "abs_rel",
        ..Default::default()
    };
    let announced = pass && a.announce && announce(update)?;
    let policy = match &a.policy {
        Some(p) => {
            eprintln!("policy: fine-tuning {} on the recordings' own commands", p.display());
            // A policy that cannot be fine-tuned on these recordings leaves the deployed one, and the cycle's record.
            let turn = policy_turn(&a, p, &device).unwrap_or_else(|e| PolicyTurn {
                model: p.display().to_string(),
                verdict: format!("not fine-tuned: {e:#}"),
                ..Default::default()
            });
            eprintln!("policy: {}", turn.verdict);
            Some(turn)
        }
        None => None,
    };
    let record = Record {
        model: base.display().to_string(),
        labels,
        held_out_clips: held,
        augmented,
        fine_tuned: tuned.display().to_string(),
        steps: (ck.meta.step, after_ck.meta.step),
        scores,
        metric: a.metric.clone(),
        announced,
        verdict: verdict.clone(),
        policy,
    };
    std::fs::write(a.output.join("cycle.yaml"), serde_yaml_ng::to_string(&record)?)?;
    std::fs::write(a.output.join("report.html"), html(&record, &a.prompts, &sheet))?;
    println!("{}", table(&record));
    let said = match (pass && a.announce, announced) {
        (true, true) => "; announced on trainer/models",
        (true, false) => "; announced on trainer/models, but no deployed node acknowledged it",
        _ => "",
    };
    println!("{verdict}{said}");
    if let Some(p) = &record.policy {
        if let Some(t) = policy_table(p) {
            println!("\n{t}");
        }
        println!("policy {}{}", p.verdict, if p.announced { "; announced on trainer/models" } else { "" });
    }
    println!("report: {}", a.output.join("report.html").display());
    Ok(())
}

/// Whether the fine-tuned model may replace the deployed one, and why: on
/// the robot's held-out data better by at least `min_gain`, on the original
/// no worse than `tolerance` (both in `metric`'s units).
fn gate(scores: &[Scores], metric: &str, [tolerance, min_gain]: [f64; 2], truth: bool) -> (String, bool) {
    let mut reasons = Vec::new();
    let mut pass = true;
    for s in scores {
        let (Some(b), Some(a)) = (s.before.metric(metric), s.after.metric(metric)) else {
            reasons.push(format!("{}: no {metric}", s.what));
            pass = false;
            continue;
        };
        let robot = s.what.starts_with("robot");
        let ok = if robot { a > b && a >= b + min_gain } else { a >= b - tolerance };
        let sign = if metric == "abs_rel" { -1.0 } else { 1.0 };
        let short = match (ok, robot && a > b) {
            (true, _) => String::new(),
            (false, true) => format!(" (not good enough: better by less than --min-gain {min_gain})"),
            (false, false) => " (not good enough)".into(),
        };
        reasons.push(format!("{}: {metric} {:.3} → {:.3}{short}", s.what, sign * b, sign * a));
        pass &= ok;
    }
    if !truth {
        // Nothing shows the new model is better where the robot drives: it does not replace the deployed one.
        reasons.push("better on the robot's data is not measured (no --truth: the recordings carry no ground truth)".into());
        pass = false;
    }
    let head = if pass { "kept: better on the robot's data, no worse on the original" } else { "not kept" };
    (format!("{head}: {}", reasons.join("; ")), pass)
}

/// Fine-tunes a copy of the deployed policy at `path` on the training
/// recordings that carry the robot's commands (held out as perception's
/// are: every `--held-out-every`-th recording), scores both on the held-out
/// ones and keeps (announces) the copy only if its error is lower.
fn policy_turn(a: &CycleArgs, path: &Path, device: &candle_core::Device) -> Result<PolicyTurn> {
    use s2r_policy::model::Robot;
    let deployed = s2r_policy::checkpoint::read(path)?;
    let cfg = deployed.meta.config.clone();
    let commands = s2r_policy::data::command_topics(cfg.robot);
    let mut turn = PolicyTurn { model: path.display().to_string(), steps: (deployed.meta.step, deployed.meta.step), ..Default::default() };
    let (mut train, mut held) = (Vec::new(), Vec::new());
    for (i, bag) in a.bags.iter().enumerate() {
        let r = BagReader::open(bag).with_context(|| format!("reading {}", bag.display()))?;
        let name = bag.display().to_string();
        if !r.connections.iter().any(|c| commands.contains(&c.topic)) {
            turn.without_commands.push(name);
        } else if i % a.held_out_every == a.held_out_every - 1 {
            // Seeds by which the policy's training splits: the held-out ones end in 9.
            held.push((bag.clone(), i as u64 * 10 + 9));
            turn.held_out.push(name);
        } else {
            train.push((bag.clone(), i as u64 * 10));
            turn.trained_on.push(name);
        }
    }
    if train.is_empty() || held.is_empty() {
        turn.verdict = format!(
            "not fine-tuned: {} of {} recording(s) carry {}: too few to train on some and hold others out",
            train.len() + held.len(),
            a.bags.len(),
            commands.join(" or ")
        );
        return Ok(turn);
    }
    let tuned = a.output.join("policy.safetensors");
    std::fs::copy(path, &tuned).with_context(|| format!("copying {}", path.display()))?;
    let (_, batch, lr) = deployed.meta.schedule;
    // The held-out recordings go in too: by their seeds training holds them out, and the
    // checkpoint records its error on them.
    let f = s2r_policy::fit::FitOptions {
        data: Vec::new(),
        recordings: [train, held.clone()].concat(),
        output: tuned.clone(),
        steps: deployed.meta.step + a.policy_steps,
        batch,
        lr,
        seed: 1,
        every: 1,
        eval_every: a.policy_steps.max(1),
        fresh: false,
        camera: cfg.camera.clone(),
        frames: s2r_policy::data::Frames::Flat,
        input: None,
        rows: None,
        past: None,
        speed_quantile: None,
        device: device.clone(),
    };
    let meta = s2r_policy::fit::fit(&f, &mut |p| {
        if let s2r_policy::fit::Progress::HeldOut { step, mae, .. } = p {
            eprintln!("  step {step}: held-out first-command error {:.3}, {:.4}", mae.0, mae.1);
        }
    })?;
    turn.fine_tuned = Some(tuned.display().to_string());
    turn.steps.1 = meta.step;
    let samples = s2r_policy::data::read_recordings(&held, &cfg, 1)?.samples;
    let refs: Vec<&s2r_policy::data::Sample> = samples.iter().collect();
    let before = s2r_policy::fit::held_out_error(&deployed.net(device)?, &refs, device)?.0;
    let after = s2r_policy::fit::held_out_error(&s2r_policy::checkpoint::read(&tuned)?.net(device)?, &refs, device)?.0;
    (turn.frames, turn.before, turn.after) = (samples.len(), Some(before), Some(after));
    turn.hold = Some(hold_error(cfg.robot, &samples));
    let (what, units) = match cfg.robot {
        Robot::Vehicle => (["speed", "yaw rate"], ["m/s", "rad/s"]),
        Robot::Arm => (["joint", "gripper"], ["rad", "m"]),
    };
    let said = format!(
        "held-out {} error {:.3} → {:.3} {}, {} error {:.4} → {:.4} {}",
        what[0], before.0, after.0, units[0], what[1], before.1, after.1, units[1]
    );
    let keep = after.0 <= before.0 && after.1 <= before.1 && (after.0 < before.0 || after.1 < before.1);
    turn.verdict = format!("{}: {said}", if keep { "kept" } else { "not kept (not lower on the held-out recordings)" });
    if keep && a.announce {
        turn.announced = announce(ModelUpdate {
            kind: "policy".into(),
            path: std::fs::canonicalize(&tuned)?.display().to_string(),
            parent: path.display().to_string(),
            datasets: turn.trained_on.clone(),
            metric: format!("{}_mae", what[0].replace(' ', "_")),
            value: after.0 as f64,
            higher_is_better: false,
            ..Default::default()
        })?;
    }
    Ok(turn)
}

/// The error of the first command of holding the state, in [`PolicyTurn::before`]'s figures.
fn hold_error(robot: s2r_policy::model::Robot, samples: &[s2r_policy::data::Sample]) -> (f32, f32) {
    let n = samples.len().max(1) as f32;
    let mut e = (0f32, 0f32);
    for s in samples {
        let a = &s.actions[0];
        match robot {
            // A car's commands are a speed and a yaw rate, its state the ones it has.
            s2r_policy::model::Robot::Vehicle => {
                e.0 += (a[0] - s.state[0]).abs();
                e.1 += (a[1] - s.state[1]).abs();
            }
            // An arm's joint commands are relative to its joints (holding: 0), the gripper's absolute.
            s2r_policy::model::Robot::Arm => {
                e.0 += a[..6].iter().map(|x| x.abs()).sum::<f32>() / 6.0;
                e.1 += (a[6] - s.state[6]).abs();
            }
        }
    }
    (e.0 / n, e.1 / n)
}

/// The policy's before/after line, markdown (None when it was not fine-tuned).
fn policy_table(p: &PolicyTurn) -> Option<String> {
    let (b, a, h) = (p.before?, p.after?, p.hold?);
    Some(format!(
        "| policy, robot held-out recordings | frames | first command error before → after | holding the state |\n|---|---|---|---|\n| {} | {} | {:.3} → {:.3}, {:.4} → {:.4} | {:.3}, {:.4} |\n",
        p.held_out.len(),
        p.frames,
        b.0,
        a.0,
        b.1,
        a.1,
        h.0,
        h.1
    ))
}

/// Publishes a new model (its stamp set here) on trainer/models for the
/// deployed nodes. Whether a deployed node acknowledged it.
fn announce(update: ModelUpdate) -> Result<bool> {
    crate::runtime().block_on(async {
        let s = crate::discovery::session("cycle")?;
        let publisher = s
            .node
            .create_publisher_with::<ModelUpdate>(
                "trainer/models",
                s2r_runtime::Qos::transient_local().depth(10),
                s2r_runtime::Writer::Acknowledged,
            )
            .context("creating the trainer/models publisher")?;
        let t0 = std::time::Instant::now();
        while publisher.subscription_count() == 0 && t0.elapsed() < Duration::from_secs(3) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let path = update.path.clone();
        publisher.publish(ModelUpdate { stamp: s.node.now().to_msg(), ..update })?;
        let acked = publisher.wait_for_acknowledgments(Duration::from_secs(3))? && publisher.subscription_count() > 0;
        if !acked {
            eprintln!("  no deployed node took it on trainer/models; the model is at {path}");
        }
        anyhow::Ok(acked)
    })
}

/// The before/after table, markdown.
fn table(r: &Record) -> String {
    let mut s = String::from("| held-out set | frames | AP@0.5 before → after | depth AbsRel | mIoU |\n|---|---|---|---|---|\n");
    for x in &r.scores {
        s += &format!("| {} | {} | {} |\n", x.what, x.frames, cells(x).join(" | "));
    }
    s
}

/// AP@0.5, depth AbsRel and mIoU of a held-out set, each "before → after" ("–" where not measured).
fn cells(x: &Scores) -> [String; 3] {
    let f = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.3}"));
    let ap = |v: f64| Some(v).filter(|v| *v >= 0.0);
    [
        format!("{} → {}", f(ap(x.before.ap50)), f(ap(x.after.ap50))),
        format!("{} → {}", f(x.before.abs_rel), f(x.after.abs_rel)),
        format!("{} → {}", f(x.before.miou), f(x.after.miou)),
    ]
}

/// The cycle's report: what was labelled, restyled and kept, the figures, and a few frames.
fn html(r: &Record, prompts: &[String], sheet: &[Vec<Rgb>]) -> String {
    use s2r_image::html::{escape, png_data_uri};
    let mut s = String::from("<!doctype html><meta charset=utf-8><title>s2r cycle</title><style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}img{max-width:320px;margin:2px}</style>\n");
    s += &format!("<h1>s2r cycle</h1><p>{}</p>\n", escape(&r.verdict));
    s += &format!(
        "<p>Deployed model: {}; fine-tuned: {} (steps {} → {}).</p>\n",
        escape(&r.model),
        escape(&r.fine_tuned),
        r.steps.0,
        r.steps.1
    );
    s += "<h2>Labels</h2><table><tr><th>recording</th><th>frames</th><th>kept</th><th>below the confidence floor</th><th>clips</th><th>gaps</th><th>ignored pixels</th></tr>\n";
    for b in &r.labels.bags {
        s += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0} %</td></tr>\n",
            escape(&b.path.display().to_string()),
            b.frames,
            b.kept,
            b.low_confidence,
            b.clips.len(),
            b.gaps.len(),
            100.0 * b.ignored_pixels
        );
    }
    s += &format!("</table><p>Held out: {}</p>\n", escape(&r.held_out_clips.join(", ")));
    s += "<h2>Restyled</h2><table><tr><th>look</th><th>frames</th><th>curated out</th><th>boundary recall</th></tr>\n";
    for x in &r.augmented {
        s += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td></tr>\n",
            escape(&x.prompt),
            x.frames,
            x.curated_out,
            x.mean_recall
        );
    }
    s += "</table><h2>Before and after</h2><table><tr><th>held-out set</th><th>frames</th><th>AP@0.5</th><th>depth AbsRel</th><th>mIoU</th></tr>\n";
    for x in &r.scores {
        s += &format!("<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n", escape(&x.what), x.frames, cells(x).join("</td><td>"));
    }
    if let Some(p) = &r.policy {
        s += &format!("</table><h2>Policy</h2><p>{}: {}</p>\n", escape(&p.model), escape(&p.verdict));
        s += "<table>";
    }
    s += &format!("</table><h2>Frames</h2><p>The robot's frame, then {}.</p>\n", escape(&prompts.join("; ")));
    for row in sheet {
        s += "<div>";
        for img in row {
            s += &format!("<img src=\"{}\">", png_data_uri(img));
        }
        s += "</div>\n";
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(what: &str, before: f64, after: f64) -> Scores {
        let f = |m: f64| Figures { ap50: m, abs_rel: Some(1.0 - m), miou: Some(m) };
        Scores { what: what.into(), frames: 180, before: f(before), after: f(after) }
    }

    #[test]
    fn the_gate_wants_a_gain_beyond_noise_on_the_robot_and_no_loss_on_the_original() {
        let margins = [0.02, 0.01];
        let original = scores("original held-out: x", 0.33, 0.325);
        // Better by a point and a half on the robot, a little worse on the original: kept.
        let (v, pass) = gate(&[scores("robot held-out clips", 0.282, 0.297), original.clone()], "miou", margins, true);
        assert!(pass && v.starts_with("kept"), "{v}");
        // Better by half a point: within noise, not kept, and the verdict says why.
        let (v, pass) = gate(&[scores("robot held-out clips", 0.282, 0.287), original.clone()], "miou", margins, true);
        assert!(!pass && v.contains("--min-gain 0.01"), "{v}");
        // AbsRel is better lower: 0.280 → 0.265 is a gain of 0.015.
        let (v, pass) = gate(&[scores("robot held-out clips", 0.72, 0.735), original.clone()], "abs_rel", margins, true);
        assert!(pass && v.contains("0.280 → 0.265"), "{v}");
        // Worse on the original beyond the tolerance: not kept.
        let (v, pass) =
            gate(&[scores("robot held-out clips", 0.282, 0.31), scores("original held-out: x", 0.33, 0.30)], "miou", margins, true);
        assert!(!pass && v.contains("not good enough") && !v.contains("--min-gain"), "{v}");
        // Without ground truth on the robot's side: never kept.
        let (v, pass) = gate(&[original], "miou", margins, false);
        assert!(!pass && v.contains("no --truth"), "{v}");
    }
}
