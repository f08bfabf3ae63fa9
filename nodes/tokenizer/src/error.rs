//! The tokenizer's one error type: every variant names its input.

use std::path::{Path, PathBuf};

/// What went wrong loading a checkpoint, reading recordings or decoding tokens.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// No file at the checkpoint's path.
    #[error("tokenizer checkpoint {} does not exist; {}", path.display(), train_hint(path))]
    MissingCheckpoint {
        /// The checkpoint.
        path: PathBuf,
    },
    /// A file that is not safetensors.
    #[error("{}: not a safetensors checkpoint: {source}", path.display())]
    NotSafetensors {
        /// The file.
        path: PathBuf,
        /// What candle said.
        source: Box<candle_core::Error>,
    },
    /// A safetensors file without a tokenizer `config` tensor of this format.
    #[error("{}: no tokenizer config (or one of an older format) in the checkpoint; {}", path.display(), train_hint(path))]
    NoConfig {
        /// The checkpoint.
        path: PathBuf,
    },
    /// Weights that do not fit the architecture the config names.
    #[error("{}: does not match a {variant} tokenizer: {source}; {}", path.display(), train_hint(path))]
    Mismatch {
        /// The checkpoint.
        path: PathBuf,
        /// The variant its config names.
        variant: String,
        /// What candle said.
        source: Box<candle_core::Error>,
    },
    /// A recording that cannot be read (the bag error names the file).
    #[error("{source}")]
    Bag {
        /// The bag.
        path: PathBuf,
        /// Why.
        source: s2r_bag::BagError,
    },
    /// A message in a recording that does not decode.
    #[error("{}: {topic}: {source}", path.display())]
    Message {
        /// The bag.
        path: PathBuf,
        /// The message's topic.
        topic: String,
        /// Why.
        source: s2r_runtime::raw::CdrError,
    },
    /// A frame in a recording that cannot be read (undecodable, compressed
    /// wrongly, not a colour image).
    #[error("{}: {source}", path.display())]
    Frame {
        /// The bag.
        path: PathBuf,
        /// What is wrong with the frame (it names the topic).
        source: s2r_image::ImageError,
    },
    /// An image that is not a colour image.
    #[error(transparent)]
    Image(#[from] s2r_image::ImageError),
    /// A `TokenFrame` whose shape is not [latent frames, channels, h, w].
    #[error("TokenFrame shape {shape:?} is not [latent frames, channels, h, w]")]
    Shape {
        /// The shape it has.
        shape: Vec<u32>,
    },
    /// A `TokenFrame` with more or fewer values than its shape.
    #[error("{len} {kind} for shape {shape:?}")]
    Length {
        /// Values it has.
        len: usize,
        /// "codes" or "latents".
        kind: &'static str,
        /// Its shape.
        shape: Vec<u32>,
    },
    /// A tensor operation failed (tokens that do not fit the model, …).
    #[error(transparent)]
    Tensor(Box<candle_core::Error>),
    /// Encoding a clip failed.
    #[error("{variant}: encoding {clip}: {reason}")]
    Encode {
        /// The tokenizer variant.
        variant: String,
        /// The clip (its recording's name).
        clip: String,
        /// What candle said. Part of the message, so not a `source()` (which would repeat it).
        reason: Box<candle_core::Error>,
    },
    /// Recordings without a whole chunk of frames of the camera.
    #[error("no chunk of {frames} frames of camera '{camera}' in the recordings")]
    NoChunks {
        /// The camera.
        camera: String,
        /// Frames a chunk has.
        frames: usize,
    },
    /// ffmpeg could not be started (it is not installed, most likely).
    #[error("ffmpeg: {reason} (install it: `apt-get install ffmpeg`; or pass --no-baselines)")]
    FfmpegMissing {
        /// Why it did not start. Part of the message, so not a `source()`.
        reason: std::io::Error,
    },
    /// ffmpeg ran and failed.
    #[error("ffmpeg {}: {stderr}", args.join(" "))]
    Ffmpeg {
        /// Its arguments (after `-v error -nostdin -y`).
        args: Vec<String>,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Talking to ffmpeg through its pipes failed.
    #[error("ffmpeg {}: {reason}", args.join(" "))]
    FfmpegPipe {
        /// Its arguments (after `-v error -nostdin -y`).
        args: Vec<String>,
        /// What failed. Part of the message, so not a `source()`.
        reason: std::io::Error,
    },
    /// A baseline codec that gave back another number of frames than it was given.
    #[error("{codec}: {decoded} frames decoded of {frames}")]
    BaselineFrames {
        /// "x264" or "JPEG".
        codec: &'static str,
        /// Frames it decoded.
        decoded: usize,
        /// Frames it was given.
        frames: usize,
    },
    /// Compressing a recording's codes with zstd failed.
    #[error("{recording}: compressing the codes with zstd: {reason}")]
    Zstd {
        /// The recording.
        recording: String,
        /// What zstd said. Part of the message, so not a `source()`.
        reason: std::io::Error,
    },
    /// A tokenizer variant other than the two there are.
    #[error("variant '{name}' is not cv4x8x8 or dv8x16x16")]
    UnknownVariant {
        /// The name given.
        name: String,
    },
    /// A checkpoint to resume whose architecture cannot be read.
    #[error("{error} (or train without --resume to start one)")]
    ResumeConfig {
        /// The checkpoint.
        path: PathBuf,
        /// Why (it names the path). Part of the message, so not a `source()`.
        error: Box<TokenizerError>,
    },
    /// A checkpoint to resume whose weights cannot be loaded.
    #[error("{}: {error} (train without --resume to start one)", path.display())]
    ResumeWeights {
        /// The checkpoint.
        path: PathBuf,
        /// What candle said. Part of the message, so not a `source()`.
        error: Box<candle_core::Error>,
    },
    /// A training crop or frame size the variant's spatial compression does not divide.
    #[error("--crop {crop} and --size {size} must be multiples of {spatial} (crop ≤ size)")]
    CropSize {
        /// The training crop.
        crop: usize,
        /// The frame size.
        size: usize,
        /// The variant's spatial compression.
        spatial: usize,
    },
    /// Too few clips to train on and hold every tenth out.
    #[error("{clips} clips of {frames} frames found; training needs at least 10 (camera '{camera}')")]
    TooFewClips {
        /// Clips found.
        clips: usize,
        /// Frames a clip has.
        frames: usize,
        /// The camera.
        camera: String,
    },
    /// A bag of tokens made by another tokenizer than the checkpoint given.
    #[error("{}: tokens of codec '{codec}', the checkpoint {checkpoint} is '{expected}'", path.display())]
    CodecMismatch {
        /// The bag.
        path: PathBuf,
        /// The codec its tokens name.
        codec: String,
        /// The checkpoint as given (a name or a file).
        checkpoint: String,
        /// The checkpoint's codec.
        expected: String,
    },
    /// A bag without tokens.
    #[error("{}: no sim2real_msgs/msg/TokenFrame messages", path.display())]
    NoTokens {
        /// The bag.
        path: PathBuf,
    },
    /// A folder for output that cannot be created.
    #[error("{}: {reason}", path.display())]
    Output {
        /// The folder.
        path: PathBuf,
        /// Why. Part of the message, so not a `source()`.
        reason: std::io::Error,
    },
}

impl From<candle_core::Error> for TokenizerError {
    fn from(e: candle_core::Error) -> Self {
        TokenizerError::Tensor(Box::new(e))
    }
}

fn train_hint(path: &Path) -> String {
    format!("train one with `s2r train tokenizer DATASET… --variant cv4x8x8|dv8x16x16 --output {}`", path.display())
}
