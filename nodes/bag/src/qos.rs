//! QoS profiles as rosbag2 stores them: in metadata.yaml and in the
//! `offered_qos_profiles` channel metadata, as the Jazzy form (names) or the
//! Humble form (integers), both read; the Jazzy form written.

use serde_yaml_ng::{Mapping, Value as Yaml};

/// How a publisher bounds the samples it keeps (Humble integers 0 to 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum History {
    /// Left to the middleware.
    SystemDefault,
    /// The latest [`QosProfile::depth`] samples.
    KeepLast,
    /// Every sample, up to the middleware's resource limits.
    KeepAll,
    /// Not known: what rosbag2 records for a discovered publisher, whose
    /// history is not announced; also any name or number not listed here.
    Unknown,
}

/// Whether lost samples are resent (Humble integers 0 to 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reliability {
    /// Left to the middleware.
    SystemDefault,
    /// Lost samples are resent; reliable and best-effort subscribers match.
    Reliable,
    /// Lost samples stay lost; only best-effort subscribers match.
    BestEffort,
    /// Any name or number not listed here (`best_available` included).
    Unknown,
}

/// Whether late-joining subscribers get earlier samples (Humble integers 0
/// to 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Left to the middleware.
    SystemDefault,
    /// The publisher keeps its last samples for subscribers that join later
    /// (latched topics: `/tf_static`, scenario descriptions).
    TransientLocal,
    /// Only subscribers present at publication get a sample.
    Volatile,
    /// Any name or number not listed here (`best_available` included).
    Unknown,
}

/// How a publisher shows that it is alive (Humble integers 0, 1 and 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveliness {
    /// Left to the middleware.
    SystemDefault,
    /// The middleware asserts it for the publisher.
    Automatic,
    /// The publisher asserts it by publishing (or explicitly).
    ManualByTopic,
    /// Any name or number not listed here (the deprecated manual-by-node
    /// included).
    Unknown,
}

/// A duration as rosbag2 writes it; "infinite" is ROS 2's 2^63-1 ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QosDuration {
    /// Whole seconds.
    pub sec: u64,
    /// Nanoseconds on top of `sec`, kept as written, so possibly over 10^9:
    /// bags recorded from discovered publishers often hold DDS's "infinite",
    /// 2147483647 s and 4294967295 ns.
    pub nsec: u64,
}

impl QosDuration {
    /// Infinite (no deadline, no lifespan limit, no lease) as ROS 2 spells it
    /// and this crate writes it; other bags may spell it as DDS does (see
    /// [`QosDuration::nsec`]), which does not compare equal.
    pub const INFINITE: QosDuration = QosDuration { sec: 9_223_372_036, nsec: 854_775_807 };
}

/// One publisher's offered QoS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QosProfile {
    /// How the publisher bounds the samples it keeps.
    pub history: History,
    /// Samples kept with [`History::KeepLast`]; 0 when not known (rosbag2
    /// records 0 for discovered publishers).
    pub depth: u32,
    /// Whether lost samples are resent.
    pub reliability: Reliability,
    /// Whether late joiners get earlier samples.
    pub durability: Durability,
    /// Longest expected gap between samples.
    pub deadline: QosDuration,
    /// How long a sample stays valid after it is published.
    pub lifespan: QosDuration,
    /// How the publisher shows that it is alive.
    pub liveliness: Liveliness,
    /// How long without a sign of life before the publisher counts as gone.
    pub liveliness_lease_duration: QosDuration,
    /// Whether the topic name goes to DDS as is, without ROS 2's `rt/` prefix.
    pub avoid_ros_namespace_conventions: bool,
}

impl QosProfile {
    /// A keep-last profile of `depth` samples, reliable or best effort,
    /// transient local or volatile; the rest as ROS 2's defaults (infinite
    /// durations, automatic liveliness).
    pub fn new(reliable: bool, transient_local: bool, depth: u32) -> QosProfile {
        QosProfile {
            history: History::KeepLast,
            depth,
            reliability: if reliable { Reliability::Reliable } else { Reliability::BestEffort },
            durability: if transient_local { Durability::TransientLocal } else { Durability::Volatile },
            deadline: QosDuration::INFINITE,
            lifespan: QosDuration::INFINITE,
            liveliness: Liveliness::Automatic,
            liveliness_lease_duration: QosDuration::INFINITE,
            avoid_ros_namespace_conventions: false,
        }
    }

