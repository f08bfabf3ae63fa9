//! The `tokenizer_node` executable: a camera's frames in, token chunks out.
//!
//! Subscribes to `<camera>/image_raw` (relative; any colour encoding the
//! transfer node reads, any size: frames are center-cropped and resampled to
//! `size`), or its `/compressed` sibling (parameter `transport`: `raw`,
//! `compressed`, `auto`), encodes every 1 + t frames (t the tokenizer's temporal factor)
//! and publishes a sim2real_msgs/TokenFrame on `<camera>/tokens`; with
//! `output` set it also records them into a rosbag2 bag there. Parameters:
//! `checkpoint` (a shipped one by name, `cv4x8x8` (default) or `dv8x16x16`, or
//! a file from `s2r train tokenizer`), `camera`, `size`, `output`, `transport`.

use std::path::Path;
use std::time::Duration;

use s2r_bag::{BagWriter, TopicSpec, WriterOptions};
use s2r_image::transport::ImageSubscription;
use s2r_runtime::component::{Component, NodeFuture};
use s2r_runtime::{info, warn, Context, Node, Qos, RosArgs};
use sim2real_msgs::builtin_interfaces::msg::Time;
use sim2real_msgs::sim2real_msgs::msg::TokenFrame;
use sim2real_msgs::std_msgs::msg::Header;

use crate::codec::{Codec, Tokens};
use crate::data::square;
use crate::TokenizerError;

/// The `tokenizer_node` executable as a component, run alone or composed
/// (`s2r launch --compose`); the module doc lists its topics and parameters.
/// Graceful: on SIGINT/SIGTERM it finishes the bag it records. Needs a
/// multi-threaded tokio runtime (it encodes in `block_in_place`).
pub const TOKENIZER_NODE: Component = Component {
    exec: "tokenizer_node",
    about: "encodes a camera's frames into tokens with a trained causal video tokenizer",
    main: tokenizer_node,
    graceful: true,
};

/// The message of one chunk: codec `sim2real/<variant>`, the tokens in
/// `codes` or `latents` (the other left empty), `stamps` of the chunk's
/// frames, `width` = `height` = `size`.
pub fn token_frame(codec: &Codec, tokens: Tokens, header: Header, stamps: Vec<Time>, size: usize) -> TokenFrame {
    let (shape, codes, latents) = match tokens {
        Tokens::Continuous { shape, values } => (shape, Vec::new(), values),
        Tokens::Discrete { shape, codes } => (shape, codes, Vec::new()),
    };
    TokenFrame {
        header,
        codec: format!("sim2real/{}", codec.cfg.name()),
        shape: shape.iter().map(|&s| s as u32).collect(),
        codes,
        latents,
        stamps,
        width: size as u32,
        height: size as u32,
    }
}

/// Tokens back from a message (the inverse of [`token_frame`]); errors if its
/// shape is not four numbers or its values do not fill it. Whether they fit a
/// checkpoint is [`crate::codec::Codec::decode`]'s to say.
pub fn tokens_of(m: &TokenFrame) -> Result<Tokens, TokenizerError> {
    if m.shape.len() != 4 {
        return Err(TokenizerError::Shape { shape: m.shape.clone() });
    }
    let shape = [m.shape[0] as usize, m.shape[1] as usize, m.shape[2] as usize, m.shape[3] as usize];
    let n: usize = shape.iter().product();
    if !m.codes.is_empty() {
        if m.codes.len() != n {
            return Err(TokenizerError::Length { len: m.codes.len(), kind: "codes", shape: m.shape.clone() });
        }
        Ok(Tokens::Discrete { shape, codes: m.codes.clone() })
    } else {
        if m.latents.len() != n {
            return Err(TokenizerError::Length { len: m.latents.len(), kind: "latents", shape: m.shape.clone() });
        }
        Ok(Tokens::Continuous { shape, values: m.latents.clone() })
    }
}

