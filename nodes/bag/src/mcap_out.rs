//! One MCAP file being written, with the work spread over threads and no copy
//! of a shared message buffer before the kernel's:
//!
//! - the caller's thread appends records to the open chunk: small ones are
//!   copied into it; a large uncompressed message handed over as [`Bytes`]
//!   is kept by reference;
//! - worker threads take finished chunks in turn, compute their CRC and
//!   compress them (lz4, zstd), each with its own compression context;
//! - one writer thread puts the chunks in the file in order, each (its
//!   header, its parts, its message indexes) followed by a provisional footer
//!   (no summary: readers scan the data section), written so that the file is
//!   valid at every moment: the new footer first, at the new end; then the
//!   chunk behind the old footer; then the chunk's first 37 bytes over the
//!   old footer ([`write_after`]).
//!
//! So a process killed at any point, mid-write included, leaves a file MCAP
//! readers open, with every chunk written before the last
//! [`McapOut::flush`] (and any written since). [`McapOut::finish`] writes the
//! summary and the real footer the same way.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;

use crate::writer::{Compression, Span};
use crate::BagError;

use crate::format::{
    MAGIC, OP_CHANNEL, OP_CHUNK, OP_CHUNK_INDEX, OP_DATA_END, OP_FOOTER, OP_HEADER, OP_MESSAGE, OP_MESSAGE_INDEX, OP_METADATA,
    OP_METADATA_INDEX, OP_SCHEMA, OP_STATISTICS, OP_SUMMARY_OFFSET,
};

/// Footer record (opcode 0x02, length 20, summary start 0, summary offset
/// start 0, CRC 0) followed by the MCAP magic: the end of a file whose
/// summary is not written yet.
const PROVISIONAL_TAIL: [u8; 37] = {
    let mut t = [0u8; 37];
    t[0] = OP_FOOTER;
    t[1] = 20;
    let mut i = 0;
    while i < 8 {
        t[29 + i] = MAGIC[i];
        i += 1;
    }
    t
};

/// Messages at least this large, in uncompressed chunks, are written from the
/// caller's buffer instead of being copied into the chunk.
const BY_REFERENCE: usize = 64 * 1024;

/// zstd level of every chunk: the library's default, as the MCAP libraries
/// use.
const ZSTD_LEVEL: i32 = 3;

/// A message's bytes: borrowed (copied into the chunk) or shared (kept by
/// reference until written, when the chunk is not compressed).
pub(crate) enum Payload<'a> {
    Borrowed(&'a [u8]),
    Shared(Bytes),
}

impl Payload<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Payload::Borrowed(b) => b,
            Payload::Shared(b) => b,
        }
    }
}

/// Record writing: opcode, length, fields, as the MCAP specification lays
/// them out (little-endian, strings and byte arrays with a u32 length, maps
/// with a u32 byte length).
struct Rec<'a> {
    out: &'a mut Vec<u8>,
    len_at: usize,
}

impl<'a> Rec<'a> {
    fn new(out: &'a mut Vec<u8>, op: u8) -> Rec<'a> {
        out.push(op);
        let len_at = out.len();
        out.extend_from_slice(&[0; 8]);
        Rec { out, len_at }
    }
    fn u8(&mut self, v: u8) -> &mut Self {
        self.out.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.bytes32(s.as_bytes())
    }
    fn bytes32(&mut self, b: &[u8]) -> &mut Self {
        self.u32(b.len() as u32);
        self.out.extend_from_slice(b);
        self
    }
    /// A map: its byte length, then what `entries` writes.
    fn map(&mut self, entries: impl FnOnce(&mut Self)) -> &mut Self {
        let at = self.out.len();
        self.u32(0);
        entries(self);
        let n = (self.out.len() - at - 4) as u32;
        self.out[at..at + 4].copy_from_slice(&n.to_le_bytes());
        self
    }
    /// Sets the length to what was written; `extra` bytes more follow outside
    /// this buffer.
    fn end_with(self, extra: u64) {
        let n = (self.out.len() - self.len_at - 8) as u64 + extra;
        self.out[self.len_at..self.len_at + 8].copy_from_slice(&n.to_le_bytes());
    }
    fn end(self) {
        self.end_with(0)
    }
}

fn string_map(r: &mut Rec<'_>, m: &BTreeMap<String, String>) {
    r.map(|r| {
        for (k, v) in m {
            r.str(k).str(v);
        }
    });
}

/// The chunk being filled on the caller's thread.
#[derive(Default)]
struct OpenChunk {
    /// Records not yet frozen into `parts`.
    inline: Vec<u8>,
    /// The chunk's records so far, in order, before `inline`.
    parts: Vec<Bytes>,
    /// Uncompressed length of all its records.
    size: u64,
    /// Its messages' log times.
    span: Span,
    /// Per channel, each message's log time and offset in the records.
    index: BTreeMap<u16, Vec<(u64, u64)>>,
}

impl OpenChunk {
    fn push_inline(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        let before = self.inline.len();
        f(&mut self.inline);
        self.size += (self.inline.len() - before) as u64;
    }

