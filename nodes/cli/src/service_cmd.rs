//! `s2r service call NAME TYPE [VALUES]`: calls a ROS 2 service and prints its
//! response (like `ros2 service call`), for the services compiled into sim2real.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use s2r_idl::dynamic::{self, EchoOptions};
use s2r_idl::{Message, Service, TypeName};
use s2r_runtime::Serialized;
use sim2real_msgs::sim2real_msgs::srv::{CancelTraining, Train};

use crate::discovery::session;

#[derive(Subcommand)]
pub enum ServiceCmd {
    /// Call a service and print its response (like ros2 service call).
    Call(CallArgs),
}

#[derive(Args)]
pub struct CallArgs {
    /// The service, e.g. /trainer/train.
    name: String,
    /// Its type, e.g. sim2real_msgs/srv/Train.
    #[arg(value_name = "TYPE")]
    type_name: String,
    /// The request as YAML (fields left out keep their defaults).
    #[arg(default_value = "{}")]
    values: String,
    /// Seconds to wait for a server and its response.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
}

pub async fn run(cmd: ServiceCmd) -> Result<()> {
    let ServiceCmd::Call(a) = cmd;
    if !(a.timeout > 0.0 && a.timeout.is_finite()) {
        bail!("--timeout {} must be a positive number of seconds", a.timeout);
    }
    // `pkg/srv/Type`, or `pkg/Type` as ros2 also takes it.
    let is = |name: &str| a.type_name == name || a.type_name == name.replace("/srv/", "/");
    if is(Train::TYPE_NAME) {
        call::<Train>(&a).await
    } else if is(CancelTraining::TYPE_NAME) {
        call::<CancelTraining>(&a).await
    } else {
        bail!("unknown service type '{}': sim2real calls {}, {}", a.type_name, Train::TYPE_NAME, CancelTraining::TYPE_NAME)
    }
}

fn type_of<M: Message>() -> TypeName {
    TypeName::parse(M::TYPE_NAME).expect("generated type names are valid")
}

async fn call<S: Service>(a: &CallArgs) -> Result<()> {
    let reg = sim2real_msgs::registry();
    let (req_ty, resp_ty) = (type_of::<S::Request>(), type_of::<S::Response>());
    let value = dynamic::from_literal(reg, &req_ty, &a.values).map_err(|e| anyhow!("{}: {e}", req_ty.full()))?;
    let request: S::Request = Serialized(dynamic::encode(&value)?.into()).decode()?;
    let s = session("service")?;
    // The session's node is in the root namespace: a relative name resolves under `/`.
    let client = s.node.create_client::<S>(&a.name)?;
    println!("requester: making request:\n{}", dynamic::to_yaml(&value, &EchoOptions::default()).trim_end());
    let response = client.call(request, Duration::from_secs_f64(a.timeout)).await?;
    let shown = dynamic::decode(reg, &resp_ty, &Serialized::encode(&response)?.0)?;
    println!("response:\n{}", dynamic::to_yaml(&shown, &EchoOptions::default()).trim_end());
    Ok(())
}
