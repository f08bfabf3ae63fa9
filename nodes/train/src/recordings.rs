//! Where a model's recordings are: the bags a path names, whatever wrote it
//! (an `s2r generate` dataset, an `s2r demos` folder, or one bag), and a
//! fingerprint of a bag for caches keyed on its contents.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::TrainError;

#[derive(Deserialize)]
struct Manifest {
    format: String,
    episodes: Vec<ManifestEpisode>,
}

#[derive(Deserialize)]
struct ManifestEpisode {
    bag: String,
}

#[derive(Deserialize)]
struct Dataset {
    episodes: Vec<DatasetEpisode>,
}

#[derive(Deserialize)]
struct DatasetEpisode {
    name: String,
}

/// The format an `s2r demos` manifest declares.
pub const DEMOS_FORMAT: &str = "sim2real.demos/1";

/// The bags of a recording path: a dataset's episodes (`dataset.yaml`), a
/// demos folder's (`manifest.yaml` of [`DEMOS_FORMAT`]), or the bag itself
/// (a folder with `metadata.yaml`, or an `.mcap` file).
pub fn bags(path: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|source| TrainError::Io { path: p.into(), source });
    let bad = |p: &Path, problem: String| TrainError::Bad { path: p.into(), problem };
    let dataset = path.join("dataset.yaml");
    if dataset.is_file() {
        let d: Dataset =
            serde_yaml_ng::from_str(&read(&dataset)?).map_err(|e| bad(&dataset, format!("not an s2r generate dataset: {e}")))?;
        return Ok(d.episodes.into_iter().map(|e| path.join("episodes").join(e.name)).collect());
    }
    let manifest = path.join("manifest.yaml");
    if manifest.is_file() && !path.join("metadata.yaml").is_file() {
        let m: Manifest = serde_yaml_ng::from_str(&read(&manifest)?).map_err(|e| bad(&manifest, format!("not a demos manifest: {e}")))?;
        if m.format != DEMOS_FORMAT {
            return Err(bad(&manifest, format!("format '{}': recordings are {DEMOS_FORMAT} sets, datasets or bags", m.format)));
        }
        return Ok(m.episodes.into_iter().map(|e| path.join(e.bag)).collect());
    }
    if path.join("metadata.yaml").is_file() || path.extension().is_some_and(|e| e == "mcap") {
        return Ok(vec![path.into()]);
    }
    Err(bad(path, "not a recording: no dataset.yaml (s2r generate), manifest.yaml (s2r demos) or metadata.yaml (a bag)".into()))
}

/// Feeds `h` what identifies a bag's contents: its canonical path, and the
/// size and modification time of the bag and (a bag folder changes through
/// them) of each of its files, in name order.
pub fn fingerprint(bag: &Path, h: &mut impl Hasher) {
    let meta = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.len(), m.modified().ok()));
    bag.canonicalize().unwrap_or_else(|_| bag.into()).hash(h);
    let mut files: Vec<PathBuf> = std::fs::read_dir(bag).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    for f in std::iter::once(bag.to_path_buf()).chain(files) {
        meta(&f).hash(h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_names_its_bags_or_says_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        // A dataset: its episodes.
        std::fs::create_dir_all(p.join("set")).unwrap();
        std::fs::write(p.join("set/dataset.yaml"), "episodes:\n- name: a\n  prompt: x\n- name: b\n").unwrap();
        assert_eq!(bags(&p.join("set")).unwrap(), vec![p.join("set/episodes/a"), p.join("set/episodes/b")]);
        // A demos folder: its manifest's bags; another format is refused by name.
        std::fs::create_dir_all(p.join("demos")).unwrap();
        std::fs::write(p.join("demos/manifest.yaml"), format!("format: {DEMOS_FORMAT}\nepisodes:\n- bag: s1\n  seed: 1\n")).unwrap();
        assert_eq!(bags(&p.join("demos")).unwrap(), vec![p.join("demos/s1")]);
        std::fs::write(p.join("demos/manifest.yaml"), "format: other/2\nepisodes: []\n").unwrap();
        let e = bags(&p.join("demos")).unwrap_err().to_string();
        assert!(e.contains("manifest.yaml") && e.contains("other/2"), "{e}");
        // A bag folder, an mcap file; anything else is named.
        std::fs::create_dir_all(p.join("bag")).unwrap();
        std::fs::write(p.join("bag/metadata.yaml"), "").unwrap();
        assert_eq!(bags(&p.join("bag")).unwrap(), vec![p.join("bag")]);
        assert_eq!(bags(&p.join("x.mcap")).unwrap(), vec![p.join("x.mcap")]);
        let e = bags(&p.join("nothing")).unwrap_err().to_string();
        assert!(e.contains("nothing") && e.contains("not a recording"), "{e}");
        // A fingerprint changes when a bag's file does.
        let f = |h: &mut std::collections::hash_map::DefaultHasher| {
            fingerprint(&p.join("bag"), h);
            h.finish()
        };
        let before = f(&mut Default::default());
        assert_eq!(before, f(&mut Default::default()));
        std::fs::write(p.join("bag/metadata.yaml"), "grown").unwrap();
        assert_ne!(before, f(&mut Default::default()));
    }
}
