//! The network: a spatio-temporal transformer over token frames.
//!
//! A frame of `grid`×`grid` FSQ codes enters as, per position, the sum of the
//! embeddings of its code's digits (one table row per level value of each
//! digit: 8+8+8+5+5+5 = 39 rows for 64,000 codes), plus a position in the
//! frame, a position in time, the frame's action and state (one linear map)
//! and the clip's conditions (robot, surface, weather, time of day: one
//! embedding each). Each block attends within a frame (every position to
//! every other), then across time at each position, causally (a frame sees
//! itself and earlier frames only), then a GELU MLP; pre-norm residuals.
//! The output at frame t is frame t + 1: per position one softmax per digit
//! (an argmax per digit makes the code), and from the frame's mean feature
//! the change of the robot's state to the next frame, plus (with
//! [`Config::dynamics`]) a small MLP's reading of the commands, the state
//! and the conditions as they are ([`DYNAMICS_INPUTS`]).

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{embedding, linear, Embedding, Linear, VarBuilder};
pub(crate) use s2r_train::nn::LayerNorm;
use s2r_train::nn::{attend, layer_norm};
use serde::{Deserialize, Serialize};

/// Entries of the action and state vectors: a vehicle uses 2 (speed, yaw
/// rate), an arm 7 (six joints and the gripper); unused entries are zero.
pub const ACTION: usize = 7;

/// The state head predicts the change of the (scaled) state over one step,
/// times this: a car's speed changes by a few hundredths of its scale per
/// step, which a loss on the state itself would hardly see beside the tokens'.
pub const STATE_GAIN: f32 = 20.0;

/// What a clip is of and where: the embedding rows the conditions pick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Conditions {
    /// The robot.
    pub robot: Robot,
    /// The surface under it (a car's road, or the arm's table).
    pub surface: Surface,
    /// `ScenarioInfo.weather`: 0 clear, 1 rain, 2 snow, 3 fog.
    pub weather: u8,
    /// `ScenarioInfo.time_of_day`: 0 dawn, 1 day, 2 dusk, 3 night.
    pub time: u8,
}

/// The robots a world model knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Robot {
    /// A car: actions are cmd_vel (speed, yaw rate), state its odometry's.
    Vehicle,
    /// An arm: actions are joint commands (relative to the joints) and the gripper's opening, state the joints.
    Arm,
}

/// The surface under the robot, from the scene's friction coefficient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Surface {
    /// A table (arms).
    Table,
    /// μ ≥ 0.6.
    Dry,
    /// 0.3 ≤ μ < 0.6.
    Wet,
    /// μ < 0.3.
    Icy,
}

impl Surface {
    /// A road's surface from its friction coefficient μ.
    pub fn of_friction(mu: f64) -> Surface {
        if mu >= 0.6 {
            Surface::Dry
        } else if mu >= 0.3 {
            Surface::Wet
        } else {
            Surface::Icy
        }
    }
}

/// The weather labels of `ScenarioInfo`, in the order of [`Conditions::weather`].
pub const WEATHERS: [&str; 4] = ["clear", "rain", "snow", "fog"];
/// The times of day of `ScenarioInfo`, in the order of [`Conditions::time`].
pub const TIMES: [&str; 4] = ["dawn", "day", "dusk", "night"];

impl Conditions {
    /// The embedding rows: robot 0–1, surface 2–5, weather 6–9, time 10–13.
    pub fn rows(&self) -> [u32; 4] {
        let robot = match self.robot {
            Robot::Vehicle => 0,
            Robot::Arm => 1,
        };
        let surface = match self.surface {
            Surface::Table => 0,
            Surface::Dry => 1,
            Surface::Wet => 2,
            Surface::Icy => 3,
        };
        [robot, 2 + surface, 6 + self.weather.min(3) as u32, 10 + self.time.min(3) as u32]
    }

    /// For people: "vehicle, icy, snow, night".
    pub fn describe(&self) -> String {
        // The variants' names as serde writes them (lowercase).
        let (r, s) = (format!("{:?}", self.robot).to_lowercase(), format!("{:?}", self.surface).to_lowercase());
        format!("{r}, {s}, {}, {}", WEATHERS[self.weather.min(3) as usize], TIMES[self.time.min(3) as usize])
    }
}

