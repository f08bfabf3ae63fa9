//! `s2r transfer BAG`: restyles frames of a recorded simulation for a set of
//! prompts and writes before/after contact sheets (PNG).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use s2r_bag::BagReader;
use s2r_image::{grid, write_png, Rgb};
use s2r_runtime::stamp_ns;
use s2r_runtime::Serialized;
use s2r_transfer::builtin::{Builtin, Preset};
use s2r_transfer::input::{decode, CameraMsgs, Scene, Topics};
use s2r_transfer::onnx::OnnxBackend;
use s2r_transfer::{parse, score, Backend, Weights};
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image};
use sim2real_msgs::sim2real_msgs::msg::ScenarioInfo;
use sim2real_msgs::tf2_msgs::msg::TFMessage;
use sim2real_msgs::vision_msgs::msg::Detection3DArray;

/// The prompts of a sheet when none are given.
pub const DEFAULT_PROMPTS: &[&str] = &[
    "icy road, night, wet reflections, headlight glare, light snowfall",
    "heavy rain, dusk, street lights",
    "dense fog, morning",
    "snowy road, overcast, light snowfall",
    "low sun, dashcam, lens dirt",
];

#[derive(Args)]
pub struct TransferArgs {
    /// A bag recorded from sim_node (folder or .mcap).
    bag: PathBuf,
    /// Where the sheets go.
    #[arg(short, long, default_value = "transfer_sheets")]
    output: PathBuf,
    /// A prompt per row (repeat the option); five contrasting ones by default.
    #[arg(short, long)]
    prompt: Vec<String>,
    /// Camera name (sim/<camera>/…); the first one in the bag by default.
    #[arg(long)]
    camera: Option<String>,
    /// Frames per row, evenly spaced over the recording.
    #[arg(long, default_value_t = 4)]
    frames: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// full or fast.
    #[arg(long, default_value = "full")]
    preset: String,
    /// An ONNX model to restyle with instead of the built-in backend.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Shrink every tile by this factor.
    #[arg(long, default_value_t = 1)]
    shrink: usize,
}

pub fn run(a: TransferArgs) -> Result<()> {
    let reader = BagReader::open(&a.bag).map_err(|e| anyhow!("{}: {e}", a.bag.display()))?;
    for d in reader.damage() {
        eprintln!("warning: {}: {d:?}; frames up to the damage are used", a.bag.display());
    }
    let images: Vec<&str> = reader
        .connections
        .iter()
        .filter(|c| c.type_name == "sensor_msgs/msg/Image" && c.topic.ends_with("/image_raw"))
        .map(|c| c.topic.as_str())
        .collect();
    let topic = match &a.camera {
        Some(c) => images
            .iter()
            .find(|t| t.ends_with(&format!("/{c}/image_raw")))
            .copied()
            .ok_or_else(|| anyhow!("{}: no camera '{c}' (image topics: {})", a.bag.display(), images.join(", ")))?,
        None => images.first().copied().ok_or_else(|| anyhow!("{}: no sensor_msgs/Image topic ending in /image_raw", a.bag.display()))?,
    };
    let base = topic.trim_end_matches("/image_raw").to_string();
    let camera = base.rsplit('/').next().unwrap_or("camera").to_string();
    let topics = Topics {
        image: topic.to_string(),
        depth: format!("{base}/depth"),
        segmentation: format!("{base}/segmentation"),
        info: format!("{base}/camera_info"),
    };
    let count = reader.connections.iter().find(|c| c.topic == topic).map(|c| c.count).unwrap_or(0) as usize;
    if count == 0 {
        bail!("{}: {topic} has no readable messages", a.bag.display());
    }
    let n = a.frames.clamp(1, count);
    // Evenly spaced picks, the first a little in (the scene has settled).
    let picks: Vec<usize> = (0..n).map(|i| ((i as f64 + 0.5) * count as f64 / n as f64) as usize).collect();
    let prompts: Vec<String> = if a.prompt.is_empty() { DEFAULT_PROMPTS.iter().map(|s| s.to_string()).collect() } else { a.prompt.clone() };
    let looks: Vec<_> = prompts
        .iter()
        .map(|p| {
            let parsed = parse(p);
            if !parsed.unknown.is_empty() {
                eprintln!("warning: prompt \"{p}\": not in the vocabulary, ignored: {}", parsed.unknown.join(", "));
            }
            parsed.look
        })
        .collect();
    let mut backend: Box<dyn Backend> = match &a.model {
        Some(m) => Box::new(OnnxBackend::load(m)?),
        None => Box::new(Builtin::new(a.preset.parse::<Preset>().map_err(|e| anyhow!(e))?)),
    };

    let mut scene = Scene::default();
    let mut pending: BTreeMap<i64, CameraMsgs> = BTreeMap::new();
    let mut seen = 0usize;
    let mut rows: Vec<Vec<Rgb>> = vec![Vec::new(); prompts.len() + 1];
    let mut scores: Vec<Vec<f32>> = vec![Vec::new(); prompts.len()];
    let decode_err = |t: &str, e: s2r_runtime::raw::CdrError| anyhow!("{}: {t}: {e}", a.bag.display());
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
            let img: Image = data.decode().map_err(|e| decode_err(t, e))?;
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
            let msgs = pending.remove(&s).unwrap();
            pending.retain(|k, _| *k > s);
            let index = seen;
            seen += 1;
            if !picks.contains(&index) {
                continue;
            }
            let d = decode(&msgs, &topics).map_err(|e| anyhow!(e))?;
            for note in &d.notes {
                eprintln!("warning: {note}");
            }
            let f = d.frame(&scene);
            rows[0].push(Rgb { width: d.width, height: d.height, data: d.rgb.clone() }.shrink(a.shrink));
            for (i, look) in looks.iter().enumerate() {
                let r = backend.restyle(&f, look, &Weights::default(), a.seed)?;
                scores[i].push(score::score(&d.rgb, &r.rgb, f.segmentation, f.depth, r.extinction, d.width, d.height).boundary_recall);
                rows[i + 1].push(Rgb { width: r.width, height: r.height, data: r.rgb }.shrink(a.shrink));
            }
        }
    }
    if rows[0].is_empty() {
        bail!("{}: no complete frame of camera '{camera}' (image, depth, segmentation and camera_info with one stamp)", a.bag.display());
    }
    std::fs::create_dir_all(&a.output).with_context(|| a.output.display().to_string())?;
    let stem = a.bag.file_stem().and_then(|s| s.to_str()).unwrap_or("bag");
    let png = a.output.join(format!("{stem}_{camera}.png"));
    write_png(&png, &grid(&rows, 4)).map_err(|e| anyhow!(e))?;
    let mut legend = format!(
        "# {}: camera {camera}, {} frames, backend {}\nrow 1: the simulator's frames\n",
        a.bag.display(),
        rows[0].len(),
        backend.name()
    );
    for (i, p) in prompts.iter().enumerate() {
        let mean = scores[i].iter().sum::<f32>() / scores[i].len().max(1) as f32;
        legend.push_str(&format!("row {}: \"{p}\" (label boundary recall {mean:.3})\n", i + 2));
    }
    std::fs::write(png.with_extension("txt"), &legend)?;
    print!("{legend}");
    println!("wrote {}", png.display());
    Ok(())
}
