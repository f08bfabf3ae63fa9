//! `s2r curate IN_BAGS… -o DATASET`: clips, filters, deduplication and
//! balance over recorded bags, into a dataset folder with a manifest and a report.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use clap::Args;
use s2r_curator::params::Params;

#[derive(Args)]
pub struct CurateArgs {
    /// Bags recorded from the pipeline (sim_node, transfer_node), folders or .mcap files.
    #[arg(required = true)]
    bags: Vec<PathBuf>,
    /// The dataset folder to create (a bag per accepted clip, manifest.yaml, report.html).
    #[arg(short, long)]
    output: PathBuf,
    /// A params file (ROS 2 format, `curator_node: ros__parameters: …`, or a plain mapping).
    #[arg(long)]
    params: Option<PathBuf>,
    /// The camera to curate (overrides the params file).
    #[arg(long)]
    camera: Option<String>,
}

pub fn run(a: CurateArgs) -> Result<()> {
    let mut params = match &a.params {
        Some(p) => Params::load(p).map_err(|e| anyhow!(e))?,
        None => Params::default(),
    };
    if let Some(c) = a.camera {
        params.camera = c;
    }
    let (curated, sources) =
        s2r_curator::offline::curate(&a.bags, &a.output, &params, &mut |m| eprintln!("{m}")).map_err(|e| anyhow!(e))?;
    let frames: usize = sources.iter().map(|s| s.frames).sum();
    let accepted = curated.clips.iter().filter(|c| c.accepted).count();
    println!("{frames} frames in {} clips: {accepted} accepted, {} rejected", curated.clips.len(), curated.clips.len() - accepted);
    let mut reasons = std::collections::BTreeMap::new();
    for c in &curated.clips {
        for r in &c.reasons {
            *reasons.entry(r.code()).or_insert(0) += 1;
        }
    }
    for (r, n) in reasons {
        println!("  {r}: {n} clip(s)");
    }
    for b in &curated.balance {
        println!(
            "  balance {}={}: target {:.0}%, before {:.0}%, after {:.0}%",
            b.key,
            b.value,
            b.target * 100.0,
            b.before * 100.0,
            b.after * 100.0
        );
    }
    println!("wrote {} (manifest.yaml, report.html, clips/)", a.output.display());
    Ok(())
}
