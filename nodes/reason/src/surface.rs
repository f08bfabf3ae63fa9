//! The surface predictor: which road surface the camera sees (dry, wet,
//! snow, ice) and so its friction, learned from frames of the data factory's
//! sweeps whose road friction follows the look's surface
//! (`friction_from_look`): the label is the friction the simulator drove
//! on (`/scenario`'s `friction`), never the prompt.
//!
//! The network reads the road ahead (rows 45–85 % of the frame: below the
//! horizon, above a car's bonnet), resized
//! to 192×96, through four 2×2 patch stages ([`s2r_train::PatchStages`], as
//! the policy's network), pools the
//! feature map by mean and max (a surface is a texture, wherever it is) and
//! classifies. Colour, gain, haze, noise and mirror augmentation keep it
//! from keying on one look's exact tint and contrast.

use std::path::{Path, PathBuf};

use candle_core::{Device, Module, Tensor, D};
use candle_nn::{linear, Linear, VarBuilder};
use rand::Rng;
use s2r_bag::BagReader;
use s2r_image::Rgb;
use s2r_look::Surface;
use s2r_runtime::Serialized;
use s2r_train::PatchStages;
use sim2real_msgs::sensor_msgs::msg::Image;
use sim2real_msgs::sim2real_msgs::msg::ScenarioInfo;

use crate::ReasonError;

/// The classes, in the network's output order.
pub const CLASSES: [&str; 4] = ["dry", "wet", "snow", "ice"];
/// Each class's typical friction: the data factory's ([`Surface::friction`]).
pub const CLASS_MU: [f32; 4] =
    [Surface::Dry.friction() as f32, Surface::Wet.friction() as f32, Surface::Snowy.friction() as f32, Surface::Icy.friction() as f32];
/// Each class's name in a sentence.
pub const CLASS_PHRASES: [&str; 4] = ["dry asphalt", "a wet road", "a snowy road", "ice"];
/// Input width and height.
pub const INPUT: (usize, usize) = (192, 96);
/// The band of the frame's rows it reads (fractions of its height from the top).
pub const ROWS: [f32; 2] = [0.45, 0.85];
const CHANNELS: [usize; 4] = [16, 32, 64, 96];

/// The class of a friction coefficient: thresholds (0.65, 0.4, 0.2) between the
/// classes' frictions, so that each class's ± 10 % stays inside it.
pub fn class_of(mu: f32) -> usize {
    match mu {
        m if m >= 0.65 => 0,
        m if m >= 0.4 => 1,
        m if m >= 0.2 => 2,
        _ => 3,
    }
}

/// One labelled frame.
#[derive(Clone, Debug)]
pub struct Sample {
    /// RGB, [`INPUT`] in size, rows [`ROWS`] of the frame.
    pub image: Vec<u8>,
    /// Its class ([`CLASSES`]).
    pub class: usize,
    /// The friction the simulator drove on.
    pub mu: f32,
    /// The episode's seed.
    pub seed: u64,
}

/// A camera frame as the network reads it: rows [`ROWS`] resized to [`INPUT`].
pub fn input(img: &Image, topic: &str) -> Result<Vec<u8>, ReasonError> {
    band(img, topic, ROWS, INPUT)
}

/// Rows `rows` (fractions of the height from the top) of a frame, resized to `size`, as RGB bytes.
pub(crate) fn band(img: &Image, topic: &str, rows: [f32; 2], size: (usize, usize)) -> Result<Vec<u8>, ReasonError> {
    let bad = |problem: String| ReasonError::Frame { topic: topic.into(), problem };
    let data = s2r_image::rgb8(img, topic).map_err(|e| bad(e.to_string()))?;
    let (width, height) = (img.width as usize, img.height as usize);
    let (y0, y1) = ((rows[0] * height as f32).round() as usize, ((rows[1] * height as f32).round() as usize).min(height));
    if width < 8 || y1 < y0 + 8 {
        return Err(bad(format!("a {width}×{height} frame is too small")));
    }
    let rgb = Rgb { width, height: y1 - y0, data: data[y0 * width * 3..y1 * width * 3].to_vec() };
    Ok(rgb.resize(size.0, size.1).data)
}

