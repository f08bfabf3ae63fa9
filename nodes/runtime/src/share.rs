//! Where the package's data lives: `share/sim2real/<sub>` of each
//! AMENT_PREFIX_PATH entry (a sourced colcon or ROS install), then of this
//! executable's own install prefix (`<prefix>/lib/sim2real/<exe>`), then the
//! source tree this program was built from, in that order.

use std::path::{Path, PathBuf};

/// The source tree this program was built from (the folder holding
/// `package.xml`), canonical; `None` where it is gone.
pub fn source_tree() -> Option<PathBuf> {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).canonicalize().ok().filter(|p| p.join("package.xml").is_file())
}

/// The folders `sub` of the package's data is looked up in, in order.
pub fn share_dirs(sub: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(paths) = std::env::var("AMENT_PREFIX_PATH") {
        for p in paths.split(':').filter(|p| !p.is_empty()) {
            dirs.push(Path::new(p).join("share/sim2real").join(sub));
        }
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(prefix) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            dirs.push(prefix.join("share/sim2real").join(sub));
        }
    }
    dirs.extend(source_tree().map(|t| t.join(sub)));
    dirs
}

/// The first `file` in the folders of [`share_dirs`]`(sub)`, as a canonical path.
pub fn find_shared(sub: &str, file: &str) -> Option<PathBuf> {
    share_dirs(sub).into_iter().map(|d| d.join(file)).find(|c| c.is_file()).and_then(|c| c.canonicalize().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_tree_is_found_and_paths_are_canonical() {
        let tree = source_tree().expect("tests run from the source tree");
        assert!(tree.is_absolute() && !tree.to_string_lossy().contains(".."), "{}", tree.display());
        let found = find_shared("config/scenarios", "icy_night_crossing.yaml").unwrap();
        assert!(!found.to_string_lossy().contains(".."), "{}", found.display());
        assert!(found.ends_with("config/scenarios/icy_night_crossing.yaml"));
        assert_eq!(find_shared("config/scenarios", "no_such.yaml"), None);
    }
}
