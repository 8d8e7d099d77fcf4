"""When INT8 remedies run: over budget (the whole ladder), or a real drop whose interval
reaches past the budget while its estimate is within it (one quick remedy only)."""

from __future__ import annotations

import numpy as np

from edgecls.export.base import QuantizationConfig, get_exporter
from edgecls.export.pipeline import OVER_BUDGET, REAL_AND_UNRESOLVED, remedy_trigger
from helpers.gate import two_class_validation as _validation


def test_an_estimate_over_budget_triggers_the_whole_ladder():
    result = _validation(4000, lost=60, gained=10)  # +1.25 pp
    assert remedy_trigger(result, 1.0) == OVER_BUDGET


def test_a_real_drop_reaching_past_the_budget_triggers_a_quick_remedy():
    # the shape of MobileNetV3-Large's TFLite drop: +0.79 [+0.28, +1.31] on 4,966 images
    result = _validation(4966, lost=104, gained=65)
    assert 0 < result.paired.low_pp and result.drop_pp < 1.0 < result.paired.high_pp
    assert remedy_trigger(result, 1.0) == REAL_AND_UNRESOLVED


def test_noise_or_a_resolved_drop_triggers_nothing():
    noise = _validation(855, lost=23, gained=18)  # +0.58 [-0.92, +2.13]: could be zero
    assert noise.paired.low_pp < 0 and remedy_trigger(noise, 1.0) is None
    resolved = _validation(20000, lost=120, gained=40)  # +0.40, interval inside 1 pp
    assert resolved.paired.low_pp > 0 and resolved.paired.high_pp < 1.0
    assert remedy_trigger(resolved, 1.0) is None


def test_only_tflite_remedies_are_quick():
    calibration = np.zeros((4, 8, 8, 3), np.uint8)
    validation = (np.zeros((4, 8, 8, 3), np.uint8), np.zeros(4, int))
    quant = QuantizationConfig.for_int8(calibration).replace(validation=validation)
    tflite = get_exporter("tflite").remedies(None, quant, [quant])  # type: ignore[arg-type]
    assert tflite and all(r.quick for r in tflite)
    for fmt in ("onnx", "openvino"):
        slow = get_exporter(fmt).remedies(None, quant, [quant])  # type: ignore[arg-type]
        assert slow and not slow[0].quick  # accuracy control first: minutes, not one conversion