/// The episode bags of datasets (`s2r generate` folders: `episodes/*/*.mcap`) or bag folders.
fn bags(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, ReasonError> {
    let mut out = Vec::new();
    for dir in dirs {
        let io = |source| ReasonError::Io { path: dir.clone(), source };
        let episodes = dir.join("episodes");
        let folders: Vec<PathBuf> = if episodes.is_dir() {
            let mut f: Vec<PathBuf> =
                std::fs::read_dir(&episodes).map_err(io)?.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
            f.sort();
            f
        } else {
            vec![dir.clone()]
        };
        let before = out.len();
        for f in folders {
            let mut m: Vec<PathBuf> = std::fs::read_dir(&f)
                .map_err(|source| ReasonError::Io { path: f.clone(), source })?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "mcap"))
                .collect();
            m.sort();
            out.extend(m);
        }
        if out.len() == before {
            return Err(ReasonError::Data { path: dir.clone(), problem: "no MCAP bags in it (nor under episodes/)".into() });
        }
    }
    Ok(out)
}

/// Reads every `every`-th frame of `topic` from the bags of `dirs`, each
/// labelled with its episode's `/scenario` friction.
pub fn read(dirs: &[PathBuf], topic: &str, every: usize) -> Result<Vec<Sample>, ReasonError> {
    let mut out = Vec::new();
    for bag in bags(dirs)? {
        let bad = |problem: String| ReasonError::Data { path: bag.clone(), problem };
        let r = BagReader::open(&bag).map_err(|e| bad(e.to_string()))?;
        let mut info: Option<ScenarioInfo> = None;
        let mut frames = Vec::new();
        for m in r.messages() {
            let t = r.connections[m.connection].topic.as_str();
            if t == "/scenario" {
                info = Some(Serialized(m.data.clone()).decode().map_err(|e| bad(format!("/scenario: {e}")))?);
            } else if t == topic {
                frames.push(m.data.clone());
            }
        }
        let info = info.ok_or_else(|| bad("no /scenario message: the road's friction is unknown".into()))?;
        if frames.is_empty() {
            return Err(bad(format!("no frames on {topic}")));
        }
        let mu = info.friction as f32;
        for data in frames.iter().step_by(every.max(1)) {
            let img: Image = Serialized(data.clone()).decode().map_err(|e| bad(format!("{topic}: {e}")))?;
            out.push(Sample { image: input(&img, topic)?, class: class_of(mu), mu, seed: info.seed });
        }
    }
    Ok(out)
}

/// The classifier.
pub struct SurfaceNet {
    pub(crate) stages: PatchStages,
    pub(crate) fc1: Linear,
    pub(crate) fc2: Linear,
}

impl SurfaceNet {
    /// The network over `vb`'s weights.
    pub fn new(vb: VarBuilder) -> candle_core::Result<SurfaceNet> {
        let stages = PatchStages::new(3, &CHANNELS, &vb)?;
        Ok(SurfaceNet { stages, fc1: linear(2 * CHANNELS[3], 64, vb.pp("fc1"))?, fc2: linear(64, CLASSES.len(), vb.pp("fc2"))? })
    }

    /// The device its weights are on.
    pub fn device(&self) -> &Device {
        self.fc2.weight().device()
    }

    /// Images `[B, H, W, 3]` (0 to 1) → logits `[B, classes]`.
    pub fn forward(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        let x = self.stages.forward(&(images - 0.5)?)?.flatten(1, 2)?;
        let pooled = Tensor::cat(&[x.mean(1)?, x.max(1)?], D::Minus1)?;
        self.fc2.forward(&self.fc1.forward(&pooled)?.relu()?)
    }

    /// The most likely class of each network input and its probability.
    pub fn classify(&self, images: &[&[u8]], device: &Device) -> Result<Vec<(usize, f32)>, ReasonError> {
        let p = self.probabilities(images, device)?;
        Ok(p.iter().map(|p| most_likely(p)).collect())
    }

    /// Class probabilities of network inputs (RGB bytes of [`INPUT`] size).
    pub fn probabilities(&self, images: &[&[u8]], device: &Device) -> Result<Vec<[f32; 4]>, ReasonError> {
        let x = batch(images, INPUT, device, None, false).map_err(crate::candle("a surface batch"))?;
        let p = candle_nn::ops::softmax(&self.forward(&x).map_err(crate::candle("the surface network"))?, D::Minus1)
            .and_then(|p| p.to_vec2::<f32>())
            .map_err(crate::candle("the surface probabilities"))?;
        Ok(p.into_iter().map(|r| [r[0], r[1], r[2], r[3]]).collect())
    }
}

