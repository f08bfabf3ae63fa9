//! The process-wide half of the runtime: one DDS participant shared by every node
//! of the process, the ROS environment variables, and the intra-process topic
//! table through which nodes of one process hand each other messages.

use std::any::Any;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use rustdds::{DomainParticipant, DomainParticipantBuilder, RTPSEntity};

/// Errors of starting the runtime: each names the setting and what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// An environment variable with a value ROS 2 does not take.
    #[error("{var}='{value}': {reason}")]
    Env {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What ROS 2 takes.
        reason: String,
    },
    /// The DDS participant did not start (what the DDS layer said).
    #[error("cannot start DDS: {0}")]
    Dds(String),
}

/// How far discovery reaches, after `ROS_AUTOMATIC_DISCOVERY_RANGE` and
/// `ROS_LOCALHOST_ONLY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryRange {
    /// Every interface (the DDS default).
    Subnet,
    /// Loopback only: nothing leaves the host.
    Localhost,
}

/// Where and how this process joins the ROS graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextOptions {
    /// `ROS_DOMAIN_ID`: only nodes of the same domain see each other. 0 to
    /// 232, what the RTPS port mapping leaves room for.
    pub domain_id: u16,
    /// Which interfaces discovery and traffic use.
    pub range: DiscoveryRange,
    /// Kernel socket buffers to ask for. Large images arrive as many UDP
    /// fragments; small buffers lose them under load.
    pub socket_buffer_bytes: usize,
}

impl Default for ContextOptions {
    fn default() -> Self {
        ContextOptions { domain_id: 0, range: DiscoveryRange::Subnet, socket_buffer_bytes: 16 * 1024 * 1024 }
    }
}

impl ContextOptions {
    /// Reads `ROS_DOMAIN_ID`, `ROS_AUTOMATIC_DISCOVERY_RANGE` and `ROS_LOCALHOST_ONLY`.
    pub(crate) fn from_env() -> Result<ContextOptions, ContextError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// [`ContextOptions::from_env`] with the variables from `get`.
    pub(crate) fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<ContextOptions, ContextError> {
        let mut o = ContextOptions::default();
        if let Some(v) = get("ROS_DOMAIN_ID").filter(|v| !v.trim().is_empty()) {
            o.domain_id = match v.trim().parse::<u16>() {
                // The RTPS port mapping leaves room for domains 0..=232.
                Ok(d) if d <= 232 => d,
                _ => return Err(ContextError::Env { var: "ROS_DOMAIN_ID", value: v, reason: "must be an integer from 0 to 232".into() }),
            };
        }
        let range = get("ROS_AUTOMATIC_DISCOVERY_RANGE").filter(|v| !v.is_empty());
        o.range = match range.as_deref().map(str::to_ascii_uppercase).as_deref() {
            // OFF (no automatic discovery) has no rustdds equivalent; keeping
            // discovery on loopback is the closest that never leaves the host.
            Some("LOCALHOST") | Some("OFF") => DiscoveryRange::Localhost,
            Some("SUBNET") | Some("SYSTEM_DEFAULT") => DiscoveryRange::Subnet,
            None => DiscoveryRange::Subnet,
            Some(_) => {
                return Err(ContextError::Env {
                    var: "ROS_AUTOMATIC_DISCOVERY_RANGE",
                    value: range.unwrap(),
                    reason: "must be one of SUBNET, LOCALHOST, OFF, SYSTEM_DEFAULT".into(),
                })
            }
        };
        // The older switch still forces loopback when set, as in ROS 2 Jazzy.
        if let Some(v) = get("ROS_LOCALHOST_ONLY") {
            match v.trim() {
                "1" => o.range = DiscoveryRange::Localhost,
                "0" | "" => {}
                _ => return Err(ContextError::Env { var: "ROS_LOCALHOST_ONLY", value: v, reason: "must be 0 or 1".into() }),
            }
        }
        Ok(o)
    }
}

/// A message published inside this process, as the publisher has it.
pub(crate) struct LocalMessage<'a> {
    /// `pkg/msg/Type` of the publisher.
    pub type_name: &'a str,
    /// The message itself (`Arc<M>`), when the publisher is typed.
    pub typed: Option<&'a Arc<dyn Any + Send + Sync>>,
    /// Its serialized form, made at most once however many sinks ask.
    pub serialized: &'a dyn Fn() -> Option<crate::raw::Serialized>,
}

