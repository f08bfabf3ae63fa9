//! `s2r train reason` and `s2r eval reason`: the reasoning predictors fitted
//! to the simulator's braking trials (s2r_sim::consequences runs them), and
//! the held-out question set scored beside a baseline that assumes a dry road.

use std::path::PathBuf;

use crate::job_report::{self, Event};

use anyhow::{Context, Result};
use clap::Args;
use s2r_closedloop::reason::{HazardFrames, HazardLabels};
use s2r_reason::model::{CupRecord, HazardRecord, ReasonModel, SurfaceRecord, FORMAT};
use s2r_reason::questions::{self, Scores, DRY_MU};
use s2r_reason::stopping::{Braking, StoppingModel};
use s2r_reason::surface;
use s2r_reason::{cup, hazard};
use s2r_sim::consequences::{braking_situation, braking_trial, push_trial, scenario_push, PushTrial, TrialError};

/// Seeds of the held-out question set (training uses lower ones).
const HELD_OUT: &str = "1000..1199";

#[derive(Args)]
pub struct TrainReasonArgs {
    /// The model file to write (JSON).
    #[arg(short, long, default_value = "reason.json")]
    output: PathBuf,
    /// The scenario whose car brakes in the trials (shipped name or file).
    #[arg(long, default_value = "icy_night_crossing")]
    scenario: String,
    /// Trial seeds, A..B: each draws a friction (0.08–0.9), a speed (2–20 m/s) and a reaction time (0.05–0.5 s).
    #[arg(long, default_value = "0..399")]
    seeds: String,
    /// Seeds of the held-out question set scored at the end (never trained on).
    #[arg(long, default_value = HELD_OUT)]
    held_out: String,
    /// Also train the surface predictor on these datasets (`s2r generate` sweeps with
    /// `friction_from_look: true`, e.g. config/sweeps/surface_train.yaml): its weights go
    /// beside the output as <output stem>.surface.safetensors. Seeds ending in 9 are held out.
    #[arg(long, num_args = 1..)]
    surface: Vec<PathBuf>,
    /// The camera topic the surface predictor reads (restyled frames in a dataset).
    #[arg(long, default_value = "/front/image_raw")]
    topic: String,
    /// Use every n-th frame of the surface datasets.
    #[arg(long, default_value_t = 2)]
    every: usize,
    /// Surface predictor training steps.
    #[arg(long, default_value_t = 1500)]
    surface_steps: usize,
    /// Also train the hazard predictor on episodes of these seeds, A..B, driven in the simulator
    /// by --hazard-drivers and labelled by the driving expert's ground truth (seeds ending in 9 held
    /// out): its weights go beside the output as <output stem>.hazard.safetensors.
    #[arg(long)]
    hazard_seeds: Option<String>,
    /// The scenarios of the hazard predictor's episodes.
    #[arg(long, value_delimiter = ',', default_value = "icy_night_crossing,dry_day_urban")]
    hazard_scenarios: Vec<String>,
    /// Who drives them: scripted (cruise speed, into what it meets) and expert (careful, close to
    /// parked cars at low speed) see the situations from both sides; policy (--hazard-policy);
    /// and any of these with `+reason` (filtered by the reasoning of --from, or of the shipped
    /// model: the situations the filter itself drives into, such as standing beside a parked car
    /// it took to be in the way, labelled by the expert: a DAgger round for the predictor).
    #[arg(long, value_delimiter = ',', default_value = "scripted,expert")]
    hazard_drivers: Vec<String>,
    /// The policy checkpoint of the `policy` hazard drivers (default: the shipped one).
    #[arg(long)]
    hazard_policy: Option<PathBuf>,
    /// Record every n-th camera frame (10 Hz) of those episodes.
    #[arg(long, default_value_t = 2)]
    hazard_every: usize,
    /// What counts as something in the path: free (the expert's bound: who is in the path or
    /// will step in within 6 s at their velocity, a lead car's stopping distance added; the
    /// shipped model's) or in-path (who is inside the path now, the bare gap).
    #[arg(long, default_value = "free")]
    hazard_labels: String,
    /// Let the hazard predictor read motion: each frame with the one 0.3 s before it (who moves
    /// towards the path, not only who stands near it).
    #[arg(long)]
    hazard_motion: bool,
    /// Hazard predictor training steps.
    #[arg(long, default_value_t = 3000)]
    hazard_steps: usize,
    /// Also train the cup's outcome predictor on push trials of these seeds, A..B (below the
    /// held-out ones): each puts a cup where the arm reaches and pushes it with the closed fingers
    /// from a side, at a height, speed and offset, some way past its centre. Its weights go beside
    /// the output as <output stem>.cup.safetensors.
    #[arg(long)]
    cup_seeds: Option<String>,
    /// The arm scenario of the push trials (shipped name or file).
    #[arg(long, default_value = "cup_near_edge")]
    cup_scenario: String,
    /// Cup outcome predictor training steps.
    #[arg(long, default_value_t = 3000)]
    cup_steps: usize,
    /// Where the networks train: cpu, cuda or cuda:N (CUDA needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Keep the predictors of this model file that are not retrained (its surface predictor
    /// without --surface, its hazard predictor without --hazard-seeds); the stopping model is
    /// always refitted (seconds).
    #[arg(long)]
    from: Option<PathBuf>,
}

