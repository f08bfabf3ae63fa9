//! The exported world model run by ONNX Runtime (the `onnxruntime` wheel's
//! library through the `ort` crate, load-dynamic, as transfer_node loads it)
//! gives candle's logits and state on the same window: with patches of one
//! and two positions, and with low-rank adapters folded in.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use ort::session::Session;
use ort::value::Tensor as OrtTensor;
use s2r_world::model::{Batch, Conditions, Config, Robot, Surface, WorldModel, ACTION};

/// The onnxruntime wheel's library (tests/run installs it), unless ORT_DYLIB_PATH names one.
fn ort_library() -> PathBuf {
    s2r_train::onnx::onnxruntime_library().unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn onnx_runtime_matches_candle() {
    let env = ort::init_from(ort_library()).unwrap().with_name("s2r-world-test").build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::Cpu;
    let levels = vec![8, 8, 8, 5, 5, 5];
    let car = Conditions { robot: Robot::Vehicle, surface: Surface::Icy, weather: 2, time: 3 };
    let arm = Conditions { robot: Robot::Arm, surface: Surface::Table, weather: 0, time: 1 };
    let with_dynamics = Config {
        dim: 32,
        heads: 2,
        layers: 2,
        mlp: 64,
        context: 4,
        patch: 2,
        adapter: 3,
        dynamics: 16,
        ..Config::new("test", 8, levels.clone())
    };
    for (cfg, conditions) in [
        (
            Config { dim: 32, heads: 4, layers: 2, mlp: 64, context: 3, patch: 1, dynamics: 0, ..Config::new("test", 4, levels.clone()) },
            car,
        ),
        (with_dynamics.clone(), car),
        (with_dynamics, arm),
    ] {
        let vars = VarMap::new();
        let model = WorldModel::new(cfg.clone(), VarBuilder::from_varmap(&vars, DType::F32, &dev)).unwrap();
        // Adapters and the dynamics head's output start at zero: give them weights, so they are tested.
        for (name, var) in vars.data().lock().unwrap().iter() {
            if name.ends_with(".lora_b") || name.starts_with("dynamics.out") {
                var.set(&Tensor::randn(0f32, 0.1, var.shape(), &dev).unwrap()).unwrap();
            }
        }
        let bytes = s2r_world::onnx::export(&model).unwrap();
        let path = dir.path().join("world.onnx");
        std::fs::write(&path, &bytes).unwrap();
        let mut session = Session::builder(&env).unwrap().commit_from_file(&path).unwrap();

        let (t, n, l) = (cfg.context, cfg.tokens(), cfg.levels.len());
        let raw: Vec<u32> = (0..t * n * l).map(|i| ((i * 7 + i / 5) as u32) % cfg.levels[i % l]).collect();
        let digits = model.offset_digits(&Tensor::from_vec(raw, (1, t, n, l), &dev).unwrap()).unwrap();
        let steps = Tensor::randn(0f32, 1.0, (1, t, 2 * ACTION), &dev).unwrap();
        let rows = conditions.rows();
        let conditions = Tensor::new(&[rows], &dev).unwrap();
        let (logits, state) =
            model.forward(&Batch { digits: digits.clone(), steps: steps.clone(), conditions: conditions.clone() }).unwrap();

        let d: Vec<i64> = digits.flatten_all().unwrap().to_vec1::<u32>().unwrap().into_iter().map(i64::from).collect();
        let inputs = ort::inputs![
            "digits" => OrtTensor::from_array(([1i64, t as i64, n as i64, l as i64], d)).unwrap(),
            "steps" => OrtTensor::from_array(([1i64, t as i64, 2 * ACTION as i64], values(&steps))).unwrap(),
            "conditions" => OrtTensor::from_array(([1i64, 4], rows.iter().map(|&r| r as i64).collect::<Vec<_>>())).unwrap(),
        ];
        let outputs = session.run(inputs).unwrap();
        for (name, want) in [("logits", &logits), ("state", &state)] {
            let (shape, got) = outputs[name].try_extract_tensor::<f32>().unwrap();
            assert_eq!(shape.to_vec(), want.dims().iter().map(|&x| x as i64).collect::<Vec<_>>(), "{name}");
            let want = values(want);
            let scale = want.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
            let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(worst <= 1e-4 * scale.max(1.0), "patch {}: {name} differs by {worst} (scale {scale})", cfg.patch);
        }
        // The same codes come out of both.
        let got = outputs["logits"].try_extract_tensor::<f32>().unwrap().1.to_vec();
        let argmax = |l: &Tensor| values(&model.argmax_digits(l).unwrap().to_dtype(DType::F32).unwrap());
        assert_eq!(argmax(&Tensor::from_vec(got, logits.dims(), &dev).unwrap()), argmax(&logits));
    }
}
