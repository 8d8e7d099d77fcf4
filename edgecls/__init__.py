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
    edgecls.Classifier("model_int8.tflite").classify(frame)          # one frame
    edgecls.run_live("model_int8.tflite", source="video.mp4", jsonl="out.jsonl")  # edgecls run
    edgecls.deploy("model_int8.tflite", host="pi@cam1", service=True)  # edgecls deploy
    edgecls.collect(["pi@cam1", "pi@cam2"], into="inbox/")           # edgecls collect
    edgecls.inspect_model("model_int8.tflite")                       # edgecls inspect
    edgecls.list_targets(); edgecls.show_target("raspberry-pi-5")    # edgecls targets list|show
    edgecls.list_models("mobilenet*")                                # edgecls models list
    edgecls.compare_runs("runs/new", "runs/old")                     # edgecls compare
    edgecls.review_inbox("inbox/", "flowers/", wait=False)           # edgecls review
    edgecls.tune_model(data="flowers/", out="tune/", max_latency="10ms")  # edgecls tune

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
    "write_digits": "edgecls.api.data",
    "Run": "edgecls.api.run",
    "benchmark": "edgecls.api.benching",
    "report": "edgecls.api.benching",
    "explain_images": "edgecls.api.explaining",
    "run_live": "edgecls.api.live",
    "LiveSummary": "edgecls.api.live",
    "deploy": "edgecls.api.devices",
    "collect": "edgecls.api.devices",
    "Deployment": "edgecls.api.devices",
    "CollectResult": "edgecls.api.devices",
    "tune_model": "edgecls.api.tuning",
    "TuningResult": "edgecls.api.tuning",
    "Classifier": "edgecls.runtime.classifier",
    "compare_runs": "edgecls.api.comparing",
    "inspect_model": "edgecls.api.inspecting",
    "list_models": "edgecls.api.catalog",
    "list_targets": "edgecls.api.catalog",
    "review_inbox": "edgecls.api.reviewing",
    "show_target": "edgecls.api.catalog",
    "undo_label": "edgecls.api.reviewing",
    "ModelComparison": "edgecls.api.comparing",
    "ModelDescription": "edgecls.api.inspecting",
    "ModelList": "edgecls.api.catalog",
    "ReviewPage": "edgecls.api.reviewing",
    "TargetList": "edgecls.api.catalog",
    "TargetProfile": "edgecls.api.catalog",
    "UndoneDecision": "edgecls.api.reviewing",
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
    "BenchResult", "Classifier", "CollectResult", "ConfigError", "DataError", "DataReport", "Deployment",
    "EdgeclsError", "Evaluation", "ExportResult", "Explanations", "GateError", "LiveSummary", "ModelComparison",
    "ModelDescription", "ModelError", "ModelList", "ReviewPage", "Run", "SourceError", "TargetList",
    "TargetProfile", "TuningResult", "UndoneDecision", "benchmark", "check_data", "collect", "compare_runs",
    "deploy", "explain_images", "inspect_model", "list_models", "list_targets", "report", "review_inbox",
    "run_live", "show_target", "tune_model", "undo_label", "write_digits",
]  # the keys of _API (a test keeps them equal)

if TYPE_CHECKING:
    from edgecls.api.benching import benchmark, report
    from edgecls.api.catalog import ModelList, TargetList, TargetProfile, list_models, list_targets, show_target
    from edgecls.api.comparing import ModelComparison, compare_runs
    from edgecls.api.data import check_data, write_digits
    from edgecls.api.explaining import Explanations, explain_images
    from edgecls.api.exporting import ExportResult
    from edgecls.api.inspecting import ModelDescription, inspect_model
    from edgecls.api.devices import CollectResult, Deployment, collect, deploy
    from edgecls.api.live import LiveSummary, run_live
    from edgecls.api.results import BenchResult, DataReport, Evaluation
    from edgecls.api.reviewing import ReviewPage, UndoneDecision, review_inbox, undo_label
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
