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

pub const MAGIC: &[u8; 8] = b"\x89MCAP0\r\n";

const OP_HEADER: u8 = 0x01;
const OP_FOOTER: u8 = 0x02;
const OP_SCHEMA: u8 = 0x03;
const OP_CHANNEL: u8 = 0x04;
const OP_MESSAGE: u8 = 0x05;
const OP_CHUNK: u8 = 0x06;
const OP_METADATA: u8 = 0x0C;
const OP_DATA_END: u8 = 0x0F;

/// Something unreadable in a file, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    pub file: PathBuf,
    pub offset: u64,
    pub problem: String,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: at byte {}: {}", self.file.display(), self.offset, self.problem)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaRecord {
    pub name: String,
    pub encoding: String,
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelRecord {
    pub schema_id: u16,
    pub topic: String,
    pub message_encoding: String,
    pub metadata: BTreeMap<String, String>,
}

/// A message as stored: its channel in this file, times, serialized data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMessage {
    pub channel_id: u16,
    pub sequence: u32,
    pub log_time: u64,
    pub publish_time: u64,
    pub data: Bytes,
}

/// What a scan of a file found.
#[derive(Clone, Debug, Default)]
pub struct FileSummary {
    pub profile: String,
    pub library: String,
    pub schemas: BTreeMap<u16, SchemaRecord>,
    pub channels: BTreeMap<u16, ChannelRecord>,
    pub metadata: Vec<(String, BTreeMap<String, String>)>,
    pub compressions: BTreeSet<String>,
    pub chunk_count: u64,
    pub message_count: u64,
    pub channel_counts: BTreeMap<u16, u64>,
    pub start_time: Option<u64>,
    pub end_time: Option<u64>,
    /// Whether the file ends in a footer that points at a summary section.
    pub complete: bool,
    pub damage: Vec<Damage>,
}

/// A memory-mapped MCAP file.
pub struct McapFile {
    pub path: PathBuf,
    data: Bytes,
    pub summary: FileSummary,
}

/// Little-endian field reader over a record body.
struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err(format!("record ends {} bytes early", n - self.buf.len()));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "a string is not UTF-8".to_string())
    }
    fn bytes32(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn map(&mut self) -> Result<BTreeMap<String, String>, String> {
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

fn parse_chunk(body: &[u8]) -> Result<Chunk<'_>, String> {
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
fn open_chunk(c: &Chunk<'_>) -> Result<Bytes, String> {
    // A damaged size field must not make us allocate the machine away.
    const MAX: u64 = 1 << 33;
    if c.uncompressed_size > MAX {
        return Err(format!("claims {} uncompressed bytes", c.uncompressed_size));
    }
    let data: Vec<u8> = match c.compression.as_str() {
        "" => c.records.to_vec(),
        "zstd" => {
            zstd::bulk::decompress(c.records, c.uncompressed_size as usize).map_err(|e| format!("zstd data does not decompress: {e}"))?
        }
        "lz4" => {
            let mut out = Vec::with_capacity(c.uncompressed_size as usize);
            lz4::Decoder::new(c.records)
                .and_then(|mut d| d.read_to_end(&mut out))
                .map_err(|e| format!("lz4 data does not decompress: {e}"))?;
            out
        }
        other => return Err(format!("unknown compression '{other}'")),
    };
    if data.len() as u64 != c.uncompressed_size {
        return Err(format!("decompresses to {} bytes, not the {} its header says", data.len(), c.uncompressed_size));
    }
    if c.crc != 0 {
        let crc = crc32fast::hash(&data);
        if crc != c.crc {
            return Err(format!("CRC mismatch (header {:#010x}, data {crc:#010x})", c.crc));
        }
    }
    Ok(Bytes::from(data))
}

fn parse_message(body: &Bytes, start: usize, len: usize) -> Result<RawMessage, String> {
    let mut f = Fields { buf: &body[start..start + len] };
    let channel_id = f.u16()?;
    let sequence = f.u32()?;
    let log_time = f.u64()?;
    let publish_time = f.u64()?;
    let head = 22;
    Ok(RawMessage { channel_id, sequence, log_time, publish_time, data: body.slice(start + head..start + len) })
}

/// One step of walking records: `(opcode, body range)`, or the reason the walk
/// cannot go on.
fn next_record(buf: &[u8], pos: usize) -> Option<Result<(u8, usize, usize), String>> {
    if pos >= buf.len() {
        return None;
    }
    if buf.len() - pos < 9 {
        return Some(Err(format!("truncated: {} bytes left, too few for a record header", buf.len() - pos)));
    }
    let op = buf[pos];
    let len = u64::from_le_bytes(buf[pos + 1..pos + 9].try_into().unwrap());
    let start = pos + 9;
    if len > (buf.len() - start) as u64 {
        return Some(Err(format!("truncated: a record (opcode {op:#04x}) of {len} bytes, of which {} are present", buf.len() - start)));
    }
    Some(Ok((op, start, len as usize)))
}

impl McapFile {
    /// Maps and scans a file. Fails only when it is not an MCAP file at all;
    /// damage inside is reported in `summary.damage`.
    pub fn open(path: &Path) -> Result<McapFile, BagError> {
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

    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn damage(&mut self, offset: usize, problem: String) {
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
                        self.damage(start + len, "no footer after the end of the data section".into());
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
                                let span = if chunk.end >= chunk.start {
                                    format!(" (messages from {} to {} ns skipped)", chunk.start, chunk.end)
                                } else {
                                    String::new()
                                };
                                self.damage(pos, format!("chunk: {problem}{span}"));
                            }
                        }
                    }
                    Err(problem) => self.damage(pos, format!("chunk header: {problem}")),
                },
                _ => {
                    let one = data.slice(pos..start + len);
                    self.scan_records(&one, pos, false);
                }
            }
            pos = start + len;
        }
        self.damage(data.len(), "truncated: the file ends without a footer".into());
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
                    let where_ = if in_chunk { "inside the chunk: " } else { "" };
                    self.damage(file_offset + pos, format!("{where_}{problem}"));
                    return;
                }
            };
            if let Err(problem) = self.record(op, buf, start, len) {
                let what = if in_chunk { "a record inside the chunk" } else { "record" };
                self.damage(file_offset + if in_chunk { 0 } else { pos }, format!("{what} (opcode {op:#04x}): {problem}"));
            }
            pos = start + len;
        }
    }

    fn record(&mut self, op: u8, buf: &Bytes, start: usize, len: usize) -> Result<(), String> {
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
    pub fn messages(&self) -> impl Iterator<Item = RawMessage> + '_ {
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
