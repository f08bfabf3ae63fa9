//! The driving score in the CARLA leaderboard's form, and aggregates over
//! episodes with 95 % confidence intervals.
//!
//! Driving score = route completion × Π pᵢ^nᵢ over the infractions of the
//! episode, with the leaderboard's coefficients for collisions (pedestrians
//! 0.50, vehicles 0.60, anything else 0.65). The leaderboard counts driving
//! off the road against route completion; we do the same, and count each
//! crossing of the centre line or the kerb as a lane infraction with the
//! coefficient of its "running a stop sign" (0.80), the mildest it has.

use serde::Serialize;

use crate::episode::{ArmMeasures, Episode, Hit, Outcome, Stage};

/// Penalty coefficients per infraction (each multiplies the score once per occurrence).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Penalties {
    /// A pedestrian, child or cyclist hit.
    pub vulnerable: f64,
    /// A vehicle hit.
    pub vehicle: f64,
    /// Anything else hit (poles, bins, buildings).
    pub other: f64,
    /// A crossing of the centre line or the kerb.
    pub lane: f64,
}

impl Default for Penalties {
    fn default() -> Self {
        Penalties { vulnerable: 0.50, vehicle: 0.60, other: 0.65, lane: 0.80 }
    }
}

impl Penalties {
    /// The product of the penalties of these collisions and lane infractions.
    pub fn of(&self, hits: &[Hit], lane_infractions: u32) -> f64 {
        let mut p = self.lane.powi(lane_infractions as i32);
        for h in hits {
            p *= if h.vulnerable() {
                self.vulnerable
            } else if h.class == "vehicle" {
                self.vehicle
            } else {
                self.other
            };
        }
        p
    }
}

/// Route completion (0 to 1) × penalty.
pub fn driving_score(route_completion: f64, penalty: f64) -> f64 {
    (route_completion * penalty).clamp(0.0, 1.0)
}

/// A mean with its 95 % confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// The estimate.
    pub value: f64,
    /// Lower bound of the 95 % interval.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

impl Estimate {
    /// Mean of `xs` with the normal approximation's interval (1.96 standard errors).
    pub fn mean(xs: &[f64]) -> Estimate {
        let n = xs.len() as f64;
        if xs.is_empty() {
            return Estimate { value: f64::NAN, low: f64::NAN, high: f64::NAN };
        }
        let m = xs.iter().sum::<f64>() / n;
        let var = if xs.len() > 1 { xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
        let h = 1.96 * (var / n).sqrt();
        Estimate { value: m, low: m - h, high: m + h }
    }

    /// The same estimate with its interval cut to what the quantity can be.
    pub fn within(self, lo: f64, hi: f64) -> Estimate {
        Estimate { value: self.value, low: self.low.max(lo), high: self.high.min(hi) }
    }

    /// A proportion `k` of `n` with Wilson's score interval (good near 0 and 1).
    pub fn rate(k: usize, n: usize) -> Estimate {
        if n == 0 {
            return Estimate { value: f64::NAN, low: f64::NAN, high: f64::NAN };
        }
        let (k, n, z) = (k as f64, n as f64, 1.96f64);
        let p = k / n;
        let d = 1.0 + z * z / n;
        let c = (p + z * z / (2.0 * n)) / d;
        let h = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / d;
        Estimate { value: p, low: (c - h).max(0.0), high: (c + h).min(1.0) }
    }
}

/// One driver on one scenario over its episodes.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The scenario's name.
    pub scenario: String,
    /// Who drove.
    pub driver: String,
    /// Episodes.
    pub episodes: usize,
    /// Mean driving score.
    pub driving_score: Estimate,
    /// Mean route completion.
    pub route_completion: Estimate,
    /// Share of episodes that completed the route.
    pub completed: Estimate,
    /// Share of episodes with a pedestrian, child or cyclist hit.
    pub vulnerable_collisions: Estimate,
    /// Share of episodes with any collision.
    pub collisions: Estimate,
    /// Mean impact speed of the collisions with pedestrians, children and cyclists, m/s.
    pub vulnerable_impact_speed: Option<f64>,
    /// Median of the episodes' smallest time-to-collision, seconds.
    pub median_min_ttc: Option<f64>,
    /// Hard-braking events per episode.
    pub hard_brakes: f64,
    /// Lane infractions per episode.
    pub lane_infractions: f64,
    /// Episodes simulated per minute of wall-clock time.
    pub episodes_per_minute: f64,
    /// Arm scenarios: placement, drops, grasps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arm: Option<ArmSummary>,
}

