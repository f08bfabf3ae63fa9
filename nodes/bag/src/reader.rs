//! Opens bags written by anyone: a rosbag2 folder with `metadata.yaml`
//! (Humble's integer QoS and no type hashes, Jazzy's and later), a folder of
//! `.mcap` files without it, or a bare `.mcap` file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use s2r_idl::{Registry, RegistryError, TypeName};

use crate::metadata::{BagMetadata, MetadataError};
use crate::qos::{parse_profiles, QosProfile};
use crate::scan::{Damage, McapFile};
use crate::BagError;

/// A topic of the bag (one per topic and type across all files).
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    pub topic: String,
    /// `pkg/msg/Type`.
    pub type_name: String,
    /// Encoding of the schema (`ros2msg` for rosbag2) and its text.
    pub schema_encoding: String,
    pub schema: String,
    /// `cdr` for rosbag2.
    pub message_encoding: String,
    pub qos: Vec<QosProfile>,
    /// RIHS01 hash; empty when the writer did not store one.
    pub type_hash: String,
    /// Readable messages.
    pub count: u64,
}

/// A message read from a bag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BagMessage {
    /// Index into [`BagReader::connections`].
    pub connection: usize,
    pub log_time: u64,
    pub publish_time: u64,
    /// Serialized message, encapsulation header included.
    pub data: Bytes,
}

pub struct BagReader {
    pub path: PathBuf,
    /// `metadata.yaml`, when the bag has one.
    pub metadata: Option<BagMetadata>,
    pub files: Vec<McapFile>,
    pub connections: Vec<Connection>,
    /// Per file: channel id → connection index.
    channel_map: Vec<BTreeMap<u16, usize>>,
    /// Problems with the bag as a whole (a listed file missing, a schema that
    /// does not parse), beside the damage inside files.
    pub problems: Vec<String>,
}

fn type_name_of(schema_name: &str) -> String {
    TypeName::parse(schema_name).map(|t| t.full()).unwrap_or_else(|| schema_name.to_string())
}

