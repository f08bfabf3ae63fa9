//! The six rcl_interfaces parameter services every ROS 2 node offers
//! (`~/get_parameters`, `~/set_parameters`, …), so `ros2 param` works on our nodes.

use std::sync::{Arc, Weak};

use ros2_client::parameters::raw;
use ros2_client::rcl_interfaces::*;
use ros2_client::service::Server;
use ros2_client::{Message as RosMessage, Name, ParameterValue, ServiceTypeName};

use crate::service::service_qos;

use crate::node::{Node, NodeError, NodeInner};
use crate::pubsub::TaskGuard;

fn server<Req, Resp>(node: &Node, name: &str, ty: &str) -> Result<Server<Req, Resp>, NodeError>
where
    Req: RosMessage + Clone + 'static,
    Resp: RosMessage + 'static,
{
    let service = Name::new(node.fully_qualified_name(), name)
        .map_err(|e| NodeError::Dds { what: format!("naming service {name}"), reason: format!("{e:?}") })?;
    node.with_ros_node(|ros| {
        ros.create_server::<Req, Resp>(
            crate::service::mapping(),
            &service,
            &ServiceTypeName::new("rcl_interfaces", ty),
            service_qos(),
            service_qos(),
        )
    })
    .map_err(|e| NodeError::Dds { what: format!("creating service {name}"), reason: format!("{e:?}") })
}

