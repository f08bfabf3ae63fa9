//! Checkpoints: one safetensors file with the weights by name, the
//! optimiser's moments (`optim.m.*`, `optim.v.*`, `optim.t`) and the model's
//! record (JSON) in the file's metadata under a key of the model's own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use crate::{AdamW, TrainError};

/// A checkpoint read back.
pub struct Checkpoint {
    /// The model's record (JSON), as saved.
    pub record: String,
    /// Every tensor by name, on the CPU.
    pub tensors: HashMap<String, Tensor>,
    /// The file.
    pub path: PathBuf,
}

/// Writes the variables of `varmap`, the optimiser's state and `record`
/// under `key` to `path` atomically (a temporary file renamed over it: an
/// interrupted save leaves the last one).
pub fn save(path: &Path, varmap: &VarMap, opt: Option<&AdamW>, key: &str, record: &str) -> Result<(), TrainError> {
    let candle = |e: candle_core::Error| TrainError::Candle { context: format!("saving {}", path.display()), source: e };
    let mut tensors: Vec<(String, Tensor)> = {
        let data = varmap.data().lock().expect("varmap lock");
        data.iter()
            .map(|(k, v)| Ok((k.clone(), v.as_tensor().to_device(&Device::Cpu)?)))
            .collect::<candle_core::Result<_>>()
            .map_err(candle)?
    };
    if let Some(o) = opt {
        for (name, _, m, v) in &o.vars {
            tensors.push((format!("optim.m.{name}"), m.to_device(&Device::Cpu).map_err(candle)?));
            tensors.push((format!("optim.v.{name}"), v.to_device(&Device::Cpu).map_err(candle)?));
        }
        tensors.push(("optim.t".into(), Tensor::new(&[o.t as u32], &Device::Cpu).map_err(candle)?));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let info: HashMap<String, String> = [(key.to_string(), record.to_string())].into();
    let tmp = path.with_extension("safetensors.partial");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| TrainError::Io { path: dir.to_path_buf(), source })?;
    }
    safetensors::serialize_to_file(tensors.iter().map(|(k, v)| (k.as_str(), v)), Some(info), &tmp)
        .map_err(|e| TrainError::Bad { path: tmp.clone(), problem: format!("cannot write: {e}") })?;
    std::fs::rename(&tmp, path).map_err(|source| TrainError::Io { path: path.to_path_buf(), source })
}

/// Reads `path`, refusing a file without a record under `key` (`what` names
/// the model in the message: "a perception checkpoint").
pub fn read(path: &Path, key: &str, what: &str) -> Result<Checkpoint, TrainError> {
    if !path.is_file() {
        return Err(TrainError::Missing { path: path.to_path_buf() });
    }
    let bytes = std::fs::read(path).map_err(|source| TrainError::Io { path: path.to_path_buf(), source })?;
    let bad = |problem: String| TrainError::Bad { path: path.to_path_buf(), problem };
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    let record = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(key))
        .ok_or_else(|| bad(format!("a safetensors file without the `{key}` record: not {what}")))?
        .clone();
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| bad(e.to_string()))?;
    Ok(Checkpoint { record, tensors, path: path.to_path_buf() })
}

/// Copies a checkpoint's weights (not the optimiser's state) into `varmap`;
/// a variable the checkpoint lacks is an error unless `may_lack` names it
/// (it then keeps its value: new adapters over a base, say).
pub fn load_weights(c: &Checkpoint, varmap: &VarMap, may_lack: impl Fn(&str) -> bool) -> Result<(), TrainError> {
    let bad = |problem: String| TrainError::Bad { path: c.path.clone(), problem };
    let data = varmap.data().lock().expect("varmap lock");
    for (name, var) in data.iter() {
        let Some(w) = c.tensors.get(name) else {
            if may_lack(name) {
                continue;
            }
            return Err(bad(format!("no tensor `{name}`")));
        };
        var.set(&w.to_device(var.device()).map_err(|e| bad(e.to_string()))?).map_err(|e| bad(format!("`{name}`: {e}")))?;
    }
    Ok(())
}

/// Copies a checkpoint's weights into `varmap` and its optimiser state into `opt` (to resume training).
pub fn restore(c: &Checkpoint, varmap: &VarMap, opt: &mut AdamW) -> Result<(), TrainError> {
    let bad = |problem: String| TrainError::Bad { path: c.path.clone(), problem };
    load_weights(c, varmap, |_| false)?;
    for (name, var, m, v) in &mut opt.vars {
        if let (Some(a), Some(b)) = (c.tensors.get(&format!("optim.m.{name}")), c.tensors.get(&format!("optim.v.{name}"))) {
            *m = a.to_device(var.device()).map_err(|e| bad(e.to_string()))?;
            *v = b.to_device(var.device()).map_err(|e| bad(e.to_string()))?;
        }
    }
    if let Some(s) = c.tensors.get("optim.t") {
        opt.t = s.to_vec1::<u32>().map_err(|e| bad(e.to_string()))?[0] as usize;
    }
    Ok(())
}
