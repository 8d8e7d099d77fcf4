"""edgecls: folder of labelled images -> validated INT8 classifier on the edge.

The Python API mirrors the command line, one verb per command::

    import edgecls
    edgecls.check_data("flowers/")                                   # edgecls data check
    run = edgecls.Run.train(data="flowers/", out="runs/flowers")     # edgecls train
    run.evaluate(split="test")                                       # edgecls evaluate
    result = run.export(formats="tflite", precisions="int8")         # edgecls export
    edgecls.benchmark(result.paths, data="runs/flowers")             # edgecls bench (hosts=...)
    edgecls.report(["pi.json", "laptop.json"], html="report.html")   # edgecls report
    run.explain("photo.jpg")                                         # edgecls explain
    edgecls.tune_model(data="flowers/", out="tune/", max_latency="10ms")  # edgecls tune
    edgecls.Classifier("model_int8.tflite").classify(frame)          # edgecls run

Names are imported on first use, so ``import edgecls`` imports nothing heavy:
``edgecls.runtime`` must stay importable on a device that has numpy, OpenCV and one
inference backend, and no TensorFlow. No name here is also a subpackage's name
(``edgecls.train``, ``edgecls.bench``, ``edgecls.explain`` are packages): importing a
subpackage sets that attribute and would replace a function of the same name.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a few ms on a Pi)

__version__ = "0.1.0"

# Public name -> module that defines it.
_API = {
    "check_data": "edgecls.api.data",
    "Run": "edgecls.api.run",
    "benchmark": "edgecls.api.benching",
    "report": "edgecls.api.benching",
    "explain_images": "edgecls.api.explaining",
    "tune_model": "edgecls.api.tuning",
    "TuningResult": "edgecls.api.tuning",
    "Classifier": "edgecls.runtime.classifier",
    "DataReport": "edgecls.api.results",
    "Evaluation": "edgecls.api.results",
    "BenchResult": "edgecls.api.results",
    "ExportResult": "edgecls.api.exporting",
    "Explanations": "edgecls.api.explaining",
    "EdgeclsError": "edgecls.errors",
    "DataError": "edgecls.errors",
    "ModelError": "edgecls.errors",
    "ConfigError": "edgecls.errors",
    "SourceError": "edgecls.errors",
    "GateError": "edgecls.errors",
}

__all__ = [
    "BenchResult", "Classifier", "ConfigError", "DataError", "DataReport", "EdgeclsError", "Evaluation",
    "ExportResult", "Explanations", "GateError", "ModelError", "Run", "SourceError", "TuningResult", "benchmark",
    "check_data", "explain_images", "report", "tune_model",
]  # the keys of _API (a test keeps them equal)

if TYPE_CHECKING:
    from edgecls.api.benching import benchmark, report
    from edgecls.api.data import check_data
    from edgecls.api.explaining import Explanations, explain_images
    from edgecls.api.exporting import ExportResult
    from edgecls.api.results import BenchResult, DataReport, Evaluation
    from edgecls.api.run import Run
    from edgecls.api.tuning import TuningResult, tune_model
    from edgecls.errors import ConfigError, DataError, EdgeclsError, GateError, ModelError, SourceError
    from edgecls.runtime.classifier import Classifier


def __getattr__(name: str) -> object:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'edgecls' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
