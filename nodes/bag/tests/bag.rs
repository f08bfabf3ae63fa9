//! Writing and reading bags, including ones cut short or damaged.

use std::fs;
use std::path::Path;

use s2r_bag::{BagReader, BagWriter, Compression, QosProfile, TopicSpec, WriterOptions};
use sim2real_msgs::sensor_msgs::msg::Image;
use sim2real_msgs::std_msgs::msg::String as StringMsg;

fn image(k: u8) -> Image {
    Image { width: 64, height: 48, encoding: "rgb8".into(), step: 192, data: vec![k; 64 * 48 * 3].into(), ..Default::default() }
}

fn write_sample(dir: &Path, compression: Compression, n: u64) -> BagWriter {
    let opts = WriterOptions { compression, chunk_size: 64 * 1024, ..Default::default() };
    let mut w = BagWriter::create(dir, opts).unwrap();
    let qos = vec![QosProfile::new(true, false, 10)];
    let chatter = w.add_topic(TopicSpec::of::<StringMsg>("/chatter", qos.clone())).unwrap();
    let cam = w.add_topic(TopicSpec::of::<Image>("/cam/image_raw", qos)).unwrap();
    for i in 0..n {
        let t = 1_700_000_000_000_000_000 + i * 10_000_000;
        w.write_message(chatter, t, &StringMsg { data: format!("hello {i}") }).unwrap();
        w.write_message(cam, t + 1, &image(i as u8)).unwrap();
        if i % 25 == 24 {
            w.flush().unwrap();
        }
    }
    w
}

#[test]
fn round_trip_in_every_compression() {
    for c in [Compression::None, Compression::Lz4, Compression::Zstd] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("bag");
        let meta = write_sample(&dir, c, 100).finish().unwrap();
        assert_eq!(meta.message_count, 200);
        let r = BagReader::open(&dir).unwrap();
        assert!(r.damage().is_empty(), "{:?}", r.damage());
        assert!(r.files[0].summary.complete);
        assert_eq!(r.connections.len(), 2);
        assert_eq!(r.connections[0].type_hash, <StringMsg as s2r_idl::Message>::TYPE_HASH);
        assert_eq!(r.connections[0].qos, vec![QosProfile::new(true, false, 10)]);
        let msgs: Vec<_> = r.messages().collect();
        assert_eq!(msgs.len(), 200);
        let img: Image = decode(&msgs[101].data);
        assert_eq!(img, image(50));
        let meta_again = r.metadata.unwrap();
        assert_eq!(meta_again.topics[1].1, 100);
        if c != Compression::None {
            assert!(r.files[0].summary.compressions.contains(c.name()));
        }
    }
}

/// Decodes with the generated type, after checking the dynamic codec gives
/// back the same bytes.
fn decode<M: s2r_idl::Message>(data: &[u8]) -> M {
    let ty = s2r_idl::TypeName::parse(M::TYPE_NAME).unwrap();
    let v = s2r_idl::dynamic::decode(sim2real_msgs::registry(), &ty, data).unwrap();
    assert_eq!(s2r_idl::dynamic::encode(&v).unwrap(), data);
    cdr_encoding::from_bytes::<M, byteorder::LittleEndian>(&data[4..]).unwrap().0
}

#[test]
fn a_killed_writer_leaves_everything_up_to_the_last_flush() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bag");
    // Five pairs after the last flush: fewer than a chunk holds, so they are
    // still in the open chunk (a chunk that fills is written at once).
    let w = write_sample(&dir, Compression::Zstd, 80);
    // As a SIGKILL would: no finish, no drop.
    std::mem::forget(w);
    let r = BagReader::open(&dir).unwrap();
    assert!(!r.files[0].summary.complete);
    assert!(r.damage().is_empty(), "{:?}", r.damage());
    // Flushed after 25, 50 and 75 pairs.
    assert_eq!(r.messages().count(), 150);
}

