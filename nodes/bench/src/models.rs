//! `s2r bench models`: every model's network on one device (candle's CPU,
//! or its CUDA backend in a build with `--features cuda`), side by side:
//! inference latency at batch 1 (p50/p99, the device synchronised after
//! each step, so a GPU's figure is the whole step, not the launch), and
//! training steps per second at each model's training batch (forward,
//! loss, backward and AdamW: the network only, not data loading). On a GPU
//! it also runs each network on the CPU with the same weights and input and
//! prints the largest difference of the outputs, relative to their largest
//! magnitude (the world model: the share of predicted codes that agree):
//! the check that the CUDA path computes the same networks.
//!
//! Weights are drawn from a seed: speed does not depend on them.

use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{VarBuilder, VarMap};
use clap::Args;
use rand::{Rng, SeedableRng};

use crate::percentile;

/// Options of `s2r bench models`.
#[derive(Args, Clone)]
pub struct ModelsBenchArgs {
    /// cpu, cuda or cuda:N (CUDA needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Seconds each inference measurement runs (after warm-up).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Training steps timed per model (0 to skip training).
    #[arg(long, default_value_t = 10)]
    train_steps: usize,
    /// Only these models (comma-separated): perception, policy-vehicle, policy-arm,
    /// reason-surface, reason-hazard, reason-cup, world, tokenizer.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Skip the comparison with the CPU's outputs on a GPU.
    #[arg(long)]
    no_compare: bool,
}

/// The models, as `--only` names them.
const MODELS: [&str; 8] =
    ["perception", "policy-vehicle", "policy-arm", "reason-surface", "reason-hazard", "reason-cup", "world", "tokenizer"];

/// One network on one device with its inputs.
pub(crate) trait Bench {
    /// What it takes, for the table.
    fn input(&self) -> String;
    /// The training batch.
    fn batch(&self) -> usize;
    /// Its variables (the comparison copies the CPU's into the GPU's).
    fn vars(&self) -> &VarMap;
    /// Called once the weights are final (e.g. batch norms folded for inference).
    fn prepare(&mut self) -> Result<()> {
        Ok(())
    }
    /// One inference at batch 1: its outputs flattened to one f32 vector
    /// (left on the device; [`Bench::compare_codes`] networks return codes).
    fn infer(&self) -> Result<Tensor>;
    /// Whether [`Bench::infer`] returns discrete codes (compared by agreement).
    fn compare_codes(&self) -> bool {
        false
    }
    /// One training step at [`Bench::batch`].
    fn train(&mut self) -> Result<()>;
    /// Training steps per second over `steps` steps after one of warm-up.
    fn train_rate(&mut self, steps: usize, device: &Device) -> Result<f64> {
        self.train()?;
        device.synchronize()?;
        let t = Instant::now();
        for _ in 0..steps {
            self.train()?;
        }
        device.synchronize()?;
        Ok(steps as f64 / t.elapsed().as_secs_f64())
    }
}

/// Values of a fixed pseudo-random draw (the same on every device), as a tensor on `device`.
fn input(shape: &[usize], seed: u64, lo: f32, hi: f32, device: &Device) -> Result<Tensor> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(lo..hi)).collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?.to_device(device)?)
}

/// Sets every variable of `to` to `from`'s value of the same name.
fn copy_vars(from: &VarMap, to: &VarMap) -> Result<()> {
    let from = from.data().lock().expect("the variables' lock").clone();
    let to = to.data().lock().expect("the variables' lock").clone();
    for (name, var) in &to {
        let v = from.get(name).with_context(|| format!("variable `{name}` missing on the CPU"))?;
        var.set(&v.as_tensor().to_device(var.device())?)?;
    }
    Ok(())
}

fn optimiser(vars: &VarMap) -> Result<s2r_train::AdamW> {
    Ok(s2r_train::AdamW::new(vars, 1e-4, 1e-4)?)
}

