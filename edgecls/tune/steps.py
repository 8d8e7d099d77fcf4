"""The stages a search drives, behind one small seam: training, structured pruning, the
gated export, the bench (here or over ssh) and the untrained INT8 artifact that latency is
measured on. Everything ``tune`` does to a model goes through these functions, so they can
be switched to the Python API facade without touching the search.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgecls.errors import EdgeclsError
from edgecls.tune.space import Signature

CALIBRATION_IMAGES = 8  # the latency artifact's weights are untrained: its ranges do not matter
LATENCY_RUNS = 50
LATENCY_WARMUP = 10


def train_run(config: Any, callbacks: Sequence[Any] = (), evaluate_test: bool = True) -> Any:
    """``edgecls train`` on ``config`` (a ``TrainConfig``); returns its ``TrainResult``."""
    from edgecls.train.fit import train

    return train(config, callbacks=callbacks, evaluate_test=evaluate_test)


def prune_run(run_dir: Path, out_dir: Path, mac_reduction: float, epochs: int, on_epoch: Any = None,
              score_on: str = "test") -> Any:
    """``edgecls prune --structured --mac-reduction``; returns its ``StructuredReport``,
    scored on ``score_on`` ("val" in a trial: the test split stays unread)."""
    from edgecls.optimize.structured import StructuredConfig, structured_prune_run

    config = StructuredConfig(mac_reduction=mac_reduction, epochs=epochs)
    return structured_prune_run(run_dir, out_dir, config, on_epoch, score_on)


def export_gated(run_dir: Path, out: Path, fmt: str, precision: str, threads: int | None) -> Any:
    """``edgecls export`` of one format and precision, through the accuracy gate; returns
    the manifest (``manifest.failed`` lists what the gate refused)."""
    from edgecls.export.pipeline import ExportConfig, export_run
    from edgecls.runtime.base import BackendOptions

    config = ExportConfig(out=out, formats=[fmt], precisions=[precision],
                          options=BackendOptions(threads=threads))
    return export_run(run_dir, config)


def untrained_artifact(signature: Signature, classes: int, work: Path) -> Path:
    """An artifact of ``signature`` built from untrained weights: same layers, same shapes,
    hence the same latency and size as the trained one (INT8 with a few random calibration
    images). Pruned signatures are narrowed by L1 norm to the signature's MAC reduction."""
    from edgecls.export import metadata as md
    from edgecls.export.base import ExportSource, QuantizationConfig, get_exporter
    from edgecls.models import build

    model = build(signature.family, weights=None, include_top=False, num_classes=classes,
                  input_size=signature.size)
    if signature.mac_reduction > 0:
        model = _narrowed(model, signature.mac_reduction)
    size = (signature.size, signature.size)
    saved_model = work / "saved_model"
    model.export(str(saved_model), format="tf_saved_model", verbose=False)
    meta = md.base_metadata([f"class{i}" for i in range(classes)], size, model.name,
                            extra={"tune_signature": signature.key()})
    source = ExportSource(model=model, saved_model=saved_model, metadata=meta, work_dir=work)
    exporter = get_exporter(signature.format)
    calibration = np.random.default_rng(0).integers(0, 256, (CALIBRATION_IMAGES, *size, 3), dtype=np.uint8)
    quant = QuantizationConfig.for_precision(signature.precision, calibration)
    out = work / exporter.artifact_name("model", quant)
    exporter.export(source, quant, out)
    return out


def _narrowed(model: Any, mac_reduction: float) -> Any:
    from edgecls.optimize.selection import plan, prune_channels

    groups, keep = plan(model, None, "l1", mac_reduction=mac_reduction)
    return prune_channels(model, groups, keep)


def bench_here(artifact: Path, threads: int | None, options: Any = None) -> dict[str, Any]:
    """One bench record of ``artifact`` on this machine (``edgecls bench``, fresh process)."""
    from edgecls.bench.runner import BenchOptions, run_bench

    bench_options = BenchOptions(threads=[threads], warmup=LATENCY_WARMUP, runs=LATENCY_RUNS,
                                 verify=False, **(options or {}))
    report = run_bench([artifact], bench_options)
    return _only_record(report, artifact)


def bench_on_host(artifact: Path, host: Any, threads: int | None, target: str | None) -> dict[str, Any]:
    """One bench record of ``artifact`` on ``host`` over ssh (``edgecls bench --host``)."""
    from edgecls.bench.runner import BenchOptions
    from edgecls.remote.bench import RemoteBenchJob, bench_on_hosts

    options = BenchOptions(threads=[threads], warmup=LATENCY_WARMUP, runs=LATENCY_RUNS, target=target)
    report = bench_on_hosts(RemoteBenchJob(models=[artifact], options=options, hosts=[host]))
    failed = [h for h in report.get("hosts", []) if h.get("status") != "passed"]
    if failed:
        raise EdgeclsError(f"the bench on {host.text} did not run: {failed[0].get('reason')}",
                           "check that `edgecls bench --host` works for this device")
    return _only_record(report, artifact)


def check_host(host: Any, timeout_s: float = 10.0) -> None:
    """Connects to ``host`` once; raises a one-line error when it cannot be reached."""
    from edgecls.remote.ssh import SshOptions, SshTransport

    SshTransport(host, SshOptions(connect_timeout_s=timeout_s, multiplex=False)).run("true", timeout_s + 5)


def _only_record(report: dict[str, Any], artifact: Path) -> dict[str, Any]:
    records = report.get("records") or []
    if not records or records[0].get("status") == "failed":
        reason = records[0].get("reason") if records else "no record"
        raise EdgeclsError(f"benching {artifact.name} failed: {reason}")
    return records[0]
