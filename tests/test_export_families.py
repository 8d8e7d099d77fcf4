"""A real model family through the whole export: MobileNetV3-Small (hard-swish, squeeze-
and-excitation, the ops tiny test nets lack) at 32 px, briefly trained, exported by
``export_run`` to TFLite, ONNX and OpenVINO, each artifact run by the edgecls runtime and
compared here with the float Keras model: fp32 by tolerance, int8 by agreement."""

from __future__ import annotations


import numpy as np
import pytest

from helpers.runs import CLASSES, SIZE, make_run

FORMATS = ("tflite", "onnx", "openvino")
FP32_TOLERANCE = 1e-4  # largest |p - p_float| of one class probability
INT8_AGREEMENT = 0.85  # least share of test images with the float model's top-1


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """(run, manifest, test images, test labels, float probabilities)."""
    from edgecls.data.pipeline import load_arrays
    from edgecls.data.split import Split
    from edgecls.export.pipeline import ExportConfig, export_run
    from edgecls.models import build
    from edgecls.models.float_model import load_float_model, predict

    root = tmp_path_factory.mktemp("family")
    run = make_run(root, epochs=6, learning_rate=0.003, model=lambda: build(
        "mobilenet_v3_small", num_classes=len(CLASSES), input_size=SIZE, include_top=False))
    manifest = export_run(run, ExportConfig(out=root / "export", formats=list(FORMATS),
                                            precisions=["fp32", "int8"], max_drop=100.0,
                                            remedies=False))
    images, labels = load_arrays(Split.load(run / "split.json").items("test"), (SIZE, SIZE))
    float_probs = predict(load_float_model(run / "best.keras"), images)
    return root / "export", manifest, images.astype(np.float32), labels, float_probs


def _artifact(manifest, fmt: str, precision: str):
    return next(a for a in manifest.artifacts if (a.format, a.precision) == (fmt, precision))


@pytest.mark.parametrize("fmt", FORMATS)
def test_fp32_artifact_matches_float_by_tolerance(fmt: str, exported) -> None:
    from edgecls.runtime import Classifier

    out, manifest, images, labels, float_probs = exported
    artifact = _artifact(manifest, fmt, "fp32")
    probs = Classifier(out / artifact.path).predict(images)
    assert probs.shape == float_probs.shape
    assert float(np.max(np.abs(probs - float_probs))) <= FP32_TOLERANCE
    assert artifact.agreement == 1.0 and artifact.drop_pp == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("fmt", FORMATS)
def test_int8_artifact_agrees_with_float(fmt: str, exported) -> None:
    from edgecls.runtime import Classifier, load_backend

    out, manifest, images, labels, float_probs = exported
    artifact = _artifact(manifest, fmt, "int8")
    probs = Classifier(out / artifact.path).predict(images)
    agreement = float(np.mean(probs.argmax(1) == float_probs.argmax(1)))
    assert agreement >= INT8_AGREEMENT
    assert artifact.agreement == pytest.approx(agreement, abs=1e-6)  # the gate saw the same
    assert artifact.accuracy == pytest.approx(float(np.mean(probs.argmax(1) == labels)), abs=1e-6)
    if fmt == "tflite":  # full integer: the input tensor itself is quantized
        assert load_backend(out / artifact.path).input_info.dtype == "uint8"


def test_the_float_model_learned_the_task(exported) -> None:
    _, manifest, _, labels, float_probs = exported
    assert manifest.float_accuracy == pytest.approx(float(np.mean(float_probs.argmax(1) == labels)))
    assert manifest.float_accuracy >= 0.8
