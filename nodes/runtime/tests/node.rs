//! Node services beyond pub/sub: sim time from /clock, logging to /rosout.

use std::time::Duration;

use s2r_runtime::{Context, ContextOptions, DiscoveryRange, Durability, Node, Qos, RosArgs, Stamp};
use sim2real_msgs::builtin_interfaces::msg::Time;
use sim2real_msgs::rcl_interfaces::msg::Log;
use sim2real_msgs::rosgraph_msgs::msg::Clock;

fn loopback(domain: u16) -> Context {
    Context::new(ContextOptions { domain_id: domain, range: DiscoveryRange::Localhost, ..Default::default() }).unwrap()
}

fn args(v: &[&str]) -> RosArgs {
    RosArgs::parse(std::iter::once("test").chain(v.iter().copied())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn use_sim_time_follows_clock() {
    let (c1, c2) = (loopback(80), loopback(80));
    let sim = Node::new(&c1, "sim", &args(&[])).unwrap();
    let follower = Node::new(&c2, "follower", &args(&["--ros-args", "-p", "use_sim_time:=true"])).unwrap();
    assert!(follower.clock().uses_sim_time());
    assert_eq!(follower.now(), Stamp(0), "sim time is zero until /clock arrives");
    let clock = sim.create_publisher::<Clock>("/clock", Qos::sensor_data()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        clock.publish(Clock { clock: Time { sec: 42, nanosec: 5 } }).unwrap();
        if follower.now() == Stamp(42_000_000_005) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "sim time never followed /clock: {:?}", follower.now());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Switching back to wall time through the parameter.
    follower.set_parameter("use_sim_time", false).unwrap();
    assert!(follower.now().0 > 1_600_000_000_000_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_reach_rosout_with_the_node_name() {
    let (c1, c2) = (loopback(81), loopback(81));
    let node = Node::new(&c1, "talker", &args(&["--ros-args", "-r", "__ns:=/robot", "--log-level", "debug"])).unwrap();
    s2r_runtime::info!(node.logger(), "speed is {} m/s", 3);
    s2r_runtime::debug!(node.logger(), "details");
    // /rosout is transient local: a late reader still gets what was logged.
    let reader = Node::new(&c2, "reader", &args(&[])).unwrap();
    let qos = Qos { durability: Durability::TransientLocal, ..Qos::reliable().depth(100) };
    let sub = reader.create_subscription::<Log>("/rosout", qos).unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let m = tokio::time::timeout(Duration::from_secs(10), sub.recv()).await.expect("no log on /rosout");
        if m.name == "robot.talker" {
            got.push(m);
        }
    }
    assert_eq!(got[0].msg, "speed is 3 m/s");
    assert_eq!(got[0].level, Log::INFO);
    assert!(got[0].file.ends_with("node.rs") && got[0].line > 0);
    assert_eq!(got[1].level, Log::DEBUG);
}
