//! Before/after contact sheets of a recorded simulation: evenly spaced frames
//! of one camera, restyled for each of several prompts, scored for label
//! preservation, as one PNG with a legend beside it (what `s2r transfer` writes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use s2r_bag::BagReader;
use s2r_image::stored::{self, StoredCamera};
use s2r_image::{grid, write_png, Rgb};
use s2r_runtime::{stamp_ns, Serialized};
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image};
use sim2real_msgs::sim2real_msgs::msg::ScenarioInfo;
use sim2real_msgs::tf2_msgs::msg::TFMessage;
use sim2real_msgs::vision_msgs::msg::Detection3DArray;

use crate::builtin::{self, Device, Preset};
use crate::input::{decode, CameraMsgs, Scene, Topics};
use crate::onnx::OnnxBackend;
use crate::{parse, score, Backend, TransferError, Weights};

/// The prompts of a sheet when none are given.
pub const DEFAULT_PROMPTS: &[&str] = &[
    "icy road, night, wet reflections, headlight glare, light snowfall",
    "heavy rain, dusk, street lights",
    "dense fog, morning",
    "snowy road, overcast, light snowfall",
    "low sun, dashcam, lens dirt",
];

/// The backend a sheet is restyled with.
#[derive(Clone, Debug, PartialEq)]
pub enum SheetBackend {
    /// The built-in backend with a preset, on a device.
    Builtin(Preset, Device),
    /// An ONNX model (loaded once the recording has been looked at).
    Onnx(PathBuf),
}

/// What [`contact_sheet`] restyles. The defaults are `s2r transfer`'s.
#[derive(Clone, Debug)]
pub struct SheetOptions {
    /// A prompt per row; [`DEFAULT_PROMPTS`] when empty.
    pub prompts: Vec<String>,
    /// The camera (`…/<camera>/image_raw`); the first one in the bag when `None`.
    pub camera: Option<String>,
    /// Frames per row, evenly spaced over the recording.
    pub frames: usize,
    /// The restyling seed.
    pub seed: u64,
    /// The backend.
    pub backend: SheetBackend,
    /// Shrink every tile by this factor.
    pub shrink: usize,
}

impl Default for SheetOptions {
    fn default() -> Self {
        SheetOptions {
            prompts: Vec::new(),
            camera: None,
            frames: 4,
            seed: 0,
            backend: SheetBackend::Builtin(Preset::Full, Device::Auto),
            shrink: 1,
        }
    }
}

/// A recording's frames and their restyled versions, with the label scores.
#[derive(Clone, Debug)]
pub struct ContactSheet {
    /// The bag (as given).
    pub bag: PathBuf,
    /// The camera's name.
    pub camera: String,
    /// The backend's name ([`Backend::name`]).
    pub backend: String,
    /// A prompt per restyled row.
    pub prompts: Vec<String>,
    /// The simulator's frames, then a row per prompt (tiles shrunk as asked).
    pub rows: Vec<Vec<Rgb>>,
    /// Per prompt, the label boundary recall of each frame ([`score::Score::boundary_recall`]).
    pub recall: Vec<Vec<f32>>,
}

impl ContactSheet {
    /// The mean label boundary recall of a prompt's row (0 without frames).
    pub fn mean_recall(&self, prompt: usize) -> f32 {
        let r = &self.recall[prompt];
        r.iter().sum::<f32>() / r.len().max(1) as f32
    }

    /// The rows as one picture (4-pixel gaps).
    pub fn image(&self) -> Rgb {
        grid(&self.rows, 4)
    }

    /// What each row is: the bag, the camera, the backend, then a line per row
    /// with its prompt and mean recall.
    pub fn legend(&self) -> String {
        let mut legend = format!(
            "# {}: camera {}, {} frames, backend {}\nrow 1: the simulator's frames\n",
            self.bag.display(),
            self.camera,
            self.rows[0].len(),
            self.backend
        );
        for (i, p) in self.prompts.iter().enumerate() {
            legend.push_str(&format!("row {}: \"{p}\" (label boundary recall {:.3})\n", i + 2, self.mean_recall(i)));
        }
        legend
    }

    /// Writes `<bag stem>_<camera>.png` ([`ContactSheet::image`]) and the
    /// [`ContactSheet::legend`] beside it (`.txt`) into `dir`, created if
    /// missing; returns the PNG's path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, TransferError> {
        std::fs::create_dir_all(dir).map_err(|reason| TransferError::Output { path: dir.into(), reason })?;
        let stem = self.bag.file_stem().and_then(|s| s.to_str()).unwrap_or("bag");
        let png = dir.join(format!("{stem}_{}.png", self.camera));
        write_png(&png, &self.image())?;
        let txt = png.with_extension("txt");
        std::fs::write(&txt, self.legend()).map_err(|reason| TransferError::Output { path: txt, reason })?;
        Ok(png)
    }
}

