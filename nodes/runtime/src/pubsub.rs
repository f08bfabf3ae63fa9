//! Typed publishers and subscriptions.
//!
//! A message published by a node goes, as one `Arc`, to every subscription of
//! the same topic inside this process (no serialization, no copy of image
//! buffers), and over DDS to subscribers in other processes when there are any.
//! A subscription takes messages from both paths into one bounded queue:
//! when a reader falls behind, the oldest messages are dropped (keep-last), so
//! memory never grows without bound.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use s2r_idl::Message;
use tokio::sync::Notify;

use crate::clock::{system_now, Stamp};
use crate::context::{Context, LocalMessage, LocalSink, TopicSlot};
use crate::log::Logger;

/// The DDS writer refused a message (in-process subscribers have it
/// already); the publisher stays usable.
#[derive(Debug, thiserror::Error)]
#[error("publishing on {topic}: {reason}")]
pub struct PublishError {
    /// The topic.
    pub topic: String,
    /// What the DDS writer said.
    pub reason: String,
}

/// Whether DDS readers outside this process want a topic. Asking the discovery
/// database is cheap but not free, so the answer is kept for a short while.
pub(crate) struct RemoteReaders {
    dds_topic: String,
    prefix: [u8; 12],
    checked: Mutex<Option<Instant>>,
    count: AtomicUsize,
}

impl RemoteReaders {
    const REFRESH: Duration = Duration::from_millis(100);

    pub fn new(dds_topic: String, prefix: [u8; 12]) -> Self {
        RemoteReaders { dds_topic, prefix, checked: Mutex::new(None), count: AtomicUsize::new(0) }
    }

    /// Readers of the topic in other processes.
    pub fn count(&self, ctx: &Context) -> usize {
        let mut checked = self.checked.lock().unwrap();
        if checked.is_none_or(|t| t.elapsed() > Self::REFRESH) {
            let count = ctx
                .participant()
                .discovered_readers()
                .iter()
                .filter(|r| {
                    r.subscription_topic_data.topic_name() == &self.dds_topic
                        && r.reader_proxy.remote_reader_guid.to_bytes()[..12] != self.prefix
                })
                .count();
            self.count.store(count, Ordering::Relaxed);
            *checked = Some(Instant::now());
        }
        self.count.load(Ordering::Relaxed)
    }

    pub fn any(&self, ctx: &Context) -> bool {
        self.count(ctx) > 0
    }
}

/// The DDS side of a [`Publisher`] (see [`Writer`](crate::Writer)).
pub(crate) enum DdsWriter<M: Message> {
    Graph(ros2_client::Publisher<Arc<M>>),
    Acknowledged(rustdds::no_key::DataWriterCdr<Arc<M>>),
}

impl<M: Message> DdsWriter<M> {
    fn write(&self, msg: Arc<M>) -> Result<(), String> {
        match self {
            DdsWriter::Graph(p) => p.publish(msg).map_err(|e| format!("{e:?}")),
            DdsWriter::Acknowledged(w) => w.write(msg, Some(rustdds::Timestamp::now())).map_err(|e| format!("{e:?}")),
        }
    }
}

/// Publishes messages of type `M` on one topic.
pub struct Publisher<M: Message> {
    pub(crate) topic: String,
    pub(crate) ctx: Context,
    pub(crate) slot: Arc<TopicSlot>,
    pub(crate) dds: DdsWriter<M>,
    pub(crate) remote: RemoteReaders,
    /// Transient-local topics keep their history in the DDS writer for late
    /// joiners, so they are written even with nobody listening yet.
    pub(crate) always_write: bool,
    /// Failed publishes so far (see [`Publisher::publish_or_log`]).
    pub(crate) failures: AtomicU64,
}

