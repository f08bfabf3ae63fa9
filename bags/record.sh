#!/bin/sh
# Re-records the sample bags of the shipped scenarios with `s2r bag record`:
# each scenario with seed 0, in real time, cameras at half resolution, for a
# few seconds, zstd-compressed. DDS stays on loopback in a domain of its own.
#   bags/record.sh [scenario seconds]...
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin s2r --bin sim_node
S2R=target/release/s2r
SIM=target/release/sim_node
export ROS_LOCALHOST_ONLY=1 ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-77}
[ $# -gt 0 ] || set -- icy_night_crossing 4.0 dry_day_urban 1.0 cup_near_edge 3.5
while [ $# -ge 2 ]; do
    name=$1 seconds=$2
    shift 2
    rm -rf "bags/$name"
    $S2R bag record -a -o "bags/$name" --compression-format zstd &
    rec=$!
    $SIM --ros-args -p scenario:="$name" -p seed:=0 -p duration:="$seconds" -p image_scale:=0.5 -p wait_for_subscribers:=true
    sleep 1
    kill -INT $rec
    wait $rec || true
    $S2R bag info "bags/$name" | head -8
done
du -sh bags/*/
