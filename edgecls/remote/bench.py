"""``edgecls bench --host``: the same bench, run on each device over ssh, merged into one report.

Per host, in parallel: connect, prepare an environment (``device.py``), copy the artifacts
and the fixed sample of held-out images into a job folder under ``~/.edgecls/jobs``, run
``edgecls bench`` there (one at a time per device, see ``device_lock``), fetch its JSON and
remove the job folder. The per-host reports are
merged into one file that ``edgecls report`` reads: each record carries its ``host`` and its
device's ``machine``, and ``hosts`` lists every host's status (see bench/SCHEMA.md).
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import edgecls
from edgecls.bench.dataset import LabelledImages, load_labelled_images
from edgecls.bench.export_float import float_on_same_images
from edgecls.bench.machine import describe_machine
from edgecls.bench.runner import BenchOptions, check_options
from edgecls.bench.schema import (
    REPORT_KIND,
    SCHEMA_VERSION,
    SchemaError,
    validate_report,
)
from edgecls.config import is_yaml_name
from edgecls.errors import EdgeclsError
from edgecls.remote.artifacts import model_files, model_format
from edgecls.remote.device import Environment, PrepareOptions, prepare
from edgecls.remote.host import HostSpec
from edgecls.remote.parallel import HostOutcome, run_on_hosts
from edgecls.remote.sample import DEFAULT_PER_CLASS, sample_images
from edgecls.remote.ssh import (
    STATUS_PASSED,
    RemoteError,
    SshOptions,
    SshTransport,
    last_line,
    shell_path,
)
from edgecls.runtime.targets import load_target, target_file

JOBS_DIR = ".edgecls/jobs"
DEVICE_LOCK = ".edgecls/bench.lock"
LOCK_BUSY = 75  # the device's exit code when another bench kept its lock too long
RESULT = "result.json"
Say = Callable[[HostSpec, str], None]


@dataclass
class RemoteBenchJob:
    """What to bench, where, and how to reach and prepare the hosts."""

    models: list[Path]
    options: BenchOptions
    hosts: list[HostSpec]
    ssh: SshOptions = field(default_factory=SshOptions)
    prepare: PrepareOptions = field(default_factory=PrepareOptions)
    per_class: int = DEFAULT_PER_CLASS

    def formats(self) -> set[str]:
        """The model formats the devices must run (artifacts and reference)."""
        paths = [*self.models, *([self.options.reference] if self.options.reference else [])]
        return {f for f in (model_format(Path(p)) for p in paths) if f}

    def bench_timeout_s(self) -> float:
        """Seconds the device may take for the whole bench: per model and thread count, plus start-up."""
        steps = (len(self.models) + (1 if self.options.reference else 0)) * len(self.options.threads)
        return self.options.timeout_s * steps + 120.0


@dataclass
class HostBench:
    """What one host produced."""

    environment: Environment
    report: dict[str, Any]


def bench_on_hosts(job: RemoteBenchJob, say: Say | None = None) -> dict[str, Any]:
    """Benches ``job.models`` on every host in parallel; returns the merged report object.

    Raises:
        EdgeclsError: bad input found before any host is contacted (missing model, bad data,
            an option no device could bench with, an unknown target profile).
    """
    check_options(job.models, job.options)
    if job.options.target:
        load_target(job.options.target)  # the devices run this edgecls version: same profiles
    say = say or (lambda host, message: None)
    images = load_labelled_images(job.options.data, None) if job.options.data else None
    data_folder = sample_folder(images)
    files = staged_files(job, images, data_folder)
    remote_args = bench_arguments(job, data_folder)
    setup_s = job.ssh.connect_timeout_s + 60.0 + job.prepare.timeout_s + 600.0
    outcomes = run_on_hosts(job.hosts, lambda host: _bench_host(host, job, files, remote_args, say),
                            timeout_s=setup_s + 2 * job.bench_timeout_s())  # waiting for the lock, then running
    for outcome in outcomes:
        say(outcome.host, outcome.status if outcome.passed else f"{outcome.status}: {outcome.reason}")
    report = merge_host_reports(outcomes, job.models, job.options.reference)
    if images is not None:
        attach_export_float(report["records"], files, data_folder, images)
    return report


def attach_export_float(records: list[dict[str, Any]], files: dict[str, Path], data_folder: str,
                        images: LabelledImages) -> None:
    """Adds ``accuracy.float`` (the float model on the same images, from the export's
    predictions.json beside the local artifact) to device records scored on a known sample."""
    label_of = {str(path): images.labels[label] for path, label in images.items}
    for record in records:
        accuracy = record.get("accuracy") or {}
        selection = accuracy.get("selection") or {}
        if "float" in accuracy or selection.get("mode") != "held_out" or accuracy.get("images_skipped"):
            continue
        paths = [files.get(f"{data_folder}/{name}") for name in selection.get("files") or []]
        classes = record.get("labels") or []
        if not paths or None in paths or any(label_of.get(str(p)) not in classes for p in paths):
            continue
        expected = np.array([classes.index(label_of[str(p)]) for p in paths])
        found = float_on_same_images(record["model"], classes, [str(p) for p in paths], expected)
        if found is not None:
            accuracy["float"] = found


def sample_folder(images: LabelledImages | None) -> str:
    """The device's folder of the sample: named after the subset the images come from (``val``,
    ``test``), so a model of a pre-split run tells them held out there too; else ``data``."""
    return images.subset if images is not None and images.subset else "data"


def staged_files(job: RemoteBenchJob, images: LabelledImages | None = None,
                 data_folder: str = "data") -> dict[str, Path]:
    """Archive name -> local path of everything a device needs: models, sample, side files."""
    files: dict[str, Path] = {}
    for model in job.models:
        _add_model(files, Path(model), "models")
    options = job.options
    if options.reference:
        _add_model(files, Path(options.reference), "reference")
    if options.labels_file:
        files["labels.txt"] = _existing(Path(options.labels_file), "--labels")
    if options.target and (profile_file := target_file(options.target)) is not None:
        files["target.yaml"] = profile_file
    if images is not None:
        files.update(sample_images(images, options.max_per_class or job.per_class, data_folder))
    return files


def bench_arguments(job: RemoteBenchJob, data_folder: str = "data") -> list[str]:
    """``edgecls bench`` arguments as the device runs them, inside its job folder."""
    options = job.options
    args = ["bench", *[f"models/{Path(m).name}" for m in job.models], "--json", RESULT,
            "--warmup", str(options.warmup), "--timeout", str(options.timeout_s)]
    args += ["--seconds", str(options.seconds)] if options.seconds is not None else ["--runs", str(options.runs)]
    if options.data:
        args += ["--data", data_folder]
    if options.reference:
        args += ["--reference", f"reference/{Path(options.reference).name}"]
    if options.labels_file:
        args += ["--labels", "labels.txt"]
    if options.target:
        args += ["--target", "target.yaml" if is_yaml_name(options.target) else options.target]
    if options.threads != [None]:
        args += ["--threads", ",".join(str(t) for t in options.threads)]
    if not options.verify:
        args.append("--no-verify")
    for flag, value in (("--min-accuracy", options.min_accuracy), ("--device", options.device),
                        ("--providers", ",".join(options.providers or []) or None)):
        if value is not None:
            args += [flag, str(value)]
    return args


def _bench_host(host: HostSpec, job: RemoteBenchJob, files: dict[str, Path], args: list[str],
                say: Say) -> HostBench:
    transport = SshTransport(host, job.ssh)
    try:
        say(host, "connecting and checking the environment")
        environment = prepare(transport, job.formats(), job.prepare, job.prepare.timeout_s)
        say(host, f"copying {len(files)} files")
        folder = f"{JOBS_DIR}/bench-{uuid.uuid4().hex[:12]}"
        try:
            transport.put(files, folder, 600.0)
            say(host, "benchmarking")
            report = _run_remote_bench(transport, environment, folder, args, job.bench_timeout_s())
        finally:
            _remove(transport, folder)
        return HostBench(environment, report)
    finally:
        transport.close()


def _run_remote_bench(transport: SshTransport, environment: Environment, folder: str, args: list[str],
                      timeout_s: float) -> dict[str, Any]:
    command = (f"{device_lock(timeout_s)}cd {shell_path(folder)} && "
               f"{limit_time(timeout_s)}{environment.python} -m edgecls {shlex.join(args)}")
    proc = transport.run(command, 2 * timeout_s + 30.0, check=False)
    if proc.returncode not in (0, 1):  # 1: a model failed or scored below the floor; the JSON is there
        raise RemoteError(f"{transport.host.text}: edgecls bench exited with {proc.returncode}: "
                          f"{last_line(proc.stderr) or last_line(proc.stdout) or 'no output'}")
    try:
        report = json.loads(transport.read(f"{folder}/{RESULT}", 120.0))
        validate_report(report)
    except (ValueError, SchemaError) as exc:
        raise RemoteError(f"{transport.host.text}: the device's bench JSON is unusable: {exc}") from None
    return report


def device_lock(wait_s: float) -> str:
    """Shell prefix holding the device's bench lock for the rest of the command: ``flock`` on
    ``~/.edgecls/bench.lock`` (util-linux's; BusyBox's cannot time out and is not used), so
    benches started by several processes or machines run one at a time and never skew each
    other's timings. Waits up to ``wait_s`` seconds, then ends with ``LOCK_BUSY`` saying why."""
    wait = int(wait_s) + 1
    return (f"if flock --version 2>/dev/null | grep -q util-linux; then "
            f"exec 9>>{shell_path(DEVICE_LOCK)} && flock -w {wait} 9 "
            f"|| {{ echo 'another bench kept the device busy for {wait} s' >&2; exit {LOCK_BUSY}; }}; fi; ")


