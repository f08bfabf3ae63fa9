//! multiview_node: live, from a robot's front camera, the rig's other cameras.
//!
//! It subscribes `<camera>/image_raw` (parameter `camera`, default the
//! checkpoint's source camera; raw or compressed: parameter `transport`)
//! and, for each frame it gets to (the newest; frames that arrive while it
//! works are dropped and counted), publishes every camera of the rig —
//! the source's own view and the generated others — on
//! `<output>/<name>/image_raw` (rgb8, the codec's square view) and
//! `<output>/<name>/camera_info` (that view's intrinsics, frame
//! `<name>_optical_frame`), all with the source frame's stamp (parameter
//! `output`, default `multiview`). The rig is the checkpoint's (the one it
//! was trained on) or a rig file (parameter `rig`: YAML as `s2r multiview
//! --write-rig` writes it). With `depth` (default true) the source frame's
//! depth, estimated by the perception model (parameter `perception`, empty:
//! the shipped one), reprojects the source into the other cameras first.
//! A frame of another resolution than the rig's source camera is resampled
//! (said once); a frame it cannot read is refused by topic and the node
//! carries on. The parameter `device` (cpu, cuda, cuda:N) says where the
//! network runs.

use std::time::Duration;

use s2r_image::transport::ImageSubscription;
use s2r_runtime::component::NodeFuture;
use s2r_runtime::{info, warn, Context, Node, Qos, RosArgs};
use sim2real_msgs::sensor_msgs::msg::{CameraInfo, Image};
use sim2real_msgs::std_msgs::msg::Header;

use crate::data::view_cameras;
use crate::generate::generate;
use crate::reproject::view_depth;
use crate::rig::{Camera, Rig};
use crate::FrameCodec;

/// Loads the tokenizer a checkpoint names (the driver that runs the node supplies it).
pub type CodecLoader = fn(&str) -> Result<Box<dyn FrameCodec + Send + Sync>, String>;

/// A depth estimator: rgb8 frame, width, height, horizontal focal length (pixels) → z-depth per pixel (metres).
pub type DepthEstimator = Box<dyn Fn(&[u8], usize, usize, f64) -> Result<Vec<f32>, String> + Send + Sync>;

/// Loads a depth estimator from a checkpoint path (empty: the shipped one) for a device (cpu, cuda, cuda:N); the driver supplies it.
pub type DepthLoader = fn(&str, &str) -> Result<DepthEstimator, String>;

/// Counts a refused frame and says why, at a rate that does not flood the log.
fn refuse(log: &s2r_runtime::Logger, refused: &mut u64, why: String) {
    *refused += 1;
    if s2r_runtime::log::worth_logging(*refused) {
        warn!(log, "{why} ({} refused so far)", *refused);
    }
}

