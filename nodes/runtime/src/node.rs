//! A ROS 2 node: name and namespace (after `--ros-args`), typed parameters served
//! over the standard parameter services, publishers and subscriptions with
//! remapping, a clock that follows /clock under `use_sim_time`, and a logger
//! that writes to the terminal and /rosout.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use ros2_client::{MessageTypeName, Name, NodeName, NodeOptions, ParameterValue};
use s2r_idl::{Message, TypeName};
use sim2real_msgs::rcl_interfaces::msg::Log;
use sim2real_msgs::rosgraph_msgs::msg::Clock as ClockMsg;

use crate::args::RosArgs;
use crate::clock::{system_now, Clock, Stamp};
use crate::context::Context;
use crate::log::{LogLevel, Logger};
use crate::names::{self, NameError};
use crate::params::{coerce, type_name, ParamError, ParamType};
use crate::pubsub::{
    DdsWriter, Publisher, Queue, ReceiveInfo, Received, RemoteReaders, SinkRegistration, Subscription, TaskGuard, TypedSink,
};
use crate::qos::{Durability, Qos, Writer};

/// What went wrong creating a node or one of its endpoints, or calling a service.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A node, namespace or topic name that is not a ROS name.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A parameter value that does not fit, with where it came from.
    #[error("parameter '{name}' ({origin}): {reason}")]
    Parameter {
        /// The parameter.
        name: String,
        /// Where the value came from (`-p`, a params file, the default).
        origin: String,
        /// Why it does not fit.
        reason: String,
    },
    /// The DDS layer refused (a participant, topic, reader, writer or service).
    #[error("{what}: {reason}")]
    Dds {
        /// What was being done.
        what: String,
        /// What the DDS layer said.
        reason: String,
    },
    /// A message type name that is not `pkg/msg/Type`.
    #[error("'{0}' is not a message type name (pkg/msg/Type)")]
    TypeName(String),
    /// A service call that got no answer, or a refused one.
    #[error("service {service}: {reason}")]
    Service {
        /// The service's resolved name.
        service: String,
        /// What went wrong.
        reason: String,
    },
    /// Nodes run their background work on tokio; none was running.
    #[error("nodes must be created inside a tokio runtime")]
    NoRuntime,
}

fn dds_err(what: impl Into<String>) -> impl FnOnce(ros2_client::CreateError) -> NodeError {
    let what = what.into();
    move |e| NodeError::Dds { what, reason: format!("{e:?}") }
}

/// The rcl logger name of a node: namespace tokens and name joined by dots.
fn logger_name(namespace: &str, name: &str) -> String {
    let mut parts: Vec<&str> = namespace.split('/').filter(|s| !s.is_empty()).collect();
    parts.push(name);
    parts.join(".")
}

pub(crate) struct NodeInner {
    ctx: Context,
    name: String,
    namespace: String,
    fqn: String,
    args: RosArgs,
    ros: Mutex<ros2_client::Node>,
    /// Declared parameters (their current type), shared with the validator.
    declared: Arc<Mutex<HashMap<String, ParameterValue>>>,
    /// Values from the command line and params files not yet declared.
    overrides: Mutex<HashMap<String, (ParameterValue, String)>>,
    clock: Clock,
    clock_sub: Mutex<Option<Subscription<ClockMsg>>>,
    clock_task: Mutex<Option<TaskGuard>>,
    logger: Logger,
    tasks: Mutex<Vec<TaskGuard>>,
}

/// Whether `value` may be stored in parameter `name` (declared, same type).
fn check_declared(declared: &HashMap<String, ParameterValue>, name: &str, value: &ParameterValue) -> Result<(), ParamError> {
    match declared.get(name) {
        None => Err(ParamError::NotDeclared(name.into())),
        Some(d) if std::mem::discriminant(d) != std::mem::discriminant(value) => {
            Err(ParamError::WrongType { name: name.into(), declared: type_name(d), given: type_name(value) })
        }
        Some(_) => Ok(()),
    }
}

/// A ROS 2 node. Clones refer to the same node; it leaves the graph when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

impl Node {
    /// Creates a node named `name` in the root namespace, unless `args` rename
    /// or move it (`-r __node:=…`, `-r __ns:=…`). When this returns the node
    /// serves its parameters, publishes its logs on /rosout (unless
    /// `--disable-rosout-logs`) and has `use_sim_time` from `args`. Fails on
    /// a name that is not a ROS name, a `use_sim_time` override that is not a
    /// bool, a DDS refusal, or outside a tokio runtime
    /// ([`NodeError::NoRuntime`]).
    pub fn new(ctx: &Context, name: &str, args: &RosArgs) -> Result<Node, NodeError> {
        Self::with_namespace(ctx, name, "/", args)
    }

