//! Reconstruction quality (PSNR, SSIM) of tokenizer checkpoints on held-out
//! recordings, beside ffmpeg's x264 at the same bits per pixel and JPEG at the
//! same bits per frame, in the same run: what `s2r eval tokenizer` prints.
//!
//! Every codec sees the same frames: each recording's `/sim/<camera>/image_raw`
//! (or its restyled `/<camera>/image_raw`), center-cropped and resampled to
//! the frame size, cut into whole chunks of 1 + t frames (the tokenizer
//! encodes each chunk on its own, as tokenizer_node does). Quality is
//! measured on 8-bit RGB. Discrete codes are counted both raw (16 bits) and
//! entropy-coded (zstd), as a bag stores them.

mod baseline;

use std::fmt;
use std::path::{Path, PathBuf};

use s2r_image::{grid, write_png, Rgb};

use crate::codec::{Codec, Tokens};
use crate::data;
use crate::metrics::{psnr, ssim, to_rgb8, Rgb8};
use crate::TokenizerError;
use baseline::{baseline, Baseline, Classic};

/// Frames of the first recording shown on the sheet.
pub const SHEET_FRAMES: [usize; 4] = [0, 12, 60, 150];

/// What [`evaluate`] runs. The defaults are `s2r eval tokenizer`'s.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Held-out recordings (bags or curated datasets) never used in training.
    pub recordings: Vec<PathBuf>,
    /// Checkpoints: shipped names or files ([`crate::resolve_checkpoint`]).
    pub checkpoints: Vec<String>,
    /// Frame size (square) the frames are resampled to.
    pub size: usize,
    /// The camera whose frames are used.
    pub camera: String,
    /// Frame rate given to x264.
    pub fps: u32,
    /// Bits counted per continuous latent value.
    pub latent_bits: u32,
    /// Run the x264 and JPEG baselines (they need ffmpeg).
    pub baselines: bool,
    /// Use only the first N frames of each recording (whole chunks of them).
    pub frames: Option<usize>,
    /// Keep frames of the first recording for a [`Sheet`].
    pub sheet: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            recordings: Vec::new(),
            checkpoints: vec!["cv4x8x8".into(), "dv8x16x16".into()],
            size: 256,
            camera: "front".into(),
            // The simulator's cameras run at 10 Hz.
            fps: 10,
            // Half precision.
            latent_bits: 16,
            baselines: true,
            frames: None,
            sheet: false,
        }
    }
}

/// Mean PSNR and SSIM over frames.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Score {
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

/// How the frames of a row were coded.
#[derive(Clone, Debug, PartialEq)]
pub enum Method {
    /// The tokenizer's tokens as they are: latents of `latent_bits` each
    /// (continuous), or 16-bit codes (discrete, `latent_bits` `None`).
    Tokens {
        /// The variant (`cv4x8x8`, `dv8x16x16`).
        variant: String,
        /// Bits per latent value; `None` for codes.
        latent_bits: Option<u32>,
    },
    /// The discrete codes entropy-coded with zstd (level 19).
    CodesZstd {
        /// The variant.
        variant: String,
    },
    /// ffmpeg's x264.
    X264 {
        /// Its CRF.
        crf: u32,
        /// Even its coarsest setting is above the budget.
        coarsest: bool,
    },
    /// ffmpeg's motion JPEG.
    Jpeg {
        /// Its quality scale (`-q:v`).
        quality: u32,
        /// Even its coarsest setting is above the budget.
        coarsest: bool,
    },
}

impl fmt::Display for Method {
    /// The row's label in the table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let coarsest = |c: bool| if c { " (its coarsest, above the budget)" } else { "" };
        match self {
            Method::Tokens { variant, latent_bits: Some(b) } => write!(f, "{variant} ({b}-bit latents)"),
            Method::Tokens { variant, latent_bits: None } => write!(f, "{variant} (16-bit codes)"),
            Method::CodesZstd { variant } => write!(f, "{variant} (codes + zstd -19)"),
            Method::X264 { crf, coarsest: c } => write!(f, "x264 crf {crf}{}", coarsest(*c)),
            Method::Jpeg { quality, coarsest: c } => write!(f, "JPEG q:v {quality}{}", coarsest(*c)),
        }
    }
}

