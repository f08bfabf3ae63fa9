//! Writes rosbag2 bags: a folder with `metadata.yaml` and `<name>_<n>.mcap`
//! files (profile `ros2`, `ros2msg` schemas, `cdr` messages, QoS and type-hash
//! channel metadata, a `rosbag2` metadata record), chunked and indexed.
//!
//! Crash safety: every chunk is written behind a provisional footer (see
//! [`crate::mcap_out`]), and every `flush` (the recorder calls it at least once
//! a second) ends the current chunk, waits for it to be written and rewrites
//! `metadata.yaml`, so a process killed at any point leaves a bag that readers
//! open with everything up to that flush.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use s2r_idl::Message;

use crate::mcap_out::{McapOut, Payload};
use crate::metadata::{BagMetadata, FileInfo, TopicMetadata, WRITTEN_VERSION};
use crate::qos::{profiles_to_string, QosProfile};
use crate::BagError;

/// Compression of each MCAP chunk; every MCAP reader reads all three.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Chunks stored as they are.
    None,
    /// LZ4 frames: cheap to write, a modest ratio.
    Lz4,
    /// Zstandard (level 3): the smallest files, the most CPU.
    Zstd,
}

impl Compression {
    /// Reads `none` (or an empty string), `lz4` or `zstd`, in any case;
    /// anything else is a [`BagError::Usage`].
    pub fn parse(s: &str) -> Result<Compression, BagError> {
        match s.to_ascii_lowercase().as_str() {
            "" | "none" => Ok(Compression::None),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            other => Err(BagError::Usage(format!("unknown compression '{other}' (none, lz4 or zstd)"))),
        }
    }

    /// `none`, `lz4` or `zstd`, as [`Compression::parse`] reads them; for lz4
    /// and zstd also what a chunk's MCAP `compression` field holds (empty for
    /// none).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// What a chunk's `compression` field holds.
    pub(crate) fn mcap_name(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// How a [`BagWriter`] writes. The default: uncompressed 4 MiB chunks, one
/// file however large or long, two threads that check and compress chunks
/// (zstd keeps up with twice the Python writer's rate with two, not one),
/// recorded as `jazzy`.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// Compression of each chunk.
    pub compression: Compression,
    /// Target uncompressed chunk size in bytes; a chunk also ends at every
    /// [`BagWriter::flush`].
    pub chunk_size: u64,
    /// Start a new file once the current one reaches this many bytes. It is
    /// checked before each message against the bytes written, those encoded
    /// and waiting, and the chunks still being compressed at their
    /// uncompressed size (so a compressed file may end a few chunks short of
    /// it, and an uncompressed one up to a message past it). `None`: never
    /// by size.
    pub max_file_size: Option<u64>,
    /// Start a new file once the current one spans this many nanoseconds of
    /// log time. `None`: never by time.
    pub max_file_duration_ns: Option<u64>,
    /// The distribution the bag claims to come from: `ros_distro` in
    /// `metadata.yaml`, `ROS_DISTRO` in each file's `rosbag2` record.
    pub ros_distro: String,
    /// Threads that compute each finished chunk's CRC and compress it (at
    /// least one; one more writes them to the file). The caller's thread
    /// goes on filling the next chunk meanwhile.
    pub threads: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            compression: Compression::None,
            chunk_size: 4 * 1024 * 1024,
            max_file_size: None,
            max_file_duration_ns: None,
            ros_distro: "jazzy".into(),
            threads: 2,
        }
    }
}

/// A topic to record: name, type, definition, QoS of its publishers.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicSpec {
    /// Fully qualified topic name (`/cam/image_raw`).
    pub name: String,
    /// `pkg/msg/Type`.
    pub type_name: String,
    /// The concatenated `ros2msg` definition; empty when unknown.
    pub schema: String,
    /// RIHS01 hash; empty when unknown.
    pub type_hash: String,
    /// What its publishers offer, stored as `offered_qos_profiles`; empty
    /// when not known.
    pub qos: Vec<QosProfile>,
}

