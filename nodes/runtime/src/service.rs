//! Typed ROS 2 services: a server answers each request of a [`Service`] type
//! with a handler; a client calls and awaits the answer.
//!
//! On the wire a service is two topics, `rq/<name>Request` and
//! `rr/<name>Reply`, of the types `pkg::srv::dds_::Name_Request_` and
//! `…_Response_`. How a response names its request differs between ROS 2's
//! middlewares: Fast DDS and Connext carry the request's sample identity in
//! the response's inline QoS; Cyclone DDS puts a 16-byte header (the
//! client's id and a sequence number) before each request and response. A
//! ROS 2 system runs one middleware, named by `RMW_IMPLEMENTATION`; the nodes
//! speak the one it names ([`mapping`]), Fast DDS's when it names none.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use ros2_client::qos::{History, QosProfile};
use ros2_client::{Name, ServiceMapping, ServiceTypeName};
use s2r_idl::Service;
use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::log::Logger;
use crate::node::{Node, NodeError};
use crate::pubsub::TaskGuard;

/// A generated message as ros2_client's services take it (the same CDR).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Wire<T>(pub T);

impl<T: s2r_idl::Message> ros2_client::Message for Wire<T> {}

/// The service mapping of the middleware `RMW_IMPLEMENTATION` names:
/// Cyclone DDS's header for `rmw_cyclonedds_cpp`, else the request's sample
/// identity in inline QoS (`rmw_fastrtps_cpp`, ROS 2's default, and Connext).
pub fn mapping() -> ServiceMapping {
    mapping_for(std::env::var("RMW_IMPLEMENTATION").ok().as_deref())
}

fn mapping_for(rmw: Option<&str>) -> ServiceMapping {
    match rmw {
        Some(r) if r.starts_with("rmw_cyclonedds") => ServiceMapping::Cyclone,
        _ => ServiceMapping::Enhanced,
    }
}

/// rclcpp's services profile: reliable, volatile, keep last 10.
pub(crate) fn service_qos() -> QosProfile {
    QosProfile::publisher_default().history(History::KeepLast { depth: 10 })
}

fn service_name(node: &Node, name: &str) -> Result<(String, Name), NodeError> {
    let full = node.resolve_topic(name)?;
    let parsed = Name::parse(&full).map_err(|e| NodeError::Dds { what: format!("naming service {full}"), reason: format!("{e:?}") })?;
    Ok((full, parsed))
}

fn type_name<S: Service>() -> ServiceTypeName {
    let (package, name) = S::parts();
    ServiceTypeName::new(package, name)
}

/// A service being served: it answers as long as this value lives.
pub struct ServiceServer {
    name: String,
    _task: TaskGuard,
}

impl ServiceServer {
    /// The service's resolved name (`/trainer/train`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A client of one service.
pub struct ServiceClient<S: Service> {
    name: String,
    ctx: Context,
    client: ros2_client::service::Client<Wire<S::Request>, Wire<S::Response>>,
    _service: PhantomData<S>,
}

impl Node {
    /// Serves `name` (expanded and remapped like a topic): `handle` answers
    /// every request, in order of arrival, on the node's tokio runtime. A
    /// request that does not decode is logged and skipped.
    pub fn create_service<S, F>(&self, name: &str, mut handle: F) -> Result<ServiceServer, NodeError>
    where
        S: Service,
        F: FnMut(S::Request) -> S::Response + Send + 'static,
    {
        let (full, service) = service_name(self, name)?;
        let server = self
            .with_ros_node(|ros| {
                ros.create_server::<Wire<S::Request>, Wire<S::Response>>(
                    mapping(),
                    &service,
                    &type_name::<S>(),
                    service_qos(),
                    service_qos(),
                )
            })
            .map_err(|e| NodeError::Dds { what: format!("creating service {full}"), reason: format!("{e:?}") })?;
        let log: Logger = self.logger().clone();
        let what = full.clone();
        let task = tokio::spawn(async move {
            let mut bad = 0u64;
            loop {
                match server.async_receive_request().await {
                    Ok((id, Wire(req))) => {
                        let resp = handle(req);
                        if let Err(e) = server.async_send_response(id, Wire(resp)).await {
                            log.warn(format!("{what}: the response could not be sent ({e:?})"));
                        }
                    }
                    Err(e) => {
                        bad += 1;
                        if bad <= 10 {
                            log.warn(format!("{what}: skipped a request that is not a valid {} ({e:?})", S::TYPE_NAME));
                        }
                    }
                }
            }
        });
        Ok(ServiceServer { name: full, _task: TaskGuard(task) })
    }

    /// A client of the service `name` (expanded and remapped like a topic).
    pub fn create_client<S: Service>(&self, name: &str) -> Result<ServiceClient<S>, NodeError> {
        let (full, service) = service_name(self, name)?;
        let client = self
            .with_ros_node(|ros| {
                ros.create_client::<Wire<S::Request>, Wire<S::Response>>(
                    mapping(),
                    &service,
                    &type_name::<S>(),
                    service_qos(),
                    service_qos(),
                )
            })
            .map_err(|e| NodeError::Dds { what: format!("creating client of {full}"), reason: format!("{e:?}") })?;
        Ok(ServiceClient { name: full, ctx: self.context().clone(), client, _service: PhantomData })
    }
}

impl<S: Service> ServiceClient<S> {
    /// The service's resolved name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a server of the service is known: someone reads its requests
    /// and someone writes its replies.
    pub fn service_is_ready(&self) -> bool {
        let p = self.ctx.participant();
        let rq = format!("rq{}Request", self.name);
        let rr = format!("rr{}Reply", self.name);
        p.discovered_readers().iter().any(|r| r.subscription_topic_data.topic_name() == &rq)
            && p.discovered_writers().iter().any(|w| w.publication_topic_data.topic_name() == &rr)
    }

    /// Waits up to `timeout` for a server ([`ServiceClient::service_is_ready`]).
    pub async fn wait_for_service(&self, timeout: Duration) -> bool {
        let t0 = Instant::now();
        while !self.service_is_ready() {
            if t0.elapsed() > timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Discovery has it; give the endpoints' matching a moment to follow.
        tokio::time::sleep(Duration::from_millis(200)).await;
        true
    }

    /// Sends `request` once a server is there and awaits its response, up to
    /// `timeout` in all.
    pub async fn call(&self, request: S::Request, timeout: Duration) -> Result<S::Response, NodeError> {
        let err = |reason: String| NodeError::Service { service: self.name.clone(), reason };
        let t0 = Instant::now();
        if !self.wait_for_service(timeout).await {
            return Err(err(format!("no server within {:.1} s", timeout.as_secs_f64())));
        }
        let left = timeout.saturating_sub(t0.elapsed());
        let id = self.client.async_send_request(Wire(request)).await.map_err(|e| err(format!("sending the request: {e:?}")))?;
        match tokio::time::timeout(left, self.client.async_receive_response(id)).await {
            Ok(Ok(Wire(resp))) => Ok(resp),
            Ok(Err(e)) => Err(err(format!("reading the response: {e:?}"))),
            Err(_) => Err(err(format!("no response within {:.1} s", timeout.as_secs_f64()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_middleware_named_chooses_the_mapping() {
        assert!(matches!(mapping_for(Some("rmw_cyclonedds_cpp")), ServiceMapping::Cyclone));
        assert!(matches!(mapping_for(Some("rmw_fastrtps_cpp")), ServiceMapping::Enhanced));
        assert!(matches!(mapping_for(None), ServiceMapping::Enhanced));
    }
}
