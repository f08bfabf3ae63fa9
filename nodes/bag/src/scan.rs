//! One MCAP file, read record by record from a memory map, so that a truncated
//! file or a damaged chunk costs only what is damaged: every readable record
//! before and after it is still found, and the damage is reported with the
//! file, the byte offset and the problem.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::BagError;

use crate::format::{MAGIC, OP_CHANNEL, OP_CHUNK, OP_DATA_END, OP_FOOTER, OP_HEADER, OP_MESSAGE, OP_METADATA, OP_SCHEMA};

/// Something unreadable in a file, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The MCAP file.
    pub file: PathBuf,
    /// Byte offset in the file where the damage starts: of the record, or of
    /// the chunk that holds it.
    pub offset: u64,
    /// What is wrong there.
    pub problem: Problem,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: at byte {}: {}", self.file.display(), self.offset, self.problem)
    }
}

/// What is wrong at a place in an MCAP file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// A record body shorter than its fields.
    #[error("record ends {0} bytes early")]
    ShortRecord(usize),
    /// A string field that is not UTF-8.
    #[error("a string is not UTF-8")]
    NotUtf8,
    /// A chunk that claims an implausible size (a damaged header).
    #[error("claims {0} uncompressed bytes")]
    Implausible(u64),
    /// Compressed data that does not decompress.
    #[error("{codec} data does not decompress: {reason}")]
    Decompress {
        /// zstd or lz4.
        codec: &'static str,
        /// What the decompressor said.
        reason: String,
    },
    /// A compression this reader does not know.
    #[error("unknown compression '{0}'")]
    Compression(String),
    /// A chunk that decompresses to another size than its header says.
    #[error("decompresses to {got} bytes, not the {claimed} its header says")]
    ChunkSize {
        /// Bytes it decompressed to.
        got: usize,
        /// Bytes its header claims.
        claimed: u64,
    },
    /// A chunk whose data does not match its CRC.
    #[error("CRC mismatch (header {header:#010x}, data {data:#010x})")]
    Crc {
        /// The CRC in the header.
        header: u32,
        /// The CRC of the data.
        data: u32,
    },
    /// Fewer bytes left than a record header takes.
    #[error("truncated: {0} bytes left, too few for a record header")]
    TruncatedHeader(usize),
    /// A record cut short.
    #[error("truncated: a record (opcode {op:#04x}) of {len} bytes, of which {present} are present")]
    TruncatedRecord {
        /// Its opcode.
        op: u8,
        /// Its length.
        len: u64,
        /// Bytes present.
        present: usize,
    },
    /// The data section ends without the footer after it.
    #[error("no footer after the end of the data section")]
    NoFooter,
    /// The file ends without a footer (a recorder that was killed).
    #[error("truncated: the file ends without a footer")]
    Unfinished,
    /// A chunk whose records cannot be read, and the messages lost with it.
    #[error("chunk: {problem}{}", skipped(*.start, *.end))]
    Chunk {
        /// What is wrong with it.
        problem: Box<Problem>,
        /// Its first message's log time (ns).
        start: u64,
        /// Its last message's log time (ns).
        end: u64,
    },
    /// A chunk whose header cannot be read.
    #[error("chunk header: {0}")]
    ChunkHeader(Box<Problem>),
    /// Damage among the records inside a chunk.
    #[error("inside the chunk: {0}")]
    InChunk(Box<Problem>),
    /// A record whose fields cannot be read.
    #[error("{} (opcode {op:#04x}): {problem}", if *.in_chunk { "a record inside the chunk" } else { "record" })]
    Record {
        /// Its opcode.
        op: u8,
        /// Whether it is inside a chunk.
        in_chunk: bool,
        /// What is wrong with it.
        problem: Box<Problem>,
    },
}

fn skipped(start: u64, end: u64) -> String {
    if end >= start {
        format!(" (messages from {start} to {end} ns skipped)")
    } else {
        String::new()
    }
}

/// An MCAP Schema record: a message type's definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaRecord {
    /// The type, as the writer named it (`pkg/msg/Type` in rosbag2 files).
    pub name: String,
    /// How `data` is written: `ros2msg` in rosbag2 files.
    pub encoding: String,
    /// The definition, as stored (for `ros2msg`, UTF-8 text).
    pub data: Vec<u8>,
}

/// An MCAP Channel record: a topic of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelRecord {
    /// Id of its [`SchemaRecord`] in this file; 0 for none.
    pub schema_id: u16,
    /// Topic name.
    pub topic: String,
    /// `cdr` in rosbag2 files.
    pub message_encoding: String,
    /// In rosbag2 files: `offered_qos_profiles` (a YAML list as text) and
    /// `topic_type_hash` (RIHS01).
    pub metadata: BTreeMap<String, String>,
}

