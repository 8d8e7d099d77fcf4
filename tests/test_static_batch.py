"""ONNX and OpenVINO artifacts have a static batch of 1 by default (a dynamic batch on
request); OpenVINO's own benchmark_app runs the IR with no shape flag, and the runtime
still classifies batches of images with a batch-1 model."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.export import Prepared
from helpers.runs import SIZE


def _export(source, fmt: str, precision: str, out: Path, calibration: np.ndarray) -> Path:
    from edgecls.export.base import QuantizationConfig, get_exporter

    exporter = get_exporter(fmt)
    quant = QuantizationConfig.for_precision(precision, calibration=calibration)
    return exporter.export(source, quant, out / exporter.artifact_name("tiny", quant))


def benchmark_app() -> list[str]:
    """OpenVINO's benchmark_app: the wheel's console script beside this Python."""
    script = Path(sys.executable).with_name("benchmark_app")
    if script.is_file():
        return [str(script)]
    found = shutil.which("benchmark_app")
    return [found] if found else [sys.executable, "-m", "openvino.tools.benchmark.main"]


@pytest.mark.parametrize("fmt, precision", [("onnx", "fp32"), ("onnx", "int8"),
                                            ("openvino", "fp32"), ("openvino", "int8")])
def test_static_batch_one_by_default(prepared: Prepared, tmp_path: Path, fmt: str, precision: str) -> None:
    from edgecls.export.validate import compare
    from edgecls.runtime import Classifier

    path = _export(prepared.source, fmt, precision, tmp_path, prepared.calibration)
    classifier = Classifier(path)
    assert classifier.backend.input_info.shape == (1, SIZE, SIZE, 3)
    probs = classifier.predict(prepared.images)  # many images through a batch-1 model
    assert probs.shape == (len(prepared.images), 3)
    result = compare(probs, prepared.float_probs, prepared.labels, classifier.labels)
    assert result.agreement >= 0.95, result


@pytest.mark.parametrize("fmt", ["onnx", pytest.param("openvino", marks=pytest.mark.slow)])
def test_dynamic_batch_on_request(prepared: Prepared, tmp_path: Path, fmt: str) -> None:
    from edgecls.runtime import Classifier

    source = dataclasses.replace(prepared.source, dynamic_batch=True, work_dir=tmp_path / "work")
    source.work_dir.mkdir()
    classifier = Classifier(_export(source, fmt, "fp32", tmp_path, prepared.calibration))
    assert classifier.backend.input_info.shape[0] == -1
    assert classifier.predict(prepared.images[:5]).shape == (5, 3)


def test_benchmark_app_runs_the_ir_as_exported(prepared: Prepared, tmp_path: Path) -> None:
    xml = _export(prepared.source, "openvino", "int8", tmp_path, prepared.calibration)
    result = subprocess.run([*benchmark_app(), "-m", str(xml), "-d", "CPU", "-niter", "40", "-nireq", "1",
                             "-hint", "latency"], capture_output=True, text=True, timeout=300, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-2000:]
    assert "Throughput" in output and "Provide data shapes" not in output
