//! `s2r param list | get | set`, like `ros2 param`, through the nodes'
//! rcl_interfaces parameter services.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use s2r_runtime::param_services::ParameterClient;
use s2r_runtime::params::parse_value_literal;
use s2r_runtime::ParameterValue;

use crate::discovery::{absolute, session};

#[derive(Subcommand)]
pub enum ParamCmd {
    /// List a node's parameters.
    List { node: String },
    /// Print a parameter's value.
    Get { node: String, name: String },
    /// Set a parameter (the value is YAML: 5, 2.5, true, hello, [1, 2]).
    Set { node: String, name: String, value: String },
}

/// `ros2 param get`'s wording of a value.
pub fn describe(v: &ParameterValue) -> String {
    let py_bool = |b: bool| if b { "True" } else { "False" };
    match v {
        ParameterValue::NotSet => "Parameter not set.".into(),
        ParameterValue::Boolean(b) => format!("Boolean value is: {}", py_bool(*b)),
        ParameterValue::Integer(i) => format!("Integer value is: {i}"),
        ParameterValue::Double(d) => format!("Double value is: {}", s2r_idl::dynamic::yaml::format_float(*d)),
        ParameterValue::String(s) => format!("String value is: {s}"),
        ParameterValue::ByteArray(b) => format!("Byte values are: {b:?}"),
        ParameterValue::BooleanArray(a) => {
            format!("Boolean values are: [{}]", a.iter().map(|b| py_bool(*b)).collect::<Vec<_>>().join(", "))
        }
        ParameterValue::IntegerArray(a) => format!("Integer values are: {a:?}"),
        ParameterValue::DoubleArray(a) => {
            format!("Double values are: [{}]", a.iter().map(|d| s2r_idl::dynamic::yaml::format_float(*d)).collect::<Vec<_>>().join(", "))
        }
        ParameterValue::StringArray(a) => format!("String values are: {a:?}"),
    }
}

pub async fn run(cmd: ParamCmd) -> Result<()> {
    let s = session("param")?;
    let target = match &cmd {
        ParamCmd::List { node } | ParamCmd::Get { node, .. } | ParamCmd::Set { node, .. } => absolute(node),
    };
    let client = ParameterClient::new(&s.node, &target)?;
    // Services need discovery on both sides before the first call.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let timeout = Duration::from_secs(10);
    let tgt = target.clone();
    let call = |what: &'static str| {
        let tgt = tgt.clone();
        move |_| anyhow!("{tgt}: no answer to {what} within 10 s (is the node running?)")
    };
    match cmd {
        ParamCmd::List { .. } => {
            let names = tokio::time::timeout(timeout, client.list()).await.map_err(call("list_parameters"))?.map_err(|e| anyhow!(e))?;
            for n in names {
                println!("  {n}");
            }
        }
        ParamCmd::Get { name, .. } => {
            let values = tokio::time::timeout(timeout, client.get(std::slice::from_ref(&name)))
                .await
                .map_err(call("get_parameters"))?
                .map_err(|e| anyhow!(e))?;
            match values.first() {
                Some(ParameterValue::NotSet) | None => bail!("parameter '{name}' is not set on {target}"),
                Some(v) => println!("{}", describe(v)),
            }
        }
        ParamCmd::Set { name, value, .. } => {
            let v = parse_value_literal(&value).map_err(|e| anyhow!("value of '{name}': {e}"))?;
            let results = tokio::time::timeout(timeout, client.set(vec![(name, v)]))
                .await
                .map_err(call("set_parameters"))?
                .map_err(|e| anyhow!(e))?;
            match results.into_iter().next() {
                Some(r) if r.successful => println!("Set parameter successful"),
                Some(r) => bail!("Setting parameter failed: {}", r.reason),
                None => bail!("{target} answered set_parameters without a result"),
            }
        }
    }
    Ok(())
}
