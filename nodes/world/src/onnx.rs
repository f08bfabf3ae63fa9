//! The world model as an ONNX model, for ONNX Runtime and TensorRT
//! deployments (Jetson): `s2r export world MODEL --onnx FILE`.
//!
//! One forward pass over a full window of `context` token frames, as
//! [`WorldModel::forward`] with a batch of one. Inputs: `digits` int64
//! [1, T, N, L] (each position's FSQ digits with each digit's row offset
//! added: [`WorldModel::offset_digits`]), `steps` float [1, T, 2·ACTION] (each
//! frame's action then its state, scaled as in training) and `conditions`
//! int64 [1, 4] ([`crate::model::Conditions::rows`]), with T the model's
//! context. Outputs: `logits` [1, T, N, Σ levels] (frame t's predict frame
//! t + 1: an argmax per digit makes the code) and `state` [1, T, ACTION] (the
//! state's change to the next frame, times [`crate::model::STATE_GAIN`]).
//! Rolling out (sampling, shifting the window) stays the caller's, as in
//! [`crate::rollout`]. The window is always `context` frames: a shorter one
//! (the start of a rollout) is padded at the end, and since attention across
//! time is causal, the outputs of the real frames are then exact (padding at
//! the front would change them). The digits are the tokenizer's (its
//! exported encoder's `digits`, transposed to [1, T, N, L]) plus each digit's
//! row offset (0, 8, 16, 24, 29, 34 for levels 8, 8, 8, 5, 5, 5): raw digits
//! would be read from the wrong table rows without an error. Low-rank
//! adapters are folded into their linear maps; the dynamics head (when the
//! config has one) adds to the state as in [`WorldModel::forward`]. The model's metadata holds the
//! config (`sim2real.world`). Written by [`s2r_train::onnx`].

use candle_nn::Linear;
use s2r_train::onnx::{Attr, Graph};

use crate::model::{Block, Dynamics, LayerNorm, Lin, WorldModel, ACTION, RELATIVE_GAIN, STATE_GAIN};
use crate::WorldError;

/// The metadata key of the config in an exported model.
pub const META_KEY: &str = "sim2real.world";

type R<T> = candle_core::Result<T>;

/// A linear map with its adapter folded in: W + B A.
fn folded(l: &Lin) -> R<Linear> {
    match &l.lora {
        None => Ok(l.base.clone()),
        Some((a, b)) => Ok(Linear::new((l.base.weight() + b.matmul(a)?)?, l.base.bias().cloned())),
    }
}

fn lin(g: &mut Graph, x: &str, l: &Lin) -> R<String> {
    g.linear(x, &folded(l)?)
}

/// Layer normalization over the last axis (opset 17's operator; its
/// default epsilon, 1e-5, is the network's).
fn layer_norm(g: &mut Graph, x: &str, ln: &LayerNorm) -> R<String> {
    let w = g.tensor("ln_weight", &ln.weight)?;
    let b = g.tensor("ln_bias", &ln.bias)?;
    let out = g.name("layer_norm");
    g.node("LayerNormalization", &[x, &w, &b], &[&out], &[Attr::Int("axis", -1)]);
    Ok(out)
}

fn transpose(g: &mut Graph, x: &str, perm: &[i64]) -> String {
    let out = g.name("transpose");
    g.node("Transpose", &[x], &[&out], &[Attr::Ints("perm", perm.to_vec())]);
    out
}

/// candle's `gelu` (the tanh approximation):
/// x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³))).
fn gelu(g: &mut Graph, x: &str) -> String {
    let x2 = g.binary("Mul", x, x);
    let x3 = g.binary("Mul", &x2, x);
    let c = g.scalar("gelu_c", 0.044715);
    let cubic = g.binary("Mul", &x3, &c);
    let inner = g.binary("Add", x, &cubic);
    let k = g.scalar("gelu_k", (2.0 / std::f32::consts::PI).sqrt());
    let scaled = g.binary("Mul", &inner, &k);
    let t = g.unary("Tanh", &scaled);
    let one = g.scalar("one", 1.0);
    let t1 = g.binary("Add", &t, &one);
    let half = g.scalar("half", 0.5);
    let hx = g.binary("Mul", x, &half);
    g.binary("Mul", &hx, &t1)
}