def limit_time(seconds: float) -> str:
    """Shell prefix ending the device's process after ``seconds`` (coreutils ``timeout``, when present)."""
    return f"$(command -v timeout >/dev/null 2>&1 && echo timeout {int(seconds) + 1}) "


def _remove(transport: SshTransport, folder: str) -> None:
    try:
        transport.run(f"rm -rf {shell_path(folder)}", 60.0, check=False)
    except RemoteError:
        pass  # an unreachable host keeps its job folder; the next bench uses a new one


def merge_host_reports(outcomes: list[HostOutcome], models: list[Path],
                       reference_model: Path | None = None) -> dict[str, Any]:
    """One report object: every host's records (tagged with host and machine) and statuses."""
    local_paths = {Path(m).name: str(m) for m in models}
    reference = Path(reference_model) if reference_model else None
    records, hosts, settings = [], [], None
    for outcome in outcomes:
        bench: HostBench | None = outcome.value if outcome.passed else None
        hosts.append(host_entry(outcome, bench))
        if bench is None:
            continue
        settings = settings or bench.report["settings"]
        for record in bench.report["records"]:
            record = {**record, "model": local_paths.get(record["file"], record["model"]),
                      "host": outcome.host.text, "machine": bench.report["machine"]}
            if reference and (record.get("accuracy") or {}).get("reference"):
                record["accuracy"]["reference"]["model"] = str(reference)  # as given here, not the device's copy
            records.append(record)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": REPORT_KIND,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "edgecls_version": edgecls.__version__,
        "machine": describe_machine(),
        "settings": settings or {},
        "records": records,
        "hosts": hosts,
    }


def host_entry(outcome: HostOutcome, bench: HostBench | None) -> dict[str, Any]:
    """The ``hosts`` item of one host (see bench/SCHEMA.md)."""
    return {
        "host": outcome.host.text,
        "status": outcome.status,
        "reason": outcome.reason.removeprefix(f"{outcome.host.text}: ") if outcome.reason else None,
        "hint": outcome.hint,
        "seconds": outcome.seconds,
        "environment": bench.environment.as_dict() if bench else None,
        "hostname": bench.report["machine"].get("hostname") if bench else None,
    }


def all_passed(report: dict[str, Any]) -> bool:
    """True when every host passed and every record passed (the exit code's rule)."""
    return (all(h["status"] == STATUS_PASSED for h in report.get("hosts", []))
            and all(r["status"] == STATUS_PASSED for r in report["records"]))


def _add_model(files: dict[str, Path], model: Path, folder: str) -> None:
    if f"{folder}/{model.name}" in files:
        raise EdgeclsError(f"two models are named {model.name}", "give each artifact a distinct file name")
    files.update(model_files(model, folder))


def _existing(path: Path, what: str) -> Path:
    if not path.is_file():
        raise EdgeclsError(f"{what} {path} does not exist", "check the path")
    return path