fn tokenizer_node(ctx: Context, args: RosArgs) -> NodeFuture {
    Box::pin(async move {
        crate::tune_allocator();
        let node = Node::new(&ctx, "tokenizer_node", &args)?;
        let log = node.logger().clone();
        let checkpoint: String = node.declare_parameter("checkpoint", "cv4x8x8".to_string())?;
        let camera: String = node.declare_parameter("camera", "front".to_string())?;
        let size: i64 = node.declare_parameter("size", 256)?;
        let output: String = node.declare_parameter("output", String::new())?;
        let transport = s2r_image::transport::declare_input(&node)?;
        if checkpoint.is_empty() {
            return Err("parameter 'checkpoint' is empty: name a shipped one (cv4x8x8, dv8x16x16) or a file; train one with `s2r train tokenizer DATASET… --output tokenizer.safetensors`".into());
        }
        let checkpoint = crate::resolve_checkpoint(&checkpoint).display().to_string();
        let device: String = node.declare_parameter("device", "cpu".to_string())?;
        let device = s2r_train::device(&device).map_err(|e| format!("parameter 'device': {e}"))?;
        let codec = Codec::load_on(Path::new(&checkpoint), &device).map_err(|e| format!("parameter 'checkpoint': {e}"))?;
        let size = size as usize;
        if size == 0 || !size.is_multiple_of(codec.cfg.spatial) {
            return Err(format!("parameter 'size' must be a positive multiple of {}, got {size}", codec.cfg.spatial).into());
        }
        let in_topic = format!("{camera}/image_raw");
        let mut images = ImageSubscription::new(&node, &in_topic, transport, Qos::reliable().depth(50))?;
        let tokens_pub = node.create_publisher::<TokenFrame>(&format!("{camera}/tokens"), Qos::reliable().depth(20))?;
        let resolved_out = node.resolve_topic(&format!("{camera}/tokens"))?;
        let mut writer = if output.is_empty() {
            None
        } else {
            let mut w =
                BagWriter::create(Path::new(&output), WriterOptions { compression: s2r_bag::Compression::Zstd, ..Default::default() })
                    .map_err(|e| format!("parameter 'output': {output}: {e}"))?;
            let id = w.add_topic(TopicSpec::of::<TokenFrame>(&resolved_out, Vec::new())).map_err(|e| e.to_string())?;
            Some((w, id))
        };
        info!(
            log,
            "{} ({}): {} ({transport:?}) -> {}, {size}x{size}, chunks of {} frames",
            codec.cfg.name(),
            checkpoint,
            images.raw_topic(),
            resolved_out,
            1 + codec.cfg.temporal
        );
        let chunk = 1 + codec.cfg.temporal;
        let mut frames: Vec<Vec<f32>> = Vec::new();
        let mut stamps: Vec<Time> = Vec::new();
        let mut said = std::collections::HashSet::new();
        let mut shutdown = std::pin::pin!(s2r_runtime::shutdown::signal());
        let mut chunks = 0u64;
        loop {
            let mut busy = false;
            while let Some(received) = images.try_recv() {
                busy = true;
                let img = received.image;
                let rgb = match s2r_image::rgb8(&img, &images.topic()) {
                    Ok(rgb) => rgb,
                    Err(e) => {
                        if said.insert(e.to_string()) {
                            warn!(log, "{e}; such frames are skipped");
                        }
                        continue;
                    }
                };
                frames.push(square(&rgb, img.width as usize, img.height as usize, size));
                stamps.push(img.header.stamp.clone());
                if frames.len() == chunk {
                    let header = Header { stamp: img.header.stamp.clone(), frame_id: img.header.frame_id.clone() };
                    let t = tokio::task::block_in_place(|| codec.encode(&frames, size));
                    match t {
                        Ok(tokens) => {
                            let msg = token_frame(&codec, tokens, header, std::mem::take(&mut stamps), size);
                            if let Some((w, id)) = writer.as_mut() {
                                let now = std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .map(|d| d.as_nanos() as u64)
                                    .unwrap_or(0);
                                if let Err(e) = w.write_message(*id, now, &msg) {
                                    warn!(log, "recording: {e}");
                                }
                            }
                            tokens_pub.publish(msg)?;
                            chunks += 1;
                        }
                        Err(e) => warn!(log, "encoding failed: {e}"),
                    }
                    frames.clear();
                    stamps.clear();
                }
            }
            if !busy {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                    _ = &mut shutdown => break,
                }
            }
        }
        if let Some((w, _)) = writer {
            w.finish().map_err(|e| e.to_string())?;
        }
        info!(log, "{chunks} chunks encoded");
        Ok(())
    })
}