    fn with_namespace(ctx: &Context, name: &str, namespace: &str, args: &RosArgs) -> Result<Node, NodeError> {
        tokio::runtime::Handle::try_current().map_err(|_| NodeError::NoRuntime)?;
        names::validate_node_name(name)?;
        let final_name = args.resolved_node_name(name);
        names::validate_node_name(&final_name)?;
        let namespace = names::normalize_namespace(&args.resolved_namespace(&final_name, namespace))?;
        let fqn = names::fully_qualified(&namespace, &final_name);

        let clock = Clock::default();
        let declared: Arc<Mutex<HashMap<String, ParameterValue>>> = Arc::new(Mutex::new(HashMap::new()));
        declared.lock().unwrap().insert("use_sim_time".into(), ParameterValue::Boolean(false));

        let validator = {
            let declared = declared.clone();
            // ros2-client's validators answer with the reason as text.
            Box::new(move |name: &str, value: &ParameterValue| -> Result<(), String> {
                check_declared(&declared.lock().unwrap(), name, value).map_err(|e| e.to_string())
            })
        };
        let options = NodeOptions::new()
            .enable_rosout(false)
            // Served by param_services, without ros2-client's spinner (which
            // would also subscribe /clock with the wrong type).
            .start_parameter_services(false)
            .allow_undeclared_parameters(true)
            .parameter_validator(validator);
        let node_name = NodeName::new(&namespace, &final_name)
            .map_err(|e| NodeError::Name(NameError { name: fqn.clone(), reason: format!("{e:?}") }))?;
        let ros = ctx
            .ros()
            .new_node(node_name, options)
            .map_err(|e| NodeError::Dds { what: format!("creating node {fqn}"), reason: format!("{e:?}") })?;

        let logger = Logger::new(
            logger_name(&namespace, &final_name),
            args.log_level_for(&logger_name(&namespace, &final_name)).unwrap_or(LogLevel::Info),
            args.stdout_logs.unwrap_or(true),
            clock.clone(),
        );

        let mut overrides = HashMap::new();
        for (pname, value, source) in args.param_overrides(&final_name, &fqn) {
            overrides.insert(pname, (value, source));
        }

        let inner = Arc::new(NodeInner {
            ctx: ctx.clone(),
            name: final_name.clone(),
            namespace: namespace.clone(),
            fqn: fqn.clone(),
            args: args.clone(),
            ros: Mutex::new(ros),
            declared,
            overrides: Mutex::new(overrides),
            clock,
            clock_sub: Mutex::new(None),
            clock_task: Mutex::new(None),
            logger,
            tasks: Mutex::new(Vec::new()),
        });
        let node = Node { inner };
        let services = crate::param_services::start(&node)?;
        node.inner.tasks.lock().unwrap().extend(services);

        if args.rosout_logs.unwrap_or(true) {
            // rcl's /rosout profile: reliable, transient local, depth 1000.
            let rosout = node.create_publisher::<Log>("/rosout", Qos::transient_local().depth(1000))?;
            node.inner.logger.attach_rosout(rosout);
        }
        // use_sim_time exists on every node; apply an override of it now.
        let use_sim = node.take_override("use_sim_time", &ParameterValue::Boolean(false))?;
        if let Some(v) = use_sim {
            node.set_parameter_value("use_sim_time", v)?;
        }
        Ok(node)
    }

    pub(crate) fn from_inner(inner: Arc<NodeInner>) -> Node {
        Node { inner }
    }

    pub(crate) fn inner_arc(&self) -> &Arc<NodeInner> {
        &self.inner
    }

    pub(crate) fn with_ros_node<R>(&self, f: impl FnOnce(&mut ros2_client::Node) -> R) -> R {
        f(&mut self.inner.ros.lock().unwrap())
    }

    pub(crate) fn parameter_value(&self, name: &str) -> Option<ParameterValue> {
        self.inner.ros.lock().unwrap().get_parameter(name)
    }

