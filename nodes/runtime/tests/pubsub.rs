//! Publishers and subscriptions inside one process and across DDS participants.

use std::time::Duration;

use s2r_runtime::{Context, ContextOptions, DiscoveryRange, Node, Qos, RosArgs};
use sim2real_msgs::sensor_msgs::msg::Image;
use sim2real_msgs::std_msgs::msg::String as StringMsg;

fn loopback(domain: u16) -> Context {
    Context::new(ContextOptions { domain_id: domain, range: DiscoveryRange::Localhost, ..Default::default() }).unwrap()
}

fn args(v: &[&str]) -> RosArgs {
    RosArgs::parse(std::iter::once("test").chain(v.iter().copied())).unwrap()
}

fn image(w: u32, h: u32) -> Image {
    Image {
        height: h,
        width: w,
        encoding: "rgb8".into(),
        step: w * 3,
        data: (0..(w * h * 3)).map(|i| (i % 253) as u8).collect::<Vec<u8>>().into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_in_one_process_share_the_image_buffer() {
    let ctx = loopback(71);
    let a = Node::new(&ctx, "camera", &args(&[])).unwrap();
    let b = Node::new(&ctx, "viewer", &args(&[])).unwrap();
    let sub = b.create_subscription::<Image>("image", Qos::sensor_data()).unwrap();
    let publ = a.create_publisher::<Image>("image", Qos::sensor_data()).unwrap();
    let img = std::sync::Arc::new(image(640, 480));
    publ.publish_shared(img.clone()).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(2), sub.recv_with_info()).await.unwrap();
    assert!(got.info.intra_process);
    assert_eq!(got.msg.data.as_ptr(), img.data.as_ptr(), "the pixel buffer was copied");
    // Nothing arrives twice (not also over DDS).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sub.try_recv().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_participants_talk_over_dds() {
    let (c1, c2) = (loopback(72), loopback(72));
    let talker = Node::new(&c1, "talker", &args(&[])).unwrap();
    let listener = Node::new(&c2, "listener", &args(&["--ros-args", "-r", "chatter:=/renamed"])).unwrap();
    let sub = listener.create_subscription::<StringMsg>("chatter", Qos::reliable()).unwrap();
    assert_eq!(sub.topic(), "/renamed");
    let publ = talker.create_publisher::<StringMsg>("/renamed", Qos::reliable()).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        let mut i = 0;
        loop {
            publ.publish(StringMsg { data: format!("hello {i}") }).unwrap();
            i += 1;
            if let Ok(m) = tokio::time::timeout(Duration::from_millis(100), sub.recv_with_info()).await {
                return m;
            }
        }
    })
    .await
    .expect("no message over DDS within 10 s");
    assert!(got.msg.data.starts_with("hello"));
    assert!(!got.info.intra_process);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_keep_only_the_newest() {
    let ctx = loopback(73);
    let n = Node::new(&ctx, "n", &args(&[])).unwrap();
    let sub = n.create_subscription::<StringMsg>("t", Qos::sensor_data().depth(3)).unwrap();
    let publ = n.create_publisher::<StringMsg>("t", Qos::sensor_data()).unwrap();
    for i in 0..100 {
        publ.publish(StringMsg { data: i.to_string() }).unwrap();
    }
    let got: Vec<String> = std::iter::from_fn(|| sub.try_recv()).map(|m| m.data.clone()).collect();
    assert_eq!(got, vec!["97", "98", "99"]);
    assert_eq!(sub.dropped(), 97);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_take_defaults_files_and_command_line() {
    let dir = std::env::temp_dir().join(format!("s2r-params-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("p.yaml");
    std::fs::write(&file, "/**:\n  ros__parameters:\n    rate: 7.0\n    label: from_file\n").unwrap();
    let ctx = loopback(74);
    let a = args(&["--ros-args", "--params-file", file.to_str().unwrap(), "-p", "label:=cli", "-p", "gain:=3", "-r", "__ns:=/robot"]);
    let n = Node::new(&ctx, "cam", &a).unwrap();
    assert_eq!(n.fully_qualified_name(), "/robot/cam");
    assert_eq!(n.declare_parameter("rate", 1.0).unwrap(), 7.0);
    assert_eq!(n.declare_parameter("label", String::from("default")).unwrap(), "cli");
    assert_eq!(n.declare_parameter("gain", 1.5).unwrap(), 3.0, "integers widen to double");
    assert_eq!(n.declare_parameter("other", 5i64).unwrap(), 5);
    assert!(n.set_parameter("rate", String::from("fast")).is_err(), "type is fixed");
    n.set_parameter("rate", 9.5).unwrap();
    assert_eq!(n.parameter::<f64>("rate"), Some(9.5));
    let bad = Node::new(&ctx, "cam2", &args(&["--ros-args", "-p", "rate:=fast"])).unwrap();
    let e = bad.declare_parameter("rate", 1.0).unwrap_err().to_string();
    assert!(e.contains("'rate'") && e.contains("-p rate") && e.contains("expected double"), "{e}");
}

async fn wait_remote<F: Fn() -> bool>(f: F) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "no remote subscriber discovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_samples_are_skipped_and_the_node_keeps_running() {
    let (c1, c2) = (loopback(75), loopback(75));
    let bad_peer = Node::new(&c1, "bad_peer", &args(&[])).unwrap();
    let listener = Node::new(&c2, "listener", &args(&[])).unwrap();
    let sub = listener.create_subscription::<StringMsg>("chatter", Qos::reliable()).unwrap();
    let raw = bad_peer.create_raw_publisher("chatter", "std_msgs/msg/String", Qos::reliable()).unwrap();
    wait_remote(|| raw.has_remote_subscribers()).await;
    // A string whose length runs past the end of the sample.
    raw.publish(s2r_runtime::Serialized(vec![0, 1, 0, 0, 0xff, 0xff, 0xff, 0x7f, b'a', 0, 0, 0].into())).unwrap();
    let good = s2r_runtime::Serialized::encode(&StringMsg { data: "still here".into() }).unwrap();
    raw.publish(good).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), sub.recv()).await.expect("the good message never came");
    assert_eq!(got.data, "still here");
    assert_eq!(sub.malformed(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_nodes_stay_visible_to_other_processes() {
    let (c1, c2) = (loopback(76), loopback(76));
    let camera = Node::new(&c1, "camera", &args(&[])).unwrap();
    let local = Node::new(&c1, "local_viewer", &args(&[])).unwrap();
    let remote = Node::new(&c2, "remote_viewer", &args(&[])).unwrap();
    let local_sub = local.create_subscription::<Image>("image", Qos::reliable()).unwrap();
    let remote_sub = remote.create_subscription::<Image>("image", Qos::reliable()).unwrap();
    let publ = camera.create_publisher::<Image>("image", Qos::reliable()).unwrap();
    wait_remote(|| publ.has_remote_subscribers()).await;
    let img = image(320, 240);
    publ.publish(img.clone()).unwrap();
    let l = tokio::time::timeout(Duration::from_secs(5), local_sub.recv_with_info()).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), remote_sub.recv_with_info()).await.unwrap();
    assert!(l.info.intra_process && !r.info.intra_process);
    assert_eq!(*r.msg, img);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(local_sub.try_recv().is_none(), "the local subscriber got the image twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domains_are_separate() {
    let (c1, c2) = (loopback(77), loopback(78));
    let a = Node::new(&c1, "a", &args(&[])).unwrap();
    let b = Node::new(&c2, "b", &args(&[])).unwrap();
    let sub = b.create_subscription::<StringMsg>("x", Qos::reliable()).unwrap();
    let publ = a.create_publisher::<StringMsg>("x", Qos::reliable()).unwrap();
    for _ in 0..20 {
        publ.publish(StringMsg { data: "across".into() }).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!publ.has_remote_subscribers());
    assert!(sub.try_recv().is_none());
}
