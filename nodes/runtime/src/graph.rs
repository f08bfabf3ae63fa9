//! The ROS graph as discovery sees it: topics and their endpoints (from DDS
//! discovery), and nodes (from `ros_discovery_info`, which every ROS 2 node
//! publishes), with DDS names turned back into ROS names.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use rustdds::CDRDeserializerAdapter;
use rustdds::{QosPolicies, QosPolicyBuilder, TopicKind};
use sim2real_msgs::rmw_dds_common::msg::ParticipantEntitiesInfo;

use crate::context::Context;
use crate::node::NodeError;
use crate::pubsub::TaskGuard;

/// Which side of a topic an [`Endpoint`] is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EndpointKind {
    /// A DDS writer (service servers' replies and clients' requests too).
    Publisher,
    /// A DDS reader.
    Subscription,
}

/// What a DDS topic is in ROS terms.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RosName {
    /// `rt/x` → topic `/x`.
    Topic(String),
    /// `rq/x/yRequest` → requests of service `/x/y`.
    ServiceRequest(String),
    /// `rr/x/yReply` → replies of service `/x/y`.
    ServiceReply(String),
}

impl RosName {
    /// `None` for DDS topics that are not ROS names (`ros_discovery_info`).
    pub(crate) fn from_dds(dds: &str) -> Option<RosName> {
        if let Some(t) = dds.strip_prefix("rt/") {
            return Some(RosName::Topic(format!("/{t}")));
        }
        if let Some(s) = dds.strip_prefix("rq/").and_then(|s| s.strip_suffix("Request")) {
            return Some(RosName::ServiceRequest(format!("/{s}")));
        }
        if let Some(s) = dds.strip_prefix("rr/").and_then(|s| s.strip_suffix("Reply")) {
            return Some(RosName::ServiceReply(format!("/{s}")));
        }
        None
    }
}

/// `pkg::msg::dds_::Type_` → `pkg/msg/Type`; `pkg::srv::dds_::Type_Request_` → `pkg/srv/Type`.
pub(crate) fn ros_type_from_dds(dds: &str) -> String {
    let parts: Vec<&str> = dds.split("::").collect();
    if parts.len() == 4 && parts[2] == "dds_" {
        let name = parts[3].trim_end_matches('_');
        let name = name.strip_suffix("_Request").or_else(|| name.strip_suffix("_Response")).unwrap_or(name);
        return format!("{}/{}/{}", parts[0], parts[1], name);
    }
    dds.to_string()
}

/// One discovered DDS reader or writer, in ROS terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Whether it writes or reads.
    pub kind: EndpointKind,
    /// The topic or service it serves.
    pub name: RosName,
    /// `pkg/msg/Type`, or `pkg/srv/Type` for both halves of a service; a DDS
    /// type name that does not follow ROS 2's mangling is kept as it is.
    pub type_name: String,
    /// The DDS GUID: the participant's 12-byte prefix, then the entity id;
    /// what [`NodeInfo::readers`] and [`NodeInfo::writers`] list.
    pub gid: [u8; 16],
    /// Reliable rather than best effort. A writer that announced no
    /// reliability counts as reliable, the DDS default for writers.
    pub reliable: bool,
    /// Transient local (or any durability above volatile): late joiners get
    /// the history.
    pub transient_local: bool,
}

impl Endpoint {
    /// The topic (`/x`); `None` for a service's requests or replies.
    pub fn topic(&self) -> Option<&str> {
        match &self.name {
            RosName::Topic(t) => Some(t),
            _ => None,
        }
    }
}

fn durable(q: &QosPolicies) -> bool {
    matches!(q.durability(), Some(d) if d != rustdds::policy::Durability::Volatile)
}

impl Context {
    /// Every reader and writer discovery knows, this process's included.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        let p = self.participant();
        let mut out = Vec::new();
        for w in p.discovered_writers() {
            let d = &w.publication_topic_data;
            if let Some(name) = RosName::from_dds(&d.topic_name) {
                let q = d.qos();
                out.push(Endpoint {
                    kind: EndpointKind::Publisher,
                    name,
                    type_name: ros_type_from_dds(&d.type_name),
                    gid: w.writer_proxy.remote_writer_guid.to_bytes(),
                    // Discovery leaves out policies at their DDS defaults:
                    // writers default to reliable, everyone to volatile.
                    reliable: q.reliability().is_none() || q.is_reliable(),
                    transient_local: durable(&q),
                });
            }
        }
        for r in p.discovered_readers() {
            let d = &r.subscription_topic_data;
            if let Some(name) = RosName::from_dds(d.topic_name()) {
                let q = d.qos();
                out.push(Endpoint {
                    kind: EndpointKind::Subscription,
                    name,
                    type_name: ros_type_from_dds(d.type_name()),
                    gid: r.reader_proxy.remote_reader_guid.to_bytes(),
                    reliable: q.is_reliable(),
                    transient_local: durable(&q),
                });
            }
        }
        out
    }

    /// Topic names with the types offered on them.
    pub fn topic_names_and_types(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for e in self.endpoints() {
            if let RosName::Topic(t) = e.name {
                m.entry(t).or_default().insert(e.type_name);
            }
        }
        m
    }
}

