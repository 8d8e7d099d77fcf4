"""A real model family through every exporter: MobileNetV3-Small (hard-swish, squeeze-and-
excitation: the ops tiny test nets lack) at 32 px, briefly trained, exported to TFLite, ONNX
and OpenVINO, each artifact run by the edgecls runtime and compared with the float Keras
model: fp32 by tolerance, int8 by agreement of the top-1 class.

Marked slow: on this project's shared 2-core machine the training and the six exports take
minutes, not seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers.export import Prepared, prepare_run
from helpers.runs import CLASSES, SIZE, make_run

pytestmark = pytest.mark.slow

FORMATS = ("tflite", "onnx", "openvino")
FP32_TOLERANCE = 1e-4  # largest |p - p_float| of one class probability
INT8_AGREEMENT = 0.85  # least share of images with the float model's top-1


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """MobileNetV3-Small trained for a few epochs on the generated shapes, its BatchNorm
    statistics re-estimated on the training images (a few dozen steps leave the moving
    averages far from the data, and inference uses them)."""
    from edgecls.data.pipeline import load_arrays
    from edgecls.data.split import Split
    from edgecls.models import build
    from edgecls.models.float_model import load_float_model
    from edgecls.optimize.refit import recalibrate_batchnorm

    run = make_run(tmp_path_factory.mktemp("family"), epochs=6, learning_rate=0.003,
                   model=lambda: build("mobilenet_v3_small", num_classes=len(CLASSES),
                                       input_size=SIZE, include_top=False))
    model = load_float_model(run / "best.keras")
    images, _ = load_arrays(Split.load(run / "split.json").items("train"), (SIZE, SIZE))
    recalibrate_batchnorm(model, images)
    model.save(run / "best.keras")
    return prepare_run(run)


def _export_and_run(family: Prepared, fmt: str, precision: str, out: Path) -> np.ndarray:
    from edgecls.export.base import QuantizationConfig, get_exporter
    from edgecls.runtime import Classifier

    exporter = get_exporter(fmt)
    quant = QuantizationConfig.for_precision(precision, calibration=family.calibration)
    path = exporter.export(family.source, quant, out / exporter.artifact_name("family", quant))
    classifier = Classifier(path)
    assert classifier.metadata.precision == precision and classifier.labels == sorted(CLASSES)
    return classifier.predict(family.images)


def test_the_float_model_learned_the_task(family: Prepared) -> None:
    assert float(np.mean(family.float_probs.argmax(1) == family.labels)) >= 0.7  # chance: 1/3


@pytest.mark.parametrize("fmt", FORMATS)
def test_fp32_matches_float_by_tolerance(fmt: str, family: Prepared, tmp_path: Path) -> None:
    probs = _export_and_run(family, fmt, "fp32", tmp_path)
    assert probs.shape == family.float_probs.shape
    assert float(np.max(np.abs(probs - family.float_probs))) <= FP32_TOLERANCE


@pytest.mark.parametrize("fmt", FORMATS)
def test_int8_agrees_with_float(fmt: str, family: Prepared, tmp_path: Path) -> None:
    probs = _export_and_run(family, fmt, "int8", tmp_path)
    agreement = float(np.mean(probs.argmax(1) == family.float_probs.argmax(1)))
    assert agreement >= INT8_AGREEMENT, f"{fmt} int8 agrees with float on {agreement:.1%}"
