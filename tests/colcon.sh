#!/usr/bin/env bash
# Builds sim2real as a ROS 2 package with colcon (colcon-ros-cargo and
# cargo-ament-build, no ROS installation needed) into a temporary workspace,
# and checks what `ros2 run` and `ros2 launch` rely on: the executables in
# lib/sim2real/, launch and config files in share/sim2real/, the package in
# the ament index, and $(find-pkg-share sim2real) resolving to the install.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
ws="${COLCON_TEST_WS:-}"
if [ -z "$ws" ]; then
  # A temporary workspace (several GB once built) goes when the check ends.
  ws="$(mktemp -d)"
  trap 'rm -rf "$ws"' EXIT
fi

# colcon and its extensions (colcon-bash writes install/setup.bash) come from
# the pinned test environment, as does cargo-ament-build (its PyPI wheel).
# shellcheck source=tests/setup.sh
. "$repo/tests/setup.sh"
s2r_peers_venv
cargo ament-build --help >/dev/null \
  || { echo "colcon.sh: cargo-ament-build (a dependency of colcon-ros-cargo) does not run" >&2; exit 1; }

mkdir -p "$ws" && cd "$ws"
# colcon-core reads `cargo metadata` (one line, over 64 KiB for this workspace)
# through asyncio streams limited to 64 KiB a line: raise the limit.
PYTHONPATH="$repo/tests/peers/colcon_limit${PYTHONPATH:+:$PYTHONPATH}" \
  colcon build --base-paths "$repo" --event-handlers console_cohesion+
prefix="$ws/install/sim2real"
[ -x "$prefix/lib/sim2real/s2r" ] || { echo "colcon.sh: $prefix/lib/sim2real/s2r is missing" >&2; exit 1; }
# Every executable of the node registry (as the installed s2r lists them),
# and the package's data.
execs="$("$prefix/lib/sim2real/s2r" pkg executables sim2real | awk '{print "lib/sim2real/" $2}')"
for f in $execs \
         share/sim2real/package.xml share/sim2real/rosdep.yaml share/sim2real/launch/demo.launch.yaml share/sim2real/config/demo.params.yaml \
         share/sim2real/launch/sim.launch.yaml share/sim2real/launch/transfer.launch.yaml share/sim2real/launch/curate.launch.yaml share/sim2real/config/curator.params.yaml \
         share/sim2real/config/scenarios/icy_night_crossing.yaml share/sim2real/launch/tokenize.launch.yaml \
         share/sim2real/models/tokenizer/cv4x8x8.safetensors share/sim2real/models/tokenizer/dv8x16x16.safetensors \
         share/sim2real/models/perception/perception.safetensors share/sim2real/models/policy/policy.safetensors share/sim2real/models/policy/arm.safetensors \
         share/sim2real/models/world/world.safetensors share/sim2real/models/world/icy.safetensors \
         share/sim2real/models/multiview/multiview.safetensors share/sim2real/launch/multiview.launch.yaml \
         share/sim2real/launch/drive.launch.yaml share/sim2real/launch/train.launch.yaml share/sim2real/launch/robot.launch.yaml \
         share/ament_index/resource_index/packages/sim2real; do
  [ -e "$prefix/$f" ] || { echo "colcon.sh: $prefix/$f is missing" >&2; exit 1; }
done
# colcon's setup scripts read unset variables.
set +u
# shellcheck disable=SC1091
source "$ws/install/setup.bash"
set -u
cd /
plan="$("$prefix/lib/sim2real/s2r" launch sim2real demo.launch.yaml --print)"
echo "$plan"
grep -q -- "--params-file $prefix/share/sim2real/config/demo.params.yaml" <<<"$plan" \
  || { echo "colcon.sh: find-pkg-share did not resolve to the install space" >&2; exit 1; }
out="$(ROS_LOCALHOST_ONLY=1 ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST "$prefix/lib/sim2real/talker" --ros-args -p count:=1 -p rate:=10 2>&1)"
grep -q "Publishing: 'Hello World: 1'" <<<"$out" || { echo "colcon.sh: the installed talker did not run: $out" >&2; exit 1; }
out="$(ROS_LOCALHOST_ONLY=1 ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST "$prefix/lib/sim2real/sim_node" --ros-args \
  -p scenario:=cup_near_edge -p mode:=lockstep -p duration:=0.5 -p image_scale:=0.1 2>&1)"
grep -q "($prefix/share/sim2real/config/scenarios/cup_near_edge.yaml)" <<<"$out" \
  || { echo "colcon.sh: the installed sim_node did not find its scenario in the install space: $out" >&2; exit 1; }
grep -q "done: 0.50 s simulated" <<<"$out" || { echo "colcon.sh: the installed sim_node did not run: $out" >&2; exit 1; }
out="$(ROS_LOCALHOST_ONLY=1 ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST timeout -s INT 5 "$prefix/lib/sim2real/tokenizer_node" 2>&1 || true)"
grep -q "($prefix/share/sim2real/models/tokenizer/cv4x8x8.safetensors)" <<<"$out" \
  || { echo "colcon.sh: the installed tokenizer_node did not find its checkpoint in the install space: $out" >&2; exit 1; }
# s2r setup reads the installed package.xml and rosdep.yaml (a driver hidden from the loader).
out="$(VK_ICD_FILENAMES=/nonexistent.json VK_DRIVER_FILES=/nonexistent.json "$prefix/lib/sim2real/s2r" setup --check 2>&1 || true)"
grep -q "libvulkan1, mesa-vulkan-drivers" <<<"$out" \
  || { echo "colcon.sh: the installed s2r setup did not resolve the package's system dependencies: $out" >&2; exit 1; }
echo "colcon.sh: sim2real builds and installs as a ROS 2 package ($prefix)"