/// A message as stored: its channel in this file, times, serialized data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawMessage {
    pub channel_id: u16,
    pub log_time: u64,
    pub publish_time: u64,
    pub data: Bytes,
}

/// What a scan of a file found. Counts and times cover readable messages
/// only; schemas and channels lost in a damaged chunk are taken from the
/// summary section when the file has one.
#[derive(Clone, Debug, Default)]
pub struct FileSummary {
    /// The header's profile: `ros2` in rosbag2 files.
    pub profile: String,
    /// The header's library: the writer's name and version.
    pub library: String,
    /// Schema records by id.
    pub schemas: BTreeMap<u16, SchemaRecord>,
    /// Channel records by id.
    pub channels: BTreeMap<u16, ChannelRecord>,
    /// Metadata records (name, map) in file order; rosbag2 writes one named
    /// `rosbag2`, whose `serialized_metadata` is the bag's metadata mapping.
    pub metadata: Vec<(String, BTreeMap<String, String>)>,
    /// Compressions of its chunks: `zstd`, `lz4`, and the empty string for
    /// uncompressed chunks.
    pub compressions: BTreeSet<String>,
    /// Chunks whose header reads, damaged contents or not.
    pub chunk_count: u64,
    /// Readable messages.
    pub message_count: u64,
    /// Readable messages per channel id.
    pub channel_counts: BTreeMap<u16, u64>,
    /// Log time of the earliest readable message, ns since the epoch.
    pub start_time: Option<u64>,
    /// Log time of the latest readable message, ns since the epoch.
    pub end_time: Option<u64>,
    /// Whether the file ends in a footer that points at a summary section.
    pub complete: bool,
    /// What could not be read, in file order.
    pub damage: Vec<Damage>,
}

/// One MCAP file of a bag, memory-mapped and scanned when the bag is opened.
/// The file must not be truncated while it is open: reading the lost part of
/// the map would crash the process (SIGBUS).
pub struct McapFile {
    /// The file: the bag folder joined with its name, or the bare file as given.
    pub path: PathBuf,
    data: Bytes,
    /// What the scan found.
    pub summary: FileSummary,
}

/// Little-endian field reader over a record body.
struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Problem> {
        if self.buf.len() < n {
            return Err(Problem::ShortRecord(n - self.buf.len()));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn u16(&mut self) -> Result<u16, Problem> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, Problem> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, Problem> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn string(&mut self) -> Result<String, Problem> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| Problem::NotUtf8)
    }
    fn bytes32(&mut self) -> Result<&'a [u8], Problem> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn map(&mut self) -> Result<BTreeMap<String, String>, Problem> {
        let n = self.u32()? as usize;
        let mut inner = Fields { buf: self.take(n)? };
        let mut m = BTreeMap::new();
        while !inner.buf.is_empty() {
            let k = inner.string()?;
            let v = inner.string()?;
            m.insert(k, v);
        }
        Ok(m)
    }
}

/// A chunk's header fields and its still-compressed records.
struct Chunk<'a> {
    start: u64,
    end: u64,
    uncompressed_size: u64,
    crc: u32,
    compression: String,
    records: &'a [u8],
}

fn parse_chunk(body: &[u8]) -> Result<Chunk<'_>, Problem> {
    let mut f = Fields { buf: body };
    let start = f.u64()?;
    let end = f.u64()?;
    let uncompressed_size = f.u64()?;
    let crc = f.u32()?;
    let compression = f.string()?;
    let n = f.u64()? as usize;
    let records = f.take(n)?;
    Ok(Chunk { start, end, uncompressed_size, crc, compression, records })
}

/// Decompresses a chunk and checks its CRC.
fn open_chunk(c: &Chunk<'_>) -> Result<Bytes, Problem> {
    // A damaged size field must not make us allocate the machine away.
    const MAX: u64 = 1 << 33;
    if c.uncompressed_size > MAX {
        return Err(Problem::Implausible(c.uncompressed_size));
    }
    let data: Vec<u8> = match c.compression.as_str() {
        "" => c.records.to_vec(),
        "zstd" => zstd::bulk::decompress(c.records, c.uncompressed_size as usize)
            .map_err(|e| Problem::Decompress { codec: "zstd", reason: e.to_string() })?,
        "lz4" => {
            let mut out = Vec::with_capacity(c.uncompressed_size as usize);
            lz4::Decoder::new(c.records)
                .and_then(|mut d| d.read_to_end(&mut out))
                .map_err(|e| Problem::Decompress { codec: "lz4", reason: e.to_string() })?;
            out
        }
        other => return Err(Problem::Compression(other.into())),
    };
    if data.len() as u64 != c.uncompressed_size {
        return Err(Problem::ChunkSize { got: data.len(), claimed: c.uncompressed_size });
    }
    if c.crc != 0 {
        let crc = crc32fast::hash(&data);
        if crc != c.crc {
            return Err(Problem::Crc { header: c.crc, data: crc });
        }
    }
    Ok(Bytes::from(data))
}

