//! The curator's parameters, from a ROS 2 params file (`curator_node:
//! ros__parameters:` or `/**:`) or a plain YAML mapping. The balance targets
//! nest (`balance: {weather: {clear: 0.5, snow: 0.5}}`), which ROS reads as
//! the parameters `balance.weather.clear`, `balance.weather.snow`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::balance::Targets;

/// The curator's parameters. A file names only those it changes (the rest
/// keep `Params::default`'s values); an unknown key is an error.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// The camera whose frames are curated (the others follow its verdicts).
    pub camera: String,
    /// Clip length in seconds; clips are also cut at scene and scenario changes.
    pub clip_seconds: f64,
    /// A clip needs this many good frames.
    pub min_clip_frames: usize,
    /// Scene change: L1 distance between consecutive luma histograms (0..2).
    pub scene_change: f32,
    /// Blur: variance of the Laplacian below this.
    pub blur_min: f32,
    /// Exposure: fraction of clipped (very dark or very bright) pixels above this.
    pub clipped_max: f32,
    /// Broken: luma standard deviation below this (a constant frame).
    pub contrast_min: f32,
    /// Motion: mean absolute luma change per frame (grey levels) below this over a clip.
    pub motion_min: f32,
    /// Labels: transfer boundary recall below this (or the frame flagged).
    pub transfer_min: f32,
    /// Class coverage: distinct detected classes a clip must show.
    pub min_classes: usize,
    /// Near-duplicate frames: pHash distance at most this many bits from a frame a second or more earlier.
    pub near_duplicate_bits: u32,
    /// A clip with more than this fraction of rejected frames is rejected.
    pub max_bad_fraction: f32,
    /// Semantic deduplication: k-means clusters of the clips that passed the
    /// filters (at most one per clip); duplicates are looked for within a cluster.
    pub clusters: usize,
    /// Semantic deduplication: the cosine distance (0..2) under which a clip
    /// duplicates a better one kept.
    pub dedup_eps: f32,
    /// Target share per tag value (weather, time_of_day, scenario, edge_case).
    pub balance: Targets,
    /// Seed of the k-means++ seeding: the same seed and clips, the same clusters.
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            camera: "front".into(),
            clip_seconds: 2.0,
            min_clip_frames: 4,
            scene_change: 0.6,
            blur_min: 100.0,
            clipped_max: 0.7,
            contrast_min: 2.0,
            motion_min: 0.2,
            transfer_min: 0.6,
            min_classes: 1,
            near_duplicate_bits: 3,
            max_bad_fraction: 0.5,
            clusters: 8,
            dedup_eps: 0.0015,
            balance: Targets::new(),
            seed: 0,
        }
    }
}

impl Params {
    /// Reads and checks a params file: a ROS 2 params file with one node's
    /// `ros__parameters`, or a plain mapping. Errors name the file, the line and the key.
    pub fn load(path: &Path) -> Result<Params, ParamsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ParamsError::Read { path: path.into(), source })?;
        Params::parse(&text).map_err(|e| ParamsError::File { path: path.into(), source: Box::new(e) })
    }

    /// Parses a params file's text: serde_yaml_ng's errors carry the line and column.
    fn parse(text: &str) -> Result<Params, ParamsError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Node {
            #[serde(rename = "ros__parameters")]
            ros_parameters: Params,
        }
        let p = if text.contains("ros__parameters") {
            let nodes: std::collections::BTreeMap<String, Node> = serde_yaml_ng::from_str(text)?;
            let mut it = nodes.into_values();
            match (it.next(), it.next()) {
                (Some(n), None) => n.ros_parameters,
                _ => return Err(ParamsError::Nodes),
            }
        } else {
            serde_yaml_ng::from_str(text)?
        };
        p.check()?;
        Ok(p)
    }

    /// Checks the values: `clip_seconds` positive, `max_bad_fraction` within 0..1, at least one cluster.
    pub fn check(&self) -> Result<(), ParamsError> {
        if self.clip_seconds.is_nan() || self.clip_seconds <= 0.0 {
            return Err(ParamsError::ClipSeconds(self.clip_seconds));
        }
        if !(0.0..=1.0).contains(&self.max_bad_fraction) {
            return Err(ParamsError::BadFraction(self.max_bad_fraction));
        }
        if self.clusters == 0 {
            return Err(ParamsError::Clusters);
        }
        Ok(())
    }
}

/// A curator params file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    /// The file cannot be read.
    #[error("{}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A problem in the file named.
    #[error("{}: {source}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong in it.
        source: Box<ParamsError>,
    },
    /// Not YAML, or an unknown or mistyped key (serde_yaml_ng names the line and column).
    #[error(transparent)]
    Yaml(#[from] serde_yaml_ng::Error),
    /// A ROS params file with other than one node.
    #[error("one node's parameters expected (curator_node: ros__parameters: …)")]
    Nodes,
    /// `clip_seconds` not positive.
    #[error("'clip_seconds' must be positive, got {0}")]
    ClipSeconds(f64),
    /// `max_bad_fraction` outside 0..1.
    #[error("'max_bad_fraction' runs from 0 to 1, got {0}")]
    BadFraction(f32),
    /// No clusters.
    #[error("'clusters' must be at least 1")]
    Clusters,
}
