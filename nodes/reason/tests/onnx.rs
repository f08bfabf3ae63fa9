//! The exported reasoning networks run by ONNX Runtime (the `onnxruntime`
//! wheel's library through the `ort` crate, load-dynamic, as transfer_node
//! loads it) give candle's outputs: the surface classifier, the hazard
//! network (with and without motion) and the cup's outcome predictor.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use ort::session::Session;
use ort::value::Tensor as OrtTensor;
use s2r_reason::cup::CupNet;
use s2r_reason::hazard::HazardNet;
use s2r_reason::surface::SurfaceNet;

/// The onnxruntime wheel's library (tests/run installs it), unless ORT_DYLIB_PATH names one.
fn ort_library() -> PathBuf {
    s2r_train::onnx::onnxruntime_library().unwrap()
}

/// Runs `bytes` in ONNX Runtime on `input` (named `input_name`) and compares its one output with `want`.
fn check(env: &ort::environment::Environment, what: &str, bytes: &[u8], input_name: &str, input: &Tensor, want: &Tensor) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{what}.onnx"));
    std::fs::write(&path, bytes).unwrap();
    let mut session = Session::builder(env).unwrap().commit_from_file(&path).unwrap();
    let dims: Vec<i64> = input.dims().iter().map(|&d| d as i64).collect();
    let value = OrtTensor::from_array((dims, input.flatten_all().unwrap().to_vec1::<f32>().unwrap())).unwrap();
    let outputs = session.run(ort::inputs![input_name => value]).unwrap();
    let (shape, got) = outputs[0].try_extract_tensor::<f32>().unwrap();
    let want_dims: Vec<i64> = want.dims().iter().map(|&d| d as i64).collect();
    assert_eq!(shape.to_vec(), want_dims, "{what}");
    let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let scale = want.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(worst <= 1e-4 * scale.max(1.0), "{what}: ONNX Runtime and candle differ by {worst} (scale {scale})");
}

#[test]
fn onnx_runtime_matches_candle() {
    let env = ort::init_from(ort_library()).unwrap().with_name("s2r-reason-test").build().unwrap();
    let cpu = Device::Cpu;
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &cpu);

    let surface = SurfaceNet::new(vb.pp("surface")).unwrap();
    let (w, h) = s2r_reason::surface::INPUT;
    let x = Tensor::rand(0f32, 1.0, (1, h, w, 3), &cpu).unwrap();
    check(&env, "surface", &s2r_reason::onnx::surface(&surface).unwrap(), "image", &x, &surface.forward(&x).unwrap());

    for motion in [false, true] {
        let hazard = HazardNet::new(vb.pp(format!("hazard{motion}")), motion).unwrap();
        let (w, h) = s2r_reason::hazard::INPUT;
        let x = Tensor::rand(0f32, 1.0, (1, h, w, if motion { 6 } else { 3 }), &cpu).unwrap();
        check(&env, "hazard", &s2r_reason::onnx::hazard(&hazard).unwrap(), "image", &x, &hazard.forward(&x).unwrap());
    }

    let cup = CupNet::new(vb.pp("cup")).unwrap();
    let x = Tensor::randn(0f32, 1.0, (1, s2r_reason::cup::INPUTS), &cpu).unwrap();
    check(&env, "cup", &s2r_reason::onnx::cup(&cup).unwrap(), "push", &x, &cup.logits(&x).unwrap());
}
