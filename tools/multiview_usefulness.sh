#!/usr/bin/env bash
# The usefulness experiment of the README's multiview section: does a
# perception model see the rig's side cameras better when it is also trained
# on side views the multiview model generated from the front camera?
#
#   1. generates config/sweeps/multiview.yaml (the 8-camera street, flat and
#      restyled, with the simulator's labels);
#   2. for every training episode (seeds not ending in 9), generates the rig
#      from its restyled front camera (`s2r multiview --labels`: the front
#      view as recorded, the seven other views generated, each view with the
#      simulator's labels of that camera at that instant);
#   3. fine-tunes the shipped perception model four times, the same steps
#      from the same start: on those bags' front views only; on their front
#      and generated side views; on the front and generated side views with
#      only the labels the reprojection supports (`--labels covered`: the
#      rest of each generated view neither object nor background); and, for
#      the ceiling, on the training episodes' front and TRUE side views;
#   4. evaluates the shipped model and both on the held-out seeds' TRUE
#      restyled frames: the seven side cameras, and the front camera.
#
# Every step is resumable (finished episodes and bags are kept, training goes
# on from its checkpoint). The four trainings run side by side, THREADS
# threads each.
#
# Usage: tools/multiview_usefulness.sh [OUT]   (default: multiview_usefulness)
#   STEPS=800 LR=5e-4 EVERY=2 THREADS=1 MODEL=(shipped multiview) S2R=target/release/s2r
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
OUT=${1:-multiview_usefulness}
STEPS=${STEPS:-800}
LR=${LR:-5e-4}
EVERY=${EVERY:-2}
THREADS=${THREADS:-1}
BASE=models/perception/perception.safetensors
if [ -z "${S2R:-}" ]; then
  cargo build --release -q --bin s2r
  S2R=target/release/s2r
fi
model=(--model "${MODEL:-models/multiview/multiview.safetensors}")
mkdir -p "$OUT/generated" "$OUT/generated_covered"
"$S2R" generate config/sweeps/multiview.yaml -o "$OUT/data"

held_out() { [[ $1 =~ _s[0-9]*9_l ]]; }
train_bags=()
covered_bags=()
train_eps=()
test_eps=()
for ep in "$OUT"/data/episodes/*; do
  name=$(basename "$ep")
  if held_out "$name"; then
    test_eps+=("$ep")
    continue
  fi
  for labels in all covered; do
    dir=$OUT/generated/$name
    [ $labels = covered ] && dir=$OUT/generated_covered/$name
    if [ ! -f "$dir/done" ]; then
      "$S2R" multiview "$ep" --from front --frames restyled --labels $labels "${model[@]}" -o "$dir" >/dev/null
      touch "$dir/done"
    fi
  done
  train_bags+=("$OUT/generated/$name/bag")
  covered_bags+=("$OUT/generated_covered/$name/bag")
  train_eps+=("$ep")
done
echo "${#train_bags[@]} generated rigs for training, ${#test_eps[@]} held-out episodes"

SIDES=front_left,front_right,left,right,rear_left,rear_right,rear
train() {
  local out=$1
  shift
  RAYON_NUM_THREADS=$THREADS "$S2R" train perception "$@" --base "$BASE" --frames restyled \
    --every "$EVERY" --steps "$STEPS" --lr "$LR" --eval-every "$STEPS" -o "$out" 2>"$out.log"
}
train "$OUT/front.safetensors" "${train_bags[@]}" --camera front &
a=$!
train "$OUT/front_generated.safetensors" "${train_bags[@]}" &
b=$!
train "$OUT/front_generated_covered.safetensors" "${covered_bags[@]}" &
c=$!
train "$OUT/front_true.safetensors" "${train_eps[@]}" &
d=$!
fail=0
for job in $a $b $c $d; do wait "$job" || fail=1; done
if [ $fail = 1 ]; then
  echo "a training failed: see $OUT/*.safetensors.log" >&2
  exit 1
fi

# One evaluation on the held-out episodes' true frames: prints "AP50 AP per-class" (per class: "vehicle:0.123,…").
score() {
  local model=$1 cams=$2 json
  json=$(mktemp)
  "$S2R" eval perception "$model" "${test_eps[@]}" --frames restyled --camera "$cams" --json "$json" >/dev/null
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); d=r["detection"]
f=lambda v: "–" if v is None else "%.3f" % v
per=",".join("%s:%s" % (c["class"], f(c["ap50"])) for c in d["per_class"] if c["objects"])
print(f(d["ap50"]), f(d["ap"]), per)' "$json"
  rm -f "$json"
}

echo
echo "AP@0.5 (AP@[.5:.95]) on the held-out seeds' true restyled frames, $STEPS fine-tuning steps each:"
echo
echo "| perception model | side cameras (7) | per class, side cameras | front camera |"
echo "| --- | --- | --- | --- |"
for row in "shipped (no fine-tuning):$BASE" "front only:$OUT/front.safetensors" \
  "front + generated side views:$OUT/front_generated.safetensors" \
  "front + generated side views, covered labels only:$OUT/front_generated_covered.safetensors" \
  "front + true side views (ceiling):$OUT/front_true.safetensors"; do
  label=${row%%:*}
  m=${row#*:}
  sides=$(score "$m" "$SIDES")
  front=$(score "$m" front)
  read -r s50 s per <<<"$sides"
  read -r f50 f _ <<<"$front"
  per=${per//,/, }
  echo "| $label | **$s50** ($s) | $per | **$f50** ($f) |"
done
