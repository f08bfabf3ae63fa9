use candle_core::{Device, Tensor, Module};
use candle_nn::{conv2d, Conv2dConfig, VarBuilder, VarMap};
fn t<F: FnMut()>(name: &str, reps: usize, mut f: F) { f(); let t0 = std::time::Instant::now(); for _ in 0..reps { f(); } println!("{name}: {:.2} ms", t0.elapsed().as_secs_f64() * 1e3 / reps as f64); }
fn main() {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, candle_core::DType::F32, &Device::Cpu);
    let x = Tensor::randn(0f32, 1.0, (5, 64, 32, 32), &Device::Cpu).unwrap();
    let out = conv2d(64, 192, 3, Conv2dConfig { padding: 1, ..Default::default() }, vb.pp("o")).unwrap();
    let c11 = conv2d(64, 64, 1, Default::default(), vb.pp("c11")).unwrap();
    let b33 = conv2d(64, 64, 3, Conv2dConfig { padding: 1, ..Default::default() }, vb.pp("b")).unwrap();
    let x2 = Tensor::randn(0f32, 1.0, (2, 64, 32, 32), &Device::Cpu).unwrap();
    let y = out.forward(&x).unwrap();
    t("out conv 5x64->192 @32", 20, || { out.forward(&x).unwrap(); });
    t("haar inv x3", 20, || { s2r_tokenizer::haar::inverse(&s2r_tokenizer::haar::inverse(&s2r_tokenizer::haar::inverse(&y).unwrap()).unwrap()).unwrap(); });
    t("d2s 8", 20, || { y.reshape((5, 3, 8, 8, 32, 32)).unwrap().permute((0, 1, 4, 2, 5, 3)).unwrap().contiguous().unwrap(); });
    t("1x1 conv 64 @32 x1 frame", 50, || { c11.forward(&x.narrow(0, 0, 1).unwrap()).unwrap(); });
    t("1x1 as matmul 5 frames", 50, || { let w = Tensor::randn(0f32, 1.0, (64, 64), &Device::Cpu).unwrap(); w.broadcast_matmul(&x.reshape((5, 64, 1024)).unwrap()).unwrap(); });
    t("block conv 3x3 2 lat", 20, || { b33.forward(&x2).unwrap(); });
    t("silu 5x64x32x32", 50, || { x.silu().unwrap(); });
    let img = Tensor::randn(0f32, 1.0, (5, 3, 256, 256), &Device::Cpu).unwrap();
    t("haar fwd x2", 20, || { s2r_tokenizer::haar::forward(&s2r_tokenizer::haar::forward(&img).unwrap()).unwrap(); });
    t("s2d 4", 20, || { img.reshape((5, 3, 64, 4, 64, 4)).unwrap().permute((0, 1, 3, 5, 2, 4)).unwrap().contiguous().unwrap(); });
}