/// A node as announced on `ros_discovery_info`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeInfo {
    /// Absolute, `/` for the root.
    pub namespace: String,
    /// The base name, without namespace.
    pub name: String,
    /// GIDs of its DDS readers, to match with [`Endpoint::gid`].
    pub readers: Vec<[u8; 16]>,
    /// GIDs of its DDS writers, to match with [`Endpoint::gid`].
    pub writers: Vec<[u8; 16]>,
}

impl NodeInfo {
    /// `/namespace/name`.
    pub fn fully_qualified_name(&self) -> String {
        crate::names::fully_qualified(&self.namespace, &self.name)
    }
}

/// Follows `ros_discovery_info` to know which nodes exist.
pub struct NodeWatcher {
    ctx: Context,
    participants: Arc<Mutex<HashMap<[u8; 16], Vec<NodeInfo>>>>,
    _task: TaskGuard,
}

impl NodeWatcher {
    /// Starts reading `ros_discovery_info` (transient local: nodes that
    /// started earlier arrive within moments too) until the watcher is
    /// dropped. Panics outside a tokio runtime.
    pub fn start(ctx: &Context) -> Result<NodeWatcher, NodeError> {
        let qos: QosPolicies = QosPolicyBuilder::new()
            .reliability(rustdds::policy::Reliability::Reliable { max_blocking_time: rustdds::Duration::ZERO })
            .durability(rustdds::policy::Durability::TransientLocal)
            .history(rustdds::policy::History::KeepLast { depth: 100 })
            .build();
        let topic = ctx
            .participant()
            .create_topic("ros_discovery_info".into(), "rmw_dds_common::msg::dds_::ParticipantEntitiesInfo_".into(), &qos, TopicKind::NoKey)
            .map_err(|e| NodeError::Dds { what: "creating topic ros_discovery_info".into(), reason: format!("{e:?}") })?;
        let reader = ctx
            .raw_subscriber()
            .create_simple_datareader_no_key::<ParticipantEntitiesInfo, CDRDeserializerAdapter<ParticipantEntitiesInfo>>(&topic, Some(qos))
            .map_err(|e| NodeError::Dds { what: "reading ros_discovery_info".into(), reason: format!("{e:?}") })?;
        let participants: Arc<Mutex<HashMap<[u8; 16], Vec<NodeInfo>>>> = Default::default();
        let p = participants.clone();
        let task = tokio::spawn(async move {
            let stream = reader.as_async_stream();
            futures::pin_mut!(stream);
            while let Some(item) = stream.next().await {
                let Ok(dcc) = item else { continue };
                let info = dcc.into_value();
                let nodes = info
                    .node_entities_info_seq
                    .iter()
                    .map(|n| NodeInfo {
                        namespace: n.node_namespace.clone(),
                        name: n.node_name.clone(),
                        readers: n.reader_gid_seq.iter().map(|g| g.data).collect(),
                        writers: n.writer_gid_seq.iter().map(|g| g.data).collect(),
                    })
                    .collect();
                p.lock().unwrap().insert(info.gid.data, nodes);
            }
        });
        Ok(NodeWatcher { ctx: ctx.clone(), participants, _task: TaskGuard(task) })
    }

    /// Nodes of participants that are still alive (some endpoint of theirs is
    /// still discovered), sorted by fully qualified name.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        let alive: BTreeSet<[u8; 12]> =
            self.ctx.endpoints().iter().map(|e| e.gid[..12].try_into().unwrap()).chain(std::iter::once(self.ctx.guid_prefix())).collect();
        let mut nodes: Vec<NodeInfo> = self
            .participants
            .lock()
            .unwrap()
            .iter()
            .filter(|(gid, _)| alive.contains(&<[u8; 12]>::try_from(&gid[..12]).unwrap()))
            .flat_map(|(_, n)| n.clone())
            .collect();
        nodes.sort_by_key(|n| n.fully_qualified_name());
        nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dds_names_map_back_to_ros_names() {
        assert_eq!(RosName::from_dds("rt/a/b"), Some(RosName::Topic("/a/b".into())));
        assert_eq!(RosName::from_dds("rq/talker/get_parametersRequest"), Some(RosName::ServiceRequest("/talker/get_parameters".into())));
        assert_eq!(RosName::from_dds("ros_discovery_info"), None);
        assert_eq!(ros_type_from_dds("std_msgs::msg::dds_::String_"), "std_msgs/msg/String");
        assert_eq!(ros_type_from_dds("rcl_interfaces::srv::dds_::GetParameters_Request_"), "rcl_interfaces/srv/GetParameters");
    }
}
