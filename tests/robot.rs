//! launch/robot.launch.yaml on a robot nobody here wrote: a Cyclone DDS
//! peer in Python (`cyclone_peer.py robot`) plays a recorded camera at its
//! rate on /camera/image_raw, publishes odometry of its own motion and
//! follows /cmd_vel. The deployed stack (perception, reason, policy and the
//! watchdog, each its own process) drives it; when its camera goes silent
//! the watchdog stops it. The launch's plan is checked as `ros2 launch`
//! would run it.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{fresh_domain, loopback_env, peers_dir, python, Logged, Peer};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn s2r(domain: u16) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_s2r"));
    loopback_env(&mut c, domain);
    c.env("ROS_LOG_DIR", std::env::temp_dir().join("s2r-robot-test-logs"));
    c
}

/// The plan: the watchdog alone on the robot's command topic, required by
/// the launch; the policy's commands into the watchdog; every topic argument
/// reaching the nodes that read it.
#[test]
fn the_robot_launch_puts_the_watchdog_alone_on_the_command_topic() {
    let mut c = s2r(fresh_domain());
    c.args(["launch", root().join("launch/robot.launch.yaml").to_str().unwrap(), "--print"]);
    c.args(["namespace:=robot1", "camera:=/cam/image_raw", "cmd_vel:=/base/cmd_vel", "odom:=/wheel/odom"]);
    let out = c.stdout(Stdio::piped()).stderr(Stdio::piped()).output().unwrap();
    let plan = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{plan}{}", String::from_utf8_lossy(&out.stderr));
    let line = |exec: &str| -> String {
        plan.lines().find(|l| l.starts_with(&format!("s2r run {exec} "))).unwrap_or_else(|| panic!("no {exec} in:\n{plan}")).to_string()
    };
    let safety = line("safety_node");
    assert!(safety.contains("-r cmd_vel:=/base/cmd_vel") && safety.contains("-r odom:=/wheel/odom"), "{safety}");
    assert!(safety.contains("-r front/image_raw:=/cam/image_raw") && safety.contains("__ns:=/robot1"), "{safety}");
    assert!(safety.contains("required_nodes:=[perception_node, reason_node, policy_node]"), "{safety}");
    let policy = line("policy_node");
    assert!(policy.contains("-r cmd_vel:=cmd_vel_in") && policy.contains("-p reasoning:=true"), "{policy}");
    assert!(!policy.contains("/base/cmd_vel"), "only the watchdog commands the robot: {policy}");
    for exec in ["perception_node", "reason_node"] {
        assert!(line(exec).contains("-r front/image_raw:=/cam/image_raw"), "{}", line(exec));
    }
    assert!(!plan.contains("s2r run world_model_node"), "world_model_node only with world:=true");
    // The watchdog is required: its end is the launch's end.
    let block: Vec<&str> = plan.split("s2r run ").filter(|b| b.starts_with("safety_node")).collect();
    assert!(block[0].contains("on_exit: shutdown"), "{plan}");
}

/// Commands from the peer's log: (seconds since it started playing, speed).
fn commands(log: &[String]) -> Vec<(f64, f64)> {
    log.iter()
        .filter_map(|l| l.strip_prefix("CMD "))
        .map(|l| {
            let mut it = l.split_whitespace().map(|x| x.parse::<f64>().unwrap());
            (it.next().unwrap(), it.next().unwrap())
        })
        .collect()
}

