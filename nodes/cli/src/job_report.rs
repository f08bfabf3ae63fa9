//! What a training command tells trainer_node as it goes: when the
//! environment names a file in `S2R_JOB_REPORT`, `s2r train KIND` appends one
//! JSON object per line to it (the run's steps and held-out metric, each
//! step's loss, each held-out evaluation). Without it nothing is written.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

/// The environment variable that names the report file.
pub const ENV: &str = "S2R_JOB_REPORT";

/// One line of a job's report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Training starts: the steps it runs to and the held-out figure it reports.
    Start {
        /// The step the run ends at.
        steps: u64,
        /// The held-out figure's name, e.g. `token_accuracy`.
        metric: String,
        /// Whether larger values of it are better.
        higher_is_better: bool,
    },
    /// A training step's loss.
    Step {
        /// The step just taken.
        step: u64,
        /// Its loss.
        loss: f64,
    },
    /// A held-out evaluation.
    HeldOut {
        /// The step it was made at.
        step: u64,
        /// The figure's value.
        value: f64,
    },
}

struct Sink {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

fn sink() -> Option<&'static Sink> {
    static SINK: OnceLock<Option<Sink>> = OnceLock::new();
    SINK.get_or_init(|| {
        let path = PathBuf::from(std::env::var_os(ENV)?);
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path);
        match file {
            Ok(f) => Some(Sink { path, file: Mutex::new(Some(f)) }),
            Err(e) => {
                eprintln!("warning: {ENV}={}: {e}; no job report", path.display());
                None
            }
        }
    })
    .as_ref()
}

/// Appends `event` to the job report, if one is asked for. A write that
/// fails is said once; training goes on.
pub fn emit(event: Event) {
    let Some(sink) = sink() else { return };
    let mut file = sink.file.lock().unwrap();
    let Some(f) = file.as_mut() else { return };
    let mut line = serde_json::to_string(&event).expect("events serialize");
    line.push('\n');
    if let Err(e) = f.write_all(line.as_bytes()) {
        eprintln!("warning: {ENV}={}: {e}; no more job report", sink.path.display());
        *file = None;
    }
}

/// The events of a report file from byte `from` on, and where the next read
/// starts (a line not yet finished is left for then). Lines that do not
/// parse are skipped.
pub fn read_from(path: &Path, from: u64) -> (Vec<Event>, u64) {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else { return (Vec::new(), from) };
    if f.seek(SeekFrom::Start(from)).is_err() {
        return (Vec::new(), from);
    }
    let mut text = String::new();
    if f.read_to_string(&mut text).is_err() {
        return (Vec::new(), from);
    }
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    let events = text[..complete].lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    (events, from + complete as u64)
}

/// A training command's progress on the terminal and in the job report: each
/// step's loss (smoothed) and rate on one line, each held-out evaluation on
/// a line of its own.
pub struct StepLine {
    steps: usize,
    start: std::time::Instant,
    ema: Option<f32>,
}

impl StepLine {
    /// Progress towards `steps` steps, timed from now.
    pub fn new(steps: usize) -> StepLine {
        StepLine { steps, start: std::time::Instant::now(), ema: None }
    }

    /// After a step.
    pub fn step(&mut self, step: usize, loss: f32) {
        emit(Event::Step { step: step as u64, loss: loss as f64 });
        let e = self.ema.map_or(loss, |m| 0.95 * m + 0.05 * loss);
        self.ema = Some(e);
        let rate = step as f64 / self.start.elapsed().as_secs_f64().max(1e-3);
        eprint!("\rstep {step}/{} loss {e:.3} ({rate:.2} steps/s)   ", self.steps);
        let _ = std::io::stderr().flush();
    }

    /// After a held-out evaluation of `what` (a fraction, printed as a percentage) at `step`, with its loss.
    pub fn held_out(&self, step: usize, what: &str, value: f32, loss: f32) {
        emit(Event::HeldOut { step: step as u64, value: value as f64 });
        eprintln!();
        println!("step {step}: held-out {what} {:.1}%, loss {loss:.3}", value * 100.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_back_line_by_line_leaving_a_partial_line() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("report.jsonl");
        let a = Event::Start { steps: 10, metric: "token_accuracy".into(), higher_is_better: true };
        let b = Event::Step { step: 1, loss: 2.5 };
        let mut text = String::new();
        for e in [&a, &b] {
            text += &serde_json::to_string(e).unwrap();
            text.push('\n');
        }
        text += "{\"event\":\"held_out\",\"st";
        std::fs::write(&p, &text).unwrap();
        let (events, at) = read_from(&p, 0);
        assert_eq!(events, vec![a, b.clone()]);
        let (more, at2) = read_from(&p, at);
        assert!(more.is_empty() && at2 == at, "the unfinished line waits");
        std::fs::write(&p, text + "ep\":3,\"value\":0.5}\n").unwrap();
        let (more, _) = read_from(&p, at);
        assert_eq!(more, vec![Event::HeldOut { step: 3, value: 0.5 }]);
        assert_eq!(serde_json::to_string(&b).unwrap(), r#"{"event":"step","step":1,"loss":2.5}"#);
    }
}