/// The most likely class of a probability vector over [`CLASSES`], and its probability.
pub(crate) fn most_likely(p: &[f32]) -> (usize, f32) {
    (0..CLASSES.len()).map(|k| (k, p[k])).max_by(|a, b| a.1.total_cmp(&b.1)).expect("four classes")
}

/// Images of `size` (width, height) as a `[B, H, W, 3]` tensor, augmented
/// when `rng` is given: gain, bias, a colour cast, haze (a blend towards a
/// light grey of random tint: mist, fog, a dirty lens), a mirror per image
/// where `mirror` allows it, and pixel noise.
pub(crate) fn batch(
    images: &[&[u8]],
    size: (usize, usize),
    device: &Device,
    rng: Option<&mut rand::rngs::StdRng>,
    mirror: bool,
) -> candle_core::Result<Tensor> {
    batch_of(&[images], size, device, rng, mirror).map(|mut v| v.remove(0))
}

/// Like [`batch`] for several views of each item (`sets[k][b]`: view k of
/// item b, such as a frame and the one before it): every view of an item
/// gets the same photometric augmentation (its pixel noise drawn anew), so
/// that what differs between them is the scene.
pub(crate) fn batch_of(
    sets: &[&[&[u8]]],
    size: (usize, usize),
    device: &Device,
    mut rng: Option<&mut rand::rngs::StdRng>,
    mirror: bool,
) -> candle_core::Result<Vec<Tensor>> {
    let (w, h) = size;
    let n = sets.first().map_or(0, |s| s.len());
    let mut outs: Vec<Vec<f32>> = sets.iter().map(|_| vec![0f32; n * w * h * 3]).collect();
    for b in 0..n {
        let (gain, bias, cast, haze, veil, noise, mirror) = match rng.as_deref_mut() {
            Some(r) => {
                let grey = r.random_range(0.5..0.95f32);
                (
                    r.random_range(0.7..1.4f32),
                    r.random_range(-0.06..0.06f32),
                    [r.random_range(0.88..1.12f32), r.random_range(0.88..1.12f32), r.random_range(0.88..1.12f32)],
                    if r.random_bool(0.4) { r.random_range(0.0..0.45f32) } else { 0.0 },
                    [grey * r.random_range(0.93..1.07f32), grey, grey * r.random_range(0.93..1.07f32)],
                    r.random_range(0.0..0.03f32),
                    mirror && r.random_bool(0.5),
                )
            }
            None => (1.0, 0.0, [1.0; 3], 0.0, [0.0; 3], 0.0, false),
        };
        let mut x = rng.as_deref_mut().map_or(1u32, |r| r.random::<u32>() | 1);
        for (set, out) in sets.iter().zip(outs.iter_mut()) {
            let img = set[b];
            for y in 0..h {
                for px in 0..w {
                    let sx = if mirror { w - 1 - px } else { px };
                    for c in 0..3 {
                        let mut v = img[(y * w + sx) * 3 + c] as f32 / 255.0 * gain * cast[c] + bias;
                        v = v * (1.0 - haze) + veil[c] * haze;
                        if noise > 0.0 {
                            x ^= x << 13;
                            x ^= x >> 17;
                            x ^= x << 5;
                            v += noise * ((x >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0);
                        }
                        out[((b * h + y) * w + px) * 3 + c] = v.clamp(0.0, 1.0);
                    }
                }
            }
        }
    }
    outs.into_iter().map(|o| Tensor::from_vec(o, (n, h, w, 3), device)).collect()
}

pub use crate::fit::FitOptions;

/// A trained classifier with its variables (to save).
pub type Trained = crate::fit::Trained<SurfaceNet>;

/// Trains a fresh classifier on `samples`; `progress` gets (step, loss).
pub fn fit(samples: &[Sample], opts: &FitOptions, progress: &mut dyn FnMut(usize, f32)) -> Result<Trained, ReasonError> {
    let missing: Vec<&str> = (0..CLASSES.len()).filter(|k| !samples.iter().any(|s| s.class == *k)).map(|k| CLASSES[k]).collect();
    if !missing.is_empty() {
        return Err(ReasonError::Records {
            what: "surface",
            problem: format!("no frames of {} in the data (a sweep with `friction_from_look: true` and every surface)", missing.join(", ")),
        });
    }
    let device = opts.device.clone();
    // Classes drawn evenly, whatever their share of the frames.
    let by_class: Vec<Vec<&Sample>> = (0..CLASSES.len()).map(|k| samples.iter().filter(|s| s.class == k).collect()).collect();
    let step = |net: &SurfaceNet, rng: &mut rand::rngs::StdRng| {
        let picks: Vec<&Sample> = (0..opts.batch)
            .map(|i| {
                let pool = &by_class[i % CLASSES.len()];
                pool[rng.random_range(0..pool.len())]
            })
            .collect();
        let images: Vec<&[u8]> = picks.iter().map(|s| s.image.as_slice()).collect();
        let labels: Vec<u32> = picks.iter().map(|s| s.class as u32).collect();
        let x = batch(&images, INPUT, &device, Some(rng), true).map_err(crate::candle("a surface batch"))?;
        let y = Tensor::new(labels.as_slice(), &device).map_err(crate::candle("labels"))?;
        net.forward(&x).and_then(|l| candle_nn::loss::cross_entropy(&l, &y)).map_err(crate::candle("the surface loss"))
    };
    crate::fit::train("surface", opts, SurfaceNet::new, step, progress)
}

/// Accuracy and confusion (`[truth][predicted]` counts) of `net` on `samples`.
pub fn evaluate(net: &SurfaceNet, samples: &[Sample]) -> Result<(f32, [[usize; 4]; 4]), ReasonError> {
    let mut confusion = [[0usize; 4]; 4];
    for chunk in samples.chunks(64) {
        let images: Vec<&[u8]> = chunk.iter().map(|s| s.image.as_slice()).collect();
        for (s, (k, _)) in chunk.iter().zip(net.classify(&images, net.device())?) {
            confusion[s.class][k] += 1;
        }
    }
    let right: usize = (0..4).map(|k| confusion[k][k]).sum();
    Ok((right as f32 / samples.len().max(1) as f32, confusion))
}

/// The metadata key of the weights file's record.
pub const META_KEY: &str = "sim2real.surface";

/// Writes the weights (safetensors, with `record` under [`META_KEY`]).
pub fn save(path: &Path, t: &Trained, record: &str) -> Result<(), ReasonError> {
    crate::fit::save(path, &t.varmap, META_KEY, record)
}

/// Reads a weights file.
pub fn load(path: &Path) -> Result<SurfaceNet, ReasonError> {
    load_on(path, &Device::Cpu)
}

/// Reads a surface predictor's weights onto `device`.
pub fn load_on(path: &Path, device: &Device) -> Result<SurfaceNet, ReasonError> {
    crate::fit::load(path, (META_KEY, "a surface predictor", "the surface network"), device, SurfaceNet::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames whose class shows in their brightness and blue: learnable.
    fn toy(n: usize) -> Vec<Sample> {
        (0..n)
            .map(|i| {
                let class = i % 4;
                let (v, blue) = ([60u8, 40, 200, 170][class], [60u8, 90, 210, 240][class]);
                let mut image = Vec::with_capacity(INPUT.0 * INPUT.1 * 3);
                for p in 0..INPUT.0 * INPUT.1 {
                    let n = ((p * 7 + i * 13) % 23) as u8;
                    image.extend([v.saturating_add(n), v.saturating_add(n), blue.saturating_add(n)]);
                }
                Sample { image, class, mu: CLASS_MU[class], seed: i as u64 }
            })
            .collect()
    }

    #[test]
    fn classes_follow_the_friction_thresholds() {
        assert_eq!(CLASS_MU.map(class_of), [0, 1, 2, 3]);
        assert_eq!(class_of(0.72), 0);
        assert_eq!(class_of(0.11), 3);
    }

    #[test]
    fn training_learns_a_separable_set_and_saves_and_loads() {
        let data = toy(32);
        let t = fit(&data, &FitOptions { steps: 60, batch: 16, lr: 3e-3, seed: 1, ..Default::default() }, &mut |_, _| {}).unwrap();
        let (acc, confusion) = evaluate(&t.net, &data).unwrap();
        assert!(acc >= 0.9, "accuracy {acc}, confusion {confusion:?}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("surface.safetensors");
        save(&path, &t, "{}").unwrap();
        let back = load(&path).unwrap();
        assert_eq!(evaluate(&back, &data).unwrap().0, acc);
        // A class missing from the data is named.
        let only_dry: Vec<Sample> = data.iter().filter(|s| s.class == 0).cloned().collect();
        let e = fit(&only_dry, &FitOptions::default(), &mut |_, _| {}).err().unwrap().to_string();
        assert!(e.contains("wet, snow, ice"), "{e}");
    }
}
