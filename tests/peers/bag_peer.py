#!/usr/bin/env python3
"""Independent bag readers and writers for sim2real's bag tests: rosbags and the
mcap / mcap-ros2-support packages, none written here.

Usage:
  bag_peer.py read BAG
      Decodes every message of BAG twice, with rosbags' AnyReader (types taken
      only from the definitions embedded in the bag) and with mcap-ros2-support,
      and prints one JSON line per message and reader:
      {"reader": ..., "topic": ..., "type": ..., "log_time": ..., "msg": {...}}
  bag_peer.py summary BAG
      Like read, but prints per message only what identifies it: topic, type,
      log_time, and for images width, height, encoding and the SHA-256 of the
      pixel bytes, for detection arrays the number of detections (big bags
      stay quick).
  bag_peer.py check BAG
      Checks each .mcap file of BAG record by record with the mcap package:
      chunk and summary CRCs, the statistics against the messages there are,
      every chunk index against its chunk, every message index entry against
      the message it points at, and a seeking read in log-time order; prints
      one JSON line per file ({"file", "messages", "chunks", "compressions"}),
      or fails naming what disagrees.
  bag_peer.py write KIND OUT
      Writes a test bag the way others do and prints the messages it wrote as
      JSON lines ({"topic", "type", "log_time", "msg"}). KIND:
        rosbags-jazzy   rosbags Writer, metadata version 9 (QoS as names, type hashes)
        rosbags-humble  rosbags Writer, then metadata.yaml rewritten as Humble's
                        version 5 (QoS as integers, no type hashes)
        mcap-bare       mcap-ros2-support Writer: one .mcap, no metadata.yaml
"""
import json
import math
import sys
from pathlib import Path


def plain(v):
    """A decoded message as plain JSON data (dicts, lists, numbers, strings)."""
    if hasattr(v, "tolist"):  # numpy arrays and scalars
        return plain(v.tolist())
    if isinstance(v, (bytes, bytearray, memoryview)):
        return list(bytes(v))
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, (bool, int, str)) or v is None:
        return v
    if hasattr(v, "__dataclass_fields__"):
        # Constants (upper case by the .msg rules) are class data, not fields.
        return {k: plain(getattr(v, k)) for k in v.__dataclass_fields__ if k != "__msgtype__" and not k.isupper()}
    slots = getattr(type(v), "__slots__", None)
    if slots is not None:
        # mcap-ros2-support decodes an empty message to an object without
        # fields; rosidl gives it one placeholder byte.
        if not slots:
            return {"structure_needs_at_least_one_member": 0}
        return {k: plain(getattr(v, k)) for k in slots}
    raise TypeError(f"cannot convert {type(v)}")


def messages(bag):
    """Every message of BAG decoded twice: by rosbags' AnyReader (types taken only
    from the definitions in the bag) and by mcap-ros2-support; yields
    (reader, topic, type, log_time, message)."""
    from rosbags.highlevel import AnyReader

    path = Path(bag)
    with AnyReader([path]) as reader:
        for conn, t, raw in reader.messages():
            yield "rosbags", conn.topic, conn.msgtype, t, reader.deserialize(raw, conn.msgtype)

    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    files = sorted(path.glob("*.mcap")) if path.is_dir() else [path]
    for f in files:
        with open(f, "rb") as stream:
            reader = make_reader(stream, decoder_factories=[DecoderFactory()])
            for schema, channel, message, decoded in reader.iter_decoded_messages(log_time_order=False):
                yield "mcap", channel.topic, schema.name, message.log_time, decoded


def read(bag):
    for reader, topic, msgtype, t, msg in messages(bag):
        print(json.dumps({"reader": reader, "topic": topic, "type": msgtype, "log_time": t, "msg": plain(msg)}))


def digest(msg):
    import hashlib

    out = {}
    if all(hasattr(msg, k) for k in ("width", "height", "encoding", "data")):
        out = {"width": int(msg.width), "height": int(msg.height), "encoding": msg.encoding,
               "data_sha256": hashlib.sha256(bytes(msg.data)).hexdigest()}
    elif hasattr(msg, "detections"):
        out = {"detections": len(msg.detections)}
    return out


def summary(bag):
    for reader, topic, msgtype, t, msg in messages(bag):
        print(json.dumps({"reader": reader, "topic": topic, "type": msgtype, "log_time": t, **digest(msg)}))


CUSTOM_DEF = "float64 speed\nstring label\nint32[3] triple\n"


