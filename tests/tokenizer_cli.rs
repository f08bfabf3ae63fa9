//! `s2r eval tokenizer` with the shipped checkpoints beside ffmpeg's x264 and
//! JPEG (Debian ffmpeg, installed by tests/run), and `s2r train tokenizer`
//! starting, checkpointing and resuming — the shipped (GPU-trained)
//! checkpoint included, whose architecture comes from the file.

use std::path::Path;
use std::process::Command;

fn s2r(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_s2r")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The cells of the table row starting with `label`.
fn row<'a>(out: &'a str, label: &str) -> Vec<&'a str> {
    let line = out.lines().find(|l| l.starts_with(&format!("| {label}"))).unwrap_or_else(|| panic!("no row '{label}' in:\n{out}"));
    line.trim_matches('|').split('|').map(str::trim).collect()
}

fn num(cell: &str) -> f64 {
    cell.parse().unwrap_or_else(|_| panic!("'{cell}' is not a number"))
}

#[test]
fn eval_compares_the_shipped_tokenizers_with_x264_and_jpeg() {
    let tmp = tempfile::tempdir().unwrap();
    let sheet = tmp.path().join("sheet.png");
    let (ok, out, err) = s2r(&["eval", "tokenizer", "bags/icy_night_crossing", "--sheet", sheet.to_str().unwrap()]);
    assert!(ok, "{err}\n{out}");
    // The sheet: rows input, cv4x8x8, dv8x16x16; four 256x256 frames each, 4-pixel gaps.
    let r = s2r_image::read_png(&sheet).unwrap();
    assert_eq!((r.width, r.height), (4 * 256 + 5 * 4, 3 * 256 + 4 * 4));
    // Continuous 4x8x8: 16 channels per 8x8x4 block as 16-bit values = 1.6 bits per pixel.
    let cv = row(&out, "cv4x8x8 (16-bit latents)");
    assert!((num(cv[1]) - 1.6).abs() < 1e-3, "{cv:?}");
    assert!(num(cv[3]) > 32.0, "continuous PSNR {}", cv[3]);
    assert!(num(cv[4]) > 0.9 && num(cv[4]) <= 1.0, "SSIM {}", cv[4]);
    // Discrete 8x16x16: two latent frames of 16x16 16-bit codes per 9 frames of 256x256.
    let dv = row(&out, "dv8x16x16 (16-bit codes)");
    let bpp = 2.0 * 256.0 * 16.0 / (9.0 * 65536.0);
    assert!((num(dv[1]) - bpp).abs() < 1e-4, "{dv:?}");
    assert!(num(dv[3]) > 25.0, "discrete PSNR {}", dv[3]);
    let coded = row(&out, "dv8x16x16 (codes + zstd -19)");
    assert!(num(coded[1]) < num(dv[1]), "entropy coding saves bits: {coded:?}");
    // The baselines: x264 within each budget unless it says it cannot get there; JPEG likewise.
    let xs: Vec<&str> = out.lines().filter(|l| l.starts_with("| x264 crf")).collect();
    let js: Vec<&str> = out.lines().filter(|l| l.starts_with("| JPEG q:v")).collect();
    assert_eq!((xs.len(), js.len()), (3, 2), "{out}");
    let budgets = [num(cv[1]), num(dv[1]), num(coded[1])];
    for (x, budget) in xs.iter().zip(budgets) {
        let cells: Vec<&str> = x.trim_matches('|').split('|').map(str::trim).collect();
        assert!(num(cells[1]) <= budget + 1e-9 || cells[0].contains("coarsest"), "{x} over {budget}");
        assert!(num(cells[3]) > 20.0, "{x}");
    }
    assert!(out.contains("dv8x16x16: ") && out.contains("x264 at"), "{out}");
}

#[test]
fn eval_names_a_missing_checkpoint() {
    let (ok, _, err) = s2r(&["eval", "tokenizer", "bags/icy_night_crossing", "--checkpoints", "/nowhere/x.safetensors", "--no-baselines"]);
    assert!(!ok);
    assert!(err.contains("/nowhere/x.safetensors") && err.contains("s2r train tokenizer"), "{err}");
}

