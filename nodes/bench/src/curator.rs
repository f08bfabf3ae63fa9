//! `s2r bench curator`: frames per second through the curator's filters,
//! hashing and embedding at 640×480 (real simulated frames, cycled), and the
//! memory a long stream needs (peak resident set against frames curated).

use std::time::Instant;

use anyhow::{anyhow, Result};
use clap::Args;
use s2r_curator::clips::{Curator, FrameIn};
use s2r_curator::embed::Builtin;
use s2r_curator::params::Params;
use s2r_sim::node::resolve_scenario;
use s2r_sim::scenario::Scenario;
use s2r_sim::sim::{Sim, SimOptions};

use crate::status_mb;

/// Options of `s2r bench curator`.
#[derive(Args, Clone)]
pub struct CuratorBenchArgs {
    /// Frames pushed through the curator (the memory figure wants 100000).
    #[arg(long, default_value_t = 3000)]
    frames: usize,
    /// Distinct simulated frames, cycled (each shifted so none repeats exactly).
    #[arg(long, default_value_t = 300)]
    distinct: usize,
    #[arg(long, default_value = "dry_day_urban")]
    scenario: String,
}

fn rss_mb() -> f64 {
    status_mb("VmRSS:")
}

/// Simulates the distinct frames, pushes the stream through a curator and
/// prints its speed and memory as the stream goes.
pub(crate) fn run(a: CuratorBenchArgs) -> Result<()> {
    s2r_sim::render::quiet_headless_vulkan();
    let path = resolve_scenario(&a.scenario).map_err(|e| anyhow!(e))?;
    let mut sim = Sim::new(Scenario::load(&path)?, &SimOptions { seed: 1, image_scale: 1.0, render: true })?;
    let mut frames = Vec::new();
    while frames.len() < a.distinct {
        if let Some(c) = sim.tick()?.cameras.into_iter().next() {
            frames.push((c.image.width as usize, c.image.height as usize, c.image.data.to_vec()));
        }
    }
    drop(sim);
    let (w, h) = (frames[0].0, frames[0].1);
    let tags = s2r_curator::offline::tags(None, None);
    let mut cur = Curator::new(Params { min_classes: 0, ..Params::default() }, Box::new(Builtin));
    let base = rss_mb();
    println!("curator benchmark: {} frames of {w}x{h} ({} distinct from {}, cycled), 1 thread", a.frames, a.distinct, a.scenario);
    let t0 = Instant::now();
    let mut in_curator = 0.0f64;
    let mut first_cycle = 0.0f64;
    let mut checkpoints = Vec::new();
    for i in 0..a.frames {
        let (_, _, rgb) = &frames[i % frames.len()];
        // Later cycles shift the frames sideways (the curator rightly finds
        // most of them near-duplicates of the first cycle: that is measured too).
        let c = i / frames.len();
        let k = c * 53 % w;
        let mut shifted = vec![0u8; rgb.len()];
        for (dst, src) in shifted.chunks_exact_mut(w * 3).zip(rgb.chunks_exact(w * 3)) {
            dst[..(w - k) * 3].copy_from_slice(&src[k * 3..]);
            dst[(w - k) * 3..].copy_from_slice(&src[..k * 3]);
        }
        let rgb = shifted;
        let f = FrameIn {
            stamp_ns: i as i64 * 100_000_000,
            width: w,
            height: h,
            rgb,
            boxes: Vec::new(),
            transfer: None,
            tags: tags.clone(),
            source: "bench".into(),
        };
        let tp = Instant::now();
        cur.push(f);
        in_curator += tp.elapsed().as_secs_f64();
        if i + 1 == frames.len() {
            first_cycle = in_curator;
        }
        if (i + 1) % (a.frames / 5).max(1) == 0 {
            checkpoints.push((i + 1, t0.elapsed().as_secs_f64(), rss_mb()));
        }
    }
    let dt = in_curator;
    let t1 = Instant::now();
    let done = cur.finish().map_err(|e| anyhow!(e))?;
    let fin = t1.elapsed().as_secs_f64();
    let n1 = frames.len().min(a.frames) as f64;
    println!(
        "distinct frames (every stage, embedding included): {:.0} frames/s ({:.2} ms per frame)",
        n1 / first_cycle,
        first_cycle * 1e3 / n1
    );
    println!("the whole stream: {:.0} frames/s ({:.2} ms per frame)", a.frames as f64 / dt, dt * 1e3 / a.frames as f64);
    println!("deduplication + balance over {} clips: {:.2} s", done.clips.len(), fin);
    let mut reasons = std::collections::BTreeMap::new();
    for c in &done.clips {
        for f in &c.frames {
            for r in &f.reasons {
                *reasons.entry(r.code()).or_insert(0usize) += 1;
            }
        }
    }
    println!("frames rejected: {reasons:?} (the rest embedded)");
    println!("memory (resident, MB) as the stream goes: start {base:.0}");
    for (n, t, r) in checkpoints {
        println!("  after {n:>7} frames ({t:>6.1} s): {r:.0} MB ({:+.0})", r - base);
    }
    println!("peak {:.0} MB; target: at least 500 frames/s, memory bounded", status_mb("VmHWM:"));
    Ok(())
}