/// camera_info of a view camera.
pub fn camera_info(header: Header, cam: &Camera) -> CameraInfo {
    let [fx, fy, cx, cy] = cam.k;
    CameraInfo {
        header,
        height: cam.height,
        width: cam.width,
        distortion_model: "plumb_bob".into(),
        d: vec![0.0; 5],
        k: [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
        r: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p: [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
        ..Default::default()
    }
}

/// Runs the node with `load` for the tokenizer and `depth` for the depth estimator.
pub fn run(ctx: Context, args: RosArgs, load: CodecLoader, depth: DepthLoader) -> NodeFuture {
    Box::pin(async move {
        let node = Node::new(&ctx, "multiview_node", &args)?;
        let log = node.logger().clone();
        let shipped = crate::checkpoint::shipped().map(|p| p.display().to_string()).unwrap_or_default();
        let mut ck: String = node.declare_parameter("checkpoint", String::new())?;
        if ck.is_empty() {
            ck = shipped;
        }
        if ck.is_empty() {
            return Err("parameter 'checkpoint' is empty and no shipped multiview model was found (models/multiview/multiview.safetensors); \
                        train one: `s2r generate config/sweeps/multiview.yaml -o multiview_data && s2r train multiview multiview_data -o multiview.safetensors`"
                .into());
        }
        let device_name: String = node.declare_parameter("device", "cpu".to_string())?;
        let device = s2r_train::device(&device_name).map_err(|e| format!("parameter 'device': {e}"))?;
        let loaded = crate::checkpoint::load(std::path::Path::new(&ck), &device).map_err(|e| format!("parameter 'checkpoint': {e}"))?;
        let camera: String = node.declare_parameter("camera", loaded.record.source.clone())?;
        let rig_file: String = node.declare_parameter("rig", String::new())?;
        let output: String = node.declare_parameter("output", "multiview".to_string())?;
        let use_depth: bool = node.declare_parameter("depth", true)?;
        let perception: String = node.declare_parameter("perception", String::new())?;
        let transport = s2r_image::transport::declare_input(&node)?;
        let rig = if rig_file.is_empty() {
            loaded.record.rig.clone()
        } else {
            Rig::load(std::path::Path::new(&rig_file)).map_err(|e| format!("parameter 'rig': {e}"))?
        };
        let cfg = loaded.model.config.clone();
        let codec = load(&cfg.codec).map_err(|e| format!("the tokenizer {} the checkpoint names: {e}", cfg.codec))?;
        if codec.grid() != cfg.grid || codec.levels() != cfg.levels || codec.size() != cfg.size {
            return Err(format!(
                "{ck}: a model of {}×{} codes of {} px views; the tokenizer {} makes {}×{} of {} px",
                cfg.grid,
                cfg.grid,
                cfg.size,
                cfg.codec,
                codec.grid(),
                codec.grid(),
                codec.size()
            )
            .into());
        }
        let source = rig.camera(&camera).map_err(|e| format!("parameter 'camera': {e}"))?.clone();
        let estimator =
            if use_depth { Some(depth(&perception, &device_name).map_err(|e| format!("parameter 'perception': {e}"))?) } else { None };
        let mut image = ImageSubscription::new(&node, &format!("{camera}/image_raw"), transport, Qos::sensor_data().depth(5))?;
        let mut outputs = Vec::new();
        for c in &rig.cameras {
            let base = format!("{output}/{}", c.name);
            outputs.push((
                node.create_publisher::<Image>(&format!("{base}/image_raw"), Qos::reliable().depth(5))?,
                node.create_publisher::<CameraInfo>(&format!("{base}/camera_info"), Qos::reliable().depth(5))?,
            ));
        }
        info!(
            log,
            "{ck} ({}): {} -> {} cameras on {}/<camera>/image_raw ({}), depth {}",
            cfg.summary(),
            image.topic(),
            rig.cameras.len(),
            node.resolve_topic(&output).unwrap_or_default(),
            rig.names().join(", "),
            if use_depth { "estimated" } else { "off" }
        );
        let (mut dropped, mut refused, mut made) = (0u64, 0u64, 0u64);
        let mut said_resampled = false;
        let mut shutdown = std::pin::pin!(s2r_runtime::shutdown::signal());
        let mut ticker = tokio::time::interval(Duration::from_millis(10));
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = &mut shutdown => break,
            }
            let mut newest = None;
            while let Some(f) = image.try_recv() {
                if newest.is_some() {
                    dropped += 1;
                }
                newest = Some(f.image);
            }
            let Some(img) = newest else { continue };
            let topic = image.topic();
            let rgb = match s2r_image::rgb8(&img, &topic) {
                Ok(rgb) => rgb,
                Err(e) => {
                    refuse(&log, &mut refused, format!("{e}; frame refused"));
                    continue;
                }
            };
            let (w, h) = (img.width as usize, img.height as usize);
            if w < 2 || h < 2 {
                refuse(&log, &mut refused, format!("{topic}: a {w}×{h} frame is too small to make views of; refused"));
                continue;
            }
            let mut full = rig.clone();
            if (w as u32, h as u32) != (source.width, source.height) {
                if !said_resampled {
                    info!(
                        log,
                        "{topic}: {w}×{h} frames, the rig's {camera} is {}×{}: resampled (intrinsics scaled)", source.width, source.height
                    );
                    said_resampled = true;
                }
                for c in &mut full.cameras {
                    if c.name == camera {
                        *c = c.resized(w as u32, h as u32);
                    }
                }
            }
            let result = tokio::task::block_in_place(|| -> Result<(Vec<Camera>, Vec<Vec<u8>>), String> {
                let cams = view_cameras(&full, &camera, codec.size()).map_err(|e| e.to_string())?;
                let view = codec.view(&rgb, w, h);
                let depth_view = match &estimator {
                    Some(f) => {
                        let d = f(&rgb, w, h, full.camera(&camera).map_err(|e| e.to_string())?.k[0])?;
                        if d.len() != w * h {
                            return Err(format!("the depth estimator gave {} values for a {w}×{h} frame", d.len()));
                        }
                        Some(view_depth(&d, w, h, codec.size()))
                    }
                    None => None,
                };
                let views = generate(&loaded.model, codec.as_ref(), &cams, &view, depth_view.as_deref()).map_err(|e| e.to_string())?;
                let mut out = vec![view];
                out.extend(views.into_iter().map(|v| v.rgb));
                Ok((cams, out))
            });
            let (cams, views) = match result {
                Ok(r) => r,
                Err(e) => {
                    refuse(&log, &mut refused, format!("{topic}: no views generated: {e}"));
                    continue;
                }
            };
            // Publish in the rig's order, each with the source frame's stamp.
            for (c, (img_pub, info_pub)) in rig.cameras.iter().zip(&outputs) {
                let Some(k) = cams.iter().position(|v| v.name == c.name) else { continue };
                let header = Header { stamp: img.header.stamp.clone(), frame_id: format!("{}_optical_frame", c.name) };
                if let Err(e) = info_pub.publish(camera_info(header.clone(), &cams[k])) {
                    warn!(log, "{}: {e}", c.name);
                }
                if let Err(e) = img_pub.publish(s2r_image::rgb8_msg(header, codec.size(), codec.size(), views[k].clone())) {
                    warn!(log, "{}: {e}", c.name);
                }
            }
            made += 1;
            if s2r_runtime::log::worth_logging(made) {
                info!(log, "{made} frames made into {} cameras ({dropped} dropped behind, {refused} refused)", rig.cameras.len());
            }
        }
        Ok(())
    })
}