/// The network's shape and what it reads, saved with every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The tokenizer whose codes it models ([`crate::FrameCodec::name`]).
    pub codec: String,
    /// Token positions per side of a frame.
    pub grid: usize,
    /// The codec's FSQ levels, most significant digit first.
    pub levels: Vec<u32>,
    /// Token frames it sees at once (the last `context` of a rollout).
    pub context: usize,
    /// Camera frames per token frame (a latent step is `every` camera periods).
    pub every: usize,
    /// The camera's period, seconds (0.1 for sim_node's 10 Hz).
    pub period: f32,
    /// Width of the features.
    pub dim: usize,
    /// Attention heads.
    pub heads: usize,
    /// Blocks.
    pub layers: usize,
    /// The MLP's hidden width.
    pub mlp: usize,
    /// Token positions merged into one transformer token per side (2: each
    /// 2×2 block of codes is one token in, four codes out), so attention and
    /// the blocks run on (grid/patch)² tokens per frame.
    #[serde(default = "one")]
    pub patch: usize,
    /// Rank of the low-rank adapters on every block's linear maps (0: none).
    /// Post-training with adapters (`s2r train world --base … --adapter R`)
    /// trains only them: W x + B A x, A R×in, B out×R (zero at the start).
    #[serde(default)]
    pub adapter: usize,
    /// Hidden width of the dynamics head (0: none, as in checkpoints written
    /// before it): a GELU MLP from the frame's action and state, their change
    /// since the previous frame, the command relative to the state and the
    /// clip's conditions to the state's change, added to what the state head
    /// reads from the frame's features.
    /// The numbers reach it as they are rather than through the blocks' layer
    /// norms, beside 256 token features, so a command to brake and the grip of
    /// the surface (its condition) set the predicted deceleration.
    #[serde(default)]
    pub dynamics: usize,
}

fn one() -> usize {
    1
}

impl Config {
    /// The default network for a codec of `grid`×`grid` positions and `levels`.
    pub fn new(codec: &str, grid: usize, levels: Vec<u32>) -> Config {
        Config {
            codec: codec.into(),
            grid,
            levels,
            context: 4,
            every: 2,
            period: 0.1,
            dim: 96,
            heads: 4,
            layers: 4,
            mlp: 384,
            patch: 2,
            adapter: 0,
            dynamics: 64,
        }
    }

    /// For people: "dv8x16x16 16×16 (patch 2), context 4, every 2 frames, dim 96, 4 layers, 4 heads, mlp 384, dynamics 64".
    pub fn summary(&self) -> String {
        format!(
            "{} {}×{} (patch {}), context {}, every {} frames, dim {}, {} layers, {} heads, mlp {}{}{}",
            self.codec,
            self.grid,
            self.grid,
            self.patch,
            self.context,
            self.every,
            self.dim,
            self.layers,
            self.heads,
            self.mlp,
            if self.adapter > 0 { format!(", adapters of rank {}", self.adapter) } else { String::new() },
            if self.dynamics > 0 { format!(", dynamics {}", self.dynamics) } else { String::new() }
        )
    }

    /// Transformer tokens per frame side.
    pub fn cells(&self) -> usize {
        self.grid / self.patch.max(1)
    }

    /// Positions per frame.
    pub fn tokens(&self) -> usize {
        self.grid * self.grid
    }

    /// Seconds per latent step.
    pub fn step_seconds(&self) -> f32 {
        self.every as f32 * self.period
    }

    /// Nanoseconds per latent step (to the microsecond: the period is stored as f32).
    pub fn step_ns(&self) -> i64 {
        (self.every as f64 * self.period as f64 * 1e6).round() as i64 * 1000
    }

    /// Where each digit's rows start in the digit table, and the table's size.
    pub fn digit_offsets(&self) -> (Vec<u32>, usize) {
        s2r_train::codec::digit_offsets(&self.levels)
    }

    /// The digits of `code` (mixed radix, the first level most significant).
    pub fn digits(&self, code: u16) -> Vec<u32> {
        s2r_train::codec::digits(&self.levels, code)
    }

    /// The code of `digits`.
    pub fn code(&self, digits: &[u32]) -> u16 {
        s2r_train::codec::code(&self.levels, digits)
    }

