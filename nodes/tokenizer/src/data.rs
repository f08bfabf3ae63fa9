//! Training data: frames of one camera from bags or curated datasets, as
//! square clips in [−1, 1].

use std::path::{Path, PathBuf};

use candle_core::{Device, Result as CResult, Tensor};
use s2r_bag::BagReader;
use s2r_image::stored;
use s2r_runtime::Serialized;

use crate::TokenizerError;

/// Consecutive frames, each 3·S·S values in [−1, 1] (planar RGB).
#[derive(Clone, Debug)]
pub(crate) struct Clip {
    /// The recording's name (its bag's file name), for errors.
    pub(crate) source: String,
    pub(crate) frames: Vec<Vec<f32>>,
}

/// The bags under a path: a curated dataset's `clips/*`, a bag folder or a .mcap file.
pub(crate) fn bags_in(path: &Path) -> Vec<PathBuf> {
    let clips = path.join("clips");
    if clips.is_dir() {
        let mut v: Vec<PathBuf> =
            std::fs::read_dir(&clips).map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect()).unwrap_or_default();
        v.sort();
        return v;
    }
    vec![path.to_path_buf()]
}

/// An rgb8 frame center-cropped to a square and resampled to `size`×`size`
/// (2×2 bilinear samples per pixel), planar, in [−1, 1]: how tokenizer_node,
/// training and evaluation all see a camera image of any size. `rgb` is
/// interleaved, `w`×`h` pixels; panics if it is shorter.
pub fn square(rgb: &[u8], w: usize, h: usize, size: usize) -> Vec<f32> {
    let side = w.min(h) as f32;
    let (x0, y0) = ((w as f32 - side) / 2.0, (h as f32 - side) / 2.0);
    let step = side / size as f32;
    let at = |x: f32, y: f32, c: usize| -> f32 {
        let (x, y) = (x.clamp(0.0, w as f32 - 1.001), y.clamp(0.0, h as f32 - 1.001));
        let (xi, yi) = (x as usize, y as usize);
        let (fx, fy) = (x - xi as f32, y - yi as f32);
        let p = |xx: usize, yy: usize| rgb[(yy * w + xx) * 3 + c] as f32;
        let top = p(xi, yi) * (1.0 - fx) + p(xi + 1, yi) * fx;
        let bot = p(xi, yi + 1) * (1.0 - fx) + p(xi + 1, yi + 1) * fx;
        top * (1.0 - fy) + bot * fy
    };
    let mut out = vec![0f32; 3 * size * size];
    for c in 0..3 {
        for y in 0..size {
            for x in 0..size {
                let (sx, sy) = (x0 + (x as f32 + 0.25) * step, y0 + (y as f32 + 0.25) * step);
                let h2 = step * 0.5;
                let v = (at(sx, sy, c) + at(sx + h2, sy, c) + at(sx, sy + h2, c) + at(sx + h2, sy + h2, c)) / 4.0;
                out[(c * size + y) * size + x] = v / 127.5 - 1.0;
            }
        }
    }
    out
}

/// Clips of `len` consecutive frames of `camera` (its restyled `/<camera>/image_raw`,
/// else the simulator's `/sim/<camera>/image_raw`; either raw or its
/// `/compressed` sibling) from every bag under `paths`; bags without the camera are passed over.
pub(crate) fn load(paths: &[PathBuf], camera: &str, size: usize, len: usize) -> Result<Vec<Clip>, TokenizerError> {
    let mut clips = Vec::new();
    for p in paths {
        for bag in bags_in(p) {
            let r = BagReader::open(&bag).map_err(|source| TokenizerError::Bag { path: bag.clone(), source })?;
            let stored = stored::cameras(r.connections.iter().map(|c| (c.topic.as_str(), c.type_name.as_str())));
            let Some(cam) = stored::find(&stored, &[format!("/{camera}/image_raw"), format!("/sim/{camera}/image_raw")]) else {
                continue;
            };
            let mut frames = Vec::new();
            for m in r.messages() {
                if r.connections[m.connection].topic != cam.topic {
                    continue;
                }
                let frame = |source| TokenizerError::Frame { path: bag.clone(), source };
                let img = cam.decode(&Serialized(m.data.clone())).map_err(frame)?;
                let rgb = s2r_image::rgb8(&img, &cam.topic).map_err(frame)?;
                frames.push(square(&rgb, img.width as usize, img.height as usize, size));
            }
            let name = bag.file_name().and_then(|n| n.to_str()).unwrap_or("bag").to_string();
            for chunk in frames.chunks_exact(len) {
                clips.push(Clip { source: name.clone(), frames: chunk.to_vec() });
            }
        }
    }
    Ok(clips)
}

/// Clips as a batch [B, T, 3, S, S], cropped to `crop` at the given offsets.
pub(crate) fn batch(clips: &[&Clip], size: usize, crop: usize, offsets: &[(usize, usize)], device: &Device) -> CResult<Tensor> {
    let t = clips[0].frames.len();
    let mut v = Vec::with_capacity(clips.len() * t * 3 * crop * crop);
    for (clip, &(ox, oy)) in clips.iter().zip(offsets) {
        for f in &clip.frames {
            for c in 0..3 {
                for y in 0..crop {
                    let row = (c * size + oy + y) * size + ox;
                    v.extend_from_slice(&f[row..row + crop]);
                }
            }
        }
    }
    Tensor::from_vec(v, (clips.len(), t, 3, crop, crop), device)
}
