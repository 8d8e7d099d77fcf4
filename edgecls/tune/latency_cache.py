"""Latency and size measured per architecture signature, cached per target and runtime.

A signature (family, input size, MAC reduction, precision, format, threads) is exported
once with untrained weights and benched on the target through the normal bench (here, or
over ssh with ``--host``); the figures are kept in a JSON file keyed by the target, the
runtime (the inference library and its version, the CPU and architecture, as the target
itself reports them: a device is asked once per process) and the signature, so a signature
is measured once across trials and studies. One bench at a time runs per device, whatever
the number of workers: a lock file per target serialises the workers of one machine
(``fcntl``), and the device's own bench lock (``remote.bench.device_lock``) those of a cluster.

A signature's latency is the median of ``ROUNDS`` short benches (rounds), each kept in the
entry, so its spread (min-max) is known. When that range straddles the budget's limit, one
more bench could land either side: ``EXTRA_ROUNDS`` more are run before the decision, and
the median of all decides. At most ``ROUNDS + EXTRA_ROUNDS`` benches per signature, ever: the
rounds are cached. An entry of the single-bench format (before ``CACHE_VERSION`` 2) is
measured again and replaced.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import platform
import shutil
import statistics
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterator

from edgecls.atomic import write_text_atomic
from edgecls.bench.machine import cpu_model, describe_machine
from edgecls.formats import artifact_size
from edgecls.tune import steps
from edgecls.tune.budget import Budget
from edgecls.tune.space import Signature

CACHE_ENV = "EDGECLS_TUNE_CACHE"
CACHE_VERSION = 2  # 1 (no "version"): one bench per signature; 2: the rounds, each kept
ROUNDS = 3  # benches per signature; the median decides
EXTRA_ROUNDS = 2  # more benches when the first rounds' range straddles the budget
ROUND_RUNS = 50  # timed runs per round: each round is the bench that used to decide alone
ROUND_KEYS = ("mean_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms")  # kept of each round


@dataclass(frozen=True)
class BenchTarget:
    """Where candidates are measured: this machine, or a device reached over ssh."""

    host: Any = None  # a remote.host.HostSpec, or None for this machine
    profile: str | None = None  # a targets/ profile name (formats, threads)

    def key(self) -> str:
        """Tells targets apart in the cache: the host spec, or this machine's CPU and name."""
        if self.host is not None:
            return f"ssh:{self.host.text}"
        return f"local:{platform.node()}:{cpu_model()}"

    def label(self) -> str:
        """How every output names where the figures come from."""
        if self.host is not None:
            return f"measured on {self.host.text}"
        return f"measured on this machine ({cpu_model()}), not on a device"


@dataclass
class Measurement:
    """The bench's figures for one signature on one target, and what measured them."""

    signature: str
    target: str
    runtime: str
    latency: dict[str, float]  # each figure's median over the rounds (p50_ms, p90_ms, ...)
    size_bytes: int
    rounds: list[dict[str, float]] = field(default_factory=list)  # each round's ROUND_KEYS
    measured: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    machine: dict[str, Any] = field(default_factory=dict)  # the target's MACHINE_FIELDS when measured
    version: int = CACHE_VERSION

    @classmethod
    def of_rounds(cls, signature: str, target: str, runtime: str, rounds: list[dict[str, Any]], size_bytes: int,
                  machine: dict[str, Any]) -> Measurement:
        """The measurement whose figures are the medians of ``rounds`` (bench latency summaries)."""
        kept = [{k: float(r[k]) for k in ROUND_KEYS if k in r} for r in rounds]
        keys = [k for k in ROUND_KEYS if all(k in r for r in kept)]
        latency = {k: float(statistics.median(r[k] for r in kept)) for k in keys}
        return cls(signature, target, runtime, latency, size_bytes, kept, machine=machine)

    def latency_ms(self, key: str = "p50_ms") -> float:
        return float(self.latency[key])

    def samples(self, key: str = "p50_ms") -> list[float]:
        """Each round's ``key`` figure (the median alone for an entry without rounds)."""
        return [float(r[key]) for r in self.rounds] or [self.latency_ms(key)]

    def spread(self, key: str = "p50_ms") -> tuple[float, float]:
        """The lowest and highest round of ``key``."""
        values = self.samples(key)
        return min(values), max(values)


