//! The README's first command as a newcomer runs it:
//! `ROS_LOCALHOST_ONLY=1 ./s2r launch launch/transfer.launch.yaml`, through
//! the `./s2r` wrapper of this checkout (CI runs it in a clean clone).
//!
//! - On a machine without a Vulkan driver, `./s2r` does not start a launch
//!   that cannot run: `s2r setup` names the packages and the exact command
//!   that installs them (it runs that command itself where it may; the tests
//!   run without a network, so here it only checks). As root, the test makes
//!   such a machine for real in a mount namespace: no Vulkan driver manifests,
//!   and a package database without Mesa's driver and the Vulkan loader.
//! - If the simulator cannot start anyway, the launch ends with its exit
//!   code and reason instead of leaving transfer_node waiting.
//! - Where the driver is there, restyled frames flow and the launch ends by
//!   itself when the simulation's duration is over.
//!
//! The wrapper builds with the dev profile here (`S2R_BUILD_PROFILE=dev`,
//! the build the tests already made) instead of a second, release build.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{finish, fresh_domain, loopback, loopback_env};
use s2r_runtime::{Node, Qos, RosArgs};
use sim2real_msgs::sensor_msgs::msg::Image;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// `./s2r ARGS`, as the README has it, on loopback in `domain`.
fn s2r(args: &[&str], domain: u16) -> Command {
    let mut c = Command::new(Path::new(REPO).join("s2r"));
    c.args(args).current_dir(REPO).env("S2R_BUILD_PROFILE", "dev");
    loopback_env(&mut c, domain);
    c
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// What the Vulkan loader reads to find drivers: pointed at nothing, it finds
/// none, as on a machine without one.
fn hide_vulkan_drivers(c: &mut Command) {
    c.env("VK_DRIVER_FILES", "/nonexistent/none.json").env("VK_ICD_FILENAMES", "/nonexistent/none.json");
}

#[test]
fn without_a_vulkan_driver_the_first_command_says_what_to_install() {
    if !is_root() || !Command::new("unshare").args(["-m", "true"]).status().is_ok_and(|s| s.success()) {
        eprintln!("skipped: making a machine without a Vulkan driver needs root and a mount namespace");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    // The package database without the two packages, and the driver
    // manifests gone, inside a mount namespace of this command alone.
    let status = std::fs::read_to_string("/var/lib/dpkg/status").unwrap();
    let fake = scratch.path().join("dpkg-status");
    let kept: Vec<&str> = status
        .split("\n\n")
        .filter(|stanza| !stanza.lines().any(|l| l == "Package: mesa-vulkan-drivers" || l == "Package: libvulkan1"))
        .collect();
    std::fs::write(&fake, kept.join("\n\n")).unwrap();
    let empty = scratch.path().join("no-icd");
    std::fs::create_dir_all(&empty).unwrap();
    let mut script = String::from("set -e\nmount --bind \"$1\" /var/lib/dpkg/status\n");
    for d in ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d"] {
        script += &format!("[ ! -d {d} ] || mount --bind \"$2\" {d}\n");
    }
    script += "shift 2\nexec \"$@\"\n";
    let inner = s2r(&["launch", "launch/transfer.launch.yaml"], fresh_domain());
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c", &script, "sh"])
        .arg(&fake)
        .arg(&empty)
        .arg(inner.get_program())
        .args(inner.get_args());
    c.current_dir(REPO);
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    // The check only: the tests run without a network to install from.
    c.env("S2R_SETUP", "check").env_remove("VK_DRIVER_FILES").env_remove("VK_ICD_FILENAMES");
    let (out, _) = finish(c, Duration::from_secs(300));
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("Install libvulkan1, mesa-vulkan-drivers with:\n    apt-get install -y libvulkan1 mesa-vulkan-drivers"), "{t}");
    assert!(t.contains("finds no graphics adapter"), "{t}");
    assert!(!t.contains("transfer_node"), "a node started: {t}");
}

fn is_root() -> bool {
    let o = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim() == "0"
}

#[test]
fn when_the_simulator_cannot_start_the_launch_ends_with_its_code() {
    let mut c = s2r(&["launch", "launch/transfer.launch.yaml"], fresh_domain());
    hide_vulkan_drivers(&mut c);
    c.env("S2R_SETUP", "skip");
    let (out, took) = finish(c, Duration::from_secs(300));
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("no graphics adapter found"), "{t}");
    eprintln!("the launch ended {took:?} after it started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_driver_restyled_frames_flow_and_the_launch_ends_by_itself() {
    let domain = fresh_domain();
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "newcomer_test", &RosArgs::default()).unwrap();
    let frames = node.create_subscription::<Image>("/front/image_raw", Qos::sensor_data().depth(50)).unwrap();
    let mut c = s2r(&["launch", "launch/transfer.launch.yaml", "duration:=4.0"], domain);
    c.env("S2R_SETUP", "check");
    let (out, _) = tokio::task::spawn_blocking(move || finish(c, Duration::from_secs(300))).await.unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let mut n = 0;
    let mut size = (0, 0);
    while let Some(img) = frames.try_recv() {
        n += 1;
        size = (img.width, img.height);
    }
    assert!(n > 0, "no restyled frame on /front/image_raw: {t}");
    assert!(size.0 > 0 && size.1 > 0);
    eprintln!("{n} restyled frames of {}x{}", size.0, size.1);
}