impl<M: Message> Publisher<M> {
    /// Hands `msg` to this process's subscriptions of the topic, and writes
    /// it to DDS when a subscriber elsewhere has been discovered (always, on a
    /// transient-local topic).
    pub fn publish(&self, msg: M) -> Result<(), PublishError> {
        self.publish_shared(Arc::new(msg))
    }

    /// Publishes a message that is already shared: subscribers in this process
    /// receive this very `Arc`.
    pub fn publish_shared(&self, msg: Arc<M>) -> Result<(), PublishError> {
        self.slot.deliver_with(|deliver| {
            let any: Arc<dyn Any + Send + Sync> = msg.clone();
            let cache = OnceLock::new();
            let serialized = || cache.get_or_init(|| crate::raw::Serialized::encode(&*msg).ok()).clone();
            deliver(&LocalMessage { type_name: M::TYPE_NAME, typed: Some(&any), serialized: &serialized });
        });
        if self.always_write || self.remote.any(&self.ctx) {
            self.dds.write(msg).map_err(|reason| PublishError { topic: self.topic.clone(), reason })?;
        }
        Ok(())
    }

    /// Publishes; a failure is logged on `log` instead of returned: the first
    /// on this topic at once, then the 10th, 100th, … with the count, so a node
    /// whose transport fails keeps running without flooding its log.
    pub fn publish_or_log(&self, msg: M, log: &Logger) {
        self.publish_shared_or_log(Arc::new(msg), log)
    }

    /// [`Publisher::publish_or_log`] for a message that is already shared.
    pub fn publish_shared_or_log(&self, msg: Arc<M>, log: &Logger) {
        if let Err(e) = self.publish_shared(msg) {
            let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
            if crate::log::worth_logging(n) {
                log.warn(format_args!("{e} ({n} failed publish{} on this topic so far)", if n == 1 { "" } else { "es" }));
            }
        }
    }

    /// Subscriptions in this process plus those discovered in others.
    pub fn subscription_count(&self) -> usize {
        self.slot.sinks.read().unwrap().len() + self.remote.count(&self.ctx)
    }

    /// Whether a subscriber in another process has been discovered.
    pub fn has_remote_subscribers(&self) -> bool {
        self.remote.any(&self.ctx)
    }

    /// Blocks until every reliable reader in other processes has acknowledged
    /// everything published so far, or `max` passes: `Ok(true)` when all was
    /// acknowledged (at once when there are no such readers), `Ok(false)` on
    /// time-out. A publisher made with [`Writer::Graph`](crate::Writer) cannot
    /// wait and says so.
    pub fn wait_for_acknowledgments(&self, max: Duration) -> Result<bool, PublishError> {
        match &self.dds {
            DdsWriter::Acknowledged(w) => Ok(w.wait_for_acknowledgments(max).unwrap_or(false)),
            DdsWriter::Graph(_) => Err(PublishError {
                topic: self.topic.clone(),
                reason: "waiting for acknowledgments needs a publisher made with Writer::Acknowledged".into(),
            }),
        }
    }
}

/// Where and when a message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiveInfo {
    /// The publisher's time of writing, when it sent one.
    pub source_stamp: Option<Stamp>,
    /// System time of arrival.
    pub received: Stamp,
    /// Delivered inside this process, without serialization.
    pub intra_process: bool,
    /// GUID of the publishing DDS writer (zero for intra-process).
    pub publisher: [u8; 16],
}

impl ReceiveInfo {
    /// A message handed over inside this process, now.
    pub(crate) fn intra_process() -> ReceiveInfo {
        ReceiveInfo { source_stamp: None, received: system_now(), intra_process: true, publisher: [0; 16] }
    }
}

/// A message with its [`ReceiveInfo`].
#[derive(Clone, Debug)]
pub struct Received<M> {
    /// The message; from a publisher in this process, the very `Arc` it
    /// published (see [`Publisher::publish_shared`]).
    pub msg: Arc<M>,
    /// Its origin and arrival time.
    pub info: ReceiveInfo,
}

