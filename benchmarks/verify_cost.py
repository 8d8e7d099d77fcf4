"""What checking a model's embedded digest costs at load, per format, side by side.

For each model, loads through ``load_backend`` alternate (order flipping every round):

- ``unverified``: ``verify=False`` (the file is read once and loaded);
- ``verified``: the default: the file is read once, its bytes are hashed in a thread while
  the backend loads the same bytes, and the backend is returned once they proved intact;
  the digest fields are looked for near the ends of the file only (where exporters write
  them; anywhere else, or a mismatch, and the whole file is searched);
- ``verified, full scan``: the same with the whole file searched for digest fields first,
  as before that change (a pass over the weights that holds the GIL);
- ``verified, then loaded``: the same bytes verified first, loaded after (no overlap);
- ``check, then load``: how the check worked before: ``verify_file`` read and hashed the
  file, then the backend read it again (``verify=False``).

Wall and CPU time (the process's, all threads) are medians over the rounds; the verify
cost is the median over rounds of (verified - unverified) / unverified. The SHA-256 pass
alone, and the whole check (``verify_bytes``: field search + SHA-256) now and with the
full scan, are timed on the bytes in memory. One warm-up load per model is left out.

Models: every ``*.tflite``, ``*.onnx`` and ``*.xml`` in the folders or files given (e.g.
an `edgecls export` folder, whose artifacts carry digests), and the 3.6 MB Coral
MobileNetV2 INT8 with an edgecls entry and digest stamped in (when ../shared has it).

Usage: chrt -f 1 .venv/bin/python benchmarks/verify_cost.py [EXPORT_DIR_OR_MODEL ...] [--rounds 21]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import ssl
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from edgecls.runtime import integrity, load_backend
from edgecls.runtime.backends import backend_for_suffix
from fuzz_models import stamped_coral  # benchmarks/ is on sys.path when run as a script

SUFFIXES = (".tflite", ".onnx", ".xml")


def find_models(paths: list[Path]) -> list[Path]:
    found = []
    for path in paths:
        found += sorted(p for p in path.iterdir() if p.suffix in SUFFIXES) if path.is_dir() else [path]
    return found


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) milliseconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3


@contextlib.contextmanager
def full_scan() -> Iterator[None]:
    """The check as it was before it looked near the ends first: the whole file searched."""
    near_ends = integrity._fields_near_ends
    integrity._fields_near_ends = lambda data, prefix: []
    try:
        yield
    finally:
        integrity._fields_near_ends = near_ends


def verified_full_scan(model: Path) -> None:
    with full_scan():
        load_backend(model)


def check_then_load(model: Path) -> None:
    integrity.verify_file(model)
    load_backend(model, verify=False)


def verified_then_loaded(model: Path) -> None:
    files = integrity.read_model(model)
    integrity.verify_bytes(model, files.content, files.weights)
    backend_for_suffix(model)(model, None, files)


def measure(model: Path, rounds: int) -> dict[str, float | str]:
    variants: dict[str, Callable[[], object]] = {
        "unverified": lambda: load_backend(model, verify=False),
        "verified": lambda: load_backend(model),
        "verified, full scan": lambda: verified_full_scan(model),
        "verified, then loaded": lambda: verified_then_loaded(model),
        "check, then load": lambda: check_then_load(model),
    }
    status = load_backend(model).settings["integrity"]  # warm-up (and the status)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for index in range(rounds):
        order = list(variants) if index % 2 == 0 else list(reversed(variants))
        for name in order:
            times[name].append(timed(variants[name]))
    files = integrity.read_model(model)
    parts = [files.content] + ([files.weights] if files.weights else [])
    check = [timed(lambda: integrity.verify_bytes(model, files.content, files.weights)) for _ in range(rounds)]
    with full_scan():
        scan = [timed(lambda: integrity.verify_bytes(model, files.content, files.weights)) for _ in range(rounds)]
    sha = [timed(lambda: [hashlib.sha256(part).digest() for part in parts]) for _ in range(rounds)]
    near_ends = integrity._fields_near_ends(files.content, integrity.DIGEST_PREFIX)
    wall = {name: statistics.median(t[0] for t in values) for name, values in times.items()}
    cpu = {name: statistics.median(t[1] for t in values) for name, values in times.items()}
    cost = {name: statistics.median(v[0] / u[0] - 1 for v, u in zip(times[name], times["unverified"]))
            for name in times if name != "unverified"}
    return {"status": status, "wall": wall, "cpu": cpu, "cost": cost,
            "near_ends": near_ends == integrity._fields(files.content, integrity.DIGEST_PREFIX),
            "check_ms": [statistics.median(t[1] for t in values) for values in (check, scan, sha)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="export folders or model files")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    models = find_models(args.paths)
    coral = stamped_coral(Path(tempfile.mkdtemp(prefix="edgecls_verify_cost_")))
    models += [coral] if coral else []
    cpu_name = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), "?")
    sha_ni = " sha_ni" if " sha_ni" in Path("/proc/cpuinfo").read_text() else ""
    print(f"verify_cost: {args.rounds} rounds; CPU {cpu_name}{sha_ni}, {len(os.sched_getaffinity(0))} cores; "
          f"SHA-256 by {ssl.OPENSSL_VERSION}; load average "
          f"{Path('/proc/loadavg').read_text().split()[0]} at start")
    names = ("unverified", "verified", "verified, full scan", "verified, then loaded", "check, then load")
    print(f"{'model':<26} {'MB':>6} {'integrity':>9}  fields near ends; load ms, median wall / CPU (all "
          "threads): " + ", ".join(names) + "; CPU ms of the check alone (field search + SHA-256), with "
          "the full scan, SHA-256 alone; verify cost: median over rounds of the wall time added to an "
          "unverified load, " + ", ".join(names[1:]))
    for model in models:
        size = sum(p.stat().st_size for p in (model, model.with_suffix(".bin")) if p.is_file()
                   and (p == model or model.suffix == ".xml")) / 1e6
        got = measure(model, args.rounds)
        cells = " ".join(f"{got['wall'][n]:7.1f} /{got['cpu'][n]:6.1f}" for n in names)
        costs = " ".join(f"{got['cost'][n]:+7.1%}" for n in names[1:])
        checks = " ".join(f"{ms:5.2f}" for ms in got["check_ms"])
        near = "yes" if got["near_ends"] else "no"
        print(f"{model.name:<26} {size:6.2f} {got['status']:>9}  {near:>3}  {cells}  {checks}  {costs}", flush=True)


if __name__ == "__main__":
    main()
