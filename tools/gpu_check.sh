#!/usr/bin/env bash
# The GPU checks, on a machine with an NVIDIA GPU and its driver: every
# model's network on candle's CUDA backend beside the same network on the
# CPU (`s2r bench models`: inference p50/p99, training steps/s, and the
# largest difference of the GPU's outputs from the CPU's on the same weights
# and input), and whether ONNX Runtime there has its CUDA execution provider.
#
#   cargo build --release --features cuda      # needs the CUDA toolkit (README "GPU")
#   ONNX_DIR=onnx/ tools/gpu_check.sh target/release/s2r [OUT_DIR]   # ONNX_DIR: `s2r export … --onnx` files
#
# The CUDA libraries the build links (cudart, cublas, cublasLt, curand, nvrtc)
# are looked for in the toolkit and in Python's nvidia-* wheels when they are
# not on the loader's path already. Figures go to stdout and OUT_DIR; the exit status
# is 1 when any step failed (or GPU and CPU evaluations differ).
set -uo pipefail
status=0
bin=${1:-target/release/s2r}
out=${2:-${OUT:-/tmp/s2r-gpu-check}}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || { echo "no NVIDIA GPU here"; exit 1; }
linked() { ! ldd "$bin" | grep -q "not found"; }
if ! linked; then
    for lib in $(ldd "$bin" | awk '/not found/ {print $1}'); do
        dir=$(find /usr/local/nvidia/ /usr/local/cuda*/ /usr/lib /usr/local/lib /opt "$HOME/.local" -name "$lib*" -print -quit 2>/dev/null | xargs -r dirname)
        [ -n "$dir" ] && LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    done
    export LD_LIBRARY_PATH
fi
if ! linked; then echo "libraries still missing:"; ldd "$bin" | grep "not found"; exit 1; fi
"$bin" --version
parts=${PARTS:-bench ort train}
if [[ $parts == *bench* ]]; then
echo "== every model on the GPU, beside the CPU's outputs"
"$bin" bench models --device cuda --seconds 2 --train-steps 20 2>&1 | tee "$out/models_cuda.md" || status=1
echo "== the same on this machine's CPU cores"
"$bin" bench models --device cpu --seconds 2 --train-steps 3 2>&1 | tee "$out/models_cpu.md" || status=1
fi
if [[ $parts == *train* ]]; then
# The commands themselves on a recording: the shipped perception model evaluated on each
# device (the same figures expected), and a short training from scratch on each.
bag=${BAG:-bags/icy_night_crossing/icy_night_crossing_0.mcap}
ck=${CHECKPOINT:-models/perception/perception.safetensors}
devices=${DEVICES:-cuda cpu}
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
for d in $devices; do
    echo "== s2r eval perception on $d"
    start=$(date +%s.%N)
    "$bin" eval perception "$ck" "$bag" --frames flat --device $d > "$out/eval_$d.txt" 2>&1 || status=1
    grep -iE "AP|AbsRel|mIoU" "$out/eval_$d.txt" | head -6
    echo "$d: $(elapsed "$start") s"
done
if [ -f "$out/eval_cuda.txt" ] && [ -f "$out/eval_cpu.txt" ]; then
    if diff "$out/eval_cuda.txt" "$out/eval_cpu.txt" > /dev/null; then echo "eval: the same figures on both"; else
        echo "eval: the figures differ"; diff "$out/eval_cuda.txt" "$out/eval_cpu.txt" | head -20; status=1; fi
fi
for d in $devices; do
    steps=$([ $d = cuda ] && echo 300 || echo 10)
    echo "== s2r train perception on $d, $steps steps"
    rm -f /tmp/gpu_check_$d.safetensors
    start=$(date +%s.%N)
    "$bin" train perception "$bag" --val "$bag" --frames flat --steps $steps --eval-every $steps --eval-frames 40 \
        --device $d -o /tmp/gpu_check_$d.safetensors > "$out/train_$d.txt" 2>&1 || status=1
    tr '\r' '\n' < "$out/train_$d.txt" | grep -E "^(trained|step|detection|depth|segm)" | tail -6
    echo "$d: $steps steps in $(elapsed "$start") s (data loading and evaluation included)"
done
fi
[[ $parts == *ort* ]] || exit $status
echo "== ONNX Runtime here: its execution providers, and the exported networks in ONNX_DIR timed on each"
onnx=${ONNX_DIR:-}
python3 - "$onnx" <<'PY' 2>&1 | tee "$out/ort.md" || status=1
import glob, sys, time
import numpy as np
import onnxruntime as ort
print("onnxruntime", ort.__version__, ort.get_available_providers())
files = sorted(glob.glob(sys.argv[1] + "/*.onnx")) if sys.argv[1] else []
if files:
    print("| network | provider | p50 ms | p99 ms |")
    print("|---|---|---|---|")
for f in files:
    for p in ("CUDAExecutionProvider", "CPUExecutionProvider"):
        if p not in ort.get_available_providers():
            continue
        s = ort.InferenceSession(f, providers=[p])
        rng = np.random.default_rng(0)
        feeds = {i.name: rng.random([d if isinstance(d, int) and d > 0 else 1 for d in i.shape], dtype=np.float32) for i in s.get_inputs()}
        for _ in range(5):
            s.run(None, feeds)
        t = []
        for _ in range(100):
            a = time.perf_counter()
            s.run(None, feeds)
            t.append((time.perf_counter() - a) * 1e3)
        t.sort()
        print(f"| {f.split('/')[-1]} | {p} | {t[50]:.2f} | {t[98]:.2f} |")
PY
exit $status
