//! image_transport for sim2real's nodes: a camera topic read raw or through
//! its `<topic>/compressed` sibling ([`ImageSubscription`]), and published
//! raw, compressed or both ([`ImagePublisher`]), chosen by the same
//! parameters on every node ([`declare_input`], [`declare_output`]).
//!
//! As image_transport does, the compressed topic is the resolved raw topic
//! (after remapping) plus `/compressed`, and a subscriber receives a
//! `sensor_msgs/Image` whichever way the frames travelled.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use s2r_runtime::{info, Logger, Node, PublishError, Publisher, Qos, Subscription, Writer};
use sim2real_msgs::sensor_msgs::msg::{CompressedImage, Image};

use crate::{compress, decompress, Compression, ImageError};

/// The topic image_transport's `compressed` plugin uses for a raw topic.
pub fn compressed_topic(raw: &str) -> String {
    format!("{}/compressed", raw.trim_end_matches('/'))
}

/// How a node reads a camera topic (its `transport` parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `sensor_msgs/Image` on the topic itself.
    Raw,
    /// `sensor_msgs/CompressedImage` on `<topic>/compressed`.
    Compressed,
    /// Both subscribed; the first to deliver a frame is kept, the other dropped.
    Auto,
}

impl Transport {
    /// `raw`, `compressed` or `auto`.
    pub fn parse(s: &str) -> Option<Transport> {
        Some(match s {
            "raw" => Transport::Raw,
            "compressed" => Transport::Compressed,
            "auto" => Transport::Auto,
            _ => return None,
        })
    }
}

/// What a node publishes for an image output (its `publish_transport` parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Publish {
    /// `sensor_msgs/Image` on the topic.
    Raw,
    /// `sensor_msgs/CompressedImage` on `<topic>/compressed` only.
    Compressed,
    /// Both.
    Both,
}

impl Publish {
    /// `raw`, `compressed` or `both`.
    pub fn parse(s: &str) -> Option<Publish> {
        Some(match s {
            "raw" => Publish::Raw,
            "compressed" => Publish::Compressed,
            "both" => Publish::Both,
            _ => return None,
        })
    }
}

/// Declares the `transport` parameter (`raw`, `compressed` or `auto`; default `auto`).
pub fn declare_input(node: &Node) -> Result<Transport, ImageError> {
    let v: String = node.declare_parameter("transport", "auto".to_string())?;
    Transport::parse(&v).ok_or(ImageError::Parameter { name: "transport", value: v, expected: "raw, compressed or auto" })
}

/// Declares the output parameters: `publish_transport` (`raw` (default),
/// `compressed` or `both`), `compression` (`jpeg` (default) or `png`) and
/// `jpeg_quality` (1–100, default 95).
pub fn declare_output(node: &Node) -> Result<(Publish, Compression), ImageError> {
    let v: String = node.declare_parameter("publish_transport", "raw".to_string())?;
    let publish =
        Publish::parse(&v).ok_or(ImageError::Parameter { name: "publish_transport", value: v, expected: "raw, compressed or both" })?;
    let codec: String = node.declare_parameter("compression", "jpeg".to_string())?;
    let quality: i64 = node.declare_parameter("jpeg_quality", 95)?;
    let how = Compression::parse(&codec, quality).map_err(|e| ImageError::Parameter {
        name: if matches!(e, ImageError::Quality(_)) { "jpeg_quality" } else { "compression" },
        value: if matches!(e, ImageError::Quality(_)) { quality.to_string() } else { codec.clone() },
        expected: if matches!(e, ImageError::Quality(_)) { "1 to 100" } else { "jpeg or png" },
    })?;
    Ok((publish, how))
}

/// A frame as it arrived: the image, and the compressed message it was
/// decoded from when it came compressed (to record or pass on unchanged).
#[derive(Clone, Debug)]
pub struct ReceivedImage {
    /// The image (decoded when it came compressed).
    pub image: Arc<Image>,
    /// The message it came in, when compressed.
    pub compressed: Option<Arc<CompressedImage>>,
}

/// Reads a camera topic raw or compressed; undecodable frames are skipped
/// and reported on the node's log, once per topic at first and then at the
/// 10th, 100th, … with the count.
pub struct ImageSubscription {
    raw_topic: String,
    raw: Option<Subscription<Image>>,
    compressed: Option<Subscription<CompressedImage>>,
    log: Logger,
    skipped: AtomicU64,
}

impl ImageSubscription {
    /// Subscribes `topic` (relative names resolve in the node's namespace,
    /// remappings apply) per `transport`.
    pub fn new(node: &Node, topic: &str, transport: Transport, qos: Qos) -> Result<ImageSubscription, ImageError> {
        let raw_topic = node.resolve_topic(topic)?;
        let raw = if transport != Transport::Compressed { Some(node.create_subscription::<Image>(&raw_topic, qos)?) } else { None };
        let compressed = if transport != Transport::Raw {
            Some(node.create_subscription::<CompressedImage>(&compressed_topic(&raw_topic), qos)?)
        } else {
            None
        };
        Ok(ImageSubscription { raw_topic, raw, compressed, log: node.logger().clone(), skipped: AtomicU64::new(0) })
    }

    /// The raw topic (fully qualified), whichever transport is read.
    pub fn raw_topic(&self) -> &str {
        &self.raw_topic
    }

