//! Serialized messages and the endpoints that move them without knowing their
//! Rust type: for tools (`s2r topic echo | hz | bw | pub`), bag recording and
//! playback, and types known only from a schema at run time.

use std::sync::Arc;

use byteorder::{BigEndian, LittleEndian};
use futures::StreamExt;
use rustdds::no_key::{Decode, DefaultDecoder, DeserializerAdapter, SerializerAdapter};
use rustdds::{QosPolicies, RepresentationIdentifier, TopicKind};
use s2r_idl::dynamic::cdr::{body, Body};
pub use s2r_idl::dynamic::CdrError;
use s2r_idl::TypeName;
use serde::Serialize;

use crate::clock::{system_now, Stamp};
use crate::context::{Context, LocalMessage, LocalSink, TopicSlot};
use crate::node::{Node, NodeError};
use crate::pubsub::{PublishError, Queue, ReceiveInfo, Received, RemoteReaders, SinkRegistration, TaskGuard};
use crate::qos::{Durability, Qos};

/// A serialized ROS 2 message: the 4-byte encapsulation header, then CDR.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Serialized(pub bytes::Bytes);

impl Serialized {
    /// Little-endian CDR of `m`, with its header.
    pub fn encode<M: Serialize>(m: &M) -> Result<Serialized, CdrError> {
        s2r_idl::dynamic::serialize(m).map(|v| Serialized(v.into()))
    }

    /// The message of type `M` these bytes hold.
    pub fn decode<M: s2r_idl::Message>(&self) -> Result<M, CdrError> {
        let r = match body(&self.0)? {
            Body::Little(b) => cdr_encoding::from_bytes::<M, LittleEndian>(b),
            Body::Big(b) => cdr_encoding::from_bytes::<M, BigEndian>(b),
        };
        r.map(|(m, _)| m).map_err(|source| CdrError::Malformed { type_name: M::TYPE_NAME.into(), source })
    }

    /// Bytes, the 4-byte header included.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes at all, not even a header.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A sample the raw endpoints cannot carry.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RawError {
    /// A DDS data representation other than plain CDR.
    #[error("unsupported representation {0:?}")]
    Representation(RepresentationIdentifier),
    /// Big-endian CDR, which the writer does not republish.
    #[error("only little-endian CDR can be republished")]
    BigEndian,
}

/// rustdds adapter that keeps samples as bytes (with their header).
pub(crate) struct RawAdapter;

#[derive(Clone)]
pub(crate) struct RawDecoder;

impl<'de> Decode<'de, Serialized> for RawDecoder {
    type Error = RawError;
    fn decode_bytes(self, input: &'de [u8], encoding: RepresentationIdentifier) -> Result<Serialized, RawError> {
        let header: [u8; 4] = if encoding == RepresentationIdentifier::CDR_LE {
            [0, 1, 0, 0]
        } else if encoding == RepresentationIdentifier::CDR_BE {
            [0, 0, 0, 0]
        } else {
            return Err(RawError::Representation(encoding));
        };
        let mut v = Vec::with_capacity(input.len() + 4);
        v.extend_from_slice(&header);
        v.extend_from_slice(input);
        Ok(Serialized(v.into()))
    }
}

impl DeserializerAdapter<Serialized> for RawAdapter {
    type Error = RawError;
    type Decoded = Serialized;
    fn supported_encodings() -> &'static [RepresentationIdentifier] {
        &[RepresentationIdentifier::CDR_LE, RepresentationIdentifier::CDR_BE]
    }
    fn transform_decoded(decoded: Serialized) -> Serialized {
        decoded
    }
}

impl DefaultDecoder<Serialized> for RawAdapter {
    type Decoder = RawDecoder;
    const DECODER: RawDecoder = RawDecoder;
}

impl SerializerAdapter<Serialized> for RawAdapter {
    type Error = RawError;
    fn output_encoding() -> RepresentationIdentifier {
        RepresentationIdentifier::CDR_LE
    }
    fn to_bytes(value: &Serialized) -> Result<bytes::Bytes, RawError> {
        match value.0.get(..2) {
            Some([0, 1]) => Ok(value.0.slice(4..)),
            _ => Err(RawError::BigEndian),
        }
    }
}

fn dds_type_name(type_name: &str) -> Result<String, NodeError> {
    TypeName::parse(type_name).map(|t| t.dds()).ok_or_else(|| NodeError::TypeName(type_name.into()))
}

fn dds_topic(ctx: &Context, full: &str, type_name: &str, qos: &QosPolicies) -> Result<rustdds::Topic, NodeError> {
    ctx.participant()
        .create_topic(format!("rt{full}"), dds_type_name(type_name)?, qos, TopicKind::NoKey)
        .map_err(|e| NodeError::Dds { what: format!("creating topic {full}"), reason: format!("{e:?}") })
}

/// Hands intra-process messages to a raw subscription, serialized.
struct RawSink {
    id: u64,
    queue: Arc<Queue<Serialized>>,
}

impl LocalSink for RawSink {
    fn deliver(&self, local: &LocalMessage<'_>) {
        if let Some(s) = (local.serialized)() {
            self.queue.push(Received { msg: Arc::new(s), info: ReceiveInfo::intra_process() });
        }
    }
    fn id(&self) -> u64 {
        self.id
    }
}

/// Receives serialized messages of a topic, whatever their type.
pub struct RawSubscription {
    queue: Arc<Queue<Serialized>>,
    _registration: SinkRegistration,
    _task: TaskGuard,
}