impl TopicSpec {
    /// A topic of a compiled-in message type, with its generated definition
    /// and RIHS01 hash.
    pub fn of<M: Message>(name: &str, qos: Vec<QosProfile>) -> TopicSpec {
        TopicSpec { name: name.into(), type_name: M::TYPE_NAME.into(), schema: M::SCHEMA.into(), type_hash: M::TYPE_HASH.into(), qos }
    }
}

impl From<&crate::Connection> for TopicSpec {
    /// The topic of a bag being read, as it was recorded (name, type, schema,
    /// hash, offered QoS), to write it into another bag.
    fn from(c: &crate::Connection) -> TopicSpec {
        TopicSpec {
            name: c.topic.clone(),
            type_name: c.type_name.clone(),
            schema: c.schema.clone(),
            type_hash: c.type_hash.clone(),
            qos: c.qos.clone(),
        }
    }
}

/// Handle of a topic added to a [`BagWriter`], meaningful to that writer
/// only: another writer panics on it or writes to a different topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TopicId(usize);

struct TopicState {
    spec: TopicSpec,
    count: u64,
    /// Channel id in the current file, once it has one.
    channel: Option<u16>,
}

/// The log times of some messages: first, last, how many.
#[derive(Default, Clone, Copy)]
pub(crate) struct Span {
    pub(crate) first: Option<u64>,
    pub(crate) last: u64,
    pub(crate) count: u64,
}

impl Span {
    pub(crate) fn add(&mut self, t: u64) {
        self.first = Some(self.first.map_or(t, |f| f.min(t)));
        self.last = self.last.max(t);
        self.count += 1;
    }
}

/// Writes one bag folder. Crash-safe at every [`BagWriter::flush`]: a
/// process killed at any point leaves a bag that readers open with
/// everything up to the last flush. End it with [`BagWriter::finish`]:
/// without it, readers find no summary in the last file, and `metadata.yaml`
/// stays as of the last flush. An error while splitting (ending
/// one file, starting the next) leaves it with no open file: later writes
/// and flushes then panic.
pub struct BagWriter {
    dir: PathBuf,
    name: String,
    opts: WriterOptions,
    mcap: Option<McapOut>,
    file_index: usize,
    file_span: Span,
    files: Vec<FileInfo>,
    bag_span: Span,
    topics: Vec<TopicState>,
    sequence: u32,
}

