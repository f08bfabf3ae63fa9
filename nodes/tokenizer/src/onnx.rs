//! The tokenizer as two ONNX models, for ONNX Runtime and TensorRT
//! deployments (Jetson): `s2r export tokenizer MODEL --onnx PREFIX` writes
//! PREFIX.encoder.onnx and PREFIX.decoder.onnx.
//!
//! Both work on a chunk of one frame (the tokenizer's intra latent: how the
//! world model tokenizes each latent step), with the Haar transforms folded
//! into the convolutions as [`crate::codec::Codec`] runs them. Encoder: input
//! `frame` [1, 3, S, S] (planar RGB in [−1, 1]); output `latent` [1, C, h, w]
//! (h = S / spatial; the continuous values, or the FSQ values in [−1, 1]) and,
//! for a discrete tokenizer, `digits` int64 [1, 6, h, w] (each level's digit,
//! the most significant first: a code is their mixed-radix number, as
//! [`crate::fsq::codes`] makes it). Decoder: input `latent` [1, C, h, w];
//! output `frame` [1, 3, S, S] (meant to lie in [−1, 1], not clamped). The
//! model's metadata holds the variant (`sim2real.tokenizer`). Written by
//! [`s2r_train::onnx`].

use candle_core::Result;
use s2r_train::onnx::{Attr, Graph};

use crate::fsq;
use crate::model::{Block, CausalTime, Conv, Tokenizer};

/// The metadata key of the variant (`dv8x16x16`, …) in an exported model.
pub const META_KEY: &str = "sim2real.tokenizer";

fn silu(g: &mut Graph, x: &str) -> String {
    let s = g.unary("Sigmoid", x);
    g.binary("Mul", x, &s)
}

fn conv(g: &mut Graph, x: &str, c: &Conv) -> Result<String> {
    g.conv2d(x, &c.inner)
}

/// [1, C, H, W] → [1, C·r², H/r, W/r], channel c·r² + i·r + j holding pixel
/// (r·y + i, r·x + j), as the network's space-to-depth (not ONNX's
/// SpaceToDepth, which orders blocks first).
fn space_to_depth(g: &mut Graph, x: &str, [c, h, w]: [usize; 3], r: usize) -> String {
    let (c, h, w, r) = (c as i64, h as i64, w as i64, r as i64);
    let x = g.reshape(x, &[1, c, h / r, r, w / r, r]);
    let t = g.name("transpose");
    g.node("Transpose", &[&x], &[&t], &[Attr::Ints("perm", vec![0, 1, 3, 5, 2, 4])]);
    g.reshape(&t, &[1, c * r * r, h / r, w / r])
}

/// The inverse: ONNX DepthToSpace in CRD mode.
fn depth_to_space(g: &mut Graph, x: &str, r: usize) -> String {
    let out = g.name("depth_to_space");
    g.node("DepthToSpace", &[x], &[&out], &[Attr::Int("blocksize", r as i64), Attr::Str("mode", "CRD")]);
    out
}

/// The causal temporal mixing on a chunk of one frame: every tap sees that
/// frame, so y = x + silu(Σ_k tap_k(x)).
fn time(g: &mut Graph, x: &str, t: &CausalTime) -> Result<String> {
    let mut acc: Option<String> = None;
    for tap in &t.taps {
        let y = conv(g, x, tap)?;
        acc = Some(match acc {
            Some(a) => g.binary("Add", &a, &y),
            None => y,
        });
    }
    let mixed = acc.expect("three taps");
    let s = silu(g, &mixed);
    Ok(g.binary("Add", x, &s))
}

fn block(g: &mut Graph, x: &str, b: &Block) -> Result<String> {
    let a = silu(g, x);
    let y = conv(g, &a, &b.c1)?;
    let y = silu(g, &y);
    let y = conv(g, &y, &b.c2)?;
    Ok(g.binary("Add", x, &y))
}

/// Rounding as candle's (halves away from zero), not ONNX's Round (halves
/// to even): sign(x) · floor(|x| + ½).
fn round_half_away(g: &mut Graph, x: &str) -> String {
    let a = g.unary("Abs", x);
    let half = g.scalar("half", 0.5);
    let a = g.binary("Add", &a, &half);
    let f = g.unary("Floor", &a);
    let s = g.unary("Sign", x);
    g.binary("Mul", &s, &f)
}

/// Per-channel constants [1, C, 1, 1].
fn per_channel(g: &mut Graph, base: &str, v: &[f32]) -> String {
    let n = g.name(base);
    g.initializer(&n, &[1, v.len(), 1, 1], v);
    n
}

