//! Typed services between two participants: a request answered by its
//! server's handler, in order; a call with no server gives up in time.

use std::time::Duration;

use s2r_runtime::{Context, ContextOptions, DiscoveryRange, Node, NodeError, RosArgs};
use sim2real_msgs::sim2real_msgs::srv::{Train, Train_Request, Train_Response};

fn loopback(domain: u16) -> Context {
    Context::new(ContextOptions { domain_id: domain, range: DiscoveryRange::Localhost, ..Default::default() }).unwrap()
}

fn args() -> RosArgs {
    RosArgs::parse(["test"]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_calls_a_server_in_another_participant() {
    let (c1, c2) = (loopback(82), loopback(82));
    let server_node = Node::new(&c1, "server", &args()).unwrap();
    let mut next = 0u64;
    let server = server_node
        .create_service::<Train, _>("trainer/train", move |req: Train_Request| {
            next += 1;
            Train_Response { accepted: req.kind == "world", job_id: next, message: format!("{} on {}", req.kind, req.datasets.join(",")) }
        })
        .unwrap();
    assert_eq!(server.name(), "/trainer/train");
    let client_node = Node::new(&c2, "client", &args()).unwrap();
    let client = client_node.create_client::<Train>("/trainer/train").unwrap();
    let req = |kind: &str| Train_Request { kind: kind.into(), datasets: vec!["a".into(), "b".into()], ..Default::default() };
    let r = client.call(req("world"), Duration::from_secs(20)).await.unwrap();
    assert_eq!((r.accepted, r.job_id, r.message.as_str()), (true, 1, "world on a,b"));
    let r = client.call(req("dance"), Duration::from_secs(5)).await.unwrap();
    assert_eq!((r.accepted, r.job_id), (false, 2), "the second call gets the second answer");

    // Nobody serves this one: the call says so within its time.
    let lonely = client_node.create_client::<Train>("nobody/train").unwrap();
    let t0 = std::time::Instant::now();
    let e = lonely.call(req("world"), Duration::from_millis(500)).await.unwrap_err();
    assert!(matches!(e, NodeError::Service { .. }) && e.to_string().contains("/nobody/train"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(5));
}
