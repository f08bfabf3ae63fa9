//! The ONNX backend: a user's own image-to-image model through ONNX Runtime.
//!
//! # Tensor contract
//!
//! All tensors are float32, NCHW, batch 1, at the camera's resolution.
//! A model declares any subset of these inputs, by name:
//!
//! | input          | shape          | content                                                  |
//! |----------------|----------------|----------------------------------------------------------|
//! | `rgb`          | [1, 3, H, W]   | the flat frame, sRGB in 0..1                             |
//! | `depth`        | [1, 1, H, W]   | metres along the optical axis, 0 where nothing (sky)     |
//! | `segmentation` | [1, 1, H, W]   | class id per pixel (ScenarioInfo.class_names)            |
//! | `edges`        | [1, 1, H, W]   | Sobel gradient magnitude of the frame's luma, 0..1       |
//! | `weights`      | [1, 4]         | effective control weights: seg, depth, edge, vis         |
//! | `look`         | [1, 16]        | the prompt as numbers ([`s2r_look::Look::features`])|
//!
//! Its first output is the restyled frame, [1, 3, H, W], sRGB in 0..1
//! (clamped). Absent controls are fed as zeros with their weight 0.
//!
//! ONNX Runtime itself is loaded at run time from `ORT_DYLIB_PATH` (the
//! `onnxruntime` Python wheel ships it: `onnxruntime/capi/libonnxruntime.so.*`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::Session;
use ort::value::{Tensor, ValueType};

use crate::frame::{Frame, Weights};
use crate::{score, Backend, ModelProblem, Restyled, TransferError};
use s2r_look::{Look, LOOK_FEATURES};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Input {
    Rgb,
    Depth,
    Segmentation,
    Edges,
    Weights,
    Look,
}

const CONTRACT: &[(&str, Input, usize)] = &[
    ("rgb", Input::Rgb, 4),
    ("depth", Input::Depth, 4),
    ("segmentation", Input::Segmentation, 4),
    ("edges", Input::Edges, 4),
    ("weights", Input::Weights, 2),
    ("look", Input::Look, 2),
];

/// ONNX Runtime's library could not be loaded or started.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    /// `ORT_DYLIB_PATH` is not set.
    #[error(
        "ONNX Runtime is loaded from ORT_DYLIB_PATH, which is not set; `pip install onnxruntime` and point it at \
         …/site-packages/onnxruntime/capi/libonnxruntime.so.<version>"
    )]
    NotSet,
    /// The library at `ORT_DYLIB_PATH` does not load.
    #[error("ORT_DYLIB_PATH={}: cannot load ONNX Runtime: {reason}", .path.display())]
    Load {
        /// The library.
        path: PathBuf,
        /// What the loader said.
        reason: String,
    },
    /// The environment did not start (what ONNX Runtime said).
    #[error("ONNX Runtime environment: {0}")]
    Environment(String),
}

/// ONNX Runtime allows one environment per process.
fn environment() -> Result<ort::environment::Environment, RuntimeError> {
    static ENV: OnceLock<Result<ort::environment::Environment, RuntimeError>> = OnceLock::new();
    ENV.get_or_init(|| {
        let lib = std::env::var_os("ORT_DYLIB_PATH").ok_or(RuntimeError::NotSet)?;
        let builder = ort::init_from(&lib).map_err(|e| RuntimeError::Load { path: lib.clone().into(), reason: e.to_string() })?;
        builder.with_name("sim2real").build().map_err(|e| RuntimeError::Environment(e.to_string()))
    })
    .clone()
}

/// A loaded model that follows the [tensor contract](crate::onnx). Runs on the CPU
/// with 2 intra-op threads; ignores the seed (a model is as deterministic
/// as ONNX Runtime makes it).
pub struct OnnxBackend {
    session: Session,
    path: PathBuf,
    inputs: Vec<(String, Input)>,
}

