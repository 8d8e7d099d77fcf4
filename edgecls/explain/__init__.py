"""Explain: what a classifier looks at, for float Keras models and any exported artifact.

- Model-agnostic RISE and occlusion (``agnostic``, ``rise``, ``occlusion``) run through
  ``edgecls.runtime``: numpy + OpenCV + one backend, no TensorFlow, so they work on a Pi.
- Grad-CAM / Grad-CAM++ (``gradcam``) for the float Keras model; TensorFlow is imported
  only when it runs.
- ``compare`` measures how much two heatmaps differ (float vs INT8), ``faithfulness``
  scores heatmaps by deletion/insertion AUC, ``render`` draws them with OpenCV.

Example (a notebook)::

    from edgecls.explain import ExplainSettings, explain, save_report
    report = explain("runs/flowers", "photos/", ExplainSettings(top_k=2),
                     compare="runs/flowers/export/model_int8.tflite")
    save_report(report, "explained/")
"""

from edgecls.explain.api import (
    ExplainReport,
    ExplainSettings,
    ImageResult,
    explain,
    load_model,
)
from edgecls.explain.compare import HeatmapDifference, heatmap_difference
from edgecls.explain.heatmap import Explanation
from edgecls.explain.occlusion import OcclusionOptions
from edgecls.explain.output import save_report
from edgecls.explain.rise import RiseOptions

__all__ = [
    "ExplainReport", "ExplainSettings", "Explanation", "HeatmapDifference", "ImageResult",
    "OcclusionOptions", "RiseOptions", "explain", "heatmap_difference", "load_model", "save_report",
]
