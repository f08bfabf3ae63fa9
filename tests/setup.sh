# Sourced by tests/run and tests/colcon.sh: installs what the tests use when
# it is missing, so that a fresh machine with only a Rust toolchain and
# Python 3 runs them. Nothing is taken from what a machine happens to have in
# its global Python: the Python peers live in a virtual environment of their
# own, created here from pinned files.
#
#   s2r_apt_install PKG...  installs the Debian packages not yet installed
#   s2r_peers_venv          creates/updates target/peers-venv from
#                           tests/peers/requirements.txt + constraints.txt and
#                           puts it first on PATH (PYTHON names its python)

s2r_apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "tests: installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
}

s2r_peers_venv() {
  local repo venv peers
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  peers="$repo/tests/peers"
  venv="${S2R_PEERS_VENV:-$repo/target/peers-venv}"
  if [ ! -x "$venv/bin/python" ]; then
    # Debian's own python3 keeps venv (ensurepip) in a separate package.
    python3 -c "import venv, ensurepip" 2>/dev/null || s2r_apt_install python3-venv
    echo "tests: creating the Python test environment $venv"
    python3 -m venv "$venv"
  fi
  # Pinned versions that are already installed need no download, so this is
  # quick once done; a half-installed or outdated environment is completed.
  "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    -r "$peers/requirements.txt" -c "$peers/constraints.txt"
  # Every module the tests import, so that a missing one fails here, by name.
  "$venv/bin/python" -c "import cyclonedds, rosbags, mcap, mcap_ros2, PIL, onnx, onnxruntime, colcon_core, colcon_ros, colcon_ros_cargo, colcon_bash" \
    || { echo "tests: $venv lacks a Python test peer (see above)" >&2; return 1; }
  export VIRTUAL_ENV="$venv" PYTHON="$venv/bin/python" PATH="$venv/bin:$PATH"
}