RUNTIME_PACKAGES = {"tflite": ("ai-edge-litert", "tflite-runtime"), "onnx": ("onnxruntime", "onnxruntime-gpu"),
                    "openvino": ("openvino",)}
MACHINE_FIELDS = ("hostname", "cpu_model", "arch", "device_model", "python", "packages")


def runtime_version(fmt: str, machine: dict[str, Any]) -> str:
    """The runtime a ``fmt`` artifact runs on in ``machine`` (a ``describe_machine()``, of
    this machine or as a device reported it): the inference library with its version, and
    the CPU. A new runtime release or another CPU may change every timing, so it is part of
    the key, e.g. ``ai-edge-litert 1.2.0 on aarch64 (Cortex-A76)``."""
    versions = machine.get("packages") or {}
    found = [f"{name} {versions[name]}" for name in RUNTIME_PACKAGES.get(fmt, ()) if name in versions]
    library = found[0] if found else f"{fmt} (no runtime installed)"
    return f"{library} on {machine.get('arch') or '?'} ({machine.get('cpu_model') or '?'})"


def target_machine(target: BenchTarget, fmt: str) -> dict[str, Any]:
    """The target's machine description: this machine's, or the device's (asked over ssh in
    the environment its bench of ``fmt`` runs in)."""
    if target.host is not None:
        return steps.describe_host(target.host, fmt)
    return describe_machine()


def default_cache_path() -> Path:
    """``$EDGECLS_TUNE_CACHE``, else ``~/.cache/edgecls/tune/latency.json``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "edgecls" / "tune" / "latency.json"


class LatencyCache:
    """The JSON cache file; reads and writes under a lock, writes atomically."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else default_cache_path()

    @staticmethod
    def entry_key(target: str, runtime: str, signature: str) -> str:
        return f"{target}|{runtime}|{signature}"

    def get(self, target: str, runtime: str, signature: str) -> Measurement | None:
        """The current-format entry, else None (absent, of an older format, or damaged:
        measured again)."""
        with self._locked("cache"):
            entry = self._read().get(self.entry_key(target, runtime, signature))
        return _entry(entry)

    def put(self, measurement: Measurement) -> None:
        with self._locked("cache"):
            entries = self._read()
            entries[self.entry_key(measurement.target, measurement.runtime, measurement.signature)] = \
                asdict(measurement)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.path, json.dumps({"entries": entries}, indent=1, sort_keys=True))

    def _read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {}
        try:
            return json.loads(self.path.read_text(encoding="utf-8")).get("entries", {})
        except (json.JSONDecodeError, AttributeError):  # a damaged cache is measured again
            return {}

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.parent / f".{name}.lock"
        with lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def device_lock(self, target: str) -> Iterator[None]:
        """Held while a bench runs on ``target``: one bench at a time per device."""
        digest = hashlib.blake2b(target.encode(), digest_size=8).hexdigest()
        with self._locked(f"bench-{digest}"):
            yield


def _entry(entry: Any) -> Measurement | None:
    """A cache entry as a ``Measurement``; None for an older format or a damaged entry."""
    if not isinstance(entry, dict) or entry.get("version") != CACHE_VERSION:
        return None
    names = {f.name for f in fields(Measurement)}
    try:
        measurement = Measurement(**{k: v for k, v in entry.items() if k in names})
        measurement.samples()
    except (TypeError, ValueError, KeyError):
        return None
    return measurement if measurement.rounds else None


