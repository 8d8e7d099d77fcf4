"""Model-agnostic explanations (RISE, occlusion) of any ``ExplainedModel``.

Needs only the model's ``predict``: an INT8 ``.tflite`` on a Raspberry Pi works as well
as a float Keras model. Imports no TensorFlow, directly or indirectly (tested).
"""

from __future__ import annotations

import time

import numpy as np

from edgecls.errors import ConfigError
from edgecls.explain.heatmap import Explanation, normalize
from edgecls.explain.model import ExplainedModel
from edgecls.explain.occlusion import OcclusionOptions, occlusion
from edgecls.explain.rise import RiseOptions, rise

AGNOSTIC_METHODS = ("rise", "occlusion")


def explain_agnostic(model: ExplainedModel, image_bgr: np.ndarray, classes: list[int],
                     method: str = "rise",
                     options: RiseOptions | OcclusionOptions | None = None) -> list[Explanation]:
    """Heatmaps of ``classes`` for one BGR image with RISE or occlusion.

    Args:
        model: any explained model (runtime artifact or Keras).
        image_bgr: the image as OpenCV reads it.
        classes: class indices to explain, best first.
        method: "rise" or "occlusion".
        options: the method's options (defaults: ``RiseOptions()`` / ``OcclusionOptions()``).

    Returns:
        One ``Explanation`` per class, in the order of ``classes``.
    """
    if method not in AGNOSTIC_METHODS:
        raise ConfigError(f"unknown model-agnostic method {method!r}", f"use one of {', '.join(AGNOSTIC_METHODS)}")
    options = options or (RiseOptions() if method == "rise" else OcclusionOptions())
    prepared = model.prepare(image_bgr)
    started = time.perf_counter()
    probabilities = model.predict(prepared[None])[0]
    run = rise if method == "rise" else occlusion
    saliency = run(model.predict, prepared, classes, model.baseline, options)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    return [Explanation(method=method, class_name=model.labels[c], class_index=c,
                        score=float(probabilities[c]), rank=_rank(probabilities, c),
                        heatmap=normalize(saliency[i]), seconds=seconds, options=options.to_dict())
            for i, c in enumerate(classes)]


def _rank(probabilities: np.ndarray, index: int) -> int:
    return int((probabilities > probabilities[index]).sum()) + 1
