//! A file that always ends in a valid MCAP footer, so a recording killed at any
//! moment is still a file MCAP readers open, with everything up to the last
//! commit.
//!
//! Writes collect in memory. A commit writes them, followed by a provisional
//! footer (no summary; readers then scan the data section) and the closing
//! magic, in one positioned write over the previous provisional footer. The
//! final commit writes the real summary and footer instead.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Footer record (opcode 0x02, length 20, summary start 0, summary offset
/// start 0, CRC 0) followed by the MCAP magic.
const PROVISIONAL_TAIL: [u8; 37] = {
    let mut t = [0u8; 37];
    t[0] = 0x02;
    t[1] = 20;
    let magic = *b"\x89MCAP0\r\n";
    let mut i = 0;
    while i < 8 {
        t[29 + i] = magic[i];
        i += 1;
    }
    t
};

pub(crate) struct TailFile {
    file: File,
    /// Bytes `[0, committed)` of the file are final.
    committed: u64,
    /// Bytes from `committed` on, not yet written.
    pending: Vec<u8>,
    /// Write position, relative to the start of the file.
    pos: u64,
    /// The file's length as written so far, for whoever splits files by size.
    len: Arc<AtomicU64>,
}

impl TailFile {
    pub fn new(file: File, len: Arc<AtomicU64>) -> TailFile {
        TailFile { file, committed: 0, pending: Vec::new(), pos: 0, len }
    }

    /// Writes what is pending, then a provisional footer unless `last`.
    pub fn commit(&mut self, last: bool) -> io::Result<()> {
        let n = self.pending.len();
        if !last {
            self.pending.extend_from_slice(&PROVISIONAL_TAIL);
        }
        self.file.write_all_at(&self.pending, self.committed)?;
        self.committed += n as u64;
        if last {
            // A final part shorter than an earlier provisional footer.
            self.file.set_len(self.committed)?;
        }
        self.pending.clear();
        self.pos = self.committed;
        Ok(())
    }

    /// Bytes written so far, committed or not (the size of the final file).
    pub fn len(&self) -> u64 {
        self.committed + self.pending.len() as u64
    }
}

impl Write for TailFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let at = (self.pos - self.committed) as usize;
        let overlap = buf.len().min(self.pending.len().saturating_sub(at));
        self.pending[at..at + overlap].copy_from_slice(&buf[..overlap]);
        self.pending.extend_from_slice(&buf[overlap..]);
        self.pos += buf.len() as u64;
        self.len.store(self.len(), Ordering::Relaxed);
        Ok(buf.len())
    }

    /// The MCAP writer flushes at chunk boundaries: that is the commit point.
    fn flush(&mut self) -> io::Result<()> {
        self.commit(false)
    }
}

impl Seek for TailFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let end = self.len() as i128;
        let target = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => end + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if target < self.committed as i128 || target > end {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "seek into committed data"));
        }
        self.pos = target as u64;
        Ok(self.pos)
    }
}