/// One row of a checkpoint's table: a way of coding the frames and its figures.
#[derive(Clone, Debug)]
pub struct Row {
    /// How the frames were coded (its label).
    pub method: Method,
    /// Bits of all the frames.
    pub bits: u64,
    /// Bits per pixel.
    pub bits_per_pixel: f64,
    /// Bytes per frame.
    pub bytes_per_frame: f64,
    /// Mean PSNR over the frames, dB.
    pub psnr: f64,
    /// Mean SSIM over the frames.
    pub ssim: f64,
}

/// A checkpoint and the frames it was measured on.
#[derive(Clone, Debug)]
pub struct CheckpointInfo {
    /// Its variant (`cv4x8x8`, `dv8x16x16`).
    pub variant: String,
    /// Its file.
    pub path: PathBuf,
    /// Frames measured (whole chunks).
    pub frames: usize,
    /// Recordings with at least one chunk.
    pub recordings: usize,
    /// Frames per chunk (1 + its temporal compression).
    pub chunk: usize,
    /// Frame size (square).
    pub size: usize,
}

/// The figures of one checkpoint.
#[derive(Clone, Debug)]
pub struct CheckpointEval {
    /// The checkpoint.
    pub info: CheckpointInfo,
    /// Its tokens as they are.
    pub tokens: Row,
    /// x264 within the tokens' bits (with baselines).
    pub x264: Option<Row>,
    /// JPEG within the tokens' bits (with baselines).
    pub jpeg: Option<Row>,
    /// The codes entropy-coded (discrete checkpoints, with baselines).
    pub coded: Option<Row>,
    /// x264 within the entropy-coded codes' bits.
    pub x264_coded: Option<Row>,
}

impl CheckpointEval {
    /// The rows in table order: tokens, x264, JPEG, coded codes, x264 at their bits.
    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        std::iter::once(&self.tokens).chain(&self.x264).chain(&self.jpeg).chain(&self.coded).chain(&self.x264_coded)
    }
}

/// Input and reconstructions side by side: a few frames of the first recording.
#[derive(Clone, Debug)]
pub struct Sheet {
    /// Which frames (indices into the first recording's frames).
    pub frames: Vec<usize>,
    /// The input, then one row per checkpoint.
    pub rows: Vec<Vec<Rgb>>,
}

impl Sheet {
    /// The rows as one picture (4-pixel gaps).
    pub fn image(&self) -> Rgb {
        grid(&self.rows, 4)
    }

    /// Writes [`Sheet::image`] as a PNG.
    pub fn write_png(&self, path: &Path) -> Result<(), TokenizerError> {
        Ok(write_png(path, &self.image())?)
    }
}

/// What [`evaluate`] found.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// The bags the recordings hold.
    pub bags: Vec<PathBuf>,
    /// One per checkpoint, in the order given.
    pub checkpoints: Vec<CheckpointEval>,
    /// With [`EvalOptions::sheet`].
    pub sheet: Option<Sheet>,
}