    /// How many codes there are.
    pub fn vocabulary(&self) -> u64 {
        self.levels.iter().map(|&l| l as u64).product()
    }
}

/// A linear map, with a low-rank adapter when the config asks for one.
pub(crate) struct Lin {
    pub(crate) base: Linear,
    /// A [rank, in], B [out, rank].
    pub(crate) lora: Option<(Tensor, Tensor)>,
}

/// Whether a variable is an adapter's (what adapter post-training trains).
pub fn is_adapter(name: &str) -> bool {
    name.ends_with(".lora_a") || name.ends_with(".lora_b")
}

fn lin(i: usize, o: usize, rank: usize, vb: VarBuilder) -> candle_core::Result<Lin> {
    let base = linear(i, o, vb.clone())?;
    let lora = if rank > 0 {
        let a = vb.get_with_hints((rank, i), "lora_a", candle_nn::Init::Randn { mean: 0.0, stdev: 1.0 / (i as f64).sqrt() })?;
        let b = vb.get_with_hints((o, rank), "lora_b", candle_nn::Init::Const(0.0))?;
        Some((a, b))
    } else {
        None
    };
    Ok(Lin { base, lora })
}

impl Module for Lin {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = self.base.forward(x)?;
        match &self.lora {
            None => Ok(y),
            Some((a, b)) => y + x.broadcast_matmul(&a.t()?)?.broadcast_matmul(&b.t()?)?,
        }
    }
}

/// One block: spatial attention, causal temporal attention, MLP.
pub(crate) struct Block {
    pub(crate) ln_s: LayerNorm,
    pub(crate) qkv_s: Lin,
    pub(crate) out_s: Lin,
    pub(crate) ln_t: LayerNorm,
    pub(crate) qkv_t: Lin,
    pub(crate) out_t: Lin,
    pub(crate) ln_m: LayerNorm,
    pub(crate) up: Lin,
    pub(crate) down: Lin,
}

impl Block {
    fn new(cfg: &Config, vb: VarBuilder) -> candle_core::Result<Block> {
        let (d, r) = (cfg.dim, cfg.adapter);
        Ok(Block {
            ln_s: layer_norm(d, vb.pp("ln_s"))?,
            qkv_s: lin(d, 3 * d, r, vb.pp("qkv_s"))?,
            out_s: lin(d, d, r, vb.pp("out_s"))?,
            ln_t: layer_norm(d, vb.pp("ln_t"))?,
            qkv_t: lin(d, 3 * d, r, vb.pp("qkv_t"))?,
            out_t: lin(d, d, r, vb.pp("out_t"))?,
            ln_m: layer_norm(d, vb.pp("ln_m"))?,
            up: lin(d, cfg.mlp, r, vb.pp("up"))?,
            down: lin(cfg.mlp, d, r, vb.pp("down"))?,
        })
    }

    /// `x` [B, T, N, d] → the same shape.
    fn forward(&self, x: &Tensor, heads: usize, causal: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, n, d) = x.dims4()?;
        let s = x.reshape((b * t, n, d))?;
        let s = (&s + attend(&self.ln_s.forward(&s)?, &self.qkv_s, &self.out_s, heads, None)?)?;
        let tt = s.reshape((b, t, n, d))?.transpose(1, 2)?.contiguous()?.reshape((b * n, t, d))?;
        let tt = (&tt + attend(&self.ln_t.forward(&tt)?, &self.qkv_t, &self.out_t, heads, Some(causal))?)?;
        let h = self.down.forward(&self.up.forward(&self.ln_m.forward(&tt)?)?.gelu()?)?;
        let y = (tt + h)?;
        y.reshape((b, n, t, d))?.transpose(1, 2)?.contiguous()
    }
}

/// The world model.
pub struct WorldModel {
    /// Its shape.
    pub config: Config,
    pub(crate) digits: Embedding,
    pub(crate) merge: Linear,
    pub(crate) conditions: Embedding,
    pub(crate) step: Linear,
    pub(crate) space: Tensor,
    pub(crate) time: Tensor,
    pub(crate) blocks: Vec<Block>,
    pub(crate) ln_f: LayerNorm,
    pub(crate) head: Linear,
    pub(crate) state: Linear,
    pub(crate) dynamics: Option<Dynamics>,
    offsets: Tensor,
}