#[derive(Args)]
pub struct EvalReasonArgs {
    /// The model file (from `s2r train reason`).
    model: PathBuf,
    /// Seeds of the question set, A..B (held out: training uses lower ones).
    #[arg(long, default_value = HELD_OUT)]
    seeds: String,
    /// The scenario whose car brakes (shipped name or file; default: the model's).
    #[arg(long)]
    scenario: Option<String>,
    /// Also write the questions, the simulator's answers and both reasoners' scores as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Seeds of the cup questions, A..B (push trials; the approach-side questions use the first 100).
    #[arg(long, default_value = HELD_OUT)]
    cup_seeds: String,
    /// Also score the surface predictor on these datasets (every frame of the model's topic;
    /// e.g. config/sweeps/surface_eval_looks.yaml: looks training never saw).
    #[arg(long, num_args = 1..)]
    surface: Vec<PathBuf>,
}

/// The braking trials of `seeds` in `scenario`'s physics.
fn trials(scenario: &str, seeds: &[u64]) -> Result<Vec<Braking>> {
    let s = crate::closedloop_cmd::load(scenario, &[])?;
    seeds
        .iter()
        .map(|&seed| {
            let (mu, speed, reaction) = braking_situation(seed);
            let t = braking_trial(&s, seed, mu, speed, reaction)?;
            Ok(Braking { mu: t.mu, speed: t.speed, reaction: t.reaction, distance: t.distance, time: t.time })
        })
        .collect()
}

pub fn train(a: TrainReasonArgs) -> Result<()> {
    // A device this build or machine lacks is refused before the trials run.
    s2r_train::device(&a.device)?;
    let seeds = crate::closedloop_cmd::seeds(&a.seeds).context("--seeds")?;
    let held = crate::closedloop_cmd::seeds(&a.held_out).context("--held-out")?;
    if let Some(s) = seeds.iter().find(|s| held.contains(s)) {
        anyhow::bail!("--seeds and --held-out share seed {s}: the question set must be held out");
    }
    let started = std::time::Instant::now();
    job_report::emit(Event::Start { steps: 0, metric: "stopping_within_15".into(), higher_is_better: true });
    let records = trials(&a.scenario, &seeds)?;
    println!("{} braking trials of {} in {:.1} s", records.len(), a.scenario, started.elapsed().as_secs_f32());
    let stopping = StoppingModel::fit(&records)?;
    let c = stopping.coef;
    println!(
        "stopping distance ≈ {:.4}·v²/μ + {:.3}·v·reaction + {:.3}·v + {:.3} m (rms {:.3} m): a braking car reaches {:.2} m/s² per unit of friction",
        c[0],
        c[1],
        c[2],
        c[3],
        stopping.rms,
        stopping.deceleration(1.0)
    );
    let questions = questions::from_trials(&trials(&a.scenario, &held)?);
    let scores = questions::score(&questions, &stopping, |mu| mu);
    let from = match &a.from {
        Some(p) => Some((p.clone(), ReasonModel::load(p)?)),
        None => None,
    };
    let surface = if a.surface.is_empty() {
        match &from {
            Some((p, m)) => match m.surface.clone() {
                Some(r) => Some(SurfaceRecord { weights: keep(p, &r.weights, &a.output, "surface")?, ..r }),
                None => None,
            },
            None => None,
        }
    } else {
        Some(train_surface(&a)?)
    };
    let hazard = match &a.hazard_seeds {
        Some(seeds) => Some(train_hazard(&a, seeds)?),
        None => match &from {
            Some((p, m)) => match m.hazard.clone() {
                Some(r) => Some(HazardRecord { weights: keep(p, &r.weights, &a.output, "hazard")?, ..r }),
                None => None,
            },
            None => None,
        },
    };
    let cup = match &a.cup_seeds {
        Some(seeds) => Some(train_cup(&a, seeds, &held)?),
        None => match &from {
            Some((p, m)) => match m.cup.clone() {
                Some(r) => Some(CupRecord { weights: keep(p, &r.weights, &a.output, "cup")?, ..r }),
                None => None,
            },
            None => None,
        },
    };
    let model = ReasonModel {
        format: FORMAT.into(),
        stopping,
        surface,
        hazard,
        cup,
        scenario: a.scenario.clone(),
        seeds: (seeds[0], *seeds.last().expect("seeds are not empty")),
        held_out: Some(scores.clone()),
        software: format!("sim2real {}", env!("CARGO_PKG_VERSION")),
    };
    model.save(&a.output)?;
    job_report::emit(Event::HeldOut { step: 0, value: scores.within_15 as f64 });
    println!(
        "held-out seeds {}: stopping distance within 15 % in {:.1} % of {} questions; stop-or-not right in {:.1} %",
        a.held_out,
        100.0 * scores.within_15,
        scores.distance_questions,
        100.0 * scores.stop_accuracy
    );
    println!("wrote {}", a.output.display());
    Ok(())
}

