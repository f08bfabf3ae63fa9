//! Demo nodes, like ROS 2's `demo_nodes_cpp`: a talker and a listener.

#![warn(missing_docs)]

use std::time::Duration;

use s2r_runtime::component::{Component, NodeFuture};
use s2r_runtime::{info, Context, Node, Qos, RosArgs};
use sim2real_msgs::std_msgs::msg::String as StringMsg;

/// Publishes `Hello World: <n>` on `chatter` at `rate` Hz (parameter, default
/// 1), `count` times (parameter, 0 = forever); with `wait_for_listener` true,
/// only once something subscribes.
pub const TALKER: Component = Component { exec: "talker", about: "publishes Hello World: <n> on chatter", main: talker, graceful: false };

/// Logs every message on `chatter` as `I heard: [<data>]`; ends after `count`
/// messages (parameter, 0 = never).
pub const LISTENER: Component = Component { exec: "listener", about: "logs what arrives on chatter", main: listener, graceful: false };

fn talker(ctx: Context, args: RosArgs) -> NodeFuture {
    Box::pin(async move {
        let node = Node::new(&ctx, "talker", &args)?;
        let rate: f64 = node.declare_parameter("rate", 1.0)?;
        let count: i64 = node.declare_parameter("count", 0)?;
        if !(rate > 0.0 && rate.is_finite()) {
            return Err(format!("parameter 'rate' must be positive, got {rate}").into());
        }
        let wait: bool = node.declare_parameter("wait_for_listener", false)?;
        let chatter = node.create_publisher::<StringMsg>("chatter", Qos::reliable())?;
        while wait && chatter.subscription_count() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if wait {
            // Let the reliable writer match the new reader before the first message.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        let mut n: i64 = 0;
        while count == 0 || n < count {
            tick.tick().await;
            n += 1;
            let msg = StringMsg { data: format!("Hello World: {n}") };
            info!(node.logger(), "Publishing: '{}'", msg.data);
            chatter.publish(msg)?;
        }
        // Let the last message reach remote subscribers before the node goes.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(())
    })
}

fn listener(ctx: Context, args: RosArgs) -> NodeFuture {
    Box::pin(async move {
        let node = Node::new(&ctx, "listener", &args)?;
        let count: i64 = node.declare_parameter("count", 0)?;
        let chatter = node.create_subscription::<StringMsg>("chatter", Qos::reliable().depth(100))?;
        let mut n = 0;
        while count == 0 || n < count {
            let msg = chatter.recv().await;
            info!(node.logger(), "I heard: [{}]", msg.data);
            n += 1;
        }
        Ok(())
    })
}