/// The dynamics head ([`Config::dynamics`]): [action, state, their change
/// since the previous frame, the command relative to the state, conditions]
/// → hidden (GELU) → the state's change.
pub(crate) struct Dynamics {
    pub(crate) hidden: Linear,
    pub(crate) out: Linear,
}

/// Whether a variable is the dynamics head's (what a base without one lacks
/// when it is post-trained with one).
pub fn is_dynamics(name: &str) -> bool {
    name.starts_with("dynamics.")
}

/// Inputs of the dynamics head per frame besides the conditions' `dim`
/// features: the steps (2·ACTION), their change (2·ACTION), the relative
/// command (ACTION).
pub const DYNAMICS_INPUTS: usize = 5 * ACTION;

impl Dynamics {
    fn new(d: usize, hidden: usize, vb: VarBuilder) -> candle_core::Result<Dynamics> {
        // The output starts at zero: a base post-trained with a new head predicts as before at its first step.
        let w = vb.pp("out").get_with_hints((ACTION, hidden), "weight", candle_nn::Init::Const(0.0))?;
        let b = vb.pp("out").get_with_hints(ACTION, "bias", candle_nn::Init::Const(0.0))?;
        Ok(Dynamics { hidden: linear(DYNAMICS_INPUTS + d, hidden, vb.pp("hidden"))?, out: Linear::new(w, Some(b)) })
    }

    /// Its inputs [B, T, DYNAMICS_INPUTS + d], from the frames' `steps`
    /// [B, T, 2·ACTION], the condition rows [B, 4] and their embeddings'
    /// sum `cond` [B, d]: each frame's steps; their change since the frame
    /// before (zero at the first) times [`STATE_GAIN`], the scale of what the
    /// head predicts; the command relative to the state, tanh(gain × (command
    /// − state)) for a car (a brake or throttle demand: a car commanded 0.1
    /// m/s below its speed is braking, one commanded to stop from 10 m/s
    /// brakes as hard as it can), tanh(action) for an arm (its actions are
    /// already joint targets relative to the joints); and the conditions.
    pub(crate) fn inputs(steps: &Tensor, rows: &Tensor, cond: &Tensor) -> candle_core::Result<Tensor> {
        let t = steps.dim(1)?;
        let change = if t > 1 {
            let d = (steps.narrow(1, 1, t - 1)? - steps.narrow(1, 0, t - 1)?)?;
            Tensor::cat(&[&steps.narrow(1, 0, 1)?.zeros_like()?, &d], 1)?
        } else {
            steps.zeros_like()?
        };
        let (action, state) = (steps.narrow(2, 0, ACTION)?, steps.narrow(2, ACTION, ACTION)?);
        // 1 for a car (robot row 0), 0 for an arm: [B, 1, 1].
        let car = rows.narrow(1, 0, 1)?.to_dtype(DType::F32)?.affine(-1.0, 1.0)?.unsqueeze(2)?;
        let arm = car.affine(-1.0, 1.0)?;
        let relative = ((action.clone() - state)? * RELATIVE_GAIN as f64)?.broadcast_mul(&car)?;
        let relative = (relative + action.broadcast_mul(&arm)?)?.tanh()?;
        let cond = cond.unsqueeze(1)?.repeat((1, t, 1))?;
        Tensor::cat(&[steps, &(change * STATE_GAIN as f64)?, &relative, &cond], 2)
    }

    fn forward(&self, steps: &Tensor, rows: &Tensor, cond: &Tensor) -> candle_core::Result<Tensor> {
        self.out.forward(&self.hidden.forward(&Dynamics::inputs(steps, rows, cond)?)?.gelu()?)
    }
}

/// A car's command relative to its state, as the dynamics head reads it:
/// tanh(this × (command − speed), both scaled): 0.1 m/s below the speed is
/// −0.29, an expert braking on ice (about 0.14 m/s below) −0.40, a stop
/// commanded from 3 m/s or more about −1.
pub const RELATIVE_GAIN: f32 = 30.0;

/// A batch of token windows for [`WorldModel::forward`].
pub struct Batch {
    /// Digits with each digit's row offset added, u32 [B, T, N, levels].
    pub digits: Tensor,
    /// Per frame its action then its state (scaled), f32 [B, T, 2·ACTION].
    pub steps: Tensor,
    /// Condition rows, u32 [B, 4].
    pub conditions: Tensor,
}

