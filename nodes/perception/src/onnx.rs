//! The network as an ONNX model, for ONNX Runtime and TensorRT deployments
//! (Jetson): `s2r export perception MODEL --onnx FILE`.
//!
//! One input, `image` [1, 3, H, W] (the letterboxed frame normalised as
//! [`crate::frame::normalise`] does: (v/255 − 0.45)/0.25 per RGB channel), and
//! the four outputs of [`crate::model::Outputs`] under their names: `heat`
//! (logits), `ltrb` (pixels), `log_depth` (canonical camera), `seg`
//! (logits); decoding them is [`crate::predict`]'s. Opset 17, IR version 8;
//! batch norms folded into the convolutions. The file is written by
//! [`s2r_train::onnx`].

use candle_core::Tensor;
use candle_nn::Conv2d;
use s2r_train::onnx::{Attr, Graph};

use crate::model::{Config, ConvBn, Head, Net, MAX_LOG_EDGE, STRIDE};
use crate::PerceptionError;

/// The layers of this network on top of the shared graph writer.
trait Layers {
    fn conv(&mut self, x: &str, c: &Conv2d, relu: bool) -> Result<String, candle_core::Error>;
    fn conv_bn(&mut self, x: &str, c: &ConvBn, relu: bool) -> Result<String, candle_core::Error>;
    fn up2(&mut self, x: &str) -> String;
    fn channels(&mut self, x: &str, from: usize, to: usize, out: &str);
    fn head(&mut self, x: &str, h: &Head) -> Result<String, candle_core::Error>;
}

impl Layers for Graph {
    /// A convolution layer (folded: weight and bias), then ReLU if asked.
    fn conv(&mut self, x: &str, c: &Conv2d, relu: bool) -> Result<String, candle_core::Error> {
        let out = self.conv2d(x, c)?;
        if !relu {
            return Ok(out);
        }
        let r = self.name("relu");
        self.node("Relu", &[&out], &[&r], &[]);
        Ok(r)
    }

    fn conv_bn(&mut self, x: &str, c: &ConvBn, relu: bool) -> Result<String, candle_core::Error> {
        self.conv(x, &c.conv, relu)
    }

    /// Nearest-neighbour upsampling by 2 (candle's `upsample_nearest2d` at an integer factor).
    fn up2(&mut self, x: &str) -> String {
        let scales = self.name("scales");
        self.initializer(&scales, &[4], &[1.0, 1.0, 2.0, 2.0]);
        let out = self.name("up");
        self.node(
            "Resize",
            &[x, "", &scales],
            &[&out],
            &[Attr::Str("mode", "nearest"), Attr::Str("coordinate_transformation_mode", "asymmetric"), Attr::Str("nearest_mode", "floor")],
        );
        out
    }

    /// Channels [from, to) of `x` along axis 1, named `out`.
    fn channels(&mut self, x: &str, from: usize, to: usize, out: &str) {
        let (s, e, a) = (self.name("start"), self.name("end"), self.name("axis"));
        self.int64s(&s, &[from as i64]);
        self.int64s(&e, &[to as i64]);
        self.int64s(&a, &[1]);
        self.node("Slice", &[x, &s, &e, &a], &[out], &[]);
    }

    fn head(&mut self, x: &str, h: &Head) -> Result<String, candle_core::Error> {
        let t = self.conv_bn(x, &h.trunk, true)?;
        self.conv(&t, &h.out, false)
    }
}

/// The ONNX model of `net` (batch norms are folded here if they are not yet).
pub fn export(net: &Net) -> Result<Vec<u8>, PerceptionError> {
    let candle = |source| PerceptionError::Candle { context: "exporting to ONNX".into(), source };
    let net = if net.stem.folded() { net.clone() } else { net.fold().map_err(candle)? };
    let cfg = &net.cfg;
    let mut g = Graph::default();
    let build = |g: &mut Graph| -> Result<(), candle_core::Error> {
        let x2 = g.conv_bn("image", &net.stem, true)?;
        let mut xs = Vec::new();
        let mut x = x2;
        for st in &net.stages {
            x = g.conv_bn(&x, &st.down, true)?;
            for b in &st.blocks {
                let y = g.conv_bn(&x, &b.a, true)?;
                let y = g.conv_bn(&y, &b.b, false)?;
                let sum = g.binary("Add", &y, &x);
                x = g.unary("Relu", &sum);
            }
            xs.push(x.clone());
        }
        let (x4, x8, x16) = (&xs[0], &xs[1], &xs[2]);
        let l16 = g.conv_bn(x16, &net.lat16, false)?;
        let u16 = g.up2(&l16);
        let l8 = g.conv_bn(x8, &net.lat8, false)?;
        let p8 = g.binary("Add", &u16, &l8);
        let p8 = g.unary("Relu", &p8);
        let p8 = g.conv_bn(&p8, &net.fuse8, true)?;
        let t4 = g.conv_bn(&p8, &net.top4, false)?;
        let u8 = g.up2(&t4);
        let l4 = g.conv_bn(x4, &net.lat4, false)?;
        let p4 = g.binary("Add", &u8, &l4);
        let p4 = g.unary("Relu", &p4);
        let p4 = g.conv_bn(&p4, &net.fuse4, true)?;
        let k = cfg.det_classes.len();
        let det = g.head(&p4, &net.det)?;
        g.channels(&det, 0, k, "heat");
        let raw = g.name("ltrb_raw");
        g.channels(&det, k, k + 4, &raw);
        let (lo, hi) = (g.name("lo"), g.name("hi"));
        g.initializer(&lo, &[], &[-4.0]);
        g.initializer(&hi, &[], &[MAX_LOG_EDGE as f32]);
        let clipped = g.name("clip");
        g.node("Clip", &[&raw, &lo, &hi], &[&clipped], &[]);
        let e = g.unary("Exp", &clipped);
        let stride = g.name("stride");
        g.initializer(&stride, &[], &[STRIDE as f32]);
        g.node("Mul", &[&e, &stride], &["ltrb"], &[]);
        let dense = g.head(&p4, &net.dense)?;
        g.channels(&dense, 0, 1, "log_depth");
        g.channels(&dense, 1, 1 + cfg.seg_classes.len(), "seg");
        Ok(())
    };
    build(&mut g).map_err(candle)?;
    let (gw, gh) = Config::grid(cfg.width, cfg.height);
    let outputs: Vec<(&str, Vec<usize>)> = [("heat", cfg.det_classes.len()), ("ltrb", 4), ("log_depth", 1), ("seg", cfg.seg_classes.len())]
        .into_iter()
        .map(|(name, c)| (name, vec![1, c, gh, gw]))
        .collect();
    let meta = serde_json::json!({"det_classes": cfg.det_classes, "seg_classes": cfg.seg_classes, "focal": cfg.focal});
    Ok(g.finish(
        "perception",
        &[("image", vec![1, 3, cfg.height, cfg.width])],
        &outputs,
        &[(crate::checkpoint::META_KEY, meta.to_string())],
    ))
}

/// Runs `net` on one normalised input as candle does, for comparing with an exported model: the four outputs flattened.
pub fn reference_outputs(net: &Net, input: &Tensor) -> Result<Vec<Vec<f32>>, candle_core::Error> {
    let o = net.forward(input, false)?;
    [o.heat, o.ltrb, o.log_depth, o.seg].iter().map(|t| t.flatten_all()?.to_vec1::<f32>()).collect()
}
