//! The classical codecs a tokenizer is compared with: ffmpeg's x264 at the
//! same bits per pixel and JPEG at the same bits per frame. x264 gets each
//! recording as one stream (its motion search and GOP span chunks, which
//! favours it); its CRF is the lowest (best) whose total size fits the
//! tokenizer's bits, and likewise JPEG's quality scale per frame.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use super::Score;
use crate::TokenizerError;

/// A classical codec ffmpeg runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Classic {
    /// x264 (`-crf`, 0 to 51).
    X264,
    /// Motion JPEG (`-q:v`, 2 to 31).
    Jpeg,
}

impl Classic {
    /// Its settings from best to coarsest.
    fn range(self) -> (u32, u32) {
        match self {
            Classic::X264 => (0, 51),
            Classic::Jpeg => (2, 31),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Classic::X264 => "x264",
            Classic::Jpeg => "JPEG",
        }
    }
}

/// The best setting of a codec within a budget, and how it scored.
pub(crate) struct Baseline {
    pub(crate) level: u32,
    pub(crate) bits: u64,
    pub(crate) score: Score,
    /// Even the coarsest setting is above the budget.
    pub(crate) floor: bool,
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Runs ffmpeg with `input` on stdin; returns its stdout.
fn ffmpeg(args: &[String], input: Vec<u8>) -> Result<Vec<u8>, TokenizerError> {
    let mut child = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-y"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|reason| TokenizerError::FfmpegMissing { reason })?;
    let pipe = |reason: std::io::Error| TokenizerError::FfmpegPipe { args: args.to_vec(), reason };
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // Written from another thread: ffmpeg's output fills its pipe while it still reads.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut out = Vec::new();
    child.stdout.take().expect("stdout is piped").read_to_end(&mut out).map_err(pipe)?;
    let mut err = String::new();
    child.stderr.take().expect("stderr is piped").read_to_string(&mut err).map_err(pipe)?;
    let status = child.wait().map_err(pipe)?;
    // A write that failed (ffmpeg stopped reading) shows in its status and stderr.
    writer.join().map_err(|_| pipe(std::io::Error::other("the thread writing its input panicked")))?.ok();
    if !status.success() {
        return Err(TokenizerError::Ffmpeg { args: args.to_vec(), stderr: err.trim().to_string() });
    }
    Ok(out)
}

fn raw_args(size: usize, fps: u32) -> Vec<String> {
    strings(&["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", &format!("{size}x{size}"), "-r", &fps.to_string(), "-i", "pipe:0"])
}

/// One recording's frames (rgb8, `size`×`size`) encoded at `level` (x264's
/// CRF or JPEG's quality scale): the encoded bytes.
fn encode(frames: &[u8], size: usize, fps: u32, codec: Classic, level: u32) -> Result<Vec<u8>, TokenizerError> {
    let mut args = raw_args(size, fps);
    args.extend(match codec {
        Classic::X264 => {
            strings(&["-c:v", "libx264", "-preset", "medium", "-crf", &level.to_string(), "-pix_fmt", "yuv420p", "-f", "h264", "pipe:1"])
        }
        Classic::Jpeg => strings(&["-c:v", "mjpeg", "-q:v", &level.to_string(), "-pix_fmt", "yuvj420p", "-f", "mjpeg", "pipe:1"]),
    });
    ffmpeg(&args, frames.to_vec())
}

fn decode(bytes: &[u8], codec: Classic) -> Result<Vec<u8>, TokenizerError> {
    let format = match codec {
        Classic::X264 => "h264",
        Classic::Jpeg => "mjpeg",
    };
    ffmpeg(&strings(&["-f", format, "-i", "pipe:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]), bytes.to_vec())
}

/// The best setting of `codec` (lowest level of its range) whose total bits
/// over the recordings (rgb8 streams) fit `budget`, scored on the decoded frames.
pub(crate) fn baseline(recs: &[Vec<u8>], size: usize, fps: u32, codec: Classic, budget: u64) -> Result<Baseline, TokenizerError> {
    let bits = |level: u32| -> Result<(u64, Vec<Vec<u8>>), TokenizerError> {
        let enc: Vec<Vec<u8>> = recs.iter().map(|r| encode(r, size, fps, codec, level)).collect::<Result<_, _>>()?;
        Ok((enc.iter().map(|e| e.len() as u64 * 8).sum(), enc))
    };
    let (mut lo, mut hi) = codec.range();
    let (hi_bits, mut best) = {
        let (b, e) = bits(hi)?;
        (b, (hi, e))
    };
    let floor = hi_bits > budget;
    if !floor {
        // Invariant: hi fits. Find the lowest level that fits.
        while lo < hi {
            let mid = (lo + hi) / 2;
            let (b, e) = bits(mid)?;
            if b <= budget {
                hi = mid;
                best = (mid, e);
            } else {
                lo = mid + 1;
            }
        }
    }
    let (level, enc) = best;
    let mut score = Score::default();
    let mut total = 0u64;
    for (rec, e) in recs.iter().zip(&enc) {
        total += e.len() as u64 * 8;
        let dec = decode(e, codec)?;
        let n = size * size * 3;
        if dec.len() != rec.len() {
            return Err(TokenizerError::BaselineFrames { codec: codec.name(), decoded: dec.len() / n, frames: rec.len() / n });
        }
        for (a, b) in rec.chunks_exact(n).zip(dec.chunks_exact(n)) {
            score.add(a, b, size);
        }
    }
    Ok(Baseline { level, bits: total, score, floor })
}
