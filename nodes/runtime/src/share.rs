//! Where the package's installed data lives: `share/sim2real/<sub>` of each
//! AMENT_PREFIX_PATH entry (a sourced colcon or ROS install), then of this
//! executable's own install prefix (`<prefix>/lib/sim2real/<exe>`), in that
//! order. Callers add their source tree's copy as the last resort.

use std::path::{Path, PathBuf};

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
    dirs
}
