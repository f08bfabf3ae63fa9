//! QoS presets in ROS 2 terms, and their DDS form.

use ros2_client::qos::{Durability as RDurability, History, QosProfile, Reliability as RReliability, WhenFull};

/// Whether lost samples are sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reliability {
    /// Lost samples stay lost; nothing waits for acknowledgments.
    BestEffort,
    /// The writer resends until readers acknowledge, within its history.
    Reliable,
}

/// Whether a writer keeps samples for readers that join later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Late joiners get only what is published after they match.
    Volatile,
    /// Late joiners get the writer's last `depth` samples.
    TransientLocal,
}

/// A QoS profile: reliability, durability and history depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qos {
    /// Offered by a publisher, requested by a subscription; DDS matches them
    /// only when the offer is at least the request, so a reliable
    /// subscription never hears a best-effort publisher of another process
    /// (inside one process every subscription hears every publisher).
    pub reliability: Reliability,
    /// Matched like `reliability`: a transient-local subscription never
    /// hears a volatile publisher of another process.
    pub durability: Durability,
    /// Keep-last depth; 0 means keep all (in DDS; a subscription's own queue
    /// still stops at 1000 and drops the oldest).
    pub depth: usize,
}

impl Qos {
    /// Camera images, lidar, IMU: newest wins, nothing waits (best effort, keep last 5).
    pub const fn sensor_data() -> Qos {
        Qos { reliability: Reliability::BestEffort, durability: Durability::Volatile, depth: 5 }
    }

    /// Commands, verdicts, datasets: every message arrives (reliable, keep last 10).
    pub const fn reliable() -> Qos {
        Qos { reliability: Reliability::Reliable, durability: Durability::Volatile, depth: 10 }
    }

    /// Scenario descriptions, static transforms: late joiners get the last value.
    pub const fn transient_local() -> Qos {
        Qos { reliability: Reliability::Reliable, durability: Durability::TransientLocal, depth: 1 }
    }

    /// The same profile with another keep-last depth (0: keep all).
    pub const fn depth(mut self, depth: usize) -> Qos {
        self.depth = depth;
        self
    }

    /// The keep-last depth local queues use (keep-all is bounded too, so that a
    /// slow reader cannot grow memory without end).
    pub(crate) fn queue_depth(&self) -> usize {
        if self.depth == 0 {
            1000
        } else {
            self.depth
        }
    }

    pub(crate) fn to_profile(self) -> QosProfile {
        let base = QosProfile::publisher_default();
        let reliability = match self.reliability {
            Reliability::BestEffort => RReliability::BestEffort,
            Reliability::Reliable => RReliability::Reliable { when_full: WhenFull::DEFAULT },
        };
        let durability = match self.durability {
            Durability::Volatile => RDurability::Volatile,
            Durability::TransientLocal => RDurability::TransientLocal,
        };
        let history = if self.depth == 0 { History::KeepAll } else { History::KeepLast { depth: self.depth } };
        base.reliability(reliability).durability(durability).history(history)
    }
}

/// How a publisher's DDS writer is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Writer {
    /// Through ros2_client, which lists it under its node in the ROS graph
    /// (`ros2 node info`); its writer is not reachable, so nothing can wait
    /// for its readers' acknowledgments.
    #[default]
    Graph,
    /// Directly on the DDS participant, so that
    /// [`Publisher::wait_for_acknowledgments`](crate::Publisher::wait_for_acknowledgments)
    /// can wait until every reliable reader has everything published. The
    /// topic, type and QoS on the wire are the same, and `ros2 topic` tools
    /// see it; ros2_client offers no way to add it to the node's entry in the
    /// ROS graph, so `ros2 node info` does not list it.
    Acknowledged,
}

impl Default for Qos {
    fn default() -> Self {
        Qos::reliable()
    }
}