/// An arm's episodes aggregated.
#[derive(Debug, Clone, Serialize)]
pub struct ArmSummary {
    /// Share of episodes that put the cup down upright on the spot.
    pub placed: Estimate,
    /// Share of episodes with a cup off the table.
    pub dropped: Estimate,
    /// Share with a cup knocked over on the table.
    pub knocked_over: Estimate,
    /// Share in which the gripper held the task's cup at some point.
    pub grasped: Estimate,
    /// Median distance of the cup from the spot at the end, metres.
    pub median_place_error_m: Option<f64>,
    /// Grasps that closed on nothing, per episode.
    pub missed_grasps: f64,
}

impl Summary {
    /// Aggregates episodes of one scenario and driver.
    pub fn of(episodes: &[Episode]) -> Summary {
        let n = episodes.len();
        let f = |g: &dyn Fn(&Episode) -> f64| episodes.iter().map(g).collect::<Vec<f64>>();
        let vru: Vec<f64> = episodes.iter().flat_map(|e| e.collisions.iter().filter(|h| h.vulnerable()).map(|h| h.speed)).collect();
        let mut ttc: Vec<f64> = episodes.iter().filter_map(|e| e.min_ttc).collect();
        ttc.sort_by(f64::total_cmp);
        let wall: f64 = episodes.iter().map(|e| e.wall_seconds).sum();
        let per = |g: &dyn Fn(&Episode) -> f64| if n == 0 { 0.0 } else { episodes.iter().map(g).sum::<f64>() / n as f64 };
        Summary {
            scenario: episodes.first().map(|e| e.scenario.clone()).unwrap_or_default(),
            driver: episodes.first().map(|e| e.driver.clone()).unwrap_or_default(),
            episodes: n,
            driving_score: Estimate::mean(&f(&|e| e.driving_score)).within(0.0, 1.0),
            route_completion: Estimate::mean(&f(&|e| e.route_completion)).within(0.0, 1.0),
            completed: Estimate::rate(episodes.iter().filter(|e| e.outcome == Outcome::Completed).count(), n),
            vulnerable_collisions: Estimate::rate(episodes.iter().filter(|e| e.hit_vulnerable()).count(), n),
            collisions: Estimate::rate(episodes.iter().filter(|e| !e.collisions.is_empty()).count(), n),
            vulnerable_impact_speed: (!vru.is_empty()).then(|| vru.iter().sum::<f64>() / vru.len() as f64),
            median_min_ttc: ttc.get(ttc.len() / 2).copied(),
            hard_brakes: per(&|e| e.hard_brakes as f64),
            lane_infractions: per(&|e| e.lane_infractions as f64),
            episodes_per_minute: if wall > 0.0 { n as f64 * 60.0 / wall } else { 0.0 },
            arm: ArmSummary::of(episodes),
        }
    }
}

impl ArmSummary {
    /// None unless every episode is an arm's.
    fn of(episodes: &[Episode]) -> Option<ArmSummary> {
        let arms: Vec<&ArmMeasures> = episodes.iter().map(|e| e.arm.as_ref()).collect::<Option<Vec<_>>>()?;
        if arms.is_empty() {
            return None;
        }
        let n = arms.len();
        let count = |f: &dyn Fn(&ArmMeasures) -> bool| arms.iter().filter(|a| f(a)).count();
        let mut errors: Vec<f64> = arms.iter().map(|a| a.place_error_m).filter(|x| x.is_finite()).collect();
        errors.sort_by(f64::total_cmp);
        Some(ArmSummary {
            placed: Estimate::rate(count(&|a| a.stage == Stage::Placed), n),
            dropped: Estimate::rate(count(&|a| a.cups_dropped > 0), n),
            knocked_over: Estimate::rate(count(&|a| a.cups_knocked_over > 0), n),
            grasped: Estimate::rate(count(&|a| a.stage >= Stage::Grasped), n),
            median_place_error_m: errors.get(errors.len() / 2).copied(),
            missed_grasps: arms.iter().map(|a| a.missed_grasps as f64).sum::<f64>() / n as f64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_stays_inside_zero_and_one_and_covers_the_rate() {
        let e = Estimate::rate(0, 100);
        assert_eq!(e.value, 0.0);
        assert_eq!(e.low, 0.0);
        assert!(e.high > 0.02 && e.high < 0.05, "{e:?}");
        let e = Estimate::rate(50, 100);
        assert!((e.low - 0.404).abs() < 0.01 && (e.high - 0.596).abs() < 0.01, "{e:?}");
    }

    #[test]
    fn penalties_multiply_per_infraction() {
        let hit = |c: &str| Hit { time: 0.0, class: c.into(), instance: 1, speed: 1.0 };
        let p = Penalties::default();
        assert_eq!(p.of(&[], 0), 1.0);
        assert!((p.of(&[hit("child")], 0) - 0.5).abs() < 1e-12);
        assert!((p.of(&[hit("vehicle"), hit("pole")], 1) - 0.6 * 0.65 * 0.8).abs() < 1e-12);
        assert_eq!(driving_score(0.5, 0.5), 0.25);
    }
}
