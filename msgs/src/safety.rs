//! The safety filter: a velocity command projected onto what a reasoning
//! chain's constraints (`sim2real_msgs/Reasoning`) allow, so that any driver
//! (a learned policy, a script, a person at the keyboard) keeps to them.
//!
//! ```
//! use sim2real_msgs::safety::filter_twist;
//! use sim2real_msgs::sim2real_msgs::msg::{Constraint, Reasoning};
//! let r = Reasoning {
//!     situation: "creeping past a parked car on ice".into(),
//!     constraints: vec![Constraint { name: "max_speed".into(), value: 4.0, unit: "m/s".into(), confidence: 0.9, region: vec![] }],
//!     ..Default::default()
//! };
//! let f = filter_twist(10.0, 0.2, &r);
//! assert_eq!(f.linear, 4.0);
//! assert!((f.angular - 0.08).abs() < 1e-12, "the same curvature, slower");
//! assert!(f.changed);
//! ```

use crate::sim2real_msgs::msg::Reasoning;

/// A command after the filter.
#[derive(Clone, Debug, PartialEq)]
pub struct Filtered {
    /// Forward speed, m/s.
    pub linear: f64,
    /// Yaw rate, rad/s.
    pub angular: f64,
    /// Whether the filter changed the command.
    pub changed: bool,
}

/// The speed limit a chain sets (its `max_speed` constraint; the lowest if several).
pub fn max_speed(r: &Reasoning) -> Option<f64> {
    r.constraints.iter().filter(|c| c.name == "max_speed" && c.value.is_finite()).map(|c| c.value as f64).reduce(f64::min)
}

/// `linear` (m/s) and `angular` (rad/s) within the chain's `max_speed`:
/// forward speed above the limit comes down to it and the yaw rate with it in
/// proportion, so that the car keeps to the path it was steering (the same
/// curvature, driven slower). Reversing and commands within the limit pass
/// unchanged.
pub fn filter_twist(linear: f64, angular: f64, r: &Reasoning) -> Filtered {
    match max_speed(r) {
        Some(limit) if linear > limit.max(0.0) => {
            let limit = limit.max(0.0);
            Filtered { linear: limit, angular: angular * limit / linear, changed: true }
        }
        _ => Filtered { linear, angular, changed: false },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim2real_msgs::msg::Constraint;

    fn chain(limits: &[f32]) -> Reasoning {
        Reasoning {
            constraints: limits
                .iter()
                .map(|v| Constraint { name: "max_speed".into(), value: *v, unit: "m/s".into(), confidence: 1.0, region: vec![] })
                .chain([Constraint { name: "stop_distance".into(), value: 1.0, unit: "m".into(), confidence: 1.0, region: vec![] }])
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn speed_comes_down_to_the_lowest_limit_keeping_the_curvature() {
        let f = filter_twist(12.0, 0.3, &chain(&[6.0, 3.0]));
        assert_eq!(f.linear, 3.0);
        assert!((f.angular / f.linear - 0.3 / 12.0).abs() < 1e-12);
        assert!(f.changed);
    }

    #[test]
    fn commands_within_the_limit_reversing_and_chains_without_one_pass() {
        assert!(!filter_twist(2.0, 0.3, &chain(&[6.0])).changed);
        assert!(!filter_twist(-1.0, 0.3, &chain(&[0.0])).changed);
        assert!(!filter_twist(20.0, 0.3, &chain(&[])).changed);
        assert!(!filter_twist(20.0, 0.3, &chain(&[f32::NAN])).changed);
        // A stop constraint stops: no forward motion, no turning on the spot.
        let f = filter_twist(5.0, 0.4, &chain(&[0.0]));
        assert_eq!((f.linear, f.angular), (0.0, 0.0));
    }
}
