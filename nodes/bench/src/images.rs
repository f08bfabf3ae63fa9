//! `s2r bench images`: compressed camera images (sensor_msgs/CompressedImage as
//! image_transport's `compressed` plugin writes them) at 640×480, on real
//! simulated frames: encode and decode frames per second on 1 and 2 threads
//! for JPEG and PNG, size per frame, and ffmpeg's MJPEG decoder on the same
//! JPEG files in the same run.

use std::process::Command;
use std::time::Instant;

use anyhow::{anyhow, Context as _, Result};
use clap::Args;
use s2r_image::{compress, decompress, Compression};
use s2r_sim::node::resolve_scenario;
use s2r_sim::scenario::Scenario;
use s2r_sim::sim::{Sim, SimOptions};
use sim2real_msgs::sensor_msgs::msg::{CompressedImage, Image};

/// Options of `s2r bench images`.
#[derive(Args, Clone)]
pub struct ImagesBenchArgs {
    /// Distinct simulated frames.
    #[arg(long, default_value_t = 60)]
    frames: usize,
    /// Times each frame is decoded (so a row lasts long enough to time).
    #[arg(long, default_value_t = 10)]
    repeat: usize,
    #[arg(long, default_value = "dry_day_urban")]
    scenario: String,
    /// Leave out the ffmpeg rows.
    #[arg(long)]
    no_ffmpeg: bool,
}

/// Frames per second of `f` applied to every item, split over `threads` threads.
fn rate<T: Sync>(items: &[T], repeat: usize, threads: usize, f: impl Fn(&T) + Sync) -> f64 {
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for part in 0..threads {
            let f = &f;
            s.spawn(move || {
                for _ in 0..repeat {
                    for it in items.iter().skip(part).step_by(threads) {
                        f(it);
                    }
                }
            });
        }
    });
    (items.len() * repeat) as f64 / t0.elapsed().as_secs_f64()
}

/// ffmpeg decoding the JPEGs (an MJPEG stream of them, looped `repeat` times)
/// into RGB, as the node's decoder does: frames per second from its own
/// `-benchmark` real time (start-up excluded).
fn ffmpeg_rate(jpegs: &[CompressedImage], repeat: usize, threads: usize) -> Result<f64> {
    let dir = std::env::temp_dir().join(format!("s2r-bench-images-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("frames.mjpeg");
    let stream: Vec<u8> = jpegs.iter().flat_map(|j| j.data.iter().copied()).collect();
    std::fs::write(&path, stream)?;
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-benchmark", "-threads", &threads.to_string(), "-stream_loop", &(repeat - 1).to_string()])
        .args(["-f", "mjpeg", "-i"])
        .arg(&path)
        .args(["-pix_fmt", "rgb24", "-f", "null", "-"])
        .output()
        .context("ffmpeg (apt install ffmpeg), or --no-ffmpeg")?;
    let _ = std::fs::remove_dir_all(&dir);
    let log = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(anyhow!("ffmpeg failed: {log}"));
    }
    // "bench: utime=1.234s stime=0.012s rtime=1.100s"
    let rtime = log
        .lines()
        .filter_map(|l| l.split("rtime=").nth(1))
        .filter_map(|r| r.trim_end_matches('s').trim().trim_end_matches('s').parse::<f64>().ok())
        .next_back()
        .ok_or_else(|| anyhow!("no rtime in ffmpeg's -benchmark output: {log}"))?;
    Ok((jpegs.len() * repeat) as f64 / rtime)
}

/// Renders the frames and prints the table.
pub(crate) fn run(a: ImagesBenchArgs) -> Result<()> {
    s2r_sim::render::quiet_headless_vulkan();
    let path = resolve_scenario(&a.scenario).map_err(|e| anyhow!(e))?;
    let mut sim = Sim::new(Scenario::load(&path)?, &SimOptions { seed: 1, image_scale: 1.0, render: true })?;
    let mut frames: Vec<Image> = Vec::new();
    while frames.len() < a.frames {
        if let Some(c) = sim.tick()?.cameras.into_iter().next() {
            frames.push(c.image);
        }
    }
    drop(sim);
    let (w, h) = (frames[0].width, frames[0].height);
    let raw_kb = frames[0].data.len() as f64 / 1024.0;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "compressed image benchmark: {} frames of {w}x{h} rgb8 from {} ({raw_kb:.0} KB raw), each decoded {} times; {cores} CPU cores",
        a.frames, a.scenario, a.repeat
    );
    println!(
        "{:<22} {:<18} {:>8} {:>7} {:>16} {:>16} {:>16}",
        "codec", "decoder", "KB/frame", "ratio", "encode 1 thr/s", "decode 1 thr/s", "decode 2 thr/s"
    );
    let topic = "/bench/image_raw";
    let mut jpeg95 = Vec::new();
    for how in [Compression::Jpeg { quality: 95 }, Compression::Jpeg { quality: 80 }, Compression::Png] {
        let t0 = Instant::now();
        let coded: Vec<CompressedImage> = frames.iter().map(|f| compress(f, topic, how)).collect::<Result<_, _>>()?;
        let encode = frames.len() as f64 / t0.elapsed().as_secs_f64();
        for c in &coded {
            let back = decompress(c, topic)?;
            if (back.width, back.height) != (w, h) {
                return Err(anyhow!("{how:?}: decoded {}x{}", back.width, back.height));
            }
        }
        let kb = coded.iter().map(|c| c.data.len()).sum::<usize>() as f64 / coded.len() as f64 / 1024.0;
        let d1 = rate(&coded, a.repeat, 1, |c| {
            decompress(c, topic).expect("decodes");
        });
        let d2 = rate(&coded, a.repeat, 2, |c| {
            decompress(c, topic).expect("decodes");
        });
        let name = match how {
            Compression::Jpeg { quality } => format!("JPEG quality {quality}"),
            Compression::Png => "PNG (fast)".to_string(),
        };
        println!("{name:<22} {:<18} {kb:>8.1} {:>7.1} {encode:>16.0} {d1:>16.0} {d2:>16.0}", "s2r_image", raw_kb / kb);
        if how == (Compression::Jpeg { quality: 95 }) {
            jpeg95 = coded;
        }
    }
    if !a.no_ffmpeg {
        let f1 = ffmpeg_rate(&jpeg95, a.repeat, 1)?;
        let f2 = ffmpeg_rate(&jpeg95, a.repeat, 2)?;
        println!("{:<22} {:<18} {:>8} {:>7} {:>16} {f1:>16.0} {f2:>16.0}", "JPEG quality 95", "ffmpeg mjpeg", "", "", "");
    }
    println!("(decode: CompressedImage → sensor_msgs/Image rgb8, as a subscriber gets it; ffmpeg: the same JPEGs to rgb24, its -benchmark real time)");
    println!("target: JPEG decode of 640x480 at >= 300 frames/s on 2 cores");
    Ok(())
}
