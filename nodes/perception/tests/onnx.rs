//! The exported ONNX model run by ONNX Runtime (the `onnxruntime` wheel's
//! library through the `ort` crate, load-dynamic, as transfer_node loads
//! it) gives candle's outputs on the same input.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use ort::session::Session;
use ort::value::Tensor as OrtTensor;
use s2r_perception::checkpoint::Trainable;
use s2r_perception::model::Config;

/// The onnxruntime wheel's library (tests/run installs it), unless ORT_DYLIB_PATH names one.
fn ort_library() -> PathBuf {
    s2r_train::onnx::onnxruntime_library().unwrap()
}

#[test]
fn onnx_runtime_matches_candle() {
    // A network with trained-looking statistics: a few training passes move
    // the batch-norm running statistics, which the export folds in.
    let cfg = Config {
        width: 160,
        height: 112,
        ..Config::small(vec!["vehicle".into(), "cup".into()], (0..5).map(|i| format!("c{i}")).collect())
    };
    let t = Trainable::new(cfg, &Device::Cpu).unwrap();
    let x = Tensor::randn(0f32, 1.0, (2, 3, 112, 160), &Device::Cpu).unwrap();
    for _ in 0..3 {
        t.net.forward(&x, true).unwrap();
    }
    let net = t.net.fold().unwrap();
    let bytes = s2r_perception::onnx::export(&t.net).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.onnx");
    std::fs::write(&path, &bytes).unwrap();

    let env = ort::init_from(ort_library()).unwrap().with_name("s2r-test").build().unwrap();
    let mut session = Session::builder(&env).unwrap().commit_from_file(&path).unwrap();
    let names: Vec<String> = session.outputs().iter().map(|o| o.name().to_string()).collect();
    assert_eq!(names, ["heat", "ltrb", "log_depth", "seg"]);

    let input = Tensor::randn(0f32, 1.0, (1, 3, 112, 160), &Device::Cpu).unwrap().to_dtype(DType::F32).unwrap();
    let want = s2r_perception::onnx::reference_outputs(&net, &input).unwrap();
    let v = input.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let value = OrtTensor::from_array(([1i64, 3, 112, 160], v)).unwrap();
    let outputs = session.run(ort::inputs!["image" => value]).unwrap();
    for (i, name) in names.iter().enumerate() {
        let (shape, got) = outputs[i].try_extract_tensor::<f32>().unwrap();
        assert_eq!(shape.iter().product::<i64>() as usize, want[i].len(), "{name} size");
        let scale = want[i].iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        let worst = got.iter().zip(&want[i]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst <= 1e-4 * scale.max(1.0), "{name}: ONNX Runtime and candle differ by {worst} (scale {scale})");
    }
}
