"""The template test every exporter x precision passes: export a tiny Keras model,
reload it through the edgecls runtime, compare with the float model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers.export import Prepared, assert_matches_float

FORMATS = ("tflite", "onnx", "openvino")
PRECISIONS = ("fp32", "fp16", "dynamic", "int8")
@pytest.fixture(scope="module")
def artifacts(prepared: Prepared, tmp_path_factory) -> dict:
    """(format, precision) -> exported path; each artifact is exported once per module."""
    cache: dict = {}
    out = tmp_path_factory.mktemp("artifacts")

    def get(fmt: str, precision: str) -> Path:
        from edgecls.export.base import QuantizationConfig, get_exporter

        if (fmt, precision) not in cache:
            exporter = get_exporter(fmt)
            quant = QuantizationConfig.for_precision(precision, calibration=prepared.calibration)
            cache[fmt, precision] = exporter.export(
                prepared.source, quant, out / exporter.artifact_name("tiny", quant))
        return cache[fmt, precision]

    return get


def test_tiny_model_learned_the_task(prepared: Prepared) -> None:
    accuracy = np.mean(prepared.float_probs.argmax(1) == prepared.labels)
    assert accuracy >= 0.9


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_exporter_matches_float(fmt: str, precision: str, artifacts, prepared: Prepared) -> None:
    path = artifacts(fmt, precision)
    assert path.is_file() and path.stat().st_size > 0
    assert_matches_float(path, precision, prepared)


def test_tflite_int8_is_full_integer_with_selected_io(artifacts, prepared, tmp_path) -> None:
    from edgecls.export.base import QuantizationConfig, get_exporter
    from edgecls.runtime import load_backend

    assert load_backend(artifacts("tflite", "int8")).input_info.dtype == "uint8"
    quant = QuantizationConfig.for_int8(prepared.calibration, io_type="int8")
    path = get_exporter("tflite").export(prepared.source, quant, tmp_path / "m.tflite")
    backend = load_backend(path)
    assert backend.input_info.dtype == "int8"
    assert backend.read_metadata().input_quantization == backend.input_info.quantization
    assert_matches_float(path, "int8", prepared)


def test_openvino_writes_the_xml_bin_pair_only(artifacts) -> None:
    xml = artifacts("openvino", "int8")
    assert xml.with_suffix(".bin").is_file()
    assert not [p for p in xml.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_onnx_calibration_methods(method: str, prepared: Prepared, tmp_path: Path) -> None:
    from edgecls.export.base import QuantizationConfig, get_exporter

    quant = QuantizationConfig.for_int8(prepared.calibration, method=method)
    path = get_exporter("onnx").export(prepared.source, quant, tmp_path / "m.onnx")
    assert_matches_float(path, "int8", prepared)


def test_unknown_precision_for_format_is_a_user_error() -> None:
    from edgecls.errors import ConfigError
    from edgecls.export.base import QuantizationConfig

    with pytest.raises(ConfigError, match="unknown precision 'int4'"):
        QuantizationConfig.for_precision("int4")
    with pytest.raises(ConfigError, match="calibration images"):
        QuantizationConfig.for_int8(np.zeros((0, 4, 4, 3)))


def test_onnx_sensitive_nodes_are_measured_conv_or_matmul(prepared: Prepared) -> None:
    import onnx

    from edgecls.export.base import QuantizationConfig
    from edgecls.export.onnx import float_model, sensitive_nodes

    path = float_model(prepared.source)
    quant = QuantizationConfig.for_int8(prepared.calibration)
    nodes = sensitive_nodes(path, quant, prepared.source.work_dir, count=2, images=8)
    kinds = {n.name: n.op_type for n in onnx.load(str(path)).graph.node}
    assert len(nodes) == 2 and all(kinds[n] in ("Conv", "MatMul", "Gemm") for n in nodes)


@pytest.mark.slow  # NNCF accuracy control; by default through export_run in test_export_tuned_rows.py
def test_openvino_accuracy_control(prepared: Prepared, tmp_path: Path) -> None:
    from edgecls.export.base import QuantizationConfig, get_exporter
    from edgecls.stats import DropBudget

    images = prepared.images[1::2].astype(np.uint8)
    quant = QuantizationConfig.for_int8(prepared.calibration.astype(np.uint8),
                                        method="accuracy_control", max_drop=DropBudget(1.0),
                                        validation=(images, prepared.labels[1::2]))
    path = get_exporter("openvino").export(prepared.source, quant, tmp_path / "m.xml")
    assert_matches_float(path, "int8", prepared)


def test_tflite_denylist_keeps_the_most_sensitive_layer_in_float(prepared: Prepared, tmp_path: Path) -> None:
    from edgecls.export.base import QuantizationConfig, get_exporter
    from edgecls.export.tflite import sensitive_layers

    quant = QuantizationConfig.for_int8(prepared.calibration)
    layers = sensitive_layers(prepared.source, quant)
    assert layers and all(isinstance(name, str) and name for name in layers)
    remedy = get_exporter("tflite").last_resort(prepared.source, quant)
    assert remedy and remedy.config.exclude == tuple(layers)
    path = get_exporter("tflite").export(prepared.source, remedy.config, tmp_path / "m.tflite")
    plain = get_exporter("tflite").export(prepared.source, quant, tmp_path / "plain.tflite")
    assert path.read_bytes() != plain.read_bytes()  # the denylisted layer really changed the model
    assert _float_tensors(path) > _float_tensors(plain) == 0  # the layer runs in float
    assert_matches_float(path, "int8", prepared)  # with the asked uint8 I/O (the export checks)


def _float_tensors(model: Path) -> int:
    """How many tensors of ``model`` are float32 (a full-integer one with uint8 I/O: none)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    graph = flatbuffer_utils.read_model_from_bytearray(bytearray(model.read_bytes())).subgraphs[0]
    return sum(t.type == schema.TensorType.FLOAT32 for t in graph.tensors)
