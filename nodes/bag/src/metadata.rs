//! `metadata.yaml`, the description rosbag2 keeps beside a bag's files (and,
//! serialized, in each MCAP file's `rosbag2` metadata record). Versions 4 to 9
//! are read; version 9 (ROS 2 Jazzy) is written.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml_ng::{Mapping, Value as Yaml};

use crate::qos::{parse_profiles, QosError, QosProfile};
use crate::BagError;

pub(crate) const WRITTEN_VERSION: u64 = 9;

/// One `topic_metadata` entry: a topic as it was offered while recording.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicMetadata {
    /// Fully qualified topic name (`/cam/image_raw`).
    pub name: String,
    /// `pkg/msg/Type`.
    pub type_name: String,
    /// `cdr` for every bag rosbag2 writes.
    pub serialization_format: String,
    /// What each publisher offered; empty when none was recorded.
    pub offered_qos_profiles: Vec<QosProfile>,
    /// RIHS01 type hash (`RIHS01_` and 64 hex digits); empty in bags before
    /// version 7 (Iron).
    pub type_description_hash: String,
}

/// One `files` entry: a file of the bag and the messages in it.
#[derive(Clone, Debug, PartialEq)]
pub struct FileInfo {
    /// File name, relative to the bag folder (`<name>_<n>.mcap`).
    pub path: String,
    /// Log time of its earliest message, ns since the epoch; 0 when empty.
    pub starting_time_ns: u64,
    /// From its earliest to its latest message's log time, ns.
    pub duration_ns: u64,
    /// Messages in the file.
    pub message_count: u64,
}

/// The contents of `metadata.yaml` (`rosbag2_bagfile_information`).
/// Times are log times in nanoseconds; fields older versions lack read as
/// empty.
#[derive(Clone, Debug, PartialEq)]
pub struct BagMetadata {
    /// Format version; 4 to 9 are read, 9 (Jazzy) is written.
    pub version: u64,
    /// Storage plugin; [`BagReader`](crate::BagReader) refuses any but
    /// `mcap` or empty (`sqlite3` bags, for one).
    pub storage_identifier: String,
    /// The bag's files in order, relative to its folder (older rosbag2
    /// versions put the folder name in front).
    pub relative_file_paths: Vec<String>,
    /// Log time of the earliest message, ns since the epoch; 0 when empty.
    pub starting_time_ns: u64,
    /// From the earliest to the latest message's log time, ns.
    pub duration_ns: u64,
    /// Messages in all files.
    pub message_count: u64,
    /// Every topic with the number of its messages.
    pub topics: Vec<(TopicMetadata, u64)>,
    /// rosbag2's own file or message compression (`zstd`); empty when none,
    /// as in this crate's bags, which compress MCAP chunks instead.
    pub compression_format: String,
    /// Whether `compression_format` applies to whole files or to each
    /// message; empty when none.
    pub compression_mode: String,
    /// Per file: its span and message count (versions 5 and later).
    pub files: Vec<FileInfo>,
    /// Key/value pairs the recording user added (version 6 and later).
    pub custom_data: BTreeMap<String, String>,
    /// The recorder's ROS 2 distribution (`jazzy`); empty before version 8.
    pub ros_distro: String,
}

fn map(pairs: Vec<(&str, Yaml)>) -> Yaml {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(Yaml::String(k.into()), v);
    }
    Yaml::Mapping(m)
}

fn ns(key: &str, v: u64) -> Yaml {
    map(vec![(key, v.into())])
}

impl BagMetadata {
    /// The `rosbag2_bagfile_information` mapping.
    fn to_yaml(&self) -> Yaml {
        let topics = self
            .topics
            .iter()
            .map(|(t, count)| {
                map(vec![
                    (
                        "topic_metadata",
                        map(vec![
                            ("name", t.name.clone().into()),
                            ("type", t.type_name.clone().into()),
                            ("serialization_format", t.serialization_format.clone().into()),
                            ("offered_qos_profiles", Yaml::Sequence(t.offered_qos_profiles.iter().map(QosProfile::to_yaml).collect())),
                            ("type_description_hash", t.type_description_hash.clone().into()),
                        ]),
                    ),
                    ("message_count", (*count).into()),
                ])
            })
            .collect();
        let files = self
            .files
            .iter()
            .map(|f| {
                map(vec![
                    ("path", f.path.clone().into()),
                    ("starting_time", ns("nanoseconds_since_epoch", f.starting_time_ns)),
                    ("duration", ns("nanoseconds", f.duration_ns)),
                    ("message_count", f.message_count.into()),
                ])
            })
            .collect();
        let custom = if self.custom_data.is_empty() {
            Yaml::Null
        } else {
            let mut m = Mapping::new();
            for (k, v) in &self.custom_data {
                m.insert(k.clone().into(), v.clone().into());
            }
            Yaml::Mapping(m)
        };
        map(vec![
            ("version", self.version.into()),
            ("storage_identifier", self.storage_identifier.clone().into()),
            ("duration", ns("nanoseconds", self.duration_ns)),
            ("starting_time", ns("nanoseconds_since_epoch", self.starting_time_ns)),
            ("message_count", self.message_count.into()),
            ("topics_with_message_count", Yaml::Sequence(topics)),
            ("compression_format", self.compression_format.clone().into()),
            ("compression_mode", self.compression_mode.clone().into()),
            ("relative_file_paths", Yaml::Sequence(self.relative_file_paths.iter().map(|p| p.clone().into()).collect())),
            ("files", Yaml::Sequence(files)),
            ("custom_data", custom),
            ("ros_distro", self.ros_distro.clone().into()),
        ])
    }

