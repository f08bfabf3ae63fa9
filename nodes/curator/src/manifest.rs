//! `manifest.yaml` of a curated dataset: per source bag what it gave, the
//! balance achieved, and per clip its time range, tags, scores and verdict.
//! Written and read with serde, so that the training commands of later
//! stages read the same types the curator writes.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::clips::Curated;
use crate::offline::Source;
use crate::params::Params;
use crate::CuratorError;

/// The embedding the semantic deduplication used.
pub(crate) const EMBEDDING: &str = "builtin:colour-grid+orientation";

/// A curated dataset's manifest, `manifest.yaml` in the dataset folder: read
/// it with `serde_yaml_ng::from_str` on the file's text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The embedding semantic deduplication compared clips with.
    pub embedding: String,
    /// The bags curated.
    pub sources: Vec<SourceEntry>,
    /// Clips cut from them.
    pub clips_total: usize,
    /// Clips kept.
    pub clips_accepted: usize,
    /// The camera curated.
    pub camera: String,
    /// The longest a clip runs, in seconds (clips are also cut at scene, tag and source changes).
    pub clip_seconds: f64,
    /// The shares balanced on, before and after.
    pub balance: Vec<BalanceEntry>,
    /// Every clip, kept or not.
    pub clips: Vec<ClipEntry>,
}

/// One source bag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceEntry {
    /// Its path.
    pub bag: String,
    /// The image topic curated.
    pub image_topic: String,
    /// Frames read from it.
    pub frames: usize,
    /// Damage found in it (what was readable was curated).
    pub damage: Vec<String>,
}

/// A balance target and what curation achieved; shares are fractions (0..1) of clips.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BalanceEntry {
    /// The tag.
    pub key: String,
    /// Its value.
    pub value: String,
    /// The share asked for.
    pub target: f64,
    /// The share among clips that passed the filters and deduplication.
    pub before: f64,
    /// The share among clips kept.
    pub after: f64,
}

/// One clip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClipEntry {
    /// Its id (the folder of its bag under `clips/`).
    pub id: String,
    /// The source it was cut from.
    pub source: String,
    /// Stamp of its first frame (ns).
    pub start_ns: i64,
    /// Stamp of its last frame (ns).
    pub end_ns: i64,
    /// Frames in it.
    pub frames: usize,
    /// Frames no filter rejected.
    pub good_frames: usize,
    /// Its tags, which balance targets name (scenario, weather, time_of_day, edge_case, seed, prompt).
    pub tags: BTreeMap<String, String>,
    /// Its quality figures.
    pub scores: Scores,
    /// `accepted` or `rejected`.
    pub verdict: String,
    /// Why it was rejected (`Reason::code`s); empty when accepted.
    pub reasons: Vec<String>,
    /// The clip it duplicates, when rejected as a duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    /// Its bag, relative to the dataset folder, when accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bag: Option<String>,
    /// The frames rejected inside it.
    pub rejected_frames: Vec<RejectedFrame>,
}

/// A clip's quality figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Mean sharpness (variance of the Laplacian) of its good frames.
    pub sharpness: f32,
    /// Mean motion: mean absolute luma change per frame, grey levels (0..255).
    pub motion: f32,
    /// Mean transfer boundary recall (0..1) of its good frames; `null` when
    /// they did not come through a transfer node.
    pub transfer_recall: Option<f32>,
    /// Classes seen in it.
    pub classes: Vec<String>,
}

/// A frame a filter rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RejectedFrame {
    /// Its stamp (ns).
    pub stamp_ns: i64,
    /// Why (`Reason::code`s).
    pub reasons: Vec<String>,
}

impl Manifest {
    /// The manifest of a curation.
    pub(crate) fn of(c: &Curated, sources: &[Source], p: &Params) -> Manifest {
        let codes = |r: &[crate::clips::Reason]| r.iter().map(|r| r.code().to_string()).collect();
        Manifest {
            embedding: EMBEDDING.into(),
            sources: sources
                .iter()
                .map(|s| SourceEntry {
                    bag: s.bag.display().to_string(),
                    image_topic: s.image_topic.clone(),
                    frames: s.frames,
                    damage: s.damage.clone(),
                })
                .collect(),
            clips_total: c.clips.len(),
            clips_accepted: c.clips.iter().filter(|c| c.accepted).count(),
            camera: p.camera.clone(),
            clip_seconds: p.clip_seconds,
            balance: c
                .balance
                .iter()
                .map(|a| BalanceEntry { key: a.key.clone(), value: a.value.clone(), target: a.target, before: a.before, after: a.after })
                .collect(),
            clips: c
                .clips
                .iter()
                .map(|clip| ClipEntry {
                    id: clip.id.clone(),
                    source: clip.source.clone(),
                    start_ns: clip.start_ns,
                    end_ns: clip.end_ns,
                    frames: clip.frames.len(),
                    good_frames: clip.good_frames(),
                    tags: clip.tags.clone(),
                    scores: Scores {
                        sharpness: clip.sharpness,
                        motion: clip.motion,
                        transfer_recall: clip.transfer,
                        classes: clip.classes.clone(),
                    },
                    verdict: if clip.accepted { "accepted" } else { "rejected" }.into(),
                    reasons: codes(&clip.reasons),
                    duplicate_of: clip.duplicate_of.clone(),
                    bag: clip.accepted.then(|| format!("clips/{}", clip.id)),
                    rejected_frames: clip
                        .frames
                        .iter()
                        .filter(|f| !f.reasons.is_empty())
                        .map(|f| RejectedFrame { stamp_ns: f.stamp_ns, reasons: codes(&f.reasons) })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The YAML text, after a comment line naming what wrote it.
    pub(crate) fn to_yaml(&self) -> String {
        let body = serde_yaml_ng::to_string(self).expect("a manifest is plain data");
        format!("# sim2real curated dataset (s2r curate / curator_node)\n{body}")
    }

    /// Reads the `manifest.yaml` of the dataset folder `dir`.
    pub fn read(dir: &Path) -> Result<Manifest, CuratorError> {
        let path = dir.join("manifest.yaml");
        let text = std::fs::read_to_string(&path).map_err(|source| CuratorError::Write { path: path.clone(), source })?;
        serde_yaml_ng::from_str(&text).map_err(|e| CuratorError::Manifest { path, reason: e.to_string() })
    }

    /// Writes `manifest.yaml` into the dataset folder `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), CuratorError> {
        let path = dir.join("manifest.yaml");
        std::fs::write(&path, self.to_yaml()).map_err(|source| CuratorError::Write { path, source })
    }
}
