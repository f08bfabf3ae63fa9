#!/usr/bin/env python3
"""The Python mcap writer on the same data as `s2r bench bag`, timed in-process.

Usage: mcap_write_bench.py PAYLOAD_FILE COUNT COMPRESSION OUT.mcap
Writes COUNT copies of the serialized message in PAYLOAD_FILE (a 640x480
sensor_msgs/Image) as one ros2 channel, chunked with COMPRESSION (none, lz4,
zstd), and prints the seconds it took, opening to close.
"""
import sys
import time

from mcap.writer import CompressionType, Writer

payload = open(sys.argv[1], "rb").read()
count = int(sys.argv[2])
compression = {"none": CompressionType.NONE, "lz4": CompressionType.LZ4, "zstd": CompressionType.ZSTD}[sys.argv[3]]
start = time.perf_counter()
with open(sys.argv[4], "wb") as f:
    w = Writer(f, compression=compression, chunk_size=4 * 1024 * 1024)
    w.start(profile="ros2", library="python mcap")
    schema = w.register_schema(name="sensor_msgs/msg/Image", encoding="ros2msg", data=b"")
    channel = w.register_channel(topic="/cam/image_raw", message_encoding="cdr", schema_id=schema)
    for i in range(count):
        t = 1_700_000_000_000_000_000 + i * 33_333_333
        w.add_message(channel_id=channel, log_time=t, data=payload, publish_time=t, sequence=i)
    w.finish()
print(f"{time.perf_counter() - start:.6f}")