    /// The text of `metadata.yaml`.
    pub(crate) fn to_file_text(&self) -> String {
        serde_yaml_ng::to_string(&map(vec![("rosbag2_bagfile_information", self.to_yaml())])).unwrap_or_default()
    }

    /// The text stored in MCAP `rosbag2` metadata records (the inner mapping).
    pub(crate) fn to_record_text(&self) -> String {
        serde_yaml_ng::to_string(&self.to_yaml()).unwrap_or_default()
    }

    /// Parses `metadata.yaml` (`path` names the file in errors).
    pub(crate) fn parse(path: &Path, text: &str) -> Result<BagMetadata, BagError> {
        let bad = |reason| BagError::Metadata { path: path.to_path_buf(), reason };
        let doc: Yaml = serde_yaml_ng::from_str(text).map_err(|e| bad(MetadataError::Yaml(e.to_string())))?;
        let info = doc.get("rosbag2_bagfile_information").ok_or_else(|| bad(MetadataError::NoInformation))?;
        Self::from_yaml(info).map_err(bad)
    }

    /// Reads the inner mapping (also the form of MCAP `rosbag2` records).
    fn from_yaml(info: &Yaml) -> Result<BagMetadata, MetadataError> {
        let u = |v: Option<&Yaml>, what: &'static str| -> Result<u64, MetadataError> {
            v.and_then(|x| x.as_u64().or_else(|| x.as_i64().map(|i| i.max(0) as u64))).ok_or(MetadataError::Number(what))
        };
        let s = |v: Option<&Yaml>| v.and_then(Yaml::as_str).unwrap_or("").to_string();
        let version = u(info.get("version"), "version")?;
        let mut topics = Vec::new();
        for (i, t) in info.get("topics_with_message_count").and_then(Yaml::as_sequence).into_iter().flatten().enumerate() {
            let m = t.get("topic_metadata").ok_or(MetadataError::TopicMetadata(i))?;
            let name = s(m.get("name"));
            let qos = match m.get("offered_qos_profiles") {
                Some(q) => parse_profiles(q).map_err(|source| MetadataError::Qos { topic: name.clone(), source })?,
                None => vec![],
            };
            topics.push((
                TopicMetadata {
                    type_name: s(m.get("type")),
                    serialization_format: s(m.get("serialization_format")),
                    offered_qos_profiles: qos,
                    type_description_hash: s(m.get("type_description_hash")),
                    name,
                },
                u(t.get("message_count"), "message_count").unwrap_or(0),
            ));
        }
        let files = info
            .get("files")
            .and_then(Yaml::as_sequence)
            .into_iter()
            .flatten()
            .map(|f| FileInfo {
                path: s(f.get("path")),
                starting_time_ns: f.get("starting_time").and_then(|t| t.get("nanoseconds_since_epoch")).and_then(Yaml::as_u64).unwrap_or(0),
                duration_ns: f.get("duration").and_then(|t| t.get("nanoseconds")).and_then(Yaml::as_u64).unwrap_or(0),
                message_count: f.get("message_count").and_then(Yaml::as_u64).unwrap_or(0),
            })
            .collect();
        let custom_data = info
            .get("custom_data")
            .and_then(Yaml::as_mapping)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str().unwrap_or("").to_string(), v.as_str().unwrap_or("").to_string()))
            .collect();
        Ok(BagMetadata {
            version,
            storage_identifier: s(info.get("storage_identifier")),
            relative_file_paths: info
                .get("relative_file_paths")
                .and_then(Yaml::as_sequence)
                .ok_or(MetadataError::FilePaths)?
                .iter()
                .map(|p| p.as_str().unwrap_or("").to_string())
                .collect(),
            starting_time_ns: u(info.get("starting_time").and_then(|t| t.get("nanoseconds_since_epoch")), "starting_time")?,
            duration_ns: u(info.get("duration").and_then(|t| t.get("nanoseconds")), "duration")?,
            message_count: u(info.get("message_count"), "message_count")?,
            topics,
            compression_format: s(info.get("compression_format")),
            compression_mode: s(info.get("compression_mode")),
            files,
            custom_data,
            ros_distro: s(info.get("ros_distro")),
        })
    }
}

/// A `metadata.yaml` (or MCAP `rosbag2` record) that is not rosbag2's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// Not YAML (what the parser said, with the line).
    #[error("not valid YAML: {0}")]
    Yaml(String),
    /// No `rosbag2_bagfile_information` at the top.
    #[error("no 'rosbag2_bagfile_information' mapping")]
    NoInformation,
    /// A count or time that is missing or not a number.
    #[error("'{0}' is missing or not a number")]
    Number(&'static str),
    /// A topic entry without its metadata.
    #[error("topic {0} has no 'topic_metadata'")]
    TopicMetadata(usize),
    /// A topic whose QoS profiles do not read.
    #[error("topic {topic}: {source}")]
    Qos {
        /// The topic.
        topic: String,
        /// What is wrong with its profiles.
        source: QosError,
    },
    /// No list of the bag's files.
    #[error("'relative_file_paths' is missing")]
    FilePaths,
    /// A storage plugin other than MCAP.
    #[error("storage '{0}' is not supported (only mcap)")]
    Storage(String),
}
