//! A generated dataset folder: `dataset.yaml` (the sweep, the software, the
//! episodes and counts), `episodes/<name>/` (one bag per episode, everything
//! the sweep keeps), and the curation of those episodes (`clips/<id>/`,
//! `manifest.yaml`, `report.html`). `s2r dataset info | split | merge`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use s2r_curator::Manifest;
use serde::{Deserialize, Serialize};

use crate::rng::SplitMix;
use crate::sweep::Sweep;
use crate::GenerateError;

/// `dataset.yaml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetFile {
    /// What wrote it (`sim2real <version>`).
    pub software: String,
    /// The sweep, as parsed.
    pub sweep: Sweep,
    /// The shard this folder holds (`index`/`count`); absent for a whole sweep or a merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardEntry>,
    /// Episodes finished, in the sweep's order.
    pub episodes: Vec<EpisodeEntry>,
    /// Totals.
    pub counts: Counts,
}

/// Which shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// 0-based.
    pub index: usize,
    /// Shards in all.
    pub count: usize,
}

/// A finished episode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeEntry {
    /// Its bag's folder under `episodes/`, and its clips' `source`.
    pub name: String,
    /// The scenario as the sweep names it.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Which look of the (scenario, seed).
    pub look: usize,
    /// The transfer prompt.
    pub prompt: String,
    /// Camera frames.
    pub frames: u64,
    /// Frames the transfer stage flagged.
    pub flagged: u64,
}

/// Totals of a dataset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Episodes the sweep (or shard) plans.
    pub episodes_planned: usize,
    /// Episodes finished.
    pub episodes: usize,
    /// Camera frames in the episodes.
    pub frames: u64,
    /// Clips cut.
    pub clips: usize,
    /// Clips accepted.
    pub clips_accepted: usize,
    /// Frames in accepted clips.
    pub frames_accepted: usize,
}

impl DatasetFile {
    /// Reads `dir/dataset.yaml`.
    pub fn read(dir: &Path) -> Result<DatasetFile, GenerateError> {
        let path = dir.join("dataset.yaml");
        let text = std::fs::read_to_string(&path).map_err(|source| GenerateError::Io { path: path.clone(), source })?;
        serde_yaml_ng::from_str(&text).map_err(|e| GenerateError::Dataset { path, reason: e.to_string() })
    }

    /// Writes `dir/dataset.yaml` (to a temporary file first, so a reader never sees half of it).
    pub fn write(&self, dir: &Path) -> Result<(), GenerateError> {
        let body =
            serde_yaml_ng::to_string(self).map_err(|e| GenerateError::Dataset { path: dir.join("dataset.yaml"), reason: e.to_string() })?;
        write_atomic(&dir.join("dataset.yaml"), &format!("# sim2real generated dataset (s2r generate)\n{body}"))
    }
}

fn write_atomic(path: &Path, text: &str) -> Result<(), GenerateError> {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, text).map_err(|source| GenerateError::Io { path: tmp.clone(), source })?;
    std::fs::rename(&tmp, path).map_err(|source| GenerateError::Io { path: path.into(), source })
}

/// The software that writes datasets.
pub fn software() -> String {
    format!("sim2real {}", env!("CARGO_PKG_VERSION"))
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> GenerateError + '_ {
    move |source| GenerateError::Io { path: path.into(), source }
}

/// Curates the finished episodes of `dir` (in the order given) into `dir`'s
/// `clips/`, `manifest.yaml` and `report.html`, replacing any earlier
/// curation; sources are named by their path inside the dataset.
pub fn curate(
    dir: &Path,
    episodes: &[EpisodeEntry],
    params: &s2r_curator::params::Params,
    log: &mut dyn FnMut(String),
) -> Result<Manifest, GenerateError> {
    let tmp = dir.join(".curation");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    let bags: Vec<PathBuf> = episodes.iter().map(|e| dir.join("episodes").join(&e.name)).collect();
    s2r_curator::offline::curate(&bags, &tmp, params, log)?;
    for name in ["clips", "manifest.yaml", "report.html"] {
        let old = dir.join(name);
        if old.is_dir() {
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        } else if old.exists() {
            std::fs::remove_file(&old).map_err(io(&old))?;
        }
        std::fs::rename(tmp.join(name), &old).map_err(io(&old))?;
    }
    std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    let mut m = Manifest::read(dir)?;
    for s in &mut m.sources {
        if let Some(name) = Path::new(&s.bag).file_name() {
            s.bag = Path::new("episodes").join(name).display().to_string();
        }
    }
    m.write(dir)?;
    Ok(m)
}

