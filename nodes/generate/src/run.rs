//! `s2r generate`: a sweep's episodes (one shard of them) into a dataset
//! folder, resumable, then curated; and `s2r dataset merge`.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::dataset::{self, DatasetFile, EpisodeEntry, ShardEntry};
use crate::episode::{run_episode, scenario_of};
use crate::sweep::{Episode, Sweep};
use crate::GenerateError;

/// Which part of a sweep one process runs: episode `k` belongs to shard `k % count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 0-based.
    pub index: usize,
    /// Shards in all (1: the whole sweep).
    pub count: usize,
}

impl Shard {
    /// The whole sweep.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// `i/N`, `auto/N` or `auto`: with `auto` the index comes from
    /// `JOB_COMPLETION_INDEX` (Kubernetes Indexed Jobs) or `SLURM_ARRAY_TASK_ID`
    /// (Slurm job arrays, which also give the count as `SLURM_ARRAY_TASK_COUNT`).
    pub fn parse(spec: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Shard, GenerateError> {
        let bad = |why: String| GenerateError::Shard { spec: spec.into(), why };
        let (i, n) = match spec.split_once('/') {
            Some((i, n)) => (i, Some(n)),
            None if spec == "auto" => (spec, None),
            None => return Err(bad("expected i/N (0 ≤ i < N), auto/N or auto".into())),
        };
        let count = match n {
            Some(n) => n.parse::<usize>().map_err(|_| bad(format!("'{n}' is not a number of shards")))?,
            None => env("SLURM_ARRAY_TASK_COUNT")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad("no shard count: give auto/N (SLURM_ARRAY_TASK_COUNT is not set)".into()))?,
        };
        let index = if i == "auto" {
            let (var, v) = ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"]
                .iter()
                .find_map(|k| env(k).map(|v| (*k, v)))
                .ok_or_else(|| bad("neither JOB_COMPLETION_INDEX (Kubernetes) nor SLURM_ARRAY_TASK_ID (Slurm) is set".into()))?;
            v.trim().parse::<usize>().map_err(|_| bad(format!("{var}='{v}' is not a shard index")))?
        } else {
            i.parse::<usize>().map_err(|_| bad(format!("'{i}' is not a shard index")))?
        };
        if count == 0 || index >= count {
            return Err(bad(format!("shard {index} of {count} is out of range (0 ≤ i < N)")));
        }
        Ok(Shard { index, count })
    }

    /// Whether `ep` is this shard's.
    pub fn has(&self, ep: &Episode) -> bool {
        ep.index % self.count == self.index
    }
}

/// What a run did.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// dataset.yaml as written.
    pub dataset: DatasetFile,
    /// Episodes run in this call (the others were finished before).
    pub ran: usize,
    /// Whether it stopped on `stop` before every episode was done.
    pub interrupted: bool,
}

