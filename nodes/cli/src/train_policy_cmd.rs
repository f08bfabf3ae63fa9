//! `s2r train policy DEMOS… -o policy.safetensors`: behaviour cloning on the
//! expert's demonstrations (s2r_policy::fit trains; this prints progress).

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use s2r_policy::fit::{fit, FitOptions, Progress};

use crate::job_report::{self, Event};
use s2r_policy::model::Robot;

#[derive(Args)]
pub struct PolicyArgs {
    /// Demonstration sets: `s2r demos` folders (manifest.yaml) or `s2r generate` datasets of
    /// sweeps the expert drove (dataset.yaml with `driver: expert`).
    #[arg(required = true)]
    demos: Vec<PathBuf>,
    /// The checkpoint to write; when it exists, training resumes from it (see --fresh).
    #[arg(short, long, default_value = "policy.safetensors")]
    output: PathBuf,
    /// Optimisation steps in all.
    #[arg(long, default_value_t = 3000)]
    steps: usize,
    /// Examples per step.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Draws the initial weights, batches and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Use every n-th camera frame of the demonstrations.
    #[arg(long, default_value_t = 1)]
    every: usize,
    /// Score the held-out seeds and save every this many steps.
    #[arg(long, default_value_t = 250)]
    eval_every: usize,
    /// The camera the policy looks through.
    #[arg(long, default_value = "front")]
    camera: String,
    /// Its frames to learn from: flat (the simulator's), restyled (transfer_node's, in
    /// `s2r generate` datasets) or both.
    #[arg(long, default_value = "flat")]
    frames: s2r_policy::data::Frames,
    /// A fresh network's input, WIDTHxHEIGHT (multiples of 16; frames of any size are resized to it).
    #[arg(long, value_parser = parse_input)]
    input: Option<(usize, usize)>,
    /// A fresh network's band of the frame, TOP..BOTTOM as fractions of its height (0.25..0.75:
    /// the middle half around the horizon, read at twice the detail for the same input).
    #[arg(long, value_parser = parse_rows)]
    rows: Option<[f32; 2]>,
    /// A fresh network also reads the frame this many seconds before each one (motion: who
    /// crosses, how fast the gap closes).
    #[arg(long)]
    past: Option<f32>,
    /// The quantile of the expert's speed to learn, 0..1 (a vehicle's policy; yaw rates keep the
    /// median): below 0.5 the policy drives at the cautious end of what the expert would where
    /// its camera cannot tell what the expert knew. Default: the checkpoint's own when resuming,
    /// else 0.5 (the median).
    #[arg(long)]
    speed_quantile: Option<f32>,
    /// Start afresh even when the output exists.
    #[arg(long)]
    fresh: bool,
    /// DAgger rounds after training: each lets the policy drive --dagger-scenario on
    /// --dagger-seeds with the expert labelling every state it visits (recorded beside the
    /// output as <output>_daggerN/, N the next free number), then trains --dagger-steps more
    /// on the demonstrations given and this run's rounds (give earlier rounds' folders as DEMOS).
    #[arg(long, default_value_t = 0)]
    dagger: usize,
    /// Scenarios of the DAgger rounds.
    #[arg(long, value_delimiter = ',', default_value = "icy_night_crossing,dry_day_urban")]
    dagger_scenario: Vec<String>,
    /// Seeds of the first DAgger round, A..B (apart from the demonstrations' and the
    /// evaluation's); each later round takes the next as many seeds.
    #[arg(long, default_value = "200..229")]
    dagger_seeds: String,
    /// Training steps after each DAgger round.
    #[arg(long, default_value_t = 1000)]
    dagger_steps: usize,
    /// Where the network trains: cpu, cuda or cuda:N (CUDA needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn run(a: PolicyArgs) -> Result<()> {
    let mut opts = FitOptions {
        data: a.demos,
        recordings: Vec::new(),
        output: a.output.clone(),
        steps: a.steps,
        batch: a.batch,
        lr: a.lr,
        seed: a.seed,
        every: a.every,
        eval_every: a.eval_every,
        fresh: a.fresh,
        camera: a.camera,
        frames: a.frames,
        input: a.input,
        rows: a.rows,
        past: a.past,
        speed_quantile: a.speed_quantile,
        device: s2r_train::device(&a.device)?,
    };
    let mut meta = train(&opts)?;
    for round in 1..=a.dagger {
        // Rounds of earlier runs are kept: this one takes the next free number.
        let stem = a.output.file_stem().and_then(|s| s.to_str()).unwrap_or("policy");
        let dir = (1..).map(|k| a.output.with_file_name(format!("{stem}_dagger{k}"))).find(|d| !d.exists()).expect("a free name");
        println!("DAgger round {round}: the policy drives, the expert labels, into {}", dir.display());
        let first = crate::closedloop_cmd::seeds(&a.dagger_seeds)?;
        let shift = (round as u64 - 1) * first.len() as u64;
        let seeds: Vec<u64> = first.iter().map(|s| s + shift).collect();
        let scenarios = a
            .dagger_scenario
            .iter()
            .map(|n| crate::closedloop_cmd::load(n, std::slice::from_ref(&meta.config.camera)))
            .collect::<Result<Vec<_>>>()?;
        let mut driver = s2r_closedloop::driver::Dagger::load(&a.output)?;
        // The camera is rendered as large as the policy reads (Driver::image_scale).
        let m = s2r_closedloop::demos::record(
            &scenarios,
            &seeds,
            &mut driver,
            &dir,
            &s2r_closedloop::episode::EpisodeOptions::default(),
            &mut |e| {
                println!(
                    "  {} seed {}: {:?}, route {:.0} %{}",
                    e.scenario,
                    e.seed,
                    e.outcome,
                    e.route_completion * 100.0,
                    if e.hit_vulnerable { ", hit someone" } else { "" }
                )
            },
        )?;
        let hits = m.episodes.iter().filter(|e| e.hit_vulnerable).count();
        println!("round {round}: the policy hit a pedestrian, child or cyclist in {hits} of {} episodes", m.episodes.len());
        opts.data.push(dir);
        opts.steps = meta.step + a.dagger_steps;
        opts.fresh = false;
        meta = train(&opts)?;
    }
    println!("wrote {} (step {})", a.output.display(), meta.step);
    Ok(())
}