#[test]
fn the_stack_drives_a_cyclone_dds_robot_and_the_watchdog_stops_it_when_its_camera_goes_silent() {
    let domain = fresh_domain();
    let mut launch = s2r(domain);
    launch.args(["launch", root().join("launch/robot.launch.yaml").to_str().unwrap()]);
    let stack = Logged::spawn(launch);

    let bag = root().join("bags/icy_night_crossing");
    let mut c = Command::new(python());
    c.arg(peers_dir().join("cyclone_peer.py"));
    c.args(["robot", bag.to_str().unwrap(), "/sim/front/image_raw", "--silence-after", "5", "--duration", "8", "--wait-readers", "4"]);
    loopback_env(&mut c, domain);
    let mut peer = Peer::spawn(c, "the Cyclone DDS robot peer");
    peer.expect_line("PLAYING", Duration::from_secs(120));
    peer.wait_success(Duration::from_secs(60));
    let log = stack.text();
    let cmds = commands(&peer.log);
    assert!(!cmds.is_empty(), "no commands reached the robot; stack:\n{log}");
    let moving: Vec<&(f64, f64)> = cmds.iter().filter(|(t, v)| *t < 5.0 && *v > 0.2).collect();
    assert!(!moving.is_empty(), "the stack never drove the robot while its camera played: {cmds:?}\nstack:\n{log}");
    // The camera stops at 5 s (the recording is 4 s long: its last frame is at about 4 s):
    // within the 300 ms staleness and a few ticks, only stops.
    let after: Vec<&(f64, f64)> = cmds.iter().filter(|(t, _)| *t > 4.8).collect();
    assert!(after.len() >= 20, "the watchdog keeps commanding at its rate: {after:?}");
    assert!(after.iter().all(|(_, v)| *v == 0.0), "the robot is stopped once its camera is silent: {after:?}\nstack:\n{log}");
    assert!(log.contains("holding the robot: no camera frame for"), "{log}");
    assert!(!log.contains("also publishes on"), "nothing else commands the robot: {log}");
    let end = peer.log.iter().find_map(|l| l.strip_prefix("END ")).unwrap().to_string();
    let speed: f64 = end.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(speed < 0.05, "the robot came to rest: END {end}");

    // The launch killed outright takes its nodes with it: none is left commanding, unseen.
    let pids: Vec<String> =
        log.lines().filter_map(|l| l.split("process started with pid [").nth(1)).map(|p| p.trim_end_matches(']').to_string()).collect();
    assert_eq!(pids.len(), 4, "{log}");
    drop(stack);
    let t = std::time::Instant::now();
    while pids.iter().any(|p| Path::new(&format!("/proc/{p}")).exists() && !zombie(p)) {
        assert!(t.elapsed() < Duration::from_secs(10), "nodes outlived their launch: {pids:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A process that has ended but not been waited for.
fn zombie(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| s.contains(") Z ")).unwrap_or(true)
}

fn numbers(line: &str) -> Vec<f64> {
    line.split_whitespace().map(|x| x.parse().unwrap()).collect()
}

/// A recording in which the car does not brake (the icy night's scripted
/// driver at 50 km/h, held-out seed 1000: it hits the child), played to the
/// peer robot as the view from where the robot is along the recorded road
/// (`--follow yes`): the stack brakes it on the ice and for the child, and
/// it comes to rest short of the place where the recorded car hit the child.
#[test]
fn the_stack_stops_a_cyclone_dds_robot_short_of_the_pedestrian_its_recording_hits() {
    let tmp = tempfile::tempdir().unwrap();
    let demos = tmp.path().join("demos");
    let mut c = s2r(fresh_domain());
    c.args(["demos", "--scenario", "icy_night_crossing", "--driver", "scripted", "--seeds", "1000..1000", "--image-scale", "0.5"]);
    c.args(["-o", demos.to_str().unwrap()]);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let domain = fresh_domain();
    let mut launch = s2r(domain);
    launch.args(["launch", root().join("launch/robot.launch.yaml").to_str().unwrap()]);
    let stack = Logged::spawn(launch);
    let mut c = Command::new(python());
    c.arg(peers_dir().join("cyclone_peer.py"));
    c.args(["robot", demos.join("icy_night_crossing_seed1000").to_str().unwrap(), "/sim/front/image_raw", "--wait-readers", "4"]);
    c.args(["--follow", "yes", "--duration", "30"]);
    loopback_env(&mut c, domain);
    let mut peer = Peer::spawn(c, "the Cyclone DDS robot peer");
    peer.expect_line("PLAYING", Duration::from_secs(120));
    peer.wait_success(Duration::from_secs(90));
    let log = stack.text();
    let find = |p: &str| peer.log.iter().find_map(|l| l.strip_prefix(p)).map(numbers).unwrap_or_else(|| panic!("no {p}: {:?}", peer.log));
    let (bag, end) = (find("BAG "), find("END "));
    let cmds = commands(&peer.log);
    eprintln!("recorded collision {bag:?}; robot at the end {end:?}");
    assert!(bag[0] > 10.0 && bag[1] > 100.0, "the recorded car hits the child far down the road: {bag:?}");
    assert!(end[1] < 0.3, "the robot is at rest: {end:?}\n{cmds:?}\nstack:\n{log}");
    assert!(end[0] < bag[1] && end[0] > bag[1] - 60.0, "short of where the recorded car hit the child, near it: {end:?} vs {bag:?}");
    assert!(cmds.iter().any(|(_, v)| *v > 1.0), "it drove before it stopped: {cmds:?}");
    assert!(log.contains("safety filter:"), "the reasoning limited the policy's speed:\n{log}");
}
