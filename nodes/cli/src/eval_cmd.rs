//! `s2r eval tokenizer HELD_OUT…`: reconstruction quality (PSNR, SSIM) of
//! each tokenizer on held-out recordings, beside ffmpeg's x264 at the same
//! bits per pixel and JPEG at the same bits per frame, in the same run.
//!
//! Every codec sees the same frames: each recording's `/sim/<camera>/image_raw`
//! (or its restyled `/<camera>/image_raw`), center-cropped and resampled to
//! `--size`, cut into whole chunks of 1 + t frames (the tokenizer encodes each
//! chunk on its own, as tokenizer_node does). Quality is measured on 8-bit RGB.
//! x264 gets each recording as one stream (its motion search and GOP span
//! chunks, which favours it); its CRF is the lowest (best) whose total size
//! fits the tokenizer's bits, and likewise JPEG's quality scale per frame.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Subcommand};
use s2r_image::{grid, write_png, Rgb};
use s2r_tokenizer::codec::{Codec, Tokens};
use s2r_tokenizer::data;
use s2r_tokenizer::metrics::{psnr, ssim, to_rgb8, Rgb8};

#[derive(Subcommand)]
pub enum EvalCmd {
    /// Tokenizer reconstruction quality beside x264 and JPEG at the same bits.
    Tokenizer(TokenizerEvalArgs),
}

#[derive(Args)]
pub struct TokenizerEvalArgs {
    /// Held-out recordings (bags or curated datasets) never used in training.
    #[arg(required = true)]
    recordings: Vec<PathBuf>,
    /// Checkpoints: shipped names or files.
    #[arg(long, value_delimiter = ',', default_value = "cv4x8x8,dv8x16x16")]
    checkpoints: Vec<String>,
    #[arg(long, default_value_t = 256)]
    size: usize,
    #[arg(long, default_value = "front")]
    camera: String,
    /// Frame rate given to x264 (the simulator's cameras run at 10 Hz).
    #[arg(long, default_value_t = 10)]
    fps: u32,
    /// Bits per continuous latent value (half precision by default).
    #[arg(long, default_value_t = 16)]
    latent_bits: u32,
    /// Leave out the x264 and JPEG rows (no ffmpeg needed).
    #[arg(long)]
    no_baselines: bool,
    /// Use only the first N frames of each recording (whole chunks of them).
    #[arg(long)]
    frames: Option<usize>,
    /// Write a PNG of a few frames of the first recording: the input, then each tokenizer's reconstruction.
    #[arg(long)]
    sheet: Option<PathBuf>,
}

/// Frames of the first recording shown on the sheet.
const SHEET_FRAMES: [usize; 4] = [0, 12, 60, 150];

pub fn run(c: EvalCmd) -> Result<()> {
    match c {
        EvalCmd::Tokenizer(a) => tokenizer(a),
    }
}

/// Mean PSNR and SSIM over frames.
#[derive(Default)]
struct Score {
    psnr: f64,
    ssim: f64,
    frames: usize,
}

impl Score {
    fn add(&mut self, a: &[u8], b: &[u8], size: usize) {
        let (x, y) = (Rgb8 { width: size, height: size, data: a }, Rgb8 { width: size, height: size, data: b });
        self.psnr += psnr(&x, &y);
        self.ssim += ssim(&x, &y);
        self.frames += 1;
    }

    fn mean(&self) -> (f64, f64) {
        (self.psnr / self.frames.max(1) as f64, self.ssim / self.frames.max(1) as f64)
    }
}

/// Runs ffmpeg with `input` on stdin; returns its stdout.
fn ffmpeg(args: &[String], input: Vec<u8>) -> Result<Vec<u8>> {
    let mut child = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-y"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow!("ffmpeg: {e} (install it: `apt-get install ffmpeg`; or pass --no-baselines)"))?;
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out)?;
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err)?;
    let status = child.wait()?;
    writer.join().map_err(|_| anyhow!("ffmpeg input thread"))?.ok();
    if !status.success() {
        bail!("ffmpeg {}: {}", args.join(" "), err.trim());
    }
    Ok(out)
}

