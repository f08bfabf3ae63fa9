#!/usr/bin/env bash
# The sim-to-real experiment of the README's perception section, end to end:
# generates the training sweep and the two held-out sweeps, trains three
# models on the same episodes (flat frames only, restyled only, both), and
# prints the table of AP@0.5 per model and held-out condition (plus AP,
# depth AbsRel and mIoU) as Markdown.
#
#   held-out seeds, flat   the training sweep's test split (seeds never trained on), flat renders
#   unseen looks           perception_eval_looks: training's scenarios, seeds 501-510, looks from
#                          phrases the training sweep never uses
#   unseen scenario        perception_eval_scenario: the daytime street, never trained on, same looks
#
# Every step is resumable: datasets that are complete are kept, and training
# continues from its checkpoint, so the script can be run again after an
# interruption (or with more STEPS). On two CPU cores a model takes hours;
# `STEPS=500` gives a quick (poor) table.
#
# Usage: tools/perception_experiment.sh [OUT]   (default: perception_experiment)
#   STEPS=20000 EVERY=2 FRAMES="flat restyled both" S2R=target/release/s2r
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-perception_experiment}
STEPS=${STEPS:-20000}
EVERY=${EVERY:-2}
FRAMES=${FRAMES:-flat restyled both}
if [ -z "${S2R:-}" ]; then
  cargo build --release -q --bin s2r
  S2R=target/release/s2r
fi
mkdir -p "$OUT"
for sweep in perception_train perception_eval_looks perception_eval_scenario; do
  [ -f "$OUT/$sweep/splits.yaml" ] || "$S2R" generate "config/sweeps/$sweep.yaml" -o "$OUT/$sweep"
done
for f in $FRAMES; do
  "$S2R" train perception "$OUT/perception_train" -o "$OUT/$f.safetensors" --frames "$f" --every "$EVERY" --steps "$STEPS"
done

# One evaluation: prints "AP50 AP AbsRel mIoU" from its JSON report.
score() {
  local model=$1 data=$2 split=$3 frames=$4 json
  json=$(mktemp)
  "$S2R" eval perception "$model" "$data" --split "$split" --frames "$frames" --json "$json" >/dev/null
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); d=r["detection"]
f=lambda v: "–" if v is None else "%.3f" % v
print(f(d["ap50"]), f(d["ap"]), f(r["depth_abs_rel"]), f(r["miou"]))' "$json"
  rm -f "$json"
}

echo
echo "AP@0.5 (AP@[.5:.95], depth AbsRel, mIoU) on held-out data, $STEPS steps each:"
echo
echo "| trained on | held-out seeds, flat | unseen looks, restyled | unseen scenario, restyled |"
echo "| --- | --- | --- | --- |"
for f in $FRAMES; do
  row="| $f |"
  for cell in "$OUT/perception_train test flat" "$OUT/perception_eval_looks all restyled" "$OUT/perception_eval_scenario all restyled"; do
    read -r data split frames <<<"$cell"
    read -r ap50 ap absrel miou <<<"$(score "$OUT/$f.safetensors" "$data" "$split" "$frames")"
    row="$row **$ap50** ($ap, $absrel, $miou) |"
  done
  echo "$row"
done
