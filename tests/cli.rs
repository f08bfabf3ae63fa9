//! The `s2r` command as a user runs it: separate processes on loopback.

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use s2r_runtime::{Context, ContextOptions, DiscoveryRange, Node, Qos, RosArgs};
use sim2real_msgs::std_msgs::msg::String as StringMsg;

fn domain() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    10 + (std::process::id() % 4) as u16 * 7 + NEXT.fetch_add(1, Ordering::Relaxed) % 7
}

fn s2r(domain: u16) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_s2r"));
    c.env("ROS_DOMAIN_ID", domain.to_string()).env("ROS_LOCALHOST_ONLY", "1").env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST");
    c
}

fn run(mut c: Command, timeout: Duration) -> Output {
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > timeout {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "timed out after {timeout:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn background(mut c: Command) -> Background {
    Background(c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap())
}

fn loopback(domain: u16) -> Context {
    Context::new(ContextOptions { domain_id: domain, range: DiscoveryRange::Localhost, ..Default::default() }).unwrap()
}

#[test]
fn pub_and_echo_see_each_other() {
    let d = domain();
    let mut echo = s2r(d);
    echo.args(["topic", "echo", "/chatter", "--once"]);
    let echo = echo.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut publ = s2r(d);
    publ.args(["topic", "pub", "/chatter", "std_msgs/msg/String", "{data: hello}", "--rate", "10", "--times", "50"]);
    let _p = background(publ);
    let out = echo.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "data: hello\n---\n");
}

#[test]
fn echo_selects_fields_of_nested_messages() {
    let d = domain();
    let mut publ = s2r(d);
    publ.args([
        "topic",
        "pub",
        "/odom",
        "nav_msgs/msg/Odometry",
        "{header: {frame_id: odom}, pose: {pose: {position: {x: 1.5}}}, twist: {covariance: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36]}}",
        "-r",
        "10",
    ]);
    let _p = background(publ);
    let mut echo = s2r(d);
    echo.args(["topic", "echo", "/odom", "--once", "--field", "pose.pose.position"]);
    let out = run(echo, Duration::from_secs(30));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "x: 1.5\ny: 0.0\nz: 0.0\n---\n");
    let mut echo = s2r(d);
    echo.args(["topic", "echo", "/odom", "nav_msgs/msg/Odometry", "--once", "--field", "twist.covariance.35"]);
    let out = run(echo, Duration::from_secs(30));
    assert_eq!(text(&out.stdout), "36.0\n---\n");
    let mut echo = s2r(d);
    echo.args(["topic", "echo", "/odom", "--once"]);
    let full = text(&run(echo, Duration::from_secs(30)).stdout);
    assert!(full.starts_with("header:\n  stamp:\n    sec: 0\n    nanosec: 0\n  frame_id: odom\nchild_frame_id: ''\n"), "{full}");
    assert!(full.contains("  covariance:\n  - 0.0\n"), "{full}");
}

