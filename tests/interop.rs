//! Interoperability with DDS implementations nobody here wrote, both ways:
//! Eclipse Cyclone DDS (its Python binding) and eProsima Fast DDS (ROS 2's
//! default middleware, a C++ peer built by the test). Each peer encodes and
//! decodes the samples with its own CDR code; every field and every pixel byte
//! is compared. All traffic stays on loopback.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use s2r_idl::Message;
use s2r_runtime::{Node, Qos, RosArgs};

const COUNT: i32 = 5;

#[derive(Clone, Copy)]
enum PeerKind {
    Cyclone,
    FastDds,
}

fn peer_command(peer: PeerKind, mode: &str, kind: &str, domain: u16) -> Command {
    let mut cmd = match peer {
        PeerKind::Cyclone => {
            let mut c = Command::new(python());
            c.arg(peers_dir().join("cyclone_peer.py"));
            c
        }
        PeerKind::FastDds => Command::new(fastdds_peer()),
    };
    cmd.args([mode, kind, &COUNT.to_string()]);
    loopback_env(&mut cmd, domain);
    cmd
}

fn node(domain: u16) -> Node {
    let ctx = loopback(domain);
    Node::new(&ctx, "interop", &RosArgs::default()).unwrap()
}

/// The peer publishes COUNT samples; we receive and check each.
fn from_peer<M: Message + PartialEq>(peer: PeerKind, kind: &str, make: fn(i32) -> M, key: fn(&M) -> i32) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let domain = fresh_domain();
        let n = node(domain);
        let sub = n.create_subscription::<M>(&format!("/interop/{kind}"), Qos::reliable().depth(20)).unwrap();
        let mut p = Peer::spawn(peer_command(peer, "pub", kind, domain), "peer");
        let mut seen = std::collections::BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(45);
        while seen.len() < COUNT as usize {
            let left = deadline.saturating_duration_since(Instant::now());
            let got =
                tokio::time::timeout(left, sub.recv()).await.unwrap_or_else(|_| panic!("received {seen:?} of {COUNT} {kind} samples"));
            let k = key(&got);
            assert!(*got == make(k), "{kind} sample {k} differs from the pattern");
            seen.insert(k);
        }
        assert_eq!(seen, (0..COUNT).collect());
        assert_eq!(sub.malformed(), 0);
        p.expect_line("SENT", Duration::from_secs(30));
    });
}

/// We publish; the peer checks every sample it receives.
fn to_peer<M: Message>(peer: PeerKind, kind: &str, make: fn(i32) -> M) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let domain = fresh_domain();
        let n = node(domain);
        let publ = n.create_publisher::<M>(&format!("/interop/{kind}"), Qos::reliable().depth(20)).unwrap();
        let mut p = Peer::spawn(peer_command(peer, "sub", kind, domain), "peer");
        p.expect_line("READY", Duration::from_secs(30));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !publ.has_remote_subscribers() {
            assert!(Instant::now() < deadline, "the peer's reader was never discovered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Let the reliable writer match the reader before the first sample.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for k in 0..COUNT {
            publ.publish(make(k)).unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut oks = std::collections::BTreeSet::new();
        while oks.len() < COUNT as usize {
            let line = p.expect_line("OK", Duration::from_secs(30));
            oks.insert(line);
        }
        p.wait_success(Duration::from_secs(30));
    });
}

fn key_string(m: &sim2real_msgs::std_msgs::msg::String) -> i32 {
    m.data.trim_start_matches("hello ").parse().unwrap()
}

macro_rules! interop_tests {
    ($peer:expr, $module:ident) => {
        mod $module {
            use super::*;
            use sim2real_msgs::nav_msgs::msg::Odometry;
            use sim2real_msgs::sensor_msgs::msg::Image;
            use sim2real_msgs::vision_msgs::msg::Detection2DArray;

            #[test]
            fn string_from_peer() {
                from_peer($peer, "string", string_msg, key_string);
            }
            #[test]
            fn string_to_peer() {
                to_peer($peer, "string", string_msg);
            }
            #[test]
            fn image_640x480_from_peer() {
                from_peer($peer, "image", image, |m: &Image| m.header.stamp.sec);
            }
            #[test]
            fn image_640x480_to_peer() {
                to_peer($peer, "image", image);
            }
            #[test]
            fn odometry_from_peer() {
                from_peer($peer, "odometry", odometry, |m: &Odometry| m.header.stamp.sec);
            }
            #[test]
            fn odometry_to_peer() {
                to_peer($peer, "odometry", odometry);
            }
            #[test]
            fn detections_from_peer() {
                from_peer($peer, "detections", detections, |m: &Detection2DArray| m.header.stamp.sec);
            }
            #[test]
            fn detections_to_peer() {
                to_peer($peer, "detections", detections);
            }
        }
    };
}

interop_tests!(PeerKind::Cyclone, cyclone);
interop_tests!(PeerKind::FastDds, fastdds);
