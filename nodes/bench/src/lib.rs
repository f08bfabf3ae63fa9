//! sim2real's benchmarks, run as `s2r bench …`: each prints its figures and,
//! where a peer exists, the peer's on the same payload in the same run
//! (Cyclone DDS's `ddsperf`, the Python `mcap` writer, ffmpeg). Tests never assert
//! timings; these report them.
//!
//! The benchmarks that need a second process (`transport`, `bag`, `sim`)
//! start this process's own executable again with the hidden subcommands
//! `s2r bench transport-peer` and `s2r bench sim-sink`, so they run from the
//! `s2r` executable.

#![warn(missing_docs)]

mod bag;
mod curator;
mod deploy;
mod generate;
mod images;
mod models;
mod perception;
mod policy;
mod reason;
mod sim;
mod tokenizer;
mod transfer;
mod transport;
mod world;

use anyhow::{anyhow, Context as _, Result};
use clap::Subcommand;

pub use bag::BagBenchArgs;
pub use curator::CuratorBenchArgs;
pub use deploy::DeployBenchArgs;
pub use generate::GenerateBenchArgs;
pub use images::ImagesBenchArgs;
pub use models::ModelsBenchArgs;
pub use perception::PerceptionBenchArgs;
pub use sim::{SimBenchArgs, SinkArgs};
pub use tokenizer::TokenizerBenchArgs;
pub use transfer::TransferBenchArgs;
pub use transport::{PeerArgs, TransportArgs};

/// The benchmarks, as the subcommands of `s2r bench`.
#[derive(Subcommand)]
pub enum BenchCmd {
    /// Image transport: rate, loss, latency and CPU, beside ddsperf.
    Transport(TransportArgs),
    /// The subscribing process of `transport` (started by it).
    #[command(hide = true)]
    TransportPeer(PeerArgs),
    /// Bag writing (none, lz4, zstd) beside the Python mcap writer, and playback at --rate 100.
    Bag(BagBenchArgs),
    /// Lockstep simulation speed for 1 and 8 cameras at 640x480, and where the time goes.
    Sim(SimBenchArgs),
    /// The subscribing process of `sim` (started by it).
    #[command(hide = true)]
    SimSink(SinkArgs),
    /// Restyling speed (full and fast presets), cost per stage, flicker and image statistics.
    Transfer(TransferBenchArgs),
    /// Curation speed (filters, hashing, embedding) and memory over a long stream.
    Curator(CuratorBenchArgs),
    /// Tokenizer encode and decode frames per second at 256x256.
    Tokenizer(TokenizerBenchArgs),
    /// Compressed images (JPEG, PNG) at 640x480: encode and decode rates, sizes, beside ffmpeg's decoder.
    Images(ImagesBenchArgs),
    /// The data factory: labelled restyled frames per second for 1 camera and the 8-camera rig.
    Generate(GenerateBenchArgs),
    /// perception_node's step (frames/s, p50/p99 latency, memory) and training images/s.
    Perception(PerceptionBenchArgs),
    /// policy_node's step (p50/p99 latency), training examples/s, closed-loop episodes per minute.
    Policy(policy::PolicyBenchArgs),
    /// reason_node's step (p50/p99 latency) and the braking trials per second.
    Reason(reason::ReasonBenchArgs),
    /// The world model: one latent frame predicted (p50/p99), its decode, training steps/s.
    World(world::WorldBenchArgs),
    /// Every model's network on one device (cpu, cuda): inference p50/p99, training steps/s, GPU outputs against the CPU's.
    Models(ModelsBenchArgs),
    /// The deployed stack (launch/robot.launch.yaml) fed at 10 Hz: camera frame to command latency p50/p99.
    Deploy(DeployBenchArgs),
}

/// Runs one benchmark, printing its figures on stdout. Call it inside a
/// multi-threaded tokio runtime: the CPU-bound benchmarks block in place.
pub async fn run(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Transport(a) => transport::transport(a).await,
        BenchCmd::TransportPeer(a) => transport::peer(a).await,
        BenchCmd::Bag(a) => bag::run(a).await,
        BenchCmd::Sim(a) => sim::run(a).await,
        BenchCmd::SimSink(a) => sim::sink(a).await,
        BenchCmd::Transfer(a) => tokio::task::block_in_place(|| transfer::run(a)),
        BenchCmd::Curator(a) => tokio::task::block_in_place(|| curator::run(a)),
        BenchCmd::Tokenizer(a) => tokio::task::block_in_place(|| tokenizer::run(a)),
        BenchCmd::Images(a) => tokio::task::block_in_place(|| images::run(a)),
        BenchCmd::Generate(a) => tokio::task::block_in_place(|| generate::run(a)),
        BenchCmd::Perception(a) => tokio::task::block_in_place(|| perception::run(a)),
        BenchCmd::Policy(a) => tokio::task::block_in_place(|| policy::run(a)),
        BenchCmd::Reason(a) => tokio::task::block_in_place(|| reason::run(a)),
        BenchCmd::World(a) => tokio::task::block_in_place(|| world::run(a)),
        BenchCmd::Models(a) => tokio::task::block_in_place(|| models::run(a)),
        BenchCmd::Deploy(a) => deploy::run(a).await,
    }
}

/// `WIDTHxHEIGHT` as numbers.
pub(crate) fn parse_size(s: &str) -> Result<(u32, u32)> {
    let (w, h) = s.split_once('x').ok_or_else(|| anyhow!("size '{s}' is not WIDTHxHEIGHT"))?;
    Ok((w.parse().context(format!("width of '{s}'"))?, h.parse().context(format!("height of '{s}'"))?))
}

/// The value at fraction `p` (0–1) of sorted values; NaN for none.
/// Milliseconds each of `n` calls of `f` took, sorted.
pub(crate) fn timed(n: usize, f: &dyn Fn() -> Result<()>) -> Result<Vec<f64>> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = std::time::Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in MB; NaN where unreadable.
pub(crate) fn status_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}
