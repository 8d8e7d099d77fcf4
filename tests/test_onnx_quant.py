"""ONNX INT8 through NNCF's ONNX backend (the default) and ONNX Runtime's quantizer (a
remedy): export, gate, manifest record of the quantizer, and `edgecls run` on the result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers.cli import edgecls
from helpers.export import Prepared, assert_matches_float


@pytest.fixture(scope="module")
def exported(tiny_run: Path, tmp_path_factory) -> Path:
    from edgecls.export.pipeline import ExportConfig, export_run

    out = tmp_path_factory.mktemp("onnx_quant_out")
    preset = out / "nncf.yaml"  # NNCF is a remedy and a preset choice, not the default
    preset.write_text("count: 60\nselection: balanced\nseed: 0\nmethods:\n  onnx: nncf\n"
                      "remedy_count: 100\n")
    export_run(tiny_run, ExportConfig(out=out, formats=["onnx"], precisions=["int8"],
                                      calibration=str(preset)))
    return out


def test_nncf_onnx_int8_is_symmetric_qdq_and_passes_the_gate(exported: Path) -> None:
    import onnx

    record = json.loads((exported / "manifest.json").read_text())["artifacts"][0]
    assert record["passed"], record
    assert record["settings"]["quantizer"] == "nncf" and record["settings"]["method"] == "nncf"
    model = onnx.load(str(exported / record["path"]))
    ops = {node.op_type for node in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    weights = {t.name: t for t in model.graph.initializer}
    zero_points = [onnx.numpy_helper.to_array(weights[n.input[2]]) for n in model.graph.node
                   if n.op_type == "DequantizeLinear" and n.input[0] in weights
                   and weights[n.input[0]].data_type == onnx.TensorProto.INT8]
    assert zero_points and all(np.all(z == 0) for z in zero_points)  # symmetric INT8 weights
    meta = json.loads({p.key: p.value for p in model.metadata_props}["edgecls"])
    assert meta["precision"] == "int8"


def test_nncf_onnx_artifact_runs_through_edgecls_run(exported: Path, tiny_run: Path) -> None:
    from edgecls.data.split import Split

    split = Split.load(tiny_run / "split.json")
    first = Path(split.items("test")[0][0])
    folder = (first if first.is_absolute() else split.root / first).parent
    result = edgecls("run", str(exported / "model_int8.onnx"), "--source", str(folder), "--headless",
                     "--max-frames", "5")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 5
    assert sum(r["label"] == folder.name for r in records) >= 4, records


@pytest.mark.slow  # NNCF accuracy control; by default as the ONNX remedy in test_export_cli.py
def test_nncf_accuracy_control_matches_float(prepared: Prepared, tmp_path: Path) -> None:  # noqa: F811
    from edgecls.export.base import QuantizationConfig, get_exporter
    from edgecls.stats import DropBudget

    images = prepared.images[1::2].astype(np.uint8)
    quant = QuantizationConfig.for_int8(prepared.calibration, method="nncf_accuracy_control",
                                        max_drop=DropBudget(1.0), validation=(images, prepared.labels[1::2]))
    exporter = get_exporter("onnx")
    path = exporter.export(prepared.source, quant, tmp_path / "m.onnx")
    assert_matches_float(path, "int8", prepared)
    assert exporter.settings(quant)["quantizer"] == "nncf"
    assert exporter.settings(quant)["max_drop"] == 0.01  # the manifest keeps NNCF's fraction


def test_onnx_default_is_minmax_then_accuracy_control_and_percentile(prepared: Prepared) -> None:  # noqa: F811
    from edgecls.export.base import QuantizationConfig, get_exporter

    validation = (prepared.images[:8].astype(np.uint8), prepared.labels[:8])
    quant = QuantizationConfig.for_int8(prepared.calibration, validation=validation)
    assert get_exporter("onnx").settings(quant)["quantizer"] == "onnxruntime"
    remedies = get_exporter("onnx").remedies(prepared.source, quant, [quant])
    assert [r.config.method for r in remedies] == ["nncf_accuracy_control", "percentile"]
    assert get_exporter("onnx").settings(remedies[0].config)["quantizer"] == "nncf"
    assert remedies[0].config.validation is not None and remedies[1].config.validation is None
    assert len(remedies[1].config.calibration) <= 100  # Percentile keeps every activation in memory


def test_sqnr_exclusion_is_a_last_resort_for_onnxruntime_only(prepared: Prepared) -> None:  # noqa: F811
    from edgecls.export.base import QuantizationConfig, get_exporter

    exporter = get_exporter("onnx")
    nncf = QuantizationConfig.for_int8(prepared.calibration, method="nncf")
    assert exporter.last_resort(prepared.source, nncf) is None
    remedy = exporter.last_resort(prepared.source, QuantizationConfig.for_int8(prepared.calibration))
    assert remedy is not None and len(remedy.config.exclude) == 3 and remedy.config.method == "default"