def write(kind, out):
    out = Path(out)
    t0 = 1_700_000_000_000_000_000
    if kind.startswith("rosbags"):
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore, get_types_from_msg

        store = get_typestore(Stores.ROS2_JAZZY)
        store.register(get_types_from_msg(CUSTOM_DEF, "custom_pkg/msg/Thing"))
        String = store.types["std_msgs/msg/String"]
        Image = store.types["sensor_msgs/msg/Image"]
        Header = store.types["std_msgs/msg/Header"]
        Time = store.types["builtin_interfaces/msg/Time"]
        Thing = store.types["custom_pkg/msg/Thing"]
        import numpy as np

        from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

        forever = QosTime(sec=2147483647, nsec=4294967295)

        def qos(reliability, durability):
            return [Qos(QosHistory.KEEP_LAST, 10, reliability, durability, forever, forever,
                        QosLiveliness.AUTOMATIC, forever, False)]

        version = 9 if kind == "rosbags-jazzy" else 8
        with Writer(out, version=version, storage_plugin=StoragePlugin.MCAP) as w:
            c1 = w.add_connection("/chatter", "std_msgs/msg/String", typestore=store,
                                  offered_qos_profiles=qos(QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL))
            c2 = w.add_connection("/cam", "sensor_msgs/msg/Image", typestore=store,
                                  offered_qos_profiles=qos(QosReliability.BEST_EFFORT, QosDurability.VOLATILE))
            c3 = w.add_connection("/thing", "custom_pkg/msg/Thing", typestore=store)
            for k in range(3):
                t = t0 + k * 100_000_000
                for conn, msg in (
                    (c1, String(data=f"hello {k}")),
                    (c2, Image(header=Header(stamp=Time(sec=k, nanosec=7), frame_id="cam"), height=2, width=3,
                               encoding="rgb8", is_bigendian=0, step=9,
                               data=np.arange(18, dtype=np.uint8) + k)),
                    (c3, Thing(speed=1.5 * k, label=f"thing {k}", triple=np.array([k, k + 1, k + 2], dtype=np.int32))),
                ):
                    w.write(conn, t, store.serialize_cdr(msg, conn.msgtype))
                    print(json.dumps({"topic": conn.topic, "type": conn.msgtype, "log_time": t, "msg": plain(msg)}))
        if kind == "rosbags-humble":
            make_humble(out / "metadata.yaml")
    elif kind == "mcap-bare":
        from mcap_ros2.writer import Writer

        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as f:
            w = Writer(f)
            s_string = w.register_msgdef("std_msgs/msg/String", "string data\n")
            s_thing = w.register_msgdef("custom_pkg/msg/Thing", CUSTOM_DEF)
            for k in range(3):
                t = t0 + k * 100_000_000
                for topic, schema, msg in (
                    ("/chatter", s_string, {"data": f"hello {k}"}),
                    ("/thing", s_thing, {"speed": 1.5 * k, "label": f"thing {k}", "triple": [k, k + 1, k + 2]}),
                ):
                    w.write_message(topic, schema, msg, log_time=t, publish_time=t)
                    print(json.dumps({"topic": topic, "type": schema.name, "log_time": t, "msg": msg}))
            w.finish()
    else:
        raise SystemExit(f"unknown kind {kind}")