impl RawSubscription {
    /// The next message, waiting for one: little- or big-endian CDR, as the
    /// publisher wrote it. A typed message published in this process is
    /// serialized once, however many raw subscriptions take it.
    pub async fn recv(&self) -> Received<Serialized> {
        self.queue.recv().await
    }
}

/// Publishes serialized messages under a type name given at run time.
pub struct RawPublisher {
    topic: String,
    type_name: String,
    ctx: Context,
    slot: Arc<TopicSlot>,
    writer: rustdds::no_key::DataWriter<Serialized, RawAdapter>,
    remote: RemoteReaders,
    always_write: bool,
}

impl RawPublisher {
    /// Publishes as [`Publisher::publish`](crate::Publisher::publish) does.
    /// Typed subscriptions in this process decode it, or skip it with one
    /// warning when it is not their type or does not decode. Only
    /// little-endian CDR can go out over DDS: big-endian bytes fail with a
    /// [`PublishError`] whenever they would.
    pub fn publish(&self, msg: Serialized) -> Result<(), PublishError> {
        self.slot.deliver_with(|deliver| {
            let serialized = || Some(msg.clone());
            deliver(&LocalMessage { type_name: &self.type_name, typed: None, serialized: &serialized });
        });
        if self.always_write || self.remote.any(&self.ctx) {
            self.writer.write(msg, None).map_err(|e| PublishError { topic: self.topic.clone(), reason: format!("{e:?}") })?;
        }
        Ok(())
    }

    /// Whether a subscriber in another process has been discovered.
    pub fn has_remote_subscribers(&self) -> bool {
        self.remote.any(&self.ctx)
    }

    /// Blocks until every reliable subscriber has acknowledged everything
    /// published, or `max` passes; `true` when all was acknowledged.
    pub fn wait_for_acknowledgments(&self, max: std::time::Duration) -> bool {
        self.writer.wait_for_acknowledgments(max).unwrap_or(false)
    }

    /// Subscriptions discovered on DDS plus those in this process.
    pub fn subscription_count(&self) -> usize {
        self.slot.sinks.read().unwrap().len() + self.remote.count(&self.ctx)
    }
}

impl Node {
    /// A subscription that keeps messages serialized; `type_name` is `pkg/msg/Type`.
    pub fn create_raw_subscription(&self, topic: &str, type_name: &str, qos: Qos) -> Result<RawSubscription, NodeError> {
        let full = self.resolve_topic(topic)?;
        let ctx = self.context();
        let policies = QosPolicies::from(qos.to_profile());
        let topic_obj = dds_topic(ctx, &full, type_name, &policies)?;
        let reader = ctx
            .raw_subscriber()
            .create_simple_datareader_no_key::<Serialized, RawAdapter>(&topic_obj, Some(policies))
            .map_err(|e| NodeError::Dds { what: format!("creating reader on {full}"), reason: format!("{e:?}") })?;
        let queue = Arc::new(Queue::new(qos.queue_depth()));
        let id = ctx.next_id();
        let slot = ctx.topic_slot(&full);
        slot.sinks.write().unwrap().push(Arc::new(RawSink { id, queue: queue.clone() }));
        let prefix = ctx.guid_prefix();
        let q = queue.clone();
        let logger = self.logger().clone();
        let topic_name = full.clone();
        let task = tokio::spawn(async move {
            let stream = reader.as_async_stream();
            futures::pin_mut!(stream);
            while let Some(item) = stream.next().await {
                match item {
                    Ok(dcc) => {
                        let guid = dcc.writer_guid.to_bytes();
                        if guid[..12] == prefix {
                            continue;
                        }
                        let source_stamp = dcc
                            .source_timestamp()
                            .and_then(|t| ros2_client::ros_time::ROSTime::try_from(t).ok())
                            .map(|t| Stamp(t.to_nanos()));
                        q.push(Received {
                            msg: Arc::new(dcc.into_value()),
                            info: ReceiveInfo { source_stamp, received: system_now(), intra_process: false, publisher: guid },
                        });
                    }
                    Err(e) => logger.warn(format!("{topic_name}: skipped a sample: {e:?}")),
                }
            }
        });
        Ok(RawSubscription { queue, _registration: SinkRegistration { slot, id }, _task: TaskGuard(task) })
    }

    /// A publisher of serialized messages; `type_name` is `pkg/msg/Type`.
    pub fn create_raw_publisher(&self, topic: &str, type_name: &str, qos: Qos) -> Result<RawPublisher, NodeError> {
        let full = self.resolve_topic(topic)?;
        let ctx = self.context();
        let policies = QosPolicies::from(qos.to_profile());
        let topic_obj = dds_topic(ctx, &full, type_name, &policies)?;
        let writer = ctx
            .raw_publisher()
            .create_datawriter_no_key::<Serialized, RawAdapter>(&topic_obj, Some(policies))
            .map_err(|e| NodeError::Dds { what: format!("creating writer on {full}"), reason: format!("{e:?}") })?;
        Ok(RawPublisher {
            slot: ctx.topic_slot(&full),
            remote: RemoteReaders::new(format!("rt{full}"), ctx.guid_prefix()),
            always_write: qos.durability == Durability::TransientLocal,
            ctx: ctx.clone(),
            type_name: type_name.to_string(),
            topic: full,
            writer,
        })
    }
}
