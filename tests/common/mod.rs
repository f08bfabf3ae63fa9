//! Shared by the interoperability tests: the sample pattern every peer computes
//! from a sample index k, loopback-only settings, and peer processes.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use s2r_runtime::{Context, ContextOptions, DiscoveryRange};
use sim2real_msgs::builtin_interfaces::msg::Time;
use sim2real_msgs::geometry_msgs::msg as geo;
use sim2real_msgs::nav_msgs::msg::Odometry;
use sim2real_msgs::sensor_msgs::msg::Image;
use sim2real_msgs::std_msgs::msg::{Header, String as StringMsg};
use sim2real_msgs::vision_msgs::msg as vis;

pub const W: u32 = 640;
pub const H: u32 = 480;

/// The first `n` front-camera frames of a shipped recording (`bags/<name>`).
pub fn recorded_frames(name: &str, n: usize) -> Vec<Image> {
    let bag = s2r_bag::BagReader::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("bags").join(name)).unwrap();
    let frames: Vec<Image> = bag
        .messages()
        .filter(|m| bag.connections[m.connection].topic == "/sim/front/image_raw")
        .map(|m| s2r_runtime::Serialized(m.data.clone()).decode::<Image>().unwrap())
        .take(n)
        .collect();
    assert!(!frames.is_empty(), "no front camera frames in bags/{name}");
    frames
}

/// A domain of its own for each test, so tests running side by side never
/// hear each other.
pub fn fresh_domain() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // 38 domains per test binary, in one of five bands picked by process id
    // (domain ids stop at 232).
    40 + (std::process::id() % 5) as u16 * 38 + NEXT.fetch_add(1, Ordering::Relaxed) % 38
}

pub fn loopback(domain: u16) -> Context {
    Context::new(ContextOptions { domain_id: domain, range: DiscoveryRange::Localhost, ..Default::default() })
        .expect("DDS participant on loopback")
}

/// Environment that keeps a child process's DDS traffic on loopback.
pub fn loopback_env(cmd: &mut Command, domain: u16) {
    cmd.env("ROS_DOMAIN_ID", domain.to_string()).env("ROS_LOCALHOST_ONLY", "1").env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST");
}

fn header(k: i32, frame: &str) -> Header {
    Header { stamp: Time { sec: k, nanosec: 1000 * k as u32 }, frame_id: frame.into() }
}

pub fn string_msg(k: i32) -> StringMsg {
    StringMsg { data: format!("hello {k}") }
}

pub fn image(k: i32) -> Image {
    let n = (W * H * 3) as usize;
    Image {
        header: header(k, "camera_optical"),
        height: H,
        width: W,
        encoding: "rgb8".into(),
        is_bigendian: 0,
        step: W * 3,
        data: (0..n).map(|i| ((i * 7) as i64 + k as i64) as u8).collect::<Vec<u8>>().into(),
    }
}

/// Runs `cmd` to its end, reading its output, killing it after `limit`
/// (which fails the test, with its stderr); returns the output and how long it ran.
pub fn finish(mut cmd: Command, limit: Duration) -> (std::process::Output, Duration) {
    let t0 = Instant::now();
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id().to_string();
    let (done, ended) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = ended.recv_timeout(limit) {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    });
    let out = child.wait_with_output().unwrap();
    let took = t0.elapsed();
    drop(done);
    watchdog.join().unwrap();
    assert!(took < limit, "still running after {limit:?}; stderr: {}", String::from_utf8_lossy(&out.stderr));
    (out, took)
}

/// A 4×2 depth image (32FC1) at time 0: what a node reading colour frames must refuse, naming the topic.
pub fn depth_frame(frame_id: &str) -> Image {
    Image {
        header: Header { stamp: Time { sec: 0, nanosec: 0 }, frame_id: frame_id.into() },
        width: 4,
        height: 2,
        encoding: "32FC1".into(),
        step: 16,
        data: vec![0u8; 32].into(),
        ..Default::default()
    }
}

/// An rgb8 frame as a camera driver sends it in bgr8, with a new stamp and frame.
pub fn as_bgr8(rgb: &Image, stamp: Time, frame_id: &str) -> Image {
    let bgr: Vec<u8> = rgb.data.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
    Image {
        header: Header { stamp, frame_id: frame_id.into() },
        width: rgb.width,
        height: rgb.height,
        encoding: "bgr8".into(),
        step: rgb.width * 3,
        data: bgr.into(),
        ..Default::default()
    }
}