#[test]
fn training_checkpoints_and_resumes_the_shipped_checkpoint_too() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("tiny.safetensors");
    let ck_s = ck.to_str().unwrap();
    let data = ["bags/icy_night_crossing", "bags/cup_near_edge"];
    let common = ["--size", "64", "--crop", "32", "--batch", "1"];
    let mut args = vec!["train", "tokenizer"];
    args.extend(data);
    args.extend(["--width", "8", "--blocks", "1", "--steps", "3", "--eval-every", "3", "-o", ck_s]);
    args.extend(common);
    let (ok, _, err) = s2r(&args);
    assert!(ok, "{err}");
    assert!(err.contains("step 3: held-out PSNR") && ck.is_file(), "{err}");
    // Resume: from step 3 to 5, the architecture from the file (not the default width 64).
    let mut args = vec!["train", "tokenizer"];
    args.extend(data);
    args.extend(["--resume", "--steps", "5", "--eval-every", "5", "-o", ck_s]);
    args.extend(common);
    let (ok, _, err) = s2r(&args);
    assert!(ok, "{err}");
    assert!(err.contains("from step 3") && err.contains("step 5: held-out PSNR"), "{err}");
    // The shipped checkpoint (trained with tools/tokenizer_gpu.py) resumes on the CPU.
    let shipped = tmp.path().join("cv.safetensors");
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tokenizer/cv4x8x8.safetensors"), &shipped).unwrap();
    let t = candle_core::safetensors::load(&shipped, &candle_core::Device::Cpu).unwrap();
    let step = t["trainer.step"].to_vec1::<u32>().unwrap()[0] as usize;
    let (steps, every) = ((step + 1).to_string(), (step + 1).to_string());
    let mut args = vec!["train", "tokenizer"];
    args.extend(data);
    args.extend(["--resume", "--steps", &steps, "--eval-every", &every, "-o", shipped.to_str().unwrap()]);
    args.extend(["--size", "256", "--crop", "64", "--batch", "1"]);
    let (ok, _, err) = s2r(&args);
    assert!(ok, "{err}");
    let psnr: f64 = err.split("held-out PSNR ").nth(1).and_then(|s| s.split(' ').next()).unwrap().parse().unwrap();
    assert!(psnr > 28.0, "the resumed model is the trained one: {psnr} dB\n{err}");
    // Resuming something that is not a checkpoint names it.
    std::fs::write(tmp.path().join("junk.safetensors"), b"junk").unwrap();
    let mut args = vec!["train", "tokenizer"];
    args.extend(data);
    let junk = tmp.path().join("junk.safetensors");
    args.extend(["--resume", "-o", junk.to_str().unwrap()]);
    let (ok, _, err) = s2r(&args);
    assert!(!ok && err.contains("junk.safetensors"), "{err}");
}

#[test]
fn the_shipped_tokenizer_exports_to_onnx() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("dv");
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/models/tokenizer/dv8x16x16.safetensors");
    let (ok, _, err) = s2r(&["export", "tokenizer", model, "--onnx", prefix.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(err.contains("latent [1, 6, 16, 16] and digits int64 [1, 6, 16, 16]"), "{err}");
    // ONNX Runtime (the Python wheel) encodes a grey frame and decodes it
    // back: digits within the levels, a frame of the size asked for.
    let script = "import sys, numpy as np, onnxruntime as ort\n\
e = ort.InferenceSession(sys.argv[1] + '.encoder.onnx')\n\
d = ort.InferenceSession(sys.argv[1] + '.decoder.onnx')\n\
latent, digits = e.run(None, {'frame': np.zeros((1, 3, 256, 256), np.float32)})\n\
frame, = d.run(None, {'latent': latent})\n\
levels = np.array([8, 8, 8, 5, 5, 5]).reshape(1, 6, 1, 1)\n\
print(list(frame.shape), bool(((digits >= 0) & (digits < levels)).all()), bool(np.isfinite(frame).all()))\n";
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let r = Command::new(py).args(["-c", script, prefix.to_str().unwrap()]).output().unwrap();
    let said = String::from_utf8_lossy(&r.stdout);
    assert_eq!(said.trim(), "[1, 3, 256, 256] True True", "{}", String::from_utf8_lossy(&r.stderr));
    let (ok, _, err) = s2r(&["export", "tokenizer", model, "--onnx", prefix.to_str().unwrap(), "--size", "100"]);
    assert!(!ok && err.contains("multiple of 16"), "{err}");
    let (ok, _, err) = s2r(&["export", "tokenizer", "/nonexistent/t.safetensors", "--onnx", prefix.to_str().unwrap()]);
    assert!(!ok && err.contains("/nonexistent/t.safetensors"), "{err}");
}
