"""What checking a model's embedded digest costs at load, per format, before and after, side by side.

Each model is copied twice with its digest fields redone: as exports write them now
(BLAKE3) and as they were written before (SHA-256). Loads through ``load_backend``
alternate (order flipping every round):

- ``unverified``: ``verify=False`` (the file is read once and loaded);
- ``BLAKE3``: the default check: the file is read once, its bytes are hashed in a thread
  while the backend loads the same bytes, the digest fields are looked for near the ends
  of the file only (where exporters write them), and the backend is returned once the
  bytes proved intact;
- ``SHA-256``: the same check of the copy with SHA-256 fields (older exports);
- ``before``: the check as it was before this round: SHA-256 only, and the whole file
  searched for digest fields (a pass over the weights that holds the GIL, beside the load);
- ``check, then load``: the check as it was first: ``verify_file`` read and hashed the
  file (whole-file search, SHA-256), then the backend read it again (``verify=False``).

A foreign model (no digest; the Coral MobileNetV2 INT8 as downloaded, when ../shared has
it) gets the same columns: there "BLAKE3" and "SHA-256" are both the check as it is now
(no search of the weights at all: the metadata names no digest).

Wall and CPU time (the process's, all threads) are medians over the rounds; the verify
cost is the median over rounds of (verified - unverified) / unverified. The check alone
(``verify_bytes``) is timed on the bytes in memory, per scheme and as before. One warm-up
load per model and variant is left out.

Models: every ``*.tflite``, ``*.onnx`` and ``*.xml`` in the folders or files given (e.g.
an `edgecls export` folder), and the 3.6 MB Coral MobileNetV2 INT8 with an edgecls entry
and digest stamped in (when ../shared has it).

Usage: chrt -f 1 .venv/bin/python benchmarks/verify_cost.py [EXPORT_DIR_OR_MODEL ...] [--rounds 21]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import ssl
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from edgecls.errors import ModelError
from edgecls.runtime import backends, integrity, load_backend
from edgecls.runtime.integrity import BLAKE3, SHA256, DigestScheme
from fuzz_models import CORAL, stamped_coral  # benchmarks/ is on sys.path when run as a script

SUFFIXES = (".tflite", ".onnx", ".xml")
NAMES = ("unverified", "BLAKE3", "SHA-256", "before", "check, then load")


def find_models(paths: list[Path]) -> list[Path]:
    found = []
    for path in paths:
        found += sorted(p for p in path.iterdir() if p.suffix in SUFFIXES) if path.is_dir() else [path]
    return found


def restamped(model: Path, scheme: DigestScheme, folder: Path) -> Path:
    """A copy of ``model`` (and its ``.bin``) with its digest fields redone in ``scheme``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = bytearray(model.read_bytes())
    for old in integrity.SCHEMES:
        for at in integrity.digest_fields(bytes(data), old.prefix):
            data[at - len(old.prefix):at + 64] = (scheme.prefix + "0" * 64).encode()
    weights = model.with_suffix(".bin")
    if model.suffix == ".xml" and weights.is_file():
        shutil.copyfile(weights, folder / weights.name)
    copy = folder / model.name
    copy.write_bytes(integrity.stamp_bytes(bytes(data), weights.read_bytes() if weights.is_file() else None))
    return copy


class WholeFileCheck:
    """``start_check`` as it was before: ``verify_bytes`` in a thread, searching everywhere."""

    def __init__(self, path: Path, model: integrity.ModelBytes) -> None:
        self.status: str | None = None
        self.error: ModelError | None = None
        self.thread = threading.Thread(target=self.run, args=(path, model), daemon=True)
        self.thread.start()

    def run(self, path: Path, model: integrity.ModelBytes) -> None:
        try:
            self.status = integrity.verify_bytes(path, model.content, model.weights)
        except ModelError as exc:
            self.error = exc

    def result(self) -> str | None:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.status


