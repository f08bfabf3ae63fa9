//! `s2r setup`: makes this machine able to run sim2real's nodes. What they
//! need from the system is declared in `package.xml` as rosdep keys (rules in
//! `rosdep.yaml`); today that is a Vulkan driver for sim_node. Where the
//! renderer already finds an adapter nothing is installed; otherwise the
//! missing packages are installed with the system's package manager (`sudo`
//! when not root), or the exact command to run is printed.

use std::io::IsTerminal;
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use s2r_launch::rosdep::{system_deps, Os};

use crate::components::{self, PACKAGE};

#[derive(Args)]
pub struct SetupArgs {
    /// Only check: print what is missing and the command that installs it,
    /// and fail if anything is; install nothing.
    #[arg(long)]
    check: bool,
    /// Print nothing when nothing is missing (as `./s2r` runs it before every command).
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(a: SetupArgs) -> Result<()> {
    let adapters = s2r_sim::render::adapters();
    if let Some(first) = adapters.first() {
        if !a.quiet {
            println!("s2r setup: nothing to install; sim_node renders on {first}");
        }
        return Ok(());
    }
    let pkg = components::find_package(PACKAGE).ok_or_else(|| anyhow!("package '{PACKAGE}' not found (AMENT_PREFIX_PATH)"))?;
    let os = Os::detect().ok_or_else(|| anyhow!("no /etc/os-release: cannot tell which system packages to install"))?;
    let deps = system_deps(&pkg.share, &os)?;
    let packages: Vec<String> = deps.iter().flat_map(|d| d.packages.iter().cloned()).collect();
    let why = "sim_node renders with Vulkan and finds no graphics adapter here; \
               Mesa's lavapipe renders on the CPU where there is no GPU";
    let hidden = ["VK_DRIVER_FILES", "VK_ICD_FILENAMES"].iter().find_map(|v| std::env::var(v).ok().map(|x| format!("{v}={x}")));
    let missing: Vec<String> = packages.iter().filter(|p| os.is_installed(p) != Some(true)).cloned().collect();
    if packages.is_empty() || missing.is_empty() {
        let keys: Vec<&str> = deps.iter().map(|d| d.key.as_str()).collect();
        let mut msg = format!("{why}, but ");
        if packages.is_empty() {
            msg += &format!(
                "{} has no packages for {} in rosdep.yaml (keys: {}); install a Vulkan driver",
                os.ids.join("/"),
                PACKAGE,
                keys.join(", ")
            );
        } else {
            msg += &format!("{} are installed", packages.join(", "));
            if let Some(h) = &hidden {
                msg += &format!(" and {h} hides them from the Vulkan loader");
            }
        }
        bail!("s2r setup: {msg}");
    }
    let sudo = !is_root();
    let command = os
        .install_command(&missing)
        .ok_or_else(|| anyhow!("s2r setup: {why}; install {} ({} is not a system this knows)", missing.join(" "), os.ids.join("/")))?;
    let shown = format!("{}{}", if sudo { "sudo " } else { "" }, command.join(" "));
    if a.check || (sudo && !can_sudo()) {
        bail!("s2r setup: {why}. Install {} with:\n    {shown}", missing.join(", "));
    }
    eprintln!("s2r setup: {why}; installing {} with `{shown}`", missing.join(", "));
    if command[0] == "apt-get" {
        // A fresh machine (a container) may have no package lists yet.
        install(sudo, &["apt-get".into(), "update".into(), "-q".into()])?;
    }
    install(sudo, &command)?;
    match s2r_sim::render::adapters().first() {
        Some(a) => eprintln!("s2r setup: done; sim_node renders on {a}"),
        None => bail!(
            "s2r setup: installed {}, but Vulkan still finds no adapter{}",
            missing.join(", "),
            hidden.map(|h| format!(" ({h} is set)")).unwrap_or_default()
        ),
    }
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// sudo is there and can ask (a terminal) or needs no password.
fn can_sudo() -> bool {
    let present = Command::new("sudo").arg("--version").output().is_ok_and(|o| o.status.success());
    present && (std::io::stdin().is_terminal() || Command::new("sudo").args(["-n", "true"]).output().is_ok_and(|o| o.status.success()))
}

fn install(sudo: bool, command: &[String]) -> Result<()> {
    let apt = command[0] == "apt-get";
    let mut argv: Vec<&str> = Vec::new();
    if sudo {
        // sudo keeps no environment: the assignment goes on its command line.
        argv.push("sudo");
        if apt {
            argv.push("DEBIAN_FRONTEND=noninteractive");
        }
    }
    argv.extend(command.iter().map(String::as_str));
    let mut c = Command::new(argv[0]);
    c.args(&argv[1..]);
    if apt {
        c.env("DEBIAN_FRONTEND", "noninteractive");
    }
    let status = c.status().with_context(|| format!("s2r setup: running {}", argv[0]))?;
    if !status.success() {
        bail!("s2r setup: `{}` failed ({status})", argv.join(" "));
    }
    Ok(())
}
