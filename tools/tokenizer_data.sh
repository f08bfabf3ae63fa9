#!/usr/bin/env bash
# Records the tokenizer's training and held-out data: the front camera
# (/sim/front/image_raw, 640x480 at 10 Hz) of every shipped driving and
# manipulation scenario for 20 s of simulated time, seeds 1-5, one bag each
# (OUT/<scenario>_<seed>, zstd). The shipped checkpoints were trained on seeds
# 1-4; seed 5 is held out (so are the seed-0 recordings in bags/).
#
# Usage: tools/tokenizer_data.sh [OUT]   (default: tokdata; about 8 minutes, 110 MB)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-tokdata}
cargo build --release -q --bin s2r --bin sim_node
S2R=target/release/s2r
SIM=target/release/sim_node
export ROS_LOCALHOST_ONLY=1 ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-92}
mkdir -p "$OUT"
for seed in 1 2 3 4 5; do
  for sc in icy_night_crossing dry_day_urban cup_near_edge; do
    out=$OUT/${sc}_$seed
    [ -d "$out" ] && continue
    $S2R bag record --compression-format zstd -o "$out" /sim/front/image_raw /scenario >/dev/null 2>&1 &
    rec=$!
    sleep 2
    $SIM --ros-args -p scenario:=$sc -p seed:=$seed -p image_scale:=1.0 -p duration:=20.0 \
      -p real_time_factor:=1.0 -p wait_for_subscribers:=true >/dev/null 2>&1
    sleep 2
    kill -INT $rec; wait $rec
    echo "$out: $($S2R bag info "$out" | grep -o 'image_raw.*Count: [0-9]*' | grep -o '[0-9]*$') frames"
  done
done
