//! ROS 2 launch files for sim2real: the YAML format of launch_ros, read by
//! [`plan::plan`] into the nodes to start, started by [`exec::run`] as
//! processes or composed into one process.

#![warn(missing_docs)]

pub mod exec;
pub mod plan;
pub mod rosdep;
mod subst;

use std::path::PathBuf;

pub use plan::{LaunchError, LaunchPlan, NodePlan};
pub use subst::Package;

/// Finds a package in the install spaces of `AMENT_PREFIX_PATH` (as ament's
/// resource index registers them); `source` is where the package is when run
/// from its source tree (its share folder is the tree itself).
///
/// `ament_prefix_path` is the variable's value (`:`-separated; empty entries
/// are skipped); an installed package wins over `source`, which is
/// `(package name, tree root)` and only answers for that name. `None` when
/// neither has it.
pub fn find_package(name: &str, ament_prefix_path: Option<&str>, source: Option<(&str, PathBuf)>) -> Option<Package> {
    for prefix in std::env::split_paths(ament_prefix_path.unwrap_or("")) {
        if prefix.as_os_str().is_empty() {
            continue;
        }
        let marker = prefix.join("share/ament_index/resource_index/packages").join(name);
        if marker.exists() {
            return Some(Package { share: prefix.join("share").join(name), prefix });
        }
    }
    match source {
        Some((n, root)) if n == name => Some(Package { prefix: root.clone(), share: root }),
        _ => None,
    }
}