    /// Whether it is [`Reliability::Reliable`]; system default and unknown
    /// count as not.
    pub fn is_reliable(&self) -> bool {
        self.reliability == Reliability::Reliable
    }

    /// Whether it is [`Durability::TransientLocal`]; system default and
    /// unknown count as not.
    pub fn is_transient_local(&self) -> bool {
        self.durability == Durability::TransientLocal
    }

    /// The Jazzy (metadata version 9) mapping.
    pub(crate) fn to_yaml(&self) -> Yaml {
        let dur = |d: QosDuration| {
            let mut m = Mapping::new();
            m.insert("sec".into(), d.sec.into());
            m.insert("nsec".into(), d.nsec.into());
            Yaml::Mapping(m)
        };
        let mut m = Mapping::new();
        m.insert(
            "history".into(),
            match self.history {
                History::SystemDefault => "system_default",
                History::KeepLast => "keep_last",
                History::KeepAll => "keep_all",
                History::Unknown => "unknown",
            }
            .into(),
        );
        m.insert("depth".into(), self.depth.into());
        m.insert(
            "reliability".into(),
            match self.reliability {
                Reliability::SystemDefault => "system_default",
                Reliability::Reliable => "reliable",
                Reliability::BestEffort => "best_effort",
                Reliability::Unknown => "unknown",
            }
            .into(),
        );
        m.insert(
            "durability".into(),
            match self.durability {
                Durability::SystemDefault => "system_default",
                Durability::TransientLocal => "transient_local",
                Durability::Volatile => "volatile",
                Durability::Unknown => "unknown",
            }
            .into(),
        );
        m.insert("deadline".into(), dur(self.deadline));
        m.insert("lifespan".into(), dur(self.lifespan));
        m.insert(
            "liveliness".into(),
            match self.liveliness {
                Liveliness::SystemDefault => "system_default",
                Liveliness::Automatic => "automatic",
                Liveliness::ManualByTopic => "manual_by_topic",
                Liveliness::Unknown => "unknown",
            }
            .into(),
        );
        m.insert("liveliness_lease_duration".into(), dur(self.liveliness_lease_duration));
        m.insert("avoid_ros_namespace_conventions".into(), self.avoid_ros_namespace_conventions.into());
        Yaml::Mapping(m)
    }

    /// Reads either form: names (Jazzy and later) or integers (Humble).
    fn from_yaml(y: &Yaml) -> Result<QosProfile, QosError> {
        let get = |k: &'static str| y.get(k).ok_or(QosError::Missing(k));
        let word = |k: &'static str| -> Result<Result<String, i64>, QosError> {
            match get(k)? {
                Yaml::String(s) => Ok(Ok(s.to_ascii_lowercase())),
                Yaml::Number(n) => Ok(Err(n.as_i64().unwrap_or(-1))),
                other => Err(QosError::Kind { key: k, found: format!("{other:?}") }),
            }
        };
        let dur = |k: &'static str| -> Result<QosDuration, QosError> {
            let d = get(k)?;
            let n = |f: &'static str| d.get(f).and_then(Yaml::as_u64).ok_or(QosError::Duration { key: k, field: f });
            Ok(QosDuration { sec: n("sec")?, nsec: n("nsec")? })
        };
        let history = match word("history")? {
            Ok(s) if s == "keep_last" => History::KeepLast,
            Ok(s) if s == "keep_all" => History::KeepAll,
            Ok(s) if s == "system_default" => History::SystemDefault,
            Err(1) => History::KeepLast,
            Err(2) => History::KeepAll,
            Err(0) => History::SystemDefault,
            _ => History::Unknown,
        };
        let reliability = match word("reliability")? {
            Ok(s) if s == "reliable" => Reliability::Reliable,
            Ok(s) if s == "best_effort" => Reliability::BestEffort,
            Ok(s) if s == "system_default" => Reliability::SystemDefault,
            Err(1) => Reliability::Reliable,
            Err(2) => Reliability::BestEffort,
            Err(0) => Reliability::SystemDefault,
            _ => Reliability::Unknown,
        };
        let durability = match word("durability")? {
            Ok(s) if s == "transient_local" => Durability::TransientLocal,
            Ok(s) if s == "volatile" => Durability::Volatile,
            Ok(s) if s == "system_default" => Durability::SystemDefault,
            Err(1) => Durability::TransientLocal,
            Err(2) => Durability::Volatile,
            Err(0) => Durability::SystemDefault,
            _ => Durability::Unknown,
        };
        let liveliness = match word("liveliness")? {
            Ok(s) if s == "automatic" => Liveliness::Automatic,
            Ok(s) if s == "manual_by_topic" => Liveliness::ManualByTopic,
            Ok(s) if s == "system_default" => Liveliness::SystemDefault,
            Err(1) => Liveliness::Automatic,
            Err(3) => Liveliness::ManualByTopic,
            Err(0) => Liveliness::SystemDefault,
            _ => Liveliness::Unknown,
        };
        Ok(QosProfile {
            history,
            depth: get("depth")?.as_u64().unwrap_or(0) as u32,
            reliability,
            durability,
            deadline: dur("deadline")?,
            lifespan: dur("lifespan")?,
            liveliness,
            liveliness_lease_duration: dur("liveliness_lease_duration")?,
            avoid_ros_namespace_conventions: get("avoid_ros_namespace_conventions")?.as_bool().unwrap_or(false),
        })
    }
}

