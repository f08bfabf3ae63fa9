//! Bags against readers and writers nobody here wrote: rosbags (AnyReader, from
//! the definitions embedded in the bag only) and mcap + mcap-ros2-support read
//! what we write; we read what they write, Humble-style and Jazzy-style rosbag2
//! folders and a bare .mcap.

mod common;

use std::collections::BTreeMap;

use common::{bag_peer, bytes_as_rosbags_signs, uses_char, value_to_json};
use s2r_bag::{BagReader, BagWriter, Compression, QosProfile, TopicSpec, WriterOptions};
use s2r_idl::dynamic;
use s2r_idl::TypeName;

/// One topic per message type of msgs/ (but those with `char`, see
/// [`uses_char`]; services' requests and responses travel on service
/// topics, not in bags), three distinct messages each.
#[test]
fn every_message_type_round_trips_through_rosbags_and_mcap() {
    let reg = sim2real_msgs::registry();
    for compression in [Compression::Zstd, Compression::Lz4, Compression::None] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("all_types");
        let mut w = BagWriter::create(&dir, WriterOptions { compression, ..Default::default() }).unwrap();
        let mut expected: BTreeMap<(String, u64), serde_json::Value> = BTreeMap::new();
        for (i, ty) in reg.types().filter(|t| t.kind == s2r_idl::Kind::Msg && !uses_char(&t.full())).enumerate() {
            let topic = format!("/all/{}/{}", ty.package, ty.name.to_lowercase());
            let spec = TopicSpec {
                name: topic.clone(),
                type_name: ty.full(),
                schema: reg.schema_text(ty).unwrap(),
                type_hash: reg.type_hash(ty).unwrap(),
                qos: vec![QosProfile::new(true, false, 10)],
            };
            let id = w.add_topic(spec).unwrap();
            for k in 0..3u64 {
                let v = dynamic::sample_value(reg, ty, k + 10 * i as u64).unwrap();
                let t = 1_700_000_000_000_000_000 + k * 1_000_000 + i as u64;
                w.write(id, t, t, &dynamic::encode(&v).unwrap()).unwrap();
                expected.insert((topic.clone(), t), value_to_json(&v));
            }
        }
        w.finish().unwrap();
        let lines = bag_peer(&["read", dir.to_str().unwrap()]);
        for reader in ["rosbags", "mcap"] {
            let got: Vec<&serde_json::Value> = lines.iter().filter(|l| l["reader"] == reader).collect();
            assert_eq!(got.len(), expected.len(), "{reader} read {} of {} messages", got.len(), expected.len());
            for l in got {
                let key = (l["topic"].as_str().unwrap().to_string(), l["log_time"].as_u64().unwrap());
                let want = match reader {
                    "rosbags" => bytes_as_rosbags_signs(l["type"].as_str().unwrap(), &expected[&key]),
                    _ => expected[&key].clone(),
                };
                assert_eq!(l["msg"], want, "{reader}, {compression:?}: {} at {} differs", key.0, key.1);
            }
        }
    }
}

