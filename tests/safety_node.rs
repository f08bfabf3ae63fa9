//! safety_node over DDS: the controller's commands pass while the camera,
//! the state and the controller are fresh; a silent camera, a latched
//! emergency stop, collapsed perception confidence and a required node that
//! leaves the graph each hold the robot (zero velocity, or an arm held where
//! it was), published on safety/events and logged; another publisher on the
//! command topic is named; bad parameters stop it naming the parameter.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{finish, fresh_domain, loopback, loopback_env, Logged};
use s2r_runtime::{Node, Publisher, Qos, RosArgs, Subscription};
use sim2real_msgs::geometry_msgs::msg::{Twist, Vector3};
use sim2real_msgs::nav_msgs::msg::Odometry;
use sim2real_msgs::sensor_msgs::msg::{Image, JointState};
use sim2real_msgs::sim2real_msgs::msg::SafetyEvent;
use sim2real_msgs::std_msgs::msg::{Bool, Float32};

fn safety_node(domain: u16, args: &[&str]) -> Logged {
    let mut c = Command::new(env!("CARGO_BIN_EXE_safety_node"));
    loopback_env(&mut c, domain);
    c.args(["--ros-args", "-r", "__ns:=/robot"]).args(args);
    Logged::spawn(c)
}

fn twist(v: f64) -> Twist {
    Twist { linear: Vector3 { x: v, ..Default::default() }, ..Default::default() }
}

fn frame() -> Image {
    s2r_image::rgb8_msg(Default::default(), 8, 8, vec![90; 8 * 8 * 3])
}

/// Everything that arrived so far.
fn drain<M>(s: &Subscription<M>) -> Vec<Arc<M>>
where
    M: s2r_idl::Message,
{
    std::iter::from_fn(|| s.try_recv()).collect()
}

/// The robot side of the test: camera, odometry and controller in; the
/// robot's command and the watchdog's events out.
struct Rig {
    camera: Publisher<Image>,
    odom: Publisher<Odometry>,
    controller: Publisher<Twist>,
    cmd: Subscription<Twist>,
    events: Subscription<SafetyEvent>,
}

impl Rig {
    fn new(node: &Node) -> Rig {
        Rig {
            camera: node.create_publisher("/robot/front/image_raw", Qos::sensor_data()).unwrap(),
            odom: node.create_publisher("/robot/odom", Qos::sensor_data()).unwrap(),
            controller: node.create_publisher("/robot/cmd_vel_in", Qos::reliable()).unwrap(),
            cmd: node.create_subscription("/robot/cmd_vel", Qos::reliable().depth(1000)).unwrap(),
            events: node.create_subscription("/robot/safety/events", Qos::transient_local().depth(50)).unwrap(),
        }
    }

    /// Drives for `d` at 50 Hz: a camera frame, odometry and a command of
    /// `v` each tick (the camera only when `camera`); returns the commands
    /// the robot got meanwhile.
    async fn drive(&self, d: Duration, v: f64, camera: bool) -> Vec<f64> {
        let t = Instant::now();
        let mut got = Vec::new();
        while t.elapsed() < d {
            if camera {
                self.camera.publish(frame()).unwrap();
            }
            self.odom.publish(Odometry::default()).unwrap();
            self.controller.publish(twist(v)).unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            got.extend(drain(&self.cmd).iter().map(|c| c.linear.x));
        }
        got
    }

    /// The events so far.
    fn events(&self) -> Vec<Arc<SafetyEvent>> {
        drain(&self.events)
    }
}