/// What [`evaluate`] reports as it goes, in this order: the bags, then per
/// checkpoint its [`CheckpointInfo`] followed by its rows as each is measured.
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// The bags found in the recordings.
    Bags(&'a [PathBuf]),
    /// A checkpoint's tokens are measured; its rows follow.
    Checkpoint(&'a CheckpointInfo),
    /// A row of the current checkpoint.
    Row(&'a Row),
}

/// Measures every checkpoint of `opts` on the held-out recordings, with the
/// baselines when asked; `progress` hears of each result as it comes (a
/// failing baseline leaves the rows before it reported). Errors name the
/// checkpoint, the recording or the ffmpeg command that failed.
pub fn evaluate(opts: &EvalOptions, progress: &mut dyn FnMut(Progress<'_>)) -> Result<Evaluation, TokenizerError> {
    let mut bags = Vec::new();
    for r in &opts.recordings {
        bags.extend(data::bags_in(r));
    }
    progress(Progress::Bags(&bags));
    let size = opts.size;
    let mut checkpoints = Vec::new();
    // Sheet rows: the input, then one per checkpoint (frames of the first recording).
    let mut sheet_rows: Vec<Vec<Vec<u8>>> = Vec::new();
    for name in &opts.checkpoints {
        let path = crate::resolve_checkpoint(name);
        let codec = Codec::load(&path)?;
        let cfg = codec.cfg;
        let chunk = 1 + cfg.temporal;
        // Per recording: its chunks (planar) and the same frames as rgb8.
        let mut recs = Vec::new();
        for bag in &bags {
            let mut clips = data::load(std::slice::from_ref(bag), &opts.camera, size, chunk)?;
            if let Some(n) = opts.frames {
                clips.truncate(n / chunk);
            }
            if !clips.is_empty() {
                recs.push(clips);
            }
        }
        let frames: usize = recs.iter().map(|r| r.len() * chunk).sum();
        if frames == 0 {
            return Err(TokenizerError::NoChunks { camera: opts.camera.clone(), frames: chunk });
        }
        let pixels = (frames * size * size) as f64;
        let mut tok = Score::default();
        let mut bits = 0u64;
        let mut rgb: Vec<Vec<u8>> = Vec::new();
        // The codes of each recording, entropy-coded with zstd (as a bag stores them).
        let mut coded_bits = 0u64;
        let mut first_decoded: Vec<Vec<u8>> = Vec::new();
        for (ri, clips) in recs.iter().enumerate() {
            let mut codes = Vec::new();
            let mut stream = Vec::with_capacity(clips.len() * chunk * size * size * 3);
            for c in clips {
                let tokens = codec.encode(&c.frames, size).map_err(|e| TokenizerError::Encode {
                    variant: cfg.name(),
                    clip: c.source.clone(),
                    reason: Box::new(e),
                })?;
                bits += match &tokens {
                    Tokens::Continuous { values, .. } => values.len() as u64 * opts.latent_bits as u64,
                    Tokens::Discrete { codes: c, .. } => {
                        codes.extend(c.iter().flat_map(|v| v.to_le_bytes()));
                        c.len() as u64 * 16
                    }
                };
                let out = codec.decode(&tokens)?;
                for (f, d) in c.frames.iter().zip(&out) {
                    let (x, y) = (to_rgb8(f, size), to_rgb8(d, size));
                    tok.add(&x, &y, size);
                    stream.extend_from_slice(&x);
                    if ri == 0 && opts.sheet {
                        first_decoded.push(y);
                    }
                }
            }
            if ri == 0 && opts.sheet && sheet_rows.is_empty() {
                let n = size * size * 3;
                sheet_rows.push(stream.chunks_exact(n).map(<[u8]>::to_vec).collect());
            }
            rgb.push(stream);
            if !codes.is_empty() {
                let recording = clips.first().map(|c| c.source.clone()).unwrap_or_default();
                coded_bits +=
                    zstd::bulk::compress(&codes, 19).map_err(|reason| TokenizerError::Zstd { recording, reason })?.len() as u64 * 8;
            }
        }
        let row = |method: Method, bits: u64, s: &Score| {
            let (psnr, ssim) = s.mean();
            Row { method, bits, bits_per_pixel: bits as f64 / pixels, bytes_per_frame: bits as f64 / 8.0 / frames as f64, psnr, ssim }
        };
        let info = CheckpointInfo { variant: cfg.name(), path, frames, recordings: recs.len(), chunk, size };
        progress(Progress::Checkpoint(&info));
        let latent_bits = cfg.continuous.is_some().then_some(opts.latent_bits);
        let tokens = row(Method::Tokens { variant: cfg.name(), latent_bits }, bits, &tok);
        progress(Progress::Row(&tokens));
        let mut eval = CheckpointEval { info, tokens, x264: None, jpeg: None, coded: None, x264_coded: None };
        if opts.baselines {
            let classic = |b: Baseline, codec: Classic| {
                let method = match codec {
                    Classic::X264 => Method::X264 { crf: b.level, coarsest: b.floor },
                    Classic::Jpeg => Method::Jpeg { quality: b.level, coarsest: b.floor },
                };
                row(method, b.bits, &b.score)
            };
            let x = classic(baseline(&rgb, size, opts.fps, Classic::X264, bits)?, Classic::X264);
            progress(Progress::Row(&x));
            eval.x264 = Some(x);
            let j = classic(baseline(&rgb, size, opts.fps, Classic::Jpeg, bits)?, Classic::Jpeg);
            progress(Progress::Row(&j));
            eval.jpeg = Some(j);
            if coded_bits > 0 {
                let coded = row(Method::CodesZstd { variant: cfg.name() }, coded_bits, &tok);
                progress(Progress::Row(&coded));
                eval.coded = Some(coded);
                let x = classic(baseline(&rgb, size, opts.fps, Classic::X264, coded_bits)?, Classic::X264);
                progress(Progress::Row(&x));
                eval.x264_coded = Some(x);
            }
        }
        checkpoints.push(eval);
        if opts.sheet {
            sheet_rows.push(first_decoded);
        }
    }
    let sheet = opts.sheet.then(|| {
        let len = sheet_rows.iter().map(Vec::len).min().unwrap_or(0);
        let frames: Vec<usize> = SHEET_FRAMES.iter().map(|&i| i.min(len.saturating_sub(1))).collect();
        let rows =
            sheet_rows.iter().map(|r| frames.iter().map(|&i| Rgb { width: size, height: size, data: r[i].clone() }).collect()).collect();
        Sheet { frames, rows }
    });
    Ok(Evaluation { bags, checkpoints, sheet })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bags").join(name)
    }

    #[test]
    fn labels_are_the_tables() {
        let cv = Method::Tokens { variant: "cv4x8x8".into(), latent_bits: Some(16) };
        assert_eq!(cv.to_string(), "cv4x8x8 (16-bit latents)");
        assert_eq!(Method::Tokens { variant: "dv8x16x16".into(), latent_bits: None }.to_string(), "dv8x16x16 (16-bit codes)");
        assert_eq!(Method::CodesZstd { variant: "dv8x16x16".into() }.to_string(), "dv8x16x16 (codes + zstd -19)");
        assert_eq!(Method::X264 { crf: 44, coarsest: false }.to_string(), "x264 crf 44");
        assert_eq!(Method::Jpeg { quality: 31, coarsest: true }.to_string(), "JPEG q:v 31 (its coarsest, above the budget)");
    }

    #[test]
    fn a_shipped_checkpoint_is_measured_in_order_with_its_sheet() {
        let opts = EvalOptions {
            recordings: vec![sample("icy_night_crossing")],
            checkpoints: vec!["dv8x16x16".into()],
            baselines: false,
            frames: Some(20),
            sheet: true,
            ..EvalOptions::default()
        };
        let mut events = Vec::new();
        let e = evaluate(&opts, &mut |p| {
            events.push(match p {
                Progress::Bags(b) => format!("bags {}", b.len()),
                Progress::Checkpoint(c) => format!("checkpoint {} {} {}", c.variant, c.frames, c.chunk),
                Progress::Row(r) => format!("row {}", r.method),
            })
        })
        .unwrap();
        // Whole chunks of 9 frames: 2 of the first 20.
        assert_eq!(events, ["bags 1", "checkpoint dv8x16x16 18 9", "row dv8x16x16 (16-bit codes)"]);
        let c = &e.checkpoints[0];
        assert_eq!(c.rows().count(), 1);
        // Two latent frames of 16x16 16-bit codes per 9 frames of 256x256.
        assert!((c.tokens.bits_per_pixel - 2.0 * 256.0 * 16.0 / (9.0 * 65536.0)).abs() < 1e-9, "{:?}", c.tokens);
        assert!(c.tokens.psnr > 25.0 && c.tokens.ssim > 0.8 && c.tokens.ssim <= 1.0, "{:?}", c.tokens);
        let sheet = e.sheet.unwrap();
        assert_eq!(sheet.frames, [0, 12, 17, 17]);
        assert_eq!(sheet.rows.len(), 2, "the input, then the checkpoint");
        let img = sheet.image();
        assert_eq!((img.width, img.height), (4 * 256 + 5 * 4, 2 * 256 + 3 * 4));
    }

    #[test]
    fn errors_name_the_camera_and_the_checkpoint() {
        let opts = EvalOptions {
            recordings: vec![sample("icy_night_crossing")],
            checkpoints: vec!["dv8x16x16".into()],
            camera: "nope".into(),
            baselines: false,
            ..EvalOptions::default()
        };
        let e = evaluate(&opts, &mut |_| {}).unwrap_err().to_string();
        assert_eq!(e, "no chunk of 9 frames of camera 'nope' in the recordings");
        let opts = EvalOptions { checkpoints: vec!["/nowhere/x.safetensors".into()], ..opts };
        let e = evaluate(&opts, &mut |_| {}).unwrap_err().to_string();
        assert!(e.contains("/nowhere/x.safetensors") && e.contains("s2r train tokenizer"), "{e}");
    }
}
