//! `s2r generate SWEEP -o DIR [--shard i/N|auto]` and
//! `s2r dataset info | split | merge`: thin drivers of s2r-generate.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use s2r_generate::{dataset, Shard, Sweep};

#[derive(Args)]
pub struct GenerateArgs {
    /// The sweep file (see config/sweeps/example.yaml).
    sweep: PathBuf,
    /// The dataset folder (created; an interrupted run's folder is resumed).
    #[arg(short, long)]
    output: PathBuf,
    /// Run one shard of the sweep: i/N, or auto (the index from
    /// JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID) with /N or SLURM_ARRAY_TASK_COUNT.
    #[arg(long, default_value = "0/1")]
    shard: String,
    /// No progress bar (logs only).
    #[arg(long)]
    no_progress: bool,
}

#[derive(Subcommand)]
pub enum DatasetCmd {
    /// Clips, frames, hours and the distribution of tags of a generated dataset.
    Info {
        /// The dataset folder.
        dir: PathBuf,
    },
    /// Split a dataset by seed (no seed in two splits) into splits.yaml.
    Split {
        /// The dataset folder.
        dir: PathBuf,
        /// Fraction of the seeds held out for validation.
        #[arg(long, default_value_t = 0.1)]
        val: f64,
        /// Fraction of the seeds held out for testing.
        #[arg(long, default_value_t = 0.1)]
        test: f64,
    },
    /// Join the shard folders of one sweep into one dataset (curated together).
    Merge {
        /// The shard folders.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// The merged dataset folder (new).
        #[arg(short, long)]
        output: PathBuf,
    },
}

pub fn generate(a: GenerateArgs) -> Result<()> {
    let shard = Shard::parse(&a.shard, &|k| std::env::var(k).ok())?;
    let (sweep, _) = Sweep::load(&a.sweep)?;
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("start tokio")?;
    let flag = stop.clone();
    let _watch = std::thread::spawn(move || {
        rt.block_on(s2r_runtime::shutdown::signal());
        eprintln!("stopping: the episode in progress is dropped, the finished ones are curated (run the same command again to continue)");
        flag.store(true, Ordering::Relaxed);
    });
    let s = s2r_generate::generate(&sweep, shard, &a.output, &stop, !a.no_progress, &mut |m| eprintln!("{m}"))?;
    let c = s.dataset.counts;
    println!(
        "{}: {} of {} episode(s) ({} run now), {} frames; {} clips, {} accepted ({} frames); wrote {}",
        sweep.name,
        c.episodes,
        c.episodes_planned,
        s.ran,
        c.frames,
        c.clips,
        c.clips_accepted,
        c.frames_accepted,
        a.output.display()
    );
    if s.interrupted {
        anyhow::bail!(
            "interrupted: {} of {} episodes finished and curated; run the same command to continue",
            c.episodes,
            c.episodes_planned
        );
    }
    Ok(())
}

pub fn dataset(cmd: DatasetCmd) -> Result<()> {
    match cmd {
        DatasetCmd::Info { dir } => {
            let i = dataset::info(&dir)?;
            let c = i.dataset.counts;
            println!("{} ({})", i.dataset.sweep.name, i.dataset.software);
            println!("episodes: {} of {}; frames: {}", c.episodes, c.episodes_planned, c.frames);
            println!(
                "clips: {} accepted of {}; {} frames, {:.3} hours of camera time",
                c.clips_accepted, c.clips, c.frames_accepted, i.hours
            );
            for (k, values) in &i.tags {
                let total: usize = values.values().sum();
                let parts: Vec<String> =
                    values.iter().map(|(v, n)| format!("{v} {n} ({:.0}%)", 100.0 * *n as f64 / total.max(1) as f64)).collect();
                println!("  {k}: {}", parts.join(", "));
            }
        }
        DatasetCmd::Split { dir, val, test } => {
            let s = dataset::split(&dir, val, test)?;
            for (name, sp) in [("train", &s.train), ("val", &s.val), ("test", &s.test)] {
                println!("{name}: {} seed(s) {:?}, {} clip(s)", sp.seeds.len(), sp.seeds, sp.clips.len());
            }
            println!("wrote {}", dir.join("splits.yaml").display());
        }
        DatasetCmd::Merge { shards, output } => {
            let dirs: Vec<&std::path::Path> = shards.iter().map(|p| p.as_path()).collect();
            let d = s2r_generate::merge(&dirs, &output, &mut |m| eprintln!("{m}"))?;
            let c = d.counts;
            println!(
                "{}: {} of {} episode(s), {} clips, {} accepted; wrote {}",
                d.sweep.name,
                c.episodes,
                c.episodes_planned,
                c.clips,
                c.clips_accepted,
                output.display()
            );
        }
    }
    Ok(())
}