/// Prints a training's smoothed loss every 250 steps.
fn progress(what: &'static str, steps: usize) -> impl FnMut(usize, f32) {
    let mut running = 0f32;
    move |step, loss| {
        running = if step == 1 { loss } else { 0.98 * running + 0.02 * loss };
        if step % 250 == 0 {
            println!("{what} step {step}/{steps}: loss {running:.4}");
        }
    }
}

/// The weights file of predictor `what` beside the model file `output`: `<output stem>.<what>.safetensors`.
fn weights_name(output: &std::path::Path, what: &str) -> String {
    let stem = output.file_stem().and_then(|s| s.to_str()).unwrap_or("reason");
    format!("{stem}.{what}.safetensors")
}

/// Keeps predictor `what` of the model file at `from`: its weights file
/// `weights` copied beside `output` under the output's stem; returns the new name.
fn keep(from: &std::path::Path, weights: &str, output: &std::path::Path, what: &str) -> Result<String> {
    let src = from.parent().unwrap_or(std::path::Path::new(".")).join(weights);
    let name = weights_name(output, what);
    let dst = output.with_file_name(&name);
    if std::fs::canonicalize(&src).ok() != std::fs::canonicalize(&dst).ok() {
        std::fs::copy(&src, &dst).with_context(|| format!("--from: copying {} to {}", src.display(), dst.display()))?;
    }
    println!("{what} predictor kept from {}", from.display());
    Ok(name)
}

/// A driver of the hazard predictor's episodes: `name` as closed-loop
/// evaluation knows it, or `name+reason`, filtered by the reasoning of
/// `--from` (or of the shipped model) as `s2r eval closed-loop --reason on` does.
fn hazard_driver(a: &TrainReasonArgs, name: &str) -> Result<Box<dyn s2r_closedloop::driver::Driver>> {
    let policy = a.hazard_policy.clone().or_else(s2r_policy::node::shipped_checkpoint);
    let (base, reasoned) = match name.strip_suffix("+reason") {
        Some(base) => (base, true),
        None => (name, false),
    };
    let inner = crate::closedloop_cmd::driver(base, policy.as_ref()).with_context(|| format!("--hazard-drivers {name}"))?;
    if !reasoned {
        return Ok(inner);
    }
    let reasoner = crate::closedloop_cmd::reasoner(a.from.as_ref(), &format!("--hazard-drivers {name}: no --from"))?;
    Ok(Box::new(s2r_closedloop::reason::Reasoned::new(inner, reasoner, 60.0, 0.1)))
}