async fn wait_for_subscriber<M: s2r_idl::Message>(p: &Publisher<M>, node: &Logged) {
    let t = Instant::now();
    while p.subscription_count() == 0 {
        assert!(t.elapsed() < Duration::from_secs(30), "safety_node did not come up:\n{}", node.text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_pass_while_everything_is_fresh_and_a_silent_camera_or_an_emergency_stop_holds_the_robot() {
    let domain = fresh_domain();
    let node_proc = safety_node(domain, &["-p", "stale_ms:=300"]);
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "robot", &RosArgs::default()).unwrap();
    let rig = Rig::new(&node);
    let e_stop = node.create_publisher::<Bool>("/robot/e_stop", Qos::transient_local()).unwrap();
    wait_for_subscriber(&rig.controller, &node_proc).await;

    // Nothing heard yet: held, at its rate, and said why.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let held = drain(&rig.cmd);
    assert!(held.len() >= 5, "it commands a stop at its rate before any input: {} commands", held.len());
    assert!(held.iter().all(|c| c.linear.x == 0.0));
    let first = rig.events();
    assert!(first[0].engaged && first[0].reasons == ["stale_camera", "stale_state", "stale_command"], "{first:?}");

    // Everything fresh: the controller's commands pass, released once.
    let got = rig.drive(Duration::from_secs(2), 2.5, true).await;
    assert!(got.iter().filter(|&&v| v == 2.5).count() >= 50, "commands pass: {got:?}");
    let ev = rig.events();
    assert!(ev.iter().any(|e| !e.engaged && e.reasons.is_empty()), "released: {ev:?}");

    // The camera goes silent: held within the staleness limit and a tick.
    let got = rig.drive(Duration::from_secs(2), 2.5, false).await;
    let first_zero = got.iter().position(|&v| v == 0.0).expect("a silent camera holds the robot");
    // At 50 Hz: 300 ms of staleness is 15 ticks; allow for scheduling.
    assert!(first_zero <= 30, "held after {first_zero} commands at 50 Hz: {got:?}");
    assert!(got[first_zero..].iter().all(|&v| v == 0.0), "nothing passes while held: {got:?}");
    let ev = rig.events();
    assert!(ev.iter().any(|e| e.engaged && e.reasons == ["stale_camera"] && e.detail.contains("no camera frame")), "{ev:?}");
    node_proc.wait_for("holding the robot: no camera frame for", Duration::from_secs(5)).await;

    // Back: released.
    let got = rig.drive(Duration::from_secs(1), 1.0, true).await;
    assert_eq!(got.last(), Some(&1.0), "{got:?}");

    // The emergency stop holds whatever else is fresh, until released.
    e_stop.publish(Bool { data: true }).unwrap();
    let got = rig.drive(Duration::from_secs(1), 1.0, true).await;
    assert!(got.len() >= 20 && got.iter().rev().take(20).all(|&v| v == 0.0), "e_stop holds: {got:?}");
    let ev = rig.events();
    assert!(ev.iter().any(|e| e.engaged && e.reasons == ["e_stop"]), "{ev:?}");
    e_stop.publish(Bool { data: false }).unwrap();
    let got = rig.drive(Duration::from_secs(1), 1.0, true).await;
    assert_eq!(got.last(), Some(&1.0), "released by e_stop false: {got:?}");
    let count = rig.events().last().map(|e| e.count).unwrap_or(0);
    assert!(count >= 3, "interventions counted: {count}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latched_emergency_stop_holds_a_watchdog_that_starts_later() {
    let domain = fresh_domain();
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "robot", &RosArgs::default()).unwrap();
    let e_stop = node.create_publisher::<Bool>("/robot/e_stop", Qos::transient_local()).unwrap();
    e_stop.publish(Bool { data: true }).unwrap();
    let rig = Rig::new(&node);
    let node_proc = safety_node(domain, &[]);
    wait_for_subscriber(&rig.controller, &node_proc).await;
    let got = rig.drive(Duration::from_secs(2), 3.0, true).await;
    assert!(!got.is_empty() && got.iter().all(|&v| v == 0.0), "{got:?}");
    node_proc.wait_for("e_stop: on", Duration::from_secs(5)).await;
}

/// An emergency stop from an ordinary (volatile) publisher holds the robot
/// too; and on SIGINT the watchdog's last word to the robot is a stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volatile_emergency_stop_holds_and_a_stopped_watchdog_stops_the_robot() {
    let domain = fresh_domain();
    let node_proc = safety_node(domain, &[]);
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "robot", &RosArgs::default()).unwrap();
    let rig = Rig::new(&node);
    let e_stop = node.create_publisher::<Bool>("/robot/e_stop", Qos::reliable()).unwrap();
    wait_for_subscriber(&rig.controller, &node_proc).await;
    let t = Instant::now();
    while e_stop.subscription_count() == 0 {
        assert!(t.elapsed() < Duration::from_secs(20), "the watchdog does not read a volatile e_stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = rig.drive(Duration::from_secs(1), 2.0, true).await;
    assert_eq!(got.last(), Some(&2.0), "{got:?}");
    e_stop.publish(Bool { data: true }).unwrap();
    let got = rig.drive(Duration::from_secs(1), 2.0, true).await;
    assert!(got.len() >= 20 && got.iter().rev().take(20).all(|&v| v == 0.0), "a volatile e_stop holds: {got:?}");
    e_stop.publish(Bool { data: false }).unwrap();
    let got = rig.drive(Duration::from_secs(1), 2.0, true).await;
    assert_eq!(got.last(), Some(&2.0), "{got:?}");

    // Driving at 2 m/s, the watchdog is stopped: a stop is the last command the robot gets.
    Command::new("kill").args(["-INT", &node_proc.child.id().to_string()]).status().unwrap();
    let got = rig.drive(Duration::from_secs(2), 2.0, true).await;
    assert_eq!(got.last(), Some(&0.0), "{got:?}\n{}", node_proc.text());
    node_proc.wait_for("shutting down: a stop sent to /robot/cmd_vel", Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collapsed_perception_and_a_required_node_leaving_hold_the_robot() {
    let domain = fresh_domain();
    let node_proc = safety_node(
        domain,
        &["-p", "min_confidence:=0.5", "-p", "confidence_frames:=3", "-p", "required_nodes:=[policy_node]", "-p", "rate:=50.0"],
    );
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "robot", &RosArgs::default()).unwrap();
    let rig = Rig::new(&node);
    let confidence = node.create_publisher::<Float32>("/robot/perception/front/confidence", Qos::sensor_data()).unwrap();
    wait_for_subscriber(&rig.controller, &node_proc).await;
    // A policy_node of its own (another participant) in the robot's namespace.
    let policy_ctx = loopback(domain);
    let policy = Node::new(
        &policy_ctx,
        "policy_node",
        &RosArgs::parse(["x", "--ros-args", "-r", "__ns:=/robot"].map(String::from).to_vec()).unwrap(),
    )
    .unwrap();

    let drive_with = |c: f32| {
        confidence.publish(Float32 { data: c }).unwrap();
    };
    // Confident perception, the policy running: commands pass.
    let t = Instant::now();
    let mut got = Vec::new();
    while t.elapsed() < Duration::from_secs(3) {
        drive_with(0.9);
        got.extend(rig.drive(Duration::from_millis(40), 2.0, true).await);
    }
    assert_eq!(got.last(), Some(&2.0), "confident and complete: commands pass\n{}", node_proc.text());

    // Two low readings are not a collapse; a run of them is.
    drive_with(0.1);
    drive_with(0.1);
    let got = rig.drive(Duration::from_millis(300), 2.0, true).await;
    assert_eq!(got.last(), Some(&2.0), "{got:?}");
    for _ in 0..5 {
        drive_with(0.05);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let got = rig.drive(Duration::from_millis(400), 2.0, true).await;
    assert!(got.iter().rev().take(5).all(|&v| v == 0.0), "collapsed confidence holds: {got:?}");
    node_proc.wait_for("perception's confidence collapsed (0.05)", Duration::from_secs(5)).await;

    // Confidence back; then the policy's node goes away.
    let mut got = Vec::new();
    for _ in 0..3 {
        drive_with(0.9);
        got = rig.drive(Duration::from_millis(100), 2.0, true).await;
    }
    assert_eq!(got.last(), Some(&2.0), "{got:?}");
    drop(policy);
    drop(policy_ctx);
    let t = Instant::now();
    loop {
        drive_with(0.9);
        let got = rig.drive(Duration::from_millis(100), 2.0, true).await;
        if node_proc.text().contains("required node /robot/policy_node left the graph") {
            let got = rig.drive(Duration::from_millis(300), 2.0, true).await;
            assert!(got.iter().rev().take(5).all(|&v| v == 0.0), "{got:?}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(40), "the node's departure not noticed: {got:?}\n{}", node_proc.text());
    }
    let ev = rig.events();
    assert!(ev.iter().any(|e| e.engaged && e.reasons == ["node_gone"]), "{ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arm_is_held_where_it_was_and_a_second_commander_is_named() {
    let domain = fresh_domain();
    let node_proc = safety_node(domain, &["-p", "robot:=arm"]);
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "robot", &RosArgs::default()).unwrap();
    let camera = node.create_publisher::<Image>("/robot/front/image_raw", Qos::sensor_data()).unwrap();
    let states = node.create_publisher::<JointState>("/robot/joint_states", Qos::sensor_data()).unwrap();
    let controller = node.create_publisher::<JointState>("/robot/joint_commands_in", Qos::reliable()).unwrap();
    let cmd = node.create_subscription::<JointState>("/robot/joint_commands", Qos::reliable().depth(1000)).unwrap();
    wait_for_subscriber(&controller, &node_proc).await;
    let names: Vec<String> = ["joint1", "joint2", "gripper"].map(String::from).to_vec();
    let joints = |p: [f64; 3]| JointState { name: names.clone(), position: p.to_vec(), ..Default::default() };
    let step = |with_camera: bool, measured: [f64; 3], target: [f64; 3]| {
        if with_camera {
            camera.publish(frame()).unwrap();
        }
        states.publish(joints(measured)).unwrap();
        controller.publish(joints(target)).unwrap();
    };
    for _ in 0..50 {
        step(true, [0.1, 0.2, 0.05], [0.5, 0.6, 0.0]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let passed = drain(&cmd);
    assert_eq!(passed.last().unwrap().position, [0.5, 0.6, 0.0], "targets pass");
    // The camera stops while the arm moves on: held at the joints measured when the hold
    // began (the 300 ms staleness ends within the first 25 steps; the arm then moves on).
    for k in 0..50 {
        step(false, if k < 25 { [0.3, 0.4, 0.05] } else { [0.7, 0.8, 0.05] }, [0.9, 0.9, 0.0]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let held = drain(&cmd);
    let last = held.last().unwrap();
    assert_eq!(last.name, names);
    assert_eq!(last.position, [0.3, 0.4, 0.05], "held where it was");
    // Targets pass until the camera is 300 ms old; none once the hold began.
    let began = held.iter().position(|j| j.position == [0.3, 0.4, 0.05]).unwrap();
    assert!(began <= 25, "held after {began} commands at 50 Hz");
    assert!(held[began..].iter().all(|j| j.position == [0.3, 0.4, 0.05]), "no target passes while held");

    // A second node that commands the arm directly is named.
    let rogue_ctx = loopback(domain);
    let rogue = Node::new(&rogue_ctx, "rogue", &RosArgs::default()).unwrap();
    let _direct = rogue.create_publisher::<JointState>("/robot/joint_commands", Qos::reliable()).unwrap();
    node_proc.wait_for("/rogue also publishes on /robot/joint_commands", Duration::from_secs(20)).await;
}

#[test]
fn bad_parameters_are_named() {
    for (arg, want) in [
        ("robot:=boat", "parameter 'robot': 'boat' is not vehicle, arm or auto"),
        ("min_confidence:=1.5", "parameter 'min_confidence': must be in [0, 1]"),
        ("stale_ms:=0", "parameter 'stale_ms': must be at least 1 ms"),
        ("rate:=0.0", "parameter 'rate'"),
    ] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_safety_node"));
        loopback_env(&mut c, fresh_domain());
        c.args(["--ros-args", "-p", arg]);
        let (out, _) = finish(c, Duration::from_secs(20));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want), "{arg}: {err}");
    }
}

/// `stamped`: a vehicle's commands in and out as geometry_msgs/TwistStamped
/// (what ros2_control's diff_drive_controller and Nav2 take since Jazzy),
/// headers kept; the stops it sends are stamped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stamped_commands_pass_with_their_headers() {
    use sim2real_msgs::builtin_interfaces::msg::Time;
    use sim2real_msgs::geometry_msgs::msg::TwistStamped;
    use sim2real_msgs::std_msgs::msg::Header;
    let domain = fresh_domain();
    let node_proc = safety_node(domain, &["-p", "stamped:=true"]);
    let ctx = loopback(domain);
    let node = Node::new(&ctx, "robot", &RosArgs::default()).unwrap();
    let camera = node.create_publisher::<Image>("/robot/front/image_raw", Qos::sensor_data()).unwrap();
    let odom = node.create_publisher::<Odometry>("/robot/odom", Qos::sensor_data()).unwrap();
    let controller = node.create_publisher::<TwistStamped>("/robot/cmd_vel_in", Qos::reliable()).unwrap();
    let cmd = node.create_subscription::<TwistStamped>("/robot/cmd_vel", Qos::reliable().depth(1000)).unwrap();
    wait_for_subscriber(&controller, &node_proc).await;
    for k in 0..60 {
        camera.publish(frame()).unwrap();
        odom.publish(Odometry::default()).unwrap();
        let header = Header { stamp: Time { sec: 100, nanosec: k }, frame_id: "base_link".into() };
        controller.publish(TwistStamped { header, twist: twist(1.5) }).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = drain(&cmd);
    let passed: Vec<_> = got.iter().filter(|c| c.twist.linear.x == 1.5).collect();
    assert!(passed.len() >= 30, "{got:?}");
    assert!(passed.iter().all(|c| c.header.stamp.sec == 100 && c.header.frame_id == "base_link"), "headers kept: {passed:?}");
    // Silence: stops, stamped by the watchdog.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let held = drain(&cmd);
    assert!(!held.is_empty() && held.iter().all(|c| c.twist.linear.x == 0.0 && c.header.stamp.sec > 100), "{held:?}");
}
