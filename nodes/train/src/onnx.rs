//! ONNX models written by hand: a small protobuf encoder of the fields of
//! onnx.proto the exports use (ModelProto, GraphProto, NodeProto,
//! AttributeProto, TensorProto, ValueInfoProto, TypeProto), no code
//! generator. Each model crate describes its network with [`Graph`] and
//! [`Graph::finish`] writes the file's bytes (IR version 8, opset 17), for
//! ONNX Runtime and TensorRT deployments.

use candle_nn::{Conv2d, Linear};

/// ONNX Runtime's shared library, to run exported models with the `ort`
/// crate (load-dynamic): `ORT_DYLIB_PATH` when set, else the one in the
/// `onnxruntime` Python wheel (found with `$PYTHON`, default `python3`).
/// What the export tests load; `Err` says what is missing.
pub fn onnxruntime_library() -> Result<std::path::PathBuf, String> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return Ok(p.into());
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let find = "import onnxruntime,os,glob;print(sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__),'capi','libonnxruntime.so*')))[0])";
    let out = std::process::Command::new(&python).args(["-c", find]).output().map_err(|e| format!("{python}: {e}"))?;
    if !out.status.success() {
        return Err(format!("no ORT_DYLIB_PATH and no onnxruntime wheel for {python}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().into())
}

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

const TENSOR_FLOAT: i64 = 1;
const TENSOR_INT64: i64 = 7;
const ATTR_INT: i64 = 2;
const ATTR_STRING: i64 = 3;
const ATTR_INTS: i64 = 7;

/// An attribute of a node.
pub enum Attr<'a> {
    /// One integer (`axis`).
    Int(&'a str, i64),
    /// Integers (`kernel_shape`, `perm`).
    Ints(&'a str, Vec<i64>),
    /// A string (`mode`).
    Str(&'a str, &'a str),
}

fn attribute(a: &Attr) -> Pb {
    let mut p = Pb::default();
    match a {
        Attr::Int(name, v) => {
            p.str(1, name).int(3, *v).int(20, ATTR_INT);
        }
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

fn value_info(name: &str, dims: &[usize], elem: i64) -> Pb {
    let mut shape = Pb::default();
    for d in dims {
        let mut dim = Pb::default();
        dim.int(1, *d as i64);
        shape.msg(1, dim);
    }
    let mut tensor = Pb::default();
    tensor.int(1, elem).msg(2, shape);
    let mut ty = Pb::default();
    ty.msg(1, tensor);
    let mut v = Pb::default();
    v.str(1, name).msg(2, ty);
    v
}

/// A graph being built: nodes, weights, inputs and outputs (float32 but
/// for those marked with [`Graph::int64_input`] and [`Graph::int64_output`]).
#[derive(Default)]
pub struct Graph {
    graph: Pb,
    count: usize,
    int64: Vec<String>,
}

impl Graph {
    /// A fresh name `<base>_<n>` for an intermediate value.
    pub fn name(&mut self, base: &str) -> String {
        self.count += 1;
        format!("{base}_{}", self.count)
    }

    /// A node `op` from `inputs` to `outputs` ("" for an absent optional input).
    pub fn node(&mut self, op: &str, inputs: &[&str], outputs: &[&str], attrs: &[Attr]) {
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

    /// A float32 weight `name` of shape `dims` (row-major `values`).
    pub fn initializer(&mut self, name: &str, dims: &[usize], values: &[f32]) {
        let mut t = Pb::default();
        for d in dims {
            t.int(1, *d as i64);
        }
        t.int(2, TENSOR_FLOAT).str(8, name);
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        t.bytes(9, &raw);
        self.graph.msg(5, t);
    }

    /// An int64 vector `name` (shapes, axes, slice bounds).
    pub fn int64s(&mut self, name: &str, values: &[i64]) {
        let mut t = Pb::default();
        t.int(1, values.len() as i64).int(2, TENSOR_INT64).str(8, name);
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        t.bytes(9, &raw);
        self.graph.msg(5, t);
    }

    /// Declares the graph input `name` int64 (indices) instead of float32.
    pub fn int64_input(&mut self, name: &str) {
        self.int64.push(name.into());
    }

    /// Declares the graph output `name` int64 instead of float32.
    pub fn int64_output(&mut self, name: &str) {
        self.int64.push(name.into());
    }

    /// A float32 scalar-like weight `[1]` of value `v`, broadcast by the
    /// operators that use it.
    pub fn scalar(&mut self, base: &str, v: f32) -> String {
        let n = self.name(base);
        self.initializer(&n, &[1], &[v]);
        n
    }

    /// A float32 weight named `<base>_<n>` holding `t` (any shape).
    pub fn tensor(&mut self, base: &str, t: &candle_core::Tensor) -> candle_core::Result<String> {
        let n = self.name(base);
        self.initializer(&n, t.dims(), &t.flatten_all()?.to_vec1::<f32>()?);
        Ok(n)
    }

    /// `op(a, b)` into a fresh value.
    pub fn binary(&mut self, op: &str, a: &str, b: &str) -> String {
        let out = self.name(&op.to_lowercase());
        self.node(op, &[a, b], &[&out], &[]);
        out
    }

    /// `op(a)` into a fresh value.
    pub fn unary(&mut self, op: &str, a: &str) -> String {
        let out = self.name(&op.to_lowercase());
        self.node(op, &[a], &[&out], &[]);
        out
    }

    /// `x` reshaped to `dims` (-1 for the one left to infer).
    pub fn reshape(&mut self, x: &str, dims: &[i64]) -> String {
        let shape = self.name("shape");
        self.int64s(&shape, dims);
        let out = self.name("reshape");
        self.node("Reshape", &[x, &shape], &[&out], &[]);
        out
    }

    /// candle's `Linear` on the last axis of `x` (`x Wᵀ + b`), as MatMul and Add.
    pub fn linear(&mut self, x: &str, l: &Linear) -> candle_core::Result<String> {
        let wn = self.tensor("w", &l.weight().t()?.contiguous()?)?;
        let y = self.binary("MatMul", x, &wn);
        let Some(b) = l.bias() else { return Ok(y) };
        let bn = self.tensor("b", b)?;
        Ok(self.binary("Add", &y, &bn))
    }

    /// candle's `Conv2d` (a square kernel, its padding and stride) on `x`
    /// [N, C, H, W].
    pub fn conv2d(&mut self, x: &str, c: &Conv2d) -> candle_core::Result<String> {
        let mut inputs = vec![x.to_string(), self.tensor("w", c.weight())?];
        if let Some(b) = c.bias() {
            inputs.push(self.tensor("b", b)?);
        }
        let cfg = c.config();
        let (k, p, s) = (c.weight().dim(2)? as i64, cfg.padding as i64, cfg.stride as i64);
        let out = self.name("conv");
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        self.node(
            "Conv",
            &refs,
            &[&out],
            &[Attr::Ints("kernel_shape", vec![k, k]), Attr::Ints("pads", vec![p; 4]), Attr::Ints("strides", vec![s, s])],
        );
        Ok(out)
    }

    /// [`crate::PatchStages`] on `x` ([1, h, w, c], channels last, already
    /// shifted as the network does): each stage a 2×2 space-to-depth (each
    /// block's pixels, row by row, become one position's channels), its
    /// linear layer and ReLU. Returns the output and its [h, w, c].
    pub fn patch_stages(&mut self, x: &str, stages: &crate::PatchStages, hwc: [usize; 3]) -> candle_core::Result<(String, [usize; 3])> {
        let [mut h, mut w, mut c] = hwc;
        let mut x = x.to_string();
        for layer in stages.layers() {
            let blocks = self.reshape(&x, &[1, (h / 2) as i64, 2, (w / 2) as i64, (2 * c) as i64]);
            let swapped = self.name("transpose");
            self.node("Transpose", &[&blocks], &[&swapped], &[Attr::Ints("perm", vec![0, 1, 3, 2, 4])]);
            (h, w) = (h / 2, w / 2);
            let merged = self.reshape(&swapped, &[1, h as i64, w as i64, (4 * c) as i64]);
            let y = self.linear(&merged, layer)?;
            x = self.unary("Relu", &y);
            c = layer.weight().dim(0)?;
        }
        Ok((x, [h, w, c]))
    }

    /// `x − 0.5` (the images' shift every patch network starts with).
    pub fn centred(&mut self, x: &str) -> candle_core::Result<String> {
        let half = self.scalar("half", 0.5);
        Ok(self.binary("Sub", x, &half))
    }

    /// The model's bytes: the graph named `name` with its `inputs` and
    /// `outputs` (name and shape; values of those names must exist),
    /// `metadata` as the model's metadata_props.
    pub fn finish(self, name: &str, inputs: &[(&str, Vec<usize>)], outputs: &[(&str, Vec<usize>)], metadata: &[(&str, String)]) -> Vec<u8> {
        let mut graph = self.graph;
        graph.str(2, name);
        let elem = |n: &str| if self.int64.iter().any(|i| i == n) { TENSOR_INT64 } else { TENSOR_FLOAT };
        for (n, dims) in inputs {
            graph.msg(11, value_info(n, dims, elem(n)));
        }
        for (n, dims) in outputs {
            graph.msg(12, value_info(n, dims, elem(n)));
        }
        let mut opset = Pb::default();
        opset.str(1, "").int(2, 17);
        let mut model = Pb::default();
        model.int(1, 8).str(2, "sim2real").str(3, env!("CARGO_PKG_VERSION")).msg(7, graph).msg(8, opset);
        for (k, v) in metadata {
            let mut prop = Pb::default();
            prop.str(1, k).str(2, v);
            model.msg(14, prop);
        }
        model.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_fields_follow_protobuf() {
        let mut p = Pb::default();
        p.int(1, 300);
        assert_eq!(p.0, [0x08, 0xAC, 0x02]);
        let mut p = Pb::default();
        p.str(2, "ab");
        assert_eq!(p.0, [0x12, 2, b'a', b'b']);
        // A negative int64 is ten bytes, as protobuf writes it.
        let mut p = Pb::default();
        p.int(1, -1);
        assert_eq!(p.0.len(), 11);
    }
}