impl OnnxBackend {
    /// Loads a model and checks its inputs and first output against the
    /// tensor contract. Fails with [`TransferError::Model`] naming the file:
    /// missing, ONNX Runtime not loadable (`ORT_DYLIB_PATH`), not a model, or
    /// an input or output the contract does not allow.
    pub fn load(path: &Path) -> Result<OnnxBackend, TransferError> {
        let err = |problem: ModelProblem| TransferError::Model { path: path.display().to_string(), problem };
        if !path.is_file() {
            return Err(err(ModelProblem::Missing));
        }
        let env = environment().map_err(|e| err(e.into()))?;
        let session = Session::builder(&env)
            .and_then(|b| b.with_intra_threads(2).map_err(|e| e.into()))
            .and_then(|mut b| b.commit_from_file(path))
            .map_err(|e| err(ModelProblem::NotAModel(e.to_string())))?;
        let mut inputs = Vec::new();
        for o in session.inputs() {
            let Some((_, kind, rank)) = CONTRACT.iter().find(|(n, _, _)| *n == o.name()) else {
                let names: Vec<&str> = CONTRACT.iter().map(|c| c.0).collect();
                return Err(err(ModelProblem::UnknownInput { name: o.name().into(), contract: names.join(", ") }));
            };
            match o.dtype() {
                ValueType::Tensor { ty: ort::value::TensorElementType::Float32, shape, .. } if shape.len() == *rank => {}
                t => return Err(err(ModelProblem::InputType { name: o.name().into(), found: format!("{t:?}"), rank: *rank })),
            }
            inputs.push((o.name().to_string(), *kind));
        }
        let Some(out) = session.outputs().first() else { return Err(err(ModelProblem::NoOutput)) };
        match out.dtype() {
            ValueType::Tensor { ty: ort::value::TensorElementType::Float32, shape, .. }
                if shape.len() == 4 && (shape[1] == 3 || shape[1] < 0) => {}
            t => return Err(err(ModelProblem::OutputType { name: out.name().into(), found: format!("{t:?}") })),
        }
        Ok(OnnxBackend { session, path: path.to_path_buf(), inputs })
    }
}

impl Backend for OnnxBackend {
    fn name(&self) -> String {
        format!("onnx:{}", self.path.file_name().and_then(|n| n.to_str()).unwrap_or("model"))
    }

    fn restyle(&mut self, f: &Frame, look: &Look, weights: &Weights, _seed: u64) -> Result<Restyled, TransferError> {
        f.validate()?;
        let t0 = std::time::Instant::now();
        let (w, h) = (f.width, f.height);
        let n = w * h;
        let eff = weights.effective(f.controls());
        let err = |stage: String, reason: String| TransferError::Model {
            path: self.path.display().to_string(),
            problem: ModelProblem::Run { stage, reason },
        };
        let plane = |c: usize| -> Vec<f32> { (0..n).map(|i| f.rgb[i * 3 + c] as f32 / 255.0).collect() };
        let image = [1i64, 1, h as i64, w as i64];
        let mut values: Vec<(String, ort::value::DynValue)> = Vec::new();
        for (name, kind) in &self.inputs {
            let tensor = match kind {
                Input::Rgb => {
                    let mut v = plane(0);
                    v.extend(plane(1));
                    v.extend(plane(2));
                    Tensor::from_array(([1i64, 3, h as i64, w as i64], v))
                }
                Input::Depth => {
                    let v = f
                        .depth
                        .map(|d| d.iter().map(|&z| if z.is_finite() && z > 0.0 { z } else { 0.0 }).collect())
                        .unwrap_or_else(|| vec![0.0; n]);
                    Tensor::from_array((image, v))
                }
                Input::Segmentation => Tensor::from_array((
                    image,
                    f.segmentation.map(|s| s.iter().map(|&c| c as f32).collect()).unwrap_or_else(|| vec![0.0; n]),
                )),
                Input::Edges => Tensor::from_array((
                    image,
                    score::gradient(&score::luma(f.rgb), w, h).into_iter().map(|g| g.min(1.0)).collect::<Vec<f32>>(),
                )),
                Input::Weights => Tensor::from_array(([1i64, 4], eff.as_array().to_vec())),
                Input::Look => Tensor::from_array(([1i64, LOOK_FEATURES as i64], look.features().to_vec())),
            }
            .map_err(|e| err(format!("input '{name}'"), e.to_string()))?;
            values.push((name.clone(), tensor.into_dyn()));
        }
        let outputs = self.session.run(values).map_err(|e| err("inference failed".into(), e.to_string()))?;
        let (shape, data) = outputs[0].try_extract_tensor::<f32>().map_err(|e| err("output".into(), e.to_string()))?;
        if shape.len() != 4 || shape[0] != 1 || shape[1] != 3 || shape[2] != h as i64 || shape[3] != w as i64 {
            return Err(TransferError::Model {
                path: self.path.display().to_string(),
                problem: ModelProblem::OutputShape { shape: shape.to_vec(), height: h, width: w },
            });
        }
        let mut rgb = vec![0u8; n * 3];
        for c in 0..3 {
            for i in 0..n {
                rgb[i * 3 + c] = (data[c * n + i].clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
        Ok(Restyled { rgb, width: w, height: h, weights: eff, stages: vec![("onnx", t0.elapsed().as_secs_f64() * 1e3)], extinction: 0.0 })
    }
}
