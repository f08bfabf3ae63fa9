//! QoS presets in ROS 2 terms, and their DDS form.

use ros2_client::qos::{Durability as RDurability, History, QosProfile, Reliability as RReliability, WhenFull};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reliability {
    BestEffort,
    Reliable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Volatile,
    TransientLocal,
}

/// A QoS profile: reliability, durability and history depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qos {
    pub reliability: Reliability,
    pub durability: Durability,
    /// Keep-last depth; 0 means keep all.
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

    pub const fn depth(mut self, depth: usize) -> Qos {
        self.depth = depth;
        self
    }

    /// The keep-last depth local queues use (keep-all is bounded too, so that a
    /// slow reader cannot grow memory without end).
    pub fn queue_depth(&self) -> usize {
        if self.depth == 0 {
            1000
        } else {
            self.depth
        }
    }

    pub fn to_profile(&self) -> QosProfile {
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

impl Default for Qos {
    fn default() -> Self {
        Qos::reliable()
    }
}
