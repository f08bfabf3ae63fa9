//! `s2r bench perception`: perception_node's whole step per frame (colour
//! conversion → network → detections, depth, segmentation and overlay
//! messages) at a camera resolution, as frames/s and p50/p99 latency, with
//! the process's peak memory; and training throughput (images/s of
//! forward, backward and optimiser step) at the training crop. candle on
//! this machine's CPU cores.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use candle_core::Device;
use clap::Args;
use s2r_perception::checkpoint::{self, Trainable};
use s2r_perception::model::{Config, Net};
use s2r_perception::node::detections_msg;
use s2r_perception::overlay::{draw_detections, Canvas};
use s2r_perception::predict::{FrameRef, Predictor};
use sim2real_msgs::std_msgs::msg::Header;

use crate::{percentile, status_mb};

/// Options of `s2r bench perception`.
#[derive(Args, Clone)]
pub struct PerceptionBenchArgs {
    /// A checkpoint (default: the shipped one, else an untrained network of
    /// the default shape: speed does not depend on the weights).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Camera frame size, WIDTHxHEIGHT.
    #[arg(long, default_value = "640x480")]
    size: String,
    /// Seconds each inference measurement runs (after warm-up).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Training steps to time (batch 8 at 256x192 crops; 0 to skip).
    #[arg(long, default_value_t = 10)]
    train_steps: usize,
}

/// A frame with edges, gradients and a few box-like shapes, as a camera's bgr8 bytes.
fn frame(w: usize, h: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let block = ((x / 40 + y / 30) % 2) as u8 * 60;
            v.extend([block + (x * 120 / w) as u8, block + (y * 120 / h) as u8, 90]);
        }
    }
    v
}

/// Measures and prints a table.
pub(crate) fn run(a: PerceptionBenchArgs) -> Result<()> {
    s2r_runtime::tune_allocator();
    let (w, h) = crate::parse_size(&a.size)?;
    let (w, h) = (w as usize, h as usize);
    let path = a.checkpoint.clone().or_else(s2r_perception::node::shipped_checkpoint);
    let (net, what): (Net, String) = match &path {
        Some(p) => (checkpoint::read(p)?.net(&Device::Cpu)?, p.display().to_string()),
        None => {
            let cfg = Config::small((0..6).map(|i| format!("class{i}")).collect(), (0..19).map(|i| format!("seg{i}")).collect());
            (Trainable::new(cfg, &Device::Cpu)?.net.fold()?, "an untrained network of the default shape".into())
        }
    };
    let cfg = net.cfg.clone();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("perception benchmark: {w}x{h} bgr8 frames, {what} ({}x{} input), candle CPU, {threads} cores", cfg.width, cfg.height);
    let pred = Predictor { net, device: Device::Cpu, threshold: 0.3, max_detections: 100, mirror: false };
    let bgr = frame(w, h);
    let header = Header::default();
    println!("| outputs | frames/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    for (name, dense, overlay) in [("detections", false, false), ("detections + depth + segmentation + overlay", true, true)] {
        let step = || -> Result<()> {
            let rgb: Vec<u8> = bgr.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
            let p = pred.predict(&[FrameRef { rgb: &rgb, w, h, fx: Some(w as f32 * 0.78) }], dense)?.remove(0);
            let msg = detections_msg(&header, &p, &cfg.det_classes);
            std::hint::black_box(&msg);
            if dense {
                let depth: Vec<u8> = p.depth.iter().flat_map(|d| d.to_le_bytes()).collect();
                std::hint::black_box((&depth, &p.seg));
            }
            if overlay {
                let mut c = rgb.clone();
                let boxes: Vec<_> =
                    p.detections.iter().map(|d| (d.class, cfg.det_classes[d.class].as_str(), Some(d.score), d.bbox)).collect();
                draw_detections(&mut Canvas { rgb: &mut c, w, h }, &boxes);
                std::hint::black_box(&c);
            }
            Ok(())
        };
        for _ in 0..3 {
            step()?;
        }
        let mut ms = Vec::new();
        let t0 = Instant::now();
        while t0.elapsed().as_secs_f64() < a.seconds {
            let t = Instant::now();
            step()?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let fps = ms.len() as f64 / t0.elapsed().as_secs_f64();
        ms.sort_by(f64::total_cmp);
        println!("| {name} | {fps:.1} | {:.1} | {:.1} |", percentile(&ms, 0.5), percentile(&ms, 0.99));
    }
    if a.train_steps > 0 {
        use crate::models::Bench as _;
        let rate = crate::models::Perception::of(cfg.clone(), &Device::Cpu)?.train_rate(a.train_steps, &Device::Cpu)?;
        let ips = 8.0 * rate;
        println!("training: {ips:.1} images/s (batch 8, 256x192 crops, forward + backward + AdamW; the network only, not data loading)");
    }
    println!("peak memory: {:.0} MB", status_mb("VmHWM:"));
    Ok(())
}