#[test]
fn graph_commands_see_a_node_of_the_runtime() {
    let d = domain();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let ctx = loopback(d);
    let args = RosArgs::parse(["t", "--ros-args", "-r", "__ns:=/robot", "-p", "gain:=2.5"]).unwrap();
    let node = Node::new(&ctx, "talker", &args).unwrap();
    node.declare_parameter("gain", 1.0).unwrap();
    node.declare_parameter("label", String::from("front")).unwrap();
    let _chatter = node.create_publisher::<StringMsg>("chatter", Qos::reliable()).unwrap();
    let _cmd = node.create_subscription::<StringMsg>("cmd", Qos::sensor_data()).unwrap();

    let mut list = s2r(d);
    list.args(["topic", "list", "-t"]);
    let out = text(&run(list, Duration::from_secs(20)).stdout);
    assert!(out.contains("/robot/chatter [std_msgs/msg/String]\n"), "{out}");
    assert!(out.contains("/rosout [rcl_interfaces/msg/Log]\n"), "{out}");

    let mut info = s2r(d);
    info.args(["topic", "info", "/robot/chatter", "-v"]);
    let out = text(&run(info, Duration::from_secs(20)).stdout);
    assert!(out.starts_with("Type: std_msgs/msg/String\n"), "{out}");
    assert!(out.contains("Node name: talker\nNode namespace: /robot\n"), "{out}");
    assert!(out.contains("Reliability: RELIABLE"), "{out}");

    let mut nodes = s2r(d);
    nodes.args(["node", "list"]);
    let out = text(&run(nodes, Duration::from_secs(20)).stdout);
    assert_eq!(out, "/robot/talker\n");

    let mut ninfo = s2r(d);
    ninfo.args(["node", "info", "/robot/talker"]);
    let out = text(&run(ninfo, Duration::from_secs(20)).stdout);
    assert!(out.contains("  Subscribers:\n    /robot/cmd: std_msgs/msg/String\n"), "{out}");
    assert!(out.contains("    /robot/chatter: std_msgs/msg/String\n"), "{out}");
    assert!(out.contains("    /rosout: rcl_interfaces/msg/Log\n"), "{out}");
    assert!(out.contains("    /robot/talker/get_parameters: rcl_interfaces/srv/GetParameters\n"), "{out}");

    let mut get = s2r(d);
    get.args(["param", "get", "/robot/talker", "gain"]);
    let out = run(get, Duration::from_secs(30));
    assert_eq!(text(&out.stdout), "Double value is: 2.5\n", "{}", text(&out.stderr));
    let mut set = s2r(d);
    set.args(["param", "set", "/robot/talker", "label", "rear"]);
    let out = run(set, Duration::from_secs(30));
    assert_eq!(text(&out.stdout), "Set parameter successful\n", "{}", text(&out.stderr));
    assert_eq!(node.parameter::<String>("label").as_deref(), Some("rear"));
    let mut bad = s2r(d);
    bad.args(["param", "set", "/robot/talker", "gain", "fast"]);
    let out = run(bad, Duration::from_secs(30));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("'gain' is double, not string"), "{}", text(&out.stderr));
    let mut list = s2r(d);
    list.args(["param", "list", "/robot/talker"]);
    let out = text(&run(list, Duration::from_secs(30)).stdout);
    assert_eq!(out, "  gain\n  label\n  use_sim_time\n");
}

#[test]
fn hz_and_bw_report() {
    let d = domain();
    let mut publ = s2r(d);
    publ.args(["topic", "pub", "/fast", "std_msgs/msg/String", "{data: abcdefgh}", "-r", "20", "-p", "0"]);
    let _p = background(publ);
    let mut hz = s2r(d);
    hz.args(["topic", "hz", "/fast"]);
    let mut child = hz.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(5));
    child.kill().unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.wait().unwrap();
    let rate: f64 =
        out.lines().find_map(|l| l.strip_prefix("average rate: ")).unwrap_or_else(|| panic!("no rate in: {out}")).parse().unwrap();
    assert!(rate > 0.0);
    assert!(out.contains("\tmin: "), "{out}");

    let mut bw = s2r(d);
    bw.args(["topic", "bw", "/fast"]);
    let mut child = bw.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(5));
    child.kill().unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.wait().unwrap();
    assert!(out.starts_with("Subscribed to [/fast]\n"), "{out}");
    // 4 header + 4 length + 9 characters with the terminator, padded by the
    // writer to a 4-byte boundary as RTPS payloads are: 20 bytes on the wire.
    assert!(out.contains("Message size mean: 20 B min: 20 B max: 20 B"), "{out}");
}

#[test]
fn interface_show_expands_nested_types() {
    let mut c = Command::new(env!("CARGO_BIN_EXE_s2r"));
    c.args(["interface", "show", "geometry_msgs/msg/PoseWithCovariance"]);
    let out = text(&run(c, Duration::from_secs(10)).stdout);
    assert!(out.contains("Pose pose\n\tPoint position\n\t\tfloat64 x\n"), "{out}");
    assert!(out.contains("\tQuaternion orientation\n\t\tfloat64 x 0\n"), "{out}");
    assert!(out.contains("float64[36] covariance\n"), "{out}");
    let mut c = Command::new(env!("CARGO_BIN_EXE_s2r"));
    c.args(["interface", "list"]);
    let out = text(&run(c, Duration::from_secs(10)).stdout);
    assert!(out.contains("    sim2real_msgs/msg/ScenarioInfo\n"), "{out}");
    // Services: listed by name, shown as request, ---, response.
    assert!(out.contains("Services:\n") && out.contains("    sim2real_msgs/srv/Train\n"), "{out}");
    assert!(!out.contains("Train_Request"), "{out}");
    let mut c = Command::new(env!("CARGO_BIN_EXE_s2r"));
    c.args(["interface", "show", "sim2real_msgs/srv/CancelTraining"]);
    let out = text(&run(c, Duration::from_secs(10)).stdout);
    assert!(out.contains("uint64 job_id\n---\nbool cancelled\nstring message\n"), "{out}");
}