def check(bag):
    import struct

    from mcap.reader import make_reader
    import zlib

    from mcap.records import (Channel, Chunk, ChunkIndex, DataEnd, Footer, Message, MessageIndex, Metadata, MetadataIndex, Schema,
                              Statistics, SummaryOffset)
    from mcap.stream_reader import StreamReader, breakup_chunk, get_chunk_data_stream

    path = Path(bag)
    files = sorted(path.glob("*.mcap")) if path.is_dir() else [path]
    for file in files:
        data = file.read_bytes()
        records = list(StreamReader(open(file, "rb"), emit_chunks=True, validate_crcs=True).records)
        kinds = [type(r).__name__ for r in records]
        assert isinstance(records[-1], Footer) and records[-1].summary_start > 0, f"{file}: no summary"
        assert any(isinstance(r, DataEnd) for r in records), f"{file}: no DataEnd"
        chunks = [r for r in records if isinstance(r, Chunk)]
        stats = [r for r in records if isinstance(r, Statistics)]
        indexes = [r for r in records if isinstance(r, ChunkIndex)]
        assert len(stats) == 1, f"{file}: {len(stats)} statistics records"
        st = stats[0]
        messages = []
        per_chunk = []
        for c in chunks:
            inner = [m for m in breakup_chunk(c, validate_crc=True) if isinstance(m, Message)]
            messages += inner
            per_chunk.append(inner)
            if inner:
                times = [m.log_time for m in inner]
                assert (c.message_start_time, c.message_end_time) == (min(times), max(times)), f"{file}: chunk time span"
        footer = records[-1]
        crc = zlib.crc32(data[footer.summary_start:len(data) - 8 - 4])
        assert footer.summary_crc == crc, f"{file}: summary CRC {footer.summary_crc} != {crc}"
        offsets = [r for r in records if isinstance(r, SummaryOffset)]
        assert offsets, f"{file}: no summary offsets"
        for so in offsets:
            at, end = so.group_start, so.group_start + so.group_length
            while at < end:
                assert data[at] == so.group_opcode, f"{file}: group {so.group_opcode:#x} has a record {data[at]:#x} at {at}"
                (n,) = struct.unpack_from("<Q", data, at + 1)
                at += 9 + n
            assert at == end, f"{file}: group {so.group_opcode:#x} does not tile its length"
        summary = records[[i for i, r in enumerate(records) if isinstance(r, DataEnd)][0] + 1:]
        schemas = [r for r in summary if isinstance(r, Schema)]
        channels = [r for r in summary if isinstance(r, Channel)]
        metadata = [r for r in records if isinstance(r, Metadata)]
        assert (st.schema_count, st.channel_count, st.metadata_count) == (len(schemas), len(channels), len(metadata)), \
            f"{file}: statistics count {st.schema_count} schemas, {st.channel_count} channels, {st.metadata_count} metadata"
        assert len({s.id for s in schemas}) == len(schemas) and all(s.id > 0 for s in schemas), f"{file}: schema ids"
        for mi in [r for r in records if isinstance(r, MetadataIndex)]:
            assert data[mi.offset] == 0x0C, f"{file}: no metadata record at {mi.offset}"
            (n,) = struct.unpack_from("<Q", data, mi.offset + 1)
            assert mi.length == 9 + n, f"{file}: metadata index length"
        with open(file, "rb") as f:
            names = [m.name for m in make_reader(f).iter_metadata()]
        assert names == ["rosbag2"], f"{file}: metadata {names}"
        assert st.message_count == len(messages), f"{file}: statistics say {st.message_count}, chunks hold {len(messages)}"
        assert st.chunk_count == len(chunks) == len(indexes), f"{file}: {st.chunk_count} / {len(chunks)} / {len(indexes)} chunks"
        per_channel = {}
        for m in messages:
            per_channel[m.channel_id] = per_channel.get(m.channel_id, 0) + 1
        assert st.channel_message_counts == per_channel, f"{file}: {st.channel_message_counts} != {per_channel}"
        if messages:
            times = [m.log_time for m in messages]
            assert (st.message_start_time, st.message_end_time) == (min(times), max(times)), f"{file}: time span"
        for ci, chunk in zip(indexes, chunks):
            # The chunk record where the index says it is.
            assert data[ci.chunk_start_offset] == 0x06, f"{file}: no chunk at {ci.chunk_start_offset}"
            (length,) = struct.unpack_from("<Q", data, ci.chunk_start_offset + 1)
            assert ci.chunk_length == 9 + length, f"{file}: chunk length {ci.chunk_length} != {9 + length}"
            assert ci.uncompressed_size == chunk.uncompressed_size, f"{file}: chunk index out of order"
            assert ci.compressed_size == len(chunk.data) and chunk.compression == ci.compression, f"{file}: chunk sizes"
            body, _ = get_chunk_data_stream(chunk, validate_crc=True)
            raw = body.read(chunk.uncompressed_size)
            span = 0
            indexed = 0
            for channel, at in ci.message_index_offsets.items():
                assert data[at] == 0x07, f"{file}: no message index at {at}"
                (n,) = struct.unpack_from("<Q", data, at + 1)
                span += 9 + n
                cid, m = struct.unpack_from("<HI", data, at + 9)
                assert cid == channel, f"{file}: message index of channel {cid} listed for {channel}"
                for k in range(m // 16):
                    t, off = struct.unpack_from("<QQ", data, at + 15 + 16 * k)
                    assert raw[off] == 0x05, f"{file}: index entry at {off} is not a message"
                    mch, _, mt = struct.unpack_from("<HIQ", raw, off + 9)
                    assert (mch, mt) == (channel, t), f"{file}: index entry ({channel}, {t}) points at ({mch}, {mt})"
                indexed += m // 16
            assert span == ci.message_index_length, f"{file}: message index length {ci.message_index_length} != {span}"
            inner = per_chunk[chunks.index(chunk)]
            assert indexed == len(inner), f"{file}: {indexed} index entries for {len(inner)} messages in a chunk"
            assert (ci.message_start_time, ci.message_end_time) == (chunk.message_start_time, chunk.message_end_time), f"{file}: chunk index times"
        with open(file, "rb") as f:
            ordered = [m.log_time for _, _, m in make_reader(f, validate_crcs=True).iter_messages(log_time_order=True)]
        assert ordered == sorted(m.log_time for m in messages), f"{file}: seeking read differs"
        print(json.dumps({"file": file.name, "messages": len(messages), "chunks": len(chunks), "compressions": sorted({c.compression for c in chunks}), "records": len(kinds)}))


def make_humble(meta_path):
    """Rewrites metadata.yaml the way ROS 2 Humble writes it (version 5)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe")
    doc = yaml.load(meta_path.read_text())
    info = doc["rosbag2_bagfile_information"]
    info["version"] = 5
    for key in ("ros_distro", "custom_data"):
        info.pop(key, None)
    for topic in info["topics_with_message_count"]:
        topic["topic_metadata"].pop("type_description_hash", None)
        # Humble: the profiles as one YAML string, enums as integers (as v8 already has them).
    with open(meta_path, "w") as f:
        yaml.dump(doc, f)


if __name__ == "__main__":
    if sys.argv[1] == "read":
        read(sys.argv[2])
    elif sys.argv[1] == "summary":
        summary(sys.argv[2])
    elif sys.argv[1] == "check":
        check(sys.argv[2])
    else:
        write(sys.argv[2], sys.argv[3])