impl WorldModel {
    /// The device its weights are on.
    pub fn device(&self) -> &Device {
        self.offsets.device()
    }

    /// A network of `config` with its variables under `vb`.
    pub fn new(config: Config, vb: VarBuilder) -> candle_core::Result<WorldModel> {
        let d = config.dim;
        let p = config.patch.max(1);
        if !config.grid.is_multiple_of(p) {
            candle_core::bail!("a patch of {p} does not divide a grid of {}", config.grid);
        }
        let (offsets, rows) = config.digit_offsets();
        let blocks = (0..config.layers).map(|i| Block::new(&config, vb.pp(format!("blocks.{i}")))).collect::<candle_core::Result<_>>()?;
        let init = candle_nn::Init::Randn { mean: 0.0, stdev: 0.02 };
        Ok(WorldModel {
            digits: embedding(rows, d, vb.pp("digits"))?,
            merge: linear(p * p * d, d, vb.pp("merge"))?,
            conditions: embedding(14, d, vb.pp("conditions"))?,
            step: linear(2 * ACTION, d, vb.pp("step"))?,
            space: vb.get_with_hints((config.cells() * config.cells(), d), "pos_space", init)?,
            time: vb.get_with_hints((config.context, d), "pos_time", init)?,
            blocks,
            ln_f: layer_norm(d, vb.pp("ln_f"))?,
            head: linear(d, p * p * rows, vb.pp("head"))?,
            state: linear(d, ACTION, vb.pp("state_head"))?,
            dynamics: (config.dynamics > 0).then(|| Dynamics::new(d, config.dynamics, vb.pp("dynamics"))).transpose()?,
            offsets: Tensor::new(offsets.as_slice(), vb.device())?,
            config,
        })
    }

    /// Logits of the next frame's digits [B, T, N, Σ levels] (frame t's
    /// output predicts frame t + 1) and the state's change to the next frame
    /// [B, T, ACTION] (scaled, times [`STATE_GAIN`]).
    pub fn forward(&self, batch: &Batch) -> candle_core::Result<(Tensor, Tensor)> {
        let (b, t, _, _) = batch.digits.dims4()?;
        if t > self.config.context || t == 0 {
            candle_core::bail!("{t} frames for a model of context {}", self.config.context);
        }
        let (g, p, c, d) = (self.config.grid, self.config.patch.max(1), self.config.cells(), self.config.dim);
        let x = self.digits.forward(&batch.digits)?.sum(3)?;
        // Each p×p block of positions → one token: [B, T, g·g, d] → [B, T, c·c, p·p·d].
        let x = x.reshape((b * t, c, p, c, p, d))?.permute((0, 1, 3, 2, 4, 5))?.reshape((b, t, c * c, p * p * d))?;
        let x = self.merge.forward(&x)?;
        let x = x.broadcast_add(&self.space.unsqueeze(0)?.unsqueeze(0)?)?;
        let time = self.time.narrow(0, 0, t)?.unsqueeze(0)?;
        let frame = self.step.forward(&batch.steps)?.broadcast_add(&time)?;
        let cond = self.conditions.forward(&batch.conditions)?.sum(1)?;
        let frame = frame.broadcast_add(&cond.unsqueeze(1)?)?;
        let mut x = x.broadcast_add(&frame.unsqueeze(2)?)?;
        let causal = causal_mask(t, x.device())?;
        for blk in &self.blocks {
            x = blk.forward(&x, self.config.heads, &causal)?;
        }
        let x = self.ln_f.forward(&x)?;
        let mut state = self.state.forward(&x.mean(2)?)?;
        if let Some(dy) = &self.dynamics {
            state = (state + dy.forward(&batch.steps, &batch.conditions, &cond)?)?;
        }
        // Each token → its p×p positions' logits, back in row-major order.
        let rows = self.head.forward(&x)?;
        let k = rows.dim(3)? / (p * p);
        let logits = rows.reshape((b * t, c, c, p, p, k))?.permute((0, 1, 3, 2, 4, 5))?.reshape((b, t, g * g, k))?;
        Ok((logits, state))
    }

