"""A real model family through every exporter: MobileNetV3-Small (hard-swish, squeeze-and-
excitation: the ops tiny test nets lack) at 32 px, briefly trained, exported to TFLite, ONNX
and OpenVINO, each artifact run by the edgecls runtime and compared with the float Keras
model: fp32 by tolerance, int8 by agreement of the top-1 class.

The fp32 checks also run in the default suite on the untrained family (a tolerance needs no
learned task, only scores that differ by image); the training and the INT8 checks are marked
slow: on this project's 2-core machine they take minutes, not seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers.export import Prepared, prepare_run
from helpers.runs import CLASSES, SIZE, make_run

FORMATS = ("tflite", "onnx", "openvino")
FP32_TOLERANCE = 1e-4  # largest |p - p_float| of one class probability
INT8_AGREEMENT = 0.85  # least share of images with the float model's top-1


def _mobilenet_v3_small():
    from edgecls.models import build

    return build("mobilenet_v3_small", num_classes=len(CLASSES), input_size=SIZE, include_top=False)


def _recalibrated(run: Path, random_head: bool = False) -> Prepared:
    """The run's model with its BatchNorm statistics re-estimated on the training images (a
    few dozen steps, or none, leave the moving averages far from the data, and inference uses
    them) and, with ``random_head``, its zero-initialized classifier drawn at random."""
    import keras

    from edgecls.data.pipeline import load_arrays
    from edgecls.data.split import Split
    from edgecls.models.float_model import load_float_model
    from edgecls.optimize.refit import recalibrate_batchnorm

    model = load_float_model(run / "best.keras")
    images, _ = load_arrays(Split.load(run / "split.json").items("train"), (SIZE, SIZE))
    recalibrate_batchnorm(model, images)
    if random_head:
        rng = np.random.default_rng(0)
        for layer in model._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.Dense):
                kernel, *rest = layer.get_weights()
                layer.set_weights([rng.normal(0.0, 1.0, kernel.shape).astype(kernel.dtype), *rest])
    model.save(run / "best.keras")
    return prepare_run(run)


@pytest.fixture(scope="module")
def untrained_family(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """MobileNetV3-Small untrained (no training step), scores varying by image."""
    run = make_run(tmp_path_factory.mktemp("untrained"), epochs=0, model=_mobilenet_v3_small)
    prepared = _recalibrated(run, random_head=True)
    assert prepared.float_probs.std(axis=0).max() > 0.01, "the float scores must vary by image"
    return prepared


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """MobileNetV3-Small trained for a few epochs on the generated shapes."""
    run = make_run(tmp_path_factory.mktemp("family"), epochs=6, learning_rate=0.003,
                   model=_mobilenet_v3_small)
    return _recalibrated(run)


def _export_and_run(family: Prepared, fmt: str, precision: str, out: Path) -> np.ndarray:
    from edgecls.export.base import QuantizationConfig, get_exporter
    from edgecls.runtime import Classifier

    exporter = get_exporter(fmt)
    quant = QuantizationConfig.for_precision(precision, calibration=family.calibration)
    path = exporter.export(family.source, quant, out / exporter.artifact_name("family", quant))
    classifier = Classifier(path)
    assert classifier.metadata.precision == precision and classifier.labels == sorted(CLASSES)
    return classifier.predict(family.images)


@pytest.mark.slow
def test_the_float_model_learned_the_task(family: Prepared) -> None:
    assert float(np.mean(family.float_probs.argmax(1) == family.labels)) >= 0.7  # chance: 1/3


@pytest.mark.parametrize("fmt", FORMATS)
def test_fp32_of_the_untrained_family_matches_float(fmt: str, untrained_family: Prepared,
                                                    tmp_path: Path) -> None:
    probs = _export_and_run(untrained_family, fmt, "fp32", tmp_path)
    assert probs.shape == untrained_family.float_probs.shape
    assert float(np.max(np.abs(probs - untrained_family.float_probs))) <= FP32_TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_fp32_matches_float_by_tolerance(fmt: str, family: Prepared, tmp_path: Path) -> None:
    probs = _export_and_run(family, fmt, "fp32", tmp_path)
    assert probs.shape == family.float_probs.shape
    assert float(np.max(np.abs(probs - family.float_probs))) <= FP32_TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_int8_agrees_with_float(fmt: str, family: Prepared, tmp_path: Path) -> None:
    probs = _export_and_run(family, fmt, "int8", tmp_path)
    agreement = float(np.mean(probs.argmax(1) == family.float_probs.argmax(1)))
    assert agreement >= INT8_AGREEMENT, f"{fmt} int8 agrees with float on {agreement:.1%}"