impl BagWriter {
    /// Creates the bag folder `dir` (which must not exist yet), its first
    /// file `<folder name>_0.mcap` and `metadata.yaml`. Fails with
    /// [`BagError::Usage`] when `dir` exists or its name is not UTF-8.
    pub fn create(dir: &Path, opts: WriterOptions) -> Result<BagWriter, BagError> {
        if dir.exists() {
            return Err(BagError::Usage(format!("output folder {} already exists", dir.display())));
        }
        fs::create_dir_all(dir).map_err(|e| BagError::io(dir, e))?;
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| BagError::Usage(format!("{} has no usable folder name", dir.display())))?
            .to_string();
        let mut w = BagWriter {
            dir: dir.to_path_buf(),
            name,
            opts,
            mcap: None,
            file_index: 0,
            file_span: Span::default(),
            files: Vec::new(),
            bag_span: Span::default(),
            topics: Vec::new(),
            sequence: 0,
        };
        w.open_file()?;
        w.flush()?;
        Ok(w)
    }

    fn file_name(&self, index: usize) -> String {
        format!("{}_{index}.mcap", self.name)
    }

    fn file_path(&self) -> PathBuf {
        self.dir.join(self.file_name(self.file_index))
    }

    fn open_file(&mut self) -> Result<(), BagError> {
        let path = self.file_path();
        let library = format!("sim2real s2r-bag {}", env!("CARGO_PKG_VERSION"));
        let o = &self.opts;
        self.mcap = Some(McapOut::create(&path, o.compression, o.chunk_size, o.threads, &library)?);
        self.file_span = Span::default();
        for t in &mut self.topics {
            t.channel = None;
        }
        Ok(())
    }

    /// Adds a topic; messages of it are written with the returned id. The
    /// same name and type again returns the first id (the rest of `spec` is
    /// then ignored). The topic enters `metadata.yaml` at once (a rewrite,
    /// which can fail) and the MCAP file with its first message.
    pub fn add_topic(&mut self, spec: TopicSpec) -> Result<TopicId, BagError> {
        if let Some(i) = self.topics.iter().position(|t| t.spec.name == spec.name && t.spec.type_name == spec.type_name) {
            return Ok(TopicId(i));
        }
        self.topics.push(TopicState { spec, count: 0, channel: None });
        self.write_metadata_yaml()?;
        Ok(TopicId(self.topics.len() - 1))
    }

    fn channel(&mut self, id: TopicId) -> Result<u16, BagError> {
        if let Some(c) = self.topics[id.0].channel {
            return Ok(c);
        }
        let spec = &self.topics[id.0].spec;
        let w = self.mcap.as_mut().expect("a file is open");
        let schema = w.add_schema(&spec.type_name, "ros2msg", spec.schema.as_bytes())?;
        let mut meta = BTreeMap::new();
        meta.insert("offered_qos_profiles".to_string(), profiles_to_string(&spec.qos));
        meta.insert("topic_type_hash".to_string(), spec.type_hash.clone());
        let channel = w.add_channel(schema, &spec.name, "cdr", &meta)?;
        self.topics[id.0].channel = Some(channel);
        Ok(channel)
    }

    /// Writes one serialized message (encapsulation header included), copying
    /// it. `log_time` is when it was received, `publish_time` when it was
    /// sent (nanoseconds since the epoch). Starts a new file first when the
    /// current one has reached [`WriterOptions::max_file_size`] or
    /// [`WriterOptions::max_file_duration_ns`].
    pub fn write(&mut self, id: TopicId, log_time: u64, publish_time: u64, data: &[u8]) -> Result<(), BagError> {
        self.write_payload(id, log_time, publish_time, Payload::Borrowed(data))
    }

    /// [`BagWriter::write`] of a shared buffer: a large message in an
    /// uncompressed chunk goes to the file from this buffer, without a copy.
    pub fn write_bytes(&mut self, id: TopicId, log_time: u64, publish_time: u64, data: Bytes) -> Result<(), BagError> {
        self.write_payload(id, log_time, publish_time, Payload::Shared(data))
    }

    fn write_payload(&mut self, id: TopicId, log_time: u64, publish_time: u64, data: Payload<'_>) -> Result<(), BagError> {
        if self.should_split(log_time) {
            self.split()?;
        }
        let channel = self.channel(id)?;
        self.sequence = self.sequence.wrapping_add(1);
        self.mcap.as_mut().expect("a file is open").write(channel, self.sequence, log_time, publish_time, data)?;
        self.topics[id.0].count += 1;
        self.file_span.add(log_time);
        self.bag_span.add(log_time);
        Ok(())
    }

    /// Writes a message of a compiled-in type, serialized as CDR;
    /// `log_time` (ns since the epoch) is its publish time too. Fails with
    /// [`BagError::Usage`] when the message does not serialize.
    pub fn write_message<M: Message>(&mut self, id: TopicId, log_time: u64, msg: &M) -> Result<(), BagError> {
        let data = s2r_idl::dynamic::serialize(msg).map_err(|e| BagError::Usage(format!("serializing {}: {e}", M::TYPE_NAME)))?;
        self.write_bytes(id, log_time, log_time, data.into())
    }

    /// Bytes of the current file so far (chunks not yet compressed counted
    /// at their uncompressed size).
    fn size(&self) -> u64 {
        self.mcap.as_ref().map_or(0, |m| m.len())
    }

    fn should_split(&self, log_time: u64) -> bool {
        if self.file_span.count == 0 {
            return false;
        }
        let too_big = self.opts.max_file_size.is_some_and(|max| self.size() >= max);
        let too_long =
            self.opts.max_file_duration_ns.is_some_and(|max| log_time.saturating_sub(self.file_span.first.unwrap_or(log_time)) >= max);
        too_big || too_long
    }

    fn split(&mut self) -> Result<(), BagError> {
        self.finish_file()?;
        self.file_index += 1;
        self.open_file()?;
        self.flush()
    }

    fn finish_file(&mut self) -> Result<(), BagError> {
        let w = self.mcap.take().expect("a file is open");
        self.files.push(FileInfo {
            path: self.file_name(self.file_index),
            starting_time_ns: self.file_span.first.unwrap_or(0),
            duration_ns: self.file_span.last.saturating_sub(self.file_span.first.unwrap_or(0)),
            message_count: self.file_span.count,
        });
        let record = BTreeMap::from([
            ("serialized_metadata".to_string(), self.metadata().to_record_text()),
            ("ROS_DISTRO".to_string(), self.opts.ros_distro.clone()),
        ]);
        w.finish("rosbag2", &record)
    }

    /// Ends the current chunk, waits until everything written so far is in
    /// the file behind a provisional footer, and rewrites `metadata.yaml`:
    /// safe from a killed process (the kernel has it), not synced to the
    /// disk against a power loss. Every flush ends a chunk, so frequent
    /// flushes make small chunks.
    pub fn flush(&mut self) -> Result<(), BagError> {
        self.mcap.as_mut().expect("a file is open").flush()?;
        self.write_metadata_yaml()
    }

    /// The bag's description as it stands.
    fn metadata(&self) -> BagMetadata {
        let mut files = self.files.clone();
        let mut paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
        if self.mcap.is_some() {
            paths.push(self.file_name(self.file_index));
            files.push(FileInfo {
                path: self.file_name(self.file_index),
                starting_time_ns: self.file_span.first.unwrap_or(0),
                duration_ns: self.file_span.last.saturating_sub(self.file_span.first.unwrap_or(0)),
                message_count: self.file_span.count,
            });
        }
        let start = self.bag_span.first.unwrap_or(0);
        BagMetadata {
            version: WRITTEN_VERSION,
            storage_identifier: "mcap".into(),
            relative_file_paths: paths,
            starting_time_ns: start,
            duration_ns: self.bag_span.last.saturating_sub(start),
            message_count: self.bag_span.count,
            topics: self
                .topics
                .iter()
                .map(|t| {
                    (
                        TopicMetadata {
                            name: t.spec.name.clone(),
                            type_name: t.spec.type_name.clone(),
                            serialization_format: "cdr".into(),
                            offered_qos_profiles: t.spec.qos.clone(),
                            type_description_hash: t.spec.type_hash.clone(),
                        },
                        t.count,
                    )
                })
                .collect(),
            // Compression is per MCAP chunk, which every MCAP reader handles;
            // rosbag2's own file/message compression is not used.
            compression_format: String::new(),
            compression_mode: String::new(),
            files,
            custom_data: BTreeMap::new(),
            ros_distro: self.opts.ros_distro.clone(),
        }
    }

    fn write_metadata_yaml(&self) -> Result<(), BagError> {
        let path = self.dir.join("metadata.yaml");
        let tmp = self.dir.join(".metadata.yaml.tmp");
        fs::write(&tmp, self.metadata().to_file_text()).map_err(|e| BagError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| BagError::io(&path, e))
    }

    /// Writes the summary and footer of the last file and the final
    /// `metadata.yaml`, and returns what it holds.
    pub fn finish(mut self) -> Result<BagMetadata, BagError> {
        self.finish_file()?;
        let meta = self.metadata();
        self.write_metadata_yaml()?;
        Ok(meta)
    }
}