/// What a refused set tells the caller: the reason alone.
fn reason(e: NodeError) -> String {
    match e {
        NodeError::Parameter { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// Spawns one task per service; each answers from the node's parameter store.
fn serve<Req, Resp, F>(server: Server<Req, Resp>, node: Weak<NodeInner>, handle: F) -> TaskGuard
where
    Req: RosMessage + Clone + Send + Sync + 'static,
    Resp: RosMessage + Send + Sync + 'static,
    F: Fn(&Node, Req) -> Resp + Send + 'static,
{
    TaskGuard(tokio::spawn(async move {
        loop {
            let Ok((id, req)) = server.async_receive_request().await else { continue };
            let Some(inner) = node.upgrade() else { break };
            let resp = handle(&Node::from_inner(inner), req);
            let _ = server.async_send_response(id, resp).await;
        }
    }))
}

/// Names of `names` that lie under one of `prefixes` within `depth` levels
/// (rclcpp's ListParameters semantics; depth 0 means any depth).
fn list(names: &[String], prefixes: &[String], depth: u64) -> ListParametersResult {
    let within = |rest: &str| depth == 0 || (rest.matches('.').count() as u64) < depth;
    let mut result = ListParametersResult { names: vec![], prefixes: vec![] };
    for name in names {
        let hit = if prefixes.is_empty() {
            within(name)
        } else {
            prefixes.iter().any(|p| name == p || name.strip_prefix(p.as_str()).and_then(|r| r.strip_prefix('.')).is_some_and(within))
        };
        if hit {
            result.names.push(name.clone());
            if let Some((ns, _)) = name.rsplit_once('.') {
                if !result.prefixes.iter().any(|p| p == ns) {
                    result.prefixes.push(ns.to_string());
                }
            }
        }
    }
    result
}

pub(crate) fn start(node: &Node) -> Result<Vec<TaskGuard>, NodeError> {
    let weak = Arc::downgrade(node.inner_arc());
    let get = server::<GetParametersRequest, GetParametersResponse>(node, "get_parameters", "GetParameters")?;
    let types = server::<GetParameterTypesRequest, GetParameterTypesResponse>(node, "get_parameter_types", "GetParameterTypes")?;
    let set = server::<SetParametersRequest, SetParametersResponse>(node, "set_parameters", "SetParameters")?;
    let atomic =
        server::<SetParametersRequest, SetParametersAtomicallyResponse>(node, "set_parameters_atomically", "SetParametersAtomically")?;
    let listing = server::<ListParametersRequest, ListParametersResponse>(node, "list_parameters", "ListParameters")?;
    let describe = server::<DescribeParametersRequest, DescribeParametersResponse>(node, "describe_parameters", "DescribeParameters")?;

    let value_of = |n: &Node, name: &str| n.parameter_value(name).unwrap_or(ParameterValue::NotSet);
    Ok(vec![
        serve(get, weak.clone(), move |n, req: GetParametersRequest| GetParametersResponse {
            values: req.names.iter().map(|name| raw::ParameterValue::from(value_of(n, name))).collect(),
        }),
        serve(types, weak.clone(), move |n, req: GetParameterTypesRequest| GetParameterTypesResponse {
            values: req.names.iter().map(|name| value_of(n, name).to_parameter_type_raw_u8()).collect(),
        }),
        serve(set, weak.clone(), |n, req: SetParametersRequest| SetParametersResponse {
            results: req
                .parameter
                .into_iter()
                .map(ros2_client::Parameter::from)
                .map(|p| n.set_parameter_value(&p.name, p.value).map_err(reason).into())
                .collect(),
        }),
        serve(atomic, weak.clone(), |n, req: SetParametersRequest| {
            let params: Vec<ros2_client::Parameter> = req.parameter.into_iter().map(Into::into).collect();
            // All or nothing: check every value before applying any.
            let check = params.iter().try_for_each(|p| n.check_parameter(&p.name, &p.value)).map_err(|e| e.to_string());
            let result = check.and_then(|_| params.into_iter().try_for_each(|p| n.set_parameter_value(&p.name, p.value).map_err(reason)));
            SetParametersAtomicallyResponse { result: result.into() }
        }),
        serve(listing, weak.clone(), |n, req: ListParametersRequest| ListParametersResponse {
            result: list(&n.parameter_names(), &req.prefixes, req.depth),
        }),
        serve(describe, weak, move |n, req: DescribeParametersRequest| DescribeParametersResponse {
            values: req
                .names
                .iter()
                .map(|name| match n.parameter_value(name) {
                    Some(v) => ros2_client::parameters::ParameterDescriptor::from_value(name, &v),
                    None => ros2_client::parameters::ParameterDescriptor::unknown(name),
                })
                .map(raw::ParameterDescriptor::from)
                .collect(),
        }),
    ])
}

trait TypeCode {
    fn to_parameter_type_raw_u8(&self) -> u8;
}

impl TypeCode for ParameterValue {
    fn to_parameter_type_raw_u8(&self) -> u8 {
        ParameterValue::to_parameter_type_raw(self)
    }
}

/// Calls another node's parameter services (what `ros2 param` does).
pub struct ParameterClient {
    target: String,
    get: ros2_client::service::Client<GetParametersRequest, GetParametersResponse>,
    set: ros2_client::service::Client<SetParametersRequest, SetParametersResponse>,
    list: ros2_client::service::Client<ListParametersRequest, ListParametersResponse>,
}

/// A node's answer to setting one parameter (rcl_interfaces/SetParametersResult).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetOutcome {
    /// Whether the value was taken.
    pub successful: bool,
    /// Why not, in the node's words.
    pub reason: String,
}

impl ParameterClient {
    /// Clients of the services of node `target` (fully qualified name).
    pub fn new(node: &Node, target: &str) -> Result<ParameterClient, NodeError> {
        fn client<Req, Resp>(node: &Node, target: &str, name: &str, ty: &str) -> Result<ros2_client::service::Client<Req, Resp>, NodeError>
        where
            Req: RosMessage + Clone + 'static,
            Resp: RosMessage + 'static,
        {
            let service = Name::new(target, name)
                .map_err(|e| NodeError::Dds { what: format!("naming {target}/{name}"), reason: format!("{e:?}") })?;
            node.with_ros_node(|ros| {
                ros.create_client::<Req, Resp>(
                    crate::service::mapping(),
                    &service,
                    &ServiceTypeName::new("rcl_interfaces", ty),
                    service_qos(),
                    service_qos(),
                )
            })
            .map_err(|e| NodeError::Dds { what: format!("creating client of {target}/{name}"), reason: format!("{e:?}") })
        }
        Ok(ParameterClient {
            target: target.to_string(),
            get: client(node, target, "get_parameters", "GetParameters")?,
            set: client(node, target, "set_parameters", "SetParameters")?,
            list: client(node, target, "list_parameters", "ListParameters")?,
        })
    }

    fn call_err(&self, what: &str, e: impl std::fmt::Debug) -> NodeError {
        NodeError::Dds { what: format!("{}/{what}", self.target), reason: format!("{e:?}") }
    }

    /// The values of `names` on the node (`NotSet` for the ones it lacks).
    pub async fn get(&self, names: &[String]) -> Result<Vec<ParameterValue>, NodeError> {
        let resp = self
            .get
            .async_call_service(GetParametersRequest { names: names.to_vec() })
            .await
            .map_err(|e| self.call_err("get_parameters", e))?;
        Ok(resp.values.into_iter().map(ParameterValue::from).collect())
    }

    /// Sets parameters; one outcome per parameter, as the node answered.
    pub async fn set(&self, params: Vec<(String, ParameterValue)>) -> Result<Vec<SetOutcome>, NodeError> {
        let parameter = params.into_iter().map(|(name, value)| raw::Parameter::from(ros2_client::Parameter { name, value })).collect();
        let resp = self.set.async_call_service(SetParametersRequest { parameter }).await.map_err(|e| self.call_err("set_parameters", e))?;
        Ok(resp.results.into_iter().map(|r| SetOutcome { successful: r.successful, reason: r.reason }).collect())
    }

    /// The names of the node's parameters, sorted.
    pub async fn list(&self) -> Result<Vec<String>, NodeError> {
        let resp = self
            .list
            .async_call_service(ListParametersRequest { prefixes: vec![], depth: 0 })
            .await
            .map_err(|e| self.call_err("list_parameters", e))?;
        let mut names = resp.result.names;
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_follows_prefixes_and_depth() {
        let names: Vec<String> = ["a", "b.c", "b.d.e", "f.g"].iter().map(|s| s.to_string()).collect();
        assert_eq!(list(&names, &[], 0).names.len(), 4);
        assert_eq!(list(&names, &[], 1).names, vec!["a"]);
        let r = list(&names, &["b".into()], 1);
        assert_eq!(r.names, vec!["b.c"]);
        assert_eq!(r.prefixes, vec!["b"]);
        assert_eq!(list(&names, &["b".into()], 0).names, vec!["b.c", "b.d.e"]);
    }
}
