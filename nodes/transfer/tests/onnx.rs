//! The ONNX backend with models built by the test (Python `onnx`), run by the
//! real ONNX Runtime (the `onnxruntime` wheel's library, via ORT_DYLIB_PATH).

use std::path::{Path, PathBuf};
use std::process::Command;

use s2r_transfer::onnx::OnnxBackend;
use s2r_transfer::{parse, Backend, Frame, Intrinsics, TransferError, Weights};

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Points ORT_DYLIB_PATH at the onnxruntime wheel's library unless it is set.
fn ort_library() {
    if std::env::var_os("ORT_DYLIB_PATH").is_some() {
        return;
    }
    let out = Command::new(python())
        .args(["-c", "import onnxruntime,os,glob;print(sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__),'capi','libonnxruntime.so*')))[0])"])
        .output()
        .expect("python3");
    assert!(out.status.success(), "the onnxruntime wheel is needed (tests/run installs it): {}", String::from_utf8_lossy(&out.stderr));
    std::env::set_var("ORT_DYLIB_PATH", String::from_utf8(out.stdout).unwrap().trim());
}

fn build(kind: &str, dir: &Path) -> PathBuf {
    let path = dir.join(format!("{kind}.onnx"));
    let st = Command::new(python()).arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tiny_model.py")).arg(kind).arg(&path).status().unwrap();
    assert!(st.success());
    path
}

#[test]
fn a_model_following_the_contract_restyles_and_bad_models_are_refused() {
    ort_library();
    let dir = std::env::temp_dir().join(format!("s2r_onnx_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (w, h) = (48, 32);
    let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 256) as u8).collect();
    let mut f = Frame::new(w, h, &rgb, Intrinsics::from_fov(w, h, 90.0));
    let depth = vec![5.0f32; w * h];
    f.depth = Some(&depth);

    let mut b = OnnxBackend::load(&build("good", &dir)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(b.name(), "onnx:good.onnx");
    let weights = Weights { seg: 0.0, depth: 0.5, edge: 0.0, vis: 0.5 };
    let out = b.restyle(&f, &parse("night").look, &weights, 0).unwrap();
    // The model computes (1 - rgb) * vis; vis arrives as the effective weight (0.5, sum 1).
    for (i, (&a, &o)) in rgb.iter().zip(&out.rgb).enumerate() {
        let want = ((1.0 - a as f32 / 255.0) * 0.5 * 255.0).round() as u8;
        assert!((o as i32 - want as i32).abs() <= 1, "byte {i}: {o} vs {want}");
    }

    // An input outside the contract is named at load time.
    match OnnxBackend::load(&build("badinput", &dir)) {
        Err(TransferError::Model { path, problem }) => {
            let message = problem.to_string();
            assert!(path.ends_with("badinput.onnx"));
            assert!(message.contains("'noise_level'") && message.contains("contract"), "{message}");
        }
        other => panic!("expected a model error, got {:?}", other.map(|_| ())),
    }
    // A file that is not a model, and one that does not exist.
    let junk = dir.join("junk.onnx");
    std::fs::write(&junk, b"this is not a protobuf").unwrap();
    let e = OnnxBackend::load(&junk).err().unwrap().to_string();
    assert!(e.contains("junk.onnx") && e.contains("not a model"), "{e}");
    let e = OnnxBackend::load(&dir.join("missing.onnx")).err().unwrap().to_string();
    assert!(e.contains("missing.onnx") && e.contains("no such file"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
