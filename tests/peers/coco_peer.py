#!/usr/bin/env python3
"""COCO box detection figures computed by pycocotools' COCOeval, none written here,
for the tests of sim2real's own evaluator (nodes/perception/src/coco.rs).

Usage: coco_peer.py IN.json
IN.json: {"classes": N,
          "gts":  [{"image": i, "class": c, "bbox": [x, y, w, h], "crowd": bool}, ...],
          "dets": [{"image": i, "class": c, "bbox": [x, y, w, h], "score": s}, ...]}
Builds the ground truth in memory (every image id found in gts or dets, classes
0..N-1 as category ids 1..N, area = w*h, annotation ids from 1), loads dets as
results, runs COCOeval(iouType='bbox') with default parameters (evaluate,
accumulate, summarize; pycocotools' own printing goes to stderr) and prints one
JSON object:
  {"ap": stats[0], "ap50": stats[1], "ap75": stats[2], "ar1": stats[6],
   "ar10": stats[7], "ar100": stats[8],
   "per_class": [{"ap", "ap50", "ap75", "ar100"}, ...]}
Per class, from eval['precision'][t, :, k, 0, 2] (area "all", maxDets 100):
ap = mean over every IoU threshold, ap50 / ap75 = mean at IoU 0.50 / 0.75;
ar100 = mean of eval['recall'][:, k, 0, 2]. Means leave out pycocotools' -1
entries; a figure is null when nothing is left (no non-crowd ground truth).
"""
import contextlib
import json
import sys

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def mean_or_none(values):
    kept = values[values > -1]
    return float(np.mean(kept)) if kept.size else None


def main():
    with open(sys.argv[1]) as f:
        case = json.load(f)
    classes = case["classes"]
    image_ids = sorted({a["image"] for a in case["gts"]} | {a["image"] for a in case["dets"]})
    images = [{"id": i} for i in image_ids]
    categories = [{"id": c + 1, "name": str(c)} for c in range(classes)]
    annotations = []
    for n, g in enumerate(case["gts"], start=1):
        x, y, w, h = (float(v) for v in g["bbox"])
        annotations.append({"id": n, "image_id": g["image"], "category_id": g["class"] + 1, "bbox": [x, y, w, h],
                            "area": w * h, "iscrowd": int(bool(g["crowd"]))})
    results = [{"image_id": d["image"], "category_id": d["class"] + 1, "bbox": [float(v) for v in d["bbox"]],
                "score": float(d["score"])} for d in case["dets"]]
    with contextlib.redirect_stdout(sys.stderr):
        gt = COCO()
        gt.dataset = {"images": images, "categories": categories, "annotations": annotations}
        gt.createIndex()
        if results:
            dt = gt.loadRes(results)
        else:  # loadRes cannot take an empty list
            dt = COCO()
            dt.dataset = {"images": list(images), "categories": list(categories), "annotations": []}
            dt.createIndex()
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert list(ev.params.catIds) == [c + 1 for c in range(classes)]
    assert ev.params.areaRngLbl[0] == "all" and ev.params.maxDets == [1, 10, 100]
    assert ev.params.iouThrs[0] == 0.5 and ev.params.iouThrs[5] == 0.75
    precision, recall = ev.eval["precision"], ev.eval["recall"]
    per_class = []
    for k in range(classes):
        p = precision[:, :, k, 0, 2]
        per_class.append({"ap": mean_or_none(p), "ap50": mean_or_none(p[0]), "ap75": mean_or_none(p[5]),
                          "ar100": mean_or_none(recall[:, k, 0, 2])})
    s = [float(v) for v in ev.stats]
    print(json.dumps({"ap": s[0], "ap50": s[1], "ap75": s[2], "ar1": s[6], "ar10": s[7], "ar100": s[8], "per_class": per_class}))


if __name__ == "__main__":
    main()
