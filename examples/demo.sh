#!/usr/bin/env bash
# edgecls end to end on scikit-learn's bundled handwritten digits (no download):
# data check -> train (EfficientNet-Lite0, ImageNet weights from the pip package)
# -> evaluate -> export TFLite/ONNX/OpenVINO fp32 + INT8, each validated against the
# float model -> classify a folder through the runtime -> bench -> report.
#
# Usage: bash examples/demo.sh [OUT_DIR]   (default: ./demo; needs `pip install -e ".[all]"`)
set -euo pipefail

OUT="${1:-demo}"
EDGECLS="${EDGECLS:-edgecls}"
if [ -e "$OUT/run" ]; then
  echo "$OUT/run exists already: pass another folder, or remove it first" >&2
  exit 2
fi
mkdir -p "$OUT"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1/7 write the demo dataset (scikit-learn digits, 10 classes, 1797 images)"
$EDGECLS data digits "$OUT/digits" --size 32

step "2/7 check it"
$EDGECLS data check "$OUT/digits" --json "$OUT/data_check.json"

step "3/7 train EfficientNet-Lite0 (ImageNet weights, offline) at 96 px"
$EDGECLS train --data "$OUT/digits" --model efficientnet_lite0 --weights imagenet \
  --img-size 96 --epochs 4 --out "$OUT/run"

step "4/7 evaluate on the held-out test split"
$EDGECLS evaluate "$OUT/run" --split test --json "$OUT/evaluation.json"

step "5/7 export TFLite, ONNX and OpenVINO in fp32 and INT8; validate each against the float model"
# The digits test split holds ~176 images, so one image is 0.57 pp, and the INT8 drop of
# this tiny-image model moved between 0 and 1.7 pp across training runs here: the demo's
# gate allows 3 pp (five images). On real data keep the default of 1 pp or tighten it.
$EDGECLS export "$OUT/run" --formats tflite,onnx,openvino --precision fp32,int8 \
  --max-drop 3.0 --out "$OUT/export"

step "6/7 classify a few images of the digit 7 through the runtime (no TensorFlow), INT8 TFLite"
mkdir -p "$OUT/samples"
find "$OUT/digits/7" -name '*.png' | head -n 5 | xargs -I{} cp {} "$OUT/samples/"
$EDGECLS run "$OUT/export/model_int8.tflite" --source "$OUT/samples" --headless --top-k 3

step "7/7 benchmark every artifact on this machine and write the report"
$EDGECLS bench "$OUT"/export/model_*.tflite "$OUT"/export/model_*.onnx "$OUT"/export/model_*.xml \
  --data "$OUT/run" --runs 50 --json "$OUT/bench.json"
$EDGECLS report "$OUT/bench.json" --html "$OUT/report.html" --md "$OUT/report.md"

printf '\nDone. Open %s/report.html; the artifacts and manifest.json are in %s/export.\n' "$OUT" "$OUT"