/// The perception network (`Config::small` unless given one).
pub(crate) struct Perception {
    t: s2r_perception::checkpoint::Trainable,
    folded: Option<s2r_perception::model::Net>,
    opt: s2r_train::AdamW,
    x1: Tensor,
    xb: Tensor,
}

impl Perception {
    fn new(device: &Device) -> Result<Perception> {
        use s2r_perception::model::Config;
        Perception::of(Config::small((0..6).map(|i| format!("class{i}")).collect(), (0..19).map(|i| format!("seg{i}")).collect()), device)
    }

    /// A seeded network of `cfg` (`s2r bench perception` times its checkpoint's shape).
    pub(crate) fn of(cfg: s2r_perception::model::Config, device: &Device) -> Result<Perception> {
        let x1 = input(&[1, 3, cfg.height, cfg.width], 1, 0.0, 1.0, device)?;
        let xb = input(&[8, 3, 192, 256], 2, 0.0, 1.0, device)?;
        let t = s2r_perception::checkpoint::Trainable::seeded(cfg, device, 0)?;
        let opt = optimiser(&t.varmap)?;
        Ok(Perception { t, folded: None, opt, x1, xb })
    }
}

impl Bench for Perception {
    fn input(&self) -> String {
        let (_, _, h, w) = self.x1.dims4().unwrap_or_default();
        format!("{w}×{h} frame; train 8 × 256×192")
    }
    fn batch(&self) -> usize {
        8
    }
    fn vars(&self) -> &VarMap {
        &self.t.varmap
    }
    fn prepare(&mut self) -> Result<()> {
        self.folded = Some(self.t.net.fold()?);
        Ok(())
    }
    fn infer(&self) -> Result<Tensor> {
        let net = self.folded.as_ref().unwrap_or(&self.t.net);
        let o = net.forward(&self.x1, false)?;
        let parts = [o.heat, o.ltrb, o.log_depth, o.seg].map(|t| t.flatten_all());
        Ok(Tensor::cat(&parts.into_iter().collect::<candle_core::Result<Vec<_>>>()?, 0)?)
    }
    fn train(&mut self) -> Result<()> {
        let o = self.t.net.forward(&self.xb, true)?;
        let loss = (((o.heat.sqr()?.mean_all()? + o.seg.sqr()?.mean_all()?)? + o.ltrb.mean_all()?)? + o.log_depth.sqr()?.mean_all()?)?;
        self.opt.backward_step(&loss)?;
        Ok(())
    }
}

/// The policy network (`Config::small` of a robot unless given one).
pub(crate) struct Policy {
    t: s2r_policy::checkpoint::Trainable,
    opt: s2r_train::AdamW,
    x1: (Tensor, Tensor),
    xb: (Tensor, Tensor, Tensor),
}

impl Policy {
    fn new(robot: s2r_policy::model::Robot, device: &Device) -> Result<Policy> {
        Policy::of(s2r_policy::model::Config::small("front", robot), device)
    }

    /// A seeded network of `cfg` (`s2r bench policy` times its checkpoint's shape).
    pub(crate) fn of(cfg: s2r_policy::model::Config, device: &Device) -> Result<Policy> {
        let (s, a) = (cfg.robot.state_scale().len(), cfg.robot.action_scale().len());
        let image = |b, seed| input(&[b, cfg.height, cfg.width, cfg.channels_in()], seed, 0.0, 1.0, device);
        let x1 = (image(1, 1)?, input(&[1, s], 2, -1.0, 1.0, device)?);
        let xb = (image(32, 3)?, input(&[32, s], 4, -1.0, 1.0, device)?, input(&[32, cfg.chunk, a], 5, -1.0, 1.0, device)?);
        let t = s2r_policy::checkpoint::Trainable::new(cfg, device, 0)?;
        let opt = optimiser(&t.varmap)?;
        Ok(Policy { t, opt, x1, xb })
    }
}