/// Parses an `offered_qos_profiles` value: a YAML list, or (Humble, and the MCAP
/// channel metadata) a string holding one. Empty means none recorded.
pub(crate) fn parse_profiles(y: &Yaml) -> Result<Vec<QosProfile>, QosError> {
    match y {
        Yaml::String(s) if s.trim().is_empty() => Ok(vec![]),
        Yaml::String(s) => {
            let inner: Yaml = serde_yaml_ng::from_str(s).map_err(|e| QosError::Yaml(e.to_string()))?;
            parse_profiles(&inner)
        }
        Yaml::Sequence(items) => items.iter().map(QosProfile::from_yaml).collect(),
        Yaml::Null => Ok(vec![]),
        other => Err(QosError::NotList(format!("{other:?}"))),
    }
}

/// An `offered_qos_profiles` entry that is not rosbag2's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QosError {
    /// A profile without one of its keys.
    #[error("QoS profile without '{0}'")]
    Missing(&'static str),
    /// A policy that is neither a name nor a number.
    #[error("QoS '{key}' is {found}")]
    Kind {
        /// The policy.
        key: &'static str,
        /// What it is instead.
        found: String,
    },
    /// A duration without `sec` or `nsec`.
    #[error("QoS '{key}' without '{field}'")]
    Duration {
        /// The duration.
        key: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// A string form that is not YAML (what the parser said).
    #[error("offered_qos_profiles: {0}")]
    Yaml(String),
    /// Neither a list nor a string holding one.
    #[error("offered_qos_profiles is {0}")]
    NotList(String),
}

/// The list as YAML text (the form MCAP channel metadata carries).
pub(crate) fn profiles_to_string(profiles: &[QosProfile]) -> String {
    if profiles.is_empty() {
        return String::new();
    }
    let list = Yaml::Sequence(profiles.iter().map(QosProfile::to_yaml).collect());
    serde_yaml_ng::to_string(&list).unwrap_or_default().trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_read_and_the_jazzy_form_round_trips() {
        let humble = "- history: 3\n  depth: 0\n  reliability: 1\n  durability: 2\n  deadline:\n    sec: 2147483647\n    nsec: 4294967295\n  lifespan:\n    sec: 2147483647\n    nsec: 4294967295\n  liveliness: 1\n  liveliness_lease_duration:\n    sec: 2147483647\n    nsec: 4294967295\n  avoid_ros_namespace_conventions: false";
        let p = parse_profiles(&Yaml::String(humble.into())).unwrap();
        assert_eq!(p[0].reliability, Reliability::Reliable);
        assert_eq!(p[0].durability, Durability::Volatile);
        assert_eq!(p[0].history, History::Unknown);
        let q = QosProfile::new(false, true, 7);
        let text = profiles_to_string(std::slice::from_ref(&q));
        assert!(text.contains("reliability: best_effort") && text.contains("durability: transient_local"), "{text}");
        assert_eq!(parse_profiles(&Yaml::String(text)).unwrap(), vec![q]);
    }
}
