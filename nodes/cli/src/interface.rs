//! `s2r interface list | show TYPE`.

use anyhow::{bail, Result};
use clap::Subcommand;
use s2r_idl::parse::{BaseType, MsgSpec};
use s2r_idl::{Kind, Registry, TypeName};

#[derive(Subcommand)]
pub enum InterfaceCmd {
    /// List the message and service types compiled in.
    List,
    /// Show a message or service definition, with nested types expanded.
    Show {
        /// e.g. sensor_msgs/msg/Image, sim2real_msgs/srv/Train
        type_name: String,
        /// Show only the type's own definition, not nested ones.
        #[arg(long)]
        no_expand: bool,
    },
}

pub fn run(cmd: InterfaceCmd) -> Result<()> {
    let reg = sim2real_msgs::registry();
    match cmd {
        InterfaceCmd::List => {
            println!("Messages:");
            for t in reg.types().filter(|t| t.kind == Kind::Msg) {
                println!("    {}", t.full());
            }
            println!("Services:");
            for t in reg.types().filter(|t| t.kind == Kind::Srv) {
                if let Some(service) = t.name.strip_suffix("_Request") {
                    println!("    {}/srv/{service}", t.package);
                }
            }
        }
        InterfaceCmd::Show { type_name, no_expand } => {
            let mut out = String::new();
            // A service: its request, `---`, its response (as ros2 shows one).
            if let [pkg, "srv", name] = type_name.split('/').collect::<Vec<_>>().as_slice() {
                let request = reg.get(&TypeName::service_part(pkg, name, "Request"));
                let response = reg.get(&TypeName::service_part(pkg, name, "Response"));
                if let (Some(req), Some(resp)) = (request, response) {
                    show(reg, req, 0, !no_expand, &mut out);
                    out.push_str("---\n");
                    show(reg, resp, 0, !no_expand, &mut out);
                    print!("{out}");
                    return Ok(());
                }
                bail!("unknown service type '{type_name}'; `s2r interface list` shows the known types");
            }
            let spec = match reg.lookup(&type_name) {
                Ok(s) => s,
                Err(e) => bail!("{e}; `s2r interface list` shows the known types"),
            };
            show(reg, spec, 0, !no_expand, &mut out);
            print!("{out}");
        }
    }
    Ok(())
}

/// Prints a definition like `ros2 interface show`: each nested type's fields
/// follow its field line, one tab deeper.
fn show(reg: &Registry, spec: &MsgSpec, depth: usize, expand: bool, out: &mut String) {
    let indent = "\t".repeat(depth);
    let nested: Vec<(&str, &TypeName)> = spec
        .fields
        .iter()
        .filter_map(|f| match &f.ty.base {
            BaseType::Nested(t) => Some((f.name.as_str(), t)),
            _ => None,
        })
        .collect();
    for line in spec.text.lines() {
        if depth > 0 && line.trim().is_empty() {
            continue;
        }
        // Nested definitions drop their comments, as ros2 does.
        let body = line.split('#').next().unwrap_or("").trim_end();
        if depth > 0 && body.trim().is_empty() {
            continue;
        }
        out.push_str(&indent);
        out.push_str(if depth > 0 { body.trim_start() } else { line });
        out.push('\n');
        if !expand {
            continue;
        }
        let mut words = body.split_whitespace();
        let (_, Some(field)) = (words.next(), words.next()) else { continue };
        if let Some((_, t)) = nested.iter().find(|(n, _)| *n == field) {
            if let Some(sub) = reg.get(t) {
                show(reg, sub, depth + 1, expand, out);
            }
        }
    }
}
