#!/usr/bin/env bash
# A CUDA toolkit for `cargo build --features cuda` on a machine without one
# (and without a GPU): NVIDIA's own wheels from PyPI (nvcc, the headers and
# the libraries candle links: cudart, cublas, cublasLt, curand, nvrtc), and a
# stub libcuda.so with the driver API's symbols to link against (the driver's
# real libcuda.so.1 is loaded where the program runs, as with the toolkit's
# lib64/stubs). The CUDA version must not be newer than the driver of the
# machine that runs the build (nvidia-smi names the highest it takes).
#
#   tools/cuda_wheels.sh DIR [13.0]      # then: . DIR/env.sh
#   cargo build --release --features cuda
set -euo pipefail
dir=$(realpath -m "${1:?usage: tools/cuda_wheels.sh DIR [13.0]}")
version=${2:-13.0}
case "$version" in
13.0) pins="nvidia-cuda-nvcc==13.0.88 nvidia-cuda-runtime==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-cccl==13.0.85 nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35 nvidia-cuda-nvrtc==13.0.88" ;;
*) echo "CUDA $version: only 13.0 is pinned here; add its wheel versions" >&2; exit 2 ;;
esac
mkdir -p "$dir/wheels" "$dir/stub"
# shellcheck disable=SC2086
python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$dir/wheels" $pins
for w in "$dir"/wheels/*.whl; do python3 -m zipfile -e "$w" "$dir/tree"; done
cuda="$dir/tree/nvidia/cu13"
chmod +x "$cuda"/bin/* "$cuda"/nvvm/bin/*
for l in cudart.so.13 cublas.so.13 cublasLt.so.13 curand.so.10 nvrtc.so.13; do ln -sf "lib$l" "$cuda/lib/lib${l%.*}"; done
# The driver API's entry points as cudarc declares them, each an empty function.
src=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -path '*cudarc-*/src/driver/sys/mod.rs' | sort -V | tail -1)
[ -n "$src" ] || { echo "cudarc's sources are not in the cargo registry: run \`cargo fetch\` first" >&2; exit 1; }
grep -ohE '^\s+fn cu[A-Za-z0-9_]+\(' "$src" | sed -E 's/\s+fn //; s/\(//' | sort -u | awk '{print "void " $1 "(void) {}"}' > "$dir/stub/cuda.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$cuda/lib/libcuda.so" "$dir/stub/cuda.c"
cat > "$dir/env.sh" <<ENV
# From tools/cuda_wheels.sh: CUDA $version for building with --features cuda.
export CUDA_HOME=$cuda CUDA_PATH=$cuda PATH=$cuda/bin:\$PATH
export CUDARC_CUDA_VERSION=${version/./0}0 CUDA_COMPUTE_CAP=\${CUDA_COMPUTE_CAP:-90}
export LIBRARY_PATH=$cuda/lib\${LIBRARY_PATH:+:\$LIBRARY_PATH}
ENV
echo "now: . $dir/env.sh   (CUDA_COMPUTE_CAP: the GPU's compute capability ×10, 90 for Hopper)"
