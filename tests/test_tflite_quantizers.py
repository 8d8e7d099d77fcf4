"""The TFLite INT8 paths besides the converter's own (``export.tflite_quant``) on a tiny
model: each exports an artifact the TF-free runtime runs with its metadata, that agrees
with the float model, and the manifest settings name the path that made it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgecls.errors import ConfigError
from edgecls.export.base import QuantizationConfig
from edgecls.export.tflite import (DEFAULT_QUANTIZER, REMEDY_QUANTIZERS, TFLiteExporter,
                                   float_model)
from edgecls.export.tflite_quant import (AI_EDGE_BIAS_CORRECTION, AI_EDGE_QUANTIZER,
                                         BIAS_CORRECTION, CONVERTER, correct_biases,
                                         layer_errors)
from helpers.export import Prepared, assert_matches_float


@pytest.mark.parametrize("path", [AI_EDGE_QUANTIZER, BIAS_CORRECTION, AI_EDGE_BIAS_CORRECTION])
def test_path_exports_an_artifact_the_runtime_runs(path: str, prepared: Prepared,
                                                   tmp_path: Path) -> None:
    from edgecls.runtime import load_backend

    exporter = TFLiteExporter()
    quant = QuantizationConfig.for_int8(prepared.calibration, method=path)
    artifact = exporter.export(prepared.source, quant, tmp_path / "m.tflite")
    backend = load_backend(artifact)
    assert backend.input_info.dtype == "uint8"  # the converter's default I/O, kept
    assert backend.read_metadata().input_quantization == backend.input_info.quantization
    assert_matches_float(artifact, "int8", prepared)  # metadata read back, top-1 agrees
    assert exporter.settings(quant)["quantizer"] == path


def test_default_path_is_recorded_by_name(prepared: Prepared) -> None:
    quant = QuantizationConfig.for_int8(prepared.calibration)
    assert TFLiteExporter().settings(quant)["quantizer"] == DEFAULT_QUANTIZER


def test_ai_edge_quantizer_honours_int8_io(prepared: Prepared, tmp_path: Path) -> None:
    from edgecls.runtime import load_backend

    quant = QuantizationConfig.for_int8(prepared.calibration, method=AI_EDGE_QUANTIZER,
                                        io_type="int8")
    artifact = TFLiteExporter().export(prepared.source, quant, tmp_path / "m.tflite")
    assert load_backend(artifact).input_info.dtype == "int8"
    assert_matches_float(artifact, "int8", prepared)


def test_an_int8_path_that_ignores_the_asked_io_type_is_refused(prepared: Prepared, tmp_path: Path,
                                                               monkeypatch) -> None:
    """A quantizer leaving int8 I/O where uint8 was asked (a file MediaPipe refuses)
    is a clear error, so the gate's remedy records it instead of keeping the file."""
    from edgecls.errors import ModelError
    from edgecls.export import tflite_quant

    real = tflite_quant.ai_edge_quantize
    monkeypatch.setattr(tflite_quant, "ai_edge_quantize",
                        lambda model, images, io_type: real(model, images, "int8"))
    quant = QuantizationConfig.for_int8(prepared.calibration, method=AI_EDGE_QUANTIZER)
    with pytest.raises(ModelError, match="made int8 input and int8 output where uint8 was asked"):
        TFLiteExporter().export(prepared.source, quant, tmp_path / "m.tflite")
    assert not (tmp_path / "m.tflite").exists()


def test_bias_correction_removes_the_mean_error_of_each_layer(prepared: Prepared) -> None:
    from edgecls.export.tflite import convert

    quant = QuantizationConfig.for_int8(prepared.calibration, method=CONVERTER)
    int8, reference = convert(prepared.source, quant), float_model(prepared.source)
    images = prepared.calibration.astype(np.float32)
    corrected, count = correct_biases(int8, reference, images)
    before = layer_errors(int8, reference, images)
    after = layer_errors(corrected, reference, images)
    assert count == len(before) == len(after) >= 3  # every conv and the dense layer
    steps = [np.abs(error) / step for error, step in before]
    assert max(s.max() for s in steps) > 1.0  # quantization left errors of several bias steps
    for error, step in after:  # ... and what is left is the int32 bias rounding
        assert np.all(np.abs(error) <= 0.5 * step + 1e-9)


def test_remedies_offer_the_untried_paths_in_order(prepared: Prepared, monkeypatch) -> None:
    from edgecls.export import tflite

    ladder = (CONVERTER, AI_EDGE_QUANTIZER)
    monkeypatch.setattr(tflite, "REMEDY_QUANTIZERS", ladder)
    exporter = TFLiteExporter()
    quant = QuantizationConfig.for_int8(prepared.calibration)
    offered = [r.config.method for r in exporter.remedies(prepared.source, quant, [quant])]
    assert offered == [p for p in ladder if p != DEFAULT_QUANTIZER]
    everything = [quant.replace(method=p) for p in (DEFAULT_QUANTIZER, *ladder)]
    assert exporter.remedies(prepared.source, quant, everything) == []


def test_unknown_tflite_method_is_a_user_error(prepared: Prepared) -> None:
    quant = QuantizationConfig.for_int8(prepared.calibration, method="kmeans")
    with pytest.raises(ConfigError, match="unknown TFLite calibration method"):
        TFLiteExporter().settings(quant)


def test_manifest_names_the_path_of_each_attempt_and_keeps_only_improvements(
        tiny_run: Path, tmp_path: Path) -> None:
    from edgecls.export.pipeline import ExportConfig, export_run
    from helpers.images import black_image_folder

    config = ExportConfig(out=tmp_path / "out", formats=["tflite"], precisions=["int8"],
                          calibration=str(black_image_folder(tmp_path / "calib")), max_drop=0.0)
    artifact = export_run(tiny_run, config).artifacts[0]
    assert artifact.remedies  # a black calibration image misses a 0 pp budget
    drops = [artifact.drop_pp] + [r.drop_pp for r in artifact.remedies if r.drop_pp is not None]
    assert artifact.drop_pp == min(drops)  # the best attempt is the one published
    kept = [r for r in artifact.remedies if r.kept]
    assert len(kept) <= 1
    for record in artifact.remedies:  # an attempt no better than an earlier one is not kept
        if record.drop_pp is not None and record.drop_pp > min(drops):
            assert not record.kept
    denylist = bool(kept) and "denylist" in kept[0].description
    path = next((p for p in REMEDY_QUANTIZERS if kept and kept[0].description.startswith(f"{p} ")),
                CONVERTER if denylist else DEFAULT_QUANTIZER)
    assert artifact.settings["quantizer"] == path
