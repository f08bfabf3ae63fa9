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
    /// Topic name as recorded (`/cam/image_raw`).
    pub topic: String,
    /// `pkg/msg/Type`.
    pub type_name: String,
    /// Encoding of the schema: `ros2msg` for rosbag2, the only one
    /// [`BagReader::registry`] parses; empty when the channel has no schema.
    pub schema_encoding: String,
    /// The schema's text: for `ros2msg`, the `.msg` definition, then each
    /// dependency after a line of 80 `=` and `MSG: pkg/Type`.
    pub schema: String,
    /// `cdr` for rosbag2.
    pub message_encoding: String,
    /// What its publishers offered while recording, from the channel's
    /// `offered_qos_profiles` or else `metadata.yaml`; empty when neither has it.
    pub qos: Vec<QosProfile>,
    /// RIHS01 hash (channel metadata `topic_type_hash`, else `metadata.yaml`);
    /// empty when the writer did not store one.
    pub type_hash: String,
    /// Readable messages in all files (those in damaged chunks not counted).
    pub count: u64,
}

/// A message read from a bag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BagMessage {
    /// Index into [`BagReader::connections`].
    pub connection: usize,
    /// When the recorder received it, ns since the epoch; playback follows it.
    pub log_time: u64,
    /// When it was published, ns since the epoch; equal to `log_time` where
    /// the writer did not know (as with [`BagWriter::write_message`](crate::BagWriter::write_message)).
    pub publish_time: u64,
    /// Serialized message (CDR), 4-byte encapsulation header included. It
    /// shares the file's memory map: cheap to clone, and it keeps the map alive.
    pub data: Bytes,
}

/// An open bag. Every file is scanned once, at [`BagReader::open`]; messages
/// are read on demand from memory maps. Damage inside files does not fail
/// opening: it is in [`BagReader::damage`] and [`BagReader::problems`].
pub struct BagReader {
    /// The path it was opened with: the bag folder or the bare `.mcap` file.
    pub path: PathBuf,
    /// `metadata.yaml`, when the bag has one.
    pub metadata: Option<BagMetadata>,
    /// Its MCAP files, in the order `metadata.yaml` lists them (by name
    /// without it).
    pub files: Vec<McapFile>,
    /// One per topic and type across all files; [`BagMessage::connection`]
    /// indexes it.
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
    /// Opens a bag folder (with or without `metadata.yaml`) or a bare `.mcap`
    /// file and scans every file. Fails when the path does not exist or holds
    /// no bag, `metadata.yaml` does not parse or names a storage other than
    /// `mcap`, or a file cannot be read or is not MCAP at all; a listed file
    /// that is missing, a bad schema and damage are recorded instead.
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

    /// The message definitions of a connection, parsed from its schema, for
    /// decoding its messages. Fails ([`BagError::Schema`]) when the schema is
    /// not `ros2msg` or does not parse; panics when `connection` is not an
    /// index into [`BagReader::connections`].
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

    /// Every readable message, file after file, in file order (log-time
    /// order only as far as the writer wrote in it); messages in damaged
    /// chunks are skipped.
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

    /// Damage found inside the files, file after file; empty for an intact
    /// bag.
    pub fn damage(&self) -> Vec<&Damage> {
        self.files.iter().flat_map(|f| f.summary.damage.iter()).collect()
    }

    /// Readable messages in all files (those in damaged chunks not counted).
    pub fn message_count(&self) -> u64 {
        self.files.iter().map(|f| f.summary.message_count).sum()
    }

    /// Log time of the earliest readable message, ns since the epoch; `None`
    /// when there is none.
    pub fn start_time(&self) -> Option<u64> {
        self.files.iter().filter_map(|f| f.summary.start_time).min()
    }

    /// Log time of the latest readable message, ns since the epoch; `None`
    /// when there is none.
    pub fn end_time(&self) -> Option<u64> {
        self.files.iter().filter_map(|f| f.summary.end_time).max()
    }

    /// Bytes of its MCAP files together (`metadata.yaml` not counted).
    pub fn size(&self) -> u64 {
        self.files.iter().map(McapFile::size).sum()
    }
}
