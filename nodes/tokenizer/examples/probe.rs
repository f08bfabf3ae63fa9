use candle_core::{Device, Tensor, Module};
use candle_nn::{conv2d, Conv2dConfig, VarBuilder, VarMap};
use s2r_tokenizer::model::Conv;
fn t<F: FnMut()>(name: &str, reps: usize, mut f: F) { f(); let t0 = std::time::Instant::now(); for _ in 0..reps { f(); } println!("{name}: {:.2} ms", t0.elapsed().as_secs_f64() * 1e3 / reps as f64); }
fn main() {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, candle_core::DType::F32, &Device::Cpu);
    for (n, ci, co, h, k, s) in [(5, 64, 192, 32, 3, 1), (2, 64, 64, 32, 3, 1), (5, 48, 64, 64, 3, 2), (5, 64, 64, 32, 1, 1), (1, 64, 64, 32, 1, 1), (9, 64, 256, 16, 3, 1)] {
        let c = conv2d(ci, co, k, Conv2dConfig { padding: k / 2, stride: s, ..Default::default() }, vb.pp(format!("{n}_{ci}_{co}_{h}_{k}_{s}"))).unwrap();
        let x = Tensor::randn(0f32, 1.0, (n, ci, h, h), &Device::Cpu).unwrap();
        t(&format!("candle {n}x{ci}x{h} k{k} s{s} -> {co}"), 20, || { c.forward(&x).unwrap(); });
        let mut g = Conv::from(c.clone());
        g.prepare().unwrap();
        t(&format!("gemm   {n}x{ci}x{h} k{k} s{s} -> {co}"), 20, || { g.forward(&x).unwrap(); });
    }
}