/// A bounded keep-last queue with async wake-up.
pub(crate) struct Queue<M> {
    items: Mutex<VecDeque<Received<M>>>,
    depth: usize,
    notify: Notify,
    dropped: AtomicU64,
    pub(crate) malformed: AtomicU64,
}

impl<M> Queue<M> {
    pub fn new(depth: usize) -> Self {
        Queue {
            items: Mutex::new(VecDeque::with_capacity(depth.min(64))),
            depth: depth.max(1),
            notify: Notify::new(),
            dropped: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
        }
    }

    pub fn push(&self, r: Received<M>) {
        {
            let mut q = self.items.lock().unwrap();
            if q.len() >= self.depth {
                q.pop_front();
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            q.push_back(r);
        }
        self.notify.notify_one();
    }

    pub fn dropped_count(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn pop(&self) -> Option<Received<M>> {
        self.items.lock().unwrap().pop_front()
    }

    pub async fn recv(&self) -> Received<M> {
        loop {
            if let Some(r) = self.pop() {
                return r;
            }
            self.notify.notified().await;
        }
    }
}

/// Hands intra-process messages of type `M` to a subscription's queue.
pub(crate) struct TypedSink<M> {
    pub id: u64,
    pub queue: Arc<Queue<M>>,
    pub warned: AtomicBool,
    pub topic: String,
}

impl<M: Message> LocalSink for TypedSink<M> {
    fn deliver(&self, local: &LocalMessage<'_>) {
        let msg = if local.type_name != M::TYPE_NAME {
            None
        } else if let Some(typed) = local.typed {
            typed.clone().downcast::<M>().ok()
        } else {
            // A publisher of serialized messages (a bag player, a dynamic type).
            (local.serialized)().and_then(|s| s.decode::<M>().ok()).map(Arc::new)
        };
        match msg {
            Some(m) => self.queue.push(Received { msg: m, info: ReceiveInfo::intra_process() }),
            None => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "[WARN] {}: an intra-process message of type {} was ignored: this subscription takes {}",
                        self.topic,
                        local.type_name,
                        M::TYPE_NAME
                    );
                }
            }
        }
    }

    fn id(&self) -> u64 {
        self.id
    }
}

/// Removes a sink from its topic slot when the subscription goes away.
pub(crate) struct SinkRegistration {
    pub slot: Arc<TopicSlot>,
    pub id: u64,
}

impl Drop for SinkRegistration {
    fn drop(&mut self) {
        self.slot.sinks.write().unwrap().retain(|s| s.id() != self.id);
    }
}

/// Aborts a background task when dropped.
pub(crate) struct TaskGuard(pub tokio::task::JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Receives messages of type `M` from one topic.
pub struct Subscription<M: Message> {
    pub(crate) topic: String,
    pub(crate) queue: Arc<Queue<M>>,
    pub(crate) _registration: SinkRegistration,
    pub(crate) _task: TaskGuard,
}

impl<M: Message> Subscription<M> {
    /// The fully qualified topic name, after remapping.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The next message (waits for one).
    pub async fn recv(&self) -> Arc<M> {
        self.queue.recv().await.msg
    }

    /// The next message with where and when it came from.
    pub async fn recv_with_info(&self) -> Received<M> {
        self.queue.recv().await
    }

    /// The next message if one is waiting.
    pub fn try_recv(&self) -> Option<Arc<M>> {
        self.queue.pop().map(|r| r.msg)
    }

    /// Messages dropped because this reader fell behind its queue depth.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped_count()
    }

    /// Samples from the network that could not be decoded (and were skipped).
    pub fn malformed(&self) -> u64 {
        self.queue.malformed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn failures_are_logged_at_powers_of_ten() {
        let logged: Vec<u64> = (0..=2000).filter(|&n| crate::log::worth_logging(n)).collect();
        assert_eq!(logged, [1, 10, 100, 1000]);
    }
}
