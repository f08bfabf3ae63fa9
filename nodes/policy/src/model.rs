//! The network: a small convolutional encoder of the camera frame, the
//! vehicle's speed and yaw rate joined in, and an MLP that predicts the next
//! `chunk` commands (speed asked for, yaw rate).

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{conv2d, linear, Conv2d, Conv2dConfig, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

/// Metres per second per unit of the network's speed outputs and inputs.
pub const SPEED_SCALE: f32 = 10.0;
/// Radians per second per unit of its yaw-rate outputs and inputs.
pub const YAW_SCALE: f32 = 0.5;

/// The network's shape and what it reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Input width, pixels (frames of any size are resized to it).
    pub width: usize,
    /// Input height.
    pub height: usize,
    /// The camera it looks through (`<camera>/image_raw`).
    pub camera: String,
    /// Commands predicted per frame, one per camera period.
    pub chunk: usize,
    /// Seconds between two commands of a chunk (the camera period it was trained at).
    pub period: f32,
    /// Channels of the four stride-2 convolutions.
    pub channels: [usize; 4],
    /// Width of the hidden layer.
    pub hidden: usize,
}

impl Config {
    /// The default: 128×96 input, chunks of 10 commands 0.1 s apart.
    pub fn small(camera: &str) -> Config {
        Config { width: 128, height: 96, camera: camera.into(), chunk: 10, period: 0.1, channels: [16, 32, 64, 64], hidden: 256 }
    }
}

/// The policy network.
pub struct Net {
    /// Its config.
    pub config: Config,
    convs: Vec<Conv2d>,
    squeeze: Conv2d,
    fc1: Linear,
    fc2: Linear,
}

impl Net {
    /// The network with weights from `vb` (fresh or loaded).
    pub fn new(config: Config, vb: VarBuilder) -> Result<Net> {
        let mut convs = Vec::new();
        let mut c_in = 3;
        for (i, &c) in config.channels.iter().enumerate() {
            let k = if i == 0 { 5 } else { 3 };
            let cfg = Conv2dConfig { stride: 2, padding: k / 2, ..Default::default() };
            convs.push(conv2d(c_in, c, k, cfg, vb.pp(format!("conv{i}")))?);
            c_in = c;
        }
        let squeeze = conv2d(c_in, 32, 1, Conv2dConfig::default(), vb.pp("squeeze"))?;
        let (fw, fh) = feature_size(&config);
        let fc1 = linear(32 * fw * fh + 2, config.hidden, vb.pp("fc1"))?;
        let fc2 = linear(config.hidden, 2 * config.chunk, vb.pp("fc2"))?;
        Ok(Net { config, convs, squeeze, fc1, fc2 })
    }

    /// Images `[B, 3, H, W]` (0 to 1) and states `[B, 2]` (speed / SPEED_SCALE,
    /// yaw rate / YAW_SCALE) → commands `[B, chunk, 2]` in the same units.
    pub fn forward(&self, images: &Tensor, state: &Tensor) -> Result<Tensor> {
        let mut x = (images - 0.5)?;
        for c in &self.convs {
            x = c.forward(&x)?.relu()?;
        }
        let x = self.squeeze.forward(&x)?.relu()?.flatten_from(1)?;
        let x = Tensor::cat(&[&x, state], D::Minus1)?;
        let x = self.fc1.forward(&x)?.relu()?;
        let b = x.dim(0)?;
        self.fc2.forward(&x)?.reshape((b, self.config.chunk, 2))
    }
}

/// The encoder's output size (after four stride-2 convolutions).
fn feature_size(c: &Config) -> (usize, usize) {
    let down = |mut n: usize| {
        for _ in 0..4 {
            n = n.div_ceil(2);
        }
        n
    };
    (down(c.width), down(c.height))
}