fn parse_message(body: &Bytes, start: usize, len: usize) -> Result<RawMessage, Problem> {
    let mut f = Fields { buf: &body[start..start + len] };
    let channel_id = f.u16()?;
    let _sequence = f.u32()?;
    let log_time = f.u64()?;
    let publish_time = f.u64()?;
    let head = 22;
    Ok(RawMessage { channel_id, log_time, publish_time, data: body.slice(start + head..start + len) })
}

/// One step of walking records: `(opcode, body range)`, or the reason the walk
/// cannot go on.
fn next_record(buf: &[u8], pos: usize) -> Option<Result<(u8, usize, usize), Problem>> {
    if pos >= buf.len() {
        return None;
    }
    if buf.len() - pos < 9 {
        return Some(Err(Problem::TruncatedHeader(buf.len() - pos)));
    }
    let op = buf[pos];
    let len = u64::from_le_bytes(buf[pos + 1..pos + 9].try_into().unwrap());
    let start = pos + 9;
    if len > (buf.len() - start) as u64 {
        return Some(Err(Problem::TruncatedRecord { op, len, present: buf.len() - start }));
    }
    Some(Ok((op, start, len as usize)))
}

impl McapFile {
    /// Maps and scans a file. Fails only when it is not an MCAP file at all;
    /// damage inside is reported in `summary.damage`.
    pub(crate) fn open(path: &Path) -> Result<McapFile, BagError> {
        let file = File::open(path).map_err(|e| BagError::io(path, e))?;
        let len = file.metadata().map_err(|e| BagError::io(path, e))?.len();
        if len == 0 {
            return Err(BagError::NotMcap { path: path.into(), reason: "the file is empty".into() });
        }
        // SAFETY: the map is read-only; a recording that grows the file while
        // we read shows us a consistent prefix (appends never rewrite it).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| BagError::io(path, e))?;
        if map.len() < 8 || &map[..8] != MAGIC {
            let head: Vec<String> = map.iter().take(8).map(|b| format!("{b:02x}")).collect();
            return Err(BagError::NotMcap {
                path: path.into(),
                reason: format!("it does not start with the MCAP magic (found {})", head.join(" ")),
            });
        }
        let data = Bytes::from_owner(map);
        let mut f = McapFile { path: path.to_path_buf(), data, summary: FileSummary::default() };
        f.scan();
        Ok(f)
    }

    /// Bytes of the file.
    pub(crate) fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn damage(&mut self, offset: usize, problem: Problem) {
        self.summary.damage.push(Damage { file: self.path.clone(), offset: offset as u64, problem });
    }