/// Drives the hazard predictor's episodes, trains it and writes its weights beside the model file.
fn train_hazard(a: &TrainReasonArgs, seeds: &str) -> Result<HazardRecord> {
    let started = std::time::Instant::now();
    let seed_list = crate::closedloop_cmd::seeds(seeds).context("--hazard-seeds")?;
    if seed_list.iter().any(|s| *s >= 1000) {
        anyhow::bail!("--hazard-seeds {seeds}: seeds from 1000 on are the closed-loop evaluation's, keep them held out");
    }
    let labels = match a.hazard_labels.as_str() {
        "free" => HazardLabels::Free,
        "in-path" => HazardLabels::InPath,
        other => anyhow::bail!("--hazard-labels '{other}': free or in-path"),
    };
    s2r_sim::render::quiet_headless_vulkan();
    let opts = s2r_closedloop::EvalOptions {
        episode: s2r_closedloop::episode::EpisodeOptions { image_scale: 0.5, thumbnail: false, record: None, ..Default::default() },
        failed_bags: 0,
        bags: None,
    };
    let mut all = Vec::new();
    let mut camera = None;
    for name in &a.hazard_scenarios {
        let scenario = crate::closedloop_cmd::load(name, &[s2r_closedloop::reason::CAMERA.to_string()])?;
        let c = &scenario.sensors.cameras[0];
        let scale = (s2r_closedloop::reason::WIDTH as f64 / c.width as f64).min(1.0);
        camera = Some((c.name.clone(), (c.width as f64 * scale).round() as u32, (c.height as f64 * scale).round() as u32));
        for d in &a.hazard_drivers {
            let mut rec = HazardFrames::new(hazard_driver(a, d)?, a.hazard_every, labels);
            if a.hazard_motion {
                rec = rec.with_motion();
            }
            let before = all.len();
            s2r_closedloop::evaluate(&scenario, &seed_list, &mut rec, &opts, &mut |_| {})
                .with_context(|| format!("driving {name} ({d}) for the hazard predictor's frames"))?;
            all.append(&mut rec.samples);
            println!("hazard: {name}, {d}, seeds {seeds}: {} frames ({:.0} s so far)", all.len() - before, started.elapsed().as_secs_f32());
        }
    }
    let (held, train): (Vec<hazard::Sample>, Vec<hazard::Sample>) = all.into_iter().partition(|s| s2r_train::held_out(s.seed));
    let share = |f: &dyn Fn(&hazard::Sample) -> bool| train.iter().filter(|s| f(s)).count();
    println!(
        "hazard: {} training frames ({} with something in the path, {} with a parked car ahead), {} held out",
        train.len(),
        share(&|s| s.obstacle.is_some()),
        share(&|s| s.occlusion.is_some()),
        held.len()
    );
    let opts = hazard::FitOptions { steps: a.hazard_steps, device: s2r_train::device(&a.device)?, ..Default::default() };
    let t = hazard::fit(&train, &opts, &mut progress("hazard", opts.steps))?;
    let held_out = if held.is_empty() { None } else { Some(hazard::evaluate(&t.net, &held)?) };
    if let Some(h) = &held_out {
        println!("hazard held out ({} frames): {}", h.frames, serde_json::to_string(h)?);
    }
    let weights = weights_name(&a.output, "hazard");
    let record = HazardRecord {
        weights: weights.clone(),
        scenarios: a.hazard_scenarios.clone(),
        seeds: (seed_list[0], *seed_list.last().expect("seeds are not empty")),
        drivers: a.hazard_drivers.clone(),
        labels: a.hazard_labels.clone(),
        motion: a.hazard_motion,
        camera: camera.expect("at least one scenario"),
        frames: train.len(),
        steps: opts.steps,
        held_out,
    };
    hazard::save(&a.output.with_file_name(&weights), &t, &serde_json::to_string(&record)?)?;
    println!("hazard predictor trained in {:.0} s", started.elapsed().as_secs_f32());
    Ok(record)
}