fn check(tok: &Tokenizer, size: usize) -> Result<()> {
    if !tok.encoder.folded || !tok.decoder.folded {
        candle_core::bail!("export a tokenizer loaded for inference (its Haar transforms folded)");
    }
    if size == 0 || !size.is_multiple_of(tok.cfg.spatial) {
        candle_core::bail!("a frame of {size}×{size}: the size must be a multiple of {}", tok.cfg.spatial);
    }
    Ok(())
}

/// The encoder of `tok` (Haar folded) for `size`×`size` frames.
pub fn encoder(tok: &Tokenizer, size: usize) -> Result<Vec<u8>> {
    check(tok, size)?;
    let (cfg, e) = (&tok.cfg, &tok.encoder);
    let mut g = Graph::default();
    let x = space_to_depth(&mut g, "frame", [3, size, size], 4);
    let x = conv(&mut g, &x, &e.stem)?;
    let mut x = silu(&mut g, &x);
    for d in &e.down {
        let y = conv(&mut g, &x, d)?;
        x = silu(&mut g, &y);
    }
    let x = time(&mut g, &x, &e.time)?;
    let mut z = conv(&mut g, &x, &e.first)?;
    for b in &e.blocks {
        z = block(&mut g, &z, b)?;
    }
    let z = silu(&mut g, &z);
    let z = conv(&mut g, &z, &e.out)?;
    let h = size / cfg.spatial;
    let c = cfg.latent_channels();
    let mut outputs: Vec<(&str, Vec<usize>)> = vec![("latent", vec![1, c, h, h])];
    match cfg.continuous {
        Some(_) => g.node("Identity", &[&z], &["latent"], &[]),
        None => {
            // FSQ, as fsq::quantize: bound with tanh, shift even levels by a
            // half, round, scale to [−1, 1]; the digit is value·half + half.
            let halves: Vec<f32> = fsq::LEVELS.iter().map(|&l| (l as f32 - 1.0) / 2.0).collect();
            let offsets: Vec<f32> = fsq::LEVELS.iter().map(|&l| if l % 2 == 0 { 0.5 } else { 0.0 }).collect();
            let bounds: Vec<f32> = halves.iter().map(|h| (*h as f64 - 1e-3) as f32).collect();
            let (half, offset, bound) =
                (per_channel(&mut g, "half", &halves), per_channel(&mut g, "offset", &offsets), per_channel(&mut g, "bound", &bounds));
            let t = g.unary("Tanh", &z);
            let scaled = g.binary("Mul", &t, &bound);
            let shifted = g.binary("Sub", &scaled, &offset);
            let rounded = round_half_away(&mut g, &shifted);
            let back = g.binary("Add", &rounded, &offset);
            g.node("Div", &[&back, &half], &["latent"], &[]);
            let d = g.binary("Mul", "latent", &half);
            let d = g.binary("Add", &d, &half);
            let d = round_half_away(&mut g, &d);
            g.node("Cast", &[&d], &["digits"], &[Attr::Int("to", 7)]);
            g.int64_output("digits");
            outputs.push(("digits", vec![1, c, h, h]));
        }
    }
    Ok(g.finish("tokenizer_encoder", &[("frame", vec![1, 3, size, size])], &outputs, &[(META_KEY, cfg.name())]))
}

/// The decoder of `tok` (Haar folded) for latents of `size`×`size` frames.
pub fn decoder(tok: &Tokenizer, size: usize) -> Result<Vec<u8>> {
    check(tok, size)?;
    let (cfg, d) = (&tok.cfg, &tok.decoder);
    let mut g = Graph::default();
    let mut z = conv(&mut g, "latent", &d.input)?;
    for b in &d.blocks {
        z = block(&mut g, &z, b)?;
    }
    let z = silu(&mut g, &z);
    let x = conv(&mut g, &z, &d.first)?;
    let mut x = time(&mut g, &x, &d.time)?;
    for u in &d.up {
        let y = conv(&mut g, &x, u)?;
        let y = depth_to_space(&mut g, &y, 2);
        x = silu(&mut g, &y);
    }
    let y = conv(&mut g, &x, &d.out)?;
    g.node("DepthToSpace", &[&y], &["frame"], &[Attr::Int("blocksize", 8), Attr::Str("mode", "CRD")]);
    let h = size / cfg.spatial;
    Ok(g.finish(
        "tokenizer_decoder",
        &[("latent", vec![1, cfg.latent_channels(), h, h])],
        &[("frame", vec![1, 3, size, size])],
        &[(META_KEY, cfg.name())],
    ))
}