    fn freeze(&mut self) {
        if !self.inline.is_empty() {
            self.parts.push(Bytes::from(std::mem::take(&mut self.inline)));
        }
    }
}

/// A finished chunk on its way to a worker.
struct Job {
    seq: u64,
    parts: Vec<Bytes>,
    size: u64,
    start: u64,
    end: u64,
    /// The message index records that follow the chunk, and where each
    /// channel's starts among them.
    indexes: Vec<u8>,
    index_at: Vec<(u16, u64)>,
}

/// A chunk ready to be written.
struct Encoded {
    seq: u64,
    /// The chunk record up to and including its records' length.
    header: Vec<u8>,
    body: Vec<Bytes>,
    body_len: u64,
    job: Job,
}

enum ToWriter {
    Chunk(Box<Encoded>),
    /// A chunk that could not be encoded.
    Failed(u64, io::Error),
    /// Answer once every chunk numbered below `.0` is written.
    Barrier(u64, SyncSender<io::Result<()>>),
}

/// What the summary needs of a written chunk.
struct ChunkIndex {
    start: u64,
    end: u64,
    offset: u64,
    length: u64,
    index_offsets: Vec<(u16, u64)>,
    index_length: u64,
    compressed: u64,
    uncompressed: u64,
}

/// Where the file's bytes are, for splitting files by size.
#[derive(Default)]
struct Sizes {
    /// Bytes of the file written by the writer thread.
    written: AtomicU64,
    /// Uncompressed bytes of the chunks handed to the workers, not encoded yet.
    queued: AtomicU64,
    /// Bytes of the chunks encoded (header, body, message indexes), not written yet.
    encoded: AtomicU64,
}

struct WriterState {
    file: File,
    /// Where the next chunk goes: the end of the data section so far.
    end: u64,
    chunks: Vec<ChunkIndex>,
}

/// One MCAP file being written; see the module documentation.
pub(crate) struct McapOut {
    path: PathBuf,
    compression: Compression,
    chunk_size: u64,
    chunk: OpenChunk,
    seq: u64,
    jobs: Option<SyncSender<Job>>,
    to_writer: Option<SyncSender<ToWriter>>,
    workers: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<WriterState>>,
    sizes: Arc<Sizes>,
    /// Every schema and channel record so far, as written into the chunks,
    /// for the summary.
    schemas: Vec<u8>,
    schema_count: u16,
    schema_ids: BTreeMap<(String, String, Vec<u8>), u16>,
    channels: Vec<u8>,
    channel_count: u16,
    counts: BTreeMap<u16, u64>,
    /// The file's messages' log times.
    span: Span,
}

fn crc_of(parts: &[Bytes]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// CRC and compression of one chunk, with this worker's compression context.
fn encode(mut job: Job, compression: Compression, zstd: &mut Option<zstd::bulk::Compressor<'static>>) -> io::Result<Encoded> {
    // The records become the body (uncompressed) or are dropped once compressed.
    let parts = std::mem::take(&mut job.parts);
    let crc = crc_of(&parts);
    let body: Vec<Bytes> = match compression {
        Compression::None => parts,
        Compression::Lz4 | Compression::Zstd => {
            let joined;
            let input: &[u8] = if parts.len() == 1 {
                &parts[0]
            } else {
                joined = parts.concat();
                &joined
            };
            let out = match compression {
                Compression::Zstd => {
                    let z = match zstd {
                        Some(z) => z,
                        None => zstd.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
                    };
                    z.compress(input)?
                }
                _ => {
                    let mut e = lz4::EncoderBuilder::new()
                        .level(0)
                        .block_checksum(lz4::liblz4::BlockChecksum::NoBlockChecksum)
                        .checksum(lz4::liblz4::ContentChecksum::NoChecksum)
                        .build(Vec::with_capacity(input.len() / 2 + 64))?;
                    e.write_all(input)?;
                    let (out, r) = e.finish();
                    r?;
                    out
                }
            };
            vec![Bytes::from(out)]
        }
    };
    let body_len: u64 = body.iter().map(|b| b.len() as u64).sum();
    let mut header = Vec::with_capacity(64);
    let mut r = Rec::new(&mut header, OP_CHUNK);
    r.u64(job.start).u64(job.end).u64(job.size).u32(crc).str(compression.mcap_name()).u64(body_len);
    r.end_with(body_len);
    Ok(Encoded { seq: job.seq, header, body, body_len, job })
}

fn worker(jobs: Arc<Mutex<Receiver<Job>>>, out: SyncSender<ToWriter>, compression: Compression, sizes: Arc<Sizes>) {
    let mut zstd = None;
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let (seq, size) = (job.seq, job.size);
        // A panic in a compressor must not leave the writer waiting for this chunk forever.
        let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| encode(job, compression, &mut zstd)))
            .unwrap_or_else(|_| Err(io::Error::other("the chunk encoder panicked")));
        sizes.queued.fetch_sub(size, Ordering::Relaxed);
        let msg = match encoded {
            Ok(e) => {
                sizes.encoded.fetch_add(e.file_len(), Ordering::Relaxed);
                ToWriter::Chunk(Box::new(e))
            }
            Err(e) => {
                zstd = None;
                ToWriter::Failed(seq, e)
            }
        };
        if out.send(msg).is_err() {
            return;
        }
    }
}

