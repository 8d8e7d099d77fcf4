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
    from edgecls.models import build

    model = build(signature.family, weights=None, include_top=False, num_classes=classes,
                  input_size=signature.size)
    if signature.mac_reduction > 0:
        model = _narrowed(model, signature.mac_reduction)
    size = (signature.size, signature.size)
    calibration = np.random.default_rng(0).integers(0, 256, (CALIBRATION_IMAGES, *size, 3), dtype=np.uint8)
    return _export(model, signature, [f"class{i}" for i in range(classes)], calibration, work)


def trained_artifact(run_dir: Path, signature: Signature, work: Path, stem: str = "model") -> Path:
    """The artifact of a trial run's trained weights in ``signature``'s format and
    precision, calibrated on a few train images and not gated: it is only benched, and
    the gate would read the test split."""
    from edgecls.data.calibration import sample_items
    from edgecls.data.pipeline import load_arrays
    from edgecls.data.split import Split
    from edgecls.models.float_model import input_size, load_float_model
    from edgecls.rundir import RunDir

    run = RunDir(Path(run_dir))
    model = load_float_model(run.require_model())
    split = Split.load(run.split)
    calibration, _ = load_arrays(sample_items(split.items("train"), CALIBRATION_IMAGES, "even"), input_size(model))
    return _export(model, signature, split.labels, calibration, work, stem)


def _export(model: Any, signature: Signature, labels: list[str], calibration: np.ndarray, work: Path,
            stem: str = "model") -> Path:
    """``model`` as one artifact of ``signature``'s format and precision, in ``work``."""
    from edgecls.export import metadata as md
    from edgecls.export.base import ExportSource, QuantizationConfig, get_exporter

    work.mkdir(parents=True, exist_ok=True)
    saved_model = work / "saved_model"
    model.export(str(saved_model), format="tf_saved_model", verbose=False)
    meta = md.base_metadata(labels, (signature.size, signature.size), model.name,
                            extra={"tune_signature": signature.key()})
    source = ExportSource(model=model, saved_model=saved_model, metadata=meta, work_dir=work)
    exporter = get_exporter(signature.format)
    quant = QuantizationConfig.for_precision(signature.precision, calibration)
    out = work / exporter.artifact_name(stem, quant)
    exporter.export(source, quant, out)
    return out


def _narrowed(model: Any, mac_reduction: float) -> Any:
    from edgecls.optimize.selection import plan, prune_channels

    groups, keep = plan(model, None, "l1", mac_reduction=mac_reduction)
    return prune_channels(model, groups, keep)


def bench_here(artifact: Path, threads: int | None, options: Any = None, runs: int = LATENCY_RUNS) -> dict[str, Any]:
    """One bench record of ``artifact`` on this machine (``edgecls bench``, fresh process)."""
    return bench_side_by_side([artifact], threads, None, None, options, runs)[0]


def bench_on_host(artifact: Path, host: Any, threads: int | None, target: str | None,
                  runs: int = LATENCY_RUNS) -> dict[str, Any]:
    """One bench record of ``artifact`` on ``host`` over ssh (``edgecls bench --host``)."""
    return bench_side_by_side([artifact], threads, host, target, runs=runs)[0]


def bench_side_by_side(artifacts: list[Path], threads: int | None, host: Any = None, target: str | None = None,
                       options: dict[str, Any] | None = None, runs: int = LATENCY_RUNS) -> list[dict[str, Any]]:
    """One bench run of ``artifacts`` one after the other, here or on ``host`` over ssh;
    one record each, in order."""
    from edgecls.bench.runner import BenchOptions, run_bench

    bench_options = BenchOptions(threads=[threads], warmup=LATENCY_WARMUP, runs=runs, target=target,
                                 verify=host is not None, **(options or {}))
    if host is None:
        report = run_bench(list(artifacts), bench_options)
    else:
        report = _bench_remote(list(artifacts), host, bench_options)
    return _records(report, list(artifacts))


def _bench_remote(artifacts: list[Path], host: Any, options: Any) -> dict[str, Any]:
    from edgecls.remote.bench import RemoteBenchJob, bench_on_hosts

    report = bench_on_hosts(RemoteBenchJob(models=artifacts, options=options, hosts=[host]))
    failed = [h for h in report.get("hosts", []) if h.get("status") != "passed"]
    if failed:
        raise EdgeclsError(f"the bench on {host.text} did not run: {failed[0].get('reason')}",
                           "check that `edgecls bench --host` works for this device")
    return report


def describe_host(host: Any, fmt: str) -> dict[str, Any]:
    """The device's machine description (CPU, architecture, inference library versions), from
    the environment ``edgecls bench --host`` runs ``fmt`` artifacts in there."""
    from edgecls.remote.machine import device_machine

    return device_machine(host, {fmt})


def check_host(host: Any, timeout_s: float = 10.0) -> None:
    """Connects to ``host`` once; raises a one-line error when it cannot be reached."""
    from edgecls.remote.ssh import SshOptions, SshTransport

    SshTransport(host, SshOptions(connect_timeout_s=timeout_s, multiplex=False)).run("true", timeout_s + 5)


def _records(report: dict[str, Any], artifacts: list[Path]) -> list[dict[str, Any]]:
    """The report's records, one per artifact in the order benched (one thread count)."""
    records = report.get("records") or []
    for index, artifact in enumerate(artifacts):
        record = records[index] if index < len(records) else {"reason": "no record", "status": "failed"}
        if record.get("status") == "failed":
            raise EdgeclsError(f"benching {artifact} failed: {record.get('reason')}")
    return records[:len(artifacts)]
