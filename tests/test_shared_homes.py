"""The shared homes every stage reads: metrics, formats, the registry and the run's float model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgecls import formats, metrics
from edgecls.errors import ConfigError, EdgeclsError, ModelError
from edgecls.registry import Registry


def test_softmax_and_kl_divergence() -> None:
    scores = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, 1000.0]], dtype=np.float32)
    probs = metrics.softmax(scores)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs[0], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum(), rtol=1e-6)
    np.testing.assert_allclose(probs[1], [1 / 3] * 3, rtol=1e-6)  # no overflow
    p = np.array([[0.5, 0.5]])
    q = np.array([[0.9, 0.1]])
    assert metrics.kl_divergence(p, p) == pytest.approx(0.0, abs=1e-12)
    assert metrics.kl_divergence(p, q) == pytest.approx(0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1))


def test_per_class_scores_with_outside_support_and_balanced_accuracy() -> None:
    matrix = np.array([[3, 1, 0], [0, 2, 0], [0, 0, 0]])
    support = np.array([5, 2, 0])  # one class-0 image was predicted outside the matrix
    scores = metrics.per_class_scores(matrix, support=support)
    np.testing.assert_allclose(scores["recall"], [0.6, 1.0, 0.0])
    np.testing.assert_allclose(scores["precision"], [1.0, 2 / 3, 0.0])
    f1 = [2 * 0.6 / 1.6, 2 * (2 / 3) / (5 / 3)]
    assert metrics.macro_f1(matrix, support) == pytest.approx(np.mean(f1))  # class 2 has no samples
    assert metrics.balanced_accuracy(matrix, support) == pytest.approx(0.8)
    assert metrics.balanced_accuracy(np.zeros((2, 2))) == 0.0


def test_top_k_indices_breaks_ties_by_index() -> None:
    scores = np.array([[0, 5, 5, 0, 5]], dtype=np.uint8)  # int8-style saturated outputs
    assert metrics.top_k_indices(scores, 4).tolist() == [[1, 2, 4, 0]]
    assert metrics.top_k_accuracy(np.array([3]), scores, 4) == 0.0


def test_formats_describe_suffixes_side_files_exporters_and_backends(tmp_path: Path) -> None:
    xml = tmp_path / "model_int8.XML"
    xml.write_text("<net/>")
    assert formats.format_for_path(xml) is formats.OPENVINO
    assert formats.artifact_files(xml) == [xml]  # the .bin is absent
    xml.with_suffix(".bin").write_bytes(b"\0" * 10)
    assert formats.artifact_files(xml) == [xml, xml.with_suffix(".bin")]
    assert formats.artifact_size(xml) == len("<net/>") + 10
    assert formats.artifact_size(tmp_path / "missing.onnx") == 0
    assert formats.format_for_path("a.pb") is None
    assert formats.get_format("tflite").backend == "litert"
    with pytest.raises(ConfigError, match="unknown export format 'pb'"):
        formats.get_format("pb")
    assert formats.is_image("x/IMG_1.TIF") and not formats.is_image("notes.txt")


def test_formats_agree_with_the_registered_exporters_and_backends() -> None:
    from edgecls.export.base import EXPORTERS, get_exporter
    from edgecls.runtime.backends import BACKENDS, backend_for_suffix

    for fmt in formats.FORMATS:
        exporter = get_exporter(fmt.exporter)
        assert exporter.format is fmt and exporter.suffix == fmt.suffix
        assert backend_for_suffix(f"m{fmt.suffix}") is BACKENDS.get(fmt.backend)
        assert BACKENDS.get(fmt.backend).format is fmt
    assert EXPORTERS.list() == sorted(f.exporter for f in formats.FORMATS)
    with pytest.raises(ModelError, match=r"one of: \.tflite, \.onnx, \.xml"):
        backend_for_suffix("model.pb")


def test_registry_loads_its_modules_on_first_lookup() -> None:
    registry: Registry = Registry("widget", modules=["edgecls.no_such_module"])
    assert registry.list() == []  # a module that is not installed is skipped
    with pytest.raises(EdgeclsError, match="unknown widget 'x'"):
        registry.get("x")


def test_float_model_load_size_and_predict(tmp_path: Path) -> None:
    keras = pytest.importorskip("keras")
    from edgecls.models.float_model import input_size, load_float_model, predict

    inputs = keras.Input((8, 6, 3))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inputs))
    path = tmp_path / "best.keras"
    keras.Model(inputs, outputs).save(path)
    model = load_float_model(path)
    assert input_size(model) == (8, 6)
    images = np.random.default_rng(0).integers(0, 255, (5, 8, 6, 3), dtype=np.uint8)
    probs = predict(model, images, batch_size=2)
    assert probs.shape == (5, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, model.predict(images.astype(np.float32), verbose=0), rtol=1e-5)
    path.with_name("broken.keras").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="cannot load the Keras model"):
        load_float_model(path.with_name("broken.keras"))
    any_size = keras.Input((None, None, 3))
    dynamic = keras.Model(any_size, keras.layers.GlobalAveragePooling2D()(any_size))
    with pytest.raises(ModelError, match="fixed H, W"):
        input_size(dynamic)