/// Push trials of `seeds` in `scenario` as the cup predictor's records, and
/// how many seeds' pushes the arm could not run.
fn push_records(scenario: &str, seeds: &[u64]) -> Result<(Vec<cup::Record>, usize)> {
    let s = crate::closedloop_cmd::load(scenario, &[])?;
    let (mut records, mut skipped) = (Vec::new(), 0);
    for &seed in seeds {
        let push = scenario_push(&s, seed)?;
        match push_trial(&s, seed, &push) {
            Ok(t) => records.push(record(&t, seed)),
            Err(TrialError::Unreachable { .. } | TrialError::Disturbed { .. }) => skipped += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Ok((records, skipped))
}

/// A push trial as a record of the cup predictor.
fn record(t: &PushTrial, seed: u64) -> cup::Record {
    let p = &t.push;
    cup::Record {
        table: cup::Table { half: t.table_half, arm: t.arm, reach: t.reach },
        cup: cup::Cup { at: t.start, size: t.size },
        push: cup::Push { heading: p.heading, offset: p.offset, height: p.height, speed: p.speed, travel: p.travel },
        outcome: t.outcome.index(),
        seed,
    }
}

/// Runs the push trials, trains the cup's outcome predictor, scores it on the
/// held-out seeds' trials and writes its weights beside the model file.
fn train_cup(a: &TrainReasonArgs, seeds: &str, held: &[u64]) -> Result<CupRecord> {
    let started = std::time::Instant::now();
    let seed_list = crate::closedloop_cmd::seeds(seeds).context("--cup-seeds")?;
    if let Some(s) = seed_list.iter().find(|s| held.contains(s)) {
        anyhow::bail!("--cup-seeds and --held-out share seed {s}: the question set must be held out");
    }
    let (records, skipped) = push_records(&a.cup_scenario, &seed_list)?;
    let outcomes: [usize; 3] = std::array::from_fn(|k| records.iter().filter(|r| r.outcome == k).count());
    println!(
        "cup: {} push trials of {} ({} stayed, {} tipped, {} fell; {skipped} seeds out of the arm's reach) in {:.0} s",
        records.len(),
        a.cup_scenario,
        outcomes[0],
        outcomes[1],
        outcomes[2],
        started.elapsed().as_secs_f32()
    );
    let opts = cup::FitOptions { steps: a.cup_steps, batch: 64, lr: 3e-3, seed: 0, device: s2r_train::device(&a.device)? };
    let t = cup::train(&records, &opts, &mut progress("cup", opts.steps))?;
    let (held_records, _) = push_records(&a.cup_scenario, held)?;
    let held_out = cup::score(&t.net, &held_records, false)?;
    println!("cup held out ({} pushes): {}", held_out.pushes, serde_json::to_string(&held_out)?);
    let weights = weights_name(&a.output, "cup");
    let record = CupRecord {
        weights: weights.clone(),
        scenario: a.cup_scenario.clone(),
        seeds: (seed_list[0], *seed_list.last().expect("seeds are not empty")),
        trials: records.len(),
        outcomes,
        skipped,
        steps: opts.steps,
        held_out: Some(held_out),
    };
    cup::save(&a.output.with_file_name(&weights), &t, &serde_json::to_string(&record)?)?;
    println!("cup predictor trained in {:.0} s", started.elapsed().as_secs_f32());
    Ok(record)
}

/// Trains the surface predictor and writes its weights beside the model file.
fn train_surface(a: &TrainReasonArgs) -> Result<SurfaceRecord> {
    let started = std::time::Instant::now();
    let all = surface::read(&a.surface, &a.topic, a.every)?;
    let (held, train): (Vec<surface::Sample>, Vec<surface::Sample>) = all.into_iter().partition(|s| s2r_train::held_out(s.seed));
    let counts: Vec<String> =
        surface::CLASSES.iter().enumerate().map(|(k, c)| format!("{c} {}", train.iter().filter(|s| s.class == k).count())).collect();
    println!(
        "surface: {} training frames ({}) and {} held-out (seeds ending in 9), read in {:.1} s",
        train.len(),
        counts.join(", "),
        held.len(),
        started.elapsed().as_secs_f32()
    );
    let opts = surface::FitOptions { steps: a.surface_steps, device: s2r_train::device(&a.device)?, ..Default::default() };
    let t = surface::fit(&train, &opts, &mut progress("surface", opts.steps))?;
    let held_out_accuracy = if held.is_empty() {
        None
    } else {
        let (acc, confusion) = surface::evaluate(&t.net, &held)?;
        println!(
            "surface held-out accuracy {:.1} % of {} frames; confusion (rows truth, columns predicted, {}): {confusion:?}",
            100.0 * acc,
            held.len(),
            surface::CLASSES.join("/")
        );
        Some(acc)
    };
    let weights = weights_name(&a.output, "surface");
    let record = SurfaceRecord {
        weights: weights.clone(),
        topic: a.topic.clone(),
        data: a.surface.iter().map(|p| p.display().to_string()).collect(),
        frames: train.len(),
        steps: opts.steps,
        held_out_accuracy,
    };
    surface::save(&a.output.with_file_name(&weights), &t, &serde_json::to_string(&record)?)?;
    println!("surface predictor trained in {:.0} s", started.elapsed().as_secs_f32());
    Ok(record)
}

pub fn eval(a: EvalReasonArgs) -> Result<()> {
    let model = ReasonModel::load(&a.model)?;
    let seeds = crate::closedloop_cmd::seeds(&a.seeds).context("--seeds")?;
    if model.seeds.0 <= *seeds.last().expect("seeds") && seeds[0] <= model.seeds.1 {
        eprintln!("warning: seeds {} overlap the model's training trials {}..{}", a.seeds, model.seeds.0, model.seeds.1);
    }
    let scenario = a.scenario.clone().unwrap_or_else(|| model.scenario.clone());
    let qs = questions::from_trials(&trials(&scenario, &seeds)?);
    let reasoner = questions::score(&qs, &model.stopping, |mu| mu);
    let dry = questions::score(&qs, &model.stopping, |_| DRY_MU);
    println!("Held-out braking questions ({scenario}, seeds {}; friction 0.08–0.9, 2–20 m/s):\n", a.seeds);
    println!("| reasoner | stopping distance within 15 % | median error | stops before the pedestrian? | says it stops when it does not |");
    println!("| --- | --- | --- | --- | --- |");
    let row = |name: &str, s: &Scores| {
        println!(
            "| {name} | {:.1} % of {} | {:.1} % | {:.1} % of {} | {:.1} % |",
            100.0 * s.within_15,
            s.distance_questions,
            100.0 * s.median_error,
            100.0 * s.stop_accuracy,
            s.stop_questions,
            100.0 * s.false_stops
        )
    };
    row("learned stopping model, road's friction", &reasoner);
    row(&format!("the same, assuming a dry road (μ {DRY_MU})"), &dry);
    let mut surface_scores = None;
    if !a.surface.is_empty() {
        let (Some(rec), Some(weights)) = (&model.surface, model.surface_weights(&a.model)) else {
            anyhow::bail!("{} has no surface predictor: train one with `s2r train reason --surface DATASET`", a.model.display());
        };
        let net = surface::load(&weights)?;
        let samples = surface::read(&a.surface, &rec.topic, 1)?;
        let (acc, confusion) = surface::evaluate(&net, &samples)?;
        // The baseline that assumes a dry road is right on the dry frames only.
        let dry = samples.iter().filter(|s| s.class == 0).count() as f32 / samples.len().max(1) as f32;
        println!(
            "\nSurface from the camera ({} frames of {}):\n",
            samples.len(),
            a.surface.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
        println!("| reasoner | surface class right | {} |", surface::CLASSES.map(|c| format!("{c}: right / frames")).join(" | "));
        println!("| --- | --- |{}", " --- |".repeat(4));
        let cells: Vec<String> = (0..4).map(|k| format!("{} / {}", confusion[k][k], confusion[k].iter().sum::<usize>())).collect();
        println!("| surface predictor | {:.1} % | {} |", 100.0 * acc, cells.join(" | "));
        let dry_cells: Vec<String> = (0..4)
            .map(|k| format!("{} / {}", if k == 0 { confusion[0].iter().sum::<usize>() } else { 0 }, confusion[k].iter().sum::<usize>()))
            .collect();
        println!("| assuming a dry road | {:.1} % | {} |", 100.0 * dry, dry_cells.join(" | "));
        surface_scores =
            Some(serde_json::json!({"frames": samples.len(), "accuracy": acc, "confusion": confusion, "dry_road_baseline": dry}));
    }
    let cup_scores = match (&model.cup, model.cup_weights(&a.model)) {
        (Some(rec), Some(weights)) => Some(eval_cup(rec, &weights, &a.cup_seeds)?),
        _ => None,
    };
    if let Some(path) = &a.json {
        let out = serde_json::json!({
            "scenario": scenario,
            "seeds": a.seeds,
            "questions": qs.iter().map(|q| serde_json::json!({"text": q.text(), "question": q})).collect::<Vec<_>>(),
            "reasoner": reasoner,
            "dry_road_baseline": dry,
            "surface": surface_scores,
            "cup": cup_scores,
        });
        std::fs::write(path, serde_json::to_string_pretty(&out)? + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("\nwrote {}", path.display());
    }
    Ok(())
}

/// The cup questions: every held-out push's outcome (stays, tips, falls?),
/// and for the first 100 seeds' cups a sweep from every side (will it fall
/// if pushed from there? from which side should the arm approach?), scored
/// for the predictor and for the same predictor blind to the table's edge.
fn eval_cup(rec: &CupRecord, weights: &std::path::Path, seeds: &str) -> Result<serde_json::Value> {
    let net = cup::load(weights)?;
    let seeds = crate::closedloop_cmd::seeds(seeds).context("--cup-seeds")?;
    if rec.seeds.0 <= *seeds.last().expect("seeds") && seeds[0] <= rec.seeds.1 {
        eprintln!("warning: --cup-seeds overlap the cup predictor's training trials {}..{}", rec.seeds.0, rec.seeds.1);
    }
    let (records, skipped) = push_records(&rec.scenario, &seeds)?;
    let learned = cup::score(&net, &records, false)?;
    let blind = cup::score(&net, &records, true)?;
    // A sweep from every side of the first 100 seeds' cups.
    let s = crate::closedloop_cmd::load(&rec.scenario, &[])?;
    let (mut sides, mut side_records, mut approach, mut approach_blind, mut cups) = (Vec::new(), Vec::new(), 0usize, 0usize, 0usize);
    for &seed in seeds.iter().take(100) {
        let at = scenario_push(&s, seed)?.cup;
        let mut trials = Vec::new();
        for (_, heading) in cup::SIDES {
            // The full sweep: the trial shortens it to where the arm reaches.
            let sw = cup::SWEEP;
            let push =
                s2r_sim::consequences::Push { cup: at, heading, offset: sw.offset, height: sw.height, speed: sw.speed, travel: sw.travel };
            match push_trial(&s, seed, &push) {
                Ok(t) => trials.push(record(&t, seed)),
                Err(TrialError::Unreachable { .. } | TrialError::Disturbed { .. }) => break,
                Err(e) => return Err(e.into()),
            }
        }
        if trials.len() < cup::SIDES.len() {
            continue;
        }
        cups += 1;
        // The side the predictor would approach from (blind to the edge, or not).
        let risk = |net_blind: bool| -> Result<usize> {
            let table = if net_blind { trials[0].table.without_edges() } else { trials[0].table };
            let x: Vec<_> = trials.iter().map(|r| cup::features(&table, &r.cup, &r.push)).collect();
            Ok(cup::safest(&net.predict(&x)?).expect("four sides"))
        };
        approach += usize::from(trials[risk(false)?].outcome != cup::FALLS);
        approach_blind += usize::from(trials[risk(true)?].outcome != cup::FALLS);
        sides.push(trials.iter().map(|r| cup::OUTCOMES[r.outcome]).collect::<Vec<_>>());
        side_records.extend(trials);
    }
    let side_learned = cup::score(&net, &side_records, false)?;
    let side_blind = cup::score(&net, &side_records, true)?;
    let dropping = side_records.iter().filter(|r| r.outcome == cup::FALLS).count();
    println!(
        "\nCup questions ({}, {} held-out pushes of seeds {}..{}, {skipped} out of the arm's reach; sweeps from all four sides of {cups} cups, {dropping} of {} sweeps drop the cup):\n",
        rec.scenario,
        records.len(),
        seeds[0],
        seeds.last().expect("seeds"),
        side_records.len()
    );
    println!("| reasoner | what a push does (stays / tips / falls) | will it fall? | falls foreseen | will a sweep from this side drop it? | approach side keeps it on the table |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let pct = |x: f32| format!("{:.1} %", 100.0 * x);
    let share = |n: usize| format!("{:.1} %", 100.0 * n as f32 / cups.max(1) as f32);
    println!(
        "| cup outcome predictor | {} | {} | {} | {} | {} |",
        pct(learned.outcome_accuracy),
        pct(learned.falls_accuracy),
        pct(learned.falls_recall),
        pct(side_learned.falls_accuracy),
        share(approach)
    );
    println!(
        "| the same, blind to the table's edge | {} | {} | {} | {} | {} |",
        pct(blind.outcome_accuracy),
        pct(blind.falls_accuracy),
        pct(blind.falls_recall),
        pct(side_blind.falls_accuracy),
        share(approach_blind)
    );
    Ok(serde_json::json!({
        "pushes": learned, "edge_blind": blind, "skipped": skipped,
        "sides": {"cups": cups, "outcomes": sides, "predictor": side_learned, "edge_blind": side_blind,
                  "approach_right": approach, "approach_right_edge_blind": approach_blind},
    }))
}
