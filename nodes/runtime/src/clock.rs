//! Node time: the system clock, or simulation time from /clock when the node's
//! `use_sim_time` parameter is true.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sim2real_msgs::builtin_interfaces::msg::Time;

/// Nanoseconds since the epoch of the clock in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Stamp(pub i64);

impl Stamp {
    /// As builtin_interfaces/Time: `nanosec` is always in `0..1e9`, so a
    /// stamp before the epoch has a negative `sec`. Seconds past `i32::MAX`
    /// (year 2038) wrap, as the message's `int32` does.
    pub fn to_msg(self) -> Time {
        Time { sec: self.0.div_euclid(1_000_000_000) as i32, nanosec: self.0.rem_euclid(1_000_000_000) as u32 }
    }

    /// From builtin_interfaces/Time (`sec` + `nanosec`).
    pub fn from_msg(t: &Time) -> Stamp {
        Stamp(t.sec as i64 * 1_000_000_000 + t.nanosec as i64)
    }
}

/// A message stamp in nanoseconds, the key stages match messages of one
/// instant by.
pub fn stamp_ns(t: &Time) -> i64 {
    Stamp::from_msg(t).0
}

/// Wall-clock time, whatever `use_sim_time` says; a clock set before 1970
/// reads as 0.
pub fn system_now() -> Stamp {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Stamp(d.as_nanos() as i64)
}

/// A node's clock. Clones share state.
#[derive(Clone, Default)]
pub struct Clock {
    inner: Arc<ClockInner>,
}

#[derive(Default)]
struct ClockInner {
    use_sim_time: AtomicBool,
    /// Latest /clock value; 0 until the first one arrives (ROS 2 semantics).
    sim_nanos: AtomicI64,
}

impl Clock {
    /// System time, or under `use_sim_time` the last /clock value received
    /// (0 until one arrives, as in rclcpp).
    pub fn now(&self) -> Stamp {
        if self.inner.use_sim_time.load(Ordering::Relaxed) {
            Stamp(self.inner.sim_nanos.load(Ordering::Relaxed))
        } else {
            system_now()
        }
    }

    /// Whether the node's `use_sim_time` parameter is on.
    pub fn uses_sim_time(&self) -> bool {
        self.inner.use_sim_time.load(Ordering::Relaxed)
    }

    pub(crate) fn set_use_sim_time(&self, on: bool) {
        self.inner.use_sim_time.store(on, Ordering::Relaxed);
    }

    pub(crate) fn set_sim_time(&self, t: Stamp) {
        self.inner.sim_nanos.store(t.0, Ordering::Relaxed);
    }
}