/// Something that takes messages published inside this process on one topic.
pub(crate) trait LocalSink: Send + Sync {
    fn deliver(&self, msg: &LocalMessage<'_>);
    fn id(&self) -> u64;
}

/// The subscribers inside this process of one topic.
#[derive(Default)]
pub(crate) struct TopicSlot {
    pub sinks: RwLock<Vec<Arc<dyn LocalSink>>>,
}

impl TopicSlot {
    /// Hands a message to every subscription of this topic in this process;
    /// `make` builds the message only when there is one.
    pub fn deliver_with(&self, make: impl FnOnce(&dyn Fn(&LocalMessage<'_>))) {
        let sinks = self.sinks.read().unwrap();
        if !sinks.is_empty() {
            make(&|m| sinks.iter().for_each(|s| s.deliver(m)));
        }
    }
}

struct ContextInner {
    participant: DomainParticipant,
    ros: ros2_client::Context,
    topics: Mutex<HashMap<String, Arc<TopicSlot>>>,
    next_id: std::sync::atomic::AtomicU64,
    raw_subscriber: OnceLock<rustdds::Subscriber>,
    raw_publisher: OnceLock<rustdds::Publisher>,
}

/// One per process (clone it freely): the DDS participant and the
/// intra-process topic table shared by every node created from it.
#[derive(Clone)]
pub struct Context {
    inner: Arc<ContextInner>,
}

impl Context {
    /// Joins the ROS graph configured by the environment (`ROS_DOMAIN_ID`, …).
    pub fn from_env() -> Result<Context, ContextError> {
        Self::new(ContextOptions::from_env()?)
    }

    /// Starts this process's DDS participant with `options`, whatever the
    /// environment says; [`ContextError::Dds`] when the DDS layer cannot
    /// open its sockets.
    pub fn new(options: ContextOptions) -> Result<Context, ContextError> {
        crate::log::dds_diagnostics_from_env();
        let mut b = DomainParticipantBuilder::new(options.domain_id)
            .socket_receive_buffer_size(options.socket_buffer_bytes)
            .socket_send_buffer_size(options.socket_buffer_bytes);
        if options.range == DiscoveryRange::Localhost {
            b = b.with_only_networks([IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        }
        let participant = b.build().map_err(|e| ContextError::Dds(format!("{e:?}")))?;
        let ros = ros2_client::Context::from_domain_participant(participant.clone()).map_err(|e| ContextError::Dds(format!("{e:?}")))?;
        Ok(Context {
            inner: Arc::new(ContextInner {
                participant,
                ros,
                topics: Mutex::new(HashMap::new()),
                next_id: std::sync::atomic::AtomicU64::new(1),
                raw_subscriber: OnceLock::new(),
                raw_publisher: OnceLock::new(),
            }),
        })
    }

    pub(crate) fn participant(&self) -> &DomainParticipant {
        &self.inner.participant
    }

    pub(crate) fn ros(&self) -> &ros2_client::Context {
        &self.inner.ros
    }

    /// The 12-byte GUID prefix shared by every DDS entity of this context:
    /// the first 12 bytes of [`crate::graph::Endpoint::gid`] for its own
    /// readers and writers.
    pub fn guid_prefix(&self) -> [u8; 12] {
        let b = self.inner.participant.guid().to_bytes();
        b[..12].try_into().unwrap()
    }

    pub(crate) fn topic_slot(&self, topic: &str) -> Arc<TopicSlot> {
        self.inner.topics.lock().unwrap().entry(topic.to_string()).or_default().clone()
    }

    /// The DDS subscriber that groups readers of serialized messages.
    pub(crate) fn raw_subscriber(&self) -> &rustdds::Subscriber {
        self.inner
            .raw_subscriber
            .get_or_init(|| self.inner.participant.create_subscriber(&rustdds::QosPolicies::qos_none()).expect("create DDS subscriber"))
    }

    pub(crate) fn raw_publisher(&self) -> &rustdds::Publisher {
        self.inner
            .raw_publisher
            .get_or_init(|| self.inner.participant.create_publisher(&rustdds::QosPolicies::qos_none()).expect("create DDS publisher"))
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn environment_is_honoured() {
        let o = ContextOptions::from_vars(vars(&[("ROS_DOMAIN_ID", "42")])).unwrap();
        assert_eq!((o.domain_id, o.range), (42, DiscoveryRange::Subnet));
        let o = ContextOptions::from_vars(vars(&[("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")])).unwrap();
        assert_eq!(o.range, DiscoveryRange::Localhost);
        let o = ContextOptions::from_vars(vars(&[("ROS_LOCALHOST_ONLY", "1")])).unwrap();
        assert_eq!(o.range, DiscoveryRange::Localhost);
        let e = ContextOptions::from_vars(vars(&[("ROS_DOMAIN_ID", "300")])).unwrap_err();
        assert!(e.to_string().starts_with("ROS_DOMAIN_ID='300'"), "{e}");
        let e = ContextOptions::from_vars(vars(&[("ROS_AUTOMATIC_DISCOVERY_RANGE", "MARS")])).unwrap_err();
        assert!(e.to_string().contains("ROS_AUTOMATIC_DISCOVERY_RANGE"), "{e}");
    }
}
