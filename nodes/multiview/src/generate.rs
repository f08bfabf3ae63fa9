//! The other cameras of one source frame: reproject where depth is known,
//! run the model, decode its expected codes.

use candle_core::Device;
use s2r_train::FrameCodec;

use crate::data::{encode_instant, reprojections, Encoded};
use crate::model::{Input, MultiviewNet};
use crate::reproject::Warp;
use crate::rig::Camera;
use crate::{candle, MultiviewError};

/// One generated camera.
#[derive(Clone, Debug)]
pub struct View {
    /// The camera.
    pub name: String,
    /// Its most likely codes.
    pub codes: Vec<u16>,
    /// Its decoded view (rgb8, the codec's size): the decoder's image of the expected codes.
    pub rgb: Vec<u8>,
    /// The reprojection it was conditioned on (None: nothing of the source lands in it, or no depth).
    pub warp: Option<Warp>,
}

/// A target camera's codes and view.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// Its most likely codes.
    pub codes: Vec<u16>,
    /// The decoder's image of its expected codes (rgb8, the codec's size).
    pub rgb: Vec<u8>,
}

/// The model's expected latent values for `inputs` → decoded views, one per input.
pub fn decode_inputs(
    model: &MultiviewNet,
    codec: &dyn FrameCodec,
    inputs: &[Input],
    device: &Device,
) -> Result<Vec<Decoded>, MultiviewError> {
    let batch = model.batch(inputs, device).map_err(candle("batch"))?;
    let logits = model.forward(&batch).map_err(candle("forward"))?;
    let pred = model.predict(&logits).map_err(candle("prediction"))?;
    pred.into_iter()
        .map(|p| {
            let rgb =
                codec.decode_values(&p.values).map_err(|problem| MultiviewError::Codec { path: "generated codes".into(), problem })?;
            Ok(Decoded { codes: p.codes, rgb })
        })
        .collect()
}

/// Generates every camera of `cameras` but the first (the source, whose view
/// is `source_view`, the codec's view of its frame) with `depth_view` (the
/// source's z-depth at its view's pixels) for the reprojection, or without.
pub fn generate(
    model: &MultiviewNet,
    codec: &dyn FrameCodec,
    cameras: &[Camera],
    source_view: &[u8],
    depth_view: Option<&[f32]>,
) -> Result<Vec<View>, MultiviewError> {
    let warps = reprojections(cameras, source_view, depth_view);
    let Encoded { codes, warped, cover } = encode_instant(codec, &[source_view.to_vec()], &warps)
        .map_err(|problem| MultiviewError::Codec { path: "the source frame".into(), problem })?;
    let rays: Vec<Vec<f32>> = cameras.iter().map(|c| model.config.rays(c)).collect();
    let inputs: Vec<Input> = (1..cameras.len())
        .map(|c| Input {
            source: &codes[0],
            source_rays: &rays[0],
            warped: (!warped[c].is_empty()).then(|| (warped[c].as_slice(), cover[c].as_slice())),
            target_rays: &rays[c],
        })
        .collect();
    let out = decode_inputs(model, codec, &inputs, model.device())?;
    Ok(out
        .into_iter()
        .zip(cameras[1..].iter().zip(warps.into_iter().skip(1)))
        .map(|(d, (cam, warp))| View { name: cam.name.clone(), codes: d.codes, rgb: d.rgb, warp })
        .collect())
}