impl Bench for Policy {
    fn input(&self) -> String {
        let c = &self.t.net.config;
        format!("{}×{} frame + state; train 32", c.width, c.height)
    }
    fn batch(&self) -> usize {
        32
    }
    fn vars(&self) -> &VarMap {
        &self.t.varmap
    }
    fn infer(&self) -> Result<Tensor> {
        Ok(self.t.net.forward(&self.x1.0, &self.x1.1)?.flatten_all()?)
    }
    fn train(&mut self) -> Result<()> {
        let loss = (self.t.net.forward(&self.xb.0, &self.xb.1)? - &self.xb.2)?.abs()?.mean_all()?;
        self.opt.backward_step(&loss)?;
        Ok(())
    }
}

/// A network of the reasoner over `[B, H, W, C]` images (surface, hazard) or features (cup).
struct Reason<N> {
    vars: VarMap,
    net: N,
    forward: fn(&N, &Tensor) -> candle_core::Result<Tensor>,
    opt: s2r_train::AdamW,
    x1: Tensor,
    xb: Tensor,
    labels: Tensor,
    classes: usize,
    what: String,
}

impl<N> Reason<N> {
    fn new(
        device: &Device,
        build: impl FnOnce(VarBuilder) -> candle_core::Result<N>,
        forward: fn(&N, &Tensor) -> candle_core::Result<Tensor>,
        shape: &[usize],
        classes: usize,
        what: String,
    ) -> Result<Reason<N>> {
        let vars = VarMap::new();
        let net = build(VarBuilder::from_varmap(&vars, DType::F32, device))?;
        s2r_train::seeded_init(&vars, 0)?;
        let mut one = shape.to_vec();
        one[0] = 1;
        let x1 = input(&one, 1, 0.0, 1.0, device)?;
        let xb = input(shape, 2, 0.0, 1.0, device)?;
        let labels: Vec<u32> = (0..shape[0] as u32).map(|i| i % classes as u32).collect();
        let labels = Tensor::new(labels.as_slice(), device)?;
        let opt = optimiser(&vars)?;
        Ok(Reason { vars, net, forward, opt, x1, xb, labels, classes, what })
    }
}

impl<N> Bench for Reason<N> {
    fn input(&self) -> String {
        self.what.clone()
    }
    fn batch(&self) -> usize {
        self.xb.dims()[0]
    }
    fn vars(&self) -> &VarMap {
        &self.vars
    }
    fn infer(&self) -> Result<Tensor> {
        Ok((self.forward)(&self.net, &self.x1)?.flatten_all()?)
    }
    fn train(&mut self) -> Result<()> {
        let out = (self.forward)(&self.net, &self.xb)?;
        let k = out.dim(D::Minus1)?;
        // Cross-entropy over the last outputs (the classes), squares over the rest (the regressions).
        let classes = self.classes;
        let logits = out.narrow(1, k - classes, classes)?;
        let mut loss = candle_nn::loss::cross_entropy(&logits, &self.labels)?;
        if k > classes {
            loss = (loss + out.narrow(1, 0, k - classes)?.sqr()?.mean_all()?)?;
        }
        self.opt.backward_step(&loss)?;
        Ok(())
    }
}

struct World {
    vars: VarMap,
    model: s2r_world::model::WorldModel,
    device: Device,
}

impl World {
    fn new(device: &Device) -> Result<World> {
        let cfg = s2r_world::model::Config::new("dv8x16x16", 16, s2r_tokenizer::fsq::LEVELS.to_vec());
        let vars = VarMap::new();
        let model = s2r_world::model::WorldModel::new(cfg, VarBuilder::from_varmap(&vars, DType::F32, device))?;
        s2r_train::seeded_init(&vars, 0)?;
        Ok(World { vars, model, device: device.clone() })
    }
}

