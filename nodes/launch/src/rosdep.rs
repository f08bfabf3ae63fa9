//! The system packages a ROS package needs, the way `rosdep` finds them: the
//! keys of `<depend>`/`<exec_depend>` in its `package.xml`, resolved for this
//! operating system through a rosdep rules file (`rosdep.yaml` beside it,
//! the format of rosdistro's `rosdep/base.yaml`). Keys that the rules file
//! does not name (other ROS packages, build tools) are not system packages.
//!
//! sim2real ships its own rules file because rosdistro has no key for Mesa's
//! Vulkan driver; `rosdep` users add it to their sources (see the README).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What went wrong reading a package's system dependencies.
#[derive(Debug, thiserror::Error)]
pub enum RosdepError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// `package.xml` or `rosdep.yaml` in the share folder.
        path: PathBuf,
        /// The I/O error (a missing `rosdep.yaml` is one).
        source: std::io::Error,
    },
    /// `package.xml` is not well-formed XML or not a package manifest.
    #[error("{path}: {message}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The rules file is not rosdep's YAML.
    #[error("{path}: {source}")]
    Rules {
        /// The rules file.
        path: PathBuf,
        /// The YAML error (with its line).
        source: serde_yaml_ng::Error,
    },
}

/// An operating system as `/etc/os-release` names it (`ID`, `ID_LIKE`,
/// `VERSION_CODENAME`): what rosdep resolves keys for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Os {
    /// `ID` first, then the `ID_LIKE` entries (e.g. `ubuntu`, `debian`).
    pub ids: Vec<String>,
    /// `VERSION_CODENAME` (e.g. `bookworm`), for version-specific rules.
    pub codename: String,
}

impl Os {
    /// Reads `/etc/os-release` (or `/usr/lib/os-release`); `None` where
    /// neither exists.
    pub fn detect() -> Option<Os> {
        ["/etc/os-release", "/usr/lib/os-release"].iter().find_map(|p| std::fs::read_to_string(p).ok()).map(|t| Os::parse(&t))
    }

    /// Parses the text of an os-release file.
    fn parse(text: &str) -> Os {
        let mut id = String::new();
        let mut like = String::new();
        let mut codename = String::new();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else { continue };
            let v = v.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
            match k.trim() {
                "ID" => id = v,
                "ID_LIKE" => like = v,
                "VERSION_CODENAME" => codename = v,
                _ => {}
            }
        }
        let ids = std::iter::once(id).chain(like.split_whitespace().map(str::to_string)).filter(|s| !s.is_empty()).collect();
        Os { ids, codename }
    }

    /// The package manager command that installs `packages` here, without
    /// `sudo`; `None` for a system this does not know.
    pub fn install_command(&self, packages: &[String]) -> Option<Vec<String>> {
        let base: &[&str] = match self.family()? {
            "debian" | "ubuntu" => &["apt-get", "install", "-y"],
            "fedora" | "rhel" => &["dnf", "install", "-y"],
            "arch" => &["pacman", "-S", "--needed", "--noconfirm"],
            _ => return None,
        };
        Some(base.iter().map(|s| s.to_string()).chain(packages.iter().cloned()).collect())
    }

    /// The first of this system's ids whose package manager is known.
    fn family(&self) -> Option<&str> {
        self.ids.iter().map(String::as_str).find(|id| matches!(*id, "debian" | "ubuntu" | "fedora" | "rhel" | "arch"))
    }

    /// Whether a package is installed, asking the package manager; `None`
    /// where it cannot tell.
    pub fn is_installed(&self, package: &str) -> Option<bool> {
        let (cmd, args): (&str, Vec<&str>) = match self.family()? {
            "debian" | "ubuntu" => ("dpkg-query", vec!["-W", "-f=${db:Status-Status}", package]),
            "fedora" | "rhel" => ("rpm", vec!["-q", package]),
            "arch" => ("pacman", vec!["-Q", package]),
            _ => return None,
        };
        let out = std::process::Command::new(cmd).args(args).output().ok()?;
        let debian = cmd == "dpkg-query";
        Some(out.status.success() && (!debian || String::from_utf8_lossy(&out.stdout).trim() == "installed"))
    }
}

/// One system dependency: its rosdep key and, for this system, its packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemDep {
    /// The key in `package.xml`.
    pub key: String,
    /// The packages it stands for here (empty where the rules name none for
    /// this system).
    pub packages: Vec<String>,
}

/// A rules entry: one list for every version, or lists by codename (`'*'`
/// for the others).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OsRule {
    All(Vec<String>),
    ByVersion(BTreeMap<String, Vec<String>>),
}

