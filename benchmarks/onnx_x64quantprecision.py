"""How INT8 ONNX models behave on this CPU with and without ONNX Runtime's
``session.x64quantprecision=1`` (x86 CPUs without VNNI saturate in U8S8 kernels otherwise).

For each INT8 model: its activation QuantizeLinear types and zero points (NNCF writes
symmetric int8/uint8, ONNX Runtime asymmetric uint8), then top-1 agreement with the fp32
model on Imagenette val images (RGB 0..255, batch 1) with the option on and off.

Usage (e.g. with the models left by benchmarks/onnx_quantizers.py):
  nice .venv/bin/python benchmarks/onnx_x64quantprecision.py FP32.onnx INT8.onnx [INT8.onnx...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from edgecls.runtime.cpu import cpu_info
from edgecls.runtime.onnxruntime import X64_QUANT_PRECISION

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def activation_types(path: Path) -> dict[str, int]:
    """(dtype, symmetric?) -> count over the activation QuantizeLinear nodes."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {t.name: t for t in model.graph.initializer}
    counts: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in inits or len(node.input) < 3:
            continue
        zero = numpy_helper.to_array(inits[node.input[2]]) if node.input[2] in inits else None
        key = f"{zero.dtype if zero is not None else '?'} zero point " + (
            "0" if zero is not None and np.all(zero == 0) else "!= 0")
        counts[key] = counts.get(key, 0) + 1
    return counts


def predictions(path: Path, images: np.ndarray, x64: bool) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    if x64:
        options.add_session_config_entry(X64_QUANT_PRECISION, "1")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.array([np.argmax(session.run(None, {name: image[None]})[0]) for image in images])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fp32", type=Path)
    parser.add_argument("int8", type=Path, nargs="+")
    parser.add_argument("--images", type=int, default=64)
    args = parser.parse_args()
    import onnx

    size = [d.dim_value for d in onnx.load(str(args.fp32), load_external_data=False)
            .graph.input[0].type.tensor_type.shape.dim][1:3]
    files = sorted((SHARED / "data" / "imagenette" / "val").glob("*/*.JPEG"))
    files = files[::max(1, len(files) // args.images)][:args.images]
    images = np.stack([cv2.resize(cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB),
                                  (size[1], size[0])) for f in files]).astype(np.float32)
    reference = predictions(args.fp32, images, False)
    print(f"CPU: {cpu_info().summary()}; u8s8 overflow risk {cpu_info().u8s8_overflow_risk}; "
          f"{len(images)} images\n")
    print("| model | activation QuantizeLinear | agreement, x64quantprecision=1 | agreement, default |")
    print("|---|---|---|---|")
    for path in args.int8:
        on = np.mean(predictions(path, images, True) == reference)
        off = np.mean(predictions(path, images, False) == reference)
        print(f"| {path.name} | {activation_types(path)} | {on:.3f} | {off:.3f} |")


if __name__ == "__main__":
    main()