pub fn odometry(k: i32) -> Odometry {
    let mut o = Odometry { header: header(k, "odom"), child_frame_id: "base_link".into(), ..Default::default() };
    o.pose.pose.position = geo::Point { x: k as f64, y: 2.0 * k as f64, z: 3.5 };
    o.pose.pose.orientation = geo::Quaternion { x: 0.0, y: 0.0, z: 0.6, w: 0.8 };
    o.pose.covariance = std::array::from_fn(|i| i as f64 * 0.5 + k as f64);
    o.twist.twist.linear.x = 1.5;
    o.twist.twist.angular.z = -0.25;
    o.twist.covariance = std::array::from_fn(|i| -(i as f64));
    o
}

pub fn detections(k: i32) -> vis::Detection2DArray {
    let detections = (0..3)
        .map(|j| {
            let results = (0..=j)
                .map(|h| {
                    let mut r = vis::ObjectHypothesisWithPose {
                        hypothesis: vis::ObjectHypothesis { class_id: format!("class-{h}"), score: 0.1 * (h + 1) as f64 },
                        ..Default::default()
                    };
                    r.pose.pose.position.x = h as f64;
                    r.pose.covariance[35] = j as f64;
                    r
                })
                .collect();
            vis::Detection2D {
                header: header(k, "camera_optical"),
                results,
                bbox: vis::BoundingBox2D {
                    center: vis::Pose2D {
                        position: vis::Point2D { x: 10.0 * j as f64 + k as f64, y: 20.0 * j as f64 },
                        theta: 0.1 * j as f64,
                    },
                    size_x: 5.0 + j as f64,
                    size_y: 6.0 + j as f64,
                },
                id: format!("obj-{j}"),
            }
        })
        .collect();
    vis::Detection2DArray { header: header(k, "camera_optical"), detections }
}

/// A peer process, its stdout lines arriving on a channel.
pub struct Peer {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

impl Peer {
    pub fn spawn(mut cmd: Command, what: &str) -> Peer {
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {what}: {e} (.ci/run installs the peers)"));
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer { child, lines: rx, log: Vec::new() }
    }

    /// Waits for a line starting with `prefix`; panics with the log on timeout.
    pub fn expect_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.log.push(l.clone());
                    if l.starts_with(prefix) {
                        return l;
                    }
                    if l.starts_with("MISMATCH") || l.starts_with("TIMEOUT") {
                        panic!("peer reported: {l}\nlog: {:#?}", self.log);
                    }
                }
                Err(_) => panic!("no '{prefix}' line from the peer within {timeout:?}; log: {:#?}", self.log),
            }
        }
    }

    pub fn wait_success(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Until the reader thread has seen the end of its output.
                while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    self.log.push(l);
                }
                assert!(status.success(), "peer failed ({status}); log: {:#?}", self.log);
                return;
            }
            if Instant::now() > deadline {
                panic!("peer still running after {timeout:?}; log: {:#?}", self.log);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Builds the Fast DDS peer once per test run (g++ against libfastrtps-dev).
pub fn fastdds_peer() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fastdds_peer");
            let src = peers_dir().join("fastdds_peer.cpp");
            let status = Command::new("g++")
                .args(["-std=c++17", "-O2", "-o"])
                .arg(&out)
                .arg(&src)
                .args(["-lfastrtps", "-lfastcdr"])
                .status()
                .expect("g++ (install build-essential; .ci/run installs libfastrtps-dev)");
            assert!(status.success(), "building {} failed: is libfastrtps-dev installed? (.ci/run)", src.display());
            out
        })
        .clone()
}

/// A decoded message as JSON, in the form the Python peers print.
pub fn value_to_json(v: &s2r_idl::dynamic::Value) -> serde_json::Value {
    use s2r_idl::dynamic::Value as V;
    use serde_json::Value as J;
    let float = |x: f64| serde_json::Number::from_f64(x).map(J::Number).unwrap_or_else(|| J::String(x.to_string()));
    match v {
        V::Bool(b) => J::Bool(*b),
        V::I8(x) => (*x).into(),
        V::U8(x) => (*x).into(),
        V::I16(x) => (*x).into(),
        V::U16(x) => (*x).into(),
        V::I32(x) => (*x).into(),
        V::U32(x) => (*x).into(),
        V::I64(x) => (*x).into(),
        V::U64(x) => (*x).into(),
        V::F32(x) => float(*x as f64),
        V::F64(x) => float(*x),
        V::String(s) | V::WString(s) => J::String(s.clone()),
        V::Bytes(b) => J::Array(b.iter().map(|x| (*x).into()).collect()),
        V::Array(items) | V::Seq(items) => J::Array(items.iter().map(value_to_json).collect()),
        V::Struct(fields) => J::Object(fields.iter().map(|(k, v)| (k.clone(), value_to_json(v))).collect()),
    }
}

