//! `s2r bench transfer`: restyling speed at 640×480 on simulated frames, for
//! the full and the fast preset; milliseconds per stage; temporal flicker (the
//! frame-to-frame change that camera motion does not explain, output against
//! input); natural-image statistics of output against input.

use std::time::Instant;

use anyhow::{anyhow, Result};
use clap::Args;
use s2r_image::quality::{psnr, Rgb8};
use s2r_sim::node::resolve_scenario;
use s2r_sim::scenario::Scenario;
use s2r_sim::sim::{Sim, SimOptions};
use s2r_transfer::builtin::geometry::Pose;
use s2r_transfer::builtin::gpu::GpuBuiltin;
use s2r_transfer::builtin::{Builtin, Preset};
use s2r_transfer::input::{decode, CameraMsgs, Decoded, Scene, Topics};
use s2r_transfer::{parse, stats, Backend, Weights};

/// Options of `s2r bench transfer`.
#[derive(Args, Clone)]
pub struct TransferBenchArgs {
    /// The scenario whose front camera is restyled.
    #[arg(long, default_value = "icy_night_crossing")]
    scenario: String,
    /// The prompt (the default turns every effect on).
    #[arg(long, default_value = "icy road, night, wet reflections, headlight glare, light snowfall, street lights, motion blur, grain")]
    prompt: String,
    /// Frames measured per preset (consecutive camera frames).
    #[arg(long, default_value_t = 40)]
    frames: usize,
    /// Simulator image scale (1 = the scenario's 640×480).
    #[arg(long, default_value_t = 1.0)]
    image_scale: f64,
}