impl Encoded {
    /// Bytes it takes in the file (without the provisional footer).
    fn file_len(&self) -> u64 {
        self.header.len() as u64 + self.body_len + self.job.indexes.len() as u64
    }
}

/// Writes all of `slices` at `at`, one vectored write after another.
fn write_all_vectored_at(file: &mut File, at: u64, slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    file.seek(SeekFrom::Start(at))?;
    let mut slices = slices;
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Puts `parts` (at least 37 bytes in all) in the file at `at`, where the
/// file now ends in a 37-byte footer and magic, such that the file is one
/// MCAP readers open at every moment, a process killed mid-write included:
/// the bytes after the first 37 go in first (behind the old footer, which
/// still ends what readers read), then the first 37 over the old footer.
/// `tail` (a provisional footer, or nothing when `parts` end in the real
/// one) goes in before everything, at the new end. On an error the file is
/// put back as it was, as far as the disk lets it.
fn write_after(file: &mut File, at: u64, parts: &[&[u8]], tail: &[u8]) -> io::Result<()> {
    let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
    let result = (|| {
        if !tail.is_empty() {
            file.write_all_at(tail, at + total)?;
        }
        // The first 37 bytes, which replace the old footer, last.
        let mut head = Vec::with_capacity(PROVISIONAL_TAIL.len());
        let mut rest: Vec<IoSlice<'_>> = Vec::with_capacity(parts.len());
        for p in parts {
            let take = (PROVISIONAL_TAIL.len() - head.len()).min(p.len());
            head.extend_from_slice(&p[..take]);
            if take < p.len() {
                rest.push(IoSlice::new(&p[take..]));
            }
        }
        write_all_vectored_at(file, at + head.len() as u64, &mut rest)?;
        file.write_all_at(&head, at)
    })();
    if result.is_err() {
        let _ = file.write_all_at(&PROVISIONAL_TAIL, at);
        let _ = file.set_len(at + PROVISIONAL_TAIL.len() as u64);
    }
    result
}

fn copy_error(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}

fn writer(mut st: WriterState, rx: Receiver<ToWriter>, sizes: Arc<Sizes>) -> WriterState {
    let mut next = 0u64;
    let mut ready: BTreeMap<u64, Result<Box<Encoded>, io::Error>> = BTreeMap::new();
    let mut barriers: Vec<(u64, SyncSender<io::Result<()>>)> = Vec::new();
    let mut failed: Option<io::Error> = None;
    for msg in rx {
        match msg {
            ToWriter::Chunk(e) => {
                ready.insert(e.seq, Ok(e));
            }
            ToWriter::Failed(seq, e) => {
                ready.insert(seq, Err(e));
            }
            ToWriter::Barrier(upto, reply) => barriers.push((upto, reply)),
        }
        while let Some(r) = ready.remove(&next) {
            next += 1;
            let e = match r {
                Ok(e) => e,
                Err(e) => {
                    failed.get_or_insert(e);
                    continue;
                }
            };
            let encoded = e.file_len();
            if failed.is_some() {
                sizes.encoded.fetch_sub(encoded, Ordering::Relaxed);
                continue;
            }
            let offset = st.end;
            let length = e.header.len() as u64 + e.body_len;
            let mut parts: Vec<&[u8]> = Vec::with_capacity(e.body.len() + 2);
            parts.push(&e.header);
            parts.extend(e.body.iter().map(|b| &b[..]));
            parts.push(&e.job.indexes);
            let result = write_after(&mut st.file, offset, &parts, &PROVISIONAL_TAIL);
            sizes.encoded.fetch_sub(encoded, Ordering::Relaxed);
            if let Err(err) = result {
                failed = Some(err);
                continue;
            }
            let index_length = e.job.indexes.len() as u64;
            st.chunks.push(ChunkIndex {
                start: e.job.start,
                end: e.job.end,
                offset,
                length,
                index_offsets: e.job.index_at.iter().map(|&(c, at)| (c, offset + length + at)).collect(),
                index_length,
                compressed: e.body_len,
                uncompressed: e.job.size,
            });
            st.end = offset + length + index_length;
            sizes.written.store(st.end, Ordering::Relaxed);
        }
        barriers.retain(|(upto, reply)| {
            if next < *upto && failed.is_none() {
                return true;
            }
            let _ = reply.send(match &failed {
                Some(e) => Err(copy_error(e)),
                None => Ok(()),
            });
            false
        });
    }
    st
}

impl McapOut {
    /// Creates `path` (which must not exist) with the magic, the header and a
    /// provisional footer, and starts `threads` workers and the writer.
    pub fn create(path: &Path, compression: Compression, chunk_size: u64, threads: usize, library: &str) -> Result<McapOut, BagError> {
        let io_err = |e| BagError::io(path, e);
        let file = File::options().create_new(true).write(true).open(path).map_err(io_err)?;
        let mut head = MAGIC.to_vec();
        let mut r = Rec::new(&mut head, OP_HEADER);
        r.str("ros2").str(library);
        r.end();
        let end = head.len() as u64;
        head.extend_from_slice(&PROVISIONAL_TAIL);
        file.write_all_at(&head, 0).map_err(io_err)?;

        let threads = threads.max(1);
        let (jobs_tx, jobs_rx) = mpsc::sync_channel::<Job>(threads);
        let (out_tx, out_rx) = mpsc::sync_channel::<ToWriter>(threads + 1);
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let sizes = Arc::new(Sizes::default());
        sizes.written.store(end, Ordering::Relaxed);
        let workers = (0..threads)
            .map(|i| {
                let (rx, tx, sz) = (jobs_rx.clone(), out_tx.clone(), sizes.clone());
                std::thread::Builder::new().name(format!("bag-chunks-{i}")).spawn(move || worker(rx, tx, compression, sz)).map_err(io_err)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let st = WriterState { file, end, chunks: Vec::new() };
        let sz = sizes.clone();
        let writer = std::thread::Builder::new().name("bag-writer".into()).spawn(move || writer(st, out_rx, sz)).map_err(io_err)?;
        Ok(McapOut {
            path: path.to_path_buf(),
            compression,
            chunk_size,
            chunk: OpenChunk::default(),
            seq: 0,
            jobs: Some(jobs_tx),
            to_writer: Some(out_tx),
            workers,
            writer: Some(writer),
            sizes,
            schemas: Vec::new(),
            schema_count: 0,
            schema_ids: BTreeMap::new(),
            channels: Vec::new(),
            channel_count: 0,
            counts: BTreeMap::new(),
            span: Span::default(),
        })
    }

    /// Bytes of the file so far: written, encoded and waiting to be, and
    /// (at their uncompressed size) the chunks not encoded yet.
    pub fn len(&self) -> u64 {
        let s = &self.sizes;
        s.written.load(Ordering::Relaxed) + s.encoded.load(Ordering::Relaxed) + s.queued.load(Ordering::Relaxed) + self.chunk.size
    }

    /// The id of a schema record (into the open chunk, and later the
    /// summary), added unless the file has the same one already.
    pub fn add_schema(&mut self, name: &str, encoding: &str, data: &[u8]) -> Result<u16, BagError> {
        let key = (name.to_string(), encoding.to_string(), data.to_vec());
        if let Some(&id) = self.schema_ids.get(&key) {
            return Ok(id);
        }
        let id = self.schema_count.checked_add(1).ok_or_else(|| self.full("schemas"))?;
        self.schema_count = id;
        let at = self.schemas.len();
        let mut r = Rec::new(&mut self.schemas, OP_SCHEMA);
        r.u16(id).str(name).str(encoding).bytes32(data);
        r.end();
        let record = &self.schemas[at..];
        self.chunk.push_inline(|out| out.extend_from_slice(record));
        self.schema_ids.insert(key, id);
        Ok(id)
    }

    /// Adds a channel record (into the open chunk, and later the summary).
    pub fn add_channel(&mut self, schema: u16, topic: &str, encoding: &str, metadata: &BTreeMap<String, String>) -> Result<u16, BagError> {
        let id = self.channel_count;
        self.channel_count = id.checked_add(1).ok_or_else(|| self.full("channels"))?;
        let at = self.channels.len();
        let mut r = Rec::new(&mut self.channels, OP_CHANNEL);
        r.u16(id).u16(schema).str(topic).str(encoding);
        string_map(&mut r, metadata);
        r.end();
        let record = &self.channels[at..];
        self.chunk.push_inline(|out| out.extend_from_slice(record));
        Ok(id)
    }

    fn full(&self, what: &str) -> BagError {
        BagError::Usage(format!("{}: more {what} than one MCAP file can number (65,535)", self.path.display()))
    }

    /// Appends a message record; ends the chunk once it holds `chunk_size`
    /// bytes.
    pub fn write(&mut self, channel: u16, sequence: u32, log_time: u64, publish_time: u64, data: Payload<'_>) -> Result<(), BagError> {
        let c = &mut self.chunk;
        let len = data.as_slice().len();
        let offset = c.size;
        c.push_inline(|out| {
            let mut r = Rec::new(out, OP_MESSAGE);
            r.u16(channel).u32(sequence).u64(log_time).u64(publish_time);
            r.end_with(len as u64);
        });
        match data {
            Payload::Shared(b) if len >= BY_REFERENCE && self.compression == Compression::None => {
                c.freeze();
                c.parts.push(b);
            }
            other => c.inline.extend_from_slice(other.as_slice()),
        }
        c.size += len as u64;
        c.index.entry(channel).or_default().push((log_time, offset));
        c.span.add(log_time);
        *self.counts.entry(channel).or_default() += 1;
        self.span.add(log_time);
        if self.chunk.size >= self.chunk_size {
            self.end_chunk()?;
        }
        Ok(())
    }

    /// Hands the open chunk to the workers (nothing when it is empty).
    fn end_chunk(&mut self) -> Result<(), BagError> {
        if self.chunk.size == 0 {
            return Ok(());
        }
        let mut c = std::mem::take(&mut self.chunk);
        c.freeze();
        let mut indexes = Vec::new();
        let mut index_at = Vec::new();
        for (channel, entries) in &c.index {
            index_at.push((*channel, indexes.len() as u64));
            let mut r = Rec::new(&mut indexes, OP_MESSAGE_INDEX);
            r.u16(*channel).u32((entries.len() * 16) as u32);
            for &(t, at) in entries {
                r.u64(t).u64(at);
            }
            r.end();
        }
        let (start, end) = (c.span.first.unwrap_or(0), c.span.last);
        let job = Job { seq: self.seq, parts: c.parts, size: c.size, start, end, indexes, index_at };
        self.seq += 1;
        self.sizes.queued.fetch_add(job.size, Ordering::Relaxed);
        let sent = self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok());
        if !sent {
            return Err(self.stopped());
        }
        Ok(())
    }

    /// Closes the queues, lets the threads write what they have, and returns
    /// the writer's state (`None` when it has stopped already, or panicked).
    fn stop(&mut self) -> Option<WriterState> {
        self.jobs = None;
        self.to_writer = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.writer.take().and_then(|w| w.join().ok())
    }

    fn stopped(&self) -> BagError {
        BagError::io(&self.path, io::Error::other("the bag's writer threads stopped"))
    }

    /// Ends the open chunk and returns once every chunk is in the file,
    /// behind a provisional footer.
    pub fn flush(&mut self) -> Result<(), BagError> {
        self.end_chunk()?;
        let (tx, rx) = mpsc::sync_channel(1);
        let sent = self.to_writer.as_ref().is_some_and(|w| w.send(ToWriter::Barrier(self.seq, tx)).is_ok());
        if !sent {
            return Err(self.stopped());
        }
        match rx.recv() {
            Ok(r) => r.map_err(|e| BagError::io(&self.path, e)),
            Err(_) => Err(self.stopped()),
        }
    }

    /// Writes everything, then the metadata record, the summary and the
    /// footer, and closes the file.
    pub fn finish(mut self, metadata_name: &str, metadata: &BTreeMap<String, String>) -> Result<(), BagError> {
        self.flush()?;
        let Some(st) = self.stop() else {
            return Err(self.stopped());
        };
        let WriterState { file, end, chunks } = st;

        let mut out = Vec::new();
        let mut r = Rec::new(&mut out, OP_METADATA);
        r.str(metadata_name);
        string_map(&mut r, metadata);
        r.end();
        let metadata_length = out.len() as u64;
        let mut r = Rec::new(&mut out, OP_DATA_END);
        // No data section CRC (0: not computed), as the Python writer's
        // default; every chunk carries its own.
        r.u32(0);
        r.end();

        let summary_start = end + out.len() as u64;
        let mut groups: Vec<(u8, u64, u64)> = Vec::new();
        let mut group = |out: &mut Vec<u8>, op: u8, f: &mut dyn FnMut(&mut Vec<u8>)| {
            let at = out.len();
            f(out);
            if out.len() > at {
                groups.push((op, end + at as u64, (out.len() - at) as u64));
            }
        };
        group(&mut out, OP_SCHEMA, &mut |out| out.extend_from_slice(&self.schemas));
        group(&mut out, OP_CHANNEL, &mut |out| out.extend_from_slice(&self.channels));
        let (first, last) = (self.span.first.unwrap_or(0), self.span.last);
        // Every chunk handed to the workers was written (finish flushed without an error).
        let chunk_count = u32::try_from(self.seq).expect("fewer than 2³² chunks");
        group(&mut out, OP_STATISTICS, &mut |out| {
            let mut r = Rec::new(out, OP_STATISTICS);
            r.u64(self.span.count).u16(self.schema_count).u32(self.channel_count.into());
            r.u32(0).u32(1).u32(chunk_count).u64(first).u64(last);
            r.map(|r| {
                for (c, n) in &self.counts {
                    r.u16(*c).u64(*n);
                }
            });
            r.end();
        });
        let compression = self.compression.mcap_name();
        group(&mut out, OP_CHUNK_INDEX, &mut |out| {
            for c in &chunks {
                let mut r = Rec::new(out, OP_CHUNK_INDEX);
                r.u64(c.start).u64(c.end).u64(c.offset).u64(c.length);
                r.map(|r| {
                    for (ch, at) in &c.index_offsets {
                        r.u16(*ch).u64(*at);
                    }
                });
                r.u64(c.index_length).str(compression).u64(c.compressed).u64(c.uncompressed);
                r.end();
            }
        });
        group(&mut out, OP_METADATA_INDEX, &mut |out| {
            let mut r = Rec::new(out, OP_METADATA_INDEX);
            r.u64(end).u64(metadata_length).str(metadata_name);
            r.end();
        });
        let offsets_start = end + out.len() as u64;
        for (op, start, length) in groups {
            let mut r = Rec::new(&mut out, OP_SUMMARY_OFFSET);
            r.u8(op).u64(start).u64(length);
            r.end();
        }
        let crc_from = (summary_start - end) as usize;
        let mut r = Rec::new(&mut out, OP_FOOTER);
        r.u64(summary_start).u64(offsets_start);
        r.end_with(4);
        let crc = crc32fast::hash(&out[crc_from..]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(MAGIC);

        // Behind the provisional footer first, then over it: a kill mid-way
        // leaves a readable file (see write_after).
        let mut file = file;
        let io_err = |e| BagError::io(&self.path, e);
        write_after(&mut file, end, &[&out], &[]).map_err(io_err)?;
        file.set_len(end + out.len() as u64).map_err(io_err)
    }
}

impl Drop for McapOut {
    /// A writer dropped without [`McapOut::finish`] (an error elsewhere)
    /// writes its open chunk and stops its threads; the file keeps what they
    /// wrote, behind a provisional footer.
    fn drop(&mut self) {
        if self.jobs.is_some() {
            let _ = self.end_chunk();
        }
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(seq: u64, t: u64) -> Job {
        let mut records = Vec::new();
        let mut r = Rec::new(&mut records, OP_MESSAGE);
        r.u16(0).u32(seq as u32).u64(t).u64(t);
        r.end_with(3);
        records.extend_from_slice(b"abc");
        let size = records.len() as u64;
        Job { seq, parts: vec![Bytes::from(records)], size, start: t, end: t, indexes: Vec::new(), index_at: Vec::new() }
    }

    /// Chunks arriving out of order are written in order; a barrier is
    /// answered once every chunk before it is written, with the error of a
    /// chunk that failed.
    #[test]
    fn the_writer_orders_chunks_and_answers_barriers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.mcap");
        let mut file = File::create(&path).unwrap();
        file.write_all(MAGIC).unwrap();
        file.write_all(&PROVISIONAL_TAIL).unwrap();
        let st = WriterState { file, end: MAGIC.len() as u64, chunks: Vec::new() };
        let (tx, rx) = mpsc::sync_channel(8);
        let sizes = Arc::new(Sizes::default());
        let t = std::thread::spawn(move || writer(st, rx, sizes));
        let enc = |seq, t| Box::new(encode(job(seq, t), Compression::None, &mut None).unwrap());
        let (btx, brx) = mpsc::sync_channel(1);
        tx.send(ToWriter::Chunk(enc(1, 20))).unwrap();
        tx.send(ToWriter::Barrier(2, btx)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(brx.try_recv().is_err(), "chunk 0 is not written yet");
        tx.send(ToWriter::Chunk(enc(0, 10))).unwrap();
        brx.recv().unwrap().unwrap();
        let (btx, brx) = mpsc::sync_channel(1);
        tx.send(ToWriter::Failed(2, io::Error::other("no space"))).unwrap();
        tx.send(ToWriter::Chunk(enc(3, 40))).unwrap();
        tx.send(ToWriter::Barrier(4, btx)).unwrap();
        assert!(brx.recv().unwrap().unwrap_err().to_string().contains("no space"));
        drop(tx);
        let st = t.join().unwrap();
        assert_eq!(st.chunks.iter().map(|c| c.start).collect::<Vec<_>>(), [10, 20], "in order, nothing after the failure");
        // The file: the two chunks, then a provisional footer and the magic.
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, st.end + PROVISIONAL_TAIL.len() as u64);
        assert_eq!(bytes[st.chunks[0].offset as usize], OP_CHUNK);
        assert_eq!(bytes[st.chunks[1].offset as usize], OP_CHUNK);
        assert!(bytes.ends_with(&PROVISIONAL_TAIL));
    }

    /// A chunk written at the old footer's place: the header where the
    /// footer was, the file one chunk longer, a new footer and the magic at
    /// its end.
    #[test]
    fn a_chunk_is_written_over_the_footer_and_ends_in_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.mcap");
        let mut file = File::options().create_new(true).read(true).write(true).open(&path).unwrap();
        file.write_all(MAGIC).unwrap();
        file.write_all(&PROVISIONAL_TAIL).unwrap();
        let e = encode(job(0, 5), Compression::Zstd, &mut None).unwrap();
        let parts: Vec<&[u8]> = vec![&e.header, &e.body[0], &e.job.indexes];
        write_after(&mut file, MAGIC.len() as u64, &parts, &PROVISIONAL_TAIL).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let chunk_len = e.file_len() as usize;
        assert_eq!(bytes.len(), MAGIC.len() + chunk_len + PROVISIONAL_TAIL.len());
        assert_eq!(&bytes[MAGIC.len()..MAGIC.len() + e.header.len()], &e.header[..]);
        assert!(bytes.ends_with(&PROVISIONAL_TAIL));
    }
}