    pub(crate) fn parameter_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.declared.lock().unwrap().keys().cloned().collect();
        names.sort();
        names
    }

    pub(crate) fn check_parameter(&self, name: &str, value: &ParameterValue) -> Result<(), ParamError> {
        check_declared(&self.inner.declared.lock().unwrap(), name, value)
    }

    /// `/namespace/name`.
    pub fn fully_qualified_name(&self) -> &str {
        &self.inner.fqn
    }

    pub(crate) fn context(&self) -> &Context {
        &self.inner.ctx
    }

    /// The node's logger, named as rcl names it (`robot.talker` for
    /// `/robot/talker`): what `--log-level robot.talker:=debug` selects and
    /// /rosout shows.
    pub fn logger(&self) -> &Logger {
        &self.inner.logger
    }

    /// The node's clock, which follows `use_sim_time` as the parameter changes.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Current time: system time, or the last /clock value under `use_sim_time`.
    pub fn now(&self) -> Stamp {
        self.inner.clock.now()
    }

    /// The fully qualified name a publisher or subscription on `topic` gets:
    /// `chatter` → `/ns/chatter`, `~/x` → `/ns/node/x`, then the first
    /// matching `-r` rule. Fails on a name that is not a ROS name.
    pub fn resolve_topic(&self, topic: &str) -> Result<String, NodeError> {
        let full = names::expand(topic, &self.inner.namespace, &self.inner.name)?;
        Ok(names::remap(&full, &self.inner.args.remaps, &self.inner.namespace, &self.inner.name)?)
    }

    fn take_override(&self, name: &str, declared: &ParameterValue) -> Result<Option<ParameterValue>, NodeError> {
        let Some((value, source)) = self.inner.overrides.lock().unwrap().remove(name) else {
            return Ok(None);
        };
        coerce(declared, &value).map(Some).ok_or_else(|| NodeError::Parameter {
            name: name.to_string(),
            origin: source,
            reason: format!("expected {}, got {}", type_name(declared), type_name(&value)),
        })
    }

    /// Stores a parameter value (checked by the validator). Every set, local or
    /// through the services, comes here; `use_sim_time` takes effect at once.
    pub(crate) fn set_parameter_value(&self, name: &str, value: ParameterValue) -> Result<(), NodeError> {
        let sim = if name == "use_sim_time" { bool::from_value(&value) } else { None };
        self.inner.ros.lock().unwrap().set_parameter(name, value).map_err(|reason| NodeError::Parameter {
            name: name.to_string(),
            origin: "set".into(),
            reason,
        })?;
        if let Some(on) = sim {
            if on {
                self.ensure_clock_subscription()?;
            }
            self.inner.clock.set_use_sim_time(on);
        }
        Ok(())
    }

    /// Declares a parameter with a default and returns its value: the default,
    /// unless a params file or `-p` gave another. Visible to `ros2 param`.
    /// Fails when the name is declared already (`use_sim_time` always is) or
    /// the given value is not of the default's type (an integer for a double
    /// is widened).
    pub fn declare_parameter<T: ParamType>(&self, name: &str, default: T) -> Result<T, NodeError> {
        let default_value = default.to_value();
        {
            let mut declared = self.inner.declared.lock().unwrap();
            if declared.contains_key(name) {
                return Err(NodeError::Parameter { name: name.into(), origin: "declare".into(), reason: "declared twice".into() });
            }
            declared.insert(name.to_string(), default_value.clone());
        }
        let value = self.take_override(name, &default_value)?.unwrap_or(default_value);
        self.set_parameter_value(name, value.clone())?;
        Ok(T::from_value(&value).expect("coerced to the declared type"))
    }

    /// The current value of a declared parameter; `None` when it is not
    /// declared or `T` is not its type.
    pub fn parameter<T: ParamType>(&self, name: &str) -> Option<T> {
        let v = self.inner.ros.lock().unwrap().get_parameter(name)?;
        T::from_value(&v)
    }

    /// Sets a declared parameter (same checks as the parameter services).
    pub fn set_parameter<T: ParamType>(&self, name: &str, value: T) -> Result<(), NodeError> {
        self.set_parameter_value(name, value.to_value())
    }

    fn dds_topic(&self, full: &str, ty: &TypeName, qos: &Qos) -> Result<rustdds::Topic, NodeError> {
        let name = Name::parse(full).map_err(|e| NodeError::Name(NameError { name: full.into(), reason: format!("{e:?}") }))?;
        self.inner
            .ros
            .lock()
            .unwrap()
            .create_topic(&name, MessageTypeName::new(&ty.package, &ty.name), &qos.to_profile())
            .map_err(dds_err(format!("creating topic {full}")))
    }

    /// A publisher of `M` on `topic` (expanded and remapped).
    pub fn create_publisher<M: Message>(&self, topic: &str, qos: Qos) -> Result<Publisher<M>, NodeError> {
        self.create_publisher_with(topic, qos, Writer::Graph)
    }

    /// A publisher of `M` on `topic` whose DDS writer is made as `writer`
    /// says: [`Writer::Acknowledged`] lets [`Publisher::wait_for_acknowledgments`]
    /// wait for its readers.
    pub fn create_publisher_with<M: Message>(&self, topic: &str, qos: Qos, writer: Writer) -> Result<Publisher<M>, NodeError> {
        let full = self.resolve_topic(topic)?;
        let ty = TypeName::parse(M::TYPE_NAME).expect("generated type names are valid");
        let dds_topic = self.dds_topic(&full, &ty, &qos)?;
        let ctx = self.inner.ctx.clone();
        let dds = match writer {
            Writer::Graph => DdsWriter::Graph(
                self.inner
                    .ros
                    .lock()
                    .unwrap()
                    .create_publisher::<Arc<M>>(&dds_topic, Some(qos.to_profile()))
                    .map_err(dds_err(format!("creating publisher on {full}")))?,
            ),
            Writer::Acknowledged => DdsWriter::Acknowledged(
                ctx.raw_publisher()
                    .create_datawriter_no_key_cdr::<Arc<M>>(&dds_topic, Some(rustdds::QosPolicies::from(qos.to_profile())))
                    .map_err(|e| NodeError::Dds { what: format!("creating writer on {full}"), reason: format!("{e:?}") })?,
            ),
        };
        Ok(Publisher {
            slot: ctx.topic_slot(&full),
            remote: RemoteReaders::new(format!("rt{full}"), ctx.guid_prefix()),
            always_write: qos.durability == Durability::TransientLocal,
            failures: Default::default(),
            topic: full,
            ctx,
            dds,
        })
    }

    /// A subscription to `M` on `topic` (expanded and remapped): messages from
    /// this process arrive without copy, others over DDS.
    pub fn create_subscription<M: Message>(&self, topic: &str, qos: Qos) -> Result<Subscription<M>, NodeError> {
        let full = self.resolve_topic(topic)?;
        let ty = TypeName::parse(M::TYPE_NAME).expect("generated type names are valid");
        let dds_topic = self.dds_topic(&full, &ty, &qos)?;
        let queue = Arc::new(Queue::<M>::new(qos.queue_depth()));
        let ctx = &self.inner.ctx;
        let id = ctx.next_id();
        let slot = ctx.topic_slot(&full);
        slot.sinks.write().unwrap().push(Arc::new(TypedSink {
            id,
            queue: queue.clone(),
            warned: AtomicBool::new(false),
            topic: full.clone(),
        }));
        let registration = SinkRegistration { slot, id };
        let sub = self
            .inner
            .ros
            .lock()
            .unwrap()
            .create_subscription::<M>(&dds_topic, Some(qos.to_profile()))
            .map_err(dds_err(format!("creating subscription on {full}")))?;
        let task = tokio::spawn(read_dds(sub, queue.clone(), ctx.guid_prefix(), self.inner.logger.clone(), full.clone()));
        Ok(Subscription { topic: full, queue, _registration: registration, _task: TaskGuard(task) })
    }

    fn ensure_clock_subscription(&self) -> Result<(), NodeError> {
        let mut slot = self.inner.clock_sub.lock().unwrap();
        if slot.is_some() {
            return Ok(());
        }
        let sub = self.create_subscription::<ClockMsg>("/clock", Qos::sensor_data().depth(1))?;
        let clock = self.inner.clock.clone();
        let queue = sub.queue.clone();
        let task = tokio::spawn(async move {
            loop {
                let r = queue.recv().await;
                clock.set_sim_time(Stamp::from_msg(&r.msg.clock));
            }
        });
        *slot = Some(sub);
        drop(slot);
        // The task lives as long as the node: hold it beside the subscription.
        self.inner.clock_task.lock().unwrap().replace(TaskGuard(task));
        Ok(())
    }
}

async fn read_dds<M: Message>(sub: ros2_client::Subscription<M>, queue: Arc<Queue<M>>, prefix: [u8; 12], logger: Logger, topic: String) {
    let stream = sub.async_stream();
    futures::pin_mut!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok((msg, info)) => {
                let gid = info.publisher_gid();
                // Our own process's messages came intra-process already.
                if gid.as_bytes()[..12] == prefix {
                    continue;
                }
                queue.push(Received {
                    msg: Arc::new(msg),
                    info: ReceiveInfo {
                        source_stamp: info.source_timestamp().map(|t| Stamp(t.to_nanos())),
                        received: system_now(),
                        intra_process: false,
                        publisher: gid.to_bytes16(),
                    },
                });
            }
            Err(e) => {
                let n = queue.malformed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n < 10 || n.is_multiple_of(1000) {
                    logger.warn(format!("{topic}: skipped a message that is not a valid {} ({e:?})", M::TYPE_NAME));
                }
            }
        }
    }
}