fn raw_args(size: usize, fps: u32) -> Vec<String> {
    ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", &format!("{size}x{size}"), "-r", &fps.to_string(), "-i", "pipe:0"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// One recording's frames encoded with x264 at `crf` (or as JPEGs at quality
/// scale `q`): the encoded bytes.
fn encode(frames: &[u8], size: usize, fps: u32, x264: bool, level: u32) -> Result<Vec<u8>> {
    let mut args = raw_args(size, fps);
    let tail: Vec<String> = if x264 {
        ["-c:v", "libx264", "-preset", "medium", "-crf", &level.to_string(), "-pix_fmt", "yuv420p", "-f", "h264", "pipe:1"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        ["-c:v", "mjpeg", "-q:v", &level.to_string(), "-pix_fmt", "yuvj420p", "-f", "mjpeg", "pipe:1"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    args.extend(tail);
    ffmpeg(&args, frames.to_vec())
}

fn decode(bytes: &[u8], x264: bool) -> Result<Vec<u8>> {
    let args: Vec<String> = ["-f", if x264 { "h264" } else { "mjpeg" }, "-i", "pipe:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    ffmpeg(&args, bytes.to_vec())
}

struct Baseline {
    level: u32,
    bits: u64,
    score: Score,
    /// Even the coarsest setting is above the budget.
    floor: bool,
}

/// The best setting (lowest `level` in `range`) whose total bits fit `budget`.
fn baseline(recs: &[Vec<u8>], size: usize, fps: u32, x264: bool, range: (u32, u32), budget: u64) -> Result<Baseline> {
    let bits = |level: u32| -> Result<(u64, Vec<Vec<u8>>)> {
        let enc: Vec<Vec<u8>> = recs.iter().map(|r| encode(r, size, fps, x264, level)).collect::<Result<_>>()?;
        Ok((enc.iter().map(|e| e.len() as u64 * 8).sum(), enc))
    };
    let (mut lo, mut hi) = range;
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
        let dec = decode(e, x264)?;
        let n = size * size * 3;
        if dec.len() != rec.len() {
            bail!("{}: {} frames decoded of {}", if x264 { "x264" } else { "JPEG" }, dec.len() / n, rec.len() / n);
        }
        for (a, b) in rec.chunks_exact(n).zip(dec.chunks_exact(n)) {
            score.add(a, b, size);
        }
    }
    Ok(Baseline { level, bits: total, score, floor })
}

fn tokenizer(a: TokenizerEvalArgs) -> Result<()> {
    s2r_tokenizer::tune_allocator();
    let mut bags = Vec::new();
    for r in &a.recordings {
        bags.extend(data::bags_in(r));
    }
    println!("held-out recordings: {}", bags.iter().map(|b| b.display().to_string()).collect::<Vec<_>>().join(", "));
    let mut verdicts = Vec::new();
    // Sheet rows: the input, then one per checkpoint (frames of the first recording).
    let mut sheet_rows: Vec<Vec<Vec<u8>>> = Vec::new();
    for name in &a.checkpoints {
        let path = s2r_tokenizer::resolve_checkpoint(name);
        let codec = Codec::load(&path).map_err(|e| anyhow!(e))?;
        let cfg = codec.cfg;
        let chunk = 1 + cfg.temporal;
        // Per recording: its chunks (planar) and the same frames as rgb8.
        let mut recs = Vec::new();
        for bag in &bags {
            let mut clips = data::load(std::slice::from_ref(bag), &a.camera, a.size, chunk).map_err(|e| anyhow!(e))?;
            if let Some(n) = a.frames {
                clips.truncate(n / chunk);
            }
            if !clips.is_empty() {
                recs.push(clips);
            }
        }
        let frames: usize = recs.iter().map(|r| r.len() * chunk).sum();
        if frames == 0 {
            bail!("no chunk of {chunk} frames of camera '{}' in the recordings", a.camera);
        }
        let pixels = (frames * a.size * a.size) as f64;
        let mut tok = Score::default();
        let mut bits = 0u64;
        let mut rgb: Vec<Vec<u8>> = Vec::new();
        // The codes of each recording, entropy-coded with zstd (as a bag stores them).
        let mut coded_bits = 0u64;
        let mut first_decoded: Vec<Vec<u8>> = Vec::new();
        for (ri, clips) in recs.iter().enumerate() {
            let mut codes = Vec::new();
            let mut stream = Vec::with_capacity(clips.len() * chunk * a.size * a.size * 3);
            for c in clips {
                let tokens = codec.encode(&c.frames, a.size).with_context(|| format!("{}: encoding {}", cfg.name(), c.source))?;
                bits += match &tokens {
                    Tokens::Continuous { values, .. } => values.len() as u64 * a.latent_bits as u64,
                    Tokens::Discrete { codes: c, .. } => {
                        codes.extend(c.iter().flat_map(|v| v.to_le_bytes()));
                        c.len() as u64 * 16
                    }
                };
                let out = codec.decode(&tokens)?;
                for (f, d) in c.frames.iter().zip(&out) {
                    let (x, y) = (to_rgb8(f, a.size), to_rgb8(d, a.size));
                    tok.add(&x, &y, a.size);
                    stream.extend_from_slice(&x);
                    if ri == 0 {
                        first_decoded.push(y);
                    }
                }
            }
            if ri == 0 && sheet_rows.is_empty() {
                let n = a.size * a.size * 3;
                sheet_rows.push(stream.chunks_exact(n).map(<[u8]>::to_vec).collect());
            }
            rgb.push(stream);
            if !codes.is_empty() {
                coded_bits += zstd::bulk::compress(&codes, 19)?.len() as u64 * 8;
            }
        }
        let per = if cfg.continuous.is_some() { format!("{}-bit latents", a.latent_bits) } else { "16-bit codes".to_string() };
        println!(
            "\n{} ({}): {frames} frames, {} recordings, chunks of {chunk}, {}x{}",
            cfg.name(),
            path.display(),
            recs.len(),
            a.size,
            a.size
        );
        println!("| codec | bits/pixel | bytes/frame | PSNR dB | SSIM |");
        println!("|---|---|---|---|---|");
        let row = |label: &str, bits: u64, s: &Score| {
            let (p, ss) = s.mean();
            println!("| {label} | {:.4} | {:.0} | {p:.2} | {ss:.4} |", bits as f64 / pixels, bits as f64 / 8.0 / frames as f64);
        };
        row(&format!("{} ({per})", cfg.name()), bits, &tok);
        let (tp, _) = tok.mean();
        let mut line = format!("{}: {tp:.2} dB", cfg.name());
        if !a.no_baselines {
            let x = baseline(&rgb, a.size, a.fps, true, (0, 51), bits)?;
            row(&format!("x264 crf {}{}", x.level, if x.floor { " (its coarsest, above the budget)" } else { "" }), x.bits, &x.score);
            let j = baseline(&rgb, a.size, a.fps, false, (2, 31), bits)?;
            row(&format!("JPEG q:v {}{}", j.level, if j.floor { " (its coarsest, above the budget)" } else { "" }), j.bits, &j.score);
            let (xp, _) = x.score.mean();
            line += &format!("; x264 at {:.4} bpp {xp:.2} dB ({:+.2} dB)", x.bits as f64 / pixels, tp - xp);
            if coded_bits > 0 {
                row(&format!("{} (codes + zstd -19)", cfg.name()), coded_bits, &tok);
                let x = baseline(&rgb, a.size, a.fps, true, (0, 51), coded_bits)?;
                row(&format!("x264 crf {}{}", x.level, if x.floor { " (its coarsest, above the budget)" } else { "" }), x.bits, &x.score);
                let (xp, _) = x.score.mean();
                line += &format!("; codes zstd-coded at {:.4} bpp: x264 {xp:.2} dB ({:+.2} dB)", coded_bits as f64 / pixels, tp - xp);
            }
        }
        verdicts.push(line);
        sheet_rows.push(first_decoded);
    }
    if let Some(path) = &a.sheet {
        let len = sheet_rows.iter().map(Vec::len).min().unwrap_or(0);
        let picks: Vec<usize> = SHEET_FRAMES.iter().map(|&i| i.min(len.saturating_sub(1))).collect();
        let rows: Vec<Vec<Rgb>> =
            sheet_rows.iter().map(|r| picks.iter().map(|&i| Rgb { width: a.size, height: a.size, data: r[i].clone() }).collect()).collect();
        write_png(path, &grid(&rows, 4)).map_err(|e| anyhow!(e))?;
        println!("\nsheet: {} (rows: input, {}; frames {picks:?} of the first recording)", path.display(), a.checkpoints.join(", "));
    }
    println!();
    for v in verdicts {
        println!("{v}");
    }
    Ok(())
}