/// Multi-head self-attention over `x` [M, L, d], with an additive mask [L, L].
fn attend(g: &mut Graph, x: &str, [m, l, d, heads]: [usize; 4], qkv: &Lin, out: &Lin, mask: Option<&str>) -> R<String> {
    let dh = d / heads;
    let y = lin(g, x, qkv)?;
    let split = g.name("split");
    g.int64s(&split, &[d as i64; 3]);
    let (q, k, v) = (g.name("q"), g.name("k"), g.name("v"));
    g.node("Split", &[&y, &split], &[&q, &k, &v], &[Attr::Int("axis", -1)]);
    let shape = [m as i64, l as i64, heads as i64, dh as i64];
    let q = g.reshape(&q, &shape);
    let q = transpose(g, &q, &[0, 2, 1, 3]);
    let k = g.reshape(&k, &shape);
    let k = transpose(g, &k, &[0, 2, 3, 1]);
    let v = g.reshape(&v, &shape);
    let v = transpose(g, &v, &[0, 2, 1, 3]);
    let att = g.binary("MatMul", &q, &k);
    let scale = g.scalar("scale", 1.0 / (dh as f32).sqrt());
    let mut att = g.binary("Mul", &att, &scale);
    if let Some(mask) = mask {
        att = g.binary("Add", &att, mask);
    }
    let soft = g.name("softmax");
    g.node("Softmax", &[&att], &[&soft], &[Attr::Int("axis", -1)]);
    let y = g.binary("MatMul", &soft, &v);
    let y = transpose(g, &y, &[0, 2, 1, 3]);
    let y = g.reshape(&y, &[m as i64, l as i64, d as i64]);
    lin(g, &y, out)
}

/// One block on `x` [1, T, n, d].
fn block(g: &mut Graph, x: &str, blk: &Block, [t, n, d, heads]: [usize; 4], causal: &str) -> R<String> {
    let s = g.reshape(x, &[t as i64, n as i64, d as i64]);
    let normed = layer_norm(g, &s, &blk.ln_s)?;
    let a = attend(g, &normed, [t, n, d, heads], &blk.qkv_s, &blk.out_s, None)?;
    let s = g.binary("Add", &s, &a);
    let tt = g.reshape(&s, &[1, t as i64, n as i64, d as i64]);
    let tt = transpose(g, &tt, &[0, 2, 1, 3]);
    let tt = g.reshape(&tt, &[n as i64, t as i64, d as i64]);
    let normed = layer_norm(g, &tt, &blk.ln_t)?;
    let a = attend(g, &normed, [n, t, d, heads], &blk.qkv_t, &blk.out_t, Some(causal))?;
    let tt = g.binary("Add", &tt, &a);
    let normed = layer_norm(g, &tt, &blk.ln_m)?;
    let up = lin(g, &normed, &blk.up)?;
    let act = gelu(g, &up);
    let h = lin(g, &act, &blk.down)?;
    let y = g.binary("Add", &tt, &h);
    let y = g.reshape(&y, &[1, n as i64, t as i64, d as i64]);
    Ok(transpose(g, &y, &[0, 2, 1, 3]))
}

/// The dynamics head's share of the state [1, T, ACTION], as
/// [`WorldModel::forward`] adds it, from the `steps` and `conditions` inputs
/// and the conditions' embedding sum `cond_sum` [1, 1, d].
fn dynamics(g: &mut Graph, dy: &Dynamics, [t, d]: [usize; 2], cond_sum: &str) -> R<String> {
    // Each frame's steps, their change since the frame before (a
    // difference matrix over time: zero at the first) and the conditions.
    let diff: Vec<f32> = (0..t * t)
        .map(|i| match (i / t, i % t) {
            (r, k) if r > 0 && k == r => 1.0,
            (r, k) if r > 0 && k + 1 == r => -1.0,
            _ => 0.0,
        })
        .collect();
    let m = g.name("step_difference");
    g.initializer(&m, &[t, t], &diff);
    let change = g.binary("MatMul", &m, "steps");
    let gain = g.scalar("state_gain", STATE_GAIN);
    let change = g.binary("Mul", &change, &gain);
    // The command relative to the state: tanh(gain × (action − state)) for a car, tanh(action) for an arm.
    let (car_map, arm_map): (Vec<f32>, Vec<f32>) = (0..2 * ACTION * ACTION)
        .map(|i| {
            let (r, k) = (i / ACTION, i % ACTION);
            match (r < ACTION, r % ACTION == k) {
                (true, true) => (RELATIVE_GAIN, 1.0),
                (false, true) => (-RELATIVE_GAIN, 0.0),
                _ => (0.0, 0.0),
            }
        })
        .unzip();
    let (cm, am) = (g.name("car_relative"), g.name("arm_relative"));
    g.initializer(&cm, &[2 * ACTION, ACTION], &car_map);
    g.initializer(&am, &[2 * ACTION, ACTION], &arm_map);
    let car_rel = g.binary("MatMul", "steps", &cm);
    let arm_rel = g.binary("MatMul", "steps", &am);
    let first = g.name("robot_index");
    g.int64s(&first, &[0]);
    let robot = g.name("robot");
    g.node("Gather", &["conditions", &first], &[&robot], &[Attr::Int("axis", 1)]);
    let robot_f = g.name("robot_float");
    g.node("Cast", &[&robot], &[&robot_f], &[Attr::Int("to", 1)]);
    let robot_f = g.reshape(&robot_f, &[1, 1, 1]);
    // robot row 0 is a car: car = 1 − robot.
    let one = g.scalar("one", 1.0);
    let car = g.binary("Sub", &one, &robot_f);
    let a = g.binary("Mul", &car_rel, &car);
    let b = g.binary("Mul", &arm_rel, &robot_f);
    let relative = g.binary("Add", &a, &b);
    let relative = g.unary("Tanh", &relative);
    let shape = g.name("shape");
    g.int64s(&shape, &[1, t as i64, d as i64]);
    let cond_t = g.name("conditions_per_frame");
    g.node("Expand", &[cond_sum, &shape], &[&cond_t], &[]);
    let inputs = g.name("dynamics_inputs");
    g.node("Concat", &["steps", &change, &relative, &cond_t], &[&inputs], &[Attr::Int("axis", 2)]);
    let h = g.linear(&inputs, &dy.hidden)?;
    let h = gelu(g, &h);
    g.linear(&h, &dy.out)
}