    fn scan(&mut self) {
        let data = self.data.clone();
        let mut pos = 8;
        while let Some(step) = next_record(&data, pos) {
            let (op, start, len) = match step {
                Ok(r) => r,
                Err(problem) => {
                    self.damage(pos, problem);
                    return;
                }
            };
            let body = &data[start..start + len];
            match op {
                OP_FOOTER => {
                    let summary_start = body.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap())).unwrap_or(0);
                    self.summary.complete = summary_start != 0;
                    return;
                }
                OP_DATA_END => {
                    let footer_at = data.len().saturating_sub(8 + 29);
                    if data.len() >= 8 + 37 && data[footer_at] == OP_FOOTER && &data[data.len() - 8..] == MAGIC {
                        let s = u64::from_le_bytes(data[footer_at + 9..footer_at + 17].try_into().unwrap()) as usize;
                        self.summary.complete = s != 0;
                        if s > pos && s < footer_at {
                            self.scan_summary(s, footer_at);
                        }
                    } else {
                        self.damage(start + len, Problem::NoFooter);
                    }
                    return;
                }
                OP_CHUNK => match parse_chunk(body) {
                    Ok(chunk) => {
                        self.summary.chunk_count += 1;
                        self.summary.compressions.insert(chunk.compression.clone());
                        match open_chunk(&chunk) {
                            Ok(inner) => self.scan_records(&inner, pos, true),
                            Err(problem) => {
                                self.damage(pos, Problem::Chunk { problem: Box::new(problem), start: chunk.start, end: chunk.end })
                            }
                        }
                    }
                    Err(problem) => self.damage(pos, Problem::ChunkHeader(Box::new(problem))),
                },
                _ => {
                    let one = data.slice(pos..start + len);
                    self.scan_records(&one, pos, false);
                }
            }
            pos = start + len;
        }
        self.damage(data.len(), Problem::Unfinished);
    }

    /// The summary section repeats every schema and channel: where the data
    /// section lost one (in a damaged chunk), the summary still has it.
    fn scan_summary(&mut self, from: usize, to: usize) {
        let section = self.data.slice(from..to);
        let mut pos = 0;
        while let Some(Ok((op, start, len))) = next_record(&section, pos) {
            let known = match op {
                OP_SCHEMA | OP_CHANNEL => section.get(start..start + 2).map(|b| u16::from_le_bytes([b[0], b[1]])),
                _ => None,
            };
            let missing = match (op, known) {
                (OP_SCHEMA, Some(id)) => !self.summary.schemas.contains_key(&id),
                (OP_CHANNEL, Some(id)) => !self.summary.channels.contains_key(&id),
                _ => false,
            };
            if missing {
                let _ = self.record(op, &section, start, len);
            }
            pos = start + len;
        }
    }

    /// Reads the records in `buf` (a decompressed chunk, or one outer record).
    fn scan_records(&mut self, buf: &Bytes, file_offset: usize, in_chunk: bool) {
        let mut pos = 0;
        while let Some(step) = next_record(buf, pos) {
            let (op, start, len) = match step {
                Ok(r) => r,
                Err(problem) => {
                    self.damage(file_offset + pos, if in_chunk { Problem::InChunk(Box::new(problem)) } else { problem });
                    return;
                }
            };
            if let Err(problem) = self.record(op, buf, start, len) {
                let problem = Problem::Record { op, in_chunk, problem: Box::new(problem) };
                self.damage(file_offset + if in_chunk { 0 } else { pos }, problem);
            }
            pos = start + len;
        }
    }

    fn record(&mut self, op: u8, buf: &Bytes, start: usize, len: usize) -> Result<(), Problem> {
        let mut f = Fields { buf: &buf[start..start + len] };
        match op {
            OP_HEADER => {
                self.summary.profile = f.string()?;
                self.summary.library = f.string()?;
            }
            OP_SCHEMA => {
                let id = f.u16()?;
                let name = f.string()?;
                let encoding = f.string()?;
                let data = f.bytes32()?.to_vec();
                self.summary.schemas.insert(id, SchemaRecord { name, encoding, data });
            }
            OP_CHANNEL => {
                let id = f.u16()?;
                let schema_id = f.u16()?;
                let topic = f.string()?;
                let message_encoding = f.string()?;
                let metadata = f.map()?;
                self.summary.channels.insert(id, ChannelRecord { schema_id, topic, message_encoding, metadata });
            }
            OP_MESSAGE => {
                let m = parse_message(buf, start, len)?;
                let s = &mut self.summary;
                s.message_count += 1;
                *s.channel_counts.entry(m.channel_id).or_default() += 1;
                s.start_time = Some(s.start_time.map_or(m.log_time, |t| t.min(m.log_time)));
                s.end_time = Some(s.end_time.map_or(m.log_time, |t| t.max(m.log_time)));
            }
            OP_METADATA => {
                let name = f.string()?;
                let map = f.map()?;
                self.summary.metadata.push((name, map));
            }
            _ => {}
        }
        Ok(())
    }

    /// The file's readable messages in file order (damaged chunks left out).
    pub(crate) fn messages(&self) -> impl Iterator<Item = RawMessage> + '_ {
        let data = self.data.clone();
        let mut pos = 8usize;
        let mut chunk: Option<(Bytes, usize)> = None;
        std::iter::from_fn(move || loop {
            if let Some((buf, at)) = &mut chunk {
                match next_record(buf, *at) {
                    Some(Ok((op, start, len))) => {
                        *at = start + len;
                        if op == OP_MESSAGE {
                            if let Ok(m) = parse_message(buf, start, len) {
                                return Some(m);
                            }
                        }
                        continue;
                    }
                    _ => chunk = None,
                }
            }
            let (op, start, len) = match next_record(&data, pos)? {
                Ok(r) => r,
                Err(_) => return None,
            };
            pos = start + len;
            match op {
                OP_FOOTER | OP_DATA_END => return None,
                OP_MESSAGE => {
                    if let Ok(m) = parse_message(&data, start, len) {
                        return Some(m);
                    }
                }
                OP_CHUNK => {
                    if let Ok(inner) = parse_chunk(&data[start..start + len]).and_then(|c| open_chunk(&c)) {
                        chunk = Some((inner, 0));
                    }
                }
                _ => {}
            }
        })
    }
}
