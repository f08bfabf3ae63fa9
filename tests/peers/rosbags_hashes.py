#!/usr/bin/env python3
"""Independent RIHS01 hashes of sim2real's .msg files, computed by rosbags.

Usage: rosbags_hashes.py MSGS_DIR
Prints one JSON object: {"pkg/msg/Type": {"rosbags": hash, "jazzy": hash or null}}.
"rosbags" hashes our .msg text with rosbags' own parser and hasher; "jazzy" is
the hash of the type as it ships in ROS 2 Jazzy (from rosbags' bundled store),
where rosbags knows the type.
"""
import json
import pathlib
import sys

from rosbags.typesys import Stores, get_typestore, get_types_from_msg

root = pathlib.Path(sys.argv[1])
ours = get_typestore(Stores.EMPTY)
types = {}
for path in sorted(root.glob("*/msg/*.msg")):
    name = f"{path.parent.parent.name}/msg/{path.stem}"
    types.update(get_types_from_msg(path.read_text(), name))
ours.register(types)
jazzy = get_typestore(Stores.ROS2_JAZZY)
out = {}
for name in sorted(types):
    out[name] = {
        "rosbags": ours.hash_rihs01(name),
        "jazzy": jazzy.hash_rihs01(name) if name in jazzy.fielddefs else None,
    }
print(json.dumps(out))
