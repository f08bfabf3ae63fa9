//! The held-out question set: questions about braking whose answers the
//! simulator measured (trials of seeds never trained on), scored for the
//! reasoner and for a baseline that assumes a dry road.

use serde::{Deserialize, Serialize};

use crate::stopping::{Braking, StoppingModel};
use crate::surface::{class_of, CLASS_PHRASES};

/// The friction a driver who assumes a dry road plans with.
pub const DRY_MU: f32 = 0.8;

/// Where a pedestrian stands in the stop-or-not questions, as shares of the
/// measured stopping distance: near and far misses on both sides.
const GAP_SHARES: [f32; 4] = [0.8, 0.95, 1.05, 1.25];

/// A question and the simulator's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Question {
    /// How far does the car travel before it stops?
    StoppingDistance {
        /// The situation.
        situation: Situation,
        /// Measured metres.
        truth: f32,
    },
    /// Does the car stop before a pedestrian `gap` metres ahead?
    StopsBefore {
        /// The situation.
        situation: Situation,
        /// Metres to the pedestrian from where the stop is decided.
        gap: f32,
        /// Measured: stopped short of them.
        truth: bool,
    },
}

/// A braking situation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Situation {
    /// m/s.
    pub speed: f32,
    /// Friction of the road.
    pub mu: f32,
    /// Seconds before the brakes act.
    pub reaction: f32,
}

/// A surface's name for a friction coefficient (its [`class_of`]).
pub fn surface(mu: f32) -> &'static str {
    CLASS_PHRASES[class_of(mu)]
}

impl Question {
    /// The question as a person would ask it.
    pub fn text(&self) -> String {
        match self {
            Question::StoppingDistance { situation: s, .. } => format!(
                "At {:.1} m/s on {} (μ {:.2}), {:.2} s before the brakes act: how far does the car travel before it stops?",
                s.speed,
                surface(s.mu),
                s.mu,
                s.reaction
            ),
            Question::StopsBefore { situation: s, gap, .. } => format!(
                "At {:.1} m/s on {} (μ {:.2}), {:.2} s before the brakes act: does the car stop before a pedestrian {gap:.1} m ahead?",
                s.speed,
                surface(s.mu),
                s.mu,
                s.reaction
            ),
        }
    }
}

/// Two questions per trial: its stopping distance, and whether it stops
/// before a pedestrian placed near that distance.
pub fn from_trials(trials: &[Braking]) -> Vec<Question> {
    let mut out = Vec::with_capacity(2 * trials.len());
    for (i, t) in trials.iter().enumerate() {
        let situation = Situation { speed: t.speed, mu: t.mu, reaction: t.reaction };
        out.push(Question::StoppingDistance { situation, truth: t.distance });
        let gap = t.distance * GAP_SHARES[i % GAP_SHARES.len()];
        out.push(Question::StopsBefore { situation, gap, truth: t.distance < gap });
    }
    out
}

/// How a reasoner did on a question set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Stopping-distance questions.
    pub distance_questions: usize,
    /// Share of answers within 15 % of the measured distance.
    pub within_15: f32,
    /// Median of |answer − truth| / truth.
    pub median_error: f32,
    /// Stop-or-not questions.
    pub stop_questions: usize,
    /// Share answered right.
    pub stop_accuracy: f32,
    /// Share of "it stops" answers where it did not (the dangerous mistake).
    pub false_stops: f32,
}

/// Scores `model` on `questions`, reasoning with the friction `believe`
/// gives for the road's true one (the truth itself, or a dry road for the
/// baseline).
pub fn score(questions: &[Question], model: &StoppingModel, believe: impl Fn(f32) -> f32) -> Scores {
    let (mut errors, mut within, mut right, mut stops, mut false_stops) = (Vec::new(), 0usize, 0usize, 0usize, 0usize);
    for q in questions {
        match q {
            Question::StoppingDistance { situation: s, truth } => {
                let d = model.distance(s.speed, believe(s.mu), s.reaction);
                let e = (d - truth).abs() / truth.max(0.01);
                within += usize::from(e <= 0.15);
                errors.push(e);
            }
            Question::StopsBefore { situation: s, gap, truth } => {
                let says = model.distance(s.speed, believe(s.mu), s.reaction) < *gap;
                stops += 1;
                right += usize::from(says == *truth);
                false_stops += usize::from(says && !truth);
            }
        }
    }
    errors.sort_by(f32::total_cmp);
    let n = errors.len();
    Scores {
        distance_questions: n,
        within_15: within as f32 / n.max(1) as f32,
        median_error: if n == 0 { f32::NAN } else { errors[n / 2] },
        stop_questions: stops,
        stop_accuracy: right as f32 / stops.max(1) as f32,
        false_stops: false_stops as f32 / stops.max(1) as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dry_road_baseline_fails_on_ice_and_the_truth_does_not() {
        // Trials of an ideal car: d = v·r + v²/(2·μ·g).
        let trials: Vec<Braking> = (0..40)
            .map(|i| {
                let mu = if i % 2 == 0 { 0.1 } else { 0.8 };
                let speed = 5.0 + (i % 10) as f32;
                let distance = speed * 0.1 + speed * speed / (2.0 * mu * 9.81);
                Braking { mu, speed, reaction: 0.1 + 0.01 * (i % 3) as f32, distance, time: 0.0 }
            })
            .collect();
        let model = StoppingModel::fit(&trials).unwrap();
        let qs = from_trials(&trials);
        assert_eq!(qs.len(), 80);
        assert!(qs[1].text().contains("pedestrian"), "{}", qs[1].text());
        let truth = score(&qs, &model, |mu| mu);
        assert_eq!(truth.within_15, 1.0);
        assert_eq!(truth.stop_accuracy, 1.0);
        let dry = score(&qs, &model, |_| DRY_MU);
        // Right on the dry half, far too short on ice: it says "stops" where it does not.
        assert!((dry.within_15 - 0.5).abs() < 1e-6, "{dry:?}");
        assert!(dry.false_stops > 0.2, "{dry:?}");
    }
}