/// Simulates the frames, restyles them with each preset and prints the
/// speed per stage, the flicker and the image statistics.
pub(crate) fn run(a: TransferBenchArgs) -> Result<()> {
    s2r_sim::render::quiet_headless_vulkan();
    let path = resolve_scenario(&a.scenario).map_err(|e| anyhow!(e))?;
    let scenario = Scenario::load(&path)?;
    let mut sim = Sim::new(scenario, &SimOptions { seed: 1, image_scale: a.image_scale, render: true })?;
    let mut scene = Scene::default();
    scene.tf(&sim.tf_static(), true);
    scene.scenario = Some(sim.scenario_info());
    let mut frames: Vec<Decoded> = Vec::new();
    while frames.len() < a.frames + 3 {
        let tick = sim.tick()?;
        if let Some(tf) = &tick.tf {
            scene.tf(tf, false);
        }
        if let Some(d) = tick.detections3d {
            scene.detections3d = Some(d);
        }
        if let Some(c) = tick.cameras.into_iter().next() {
            let topics = Topics::sim("/sim", &c.name);
            let m = CameraMsgs { image: Some(c.image), depth: Some(c.depth), segmentation: Some(c.segmentation), info: Some(c.info) };
            frames.push(decode(&m, &topics).map_err(|e| anyhow!(e))?);
        }
    }
    let parsed = parse(&a.prompt);
    if !parsed.unknown.is_empty() {
        eprintln!("prompt: unknown words {:?}", parsed.unknown);
    }
    let (w, h) = (frames[0].width, frames[0].height);
    println!(
        "transfer benchmark: {} front camera, {w}x{h}, {} frames per preset, {} threads",
        a.scenario,
        a.frames,
        rayon::current_num_threads()
    );
    println!("prompt: \"{}\" -> {}", a.prompt, parsed.look);
    // The CPU path first: the GPU path's outputs are compared with it.
    let mut reference: Vec<Vec<Vec<u8>>> = Vec::new();
    let gpu = match GpuBuiltin::new(Preset::Full) {
        Ok(g) => {
            println!("GPU path: {}", g.adapter());
            Some(g)
        }
        Err(e) => {
            println!("GPU path: not measured ({e})");
            None
        }
    };
    let mut runs: Vec<(Box<dyn Backend>, usize)> =
        vec![(Box::new(Builtin::new(Preset::Full)), 0), (Box::new(Builtin::new(Preset::Fast)), 1)];
    if let Some(mut g) = gpu {
        g.profile = std::env::var_os("S2R_GPU_PROFILE").is_some();
        let mut fast = GpuBuiltin::new(Preset::Fast)?;
        fast.profile = g.profile;
        fast.layout = g.layout;
        runs.push((Box::new(g), 0));
        runs.push((Box::new(fast), 1));
    }
    for (mut b, preset) in runs {
        let mut outs = Vec::new();
        let mut stages: Vec<(&'static str, f64)> = Vec::new();
        let mut total = 0.0;
        for (i, d) in frames.iter().enumerate() {
            let f = d.frame(&scene);
            let t0 = Instant::now();
            let r = b.restyle(&f, &parsed.look, &Weights::default(), 1)?;
            let dt = t0.elapsed().as_secs_f64();
            if i >= 3 {
                total += dt;
                for (k, (n, ms)) in r.stages.iter().enumerate() {
                    if stages.len() <= k {
                        stages.push((n, 0.0));
                    }
                    stages[k].1 += ms;
                }
            }
            outs.push(r.rgb);
        }
        let n = a.frames as f64;
        println!("\n{} preset: {:.1} frames/s ({:.2} ms per frame)", b.name(), n / total, total * 1e3 / n);
        for (name, ms) in &stages {
            println!("  {name:<20} {:>7.2} ms", ms / n);
        }
        match reference.get(preset) {
            Some(cpu) => {
                let worst = cpu
                    .iter()
                    .zip(&outs)
                    .map(|(a, b)| psnr(&Rgb8 { width: w, height: h, data: a }, &Rgb8 { width: w, height: h, data: b }))
                    .fold(f64::INFINITY, f64::min);
                println!("  against the CPU path: worst frame PSNR {worst:.1} dB");
            }
            None => reference.push(outs.clone()),
        }
        // Flicker: change not explained by the camera's motion, input and output.
        let (mut fin, mut fout, mut cnt) = (0.0, 0.0, 0);
        for i in 4..frames.len() {
            let (cur, prev) = (&frames[i], &frames[i - 1]);
            let (Some(c), Some(p), Some(depth)) =
                (cur.frame(&scene).camera_to_world, prev.frame(&scene).camera_to_world, cur.depth.as_ref())
            else {
                continue;
            };
            let (c, p) = (Pose::from_isometry(&c), Pose::from_isometry(&p));
            fin += stats::reprojection_residual(&prev.rgb, &cur.rgb, depth, &cur.intrinsics, &c, &p, w, h);
            fout += stats::reprojection_residual(&outs[i - 1], &outs[i], depth, &cur.intrinsics, &c, &p, w, h);
            cnt += 1;
        }
        let cnt = cnt.max(1) as f32;
        println!(
            "  flicker (mean |Δluma| after motion compensation): input {:.4}, output {:.4}, added {:+.4}",
            fin / cnt,
            fout / cnt,
            (fout - fin) / cnt
        );
        let pick: Vec<usize> = (3..frames.len()).step_by(8).collect();
        let m = |f: &dyn Fn(usize) -> f32| pick.iter().map(|&i| f(i)).sum::<f32>() / pick.len() as f32;
        println!(
            "  spectral slope: input {:.2}, output {:.2} (natural images ~ -2); local contrast: input {:.4}, output {:.4}",
            m(&|i| stats::spectral_slope(&frames[i].rgb, w, h)),
            m(&|i| stats::spectral_slope(&outs[i], w, h)),
            m(&|i| stats::local_contrast(&frames[i].rgb, w, h)),
            m(&|i| stats::local_contrast(&outs[i], w, h))
        );
    }
    println!("\ntargets: full >= 60 frames/s; fast >= 240 frames/s (8 cameras at 30 Hz)");
    Ok(())
}