/// The dependency keys (`depend`, `exec_depend`) of a `package.xml`, in order.
fn manifest_keys(path: &Path) -> Result<Vec<String>, RosdepError> {
    let text = std::fs::read_to_string(path).map_err(|source| RosdepError::Read { path: path.into(), source })?;
    let doc = roxmltree::Document::parse(&text).map_err(|e| RosdepError::Manifest { path: path.into(), message: e.to_string() })?;
    let root = doc.root_element();
    if root.tag_name().name() != "package" {
        return Err(RosdepError::Manifest {
            path: path.into(),
            message: format!("the root element is <{}>, not <package>", root.tag_name().name()),
        });
    }
    Ok(root
        .children()
        .filter(|n| matches!(n.tag_name().name(), "depend" | "exec_depend"))
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_string())
        .collect())
}

/// The system dependencies of the package whose share folder is `share`
/// (its `package.xml` and `rosdep.yaml`), resolved for `os`.
///
/// In `package.xml` order; keys the rules file does not name are left out.
/// Fails when either file is missing or does not parse.
pub fn system_deps(share: &Path, os: &Os) -> Result<Vec<SystemDep>, RosdepError> {
    let keys = manifest_keys(&share.join("package.xml"))?;
    let rules_path = share.join("rosdep.yaml");
    let text = std::fs::read_to_string(&rules_path).map_err(|source| RosdepError::Read { path: rules_path.clone(), source })?;
    let rules: BTreeMap<String, BTreeMap<String, OsRule>> =
        serde_yaml_ng::from_str(&text).map_err(|source| RosdepError::Rules { path: rules_path, source })?;
    Ok(keys
        .into_iter()
        .filter_map(|key| {
            let by_os = rules.get(&key)?;
            let rule = os.ids.iter().find_map(|id| by_os.get(id));
            let packages = match rule {
                Some(OsRule::All(p)) => p.clone(),
                Some(OsRule::ByVersion(v)) => v.get(&os.codename).or_else(|| v.get("*")).cloned().unwrap_or_default(),
                None => Vec::new(),
            };
            Some(SystemDep { key, packages })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debian() -> Os {
        Os::parse("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_CODENAME=bookworm\n")
    }

    #[test]
    fn os_release() {
        let os = Os::parse("NAME=\"Ubuntu\"\nID=ubuntu\nID_LIKE=debian\nVERSION_CODENAME=noble\n");
        assert_eq!(os.ids, ["ubuntu", "debian"]);
        assert_eq!(os.codename, "noble");
        assert_eq!(os.install_command(&["a".into()]).unwrap(), ["apt-get", "install", "-y", "a"]);
        assert_eq!(Os::parse("ID=gentoo\n").install_command(&["a".into()]), None);
    }

    #[test]
    fn keys_resolve_through_the_rules() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("package.xml"),
            "<?xml version=\"1.0\"?>\n<package format=\"3\"><name>p</name><buildtool_depend>ament_cargo</buildtool_depend>\
             <exec_depend>gl</exec_depend><depend>rclcpp</depend><exec_depend>old</exec_depend><test_depend>t</test_depend></package>",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("rosdep.yaml"),
            "gl:\n  debian: [mesa-vulkan-drivers, libvulkan1]\n  fedora: [mesa-vulkan-drivers]\nold:\n  debian:\n    bookworm: [old-bookworm]\n    '*': [old]\nt:\n  debian: [t]\n",
        )
        .unwrap();
        let deps = system_deps(dir.path(), &debian()).unwrap();
        assert_eq!(
            deps,
            [
                SystemDep { key: "gl".into(), packages: vec!["mesa-vulkan-drivers".into(), "libvulkan1".into()] },
                SystemDep { key: "old".into(), packages: vec!["old-bookworm".into()] },
            ]
        );
        let arch = Os::parse("ID=arch\n");
        assert_eq!(system_deps(dir.path(), &arch).unwrap()[0].packages, Vec::<String>::new());
    }

    #[test]
    fn broken_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("package.xml"), "<package><exec_depend>gl</package>").unwrap();
        let e = system_deps(dir.path(), &debian()).unwrap_err().to_string();
        assert!(e.contains("package.xml") && e.contains("exec_depend"), "{e}");
        std::fs::write(dir.path().join("package.xml"), "<package><exec_depend>gl</exec_depend></package>").unwrap();
        std::fs::write(dir.path().join("rosdep.yaml"), "gl:\n  debian: 3\n").unwrap();
        let e = system_deps(dir.path(), &debian()).unwrap_err().to_string();
        assert!(e.contains("rosdep.yaml"), "{e}");
    }
}