impl Bench for World {
    fn input(&self) -> String {
        let c = &self.model.config;
        format!("next {}×{} codes from {} frames; train 8 windows", c.grid, c.grid, c.context)
    }
    fn batch(&self) -> usize {
        8
    }
    fn vars(&self) -> &VarMap {
        &self.vars
    }
    fn compare_codes(&self) -> bool {
        true
    }
    fn infer(&self) -> Result<Tensor> {
        use s2r_world::model::{Conditions, Robot, Surface, ACTION};
        let cfg = &self.model.config;
        let (n, c) = (cfg.tokens(), cfg.context);
        let codes: Vec<Vec<u16>> = (0..c).map(|f| (0..n).map(|p| ((p * 131 + f * 7) % 64_000) as u16).collect()).collect();
        let states = vec![[0.5f32; ACTION]; c];
        let actions = vec![[0.5f32; ACTION]; c + 1];
        let cond = Conditions { robot: Robot::Vehicle, surface: Surface::Icy, weather: 2, time: 3 };
        let p = s2r_world::rollout::rollout(&self.model, &codes, &states, &actions, cond, 1)?;
        let codes: Vec<u32> = p.codes.concat().into_iter().map(u32::from).collect();
        Ok(Tensor::new(codes.as_slice(), &Device::Cpu)?)
    }
    fn train(&mut self) -> Result<()> {
        self.train_rate(1, &self.device.clone()).map(drop)
    }
    fn train_rate(&mut self, steps: usize, device: &Device) -> Result<f64> {
        // Its own network and optimiser, as the world model's training builds its batches.
        Ok(s2r_world::fit::bench_steps(&self.model.config, 8, steps, device)?)
    }
}

struct Tokenizer {
    vars: VarMap,
    model: s2r_tokenizer::model::Tokenizer,
    opt: s2r_train::AdamW,
    x1: Tensor,
    xb: Tensor,
}

impl Tokenizer {
    fn new(device: &Device) -> Result<Tokenizer> {
        let cfg = s2r_tokenizer::model::Config::DV8X16X16;
        let vars = VarMap::new();
        let model = s2r_tokenizer::model::Tokenizer::new(cfg, VarBuilder::from_varmap(&vars, DType::F32, device))?;
        s2r_train::seeded_init(&vars, 0)?;
        let t = 1 + cfg.temporal;
        let x1 = input(&[1, t, 3, 256, 256], 1, -1.0, 1.0, device)?;
        let xb = input(&[4, t, 3, 128, 128], 2, -1.0, 1.0, device)?;
        let opt = optimiser(&vars)?;
        Ok(Tokenizer { vars, model, opt, x1, xb })
    }
}

impl Bench for Tokenizer {
    fn input(&self) -> String {
        let t = self.x1.dims()[1];
        format!("{t} frames 256×256 encoded + decoded; train 4 × {t} × 128×128")
    }
    fn batch(&self) -> usize {
        4
    }
    fn vars(&self) -> &VarMap {
        &self.vars
    }
    fn infer(&self) -> Result<Tensor> {
        Ok(self.model.reconstruct(&self.x1)?.flatten_all()?)
    }
    fn train(&mut self) -> Result<()> {
        let loss = (self.model.reconstruct(&self.xb)? - &self.xb)?.sqr()?.mean_all()?;
        self.opt.backward_step(&loss)?;
        Ok(())
    }
}