    /// The digit-table rows of codes: u32 [.., levels] with offsets added, from digits [.., levels].
    pub fn offset_digits(&self, digits: &Tensor) -> candle_core::Result<Tensor> {
        digits.broadcast_add(&self.offsets)
    }

    /// Cross-entropy of `logits` [B, T, N, Σ levels] against the true next
    /// digits [B, T, N, levels] (without offsets), averaged over digits.
    pub fn token_loss(&self, logits: &Tensor, target: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, n, _) = logits.dims4()?;
        let (offsets, _) = self.config.digit_offsets();
        let mut total: Option<Tensor> = None;
        for (i, (&o, &l)) in offsets.iter().zip(&self.config.levels).enumerate() {
            let li = logits.narrow(3, o as usize, l as usize)?.reshape((b * t * n, l as usize))?;
            let ti = target.narrow(3, i, 1)?.reshape(b * t * n)?;
            let ce = candle_nn::loss::cross_entropy(&li, &ti)?;
            total = Some(match total {
                Some(s) => (s + ce)?,
                None => ce,
            });
        }
        total.expect("at least one level") / self.config.levels.len() as f64
    }

    /// The most likely digits per position: [B, T, N, Σ levels] → u32 [B, T, N, levels].
    pub fn argmax_digits(&self, logits: &Tensor) -> candle_core::Result<Tensor> {
        let (offsets, _) = self.config.digit_offsets();
        let parts: Vec<Tensor> = offsets
            .iter()
            .zip(&self.config.levels)
            .map(|(&o, &l)| logits.narrow(3, o as usize, l as usize)?.argmax_keepdim(D::Minus1))
            .collect::<candle_core::Result<_>>()?;
        Tensor::cat(&parts, 3)?.to_dtype(DType::U32)
    }
}

/// 0 on and below the diagonal, a large negative number above it: [T, T].
fn causal_mask(t: usize, device: &Device) -> candle_core::Result<Tensor> {
    let v: Vec<f32> = (0..t * t).map(|i| if i % t > i / t { -1e9 } else { 0.0 }).collect();
    Tensor::from_vec(v, (t, t), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;

    fn tiny() -> Config {
        Config { dim: 16, heads: 2, layers: 1, mlp: 32, context: 3, ..Config::new("test", 2, vec![8, 8, 8, 5, 5, 5]) }
    }

    #[test]
    fn codes_and_digits_round_trip() {
        let c = tiny();
        assert_eq!(c.vocabulary(), 64_000);
        for code in [0u16, 1, 4, 5, 124, 125, 63_999, 31_337] {
            assert_eq!(c.code(&c.digits(code)), code);
        }
        assert_eq!(c.digits(63_999), vec![7, 7, 7, 4, 4, 4]);
        assert_eq!(c.digits(5), vec![0, 0, 0, 0, 1, 0]);
    }

    #[test]
    fn a_frame_sees_no_later_frame() {
        let cfg = tiny();
        let vars = VarMap::new();
        let m = WorldModel::new(cfg.clone(), VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu)).unwrap();
        let dev = Device::Cpu;
        let digits = |last: u32| {
            let v: Vec<u32> = (0..3 * 4 * 6).map(|i| if i >= 2 * 4 * 6 { last } else { (i % 4) as u32 }).collect();
            m.offset_digits(&Tensor::from_vec(v, (1, 3, 4, 6), &dev).unwrap()).unwrap()
        };
        let steps = Tensor::zeros((1, 3, 2 * ACTION), DType::F32, &dev).unwrap();
        let conditions = Tensor::new(&[[0u32, 2, 6, 10]], &dev).unwrap();
        let a = m.forward(&Batch { digits: digits(0), steps: steps.clone(), conditions: conditions.clone() }).unwrap();
        let b = m.forward(&Batch { digits: digits(3), steps, conditions }).unwrap();
        let first = |t: &Tensor, f: usize| t.narrow(1, 0, f).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // Changing the last frame leaves the predictions from the first two untouched …
        assert_eq!(first(&a.0, 2), first(&b.0, 2));
        assert_eq!(first(&a.1, 2), first(&b.1, 2));
        // … and changes the last one's.
        assert_ne!(first(&a.0, 3), first(&b.0, 3));
    }
}