Exporter = Callable[[Signature, int, Path], Path]  # (signature, classes, work folder) -> artifact
Bencher = Callable[[Path, Signature], dict[str, Any]]  # (artifact, signature) -> bench record


@dataclass
class LatencyMeter:
    """Measures signatures on one target, through the cache.

    Attributes:
        target: where to measure.
        cache: the shared cache.
        classes: outputs of the candidates' heads (the dataset's class count).
        work: scratch folder for the untrained artifacts.
        export: builds the untrained artifact (``steps.untrained_artifact``).
        bench: benches it once, one round (``steps.bench_here`` or ``steps.bench_on_host``).
        describe: the target's machine description (``target_machine``), for the cache key.
        hits: signatures answered from the cache alone; measured: signatures benched here
            for the first time; remeasured: borderline ones given extra rounds; benches:
            the rounds run here.
    """

    target: BenchTarget
    cache: LatencyCache
    classes: int
    work: Path
    export: Exporter
    bench: Bencher
    hits: int = 0
    measured: int = 0
    remeasured: int = 0
    benches: int = 0
    describe: Callable[[BenchTarget, str], dict[str, Any]] = target_machine
    machines: dict[str, dict[str, Any]] = field(default_factory=dict)  # format -> the target's machine

    def machine(self, fmt: str) -> dict[str, Any]:
        """The target's machine description for ``fmt``, asked once per meter (per process)."""
        if fmt not in self.machines:
            described = self.describe(self.target, fmt)
            self.machines[fmt] = {key: described.get(key) for key in MACHINE_FIELDS}
        return self.machines[fmt]

    def measure(self, signature: Signature, budget: Budget | None = None) -> Measurement:
        """The figures of ``signature``: from the cache when it holds the rounds they need
        (``wanted_rounds``), else the missing rounds exported, benched and cached.

        Raises:
            EdgeclsError: the target could not be described, or the export or bench failed.
        """
        machine = self.machine(signature.format)
        target, runtime = self.target.key(), runtime_version(signature.format, machine)
        cached = self.cache.get(target, runtime, signature.key())
        if cached is not None and len(cached.rounds) >= wanted_rounds(cached.rounds, cached.size_bytes, budget):
            self.hits += 1
            return cached
        rounds, size = self._bench_rounds(signature, target, cached.rounds if cached else [], budget)
        measurement = Measurement.of_rounds(signature.key(), target, runtime, rounds, size, machine)
        self.cache.put(measurement)
        if cached is None:
            self.measured += 1
        else:
            self.remeasured += 1
        return measurement

    def _bench_rounds(self, signature: Signature, target: str, done: list[dict[str, Any]],
                      budget: Budget | None) -> tuple[list[dict[str, Any]], int]:
        """``done`` and the rounds still wanted, benched on the signature's untrained
        artifact (the device lock held for each, so other workers' benches may come
        between); the rounds and the artifact's size."""
        folder = _fresh_folder(self.work)
        rounds = list(done)
        try:
            artifact = self.export(signature, self.classes, folder)
            size = artifact_size(artifact)
            while len(rounds) < wanted_rounds(rounds, size, budget):
                with self.cache.device_lock(target):
                    record = self.bench(artifact, signature)
                rounds.append(dict(record["latency"]))
                self.benches += 1
                size = int(record.get("size_bytes") or size)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return rounds, size


def wanted_rounds(rounds: list[dict[str, Any]], size_bytes: int, budget: Budget | None) -> int:
    """How many rounds a signature's figures need: ``ROUNDS``, and ``EXTRA_ROUNDS`` more once
    those straddle ``budget``'s latency limit (the rounds' range holds it)."""
    if len(rounds) < ROUNDS or budget is None:
        return ROUNDS
    samples = [float(r[budget.latency_key]) for r in rounds]
    return ROUNDS + EXTRA_ROUNDS if budget.straddles(samples, size_bytes) else ROUNDS


def _fresh_folder(parent: Path) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="latency-", dir=parent))