/// Runs the shard's episodes of `sweep` into `out`, skipping those finished
/// before (an interrupted run continues where it stopped), then curates
/// every finished one and writes `dataset.yaml`. `stop` (Ctrl-C) ends the
/// current episode unfinished — its partial bag is removed — and still
/// curates what is finished, so the folder is a consistent dataset.
pub fn generate(
    sweep: &Sweep,
    shard: Shard,
    out: &Path,
    stop: &AtomicBool,
    progress: bool,
    log: &mut dyn FnMut(String),
) -> Result<Summary, GenerateError> {
    let io = |p: &Path, source| GenerateError::Io { path: p.into(), source };
    std::fs::create_dir_all(out.join("episodes")).map_err(|e| io(out, e))?;
    if out.join("dataset.yaml").exists() {
        let before = DatasetFile::read(out)?;
        if before.sweep != *sweep
            || before.shard.unwrap_or(ShardEntry { index: 0, count: 1 }) != (ShardEntry { index: shard.index, count: shard.count })
        {
            return Err(GenerateError::OtherSweep { dir: out.into() });
        }
    }
    let mine: Vec<Episode> = sweep.episodes().into_iter().filter(|e| shard.has(e)).collect();
    // Every scenario and camera selection is checked before the first episode.
    for e in &mine {
        scenario_of(e, sweep)?;
    }
    let done_dir = |e: &Episode| out.join("episodes").join(&e.name);
    let mut entries: Vec<Option<EpisodeEntry>> = vec![None; mine.len()];
    if let Ok(before) = DatasetFile::read(out) {
        for (slot, e) in entries.iter_mut().zip(&mine) {
            *slot = before.episodes.iter().find(|b| b.name == e.name).filter(|_| done_dir(e).join("metadata.yaml").exists()).cloned();
        }
    }
    let todo: Vec<usize> = (0..mine.len()).filter(|&i| entries[i].is_none()).collect();
    log(format!(
        "{}: {} episode(s) in shard {}/{}, {} finished before, {} to run",
        sweep.name,
        mine.len(),
        shard.index,
        shard.count,
        mine.len() - todo.len(),
        todo.len()
    ));
    let per_episode = todo.first().map_or(0, |&i| frames_per_episode(&mine[i], sweep));
    let bar = if progress && !todo.is_empty() {
        let b = ProgressBar::new(per_episode * todo.len() as u64);
        b.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} frames {per_sec} ETA {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.enable_steady_tick(Duration::from_millis(200));
        b
    } else {
        ProgressBar::hidden()
    };
    let mut ran = 0;
    let mut interrupted = false;
    for &i in &todo {
        let e = &mine[i];
        bar.set_message(e.name.clone());
        let partial = out.join("episodes").join(format!("{}.partial", e.name));
        for d in [&partial, &done_dir(e)] {
            if d.exists() {
                std::fs::remove_dir_all(d).map_err(|err| io(d, err))?;
            }
        }
        match run_episode(e, sweep, &partial, stop, &mut || bar.inc(1)) {
            Ok(stats) => {
                std::fs::rename(&partial, done_dir(e)).map_err(|err| io(&partial, err))?;
                entries[i] = Some(EpisodeEntry {
                    name: e.name.clone(),
                    scenario: e.scenario.clone(),
                    seed: e.seed,
                    look: e.look,
                    prompt: e.prompt.clone(),
                    frames: stats.frames,
                    flagged: stats.flagged,
                });
                ran += 1;
                // Progress on disk after every episode: a killed run resumes from here.
                write_dataset(out, sweep, shard, mine.len(), &entries, None)?;
            }
            Err(GenerateError::Interrupted) => {
                let _ = std::fs::remove_dir_all(&partial);
                interrupted = true;
                break;
            }
            Err(err) => {
                let _ = std::fs::remove_dir_all(&partial);
                let kept = entries.iter().flatten().count();
                return Err(GenerateError::Stopped { episode: e.name.clone(), kept, dir: out.into(), source: Box::new(err) });
            }
        }
    }
    bar.finish_and_clear();
    let finished: Vec<EpisodeEntry> = entries.iter().flatten().cloned().collect();
    let dataset = if finished.is_empty() {
        write_dataset(out, sweep, shard, mine.len(), &entries, None)?
    } else {
        let m = dataset::curate(out, &finished, &sweep.curation, log)?;
        write_dataset(out, sweep, shard, mine.len(), &entries, Some(&m))?
    };
    // A complete dataset is split; a shard's is split by the merge.
    if shard.count == 1 && finished.len() == mine.len() {
        split_as_asked(out, sweep, log)?;
    }
    Ok(Summary { dataset, ran, interrupted })
}

/// Camera frames an episode renders (for the progress bar).
fn frames_per_episode(e: &Episode, sweep: &Sweep) -> u64 {
    scenario_of(e, sweep).map_or(0, |s| (sweep.duration * s.sensors.rate).ceil() as u64 * s.sensors.cameras.len() as u64)
}

fn write_dataset(
    out: &Path,
    sweep: &Sweep,
    shard: Shard,
    planned: usize,
    entries: &[Option<EpisodeEntry>],
    manifest: Option<&s2r_curator::Manifest>,
) -> Result<DatasetFile, GenerateError> {
    let finished: Vec<EpisodeEntry> = entries.iter().flatten().cloned().collect();
    let counts = dataset::counts(planned, &finished, manifest);
    let d = DatasetFile {
        software: dataset::software(),
        sweep: sweep.clone(),
        shard: (shard.count > 1).then_some(ShardEntry { index: shard.index, count: shard.count }),
        episodes: finished,
        counts,
    };
    d.write(out)?;
    Ok(d)
}