    /// The topic frames are read from: the raw one, or its compressed sibling
    /// once that is what is read (with `auto`, once it has delivered).
    pub fn topic(&self) -> String {
        if self.raw.is_none() {
            compressed_topic(&self.raw_topic)
        } else {
            self.raw_topic.clone()
        }
    }

    /// Frames skipped because they could not be decoded.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// The next frame if one is waiting.
    pub fn try_recv(&mut self) -> Option<ReceivedImage> {
        if let Some(raw) = &self.raw {
            if let Some(image) = raw.try_recv() {
                if self.compressed.take().is_some() {
                    info!(self.log, "transport auto: frames arrive raw on {}; reading them", self.raw_topic);
                }
                return Some(ReceivedImage { image, compressed: None });
            }
        }
        loop {
            let msg = self.compressed.as_ref()?.try_recv()?;
            if self.raw.take().is_some() {
                info!(self.log, "transport auto: frames arrive compressed on {}; reading them", compressed_topic(&self.raw_topic));
            }
            match decompress(&msg, &compressed_topic(&self.raw_topic)) {
                Ok(image) => return Some(ReceivedImage { image: Arc::new(image), compressed: Some(msg) }),
                Err(e) => {
                    let n = self.skipped.fetch_add(1, Ordering::Relaxed) + 1;
                    if s2r_runtime::log::worth_logging(n) {
                        self.log.warn(format_args!("{e}; frame skipped ({n} skipped on this topic so far)"));
                    }
                }
            }
        }
    }
}

/// Publishes an image output raw, compressed (`<topic>/compressed`), or both.
/// A compressed frame is only encoded while something subscribes to it; an
/// image that cannot be compressed is logged on the node's log (the 1st,
/// 10th, 100th, …) and published raw only.
pub struct ImagePublisher {
    raw: Option<Publisher<Image>>,
    compressed: Option<(Publisher<CompressedImage>, Compression)>,
    topic: String,
    log: Logger,
    failures: AtomicU64,
}

impl ImagePublisher {
    /// Advertises `topic` (and/or its compressed sibling) per `publish`.
    pub fn new(node: &Node, topic: &str, publish: Publish, how: Compression, qos: Qos) -> Result<ImagePublisher, ImageError> {
        ImagePublisher::new_with(node, topic, publish, how, qos, Writer::Graph)
    }

    /// [`ImagePublisher::new`] with DDS writers made as `writer` says
    /// ([`Writer::Acknowledged`]: [`ImagePublisher::wait_for_acknowledgments`] can wait).
    pub fn new_with(
        node: &Node,
        topic: &str,
        publish: Publish,
        how: Compression,
        qos: Qos,
        writer: Writer,
    ) -> Result<ImagePublisher, ImageError> {
        let resolved = node.resolve_topic(topic)?;
        let raw = if publish != Publish::Compressed { Some(node.create_publisher_with::<Image>(&resolved, qos, writer)?) } else { None };
        let compressed = if publish != Publish::Raw {
            Some((node.create_publisher_with::<CompressedImage>(&compressed_topic(&resolved), qos, writer)?, how))
        } else {
            None
        };
        Ok(ImagePublisher { raw, compressed, topic: resolved, log: node.logger().clone(), failures: AtomicU64::new(0) })
    }

    /// The raw topic (fully qualified).
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Subscriptions of the raw and compressed topics together.
    pub fn subscription_count(&self) -> usize {
        self.raw.as_ref().map_or(0, |p| p.subscription_count()) + self.compressed.as_ref().map_or(0, |(p, _)| p.subscription_count())
    }

    /// Publishes `img` on each transport.
    pub fn publish(&self, img: Image) -> Result<(), PublishError> {
        let img = Arc::new(img);
        if let Some((p, how)) = &self.compressed {
            if p.subscription_count() > 0 {
                match compress(&img, &self.topic, *how) {
                    Ok(c) => p.publish(c)?,
                    Err(e) => {
                        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                        if s2r_runtime::log::worth_logging(n) {
                            self.log.warn(format_args!("{e}; not published compressed ({n} so far)"));
                        }
                    }
                }
            }
        }
        match &self.raw {
            Some(p) => p.publish_shared(img),
            None => Ok(()),
        }
    }

    /// Waits until the readers of both transports have acknowledged
    /// everything, or `max` passes (see [`Publisher::wait_for_acknowledgments`]).
    pub fn wait_for_acknowledgments(&self, max: Duration) -> Result<bool, PublishError> {
        let deadline = Instant::now() + max;
        let mut all = true;
        if let Some(p) = &self.raw {
            all &= p.wait_for_acknowledgments(deadline.saturating_duration_since(Instant::now()))?;
        }
        if let Some((p, _)) = &self.compressed {
            all &= p.wait_for_acknowledgments(deadline.saturating_duration_since(Instant::now()))?;
        }
        Ok(all)
    }

    /// Publishes; a failure is logged (the 1st, 10th, 100th, …) instead of returned.
    pub fn publish_or_log(&self, img: Image) {
        if let Err(e) = self.publish(img) {
            let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
            if s2r_runtime::log::worth_logging(n) {
                self.log.warn(format_args!("{e} ({n} failures on this topic so far)"));
            }
        }
    }
}
