//! `s2r bag` as a user runs it: recording from a live graph, crashes, playback,
//! damaged files and bad input. Bags are read back by rosbags and the Python
//! mcap reader where it matters that others can read them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use s2r_bag::BagReader;
use s2r_runtime::{Context, ContextOptions, DiscoveryRange, Node, Qos, RosArgs};
use sim2real_msgs::sensor_msgs::msg::Image;
use sim2real_msgs::std_msgs::msg::String as StringMsg;

fn domain() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    50 + (std::process::id() % 4) as u16 * 8 + NEXT.fetch_add(1, Ordering::Relaxed) % 8
}

fn s2r(domain: u16) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_s2r"));
    c.env("ROS_DOMAIN_ID", domain.to_string()).env("ROS_LOCALHOST_ONLY", "1").env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST");
    c
}

fn output(mut c: Command) -> Output {
    c.stdout(Stdio::piped()).stderr(Stdio::piped()).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn loopback(domain: u16) -> Context {
    Context::new(ContextOptions { domain_id: domain, range: DiscoveryRange::Localhost, ..Default::default() }).unwrap()
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Message counts as rosbags (the folder) and the Python mcap reader (each
/// file) see them.
fn python_counts(dir: &Path) -> (usize, usize) {
    let script = r#"
import sys, pathlib
from rosbags.rosbag2 import Reader
from mcap.reader import make_reader
d = pathlib.Path(sys.argv[1])
with Reader(d) as r:
    a = sum(1 for _ in r.messages())
b = 0
for f in sorted(d.glob("*.mcap")):
    with open(f, "rb") as s:
        b += sum(1 for _ in make_reader(s).iter_messages(log_time_order=False))
print(a, b)
"#;
    let out = Command::new(python()).args(["-c", script]).arg(dir).output().expect("python3 with rosbags and mcap");
    assert!(out.status.success(), "Python readers failed on {}: {}", dir.display(), text(&out.stderr));
    let t = text(&out.stdout);
    let mut it = t.split_whitespace().map(|x| x.parse().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

struct Recorder(Child);

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_recorder(d: u16, dir: &Path, extra: &[&str]) -> Recorder {
    let mut c = s2r(d);
    c.args(["bag", "record", "-o", dir.to_str().unwrap()]).args(extra);
    Recorder(c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap())
}

async fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_recording_keeps_everything_flushed() {
    let d = domain();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("crash");
    let ctx = loopback(d);
    let node = Node::new(&ctx, "talker", &RosArgs::default()).unwrap();
    let publ = node.create_publisher::<StringMsg>("/crash", Qos::reliable().depth(100)).unwrap();
    let mut rec = start_recorder(d, &dir, &["/crash", "--flush-interval", "0.5", "--compression-format", "zstd"]);
    until("the recorder's subscription", || publ.has_remote_subscribers()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    let mut sent: Vec<Instant> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while start.elapsed() < Duration::from_secs(3) {
        tick.tick().await;
        publ.publish(StringMsg { data: sent.len().to_string() }).unwrap();
        sent.push(Instant::now());
    }
    let killed_at = Instant::now();
    rec.0.kill().unwrap(); // SIGKILL
    rec.0.wait().unwrap();
    let safe = sent.iter().filter(|t| **t + Duration::from_secs(1) < killed_at).count();
    let (rosbags, mcap) = python_counts(&dir);
    let ours = BagReader::open(&dir).unwrap().messages().count();
    for (who, n) in [("rosbags", rosbags), ("mcap", mcap), ("s2r", ours)] {
        assert!(n >= safe && n <= sent.len(), "{who} read {n}; {safe} were sent over a second before the kill, {} in all", sent.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_finishes_the_bag_and_play_brings_it_back() {
    let d = domain();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("session");
    let ctx = loopback(d);
    let node = Node::new(&ctx, "camera", &RosArgs::default()).unwrap();
    let images = node.create_publisher::<Image>("/cam/image_raw", Qos::reliable().depth(50)).unwrap();
    let chatter = node.create_publisher::<StringMsg>("/chatter", Qos::transient_local()).unwrap();
    let rec = start_recorder(d, &dir, &["-a", "--compression-format", "lz4"]);
    until("the recorder's subscriptions", || images.has_remote_subscribers() && chatter.has_remote_subscribers()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut sent = Vec::new();
    for k in 0..40u32 {
        let img = Image {
            width: 160,
            height: 120,
            encoding: "rgb8".into(),
            step: 480,
            data: vec![k as u8; 160 * 120 * 3].into(),
            header: sim2real_msgs::std_msgs::msg::Header { frame_id: k.to_string(), ..Default::default() },
            ..Default::default()
        };
        images.publish(img.clone()).unwrap();
        sent.push(img);
        chatter.publish(StringMsg { data: format!("m{k}") }).unwrap();
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    Command::new("kill").args(["-INT", &rec.0.id().to_string()]).status().unwrap();
    let mut rec = rec;
    let status = rec.0.wait().unwrap();
    assert!(status.success());

    let r = BagReader::open(&dir).unwrap();
    assert!(r.files.iter().all(|f| f.summary.complete), "the summary was not written");
    let meta = r.metadata.clone().unwrap();
    let counts: Vec<(String, u64)> = meta.topics.iter().map(|(t, n)| (t.name.clone(), *n)).collect();
    assert!(counts.contains(&("/cam/image_raw".into(), 40)), "{counts:?}");
    assert!(counts.contains(&("/chatter".into(), 40)), "{counts:?}");
    assert_eq!(python_counts(&dir), (r.message_count() as usize, r.message_count() as usize));
    let chatter_c = r.connections.iter().find(|c| c.topic == "/chatter").unwrap();
    assert!(chatter_c.qos[0].is_transient_local(), "publisher QoS not recorded: {:?}", chatter_c.qos);

    // Play it back under another name; every image arrives intact.
    let sub = node.create_subscription::<Image>("/replay/image", Qos::reliable().depth(100)).unwrap();
    let mut play = s2r(d);
    // Looped, so that a slow discovery (a missed first announcement waits for
    // the next one) costs a lap instead of failing: one whole lap from the
    // first image on must arrive intact and in order.
    play.args([
        "bag",
        "play",
        dir.to_str().unwrap(),
        "--remap",
        "/cam/image_raw:=/replay/image",
        "--delay",
        "1.5",
        "--rate",
        "4",
        "--loop",
    ]);
    let mut child = play.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let mut got = Vec::new();
    while got.len() < 40 {
        match tokio::time::timeout(Duration::from_secs(30), sub.recv()).await {
            Ok(m) if !got.is_empty() || *m == sent[0] => got.push((*m).clone()),
            Ok(_) => {}
            Err(_) => panic!("played back {} of 40 images", got.len()),
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(got, sent);
}

fn sample_bag(tmp: &Path) -> PathBuf {
    use s2r_bag::{BagWriter, TopicSpec, WriterOptions};
    let dir = tmp.join("sample");
    let mut w = BagWriter::create(&dir, WriterOptions { chunk_size: 16 * 1024, ..Default::default() }).unwrap();
    let t = w.add_topic(TopicSpec::of::<StringMsg>("/numbers", vec![])).unwrap();
    for i in 0..300u64 {
        let data = StringMsg { data: format!("{i:0>200}") };
        w.write_message(t, 1_700_000_000_000_000_000 + i * 10_000_000, &data).unwrap();
    }
    w.finish().unwrap();
    dir
}

#[test]
fn info_reports_damage_and_play_plays_what_is_readable() {
    let d = domain();
    let tmp = tempfile::tempdir().unwrap();
    let dir = sample_bag(tmp.path());
    let mcap = dir.join("sample_0.mcap");

    let mut info = s2r(d);
    info.args(["bag", "info", dir.to_str().unwrap()]);
    let out = text(&output(info).stdout);
    assert!(out.contains("Messages:          300\n"), "{out}");
    assert!(out.contains("Topic: /numbers | Type: std_msgs/msg/String | Count: 300 | Serialization Format: cdr"), "{out}");
    assert!(!out.contains("Damage"), "{out}");

    // Corrupt one chunk and cut the file short.
    let mut bytes = std::fs::read(&mcap).unwrap();
    let mut pos = 8;
    let mut chunks = Vec::new();
    while pos + 9 <= bytes.len() {
        let len = u64::from_le_bytes(bytes[pos + 1..pos + 9].try_into().unwrap()) as usize;
        if bytes[pos] == 0x06 {
            chunks.push(pos);
        }
        if bytes[pos] == 0x0F {
            break;
        }
        pos += 9 + len;
    }
    assert!(chunks.len() > 4);
    bytes[chunks[1] + 100] ^= 0x5a;
    bytes.truncate(chunks[chunks.len() - 1] + 50);
    let damaged = tmp.path().join("damaged.mcap");
    std::fs::write(&damaged, &bytes).unwrap();
    let readable = BagReader::open(&damaged).unwrap().messages().count();
    assert!(readable > 100 && readable < 300, "{readable}");

    let mut info = s2r(d);
    info.args(["bag", "info", damaged.to_str().unwrap()]);
    let out = output(info);
    let o = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(o.contains(&format!("Messages:          {readable}\n")), "{o}");
    assert!(o.contains("Damage:") && o.contains("CRC mismatch") && o.contains("truncated"), "{o}");

    let mut play = s2r(d);
    play.args(["bag", "play", damaged.to_str().unwrap(), "--rate", "50", "--report"]);
    let out = output(play);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("Played {readable} messages")), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("CRC mismatch"), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn types_not_compiled_in_play_from_the_bag_schema() {
    let d = domain();
    let tmp = tempfile::tempdir().unwrap();
    let bare = tmp.path().join("custom.mcap");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/bag_peer.py");
    let out = Command::new(python()).arg(&script).args(["write", "mcap-bare"]).arg(&bare).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ctx = loopback(d);
    let node = Node::new(&ctx, "listener", &RosArgs::default()).unwrap();
    let sub = node.create_raw_subscription("/thing", "custom_pkg/msg/Thing", Qos::reliable()).unwrap();
    let mut play = s2r(d);
    // Looped: a slow discovery costs a lap instead of the first messages.
    play.args(["bag", "play", bare.to_str().unwrap(), "--delay", "1.5", "--topics", "/thing", "--loop"]);
    let mut child = play.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let reader = BagReader::open(&bare).unwrap();
    let want: Vec<_> = reader.messages().filter(|m| reader.connections[m.connection].topic == "/thing").collect();
    assert_eq!(want.len(), 3);
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), sub.recv()).await.expect("custom type not played");
        if m.msg.0 == want[0].data {
            break;
        }
    }
    for (i, w) in want.iter().enumerate().skip(1) {
        let m = tokio::time::timeout(Duration::from_secs(15), sub.recv()).await.expect("custom type not played");
        assert_eq!(m.msg.0, w.data, "the raw CDR changed on the way");
        if i == 1 {
            // Published under the recorded type name.
            let eps = ctx.endpoints();
            let player = eps.iter().find(|e| e.topic() == Some("/thing") && e.kind == s2r_runtime::graph::EndpointKind::Publisher);
            assert_eq!(player.map(|e| e.type_name.as_str()), Some("custom_pkg/msg/Thing"));
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn bad_input_is_refused_naming_it() {
    let d = domain();
    let tmp = tempfile::tempdir().unwrap();
    let foreign = tmp.path().join("notes.txt");
    std::fs::write(&foreign, "hello").unwrap();
    let broken = tmp.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("metadata.yaml"), "rosbag2_bagfile_information:\n  version: [\n").unwrap();
    let existing = sample_bag(tmp.path());
    let cases: Vec<(Vec<String>, String)> = vec![
        (vec!["bag".into(), "info".into(), "/nonexistent/bag".into()], "/nonexistent/bag is not a bag: no such file or folder".into()),
        (vec!["bag".into(), "info".into(), foreign.display().to_string()], format!("{} is not an MCAP file", foreign.display())),
        (vec!["bag".into(), "play".into(), foreign.display().to_string()], "is not an MCAP file".into()),
        (
            vec!["bag".into(), "info".into(), broken.display().to_string()],
            format!("{}: not valid YAML", broken.join("metadata.yaml").display()),
        ),
        (
            vec![
                "bag".into(),
                "record".into(),
                "-a".into(),
                "--compression-format".into(),
                "brotli".into(),
                "-o".into(),
                tmp.path().join("x").display().to_string(),
            ],
            "unknown compression 'brotli'".into(),
        ),
        (vec!["bag".into(), "record".into(), "-a".into(), "-o".into(), existing.display().to_string()], "already exists".into()),
        (vec!["bag".into(), "record".into()], "name the topics to record".into()),
        (
            vec!["bag".into(), "record".into(), "-a".into(), "--compression-threads".into(), "0".into()],
            "--compression-threads must be at least 1".into(),
        ),
    ];
    for (args, needle) in cases {
        let mut c = s2r(d);
        c.args(&args);
        let out = output(c);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(text(&out.stderr).contains(&needle), "{args:?}: expected '{needle}' in {}", text(&out.stderr));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn play_honours_offset_clock_and_loop() {
    let d = domain();
    let tmp = tempfile::tempdir().unwrap();
    let dir = sample_bag(tmp.path()); // 300 messages, 10 ms apart
    let ctx = loopback(d);
    let node = Node::new(&ctx, "watcher", &RosArgs::default()).unwrap();
    let clock = node.create_subscription::<sim2real_msgs::rosgraph_msgs::msg::Clock>("/clock", Qos::sensor_data()).unwrap();

    let mut play = s2r(d);
    play.args(["bag", "play", dir.to_str().unwrap(), "--start-offset", "2", "--rate", "2", "--clock", "50", "--report"]);
    let child = play.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let c = tokio::time::timeout(Duration::from_secs(15), clock.recv()).await.expect("no /clock from play");
    let t = c.clock.sec as u64 * 1_000_000_000 + c.clock.nanosec as u64;
    assert!((1_700_000_002_000_000_000..=1_700_000_003_000_000_000).contains(&t), "clock {t} outside the played part");
    let out = child.wait_with_output().unwrap();
    assert!(text(&out.stdout).contains("Played 100 messages"), "{}", text(&out.stdout));

    let mut play = s2r(d);
    play.args(["bag", "play", dir.to_str().unwrap(), "--loop", "--rate", "20", "--report"]);
    let child = play.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2)); // 2 s at rate 20 is more than ten passes of 3 s
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let played: u64 = text(&out.stdout).split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(played > 600, "looping played only {played}");
}