/// Joins shard folders of one sweep into `out`: their episodes (copied, in
/// the sweep's order) curated together, so the result is the dataset a
/// single process would have made.
pub fn merge(shards: &[&Path], out: &Path, log: &mut dyn FnMut(String)) -> Result<DatasetFile, GenerateError> {
    let io = |p: &Path, source| GenerateError::Io { path: p.into(), source };
    if out.exists() && std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(false) {
        return Err(GenerateError::NotEmpty(out.into()));
    }
    let first = shards.first().ok_or(GenerateError::NothingToMerge)?;
    let sweep = DatasetFile::read(first)?.sweep;
    let mut found: Vec<(EpisodeEntry, std::path::PathBuf)> = Vec::new();
    for dir in shards {
        let d = DatasetFile::read(dir)?;
        if d.sweep != sweep {
            return Err(GenerateError::MergeOtherSweep { dir: dir.to_path_buf(), first: first.to_path_buf() });
        }
        for e in d.episodes {
            if !found.iter().any(|(f, _)| f.name == e.name) {
                found.push((e.clone(), dir.join("episodes").join(&e.name)));
            }
        }
    }
    let order = sweep.episodes();
    found.sort_by_key(|(e, _)| order.iter().position(|o| o.name == e.name).unwrap_or(usize::MAX));
    std::fs::create_dir_all(out.join("episodes")).map_err(|e| io(out, e))?;
    for (e, src) in &found {
        copy_dir(src, &out.join("episodes").join(&e.name))?;
    }
    let episodes: Vec<EpisodeEntry> = found.into_iter().map(|(e, _)| e).collect();
    log(format!("merging {} episode(s) of {} from {} folder(s)", episodes.len(), sweep.name, shards.len()));
    let m = dataset::curate(out, &episodes, &sweep.curation, log)?;
    let d = DatasetFile {
        software: dataset::software(),
        counts: dataset::counts(order.len(), &episodes, Some(&m)),
        sweep,
        shard: None,
        episodes,
    };
    d.write(out)?;
    split_as_asked(out, &d.sweep, log)?;
    Ok(d)
}

/// Writes `splits.yaml` when the sweep asks for a split.
fn split_as_asked(out: &Path, sweep: &Sweep, log: &mut dyn FnMut(String)) -> Result<(), GenerateError> {
    if let Some(sp) = sweep.split {
        let s = dataset::split(out, sp.val, sp.test)?;
        log(format!(
            "split by seed: train {} seed(s) ({} clips), val {} ({}), test {} ({}): {}",
            s.train.seeds.len(),
            s.train.clips.len(),
            s.val.seeds.len(),
            s.val.clips.len(),
            s.test.seeds.len(),
            s.test.clips.len(),
            out.join("splits.yaml").display()
        ));
    }
    Ok(())
}

/// Copies a bag folder (hard links where the file system allows).
fn copy_dir(from: &Path, to: &Path) -> Result<(), GenerateError> {
    let io = |p: &Path, source| GenerateError::Io { path: p.into(), source };
    std::fs::create_dir_all(to).map_err(|e| io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| io(from, e))? {
        let entry = entry.map_err(|e| io(from, e))?;
        let dst = to.join(entry.file_name());
        if std::fs::hard_link(entry.path(), &dst).is_err() {
            std::fs::copy(entry.path(), &dst).map_err(|e| io(&dst, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn shards_from_flags_kubernetes_and_slurm() {
        assert_eq!(Shard::parse("2/5", &env(&[])).unwrap(), Shard { index: 2, count: 5 });
        assert_eq!(Shard::parse("auto/8", &env(&[("JOB_COMPLETION_INDEX", "7")])).unwrap(), Shard { index: 7, count: 8 });
        let slurm = [("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "4")];
        assert_eq!(Shard::parse("auto", &env(&slurm)).unwrap(), Shard { index: 3, count: 4 });
        for (spec, vars, says) in [
            ("5/5", &[][..], "out of range"),
            ("0/0", &[][..], "out of range"),
            ("x/2", &[][..], "'x' is not a shard index"),
            ("auto/4", &[][..], "JOB_COMPLETION_INDEX"),
            ("auto", &[("JOB_COMPLETION_INDEX", "1")][..], "auto/N"),
            ("auto/2", &[("JOB_COMPLETION_INDEX", "2")][..], "out of range"),
            ("3", &[][..], "expected i/N"),
        ] {
            let e = Shard::parse(spec, &env(vars)).unwrap_err().to_string();
            assert!(e.starts_with(&format!("shard '{spec}'")) && e.contains(says), "{spec}: {e}");
        }
    }
}
