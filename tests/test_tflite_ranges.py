"""The ``converter+percentile-ranges`` TFLite INT8 path (``export.tflite_ranges``) on a tiny
model with the real converter and LiteRT: the converter's calibrate-only pass and MLIR
quantizer reproduce the converter's INT8 model, percentile ranges clip a rare outlier the
converter's min/max keeps, the artifact runs through the runtime, and the manifest names
the path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgecls.errors import ModelError
from edgecls.export import tflite_ranges
from edgecls.export.base import QuantizationConfig
from edgecls.export.tflite import REMEDY_QUANTIZERS, TFLiteExporter, calibrated_model, convert
from edgecls.export.tflite_quant import CONVERTER, PERCENTILE_RANGES, QUANTIZERS
from helpers.export import Prepared, assert_matches_float
from helpers.runs import SIZE


def _low_contrast_with_one_outlier(count: int = 60) -> np.ndarray:
    """Grey images of little contrast; one of them has a single saturated corner pixel,
    which reaches one position of the first convolution's output (stride 2)."""
    rng = np.random.default_rng(0)
    images = rng.uniform(118, 138, (count, SIZE, SIZE, 3)).astype(np.float32)
    images[count // 2, 0, 0] = (255.0, 0.0, 255.0)
    return images


def _scales(model: bytes) -> dict[str, float]:
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_content=model).get_tensor_details()
    return {d["name"]: float(d["quantization"][0]) for d in details if d["quantization"][0]}


def test_calibrated_model_and_mlir_quantizer_reproduce_the_converter(
        prepared: Prepared) -> None:
    quant = QuantizationConfig.for_int8(prepared.calibration)
    calibrated = calibrated_model(prepared.source, quant)
    assert tflite_ranges.tensor_ranges(calibrated)  # the activations carry min/max
    ours = tflite_ranges.quantize(calibrated, quant.io_type)
    assert _scales(ours) == _scales(convert(prepared.source, quant))


def test_percentile_ranges_clip_a_rare_outlier_the_converter_keeps(prepared: Prepared) -> None:
    images = _low_contrast_with_one_outlier()
    quant = QuantizationConfig.for_int8(images)
    calibrated = calibrated_model(prepared.source, quant)
    before = tflite_ranges.tensor_ranges(calibrated)
    ranges = tflite_ranges.percentile_ranges(calibrated, images)
    after = tflite_ranges.tensor_ranges(tflite_ranges.with_ranges(calibrated, ranges))
    assert after.keys() == before.keys()
    for name, (low, high) in after.items():  # never wider than the absolute extremes
        assert before[name][0] - 1e-6 <= low <= 0.0 <= high <= before[name][1] + 1e-6
    width = {name: (after[name][1] - after[name][0]) / (hi - lo)
             for name, (lo, hi) in before.items() if hi > lo}
    assert min(width.values()) < 0.5  # the outlier had at least doubled some range
    # ... and the INT8 model's steps follow: finer on that tensor than the converter's
    ours = _scales(tflite_ranges.quantize(tflite_ranges.with_ranges(calibrated, ranges), "uint8"))
    theirs = _scales(convert(prepared.source, quant))
    narrowest = min(width, key=width.get)
    assert ours[narrowest] < 0.6 * theirs[narrowest]
    # without the outlier image the converter's own range is about as narrow
    clean = np.delete(images, len(images) // 2, axis=0)
    clean_ranges = tflite_ranges.tensor_ranges(calibrated_model(prepared.source,
                                                                quant.replace(calibration=clean)))
    assert after[narrowest][1] <= 1.2 * clean_ranges[narrowest][1] + 1e-6


def test_path_exports_a_full_int8_artifact_the_runtime_runs(prepared: Prepared,
                                                            tmp_path: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    from edgecls.runtime import load_backend

    exporter = TFLiteExporter()
    quant = QuantizationConfig.for_int8(prepared.calibration, method=PERCENTILE_RANGES)
    artifact = exporter.export(prepared.source, quant, tmp_path / "m.tflite")
    backend = load_backend(artifact)
    assert backend.input_info.dtype == "uint8"  # the converter's I/O
    interpreter = Interpreter(model_path=str(artifact))
    assert interpreter.get_output_details()[0]["dtype"] == np.uint8
    float_ops = [d["name"] for d in interpreter.get_tensor_details()
                 if d["dtype"] == np.float32 and not d["quantization"][0]
                 and d["name"] in _scales(convert(prepared.source, quant))]
    assert not float_ops  # every activation the converter quantizes is quantized here too
    assert_matches_float(artifact, "int8", prepared)
    assert exporter.settings(quant)["quantizer"] == PERCENTILE_RANGES
    assert PERCENTILE_RANGES in QUANTIZERS and PERCENTILE_RANGES in REMEDY_QUANTIZERS


def test_a_model_without_calibrated_ranges_is_a_model_error(prepared: Prepared) -> None:
    from edgecls.export.tflite import float_model

    plain = float_model(prepared.source)  # converted, but never calibrated
    with pytest.raises(ModelError, match="no calibrated ranges"):
        tflite_ranges.quantize_with_percentile_ranges(plain, prepared.calibration, "uint8")
    calibrated = calibrated_model(prepared.source,
                                  QuantizationConfig.for_int8(prepared.calibration))
    with pytest.raises(ModelError, match="not a TFLite flatbuffer"):
        tflite_ranges.percentile_ranges(calibrated[: len(calibrated) // 3],
                                        prepared.calibration)


def test_manifest_names_the_percentile_path(tiny_run: Path, tmp_path: Path) -> None:
    from edgecls.export.pipeline import ExportConfig, export_run

    preset = tmp_path / "percentile.yaml"
    preset.write_text(f"count: 30\nselection: balanced\nseed: 0\n"
                      f"methods:\n  tflite: {PERCENTILE_RANGES}\n")
    config = ExportConfig(out=tmp_path / "out", formats=["tflite"], precisions=["int8"],
                          calibration=str(preset), remedies=False)
    artifact = export_run(tiny_run, config).artifacts[0]
    assert artifact.settings["quantizer"] == PERCENTILE_RANGES
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [a["settings"]["quantizer"] for a in manifest["artifacts"]] == [PERCENTILE_RANGES]
    assert CONVERTER not in json.dumps(manifest["artifacts"][0]["settings"])


def test_streamed_tails_give_the_exact_nearest_rank_percentiles() -> None:
    rng = np.random.default_rng(1)
    batches = [rng.standard_t(3, (7, 5, 4)).astype(np.float32) for _ in range(40)]
    everything = np.sort(np.concatenate([b.reshape(-1) for b in batches]))
    for percentile in (99.0, 99.9, 100.0):
        tails = tflite_ranges.Tails(max(1, int(np.ceil(everything.size * (1 - percentile / 100)))))
        for batch in batches:
            tails.add(batch)
        rank = max(1, int(np.ceil(everything.size * (100.0 - percentile) / 100.0)))
        assert tails.value_range(percentile) == (everything[rank - 1], everything[-rank])
    assert tails.value_range(100.0) == (everything[0], everything[-1])
