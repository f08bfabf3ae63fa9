#!/usr/bin/env python3
"""A camera driver's compressed stream, made by parts nobody here wrote:
frames encoded as JPEG by Pillow, published as sensor_msgs/CompressedImage
with Eclipse Cyclone DDS, or written into a rosbag2 MCAP bag by rosbags.

Usage:
  compressed_peer.py pub TOPIC SRC_BAG COUNT READERS
      Once READERS readers have matched TOPIC (a ROS name, e.g.
      /cam/image_raw/compressed), publishes three bad frames (a JPEG cut in
      half, a format string that is no codec, a PNG whose format says JPEG),
      then COUNT JPEG frames (quality 90) of SRC_BAG's /sim/front/image_raw,
      stamped 1.0 s, 1.1 s, 1.2 s, …, at 10 Hz, and prints "SENT COUNT".
  compressed_peer.py bag OUT SRC_BAG TOPIC
      Writes a rosbag2 MCAP bag (metadata version 9) whose only topic is
      TOPIC, with every frame of SRC_BAG's /sim/front/image_raw as a JPEG
      (quality 90), and prints "WROTE n".

Traffic stays on loopback (the CYCLONEDDS_URI cyclone_peer.py sets).
"""
import io
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image as PilImage

FORMAT = "rgb8; jpeg compressed bgr8"  # what image_transport's compressed plugin writes for rgb8


def source_frames(bag):
    """(width, height, rgb bytes) of every /sim/front/image_raw frame, read with rosbags."""
    from rosbags.highlevel import AnyReader

    frames = []
    with AnyReader([Path(bag)]) as reader:
        conns = [c for c in reader.connections if c.topic == "/sim/front/image_raw"]
        for conn, _, raw in reader.messages(connections=conns):
            m = reader.deserialize(raw, conn.msgtype)
            assert m.encoding == "rgb8", m.encoding
            frames.append((m.width, m.height, bytes(m.data)))
    return frames


def encode(w, h, rgb, fmt="JPEG"):
    out = io.BytesIO()
    img = PilImage.frombytes("RGB", (w, h), rgb)
    if fmt == "JPEG":
        img.save(out, format="JPEG", quality=90)
    else:
        img.save(out, format="PNG")
    return out.getvalue()


def publish(topic_name, src, count, readers):
    # The loopback-only Cyclone DDS configuration and the ROS 2 types the interop peer defines.
    sys.path.insert(0, str(Path(__file__).parent))
    from cyclone_peer import Header, Time  # noqa: E402  (sets CYCLONEDDS_URI on import)
    from cyclonedds.core import Policy, Qos
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.idl import IdlStruct
    from cyclonedds.idl.types import sequence, uint8
    from cyclonedds.pub import DataWriter
    from cyclonedds.topic import Topic
    from cyclonedds.util import duration

    @dataclass
    class CompressedImage(IdlStruct, typename="sensor_msgs::msg::dds_::CompressedImage_"):
        header: Header = field(default_factory=Header)
        format: str = ""
        data: sequence[uint8] = field(default_factory=list)

    frames = source_frames(src)
    dp = DomainParticipant(int(os.environ.get("ROS_DOMAIN_ID", "0")))
    qos = Qos(
        Policy.Reliability.Reliable(duration(seconds=1)),
        Policy.History.KeepLast(count + 10),
        Policy.DataRepresentation(use_cdrv0_representation=True),
    )
    topic = Topic(dp, "rt" + topic_name, CompressedImage, qos=qos)
    writer = DataWriter(dp, topic, qos=qos)
    deadline = time.time() + 60
    while len(writer.get_matched_subscriptions()) < readers and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)

    def msg(k, fmt, data):
        # Frame k at 1 s + k/10 s, as a 10 Hz camera stamps them.
        return CompressedImage(
            header=Header(stamp=Time(sec=1 + k // 10, nanosec=(k % 10) * 100_000_000), frame_id="cam"), format=fmt, data=list(data)
        )

    w, h, rgb = frames[0]
    jpeg = encode(w, h, rgb)
    # Bad frames first, stamped in the past: each is skipped by topic, none stops a node.
    writer.write(msg(-3, FORMAT, jpeg[: len(jpeg) // 2]))
    writer.write(msg(-2, "rgb8; h264 compressed", jpeg))
    writer.write(msg(-1, FORMAT, encode(w, h, rgb, "PNG")))
    for k in range(count):
        w, h, rgb = frames[(10 + k) % len(frames)]
        writer.write(msg(k, FORMAT, encode(w, h, rgb)))
        time.sleep(0.1)
    time.sleep(2.0)
    print(f"SENT {count}", flush=True)


def write_bag(out, src, topic):
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    CompressedImage = store.types["sensor_msgs/msg/CompressedImage"]
    Header = store.types["std_msgs/msg/Header"]
    Time = store.types["builtin_interfaces/msg/Time"]
    import numpy as np

    frames = source_frames(src)
    with Writer(out, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection(topic, CompressedImage.__msgtype__, typestore=store)
        for k, (w, h, rgb) in enumerate(frames):
            t_ns = 1_000_000_000 + k * 100_000_000
            m = CompressedImage(
                header=Header(stamp=Time(sec=t_ns // 1_000_000_000, nanosec=t_ns % 1_000_000_000), frame_id="front"),
                format=FORMAT,
                data=np.frombuffer(encode(w, h, rgb), dtype=np.uint8),
            )
            writer.write(conn, t_ns, store.serialize_cdr(m, CompressedImage.__msgtype__))
    print(f"WROTE {len(frames)}", flush=True)


def main():
    if sys.argv[1] == "pub":
        publish(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1] == "bag":
        write_bag(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
