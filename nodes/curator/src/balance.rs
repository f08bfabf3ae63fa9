//! Balancing: choose clips so that their tags follow a target distribution.
//!
//! Targets are per tag key (`weather: {clear: 0.5, snow: 0.5}`), each summing
//! to 1. Strata are the combinations of the targeted keys' values; a stratum's
//! target is the product of its values' targets. The largest dataset that
//! meets every stratum's share is kept, best clips first in each stratum.

use std::collections::BTreeMap;

/// Target shares per tag key and value (`weather` → `snow` → 0.5), each 0..1;
/// a key's shares sum to 1. Clips whose value of a targeted key has no share
/// (or share 0) are never selected.
pub type Targets = BTreeMap<String, BTreeMap<String, f64>>;

/// How close the selection came for one targeted tag value; shares are
/// fractions (0..1) of clips.
#[derive(Clone, Debug, PartialEq)]
pub struct Achieved {
    /// The tag key (`weather`).
    pub key: String,
    /// The tag value (`snow`).
    pub value: String,
    /// The share asked for.
    pub target: f64,
    /// The share among the candidates: clips that passed the filters and deduplication.
    pub before: f64,
    /// The share among the clips selected.
    pub after: f64,
}

/// Balance targets that are malformed, or that the candidate clips cannot
/// meet; found before anything is selected, so a curation either meets its
/// targets or says which one it cannot.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BalanceError {
    /// A key's shares do not sum to 1 (within 0.001).
    #[error("balance target for '{key}' sums to {sum:.3}, not 1")]
    Sum {
        /// The tag key.
        key: String,
        /// What its shares sum to.
        sum: f64,
    },
    /// A value with a share above 0 that no candidate clip has.
    #[error("balance target {key}={value} ({share:.0}%) cannot be met: no clip has {key} '{value}' (values present: {present})")]
    Missing {
        /// The tag key.
        key: String,
        /// The value no clip has.
        value: String,
        /// Its target share, in percent (0..100).
        share: f64,
        /// The key's values the clips do have, sorted and comma-separated; `none` when no clip has the key.
        present: String,
    },
    /// A share outside 0..1.
    #[error("balance target for {key}={value} is {share}; shares run from 0 to 1")]
    Range {
        /// The tag key.
        key: String,
        /// The tag value.
        value: String,
        /// The share given.
        share: f64,
    },
}

/// Checks targets against the tags present. `tags[i]` are clip i's tags.
fn check(targets: &Targets, tags: &[BTreeMap<String, String>]) -> Result<(), BalanceError> {
    for (key, values) in targets {
        let sum: f64 = values.values().sum();
        for (v, &s) in values {
            if !(0.0..=1.0).contains(&s) {
                return Err(BalanceError::Range { key: key.clone(), value: v.clone(), share: s });
            }
        }
        if (sum - 1.0).abs() > 1e-3 {
            return Err(BalanceError::Sum { key: key.clone(), sum });
        }
        for (v, &s) in values {
            if s > 0.0 && !tags.iter().any(|t| t.get(key) == Some(v)) {
                let mut present: Vec<&str> = tags.iter().filter_map(|t| t.get(key).map(String::as_str)).collect();
                present.sort();
                present.dedup();
                return Err(BalanceError::Missing {
                    key: key.clone(),
                    value: v.clone(),
                    share: s * 100.0,
                    present: if present.is_empty() { "none".into() } else { present.join(", ") },
                });
            }
        }
    }
    Ok(())
}

/// Selects among `candidates` (indices into `tags`, best first by `quality`).
/// Returns the selected indices and how close each targeted value came.
pub(crate) fn select(
    targets: &Targets,
    tags: &[BTreeMap<String, String>],
    candidates: &[usize],
    quality: &[f32],
) -> Result<(Vec<usize>, Vec<Achieved>), BalanceError> {
    let cand_tags: Vec<BTreeMap<String, String>> = candidates.iter().map(|&i| tags[i].clone()).collect();
    check(targets, &cand_tags)?;
    if targets.is_empty() {
        return Ok((candidates.to_vec(), Vec::new()));
    }
    // Strata: the targeted keys' values of each clip (clips with an untargeted value are left out).
    let keys: Vec<&String> = targets.keys().collect();
    let mut strata: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
    for &i in candidates {
        let sig: Option<Vec<String>> =
            keys.iter().map(|k| tags[i].get(*k).filter(|v| targets[*k].get(*v).is_some_and(|s| *s > 0.0)).cloned()).collect();
        if let Some(sig) = sig {
            strata.entry(sig).or_default().push(i);
        }
    }
    let share = |sig: &[String]| -> f64 { keys.iter().zip(sig).map(|(k, v)| targets[*k][v]).product() };
    // Every combination with a target must be present for the product rule;
    // otherwise spread over the strata present, renormalized.
    let total_share: f64 = strata.keys().map(|s| share(s)).sum();
    let n = strata.iter().map(|(s, m)| m.len() as f64 / (share(s) / total_share)).fold(f64::MAX, f64::min);
    let mut selected = Vec::new();
    for (sig, members) in &mut strata {
        let want = (n * share(sig) / total_share + 1e-9).floor() as usize;
        members.sort_by(|&a, &b| quality[b].total_cmp(&quality[a]).then(a.cmp(&b)));
        selected.extend(members.iter().take(want));
    }
    selected.sort();
    let frac = |set: &[usize], k: &str, v: &str| {
        if set.is_empty() {
            0.0
        } else {
            set.iter().filter(|&&i| tags[i].get(k).map(String::as_str) == Some(v)).count() as f64 / set.len() as f64
        }
    };
    let mut achieved = Vec::new();
    for (k, values) in targets {
        for (v, &t) in values {
            achieved.push(Achieved {
                key: k.clone(),
                value: v.clone(),
                target: t,
                before: frac(candidates, k, v),
                after: frac(&selected, k, v),
            });
        }
    }
    Ok((selected, achieved))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_skewed_set_is_balanced_and_impossible_targets_are_named() {
        // 80 clear, 15 snow, 5 fog; target 40/40/20.
        let mut tags = Vec::new();
        for i in 0..100 {
            let w = if i < 80 {
                "clear"
            } else if i < 95 {
                "snow"
            } else {
                "fog"
            };
            let t = if i % 2 == 0 { "day" } else { "night" };
            tags.push(tag(&[("weather", w), ("time_of_day", t)]));
        }
        let targets: Targets = [(
            "weather".to_string(),
            [("clear".to_string(), 0.4), ("snow".to_string(), 0.4), ("fog".to_string(), 0.2)].into_iter().collect(),
        )]
        .into_iter()
        .collect();
        let all: Vec<usize> = (0..100).collect();
        let q = vec![1.0; 100];
        let (sel, ach) = select(&targets, &tags, &all, &q).unwrap();
        for a in &ach {
            assert!((a.after - a.target).abs() <= 0.05, "{a:?}");
        }
        assert_eq!(sel.len(), 25, "5 fog clips are 20%: 25 in all");
        let bad: Targets =
            [("weather".to_string(), [("clear".to_string(), 0.5), ("rain".to_string(), 0.5)].into_iter().collect())].into_iter().collect();
        let e = select(&bad, &tags, &all, &q).unwrap_err().to_string();
        assert!(e.contains("weather=rain") && e.contains("no clip has weather 'rain'") && e.contains("clear, fog, snow"), "{e}");
        let sum: Targets = [("weather".to_string(), [("clear".to_string(), 0.5)].into_iter().collect())].into_iter().collect();
        assert!(select(&sum, &tags, &all, &q).unwrap_err().to_string().contains("sums to 0.500"));
    }
}
