//! When a running node should load its checkpoint again.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// How often a node looks at its checkpoint parameter and file.
pub const WATCH_PERIOD: Duration = Duration::from_secs(1);

/// Watches a node's checkpoint: the path its parameter names now, and the
/// file's modification time. A node asks [`CheckpointWatch::due`] in its
/// loop and reloads when it answers with a path — the parameter changed, or
/// the file there was replaced (as training does at every evaluation). A
/// path that failed to load is not retried until it changes again.
#[derive(Debug, Clone)]
pub struct CheckpointWatch {
    path: String,
    modified: Option<SystemTime>,
    checked: Instant,
}

fn modified(path: &str) -> Option<SystemTime> {
    std::fs::metadata(Path::new(path)).and_then(|m| m.modified()).ok()
}

impl CheckpointWatch {
    /// Watching `path`, as loaded now.
    pub fn new(path: &str) -> CheckpointWatch {
        CheckpointWatch { path: path.to_string(), modified: modified(path), checked: Instant::now() }
    }

    /// The path last loaded (or tried).
    pub fn current(&self) -> &str {
        &self.path
    }

    /// The checkpoint to load now, if any: `wanted` (the parameter's value)
    /// is another path, or the file's modification time changed. Looks at
    /// most once per [`WATCH_PERIOD`]; what it answers counts as seen.
    pub fn due(&mut self, wanted: &str) -> Option<String> {
        if self.checked.elapsed() < WATCH_PERIOD {
            return None;
        }
        self.checked = Instant::now();
        let m = modified(wanted);
        if wanted == self.path && m == self.modified {
            return None;
        }
        self.path = wanted.to_string();
        self.modified = m;
        Some(self.path.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_path_or_a_replaced_file_is_due_once() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a.safetensors");
        std::fs::write(&a, b"1").unwrap();
        let a = a.to_str().unwrap();
        let mut w = CheckpointWatch::new(a);
        w.checked -= WATCH_PERIOD;
        assert_eq!(w.due(a), None, "nothing changed");
        // Not before a period has passed.
        assert_eq!(w.due("/elsewhere"), None);
        w.checked -= WATCH_PERIOD;
        assert_eq!(w.due("/elsewhere").as_deref(), Some("/elsewhere"));
        w.checked -= WATCH_PERIOD;
        assert_eq!(w.due("/elsewhere"), None, "a missing file is not retried until it changes");
        w.checked -= WATCH_PERIOD;
        assert_eq!(w.due(a).as_deref(), Some(a), "back to the first path");
        // The file replaced.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(tmp.path().join("a.safetensors"), b"22").unwrap();
        let t = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options().write(true).open(a).unwrap().set_modified(t).unwrap();
        w.checked -= WATCH_PERIOD;
        assert_eq!(w.due(a).as_deref(), Some(a));
        assert_eq!(w.current(), a);
    }
}
