//! `s2r bench generate`: labelled, restyled frames per second through the
//! data factory's episode loop (simulate, render, label, restyle, score,
//! write the bag), for one 640×480 camera and for the 8-camera rig, with
//! where the time goes; then the curation of what was made.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use s2r_curator::params::Params;
use s2r_generate::episode::run_episode;
use s2r_generate::sweep::{Looks, Output, Randomize, Seeds, Sweep};

/// Options of `s2r bench generate`.
#[derive(Args, Clone)]
pub struct GenerateBenchArgs {
    /// Sim seconds per row (the cameras run at 10 Hz).
    #[arg(long, default_value_t = 6.0)]
    seconds: f64,
    /// Transfer preset: fast or full.
    #[arg(long, default_value = "fast")]
    preset: String,
    /// Leave out the 8-camera row.
    #[arg(long)]
    one_camera: bool,
    /// Where the transfer runs: auto, cpu or gpu (gpu: on the simulator's
    /// device, reading its render targets in place).
    #[arg(long, default_value = "auto")]
    transfer_device: String,
}

fn sweep(scenario: &str, cameras: Vec<String>, a: &GenerateBenchArgs) -> Sweep {
    Sweep {
        name: "bench".into(),
        scenarios: vec![scenario.into()],
        seeds: Seeds::List(vec![1]),
        looks: Looks { prompts: vec!["icy road, night, wet reflections, headlight glare, light snowfall".into()], ..Default::default() },
        duration: a.seconds,
        cameras,
        image_scale: 1.0,
        preset: a.preset.clone(),
        transfer_device: a.transfer_device.clone(),
        driver: Default::default(),
        randomize: Randomize::default(),
        friction_from_look: false,
        keep: vec![Output::Flat, Output::Restyled, Output::Depth, Output::Segmentation, Output::Instances, Output::Boxes, Output::Odometry],
        curation: Params::default(),
        split: None,
    }
}

/// Runs the rows and prints the table.
pub(crate) fn run(a: GenerateBenchArgs) -> Result<()> {
    s2r_sim::render::quiet_headless_vulkan();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let tmp = std::env::temp_dir().join(format!("s2r-bench-generate-{}", std::process::id()));
    println!(
        "generate benchmark: one episode per row, {} sim s, 640x480, {} preset, everything kept (flat, restyled, depth, segmentation, instances, boxes, odometry), zstd bag; {cores} CPU cores",
        a.seconds, a.preset
    );
    println!(
        "{:<28} {:>7} {:>10} {:>18} {:>9} {:>9} {:>9} {:>10}",
        "rig", "frames", "frames/s", "frames/s per core", "sim ms", "xfer ms", "write ms", "MB/frame"
    );
    let mut rows = vec![("dry_day_urban", vec!["front".to_string()], "1 camera (dry_day_urban)")];
    if !a.one_camera {
        rows.push(("dry_day_urban", Vec::new(), "8 cameras (surround rig)"));
    }
    let stop = AtomicBool::new(false);
    for (scenario, cameras, label) in rows {
        let sw = sweep(scenario, cameras, &a);
        let ep = &sw.episodes()[0];
        let dir = tmp.join(&ep.name);
        let _ = std::fs::remove_dir_all(&dir);
        let t0 = Instant::now();
        let s = run_episode(ep, &sw, &dir, &stop, &mut || {})?;
        let secs = t0.elapsed().as_secs_f64();
        let n = s.frames.max(1) as f64;
        let bytes: u64 = std::fs::read_dir(&dir)?.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum();
        let rate = s.frames as f64 / secs;
        println!(
            "{label:<28} {:>7} {rate:>10.1} {:>18.1} {:>9.2} {:>9.2} {:>9.2} {:>10.2}",
            s.frames,
            rate / cores as f64,
            s.sim.as_secs_f64() * 1e3 / n,
            s.transfer.as_secs_f64() * 1e3 / n,
            s.write.as_secs_f64() * 1e3 / n,
            bytes as f64 / 1e6 / n
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
    println!("(per frame: sim = simulate + render + labels, xfer = restyle + score, write = serialise + zstd; a frame is one camera's image with its labels)");
    println!("target: >= 60 labelled restyled frames/s for one camera on 2 cores");
    Ok(())
}
