//! The network as an ONNX model, for ONNX Runtime and TensorRT deployments
//! (Jetson): `s2r export perception MODEL --onnx FILE`.
//!
//! One input, `image` [1, 3, H, W] (the letterboxed frame normalised as
//! [`crate::frame::normalise`] does: (v/255 − 0.45)/0.25 per RGB channel), and
//! the four outputs of [`crate::model::Outputs`] under their names: `heat`
//! (logits), `ltrb` (pixels), `log_depth` (canonical camera), `seg`
//! (logits); decoding them is [`crate::predict`]'s. Opset 17, IR version 8;
//! batch norms folded into the convolutions. The file is written with a
//! small protobuf encoder of the ONNX schema's fields (no code generator).

use candle_core::Tensor;
use candle_nn::Conv2d;

use crate::model::{Config, ConvBn, Head, Net, MAX_LOG_EDGE, STRIDE};
use crate::PerceptionError;

/// A protobuf message being written: fields appended in any order.
#[derive(Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u32) {
        self.varint(((field << 3) | wire) as u64);
    }

    fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.key(field, 0);
        self.varint(v as u64);
        self
    }

    fn bytes(&mut self, field: u32, b: &[u8]) -> &mut Self {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    fn str(&mut self, field: u32, s: &str) -> &mut Self {
        self.bytes(field, s.as_bytes())
    }

    fn msg(&mut self, field: u32, m: Pb) -> &mut Self {
        self.bytes(field, &m.0)
    }
}

// Field numbers of onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto, TypeProto).
const TENSOR_FLOAT: i64 = 1;
const TENSOR_INT64: i64 = 7;
const ATTR_STRING: i64 = 3;
const ATTR_INTS: i64 = 7;

/// An attribute of a node.
enum Attr<'a> {
    Ints(&'a str, Vec<i64>),
    Str(&'a str, &'a str),
}

fn attribute(a: &Attr) -> Pb {
    let mut p = Pb::default();
    match a {
        Attr::Ints(name, v) => {
            p.str(1, name);
            for x in v {
                p.int(8, *x);
            }
            p.int(20, ATTR_INTS);
        }
        Attr::Str(name, v) => {
            p.str(1, name).bytes(4, v.as_bytes()).int(20, ATTR_STRING);
        }
    }
    p
}

/// The graph being built.
#[derive(Default)]
struct Graph {
    graph: Pb,
    count: usize,
}

impl Graph {
    fn name(&mut self, base: &str) -> String {
        self.count += 1;
        format!("{base}_{}", self.count)
    }

    fn node(&mut self, op: &str, inputs: &[&str], outputs: &[&str], attrs: &[Attr]) {
        let mut n = Pb::default();
        for i in inputs {
            n.str(1, i);
        }
        for o in outputs {
            n.str(2, o);
        }
        n.str(3, &format!("{op}_{}", self.count)).str(4, op);
        for a in attrs {
            n.msg(5, attribute(a));
        }
        self.count += 1;
        self.graph.msg(1, n);
    }

    fn initializer(&mut self, name: &str, dims: &[usize], values: &[f32]) {
        let mut t = Pb::default();
        for d in dims {
            t.int(1, *d as i64);
        }
        t.int(2, TENSOR_FLOAT).str(8, name);
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        t.bytes(9, &raw);
        self.graph.msg(5, t);
    }

    fn int64s(&mut self, name: &str, values: &[i64]) {
        let mut t = Pb::default();
        t.int(1, values.len() as i64).int(2, TENSOR_INT64).str(8, name);
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        t.bytes(9, &raw);
        self.graph.msg(5, t);
    }

    fn value_info(field: u32, name: &str, dims: &[usize]) -> (u32, Pb) {
        let mut shape = Pb::default();
        for d in dims {
            let mut dim = Pb::default();
            dim.int(1, *d as i64);
            shape.msg(1, dim);
        }
        let mut tensor = Pb::default();
        tensor.int(1, TENSOR_FLOAT).msg(2, shape);
        let mut ty = Pb::default();
        ty.msg(1, tensor);
        let mut v = Pb::default();
        v.str(1, name).msg(2, ty);
        (field, v)
    }

    /// A convolution layer (folded: weight and bias), then ReLU if asked.
    fn conv(&mut self, x: &str, c: &Conv2d, relu: bool) -> Result<String, candle_core::Error> {
        let w = c.weight();
        let dims = w.dims().to_vec();
        let wn = self.name("w");
        self.initializer(&wn, &dims, &w.flatten_all()?.to_vec1::<f32>()?);
        let mut inputs = vec![x.to_string(), wn];
        if let Some(b) = c.bias() {
            let bn = self.name("b");
            self.initializer(&bn, b.dims(), &b.to_vec1::<f32>()?);
            inputs.push(bn);
        }
        let cfg = c.config();
        let (k, p, s) = (dims[2] as i64, cfg.padding as i64, cfg.stride as i64);
        let out = self.name("conv");
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        self.node(
            "Conv",
            &refs,
            &[&out],
            &[Attr::Ints("kernel_shape", vec![k, k]), Attr::Ints("pads", vec![p; 4]), Attr::Ints("strides", vec![s, s])],
        );
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

    fn binary(&mut self, op: &str, a: &str, b: &str) -> String {
        let out = self.name(&op.to_lowercase());
        self.node(op, &[a, b], &[&out], &[]);
        out
    }

    fn unary(&mut self, op: &str, a: &str) -> String {
        let out = self.name(&op.to_lowercase());
        self.node(op, &[a], &[&out], &[]);
        out
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
    let mut graph = g.graph;
    graph.str(2, "perception");
    let (f, v) = Graph::value_info(11, "image", &[1, 3, cfg.height, cfg.width]);
    graph.msg(f, v);
    for (name, c) in [("heat", cfg.det_classes.len()), ("ltrb", 4), ("log_depth", 1), ("seg", cfg.seg_classes.len())] {
        let (f, v) = Graph::value_info(12, name, &[1, c, gh, gw]);
        graph.msg(f, v);
    }
    let mut opset = Pb::default();
    opset.str(1, "").int(2, 17);
    let mut model = Pb::default();
    model.int(1, 8).str(2, "sim2real").str(3, env!("CARGO_PKG_VERSION")).msg(7, graph).msg(8, opset);
    let meta = serde_json::json!({"det_classes": cfg.det_classes, "seg_classes": cfg.seg_classes, "focal": cfg.focal});
    let mut prop = Pb::default();
    prop.str(1, crate::checkpoint::META_KEY).str(2, &meta.to_string());
    model.msg(14, prop);
    Ok(model.0)
}

/// Runs `net` on one normalised input as candle does, for comparing with an exported model: the four outputs flattened.
pub fn reference_outputs(net: &Net, input: &Tensor) -> Result<Vec<Vec<f32>>, candle_core::Error> {
    let o = net.forward(input, false)?;
    [o.heat, o.ltrb, o.log_depth, o.seg].iter().map(|t| t.flatten_all()?.to_vec1::<f32>()).collect()
}
