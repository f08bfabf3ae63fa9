//! `s2r launch` and `s2r run`, like `ros2 launch` and `ros2 run`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use clap::Args;
use s2r_launch::exec::{resolve, run, RunOptions};
use s2r_launch::plan::{declared_args, plan, Environment};

use crate::components::{self, PACKAGE};

#[derive(Args)]
pub struct LaunchArgs {
    /// A launch file, or a package and the name of a launch file in it, then
    /// launch arguments as name:=value.
    #[arg(required = true, num_args = 1..)]
    args: Vec<String>,
    /// Show the arguments the launch file declares and exit.
    #[arg(short = 's', long)]
    show_args: bool,
    /// Print the nodes the launch file would start, with their command lines, and exit.
    #[arg(short = 'p', long)]
    print: bool,
    /// Run all of sim2real's nodes in this one process (intra-process, no copies).
    #[arg(long)]
    compose: bool,
}

#[derive(Args)]
pub struct RunArgs {
    /// [package] executable, then the node's own arguments and --ros-args.
    #[arg(required = true, num_args = 1.., allow_hyphen_values = true, trailing_var_arg = true)]
    args: Vec<String>,
}

fn environment() -> Environment {
    Environment { env: Box::new(|k| std::env::var(k).ok()), package: Box::new(components::find_package) }
}

/// `pkg file.launch.yaml`: the file found under the package's share folder.
fn find_in_package(pkg: &str, name: &str) -> Result<PathBuf> {
    let found = components::find_package(pkg).ok_or_else(|| anyhow!("package '{pkg}' not found (AMENT_PREFIX_PATH)"))?;
    for dir in [found.share.join("launch"), found.share.clone()] {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("no launch file '{name}' in {}", found.share.join("launch").display())
}

fn log_dir() -> PathBuf {
    let base = std::env::var_os("ROS_LOG_DIR").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("ROS_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".ros"))
            .join("log")
    });
    let t = s2r_runtime::clock::system_now().0 / 1_000_000_000;
    base.join(format!("s2r_launch_{t}_{}", std::process::id()))
}

pub async fn launch(a: LaunchArgs) -> Result<()> {
    let (given, positional): (Vec<&String>, Vec<&String>) = a.args.iter().partition(|s| s.contains(":="));
    let file = match positional.as_slice() {
        [f] => PathBuf::from(f),
        [pkg, f] if !Path::new(f).is_file() => find_in_package(pkg, f)?,
        [_, f] => PathBuf::from(f),
        _ => bail!("expected a launch file (or a package and a launch file), then name:=value arguments"),
    };
    if !file.is_file() {
        bail!("launch file {} not found", file.display());
    }
    let given: HashMap<String, String> = given
        .iter()
        .map(|s| {
            let (k, v) = s.split_once(":=").unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let env = environment();
    if a.show_args {
        let args = declared_args(&file, &env)?;
        println!("Arguments (pass arguments as '<name>:=<value>'):\n");
        if args.is_empty() {
            println!("  No arguments.");
        }
        for arg in args {
            println!("    '{}':", arg.name);
            println!("        {}", if arg.description.is_empty() { "no description given" } else { &arg.description });
            if !arg.choices.is_empty() {
                println!("        Valid choices are: {:?}", arg.choices);
            }
            match arg.default {
                Some(d) => println!("        (default: '{d}')\n"),
                None => println!("        (required)\n"),
            }
        }
        return Ok(());
    }
    let plan = plan(&file, &given, &env)?;
    let targets = resolve(&plan, &components::all(), PACKAGE, &components::find_package)?;
    if a.print {
        for (n, t) in plan.nodes.iter().zip(&targets) {
            let program = match t {
                s2r_launch::exec::Target::Component(c) => format!("s2r run {}", c.exec),
                s2r_launch::exec::Target::Executable(p) => p.display().to_string(),
            };
            println!("{program} {}", n.argv().join(" "));
            if !n.env.is_empty() {
                println!("    env: {}", n.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "));
            }
            if n.respawn {
                println!("    respawn after {} s", n.respawn_delay);
            }
            if n.shutdown_on_exit {
                println!("    on_exit: shutdown");
            }
        }
        return Ok(());
    }
    let opts = RunOptions { compose: a.compose, self_exe: std::env::current_exe()?, log_dir: log_dir() };
    let code = run(&plan, targets, &opts).await.map_err(|e| anyhow!(e))?;
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

/// `s2r run [sim2real] <exec> [args] [--ros-args …]`: runs one of sim2real's
/// nodes in this process, or another package's executable.
pub fn run_node(a: RunArgs) -> Result<()> {
    let mut args = a.args;
    let (pkg, exec) = if args.len() >= 2 && !args[1].starts_with('-') && components::find(&args[0]).is_none() {
        let pkg = args.remove(0);
        (pkg, args.remove(0))
    } else {
        (PACKAGE.to_string(), args.remove(0))
    };
    if pkg == PACKAGE {
        if let Some(c) = components::find(&exec) {
            let mut argv = vec![exec.clone()];
            argv.extend(args);
            s2r_runtime::component::run_blocking(c, argv).map_err(|e| anyhow!("{exec}: {e}"))?;
            return Ok(());
        }
    }
    let found = components::find_package(&pkg).ok_or_else(|| anyhow!("package '{pkg}' not found"))?;
    let path = found.prefix.join("lib").join(&pkg).join(&exec);
    if !path.is_file() {
        let known: Vec<&str> = components::all().iter().map(|c| c.exec).collect();
        bail!("no executable '{exec}' in package '{pkg}' (sim2real has: {})", known.join(", "));
    }
    use std::os::unix::process::CommandExt;
    Err(anyhow!("{}: {}", path.display(), std::process::Command::new(&path).args(args).exec()))
}
