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
    else:
        write(sys.argv[2], sys.argv[3])