impl BagReader {
    pub fn open(path: &Path) -> Result<BagReader, BagError> {
        if !path.exists() {
            return Err(BagError::NotABag { path: path.into(), reason: "no such file or folder".into() });
        }
        let mut problems = Vec::new();
        let (metadata, paths) = if path.is_dir() {
            let yaml = path.join("metadata.yaml");
            if yaml.exists() {
                let text = std::fs::read_to_string(&yaml).map_err(|e| BagError::io(&yaml, e))?;
                let meta = BagMetadata::parse(&yaml, &text)?;
                if meta.storage_identifier != "mcap" && !meta.storage_identifier.is_empty() {
                    return Err(BagError::Metadata { path: yaml, reason: MetadataError::Storage(meta.storage_identifier.clone()) });
                }
                let mut paths = Vec::new();
                for rel in &meta.relative_file_paths {
                    // Older rosbag2 versions listed paths with the folder name in front.
                    let name = Path::new(rel).file_name().map(PathBuf::from).unwrap_or_else(|| rel.into());
                    let p = path.join(name);
                    if p.exists() {
                        paths.push(p);
                    } else {
                        problems.push(format!("{}: file {rel} listed in metadata.yaml is missing", path.display()));
                    }
                }
                (Some(meta), paths)
            } else {
                let mut paths: Vec<PathBuf> = std::fs::read_dir(path)
                    .map_err(|e| BagError::io(path, e))?
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "mcap"))
                    .collect();
                paths.sort();
                if paths.is_empty() {
                    return Err(BagError::NotABag {
                        path: path.into(),
                        reason: "the folder has neither metadata.yaml nor .mcap files".into(),
                    });
                }
                (None, paths)
            }
        } else {
            (None, vec![path.to_path_buf()])
        };

        let files = paths.iter().map(|p| McapFile::open(p)).collect::<Result<Vec<_>, _>>()?;
        let mut connections: Vec<Connection> = Vec::new();
        let mut channel_map = Vec::new();
        for f in &files {
            let mut map = BTreeMap::new();
            for (id, ch) in &f.summary.channels {
                let schema = f.summary.schemas.get(&ch.schema_id);
                let type_name = schema.map(|s| type_name_of(&s.name)).unwrap_or_default();
                let idx = match connections.iter().position(|c| c.topic == ch.topic && c.type_name == type_name) {
                    Some(i) => i,
                    None => {
                        let qos = match ch.metadata.get("offered_qos_profiles") {
                            Some(text) => parse_profiles(&serde_yaml_ng::Value::String(text.clone())).unwrap_or_else(|e| {
                                problems.push(format!("{}: channel {id} ({}): {e}", f.path.display(), ch.topic));
                                vec![]
                            }),
                            None => vec![],
                        };
                        connections.push(Connection {
                            topic: ch.topic.clone(),
                            type_name: type_name.clone(),
                            schema_encoding: schema.map(|s| s.encoding.clone()).unwrap_or_default(),
                            schema: schema.map(|s| String::from_utf8_lossy(&s.data).into_owned()).unwrap_or_default(),
                            message_encoding: ch.message_encoding.clone(),
                            qos,
                            type_hash: ch.metadata.get("topic_type_hash").cloned().unwrap_or_default(),
                            count: 0,
                        });
                        connections.len() - 1
                    }
                };
                connections[idx].count += f.summary.channel_counts.get(id).copied().unwrap_or(0);
                map.insert(*id, idx);
            }
            channel_map.push(map);
        }
        // metadata.yaml fills in what files left out (QoS, hashes of Humble bags).
        if let Some(meta) = &metadata {
            for (t, _) in &meta.topics {
                if let Some(c) = connections.iter_mut().find(|c| c.topic == t.name && c.type_name == t.type_name) {
                    if c.qos.is_empty() {
                        c.qos = t.offered_qos_profiles.clone();
                    }
                    if c.type_hash.is_empty() {
                        c.type_hash = t.type_description_hash.clone();
                    }
                }
            }
        }
        let mut reader = BagReader { path: path.to_path_buf(), metadata, files, connections, channel_map, problems };
        for i in 0..reader.connections.len() {
            if let Err(e) = reader.registry(i) {
                reader.problems.push(e.to_string());
            }
        }
        Ok(reader)
    }

    /// The message definitions of a connection, parsed from its schema.
    pub fn registry(&self, connection: usize) -> Result<Registry, BagError> {
        let c = &self.connections[connection];
        let schema = |source| BagError::Schema { path: self.path.clone(), topic: c.topic.clone(), source: Box::new(source) };
        let ty = TypeName::parse(&c.type_name).ok_or_else(|| schema(RegistryError::BadName(c.type_name.clone())))?;
        if c.schema_encoding != "ros2msg" {
            return Err(schema(RegistryError::BadSchema {
                type_name: c.type_name.clone(),
                reason: format!("schema encoding '{}' (only ros2msg is read)", c.schema_encoding),
            }));
        }
        Registry::from_schema_text(&ty, &c.schema).map_err(schema)
    }

    /// Every readable message, file after file, in file order.
    pub fn messages(&self) -> impl Iterator<Item = BagMessage> + '_ {
        self.files.iter().zip(&self.channel_map).flat_map(|(f, map)| {
            f.messages().filter_map(move |m| {
                map.get(&m.channel_id).map(|&connection| BagMessage {
                    connection,
                    log_time: m.log_time,
                    publish_time: m.publish_time,
                    data: m.data,
                })
            })
        })
    }

    /// Damage found inside the files.
    pub fn damage(&self) -> Vec<&Damage> {
        self.files.iter().flat_map(|f| f.summary.damage.iter()).collect()
    }

    pub fn message_count(&self) -> u64 {
        self.files.iter().map(|f| f.summary.message_count).sum()
    }

    pub fn start_time(&self) -> Option<u64> {
        self.files.iter().filter_map(|f| f.summary.start_time).min()
    }

    pub fn end_time(&self) -> Option<u64> {
        self.files.iter().filter_map(|f| f.summary.end_time).max()
    }

    pub fn size(&self) -> u64 {
        self.files.iter().map(McapFile::size).sum()
    }
}