/// Runs `tests/peers/bag_peer.py` and parses its JSON lines.
pub fn bag_peer(args: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(python())
        .arg(peers_dir().join("bag_peer.py"))
        .args(args)
        .output()
        .expect("python3 with rosbags and mcap-ros2-support (tests/run installs them)");
    assert!(out.status.success(), "bag_peer.py {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Types whose definition uses msg `char`. rosidl maps `char` to uint8 when it
/// hashes (so do we, checked against ROS 2's generated sources in the msgs
/// crate); rosbags keeps a separate char type id, so its hash differs there and
/// its AnyReader refuses bags with the real hash.
pub fn uses_char(type_name: &str) -> bool {
    use s2r_idl::parse::{BaseType, Primitive};
    let reg = sim2real_msgs::registry();
    let t = s2r_idl::TypeName::parse(type_name).unwrap();
    std::iter::once(t.clone())
        .chain(reg.dependencies(&t).unwrap())
        .any(|d| reg.get(&d).unwrap().fields.iter().any(|f| f.ty.base == BaseType::Primitive(Primitive::Char)))
}

/// `want` (a message as our JSON) as rosbags shows it: rosidl's `byte` is an
/// unsigned octet (uint8_t in C++, bytes in Python), rosbags decodes it as
/// int8, so byte values from 128 up appear 256 lower there.
pub fn bytes_as_rosbags_signs(type_name: &str, want: &serde_json::Value) -> serde_json::Value {
    use s2r_idl::parse::{Array, BaseType, Primitive};
    use serde_json::Value as J;
    let reg = sim2real_msgs::registry();
    let spec = reg.get(&s2r_idl::TypeName::parse(type_name).unwrap()).unwrap();
    let mut out = want.clone();
    for f in &spec.fields {
        let Some(v) = out.get_mut(&f.name) else { continue };
        match &f.ty.base {
            BaseType::Primitive(Primitive::Byte) => {
                let signed = |n: &J| match n.as_u64() {
                    Some(x) if x >= 128 => J::from(x as i64 - 256),
                    _ => n.clone(),
                };
                let new = match &*v {
                    J::Array(items) => J::Array(items.iter().map(signed).collect()),
                    n => signed(n),
                };
                *v = new;
            }
            BaseType::Nested(t) => {
                let t = t.full();
                let new = match (&f.ty.array, &*v) {
                    (Array::Scalar, _) => bytes_as_rosbags_signs(&t, v),
                    (_, J::Array(items)) => J::Array(items.iter().map(|i| bytes_as_rosbags_signs(&t, i)).collect()),
                    _ => v.clone(),
                };
                *v = new;
            }
            _ => {}
        }
    }
    out
}

/// Looks at an HTML page in headless Chromium: a screenshot of `size`
/// ("1200,2400") at `shot`; panics when there is no Chromium or no picture.
pub fn screenshot(page: &Path, shot: &Path, size: &str) {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()));
    let chromium = chromium.expect("headless Chromium is needed to look at the report (tests/run installs Debian's chromium)");
    let _ = std::fs::remove_file(shot);
    let o = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
        .arg(format!("--window-size={size}"))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(shot.is_file(), "no screenshot: {}", String::from_utf8_lossy(&o.stderr));
}

/// A node process whose log (stderr) is collected as it runs; killed when dropped.
pub struct Logged {
    /// The process.
    pub child: Child,
    log: Arc<Mutex<String>>,
}

impl Logged {
    /// Starts `cmd` (stdout discarded), collecting its stderr.
    pub fn spawn(mut cmd: Command) -> Logged {
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let err = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Logged { child, log }
    }

    /// The log so far.
    pub fn text(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `what`.
    pub async fn wait_for(&self, what: &str, timeout: Duration) {
        let t = Instant::now();
        while !self.text().contains(what) {
            assert!(t.elapsed() < timeout, "no '{what}' in the node's log within {timeout:?}:\n{}", self.text());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