/// The counts of `episodes`, and of their curation when there is one.
pub fn counts(planned: usize, episodes: &[EpisodeEntry], m: Option<&Manifest>) -> Counts {
    let accepted: Vec<_> = m.iter().flat_map(|m| m.clips.iter()).filter(|c| c.verdict == "accepted").collect();
    Counts {
        episodes_planned: planned,
        episodes: episodes.len(),
        frames: episodes.iter().map(|e| e.frames).sum(),
        clips: m.map_or(0, |m| m.clips.len()),
        clips_accepted: accepted.len(),
        frames_accepted: accepted.iter().map(|c| c.good_frames).sum(),
    }
}

/// What `s2r dataset info` prints.
#[derive(Clone, Debug, PartialEq)]
pub struct Info {
    /// dataset.yaml.
    pub dataset: DatasetFile,
    /// Accepted clips per tag value, per tag key.
    pub tags: BTreeMap<String, BTreeMap<String, usize>>,
    /// Hours of camera time in accepted clips (frames ÷ camera rate, summed over clips by their time span).
    pub hours: f64,
}

/// Reads a dataset's summary.
pub fn info(dir: &Path) -> Result<Info, GenerateError> {
    let dataset = DatasetFile::read(dir)?;
    let m = Manifest::read(dir)?;
    let mut tags: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut seconds = 0.0;
    for c in m.clips.iter().filter(|c| c.verdict == "accepted") {
        for (k, v) in &c.tags {
            *tags.entry(k.clone()).or_default().entry(v.clone()).or_default() += 1;
        }
        seconds += (c.end_ns - c.start_ns) as f64 / 1e9;
    }
    Ok(Info { dataset, tags, hours: seconds / 3600.0 })
}

/// `splits.yaml`: accepted clips by split, every seed in exactly one split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Splits {
    /// Training seeds and clips.
    pub train: Split,
    /// Validation.
    pub val: Split,
    /// Test (held out).
    pub test: Split,
}

/// One split.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// Its seeds.
    pub seeds: Vec<u64>,
    /// Its accepted clips (folders under `clips/`).
    pub clips: Vec<String>,
}

/// Splits a dataset by seed (`val` and `test` fractions of the seeds, at least
/// one each when asked for and there are seeds to spare); writes `splits.yaml`.
pub fn split(dir: &Path, val: f64, test: f64) -> Result<Splits, GenerateError> {
    if !(0.0..1.0).contains(&val) || !(0.0..1.0).contains(&test) || val + test >= 1.0 {
        return Err(GenerateError::SplitFractions { val, test });
    }
    let dataset = DatasetFile::read(dir)?;
    let m = Manifest::read(dir)?;
    let seed_of: BTreeMap<&str, u64> = dataset.episodes.iter().map(|e| (e.name.as_str(), e.seed)).collect();
    let seeds: BTreeSet<u64> = dataset.episodes.iter().map(|e| e.seed).collect();
    let mut order: Vec<u64> = seeds.into_iter().collect();
    // A fixed shuffle, so that splits do not follow seed order.
    let mut rng = SplitMix::new(SPLIT_SHUFFLE);
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let n = order.len();
    let take = |f: f64| if f > 0.0 && n >= 3 { ((f * n as f64).round() as usize).max(1) } else { (f * n as f64).round() as usize };
    let (mut n_test, mut n_val) = (take(test), take(val));
    // Training keeps at least one seed.
    while n > 0 && n_test + n_val >= n {
        if n_val >= n_test && n_val > 0 {
            n_val -= 1;
        } else if n_test > 0 {
            n_test -= 1;
        } else {
            break;
        }
    }
    // Each seed's split, once: the first n_test of the shuffle test, the next n_val validation, the rest training.
    let split_of: BTreeMap<u64, usize> = order
        .iter()
        .enumerate()
        .map(|(i, seed)| {
            (
                *seed,
                if i < n_test {
                    2
                } else if i < n_test + n_val {
                    1
                } else {
                    0
                },
            )
        })
        .collect();
    let mut parts: [Split; 3] = Default::default();
    for seed in &order {
        parts[split_of[seed]].seeds.push(*seed);
    }
    for c in m.clips.iter().filter(|c| c.verdict == "accepted") {
        let Some(seed) = seed_of.get(c.source.as_str()) else { continue };
        parts[split_of[seed]].clips.push(c.id.clone());
    }
    let [train, val, test] = parts;
    let mut s = Splits { train, val, test };
    for sp in [&mut s.train, &mut s.val, &mut s.test] {
        sp.seeds.sort();
    }
    let body = serde_yaml_ng::to_string(&s).map_err(|e| GenerateError::Dataset { path: dir.join("splits.yaml"), reason: e.to_string() })?;
    write_atomic(&dir.join("splits.yaml"), &format!("# sim2real dataset splits by seed (s2r dataset split)\n{body}"))?;
    Ok(s)
}

/// The shuffle of seeds before splitting (fixed: a dataset always splits the same).
const SPLIT_SHUFFLE: u64 = 0x5eed_0005_9117_0001;
