//! The exported tokenizer run by ONNX Runtime (the `onnxruntime` wheel's
//! library through the `ort` crate, load-dynamic, as transfer_node loads it)
//! gives candle's latents, FSQ digits and decoded frames on the same frame,
//! for a continuous and a discrete variant.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use ort::session::Session;
use ort::value::Tensor as OrtTensor;
use s2r_tokenizer::fsq;
use s2r_tokenizer::model::{Config, Tokenizer};

/// The onnxruntime wheel's library (tests/run installs it), unless ORT_DYLIB_PATH names one.
fn ort_library() -> PathBuf {
    s2r_train::onnx::onnxruntime_library().unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    let scale = want.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    let worst = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(worst <= 1e-4 * scale.max(1.0), "{what}: ONNX Runtime and candle differ by {worst} (scale {scale})");
}

#[test]
fn onnx_runtime_matches_candle() {
    let env = ort::init_from(ort_library()).unwrap().with_name("s2r-tokenizer-test").build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::Cpu;
    let size = 64;
    for cfg in [Config { width: 16, blocks: 1, ..Config::CV4X8X8 }, Config { width: 16, blocks: 1, ..Config::DV8X16X16 }] {
        let vars = VarMap::new();
        let mut tok = Tokenizer::new(cfg, VarBuilder::from_varmap(&vars, DType::F32, &dev)).unwrap();
        assert!(s2r_tokenizer::onnx::encoder(&tok, size).is_err(), "unfolded Haar transforms are refused");
        tok.fold_haar().unwrap();
        assert!(s2r_tokenizer::onnx::encoder(&tok, size + 4).is_err(), "a size the compression does not divide is refused");
        let enc = dir.path().join("encoder.onnx");
        let dec = dir.path().join("decoder.onnx");
        std::fs::write(&enc, s2r_tokenizer::onnx::encoder(&tok, size).unwrap()).unwrap();
        std::fs::write(&dec, s2r_tokenizer::onnx::decoder(&tok, size).unwrap()).unwrap();

        let frame = Tensor::rand(-1f32, 1.0, (1, 1, 3, size, size), &dev).unwrap();
        let z = tok.encoder.forward(&frame).unwrap().squeeze(1).unwrap(); // [1, C, h, w]
        let decoded = tok.decoder.forward(&z.unsqueeze(1).unwrap()).unwrap().squeeze(1).unwrap();

        let mut session = Session::builder(&env).unwrap().commit_from_file(&enc).unwrap();
        let input = OrtTensor::from_array(([1i64, 3, size as i64, size as i64], values(&frame))).unwrap();
        let out = session.run(ort::inputs!["frame" => input]).unwrap();
        let (shape, latent) = out["latent"].try_extract_tensor::<f32>().unwrap();
        assert_eq!(shape.to_vec(), z.dims().iter().map(|&x| x as i64).collect::<Vec<_>>());
        let want = values(&z);
        if cfg.continuous.is_some() {
            close(latent, &want, "continuous latent");
        } else {
            // FSQ rounds: a value on a level boundary may round either way in
            // either runtime; all but a few must agree exactly.
            let differ = latent.iter().zip(&want).filter(|(a, b)| (*a - *b).abs() > 1e-5).count();
            assert!(differ * 200 <= want.len(), "{differ} of {} FSQ values differ", want.len());
            let (_, digits) = out["digits"].try_extract_tensor::<i64>().unwrap();
            let codes_ort: Vec<u32> = (0..digits.len() / 6)
                .map(|p| {
                    let n = digits.len() / 6;
                    fsq::LEVELS.iter().enumerate().fold(0u32, |c, (i, &l)| c * l + digits[i * n + p] as u32)
                })
                .collect();
            let own = fsq::codes(&Tensor::from_vec(latent.to_vec(), z.dims(), &dev).unwrap(), &fsq::LEVELS).unwrap();
            assert_eq!(codes_ort, own, "the digits make the latent's codes");
            let candle_codes = fsq::codes(&z, &fsq::LEVELS).unwrap();
            let differ = codes_ort.iter().zip(&candle_codes).filter(|(a, b)| a != b).count();
            assert!(differ * 200 <= codes_ort.len(), "{differ} of {} codes differ from candle's", codes_ort.len());
        }

        let mut session = Session::builder(&env).unwrap().commit_from_file(&dec).unwrap();
        let input = OrtTensor::from_array((z.dims().iter().map(|&x| x as i64).collect::<Vec<_>>(), want)).unwrap();
        let out = session.run(ort::inputs!["latent" => input]).unwrap();
        let (shape, frame_out) = out["frame"].try_extract_tensor::<f32>().unwrap();
        assert_eq!(shape.to_vec(), [1, 3, size as i64, size as i64]);
        close(frame_out, &values(&decoded), &format!("{} decoded frame", cfg.name()));
    }
}
