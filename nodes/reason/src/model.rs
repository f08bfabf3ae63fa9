//! The reason model file: the predictors and how they were trained, as JSON
//! (`s2r train reason` writes it; reason_node and `s2r eval reason` read it).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::questions::Scores;
use crate::stopping::StoppingModel;
use crate::ReasonError;

/// What the file says it is.
pub const FORMAT: &str = "sim2real.reason/1";

/// The predictors and their record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReasonModel {
    /// [`FORMAT`].
    pub format: String,
    /// How far a car travels before it stops.
    pub stopping: StoppingModel,
    /// The scenario whose car the trials braked.
    pub scenario: String,
    /// The trials' seeds, first and last.
    pub seeds: (u64, u64),
    /// The surface predictor, when trained (`--surface`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surface: Option<SurfaceRecord>,
    /// The hazard predictor, when trained (`--hazard-seeds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hazard: Option<HazardRecord>,
    /// The cup's outcome predictor, when trained (`--cup-seeds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cup: Option<CupRecord>,
    /// Scores on the held-out question set when it was trained, with the true friction.
    pub held_out: Option<Scores>,
    /// The software that trained it.
    pub software: String,
}

/// The surface predictor's weights file and record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SurfaceRecord {
    /// The weights (safetensors), relative to the model file's folder.
    pub weights: String,
    /// The camera topic it learned from.
    pub topic: String,
    /// The datasets it learned from (as given).
    pub data: Vec<String>,
    /// Training frames.
    pub frames: usize,
    /// Optimisation steps.
    pub steps: usize,
    /// Accuracy on the held-out seeds of its datasets (seeds ending in 9), if any.
    pub held_out_accuracy: Option<f32>,
}

/// The hazard predictor's weights file and record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HazardRecord {
    /// The weights (safetensors), relative to the model file's folder.
    pub weights: String,
    /// The scenarios whose episodes it learned from.
    pub scenarios: Vec<String>,
    /// Their seeds, first and last (held out: those ending in 9).
    pub seeds: (u64, u64),
    /// Who drove the episodes it learned from.
    pub drivers: Vec<String>,
    /// What counted as something in the path (`free` or `in-path`; see `s2r train reason --help`).
    #[serde(default = "free_labels")]
    pub labels: String,
    /// Whether it reads the frame `hazard::GAP` seconds before too (motion).
    #[serde(default)]
    pub motion: bool,
    /// The camera and the resolution it saw (width, height).
    pub camera: (String, u32, u32),
    /// Training frames.
    pub frames: usize,
    /// Optimisation steps.
    pub steps: usize,
    /// Its scores on the held-out seeds' frames.
    pub held_out: Option<crate::hazard::Scores>,
}

/// The cup's outcome predictor's weights file and record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CupRecord {
    /// The weights (safetensors), relative to the model file's folder.
    pub weights: String,
    /// The arm scenario whose table, arm and cup the push trials ran with.
    pub scenario: String,
    /// The trials' seeds, first and last.
    pub seeds: (u64, u64),
    /// Trials it learned from, and how many ended stays, tips, falls.
    pub trials: usize,
    /// Per outcome (stays, tips, falls).
    pub outcomes: [usize; 3],
    /// Seeds whose push the arm could not run (out of reach, or the cup moved before it).
    pub skipped: usize,
    /// Optimisation steps.
    pub steps: usize,
    /// Its scores on the held-out seeds' trials.
    pub held_out: Option<crate::cup::Scores>,
}

fn free_labels() -> String {
    "free".into()
}

impl ReasonModel {
    /// The surface predictor's weights file, when it has one.
    pub fn surface_weights(&self, model_path: &Path) -> Option<std::path::PathBuf> {
        self.surface.as_ref().map(|s| model_path.parent().unwrap_or(Path::new(".")).join(&s.weights))
    }

    /// The hazard predictor's weights file, when it has one.
    pub fn hazard_weights(&self, model_path: &Path) -> Option<std::path::PathBuf> {
        self.hazard.as_ref().map(|s| model_path.parent().unwrap_or(Path::new(".")).join(&s.weights))
    }

    /// The cup's outcome predictor's weights file, when it has one.
    pub fn cup_weights(&self, model_path: &Path) -> Option<std::path::PathBuf> {
        self.cup.as_ref().map(|s| model_path.parent().unwrap_or(Path::new(".")).join(&s.weights))
    }

    /// Writes the file (pretty JSON), atomically.
    pub fn save(&self, path: &Path) -> Result<(), ReasonError> {
        let io = |source| ReasonError::Io { path: path.into(), source };
        let text = serde_json::to_string_pretty(self).expect("a ReasonModel serialises");
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text + "\n").map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Reads a model file, naming the path and the problem.
    pub fn load(path: &Path) -> Result<ReasonModel, ReasonError> {
        let bad = |problem: String| ReasonError::BadModel { path: path.into(), problem };
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let m: ReasonModel = serde_json::from_str(&text).map_err(|e| bad(format!("it does not parse: {e}")))?;
        if m.format != FORMAT {
            return Err(bad(format!("its format is `{}`, this software reads `{FORMAT}`", m.format)));
        }
        if !m.stopping.coef.iter().all(|c| c.is_finite()) || m.stopping.coef[0] <= 0.0 {
            return Err(bad(format!("its stopping predictor's coefficients {:?} are not a braking car's", m.stopping.coef)));
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_loads_and_refuses_junk_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reason.json");
        let m = ReasonModel {
            format: FORMAT.into(),
            stopping: StoppingModel { coef: [0.05, 1.0, 0.0, 0.2], records: 10, rms: 0.1 },
            scenario: "icy_night_crossing".into(),
            seeds: (0, 9),
            surface: None,
            hazard: None,
            cup: None,
            held_out: None,
            software: "test".into(),
        };
        m.save(&path).unwrap();
        assert_eq!(ReasonModel::load(&path).unwrap(), m);
        std::fs::write(&path, "{\"format\": 3}").unwrap();
        let e = ReasonModel::load(&path).unwrap_err().to_string();
        assert!(e.contains("reason.json") && e.contains("does not parse") && e.contains("s2r train reason"), "{e}");
        let e = ReasonModel::load(&dir.path().join("missing.json")).unwrap_err().to_string();
        assert!(e.contains("missing.json") && e.contains("cannot read"), "{e}");
    }
}