/// The ONNX model of `model`.
pub fn export(model: &WorldModel) -> Result<Vec<u8>, WorldError> {
    let cfg = &model.config;
    let (t, g_side, p, c, d) = (cfg.context, cfg.grid, cfg.patch.max(1), cfg.cells(), cfg.dim);
    let (n, levels) = (cfg.tokens(), cfg.levels.len());
    let (_, k) = cfg.digit_offsets();
    let mut g = Graph::default();
    g.int64_input("digits");
    g.int64_input("conditions");
    let build = |g: &mut Graph| -> R<()> {
        // Each position: the sum of its digits' embeddings.
        let table = g.tensor("digit_table", model.digits.embeddings())?;
        let rows = g.binary("Gather", &table, "digits");
        let axes = g.name("axes");
        g.int64s(&axes, &[3]);
        let x = g.name("digit_sum");
        g.node("ReduceSum", &[&rows, &axes], &[&x], &[Attr::Int("keepdims", 0)]);
        // Each p×p block of positions → one token.
        let x = g.reshape(&x, &[t as i64, c as i64, p as i64, c as i64, p as i64, d as i64]);
        let x = transpose(g, &x, &[0, 1, 3, 2, 4, 5]);
        let x = g.reshape(&x, &[1, t as i64, (c * c) as i64, (p * p * d) as i64]);
        let x = g.linear(&x, &model.merge)?;
        let space = g.tensor("pos_space", &model.space)?;
        let x = g.binary("Add", &x, &space);
        // Per frame: its action and state, its time, the clip's conditions.
        let frame = g.linear("steps", &model.step)?;
        let time = g.tensor("pos_time", &model.time.narrow(0, 0, t)?)?;
        let frame = g.binary("Add", &frame, &time);
        let ctable = g.tensor("condition_table", model.conditions.embeddings())?;
        let cond = g.binary("Gather", &ctable, "conditions");
        let axes = g.name("axes");
        g.int64s(&axes, &[1]);
        let cond_sum = g.name("condition_sum");
        g.node("ReduceSum", &[&cond, &axes], &[&cond_sum], &[Attr::Int("keepdims", 1)]);
        let frame = g.binary("Add", &frame, &cond_sum);
        let frame = g.reshape(&frame, &[1, t as i64, 1, d as i64]);
        let mut x = g.binary("Add", &x, &frame);
        let mask: Vec<f32> = (0..t * t).map(|i| if i % t > i / t { -1e9 } else { 0.0 }).collect();
        let causal = g.name("causal");
        g.initializer(&causal, &[t, t], &mask);
        for blk in &model.blocks {
            x = block(g, &x, blk, [t, c * c, d, cfg.heads], &causal)?;
        }
        let x = layer_norm(g, &x, &model.ln_f)?;
        let mean = g.name("mean");
        g.node("ReduceMean", &[&x], &[&mean], &[Attr::Ints("axes", vec![2]), Attr::Int("keepdims", 0)]);
        let mut state = g.linear(&mean, &model.state)?;
        if let Some(dy) = &model.dynamics {
            let out = dynamics(g, dy, [t, d], &cond_sum)?;
            state = g.binary("Add", &state, &out);
        }
        g.node("Identity", &[&state], &["state"], &[]);
        // Each token → its p×p positions' logits, back in row-major order.
        let rows = g.linear(&x, &model.head)?;
        let rows = g.reshape(&rows, &[t as i64, c as i64, c as i64, p as i64, p as i64, k as i64]);
        let rows = transpose(g, &rows, &[0, 1, 3, 2, 4, 5]);
        let shape = g.name("shape");
        g.int64s(&shape, &[1, t as i64, (g_side * g_side) as i64, k as i64]);
        g.node("Reshape", &[&rows, &shape], &["logits"], &[]);
        Ok(())
    };
    build(&mut g).map_err(crate::candle("exporting the world model to ONNX"))?;
    let meta = serde_json::to_string(cfg).map_err(|e| WorldError::BadCheckpoint { path: "(export)".into(), problem: e.to_string() })?;
    Ok(g.finish(
        "world",
        &[("digits", vec![1, t, n, levels]), ("steps", vec![1, t, 2 * ACTION]), ("conditions", vec![1, 4])],
        &[("logits", vec![1, t, n, k]), ("state", vec![1, t, ACTION])],
        &[(META_KEY, meta)],
    ))
}
