//! RIHS01 type hashes and schemas against rosbags, an implementation nobody here
//! wrote: rosbags parses our .msg files itself and hashes them, and for the
//! types ROS 2 Jazzy ships, its bundled Jazzy store gives the official hash.

mod common;

use common::{peers_dir, python, uses_char};

use std::collections::BTreeMap;
use std::process::Command;

use s2r_idl::{Message, MessageVisitor};

struct Collect(BTreeMap<String, (String, String)>);

impl MessageVisitor for Collect {
    fn visit<M: Message>(&mut self) {
        self.0.insert(M::TYPE_NAME.to_string(), (M::TYPE_HASH.to_string(), M::SCHEMA.to_string()));
    }
}

#[test]
fn every_type_hash_matches_rosbags() {
    let mut ours = Collect(BTreeMap::new());
    sim2real_msgs::visit_all(&mut ours);
    let msgs_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("msgs");
    let out = Command::new(python())
        .arg(peers_dir().join("rosbags_hashes.py"))
        .arg(&msgs_dir)
        .output()
        .expect("python3 with rosbags (.ci/run installs it)");
    assert!(out.status.success(), "rosbags_hashes.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let theirs: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&out.stdout).unwrap();
    let mut compared = 0;
    let mut official = 0;
    for (name, (hash, _)) in &ours.0 {
        let entry = &theirs[name.as_str()];
        assert!(!entry.is_null(), "rosbags did not see {name}");
        if !uses_char(name) {
            assert_eq!(entry["rosbags"].as_str(), Some(hash.as_str()), "{name}: our hash differs from rosbags'");
            compared += 1;
        }
        if let Some(jazzy) = entry["jazzy"].as_str() {
            if !uses_char(name) {
                assert_eq!(jazzy, hash, "{name}: our hash differs from ROS 2 Jazzy's");
                official += 1;
            }
        }
    }
    assert!(compared >= 40 && official >= 30, "compared {compared}, official {official}");
}

#[test]
fn schemas_parse_in_rosbags() {
    // rosbags reads a concatenated ros2msg schema the way bag readers do.
    let mut ours = Collect(BTreeMap::new());
    sim2real_msgs::visit_all(&mut ours);
    let script = r#"
import json, sys
from rosbags.typesys import get_types_from_msg, Stores, get_typestore
data = json.load(sys.stdin)
for name, schema in data.items():
    parts = schema.split("\n" + "=" * 80 + "\n")
    types = get_types_from_msg(parts[0], name)
    for part in parts[1:]:
        head, _, body = part.partition("\n")
        assert head.startswith("MSG: "), head
        pkg, typ = head[5:].strip().split("/")
        types.update(get_types_from_msg(body, f"{pkg}/msg/{typ}"))
    store = get_typestore(Stores.EMPTY)
    store.register(types)
    print(name, store.hash_rihs01(name))
"#;
    let input: BTreeMap<&str, &str> = ours.0.iter().map(|(k, (_, s))| (k.as_str(), s.as_str())).collect();
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(serde_json::to_string(&input).unwrap().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "rosbags could not read our schemas");
    for line in text.lines() {
        let (name, hash) = line.split_once(' ').unwrap();
        if !uses_char(name) {
            assert_eq!(hash, ours.0[name].0, "{name}: schema text gives another hash in rosbags");
        }
    }
    assert_eq!(text.lines().count(), ours.0.len());
}
