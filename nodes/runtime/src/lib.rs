//! The sim2real node runtime: ROS 2 nodes in Rust that speak DDS themselves.
//!
//! ```no_run
//! use s2r_runtime::{Context, Node, Qos, RosArgs};
//! use sim2real_msgs::std_msgs::msg::String as StringMsg;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let ctx = Context::from_env()?;                 // ROS_DOMAIN_ID, ROS_LOCALHOST_ONLY, …
//!     let node = Node::new(&ctx, "talker", &RosArgs::from_env()?)?;
//!     let rate: f64 = node.declare_parameter("rate", 10.0)?;
//!     let chatter = node.create_publisher::<StringMsg>("chatter", Qos::reliable())?;
//!     let mut tick = tokio::time::interval(std::time::Duration::from_secs_f64(1.0 / rate));
//!     loop {
//!         tokio::select! {
//!             _ = tick.tick() => chatter.publish(StringMsg { data: "hello".into() })?,
//!             _ = s2r_runtime::shutdown::signal() => break,
//!         }
//!     }
//!     Ok(())
//! }
//! ```
//!
//! Nodes created from one [`Context`] share one DDS participant and hand each
//! other messages in-process, without serialization or copies of large buffers,
//! while staying visible on DDS to other processes.

#![warn(missing_docs)]

pub mod args;
pub mod clock;
pub mod component;
pub mod context;
pub mod graph;
pub mod log;
pub mod names;
pub mod node;
pub mod param_services;
pub mod params;
pub mod pubsub;
pub mod qos;
pub mod raw;
pub mod service;
pub mod share;
pub mod shutdown;
pub mod tf;
pub mod urdf;
pub mod yaml;

pub use args::{ArgsError, RosArgs};
pub use clock::{stamp_ns, Clock, Stamp};
pub use context::{Context, ContextError, ContextOptions, DiscoveryRange};
pub use log::{LogLevel, Logger};
pub use node::{Node, NodeError};
pub use params::{ParamType, ParameterValue};
pub use pubsub::{PublishError, Publisher, ReceiveInfo, Received, Subscription};
pub use qos::{Durability, Qos, Reliability, Writer};
pub use raw::{RawPublisher, RawSubscription, Serialized};
pub use service::{ServiceClient, ServiceServer};

/// Keeps glibc's allocator from serving a candle model's large, short-lived
/// tensors with fresh mmaps: by default its mmap threshold adapts and can
/// settle where every tensor costs a page-faulting mmap/munmap pair, which
/// halves the frame rate at random (`s2r bench tokenizer` measured 105–220
/// frames/s run to run on the same input; 225 ± 4 with this). Freed memory
/// is kept for reuse up to 256 MB before being returned. Process-wide; call
/// once at start. A no-op outside glibc.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets glibc's allocator parameters; any value is
    // accepted (a bad one is refused with 0) and no memory is touched.
    unsafe {
        const LIMIT: libc::c_int = 256 << 20;
        libc::mallopt(libc::M_MMAP_THRESHOLD, LIMIT);
        libc::mallopt(libc::M_TRIM_THRESHOLD, LIMIT);
    }
}