/// One training run with its progress printed.
fn train(opts: &FitOptions) -> Result<s2r_policy::checkpoint::Meta> {
    let tty = std::io::stderr().is_terminal();
    let mut running = 0f32;
    let mut robot = Robot::Vehicle;
    job_report::emit(Event::Start { steps: opts.steps as u64, metric: "command_error".into(), higher_is_better: false });
    let meta = fit(opts, &mut |p| match p {
        Progress::Data { train, held_out, episodes, skipped, robot: r } => {
            robot = *r;
            println!(
                "{train} training and {held_out} held-out frames (seeds ending in 9) from {episodes} episodes of {r:?} demonstrations ({skipped} left out: the demonstrator hit someone or dropped a cup)"
            )
        }
        Progress::Resumed(step) => {
            // With DAgger rounds to follow, a resumed behaviour-cloning run first trains on to --steps.
            let until = if *step < opts.steps { format!(", training on to step {}", opts.steps) } else { String::new() };
            println!("resuming {} at step {step}{until}", opts.output.display())
        }
        Progress::Step { step, loss } => {
            job_report::emit(Event::Step { step: *step as u64, loss: *loss as f64 });
            running = if *step == 1 { *loss } else { 0.98 * running + 0.02 * loss };
            if step % 100 == 0 {
                let line = format!("step {step}/{}: loss {running:.4}", opts.steps);
                if tty {
                    eprint!("\r{line}   ");
                } else {
                    println!("{line}");
                }
            }
        }
        Progress::HeldOut { step, mae, chunk_mae } => {
            job_report::emit(Event::HeldOut { step: *step as u64, value: mae.0 as f64 });
            let units = match robot {
                Robot::Vehicle => ("m/s", "rad/s"),
                Robot::Arm => ("rad (joints)", "m (gripper)"),
            };
            println!(
                "{}step {step}: held-out error of the next command {:.3} {}, {:.4} {} (whole chunk {:.3}, {:.4})",
                if tty { "\n" } else { "" },
                mae.0,
                units.0,
                mae.1,
                units.1,
                chunk_mae.0,
                chunk_mae.1
            )
        }
    })?;
    Ok(meta)
}

/// "256x96" → (256, 96).
fn parse_input(s: &str) -> Result<(usize, usize), String> {
    let parsed = s.split_once(['x', 'X']).and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)));
    match parsed {
        Some((w, h)) if w > 0 && h > 0 && w % 16 == 0 && h % 16 == 0 => Ok((w, h)),
        _ => Err(format!("'{s}': expected WIDTHxHEIGHT, multiples of 16 (e.g. 256x96)")),
    }
}

/// "0.25..0.75" → [0.25, 0.75].
fn parse_rows(s: &str) -> Result<[f32; 2], String> {
    let parsed = s.split_once("..").and_then(|(a, b)| Some([a.trim().parse::<f32>().ok()?, b.trim().parse::<f32>().ok()?]));
    match parsed {
        Some([a, b]) if (0.0..1.0).contains(&a) && b > a + 0.05 && b <= 1.0 => Ok([a, b]),
        _ => Err(format!("'{s}': expected TOP..BOTTOM, fractions of the frame's height with 0 <= TOP < BOTTOM <= 1 (e.g. 0.25..0.75)")),
    }
}