@contextlib.contextmanager
def as_before() -> Iterator[None]:
    """The check as it was before: SHA-256 only, the whole file searched for digest fields
    in the thread that hashes (also for a model without any)."""
    saved = integrity.SCHEMES, integrity.digest_fields_near_ends, backends.start_check
    integrity.SCHEMES = (SHA256,)
    integrity.digest_fields_near_ends = lambda data, prefix: []
    backends.start_check = WholeFileCheck
    try:
        yield
    finally:
        integrity.SCHEMES, integrity.digest_fields_near_ends, backends.start_check = saved


def loaded_before(model: Path) -> None:
    with as_before():
        load_backend(model)


def check_then_load(model: Path) -> None:
    with as_before():
        integrity.verify_file(model)
    load_backend(model, verify=False)


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) milliseconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3


def check_alone(model: Path, rounds: int, before: bool = False) -> float:
    """Median CPU ms of ``verify_bytes`` on the bytes in memory."""
    files = integrity.read_model(model)
    with as_before() if before else contextlib.nullcontext():
        return statistics.median(
            timed(lambda: integrity.verify_bytes(model, files.content, files.weights))[1] for _ in range(rounds))


def measure(b3: Path, sha: Path, rounds: int) -> dict:
    variants: dict[str, Callable[[], object]] = {
        "unverified": lambda: load_backend(b3, verify=False),
        "BLAKE3": lambda: load_backend(b3),
        "SHA-256": lambda: load_backend(sha),
        "before": lambda: loaded_before(sha),
        "check, then load": lambda: check_then_load(sha),
    }
    status = load_backend(b3).settings["integrity"]
    for action in variants.values():
        action()  # warm-up
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for index in range(rounds):
        for name in list(variants) if index % 2 == 0 else list(reversed(variants)):
            times[name].append(timed(variants[name]))
    wall = {name: statistics.median(t[0] for t in values) for name, values in times.items()}
    cpu = {name: statistics.median(t[1] for t in values) for name, values in times.items()}
    cost = {name: statistics.median(v[0] / u[0] - 1 for v, u in zip(times[name], times["unverified"]))
            for name in times if name != "unverified"}
    alone = [check_alone(b3, rounds), check_alone(sha, rounds), check_alone(sha, rounds, before=True)]
    return {"status": status, "wall": wall, "cpu": cpu, "cost": cost, "alone": alone}


def model_mb(model: Path) -> float:
    weights = model.with_suffix(".bin")
    return (model.stat().st_size + (weights.stat().st_size if model.suffix == ".xml" and weights.is_file()
                                    else 0)) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="export folders or model files")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-coral", action="store_true", help="leave out the two Coral models")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgecls_verify_cost_"))
    models = find_models(args.paths)
    coral = None if args.no_coral else stamped_coral(work)
    models += [coral, CORAL] if coral else []
    cpu_name = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), "?")
    sha_ni = " sha_ni" if " sha_ni" in Path("/proc/cpuinfo").read_text() else ""
    print(f"verify_cost: {args.rounds} rounds; CPU {cpu_name}{sha_ni}, {len(os.sched_getaffinity(0))} cores; "
          f"SHA-256 by {ssl.OPENSSL_VERSION}; load average {Path('/proc/loadavg').read_text().split()[0]} at start")
    print("load ms, median wall / CPU (all threads): " + ", ".join(NAMES) + "; the check alone, CPU ms: "
          "BLAKE3, SHA-256, before; verify cost (wall added to an unverified load): " + ", ".join(NAMES[1:]))
    for index, model in enumerate(models):
        b3 = restamped(model, BLAKE3, work / f"{index}-blake3")
        sha = restamped(model, SHA256, work / f"{index}-sha256")
        got = measure(b3, sha, args.rounds)
        cells = " ".join(f"{got['wall'][n]:6.1f}/{got['cpu'][n]:5.1f}" for n in NAMES)
        alone = " ".join(f"{ms:5.2f}" for ms in got["alone"])
        costs = " ".join(f"{got['cost'][n]:+6.0%}" for n in NAMES[1:])
        print(f"{model.name[:30]:<30} {model_mb(model):5.1f} MB {got['status']:>9} | {cells} | {alone} | {costs}",
              flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
