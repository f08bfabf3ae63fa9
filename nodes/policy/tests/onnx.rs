//! The exported policy run by ONNX Runtime (the `onnxruntime` wheel's
//! library through the `ort` crate, load-dynamic, as transfer_node loads it)
//! gives candle's actions on the same frame and state, for a car's policy
//! with a past frame and for an arm's.

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use ort::session::Session;
use ort::value::Tensor as OrtTensor;
use s2r_policy::checkpoint::Trainable;
use s2r_policy::model::{Config, Robot};

/// The onnxruntime wheel's library (tests/run installs it), unless ORT_DYLIB_PATH names one.
fn ort_library() -> PathBuf {
    s2r_train::onnx::onnxruntime_library().unwrap()
}

#[test]
fn onnx_runtime_matches_candle() {
    let env = ort::init_from(ort_library()).unwrap().with_name("s2r-policy-test").build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for cfg in [
        Config { width: 256, height: 96, rows: [0.25, 0.75], past: Some(0.2), ..Config::small("front", Robot::Vehicle) },
        Config::small("front", Robot::Arm),
    ] {
        let t = Trainable::new(cfg.clone(), &Device::Cpu, 3).unwrap();
        let bytes = s2r_policy::onnx::export(&t.net).unwrap();
        let path = dir.path().join("policy.onnx");
        std::fs::write(&path, &bytes).unwrap();
        let mut session = Session::builder(&env).unwrap().commit_from_file(&path).unwrap();
        let (c, s) = (cfg.channels_in(), cfg.robot.state_scale().len());
        let image = Tensor::rand(0f32, 1.0, (1, cfg.height, cfg.width, c), &Device::Cpu).unwrap();
        let state = Tensor::randn(0f32, 1.0, (1, s), &Device::Cpu).unwrap();
        let want: Vec<f32> = t.net.forward(&image, &state).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let pixels = image.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let img = OrtTensor::from_array(([1i64, cfg.height as i64, cfg.width as i64, c as i64], pixels)).unwrap();
        let st = OrtTensor::from_array(([1i64, s as i64], state.flatten_all().unwrap().to_vec1::<f32>().unwrap())).unwrap();
        let outputs = session.run(ort::inputs!["image" => img, "state" => st]).unwrap();
        let (shape, got) = outputs["actions"].try_extract_tensor::<f32>().unwrap();
        assert_eq!(shape.to_vec(), [1, cfg.chunk as i64, cfg.robot.action_scale().len() as i64]);
        let scale = want.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst <= 1e-4 * scale.max(1.0), "{:?}: ONNX Runtime and candle differ by {worst} (scale {scale})", cfg.robot);
    }
}