#[test]
fn truncation_and_corruption_are_reported_and_the_rest_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bag");
    write_sample(&dir, Compression::None, 100).finish().unwrap();
    let file = dir.join("bag_0.mcap");
    let full = fs::read(&file).unwrap();

    // Cut in the middle: what is before the cut is read.
    let cut = dir.join("cut.mcap");
    fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let r = BagReader::open(&cut).unwrap();
    let n = r.messages().count();
    assert!(n > 50 && n < 200, "{n}");
    let d = r.damage();
    assert_eq!(d.len(), 1);
    assert!(d[0].problem.to_string().starts_with("truncated"), "{}", d[0]);

    // A flipped byte inside the first chunk's data: that chunk is lost, not the rest.
    let mut bad = full.clone();
    let mut first_chunk = 8;
    while bad[first_chunk] != 0x06 {
        let len = u64::from_le_bytes(bad[first_chunk + 1..first_chunk + 9].try_into().unwrap());
        first_chunk += 9 + len as usize;
    }
    bad[first_chunk + 200] ^= 0xff;
    let corrupt = dir.join("corrupt.mcap");
    fs::write(&corrupt, &bad).unwrap();
    let r = BagReader::open(&corrupt).unwrap();
    let d = r.damage();
    assert!(d.iter().any(|x| x.problem.to_string().contains("CRC mismatch")), "{d:?}");
    let n = r.messages().count();
    assert!(n > 100 && n < 200, "{n}");

    // Not an MCAP file at all.
    let foreign = dir.join("foreign.mcap");
    fs::write(&foreign, b"SQLite format 3\0....").unwrap();
    let e = BagReader::open(&foreign).err().unwrap().to_string();
    assert!(e.contains("foreign.mcap is not an MCAP file"), "{e}");
    let e = BagReader::open(&dir.join("missing")).err().unwrap().to_string();
    assert!(e.contains("missing is not a bag: no such file"), "{e}");
}

#[test]
fn files_split_by_size_and_duration() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bag");
    let opts = WriterOptions { max_file_size: Some(200_000), chunk_size: 32 * 1024, ..Default::default() };
    let mut w = BagWriter::create(&dir, opts).unwrap();
    let cam = w.add_topic(TopicSpec::of::<Image>("/cam", vec![])).unwrap();
    for i in 0..100u64 {
        w.write_message(cam, 1_000 + i, &image(i as u8)).unwrap();
    }
    let meta = w.finish().unwrap();
    assert!(meta.relative_file_paths.len() >= 4, "{:?}", meta.relative_file_paths);
    assert_eq!(meta.files.iter().map(|f| f.message_count).sum::<u64>(), 100);
    let r = BagReader::open(&dir).unwrap();
    assert_eq!(r.messages().count(), 100);
    assert!(r.damage().is_empty());

    let dir2 = tmp.path().join("bag2");
    let opts = WriterOptions { max_file_duration_ns: Some(1_000_000_000), ..Default::default() };
    let mut w = BagWriter::create(&dir2, opts).unwrap();
    let t = w.add_topic(TopicSpec::of::<StringMsg>("/t", vec![])).unwrap();
    for i in 0..50u64 {
        w.write_message(t, i * 100_000_000, &StringMsg { data: i.to_string() }).unwrap();
    }
    let meta = w.finish().unwrap();
    assert_eq!(meta.relative_file_paths, vec!["bag2_0.mcap", "bag2_1.mcap", "bag2_2.mcap", "bag2_3.mcap", "bag2_4.mcap"]);
}

#[test]
fn unknown_compression_and_bad_schemas_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bag");
    let mut w = BagWriter::create(&dir, WriterOptions { compression: Compression::Zstd, ..Default::default() }).unwrap();
    let spec = TopicSpec {
        name: "/odd".into(),
        type_name: "odd_pkg/msg/Odd".into(),
        schema: "int32 x\nfloat99 y\n".into(),
        type_hash: String::new(),
        qos: vec![],
    };
    let odd = w.add_topic(spec).unwrap();
    let good = w.add_topic(TopicSpec::of::<StringMsg>("/good", vec![])).unwrap();
    w.write(odd, 1, 1, &[0, 1, 0, 0, 1, 0, 0, 0]).unwrap();
    w.write_message(good, 2, &StringMsg { data: "x".into() }).unwrap();
    w.finish().unwrap();
    let r = BagReader::open(&dir).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("topic /odd does not parse") && p.contains("float99")), "{:?}", r.problems);
    assert_eq!(r.messages().count(), 2, "a bad schema does not stop the messages");

    // Rename the chunk compression to one nobody knows (same length, so nothing else moves).
    let file = dir.join("bag_0.mcap");
    let mut bytes = fs::read(&file).unwrap();
    let at = bytes.windows(4).position(|w| w == b"zstd").unwrap();
    bytes[at..at + 4].copy_from_slice(b"zzzz");
    fs::write(&file, &bytes).unwrap();
    let r = BagReader::open(&dir).unwrap();
    let d = r.damage();
    assert!(d.iter().any(|x| x.problem.to_string().contains("unknown compression 'zzzz'") && x.file == file), "{d:?}");
}