/// Restyles evenly spaced frames of one camera of the recording at `bag`
/// (recorded from sim_node: image, depth, segmentation and camera_info of a
/// stamp, with TF, the scenario and the 3-D boxes) for every prompt of
/// `opts`, scoring each output's label preservation. Warnings (damage in the
/// bag, words outside the prompt vocabulary, controls dropped) go to `warn`;
/// frames up to damage are used. Errors name the bag and the topic, camera or
/// model that is wrong.
pub fn contact_sheet(bag: &Path, opts: &SheetOptions, warn: &mut dyn FnMut(String)) -> Result<ContactSheet, TransferError> {
    let reader = BagReader::open(bag).map_err(|reason| TransferError::Bag { path: bag.into(), reason })?;
    for d in reader.damage() {
        warn(format!("{}: {d:?}; frames up to the damage are used", bag.display()));
    }
    let cameras: Vec<StoredCamera> = stored::cameras(reader.connections.iter().map(|c| (c.topic.as_str(), c.type_name.as_str())))
        .into_iter()
        .filter(|c| c.raw.ends_with("/image_raw"))
        .collect();
    let stored_camera = match &opts.camera {
        Some(c) => cameras.iter().find(|t| t.raw.ends_with(&format!("/{c}/image_raw"))).cloned().ok_or_else(|| {
            TransferError::NoCamera { path: bag.into(), camera: c.clone(), topics: cameras.iter().map(|t| t.topic.clone()).collect() }
        })?,
        None => cameras.first().cloned().ok_or_else(|| TransferError::NoImageTopic { path: bag.into() })?,
    };
    let topic = stored_camera.topic.as_str();
    let base = stored_camera.raw.trim_end_matches("/image_raw").to_string();
    let camera = base.rsplit('/').next().unwrap_or("camera").to_string();
    let topics = Topics {
        image: topic.to_string(),
        depth: format!("{base}/depth"),
        segmentation: format!("{base}/segmentation"),
        info: format!("{base}/camera_info"),
    };
    let count = reader.connections.iter().find(|c| c.topic == topic).map(|c| c.count).unwrap_or(0) as usize;
    if count == 0 {
        return Err(TransferError::EmptyTopic { path: bag.into(), topic: topic.to_string() });
    }
    let n = opts.frames.clamp(1, count);
    // Evenly spaced picks, the first a little in (the scene has settled).
    let picks: Vec<usize> = (0..n).map(|i| ((i as f64 + 0.5) * count as f64 / n as f64) as usize).collect();
    let prompts: Vec<String> =
        if opts.prompts.is_empty() { DEFAULT_PROMPTS.iter().map(|s| s.to_string()).collect() } else { opts.prompts.clone() };
    let looks: Vec<_> = prompts
        .iter()
        .map(|p| {
            let parsed = parse(p);
            if !parsed.unknown.is_empty() {
                warn(format!("prompt \"{p}\": not in the vocabulary, ignored: {}", parsed.unknown.join(", ")));
            }
            parsed.look
        })
        .collect();
    let mut backend: Box<dyn Backend> = match &opts.backend {
        SheetBackend::Onnx(m) => Box::new(OnnxBackend::load(m)?),
        SheetBackend::Builtin(preset, device) => builtin::open(*preset, *device)?,
    };

    let mut scene = Scene::default();
    let mut pending: BTreeMap<i64, CameraMsgs> = BTreeMap::new();
    let mut seen = 0usize;
    let mut rows: Vec<Vec<Rgb>> = vec![Vec::new(); prompts.len() + 1];
    let mut recall: Vec<Vec<f32>> = vec![Vec::new(); prompts.len()];
    let decode_err = |t: &str, reason| TransferError::Message { path: bag.into(), topic: t.into(), reason };
    let mut bad_frames = 0u64;
    for m in reader.messages() {
        let c = &reader.connections[m.connection];
        let data = Serialized(m.data.clone());
        let t = c.topic.as_str();
        match c.type_name.as_str() {
            "tf2_msgs/msg/TFMessage" => scene.tf(&data.decode::<TFMessage>().map_err(|e| decode_err(t, e))?, t == "/tf_static"),
            "sim2real_msgs/msg/ScenarioInfo" => scene.scenario = Some(data.decode::<ScenarioInfo>().map_err(|e| decode_err(t, e))?),
            "vision_msgs/msg/Detection3DArray" => {
                scene.detections3d = Some(data.decode::<Detection3DArray>().map_err(|e| decode_err(t, e))?)
            }
            _ => {}
        }
        if t == topics.image || t == topics.depth || t == topics.segmentation {
            let img: Image = if t == topics.image {
                match stored_camera.decode(&data) {
                    Ok(img) => img,
                    Err(e) => {
                        bad_frames += 1;
                        if s2r_runtime::log::worth_logging(bad_frames) {
                            warn(format!("{}: {e}; frame skipped ({bad_frames} on this topic so far)", bag.display()));
                        }
                        continue;
                    }
                }
            } else {
                data.decode().map_err(|e| decode_err(t, e))?
            };
            let e = pending.entry(stamp_ns(&img.header.stamp)).or_default();
            if t == topics.image {
                e.image = Some(img);
            } else if t == topics.depth {
                e.depth = Some(img);
            } else {
                e.segmentation = Some(img);
            }
        } else if t == topics.info {
            let info: CameraInfo = data.decode().map_err(|e| decode_err(t, e))?;
            let stamp = stamp_ns(&info.header.stamp);
            pending.entry(stamp).or_default().info = Some(info);
        } else {
            continue;
        }
        // A frame is complete once all four of its messages are in.
        let done: Vec<i64> = pending
            .iter()
            .filter(|(_, m)| m.image.is_some() && m.depth.is_some() && m.segmentation.is_some() && m.info.is_some())
            .map(|(s, _)| *s)
            .collect();
        for s in done {
            let msgs = pending.remove(&s).expect("a complete frame is pending");
            pending.retain(|k, _| *k > s);
            let index = seen;
            seen += 1;
            if !picks.contains(&index) {
                continue;
            }
            let d = decode(&msgs, &topics)?;
            for note in &d.notes {
                warn(note.clone());
            }
            let f = d.frame(&scene);
            rows[0].push(Rgb { width: d.width, height: d.height, data: d.rgb.clone() }.shrink(opts.shrink));
            for (i, look) in looks.iter().enumerate() {
                let r = backend.restyle(&f, look, &Weights::default(), opts.seed)?;
                recall[i].push(score::score(&d.rgb, &r.rgb, f.segmentation, f.depth, r.extinction, d.width, d.height).boundary_recall);
                rows[i + 1].push(Rgb { width: r.width, height: r.height, data: r.rgb }.shrink(opts.shrink));
            }
        }
    }
    if rows[0].is_empty() {
        return Err(TransferError::NoCompleteFrame { path: bag.into(), camera });
    }
    Ok(ContactSheet { bag: bag.into(), camera, backend: backend.name(), prompts, rows, recall })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bags").join(name)
    }

    #[test]
    fn a_recording_becomes_a_sheet_with_its_legend() {
        let bag = sample("icy_night_crossing");
        let opts = SheetOptions {
            prompts: vec!["heavy rain, dusk, purple".into(), "dense fog, morning".into()],
            frames: 2,
            shrink: 2,
            backend: SheetBackend::Builtin(Preset::Fast, Device::Cpu),
            ..SheetOptions::default()
        };
        let mut warnings = Vec::new();
        let sheet = contact_sheet(&bag, &opts, &mut |w| warnings.push(w)).unwrap();
        assert_eq!(warnings, ["prompt \"heavy rain, dusk, purple\": not in the vocabulary, ignored: purple"]);
        assert_eq!((sheet.camera.as_str(), sheet.backend.as_str()), ("front", "builtin:fast"));
        assert_eq!(sheet.rows.len(), 3, "the simulator's frames, then a row per prompt");
        assert!(sheet.rows.iter().all(|r| r.len() == 2));
        assert!(sheet.recall.iter().flatten().all(|r| (0.0..=1.0).contains(r)));
        let legend = sheet.legend();
        assert!(legend
            .starts_with(&format!("# {}: camera front, 2 frames, backend builtin:fast\nrow 1: the simulator's frames\n", bag.display())));
        assert!(legend.contains("row 3: \"dense fog, morning\" (label boundary recall "), "{legend}");
        let dir = std::env::temp_dir().join(format!("s2r_sheets_{}", std::process::id()));
        let png = sheet.write(&dir).unwrap();
        assert_eq!(png, dir.join("icy_night_crossing_front.png"));
        assert_eq!(std::fs::read_to_string(png.with_extension("txt")).unwrap(), legend);
        let img = s2r_image::read_png(&png).unwrap();
        assert_eq!((img.width, img.height), (sheet.image().width, sheet.image().height));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn errors_name_the_bag_and_the_camera() {
        let bag = sample("icy_night_crossing");
        let opts = SheetOptions { camera: Some("nope".into()), ..SheetOptions::default() };
        let e = contact_sheet(&bag, &opts, &mut |_| {}).unwrap_err().to_string();
        assert_eq!(e, format!("{}: no camera 'nope' (image topics: /sim/front/image_raw, /sim/front_left/image_raw)", bag.display()));
        let e = contact_sheet(Path::new("/nowhere/bag"), &SheetOptions::default(), &mut |_| {}).unwrap_err().to_string();
        // The bag error names the path itself; TransferError::Bag does not repeat it.
        assert!(e.starts_with("/nowhere/bag ") && e.matches("/nowhere/bag").count() == 1, "{e}");
        let opts = SheetOptions { backend: SheetBackend::Onnx("/nowhere.onnx".into()), ..SheetOptions::default() };
        let e = contact_sheet(&bag, &opts, &mut |_| {}).unwrap_err().to_string();
        assert_eq!(e, "model /nowhere.onnx: no such file");
    }
}