/// The layout the mcap package checks record by record (CRCs, statistics,
/// chunk and message indexes, a seeking read), for each compression and
/// thread count: large messages handed over as shared buffers and copied,
/// small ones between them, flushes, and files split by size.
#[test]
fn written_files_pass_the_mcap_package_checks() {
    use sim2real_msgs::sensor_msgs::msg::Image;
    use sim2real_msgs::std_msgs::msg::String as StringMsg;
    for compression in [Compression::None, Compression::Lz4, Compression::Zstd] {
        for threads in [1, 3] {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("bag");
            let opts = WriterOptions { compression, threads, chunk_size: 512 * 1024, max_file_size: Some(1_000_000), ..Default::default() };
            let mut w = BagWriter::create(&dir, opts).unwrap();
            let cam = w.add_topic(TopicSpec::of::<Image>("/cam/image_raw", vec![])).unwrap();
            let chatter = w.add_topic(TopicSpec::of::<StringMsg>("/chatter", vec![])).unwrap();
            let mut written = Vec::new();
            for i in 0..40u64 {
                let t = 1_700_000_000_000_000_000 + i * 50_000_000;
                // Noise, which no compression shrinks: files split by size in every mode.
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ i;
                let pixels: Vec<u8> = (0..320 * 240)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (x >> 56) as u8
                    })
                    .collect();
                let img = Image { width: 320, height: 240, encoding: "mono8".into(), step: 320, data: pixels.into(), ..Default::default() };
                let data = dynamic::serialize(&img).unwrap();
                if i % 2 == 0 {
                    w.write_bytes(cam, t, t, data.clone().into()).unwrap();
                } else {
                    w.write(cam, t, t, &data).unwrap();
                }
                written.push(data);
                let s = dynamic::serialize(&StringMsg { data: format!("frame {i}") }).unwrap();
                w.write(chatter, t + 1, t + 1, &s).unwrap();
                written.push(s);
                if i % 15 == 14 {
                    w.flush().unwrap();
                }
            }
            let meta = w.finish().unwrap();
            assert!(meta.relative_file_paths.len() >= 3, "{compression:?}: {:?}", meta.relative_file_paths);
            let lines = bag_peer(&["check", dir.to_str().unwrap()]);
            assert_eq!(lines.len(), meta.relative_file_paths.len());
            assert_eq!(lines.iter().map(|l| l["messages"].as_u64().unwrap()).sum::<u64>(), 80);
            assert!(lines.iter().map(|l| l["chunks"].as_u64().unwrap()).sum::<u64>() > 2 * lines.len() as u64, "{lines:?}");
            let r = BagReader::open(&dir).unwrap();
            assert!(r.damage().is_empty(), "{:?}", r.damage());
            let got: Vec<Vec<u8>> = r.messages().map(|m| m.data.to_vec()).collect();
            assert!(got == written, "{compression:?}, {threads} threads: messages differ when read back");
        }
    }
}

fn check_read(kind: &str, path: &std::path::Path, expected: &[serde_json::Value]) -> BagReader {
    let r = BagReader::open(path).unwrap_or_else(|e| panic!("{kind}: {e}"));
    assert!(r.damage().is_empty() && r.problems.is_empty(), "{kind}: {:?} {:?}", r.damage(), r.problems);
    let msgs: Vec<_> = r.messages().collect();
    assert_eq!(msgs.len(), expected.len(), "{kind}");
    for (m, want) in msgs.iter().zip(expected) {
        let c = &r.connections[m.connection];
        assert_eq!(c.topic, want["topic"].as_str().unwrap(), "{kind}");
        assert_eq!(c.type_name, want["type"].as_str().unwrap(), "{kind}");
        assert_eq!(m.log_time, want["log_time"].as_u64().unwrap(), "{kind}");
        // Decoded from the bag's own schema, custom types included.
        let reg = r.registry(m.connection).unwrap();
        let v = dynamic::decode(&reg, &TypeName::parse(&c.type_name).unwrap(), &m.data).unwrap();
        assert_eq!(value_to_json(&v), want["msg"], "{kind}: {} at {}", c.topic, m.log_time);
    }
    r
}

#[test]
fn bags_written_by_others_are_read() {
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["rosbags-jazzy", "rosbags-humble"] {
        let dir = tmp.path().join(kind);
        let expected = bag_peer(&["write", kind, dir.to_str().unwrap()]);
        let r = check_read(kind, &dir, &expected);
        let meta = r.metadata.as_ref().unwrap();
        assert_eq!(meta.version, if kind == "rosbags-jazzy" { 9 } else { 5 });
        let chatter = r.connections.iter().find(|c| c.topic == "/chatter").unwrap();
        assert!(chatter.qos[0].is_reliable() && chatter.qos[0].is_transient_local(), "{kind}: {:?}", chatter.qos);
        let cam = r.connections.iter().find(|c| c.topic == "/cam").unwrap();
        assert!(!cam.qos[0].is_reliable() && !cam.qos[0].is_transient_local(), "{kind}: {:?}", cam.qos);
        if kind == "rosbags-jazzy" {
            assert_eq!(chatter.type_hash, <sim2real_msgs::std_msgs::msg::String as s2r_idl::Message>::TYPE_HASH);
        }
    }
    let bare = tmp.path().join("bare.mcap");
    let expected = bag_peer(&["write", "mcap-bare", bare.to_str().unwrap()]);
    let r = check_read("mcap-bare", &bare, &expected);
    assert!(r.metadata.is_none());
    assert_eq!(r.connections.iter().map(|c| c.type_name.as_str()).collect::<Vec<_>>(), ["std_msgs/msg/String", "custom_pkg/msg/Thing"]);
}