#[test]
fn bad_input_is_refused_naming_it() {
    let d = domain();
    let cases: &[(&[&str], &str)] = &[
        (&["topic", "pub", "/x", "std_msgs/msg/Nope", "{}"], "unknown message type 'std_msgs/msg/Nope'"),
        (&["topic", "pub", "/x", "not a type", "{}"], "'not a type' is not an interface name"),
        (&["topic", "pub", "/x", "geometry_msgs/msg/Twist", "{linear: {w: 1}}"], "'linear.w' is not a field of geometry_msgs/msg/Vector3"),
        (&["topic", "pub", "/x", "geometry_msgs/msg/Twist", "{linear: {x: fast}}"], "linear.x: expected a number"),
        (&["topic", "pub", "/x", "std_msgs/msg/String", "{data: [1, 2"], "is not a YAML literal"),
        (&["topic", "pub", "/x", "std_msgs/msg/UInt8", "{data: 300}"], "data: 300 is out of range for uint8"),
        (&["interface", "show", "sensor_msgs/msg/Camera"], "unknown message type 'sensor_msgs/msg/Camera'"),
        (&["interface", "show", "sim2real_msgs/srv/Nope"], "unknown service type 'sim2real_msgs/srv/Nope'"),
        (&["service", "call", "/trainer/train", "sim2real_msgs/srv/Nope"], "unknown service type 'sim2real_msgs/srv/Nope'"),
        (&["service", "call", "/trainer/train", "sim2real_msgs/srv/Train", "{kindd: world}"], "kindd"),
        (
            &["service", "call", "/nobody/train", "sim2real_msgs/srv/Train", "{}", "--timeout", "0.5"],
            "service /nobody/train: no server within 0.5 s",
        ),
        (&["topic", "echo", "/x", "std_msgs/msg/Nope"], "unknown message type 'std_msgs/msg/Nope'"),
    ];
    for (args, needle) in cases {
        let mut c = s2r(d);
        c.args(*args);
        let out = run(c, Duration::from_secs(20));
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = text(&out.stderr);
        assert!(err.contains(needle), "{args:?}: expected '{needle}' in: {err}");
    }
    let mut c = s2r(d);
    c.env("ROS_DOMAIN_ID", "999").args(["topic", "list"]);
    let out = run(c, Duration::from_secs(10));
    assert!(text(&out.stderr).contains("ROS_DOMAIN_ID='999'"), "{}", text(&out.stderr));
}

#[test]
fn sigint_and_sigterm_stop_cleanly() {
    for sig in ["INT", "TERM"] {
        let d = domain();
        let mut c = s2r(d);
        c.args(["topic", "echo", "/quiet", "std_msgs/msg/String"]);
        let child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        std::thread::sleep(Duration::from_secs(3));
        let status = Command::new("kill").args([&format!("-{sig}"), &child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let start = Instant::now();
        let out = child.wait_with_output().unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(out.status.success(), "SIG{sig}: {:?} {}", out.status, text(&out.stderr));
    }
}

#[test]
fn every_node_has_its_executable_and_nothing_else_does() {
    let o = s2r(domain()).args(["pkg", "executables"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let listed: std::collections::BTreeSet<String> = text(&o.stdout)
        .lines()
        .map(|l| l.strip_prefix("sim2real ").unwrap_or_else(|| panic!("not 'sim2real EXEC': {l}")).to_string())
        .collect();
    let bins: std::collections::BTreeSet<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/bin"))
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed, bins, "the node registry (nodes/cli/src/components.rs) and src/bin/ must name the same executables");
    assert!(listed.contains("sim_node") && listed.contains("s2r"), "{listed:?}");
}