/// The network `name` on `device`.
fn build(name: &str, device: &Device) -> Result<Box<dyn Bench>> {
    use s2r_reason::{cup, hazard, surface};
    Ok(match name {
        "perception" => Box::new(Perception::new(device)?),
        "policy-vehicle" => Box::new(Policy::new(s2r_policy::model::Robot::Vehicle, device)?),
        "policy-arm" => Box::new(Policy::new(s2r_policy::model::Robot::Arm, device)?),
        "reason-surface" => {
            let (w, h) = surface::INPUT;
            let what = format!("{w}×{h} crop; train 32");
            Box::new(Reason::new(
                device,
                surface::SurfaceNet::new,
                surface::SurfaceNet::forward,
                &[32, h, w, 3],
                surface::CLASSES.len(),
                what,
            )?)
        }
        "reason-hazard" => {
            let (w, h) = hazard::INPUT;
            let what = format!("{w}×{h} frame and motion; train 16");
            let outputs = 6;
            Box::new(Reason::new(
                device,
                |vb| hazard::HazardNet::new(vb, true),
                hazard::HazardNet::forward,
                &[16, h, w, 6],
                outputs - 2,
                what,
            )?)
        }
        "reason-cup" => {
            let what = format!("{} features of a push; train 64", cup::INPUTS);
            Box::new(Reason::new(device, cup::CupNet::new, cup::CupNet::logits, &[64, cup::INPUTS], 3, what)?)
        }
        "world" => Box::new(World::new(device)?),
        "tokenizer" => Box::new(Tokenizer::new(device)?),
        other => bail!("--only '{other}': one of {}", MODELS.join(", ")),
    })
}

/// The largest |a − b| relative to the largest |a|, or the share of equal codes.
fn difference(cpu: &Tensor, gpu: &Tensor, codes: bool) -> Result<String> {
    let gpu = gpu.to_device(&Device::Cpu)?;
    if codes {
        let (a, b) = (cpu.to_vec1::<u32>()?, gpu.to_vec1::<u32>()?);
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        return Ok(format!("{:.1}% codes equal", 100.0 * same as f64 / a.len().max(1) as f64));
    }
    let d = (cpu - &gpu)?.abs()?.max(0)?.to_scalar::<f32>()?;
    let m = cpu.abs()?.max(0)?.to_scalar::<f32>()?.max(1e-12);
    Ok(format!("{:.1e}", d / m))
}

/// Measures and prints the table.
pub(crate) fn run(a: ModelsBenchArgs) -> Result<()> {
    let device = s2r_train::device(&a.device)?;
    let names: Vec<&str> = if a.only.is_empty() { MODELS.to_vec() } else { a.only.iter().map(String::as_str).collect() };
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let on = if device.is_cpu() { format!("candle CPU, {threads} cores") } else { format!("candle CUDA ({})", a.device) };
    println!("models benchmark: {on}; seeded weights (speed does not depend on them)");
    let compare = !device.is_cpu() && !a.no_compare;
    println!("| model | input | inference p50 ms | p99 ms | training steps/s | examples/s |{}", if compare { " GPU vs CPU |" } else { "" });
    println!("|---|---|---|---|---|---|{}", if compare { "---|" } else { "" });
    for name in names {
        let mut m = build(name, &device)?;
        let cpu = if compare {
            let mut c = build(name, &Device::Cpu)?;
            copy_vars(c.vars(), m.vars())?;
            c.prepare()?;
            Some(c)
        } else {
            None
        };
        m.prepare()?;
        let sync = || device.synchronize();
        for _ in 0..3 {
            m.infer()?;
        }
        sync()?;
        let mut ms = Vec::new();
        let t0 = Instant::now();
        while t0.elapsed().as_secs_f64() < a.seconds || ms.len() < 5 {
            let t = Instant::now();
            std::hint::black_box(m.infer()?);
            sync()?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        ms.sort_by(f64::total_cmp);
        let diff = match &cpu {
            Some(c) => format!(" {} |", difference(&c.infer()?, &m.infer()?, m.compare_codes())?),
            None => String::new(),
        };
        let (steps, examples) = if a.train_steps > 0 {
            let s = m.train_rate(a.train_steps, &device)?;
            (format!("{s:.2}"), format!("{:.0}", s * m.batch() as f64))
        } else {
            ("-".into(), "-".into())
        };
        println!("| {name} | {} | {:.2} | {:.2} | {steps} | {examples} |{diff}", m.input(), percentile(&ms, 0.5), percentile(&ms, 0.99));
    }
    Ok(())
}
